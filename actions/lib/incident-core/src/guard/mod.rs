//! The one guard around every action: it owns the incident ledger, the failure policy
//! (`LEDGER_FAILURE`, decided here only) and a share of the invocation's deadline.
//!
//! An invocation meets the ledger at three moments, each one round of calls issued together:
//! 1. [`Guard::enter`], before observing: the pauses and budget counters (one BatchGetItem), the
//!    incident's history (one Query) and the idempotency key (one conditional PutItem).
//! 2. [`Guard::spend`], just before the first change, by the key's holder only, all at once: one
//!    conditional UpdateItem per budget counter, the key marked as applying, and, for an action that
//!    claims its resource, the claim (one conditional PutItem). Each counter is its own item, updated on its
//!    own: DynamoDB serialises the writes to one item, so fifty invocations spend a budget of twenty
//!    exactly twenty times, where a transaction over several counters would be cancelled for
//!    conflicts in such a storm.
//! 3. [`Guard::finish`], after the work: the record and the key in one transaction, and what the
//!    invocation holds given back as far as it changed nothing ([`Progress`]).
//!
//! Every round is bounded: at most `LEDGER_TIMEOUT_MS`, and before acting at most a third of the
//! time left, so the work and the answer keep the rest. Contention (a transaction conflict, a
//! throttled hot item) is retried with jitter within the round; only contention that outlasts it
//! refuses, and never switches the guards off. An outage refuses a mutating action (502
//! `LEDGER_UNAVAILABLE`) unless `LEDGER_FAILURE=open`; a page always goes out, saying that the
//! history could not be read. The history only informs: a mutating action goes on without it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::deadline::Deadline;
use shared::settings::{Settings, invalid};
use shared::{ConfigError, FunctionError};

use crate::action::{ClaimSpec, Progress};
use crate::budget::{Budgets, Counter, Limit, counters};
use crate::contract::{ActionKind, ActionRequest, ResponseCore};
use crate::ledger::{Claim, History, KeyClaim, KeyEnd, Ledger, NewRecord};
use crate::state::State;

mod enter;
mod round;
mod spend;

pub use round::Round;

/// `LEDGER_FAILURE`: what a mutating action does when the ledger cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LedgerFailure {
    /// `closed` (default): answer 502 and do nothing.
    #[default]
    Closed,
    /// `open`: act without idempotency, budgets, pause or claims, and say so in the logs.
    Open,
}

/// The guard's settings, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardSettings {
    /// `IDEMPOTENCY_TTL_SECONDS` (default 3600): how long a completed request is replayed.
    pub idempotency_ttl: Duration,
    pub budgets: Budgets,
    pub failure: LedgerFailure,
    /// `LEDGER_TIMEOUT_MS` (default 2000): the most one round of ledger calls may take.
    pub round_timeout: Duration,
    /// `PLAN_TOKEN_TTL_SECONDS` (default 900): how long a dry run's plan token may be applied.
    pub token_ttl: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            idempotency_ttl: Duration::from_secs(3600),
            budgets: Budgets::default(),
            failure: LedgerFailure::Closed,
            round_timeout: Duration::from_millis(2000),
            token_ttl: Duration::from_secs(900),
        }
    }
}

impl GuardSettings {
    pub fn from_settings(settings: &Settings<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let limit = |name: &'static str, default: Limit| -> Result<Limit, ConfigError> {
            Ok(settings.parsed(name, Limit::parse)?.unwrap_or(default))
        };
        let failure = match settings.optional("LEDGER_FAILURE").as_deref() {
            None | Some("closed") => LedgerFailure::Closed,
            Some("open") => LedgerFailure::Open,
            Some(other) => return Err(invalid("LEDGER_FAILURE", format!("{other:?} is not closed or open"))),
        };
        let seconds = |name, default: Duration, range| settings.whole(name, default.as_secs(), range);
        Ok(Self {
            idempotency_ttl: Duration::from_secs(seconds(
                "IDEMPOTENCY_TTL_SECONDS",
                defaults.idempotency_ttl,
                60..=604_800,
            )?),
            budgets: Budgets {
                per_target_action: limit("BUDGET_PER_TARGET_ACTION", defaults.budgets.per_target_action)?,
                per_target: limit("BUDGET_PER_TARGET", defaults.budgets.per_target)?,
                fleet: limit("BUDGET_FLEET", defaults.budgets.fleet)?,
            },
            failure,
            round_timeout: Duration::from_millis(settings.whole("LEDGER_TIMEOUT_MS", 2000u64, 100..=10_000)?),
            token_ttl: Duration::from_secs(seconds("PLAN_TOKEN_TTL_SECONDS", defaults.token_ttl, 1..=86_400)?),
        })
    }
}

/// How many times a spend refused by one budget while others were spent is tried again: each
/// counter is exact, but one that refuses may briefly count mutations that lost on another counter.
const SPEND_RETRIES: u32 = 2;

/// The guard: the ledger (none in a local run without `LEDGER_TABLE`) and its settings.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    ledger: Option<Arc<dyn Ledger>>,
    pub settings: GuardSettings,
}

/// What the guard is told of an invocation.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub kind: ActionKind,
    pub mutates: bool,
    pub reads_history: bool,
    pub request: &'a ActionRequest,
    /// What makes two requests the same, beside incident, action, target and priority.
    pub identity: Value,
    pub claim: Option<ClaimSpec>,
    pub request_id: &'a str,
    pub round: Round,
}

/// What the guard says before the work.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Go,
    /// An identical request completed: its answer, again.
    Replay(Box<ResponseCore>),
    /// Paused, over budget, claimed, in progress, or the ledger unavailable: nothing is done.
    Refused(FunctionError),
}

/// What an entered invocation holds in the ledger, to spend and to give back.
#[derive(Debug, Clone, Default)]
pub struct Ticket {
    pub history: History,
    /// Whether the ledger keeps this invocation's record (not a dry run, not without a ledger).
    records: bool,
    /// A mutating action's round 2 holds the guards; a page's has nothing to hold.
    mutates: bool,
    incident: String,
    priority: String,
    key: Option<KeyClaim>,
    /// The claim round 2 takes, for an action that claims its resource.
    wanted: Option<Claim>,
    /// The claim, once taken.
    claim: Option<Claim>,
    counters: Vec<Counter>,
    spent: Vec<Counter>,
    /// Round 2 let the work change the resource.
    acting: bool,
    /// A note for the answer when the ledger was not fully used (`LEDGER_FAILURE=open`).
    pub note: Option<String>,
}

/// How the work ended, for the record and what is given back.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending<'a> {
    pub response: &'a ResponseCore,
    pub before: Option<&'a State>,
    pub after: Option<&'a State>,
    /// How far the resource was changed: what is given back follows from it.
    pub progress: Progress,
}

impl Guard {
    pub fn new(ledger: Option<Arc<dyn Ledger>>, settings: GuardSettings) -> Self {
        Self { ledger, settings }
    }

    pub fn ledger(&self) -> Option<&dyn Ledger> {
        self.ledger.as_deref()
    }

    /// A round of ledger calls before acting: its share of the time left.
    pub fn round_before(&self, deadline: Deadline) -> Round {
        Round::before_acting(deadline, self.settings.round_timeout)
    }

    /// The round after the work.
    pub fn round_after(&self, deadline: Deadline) -> Round {
        Round::after_work(deadline, self.settings.round_timeout)
    }

    /// How much of the deadline the work leaves for the last round: a tenth of the time left, at
    /// most half a round.
    pub fn finish_reserve(&self, deadline: Deadline) -> Duration {
        (deadline.remaining() / 10).min(self.settings.round_timeout / 2)
    }

    /// Round 1, before observing: refuses while paused or over budget, while an identical request
    /// runs or a claim is held; replays an identical completed request; otherwise a ticket.
    pub async fn enter(&self, entry: &Entry<'_>) -> (Ticket, Verdict) {
        let Some(ledger) = self.ledger.as_deref().filter(|_| !entry.request.dry_run) else {
            return (Ticket::default(), Verdict::Go);
        };
        let ticket = self.ticket(entry);
        let found = enter::check(ledger, &ticket, entry).await;
        enter::decide(self, ledger, ticket, entry, found).await
    }

    /// Round 2, just before the first change, by the key's holder, all at once: the claim (if the
    /// action claims its resource), the key marked as applying, and one more mutation in each budget.
    /// A claim held by another is a 409 and a spent budget a 429; whatever was taken is given back by
    /// [`Guard::finish`], at once and in a round of its own. A page skips it: it is never held back.
    pub async fn spend(&self, ticket: &mut Ticket, round: Round) -> Result<(), FunctionError> {
        let Some(ledger) = self.ledger.as_deref().filter(|_| ticket.records && ticket.mutates) else {
            ticket.acting = true;
            return Ok(());
        };
        let counters = std::mem::take(&mut ticket.counters);
        let hold = spend::hold(ledger, ticket.key.as_ref(), ticket.wanted.as_ref(), round);
        let (held, spending) = tokio::join!(hold, spend::spend_all(ledger, &counters, round));
        if held.claimed {
            ticket.claim = ticket.wanted.take();
        }
        let spending = match &held.refusal {
            Some(refusal) if !self.acts_through(refusal) => spending,
            _ => self.spend_again(ledger, &counters, spending, held.claimed, round).await,
        };
        ticket.spent = spending.spent;
        let refusal = [held.refusal, spending.refusal].into_iter().flatten().min_by_key(spend::Refusal::rank);
        if let Some(refusal) = refusal {
            if !self.acts_through(&refusal) {
                return Err(refusal.into_error(ledger.table()));
            }
            tracing::warn!("acting without every guard of round 2 (LEDGER_FAILURE=open): {}", refusal.problem());
            ticket.note = Some(format!("guards not fully held (LEDGER_FAILURE=open): {}", refusal.problem()));
        }
        ticket.acting = true;
        Ok(())
    }

    /// Whether the work goes on despite this refusal: only an outage, only with `LEDGER_FAILURE=open`.
    fn acts_through(&self, refusal: &spend::Refusal) -> bool {
        matches!(refusal, spend::Refusal::Outage(_)) && self.settings.failure == LedgerFailure::Open
    }

    /// A full budget may hold mutations that are about to be given back: ours, spent on the other
    /// counters (given back first), or, for the claim's winner, those of the claim's losers, who give
    /// theirs back as soon as they lose. So the spend is tried again, a moment later, while the round
    /// lasts: a budget is never exceeded, and contention does not leave the winner without one.
    async fn spend_again(
        &self,
        ledger: &dyn Ledger,
        counters: &[Counter],
        mut spending: spend::Spending,
        claimed: bool,
        round: Round,
    ) -> spend::Spending {
        for _ in 0..SPEND_RETRIES {
            let full = matches!(spending.refusal, Some(spend::Refusal::Spent(_)));
            let others_may_give_back = claimed || !spending.spent.is_empty();
            if !full || !others_may_give_back || round.expired() {
                break;
            }
            spend::refund_all(ledger, &spending.spent, round).await;
            round.pause().await;
            spending = spend::spend_all(ledger, counters, round).await;
        }
        spending
    }

    /// Round 3, after the work: the record, and the key and what the invocation holds as far as it
    /// changed the resource ([`Progress`]):
    ///
    /// | progress | key | budgets | claim |
    /// |---|---|---|---|
    /// | a success | completed with the answer | kept | kept |
    /// | nothing | removed: a retry acts | given back | given back |
    /// | partway | removed: a retry carries on | kept | given back |
    /// | changed | completed with the failure, replayed | kept | kept (the cooldown) |
    /// | unknown | left applying: a retry is refused | kept | kept |
    ///
    /// A failure here is logged: the work is done, and the key stays as it was (an applying key
    /// keeps a retry from acting twice).
    pub async fn finish(&self, ticket: Ticket, ending: &Ending<'_>, round: Round) {
        let Some(ledger) = self.ledger.as_deref().filter(|_| ticket.records) else { return };
        let record = self.record_of(&ticket, ending);
        let progress = ending.progress;
        let key_end = match progress {
            _ if ending.response.success => Some(KeyEnd::Completed(ending.response)),
            Progress::Nothing | Progress::Partway => Some(KeyEnd::Removed),
            Progress::Changed => Some(KeyEnd::Completed(ending.response)),
            Progress::Unknown => None,
        };
        let key = ticket.key.as_ref().zip(key_end);
        let refund = if progress == Progress::Nothing { ticket.spent.as_slice() } else { &[] };
        let release = ticket.claim.as_ref().filter(|_| matches!(progress, Progress::Nothing | Progress::Partway));
        spend::finish(ledger, &record, key, release, refund, round).await;
    }

    fn record_of(&self, ticket: &Ticket, ending: &Ending<'_>) -> NewRecord {
        let response = ending.response;
        let outcome = match (&response.error, response.replayed) {
            (_, Some(true)) => "replayed".to_owned(),
            (None, _) => "success".to_owned(),
            (Some(error), _) => error["code"].as_str().unwrap_or("ERROR").to_owned(),
        };
        NewRecord {
            incident_id: ticket.incident.clone(),
            action: response.action.clone().unwrap_or_default(),
            target: response.target.clone().unwrap_or_default(),
            priority: ticket.priority.clone(),
            outcome,
            status_code: response.status_code,
            message: response.message.clone(),
            before: ending.before.cloned(),
            after: ending.after.cloned(),
            details: response.details.clone(),
            request_id: response.execution_id.clone(),
            // A page is not a fix: only a mutating action's change is verified.
            changed: ticket.mutates && ending.progress == Progress::Changed,
        }
    }

    /// The ticket an invocation would hold: its key, claim and counters.
    fn ticket(&self, entry: &Entry<'_>) -> Ticket {
        let request = entry.request;
        let now = Utc::now();
        let ttl = i64::try_from(self.settings.idempotency_ttl.as_secs()).unwrap_or(3600);
        let hash = idempotency_key(entry.kind, request, &entry.identity);
        let key = KeyClaim {
            hash: hash.clone(),
            incident_id: request.incident_id.to_string(),
            request_id: entry.request_id.to_owned(),
            in_progress_until_ms: entry.round.deadline_epoch_ms(),
            expires_at: now.timestamp() + ttl,
        };
        let target = request.target_name();
        let counters = if entry.mutates {
            counters(&self.settings.budgets, target, entry.kind.as_str(), now.timestamp())
        } else {
            Vec::new()
        };
        Ticket {
            records: true,
            incident: request.incident_id.to_string(),
            priority: request.priority.as_str().to_owned(),
            key: Some(key),
            mutates: entry.mutates,
            wanted: entry.claim.as_ref().map(|spec| claim_of(spec, entry, now)),
            counters,
            ..Ticket::default()
        }
    }
}

/// The claim an invocation would take: its own (its id is the request id, so that the SDK's retry
/// of the PutItem finds it its own), held for the action's cooldown and at least until the deadline.
fn claim_of(spec: &ClaimSpec, entry: &Entry<'_>, now: chrono::DateTime<Utc>) -> Claim {
    let hold_ms = i64::try_from(spec.hold.as_millis()).unwrap_or(i64::MAX / 4);
    Claim {
        resource: spec.resource.clone(),
        holder: format!("incident {}", entry.request.incident_id),
        id: entry.request_id.to_owned(),
        held_until_ms: (now.timestamp_millis() + hold_ms).max(entry.round.deadline_epoch_ms()),
        what: spec.what.clone(),
        hold: spec.hold,
    }
}

impl Ticket {
    /// Whether the ledger keeps this invocation's record (and so knows its history).
    pub fn recorded(&self) -> bool {
        self.records
    }

    pub(crate) fn key(&self) -> Option<&KeyClaim> {
        self.key.as_ref()
    }

    pub(crate) fn counters(&self) -> &[Counter] {
        &self.counters
    }

    /// The same ticket without its key (taken by another, or not taken).
    pub(crate) fn drop_key(mut self) -> Self {
        self.key = None;
        self
    }

    /// The same ticket, its record kept by the ledger or not.
    pub(crate) fn recording(mut self, records: bool) -> Self {
        self.records = records;
        self
    }

    /// Whether round 2 let the work change the resource: cut off from then on, the change may
    /// have happened.
    pub fn acting(&self) -> bool {
        self.acting
    }
}

/// The idempotency key of a request: what makes two requests the same action.
pub fn idempotency_key(kind: ActionKind, request: &ActionRequest, identity: &Value) -> String {
    let covered = json!({
        "incidentId": request.incident_id.to_string(), "action": kind.as_str(),
        "target": request.target.as_deref().unwrap_or(""), "priority": request.priority.as_str(),
        "identity": identity,
    });
    let digest = Sha256::digest(covered.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
