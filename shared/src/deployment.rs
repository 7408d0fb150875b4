//! Names shared by the deployer, the drain watcher and the reaper (seed 004): services are
//! `svc-<deployment_name>-<deployment_id>`, and each deployment's state lives in SSM at
//! `/apps/<deployment_name>/<deployment_id>/state`, `active` or `draining`.

use aws_sdk_ecs::types::Service;

pub const ACTIVE: &str = "active";
pub const DRAINING: &str = "draining";

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
