//! Round 2 (the claim, the key marked as applying and the budgets, just before the first change)
//! and round 3 (the record, and giving back what a change that did not happen took).

use shared::FunctionError;

use super::Round;
use crate::budget::Counter;
use crate::ledger::{Claim, KeyClaim, KeyEnd, Ledger, LedgerError, NewRecord};

/// Why round 2 did not hold every guard.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Refusal {
    /// Another invocation holds the claim on the resource.
    Claimed(FunctionError),
    /// A budget's window is full.
    Spent(FunctionError),
    /// Contention outlasted the round: never acted on, even with `LEDGER_FAILURE=open`.
    Contention(String),
    /// The ledger did not answer.
    Outage(String),
}

impl Refusal {
    /// The weightiest reason first: a claim held, a spent budget, contention, an outage.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Self::Claimed(_) => 0,
            Self::Spent(_) => 1,
            Self::Contention(_) => 2,
            Self::Outage(_) => 3,
        }
    }

    pub(super) fn problem(&self) -> String {
        match self {
            Self::Claimed(error) | Self::Spent(error) => error.to_string(),
            Self::Contention(problem) | Self::Outage(problem) => problem.clone(),
        }
    }

    fn of(error: LedgerError) -> Self {
        match error {
            LedgerError::Contention(problem) => Self::Contention(problem),
            LedgerError::Unavailable(problem) => Self::Outage(problem),
        }
    }

    pub(super) fn into_error(self, table: &str) -> FunctionError {
        let table = table.to_owned();
        match self {
            Self::Claimed(error) | Self::Spent(error) => error,
            Self::Contention(problem) => FunctionError::LedgerUnavailable {
                table,
                problem: format!("{problem} (contention outlasted the retries; nothing was changed)"),
            },
            Self::Outage(problem) => FunctionError::LedgerUnavailable { table, problem },
        }
    }
}

/// What the budgets of round 2 came to.
#[derive(Debug, Default)]
pub(super) struct Spending {
    pub spent: Vec<Counter>,
    pub refusal: Option<Refusal>,
}

/// Spends one mutation of each budget, all at once.
pub(super) async fn spend_all(ledger: &dyn Ledger, counters: &[Counter], round: Round) -> Spending {
    let spends = counters.iter().map(|counter| round.call("UpdateItem", move || ledger.spend(counter)));
    let mut spending = Spending::default();
    for (counter, result) in counters.iter().zip(futures::future::join_all(spends).await) {
        match result {
            Ok(None) => spending.spent.push(counter.clone()),
            Ok(Some(count)) => spending.refuse(Refusal::Spent(counter.exhausted(count))),
            Err(error) => spending.refuse(Refusal::of(error)),
        }
    }
    spending
}

impl Spending {
    fn refuse(&mut self, refusal: Refusal) {
        if self.refusal.as_ref().is_none_or(|kept| refusal.rank() < kept.rank()) {
            self.refusal = Some(refusal);
        }
    }
}

/// What the claim and the key came to.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// The claim is now this invocation's.
    pub claimed: bool,
    pub refusal: Option<Refusal>,
}

/// Takes the claim (if any) and marks the key as applying, at once: a crash from here on must not
/// let a retry act, so a key that could not be marked refuses as the ledger being unavailable.
pub(super) async fn hold(ledger: &dyn Ledger, key: Option<&KeyClaim>, claim: Option<&Claim>, round: Round) -> Held {
    let applying = async {
        match key {
            Some(key) => round.call("UpdateItem", || ledger.mark_applying(key)).await,
            None => Ok(()),
        }
    };
    let claimed = async {
        match claim {
            Some(claim) => Some(round.call("PutItem", || ledger.claim(claim)).await),
            None => None,
        }
    };
    let (applying, claimed) = tokio::join!(applying, claimed);
    let mut held = Held::default();
    let mut spending = Spending::default();
    match (claimed, claim) {
        (Some(Ok(None)), _) => held.claimed = true,
        (Some(Ok(Some(other))), Some(claim)) => spending.refuse(Refusal::Claimed(FunctionError::Conflict(format!(
            "{} was already started at {} by {} (held {} s); not starting another: do not retry",
            claim.what,
            other.since,
            other.holder,
            claim.hold.as_secs()
        )))),
        (Some(Err(error)), _) => spending.refuse(Refusal::of(error)),
        _ => {}
    }
    if let Err(error) = applying {
        spending.refuse(Refusal::of(error));
    }
    held.refusal = spending.refusal;
    held
}

/// Gives back one mutation of each of these budgets; a failure is logged (the window ends anyway).
pub(super) async fn refund_all(ledger: &dyn Ledger, spent: &[Counter], round: Round) {
    let refunds = spent.iter().map(|counter| round.call("UpdateItem", move || ledger.refund(counter)));
    for (counter, result) in spent.iter().zip(futures::future::join_all(refunds).await) {
        if let Err(problem) = result {
            tracing::warn!(budget = %counter.name, "a mutation that did not happen stays counted: {}", problem.problem());
        }
    }
}

/// Round 3: the record and the key in one write (the record alone when the key stays as it is),
/// the claim and the budgets given back, all at once. Failures are logged: the work is done.
pub(super) async fn finish(
    ledger: &dyn Ledger,
    record: &NewRecord,
    key: Option<(&KeyClaim, KeyEnd<'_>)>,
    release: Option<&Claim>,
    refund: &[Counter],
    round: Round,
) {
    let written = round.call("TransactWriteItems", || match key {
        Some(key) => ledger.finish(record, Some(key)),
        None => ledger.record(record),
    });
    let released = async {
        match release {
            Some(claim) => round.call("DeleteItem", || ledger.release(claim)).await,
            None => Ok(()),
        }
    };
    let (written, released, ()) = tokio::join!(written, released, refund_all(ledger, refund, round));
    if let Err(problem) = written {
        tracing::error!(table = ledger.table(), "the ledger record was not written: {}", problem.problem());
    }
    if let Err(problem) = released {
        tracing::warn!("the claim was not given back (it ends with its hold): {}", problem.problem());
    }
}
