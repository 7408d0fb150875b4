//! One round of ledger calls and the time it may take: a share of the invocation's deadline.

use std::future::Future;
use std::time::Duration;

use shared::deadline::Deadline;
use tokio::time::Instant;

use crate::ledger::LedgerError;

/// First wait after a contention, doubled per attempt up to [`CONTENTION_CAP`], fully jittered.
const CONTENTION_BASE: Duration = Duration::from_millis(10);
const CONTENTION_CAP: Duration = Duration::from_millis(250);

/// The time one round of ledger calls may take, and the invocation's deadline.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    until: Instant,
    deadline: Deadline,
}

impl Round {
    /// A round before acting: at most `cap`, and at most a third of the time left, so that the
    /// work and the answer keep two thirds of it whatever the ledger does.
    pub fn before_acting(deadline: Deadline, cap: Duration) -> Self {
        let share = (deadline.remaining() / 3).min(cap);
        Self { until: Instant::now() + share, deadline }
    }

    /// A round after the work: at most `cap`, and never past the deadline (which keeps the
    /// answer's own reserve).
    pub fn after_work(deadline: Deadline, cap: Duration) -> Self {
        Self { until: Instant::now() + deadline.remaining().min(cap), deadline }
    }

    /// The invocation's deadline as epoch milliseconds (how long its idempotency key is its own).
    pub fn deadline_epoch_ms(&self) -> i64 {
        self.deadline.epoch_millis()
    }

    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// Whether the round's time is up.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.until
    }

    /// A jittered pause within the round, before trying again.
    pub async fn pause(&self) {
        tokio::time::sleep(jittered(3).min(self.until.saturating_duration_since(Instant::now()))).await;
    }

    /// Runs one ledger call within the round. Contention is retried with jitter while the round
    /// lasts, and stays contention when it outlasts it; a call unanswered at the round's end is the
    /// ledger being unavailable.
    pub async fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<T, LedgerError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, LedgerError>>,
    {
        let contended = std::sync::Mutex::new(None::<String>);
        let attempts = async {
            let mut attempt = 0u32;
            loop {
                match call().await {
                    Err(LedgerError::Contention(problem)) => {
                        let wait = jittered(attempt);
                        if Instant::now() + wait >= self.until {
                            return Err(LedgerError::Contention(format!("{what}: {problem}")));
                        }
                        tracing::debug!(attempt, "{what}: contention, retried: {problem}");
                        *contended.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(problem);
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        };
        let outcome = tokio::time::timeout_at(self.until, attempts).await;
        outcome.unwrap_or_else(|_| {
            let last = contended.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            Err(match last {
                Some(problem) => LedgerError::Contention(format!("{what}: still contended: {problem}")),
                None => LedgerError::Unavailable(format!("{what}: no answer within the ledger's share of time")),
            })
        })
    }
}

/// A wait in `[0, min(cap, base * 2^attempt))`: full jitter, so that contenders spread out.
fn jittered(attempt: u32) -> Duration {
    let ceiling = CONTENTION_BASE.saturating_mul(1 << attempt.min(10)).min(CONTENTION_CAP);
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    Duration::from_micros(random % u64::try_from(ceiling.as_micros()).unwrap_or(1).max(1))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn a_round_before_acting_keeps_two_thirds_of_the_time() {
        let deadline = Deadline::after(Duration::from_secs(3));
        let round = Round::before_acting(deadline, Duration::from_secs(2));
        let share = round.until - Instant::now();
        assert!(share <= Duration::from_secs(1) && share > Duration::from_millis(900), "{share:?}");
        let long = Round::before_acting(Deadline::after(Duration::from_secs(60)), Duration::from_secs(2));
        assert!(long.until - Instant::now() <= Duration::from_secs(2), "capped");
    }

    #[test]
    fn jitter_stays_under_its_ceiling() {
        for attempt in 0..20 {
            assert!(jittered(attempt) < CONTENTION_CAP);
        }
        assert!(jittered(0) < CONTENTION_BASE);
    }

    #[tokio::test]
    async fn contention_is_retried_and_an_outage_is_not() {
        let round = Round::before_acting(Deadline::after(Duration::from_secs(3)), Duration::from_secs(1));
        let tries = AtomicU32::new(0);
        let result = round
            .call("spend", || async {
                match tries.fetch_add(1, Ordering::SeqCst) {
                    0..=2 => Err(LedgerError::Contention("TransactionConflict".into())),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!((result, tries.load(Ordering::SeqCst)), (Ok(7), 4));
        let outage = AtomicU32::new(0);
        let result: Result<(), _> = round
            .call("spend", || async {
                outage.fetch_add(1, Ordering::SeqCst);
                Err(LedgerError::Unavailable("503".into()))
            })
            .await;
        assert_eq!((result.is_err(), outage.load(Ordering::SeqCst)), (true, 1));
    }

    #[tokio::test]
    async fn a_hanging_ledger_is_unavailable_at_the_end_of_the_round() {
        let round = Round::before_acting(Deadline::after(Duration::from_millis(600)), Duration::from_secs(2));
        let started = Instant::now();
        let result: Result<(), _> = round.call("read", std::future::pending).await;
        assert!(matches!(result, Err(LedgerError::Unavailable(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_millis(300), "a third of the time left");
    }

    #[tokio::test]
    async fn endless_contention_ends_with_the_round_as_contention() {
        let round = Round::before_acting(Deadline::after(Duration::from_millis(600)), Duration::from_secs(2));
        let result: Result<(), _> =
            round.call("spend", || async { Err(LedgerError::Contention("TransactionConflict".into())) }).await;
        assert!(matches!(result, Err(LedgerError::Contention(_))), "contention is never an outage: {result:?}");
    }
}
