#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! fluidity-wake when things go wrong (AWS faults through the fault proxy, the bad-input corpus,
//! fuzzed events), and wake, kill and sleep racing each other on one service. Run through scripts/test.sh.

use std::time::{Duration, Instant};

use fluidity_wake::{Deps, handler};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::FunctionError;
use shared::ecs::{ServiceRef, ServiceScope};
use shared::testing::corpus::{assert_lifecycle_corpus, bad_service_requests, fuzz_lifecycle, in_every_source};
use shared::testing::{ALWAYS, Fault, FaultProxy, create_service, desired_count, emulator_config, event_with_deadline};

struct World {
    deps: Deps,
    proxy: FaultProxy,
    moto: aws_sdk_ecs::Client,
    target: ServiceRef,
}

async fn world(desired: i32) -> World {
    let moto = aws_sdk_ecs::Client::new(&emulator_config().await);
    let target = create_service(&moto, "wake-rel", desired).await;
    let proxy = FaultProxy::start();
    let config = proxy.sdk_config(env!("CARGO_PKG_NAME")).await;
    let deps = Deps {
        ecs: aws_sdk_ecs::Client::new(&config),
        ec2: aws_sdk_ec2::Client::new(&config).into(),
        services: ServiceScope::only(target.clone()),
    };
    World { deps, proxy, moto, target }
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Value, FunctionError> {
    handler(LambdaEvent::new(payload, Context::default()), deps).await
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn throttled_and_dropped_calls_are_retried_and_the_service_wakes() {
    let w = world(0).await;
    w.proxy.inject("DescribeServices", Fault::Throttle, 2);
    w.proxy.inject("UpdateService", Fault::DropConnection, 1);
    let answer = invoke(&w.deps, json!({})).await.unwrap();
    assert_eq!(answer["status"], "waking", "{answer}");
    assert_eq!(desired_count(&w.moto, &w.target).await, 1);
    assert_eq!(
        w.proxy.calls(),
        ["DescribeServices", "DescribeServices", "DescribeServices", "UpdateService", "UpdateService"]
    );
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn persistent_503_is_a_502_function_error_naming_the_call() {
    let w = world(0).await;
    w.proxy.inject("DescribeServices", Fault::Unavailable, ALWAYS);
    let err = invoke(&w.deps, json!({})).await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert!(err.to_string().contains("ECS DescribeServices"), "{err}");
    assert_eq!(w.proxy.count("DescribeServices"), 4);
    assert_eq!(w.proxy.count("UpdateService"), 0, "no update without knowing the state");
    assert_eq!(desired_count(&w.moto, &w.target).await, 0);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn latency_beyond_the_deadline_is_a_504_answered_before_it() {
    let w = world(0).await;
    w.proxy.inject("DescribeServices", Fault::Delay(Duration::from_secs(30)), ALWAYS);
    let lambda_timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let err = handler(event_with_deadline(json!({}), lambda_timeout), &w.deps).await.unwrap_err();
    assert_eq!(err.status(), 504, "{err}");
    assert!(started.elapsed() < lambda_timeout, "answered after {:?}", started.elapsed());
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_bad_event_is_a_clear_4xx_with_no_aws_call() {
    let w = world(0).await;
    let invoke = async |payload| invoke(&w.deps, payload).await;
    let cases = assert_lifecycle_corpus(&w.proxy, in_every_source(bad_service_requests()), invoke).await;
    assert!(cases >= 40, "{cases} cases");
    assert_eq!(desired_count(&w.moto, &w.target).await, 0);
}

#[test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
fn fuzzed_events_never_panic_and_invalid_ones_make_no_aws_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let w = runtime.block_on(world(0));
    let valid = json!({"cluster_name": w.target.cluster, "service_name": w.target.service});
    fuzz_lifecycle(&w.proxy, valid, |payload| runtime.block_on(invoke(&w.deps, payload)));
}

/// 50 invocations of wake, kill and sleep at once against one service (ECS and CloudWatch in the
/// emulator, the server reporting itself idle for an hour). None fails, wake never asks for more
/// than one task, and the service ends at 0 or 1.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn fifty_concurrent_wake_kill_and_sleep_calls_leave_a_consistent_service() {
    let config = emulator_config().await;
    let moto = aws_sdk_ecs::Client::new(&config);
    let target = create_service(&moto, "race", 0).await;
    let (wake_config, kill_config, sleep_config) = (
        shared::testing::function_config("fluidity-wake").await,
        shared::testing::function_config("fluidity-kill").await,
        shared::testing::function_config("fluidity-sleep").await,
    );
    let wake = Deps {
        ecs: aws_sdk_ecs::Client::new(&wake_config),
        ec2: aws_sdk_ec2::Client::new(&wake_config).into(),
        services: ServiceScope::only(target.clone()),
    };
    let kill = fluidity_kill::Deps {
        ecs: aws_sdk_ecs::Client::new(&kill_config),
        services: ServiceScope::only(target.clone()),
    };
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let now = chrono::Utc::now().timestamp();
    let dims = [("Service", target.service.as_str())];
    shared::testing::cloudwatch::put(&cloudwatch, "Fluidity", "ActiveConnections", &dims, &[(now - 60, 0.0)]).await;
    let last = [(now - 60, (now - 3600) as f64)];
    shared::testing::cloudwatch::put(&cloudwatch, "Fluidity", "LastActivityEpochSeconds", &dims, &last).await;
    let sleep = fluidity_sleep::Deps {
        ecs: aws_sdk_ecs::Client::new(&sleep_config),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sleep_config).into(),
        services: ServiceScope::only(target.clone()),
        settings: fluidity_sleep::SleepSettings { idle_threshold_minutes: 0.01, ..Default::default() },
        metrics: shared::emf::MetricSink::memory().0,
    };
    let event = || LambdaEvent::new(json!({}), Context::default());
    // All 50 in flight at once (one task, concurrent requests to the emulator).
    let calls = (0..50).map(|i| {
        let (wake, kill, sleep) = (&wake, &kill, &sleep);
        async move {
            match i % 3 {
                0 => ("wake", handler(event(), wake).await),
                1 => ("kill", fluidity_kill::handler(event(), kill).await),
                _ => ("sleep", fluidity_sleep::handler(event(), sleep).await),
            }
        }
    });
    for (function, answer) in futures::future::join_all(calls).await {
        let answer = answer.unwrap_or_else(|e| panic!("{function} failed: {e}"));
        match function {
            "wake" => {
                assert!(["waking", "starting", "already_running"].contains(&answer["status"].as_str().unwrap()));
                assert!(answer["desiredCount"].as_i64().unwrap() <= 1, "wake never above 1: {answer}");
            }
            "kill" => assert_eq!(answer["status"], "killed"),
            _ => assert!(["scaled_down", "no_change"].contains(&answer["action"].as_str().unwrap()), "{answer}"),
        }
    }
    let settled = desired_count(&moto, &target).await;
    assert!(settled == 0 || settled == 1, "desired {settled}");
    // And the service still answers to the next call as the state table says.
    let next = handler(event(), &wake).await.unwrap();
    assert_eq!(desired_count(&moto, &target).await, 1, "{next}");
    fluidity_kill::handler(event(), &kill).await.unwrap();
    assert_eq!(desired_count(&moto, &target).await, 0);
}
