//! `incident-notify-human`: pages the on-call engineers through SNS, and never drops a page for a
//! cosmetic problem in the request (see [`page`]).
//!
//! One Publish with `MessageStructure=json` carries a form per protocol: `sms` is one SMS (priority,
//! incident id and title in at most 160 GSM-7 characters, see [`sms`]); `email` and `default` (SQS,
//! HTTP, Lambda subscribers) are the full message, which reads well as email and is cut to what SNS
//! takes. The subject is valid for SNS (ASCII, one line, under 100 characters). Message attributes
//! `priority`, `incidentId` and `action` let subscriptions filter (e.g. SMS only for critical). On a
//! FIFO topic the incident id is the message group and the deduplication id is derived from the
//! request, so a retried invocation does not page twice.

pub mod page;
pub mod sms;

use aws_sdk_sns::types::MessageAttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use incident_core::action::{Action, Applied, Failure, Invocation, Parsed, View};
use incident_core::contract::{ActionKind, ActionRequest, ActionResponse, Adjustment, NoParams};
use incident_core::driver::Function;
use incident_core::ledger::History;
use incident_core::plan::{Change, Plan};
use incident_core::state::State;
use serde::Serialize;
use shared::iam::Permission;
use shared::settings::Settings;
use shared::{ConfigError, FunctionError};

/// SNS subjects must be shorter than 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// SNS messages (with their attributes) must be at most 256 KiB; keep room for the attributes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 - 4 * 1024;

const NO_TITLE: &str = "(no title provided)";
const NO_DESCRIPTION: &str = "(no description provided)";

/// notify_human's client and topic, built once per cold start in `main`.
pub struct NotifyHuman {
    pub sns: aws_sdk_sns::Client,
    /// `SNS_TOPIC_ARN`.
    pub topic_arn: String,
}

/// `SNS_TOPIC_ARN`, required, an SNS topic ARN.
pub fn topic_from_env() -> Result<String, ConfigError> {
    let settings = Settings::from_env();
    settings.parsed("SNS_TOPIC_ARN", valid_topic_arn)?.ok_or(ConfigError::MissingEnv("SNS_TOPIC_ARN"))
}

fn valid_topic_arn(arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty() {
        Ok(arn.to_owned())
    } else {
        Err(format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)"))
    }
}

/// The function as `main` builds it: the action and its guard.
pub type Deps = Function<NotifyHuman>;

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    deps.handle(event).await
}

impl Action for NotifyHuman {
    const KIND: ActionKind = ActionKind::NotifyHuman;
    const MUTATES: bool = false;
    const READS_HISTORY: bool = true;
    type Params = NoParams;
    type Observed = ();
    type Change = Publish;
    type Details = PageDetails;

    fn parse(payload: Value) -> Result<Parsed<NoParams>, FunctionError> {
        page::parse_page(payload)
    }

    /// A page with other words is another page: a follow-up ("restart did not help") is delivered.
    fn identity(parsed: &Parsed<NoParams>) -> Value {
        let details = parsed.request.incident_details.clone().unwrap_or_default();
        json!({"title": details.title, "description": details.description})
    }

    async fn observe(&self, _call: &Invocation<'_, NoParams>, _view: View) -> Result<(), Failure<PageDetails>> {
        Ok(())
    }

    fn plan(
        &self,
        call: &Invocation<'_, NoParams>,
        _observed: &(),
    ) -> Result<Plan<Publish, PageDetails>, FunctionError> {
        Ok(plan(call.request, call.adjustments, &self.topic_arn, call.now, call.history))
    }

    async fn apply(
        &self,
        _call: &Invocation<'_, NoParams>,
        plan: &Plan<Publish, PageDetails>,
        _observed: (),
    ) -> Result<Applied<PageDetails>, Failure<PageDetails>> {
        let mut details = plan.details.clone();
        if let Some(publish) = plan.changes.first() {
            let (message_id, sequence) = send(publish, &self.sns).await?;
            (details.message_id, details.sequence_number) = (Some(message_id), sequence);
        }
        let after = State::Page { message_id: details.message_id.clone() };
        Ok(Applied { message: plan.done.clone(), after, details })
    }
}

/// What notify_human's answer says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageDetails {
    pub topic_arn: String,
    pub subject: String,
    pub sms: String,
    /// What composing had to cut.
    pub adjustments: Vec<Adjustment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
}

/// Everything one SNS Publish carries, decided before any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subject: String,
    /// The full page: the `email` form, and `default` for every protocol without a form of its own.
    pub message: String,
    /// The `sms` form: one SMS.
    pub sms: String,
    pub attributes: Vec<(&'static str, String)>,
    /// For FIFO topics: (message group id, deduplication id).
    pub fifo: Option<(String, String)>,
    /// What composing had to cut (a description too long for SNS).
    pub adjustments: Vec<Adjustment>,
}

impl Notification {
    /// The Publish `Message` for `MessageStructure=json`.
    pub fn structured(&self) -> String {
        json!({"default": self.message, "email": self.message, "sms": self.sms}).to_string()
    }
}

/// The page for `request`. `priority_note` says why the priority is not the request's own (missing
/// or unreadable), and the message repeats it.
pub fn compose(
    request: &ActionRequest,
    priority_note: Option<&str>,
    topic_arn: &str,
    now: DateTime<Utc>,
    history: &History,
) -> Notification {
    let priority = request.priority.as_str();
    let title = title_of(request);
    let sms = sms::fit(&format!("[{}] {}: {title}", priority.to_uppercase(), request.incident_id));
    let mut note = Notification {
        subject: sns_subject(&format!(
            "[{}] Incident {} requires attention",
            priority.to_uppercase(),
            request.incident_id
        )),
        message: String::new(),
        sms,
        attributes: vec![
            ("priority", priority.to_owned()),
            ("incidentId", request.incident_id.to_string()),
            ("action", ActionKind::NotifyHuman.as_str().to_owned()),
        ],
        fifo: topic_arn.ends_with(".fifo").then(|| (request.incident_id.to_string(), deduplication_id(request))),
        adjustments: Vec::new(),
    };
    let (message, cut) = fitted_message(&note, request, priority_note, now, history);
    note.message = message;
    note.adjustments = cut.into_iter().collect();
    note
}

/// The full message, cut to fit: it appears twice (email and default), JSON-escaped, so the
/// description gets what is left. Escaping grows text unevenly, so the budget shrinks in proportion
/// until the whole fits.
fn fitted_message(
    note: &Notification,
    request: &ActionRequest,
    priority_note: Option<&str>,
    now: DateTime<Utc>,
    history: &History,
) -> (String, Option<Adjustment>) {
    let mut trial = note.clone();
    let mut budget = MAX_MESSAGE_BYTES / 2;
    loop {
        let (message, cut) = message_text(request, priority_note, now, history, budget);
        trial.message = message;
        let size = trial.structured().len();
        if size <= MAX_MESSAGE_BYTES || budget == 0 {
            return (trial.message, cut);
        }
        let scaled = budget as u128 * MAX_MESSAGE_BYTES as u128 / size as u128;
        budget = usize::try_from(scaled).unwrap_or(0).saturating_sub(64);
    }
}

fn title_of(request: &ActionRequest) -> String {
    let title = request.incident_details.as_ref().and_then(|d| d.title.clone());
    title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| NO_TITLE.to_owned())
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

/// The full message, at most `max_bytes` long (the description is cut to fit, with a note saying so,
/// and the cut is returned as an adjustment). Its first line stands alone as a summary.
pub fn message_text(
    request: &ActionRequest,
    priority_note: Option<&str>,
    now: DateTime<Utc>,
    history: &History,
    max_bytes: usize,
) -> (String, Option<Adjustment>) {
    let title = title_of(request);
    let description = request.incident_details.as_ref().and_then(|d| d.description.clone());
    let description = description.filter(|d| !d.trim().is_empty()).unwrap_or_else(|| NO_DESCRIPTION.to_owned());
    let priority = request.priority.as_str();
    let priority_line = match priority_note {
        Some(why) => format!("{priority} (the request's priority: {why})"),
        None => priority.to_owned(),
    };
    let head = format!(
        "[{}] {}: {title}\n\nIncident:  {}\nPriority:  {priority_line}\nTime:      {}\nTitle:     {title}\n\nDescription:\n",
        priority.to_uppercase(),
        request.incident_id,
        request.incident_id,
        now.to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    let foot = format!(
        "{}\n\nThis incident requires human attention. \
         Log in to the incident management system to review and resolve it.\n",
        automation_section(history)
    );
    let budget = max_bytes.saturating_sub(head.len() + foot.len());
    if description.len() <= budget {
        return (format!("{head}{description}{foot}"), None);
    }
    let marker = format!("\n[… description cut: the first part of {} bytes]", description.len());
    let kept = shared::text::prefix_bytes(&description, budget.saturating_sub(marker.len()));
    let cut = Adjustment::new(
        "incidentDetails.description",
        format!("cut from {} to {} bytes to fit SNS", description.len(), kept.len() + marker.len()),
    );
    (format!("{head}{kept}{marker}{foot}"), Some(cut))
}

/// At most this many of the incident's records are listed in a page (the latest; the count says the rest).
const HISTORY_LINES: usize = 20;

/// What automation already did for the incident, from the ledger: one line per record, refusals
/// included, or why the history could not be read. Nothing without a ledger (a local run).
pub fn automation_section(history: &History) -> String {
    if let Some(problem) = &history.unavailable {
        return format!(
            "\n\nWhat automation did: unknown (the incident ledger could not be read: {})",
            shared::text::truncate(problem, 200)
        );
    }
    if !history.from_ledger {
        return String::new();
    }
    if history.records.is_empty() {
        return "\n\nWhat automation did: nothing recorded for this incident yet.".to_owned();
    }
    let skipped = history.records.len().saturating_sub(HISTORY_LINES);
    let mut section = format!("\n\nWhat automation did ({} record(s), UTC):", history.records.len());
    if skipped > 0 {
        section.push_str(&format!("\n  ... {skipped} earlier record(s) not shown"));
    }
    for record in &history.records[skipped..] {
        section.push_str("\n  ");
        section.push_str(&shared::text::truncate(&record.line(), 200));
    }
    section
}

/// Same request, same id: SNS FIFO drops a retried publish within its five-minute window.
pub fn deduplication_id(request: &ActionRequest) -> String {
    let details = request.incident_details.clone().unwrap_or_default();
    let mut hash = Sha256::new();
    for part in [
        &request.incident_id,
        request.priority.as_str(),
        details.title.as_deref().unwrap_or(""),
        details.description.as_deref().unwrap_or(""),
    ] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The one change notify_human makes: SNS Publish. Serialised, it is the call's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Publish {
    pub topic_arn: String,
    pub subject: String,
    pub message_structure: &'static str,
    /// The forms per protocol, as JSON (see [`Notification::structured`]).
    pub message: String,
    pub message_attributes: BTreeMap<&'static str, StringAttribute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_deduplication_id: Option<String>,
}

/// An SNS message attribute of type String, as the API has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StringAttribute {
    pub data_type: &'static str,
    pub string_value: String,
}

impl Change for Publish {
    fn call(&self) -> &'static str {
        "SNS Publish"
    }

    fn permission(&self) -> Option<Permission> {
        Some(publish_permission(&self.topic_arn))
    }
}

fn publish_permission(topic_arn: &str) -> Permission {
    Permission::new("sns:Publish", topic_arn)
}

/// notify_human's one permission, and the ledger's (its history, and the page's record).
pub fn permissions() -> Vec<Permission> {
    let mut declared = vec![publish_permission("${SNS_TOPIC_ARN}")];
    declared.extend(incident_ledger::permissions(incident_ledger::Use::Page));
    declared
}

/// The page as a plan of one Publish; the priority note, if any, is said in the page itself.
pub fn plan(
    request: &ActionRequest,
    adjustments: &[Adjustment],
    topic_arn: &str,
    now: DateTime<Utc>,
    history: &History,
) -> Plan<Publish, PageDetails> {
    let priority_note = adjustments.iter().find(|a| a.field == page::PRIORITY_FIELD).map(|a| a.change.as_str());
    let note = compose(request, priority_note, topic_arn, now, history);
    let resource = format!("SNS topic {topic_arn}");
    let (group, dedup) = note.fifo.clone().unzip();
    let publish = Publish {
        topic_arn: topic_arn.to_owned(),
        subject: note.subject.clone(),
        message_structure: "json",
        message: note.structured(),
        message_attributes: note
            .attributes
            .iter()
            .map(|(k, v)| (*k, StringAttribute { data_type: "String", string_value: v.clone() }))
            .collect(),
        message_group_id: group,
        message_deduplication_id: dedup,
    };
    Plan {
        intent: format!("page on-call through {resource}"),
        done: "Notification sent successfully".to_owned(),
        no_change: String::new(),
        before: State::Page { message_id: None },
        after: State::Page { message_id: None },
        details: PageDetails {
            topic_arn: topic_arn.to_owned(),
            subject: note.subject,
            sms: note.sms,
            adjustments: note.adjustments,
            message_id: None,
            sequence_number: None,
        },
        changes: vec![publish],
        resource,
    }
}

/// The Publish call, from exactly the values the dry run reported.
async fn send(publish: &Publish, sns: &aws_sdk_sns::Client) -> Result<(String, Option<String>), FunctionError> {
    let mut call = sns
        .publish()
        .topic_arn(&publish.topic_arn)
        .subject(&publish.subject)
        .message_structure(publish.message_structure)
        .message(&publish.message)
        .set_message_group_id(publish.message_group_id.clone())
        .set_message_deduplication_id(publish.message_deduplication_id.clone());
    for (name, value) in &publish.message_attributes {
        let attribute = MessageAttributeValue::builder()
            .data_type(value.data_type)
            .string_value(&value.string_value)
            .build()
            .map_err(|e| FunctionError::invalid(*name, e.to_string()))?;
        call = call.message_attributes(*name, attribute);
    }
    let out = call.send().await.map_err(|err| match err.as_service_error() {
        Some(e) if e.is_not_found_exception() => {
            FunctionError::ResourceNotFound { kind: "SNS topic", id: publish.topic_arn.clone() }
        }
        _ => FunctionError::aws("SNS Publish", &err),
    })?;
    Ok((out.message_id().unwrap_or_default().to_owned(), out.sequence_number().map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use incident_core::contract::{IncidentDetails, IncidentId, Priority};

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
            None,
            "arn:aws:sns:us-east-1:1:t",
            Utc::now(),
            &History::default(),
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
        let (text, cut) = message_text(&r, None, now, &History::default(), MAX_MESSAGE_BYTES);
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
        let (text, _) = message_text(
            &request(Some("t"), None),
            Some("missing; paged as high"),
            Utc::now(),
            &History::default(),
            10_000,
        );
        assert!(text.contains("Priority:  critical (the request's priority: missing; paged as high)"), "{text}");
    }

    #[test]
    fn the_sms_form_is_one_gsm7_sms_with_priority_id_and_title() {
        let note =
            compose(&request(Some("Checkout API “failing” – 5xx"), None), None, TOPIC, Utc::now(), &History::default());
        assert_eq!(note.sms, "[CRITICAL] INC-42: Checkout API \"failing\" - 5xx");
        let long = compose(&request(Some(&"y".repeat(200)), None), None, TOPIC, Utc::now(), &History::default());
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
        let (text, _) = message_text(&r, None, Utc::now(), &History::default(), MAX_MESSAGE_BYTES);
        assert!(text.contains(NO_TITLE) && text.contains(NO_DESCRIPTION), "{text}");
    }

    #[test]
    fn a_huge_description_is_cut_so_the_structured_message_fits_sns() {
        for description in ["é".repeat(600_000), "\"quoted\"\n".repeat(100_000)] {
            let note = compose(&request(Some("t"), Some(&description)), None, TOPIC, Utc::now(), &History::default());
            assert!(note.structured().len() <= MAX_MESSAGE_BYTES, "{}", note.structured().len());
            assert!(note.structured().len() > MAX_MESSAGE_BYTES - 4096, "not cut more than needed");
            assert!(
                note.message.contains(&format!("[… description cut: the first part of {} bytes]", description.len()))
            );
            assert_eq!(note.adjustments.len(), 1);
            assert!(note.adjustments[0].change.starts_with(&format!("cut from {} to ", description.len())));
        }
    }

    #[test]
    fn fifo_topics_get_a_group_and_a_stable_deduplication_id() {
        let r = request(Some("t"), Some("d"));
        let now = Utc::now();
        assert_eq!(compose(&r, None, "arn:aws:sns:us-east-1:1:pager", now, &History::default()).fifo, None);
        let (group, dedup) =
            compose(&r, None, "arn:aws:sns:us-east-1:1:pager.fifo", now, &History::default()).fifo.unwrap();
        assert_eq!(group, "INC-42");
        assert_eq!(dedup.len(), 64);
        assert_eq!(
            compose(&r, None, "arn:aws:sns:us-east-1:1:pager.fifo", Utc::now(), &History::default()).fifo.unwrap().1,
            dedup,
            "stable across retries"
        );
        assert_ne!(deduplication_id(&request(Some("t"), Some("other"))), dedup);
    }

    #[test]
    fn attributes_let_subscriptions_filter() {
        let note = compose(&request(None, None), None, TOPIC, Utc::now(), &History::default());
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
