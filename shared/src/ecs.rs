//! ECS helpers used by every function: the actions and the lifecycle functions share this code.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::error::SdkError;
use aws_sdk_ecs::operation::update_service::UpdateServiceError;
use aws_sdk_ecs::types::{Deployment, DesiredStatus, Service, ServiceField, Task};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use futures::{StreamExt, TryStreamExt, stream};

use crate::iam::{Permission, arn};
use crate::settings::{Settings, invalid};
use crate::{ConfigError, FunctionError};

/// DescribeTasks takes at most 100 task ARNs per call.
pub const DESCRIBE_TASKS_BATCH: usize = 100;
/// DescribeServices takes at most 10 services per call.
pub const DESCRIBE_SERVICES_BATCH: usize = 10;
/// How many describe batches run at once: enough to hide latency, few enough not to trip throttling.
pub const DESCRIBE_CONCURRENCY: usize = 4;

/// One ECS service, by cluster and service name (or ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    pub cluster: String,
    pub service: String,
}

impl ServiceRef {
    pub fn new(cluster: impl Into<String>, service: impl Into<String>) -> Self {
        Self { cluster: cluster.into(), service: service.into() }
    }

    /// The lifecycle functions' default target: `ECS_CLUSTER_NAME` and `ECS_SERVICE_NAME`, both required.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&Settings::from_env())
    }

    pub fn from_settings(settings: &Settings<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let read = |name: &'static str| -> Result<String, ConfigError> {
            let value = settings.required(name)?;
            validate_name(name, &value).map_err(|err| match err {
                FunctionError::InvalidRequest { problem, .. } => invalid(name, problem),
                other => invalid(name, other.to_string()),
            })?;
            Ok(value)
        };
        Ok(Self { cluster: read("ECS_CLUSTER_NAME")?, service: read("ECS_SERVICE_NAME")? })
    }

    /// Applies the request's `cluster_name` / `service_name` overrides, validating them.
    pub fn with_overrides(&self, cluster: Option<&str>, service: Option<&str>) -> Result<Self, FunctionError> {
        if let Some(cluster) = cluster {
            validate_name("cluster_name", cluster)?;
        }
        if let Some(service) = service {
            validate_name("service_name", service)?;
        }
        Ok(Self {
            cluster: cluster.unwrap_or(&self.cluster).to_owned(),
            service: service.unwrap_or(&self.service).to_owned(),
        })
    }

    fn not_found(&self) -> FunctionError {
        FunctionError::ServiceNotFound { cluster: self.cluster.clone(), service: self.service.clone() }
    }
}

/// The lifecycle functions' request: `{"cluster_name": "...", "service_name": "..."}`, both optional
/// overrides of `ECS_CLUSTER_NAME` / `ECS_SERVICE_NAME`. Unknown fields are rejected.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceOverrides {
    #[serde(default)]
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub service_name: Option<String>,
}

/// The services a lifecycle function may act on: its own (`ECS_CLUSTER_NAME`, `ECS_SERVICE_NAME`),
/// and those a request may name instead (`OVERRIDE_SERVICE_ARNS`: ECS service ARNs, none by
/// default). The deployment scopes the function's role to the same list, so a request reaches no
/// further by direct invoke than over HTTP; refusing here gives a clear 403 before any AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceScope {
    pub configured: ServiceRef,
    pub allowed: Vec<ServiceRef>,
}

impl ServiceScope {
    /// The function's own service, and no other.
    pub fn only(configured: ServiceRef) -> Self {
        Self { configured, allowed: Vec::new() }
    }

    /// These services too may be named by a request.
    pub fn allowing(mut self, others: impl IntoIterator<Item = ServiceRef>) -> Self {
        self.allowed.extend(others);
        self
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&Settings::from_env())
    }

    pub fn from_settings(settings: &Settings<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let configured = ServiceRef::from_settings(settings)?;
        let allowed = settings.parsed("OVERRIDE_SERVICE_ARNS", |list| {
            list.split(',').map(str::trim).filter(|arn| !arn.is_empty()).map(service_of_arn).collect()
        })?;
        Ok(Self { configured, allowed: allowed.unwrap_or_default() })
    }

    /// The service a request names: the function's own unless it overrides cluster or service, and
    /// then only one the deployment allows.
    pub fn resolve(&self, request: &ServiceOverrides) -> Result<ServiceRef, FunctionError> {
        let named = self.configured.with_overrides(request.cluster_name.as_deref(), request.service_name.as_deref())?;
        if named.is(&self.configured) || self.allowed.iter().any(|allowed| named.is(allowed)) {
            return Ok(named);
        }
        let shown = |s: &ServiceRef| format!("{}/{}", last_segment(&s.cluster), last_segment(&s.service));
        Err(FunctionError::OverrideNotAllowed {
            cluster: last_segment(&named.cluster).to_owned(),
            service: last_segment(&named.service).to_owned(),
            configured: shown(&self.configured),
            allowed: self.allowed.iter().map(shown).collect(),
        })
    }
}

impl ServiceRef {
    /// The same service, whether named by name or by ARN.
    pub fn is(&self, other: &ServiceRef) -> bool {
        last_segment(&self.cluster) == last_segment(&other.cluster)
            && last_segment(&self.service) == last_segment(&other.service)
    }
}

/// `production` of `arn:aws:ecs:us-east-1:123456789012:cluster/production`, or a plain name.
fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// `arn:<partition>:ecs:<region>:<account>:service/<cluster>/<service>` as a service reference.
fn service_of_arn(arn: &str) -> Result<ServiceRef, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let path = match parts.as_slice() {
        ["arn", _, "ecs", _, _, path] => path.strip_prefix("service/"),
        _ => None,
    };
    let names = path.and_then(|p| p.split_once('/')).filter(|(c, s)| {
        validate_name("cluster", c).is_ok() && validate_name("service", s).is_ok() && !s.contains('/')
    });
    names.map(|(cluster, service)| ServiceRef::new(cluster, service)).ok_or_else(|| {
        format!(
            "{:?} is not an ECS service ARN (arn:aws:ecs:<region>:<account>:service/<cluster>/<service>)",
            crate::text::shown(arn)
        )
    })
}

/// ECS cluster and service names: 1-255 letters, digits, hyphens and underscores; or a full ARN.
pub fn validate_name(field: &str, value: &str) -> Result<(), FunctionError> {
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let ok = value.len() <= 255
        && if let Some(rest) = value.strip_prefix("arn:") {
            rest.starts_with("aws") && rest.split('/').next_back().is_some_and(plain)
        } else {
            plain(value)
        };
    if ok {
        Ok(())
    } else {
        Err(FunctionError::invalid(
            field,
            format!(
                "{:?} is not an ECS name: use 1-255 letters, digits, hyphens or underscores, or an ARN",
                crate::text::shown(value)
            ),
        ))
    }
}

/// What describing a service needs: DescribeServices on it.
pub fn describe_services_permission(cluster: &str, service: &str) -> Permission {
    Permission::new("ecs:DescribeServices", arn("ecs", &format!("service/{cluster}/{service}")))
}

/// What changing a service needs: UpdateService on it.
pub fn update_service_permission(cluster: &str, service: &str) -> Permission {
    Permission::new("ecs:UpdateService", arn("ecs", &format!("service/{cluster}/{service}")))
}

/// What listing a cluster's tasks needs: ListTasks is authorised on `*`, scoped by `ecs:cluster`.
pub fn list_tasks_permission(cluster: &str) -> Permission {
    Permission::any_where("ecs:ListTasks", "ecs:cluster", arn("ecs", &format!("cluster/{cluster}")))
}

/// What listing a cluster's services needs: ListServices on `*`, scoped by `ecs:cluster`.
pub fn list_services_permission(cluster: &str) -> Permission {
    Permission::any_where("ecs:ListServices", "ecs:cluster", arn("ecs", &format!("cluster/{cluster}")))
}

/// What describing a cluster's tasks needs.
pub fn describe_tasks_permission(cluster: &str) -> Permission {
    Permission::new("ecs:DescribeTasks", arn("ecs", &format!("task/{cluster}/*")))
}

/// The service's primary deployment: the one it is rolling out or runs.
pub fn primary_deployment(service: &Service) -> Option<&Deployment> {
    service.deployments().iter().find(|d| d.status() == Some("PRIMARY"))
}

/// Describes one service. A missing service, a missing cluster or an INACTIVE service is `ServiceNotFound`.
pub async fn describe_service(ecs: &Client, target: &ServiceRef) -> Result<Service, FunctionError> {
    let out = ecs.describe_services().cluster(&target.cluster).services(&target.service).send().await.map_err(
        |err| match err.as_service_error() {
            Some(e) if e.is_cluster_not_found_exception() => target.not_found(),
            _ => FunctionError::aws("ECS DescribeServices", &err),
        },
    )?;
    out.services
        .unwrap_or_default()
        .into_iter()
        .find(|svc| svc.status() != Some("INACTIVE"))
        .ok_or_else(|| target.not_found())
}

/// Sets the desired count; returns the service as ECS reports it after the update.
pub async fn set_desired_count(ecs: &Client, target: &ServiceRef, desired: i32) -> Result<Service, FunctionError> {
    let result =
        ecs.update_service().cluster(&target.cluster).service(&target.service).desired_count(desired).send().await;
    updated_service(target, result.map(|out| out.service))
}

/// Starts a new deployment of the current task definition (a rolling restart).
pub async fn force_new_deployment(ecs: &Client, target: &ServiceRef) -> Result<Service, FunctionError> {
    let result =
        ecs.update_service().cluster(&target.cluster).service(&target.service).force_new_deployment(true).send().await;
    updated_service(target, result.map(|out| out.service))
}

/// UpdateService with a task definition: a rolling deployment of it (a rollback's one call).
pub async fn set_task_definition(
    ecs: &Client,
    target: &ServiceRef,
    task_definition: &str,
) -> Result<Service, FunctionError> {
    let result = ecs
        .update_service()
        .cluster(&target.cluster)
        .service(&target.service)
        .task_definition(task_definition)
        .send()
        .await;
    updated_service(target, result.map(|out| out.service))
}

fn updated_service(
    target: &ServiceRef,
    result: Result<Option<Service>, SdkError<UpdateServiceError, HttpResponse>>,
) -> Result<Service, FunctionError> {
    match result {
        // ECS answers with the service; an INACTIVE one was deleted and cannot be scaled.
        Ok(Some(service)) if service.status() != Some("INACTIVE") => Ok(service),
        Ok(_) => Err(target.not_found()),
        Err(err) => match err.as_service_error() {
            Some(
                UpdateServiceError::ServiceNotFoundException(_)
                | UpdateServiceError::ServiceNotActiveException(_)
                | UpdateServiceError::ClusterNotFoundException(_),
            ) => Err(target.not_found()),
            _ => Err(FunctionError::aws("ECS UpdateService", &err)),
        },
    }
}

/// Lists the service's tasks with the given desired status, following every page.
pub async fn list_service_tasks(
    ecs: &Client,
    target: &ServiceRef,
    status: DesiredStatus,
) -> Result<Vec<String>, FunctionError> {
    let mut pages = ecs
        .list_tasks()
        .cluster(&target.cluster)
        .service_name(&target.service)
        .desired_status(status)
        .max_results(100) // the most ListTasks returns per page
        .into_paginator()
        .send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| match err.as_service_error() {
            Some(e) if e.is_cluster_not_found_exception() || e.is_service_not_found_exception() => target.not_found(),
            _ => FunctionError::aws("ECS ListTasks", &err),
        })?;
        arns.extend(page.task_arns.unwrap_or_default());
    }
    Ok(arns)
}

/// Describes tasks in batches of [`DESCRIBE_TASKS_BATCH`], a few batches at a time, keeping the input order.
pub async fn describe_tasks(ecs: &Client, cluster: &str, task_arns: &[String]) -> Result<Vec<Task>, FunctionError> {
    let batches = stream::iter(task_arns.chunks(DESCRIBE_TASKS_BATCH))
        .map(|batch| async move {
            ecs.describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await
                .map(|out| out.tasks.unwrap_or_default())
                .map_err(|err| FunctionError::aws("ECS DescribeTasks", &err))
        })
        .buffered(DESCRIBE_CONCURRENCY);
    Ok(batches.try_collect::<Vec<_>>().await?.into_iter().flatten().collect())
}

/// Describes services in batches of [`DESCRIBE_SERVICES_BATCH`], optionally with their tags
/// (one call per ten services instead of one ListTagsForResource per service).
/// Services that do not exist are left out.
pub async fn describe_services(
    ecs: &Client,
    cluster: &str,
    services: &[String],
    include_tags: bool,
) -> Result<Vec<Service>, FunctionError> {
    let batches = stream::iter(services.chunks(DESCRIBE_SERVICES_BATCH))
        .map(|batch| async move {
            let mut call = ecs.describe_services().cluster(cluster).set_services(Some(batch.to_vec()));
            if include_tags {
                call = call.include(ServiceField::Tags);
            }
            call.send()
                .await
                .map(|out| out.services.unwrap_or_default())
                .map_err(|err| FunctionError::aws("ECS DescribeServices", &err))
        })
        .buffered(DESCRIBE_CONCURRENCY);
    Ok(batches.try_collect::<Vec<_>>().await?.into_iter().flatten().collect())
}

/// The service's running tasks, described: ListTasks (every page), DescribeTasks in batches, and
/// only the tasks whose group is this service's (`service:<name>`), whatever ListTasks returned.
pub async fn running_service_tasks(ecs: &Client, target: &ServiceRef) -> Result<Vec<Task>, FunctionError> {
    let arns = list_service_tasks(ecs, target, DesiredStatus::Running).await?;
    let tasks = describe_tasks(ecs, &target.cluster, &arns).await?;
    Ok(tasks.into_iter().filter(|task| belongs_to_service(task, &target.service)).collect())
}

/// Whether a task was started by the service (its group is `service:<service name>`); the service may be given as an ARN.
pub fn belongs_to_service(task: &Task, service: &str) -> bool {
    let name = service.rsplit('/').next().unwrap_or(service);
    task.group().and_then(|g| g.strip_prefix("service:")) == Some(name)
}

/// The task's elastic network interface id and private IPv4 address (awsvpc tasks), from its attachment details.
pub fn task_eni(task: &Task) -> Option<(String, Option<String>)> {
    let attachment = task.attachments().iter().find(|a| a.r#type() == Some("ElasticNetworkInterface"))?;
    let detail = |name: &str| {
        attachment.details().iter().find(|d| d.name() == Some(name)).and_then(|d| d.value()).map(str::to_owned)
    };
    Some((detail("networkInterfaceId")?, detail("privateIPv4Address")))
}

/// Lists every service ARN in the cluster, following every page.
pub async fn list_services(ecs: &Client, cluster: &str) -> Result<Vec<String>, FunctionError> {
    // 100 per page, the most ListServices allows (its default is 10).
    let mut pages = ecs.list_services().cluster(cluster).max_results(100).into_paginator().send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        arns.extend(page.map_err(|err| FunctionError::aws("ECS ListServices", &err))?.service_arns.unwrap_or_default());
    }
    Ok(arns)
}

#[cfg(test)]
mod tests {
    //! The SDK side is exercised against moto in the functions' integration tests; these tests use
    //! aws-smithy-mocks on the real client to pin down batching and pagination exactly.
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
    use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
    use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
    use aws_sdk_ecs::types::error::ServiceNotFoundException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn arns(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("arn:aws:ecs:us-east-1:123456789012:task/c/{i:032}")).collect()
    }

    #[tokio::test]
    async fn describe_tasks_sends_batches_of_100_and_keeps_order() {
        let rule = mock!(Client::describe_tasks)
            .match_requests(|req| req.tasks().len() <= DESCRIBE_TASKS_BATCH)
            .then_compute_output(|req| {
                let tasks = req.tasks().iter().map(|arn| Task::builder().task_arn(arn).build()).collect();
                DescribeTasksOutput::builder().set_tasks(Some(tasks)).build()
            });
        let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule]);
        let wanted = arns(250);
        let tasks = describe_tasks(&ecs, "c", &wanted).await.unwrap();
        assert_eq!(rule.num_calls(), 3, "250 tasks = 100 + 100 + 50");
        let got: Vec<_> = tasks.iter().map(|t| t.task_arn().unwrap().to_owned()).collect();
        assert_eq!(got, wanted);
    }

    #[tokio::test]
    async fn describe_tasks_of_nothing_makes_no_call() {
        let ecs = mock_client!(aws_sdk_ecs, RuleMode::Sequential, []);
        assert!(describe_tasks(&ecs, "c", &[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn describe_services_sends_batches_of_10_with_tags() {
        let rule = mock!(Client::describe_services)
            .match_requests(|req| {
                req.services().len() <= DESCRIBE_SERVICES_BATCH && req.include() == [ServiceField::Tags]
            })
            .then_compute_output(|req| {
                let services =
                    req.services().iter().map(|name| Service::builder().service_name(name).build()).collect();
                DescribeServicesOutput::builder().set_services(Some(services)).build()
            });
        let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule]);
        let names: Vec<String> = (0..23).map(|i| format!("svc-{i}")).collect();
        let services = describe_services(&ecs, "c", &names, true).await.unwrap();
        assert_eq!(rule.num_calls(), 3, "23 services = 10 + 10 + 3");
        assert_eq!(services.len(), 23);
        assert_eq!(services[22].service_name(), Some("svc-22"));
    }

    #[tokio::test]
    async fn list_service_tasks_follows_every_page() {
        let first = mock!(Client::list_tasks)
            .match_requests(|req| req.next_token().is_none() && req.service_name() == Some("api"))
            .then_output(|| ListTasksOutput::builder().task_arns("t1").task_arns("t2").next_token("p2").build());
        let second = mock!(Client::list_tasks)
            .match_requests(|req| req.next_token() == Some("p2"))
            .then_output(|| ListTasksOutput::builder().task_arns("t3").next_token("p3").build());
        let third = mock!(Client::list_tasks)
            .match_requests(|req| req.next_token() == Some("p3"))
            .then_output(|| ListTasksOutput::builder().task_arns("t4").build());
        let ecs = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&first, &second, &third]);
        let target = ServiceRef::new("c", "api");
        let got = list_service_tasks(&ecs, &target, DesiredStatus::Running).await.unwrap();
        assert_eq!(got, ["t1", "t2", "t3", "t4"]);
        assert_eq!((first.num_calls(), second.num_calls(), third.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn update_of_a_missing_service_is_service_not_found() {
        let rule = mock!(Client::update_service).then_error(|| {
            UpdateServiceError::ServiceNotFoundException(ServiceNotFoundException::builder().message("gone").build())
        });
        let ecs = mock_client!(aws_sdk_ecs, [&rule]);
        let err = set_desired_count(&ecs, &ServiceRef::new("prod", "api"), 0).await.unwrap_err();
        assert_eq!(err, FunctionError::ServiceNotFound { cluster: "prod".into(), service: "api".into() });
    }

    #[tokio::test]
    async fn update_answered_with_an_inactive_service_is_service_not_found() {
        let rule = mock!(Client::update_service).then_output(|| {
            UpdateServiceOutput::builder()
                .service(Service::builder().service_name("api").status("INACTIVE").build())
                .build()
        });
        let ecs = mock_client!(aws_sdk_ecs, [&rule]);
        let err = set_desired_count(&ecs, &ServiceRef::new("prod", "api"), 0).await.unwrap_err();
        assert_eq!(err.status(), 404);
    }

    #[test]
    fn tasks_belong_to_the_service_that_started_them() {
        let task = Task::builder().group("service:fluidity-server").build();
        assert!(belongs_to_service(&task, "fluidity-server"));
        assert!(belongs_to_service(&task, "arn:aws:ecs:us-east-1:1:service/fluidity/fluidity-server"));
        assert!(!belongs_to_service(&task, "fluidity"));
        assert!(!belongs_to_service(&Task::builder().group("family:x").build(), "x"));
    }

    #[test]
    fn the_eni_comes_from_the_task_attachment() {
        use aws_sdk_ecs::types::{Attachment, KeyValuePair};
        let kv = |k: &str, v: &str| KeyValuePair::builder().name(k).value(v).build();
        let task = Task::builder()
            .attachments(
                Attachment::builder()
                    .r#type("ElasticNetworkInterface")
                    .details(kv("subnetId", "subnet-1"))
                    .details(kv("networkInterfaceId", "eni-123"))
                    .details(kv("privateIPv4Address", "10.0.1.5"))
                    .build(),
            )
            .build();
        assert_eq!(task_eni(&task), Some(("eni-123".into(), Some("10.0.1.5".into()))));
        assert_eq!(task_eni(&Task::builder().build()), None);
    }

    #[test]
    fn names_are_validated() {
        for ok in ["fluidity", "fluidity-server_2", "arn:aws:ecs:us-east-1:123456789012:cluster/prod"] {
            validate_name("cluster_name", ok).unwrap();
        }
        for bad in ["", "has space", "semi;colon", "new\nline", &"x".repeat(256), "arn:evil"] {
            let err = validate_name("service_name", bad).unwrap_err();
            assert!(err.to_string().contains("`service_name`"), "{err}");
        }
    }

    #[test]
    fn overrides_replace_only_what_they_name() {
        let base = ServiceRef::new("fluidity", "fluidity-server");
        assert_eq!(base.with_overrides(None, None).unwrap(), base);
        assert_eq!(base.with_overrides(Some("other"), None).unwrap(), ServiceRef::new("other", "fluidity-server"));
        assert_eq!(base.with_overrides(None, Some("s2")).unwrap(), ServiceRef::new("fluidity", "s2"));
        assert!(base.with_overrides(Some("bad name"), None).is_err());
    }

    fn scope(overrides: Option<&str>) -> Result<ServiceScope, ConfigError> {
        let vars = [("ECS_CLUSTER_NAME", "fluidity"), ("ECS_SERVICE_NAME", "server")];
        ServiceScope::from_settings(&Settings::with(|name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| (name == "OVERRIDE_SERVICE_ARNS").then(|| overrides.map(str::to_owned)).flatten())
        }))
    }

    fn naming(cluster: Option<&str>, service: Option<&str>) -> ServiceOverrides {
        ServiceOverrides { cluster_name: cluster.map(str::to_owned), service_name: service.map(str::to_owned) }
    }

    #[test]
    fn only_the_own_service_and_the_allowed_ones_may_be_named() {
        let none = scope(None).unwrap();
        assert_eq!(none.resolve(&naming(None, None)).unwrap(), ServiceRef::new("fluidity", "server"));
        assert_eq!(none.resolve(&naming(Some("fluidity"), Some("server"))).unwrap().service, "server");
        let refused = none.resolve(&naming(Some("production"), Some("api"))).unwrap_err();
        assert_eq!((refused.status(), refused.code()), (403, "OVERRIDE_NOT_ALLOWED"));
        assert!(refused.to_string().contains("production/api") && refused.to_string().contains("fluidity/server"));

        let some = scope(Some("arn:aws:ecs:us-east-1:123456789012:service/production/api, ")).unwrap();
        assert_eq!(some.allowed, [ServiceRef::new("production", "api")]);
        assert!(some.resolve(&naming(Some("production"), Some("api"))).is_ok());
        let by_arn = naming(Some("arn:aws:ecs:us-east-1:123456789012:cluster/production"), Some("api"));
        assert!(some.resolve(&by_arn).is_ok(), "an ARN names the same service");
        assert!(some.resolve(&naming(Some("production"), Some("billing"))).is_err());
        assert!(some.resolve(&naming(None, Some("api"))).is_err(), "api in the own cluster is another service");
    }

    #[test]
    fn the_allow_list_is_service_arns_and_a_bad_one_is_an_init_error() {
        assert!(scope(Some("")).unwrap().allowed.is_empty());
        for bad in ["production/api", "arn:aws:ecs:us-east-1:1:cluster/production", "arn:aws:ecs:r:1:service/a/b/c"] {
            let err = scope(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("OVERRIDE_SERVICE_ARNS") && err.contains("not an ECS service ARN"), "{bad}: {err}");
        }
    }
}
