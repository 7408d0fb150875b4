//! Round 1, before observing: what the ledger says of an invocation, read in one round, and the
//! verdict on it.

use shared::FunctionError;

use super::{Entry, Guard, LedgerFailure, Ticket, Verdict};
use crate::ledger::{Guards, HeldClaim, History, KeyState, Ledger, LedgerError};

/// What round 1 found.
#[derive(Debug)]
pub(super) struct Found {
    /// Pauses and budget counts (mutating actions only).
    guards: Option<Result<Guards, LedgerError>>,
    history: Result<History, LedgerError>,
    key: Result<KeyState, LedgerError>,
    /// The claim (actions that claim their resource only): `Some(holder)` when another holds it.
    claim: Option<Result<Option<HeldClaim>, LedgerError>>,
}

impl Found {
    /// The first failed call, and whether every failure was contention rather than an outage.
    fn problem(&self) -> Option<&LedgerError> {
        let errors = [
            self.guards.as_ref().and_then(|r| r.as_ref().err()),
            self.history.as_ref().err(),
            self.key.as_ref().err(),
            self.claim.as_ref().and_then(|r| r.as_ref().err()),
        ];
        let mut failed = errors.into_iter().flatten();
        let first = failed.next()?;
        Some(failed.find(|e| matches!(e, LedgerError::Contention(_))).unwrap_or(first))
    }
}

/// The calls of round 1, issued together.
pub(super) async fn check(ledger: &dyn Ledger, ticket: &Ticket, entry: &Entry<'_>) -> Found {
    let round = entry.round;
    let incident = entry.request.incident_id.to_string();
    let target = entry.request.target.as_deref();
    let guards = async {
        match entry.mutates {
            true => Some(round.call("BatchGetItem", || ledger.read_guards(target, ticket.counters())).await),
            false => None,
        }
    };
    let history = round.call("Query", || ledger.history(&incident, entry.reads_history));
    let key = async {
        match ticket.key() {
            Some(key) => round.call("PutItem", || ledger.take_key(key)).await,
            None => Err(LedgerError::Unavailable("no idempotency key".to_owned())),
        }
    };
    let claim = async {
        match ticket.claim() {
            Some(claim) => Some(round.call("PutItem", || ledger.claim(claim)).await),
            None => None,
        }
    };
    let (guards, history, key, claim) = tokio::join!(guards, history, key, claim);
    Found { guards, history, key, claim }
}

/// The verdict on what round 1 found. A refused invocation keeps, in its ticket, only what it took
/// itself (its key, its claim), which [`Guard::finish`] gives back with its record.
pub(super) async fn decide(
    guard: &Guard,
    ledger: &dyn Ledger,
    mut ticket: Ticket,
    entry: &Entry<'_>,
    found: Found,
) -> (Ticket, Verdict) {
    if !entry.mutates {
        return page(ticket, found);
    }
    if let Some(problem) = found.problem() {
        return unavailable(guard, ledger, ticket, &found, problem.clone());
    }
    // What is given back is only what this invocation took; a claim shared with an identical
    // request that holds the key is that request's to give back.
    let took_key = matches!(found.key, Ok(KeyState::Taken));
    if !took_key {
        ticket = ticket.drop_key();
    }
    if !took_key || !matches!(found.claim, Some(Ok(None))) {
        ticket = ticket.drop_claim();
    }
    if let Ok(history) = found.history {
        ticket.history = history;
    }
    let verdict = verdict(&ticket, entry, found.key, found.guards, found.claim);
    (ticket, verdict)
}

/// The first reason not to act, in order: an identical request, a pause, a spent budget, a claim.
fn verdict(
    ticket: &Ticket,
    entry: &Entry<'_>,
    key: Result<KeyState, LedgerError>,
    guards: Option<Result<Guards, LedgerError>>,
    claim: Option<Result<Option<HeldClaim>, LedgerError>>,
) -> Verdict {
    if let Ok(state) = key
        && let Some(verdict) = identical(entry, state)
    {
        return verdict;
    }
    let guards = guards.and_then(Result::ok).unwrap_or_default();
    if let Some(pause) = guards.pause {
        let resume = match &pause.target {
            Some(target) => format!("incident-ledger resume --target {target}"),
            None => "incident-ledger resume".to_owned(),
        };
        let (scope, by, reason, since) = (pause.scope, pause.by, pause.reason, pause.since);
        return Verdict::Refused(FunctionError::AutomationPaused { scope, by, reason, since, resume });
    }
    let counted = ticket.counters().iter().zip(guards.counts);
    if let Some((counter, count)) = counted.into_iter().find(|(c, count)| *count >= c.limit.count) {
        return Verdict::Refused(counter.exhausted(count));
    }
    match (claim, &entry.claim) {
        (Some(Ok(Some(held))), Some(spec)) => Verdict::Refused(FunctionError::Conflict(format!(
            "{} was already started at {} by {} (held {} s); not starting another: do not retry",
            spec.what,
            held.since,
            held.holder,
            spec.hold.as_secs()
        ))),
        _ => Verdict::Go,
    }
}

/// An identical request was here before: replayed, or refused while it runs.
fn identical(entry: &Entry<'_>, state: KeyState) -> Option<Verdict> {
    let request = entry.request;
    let same = format!(
        "an identical request (incident {}, {}, priority {})",
        request.incident_id,
        entry.kind.as_str(),
        request.priority.as_str()
    );
    match state {
        KeyState::Taken => None,
        KeyState::Completed(recorded) => Some(Verdict::Replay(recorded)),
        KeyState::InProgress { request_id } => Some(Verdict::Refused(FunctionError::InProgress(format!(
            "{same} is in progress (request {request_id}); its answer will be replayed once it completes: retry later"
        )))),
        KeyState::Applying { request_id, since } => Some(Verdict::Refused(FunctionError::OutcomeUnknown(format!(
            "{same} began changing the resource at {since} (request {request_id}) and never recorded how it ended, \
             e.g. it was stopped at its timeout; look at the target and at `incident-ledger history {}` before \
             acting again (a request with another priority is another request)",
            request.incident_id
        )))),
    }
}

/// A page goes on whatever the ledger said: without the history when it could not be read,
/// without idempotency when the key could not be taken.
fn page(mut ticket: Ticket, found: Found) -> (Ticket, Verdict) {
    ticket.history = match found.history {
        Ok(history) => history,
        Err(problem) => {
            tracing::warn!("paging without the incident's history: {}", problem.problem());
            History::unavailable(problem.problem().to_owned())
        }
    };
    match found.key {
        Ok(KeyState::Taken) => (ticket, Verdict::Go),
        Ok(KeyState::Completed(recorded)) => (ticket.drop_key(), Verdict::Replay(recorded)),
        Ok(KeyState::InProgress { request_id }) => {
            let problem = format!("an identical page is being sent (request {request_id}); it pages once: retry later");
            (ticket.drop_key(), Verdict::Refused(FunctionError::InProgress(problem)))
        }
        // Its sender stopped without saying whether it paged: better twice than not at all.
        Ok(KeyState::Applying { .. }) => (ticket.drop_key(), Verdict::Go),
        Err(problem) => {
            tracing::warn!("paging without idempotency: {}", problem.problem());
            let ticket = ticket.drop_key();
            let records = ticket.history.unavailable.is_none();
            (ticket.recording(records), Verdict::Go)
        }
    }
}

/// The ledger did not answer round 1. A mutating action refuses, unless the operator chose to act
/// blind during an outage (`LEDGER_FAILURE=open`); contention is never an outage.
fn unavailable(
    guard: &Guard,
    ledger: &dyn Ledger,
    ticket: Ticket,
    found: &Found,
    problem: LedgerError,
) -> (Ticket, Verdict) {
    let table = ledger.table().to_owned();
    let open = guard.settings.failure == LedgerFailure::Open;
    if let (LedgerError::Unavailable(problem), true) = (&problem, open) {
        tracing::warn!("acting without the incident ledger (LEDGER_FAILURE=open): {problem}");
        return (Ticket::without_ledger(problem, History::unavailable(problem.clone())), Verdict::Go);
    }
    tracing::error!(table, "refused: the incident ledger did not answer: {}", problem.problem());
    // Give back what was taken (a key, a claim) with the refusal's record, if anything was.
    let took_key = matches!(found.key, Ok(KeyState::Taken));
    let took_claim = took_key && matches!(found.claim, Some(Ok(None)));
    let ticket = if took_key { ticket } else { ticket.drop_key() };
    let ticket = if took_claim { ticket } else { ticket.drop_claim() };
    let ticket = ticket.recording(took_key || took_claim);
    let problem = match problem {
        LedgerError::Contention(p) => format!(
            "{p} (contention outlasted the retries; not an outage, so not acted on even with LEDGER_FAILURE=open)"
        ),
        LedgerError::Unavailable(p) => p,
    };
    (ticket, Verdict::Refused(FunctionError::LedgerUnavailable { table, problem }))
}
