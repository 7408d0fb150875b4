#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The one driver and its guard, on an action of the tests' own and the in-memory ledger with
//! faults: the order of an action's life and the guard's policy (what is refused, retried, given
//! back, and when), with no emulator. The DynamoDB side is tested in `incident-ledger` and in
//! each action's emulator tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use incident_core::action::{Progress, View};
use incident_core::driver;
use incident_core::guard::{Guard, GuardSettings, LedgerFailure};
use incident_core::ledger::LedgerError;
use incident_core::testing::action::{Raise, raise};
use incident_core::testing::memory::{Fault, MemoryLedger};
use incident_core::testing::response_json;
use serde_json::{Value, json};
use shared::FunctionError;

fn request(incident: &str, extra: Value) -> Value {
    let mut payload = json!({"action": "scale_up", "target": "api", "incidentId": incident, "priority": "high"});
    payload.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    payload
}

fn guarded(ledger: &MemoryLedger, settings: GuardSettings) -> Guard {
    Guard::new(Some(Arc::new(ledger.clone())), settings)
}

async fn invoke(action: &Raise, guard: &Guard, payload: Value, left: Duration) -> Value {
    response_json(&driver::run(action, guard, shared::testing::event_with_deadline(payload, left)).await)
}

#[tokio::test]
async fn an_invalid_request_never_reaches_the_work_or_the_ledger() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    let bad = request("INC-1", json!({"priority": 3}));
    let answer = invoke(&action, &guarded(&ledger, GuardSettings::default()), bad, Duration::from_secs(10)).await;
    assert_eq!((answer["statusCode"].as_u64(), answer["incidentId"].as_str()), (Some(400), Some("INC-1")));
    assert!(action.observed.lock().unwrap().is_empty());
    assert!(ledger.calls().is_empty(), "{:?}", ledger.calls());
}

#[tokio::test]
async fn work_past_the_deadline_is_answered_with_504_before_it() {
    let action = Raise { apply_takes: Duration::from_secs(30), ..raise(5) };
    let started = Instant::now();
    let answer = invoke(&action, &Guard::default(), request("INC-1", json!({})), Duration::from_millis(900)).await;
    assert_eq!(
        (answer["statusCode"].as_u64(), answer["error"]["code"].as_str()),
        (Some(504), Some("DEADLINE_EXCEEDED"))
    );
    assert!(started.elapsed() < Duration::from_millis(900), "answered before the deadline itself");
}

#[tokio::test]
async fn failures_keep_their_progress_details_and_adjustments_are_reported() {
    let action = Raise { apply_fails: Some((FunctionError::Conflict("busy".into()), Progress::Nothing)), ..raise(5) };
    let forwarded = request("INC-1", json!({"incidentDetails": {"title": "x", "ticketUrl": "https://example.com/1"}}));
    let answer = invoke(&action, &Guard::default(), forwarded, Duration::from_secs(10)).await;
    assert_eq!(answer["statusCode"], 409);
    assert_eq!(answer["details"]["tried"], true);
    assert_eq!(
        answer["details"]["adjustments"],
        json!([{"field": "incidentDetails.ticketUrl", "change": "unknown field; ignored"}])
    );
}

#[tokio::test]
async fn an_attempt_that_changed_nothing_spends_nothing_and_its_retry_acts() {
    let ledger = MemoryLedger::default();
    let failing = Raise {
        // An error AWS answered with: the call did nothing.
        apply_fails: Some((
            FunctionError::Aws {
                operation: "Test".into(),
                code: "InvalidParameterException".into(),
                message: "no".into(),
            },
            Progress::Nothing,
        )),
        ..raise(5)
    };
    let guard = guarded(&ledger, GuardSettings::default());
    let answer = invoke(&failing, &guard, request("INC-1", json!({})), Duration::from_secs(10)).await;
    assert_eq!(answer["statusCode"], 502, "{answer}");
    assert_eq!(ledger.count("BUDGET#"), 0, "the failed attempt's spend was given back");
    assert!(ledger.key_status("INC-1").is_empty(), "its key was removed, so the retry acts");
    let retry = Raise { apply_fails: None, count: Arc::clone(&failing.count), ..raise(5) };
    let answer = invoke(&retry, &guard, request("INC-1", json!({})), Duration::from_secs(10)).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(ledger.count("BUDGET#fleet"), 1);
    let nothing = invoke(&retry, &guard, request("INC-2", json!({})), Duration::from_secs(10)).await;
    assert_eq!(nothing["message"], "No change");
    assert_eq!(ledger.count("BUDGET#fleet"), 1, "a plan that changes nothing spends nothing");
}

#[tokio::test]
async fn identical_requests_are_replayed_and_another_identity_acts() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    let guard = guarded(&ledger, GuardSettings::default());
    let first = invoke(&action, &guard, request("INC-1", json!({})), Duration::from_secs(10)).await;
    let again = invoke(&action, &guard, request("INC-1", json!({})), Duration::from_secs(10)).await;
    assert_eq!((again["replayed"].as_bool(), &again["message"]), (Some(true), &first["message"]));
    assert_eq!(*action.applied.lock().unwrap(), 1);
    let critical =
        invoke(&action, &guard, request("INC-1", json!({"priority": "critical"})), Duration::from_secs(10)).await;
    assert_ne!(critical["replayed"], true, "another priority is another request: {critical}");
    let outcomes: Vec<String> = ledger.records().into_iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, ["success", "replayed", "success"]);
}

#[tokio::test]
async fn a_pause_refuses_before_observing_and_is_recorded() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    ledger.pause(Some("api"), "alice", "humans have it");
    let answer = invoke(
        &action,
        &guarded(&ledger, GuardSettings::default()),
        request("INC-1", json!({})),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        (answer["statusCode"].as_u64(), answer["error"]["code"].as_str()),
        (Some(423), Some("AUTOMATION_PAUSED"))
    );
    assert!(answer["message"].as_str().unwrap().contains("incident-ledger resume --target api"), "{answer}");
    assert!(action.observed.lock().unwrap().is_empty(), "refused before any call to the target");
    assert_eq!(ledger.records()[0].outcome, "AUTOMATION_PAUSED");
    assert!(ledger.key_status("INC-1").is_empty(), "the refusal's key was given back");
}

#[tokio::test]
async fn a_claim_loser_spends_nothing_and_changes_nothing() {
    let ledger = MemoryLedger::default();
    let guard = guarded(&ledger, GuardSettings::default());
    let first = Raise { claims: true, ..raise(5) };
    assert_eq!(invoke(&first, &guard, request("INC-1", json!({})), Duration::from_secs(10)).await["success"], true);
    let second = Raise { claims: true, count: Arc::new(Mutex::new(0)), ..raise(5) };
    let lost = invoke(&second, &guard, request("INC-2", json!({})), Duration::from_secs(10)).await;
    assert_eq!((lost["statusCode"].as_u64(), lost["error"]["code"].as_str()), (Some(409), Some("CONFLICT")));
    assert!(lost["message"].as_str().unwrap().contains("a raise was already started"), "{lost}");
    assert_eq!(ledger.count("BUDGET#fleet"), 1, "only the winner spent");
    assert_eq!(*second.applied.lock().unwrap(), 0);
    assert_eq!(ledger.claims(), ["raise/api"], "the winner's claim stays for its cooldown");
}

#[tokio::test]
async fn contention_is_retried_and_the_action_acts() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    let conflict = Fault::Fail(LedgerError::Contention("TransactionConflict".into()));
    ledger.inject("spend", conflict.clone(), 4);
    ledger.inject("finish", conflict, 2);
    let answer = invoke(
        &action,
        &guarded(&ledger, GuardSettings::default()),
        request("INC-1", json!({})),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(ledger.count("BUDGET#"), 3, "every budget spent once");
    assert_eq!(ledger.key_status("INC-1"), ["COMPLETED"], "the finish was retried too");
}

#[tokio::test]
async fn endless_contention_refuses_even_when_open_and_nothing_is_spent() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    ledger.inject("spend", Fault::Fail(LedgerError::Contention("TransactionConflict".into())), u32::MAX);
    let open = GuardSettings {
        failure: LedgerFailure::Open,
        round_timeout: Duration::from_millis(300),
        ..GuardSettings::default()
    };
    let answer = invoke(&action, &guarded(&ledger, open), request("INC-1", json!({})), Duration::from_secs(10)).await;
    assert_eq!(
        (answer["statusCode"].as_u64(), answer["error"]["code"].as_str()),
        (Some(502), Some("LEDGER_UNAVAILABLE"))
    );
    assert!(answer["message"].as_str().unwrap().contains("contention"), "{answer}");
    assert_eq!(*action.applied.lock().unwrap(), 0, "a conflict never switches the budgets off");
}

#[tokio::test]
async fn an_outage_refuses_unless_open_and_open_acts() {
    let down = || {
        let ledger = MemoryLedger::default();
        for op in ["read_guards", "history", "take_key", "finish", "record"] {
            ledger.inject(op, Fault::Fail(LedgerError::Unavailable("503".into())), u32::MAX);
        }
        ledger
    };
    let action = raise(5);
    let closed = invoke(
        &action,
        &guarded(&down(), GuardSettings::default()),
        request("INC-1", json!({})),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(closed["error"]["code"], "LEDGER_UNAVAILABLE", "{closed}");
    assert!(closed["message"].as_str().unwrap().contains("memory"), "names the table: {closed}");
    assert_eq!(*action.applied.lock().unwrap(), 0);
    let open = GuardSettings { failure: LedgerFailure::Open, ..GuardSettings::default() };
    let acted = invoke(&action, &guarded(&down(), open), request("INC-1", json!({})), Duration::from_secs(10)).await;
    assert_eq!(acted["success"], true, "{acted}");
    assert!(acted["details"]["ledger"].as_str().unwrap().contains("not fully used"), "{acted}");
}

#[tokio::test]
async fn a_hanging_ledger_refuses_before_the_deadline_and_never_after_acting() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    ledger.inject("take_key", Fault::Hang, u32::MAX);
    let started = Instant::now();
    let answer = invoke(
        &action,
        &guarded(&ledger, GuardSettings::default()),
        request("INC-1", json!({})),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(answer["error"]["code"], "LEDGER_UNAVAILABLE", "{answer}");
    assert!(started.elapsed() < Duration::from_millis(2_600), "within the deadline: {:?}", started.elapsed());
    assert_eq!(*action.applied.lock().unwrap(), 0);
}

#[tokio::test]
async fn an_invocation_cut_off_after_changing_leaves_its_key_applying_and_a_retry_does_not_act() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    ledger.inject("finish", Fault::Hang, 1);
    let guard =
        guarded(&ledger, GuardSettings { round_timeout: Duration::from_millis(500), ..GuardSettings::default() });
    let first = invoke(&action, &guard, request("INC-1", json!({})), Duration::from_secs(3)).await;
    assert_eq!(first["success"], true, "the change happened and is answered: {first}");
    assert_eq!(ledger.key_status("INC-1"), ["APPLYING"], "the record could not be written");
    let early = invoke(&action, &guard, request("INC-1", json!({})), Duration::from_secs(3)).await;
    assert_eq!(early["error"]["code"], "IN_PROGRESS", "before its deadline, its holder may still be at work: {early}");
    tokio::time::sleep(Duration::from_secs(2)).await; // past the first one's deadline
    let retry = invoke(&action, &guard, request("INC-1", json!({})), Duration::from_secs(3)).await;
    assert_eq!((retry["statusCode"].as_u64(), retry["error"]["code"].as_str()), (Some(409), Some("OUTCOME_UNKNOWN")));
    assert!(retry["message"].as_str().unwrap().contains("incident-ledger history INC-1"), "{retry}");
    assert_eq!(*action.applied.lock().unwrap(), 1, "never twice");
}

#[tokio::test]
async fn a_stale_token_answers_with_the_plan_a_dry_run_shows() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    let guard = guarded(&ledger, GuardSettings::default());
    let dry = invoke(&action, &guard, request("INC-1", json!({"dryRun": true})), Duration::from_secs(10)).await;
    assert!(ledger.calls().is_empty(), "a dry run leaves the ledger alone: {:?}", ledger.calls());
    let token = dry["details"]["planToken"].as_str().unwrap().to_owned();
    *action.count.lock().unwrap() = 1; // the count moved; the call (set to 5) did not
    let approved =
        invoke(&action, &guard, request("INC-1", json!({"planToken": token})), Duration::from_secs(10)).await;
    assert_eq!(approved["success"], true, "{approved}");
    let other = Raise { wanted: 7, count: Arc::new(Mutex::new(0)), ..raise(7) };
    let stale = invoke(&other, &guard, request("INC-2", json!({"planToken": token})), Duration::from_secs(10)).await;
    assert_eq!(stale["error"]["code"], "STALE_PLAN", "{stale}");
    assert_eq!(stale["details"]["plannedCalls"][0]["params"]["desiredCount"], 7);
    assert_eq!(*other.observed.lock().unwrap(), [View::Apply, View::Preview], "re-observed as a dry run would");
}

/// A plan that needs approval: without a token, a 409 with the plan (not its token), nothing applied
/// and nothing spent; with a dry run's token, it applies.
#[tokio::test]
async fn a_plan_needing_approval_waits_for_a_token_and_then_applies() {
    let ledger = MemoryLedger::default();
    let action = Raise { approval: Some("it changes code".into()), ..raise(5) };
    let guard = guarded(&ledger, GuardSettings::default());
    let asked = invoke(&action, &guard, request("INC-1", json!({})), Duration::from_secs(10)).await;
    assert_eq!(asked["statusCode"], 409, "{asked}");
    assert_eq!(asked["error"]["code"], "APPROVAL_REQUIRED", "{asked}");
    assert!(asked["message"].as_str().unwrap().contains("it changes code"), "{asked}");
    assert_eq!(asked["details"]["plannedCalls"][0]["params"]["desiredCount"], 5);
    assert_eq!((*action.applied.lock().unwrap(), *action.count.lock().unwrap()), (0, 0), "nothing applied");
    assert!(!ledger.calls().contains(&"spend"), "nothing spent: {:?}", ledger.calls());
    assert!(asked["details"].get("planToken").is_none(), "the token comes from a dry run, not a refusal: {asked}");
    let dry = invoke(&action, &guard, request("INC-1", json!({"dryRun": true})), Duration::from_secs(10)).await;
    assert_eq!(dry["success"], true, "a dry run needs no approval: {dry}");
    let token = dry["details"]["planToken"].as_str().unwrap().to_owned();
    let approved =
        invoke(&action, &guard, request("INC-1", json!({"planToken": token})), Duration::from_secs(10)).await;
    assert_eq!(approved["success"], true, "{approved}");
    assert_eq!(*action.count.lock().unwrap(), 5);
}

/// What incident-playbook verifies: a change, with the typed state it left in the answer, and a
/// pending verification beside its record; nothing for a dry run, a plan with nothing to do, or a
/// replay.
#[tokio::test]
async fn only_a_change_leaves_its_state_to_verify() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    let guard = guarded(&ledger, GuardSettings::default());
    let dry = invoke(&action, &guard, request("INC-1", json!({"dryRun": true})), Duration::from_secs(10)).await;
    let applied = invoke(&action, &guard, request("INC-1", json!({})), Duration::from_secs(10)).await;
    let replayed = invoke(&action, &guard, request("INC-1", json!({})), Duration::from_secs(10)).await;
    let nothing = invoke(&action, &guard, request("INC-2", json!({})), Duration::from_secs(10)).await;
    assert_eq!(applied["details"]["after"], json!({"kind": "ecs_service", "desiredCount": 5}), "{applied}");
    for unchanged in [&dry, &nothing] {
        assert!(unchanged["details"].get("after").is_none(), "{unchanged}");
    }
    assert_eq!(replayed["details"]["after"], applied["details"]["after"], "the recorded answer");
    let changed: Vec<(String, bool)> = ledger.records().into_iter().map(|r| (r.outcome, r.changed)).collect();
    let expected = [("success", true), ("replayed", false), ("success", false)].map(|(o, c)| (o.to_owned(), c));
    assert_eq!(changed, expected);
}
