#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! fluidity-reaper when things go wrong: ECS faults through the fault proxy between the SDK and
//! moto (a scheduled run that fails is a function error, so Lambda's Errors metric and the alarm
//! fire), the bad-input corpus, and fuzzed events. Run through scripts/test.sh.

use std::time::{Duration, Instant};

use fluidity_reaper::{Deps, ReaperSettings, handler};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::FunctionError;
use shared::testing::corpus::{assert_lifecycle_corpus, eventbridge, fuzz_lifecycle, in_every_source, one_mib};
use shared::testing::{ALWAYS, Fault, FaultProxy, emulator_config, event_with_deadline, unique};

struct World {
    deps: Deps,
    proxy: FaultProxy,
}

/// An empty cluster in moto; the reaper's clients go through a fresh proxy (CloudWatch is never reached).
async fn world() -> World {
    let ecs = aws_sdk_ecs::Client::new(&emulator_config().await);
    let cluster = unique("reaper-rel");
    ecs.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let proxy = FaultProxy::start();
    let config = proxy.sdk_config(env!("CARGO_PKG_NAME")).await;
    let deps = Deps {
        ecs: aws_sdk_ecs::Client::new(&config),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&config).into(),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&config).into(),
        ssm: aws_sdk_ssm::Client::new(&config).into(),
        settings: ReaperSettings::new(&cluster),
    };
    World { deps, proxy }
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Value, FunctionError> {
    handler(LambdaEvent::new(payload, Context::default()), deps).await
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_throttled_scheduled_run_is_retried_and_succeeds() {
    let w = world().await;
    w.proxy.inject("ListServices", Fault::Throttle, 3);
    let report = invoke(&w.deps, eventbridge(json!({}))).await.unwrap();
    assert_eq!(report["services"], json!([]), "{report}");
    assert_eq!(w.proxy.count("ListServices"), 4);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_persistently_failing_run_is_a_function_error_naming_the_call() {
    let w = world().await;
    w.proxy.inject("ListServices", Fault::Unavailable, ALWAYS);
    let err = invoke(&w.deps, eventbridge(json!({}))).await.unwrap_err();
    assert_eq!(err.status(), 502);
    assert!(err.to_string().contains("ECS ListServices"), "{err}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn latency_beyond_the_deadline_is_a_504_function_error_before_it() {
    let w = world().await;
    w.proxy.inject("ListServices", Fault::Delay(Duration::from_secs(30)), ALWAYS);
    let lambda_timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let err = handler(event_with_deadline(eventbridge(json!({})), lambda_timeout), &w.deps).await.unwrap_err();
    assert_eq!(err.status(), 504, "{err}");
    assert!(started.elapsed() < lambda_timeout);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_bad_event_is_a_clear_4xx_with_no_aws_call() {
    let w = world().await;
    let requests: Vec<(String, Value)> = [
        ("dry_run as text", json!({"dry_run": "yes"})),
        ("dry_run as a number", json!({"dry_run": 1})),
        ("an unknown field", json!({"dry_run": true, "cluster": "other"})),
        ("a 1 MB unknown field value", json!({"force": one_mib('f')})),
        ("an array", json!([{"dry_run": true}])),
        ("a string", json!("reap")),
    ]
    .into_iter()
    .map(|(what, request)| (what.to_owned(), request))
    .collect();
    let invoke = async |payload| invoke(&w.deps, payload).await;
    let cases = assert_lifecycle_corpus(&w.proxy, in_every_source(requests), invoke).await;
    assert!(cases >= 25, "{cases} cases");
}

#[test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
fn fuzzed_events_never_panic_and_invalid_ones_make_no_aws_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let w = runtime.block_on(world());
    fuzz_lifecycle(&w.proxy, json!({"dry_run": true}), |payload| runtime.block_on(invoke(&w.deps, payload)));
}
