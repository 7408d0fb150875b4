//! One `SdkConfig` per cold start, shared by every client the function builds.

use std::time::Duration;

pub use aws_config::SdkConfig;
use aws_config::{BehaviorVersion, retry::RetryConfig, timeout::TimeoutConfig};

/// Loads the AWS configuration once, in `main`, for the function or tool named `app`.
///
/// It honours the standard variables (`AWS_REGION`, `AWS_ENDPOINT_URL`, the credentials chain).
/// Credentials are resolved lazily on the first call, so loading makes no network request.
/// Retries use the SDK's standard mode: throttling and transient 5xx are retried with
/// exponential backoff and jitter. Timeouts stay well inside the shortest Lambda timeout (15 s),
/// and each handler still bounds its work by the invocation deadline. Every request's User-Agent
/// carries `app/<app>`, so CloudTrail (and the tests' recorder) can tell which function made it.
pub async fn load_sdk_config(app: &'static str) -> SdkConfig {
    config_loader(Some(app)).load().await
}

/// The loader behind [`load_sdk_config`], for callers that add to it (tests point it at a proxy).
pub fn config_loader(app: Option<&'static str>) -> aws_config::ConfigLoader {
    config_loader_named(app.and_then(|name| aws_config::AppName::new(name).ok()))
}

/// The same, for an app name made at run time (the tests' IAM worlds: `<function>~<world>`).
pub fn config_loader_named(app: Option<aws_config::AppName>) -> aws_config::ConfigLoader {
    let loader = aws_config::defaults(BehaviorVersion::latest());
    let loader = match app {
        Some(name) => loader.app_name(name),
        None => loader,
    };
    loader.retry_config(RetryConfig::standard().with_max_attempts(4)).timeout_config(
        TimeoutConfig::builder().connect_timeout(Duration::from_secs(3)).read_timeout(Duration::from_secs(10)).build(),
    )
}

/// An SDK timestamp as a chrono one (the SDK's own type has no arithmetic).
pub fn to_chrono(time: &aws_smithy_types::DateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(time.secs(), time.subsec_nanos()).unwrap_or_default()
}
