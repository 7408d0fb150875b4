//! restart_service's decisions (pure) and its answers.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState};
use chrono::{DateTime, Utc};
use incident_core::action::Applied;
use incident_core::config::{Ec2InstancesTarget, EcsServiceTarget};
use incident_core::plan::{Change, Plan};
use incident_core::state::State;
use serde::Serialize;
use shared::FunctionError;
use shared::aws::to_chrono;
use shared::ecs;
use shared::iam::{Permission, arn};

use crate::deployment_state;

pub type RestartPlan = Plan<RestartChange, RestartDetails>;

/// One change restart_service makes. Serialised, it is the call's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum RestartChange {
    /// ECS UpdateService with forceNewDeployment: a rolling restart of the same task definition.
    ForceNewDeployment { cluster: String, service: String, force_new_deployment: bool },
    /// EC2 RebootInstances of the running instances.
    RebootInstances { instance_ids: Vec<String> },
}

impl Change for RestartChange {
    fn call(&self) -> &'static str {
        match self {
            Self::ForceNewDeployment { .. } => "ECS UpdateService",
            Self::RebootInstances { .. } => "EC2 RebootInstances",
        }
    }

    fn permission(&self) -> Option<Permission> {
        Some(match self {
            Self::ForceNewDeployment { cluster, service, .. } => ecs::update_service_permission(cluster, service),
            Self::RebootInstances { instance_ids } => {
                let id = instance_ids.first().map_or("*", String::as_str);
                Permission::new("ec2:RebootInstances", arn("ec2", &format!("instance/{id}")))
            }
        })
    }
}

/// What restart_service's answer says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum RestartDetails {
    /// The service before the restart.
    EcsPlanned {
        cluster: String,
        service: String,
        current_deployment_id: Option<String>,
        task_definition: Option<String>,
    },
    /// The service restarting: its new deployment.
    EcsRestarted {
        cluster: String,
        service: String,
        deployment_id: Option<String>,
        previous_deployment_id: Option<String>,
        task_definition: Option<String>,
    },
    /// The running instances to reboot, and those skipped with their state.
    Ec2Planned {
        rebooting: Vec<String>,
        skipped: Vec<SkippedInstance>,
    },
    Ec2Rebooted {
        rebooted: Vec<String>,
        skipped: Vec<SkippedInstance>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedInstance {
    pub instance_id: String,
    pub state: String,
}

/// The facts about a deployment the restart-storm guard needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    pub rollout_state: Option<DeploymentRolloutState>,
    pub created_at: Option<DateTime<Utc>>,
    pub desired: i32,
    pub running: i32,
}

impl From<&Deployment> for DeploymentView {
    fn from(d: &Deployment) -> Self {
        Self {
            id: d.id().unwrap_or_default().to_owned(),
            status: d.status().unwrap_or_default().to_owned(),
            rollout_state: d.rollout_state().cloned(),
            created_at: d.created_at().map(to_chrono),
            desired: d.desired_count(),
            running: d.running_count(),
        }
    }
}

/// What restart_service sees of an ECS service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsObserved {
    pub deployments: Vec<DeploymentView>,
    pub task_definition: Option<String>,
}

/// When the primary deployment is still rolling out and started less than `cooldown` before `now`,
/// returns it: a restart now would only stack another rollout on top. A rollout stuck for longer
/// than the cooldown may be restarted, since that is often what fixes it.
pub fn rollout_in_progress(
    deployments: &[DeploymentView],
    now: DateTime<Utc>,
    cooldown: Duration,
) -> Option<&DeploymentView> {
    let primary = deployments.iter().find(|d| d.status == "PRIMARY")?;
    let rolling_out = match &primary.rollout_state {
        Some(state) => *state == DeploymentRolloutState::InProgress,
        // Without rollout state (external controllers), an older deployment still active or missing
        // tasks means the rollout has not finished.
        None => deployments.iter().any(|d| d.status == "ACTIVE") || primary.running < primary.desired,
    };
    let started = primary.created_at?;
    // A rollout that started after `now` (another invocation's, a moment ago) is of age zero.
    let age = now.signed_duration_since(started).to_std().unwrap_or(Duration::ZERO);
    let recent = age < cooldown;
    (rolling_out && recent).then_some(primary)
}

/// A restart of the service, or a 409 while its primary deployment is still young and rolling out.
pub fn ecs(
    observed: &EcsObserved,
    target: &EcsServiceTarget,
    now: DateTime<Utc>,
    cooldown: Duration,
) -> Result<RestartPlan, FunctionError> {
    let resource = format!("ECS service {}/{}", target.cluster, target.service);
    if let Some(primary) = rollout_in_progress(&observed.deployments, now, cooldown) {
        let since = primary.created_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        return Err(FunctionError::Conflict(format!(
            "restart already in progress since {since} (deployment {} of {resource} is rolling out; cooldown {} s)",
            primary.id,
            cooldown.as_secs()
        )));
    }
    let current = observed.deployments.iter().find(|d| d.status == "PRIMARY").map(|d| d.id.clone());
    let state = deployment_state(current.as_deref(), observed.task_definition.as_deref());
    let (cluster, service) = (target.cluster.clone(), target.service.clone());
    Ok(Plan {
        intent: format!("restart {resource} with a new deployment"),
        done: format!("Service {service} restart initiated"),
        no_change: String::new(),
        changes: vec![RestartChange::ForceNewDeployment {
            cluster: cluster.clone(),
            service: service.clone(),
            force_new_deployment: true,
        }],
        details: RestartDetails::EcsPlanned {
            cluster,
            service,
            current_deployment_id: current,
            task_definition: observed.task_definition.clone(),
        },
        after: state.clone(),
        before: state,
        resource,
    })
}

/// The answer once the service is restarting: its new deployment.
pub fn restarted(plan: &RestartPlan, updated: &aws_sdk_ecs::types::Service) -> Applied<RestartDetails> {
    let deployment = ecs::primary_deployment(updated).and_then(Deployment::id);
    let task_definition = updated.task_definition();
    let (cluster, service, previous) = match &plan.details {
        RestartDetails::EcsPlanned { cluster, service, current_deployment_id, .. } => {
            (cluster.clone(), service.clone(), current_deployment_id.clone())
        }
        _ => Default::default(),
    };
    Applied {
        message: format!("{}: new deployment {}", plan.done, deployment.unwrap_or("(unknown)")),
        after: deployment_state(deployment, task_definition),
        details: RestartDetails::EcsRestarted {
            cluster,
            service,
            deployment_id: deployment.map(str::to_owned),
            previous_deployment_id: previous,
            task_definition: task_definition.map(str::to_owned),
        },
    }
}

/// Which of the configured instances can be rebooted now, and which are skipped with their state.
pub fn split_running(states: &[(String, String)]) -> (Vec<String>, Vec<SkippedInstance>) {
    let mut running = Vec::new();
    let mut skipped = Vec::new();
    for (id, state) in states {
        if state == InstanceStateName::Running.as_str() {
            running.push(id.clone());
        } else {
            skipped.push(SkippedInstance { instance_id: id.clone(), state: state.clone() });
        }
    }
    (running, skipped)
}

/// A reboot of the running instances; the others are skipped, and none running is a 409.
pub fn ec2(states: &[(String, String)], target: &Ec2InstancesTarget) -> Result<RestartPlan, FunctionError> {
    let resource = format!("EC2 instances {}", target.instance_ids.join(", "));
    let (running, skipped) = split_running(states);
    let instances: BTreeMap<String, String> = states.iter().cloned().collect();
    if running.is_empty() {
        let shown = serde_json::to_string(&instances).unwrap_or_default();
        return Err(FunctionError::Conflict(format!("none of {resource} is running; nothing to reboot ({shown})")));
    }
    let (n, m) = (running.len(), skipped.len());
    let mut after = instances.clone();
    for id in &running {
        after.insert(id.clone(), "rebooting".to_owned());
    }
    Ok(Plan {
        intent: format!("reboot {n} running instance(s), skip {m}"),
        done: format!("Reboot initiated for {n} instance(s); {m} skipped"),
        no_change: String::new(),
        before: State::Ec2Instances { instances },
        after: State::Ec2Instances { instances: after },
        changes: vec![RestartChange::RebootInstances { instance_ids: running.clone() }],
        details: RestartDetails::Ec2Planned { rebooting: running, skipped },
        resource,
    })
}

/// The answer once the reboot was asked for: what was rebooted, what skipped.
pub fn rebooted(plan: &RestartPlan) -> Applied<RestartDetails> {
    let details = match &plan.details {
        RestartDetails::Ec2Planned { rebooting, skipped } => {
            RestartDetails::Ec2Rebooted { rebooted: rebooting.clone(), skipped: skipped.clone() }
        }
        other => other.clone(),
    };
    Applied::as_planned(plan, details)
}

#[cfg(test)]
mod tests;
