#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! What the guard keeps and gives back as far as a failed invocation changed its resource
//! (`Progress`), and round 2 (the claim, the key marked as applying, the budgets) under refusals and
//! faults: on the tests' own action and the in-memory ledger.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use incident_core::action::Progress;
use incident_core::budget::{Budgets, Limit};
use incident_core::driver;
use incident_core::guard::{Guard, GuardSettings, LedgerFailure};
use incident_core::ledger::LedgerError;
use incident_core::testing::action::{Raise, raise};
use incident_core::testing::memory::{Fault, MemoryLedger};
use incident_core::testing::response_json;
use serde_json::{Value, json};
use shared::FunctionError;

fn request(incident: &str) -> Value {
    json!({"action": "scale_up", "target": "api", "incidentId": incident, "priority": "high"})
}

fn guarded(ledger: &MemoryLedger, settings: GuardSettings) -> Guard {
    Guard::new(Some(Arc::new(ledger.clone())), settings)
}

async fn invoke(action: &Raise, guard: &Guard, payload: Value, left: Duration) -> Value {
    response_json(&driver::run(action, guard, shared::testing::event_with_deadline(payload, left)).await)
}

fn failing(error: FunctionError, progress: Progress) -> Raise {
    Raise { apply_fails: Some((error, progress)), claims: true, ..raise(5) }
}

fn aws(code: &str) -> FunctionError {
    FunctionError::Aws { operation: "Test SetCount".into(), code: code.into(), message: "m".into() }
}

fn code(answer: &Value) -> (Option<u64>, Option<&str>) {
    (answer["statusCode"].as_u64(), answer["error"]["code"].as_str())
}

/// The same action on a fresh count, for a retry.
fn retry_of(action: &Raise) -> Raise {
    Raise { apply_fails: None, claims: action.claims, count: Arc::new(Mutex::new(0)), ..raise(5) }
}

#[tokio::test]
async fn a_failure_after_a_change_keeps_the_budgets_and_the_claim_and_its_retry_gets_it_again() {
    let ledger = MemoryLedger::default();
    let guard = guarded(&ledger, GuardSettings::default());
    let action = failing(aws("InvalidParameterException"), Progress::Changed);
    let first = invoke(&action, &guard, request("INC-1"), Duration::from_secs(10)).await;
    assert_eq!(code(&first), (Some(502), Some("AWS_ERROR")));
    assert_eq!(ledger.count("BUDGET#fleet"), 1, "the change happened: its budget stays spent");
    assert_eq!(ledger.claims(), ["raise/api"], "and the resource stays held for its cooldown");
    assert_eq!(ledger.key_status("INC-1"), ["COMPLETED"]);
    let retry = retry_of(&action);
    let again = invoke(&retry, &guard, request("INC-1"), Duration::from_secs(10)).await;
    assert_eq!((again["replayed"].as_bool(), code(&again)), (Some(true), code(&first)), "{again}");
    assert_eq!(*retry.applied.lock().unwrap(), 0, "never a second change");
}

#[tokio::test]
async fn a_failure_partway_keeps_the_budgets_and_lets_a_retry_carry_on() {
    let ledger = MemoryLedger::default();
    let guard = guarded(&ledger, GuardSettings::default());
    let stopped = FunctionError::DeadlineExceeded { during: "a scan (stopped cleanly)".into() };
    let action = failing(stopped, Progress::Partway);
    let first = invoke(&action, &guard, request("INC-1"), Duration::from_secs(10)).await;
    assert_eq!(code(&first), (Some(504), Some("DEADLINE_EXCEEDED")));
    assert_eq!(ledger.count("BUDGET#fleet"), 1, "part of the change happened: its budget stays spent");
    assert!(ledger.claims().is_empty(), "a change safe to repeat is not held");
    assert!(ledger.key_status("INC-1").is_empty(), "the key is removed: the retry acts");
    let retry = retry_of(&action);
    assert_eq!(invoke(&retry, &guard, request("INC-1"), Duration::from_secs(10)).await["success"], true);
    assert_eq!(ledger.count("BUDGET#fleet"), 2);
}

#[tokio::test]
async fn an_unanswered_change_leaves_its_key_applying_and_a_retry_is_told_to_look() {
    let ledger = MemoryLedger::default();
    let guard = guarded(&ledger, GuardSettings::default());
    // The action saw nothing change, but the call went unanswered: the driver takes it as unknown.
    let action = failing(aws("Timeout"), Progress::Nothing);
    let first = invoke(&action, &guard, request("INC-1"), Duration::from_millis(1500)).await;
    assert_eq!(code(&first), (Some(502), Some("AWS_ERROR")));
    assert_eq!(ledger.key_status("INC-1"), ["APPLYING"], "left as it was: nobody knows how it ended");
    let answered = Raise { apply_fails: Some((aws("InternalFailure"), Progress::Nothing)), ..raise(5) };
    let failed = invoke(&answered, &guard, request("INC-2"), Duration::from_secs(10)).await;
    assert_eq!(code(&failed), (Some(502), Some("AWS_ERROR")));
    assert!(ledger.key_status("INC-2").is_empty(), "a 500 is an answer: the call failed, and a retry acts");
    assert_eq!((ledger.count("BUDGET#fleet"), ledger.claims().len()), (1, 1), "nothing given back");
    assert_eq!(ledger.records().last().unwrap().outcome, "AWS_ERROR", "the record is written all the same");
    tokio::time::sleep(Duration::from_millis(1600)).await; // past the first one's deadline
    let retry = retry_of(&action);
    let answer = invoke(&retry, &guard, request("INC-1"), Duration::from_secs(10)).await;
    assert_eq!(code(&answer), (Some(409), Some("OUTCOME_UNKNOWN")), "{answer}");
    assert_eq!(*retry.applied.lock().unwrap(), 0);
}

#[tokio::test]
async fn work_cut_off_after_the_guards_let_it_act_is_unknown_and_before_them_is_nothing() {
    let ledger = MemoryLedger::default();
    let guard = guarded(&ledger, GuardSettings::default());
    let slow = Raise { apply_takes: Duration::from_secs(30), ..raise(5) };
    let cut = invoke(&slow, &guard, request("INC-1"), Duration::from_millis(1500)).await;
    assert_eq!(code(&cut), (Some(504), Some("DEADLINE_EXCEEDED")));
    assert_eq!(ledger.key_status("INC-1"), ["APPLYING"], "cut off while applying: the change may have happened");
    assert_eq!(ledger.count("BUDGET#fleet"), 1);

    let ledger = MemoryLedger::default();
    ledger.inject("spend", Fault::Slow(Duration::from_secs(30)), u32::MAX);
    let guard =
        guarded(&ledger, GuardSettings { round_timeout: Duration::from_millis(300), ..GuardSettings::default() });
    let refused = invoke(&raise(5), &guard, request("INC-2"), Duration::from_secs(3)).await;
    assert_eq!(code(&refused), (Some(502), Some("LEDGER_UNAVAILABLE")), "{refused}");
    assert!(ledger.key_status("INC-2").is_empty(), "nothing changed: the key is given back");
}

#[tokio::test]
async fn a_claim_winner_refused_by_a_budget_gives_the_claim_and_its_other_spends_back() {
    let ledger = MemoryLedger::default();
    let one = Limit { count: 1, window: Duration::from_secs(3600) };
    let budgets = Budgets { per_target_action: one, ..Budgets::default() };
    let guard = guarded(&ledger, GuardSettings { budgets, ..GuardSettings::default() });
    let first = Raise { claims: true, ..raise(5) };
    assert_eq!(invoke(&first, &guard, request("INC-1"), Duration::from_secs(10)).await["success"], true);
    ledger.release_claims(); // the first one's cooldown is over; its budget's window is not
    let second = retry_of(&first);
    let refused = invoke(&second, &guard, request("INC-2"), Duration::from_secs(10)).await;
    assert_eq!(code(&refused), (Some(429), Some("BUDGET_EXHAUSTED")), "{refused}");
    assert!(ledger.claims().is_empty(), "the claim it took is given back");
    assert_eq!(ledger.count("BUDGET#fleet"), 1, "and what it spent of the other budgets");
    assert_eq!(*second.applied.lock().unwrap(), 0);
}

#[tokio::test]
async fn a_key_that_cannot_be_marked_applying_refuses_unless_open() {
    let down = || {
        let ledger = MemoryLedger::default();
        ledger.inject("mark_applying", Fault::Fail(LedgerError::Unavailable("503".into())), u32::MAX);
        ledger
    };
    let (ledger, action) = (down(), raise(5));
    let guard = guarded(&ledger, GuardSettings::default());
    let closed = invoke(&action, &guard, request("INC-1"), Duration::from_secs(10)).await;
    assert_eq!(code(&closed), (Some(502), Some("LEDGER_UNAVAILABLE")), "a crash could not be told from a change");
    assert_eq!((*action.applied.lock().unwrap(), ledger.count("BUDGET#")), (0, 0), "and its spends given back");
    let open = GuardSettings { failure: LedgerFailure::Open, ..GuardSettings::default() };
    let acted = invoke(&action, &guarded(&down(), open), request("INC-1"), Duration::from_secs(10)).await;
    assert_eq!(acted["success"], true, "{acted}");
    assert!(acted["details"]["ledger"].as_str().unwrap().contains("LEDGER_FAILURE=open"), "{acted}");
}

#[tokio::test]
async fn an_unreadable_history_does_not_hold_back_a_mutating_action() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    ledger.inject("history", Fault::Fail(LedgerError::Unavailable("503".into())), u32::MAX);
    let guard = guarded(&ledger, GuardSettings::default());
    let answer = invoke(&action, &guard, request("INC-1"), Duration::from_secs(10)).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(ledger.key_status("INC-1"), ["COMPLETED"], "every guard held all the same");
    assert_eq!(ledger.count("BUDGET#fleet"), 1);
}

#[tokio::test]
async fn open_during_an_outage_of_the_counters_still_keeps_the_key_it_took() {
    let ledger = MemoryLedger::default();
    for op in ["read_guards", "spend"] {
        ledger.inject(op, Fault::Fail(LedgerError::Unavailable("503".into())), u32::MAX);
    }
    let open = GuardSettings { failure: LedgerFailure::Open, ..GuardSettings::default() };
    let guard = guarded(&ledger, open);
    let action = raise(5);
    let acted = invoke(&action, &guard, request("INC-1"), Duration::from_secs(10)).await;
    assert_eq!(acted["success"], true, "{acted}");
    assert_eq!(ledger.key_status("INC-1"), ["COMPLETED"], "the key it took is completed");
    let again = invoke(&action, &guard, request("INC-1"), Duration::from_secs(10)).await;
    assert_eq!(again["replayed"], true, "so an identical retry is replayed, not acted on: {again}");
    assert_eq!(*action.applied.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_global_pause_is_named_before_a_target_pause() {
    let (ledger, action) = (MemoryLedger::default(), raise(5));
    ledger.pause(Some("api"), "alice", "humans have api");
    ledger.pause(None, "bob", "game day");
    let guard = guarded(&ledger, GuardSettings::default());
    let answer = invoke(&action, &guard, request("INC-1"), Duration::from_secs(10)).await;
    assert_eq!(code(&answer), (Some(423), Some("AUTOMATION_PAUSED")));
    assert!(answer["message"].as_str().unwrap().contains("game day"), "{answer}");
}
