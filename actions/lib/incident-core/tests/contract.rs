#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The request contract at its boundaries: the longest title, description and id pass, one more
//! character is refused naming its field; what an invalid request echoes back; a detail added to an
//! answer. Written for the mutants cargo-mutants found surviving in contract.rs (docs/mutants.md).

use incident_core::contract::{
    ActionKind, ActionRequest, ActionResponse, MAX_DESCRIPTION_BYTES, MAX_ID_LEN, MAX_TITLE_CHARS, RequestEcho,
    validate_id,
};
use serde_json::{Value, json};

fn restart(extra: Value) -> Value {
    let mut request = json!({"action": "restart_service", "target": "api", "incidentId": "INC-42", "priority": "high"});
    request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    request
}

fn refusal(payload: Value) -> String {
    ActionRequest::parse(payload, ActionKind::RestartService).unwrap_err().to_string()
}

#[test]
fn a_title_of_the_most_characters_passes_and_one_more_is_refused() {
    let title = |n: usize| restart(json!({"incidentDetails": {"title": "é".repeat(n)}}));
    assert!(ActionRequest::parse(title(MAX_TITLE_CHARS), ActionKind::RestartService).is_ok(), "counted in characters");
    let error = refusal(title(MAX_TITLE_CHARS + 1));
    assert!(error.contains("incidentDetails.title") && error.contains(&format!("{} characters", MAX_TITLE_CHARS + 1)));
}

#[test]
fn a_description_of_the_most_bytes_passes_and_one_more_is_refused() {
    let description = |n: usize| restart(json!({"incidentDetails": {"description": "x".repeat(n)}}));
    assert!(ActionRequest::parse(description(MAX_DESCRIPTION_BYTES), ActionKind::RestartService).is_ok());
    let error = refusal(description(MAX_DESCRIPTION_BYTES + 1));
    assert!(error.contains("incidentDetails.description"), "{error}");
}

#[test]
fn ids_are_1_to_128_printable_characters() {
    assert!(validate_id("incidentId", &"I".repeat(MAX_ID_LEN)).is_ok());
    let too_long = validate_id("incidentId", &"I".repeat(MAX_ID_LEN + 1)).unwrap_err().to_string();
    assert!(too_long.contains("incidentId") && too_long.contains("129 characters"), "{too_long}");
    assert!(validate_id("incidentId", "").unwrap_err().to_string().contains("must not be empty"));
    assert!(validate_id("incidentId", "INC 42").unwrap_err().to_string().contains("printable ASCII"));
}

#[test]
fn an_invalid_request_echoes_only_the_fields_that_can_be_shown() {
    let echo = RequestEcho::from_raw(&json!({
        "incidentId": "INC-42", "action": "restart service", "target": "t".repeat(MAX_ID_LEN + 1), "dryRun": true,
    }));
    assert_eq!(echo.incident_id.as_deref(), Some("INC-42"));
    assert_eq!(echo.action, None, "a space is not shown");
    assert_eq!(echo.target, None, "an over-long field is not shown");
    assert!(echo.dry_run);
    let longest = RequestEcho::from_raw(&json!({"target": "t".repeat(MAX_ID_LEN)}));
    assert_eq!(longest.target.map(|t| t.len()), Some(MAX_ID_LEN));
}

#[test]
fn a_parsed_request_echoes_itself() {
    let request = ActionRequest::parse(restart(json!({"dryRun": true})), ActionKind::RestartService).unwrap();
    assert_eq!(request.target_name(), "api");
    let echo = request.echo();
    assert_eq!(
        (echo.incident_id.as_deref(), echo.action.as_deref(), echo.target.as_deref(), echo.dry_run),
        (Some("INC-42"), Some("restart_service"), Some("api"), true)
    );
}

#[test]
fn a_detail_is_added_beside_the_others_or_to_empty_details() {
    let echo = RequestEcho::default();
    let kept =
        ActionResponse::success("e", &echo, "done", json!({"planned": 1})).with_detail("earlierRecords", json!(2));
    assert_eq!(kept.core.details, json!({"planned": 1, "earlierRecords": 2}));
    let fresh = ActionResponse::success("e", &echo, "done", Value::Null).with_detail("earlierRecords", json!(0));
    assert_eq!(fresh.core.details, json!({"earlierRecords": 0}));
}
