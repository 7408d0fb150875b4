//! `fluidity-reaper`: the last phase of draining, run by EventBridge every few minutes.
//!
//! One record per draining service goes through these phases:
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

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_sdk_ecs::types::Service;
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ForwardActionConfig, Rule, TargetGroupTuple};
use chrono::{DateTime, Utc};
use fluidity_names::service::{self as deployment, DRAINING};
use futures::{StreamExt, TryStreamExt, stream};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::aws::{LazyClient, to_chrono};
use shared::ecs::{self, DESCRIBE_CONCURRENCY, ServiceRef};
use shared::frame::run_lifecycle;
use shared::iam::{Permission, arn};
use shared::settings::{Settings, invalid};
use shared::{ConfigError, FunctionError};

/// GetMetricData takes at most 500 queries per call.
pub const METRIC_QUERIES_PER_CALL: usize = 500;
/// GetParameters takes at most 10 names per call.
pub const PARAMETERS_PER_CALL: usize = 10;
/// DeleteParameters takes at most 10 names per call.
const DELETE_PARAMETERS_BATCH: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct ReaperSettings {
    /// `CLUSTER` (required).
    pub cluster: String,
    /// `DEPLOYMENT_NAME`: only this deployment name's services are managed; unset, every service
    /// whose tags and name agree (`svc-<deployment_name>-<deployment_id>`).
    pub deployment_name: Option<String>,
    /// `LISTENER_ARN`: the ALB listener whose rules forward to the deployments' target groups.
    pub listener_arn: Option<String>,
    /// `CONSEC` (3): periods in a row with ShutdownReady = 1.
    pub consec: u32,
    /// `PERIOD` (300): seconds per period, a multiple of 60.
    pub period: i32,
    /// `MIN_AGE_SEC` (120): a service younger than this (since creation) is never retired.
    pub min_age: Duration,
    /// `MAX_AGE_HR` (48): a service draining for longer than this is retired without metrics.
    pub max_age: Duration,
    /// Services handled at once.
    pub concurrency: usize,
}

impl ReaperSettings {
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            deployment_name: None,
            listener_arn: None,
            consec: 3,
            period: 300,
            min_age: Duration::from_secs(120),
            max_age: Duration::from_secs(48 * 3600),
            concurrency: 16,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&Settings::from_env())
    }

    pub fn from_settings(settings: &Settings<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let cluster = settings.required("CLUSTER")?;
        ecs::validate_name("CLUSTER", &cluster).map_err(|e| invalid("CLUSTER", e.to_string()))?;
        let mut s = Self::new(cluster);
        s.deployment_name = settings.parsed("DEPLOYMENT_NAME", |name| {
            deployment::valid_id(name)
                .then(|| name.to_owned())
                .ok_or_else(|| format!("{name:?} is not a deployment name"))
        })?;
        s.listener_arn = settings.optional("LISTENER_ARN");
        s.consec = settings.whole("CONSEC", s.consec, 1..=100)?;
        // CloudWatch accepts only multiples of 60 for standard-resolution metrics, and says so only at
        // query time; refusing at init names the problem before the first run.
        s.period = settings
            .parsed("PERIOD", |text| {
                text.parse::<i32>()
                    .ok()
                    .filter(|p| *p > 0 && p % 60 == 0 && *p <= 86_400)
                    .ok_or_else(|| format!("{text:?} must be a positive multiple of 60 seconds, at most 86400"))
            })?
            .unwrap_or(s.period);
        s.min_age = Duration::from_secs_f64(settings.number("MIN_AGE_SEC", s.min_age.as_secs_f64(), 0.0..=86_400.0)?);
        let max_age_hours = settings.number("MAX_AGE_HR", s.max_age.as_secs_f64() / 3600.0, 0.001..=24.0 * 365.0)?;
        s.max_age = Duration::from_secs_f64(max_age_hours * 3600.0);
        Ok(s)
    }
}

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

/// What the counts and ages alone say about a draining service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    CleanUp,
    Retire(String),
    Wait(String),
    /// Only the tasks' ShutdownReady metrics can tell.
    CheckTasks,
}

fn age(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    since.map_or(Duration::ZERO, |t| now.signed_duration_since(t).to_std().unwrap_or_default())
}

/// Phase 2: the verdict from counts and ages. MIN_AGE counts from the service's creation, MAX_AGE
/// from when draining began (from creation only when nothing says when draining began).
pub fn classify(d: &Draining, now: DateTime<Utc>, s: &ReaperSettings) -> Verdict {
    if d.desired == 0 && d.running == 0 {
        return Verdict::CleanUp;
    }
    let created = age(d.created, now);
    if created < s.min_age {
        return Verdict::Wait(format!("too young: {} s old, MIN_AGE is {} s", created.as_secs(), s.min_age.as_secs()));
    }
    if d.desired == 0 {
        return Verdict::Wait(format!("retired; waiting for {} running task(s) to stop", d.running));
    }
    if d.running == 0 {
        return Verdict::Retire("no running tasks".to_owned());
    }
    let (drained, from) = match d.draining_since {
        Some(since) => (age(Some(since), now), "draining for"),
        None => (created, "draining start unknown (no draining_since tag or state parameter); created"),
    };
    if drained >= s.max_age {
        return Verdict::Retire(format!(
            "MAX_AGE exceeded: {from} {} s ago, MAX_AGE is {} s",
            drained.as_secs(),
            s.max_age.as_secs()
        ));
    }
    Verdict::CheckTasks
}

/// A task is ready when its newest CONSEC period values are all 1. Fewer datapoints than CONSEC
/// (a missing period) is not ready.
pub fn task_ready(values_newest_first: &[f64], consec: u32) -> bool {
    let consec = consec as usize;
    values_newest_first.len() >= consec && values_newest_first[..consec].iter().all(|v| *v >= 1.0)
}

/// Phase 4: the verdict once the tasks have answered.
pub fn settle(total: usize, ready: usize, consec: u32) -> Verdict {
    if total > 0 && ready == total {
        Verdict::Retire(format!("all {total} task(s) ShutdownReady for {consec} periods"))
    } else {
        Verdict::Wait(format!("{ready} of {total} task(s) ready"))
    }
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

/// Phase 1: the draining services of the managed deployment name, and when each began draining.
async fn discover(deps: &Deps) -> Result<Vec<Draining>, FunctionError> {
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
async fn parameters_turned_draining(
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

/// Phase 3a: the task ids of each service to check, a bounded number of services at a time.
async fn load_tasks(
    deps: &Deps,
    draining: &[Draining],
    to_check: &[usize],
) -> Vec<(usize, Result<Vec<String>, FunctionError>)> {
    let s = &deps.settings;
    stream::iter(to_check.iter().copied())
        .map(|i| async move {
            let target = ServiceRef::new(&s.cluster, &draining[i].service);
            let tasks = ecs::running_service_tasks(&deps.ecs, &target).await;
            let ids =
                tasks.map(|tasks| tasks.iter().filter_map(|t| t.task_arn()).map(|a| task_id(a).to_owned()).collect());
            (i, ids)
        })
        .buffer_unordered(s.concurrency)
        .collect()
        .await
}

/// Phase 3b: for each checked service, (tasks, tasks ready) or why it could not be told; every
/// task's ShutdownReady in as few GetMetricData calls as the 500-query limit allows.
async fn load_readiness(
    deps: &Deps,
    draining: &[Draining],
    tasks: &[(usize, Result<Vec<String>, FunctionError>)],
    now: i64,
) -> Vec<(usize, Result<(usize, usize), FunctionError>)> {
    let all: Vec<(usize, &str)> = tasks
        .iter()
        .filter_map(|(i, r)| r.as_ref().ok().map(|ids| (i, ids)))
        .flat_map(|(i, ids)| ids.iter().map(move |id| (*i, id.as_str())))
        .collect();
    let batches: Vec<Result<Vec<bool>, FunctionError>> = stream::iter(all.chunks(METRIC_QUERIES_PER_CALL))
        .map(|batch| async move {
            let queries: Vec<(&str, &str, &str)> = batch
                .iter()
                .map(|(i, id)| (draining[*i].deployment_name.as_str(), draining[*i].deployment_id.as_str(), *id))
                .collect();
            let values = shutdown_ready_values(deps, &queries, now).await?;
            Ok(values.iter().map(|series| task_ready(series, deps.settings.consec)).collect())
        })
        .buffered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    let mut counts: HashMap<usize, Result<(usize, usize), FunctionError>> = HashMap::new();
    for (i, result) in tasks {
        counts.insert(*i, result.as_ref().map(|ids| (ids.len(), 0)).map_err(Clone::clone));
    }
    for (batch, result) in all.chunks(METRIC_QUERIES_PER_CALL).zip(batches) {
        for (n, (i, _)) in batch.iter().enumerate() {
            let entry = counts.entry(*i).or_insert(Ok((0, 0)));
            match (&result, entry) {
                (Ok(ready), Ok((_, count))) => *count += usize::from(ready[n]),
                (Err(err), entry) => *entry = Err(err.clone()),
                (Ok(_), Err(_)) => {}
            }
        }
    }
    counts.into_iter().collect()
}

/// The `state` tag of each named service now, read again just before acting on it.
async fn current_states(deps: &Deps, services: &[&str]) -> Result<HashMap<String, String>, FunctionError> {
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

/// Phase 5: carries out one service's verdict.
async fn act(
    deps: &Deps,
    d: &Draining,
    verdict: Result<Verdict, String>,
    state_now: Option<&str>,
    dry_run: bool,
) -> ServiceReport {
    let (action, reason) = match verdict {
        Err(err) => (ServiceAction::Failed, err),
        Ok(Verdict::Wait(reason)) => (ServiceAction::Waiting, reason),
        Ok(Verdict::CheckTasks) => (ServiceAction::Waiting, "tasks not checked".to_owned()),
        Ok(Verdict::Retire(_) | Verdict::CleanUp) if state_now != Some(DRAINING) => {
            (ServiceAction::Skipped, changed_during_run(state_now))
        }
        Ok(Verdict::Retire(reason)) => match retire(deps, d, dry_run).await {
            Ok(()) => (ServiceAction::Retired, reason),
            Err(err) => (ServiceAction::Failed, err.to_string()),
        },
        Ok(Verdict::CleanUp) => match clean_up(deps, d, dry_run).await {
            Ok(Cleanup::Done(done)) => (ServiceAction::CleanedUp, done),
            Ok(Cleanup::Held(why)) => (ServiceAction::Waiting, why),
            Ok(Cleanup::Skipped(state)) => (ServiceAction::Skipped, changed_during_run(state.as_deref())),
            Err(err) => (ServiceAction::Failed, err.to_string()),
        },
    };
    let reason = if dry_run && matches!(action, ServiceAction::Retired | ServiceAction::CleanedUp) {
        format!("dry run, nothing changed: {reason}")
    } else {
        reason
    };
    ServiceReport {
        service: d.service.clone(),
        deployment_id: d.deployment_id.clone(),
        action,
        reason,
        draining_since: d.draining_since.map(deployment::format_since),
    }
}

fn changed_during_run(state: Option<&str>) -> String {
    match state {
        Some(state) if !state.is_empty() => format!("marked {state} during this run; left alone"),
        _ => "no longer draining (untagged or deleted) during this run; left alone".to_owned(),
    }
}

fn report(s: &ReaperSettings, dry_run: bool, mut reports: Vec<ServiceReport>) -> Result<ReaperReport, FunctionError> {
    reports.sort_by(|a, b| a.service.cmp(&b.service));
    let count = |a: ServiceAction| reports.iter().filter(|r| r.action == a).count();
    let report = ReaperReport {
        cluster: s.cluster.clone(),
        dry_run,
        draining: reports.len(),
        retired: count(ServiceAction::Retired),
        cleaned_up: count(ServiceAction::CleanedUp),
        waiting: count(ServiceAction::Waiting),
        skipped: count(ServiceAction::Skipped),
        failed: count(ServiceAction::Failed),
        services: reports,
    };
    tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "reaper run");
    if report.failed == 0 {
        return Ok(report);
    }
    // A function error, so the schedule's Errors alarm fires; the others were still handled.
    Err(FunctionError::PartialFailure {
        what: "draining services",
        total: report.draining,
        summary: format!(
            "{} retired, {} cleaned up, {} waiting, {} skipped",
            report.retired, report.cleaned_up, report.waiting, report.skipped
        ),
        failures: report
            .services
            .iter()
            .filter(|r| r.action == ServiceAction::Failed)
            .map(|r| format!("{}: {}", r.service, r.reason))
            .collect(),
    })
}

/// When the service was created; `createdAt` is optional in the API, so fall back to its oldest deployment.
fn service_created(service: &Service) -> Option<&aws_smithy_types::DateTime> {
    service
        .created_at()
        .or_else(|| service.deployments().iter().filter_map(|d| d.created_at()).min_by_key(|t| t.secs()))
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// ShutdownReady (Minimum per period, newest first) for each (deployment_name, deployment_id, task_id),
/// in the order given; at most [`METRIC_QUERIES_PER_CALL`] per call, following pages.
async fn shutdown_ready_values(
    deps: &Deps,
    tasks: &[(&str, &str, &str)],
    now: i64,
) -> Result<Vec<Vec<f64>>, FunctionError> {
    let s = &deps.settings;
    let queries = tasks.iter().enumerate().map(|(n, (name, id, task))| {
        let dims = [("deployment_name", name), ("deployment_id", id), ("task_id", task)]
            .map(|(k, v)| Dimension::builder().name(k).value(*v).build());
        let metric = Metric::builder()
            .namespace("App/Drain")
            .metric_name("ShutdownReady")
            .set_dimensions(Some(dims.to_vec()))
            .build();
        // Minimum: a single 0 within a period means the task was not ready for all of it.
        let stat = MetricStat::builder().metric(metric).period(s.period).stat("Minimum").build();
        MetricDataQuery::builder().id(format!("t{n}")).metric_stat(stat).return_data(true).build()
    });
    let window = i64::from(s.period) * i64::from(s.consec);
    let mut pages = deps
        .cloudwatch
        .get_metric_data()
        .start_time(aws_smithy_types::DateTime::from_secs(now - window))
        .end_time(aws_smithy_types::DateTime::from_secs(now))
        .scan_by(ScanBy::TimestampDescending)
        .set_metric_data_queries(Some(queries.collect()))
        .into_paginator()
        .send();
    let mut values = vec![Vec::new(); tasks.len()];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| FunctionError::aws("CloudWatch GetMetricData", &err))?;
        for result in page.metric_data_results() {
            let index = result.id().and_then(|id| id.strip_prefix('t')).and_then(|n| n.parse::<usize>().ok());
            if let Some(series) = index.and_then(|n| values.get_mut(n)) {
                series.extend(result.values());
            }
        }
    }
    Ok(values)
}

async fn retire(deps: &Deps, d: &Draining, dry_run: bool) -> Result<(), FunctionError> {
    if dry_run || d.desired == 0 {
        return Ok(());
    }
    ecs::set_desired_count(&deps.ecs, &ServiceRef::new(&deps.settings.cluster, &d.service), 0).await.map(drop)
}

/// How a cleanup ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cleanup {
    Done(String),
    /// A target group something else still uses: the service stays, and the next run tries again.
    Held(String),
    /// The state tag changed before DeleteService.
    Skipped(Option<String>),
}

/// One change to a listener rule that forwards to a draining service's target group.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleChange {
    /// The rule forwards only to the draining target groups.
    Delete { rule_arn: String },
    /// The rule also forwards elsewhere (weighted blue/green): only the draining target groups go.
    Modify { rule_arn: String, actions: Vec<Action> },
}

/// The changes to the listener's rules that free `target_groups`, or, when the listener's default
/// action forwards to one of them, the reason nothing can be freed (a default action cannot be deleted).
pub fn plan_rule_changes(rules: &[Rule], target_groups: &[String]) -> Result<Vec<RuleChange>, String> {
    let ours = |arn: &str| target_groups.iter().any(|t| t == arn);
    let mut changes = Vec::new();
    for rule in rules {
        let forwarded: Vec<&str> = rule.actions().iter().flat_map(forward_targets).collect();
        if !forwarded.iter().any(|tg| ours(tg)) {
            continue;
        }
        let rule_arn = rule.rule_arn().unwrap_or_default().to_owned();
        if rule.is_default().unwrap_or(false) {
            let held: Vec<&str> = forwarded.into_iter().filter(|tg| ours(tg)).collect();
            return Err(format!(
                "target group {} is the listener's default action ({rule_arn}); change the default action \
                 and the cleanup resumes on the next run",
                held.join(", ")
            ));
        }
        let mut emptied = false;
        let actions: Vec<Action> = rule
            .actions()
            .iter()
            .map(|action| {
                let targets = forward_targets(action);
                if !targets.iter().any(|tg| ours(tg)) {
                    return action.clone();
                }
                let kept: Vec<TargetGroupTuple> = forward_tuples(action)
                    .into_iter()
                    .filter(|t| !ours(t.target_group_arn().unwrap_or_default()))
                    .collect();
                emptied |= kept.is_empty();
                let stickiness = action.forward_config().and_then(|f| f.target_group_stickiness_config()).cloned();
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .set_order(action.order())
                    .forward_config(
                        ForwardActionConfig::builder()
                            .set_target_groups(Some(kept))
                            .set_target_group_stickiness_config(stickiness)
                            .build(),
                    )
                    .build()
            })
            .collect();
        changes.push(if emptied { RuleChange::Delete { rule_arn } } else { RuleChange::Modify { rule_arn, actions } });
    }
    Ok(changes)
}

/// The target groups a forward action sends to (through `TargetGroupArn` or its forward config).
fn forward_targets(action: &Action) -> Vec<&str> {
    if action.r#type() != Some(&ActionTypeEnum::Forward) {
        return Vec::new();
    }
    let mut targets: Vec<&str> = action
        .forward_config()
        .map(|f| f.target_groups().iter().filter_map(TargetGroupTuple::target_group_arn).collect())
        .unwrap_or_default();
    if let Some(tg) = action.target_group_arn()
        && !targets.contains(&tg)
    {
        targets.push(tg);
    }
    targets
}

/// The weighted target groups of a forward action; a plain `TargetGroupArn` is one of weight 1.
fn forward_tuples(action: &Action) -> Vec<TargetGroupTuple> {
    match action.forward_config().map(ForwardActionConfig::target_groups).filter(|t| !t.is_empty()) {
        Some(tuples) => tuples.to_vec(),
        None => action
            .target_group_arn()
            .map(|tg| TargetGroupTuple::builder().target_group_arn(tg).build())
            .into_iter()
            .collect(),
    }
}

/// Listener rules → target groups → SSM parameters → the service; "not found" is done at every step.
async fn clean_up(deps: &Deps, d: &Draining, dry_run: bool) -> Result<Cleanup, FunctionError> {
    let changes = match &deps.settings.listener_arn {
        Some(listener) if !d.target_groups.is_empty() => {
            match plan_rule_changes(&listener_rules(deps, listener).await?, &d.target_groups) {
                Ok(changes) => changes,
                Err(held) => return Ok(Cleanup::Held(held)),
            }
        }
        _ => Vec::new(),
    };
    let path = deployment::parameter_path(&d.deployment_name, &d.deployment_id);
    let parameters = parameters_under(deps, &path).await?;
    let (deleted, modified) = changes.iter().fold((0, 0), |(del, m), c| match c {
        RuleChange::Delete { .. } => (del + 1, m),
        RuleChange::Modify { .. } => (del, m + 1),
    });
    let summary = format!(
        "{deleted} listener rule(s), {} target group(s), {} parameter(s), the service{}",
        d.target_groups.len(),
        parameters.len(),
        if modified > 0 { format!("; {modified} shared rule(s) now forward only elsewhere") } else { String::new() }
    );
    if dry_run {
        return Ok(Cleanup::Done(format!("would delete {summary}")));
    }
    for change in &changes {
        apply_rule_change(deps, change).await?;
    }
    for tg in &d.target_groups {
        match deps.elb.delete_target_group().target_group_arn(tg).send().await {
            Ok(_) => {}
            Err(err) if err.as_service_error().and_then(|e| e.meta().code()) == Some("TargetGroupNotFound") => {}
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
                let why = err.as_service_error().and_then(|e| e.meta().message()).unwrap_or("in use").to_owned();
                return Ok(Cleanup::Held(format!(
                    "target group {tg} is still in use ({why}); the cleanup resumes once nothing forwards to it"
                )));
            }
            Err(err) => return Err(FunctionError::aws("ELBv2 DeleteTargetGroup", &err)),
        }
    }
    for names in parameters.chunks(DELETE_PARAMETERS_BATCH) {
        deps.ssm
            .delete_parameters()
            .set_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|err| FunctionError::aws("SSM DeleteParameters", &err))?;
    }
    // The last, irreversible step: one more look at the tag, in case of a rollback.
    let state = current_states(deps, &[&d.service]).await?.remove(&d.service);
    if state.as_deref() != Some(DRAINING) {
        return Ok(Cleanup::Skipped(state));
    }
    match deps.ecs.delete_service().cluster(&deps.settings.cluster).service(&d.service).force(true).send().await {
        Ok(_) => {}
        Err(err) if err.as_service_error().is_some_and(|e| e.is_service_not_found_exception()) => {}
        Err(err) => return Err(FunctionError::aws("ECS DeleteService", &err)),
    }
    Ok(Cleanup::Done(format!("deleted {summary}")))
}

async fn apply_rule_change(deps: &Deps, change: &RuleChange) -> Result<(), FunctionError> {
    let result = match change {
        RuleChange::Delete { rule_arn } => {
            deps.elb.delete_rule().rule_arn(rule_arn).send().await.map(drop).map_err(|err| {
                if err.as_service_error().is_some_and(|e| e.is_rule_not_found_exception()) {
                    None
                } else {
                    Some(FunctionError::aws("ELBv2 DeleteRule", &err))
                }
            })
        }
        RuleChange::Modify { rule_arn, actions } => {
            deps.elb.modify_rule().rule_arn(rule_arn).set_actions(Some(actions.clone())).send().await.map(drop).map_err(
                |err| {
                    if err.as_service_error().is_some_and(|e| e.is_rule_not_found_exception()) {
                        None
                    } else {
                        Some(FunctionError::aws("ELBv2 ModifyRule", &err))
                    }
                },
            )
        }
    };
    match result {
        Ok(()) | Err(None) => Ok(()),
        Err(Some(err)) => Err(err),
    }
}

/// Every rule of the listener, its default rule included (DescribeRules, every page).
async fn listener_rules(deps: &Deps, listener: &str) -> Result<Vec<Rule>, FunctionError> {
    let mut rules = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = deps
            .elb
            .describe_rules()
            .listener_arn(listener)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|err| FunctionError::aws("ELBv2 DescribeRules", &err))?;
        rules.extend(out.rules().iter().cloned());
        marker = out.next_marker().map(str::to_owned);
        if marker.is_none() {
            return Ok(rules);
        }
    }
}

async fn parameters_under(deps: &Deps, path: &str) -> Result<Vec<String>, FunctionError> {
    let mut pages = deps.ssm.get_parameters_by_path().path(path).recursive(true).into_paginator().send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| FunctionError::aws("SSM GetParametersByPath", &err))?;
        names.extend(page.parameters().iter().filter_map(|p| p.name().map(str::to_owned)));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn settings() -> ReaperSettings {
        ReaperSettings::new("c")
    }

    fn draining(desired: i32, running: i32, created_ago: Duration, draining_ago: Option<Duration>) -> Draining {
        let now = Utc::now();
        let ago = |d: Duration| now - chrono::Duration::from_std(d).unwrap();
        Draining {
            service: "svc-shop-a1".into(),
            deployment_name: "shop".into(),
            deployment_id: "a1".into(),
            desired,
            running,
            created: Some(ago(created_ago)),
            draining_since: draining_ago.map(ago),
            target_groups: Vec::new(),
        }
    }

    fn verdict(d: &Draining) -> Verdict {
        classify(d, Utc::now(), &settings())
    }

    #[test]
    fn age_guards() {
        let minute = Duration::from_secs(60);
        assert!(matches!(verdict(&draining(2, 2, minute, Some(minute))), Verdict::Wait(r) if r.contains("too young")));
        assert_eq!(verdict(&draining(2, 2, 10 * minute, Some(minute))), Verdict::CheckTasks);
        assert!(
            matches!(verdict(&draining(2, 2, 50 * HOUR, Some(49 * HOUR))), Verdict::Retire(r) if r.contains("MAX_AGE"))
        );
        assert!(matches!(verdict(&draining(2, 0, 10 * minute, None)), Verdict::Retire(r) if r.contains("no running")));
    }

    #[test]
    fn max_age_counts_from_draining_not_from_creation() {
        // A deployment that ran for a week and was marked draining a minute ago gets its drain wait.
        let d = draining(2, 2, 7 * 24 * HOUR, Some(Duration::from_secs(60)));
        assert_eq!(verdict(&d), Verdict::CheckTasks);
        // With nothing saying when draining began, creation is all there is, and the reason says so.
        let d = draining(2, 2, 49 * HOUR, None);
        assert!(matches!(verdict(&d), Verdict::Retire(r) if r.contains("draining start unknown")));
    }

    #[test]
    fn zero_and_zero_is_cleanup_whatever_the_age() {
        assert_eq!(verdict(&draining(0, 0, Duration::ZERO, None)), Verdict::CleanUp);
        assert!(matches!(verdict(&draining(0, 3, HOUR, Some(HOUR))), Verdict::Wait(r) if r.contains("waiting for 3")));
    }

    #[test]
    fn consec_counts_the_newest_periods() {
        assert!(task_ready(&[1.0, 1.0, 1.0], 3));
        assert!(task_ready(&[1.0, 1.0, 1.0, 0.0], 3), "older periods do not matter");
        assert!(!task_ready(&[0.0, 1.0, 1.0, 1.0], 3), "newest first: the latest period is not ready");
        assert!(!task_ready(&[1.0, 1.0], 3), "a missing period is not ready");
        assert!(!task_ready(&[], 1));
    }

    #[test]
    fn settle_needs_every_task() {
        assert!(matches!(settle(3, 3, 2), Verdict::Retire(r) if r == "all 3 task(s) ShutdownReady for 2 periods"));
        assert_eq!(settle(3, 2, 2), Verdict::Wait("2 of 3 task(s) ready".into()));
        assert_eq!(settle(0, 0, 2), Verdict::Wait("0 of 0 task(s) ready".into()));
    }

    fn env(vars: &[(&str, &str)]) -> Result<ReaperSettings, String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ReaperSettings::from_settings(&Settings::with(|name: &str| vars.get(name).cloned())).map_err(|e| e.to_string())
    }

    #[test]
    fn settings_refuse_what_cloudwatch_would_refuse_naming_the_variable() {
        let ok = env(&[("CLUSTER", "prod"), ("PERIOD", "120"), ("CONSEC", "2")]).unwrap();
        assert_eq!((ok.period, ok.consec), (120, 2));
        for (name, value) in [("PERIOD", "90"), ("PERIOD", "0"), ("PERIOD", "-60"), ("PERIOD", "60.5")] {
            let err = env(&[("CLUSTER", "prod"), (name, value)]).unwrap_err();
            assert!(err.contains("PERIOD") && err.contains("multiple of 60"), "{value}: {err}");
        }
        for value in ["0", "2.5", "-1", "three"] {
            let err = env(&[("CLUSTER", "prod"), ("CONSEC", value)]).unwrap_err();
            assert!(err.contains("CONSEC") && err.contains("whole number"), "{value}: {err}");
        }
        assert!(env(&[]).unwrap_err().contains("CLUSTER"));
    }

    fn forward(tgs: &[(&str, i32)]) -> Action {
        let tuples = tgs.iter().map(|(tg, w)| TargetGroupTuple::builder().target_group_arn(*tg).weight(*w).build());
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .order(1)
            .forward_config(ForwardActionConfig::builder().set_target_groups(Some(tuples.collect())).build())
            .build()
    }

    fn rule(arn: &str, default: bool, actions: Vec<Action>) -> Rule {
        Rule::builder().rule_arn(arn).is_default(default).set_actions(Some(actions)).build()
    }

    #[test]
    fn a_rule_only_to_the_draining_group_is_deleted_and_a_shared_one_keeps_the_other_group() {
        let fixed = Action::builder().r#type(ActionTypeEnum::FixedResponse).build();
        let plain = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn("tg-a").build();
        let rules = [
            rule("r-only-a", false, vec![plain]),
            rule("r-a-and-b", false, vec![forward(&[("tg-a", 90), ("tg-b", 10)])]),
            rule("r-only-b", false, vec![forward(&[("tg-b", 1)])]),
            rule("default", true, vec![fixed]),
        ];
        let changes = plan_rule_changes(&rules, &["tg-a".to_owned()]).unwrap();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0], RuleChange::Delete { rule_arn: "r-only-a".into() });
        let RuleChange::Modify { rule_arn, actions } = &changes[1] else { panic!("{changes:?}") };
        assert_eq!(rule_arn, "r-a-and-b");
        let kept = actions[0].forward_config().unwrap().target_groups();
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].target_group_arn(), kept[0].weight()), (Some("tg-b"), Some(10)));
        assert_eq!(actions[0].order(), Some(1));
    }

    #[test]
    fn a_default_action_to_the_draining_group_holds_it() {
        let rules = [rule("default", true, vec![forward(&[("tg-a", 1)])])];
        let held = plan_rule_changes(&rules, &["tg-a".to_owned()]).unwrap_err();
        assert!(held.contains("tg-a is the listener's default action"), "{held}");
    }
}
