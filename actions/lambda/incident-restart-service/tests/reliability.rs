#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-restart-service when things go wrong: AWS faults injected by the fault proxy between
//! the SDK and moto, the bad-input corpus, fuzzed requests, and concurrent restarts of one service.
//! Run through scripts/test.sh.

use std::time::{Duration, Instant};

use incident_core::contract::ActionKind;
use incident_core::guard::{Guard, GuardSettings, LedgerFailure};
use incident_core::testing::corpus::{assert_action_corpus, fuzz_action, valid_action_request};
use incident_core::testing::{response_json, targets};
use incident_restart_service::{Deps, Restart, handler};
use serde_json::{Value, json};
use shared::ecs::ServiceRef;
use shared::testing::{ALWAYS, Fault, FaultProxy, action_event, create_service, emulator_config, event_with_deadline};

struct World {
    deps: Deps,
    proxy: FaultProxy,
    /// A client straight to moto, to read the state the function left.
    moto: aws_sdk_ecs::Client,
    api: ServiceRef,
    /// The ledger's table, when the world has one.
    table: Option<String>,
}

/// A service in moto behind the target name "api", and function clients that go through a fresh proxy.
async fn world(cooldown: Duration) -> World {
    let moto = aws_sdk_ecs::Client::new(&emulator_config().await);
    let api = create_service(&moto, "restart-rel", 2).await;
    let proxy = FaultProxy::start();
    let config = proxy.sdk_config(env!("CARGO_PKG_NAME")).await;
    // The ledger (which keeps the claims) behind the proxy too, so that its calls are counted and can fail.
    let (guard, table) = match cooldown.is_zero() {
        true => (Guard::default(), None),
        false => {
            let (guard, ledger) =
                incident_ledger::testing::guard(&emulator_config().await, &config, GuardSettings::default()).await;
            (guard, Some(ledger.table))
        }
    };
    let action = Restart {
        ecs: aws_sdk_ecs::Client::new(&config).into(),
        ec2: aws_sdk_ec2::Client::new(&config).into(),
        targets: targets(json!({
            "api": {"kind": "ecs_service", "cluster": api.cluster, "service": api.service,
                    "desiredCount": {"low": 2, "medium": 2, "high": 3, "critical": 4}, "maxCount": 6},
        })),
        cooldown,
    };
    World { deps: Deps { action, guard }, proxy, moto, api, table }
}

impl World {
    async fn ledger_key_status(&self, incident: &str) -> Vec<String> {
        let table = self.table.as_deref().expect("a world with a ledger");
        incident_ledger::testing::key_statuses(&emulator_config().await, table, incident).await
    }
}

async fn primary_deployment(ecs: &aws_sdk_ecs::Client, target: &ServiceRef) -> String {
    let out = ecs.describe_services().cluster(&target.cluster).services(&target.service).send().await.unwrap();
    let primary = out.services()[0].deployments().iter().find(|d| d.status() == Some("PRIMARY")).unwrap();
    primary.id().unwrap().to_owned()
}

fn restart() -> Value {
    valid_action_request(ActionKind::RestartService)
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn bursts_of_throttling_and_dropped_connections_are_retried_and_the_restart_happens() {
    let w = world(Duration::ZERO).await;
    let before = primary_deployment(&w.moto, &w.api).await;
    w.proxy.inject("DescribeServices", Fault::Throttle, 2);
    w.proxy.inject("UpdateService", Fault::TooManyRequests, 1);
    let response = response_json(&handler(action_event(restart()), &w.deps).await.unwrap());
    assert_eq!(response["success"], true, "{response}");
    assert_ne!(primary_deployment(&w.moto, &w.api).await, before, "moto holds the new deployment");
    assert_eq!(w.proxy.count("DescribeServices"), 3, "two throttled attempts, then the one that passed");
    assert_eq!(w.proxy.count("UpdateService"), 2);

    w.proxy.reset();
    w.proxy.inject("UpdateService", Fault::DropConnection, 2);
    let response = response_json(&handler(action_event(restart()), &w.deps).await.unwrap());
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(w.proxy.count("UpdateService"), 3, "two dropped connections, then the update");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn persistent_5xx_ends_in_a_502_naming_the_call_after_bounded_retries() {
    for fault in [Fault::InternalError, Fault::Unavailable] {
        let w = world(Duration::ZERO).await;
        let before = primary_deployment(&w.moto, &w.api).await;
        w.proxy.inject("UpdateService", fault, ALWAYS);
        let response = response_json(&handler(action_event(restart()), &w.deps).await.unwrap());
        assert_eq!(response["statusCode"], 502, "{fault:?}: {response}");
        assert_eq!(response["error"]["code"], "AWS_ERROR");
        let message = response["message"].as_str().unwrap();
        assert!(message.contains("ECS UpdateService"), "{fault:?}: the message names the call: {message}");
        assert_eq!(w.proxy.count("UpdateService"), 4, "the SDK's standard mode: 4 attempts, then give up");
        assert_eq!(primary_deployment(&w.moto, &w.api).await, before, "nothing changed");
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_restart_whose_update_failed_can_be_retried_at_once() {
    // The claim taken before a failed UpdateService is given back, so the retry is not refused.
    let w = world(Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // let the service's own creation age out
    w.proxy.inject("UpdateService", Fault::Unavailable, ALWAYS);
    let response = response_json(&handler(action_event(restart()), &w.deps).await.unwrap());
    assert_eq!(response["statusCode"], 502, "{response}");
    w.proxy.reset();
    let response = response_json(&handler(action_event(restart()), &w.deps).await.unwrap());
    assert_eq!(response["success"], true, "{response}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_restart_cut_off_in_its_update_is_not_repeated_by_its_retry() {
    // The UpdateService is still unanswered at the deadline: it may yet take effect, so the retry
    // must not restart again.
    let w = world(Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // let the service's own creation age out
    w.proxy.inject("UpdateService", Fault::Delay(Duration::from_secs(30)), ALWAYS);
    let cut = response_json(&handler(event_with_deadline(restart(), Duration::from_secs(3)), &w.deps).await.unwrap());
    assert_eq!(cut["statusCode"], 504, "{cut}");
    w.proxy.reset();
    assert_eq!(w.ledger_key_status("INC-1").await, ["APPLYING"], "its change may have happened");
    tokio::time::sleep(Duration::from_secs(3)).await; // past the first one's deadline
    let retry = response_json(&handler(action_event(restart()), &w.deps).await.unwrap());
    assert_eq!((retry["statusCode"].as_u64(), retry["error"]["code"].as_str()), (Some(409), Some("OUTCOME_UNKNOWN")));
    assert_eq!(w.proxy.count("UpdateService"), 0, "no second UpdateService");
}

/// The ledger that keeps the claims down: no restart (502 naming the ledger), since without the
/// claim concurrent restarts could stack; with `LEDGER_FAILURE=open` the restart goes ahead unclaimed.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn with_the_claims_ledger_down_a_restart_waits_unless_told_to_act() {
    let mut w = world(Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // let the service's own creation age out
    let before = primary_deployment(&w.moto, &w.api).await;
    w.proxy.inject("PutItem", Fault::Unavailable, ALWAYS);
    let refused = response_json(&handler(action_event(restart()), &w.deps).await.unwrap());
    assert_eq!(
        (refused["statusCode"].as_u64(), refused["error"]["code"].as_str()),
        (Some(502), Some("LEDGER_UNAVAILABLE"))
    );
    assert_eq!(w.proxy.count("UpdateService"), 0, "{refused}");
    assert_eq!(primary_deployment(&w.moto, &w.api).await, before);
    w.deps.guard.settings.failure = LedgerFailure::Open;
    let acted = response_json(&handler(action_event(restart()), &w.deps).await.unwrap());
    assert_eq!(acted["success"], true, "{acted}");
    assert_ne!(primary_deployment(&w.moto, &w.api).await, before);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn latency_beyond_the_deadline_is_a_504_answered_before_it() {
    let w = world(Duration::ZERO).await;
    w.proxy.inject("UpdateService", Fault::Delay(Duration::from_secs(30)), ALWAYS);
    let started = Instant::now();
    let lambda_timeout = Duration::from_secs(2);
    let response = response_json(&handler(event_with_deadline(restart(), lambda_timeout), &w.deps).await.unwrap());
    let took = started.elapsed();
    assert_eq!(response["statusCode"], 504, "{response}");
    assert_eq!(response["error"]["code"], "DEADLINE_EXCEEDED");
    assert!(took < lambda_timeout, "answered after {took:?}, past the {lambda_timeout:?} Lambda timeout");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn twenty_concurrent_restarts_of_one_service_start_one_deployment() {
    let cooldown = Duration::from_secs(5);
    let w = world(cooldown).await;
    // The service's creation is itself a rollout; wait until it is older than the cooldown, so that
    // only the claim (not the rollout guard) stands between the twenty calls.
    tokio::time::sleep(cooldown + Duration::from_millis(200)).await;
    let before = primary_deployment(&w.moto, &w.api).await;
    // All 20 in flight at once (one task, concurrent requests to the ledger and ECS), each for an
    // incident of its own, so that only the claim stands between them.
    let deps = &w.deps;
    let calls = (0..20).map(|i| async move {
        let mut request = restart();
        request["incidentId"] = json!(format!("INC-STORM-{i}"));
        response_json(&handler(action_event(request), deps).await.unwrap())
    });
    let responses: Vec<Value> = futures::future::join_all(calls).await;
    let started: Vec<&Value> = responses.iter().filter(|r| r["success"] == true).collect();
    assert_eq!(started.len(), 1, "exactly one restart: {responses:#?}");
    // A claim's loser gives back what it spent a moment after spending it: a budget read in between
    // may find the budget full (429). Either way nothing was done.
    for refused in responses.iter().filter(|r| r["success"] != true) {
        assert!([409, 429].contains(&refused["statusCode"].as_u64().unwrap()), "{refused}");
    }
    assert_eq!(w.proxy.count("UpdateService"), 1, "one UpdateService reached AWS");
    let claims =
        w.proxy.bodies("PutItem").into_iter().filter(|b| String::from_utf8_lossy(b).contains("CLAIM#")).count();
    // Those that observed the winner's new deployment were refused by the rollout guard before it.
    assert!((1..=20).contains(&claims), "each took its chance at the claim at most once: {claims}");
    let table = w.table.as_deref().unwrap();
    let spent = incident_ledger::testing::spent(&emulator_config().await, table, "BUDGET#").await;
    assert_eq!(spent, 3, "only the winner's spends stay counted, once in each of its three budgets");
    let after = primary_deployment(&w.moto, &w.api).await;
    assert_ne!(after, before);
    assert_eq!(started[0]["details"]["deploymentId"], after);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_bad_request_is_a_clear_4xx_with_no_aws_call() {
    let w = world(Duration::from_secs(300)).await;
    let invoke = async |payload| handler(action_event(payload), &w.deps).await.unwrap();
    let cases = assert_action_corpus(&w.proxy, ActionKind::RestartService, invoke).await;
    assert!(cases >= 30, "the corpus covers the issue's list ({cases} cases)");
}

#[test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
fn fuzzed_requests_never_panic_and_invalid_ones_make_no_aws_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let w = runtime.block_on(world(Duration::from_secs(300)));
    fuzz_action(&w.proxy, ActionKind::RestartService, |payload| {
        runtime.block_on(handler(action_event(payload), &w.deps)).unwrap()
    });
}
