//! The restart claim: one SSM parameter per ECS service, so that concurrent restart_service
//! invocations (a burst of alerts for one incident) start one deployment between them.
//!
//! Describe-then-update alone is not atomic: twenty invocations can all see a quiet service before
//! any of them updates it. The claim closes that race with two atomic SSM operations:
//! - `PutParameter` without `Overwrite` creates the parameter for exactly one caller;
//! - once a claim is older than the cooldown, a caller takes it over with `Overwrite`, and wins only
//!   if SSM gave its write the version right after the stale one it read (versions are sequential).

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use chrono::{DateTime, Utc};
use shared::aws::to_chrono;
use shared::ecs::ServiceRef;
use shared::{ConfigError, FunctionError};

/// Where the claims live unless `RESTART_LOCK_PREFIX` says otherwise; the IAM policy is scoped to it.
pub const DEFAULT_LOCK_PREFIX: &str = "/incident-actions/restart-locks";

/// `RESTART_LOCK_PREFIX`: an SSM parameter path such as `/incident-actions/prod/restart-locks`.
pub fn lock_prefix_from_env() -> Result<String, ConfigError> {
    let prefix = shared::settings::Settings::from_env()
        .parsed("RESTART_LOCK_PREFIX", |prefix| validate_prefix(prefix).map(|()| prefix.to_owned()))?;
    Ok(prefix.unwrap_or_else(|| DEFAULT_LOCK_PREFIX.to_owned()))
}

/// An SSM hierarchy path: starts with `/`, no trailing `/`, only the characters SSM allows.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_.-".contains(c);
    if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.len() > 512 || !prefix.chars().all(allowed) {
        return Err(format!(
            "{prefix:?} is not an SSM parameter path (like /incident-actions/restart-locks: leading /, \
             no trailing /, letters, digits, / _ . -)"
        ));
    }
    Ok(())
}

/// The claim parameter of one service. Cluster and service names are already validated (`[A-Za-z0-9_-]`).
pub fn claim_name(prefix: &str, service: &ServiceRef) -> String {
    format!("{prefix}/{}/{}", service.cluster, service.service)
}

/// What the claim needs: creating, reading and (on a failed restart) deleting its parameters.
pub fn permissions(prefix: &str) -> Vec<shared::plan::Permission> {
    let resource = shared::plan::arn("ssm", &format!("parameter{prefix}/*"));
    ["ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter"]
        .map(|action| shared::plan::Permission::new(action, resource.clone()))
        .to_vec()
}

/// The claim parameter's description, as written.
pub const CLAIM_DESCRIPTION: &str = "incident-restart-service claim: a restart of this ECS service is under way";

/// A claim someone else holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    /// What the holder wrote: its incident and request ids.
    pub holder: String,
    pub since: DateTime<Utc>,
}

impl HeldClaim {
    /// Another invocation won a claim this one raced for, just now.
    fn racing() -> Self {
        Self { holder: "another invocation".into(), since: Utc::now() }
    }

    pub fn conflict(&self, resource: &str, cooldown: Duration) -> FunctionError {
        FunctionError::Conflict(format!(
            "a restart of {resource} was already started at {} by {} (cooldown {} s); not restarting again",
            self.since.to_rfc3339(),
            self.holder,
            cooldown.as_secs()
        ))
    }
}

/// Whether a claim written at `since` still holds at `now`. A claim dated in the future (clock skew) holds.
pub fn claim_is_live(since: DateTime<Utc>, now: DateTime<Utc>, cooldown: Duration) -> bool {
    now.signed_duration_since(since).to_std().map_or(true, |age| age < cooldown)
}

/// A claim parameter as it stands: what its holder wrote, and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedClaim {
    pub held: HeldClaim,
    pub version: i64,
}

/// Takes the claim as the plan says: creates it (`replaces` is `None`), or takes over the stale
/// claim observed at version `replaces`. `Err` with who holds it when another invocation got there first.
pub async fn take(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    holder: &str,
    replaces: Option<i64>,
) -> Result<Result<(), HeldClaim>, FunctionError> {
    let written = match put(ssm, name, holder, replaces.is_some()).await {
        Ok(written) => written,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_parameter_already_exists()) => {
            // Claimed between our observation and our write.
            return Ok(Err(observe(ssm, name).await?.map_or_else(HeldClaim::racing, |claim| claim.held)));
        }
        Err(err) => return Err(FunctionError::aws("SSM PutParameter", &err)),
    };
    // Versions are sequential: if another invocation took over the stale claim in the same moment
    // and SSM ordered it first, ours is not the next version.
    Ok(match replaces {
        Some(version) if written.version() != version + 1 => Err(HeldClaim::racing()),
        _ => Ok(()),
    })
}

/// Gives the claim back after the restart it guarded failed, so a retry is not refused for the cooldown.
pub async fn release(ssm: &aws_sdk_ssm::Client, name: &str) {
    if let Err(err) = ssm.delete_parameter().name(name).send().await {
        tracing::warn!(
            parameter = name,
            "could not release the restart claim: {}",
            FunctionError::aws("SSM DeleteParameter", &err)
        );
    }
}

async fn put(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    holder: &str,
    overwrite: bool,
) -> Result<
    aws_sdk_ssm::operation::put_parameter::PutParameterOutput,
    aws_sdk_ssm::error::SdkError<aws_sdk_ssm::operation::put_parameter::PutParameterError>,
> {
    ssm.put_parameter()
        .name(name)
        .value(holder)
        .r#type(ParameterType::String)
        .overwrite(overwrite)
        .description(CLAIM_DESCRIPTION)
        .send()
        .await
}

/// The claim parameter `name`, if it exists.
pub async fn observe(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<Option<ObservedClaim>, FunctionError> {
    match ssm.get_parameter().name(name).send().await {
        Ok(out) => Ok(out.parameter().map(|parameter| ObservedClaim {
            held: HeldClaim {
                holder: parameter.value().unwrap_or("(unknown)").to_owned(),
                since: parameter.last_modified_date().map(to_chrono).unwrap_or_else(Utc::now),
            },
            version: parameter.version(),
        })),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => Ok(None),
        Err(err) => Err(FunctionError::aws("SSM GetParameter", &err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_hold_for_the_cooldown_only() {
        let now = Utc::now();
        let cooldown = Duration::from_secs(300);
        assert!(claim_is_live(now - chrono::Duration::seconds(299), now, cooldown));
        assert!(!claim_is_live(now - chrono::Duration::seconds(300), now, cooldown));
        assert!(claim_is_live(now + chrono::Duration::seconds(30), now, cooldown), "clock skew: still held");
    }

    #[test]
    fn prefixes_are_ssm_paths() {
        assert!(validate_prefix(DEFAULT_LOCK_PREFIX).is_ok());
        assert!(validate_prefix("/incident-actions/prod/restart-locks").is_ok());
        for bad in ["", "relative/path", "/trailing/", "/with space", "/semi;colon"] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
        let service = ServiceRef::new("production", "api");
        assert_eq!(claim_name(DEFAULT_LOCK_PREFIX, &service), "/incident-actions/restart-locks/production/api");
    }
}
