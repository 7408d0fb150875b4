//! Phase 1, discover: the draining services of the managed deployment name, and when each began
//! draining.

use std::collections::HashMap;

use aws_sdk_ecs::types::Service;
use chrono::{DateTime, Utc};
use fluidity_names::service::{self as deployment, DRAINING};
use futures::{StreamExt, TryStreamExt, stream};
use shared::FunctionError;
use shared::aws::to_chrono;
use shared::ecs::{self, DESCRIBE_CONCURRENCY};

use crate::{Deps, PARAMETERS_PER_CALL};

/// One draining service of the managed deployment name, as the phases see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draining {
    pub service: String,
    pub deployment_name: String,
    pub deployment_id: String,
    pub desired: i32,
    pub running: i32,
    pub created: Option<DateTime<Utc>>,
    /// When draining began; `None` when neither the tag nor the state parameter says.
    pub draining_since: Option<DateTime<Utc>>,
    pub target_groups: Vec<String>,
}

impl Draining {
    /// The record of a described service, if it is one of ours and draining.
    fn from_service(service: &Service, filter: Option<&str>) -> Option<Self> {
        if service.status() != Some("ACTIVE") || deployment::tag(service, "state") != Some(DRAINING) {
            return None;
        }
        let name = filter.or_else(|| deployment::tag(service, "deployment_name"))?.to_owned();
        let id = deployment::deployment_of(service, &name)?;
        Some(Self {
            service: service.service_name()?.to_owned(),
            deployment_name: name,
            deployment_id: id,
            desired: service.desired_count(),
            running: service.running_count(),
            created: service_created(service).map(to_chrono),
            draining_since: deployment::draining_since(service),
            target_groups: service
                .load_balancers()
                .iter()
                .filter_map(|lb| lb.target_group_arn())
                .map(Into::into)
                .collect(),
        })
    }
}

/// Phase 1: the draining services of the managed deployment name, and when each began draining.
pub(crate) async fn discover(deps: &Deps) -> Result<Vec<Draining>, FunctionError> {
    let s = &deps.settings;
    let arns = ecs::list_services(&deps.ecs, &s.cluster).await?;
    let ours = deployment::with_prefix(arns, &deployment::service_prefix(s.deployment_name.as_deref()));
    let services = ecs::describe_services(&deps.ecs, &s.cluster, &ours, true).await?;
    let mut draining: Vec<Draining> =
        services.iter().filter_map(|svc| Draining::from_service(svc, s.deployment_name.as_deref())).collect();
    // Marked by other tooling (no draining_since tag): the state parameter says when it turned draining.
    let unknown: Vec<usize> = (0..draining.len()).filter(|&i| draining[i].draining_since.is_none()).collect();
    let names: Vec<String> = unknown
        .iter()
        .map(|&i| deployment::state_parameter(&draining[i].deployment_name, &draining[i].deployment_id))
        .collect();
    let modified = parameters_turned_draining(deps, &names).await?;
    for (&i, name) in unknown.iter().zip(&names) {
        draining[i].draining_since = modified.get(name).copied();
    }
    Ok(draining)
}

/// LastModifiedDate of each named parameter whose value is `draining` (GetParameters, 10 at a time).
pub(crate) async fn parameters_turned_draining(
    deps: &Deps,
    names: &[String],
) -> Result<HashMap<String, DateTime<Utc>>, FunctionError> {
    let batches = stream::iter(names.chunks(PARAMETERS_PER_CALL))
        .map(|batch| async move {
            let out = deps
                .ssm
                .get_parameters()
                .set_names(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|err| FunctionError::aws("SSM GetParameters", &err))?;
            Ok::<_, FunctionError>(
                out.parameters()
                    .iter()
                    .filter(|p| p.value() == Some(DRAINING))
                    .filter_map(|p| Some((p.name()?.to_owned(), to_chrono(p.last_modified_date()?))))
                    .collect::<Vec<_>>(),
            )
        })
        .buffered(DESCRIBE_CONCURRENCY);
    Ok(batches.try_collect::<Vec<_>>().await?.into_iter().flatten().collect())
}

/// When the service was created; `createdAt` is optional in the API, so fall back to its oldest deployment.
pub(crate) fn service_created(service: &Service) -> Option<&aws_smithy_types::DateTime> {
    service
        .created_at()
        .or_else(|| service.deployments().iter().filter_map(|d| d.created_at()).min_by_key(|t| t.secs()))
}

/// The `state` tag of each named service now, read again just before acting on it.
pub(crate) async fn current_states(deps: &Deps, services: &[&str]) -> Result<HashMap<String, String>, FunctionError> {
    let names: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
    let described = ecs::describe_services(&deps.ecs, &deps.settings.cluster, &names, true).await?;
    Ok(described
        .iter()
        .filter(|svc| svc.status() == Some("ACTIVE"))
        .filter_map(|svc| {
            Some((svc.service_name()?.to_owned(), deployment::tag(svc, "state").unwrap_or("").to_owned()))
        })
        .collect())
}
