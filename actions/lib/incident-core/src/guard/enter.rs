//! Round 1, before observing: what the ledger says of an invocation, read in one round, and the
//! verdict on it.

use shared::FunctionError;

use super::{Entry, Guard, LedgerFailure, Ticket, Verdict};
use crate::ledger::{Guards, History, KeyState, Ledger, LedgerError};

/// What round 1 found.
#[derive(Debug)]
pub(super) struct Found {
    /// Pauses and budget counts (mutating actions only).
    guards: Option<Result<Guards, LedgerError>>,
    history: Result<History, LedgerError>,
    key: Result<KeyState, LedgerError>,
}

impl Found {
    /// The first failure of a call the verdict rests on (the history is not one: it only informs),
    /// contention first, since contention is never taken for an outage.
    fn problem(&self) -> Option<&LedgerError> {
        let errors = [self.guards.as_ref().and_then(|r| r.as_ref().err()), self.key.as_ref().err()];
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
    let (guards, history, key) = tokio::join!(guards, history, key);
    Found { guards, history, key }
}

/// The verdict on what round 1 found. A refused invocation keeps, in its ticket, only the key it
/// took itself, which [`Guard::finish`] gives back with its record.
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
    ticket.history = match &found.history {
        Ok(history) => history.clone(),
        Err(problem) => {
            tracing::warn!("acting without the incident's history (it only informs): {}", problem.problem());
            History::unavailable(problem.problem().to_owned())
        }
    };
    let took_key = matches!(found.key, Ok(KeyState::Taken));
    if !took_key {
        ticket = ticket.drop_key();
    }
    match found.problem().cloned() {
        None => {}
        Some(LedgerError::Unavailable(problem)) if guard.settings.failure == LedgerFailure::Open => {
            tracing::warn!("acting without part of the incident ledger (LEDGER_FAILURE=open): {problem}");
            ticket.note = Some(format!("the incident ledger was not fully used (LEDGER_FAILURE=open): {problem}"));
            // Without the key there is nothing to complete and no spend to hold to account.
            ticket = ticket.recording(took_key);
        }
        Some(problem) => return refused(ledger, ticket.recording(took_key), problem),
    }
    let verdict = verdict(&ticket, entry, found.key.ok(), found.guards.and_then(Result::ok));
    (ticket, verdict)
}

/// The first reason not to act, in order: an identical request, a pause, a spent budget. What the
/// ledger did not answer (`LEDGER_FAILURE=open`) is no reason.
fn verdict(ticket: &Ticket, entry: &Entry<'_>, key: Option<KeyState>, guards: Option<Guards>) -> Verdict {
    if let Some(verdict) = key.and_then(|state| identical(entry, state)) {
        return verdict;
    }
    let guards = guards.unwrap_or_default();
    if let Some(pause) = guards.pause {
        let resume = match &pause.target {
            Some(target) => format!("incident-ledger resume --target {target}"),
            None => "incident-ledger resume".to_owned(),
        };
        let (scope, by, reason, since) = (pause.scope, pause.by, pause.reason, pause.since);
        return Verdict::Refused(FunctionError::AutomationPaused { scope, by, reason, since, resume });
    }
    let counted = ticket.counters().iter().zip(guards.counts);
    match counted.into_iter().find(|(c, count)| *count >= c.limit.count) {
        Some((counter, count)) => Verdict::Refused(counter.exhausted(count)),
        None => Verdict::Go,
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

/// The ledger did not answer round 1 and the guards are not switched off: refused, with the key
/// (if this invocation took it) given back with the refusal's record. Contention is never taken for
/// an outage, even with `LEDGER_FAILURE=open`.
fn refused(ledger: &dyn Ledger, ticket: Ticket, problem: LedgerError) -> (Ticket, Verdict) {
    let table = ledger.table().to_owned();
    tracing::error!(table, "refused: the incident ledger did not answer: {}", problem.problem());
    let problem = match problem {
        LedgerError::Contention(p) => format!(
            "{p} (contention outlasted the retries; not an outage, so not acted on even with LEDGER_FAILURE=open)"
        ),
        LedgerError::Unavailable(p) => p,
    };
    (ticket, Verdict::Refused(FunctionError::LedgerUnavailable { table, problem }))
}
