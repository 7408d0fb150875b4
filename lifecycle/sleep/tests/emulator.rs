#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! fluidity-sleep against the AWS emulator (moto server) for ECS.
//!
//! CloudWatch is the exception: the Rust SDK speaks only the RPC v2 CBOR protocol to CloudWatch,
//! and moto does not implement it (getmoto/moto#9195), so the metrics live in an aws-smithy-mocks
//! rule on the real CloudWatch client. The rule answers only the request sleep must send (one
//! GetMetricData, both queries, namespace, dimensions, 60 s period, newest first) and serves the
//! datapoints the test put there, as the Fluidity server would have.

use std::time::Duration;

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::{MetricDataQuery, MetricDataResult, ScanBy};
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::types::Service;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use fluidity_sleep::{Deps, SleepSettings, handler};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::FunctionError;
use shared::ecs::ServiceRef;
use shared::testing::{create_service, desired_count, emulator_config, ensure_service, fixture_files, run_binary};

async fn setup(desired: i32) -> (Deps, ServiceRef) {
    let config = emulator_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let target = create_service(&ecs, "sleep", desired).await;
    let deps = Deps {
        ecs,
        cloudwatch: metrics(&target.service, &[], &[]).0,
        default_target: target.clone(),
        settings: SleepSettings::default(),
    };
    (deps, target)
}

/// A CloudWatch client holding the Fluidity server's datapoints for `service` (each series newest first).
fn metrics(service: &str, connections: &[f64], last_activity: &[f64]) -> (aws_sdk_cloudwatch::Client, Rule) {
    metrics_for(("Service", service), connections, last_activity)
}

/// As [`metrics`], for datapoints published under another dimension.
fn metrics_for(
    dimension: (&str, &str),
    connections: &[f64],
    last_activity: &[f64],
) -> (aws_sdk_cloudwatch::Client, Rule) {
    let (dim_name, dim_value) = (dimension.0.to_owned(), dimension.1.to_owned());
    let (connections, last_activity) = (connections.to_vec(), last_activity.to_vec());
    let rule = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(move |r| {
            let queries = r.metric_data_queries();
            let shape_ok = |q: &MetricDataQuery, metric: &str, stat: &str| {
                let ms = q.metric_stat().unwrap();
                let m = ms.metric().unwrap();
                m.namespace() == Some("Fluidity")
                    && m.metric_name() == Some(metric)
                    && m.dimensions().len() == 1
                    && m.dimensions()[0].name() == Some(dim_name.as_str())
                    && m.dimensions()[0].value() == Some(dim_value.as_str())
                    && ms.period() == Some(60)
                    && ms.stat() == Some(stat)
            };
            queries.len() == 2
                && shape_ok(&queries[0], "ActiveConnections", "Average")
                && shape_ok(&queries[1], "LastActivityEpochSeconds", "Maximum")
                && r.scan_by() == Some(&ScanBy::TimestampDescending)
        })
        .then_output(move || {
            let series =
                |id: &str, values: &[f64]| MetricDataResult::builder().id(id).set_values(Some(values.to_vec())).build();
            GetMetricDataOutput::builder()
                .metric_data_results(series("connections", &connections))
                .metric_data_results(series("lastactivity", &last_activity))
                .build()
        });
    (mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]), rule)
}

fn ago(seconds: i64) -> f64 {
    (chrono::Utc::now().timestamp() - seconds) as f64
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Value, FunctionError> {
    handler(LambdaEvent::new(payload, Context::default()), deps).await
}

#[tokio::test]
async fn an_idle_service_is_scaled_to_zero_once_past_the_grace_after_wake() {
    let (mut deps, target) = setup(1).await;
    let (cloudwatch, rule) = metrics(&target.service, &[0.0, 0.0, 0.0], &[ago(3600), ago(3600)]);
    deps.cloudwatch = cloudwatch;
    // The service was just created (woken): within the grace period it is not put to sleep.
    let early = invoke(&deps, json!({"idle_threshold_mins": 0.05})).await.unwrap();
    assert_eq!(early["action"], "no_change", "{early}");
    assert!(early["message"].as_str().unwrap().contains("grace period"), "{early}");
    assert_eq!(desired_count(&deps.ecs, &target).await, 1);

    tokio::time::sleep(Duration::from_millis(3500)).await; // past the 3-second threshold
    let answer = invoke(&deps, json!({"idle_threshold_mins": 0.05})).await.unwrap();
    assert_eq!(answer["action"], "scaled_down", "{answer}");
    assert_eq!(answer["desiredCount"], 0);
    assert_eq!(answer["avgActiveConnections"], 0.0);
    assert!(answer["idleDurationSeconds"].as_i64().unwrap() >= 3590);
    assert_eq!(desired_count(&deps.ecs, &target).await, 0, "the emulator holds desiredCount 0");
    assert_eq!(rule.num_calls(), 2, "one GetMetricData per invocation");
}

#[tokio::test]
async fn an_active_service_is_left_alone() {
    let (mut deps, target) = setup(1).await;
    deps.cloudwatch = metrics(&target.service, &[3.0, 2.0, 4.0], &[ago(3600)]).0;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let answer = invoke(&deps, json!({"idle_threshold_mins": 0.05})).await.unwrap();
    assert_eq!(answer["action"], "no_change", "{answer}");
    assert_eq!(answer["avgActiveConnections"], 3.0);
    assert!(answer["message"].as_str().unwrap().starts_with("Service is active (avg connections: 3.00"), "{answer}");
    assert_eq!(desired_count(&deps.ecs, &target).await, 1);
}

#[tokio::test]
async fn missing_metrics_leave_the_service_alone() {
    let (deps, target) = setup(1).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let answer = invoke(&deps, json!({"idle_threshold_mins": 0.05})).await.unwrap();
    assert_eq!(answer["action"], "no_change", "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("assuming the service is active"), "{answer}");
    assert_eq!(desired_count(&deps.ecs, &target).await, 1);
}

#[tokio::test]
async fn configured_dimensions_are_the_ones_queried() {
    let (mut deps, target) = setup(1).await;
    deps.settings.dimensions = Some(vec![("Instance".to_owned(), "fluidity-a".to_owned())]);
    let (cloudwatch, rule) = metrics_for(("Instance", "fluidity-a"), &[7.0], &[ago(10)]);
    deps.cloudwatch = cloudwatch;
    let answer = invoke(&deps, json!({})).await.unwrap();
    assert_eq!(rule.num_calls(), 1, "queried with METRIC_DIMENSIONS, not Service=<name>");
    assert_eq!(answer["avgActiveConnections"], 7.0, "{answer}");
    assert_eq!(desired_count(&deps.ecs, &target).await, 1);
}

/// A stopped service needs no metrics: the CloudWatch client is a mock with no rule, so any
/// GetMetricData call would fail this test.
#[tokio::test]
async fn a_stopped_service_is_no_change_without_a_metric_query() {
    let describe = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
        DescribeServicesOutput::builder()
            .services(Service::builder().service_name("fluidity-server").status("ACTIVE").desired_count(0).build())
            .build()
    });
    let deps = Deps {
        ecs: mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&describe]),
        cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::Sequential, []),
        default_target: ServiceRef::new("fluidity", "fluidity-server"),
        settings: SleepSettings::default(),
    };
    let answer = invoke(&deps, json!({})).await.unwrap();
    assert_eq!(answer["action"], "no_change");
    assert_eq!(answer["message"], "Service is already stopped (desiredCount 0)");
}

/// The binary talks to the emulator for everything, so its services stand at desiredCount 0: the
/// fixtures exercise the event sources and the binary, and sleep answers without a metric query.
#[tokio::test]
async fn every_fixture_run_through_the_binary_is_answered() {
    let (deps, target) = setup(0).await;
    let override_target = ServiceRef::new("fluidity", "fluidity-server");
    let envs = [("ECS_CLUSTER_NAME", target.cluster.as_str()), ("ECS_SERVICE_NAME", target.service.as_str())];
    let files = fixture_files("lifecycle/sleep");
    assert_eq!(files.len(), 5, "direct, overrides, schedule, API Gateway, Function URL");
    for file in files {
        ensure_service(&deps.ecs, &override_target, 0).await;
        let run = run_binary(env!("CARGO_BIN_EXE_fluidity-sleep"), &file, &envs);
        assert_eq!(run.status, 0, "{}: {:?}\n{}", file.display(), run.stdout, run.stderr);
        let answer = run.answer();
        assert_eq!(answer["action"], "no_change", "{}: {answer}", file.display());
        assert_eq!(answer["message"], "Service is already stopped (desiredCount 0)", "{}", file.display());
    }
    for file in fixture_files("lifecycle/sleep/invalid") {
        let run = run_binary(env!("CARGO_BIN_EXE_fluidity-sleep"), &file, &envs);
        assert_eq!(run.status, 1, "{}", file.display());
        assert_eq!(run.stdout["errorType"], "InvalidRequest", "{}: {:?}", file.display(), run.stdout);
    }
}
