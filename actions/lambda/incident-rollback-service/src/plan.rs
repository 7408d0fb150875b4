//! rollback_service's decisions (pure) and its answers.

use aws_sdk_ecs::types::StopServiceDeploymentStopType;
use chrono::{DateTime, Utc};
use incident_core::action::Applied;
use incident_core::config::EcsServiceTarget;
use incident_core::plan::{Change, Plan};
use incident_core::state::State;
use incident_deployments::recent::minutes;
use incident_deployments::{Deployment, Recent, Revision, short_task_definition};
use serde::Serialize;
use shared::FunctionError;
use shared::ecs;
use shared::iam::{Permission, arn};

pub type RollbackPlan = Plan<RollbackChange, RollbackDetails>;

/// One change rollback_service makes. Serialised, it is the call's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum RollbackChange {
    /// ECS StopServiceDeployment with stopType ROLLBACK: ECS rolls a deployment that is still
    /// rolling out back to the revision that served before it.
    StopServiceDeployment { service_deployment_arn: String, stop_type: &'static str },
    /// ECS UpdateService with the task definition that served before the last deployment.
    UpdateService { cluster: String, service: String, task_definition: String },
}

impl RollbackChange {
    fn stop(deployment: &Deployment) -> Self {
        Self::StopServiceDeployment {
            service_deployment_arn: deployment.arn.clone(),
            stop_type: StopServiceDeploymentStopType::Rollback.as_str(),
        }
    }
}

impl Change for RollbackChange {
    fn call(&self) -> &'static str {
        match self {
            Self::StopServiceDeployment { .. } => "ECS StopServiceDeployment",
            Self::UpdateService { .. } => "ECS UpdateService",
        }
    }

    fn permission(&self) -> Option<Permission> {
        Some(match self {
            // Granted on the deployment; its ARN carries cluster and service.
            Self::StopServiceDeployment { service_deployment_arn, .. } => {
                let path = service_deployment_arn.split_once(":service-deployment/").map_or("*", |(_, p)| p);
                Permission::new("ecs:StopServiceDeployment", arn("ecs", &format!("service-deployment/{path}")))
            }
            Self::UpdateService { cluster, service, .. } => ecs::update_service_permission(cluster, service),
        })
    }
}

/// What rollback_service's answer says: the deployment rolled back, and both revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackDetails {
    pub cluster: String,
    pub service: String,
    /// The service deployment rolled back (its id and ARN), its status and when it was created.
    pub deployment_id: String,
    pub deployment_arn: String,
    pub deployment_status: String,
    pub deployment_created_at: String,
    /// The revision that served before it: what the service goes back to.
    pub from_revision: Revision,
    /// The revision it deployed: what the service leaves.
    pub to_revision: Option<Revision>,
    /// The task definition the service ran when observed.
    pub current_task_definition: Option<String>,
    /// Once applied: the service's new primary deployment (`ecs-svc/…`), which verification follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_deployment_id: Option<String>,
}

/// The plan: stop a deployment still rolling out with rollback, go back from a completed one by
/// task definition, or say why not (409) or that nothing needs to change.
pub fn rollback(recent: &Recent, target: &EcsServiceTarget, now: DateTime<Utc>) -> Result<RollbackPlan, FunctionError> {
    let resource = format!("ECS service {}/{}", target.cluster, target.service);
    let Some(latest) = recent.latest() else { return Err(nothing_recent(recent, &resource, now)) };
    refuse_if_unsafe(recent, latest, &resource)?;
    let back_to = latest.serving_before().filter(|r| r.task_definition.is_some()).ok_or_else(|| {
        FunctionError::Conflict(format!(
            "the revision that served before deployment {} of {resource} is not known (it lists no source \
             revision with a task definition): roll back by hand",
            latest.id()
        ))
    })?;
    let td = back_to.task_definition.clone().unwrap_or_default();
    let details = details(recent, latest, back_to);
    let before = deployment_state(recent.primary.as_ref().map(|p| p.id.clone()), recent.task_definition.clone());
    let shown = short_task_definition(&td);
    if !latest.in_progress() && recent.task_definition.as_deref() == Some(td.as_str()) {
        let message = format!(
            "No change: {resource} already runs {shown}, the task definition that served before deployment {}",
            latest.id()
        );
        return Ok(Plan::unchanged(resource, before, message, details));
    }
    let (change, intent) = if latest.in_progress() {
        (RollbackChange::stop(latest), format!("stop deployment {} of {resource}, rolling it back", latest.id()))
    } else {
        let (cluster, service) = (target.cluster.clone(), target.service.clone());
        let update = RollbackChange::UpdateService { cluster, service, task_definition: td.clone() };
        (update, format!("roll {resource} back to {shown}, which served before deployment {}", latest.id()))
    };
    Ok(Plan {
        intent: format!("{intent} ({})", latest.change()),
        done: format!("Rolled back {resource} to {shown} (deployment {}: {})", latest.id(), latest.change()),
        no_change: String::new(),
        changes: vec![change],
        details,
        before,
        after: deployment_state(None, Some(td)),
        resource,
    })
}

/// A rollback that would undo a rollback, add to one under way, or guess is refused.
fn refuse_if_unsafe(recent: &Recent, latest: &Deployment, resource: &str) -> Result<(), FunctionError> {
    let named = format!("deployment {} of {resource} ({})", latest.id(), latest.change());
    let refusal = if !latest.status_known() {
        format!("{named} has a status this function does not know ({}): look at it by hand", latest.status.as_str())
    } else if latest.stopping() {
        format!("{named} is already {}: watch it rather than act again", latest.status.as_str())
    } else if recent.with_returns().first().is_some_and(|(_, back)| *back) {
        format!(
            "the last {named} already went back to an earlier revision (a rollback, ours or a human's); rolling \
             it back would redeploy what it left: nothing to roll back"
        )
    } else if let Some(serving) = latest.mixed_sources() {
        format!("{named} started while {} were all serving: which to go back to is a human's call", serving.join(", "))
    } else {
        return Ok(());
    };
    Err(FunctionError::Conflict(refusal))
}

/// The 409 when nothing was deployed within the horizon: it names the last deployment DescribeServices
/// lists, and its age, so that a human looks elsewhere for the cause.
fn nothing_recent(recent: &Recent, resource: &str, now: DateTime<Utc>) -> FunctionError {
    let horizon = recent.horizon.as_secs() / 60;
    let last = match &recent.primary {
        Some(p) => format!(
            "the last, {} ({}), was created {} ago",
            p.id,
            p.task_definition.as_deref().map_or("(unknown)", short_task_definition),
            p.created_at.map_or_else(|| "an unknown time".to_owned(), |at| minutes(now - at))
        ),
        None => "the service lists no deployment".to_owned(),
    };
    FunctionError::Conflict(format!(
        "nothing recent to roll back: no deployment of {resource} in the last {horizon} min \
         (DEPLOYMENT_HORIZON_MINUTES); {last}: look elsewhere for the cause"
    ))
}

fn details(recent: &Recent, latest: &Deployment, back_to: &Revision) -> RollbackDetails {
    RollbackDetails {
        cluster: recent.cluster.clone(),
        service: recent.service.clone(),
        deployment_id: latest.id().to_owned(),
        deployment_arn: latest.arn.clone(),
        deployment_status: latest.status.as_str().to_owned(),
        deployment_created_at: latest.created_at.to_rfc3339(),
        from_revision: back_to.clone(),
        to_revision: latest.target.clone(),
        current_task_definition: recent.task_definition.clone(),
        new_deployment_id: None,
    }
}

/// The state a rollback leaves: the service's new primary deployment, on the earlier task definition.
pub fn deployment_state(deployment_id: Option<String>, task_definition: Option<String>) -> State {
    State::EcsDeployment { deployment_id, task_definition }
}

/// Whether applying the plan needs a human's approval: going back from a completed deployment
/// changes code in production, unless the target allows it unattended. Stopping a rollout still
/// under way is what ECS's circuit breaker would do, and needs none.
pub fn approval_needed(plan: &RollbackPlan, target: &EcsServiceTarget) -> Option<String> {
    let update = plan.changes.iter().any(|c| matches!(c, RollbackChange::UpdateService { .. }));
    (update && !target.rollback_unattended).then(|| {
        format!(
            "rolling {} back from a completed deployment deploys other code, and the target map does not \
             set rollbackUnattended for it",
            plan.resource
        )
    })
}

/// The answer once the call was made. `primary` is the service's new primary deployment (an
/// UpdateService's); a stopped rollout is rolled back by ECS within that same deployment, so then
/// the state is the task definition to come back to, which verification waits for.
pub fn rolled_back(plan: &RollbackPlan, primary: Option<(String, Option<String>)>) -> Applied<RollbackDetails> {
    let mut details = plan.details.clone();
    let (message, after) = match primary {
        Some((id, td)) => {
            details.new_deployment_id = Some(id.clone());
            (format!("{}: new deployment {id}", plan.done), deployment_state(Some(id), td))
        }
        None => (
            format!("{}: ECS is rolling deployment {} back", plan.done, details.deployment_id),
            deployment_state(None, details.from_revision.task_definition.clone()),
        ),
    };
    Applied { message, after, details }
}

#[cfg(test)]
mod tests;
