//! Deployments as ECS shows them: the naming of [`crate::deployment`], read from a described
//! service's tags (which deployment it is, its state, when it began draining).

pub use crate::deployment::*;
use aws_sdk_ecs::types::Service;
use chrono::{DateTime, Utc};

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

/// When the service was marked draining, from its `draining_since` tag.
pub fn draining_since(service: &Service) -> Option<DateTime<Utc>> {
    parse_since(tag(service, DRAINING_SINCE_TAG)?)
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
