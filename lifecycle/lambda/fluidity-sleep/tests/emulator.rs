#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! fluidity-sleep against the emulator: ECS in moto, and CloudWatch in moto too, spoken to over
//! RPC v2 CBOR through `scripts/emulator.py`. Each test puts the metrics the Fluidity server would
//! (PutMetricData, as the server does), then lets sleep decide on what CloudWatch serves.

use std::time::Duration;

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use fluidity_sleep::{Deps, SleepSettings, handler};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::FunctionError;
use shared::ecs::{ServiceRef, ServiceScope};
use shared::emf::MetricSink;
use shared::testing::cloudwatch::{Point, put, put_emf, values};
use shared::testing::iam::{IamWorld, service_arn};
use shared::testing::{
    FaultProxy, create_service, desired_count, emulator_config, ensure_service, fixture_files, function_config,
    run_binary,
};

struct World {
    deps: Deps,
    /// The tests' own clients (the function's are in `deps`).
    ecs: aws_sdk_ecs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    target: ServiceRef,
    emf: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

async fn world(desired: i32, settings: SleepSettings) -> World {
    let config = emulator_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let target = create_service(&ecs, "sleep", desired).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let (metrics, emf) = MetricSink::memory();
    let function = function_config(env!("CARGO_PKG_NAME")).await;
    let deps = Deps {
        ecs: aws_sdk_ecs::Client::new(&function),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&function).into(),
        services: ServiceScope::only(target.clone()),
        settings,
        metrics,
    };
    World { deps, ecs, cloudwatch, target, emf }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl World {
    /// The server's two metrics, as it publishes them: (seconds ago, value) for each.
    async fn server_reports(&self, namespace: &str, dims: &[(&str, &str)], connections: &[Point], last: &[Point]) {
        put(&self.cloudwatch, namespace, "ActiveConnections", dims, connections).await;
        put(&self.cloudwatch, namespace, "LastActivityEpochSeconds", dims, last).await;
    }

    /// The same, under the default namespace and dimension (`Fluidity`, `Service=<service>`).
    async fn service_reports(&self, connections: &[Point], last: &[Point]) {
        let service = self.target.service.clone();
        self.server_reports("Fluidity", &[("Service", &service)], connections, last).await;
    }

    /// No connections in the last few minutes, last activity an hour ago.
    async fn server_idle_for_an_hour(&self) {
        let t = now();
        let hour_ago = (t - 3600) as f64;
        self.service_reports(
            &[(t - 240, 0.0), (t - 120, 0.0), (t - 30, 0.0)],
            &[(t - 240, hour_ago), (t - 30, hour_ago)],
        )
        .await;
    }

    fn emf_lines(&self) -> Vec<Value> {
        self.emf.lock().unwrap().iter().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Value, FunctionError> {
    handler(LambdaEvent::new(payload, Context::default()), deps).await
}

/// A 3-second idle threshold, so the just-created (just woken) service is past its grace within a test.
fn short_threshold() -> SleepSettings {
    SleepSettings { idle_threshold_minutes: 0.05, ..SleepSettings::default() }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_idle_service_is_scaled_to_zero_once_past_the_grace_after_wake() {
    let w = world(1, short_threshold()).await;
    w.server_idle_for_an_hour().await;
    // The service was just created (woken): within the grace period it is not put to sleep.
    let early = invoke(&w.deps, json!({})).await.unwrap();
    assert_eq!(early["action"], "no_change", "{early}");
    assert!(early["message"].as_str().unwrap().contains("grace period"), "{early}");
    assert_eq!(desired_count(&w.ecs, &w.target).await, 1);

    tokio::time::sleep(Duration::from_millis(3500)).await; // past the 3-second threshold
    let answer = invoke(&w.deps, json!({})).await.unwrap();
    assert_eq!(answer["action"], "scaled_down", "{answer}");
    assert_eq!(answer["desiredCount"], 0);
    assert_eq!(answer["avgActiveConnections"], 0.0);
    let idle = answer["idleDurationSeconds"].as_i64().unwrap();
    assert!((3600..3700).contains(&idle), "idle since the last activity an hour ago: {idle}");
    assert_eq!(desired_count(&w.ecs, &w.target).await, 0, "the emulator holds desiredCount 0");
    let missing: Vec<f64> = w.emf_lines().iter().map(|l| l["MetricsMissing"].as_f64().unwrap()).collect();
    assert_eq!(missing, [0.0, 0.0], "sleep could see, both times");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_active_service_is_left_alone() {
    let w = world(1, short_threshold()).await;
    let t = now();
    w.service_reports(&[(t - 200, 3.0), (t - 100, 2.0), (t - 20, 4.0)], &[(t - 20, (t - 25) as f64)]).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let answer = invoke(&w.deps, json!({})).await.unwrap();
    assert_eq!(answer["action"], "no_change", "{answer}");
    assert_eq!(answer["avgActiveConnections"], 3.0);
    assert!(answer["message"].as_str().unwrap().starts_with("Service is active (avg connections: 3.00"), "{answer}");
    assert_eq!(desired_count(&w.ecs, &w.target).await, 1);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn no_datapoints_leave_the_service_up_and_say_so_loudly() {
    let w = world(1, short_threshold()).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let answer = invoke(&w.deps, json!({})).await.unwrap();
    assert_eq!(answer["action"], "no_change", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("No ActiveConnections or LastActivityEpochSeconds datapoints"), "{message}");
    assert!(message.contains("assuming the service is active"), "{message}");
    assert_eq!(desired_count(&w.ecs, &w.target).await, 1);
    // The EMF line becomes the metric the stack's alarm watches, as CloudWatch Logs would make it.
    let lines = w.emf.lock().unwrap().clone();
    assert_eq!(lines.len(), 1);
    put_emf(&w.cloudwatch, &lines).await;
    let t = now();
    let service = w.target.service.clone();
    let seen = values(
        &w.cloudwatch,
        "Fluidity/Sleep",
        "MetricsMissing",
        &[("Service", &service)],
        "Maximum",
        60,
        (t - 120, t + 60),
    )
    .await;
    assert_eq!(seen, [1.0], "the alarm's metric reads 1");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_service_woken_less_than_the_threshold_ago_is_not_put_to_sleep() {
    // The default 15-minute threshold: the service was created (woken) a moment ago.
    let w = world(1, SleepSettings::default()).await;
    w.server_idle_for_an_hour().await;
    let answer = invoke(&w.deps, json!({})).await.unwrap();
    assert_eq!(answer["action"], "no_change", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("within the 900-second grace period"), "{message}");
    assert_eq!(desired_count(&w.ecs, &w.target).await, 1);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_configured_namespace_and_dimensions_are_the_ones_read() {
    let mut w = world(1, short_threshold()).await;
    let instance = shared::testing::unique("fluidity");
    w.deps.settings.namespace = "Custom/Fluidity".to_owned();
    w.deps.settings.dimensions =
        Some(vec![("Instance".to_owned(), instance.clone()), ("Env".to_owned(), "prod".to_owned())]);
    let t = now();
    // Under the default namespace and dimension the server looks busy: sleep must not read these.
    w.service_reports(&[(t - 60, 9.0)], &[(t - 60, (t - 61) as f64)]).await;
    // Under the configured ones it is idle.
    w.server_reports(
        "Custom/Fluidity",
        &[("Instance", &instance), ("Env", "prod")],
        &[(t - 90, 0.0), (t - 30, 0.0)],
        &[(t - 30, (t - 7200) as f64)],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let answer = invoke(&w.deps, json!({})).await.unwrap();
    assert_eq!(answer["action"], "scaled_down", "{answer}");
    assert_eq!(desired_count(&w.ecs, &w.target).await, 0);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_lookback_override_reaches_older_datapoints() {
    let w = world(1, short_threshold()).await;
    let t = now();
    // The server went quiet 20 minutes ago and has published nothing since.
    w.service_reports(&[(t - 1260, 0.0), (t - 1200, 0.0)], &[(t - 1200, (t - 1200) as f64)]).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let default_window = invoke(&w.deps, json!({})).await.unwrap();
    assert_eq!(default_window["action"], "no_change", "the 10-minute lookback sees nothing: {default_window}");
    assert!(default_window["message"].as_str().unwrap().contains("No ActiveConnections"), "{default_window}");
    let wider = invoke(&w.deps, json!({"lookback_period_mins": 30})).await.unwrap();
    assert_eq!(wider["action"], "scaled_down", "{wider}");
    assert!(wider["idleDurationSeconds"].as_i64().unwrap() >= 1200, "{wider}");
    assert_eq!(desired_count(&w.ecs, &w.target).await, 0);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_stopped_service_is_no_change_without_a_metric_query() {
    let w = world(0, short_threshold()).await;
    let proxy = FaultProxy::start();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await);
    let deps = Deps { cloudwatch: cloudwatch.into(), metrics: MetricSink::memory().0, ..w.deps };
    let answer = invoke(&deps, json!({})).await.unwrap();
    assert_eq!(answer["action"], "no_change");
    assert_eq!(answer["message"], "Service is already stopped (desiredCount 0)");
    assert_eq!(proxy.count("GetMetricData"), 0, "{:?}", proxy.calls());
}

/// moto answers GetMetricData in one page, so following NextToken can only be shown with a mock:
/// two pages, each newest first, read as one series.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_page_of_get_metric_data_is_read() {
    let w = world(1, short_threshold()).await;
    let hour_ago = (now() - 3600) as f64;
    let first = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token().is_none())
        .then_output(move || {
            GetMetricDataOutput::builder()
                .metric_data_results(MetricDataResult::builder().id("connections").values(0.0).values(0.0).build())
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(move || {
            GetMetricDataOutput::builder()
                .metric_data_results(MetricDataResult::builder().id("connections").values(6.0).build())
                .metric_data_results(MetricDataResult::builder().id("lastactivity").values(hour_ago).build())
                .build()
        });
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]);
    let deps = Deps { cloudwatch: cloudwatch.into(), ..w.deps };
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let answer = invoke(&deps, json!({})).await.unwrap();
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    assert_eq!(answer["avgActiveConnections"], 2.0, "0, 0 and 6 over both pages: {answer}");
    assert_eq!(answer["action"], "no_change");
}

/// The binary as Lambda runs it, against the emulator for ECS and CloudWatch: every fixture on a
/// stopped service (no metric query), and the scheduled event on a running one with no metrics,
/// whose EMF line goes to stderr in a local run (stdout is the answer).
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_fixture_run_through_the_binary_is_answered() {
    let w = world(0, SleepSettings::default()).await;
    let override_target = ServiceRef::new("fluidity", "fluidity-server");
    // overrides.json names fluidity/fluidity-server, which the deployment must allow.
    let envs = [
        ("ECS_CLUSTER_NAME", w.target.cluster.as_str()),
        ("ECS_SERVICE_NAME", w.target.service.as_str()),
        ("OVERRIDE_SERVICE_ARNS", shared::testing::FIXTURE_OVERRIDE_ARN),
    ];
    let files = fixture_files("fluidity-sleep");
    assert_eq!(files.len(), 5, "direct, overrides, schedule, API Gateway, Function URL");
    for file in &files {
        ensure_service(&w.ecs, &override_target, 0).await;
        let run = run_binary(env!("CARGO_BIN_EXE_fluidity-sleep"), file, &envs);
        assert_eq!(run.status, 0, "{}: {:?}\n{}", file.display(), run.stdout, run.stderr);
        let answer = run.answer();
        assert_eq!(answer["action"], "no_change", "{}: {answer}", file.display());
        assert_eq!(answer["message"], "Service is already stopped (desiredCount 0)", "{}", file.display());
    }
    ensure_service(&w.ecs, &w.target, 1).await;
    let schedule = files.iter().find(|f| f.ends_with("eventbridge-rate-5-minutes.json")).unwrap();
    let run = run_binary(env!("CARGO_BIN_EXE_fluidity-sleep"), schedule, &envs);
    assert_eq!(run.status, 0, "{:?}\n{}", run.stdout, run.stderr);
    assert_eq!(run.stdout["action"], "no_change");
    let emf: Vec<&str> = run.stderr.lines().filter(|l| l.contains("\"_aws\"")).collect();
    assert_eq!(emf.len(), 1, "{}", run.stderr);
    shared::testing::cloudwatch::emf_datums(emf[0]);
    assert!(emf[0].contains("\"MetricsMissing\":1"), "{}", emf[0]);
    for file in fixture_files("fluidity-sleep/invalid") {
        let run = run_binary(env!("CARGO_BIN_EXE_fluidity-sleep"), &file, &envs);
        assert_eq!(run.status, 1, "{}", file.display());
        assert_eq!(run.stdout["errorType"], "InvalidRequest", "{}: {:?}", file.display(), run.stdout);
    }
}

/// IAM world (deployments/tests/check_iam.py checks every call below against lambda.yaml's
/// SleepRole, rendered for this cluster and service): sleep reads the metrics and scales its own
/// idle service down, in a cluster it shares with a service it must never touch.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_sleep_in_a_shared_cluster() {
    let mut w = world(1, short_threshold()).await;
    let bystander = ServiceRef::new(w.target.cluster.clone(), "production-api-service");
    ensure_service(&w.ecs, &bystander, 2).await;
    let iam = IamWorld::of(env!("CARGO_PKG_NAME"), "lambda.yaml")
        .parameter("ClusterName", &w.target.cluster)
        .parameter("ServiceName", &w.target.service)
        .untouchable("ecs:UpdateService", service_arn(&bystander))
        .untouchable("ecs:DescribeServices", service_arn(&bystander))
        .write();
    let config = iam.config().await;
    w.deps.ecs = aws_sdk_ecs::Client::new(&config);
    w.deps.cloudwatch = aws_sdk_cloudwatch::Client::new(&config).into();
    w.server_idle_for_an_hour().await;
    tokio::time::sleep(Duration::from_millis(3500)).await; // past the grace after its creation (wake)
    let answer = invoke(&w.deps, json!({})).await.unwrap();
    assert_eq!(desired_count(&w.ecs, &w.target).await, 0, "{answer}");
    assert_eq!(desired_count(&w.ecs, &bystander).await, 2);
}
