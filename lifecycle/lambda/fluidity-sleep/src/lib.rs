//! `fluidity-sleep`: scales the Fluidity ECS service to zero when CloudWatch shows it idle.
//!
//! A stopped service is left alone with no metric query. Otherwise one `GetMetricData` call carries
//! both queries (ActiveConnections Average, LastActivityEpochSeconds Maximum) over the lookback at a
//! 60 s period. The service is idle when the average connections are ≤ 0 *and* the last activity is
//! at least the idle threshold ago *and* it was not woken less than the threshold ago (so it is not
//! put to sleep before the agent has connected). No datapoints at all means "assume active", and is
//! made loud: every metric check emits `Fluidity/Sleep MetricsMissing` (1 when blind, else 0) as EMF,
//! which the stack's alarm watches, so a wrong dimension or a dead emitter cannot keep the server up
//! unnoticed.

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::aws::LazyClient;
use shared::ecs::{self, ServiceOverrides, ServiceScope};
use shared::emf::{MetricRecord, MetricSink, Unit};
use shared::frame::run_lifecycle;
use shared::settings::Settings;
use shared::{ConfigError, FunctionError};

pub const DEFAULT_IDLE_THRESHOLD_MINUTES: f64 = 15.0;
pub const DEFAULT_LOOKBACK_MINUTES: u32 = 10;
/// Upper bound of both settings: a day.
pub const MAX_MINUTES: u32 = 1440;
pub const METRIC_PERIOD_SECONDS: i32 = 60;
/// The EMF namespace and metric of the blind-sleep signal.
pub const SLEEP_NAMESPACE: &str = "Fluidity/Sleep";
pub const METRICS_MISSING: &str = "MetricsMissing";

/// Built once per cold start in `main`.
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    /// Built on first use: a stopped service is answered from the describe alone.
    pub cloudwatch: LazyClient<aws_sdk_cloudwatch::Client>,
    /// The function's own service, and those a request may name instead.
    pub services: ServiceScope,
    pub settings: SleepSettings,
    /// Where the `MetricsMissing` EMF lines go.
    pub metrics: MetricSink,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SleepSettings {
    /// `IDLE_THRESHOLD_MINUTES` (default 15).
    pub idle_threshold_minutes: f64,
    /// `LOOKBACK_PERIOD_MINUTES` (default 10).
    pub lookback_minutes: u32,
    /// `METRIC_NAMESPACE` (default `Fluidity`).
    pub namespace: String,
    /// `METRIC_DIMENSIONS` as `Name=Value,Name=Value`; `None` means `Service=<service name>`.
    pub dimensions: Option<Vec<(String, String)>>,
}

impl Default for SleepSettings {
    fn default() -> Self {
        Self {
            idle_threshold_minutes: DEFAULT_IDLE_THRESHOLD_MINUTES,
            lookback_minutes: DEFAULT_LOOKBACK_MINUTES,
            namespace: "Fluidity".to_owned(),
            dimensions: None,
        }
    }
}

impl SleepSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&Settings::from_env())
    }

    pub fn from_settings(settings: &Settings<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let minutes = |text: &str| -> Result<f64, String> {
            text.parse::<f64>()
                .ok()
                .filter(|m| valid_threshold(*m))
                .ok_or_else(|| format!("{text:?} must be a positive number of minutes, at most {MAX_MINUTES}"))
        };
        Ok(Self {
            idle_threshold_minutes: settings
                .parsed("IDLE_THRESHOLD_MINUTES", minutes)?
                .unwrap_or(defaults.idle_threshold_minutes),
            lookback_minutes: settings.whole("LOOKBACK_PERIOD_MINUTES", defaults.lookback_minutes, 1..=MAX_MINUTES)?,
            namespace: settings.optional("METRIC_NAMESPACE").unwrap_or(defaults.namespace),
            dimensions: settings.parsed("METRIC_DIMENSIONS", parse_dimensions)?,
        })
    }
}

fn valid_threshold(minutes: f64) -> bool {
    minutes.is_finite() && minutes > 0.0 && minutes <= f64::from(MAX_MINUTES)
}

/// `Service=fluidity-server,Env=prod` → pairs. At most 30 dimensions (CloudWatch's limit).
pub fn parse_dimensions(text: &str) -> Result<Vec<(String, String)>, String> {
    let pairs: Result<Vec<_>, String> = text
        .split(',')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() && !value.trim().is_empty() => {
                Ok((name.trim().to_owned(), value.trim().to_owned()))
            }
            _ => Err(format!("{pair:?} is not Name=Value (expected e.g. Service=fluidity-server,Env=prod)")),
        })
        .collect();
    let pairs = pairs?;
    if pairs.len() > 30 {
        return Err(format!("{} dimensions; CloudWatch allows at most 30", pairs.len()));
    }
    Ok(pairs)
}

/// The request: the kill/wake overrides plus the two sleep settings.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepRequest {
    #[serde(default)]
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default)]
    pub idle_threshold_mins: Option<f64>,
    #[serde(default)]
    pub lookback_period_mins: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SleepAction {
    ScaledDown,
    NoChange,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SleepResponse {
    pub action: SleepAction,
    pub desired_count: i32,
    pub running_count: i32,
    pub avg_active_connections: f64,
    pub idle_duration_seconds: i64,
    pub message: String,
}

/// What CloudWatch returned, each series newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    pub connections: Vec<f64>,
    pub last_activity_epoch: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub scale_down: bool,
    pub avg_connections: f64,
    pub idle_seconds: i64,
    pub message: String,
    /// True when the decision was "active" only for lack of data.
    pub metrics_missing: bool,
}

/// The idle decision. `now` and `woken_at` are epoch seconds; `woken_at` is the latest deployment or scale-up.
pub fn decide(obs: &Observation, now: i64, threshold_secs: i64, woken_at: Option<i64>) -> Decision {
    let missing = |which: &str| Decision {
        scale_down: false,
        avg_connections: 0.0,
        idle_seconds: 0,
        message: format!("No {which} datapoints in the lookback window; assuming the service is active"),
        metrics_missing: true,
    };
    match (obs.connections.is_empty(), obs.last_activity_epoch.is_empty()) {
        (true, true) => return missing("ActiveConnections or LastActivityEpochSeconds"),
        (true, false) => return missing("ActiveConnections"),
        (false, true) => return missing("LastActivityEpochSeconds"),
        _ => {}
    }
    let avg = obs.connections.iter().sum::<f64>() / obs.connections.len() as f64;
    // Maximum over the window, whatever order the datapoints came in.
    let last_activity = obs.last_activity_epoch.iter().copied().fold(f64::MIN, f64::max) as i64;
    let idle_seconds = (now - last_activity).max(0);
    let since_wake = woken_at.map(|t| (now - t).max(0));
    let decision = |scale_down, message| Decision {
        scale_down,
        avg_connections: avg,
        idle_seconds,
        message,
        metrics_missing: false,
    };
    if avg > 0.0 || idle_seconds < threshold_secs {
        return decision(false, format!("Service is active (avg connections: {avg:.2}, idle: {idle_seconds} seconds)"));
    }
    if let Some(since) = since_wake.filter(|s| *s < threshold_secs) {
        return decision(
            false,
            format!(
                "Service was woken {since} seconds ago; within the {threshold_secs}-second grace period, not idle yet"
            ),
        );
    }
    decision(true, format!("Service scaled down due to inactivity (idle for {idle_seconds} seconds)"))
}

/// sleep's permissions: the service, and the metrics (GetMetricData has no resource-level permissions).
pub fn permissions() -> Vec<shared::iam::Permission> {
    let (cluster, service) = ("${ECS_CLUSTER_NAME}", "${ECS_SERVICE_NAME}");
    vec![
        ecs::describe_services_permission(cluster, service),
        ecs::update_service_permission(cluster, service),
        shared::iam::Permission::any("cloudwatch:GetMetricData"),
    ]
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, FunctionError> {
    run_lifecycle(event, "sleep", |request: SleepRequest, _source| sleep(request, deps)).await
}

/// The request's settings over the environment's, validated.
fn effective_settings(request: &SleepRequest, base: &SleepSettings) -> Result<(f64, u32), FunctionError> {
    let threshold = match request.idle_threshold_mins {
        Some(m) if !valid_threshold(m) => {
            return Err(FunctionError::invalid(
                "idle_threshold_mins",
                format!("{m} must be above 0 and at most {MAX_MINUTES}"),
            ));
        }
        Some(m) => m,
        None => base.idle_threshold_minutes,
    };
    let lookback = match request.lookback_period_mins {
        Some(m) if !(1..=MAX_MINUTES).contains(&m) => {
            return Err(FunctionError::invalid("lookback_period_mins", format!("{m} must be 1 to {MAX_MINUTES}")));
        }
        Some(m) => m,
        None => base.lookback_minutes,
    };
    Ok((threshold, lookback))
}

async fn sleep(request: SleepRequest, deps: &Deps) -> Result<SleepResponse, FunctionError> {
    let overrides =
        ServiceOverrides { cluster_name: request.cluster_name.clone(), service_name: request.service_name.clone() };
    let target = deps.services.resolve(&overrides)?;
    let (threshold_minutes, lookback_minutes) = effective_settings(&request, &deps.settings)?;
    let service = ecs::describe_service(&deps.ecs, &target).await?;
    let (desired, running) = (service.desired_count(), service.running_count());
    if desired == 0 {
        return Ok(SleepResponse {
            action: SleepAction::NoChange,
            desired_count: 0,
            running_count: running,
            avg_active_connections: 0.0,
            idle_duration_seconds: 0,
            message: "Service is already stopped (desiredCount 0)".to_owned(),
        });
    }
    let service_name = target.service.rsplit('/').next().unwrap_or(&target.service).to_owned();
    let dimensions =
        deps.settings.dimensions.clone().unwrap_or_else(|| vec![("Service".to_owned(), service_name.clone())]);
    let now = Utc::now().timestamp();
    let observation = read_metrics(deps, &dimensions, now, lookback_minutes).await?;
    let woken_at = service
        .deployments()
        .iter()
        .filter(|d| d.status() == Some("PRIMARY"))
        .flat_map(|d| [d.created_at(), d.updated_at()])
        .flatten()
        .map(|t| t.secs())
        .max();
    let threshold_secs = (threshold_minutes * 60.0).round() as i64;
    let decision = decide(&observation, now, threshold_secs, woken_at);
    if decision.metrics_missing {
        tracing::warn!(namespace = %deps.settings.namespace, dimensions = ?dimensions, "{}", decision.message);
    }
    deps.metrics.emit(&metrics_missing_record(&service_name, decision.metrics_missing, Utc::now().timestamp_millis()));
    let mut desired_after = desired;
    if decision.scale_down {
        desired_after = ecs::set_desired_count(&deps.ecs, &target, 0).await?.desired_count();
    }
    tracing::info!(
        cluster = %target.cluster,
        service = %target.service,
        scaledDown = decision.scale_down,
        avgActiveConnections = decision.avg_connections,
        idleSeconds = decision.idle_seconds,
        "sleep: {}",
        decision.message
    );
    Ok(SleepResponse {
        action: if decision.scale_down { SleepAction::ScaledDown } else { SleepAction::NoChange },
        desired_count: desired_after,
        running_count: running,
        avg_active_connections: decision.avg_connections,
        idle_duration_seconds: decision.idle_seconds,
        message: decision.message,
    })
}

/// `Fluidity/Sleep MetricsMissing` for the service: 1 when sleep had to assume activity for lack of
/// data, 0 when it could decide. The alarm goes off on a run of 1s, and back to OK on a 0.
pub fn metrics_missing_record(service: &str, missing: bool, timestamp_ms: i64) -> MetricRecord {
    MetricRecord::new(SLEEP_NAMESPACE, timestamp_ms).dimension("Service", service).metric(
        METRICS_MISSING,
        if missing { 1.0 } else { 0.0 },
        Unit::Count,
    )
}

fn query(id: &str, namespace: &str, metric: &str, stat: &str, dimensions: &[(String, String)]) -> MetricDataQuery {
    let dims = dimensions.iter().map(|(n, v)| Dimension::builder().name(n).value(v).build());
    let metric =
        Metric::builder().namespace(namespace).metric_name(metric).set_dimensions(Some(dims.collect())).build();
    let stat = MetricStat::builder().metric(metric).period(METRIC_PERIOD_SECONDS).stat(stat).build();
    MetricDataQuery::builder().id(id).metric_stat(stat).return_data(true).build()
}

/// One GetMetricData request (both queries), following pages; values stay newest first.
async fn read_metrics(
    deps: &Deps,
    dimensions: &[(String, String)],
    now: i64,
    lookback_minutes: u32,
) -> Result<Observation, FunctionError> {
    let ns = &deps.settings.namespace;
    let mut pages = deps
        .cloudwatch
        .get_metric_data()
        .start_time(aws_smithy_types::DateTime::from_secs(now - i64::from(lookback_minutes) * 60))
        .end_time(aws_smithy_types::DateTime::from_secs(now))
        .scan_by(ScanBy::TimestampDescending)
        .metric_data_queries(query("connections", ns, "ActiveConnections", "Average", dimensions))
        .metric_data_queries(query("lastactivity", ns, "LastActivityEpochSeconds", "Maximum", dimensions))
        .into_paginator()
        .send();
    let mut observation = Observation::default();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| FunctionError::aws("CloudWatch GetMetricData", &err))?;
        for result in page.metric_data_results() {
            let values = result.values().iter().copied();
            match result.id() {
                Some("connections") => observation.connections.extend(values),
                Some("lastactivity") => observation.last_activity_epoch.extend(values),
                _ => {}
            }
        }
    }
    Ok(observation)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const FIFTEEN_MIN: i64 = 900;

    fn obs(connections: &[f64], last: &[i64]) -> Observation {
        Observation { connections: connections.to_vec(), last_activity_epoch: last.iter().map(|t| *t as f64).collect() }
    }

    #[test]
    fn active_connections_keep_it_awake() {
        let d = decide(&obs(&[2.0, 3.0], &[NOW - 3600]), NOW, FIFTEEN_MIN, None);
        assert!(!d.scale_down);
        assert_eq!(d.avg_connections, 2.5);
        assert!(d.message.contains("Service is active (avg connections: 2.50"), "{}", d.message);
    }

    #[test]
    fn no_connections_and_old_activity_is_idle() {
        let d = decide(&obs(&[0.0, 0.0], &[NOW - 1200]), NOW, FIFTEEN_MIN, Some(NOW - 7200));
        assert!(d.scale_down);
        assert_eq!(d.idle_seconds, 1200);
        assert_eq!(d.message, "Service scaled down due to inactivity (idle for 1200 seconds)");
    }

    #[test]
    fn recent_activity_below_the_threshold_is_not_idle() {
        let d = decide(&obs(&[0.0], &[NOW - 120]), NOW, FIFTEEN_MIN, None);
        assert!(!d.scale_down);
        assert_eq!(d.idle_seconds, 120);
    }

    #[test]
    fn missing_metrics_mean_active() {
        for o in [obs(&[], &[]), obs(&[0.0], &[]), obs(&[], &[NOW - 5000])] {
            let d = decide(&o, NOW, FIFTEEN_MIN, None);
            assert!(!d.scale_down && d.metrics_missing, "{o:?}");
            assert!(d.message.contains("assuming the service is active"));
        }
    }

    #[test]
    fn a_service_just_woken_is_not_idle_even_with_old_activity() {
        let d = decide(&obs(&[0.0], &[NOW - 86_400]), NOW, FIFTEEN_MIN, Some(NOW - 60));
        assert!(!d.scale_down);
        assert!(d.message.contains("woken 60 seconds ago"), "{}", d.message);
        let d = decide(&obs(&[0.0], &[NOW - 86_400]), NOW, FIFTEEN_MIN, Some(NOW - FIFTEEN_MIN));
        assert!(d.scale_down, "the grace ends at the threshold");
    }

    #[test]
    fn newest_first_data_uses_the_latest_activity() {
        // Newest first: the first value is the most recent activity; taking the last one would be wrong.
        let d = decide(&obs(&[0.0, 0.0, 0.0], &[NOW - 300, NOW - 1800, NOW - 3600]), NOW, FIFTEEN_MIN, None);
        assert!(!d.scale_down);
        assert_eq!(d.idle_seconds, 300);
    }

    #[test]
    fn dimensions_parse_and_refuse_garbage() {
        assert_eq!(
            parse_dimensions("Service=fluidity-server, Env=prod").unwrap(),
            [("Service".to_owned(), "fluidity-server".to_owned()), ("Env".to_owned(), "prod".to_owned())]
        );
        assert!(parse_dimensions("Service").is_err());
        assert!(parse_dimensions("=x").is_err());
    }

    #[test]
    fn overrides_are_validated() {
        let base = SleepSettings::default();
        let req = |t: Option<f64>, l: Option<u32>| SleepRequest {
            idle_threshold_mins: t,
            lookback_period_mins: l,
            ..Default::default()
        };
        assert_eq!(effective_settings(&req(None, None), &base).unwrap(), (15.0, 10));
        assert_eq!(effective_settings(&req(Some(30.0), Some(20)), &base).unwrap(), (30.0, 20));
        for bad in [
            req(Some(0.0), None),
            req(Some(-5.0), None),
            req(Some(1e9), None),
            req(None, Some(0)),
            req(None, Some(100_000)),
        ] {
            let err = effective_settings(&bad, &base).unwrap_err();
            assert_eq!(err.status(), 400, "{err}");
        }
    }
}
