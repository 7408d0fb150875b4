use incident_core::contract::{IncidentDetails, IncidentId, Priority};

use incident_core::ledger::History;
use serde_json::Value;

use super::*;

fn request(title: Option<&str>, description: Option<&str>) -> ActionRequest {
    ActionRequest {
        action: ActionKind::NotifyHuman,
        target: None,
        incident_id: IncidentId::try_from("INC-42".to_owned()).unwrap(),
        priority: Priority::Critical,
        incident_details: Some(IncidentDetails {
            title: title.map(Into::into),
            description: description.map(Into::into),
            ignored: Default::default(),
        }),
        dry_run: false,
        plan_token: None,
        params: Default::default(),
    }
}

#[test]
fn the_subject_is_the_documented_ascii_line() {
    let note = compose(
        &request(Some("DB down"), None),
        "arn:aws:sns:us-east-1:1:t",
        &Context::at(Utc::now(), &History::default()),
    );
    assert_eq!(note.subject, "[CRITICAL] Incident INC-42 requires attention");
}

#[test]
fn subjects_are_made_valid_for_sns() {
    assert_eq!(sns_subject("🚨 [HIGH] ünïcode\nline\tbreak"), "? [HIGH] ?n?code line break");
    let long = sns_subject(&format!("[LOW] Incident {} requires attention", "X".repeat(128)));
    assert_eq!(long.chars().count(), MAX_SUBJECT_CHARS);
    assert!(long.is_ascii());
}

const TOPIC: &str = "arn:aws:sns:us-east-1:1:t";

#[test]
fn the_message_carries_everything_and_its_first_line_sums_it_up() {
    let now = DateTime::parse_from_rfc3339("2026-11-22T23:00:00Z").unwrap().with_timezone(&Utc);
    let r = request(Some("DB connection pool exhausted"), Some("p99 latency 4s\npool 100/100"));
    let (text, cut) = message_text(&r, &Context::at(now, &History::default()), MAX_MESSAGE_BYTES);
    assert_eq!(cut, None);
    assert_eq!(text.lines().next().unwrap(), "[CRITICAL] INC-42: DB connection pool exhausted");
    for part in [
        "Incident:  INC-42",
        "Priority:  critical\n",
        "Time:      2026-11-22T23:00:00Z",
        "p99 latency 4s\npool 100/100",
    ] {
        assert!(text.contains(part), "missing {part:?} in\n{text}");
    }
}

#[test]
fn a_priority_the_request_did_not_give_is_said_in_the_page() {
    let history = History::default();
    let context = Context { priority_note: Some("missing; paged as high"), ..Context::at(Utc::now(), &history) };
    let (text, _) = message_text(&request(Some("t"), None), &context, 10_000);
    assert!(text.contains("Priority:  critical (the request's priority: missing; paged as high)"), "{text}");
}

#[test]
fn the_sms_form_is_one_gsm7_sms_with_priority_id_and_title() {
    let note = compose(
        &request(Some("Checkout API “failing” – 5xx"), None),
        TOPIC,
        &Context::at(Utc::now(), &History::default()),
    );
    assert_eq!(note.sms, "[CRITICAL] INC-42: Checkout API \"failing\" - 5xx");
    let long = compose(&request(Some(&"y".repeat(200)), None), TOPIC, &Context::at(Utc::now(), &History::default()));
    assert!(sms::length(&long.sms) <= sms::SMS_SEPTETS);
    assert!(long.sms.starts_with("[CRITICAL] INC-42: yyy") && long.sms.ends_with("..."));
    let structured: Value = serde_json::from_str(&note.structured()).unwrap();
    assert_eq!(structured["sms"], note.sms);
    assert_eq!(structured["email"], note.message);
    assert_eq!(structured["default"], note.message);
}

#[test]
fn missing_details_get_placeholders() {
    let mut r = request(None, None);
    r.incident_details = None;
    let (text, _) = message_text(&r, &Context::at(Utc::now(), &History::default()), MAX_MESSAGE_BYTES);
    assert!(text.contains(NO_TITLE) && text.contains(NO_DESCRIPTION), "{text}");
}

#[test]
fn a_huge_description_is_cut_so_the_structured_message_fits_sns() {
    for description in ["é".repeat(600_000), "\"quoted\"\n".repeat(100_000)] {
        let note =
            compose(&request(Some("t"), Some(&description)), TOPIC, &Context::at(Utc::now(), &History::default()));
        assert!(note.structured().len() <= MAX_MESSAGE_BYTES, "{}", note.structured().len());
        assert!(note.structured().len() > MAX_MESSAGE_BYTES - 4096, "not cut more than needed");
        assert!(note.message.contains(&format!("[… description cut: the first part of {} bytes]", description.len())));
        assert_eq!(note.adjustments.len(), 1);
        assert!(note.adjustments[0].change.starts_with(&format!("cut from {} to ", description.len())));
    }
}

#[test]
fn fifo_topics_get_a_group_and_a_stable_deduplication_id() {
    let r = request(Some("t"), Some("d"));
    let now = Utc::now();
    assert_eq!(compose(&r, "arn:aws:sns:us-east-1:1:pager", &Context::at(now, &History::default())).fifo, None);
    let (group, dedup) =
        compose(&r, "arn:aws:sns:us-east-1:1:pager.fifo", &Context::at(now, &History::default())).fifo.unwrap();
    assert_eq!(group, "INC-42");
    assert_eq!(dedup.len(), 64);
    assert_eq!(
        compose(&r, "arn:aws:sns:us-east-1:1:pager.fifo", &Context::at(Utc::now(), &History::default()))
            .fifo
            .unwrap()
            .1,
        dedup,
        "stable across retries"
    );
    assert_ne!(deduplication_id(&request(Some("t"), Some("other"))), dedup);
}

#[test]
fn attributes_let_subscriptions_filter() {
    let note = compose(&request(None, None), TOPIC, &Context::at(Utc::now(), &History::default()));
    assert_eq!(
        note.attributes,
        [
            ("priority", "critical".to_owned()),
            ("incidentId", "INC-42".to_owned()),
            ("action", "notify_human".to_owned())
        ]
    );
}

#[test]
fn the_likely_cause_is_a_line_of_its_own_after_the_title() {
    let history = History::default();
    let cause =
        "deployment d42 of api started 11 min before the incident (task definition api:41 → api:42), SUCCESSFUL";
    let context = Context { cause: Some(cause), ..Context::at(Utc::now(), &history) };
    let (text, _) = message_text(&request(Some("5xx"), Some("d")), &context, MAX_MESSAGE_BYTES);
    assert!(text.contains(&format!("Title:     5xx\nCause:     {cause}\n\nDescription:\nd")), "{text}");
    let (without, _) = message_text(&request(Some("5xx"), Some("d")), &Context::at(Utc::now(), &history), 10_000);
    assert!(!without.contains("Cause:") && without.contains("Title:     5xx\n\nDescription:"), "{without}");
}
