#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-rollback-service when things go wrong: AWS faults injected by the fault proxy between the
//! SDK and moto (the deployment history answered by `aws-smithy-mocks`, tests/common), the bad-input
//! corpus, fuzzed requests, a redelivered request, and a rollback cut off in its UpdateService. Run
//! through scripts/test.sh.

use std::time::Duration;

use incident_core::contract::ActionKind;
use incident_core::testing::corpus::{assert_action_corpus, fuzz_action};
use incident_core::testing::response_json;
use incident_rollback_service::handler;
use serde_json::{Value, json};
use shared::testing::{ALWAYS, Fault, FaultProxy, action_event, event_with_deadline};

mod common;
use common::world::{SUCCESSFUL, World, task_definition, world};

/// A target allowed to roll back unattended, its ECS and ledger calls through a fresh proxy.
async fn proxied() -> (World, FaultProxy) {
    let proxy = FaultProxy::start();
    let w = world(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await, true, SUCCESSFUL).await;
    (w, proxy)
}

fn rollback(incident: &str) -> Value {
    json!({"action": "rollback_service", "target": "api", "incidentId": incident, "priority": "critical"})
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_throttled_update_is_retried_and_the_rollback_happens_once() {
    let (w, proxy) = proxied().await;
    proxy.inject("UpdateService", Fault::Throttle, 2);
    let done = response_json(&handler(action_event(rollback("INC-1")), &w.deps).await.unwrap());
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(task_definition(&w.moto, &w.api).await, w.good, "moto runs the good build");
    assert_eq!(proxy.count("UpdateService"), 3, "two throttled attempts, then the update");
    // The backend's client timed out and sends it again: the recorded answer, nothing done twice.
    let again = response_json(&handler(action_event(rollback("INC-1")), &w.deps).await.unwrap());
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(proxy.count("UpdateService"), 3);
}

/// The UpdateService still unanswered at the deadline may yet take effect: the retry of the same
/// request must not roll back again, and says so.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_rollback_cut_off_in_its_update_is_not_repeated_by_its_retry() {
    let (w, proxy) = proxied().await;
    proxy.inject("UpdateService", Fault::Delay(Duration::from_secs(30)), ALWAYS);
    let cut = event_with_deadline(rollback("INC-2"), Duration::from_secs(3));
    let cut = response_json(&handler(cut, &w.deps).await.unwrap());
    assert_eq!(cut["statusCode"], 504, "{cut}");
    proxy.reset();
    tokio::time::sleep(Duration::from_secs(3)).await; // past the first one's deadline
    let retry = response_json(&handler(action_event(rollback("INC-2")), &w.deps).await.unwrap());
    assert_eq!((retry["statusCode"].as_u64(), retry["error"]["code"].as_str()), (Some(409), Some("OUTCOME_UNKNOWN")));
    assert_eq!(proxy.count("UpdateService"), 0, "no second UpdateService");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_bad_request_is_a_clear_4xx_with_no_aws_call() {
    let (w, proxy) = proxied().await;
    let invoke = async |payload| handler(action_event(payload), &w.deps).await.unwrap();
    let cases = assert_action_corpus(&proxy, ActionKind::RollbackService, invoke).await;
    assert!(cases >= 30, "the corpus covers the issue's list ({cases} cases)");
    assert_eq!(task_definition(&w.moto, &w.api).await, w.bad, "nothing rolled back");
}

#[test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
fn fuzzed_requests_never_panic_and_invalid_ones_make_no_aws_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (w, proxy) = runtime.block_on(proxied());
    fuzz_action(&proxy, ActionKind::RollbackService, |payload| {
        runtime.block_on(handler(action_event(payload), &w.deps)).unwrap()
    });
}
