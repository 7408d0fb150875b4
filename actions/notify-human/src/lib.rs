//! `incident-notify-human`: pages the on-call engineers through SNS.
//!
//! The subject is valid for SNS (ASCII, one line, under 100 characters); the message reads well in
//! an email and its first line is short enough for an SMS; the description is truncated so the
//! message stays under SNS's 256 KB. Message attributes `priority`, `incidentId` and `action` let
//! subscriptions filter (e.g. SMS only for critical). On a FIFO topic the incident id is the
//! message group and the deduplication id is derived from the request, so a retried invocation
//! does not page twice.

use aws_sdk_sns::types::MessageAttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::action::{Failure, Outcome, PlannedCall, run_action};
use shared::contract::{ActionKind, ActionRequest, ActionResponse};
use shared::{ConfigError, FunctionError};

/// SNS subjects must be shorter than 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// SNS messages (with their attributes) must be at most 256 KiB; keep room for the attributes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 - 4 * 1024;
/// The first line is what an SMS shows.
pub const MAX_FIRST_LINE_CHARS: usize = 140;

const NO_TITLE: &str = "(no title provided)";
const NO_DESCRIPTION: &str = "(no description provided)";

/// Built once per cold start in `main`.
pub struct Deps {
    pub sns: aws_sdk_sns::Client,
    /// `SNS_TOPIC_ARN`.
    pub topic_arn: String,
}

/// `SNS_TOPIC_ARN`, required, an SNS topic ARN.
pub fn topic_from_env() -> Result<String, ConfigError> {
    let arn = std::env::var("SNS_TOPIC_ARN").map_err(|_| ConfigError::MissingEnv("SNS_TOPIC_ARN"))?;
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty() {
        Ok(arn)
    } else {
        Err(ConfigError::InvalidEnv {
            name: "SNS_TOPIC_ARN",
            problem: format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)"),
        })
    }
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    Ok(run_action(event, ActionKind::NotifyHuman, |request, _deadline| notify(request, deps)).await)
}

/// Everything one SNS Publish carries, decided before any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subject: String,
    pub message: String,
    pub attributes: Vec<(&'static str, String)>,
    /// For FIFO topics: (message group id, deduplication id).
    pub fifo: Option<(String, String)>,
}

pub fn compose(request: &ActionRequest, topic_arn: &str, now: DateTime<Utc>) -> Notification {
    let priority = request.priority.as_str();
    Notification {
        subject: sns_subject(&format!(
            "[{}] Incident {} requires attention",
            priority.to_uppercase(),
            request.incident_id
        )),
        message: message_text(request, now),
        attributes: vec![
            ("priority", priority.to_owned()),
            ("incidentId", request.incident_id.clone()),
            ("action", ActionKind::NotifyHuman.as_str().to_owned()),
        ],
        fifo: topic_arn.ends_with(".fifo").then(|| (request.incident_id.clone(), deduplication_id(request))),
    }
}

/// A subject SNS accepts: printable ASCII, no line breaks, under 100 characters.
pub fn sns_subject(text: &str) -> String {
    let ascii: String = text
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        })
        .collect();
    let collapsed = ascii.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(MAX_SUBJECT_CHARS).collect::<String>().trim_end().to_owned()
}

/// The email body. Its first line stands alone as an SMS.
pub fn message_text(request: &ActionRequest, now: DateTime<Utc>) -> String {
    let details = request.incident_details.clone().unwrap_or_default();
    let title = details.title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| NO_TITLE.to_owned());
    let description = details.description.filter(|d| !d.trim().is_empty()).unwrap_or_else(|| NO_DESCRIPTION.to_owned());
    let priority = request.priority.as_str();
    let first_line = truncate_chars(
        &format!("[{}] {}: {}", priority.to_uppercase(), request.incident_id, title),
        MAX_FIRST_LINE_CHARS,
    );
    let head = format!(
        "{first_line}\n\nIncident:  {}\nPriority:  {priority}\nTime:      {}\nTitle:     {title}\n\nDescription:\n",
        request.incident_id,
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    let foot = "\n\nThis incident requires human attention. \
                Log in to the incident management system to review and resolve it.\n";
    let budget = MAX_MESSAGE_BYTES.saturating_sub(head.len() + foot.len());
    let body = if description.len() <= budget {
        description
    } else {
        let note = format!("\n[description truncated: showing the first part of {} bytes]", description.len());
        let kept = truncate_bytes(&description, budget.saturating_sub(note.len()));
        format!("{kept}{note}")
    };
    format!("{head}{body}{foot}")
}

/// Same request, same id: SNS FIFO drops a retried publish within its five-minute window.
pub fn deduplication_id(request: &ActionRequest) -> String {
    let details = request.incident_details.clone().unwrap_or_default();
    let mut hash = Sha256::new();
    for part in [
        request.incident_id.as_str(),
        request.priority.as_str(),
        details.title.as_deref().unwrap_or(""),
        details.description.as_deref().unwrap_or(""),
    ] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn truncate_bytes(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max.min(text.len()))]
}

async fn notify(request: ActionRequest, deps: &Deps) -> Result<Outcome, Failure> {
    let note = compose(&request, &deps.topic_arn, Utc::now());
    let resource = format!("SNS topic {}", deps.topic_arn);
    let attributes: Value = note.attributes.iter().map(|(k, v)| ((*k).to_owned(), Value::from(v.clone()))).collect();
    let mut params = json!({
        "topicArn": deps.topic_arn, "subject": note.subject, "message": note.message, "messageAttributes": attributes,
    });
    if let Some((group, dedup)) = &note.fifo {
        params["messageGroupId"] = json!(group);
        params["messageDeduplicationId"] = json!(dedup);
    }
    if request.dry_run {
        return Ok(Outcome {
            message: format!("Dry run: would page on-call through {resource}"),
            resource,
            before: Value::Null,
            after: Value::Null,
            details: json!({"topicArn": deps.topic_arn, "subject": note.subject, "plannedCalls": [PlannedCall::new("SNS Publish", params)]}),
        });
    }
    let mut publish = deps.sns.publish().topic_arn(&deps.topic_arn).subject(&note.subject).message(&note.message);
    for (name, value) in &note.attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| FunctionError::invalid(*name, e.to_string()))?;
        publish = publish.message_attributes(*name, attribute);
    }
    if let Some((group, dedup)) = &note.fifo {
        publish = publish.message_group_id(group).message_deduplication_id(dedup);
    }
    let out = publish.send().await.map_err(|err| match err.as_service_error() {
        Some(e) if e.is_not_found_exception() => {
            FunctionError::ResourceNotFound { kind: "SNS topic", id: deps.topic_arn.clone() }
        }
        _ => FunctionError::aws("SNS Publish", &err),
    })?;
    let message_id = out.message_id().unwrap_or_default().to_owned();
    Ok(Outcome {
        message: "Notification sent successfully".to_owned(),
        resource,
        before: Value::Null,
        after: json!({"messageId": message_id}),
        details: json!({"messageId": message_id, "topicArn": deps.topic_arn, "subject": note.subject,
                        "sequenceNumber": out.sequence_number()}),
    })
}

#[cfg(test)]
mod tests {
    use shared::contract::{IncidentDetails, Priority};

    use super::*;

    fn request(title: Option<&str>, description: Option<&str>) -> ActionRequest {
        ActionRequest {
            action: ActionKind::NotifyHuman,
            target: None,
            incident_id: "INC-42".into(),
            priority: Priority::Critical,
            incident_details: Some(IncidentDetails {
                title: title.map(Into::into),
                description: description.map(Into::into),
            }),
            dry_run: false,
            mode: None,
            key_pattern: None,
        }
    }

    #[test]
    fn the_subject_is_the_documented_ascii_line() {
        let note = compose(&request(Some("DB down"), None), "arn:aws:sns:us-east-1:1:t", Utc::now());
        assert_eq!(note.subject, "[CRITICAL] Incident INC-42 requires attention");
    }

    #[test]
    fn subjects_are_made_valid_for_sns() {
        assert_eq!(sns_subject("🚨 [HIGH] ünïcode\nline\tbreak"), "? [HIGH] ?n?code line break");
        let long = sns_subject(&format!("[LOW] Incident {} requires attention", "X".repeat(128)));
        assert_eq!(long.chars().count(), MAX_SUBJECT_CHARS);
        assert!(long.is_ascii());
    }

    #[test]
    fn the_message_carries_everything_and_its_first_line_fits_an_sms() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T23:00:00Z").unwrap().with_timezone(&Utc);
        let text =
            message_text(&request(Some("DB connection pool exhausted"), Some("p99 latency 4s\npool 100/100")), now);
        let first = text.lines().next().unwrap();
        assert_eq!(first, "[CRITICAL] INC-42: DB connection pool exhausted");
        for part in [
            "Incident:  INC-42",
            "Priority:  critical",
            "Time:      2026-11-22T23:00:00Z",
            "p99 latency 4s\npool 100/100",
        ] {
            assert!(text.contains(part), "missing {part:?} in\n{text}");
        }
        let long_title = "t".repeat(200);
        let text = message_text(&request(Some(&long_title), None), now);
        assert!(text.lines().next().unwrap().chars().count() <= MAX_FIRST_LINE_CHARS);
    }

    #[test]
    fn missing_details_get_placeholders() {
        let mut r = request(None, None);
        r.incident_details = None;
        let text = message_text(&r, Utc::now());
        assert!(text.contains(NO_TITLE) && text.contains(NO_DESCRIPTION), "{text}");
    }

    #[test]
    fn a_huge_description_is_truncated_on_a_character_boundary_under_the_sns_limit() {
        let description = "é".repeat(200_000); // 400,000 bytes
        let text = message_text(&request(Some("t"), Some(&description)), Utc::now());
        assert!(text.len() <= MAX_MESSAGE_BYTES, "{}", text.len());
        assert!(text.contains("[description truncated: showing the first part of 400000 bytes]"));
    }

    #[test]
    fn fifo_topics_get_a_group_and_a_stable_deduplication_id() {
        let r = request(Some("t"), Some("d"));
        let now = Utc::now();
        assert_eq!(compose(&r, "arn:aws:sns:us-east-1:1:pager", now).fifo, None);
        let (group, dedup) = compose(&r, "arn:aws:sns:us-east-1:1:pager.fifo", now).fifo.unwrap();
        assert_eq!(group, "INC-42");
        assert_eq!(dedup.len(), 64);
        assert_eq!(
            compose(&r, "arn:aws:sns:us-east-1:1:pager.fifo", Utc::now()).fifo.unwrap().1,
            dedup,
            "stable across retries"
        );
        assert_ne!(deduplication_id(&request(Some("t"), Some("other"))), dedup);
    }

    #[test]
    fn attributes_let_subscriptions_filter() {
        let note = compose(&request(None, None), "arn:aws:sns:us-east-1:1:t", Utc::now());
        assert_eq!(
            note.attributes,
            [
                ("priority", "critical".to_owned()),
                ("incidentId", "INC-42".to_owned()),
                ("action", "notify_human".to_owned())
            ]
        );
    }
}
