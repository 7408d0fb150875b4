//! `incident-restart-service`: restarts what a target names.
//!
//! - `ecs_service`: `UpdateService(forceNewDeployment=true)`, a rolling restart, unless the primary
//!   deployment is already rolling out and started less than the cooldown ago, or another invocation
//!   claimed the restart within the cooldown (409: no restart storm; see [`lock`]).
//! - `ec2_instances`: `RebootInstances` for the configured instances that are running; the others are
//!   reported as skipped.

pub mod lock;

use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use aws_sdk_ecs::types::Deployment;
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shared::action::{Failure, Outcome, PlannedCall, run_action, target_name, unsupported_target};
use shared::aws::to_chrono;
use shared::config::{Ec2InstancesTarget, EcsServiceTarget, Target, TargetConfig};
use shared::contract::{ActionKind, ActionRequest, ActionResponse};
use shared::ecs::{self, ServiceRef};
use shared::{ConfigError, FunctionError};

pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);
const MAX_COOLDOWN_SECONDS: u64 = 24 * 3600;

/// Built once per cold start in `main`.
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub targets: TargetConfig,
    /// `RESTART_COOLDOWN_SECONDS`: a rollout or restart claim younger than this is not restarted again.
    /// 0 turns both guards off.
    pub cooldown: Duration,
    /// `RESTART_LOCK_PREFIX`: the SSM path under which restart claims are written.
    pub lock_prefix: String,
}

/// `RESTART_COOLDOWN_SECONDS`, default 300, at most a day.
pub fn cooldown_from_env() -> Result<Duration, ConfigError> {
    let Ok(text) = std::env::var("RESTART_COOLDOWN_SECONDS") else { return Ok(DEFAULT_COOLDOWN) };
    match text.trim().parse::<u64>() {
        Ok(seconds) if seconds <= MAX_COOLDOWN_SECONDS => Ok(Duration::from_secs(seconds)),
        _ => Err(ConfigError::InvalidEnv {
            name: "RESTART_COOLDOWN_SECONDS",
            problem: format!("{text:?} is not a whole number of seconds from 0 to {MAX_COOLDOWN_SECONDS}"),
        }),
    }
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    Ok(run_action(event, ActionKind::RestartService, |request, _, _| restart(request, deps)).await)
}

async fn restart(request: ActionRequest, deps: &Deps) -> Result<Outcome, Failure> {
    let name = target_name(&request);
    match deps.targets.get(name)? {
        Target::EcsService(target) => restart_ecs_service(deps, target, &request).await,
        Target::Ec2Instances(target) => reboot_instances(deps, target, request.dry_run).await,
        other => {
            Err(unsupported_target(ActionKind::RestartService, name, other, &["ecs_service", "ec2_instances"]).into())
        }
    }
}

/// The facts about a deployment the restart-storm guard needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    pub rollout_state: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub desired: i32,
    pub running: i32,
}

impl From<&Deployment> for DeploymentView {
    fn from(d: &Deployment) -> Self {
        Self {
            id: d.id().unwrap_or_default().to_owned(),
            status: d.status().unwrap_or_default().to_owned(),
            rollout_state: d.rollout_state().map(|s| s.as_str().to_owned()),
            created_at: d.created_at().map(to_chrono),
            desired: d.desired_count(),
            running: d.running_count(),
        }
    }
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
    let rolling_out = match primary.rollout_state.as_deref() {
        Some(state) => state == "IN_PROGRESS",
        // Without rollout state (external controllers), an older deployment still active or missing
        // tasks means the rollout has not finished.
        None => deployments.iter().any(|d| d.status == "ACTIVE") || primary.running < primary.desired,
    };
    let started = primary.created_at?;
    let recent = now.signed_duration_since(started).to_std().map_or(true, |age| age < cooldown);
    (rolling_out && recent).then_some(primary)
}

async fn restart_ecs_service(
    deps: &Deps,
    target: &EcsServiceTarget,
    request: &ActionRequest,
) -> Result<Outcome, Failure> {
    let service_ref = ServiceRef::new(&target.cluster, &target.service);
    let resource = format!("ECS service {}/{}", target.cluster, target.service);
    let service = ecs::describe_service(&deps.ecs, &service_ref).await?;
    let deployments: Vec<DeploymentView> = service.deployments().iter().map(DeploymentView::from).collect();
    if let Some(primary) = rollout_in_progress(&deployments, Utc::now(), deps.cooldown) {
        let since = primary.created_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        return Err(FunctionError::Conflict(format!(
            "restart already in progress since {since} (deployment {} of {resource} is rolling out; cooldown {} s)",
            primary.id,
            deps.cooldown.as_secs()
        ))
        .into());
    }
    let claim = (!deps.cooldown.is_zero()).then(|| lock::claim_name(&deps.lock_prefix, &service_ref));
    let before = json!({
        "deploymentId": deployments.iter().find(|d| d.status == "PRIMARY").map(|d| d.id.clone()),
        "taskDefinition": service.task_definition(),
    });
    if request.dry_run {
        if let Some(name) = &claim
            && let Some(held) = lock::current(&deps.ssm, name, deps.cooldown).await?
        {
            return Err(held.conflict(&resource, deps.cooldown).into());
        }
        let call = PlannedCall::new(
            "ECS UpdateService",
            json!({"cluster": target.cluster, "service": target.service, "forceNewDeployment": true}),
        );
        return Ok(Outcome {
            message: format!("Dry run: would restart {resource} with a new deployment"),
            resource,
            after: before.clone(),
            details: json!({
                "cluster": target.cluster, "service": target.service,
                "currentDeploymentId": before["deploymentId"], "taskDefinition": before["taskDefinition"],
                "plannedCalls": [call],
            }),
            before,
        });
    }
    if let Some(name) = &claim {
        let holder = format!("incident {}", request.incident_id);
        if let Err(held) = lock::claim(&deps.ssm, name, &holder, deps.cooldown).await? {
            return Err(held.conflict(&resource, deps.cooldown).into());
        }
    }
    let updated = match ecs::force_new_deployment(&deps.ecs, &service_ref).await {
        Ok(updated) => updated,
        Err(err) => {
            if let Some(name) = &claim {
                lock::release(&deps.ssm, name).await;
            }
            return Err(err.into());
        }
    };
    let new_primary = updated.deployments().iter().find(|d| d.status() == Some("PRIMARY"));
    let after = json!({
        "deploymentId": new_primary.and_then(Deployment::id),
        "taskDefinition": updated.task_definition(),
    });
    Ok(Outcome {
        message: format!(
            "Service {} restart initiated: new deployment {}",
            target.service,
            after["deploymentId"].as_str().unwrap_or("(unknown)")
        ),
        resource,
        details: json!({
            "cluster": target.cluster, "service": target.service,
            "deploymentId": after["deploymentId"], "previousDeploymentId": before["deploymentId"],
            "taskDefinition": after["taskDefinition"],
        }),
        before,
        after,
    })
}

/// Which of the configured instances can be rebooted now, and which are skipped with their state.
pub fn split_running(states: &[(String, String)]) -> (Vec<&str>, Vec<Value>) {
    let mut running = Vec::new();
    let mut skipped = Vec::new();
    for (id, state) in states {
        if state == InstanceStateName::Running.as_str() {
            running.push(id.as_str());
        } else {
            skipped.push(json!({"instanceId": id, "state": state}));
        }
    }
    (running, skipped)
}

async fn reboot_instances(deps: &Deps, target: &Ec2InstancesTarget, dry_run: bool) -> Result<Outcome, Failure> {
    let resource = format!("EC2 instances {}", target.instance_ids.join(", "));
    let out = deps.ec2.describe_instances().set_instance_ids(Some(target.instance_ids.clone())).send().await.map_err(
        |err| match err.as_service_error().and_then(|e| e.meta().code()) {
            Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed") => FunctionError::ResourceNotFound {
                kind: "EC2 instance",
                id: err.as_service_error().and_then(|e| e.meta().message()).unwrap_or_default().to_owned(),
            },
            _ => FunctionError::aws("EC2 DescribeInstances", &err),
        },
    )?;
    let mut states: Vec<(String, String)> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            let state = i.state().and_then(|s| s.name()).map_or("unknown", |n| n.as_str());
            (i.instance_id().unwrap_or_default().to_owned(), state.to_owned())
        })
        .collect();
    // Keep the configured order, so reports read the same way every time.
    states.sort_by_key(|(id, _)| target.instance_ids.iter().position(|c| c == id));
    let (running, skipped) = split_running(&states);
    let before: Value = states.iter().map(|(id, state)| (id.clone(), Value::from(state.clone()))).collect();
    if running.is_empty() {
        return Err(
            FunctionError::Conflict(format!("none of {resource} is running; nothing to reboot ({before})")).into()
        );
    }
    let call = PlannedCall::new("EC2 RebootInstances", json!({"instanceIds": running}));
    if dry_run {
        return Ok(Outcome {
            message: format!("Dry run: would reboot {} running instance(s), skip {}", running.len(), skipped.len()),
            resource,
            after: before.clone(),
            before,
            details: json!({"rebooting": running, "skipped": skipped, "plannedCalls": [call]}),
        });
    }
    deps.ec2
        .reboot_instances()
        .set_instance_ids(Some(running.iter().map(|s| (*s).to_owned()).collect()))
        .send()
        .await
        .map_err(|err| FunctionError::aws("EC2 RebootInstances", &err))?;
    Ok(Outcome {
        message: format!("Reboot initiated for {} instance(s); {} skipped", running.len(), skipped.len()),
        resource,
        after: json!({"rebooted": running}),
        before,
        details: json!({"rebooted": running, "skipped": skipped}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(status: &str, rollout: Option<&str>, age_secs: i64, now: DateTime<Utc>) -> DeploymentView {
        DeploymentView {
            id: format!("ecs-svc/{status}"),
            status: status.into(),
            rollout_state: rollout.map(str::to_owned),
            created_at: Some(now - chrono::Duration::seconds(age_secs)),
            desired: 2,
            running: 2,
        }
    }

    #[test]
    fn a_young_rollout_blocks_a_restart() {
        let now = Utc::now();
        let d = [deployment("PRIMARY", Some("IN_PROGRESS"), 60, now)];
        assert_eq!(rollout_in_progress(&d, now, DEFAULT_COOLDOWN).map(|d| d.id.as_str()), Some("ecs-svc/PRIMARY"));
    }

    #[test]
    fn a_finished_or_old_rollout_does_not() {
        let now = Utc::now();
        assert!(
            rollout_in_progress(&[deployment("PRIMARY", Some("COMPLETED"), 60, now)], now, DEFAULT_COOLDOWN).is_none()
        );
        assert!(
            rollout_in_progress(&[deployment("PRIMARY", Some("IN_PROGRESS"), 301, now)], now, DEFAULT_COOLDOWN)
                .is_none()
        );
        assert!(
            rollout_in_progress(&[deployment("PRIMARY", Some("IN_PROGRESS"), 1, now)], now, Duration::ZERO).is_none()
        );
        assert!(rollout_in_progress(&[], now, DEFAULT_COOLDOWN).is_none());
    }

    #[test]
    fn without_rollout_state_an_active_old_deployment_means_rolling_out() {
        let now = Utc::now();
        let d = [deployment("PRIMARY", None, 30, now), deployment("ACTIVE", None, 900, now)];
        assert!(rollout_in_progress(&d, now, DEFAULT_COOLDOWN).is_some());
        let d = [deployment("PRIMARY", None, 30, now)];
        assert!(rollout_in_progress(&d, now, DEFAULT_COOLDOWN).is_none());
    }

    #[test]
    fn only_running_instances_are_rebooted() {
        let states = [
            ("i-1".to_owned(), "running".to_owned()),
            ("i-2".to_owned(), "stopped".to_owned()),
            ("i-3".to_owned(), "running".to_owned()),
        ];
        let (running, skipped) = split_running(&states);
        assert_eq!(running, ["i-1", "i-3"]);
        assert_eq!(skipped, [json!({"instanceId": "i-2", "state": "stopped"})]);
    }
}
