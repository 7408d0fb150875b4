#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! fluidity-sleep when things go wrong: ECS and CloudWatch faults through the fault proxy (both in
//! the emulator, CloudWatch over RPC v2 CBOR), the bad-input corpus with sleep's own overrides, and
//! fuzzed events. Run through scripts/test.sh.

use std::time::{Duration, Instant};

use fluidity_sleep::{Deps, SleepSettings, handler};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::FunctionError;
use shared::ecs::{ServiceRef, ServiceScope};
use shared::emf::MetricSink;
use shared::testing::corpus::{
    assert_lifecycle_corpus, bad_service_requests, fuzz_lifecycle, in_every_source, one_mib,
};
use shared::testing::{ALWAYS, Fault, FaultProxy, create_service, desired_count, emulator_config, event_with_deadline};

struct World {
    deps: Deps,
    proxy: FaultProxy,
    moto: aws_sdk_ecs::Client,
    target: ServiceRef,
}

/// A service the server reports idle: no connections, last activity an hour ago.
async fn world(desired: i32) -> World {
    let config = emulator_config().await;
    let moto = aws_sdk_ecs::Client::new(&config);
    let target = create_service(&moto, "sleep-rel", desired).await;
    let t = chrono::Utc::now().timestamp();
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    let dims = [("Service", target.service.as_str())];
    shared::testing::cloudwatch::put(&cw, "Fluidity", "ActiveConnections", &dims, &[(t - 60, 0.0)]).await;
    shared::testing::cloudwatch::put(
        &cw,
        "Fluidity",
        "LastActivityEpochSeconds",
        &dims,
        &[(t - 60, (t - 3600) as f64)],
    )
    .await;
    let proxy = FaultProxy::start();
    let through_proxy = proxy.sdk_config(env!("CARGO_PKG_NAME")).await;
    let deps = Deps {
        ecs: aws_sdk_ecs::Client::new(&through_proxy),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&through_proxy).into(),
        services: ServiceScope::only(target.clone()),
        // A tiny threshold, so the just-created service is past its grace after wake.
        settings: SleepSettings { idle_threshold_minutes: 0.01, ..SleepSettings::default() },
        metrics: MetricSink::memory().0,
    };
    World { deps, proxy, moto, target }
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Value, FunctionError> {
    handler(LambdaEvent::new(payload, Context::default()), deps).await
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn throttled_calls_are_retried_and_the_idle_service_is_put_to_sleep() {
    let w = world(1).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // past the 0.6 s grace after wake
    w.proxy.inject("DescribeServices", Fault::Throttle, 2);
    w.proxy.inject("GetMetricData", Fault::Throttle, 1);
    w.proxy.inject("UpdateService", Fault::TooManyRequests, 2);
    let answer = invoke(&w.deps, json!({})).await.unwrap();
    assert_eq!(answer["action"], "scaled_down", "{answer}");
    assert_eq!(desired_count(&w.moto, &w.target).await, 0);
    assert_eq!(w.proxy.count("DescribeServices"), 3);
    assert_eq!(w.proxy.count("GetMetricData"), 2, "a CBOR ThrottlingException is retried");
    assert_eq!(w.proxy.count("UpdateService"), 3);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn persistent_5xx_is_a_502_function_error_naming_the_call() {
    let w = world(1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.proxy.inject("UpdateService", Fault::InternalError, ALWAYS);
    let err = invoke(&w.deps, json!({})).await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert!(err.to_string().contains("ECS UpdateService"), "{err}");
    assert_eq!(desired_count(&w.moto, &w.target).await, 1, "left running");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_failing_cloudwatch_is_a_502_and_the_service_is_left_alone() {
    let w = world(1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.proxy.inject("GetMetricData", Fault::Unavailable, ALWAYS);
    let err = invoke(&w.deps, json!({})).await.unwrap_err();
    assert_eq!(err.status(), 502, "{err}");
    assert!(err.to_string().contains("CloudWatch GetMetricData"), "{err}");
    assert_eq!(w.proxy.count("GetMetricData"), 4, "the SDK's 4 attempts");
    assert_eq!(w.proxy.count("UpdateService"), 0);
    assert_eq!(desired_count(&w.moto, &w.target).await, 1);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn latency_beyond_the_deadline_is_a_504_answered_before_it() {
    let w = world(1).await;
    w.proxy.inject("DescribeServices", Fault::Delay(Duration::from_secs(30)), ALWAYS);
    let lambda_timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let err = handler(event_with_deadline(json!({}), lambda_timeout), &w.deps).await.unwrap_err();
    assert_eq!(err.status(), 504, "{err}");
    assert!(started.elapsed() < lambda_timeout, "answered after {:?}", started.elapsed());
}

/// The shared override cases plus sleep's own: negative, zero, absurd and mistyped settings.
fn bad_sleep_requests() -> Vec<(String, Value)> {
    let mut cases = bad_service_requests();
    let own: [(&str, Value); 10] = [
        ("a negative idle threshold", json!({"idle_threshold_mins": -5})),
        ("a zero idle threshold", json!({"idle_threshold_mins": 0})),
        ("an absurd idle threshold", json!({"idle_threshold_mins": 1e12})),
        ("an idle threshold as text", json!({"idle_threshold_mins": "15"})),
        ("a negative lookback", json!({"lookback_period_mins": -3})),
        ("a zero lookback", json!({"lookback_period_mins": 0})),
        ("an absurd lookback", json!({"lookback_period_mins": 4_000_000_000_u64})),
        ("a fractional lookback", json!({"lookback_period_mins": 2.5})),
        ("a lookback as a 1 MB string", json!({"lookback_period_mins": one_mib('9')})),
        ("a lookback as an object", json!({"lookback_period_mins": {"minutes": 5}})),
    ];
    cases.extend(own.into_iter().map(|(what, request)| (what.to_owned(), request)));
    cases
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_bad_event_is_a_clear_4xx_with_no_aws_call() {
    let w = world(1).await;
    let invoke = async |payload| invoke(&w.deps, payload).await;
    let cases = assert_lifecycle_corpus(&w.proxy, in_every_source(bad_sleep_requests()), invoke).await;
    assert!(cases >= 80, "{cases} cases");
    assert_eq!(desired_count(&w.moto, &w.target).await, 1);
}

#[test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
fn fuzzed_events_never_panic_and_invalid_ones_make_no_aws_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let w = runtime.block_on(world(1));
    let valid = json!({"cluster_name": w.target.cluster, "service_name": w.target.service,
                       "idle_threshold_mins": 15, "lookback_period_mins": 10});
    fuzz_lifecycle(&w.proxy, valid, |payload| runtime.block_on(invoke(&w.deps, payload)));
}
