//! Names shared by the deployer, the drain watcher and the reaper (seed 004): services are
//! `svc-<deployment_name>-<deployment_id>`, and each deployment's state lives in SSM at
//! `/apps/<deployment_name>/<deployment_id>/state`, `active` or `draining`.

use aws_sdk_ecs::types::Service;
use chrono::{DateTime, SecondsFormat, Utc};

pub const ACTIVE: &str = "active";
pub const DRAINING: &str = "draining";
/// The tag `fluidity-mark-deployment` writes when it marks a service draining: when draining
/// began (RFC 3339, UTC), which is what the reaper's MAX_AGE counts from.
pub const DRAINING_SINCE_TAG: &str = "draining_since";

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

/// When the service was marked draining, from its `draining_since` tag.
pub fn draining_since(service: &Service) -> Option<DateTime<Utc>> {
    let text = tag(service, DRAINING_SINCE_TAG)?;
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

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

/// A value of one of the service's tags.
pub fn tag<'a>(service: &'a Service, key: &str) -> Option<&'a str> {
    service.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// The deployment a service belongs to, when it is one of `deployment_name`'s: by its tags when it
/// has them, else by its name. A service of another deployment name (even `svc-<name>-x-...`, whose
/// tags say otherwise) is `None`.
pub fn deployment_of(service: &Service, deployment_name: &str) -> Option<String> {
    let name = service.service_name()?;
    match (tag(service, "deployment_name"), tag(service, "deployment_id")) {
        (Some(tagged), Some(id)) => {
            (tagged == deployment_name && name == service_name(tagged, id)).then(|| id.to_owned())
        }
        (Some(_), None) | (None, Some(_)) => None,
        (None, None) => {
            name.strip_prefix(&format!("svc-{deployment_name}-")).filter(|id| valid_id(id)).map(str::to_owned)
        }
    }
}

/// Deployment names and ids: letters, digits, `-`, `_`, `.`; 1-100 characters (they go into SSM paths and ECS names).
pub fn valid_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 100
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::Tag;

    use super::*;

    fn svc(name: &str, tags: &[(&str, &str)]) -> Service {
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
        Service::builder().service_name(name).set_tags(Some(tags)).build()
    }

    #[test]
    fn names_follow_the_seed() {
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
    fn draining_since_round_trips_through_its_tag() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T20:00:00Z").unwrap().with_timezone(&Utc);
        let service = svc("svc-a-1", &[(DRAINING_SINCE_TAG, &format_since(at))]);
        assert_eq!(draining_since(&service), Some(at));
        assert_eq!(draining_since(&svc("svc-a-1", &[(DRAINING_SINCE_TAG, "yesterday")])), None);
    }

    #[test]
    fn deployments_are_recognised_by_tags_then_by_name() {
        let tagged = svc("svc-myapp-b1", &[("deployment_name", "myapp"), ("deployment_id", "b1"), ("state", "active")]);
        assert_eq!(deployment_of(&tagged, "myapp").as_deref(), Some("b1"));
        assert_eq!(deployment_of(&svc("svc-myapp-a1", &[]), "myapp").as_deref(), Some("a1"));
        // svc-myapp-x-... by name, but its tags say it belongs to "myapp-x".
        let other = svc("svc-myapp-x-c1", &[("deployment_name", "myapp-x"), ("deployment_id", "c1")]);
        assert_eq!(deployment_of(&other, "myapp"), None);
        assert_eq!(deployment_of(&svc("fluidity-server", &[]), "myapp"), None);
    }
}
