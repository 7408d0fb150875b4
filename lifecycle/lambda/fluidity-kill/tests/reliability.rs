#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! fluidity-kill when things go wrong: AWS faults injected by the fault proxy between the SDK and
//! moto, the bad-input corpus in every event source, and fuzzed events. Run through scripts/test.sh.

use std::time::{Duration, Instant};

use fluidity_kill::{Deps, KillResponse, handler};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::FunctionError;
use shared::ecs::{ServiceRef, ServiceScope};
use shared::testing::corpus::{
    api_gateway, assert_lifecycle_corpus, bad_service_requests, fuzz_lifecycle, in_every_source,
};
use shared::testing::{ALWAYS, Fault, FaultProxy, create_service, desired_count, emulator_config, event_with_deadline};

struct World {
    deps: Deps,
    proxy: FaultProxy,
    /// A client straight to moto, to read the state the function left.
    moto: aws_sdk_ecs::Client,
    target: ServiceRef,
}

async fn world() -> World {
    let moto = aws_sdk_ecs::Client::new(&emulator_config().await);
    let target = create_service(&moto, "kill-rel", 2).await;
    let proxy = FaultProxy::start();
    let deps = Deps {
        ecs: aws_sdk_ecs::Client::new(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await),
        services: ServiceScope::only(target.clone()),
    };
    World { deps, proxy, moto, target }
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Value, FunctionError> {
    handler(LambdaEvent::new(payload, Context::default()), deps).await
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn bursts_of_throttling_and_dropped_connections_are_retried_and_the_kill_happens() {
    for (fault, times) in [(Fault::Throttle, 3), (Fault::TooManyRequests, 3), (Fault::DropConnection, 2)] {
        let w = world().await;
        w.proxy.inject("UpdateService", fault, times);
        let answer = invoke(&w.deps, json!({})).await;
        assert_eq!(answer.unwrap(), serde_json::to_value(KillResponse::KILLED).unwrap(), "{fault:?}");
        assert_eq!(desired_count(&w.moto, &w.target).await, 0, "{fault:?}: moto holds desired 0");
        assert_eq!(w.proxy.count("UpdateService"), times as usize + 1, "{fault:?}");
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn persistent_5xx_is_a_502_function_error_naming_the_call() {
    for fault in [Fault::InternalError, Fault::Unavailable] {
        let w = world().await;
        w.proxy.inject("UpdateService", fault, ALWAYS);
        let err = invoke(&w.deps, json!({})).await.unwrap_err();
        assert_eq!(err.status(), 502, "{fault:?}: {err}");
        assert!(err.to_string().starts_with("AWS ECS UpdateService failed"), "{err}");
        assert_eq!(w.proxy.count("UpdateService"), 4, "standard retry mode: 4 attempts in all");
        assert_eq!(desired_count(&w.moto, &w.target).await, 2, "the service is untouched");

        // Over API Gateway the same failure is an HTTP 502 with the message in the body.
        let answer = invoke(&w.deps, api_gateway("")).await.unwrap();
        assert_eq!(answer["statusCode"], 502);
        assert!(answer["body"].as_str().unwrap().contains("ECS UpdateService"), "{answer}");
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn latency_beyond_the_deadline_is_a_504_answered_before_it() {
    let w = world().await;
    w.proxy.inject("UpdateService", Fault::Delay(Duration::from_secs(30)), ALWAYS);
    let lambda_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = handler(event_with_deadline(json!({}), lambda_timeout), &w.deps).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.status(), 504, "{err}");
    assert!(took < lambda_timeout, "answered after {took:?}, past the Lambda timeout");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_bad_event_is_a_clear_4xx_with_no_aws_call() {
    let w = world().await;
    let invoke = async |payload| invoke(&w.deps, payload).await;
    let cases = assert_lifecycle_corpus(&w.proxy, in_every_source(bad_service_requests()), invoke).await;
    assert!(cases >= 40, "{cases} cases");
    assert_eq!(desired_count(&w.moto, &w.target).await, 2);
}

#[test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
fn fuzzed_events_never_panic_and_invalid_ones_make_no_aws_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let w = runtime.block_on(world());
    let valid = json!({"cluster_name": w.target.cluster, "service_name": w.target.service});
    fuzz_lifecycle(&w.proxy, valid, |payload| runtime.block_on(invoke(&w.deps, payload)));
}
