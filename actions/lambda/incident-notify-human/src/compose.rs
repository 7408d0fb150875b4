//! The page's words: subject, full message and SMS, composed before any call from the request and
//! what is known around it (the incident's history, the likely cause), cut to what SNS takes.

use chrono::{DateTime, SecondsFormat, Utc};
use incident_core::contract::{ActionKind, ActionRequest, Adjustment};
use incident_core::ledger::History;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::sms;

/// SNS subjects must be shorter than 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// SNS messages (with their attributes) must be at most 256 KiB; keep room for the attributes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 - 4 * 1024;

const NO_TITLE: &str = "(no title provided)";
const NO_DESCRIPTION: &str = "(no description provided)";

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

/// What a page says besides its request.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Why the priority is not the request's own (missing or unreadable); the message repeats it.
    pub priority_note: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// What automation already did for the incident.
    pub history: &'a History,
    /// The likely cause, read from the target's recent deployments (see `crate::cause`).
    pub cause: Option<&'a str>,
}

impl<'a> Context<'a> {
    /// A page with nothing known around it but the time.
    pub fn at(now: DateTime<Utc>, history: &'a History) -> Self {
        Self { priority_note: None, now, history, cause: None }
    }
}

/// The page for `request`.
pub fn compose(request: &ActionRequest, topic_arn: &str, context: &Context<'_>) -> Notification {
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
    let (message, cut) = fitted_message(&note, request, context);
    note.message = message;
    note.adjustments = cut.into_iter().collect();
    note
}

/// The full message, cut to fit: it appears twice (email and default), JSON-escaped, so the
/// description gets what is left. Escaping grows text unevenly, so the budget shrinks in proportion
/// until the whole fits.
fn fitted_message(note: &Notification, request: &ActionRequest, context: &Context<'_>) -> (String, Option<Adjustment>) {
    let mut trial = note.clone();
    let mut budget = MAX_MESSAGE_BYTES / 2;
    loop {
        let (message, cut) = message_text(request, context, budget);
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
pub fn message_text(request: &ActionRequest, context: &Context<'_>, max_bytes: usize) -> (String, Option<Adjustment>) {
    let title = title_of(request);
    let description = request.incident_details.as_ref().and_then(|d| d.description.clone());
    let description = description.filter(|d| !d.trim().is_empty()).unwrap_or_else(|| NO_DESCRIPTION.to_owned());
    let priority = request.priority.as_str();
    let priority_line = match context.priority_note {
        Some(why) => format!("{priority} (the request's priority: {why})"),
        None => priority.to_owned(),
    };
    let cause = context.cause.map(|cause| format!("Cause:     {cause}\n")).unwrap_or_default();
    let head = format!(
        "[{}] {}: {title}\n\nIncident:  {}\nPriority:  {priority_line}\nTime:      {}\nTitle:     {title}\n{cause}\nDescription:\n",
        priority.to_uppercase(),
        request.incident_id,
        request.incident_id,
        context.now.to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    let foot = format!(
        "{}\n\nThis incident requires human attention. \
         Log in to the incident management system to review and resolve it.\n",
        automation_section(context.history)
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

#[cfg(test)]
mod tests;
