//! One `SdkConfig` per cold start, shared by every client the function builds.

use std::ops::Deref;
use std::sync::LazyLock;
use std::time::Duration;

pub use aws_config::SdkConfig;
use aws_config::{BehaviorVersion, retry::RetryConfig, timeout::TimeoutConfig};

use crate::ConfigError;
use crate::settings::Settings;

/// Loads the AWS configuration once, in `main`, for the function or tool named `app`.
///
/// It honours the standard variables (`AWS_REGION`, `AWS_ENDPOINT_URL`, the credentials chain).
/// Credentials are resolved lazily on the first call, so loading makes no network request.
/// Retries use the SDK's standard mode: throttling and transient 5xx are retried with
/// exponential backoff and jitter. Timeouts stay well inside the shortest Lambda timeout (15 s),
/// and each handler still bounds its work by the invocation deadline. Every request's User-Agent
/// carries `app/<app>`, so CloudTrail (and the tests' recorder) can tell which function made it.
/// Requests go through [`crate::http::https_client`]; its only failure is an unusable `SSL_CERT_FILE`.
pub async fn load_sdk_config(app: &'static str) -> Result<SdkConfig, ConfigError> {
    Ok(config_loader(Some(app))?.load().await)
}

/// The loader behind [`load_sdk_config`], for callers that add to it (tests point it at a proxy).
pub fn config_loader(app: Option<&'static str>) -> Result<aws_config::ConfigLoader, ConfigError> {
    config_loader_named(app.and_then(|name| aws_config::AppName::new(name).ok()))
}

/// The same, for an app name made at run time (the tests' IAM worlds: `<function>~<world>`).
pub fn config_loader_named(app: Option<aws_config::AppName>) -> Result<aws_config::ConfigLoader, ConfigError> {
    let settings = Settings::from_env();
    let loader = aws_config::defaults(BehaviorVersion::latest()).http_client(crate::http::https_client()?);
    // Where the environment holds keys, as Lambda's does, the default chain's first link answers
    // anyway; building the rest of it (an STS and an IMDS client) cost a third of a cold start's
    // instructions. Without keys (an operator's CLI) the whole chain is built as usual.
    let loader = if ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"].iter().all(|name| settings.optional(name).is_some())
    {
        loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
    } else {
        loader
    };
    // Likewise the region: AWS_REGION (which Lambda sets) is the region chain's first link; the
    // chain itself builds an IMDS client.
    let loader = match settings.optional("AWS_REGION") {
        Some(region) => loader.region(aws_config::Region::new(region)),
        None => loader,
    };
    let loader = match app {
        Some(name) => loader.app_name(name),
        None => loader,
    };
    Ok(loader.retry_config(RetryConfig::standard().with_max_attempts(4)).timeout_config(
        TimeoutConfig::builder().connect_timeout(Duration::from_secs(3)).read_timeout(Duration::from_secs(10)).build(),
    ))
}

/// An SDK client built the first time it is used, from the cold start's `SdkConfig`.
///
/// Building a client parses its crate's endpoint partition table (0.41 M instructions for ECS,
/// measured; every SDK crate has its own copy and parses it again). A function whose invocations
/// each need only some of its clients (scale_up: ECS and autoscaling, or RDS, or ElastiCache; the
/// reaper: CloudWatch, ELB and SSM only once a service is draining) builds none of those at init
/// and, in an invocation, only those it calls. Clients that every
/// invocation calls stay plain clients built in `main`: deferring those would only move the work
/// out of init into the invocation the caller waits for.
pub struct LazyClient<C>(LazyLock<C, Box<dyn FnOnce() -> C + Send>>);

impl<C: 'static> LazyClient<C> {
    /// A client that `build` makes from (a copy of) `config` on first use.
    pub fn new(config: &SdkConfig, build: fn(&SdkConfig) -> C) -> Self {
        let config = config.clone();
        Self(LazyLock::new(Box::new(move || build(&config))))
    }
}

/// A client already built (tests hand in clients made their own way).
impl<C: Send + 'static> From<C> for LazyClient<C> {
    fn from(client: C) -> Self {
        Self(LazyLock::new(Box::new(move || client)))
    }
}

impl<C> Deref for LazyClient<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.0
    }
}

/// An SDK timestamp as a chrono one (the SDK's own type has no arithmetic).
pub fn to_chrono(time: &aws_smithy_types::DateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(time.secs(), time.subsec_nanos()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    fn counted(config: &SdkConfig) -> Option<String> {
        BUILT.fetch_add(1, Ordering::SeqCst);
        config.region().map(|region| region.to_string())
    }

    #[test]
    fn a_lazy_client_is_built_once_on_first_use_from_the_config() {
        let config = SdkConfig::builder().region(aws_config::Region::new("eu-west-1")).build();
        let client = LazyClient::new(&config, counted);
        assert_eq!(BUILT.load(Ordering::SeqCst), 0, "nothing is built before the first use");
        assert_eq!(client.as_deref(), Some("eu-west-1"));
        assert_eq!(client.as_deref(), Some("eu-west-1"));
        assert_eq!(BUILT.load(Ordering::SeqCst), 1, "built once, then reused");
        let ready = LazyClient::from(Some("given".to_owned()));
        assert_eq!(ready.as_deref(), Some("given"));
    }
}
