//! The incident actions' bad-input corpus and fuzzing, on the base's generic strategies.
//!
//! Each case is `(what is wrong, request)`. Every one must be answered with a clear 4xx that names
//! the problem, with no AWS call made.

use proptest::prelude::*;
use serde_json::{Value, json};
use shared::testing::FaultProxy;
use shared::testing::corpus::{arbitrary_json, fuzz_config, mutated, one_mib, with, without};

use crate::contract::{ActionKind, ActionResponse};

/// A valid request for `kind`, the base the action cases break one field of.
pub fn valid_action_request(kind: ActionKind) -> Value {
    let mut request = json!({"action": kind.as_str(), "incidentId": "INC-1", "priority": "high"});
    if kind != ActionKind::NotifyHuman {
        request["target"] = json!("api");
    }
    request
}

/// Malformed requests for an incident action: each is refused with a 4xx and no AWS call. For
/// notify_human only the envelope's two essentials can refuse a page (`action`, `incidentId`);
/// its other problems are in [`messy_pages`].
pub fn bad_action_requests(kind: ActionKind) -> Vec<(String, Value)> {
    let base = valid_action_request(kind);
    let other = if kind == ActionKind::ScaleUp { ActionKind::RestartService } else { ActionKind::ScaleUp };
    let mut cases: Vec<(&str, Value)> = vec![
        ("not JSON (a string holding broken JSON)", json!("{\"action\": \"restart_service\", ")),
        ("an array instead of an object", json!([base.clone()])),
        ("null", Value::Null),
        ("a number", json!(42)),
        ("an empty object", json!({})),
        ("missing action", without(&base, "action")),
        ("missing incidentId", without(&base, "incidentId")),
        ("an unknown action", with(&base, "action", json!("reboot_everything"))),
        ("another function's action", with(&base, "action", json!(other.as_str()))),
        ("a 1 MB action", with(&base, "action", json!(one_mib('a')))),
        ("incidentId of the wrong type", with(&base, "incidentId", json!(42))),
        ("an empty incidentId", with(&base, "incidentId", json!(""))),
        ("a 1 MB incidentId", with(&base, "incidentId", json!(one_mib('9')))),
        ("a newline in incidentId", with(&base, "incidentId", json!("INC-1\nINC-2"))),
    ];
    if kind == ActionKind::NotifyHuman {
        return cases.into_iter().map(|(what, event)| (what.to_owned(), event)).collect();
    }
    cases.extend([
        ("missing priority", without(&base, "priority")),
        ("priority of the wrong type", with(&base, "priority", json!(3))),
        ("an unknown priority", with(&base, "priority", json!("urgent!!"))),
        ("dryRun of the wrong type", with(&base, "dryRun", json!("yes"))),
        ("incidentDetails of the wrong type", with(&base, "incidentDetails", json!("down"))),
        ("an unknown field", with(&base, "bogus", json!(1))),
        ("a newline in the title", with(&base, "incidentDetails", json!({"title": "API down\nSubject: spoofed"}))),
        ("a control character in the title", with(&base, "incidentDetails", json!({"title": "bell \u{7} here"}))),
        ("a 201-character title", with(&base, "incidentDetails", json!({"title": "t".repeat(201)}))),
        ("a 1 MB description", with(&base, "incidentDetails", json!({"title": "t", "description": one_mib('d')}))),
        ("a NUL in the description", with(&base, "incidentDetails", json!({"description": "a\u{0}b"}))),
        ("missing target", without(&base, "target")),
        ("a target of the wrong type", with(&base, "target", json!(["api"]))),
        ("a 1 MB target", with(&base, "target", json!(one_mib('x')))),
        ("a target with spaces and newlines", with(&base, "target", json!("api\n; rm -rf /"))),
        ("an unknown target", with(&base, "target", json!("no-such-target"))),
    ]);
    if kind == ActionKind::ClearCache {
        cases.extend([
            ("an unknown mode", with(&base, "mode", json!("nuke"))),
            ("pattern mode without keyPattern", with(&base, "mode", json!("pattern"))),
            ("an empty keyPattern", with(&base, "keyPattern", json!(""))),
            ("a 1 MB keyPattern", with(&base, "keyPattern", json!(one_mib('*')))),
            ("a newline in keyPattern", with(&base, "keyPattern", json!("session:*\nFLUSHALL"))),
        ]);
    } else {
        cases.extend([
            ("mode on an action other than clear_cache", with(&base, "mode", json!("flush"))),
            ("keyPattern on an action other than clear_cache", with(&base, "keyPattern", json!("a:*"))),
        ]);
    }
    cases.into_iter().map(|(what, event)| (what.to_owned(), event)).collect()
}

/// Page requests with cosmetic problems, each of which must still page exactly once, the response
/// saying what was changed (`details.adjustments`, naming each field here).
pub fn messy_pages() -> Vec<(String, Value, &'static [&'static str])> {
    let base = valid_action_request(ActionKind::NotifyHuman);
    let details = |d: Value| with(&base, "incidentDetails", d);
    let cases: Vec<(&str, Value, &'static [&'static str])> = vec![
        ("a 223-character title", details(json!({"title": "t".repeat(223)})), &["incidentDetails.title"]),
        (
            "a 1 MB description",
            details(json!({"title": "t", "description": one_mib('d')})),
            &["incidentDetails.description"],
        ),
        ("a newline in the title", details(json!({"title": "API down\nSubject: spoofed"})), &["incidentDetails.title"]),
        ("a control character in the title", details(json!({"title": "bell \u{7} here"})), &["incidentDetails.title"]),
        ("a NUL in the description", details(json!({"description": "a\u{0}b"})), &["incidentDetails.description"]),
        (
            "an unknown field in incidentDetails",
            details(json!({"title": "x", "severity": 1, "ticket": {"id": 7}})),
            &["incidentDetails.severity", "incidentDetails.ticket"],
        ),
        ("missing priority", without(&base, "priority"), &["priority"]),
        ("an unknown priority", with(&base, "priority", json!("urgent!!")), &["priority"]),
        ("priority of the wrong type", with(&base, "priority", json!(3)), &["priority"]),
        ("dryRun of the wrong type", with(&base, "dryRun", json!("yes")), &["dryRun"]),
        ("incidentDetails as a string", with(&base, "incidentDetails", json!("disk full")), &["incidentDetails"]),
        ("an unknown top-level field", with(&base, "source", json!("pagerduty")), &["source"]),
        ("a target it does not use", with(&base, "target", json!(["api"])), &["target"]),
    ];
    cases.into_iter().map(|(what, event, fields)| (what.to_owned(), event, fields)).collect()
}

/// Runs every case of an action's corpus through `invoke` and checks each answer
/// ([`super::assert_action_rejected`]) and that none of them reached AWS. Returns the number of cases.
pub async fn assert_action_corpus(
    proxy: &FaultProxy,
    kind: ActionKind,
    invoke: impl AsyncFn(Value) -> ActionResponse,
) -> usize {
    let cases = bad_action_requests(kind);
    for (what, payload) in &cases {
        super::assert_action_rejected(what, &invoke(payload.clone()).await);
    }
    assert_eq!(proxy.calls(), Vec::<String>::new(), "no AWS call for any bad request");
    cases.len()
}

/// Fuzzes an action: any JSON, or a valid request with one field broken. `invoke` must answer every
/// input without panicking, and an input refused as invalid must make no AWS call.
pub fn fuzz_action(proxy: &FaultProxy, kind: ActionKind, invoke: impl Fn(Value) -> ActionResponse) {
    let inputs = prop_oneof![arbitrary_json(), mutated(valid_action_request(kind))];
    proptest!(fuzz_config(), |(payload in inputs)| {
        let calls_before = proxy.calls().len();
        let response = invoke(payload);
        if response.core.error.as_ref().is_some_and(|e| e["code"] == "INVALID_REQUEST") {
            prop_assert_eq!(proxy.calls().len(), calls_before);
        }
    });
}
