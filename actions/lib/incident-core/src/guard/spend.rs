//! Round 2 (spending the budgets just before the first change) and round 3 (the record, and giving
//! back what a change that did not happen took).

use shared::FunctionError;

use super::Round;
use crate::budget::Counter;
use crate::ledger::{Claim, KeyClaim, KeyEnd, Ledger, LedgerError, NewRecord};

/// Why round 2 did not spend every budget.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Refusal {
    /// A budget's window is full.
    Spent(FunctionError),
    /// Contention outlasted the round: never acted on, even with `LEDGER_FAILURE=open`.
    Contention(String),
    /// The ledger did not answer.
    Outage(String),
}

impl Refusal {
    pub(super) fn into_error(self, table: &str) -> FunctionError {
        let table = table.to_owned();
        match self {
            Self::Spent(error) => error,
            Self::Contention(problem) => FunctionError::LedgerUnavailable {
                table,
                problem: format!("{problem} (contention outlasted the retries; the budgets were not spent)"),
            },
            Self::Outage(problem) => FunctionError::LedgerUnavailable { table, problem },
        }
    }
}

/// What round 2 did.
pub(super) struct Spending {
    pub spent: Vec<Counter>,
    pub refusal: Option<Refusal>,
}

/// Spends one mutation of each budget, and marks the key as applying, all at once.
pub(super) async fn spend_all(
    ledger: &dyn Ledger,
    counters: &[Counter],
    key: Option<&KeyClaim>,
    round: Round,
) -> Spending {
    let spends = counters.iter().map(|counter| round.call("UpdateItem", move || ledger.spend(counter)));
    let applying = async {
        match key {
            Some(key) => round.call("UpdateItem", || ledger.mark_applying(key)).await,
            None => Ok(()),
        }
    };
    let (results, applying) = tokio::join!(futures::future::join_all(spends), applying);
    let mut spending = Spending { spent: Vec::new(), refusal: None };
    for (counter, result) in counters.iter().zip(results) {
        match result {
            Ok(None) => spending.spent.push(counter.clone()),
            Ok(Some(count)) => spending.refuse(Refusal::Spent(counter.exhausted(count))),
            Err(LedgerError::Contention(problem)) => spending.refuse(Refusal::Contention(problem)),
            Err(LedgerError::Unavailable(problem)) => spending.refuse(Refusal::Outage(problem)),
        }
    }
    if let Err(problem) = applying {
        tracing::warn!("the key was not marked as applying; a crash now would let a retry act: {}", problem.problem());
    }
    spending
}

impl Spending {
    /// Keeps the weightiest reason: a spent budget, then contention, then an outage.
    fn refuse(&mut self, refusal: Refusal) {
        let rank = |r: &Refusal| match r {
            Refusal::Spent(_) => 0,
            Refusal::Contention(_) => 1,
            Refusal::Outage(_) => 2,
        };
        if self.refusal.as_ref().is_none_or(|kept| rank(&refusal) < rank(kept)) {
            self.refusal = Some(refusal);
        }
    }
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

/// Round 3: the record and the key in one write, and, when nothing changed, the claim and the
/// budgets given back, all at once. Failures are logged: the work is done.
pub(super) async fn finish(
    ledger: &dyn Ledger,
    record: &NewRecord,
    key: Option<(&KeyClaim, KeyEnd<'_>)>,
    give_back: Option<(Option<&Claim>, &[Counter])>,
    round: Round,
) {
    let written = round.call("TransactWriteItems", || match key {
        Some(key) => ledger.finish(record, Some(key)),
        None => ledger.record(record),
    });
    let (claim, spent) = give_back.unwrap_or((None, &[]));
    let released = async {
        match claim {
            Some(claim) => round.call("DeleteItem", || ledger.release(claim)).await,
            None => Ok(()),
        }
    };
    let (written, released, ()) = tokio::join!(written, released, refund_all(ledger, spent, round));
    if let Err(problem) = written {
        tracing::error!(table = ledger.table(), "the ledger record was not written: {}", problem.problem());
    }
    if let Err(problem) = released {
        tracing::warn!("the claim was not given back (it ends with its hold): {}", problem.problem());
    }
}
