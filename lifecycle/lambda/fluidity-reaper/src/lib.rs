//! `fluidity-reaper`: the last phase of draining, run by EventBridge every few minutes.
//!
//! One record per draining service goes through these phases, one module each:
//! 1. **discover**: ListServices, only the ARNs named `svc-<name>-*`, DescribeServices with tags in
//!    batches of 10; the services tagged `state=draining` of the managed deployment name, with when
//!    draining began (the `draining_since` tag, else the state parameter's LastModifiedDate).
//! 2. **classify** (pure): clean up at desired 0 and running 0; wait while younger than MIN_AGE;
//!    retire with no running task, or once draining for MAX_AGE; else ask the tasks.
//! 3. **load tasks** and **load readiness**: the tasks of those services, and each task's
//!    `ShutdownReady` (Minimum per PERIOD, newest first), 500 queries per GetMetricData call.
//! 4. **settle** (pure): retire when every task was ready in each of the last CONSEC periods.
//! 5. **act**: the state tag is read again first, so a rollback that marked a deployment active
//!    during the run wins; then UpdateService(0) without waiting, or, on a later run, the cleanup:
//!    listener rules (a rule that also forwards elsewhere loses only this target group), target
//!    groups no rule still uses, SSM parameters, and DeleteService after one more look at the tag.
//!    "Not found" counts as done at every step, so a half-finished cleanup completes next time.
//!
//! It never touches a service tagged `active`, nor one outside the managed deployment name. One
//! service's failure is reported and does not stop the others.

mod act;
mod classify;
mod cleanup;
mod discover;
mod readiness;
mod settings;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::FunctionError;
use shared::aws::LazyClient;
use shared::ecs;
use shared::frame::run_lifecycle;
use shared::iam::{Permission, arn};

use act::{act, report};
pub use classify::{Verdict, classify, settle, task_ready};
pub use cleanup::{RuleChange, plan_rule_changes};
use discover::{current_states, discover};
use readiness::{load_readiness, load_tasks};

pub use discover::Draining;
pub use settings::ReaperSettings;

/// GetMetricData takes at most 500 queries per call.
pub const METRIC_QUERIES_PER_CALL: usize = 500;
/// GetParameters takes at most 10 names per call.
pub const PARAMETERS_PER_CALL: usize = 10;
/// DeleteParameters takes at most 10 names per call.
const DELETE_PARAMETERS_BATCH: usize = 10;

/// Built once per cold start in `main`.
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    // Built on first use: a run with nothing draining (most scheduled runs) calls only ECS.
    pub cloudwatch: LazyClient<aws_sdk_cloudwatch::Client>,
    pub elb: LazyClient<aws_sdk_elasticloadbalancingv2::Client>,
    pub ssm: LazyClient<aws_sdk_ssm::Client>,
    pub settings: ReaperSettings,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaperRequest {
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceAction {
    Retired,
    CleanedUp,
    Waiting,
    /// Marked something other than draining while the run was under way: left alone.
    Skipped,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReport {
    pub service: String,
    pub deployment_id: String,
    pub action: ServiceAction,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draining_since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaperReport {
    pub cluster: String,
    pub dry_run: bool,
    pub draining: usize,
    pub retired: usize,
    pub cleaned_up: usize,
    pub waiting: usize,
    pub skipped: usize,
    pub failed: usize,
    pub services: Vec<ServiceReport>,
}

/// The reaper's permissions: the managed deployments' services, tasks, metrics, listener rules,
/// target groups and parameters.
pub fn permissions() -> Vec<Permission> {
    let cluster = "${CLUSTER}";
    let services = arn("ecs", "service/${CLUSTER}/svc-${DEPLOYMENT_NAME}-*");
    let parameters = arn("ssm", "parameter/apps/${DEPLOYMENT_NAME}/*");
    let rules = arn("elasticloadbalancing", "listener-rule/app/*");
    let mut declared = vec![
        ecs::list_services_permission(cluster),
        ecs::list_tasks_permission(cluster),
        ecs::describe_tasks_permission(cluster),
    ];
    declared.extend(
        ["ecs:DescribeServices", "ecs:UpdateService", "ecs:DeleteService"]
            .map(|a| Permission::new(a, services.clone())),
    );
    // GetMetricData and the ELBv2 describe calls have no resource-level permissions.
    declared.extend(["cloudwatch:GetMetricData", "elasticloadbalancing:DescribeRules"].map(Permission::any));
    declared.extend(
        ["elasticloadbalancing:DeleteRule", "elasticloadbalancing:ModifyRule"]
            .map(|a| Permission::new(a, rules.clone())),
    );
    declared
        .push(Permission::new("elasticloadbalancing:DeleteTargetGroup", arn("elasticloadbalancing", "targetgroup/*")));
    declared.extend(
        ["ssm:GetParameters", "ssm:GetParametersByPath", "ssm:DeleteParameters"]
            .map(|a| Permission::new(a, parameters.clone())),
    );
    declared
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, FunctionError> {
    run_lifecycle(event, "reaper", |request: ReaperRequest, _source| reap(request.dry_run, deps)).await
}

pub async fn reap(dry_run: bool, deps: &Deps) -> Result<ReaperReport, FunctionError> {
    reap_at(dry_run, deps, Utc::now()).await
}

/// One run as of `now`: ages are measured and the metric window ends there (tests run the reaper
/// "minutes later" this way instead of waiting).
pub async fn reap_at(dry_run: bool, deps: &Deps, now: DateTime<Utc>) -> Result<ReaperReport, FunctionError> {
    let s = &deps.settings;
    let draining = discover(deps).await?;
    let mut verdicts: Vec<Result<Verdict, String>> = draining.iter().map(|d| Ok(classify(d, now, s))).collect();
    let to_check: Vec<usize> = (0..draining.len()).filter(|&i| verdicts[i] == Ok(Verdict::CheckTasks)).collect();
    let tasks = load_tasks(deps, &draining, &to_check).await;
    let readiness = load_readiness(deps, &draining, &tasks, now.timestamp()).await;
    for (i, result) in readiness {
        verdicts[i] = result.map(|(total, ready)| settle(total, ready, s.consec)).map_err(|e| e.to_string());
    }
    let acting: Vec<&str> = draining
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| matches!(v, Ok(Verdict::Retire(_) | Verdict::CleanUp)))
        .map(|(d, _)| d.service.as_str())
        .collect();
    let states = current_states(deps, &acting).await?;
    let reports: Vec<ServiceReport> = stream::iter(draining.iter().zip(verdicts))
        .map(|(d, verdict)| act(deps, d, verdict, states.get(&d.service).map(String::as_str), dry_run))
        .buffer_unordered(s.concurrency)
        .collect()
        .await;
    report(s, dry_run, reports)
}
