//! `fluidity-mark-deployment`: the first phase of draining, run by the deployer: marks a deployment active or draining.
//!
//! Marks the new deployment `active` (SSM `/apps/<name>/<id>/state` and service tags
//! `deployment_name`, `deployment_id`, `state`) and every other service of the same deployment name
//! `draining`, with a `draining_since` tag saying when draining began (the reaper's MAX_AGE counts
//! from it). Idempotent: what already holds is left alone and reported as unchanged, and a service
//! already draining keeps the time it began. Only the services named `svc-<name>-*` are described,
//! which is all the deployer's policy allows in a cluster shared with other services.

use aws_sdk_ecs::types::Tag;
use chrono::Utc;
use fluidity_names::service::{self as deployment, ACTIVE, DRAINING};
use serde::Serialize;
use shared::FunctionError;
use shared::aws::to_chrono;
use shared::ecs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkRequest {
    pub cluster: String,
    pub deployment_name: String,
    pub deployment_id: String,
    pub dry_run: bool,
}

impl MarkRequest {
    pub fn validate(&self) -> Result<(), FunctionError> {
        ecs::validate_name("--cluster", &self.cluster)?;
        for (field, value) in [("--name", &self.deployment_name), ("--id", &self.deployment_id)] {
            if !deployment::valid_id(value) {
                return Err(FunctionError::invalid(
                    field,
                    format!("{value:?}: use 1-100 letters, digits, '-', '_' or '.'"),
                ));
            }
        }
        Ok(())
    }
}

/// One deployment's marking: its parameter, its service, the state before and whether anything changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Marking {
    pub deployment_id: String,
    pub service: String,
    pub parameter: String,
    pub state: &'static str,
    pub previous_state: Option<String>,
    /// For a draining deployment: when draining began (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draining_since: Option<String>,
    pub changed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkReport {
    pub dry_run: bool,
    pub active: Marking,
    pub draining: Vec<Marking>,
    pub changed: usize,
}

/// The deployer's permissions (the reaper stack's DeployerPolicy): the deployment name's services
/// and state parameters.
pub fn permissions() -> Vec<shared::iam::Permission> {
    use shared::iam::{Permission, arn};
    let services = arn("ecs", "service/${CLUSTER}/svc-${DEPLOYMENT_NAME}-*");
    let parameters = arn("ssm", "parameter/apps/${DEPLOYMENT_NAME}/*");
    let mut declared = vec![ecs::list_services_permission("${CLUSTER}")];
    declared.extend(["ecs:DescribeServices", "ecs:TagResource"].map(|a| Permission::new(a, services.clone())));
    declared.extend(["ssm:GetParameter", "ssm:PutParameter"].map(|a| Permission::new(a, parameters.clone())));
    declared
}

pub async fn mark(
    ecs_client: &aws_sdk_ecs::Client,
    ssm: &aws_sdk_ssm::Client,
    req: &MarkRequest,
) -> Result<MarkReport, FunctionError> {
    req.validate()?;
    let arns = ecs::list_services(ecs_client, &req.cluster).await?;
    let arns = deployment::with_prefix(arns, &deployment::service_prefix(Some(&req.deployment_name)));
    let services = ecs::describe_services(ecs_client, &req.cluster, &arns, true).await?;
    let new_name = deployment::service_name(&req.deployment_name, &req.deployment_id);
    let new_service = services
        .iter()
        .find(|s| s.service_name() == Some(new_name.as_str()) && s.status() == Some("ACTIVE"))
        .ok_or_else(|| FunctionError::ServiceNotFound { cluster: req.cluster.clone(), service: new_name.clone() })?;
    let active = set_state(ecs_client, ssm, req, new_service, &req.deployment_id, ACTIVE).await?;
    let mut draining = Vec::new();
    for service in services.iter().filter(|s| s.status() == Some("ACTIVE")) {
        let Some(id) = deployment::deployment_of(service, &req.deployment_name) else { continue };
        if id != req.deployment_id {
            draining.push(set_state(ecs_client, ssm, req, service, &id, DRAINING).await?);
        }
    }
    let changed = usize::from(active.changed) + draining.iter().filter(|m| m.changed).count();
    Ok(MarkReport { dry_run: req.dry_run, active, draining, changed })
}

async fn set_state(
    ecs_client: &aws_sdk_ecs::Client,
    ssm: &aws_sdk_ssm::Client,
    req: &MarkRequest,
    service: &aws_sdk_ecs::types::Service,
    deployment_id: &str,
    state: &'static str,
) -> Result<Marking, FunctionError> {
    let parameter = deployment::state_parameter(&req.deployment_name, deployment_id);
    let (previous, modified) = match ssm.get_parameter().name(&parameter).send().await {
        Ok(out) => {
            let p = out.parameter();
            (p.and_then(|p| p.value()).map(str::to_owned), p.and_then(|p| p.last_modified_date()).map(to_chrono))
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => (None, None),
        Err(err) => return Err(FunctionError::aws("SSM GetParameter", &err)),
    };
    // Draining keeps the moment it began: from the tag, else from when the parameter turned draining.
    let since = (state == DRAINING).then(|| {
        let already = deployment::tag(service, "state") == Some(DRAINING) || previous.as_deref() == Some(DRAINING);
        let began = deployment::draining_since(service)
            .filter(|_| already)
            .or_else(|| modified.filter(|_| previous.as_deref() == Some(DRAINING)))
            .unwrap_or_else(Utc::now);
        deployment::format_since(began)
    });
    let mut wanted_tags =
        vec![("deployment_name", req.deployment_name.as_str()), ("deployment_id", deployment_id), ("state", state)];
    if let Some(since) = &since {
        wanted_tags.push((deployment::DRAINING_SINCE_TAG, since.as_str()));
    }
    let tags_hold = wanted_tags.iter().all(|(k, v)| deployment::tag(service, k) == Some(*v));
    let changed = previous.as_deref() != Some(state) || !tags_hold;
    if changed && !req.dry_run {
        ssm.put_parameter()
            .name(&parameter)
            .value(state)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|err| FunctionError::aws("SSM PutParameter", &err))?;
        let tags = wanted_tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
        ecs_client
            .tag_resource()
            .resource_arn(service.service_arn().unwrap_or_default())
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|err| FunctionError::aws("ECS TagResource", &err))?;
    }
    Ok(Marking {
        deployment_id: deployment_id.to_owned(),
        service: service.service_name().unwrap_or_default().to_owned(),
        parameter,
        state,
        previous_state: previous,
        draining_since: since,
        changed,
    })
}
