//! `fluidity-reaper` (seed 004, phase 3), run by EventBridge every few minutes.
//!
//! 1. Finds the draining services: ListServices, then DescribeServices with tags in batches of 10.
//! 2. Retires a service (UpdateService desiredCount 0, without waiting) when every one of its tasks
//!    reported `ShutdownReady = 1` in each of the last CONSEC periods, when it has no running task,
//!    or when it is older than MAX_AGE; services younger than MIN_AGE wait.
//! 3. On a later run, cleans up draining services at desired 0 and running 0: the listener rules that
//!    forward to their target groups, the target groups, their SSM parameters, then DeleteService.
//!    Each step treats "not found" as done, so a half-finished cleanup completes on the next run.
//!
//! It never touches a service tagged `active`, nor one outside the managed deployment name. One
//! service's failure is reported and does not stop the others.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_sdk_ecs::types::Service;
use futures::{StreamExt, stream};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::deployment::{self, DRAINING};
use shared::ecs::{self, ServiceRef};
use shared::events::run_lifecycle;
use shared::{ConfigError, FunctionError};

/// GetMetricData takes at most 500 queries per call.
pub const METRIC_QUERIES_PER_CALL: usize = 500;

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
    /// `PERIOD` (300): seconds per period.
    pub period: i32,
    /// `MIN_AGE_SEC` (120).
    pub min_age: Duration,
    /// `MAX_AGE_HR` (48).
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
        let cluster = std::env::var("CLUSTER").map_err(|_| ConfigError::MissingEnv("CLUSTER"))?;
        ecs::validate_name("CLUSTER", &cluster)
            .map_err(|e| ConfigError::InvalidEnv { name: "CLUSTER", problem: e.to_string() })?;
        let mut s = Self::new(cluster);
        let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        s.deployment_name = optional("DEPLOYMENT_NAME");
        if let Some(name) = &s.deployment_name
            && !deployment::valid_id(name)
        {
            return Err(ConfigError::InvalidEnv {
                name: "DEPLOYMENT_NAME",
                problem: format!("{name:?} is not a deployment name"),
            });
        }
        s.listener_arn = optional("LISTENER_ARN");
        let number = |name: &'static str, min: f64, max: f64| -> Result<Option<f64>, ConfigError> {
            match optional(name) {
                None => Ok(None),
                Some(text) => {
                    text.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= min && *v <= max).map(Some).ok_or(
                        ConfigError::InvalidEnv {
                            name,
                            problem: format!("{text:?} must be a number from {min} to {max}"),
                        },
                    )
                }
            }
        };
        if let Some(v) = number("CONSEC", 1.0, 100.0)? {
            s.consec = v as u32;
        }
        if let Some(v) = number("PERIOD", 60.0, 86_400.0)? {
            s.period = v as i32;
        }
        if let Some(v) = number("MIN_AGE_SEC", 0.0, 86_400.0)? {
            s.min_age = Duration::from_secs_f64(v);
        }
        if let Some(v) = number("MAX_AGE_HR", 0.001, 24.0 * 365.0)? {
            s.max_age = Duration::from_secs_f64(v * 3600.0);
        }
        Ok(s)
    }
}

/// Built once per cold start in `main`.
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub settings: ReaperSettings,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaperRequest {
    #[serde(default)]
    pub dry_run: bool,
}

/// What the reaper decides for a draining service from its counts and age alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    CleanUp,
    Retire(String),
    Wait(String),
    /// Only the tasks' ShutdownReady metrics can tell.
    CheckTasks,
}

pub fn classify(desired: i32, running: i32, age: Duration, s: &ReaperSettings) -> Verdict {
    if desired == 0 && running == 0 {
        return Verdict::CleanUp;
    }
    if age < s.min_age {
        return Verdict::Wait(format!("too young: {} s old, MIN_AGE is {} s", age.as_secs(), s.min_age.as_secs()));
    }
    if desired == 0 {
        return Verdict::Wait(format!("retired; waiting for {running} running task(s) to stop"));
    }
    if running == 0 {
        return Verdict::Retire("no running tasks".to_owned());
    }
    if age >= s.max_age {
        return Verdict::Retire(format!(
            "MAX_AGE exceeded: {} s old, MAX_AGE is {} s",
            age.as_secs(),
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceAction {
    Retired,
    CleanedUp,
    Waiting,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReport {
    pub service: String,
    pub deployment_id: String,
    pub action: ServiceAction,
    pub reason: String,
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
    pub failed: usize,
    pub services: Vec<ServiceReport>,
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, FunctionError> {
    run_lifecycle(event, "reaper", |request: ReaperRequest, _source| reap(request.dry_run, deps)).await
}

/// A draining service of the managed deployment name, with its deployment id.
struct Draining {
    service: Service,
    deployment_name: String,
    deployment_id: String,
}

fn managed(service: Service, filter: Option<&str>) -> Option<Draining> {
    if service.status() != Some("ACTIVE") || deployment::tag(&service, "state") != Some(DRAINING) {
        return None;
    }
    let name = filter.or_else(|| deployment::tag(&service, "deployment_name"))?.to_owned();
    let id = deployment::deployment_of(&service, &name)?;
    Some(Draining { service, deployment_name: name, deployment_id: id })
}

pub async fn reap(dry_run: bool, deps: &Deps) -> Result<ReaperReport, FunctionError> {
    let s = &deps.settings;
    let arns = ecs::list_services(&deps.ecs, &s.cluster).await?;
    let services = ecs::describe_services(&deps.ecs, &s.cluster, &arns, true).await?;
    let draining: Vec<Draining> =
        services.into_iter().filter_map(|svc| managed(svc, s.deployment_name.as_deref())).collect();
    let now = chrono::Utc::now();

    // Decide from counts and age; collect the services whose tasks must be asked.
    let mut verdicts: Vec<Verdict> = draining
        .iter()
        .map(|d| {
            let age = service_created(&d.service).map_or(Duration::ZERO, |t| {
                now.signed_duration_since(shared::aws::to_chrono(t)).to_std().unwrap_or_default()
            });
            classify(d.service.desired_count(), d.service.running_count(), age, s)
        })
        .collect();
    let to_check: Vec<usize> = (0..draining.len()).filter(|&i| verdicts[i] == Verdict::CheckTasks).collect();

    // Their tasks, a bounded number of services at a time.
    let draining_ref = &draining;
    let task_lists: Vec<(usize, Result<Vec<String>, FunctionError>)> = stream::iter(to_check.iter().copied())
        .map(|i| async move {
            let draining = draining_ref;
            let target = ServiceRef::new(&s.cluster, draining[i].service.service_name().unwrap_or_default());
            let tasks = ecs::running_service_tasks(&deps.ecs, &target).await;
            (i, tasks.map(|tasks| tasks.iter().filter_map(|t| t.task_arn()).map(|a| task_id(a).to_owned()).collect()))
        })
        .buffer_unordered(s.concurrency)
        .collect()
        .await;
    let mut failures: HashMap<usize, String> = HashMap::new();
    let mut tasks_of: Vec<(usize, String)> = Vec::new();
    let mut task_counts: HashMap<usize, usize> = HashMap::new();
    for (i, result) in task_lists {
        match result {
            Ok(ids) => {
                task_counts.insert(i, ids.len());
                tasks_of.extend(ids.into_iter().map(|id| (i, id)));
            }
            Err(err) => {
                failures.insert(i, err.to_string());
            }
        }
    }

    // Every task's ShutdownReady, in as few GetMetricData calls as the 500-query limit allows.
    let mut ready_counts: HashMap<usize, usize> = HashMap::new();
    for batch in tasks_of.chunks(METRIC_QUERIES_PER_CALL) {
        let queries: Vec<(String, String, String)> = batch
            .iter()
            .map(|(i, task)| (draining[*i].deployment_name.clone(), draining[*i].deployment_id.clone(), task.clone()))
            .collect();
        match shutdown_ready_values(deps, &queries, now.timestamp()).await {
            Ok(values) => {
                for ((i, _), series) in batch.iter().zip(values) {
                    if task_ready(&series, s.consec) {
                        *ready_counts.entry(*i).or_default() += 1;
                    }
                }
            }
            Err(err) => {
                for (i, _) in batch {
                    failures.insert(*i, err.to_string());
                }
            }
        }
    }
    for &i in &to_check {
        if failures.contains_key(&i) {
            continue;
        }
        let total = task_counts.get(&i).copied().unwrap_or(0);
        let ready = ready_counts.get(&i).copied().unwrap_or(0);
        verdicts[i] = if total > 0 && ready == total {
            Verdict::Retire(format!("all {total} task(s) ShutdownReady for {} periods", s.consec))
        } else {
            Verdict::Wait(format!("{ready} of {total} task(s) ready"))
        };
    }

    // Act, a bounded number of services at a time.
    let reports: Vec<ServiceReport> = stream::iter(draining.iter().zip(verdicts).enumerate())
        .map(|(i, (d, verdict))| {
            let failure = failures.get(&i).cloned();
            async move {
                let service = d.service.service_name().unwrap_or_default().to_owned();
                let (action, reason) = match (failure, verdict) {
                    (Some(err), _) => (ServiceAction::Failed, err),
                    (None, Verdict::Wait(reason)) => (ServiceAction::Waiting, reason),
                    (None, Verdict::Retire(reason)) => match retire(deps, d, dry_run).await {
                        Ok(()) => (ServiceAction::Retired, reason),
                        Err(err) => (ServiceAction::Failed, err.to_string()),
                    },
                    (None, Verdict::CleanUp) => match clean_up(deps, d, dry_run).await {
                        Ok(done) => (ServiceAction::CleanedUp, done),
                        Err(err) => (ServiceAction::Failed, err.to_string()),
                    },
                    (None, Verdict::CheckTasks) => (ServiceAction::Waiting, "tasks not checked".to_owned()),
                };
                let reason = if dry_run && matches!(action, ServiceAction::Retired | ServiceAction::CleanedUp) {
                    format!("dry run, nothing changed: {reason}")
                } else {
                    reason
                };
                ServiceReport { service, deployment_id: d.deployment_id.clone(), action, reason }
            }
        })
        .buffer_unordered(s.concurrency)
        .collect()
        .await;
    let mut reports = reports;
    reports.sort_by(|a, b| a.service.cmp(&b.service));
    let count = |a: ServiceAction| reports.iter().filter(|r| r.action == a).count();
    let report = ReaperReport {
        cluster: s.cluster.clone(),
        dry_run,
        draining: reports.len(),
        retired: count(ServiceAction::Retired),
        cleaned_up: count(ServiceAction::CleanedUp),
        waiting: count(ServiceAction::Waiting),
        failed: count(ServiceAction::Failed),
        services: reports,
    };
    tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "reaper run");
    if report.failed > 0 {
        // A function error, so the schedule's Errors alarm fires; the others were still handled.
        let failed: Vec<String> = report
            .services
            .iter()
            .filter(|r| r.action == ServiceAction::Failed)
            .map(|r| format!("{}: {}", r.service, r.reason))
            .collect();
        return Err(FunctionError::Aws {
            operation: "reaper".to_owned(),
            code: "PartialFailure".to_owned(),
            message: format!(
                "{} of {} draining services failed ({} retired, {} cleaned up, {} waiting): {}",
                report.failed,
                report.draining,
                report.retired,
                report.cleaned_up,
                report.waiting,
                failed.join("; ")
            ),
        });
    }
    Ok(report)
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
    tasks: &[(String, String, String)],
    now: i64,
) -> Result<Vec<Vec<f64>>, FunctionError> {
    let s = &deps.settings;
    let queries = tasks.iter().enumerate().map(|(n, (name, id, task))| {
        let dims = [("deployment_name", name), ("deployment_id", id), ("task_id", task)]
            .map(|(k, v)| Dimension::builder().name(k).value(v).build());
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
    if dry_run || d.service.desired_count() == 0 {
        return Ok(());
    }
    let target = ServiceRef::new(&deps.settings.cluster, d.service.service_name().unwrap_or_default());
    ecs::set_desired_count(&deps.ecs, &target, 0).await.map(drop)
}

/// Listener rules → target groups → SSM parameters → the service; "not found" is done at every step.
async fn clean_up(deps: &Deps, d: &Draining, dry_run: bool) -> Result<String, FunctionError> {
    let target_groups: Vec<String> =
        d.service.load_balancers().iter().filter_map(|lb| lb.target_group_arn().map(str::to_owned)).collect();
    let rules = match &deps.settings.listener_arn {
        Some(listener) if !target_groups.is_empty() => rules_forwarding_to(deps, listener, &target_groups).await?,
        _ => Vec::new(),
    };
    let path = deployment::parameter_path(&d.deployment_name, &d.deployment_id);
    let parameters = parameters_under(deps, &path).await?;
    let summary = format!(
        "{} listener rule(s), {} target group(s), {} parameter(s), the service",
        rules.len(),
        target_groups.len(),
        parameters.len()
    );
    if dry_run {
        return Ok(format!("would delete {summary}"));
    }
    for rule in &rules {
        match deps.elb.delete_rule().rule_arn(rule).send().await {
            Ok(_) => {}
            Err(err) if err.as_service_error().is_some_and(|e| e.is_rule_not_found_exception()) => {}
            Err(err) => return Err(FunctionError::aws("ELBv2 DeleteRule", &err)),
        }
    }
    for tg in &target_groups {
        match deps.elb.delete_target_group().target_group_arn(tg).send().await {
            Ok(_) => {}
            Err(err) if err.as_service_error().and_then(|e| e.meta().code()) == Some("TargetGroupNotFound") => {}
            Err(err) => return Err(FunctionError::aws("ELBv2 DeleteTargetGroup", &err)),
        }
    }
    for names in parameters.chunks(10) {
        deps.ssm
            .delete_parameters()
            .set_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|err| FunctionError::aws("SSM DeleteParameters", &err))?;
    }
    let name = d.service.service_name().unwrap_or_default();
    match deps.ecs.delete_service().cluster(&deps.settings.cluster).service(name).force(true).send().await {
        Ok(_) => {}
        Err(err) if err.as_service_error().is_some_and(|e| e.is_service_not_found_exception()) => {}
        Err(err) => return Err(FunctionError::aws("ECS DeleteService", &err)),
    }
    Ok(format!("deleted {summary}"))
}

async fn rules_forwarding_to(
    deps: &Deps,
    listener: &str,
    target_groups: &[String],
) -> Result<Vec<String>, FunctionError> {
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
        for rule in out.rules() {
            let forwards = rule.actions().iter().any(|a| {
                a.target_group_arn().is_some_and(|tg| target_groups.iter().any(|t| t == tg))
                    || a.forward_config().is_some_and(|f| {
                        f.target_groups()
                            .iter()
                            .any(|t| t.target_group_arn().is_some_and(|tg| target_groups.iter().any(|g| g == tg)))
                    })
            });
            if forwards && !rule.is_default().unwrap_or(false) {
                rules.extend(rule.rule_arn().map(str::to_owned));
            }
        }
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

    fn settings() -> ReaperSettings {
        ReaperSettings::new("c")
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn age_guards() {
        let s = settings();
        assert!(matches!(classify(2, 2, Duration::from_secs(60), &s), Verdict::Wait(r) if r.contains("too young")));
        assert_eq!(classify(2, 2, Duration::from_secs(600), &s), Verdict::CheckTasks);
        assert!(matches!(classify(2, 2, 49 * HOUR, &s), Verdict::Retire(r) if r.contains("MAX_AGE")));
        assert!(matches!(classify(2, 0, Duration::from_secs(600), &s), Verdict::Retire(r) if r.contains("no running")));
    }

    #[test]
    fn zero_and_zero_is_cleanup_whatever_the_age() {
        assert_eq!(classify(0, 0, Duration::ZERO, &settings()), Verdict::CleanUp);
        assert!(matches!(classify(0, 3, HOUR, &settings()), Verdict::Wait(r) if r.contains("waiting for 3")));
    }

    #[test]
    fn consec_counts_the_newest_periods() {
        assert!(task_ready(&[1.0, 1.0, 1.0], 3));
        assert!(task_ready(&[1.0, 1.0, 1.0, 0.0], 3), "older periods do not matter");
        assert!(!task_ready(&[0.0, 1.0, 1.0, 1.0], 3), "newest first: the latest period is not ready");
        assert!(!task_ready(&[1.0, 1.0], 3), "a missing period is not ready");
        assert!(!task_ready(&[], 1));
    }
}
