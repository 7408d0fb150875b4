//! Deployment names: services are `svc-<deployment_name>-<deployment_id>`, and each deployment's
//! state lives in SSM at `/apps/<deployment_name>/<deployment_id>/state`, `active` or `draining`.

use chrono::{DateTime, SecondsFormat, Utc};

pub const ACTIVE: &str = "active";
pub const DRAINING: &str = "draining";
/// The tag `fluidity-mark-deployment` writes when it marks a service draining: when draining
/// began (RFC 3339, UTC), which is what the reaper's MAX_AGE counts from.
pub const DRAINING_SINCE_TAG: &str = "draining_since";

pub fn service_name(deployment_name: &str, deployment_id: &str) -> String {
    format!("svc-{deployment_name}-{deployment_id}")
}

pub fn state_parameter(deployment_name: &str, deployment_id: &str) -> String {
    format!("/apps/{deployment_name}/{deployment_id}/state")
}

/// The folder of a deployment's parameters, for cleanup.
pub fn parameter_path(deployment_name: &str, deployment_id: &str) -> String {
    format!("/apps/{deployment_name}/{deployment_id}")
}

/// The prefix every service of a deployment name has (`svc-<name>-`), or every managed service (`svc-`).
pub fn service_prefix(deployment_name: Option<&str>) -> String {
    deployment_name.map_or_else(|| "svc-".to_owned(), |name| format!("svc-{name}-"))
}

/// The service name of a service ARN (`arn:...:service/<cluster>/<name>`, or the old `service/<name>`).
pub fn name_from_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The ARNs among `arns` whose service name starts with `prefix`: the only ones worth describing.
pub fn with_prefix(arns: Vec<String>, prefix: &str) -> Vec<String> {
    arns.into_iter().filter(|arn| name_from_arn(arn).starts_with(prefix)).collect()
}

/// A `draining_since` tag value.
pub fn format_since(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A `draining_since` tag value read back; `None` for anything else.
pub fn parse_since(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// Deployment names and ids: letters, digits, `-`, `_`, `.`; 1-100 characters (they go into SSM paths and ECS names).
pub fn valid_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 100
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_deployer_s() {
        assert_eq!(service_name("myapp", "20251028-183000-abc1234"), "svc-myapp-20251028-183000-abc1234");
        assert_eq!(state_parameter("myapp", "20251028-183000-abc1234"), "/apps/myapp/20251028-183000-abc1234/state");
    }

    #[test]
    fn only_services_with_the_prefix_are_kept() {
        let arns = vec![
            "arn:aws:ecs:us-east-1:1:service/prod/svc-shop-a1".to_owned(),
            "arn:aws:ecs:us-east-1:1:service/prod/production-api-service".to_owned(),
            "arn:aws:ecs:us-east-1:1:service/svc-shop-b2".to_owned(),
            "arn:aws:ecs:us-east-1:1:service/prod/svc-shopping-c3".to_owned(),
        ];
        let kept = with_prefix(arns, &service_prefix(Some("shop")));
        assert_eq!(kept.iter().map(|a| name_from_arn(a)).collect::<Vec<_>>(), ["svc-shop-a1", "svc-shop-b2"]);
        assert_eq!(service_prefix(None), "svc-");
    }

    #[test]
    fn draining_since_round_trips() {
        let at = parse_since("2026-12-01T20:00:00Z").unwrap();
        assert_eq!(format_since(at), "2026-12-01T20:00:00Z");
        assert_eq!(parse_since("yesterday"), None);
    }
}
