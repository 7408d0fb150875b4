#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The guard on the ledger's DynamoDB table, in the emulator, around an action of the tests' own
//! (`incident_core::testing::action::Raise`): idempotency, budgets in a storm, pause, the ledger
//! down or slow, and DynamoDB's transaction conflicts, which moto never raises and the fault proxy
//! injects (moto serialises DynamoDB requests, see scripts/emulator.py).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use incident_core::budget::{Budgets, Limit};
use incident_core::driver;
use incident_core::guard::{Guard, GuardSettings, LedgerFailure, idempotency_key};
use incident_core::testing::action::{Raise, raise};
use incident_core::testing::response_json;
use incident_ledger::DynamoLedger;
use serde_json::{Value, json};
use shared::testing::{ALWAYS, Fault, FaultProxy, emulator_config, event_with_deadline};

fn request(incident: &str, target: &str, priority: &str) -> Value {
    json!({"action": "scale_up", "target": target, "incidentId": incident, "priority": priority})
}

async fn invoke(action: &Raise, guard: &Guard, payload: Value) -> Value {
    invoke_within(action, guard, payload, Duration::from_secs(30)).await
}

async fn invoke_within(action: &Raise, guard: &Guard, payload: Value, left: Duration) -> Value {
    response_json(&driver::run(action, guard, event_with_deadline(payload, left)).await)
}

/// A guard on a new table, its calls through a fresh proxy.
async fn guarded(settings: GuardSettings) -> (Guard, DynamoLedger, FaultProxy) {
    let proxy = FaultProxy::start();
    let function = proxy.sdk_config("incident-scale-up").await;
    let (guard, ledger) = incident_ledger::testing::guard(&emulator_config().await, &function, settings).await;
    (guard, ledger, proxy)
}

fn budgets(per_target_action: u64, per_target: u64, fleet: u64) -> GuardSettings {
    let limit = |count| Limit { count, window: Duration::from_secs(3600) };
    let budgets =
        Budgets { per_target_action: limit(per_target_action), per_target: limit(per_target), fleet: limit(fleet) };
    GuardSettings { budgets, ..GuardSettings::default() }
}

/// A retried request (the backend after a client timeout) answers with the recorded response and
/// does nothing; a higher priority is another request and acts.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_retried_request_is_replayed_and_an_escalation_acts() {
    let (guard, ledger, _) = guarded(GuardSettings::default()).await;
    let action = raise(5);
    let first = invoke(&action, &guard, request("INC-7", "api", "high")).await;
    assert_eq!((first["success"].as_bool(), first["details"]["earlierRecords"].as_u64()), (Some(true), Some(0)));
    let again = invoke(&action, &guard, request("INC-7", "api", "high")).await;
    assert_eq!((again["replayed"].as_bool(), &again["message"]), (Some(true), &first["message"]));
    let critical = invoke(&Raise { wanted: 10, ..action.clone() }, &guard, request("INC-7", "api", "critical")).await;
    assert_eq!((critical["success"].as_bool(), critical["details"]["earlierRecords"].as_u64()), (Some(true), Some(2)));
    assert_eq!(*action.applied.lock().unwrap(), 2, "the replay did nothing");
    let history = ledger.history("INC-7").await.unwrap();
    let outcomes: Vec<&str> = history.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["success", "replayed", "success"]);
    let state = |n| Some(incident_core::state::State::EcsService { desired_count: n, autoscaling: None });
    assert_eq!((history[0].before.clone(), history[0].after.clone()), (state(0), state(5)), "typed states");
}

/// Twenty identical requests at once (a burst of retries): one acts; the others are answered with
/// its response, or told it is in progress.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn twenty_identical_requests_at_once_act_once() {
    let (guard, _, _) = guarded(GuardSettings::default()).await;
    let action = Raise { apply_takes: Duration::from_millis(200), ..raise(5) };
    let runs = (0..20).map(|_| invoke(&action, &guard, request("INC-7", "database", "critical")));
    let answers: Vec<Value> = futures::future::join_all(runs).await;
    let acted = answers.iter().filter(|a| a["success"] == true && a["replayed"] != true).count();
    let replayed = answers.iter().filter(|a| a["replayed"] == true).count();
    let in_progress = answers.iter().filter(|a| a["error"]["code"] == "IN_PROGRESS").count();
    assert_eq!((acted, replayed + in_progress), (1, 19), "{answers:?}");
    assert_eq!(*action.applied.lock().unwrap(), 1);
}

/// An invocation that crashed left its key in progress: it is its own until that invocation's
/// deadline, and the next attempt after it acts.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_crashed_invocation_does_not_block_its_request_past_its_deadline() {
    let (guard, ledger, _) = guarded(GuardSettings::default()).await;
    let action = raise(5);
    let payload = request("INC-7", "api", "high");
    let parsed =
        incident_core::contract::ActionRequest::parse(payload.clone(), incident_core::contract::ActionKind::ScaleUp)
            .unwrap();
    let key = idempotency_key(incident_core::contract::ActionKind::ScaleUp, &parsed, &json!({}));
    let setup = emulator_config().await;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let crashed =
        |until| incident_ledger::testing::leave_in_progress(&setup, &ledger.table, &key, "crashed-request", until);
    crashed(now_ms + 60_000).await;
    let refused = invoke(&action, &guard, payload.clone()).await;
    assert_eq!(refused["error"]["code"], "IN_PROGRESS", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("crashed-request"), "{refused}");
    crashed(now_ms - 1_000).await;
    let acted = invoke(&action, &guard, payload).await;
    assert_eq!(acted["success"], true, "{acted}");
    assert_eq!(*action.applied.lock().unwrap(), 1);
}

/// Budgets: one target and action, one target across actions, and the fleet. A spent budget is a
/// 429 naming it, before anything is observed; a "no change" spends nothing.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn each_budget_is_spent_and_then_refused_without_a_call() {
    let (guard, _, _) = guarded(budgets(2, 3, 4)).await;
    assert_eq!(invoke(&raise(0), &guard, request("INC-B0", "api", "high")).await["message"], "No change");
    for (incident, wanted) in [("INC-B1", 5), ("INC-B2", 10)] {
        assert_eq!(invoke(&raise(wanted), &guard, request(incident, "api", "high")).await["success"], true);
    }
    let third = raise(5);
    let refused = invoke(&third, &guard, request("INC-B3", "api", "high")).await;
    assert_eq!(
        (refused["statusCode"].as_u64(), refused["error"]["code"].as_str()),
        (Some(429), Some("BUDGET_EXHAUSTED"))
    );
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("per target and action (api, scale_up)") && message.contains("2 of 2"), "{message}");
    assert!(message.contains("resets at"), "{message}");
    assert!(third.observed.lock().unwrap().is_empty(), "refused before observing");
    // Another target: its budgets are fresh; the fleet (4) has two left.
    assert_eq!(invoke(&raise(5), &guard, request("INC-B4", "database", "high")).await["success"], true);
    assert_eq!(invoke(&raise(5), &guard, request("INC-B5", "cache", "high")).await["success"], true);
    let storm = invoke(&raise(5), &guard, request("INC-B6", "web", "high")).await;
    assert_eq!(storm["error"]["code"], "BUDGET_EXHAUSTED", "{storm}");
    assert!(storm["message"].as_str().unwrap().contains("fleet-wide"), "{storm}");
}

/// The storm guard in a storm: fifty mutations of fifty targets at once against a fleet budget of
/// twenty. Each counter is one conditional UpdateItem, which DynamoDB serialises: exactly twenty
/// act, thirty answer 429, none answers 5xx, and the counter ends at twenty. Some spends meet a
/// transaction conflict on the way, which is retried.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn fifty_mutations_of_fifty_targets_against_a_fleet_budget_of_twenty() {
    // The emulator serves DynamoDB one request at a time (scripts/emulator.py), so the storm's two
    // hundred writes queue for seconds here, where DynamoDB takes them at once: rounds of 10 s.
    let settings = GuardSettings { round_timeout: Duration::from_secs(10), ..budgets(3, 6, 20) };
    let (guard, _, proxy) = guarded(settings).await;
    proxy.inject("UpdateItem", Fault::TransactionConflict, 15);
    let actions: Vec<Raise> = (0..50).map(|_| raise(5)).collect();
    let runs = actions
        .iter()
        .enumerate()
        .map(|(i, a)| invoke(a, &guard, request(&format!("INC-S{i}"), &format!("t{i}"), "high")));
    let answers: Vec<Value> = futures::future::join_all(runs).await;
    let acted = answers.iter().filter(|a| a["success"] == true).count();
    let refused = answers.iter().filter(|a| a["statusCode"] == 429).count();
    let failed: Vec<&Value> = answers.iter().filter(|a| a["statusCode"].as_u64().unwrap_or(0) >= 500).collect();
    assert_eq!((acted, refused, failed.len()), (20, 30, 0), "{failed:?}");
    assert_eq!(actions.iter().map(|a| *a.applied.lock().unwrap()).sum::<u32>(), 20);
}

/// Pause: globally, then for one target; dry runs go on; resume lifts each. The refusal names the
/// exact command that lifts it.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn paused_automation_refuses_mutations_until_resumed() {
    let (guard, ledger, _) = guarded(GuardSettings::default()).await;
    ledger.pause(None, "alice", "humans have the incident").await.unwrap();
    let action = raise(5);
    let refused = invoke(&action, &guard, request("INC-7", "api", "high")).await;
    assert_eq!(
        (refused["statusCode"].as_u64(), refused["error"]["code"].as_str()),
        (Some(423), Some("AUTOMATION_PAUSED"))
    );
    assert!(refused["message"].as_str().unwrap().contains("globally by alice"), "{refused}");
    let mut dry = request("INC-7", "api", "high");
    dry["dryRun"] = json!(true);
    assert_eq!(invoke(&action, &guard, dry).await["success"], true, "dry runs are never paused");
    ledger.resume(None).await.unwrap();
    ledger.pause(Some("api"), "bob", "investigating api").await.unwrap();
    assert_eq!(invoke(&raise(5), &guard, request("INC-P2", "database", "high")).await["success"], true);
    let refused = invoke(&action, &guard, request("INC-7", "api", "high")).await;
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("for api by bob") && message.contains("incident-ledger resume --target api"), "{message}");
    ledger.resume(Some("api")).await.unwrap();
    assert_eq!(invoke(&action, &guard, request("INC-7", "api", "high")).await["success"], true);
    assert_eq!(*action.applied.lock().unwrap(), 1);
    let outcomes: Vec<String> = ledger.history("INC-7").await.unwrap().into_iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, ["AUTOMATION_PAUSED", "AUTOMATION_PAUSED", "success"], "refusals are recorded, dry runs not");
}

/// The ledger down: a mutating action does nothing and says so (502 naming the table);
/// `LEDGER_FAILURE=open` acts, and says it went without the ledger.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn with_the_ledger_down_a_mutating_action_does_nothing_unless_told_to_act() {
    let (mut guard, ledger, proxy) = guarded(GuardSettings::default()).await;
    for operation in ["BatchGetItem", "Query", "PutItem", "UpdateItem", "TransactWriteItems"] {
        proxy.inject(operation, Fault::Unavailable, ALWAYS);
    }
    let action = raise(5);
    let refused = invoke(&action, &guard, request("INC-7", "api", "high")).await;
    assert_eq!(
        (refused["statusCode"].as_u64(), refused["error"]["code"].as_str()),
        (Some(502), Some("LEDGER_UNAVAILABLE"))
    );
    assert!(refused["message"].as_str().unwrap().contains(&ledger.table), "{refused}");
    assert_eq!(*action.applied.lock().unwrap(), 0);
    guard.settings.failure = LedgerFailure::Open;
    let acted = invoke(&action, &guard, request("INC-7", "api", "high")).await;
    assert_eq!(acted["success"], true, "{acted}");
    assert!(acted["details"]["ledger"].as_str().unwrap().contains("not fully used (LEDGER_FAILURE=open)"), "{acted}");
}

/// The incident's history cannot be read (its Query fails): the action still answers, guarded by
/// the rest of the ledger, and its answer does not claim a count of earlier records it never read.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_unreadable_history_counts_no_earlier_records() {
    let (guard, ledger, proxy) = guarded(GuardSettings::default()).await;
    let action = raise(5);
    let first = invoke(&action, &guard, request("INC-H1", "api", "high")).await;
    assert_eq!(first["details"]["earlierRecords"], 0, "{first}");
    proxy.inject("Query", Fault::Unavailable, ALWAYS);
    let answer = invoke(&action, &guard, request("INC-H1", "api", "critical")).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert!(answer["details"].get("earlierRecords").is_none(), "unknown, not 0: {answer}");
    proxy.reset();
    assert_eq!(ledger.history("INC-H1").await.unwrap().len(), 2, "both recorded");
}

/// A brownout: every DynamoDB call answers after 30 s. A mutating action refuses (502) well before
/// its deadline and never acts; the SDK's own attempts (4 x 10 s) would have outlasted a 15 s Lambda.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_slow_ledger_is_refused_before_the_deadline_and_nothing_is_done() {
    let (guard, _, proxy) = guarded(GuardSettings::default()).await;
    for operation in ["BatchGetItem", "Query", "PutItem", "UpdateItem", "TransactWriteItems", "DeleteItem"] {
        proxy.inject(operation, Fault::Delay(Duration::from_secs(30)), ALWAYS);
    }
    let action = raise(5);
    let started = Instant::now();
    let answer = invoke_within(&action, &guard, request("INC-SLOW", "api", "high"), Duration::from_secs(15)).await;
    assert_eq!(answer["error"]["code"], "LEDGER_UNAVAILABLE", "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10), "answered after {:?}", started.elapsed());
    assert_eq!(*action.applied.lock().unwrap(), 0);
}

/// DynamoDB cancels a transaction that meets another on one of its items, and fails a write that
/// meets one; the SDK does not retry either. The guard does, with jitter: the action acts once,
/// each budget is spent once, and its record is written.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn transaction_conflicts_are_retried_and_never_turn_a_budget_into_a_failure() {
    let (guard, ledger, proxy) = guarded(budgets(3, 6, 20)).await;
    proxy.inject("UpdateItem", Fault::TransactionConflict, 3);
    proxy.inject("TransactWriteItems", Fault::TransactionConflict, 2);
    let action = raise(5);
    let answer = invoke(&action, &guard, request("INC-C1", "api", "high")).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(*action.applied.lock().unwrap(), 1);
    assert_eq!(ledger.history("INC-C1").await.unwrap().len(), 1, "the record was written after its conflicts");
    // Contention that never ends: refused (never acted blind), even with LEDGER_FAILURE=open.
    let mut open = budgets(3, 6, 20);
    (open.failure, open.round_timeout) = (LedgerFailure::Open, Duration::from_millis(500));
    let guard = Guard::new(Some(Arc::new(ledger.clone())), open);
    proxy.inject("UpdateItem", Fault::TransactionConflict, ALWAYS);
    let blocked = Raise { count: Arc::new(Mutex::new(0)), ..raise(5) };
    let answer = invoke(&blocked, &guard, request("INC-C2", "api", "high")).await;
    assert_eq!(answer["error"]["code"], "LEDGER_UNAVAILABLE", "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("contention"), "{answer}");
    assert_eq!(*blocked.applied.lock().unwrap(), 0);
}

/// A throttled counter (a hot item in a storm) is contention, as a conflict is: retried within the
/// round, then refused, and never taken for an outage that `LEDGER_FAILURE=open` would act through.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_throttled_counter_is_contention_and_never_switches_the_guards_off() {
    let mut open = budgets(3, 6, 20);
    (open.failure, open.round_timeout) = (LedgerFailure::Open, Duration::from_millis(800));
    let (guard, ledger, proxy) = guarded(open).await;
    proxy.inject("UpdateItem", Fault::Throttle, 2);
    let action = raise(5);
    let answer = invoke(&action, &guard, request("INC-T1", "api", "high")).await;
    assert_eq!(answer["success"], true, "a brief throttle is retried: {answer}");
    proxy.inject("UpdateItem", Fault::Throttle, ALWAYS);
    let blocked = Raise { count: Arc::new(Mutex::new(0)), ..raise(5) };
    let answer = invoke(&blocked, &guard, request("INC-T2", "api", "high")).await;
    assert_eq!(answer["error"]["code"], "LEDGER_UNAVAILABLE", "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("contention"), "{answer}");
    assert_eq!(*blocked.applied.lock().unwrap(), 0, "never acted blind in a storm");
    proxy.reset();
    assert_eq!(ledger.history("INC-T2").await.unwrap().len(), 1, "the refusal is recorded");
}

/// The key's PutItem was carried out but its answer lost: the SDK sends it again, finds the key
/// in progress, and must see that it is its own invocation's rather than refuse its own request.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_key_write_whose_answer_was_lost_is_its_own_on_the_sdks_retry() {
    let (guard, ledger, proxy) = guarded(budgets(3, 6, 20)).await;
    proxy.inject("PutItem", Fault::LoseAnswer, 1);
    let action = raise(5);
    let answer = invoke(&action, &guard, request("INC-L1", "api", "high")).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(proxy.count("PutItem"), 2, "the lost answer, then the SDK's retry");
    assert_eq!(*action.applied.lock().unwrap(), 1);
    assert_eq!(ledger.history("INC-L1").await.unwrap()[0].outcome, "success");
}
