//! `incident-restart-service`: restarts what a target names, observed, planned and applied.
//!
//! - `ecs_service`: `UpdateService(forceNewDeployment=true)`, a rolling restart, unless the primary
//!   deployment is already rolling out and started less than the cooldown ago, or another invocation
//!   claimed the restart within the cooldown (409: no restart storm). The claim is the ledger's
//!   (see `claim_restart`): taken just before the update, given back when the update fails.
//! - `ec2_instances`: `RebootInstances` for the configured instances that are running; the others are
//!   reported as skipped.

use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState};
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{Value, json};
use shared::aws::{LazyClient, to_chrono};
use shared::config::{Ec2InstancesTarget, EcsServiceTarget, Target, TargetConfig};
use shared::contract::{ActionKind, ActionRequest, ActionResponse};
use shared::ecs::{self, ServiceRef};
use shared::frame::action::{Failure, Outcome, run_action, unsupported_target};
use shared::ledger::{Holder, Ledger, LedgerFailure};
use shared::plan::{Change, Permission, Plan, PlanPolicy, arn, carry_out};
use shared::settings::Settings;
use shared::{ConfigError, FunctionError};

pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);
const MAX_COOLDOWN_SECONDS: u64 = 24 * 3600;

/// Built once per cold start in `main`.
pub struct Deps {
    pub ecs: LazyClient<aws_sdk_ecs::Client>,
    pub ec2: LazyClient<aws_sdk_ec2::Client>,
    pub targets: TargetConfig,
    /// `RESTART_COOLDOWN_SECONDS`: a rollout or restart claim younger than this is not restarted again.
    /// 0 turns both guards off.
    pub cooldown: Duration,
    /// Where restart claims are kept: the ledger's table; `None` when the cooldown is 0 (see [`claims`]).
    pub claims: Option<Ledger>,
    pub plans: PlanPolicy,
}

/// `RESTART_COOLDOWN_SECONDS`, default 300, at most a day.
pub fn cooldown_from_env() -> Result<Duration, ConfigError> {
    let settings = Settings::from_env();
    let seconds = settings.whole("RESTART_COOLDOWN_SECONDS", DEFAULT_COOLDOWN.as_secs(), 0..=MAX_COOLDOWN_SECONDS)?;
    Ok(Duration::from_secs(seconds))
}

/// The ledger that keeps the restart claims, which make the cooldown hold across concurrent
/// invocations: required unless the cooldown is 0.
pub fn claims(cooldown: Duration, plans: &PlanPolicy) -> Result<Option<Ledger>, ConfigError> {
    match (&plans.ledger, cooldown.is_zero()) {
        (_, true) => Ok(None),
        (Some(ledger), false) => Ok(Some(ledger.clone())),
        (None, false) => Err(ConfigError::InvalidEnv {
            name: "RESTART_COOLDOWN_SECONDS",
            problem: format!(
                "{} s needs the incident ledger (LEDGER_TABLE), which keeps the restart claim that holds the \
                 cooldown across concurrent invocations; set LEDGER_TABLE (the actions stack does), or \
                 RESTART_COOLDOWN_SECONDS=0 to restart without a cooldown",
                cooldown.as_secs()
            ),
        }),
    }
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    Ok(run_action(event, ActionKind::RestartService, &deps.plans, |request, _| restart(request, deps)).await)
}

async fn restart(request: ActionRequest, deps: &Deps) -> Result<Outcome, Failure> {
    let name = request.target_name();
    match deps.targets.get(name)? {
        Target::EcsService(target) => {
            let observed = observe_ecs(deps, target).await?;
            let plan = plan_ecs(&observed, target, Utc::now(), deps.cooldown)?;
            let holder = Holder::new(format!("incident {}", request.incident_id));
            carry_out(&request, plan, &deps.plans, |plan| apply(plan, deps, &holder)).await
        }
        Target::Ec2Instances(target) => {
            let plan = plan_ec2(&observe_ec2(deps, target).await?, target)?;
            let holder = Holder::new(format!("incident {}", request.incident_id));
            carry_out(&request, plan, &deps.plans, |plan| apply(plan, deps, &holder)).await
        }
        other => {
            Err(unsupported_target(ActionKind::RestartService, name, other, &["ecs_service", "ec2_instances"]).into())
        }
    }
}

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

/// The permissions of restart_service's observe steps and changes.
pub fn permissions() -> Vec<Permission> {
    let mut declared = own_permissions();
    // The incident ledger, which the frame writes around every invocation and which keeps the
    // restart claims (PutItem, DeleteItem).
    declared.extend(shared::ledger::Ledger::permissions(ActionKind::RestartService));
    declared
}

fn own_permissions() -> Vec<Permission> {
    let (cluster, service) = ("${cluster}", "${service}");
    let restart = RestartChange::ForceNewDeployment {
        cluster: cluster.into(),
        service: service.into(),
        force_new_deployment: true,
    };
    let reboot = RestartChange::RebootInstances { instance_ids: vec!["${instanceId}".into()] };
    let mut declared = vec![
        ecs::describe_services_permission(cluster, service),
        // DescribeInstances has no resource-level permissions.
        Permission::any("ec2:DescribeInstances"),
    ];
    declared.extend([restart, reboot].iter().filter_map(Change::permission));
    declared
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
    let recent = now.signed_duration_since(started).to_std().map_or(true, |age| age < cooldown);
    (rolling_out && recent).then_some(primary)
}

async fn observe_ecs(deps: &Deps, target: &EcsServiceTarget) -> Result<EcsObserved, FunctionError> {
    let service_ref = ServiceRef::new(&target.cluster, &target.service);
    let service = ecs::describe_service(&deps.ecs, &service_ref).await?;
    Ok(EcsObserved {
        deployments: service.deployments().iter().map(DeploymentView::from).collect(),
        task_definition: service.task_definition().map(str::to_owned),
    })
}

/// The 409 for a restart while the primary deployment is still young and rolling out.
fn rolling_out(primary: &DeploymentView, resource: &str, cooldown: Duration) -> FunctionError {
    let since = primary.created_at.map(|t| t.to_rfc3339()).unwrap_or_default();
    FunctionError::Conflict(format!(
        "restart already in progress since {since} (deployment {} of {resource} is rolling out; cooldown {} s)",
        primary.id,
        cooldown.as_secs()
    ))
}

/// A restart of the service, or a 409 while its primary deployment is still young and rolling out.
pub fn plan_ecs(
    observed: &EcsObserved,
    target: &EcsServiceTarget,
    now: DateTime<Utc>,
    cooldown: Duration,
) -> Result<Plan<RestartChange>, FunctionError> {
    let resource = format!("ECS service {}/{}", target.cluster, target.service);
    if let Some(primary) = rollout_in_progress(&observed.deployments, now, cooldown) {
        return Err(rolling_out(primary, &resource, cooldown));
    }
    let changes = vec![RestartChange::ForceNewDeployment {
        cluster: target.cluster.clone(),
        service: target.service.clone(),
        force_new_deployment: true,
    }];
    let current = observed.deployments.iter().find(|d| d.status == "PRIMARY").map(|d| d.id.clone());
    let before = json!({"deploymentId": current, "taskDefinition": observed.task_definition});
    Ok(Plan {
        intent: format!("restart {resource} with a new deployment"),
        done: format!("Service {} restart initiated", target.service),
        no_change: String::new(),
        details: json!({
            "cluster": target.cluster, "service": target.service,
            "currentDeploymentId": current, "taskDefinition": observed.task_definition,
        }),
        after: before.clone(),
        before,
        changes,
        resource,
    })
}

/// Applies the changes in order; an ECS restart is claimed first, and the claim given back when the update fails.
async fn apply(plan: Plan<RestartChange>, deps: &Deps, holder: &Holder) -> Result<Outcome, Failure> {
    let mut restarted_as = None;
    for change in &plan.changes {
        match change {
            RestartChange::ForceNewDeployment { cluster, service, .. } => {
                let service = ServiceRef::new(cluster, service);
                let claimed = claim_restart(deps, &service, holder, &plan.resource).await?;
                match ecs::force_new_deployment(&deps.ecs, &service).await {
                    Ok(updated) => restarted_as = Some(updated),
                    Err(err) => {
                        if let Some((ledger, key)) = claimed {
                            ledger.release(&key, holder).await;
                        }
                        return Err(err.into());
                    }
                }
            }
            RestartChange::RebootInstances { instance_ids } => {
                let reboot = deps.ec2.reboot_instances().set_instance_ids(Some(instance_ids.clone()));
                reboot.send().await.map_err(|err| FunctionError::aws("EC2 RebootInstances", &err))?;
            }
        }
    }
    Ok(match restarted_as {
        Some(updated) => restarted(plan, &updated),
        None => rebooted(plan),
    })
}

/// The restart claim, taken in the ledger just before the update, for the cooldown: describe-then-update
/// alone is not atomic (twenty invocations can all see a quiet service before any updates it), and one
/// conditional write is. `None` when no claims are kept (cooldown 0), or the ledger is down and
/// `LEDGER_FAILURE=open`; a 409 naming the holder while another invocation holds it.
async fn claim_restart<'a>(
    deps: &'a Deps,
    service: &ServiceRef,
    holder: &Holder,
    resource: &str,
) -> Result<Option<(&'a Ledger, String)>, FunctionError> {
    let Some(ledger) = &deps.claims else { return Ok(None) };
    let key = format!("restart/{}/{}", service.cluster, service.service);
    match ledger.claim(&key, holder, deps.cooldown).await {
        Ok(Ok(())) => Ok(Some((ledger, key))),
        Ok(Err(held)) => Err(FunctionError::Conflict(format!(
            "a restart of {resource} was already started at {} by {} (cooldown {} s); not restarting again",
            held.since,
            held.holder,
            deps.cooldown.as_secs()
        ))),
        Err(FunctionError::LedgerUnavailable { problem, .. }) if ledger.settings.failure == LedgerFailure::Open => {
            tracing::warn!("restarting without a claim (LEDGER_FAILURE=open): {problem}");
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// The answer once the service is restarting: its new deployment.
fn restarted(mut plan: Plan<RestartChange>, updated: &aws_sdk_ecs::types::Service) -> Outcome {
    let deployment = updated.deployments().iter().find(|d| d.status() == Some("PRIMARY")).and_then(Deployment::id);
    let task_definition = updated.task_definition();
    plan.done = format!("{}: new deployment {}", plan.done, deployment.unwrap_or("(unknown)"));
    plan.after = json!({"deploymentId": deployment, "taskDefinition": task_definition});
    let previous = plan.before["deploymentId"].clone();
    plan.details = json!({"cluster": plan.details["cluster"].clone(), "service": plan.details["service"].clone()});
    plan.as_done(
        json!({"deploymentId": deployment, "previousDeploymentId": previous, "taskDefinition": task_definition}),
    )
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

/// Each configured instance's state, in the configured order.
async fn observe_ec2(deps: &Deps, target: &Ec2InstancesTarget) -> Result<Vec<(String, String)>, FunctionError> {
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
    Ok(states)
}

/// A reboot of the running instances; the others are skipped, and none running is a 409.
pub fn plan_ec2(
    states: &[(String, String)],
    target: &Ec2InstancesTarget,
) -> Result<Plan<RestartChange>, FunctionError> {
    let resource = format!("EC2 instances {}", target.instance_ids.join(", "));
    let (running, skipped) = split_running(states);
    let before: Value = states.iter().map(|(id, state)| (id.clone(), Value::from(state.clone()))).collect();
    if running.is_empty() {
        return Err(FunctionError::Conflict(format!("none of {resource} is running; nothing to reboot ({before})")));
    }
    let (n, m) = (running.len(), skipped.len());
    Ok(Plan {
        intent: format!("reboot {n} running instance(s), skip {m}"),
        done: format!("Reboot initiated for {n} instance(s); {m} skipped"),
        no_change: String::new(),
        after: json!({"rebooted": running}),
        details: json!({"rebooting": running, "skipped": skipped}),
        changes: vec![RestartChange::RebootInstances {
            instance_ids: running.iter().map(|s| (*s).to_owned()).collect(),
        }],
        before,
        resource,
    })
}

/// The answer once the reboot was asked for: what was rebooted, what skipped.
fn rebooted(mut plan: Plan<RestartChange>) -> Outcome {
    let rebooted = plan.details["rebooting"].clone();
    let skipped = plan.details["skipped"].clone();
    plan.details = json!({});
    plan.as_done(json!({"rebooted": rebooted, "skipped": skipped}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(status: &str, rollout: Option<&str>, age_secs: i64, now: DateTime<Utc>) -> DeploymentView {
        DeploymentView {
            id: format!("ecs-svc/{status}"),
            status: status.into(),
            rollout_state: rollout.map(DeploymentRolloutState::from),
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

    fn target() -> EcsServiceTarget {
        let config =
            shared::testing::targets(json!({"api": {"kind": "ecs_service", "cluster": "prod", "service": "api",
            "desiredCount": {"low": 2, "medium": 2, "high": 3, "critical": 4}, "maxCount": 6}}));
        match config.get("api").unwrap() {
            Target::EcsService(target) => target.clone(),
            _ => unreachable!("an ecs_service target"),
        }
    }

    #[test]
    fn a_quiet_service_is_restarted_with_one_update() {
        let now = Utc::now();
        let observed = EcsObserved {
            deployments: vec![deployment("PRIMARY", Some("COMPLETED"), 3_600, now)],
            task_definition: Some("td:1".into()),
        };
        let plan = plan_ecs(&observed, &target(), now, DEFAULT_COOLDOWN).unwrap();
        let restart = RestartChange::ForceNewDeployment {
            cluster: "prod".into(),
            service: "api".into(),
            force_new_deployment: true,
        };
        assert_eq!(plan.changes, [restart]);
        assert_eq!(plan.before, json!({"deploymentId": "ecs-svc/PRIMARY", "taskDefinition": "td:1"}));
    }

    #[test]
    fn a_cooldown_needs_the_ledger_that_keeps_the_claims() {
        assert!(claims(Duration::ZERO, &PlanPolicy::default()).unwrap().is_none());
        let err = claims(DEFAULT_COOLDOWN, &PlanPolicy::default()).unwrap_err().to_string();
        assert!(err.contains("RESTART_COOLDOWN_SECONDS") && err.contains("LEDGER_TABLE"), "{err}");
    }

    #[test]
    fn no_running_instance_is_a_conflict() {
        let target = Ec2InstancesTarget { instance_ids: vec!["i-1".into()] };
        let err = plan_ec2(&[("i-1".into(), "stopped".into())], &target).unwrap_err();
        assert_eq!(err.status(), 409);
    }
}
