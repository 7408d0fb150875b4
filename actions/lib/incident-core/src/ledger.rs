//! What the guard needs of the incident ledger: the [`Ledger`] trait and the things it keeps. The
//! DynamoDB table behind it is the `incident-ledger` crate's; the decisions (what to refuse, what
//! to retry, how long to wait, what to do when it is down) are the guard's, [`crate::guard`].

use std::future::Future;
use std::pin::Pin;

use chrono::DateTime;
use serde::Serialize;
use serde_json::Value;

use crate::budget::Counter;
use crate::contract::ResponseCore;
use crate::state::State;

/// A ledger call in flight.
pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LedgerError>> + Send + 'a>>;

/// Why a ledger call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerError {
    /// Contention: a transaction cancelled for a conflict, or a write that met one. Not an
    /// outage: the guard retries it with jitter, and never lets it switch the guards off.
    Contention(String),
    /// Anything else, after the SDK's own retries: an outage, throttling, a missing table.
    Unavailable(String),
}

impl LedgerError {
    pub fn problem(&self) -> &str {
        match self {
            Self::Contention(problem) | Self::Unavailable(problem) => problem,
        }
    }
}

/// The incident ledger: idempotency keys, budget counters, pauses, claims and records.
pub trait Ledger: Send + Sync + std::fmt::Debug {
    /// The table's name, for messages.
    fn table(&self) -> &str;
    /// The pauses (global, and `target`'s) and the counters, read strongly consistent.
    fn read_guards<'a>(&'a self, target: Option<&'a str>, counters: &'a [Counter]) -> LedgerFuture<'a, Guards>;
    /// The incident's records (all of them when `full`, else only their count).
    fn history<'a>(&'a self, incident: &'a str, full: bool) -> LedgerFuture<'a, History>;
    /// Takes an idempotency key: new, expired, in progress past its holder's deadline, or in
    /// progress by this very invocation (the SDK's retry of a write whose answer was lost).
    fn take_key<'a>(&'a self, key: &'a KeyClaim) -> LedgerFuture<'a, KeyState>;
    /// The key's holder is about to change something: a crash from here on must not let a retry
    /// act. Only the key's holder may mark it.
    fn mark_applying<'a>(&'a self, key: &'a KeyClaim) -> LedgerFuture<'a, ()>;
    /// Takes a claim on a resource (free, expired, or already this invocation's); `Some` names who
    /// holds it when another invocation does.
    fn claim<'a>(&'a self, claim: &'a Claim) -> LedgerFuture<'a, Option<HeldClaim>>;
    /// Gives a claim back (only one's own).
    fn release<'a>(&'a self, claim: &'a Claim) -> LedgerFuture<'a, ()>;
    /// One more mutation in a budget's window; `Some(count)` when the window is already full.
    fn spend<'a>(&'a self, counter: &'a Counter) -> LedgerFuture<'a, Option<u64>>;
    /// One mutation less (it was spent, and then nothing changed).
    fn refund<'a>(&'a self, counter: &'a Counter) -> LedgerFuture<'a, ()>;
    /// After the work: the record, and the key completed with the answer or removed, in one write.
    fn finish<'a>(&'a self, record: &'a NewRecord, key: Option<(&'a KeyClaim, KeyEnd<'a>)>) -> LedgerFuture<'a, ()>;
    /// A record alone (a refusal, a replay).
    fn record<'a>(&'a self, record: &'a NewRecord) -> LedgerFuture<'a, ()>;
}

/// What [`Ledger::read_guards`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guards {
    /// A pause in force (the global one first).
    pub pause: Option<Pause>,
    /// The counters' counts, in the order asked for (0 for a window not yet started).
    pub counts: Vec<u64>,
}

/// An operator's pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// `globally` or `for <target>`.
    pub scope: String,
    /// The target it names, for the `resume` command (none for a global pause).
    pub target: Option<String>,
    pub by: String,
    pub reason: String,
    pub since: String,
}

/// An idempotency key as an invocation takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    /// The sha256 of what makes requests the same.
    pub hash: String,
    pub incident_id: String,
    pub request_id: String,
    /// Until when an in-progress key is this invocation's (its deadline, epoch ms).
    pub in_progress_until_ms: i64,
    /// When the key is removed by the table's TTL (epoch s).
    pub expires_at: i64,
}

/// What an idempotency key held when an invocation tried to take it.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyState {
    /// Free, now this invocation's.
    Taken,
    /// An identical request completed: its answer.
    Completed(Box<ResponseCore>),
    /// An identical request is running (by request id), before its deadline.
    InProgress { request_id: String },
    /// An identical request began changing the resource, its deadline passed, and it never
    /// recorded how the change ended.
    Applying { request_id: String, since: String },
}

/// How a key ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyEnd<'a> {
    /// Completed with this answer, which an identical request gets replayed.
    Completed(&'a ResponseCore),
    /// Removed: the invocation failed, and a retry should act.
    Removed,
}

/// A claim as an invocation takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub resource: String,
    /// Who, for people: `incident INC-42`.
    pub holder: String,
    /// The invocation's request id: only its holder gives it back.
    pub id: String,
    /// Until when (epoch ms): the action's cooldown, and at least its holder's deadline.
    pub held_until_ms: i64,
    /// What acting on it is, for the refusal: `a restart of ECS service production/api`.
    pub what: String,
    /// The action's cooldown, for the refusal.
    pub hold: std::time::Duration,
}

/// A claim another invocation holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    pub holder: String,
    pub since: String,
}

/// A record to write: what one invocation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRecord {
    pub incident_id: String,
    pub action: String,
    pub target: String,
    pub priority: String,
    /// `success`, `replayed`, or the error code.
    pub outcome: String,
    pub status_code: u16,
    pub message: String,
    pub before: Option<State>,
    pub after: Option<State>,
    /// The answer's details, for people (bounded); nothing reads them back.
    pub details: Value,
    pub request_id: String,
    /// A mutating action changed its resource: a verification of `after` is pending beside the
    /// record (incident-playbook's sweep judges it). Never a page.
    #[serde(skip)]
    pub changed: bool,
}

/// One record, as history lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The records' layout version ([`crate::state::SCHEMA`]; 1 for the records written before it).
    pub schema: u32,
    pub at: String,
    pub action: String,
    pub target: String,
    pub priority: String,
    pub outcome: String,
    pub message: String,
    /// Typed from schema 2 on; `None` for a refusal, or a schema 1 record.
    pub before: Option<State>,
    pub after: Option<State>,
    pub details: Value,
    pub request_id: String,
}

impl Record {
    /// `02:15 restart_service api: <message>` for a page.
    pub fn line(&self) -> String {
        let time = DateTime::parse_from_rfc3339(&self.at).map(|t| t.format("%H:%M").to_string()).unwrap_or_default();
        let target = if self.target.is_empty() { String::new() } else { format!(" {}", self.target) };
        let outcome = if self.outcome == "success" { String::new() } else { format!(" [{}]", self.outcome) };
        format!("{time} {}{target}:{outcome} {}", self.action, self.message)
    }
}

/// What the ledger knew of an incident when an invocation began.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// The incident's earlier records, oldest first (read in full for notify_human only).
    pub records: Vec<Record>,
    /// How many there were.
    pub earlier: usize,
    /// The ledger could not be read; why.
    pub unavailable: Option<String>,
    /// Read from a ledger (false without one: a local run knows no history).
    pub from_ledger: bool,
}

impl History {
    /// What an invocation knows when the ledger could not be read.
    pub fn unavailable(problem: String) -> Self {
        Self { unavailable: Some(problem), from_ledger: true, ..Self::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_as_one_line_of_a_page() {
        let record = Record {
            schema: 2,
            at: "2026-12-01T02:16:05Z".into(),
            action: "scale_up".into(),
            target: "api".into(),
            priority: "critical".into(),
            outcome: "success".into(),
            message: "Scaled ECS service production/api from 2 to 10 tasks".into(),
            before: None,
            after: None,
            details: Value::Null,
            request_id: "r".into(),
        };
        assert_eq!(record.line(), "02:16 scale_up api: Scaled ECS service production/api from 2 to 10 tasks");
        let refused = Record { outcome: "BUDGET_EXHAUSTED".into(), message: "budget spent".into(), ..record };
        assert_eq!(refused.line(), "02:16 scale_up api: [BUDGET_EXHAUSTED] budget spent");
    }
}
