//! Bounding work by the Lambda deadline, so a function answers 504 instead of being killed.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::Context;
use tokio::time::Instant;

use crate::FunctionError;

/// Time kept back from the deadline to serialise and send the answer.
pub const ANSWER_RESERVE: Duration = Duration::from_millis(500);

/// Used when the context carries no deadline (tests building `Context::default()`): Lambda's maximum.
const NO_DEADLINE: Duration = Duration::from_secs(900);

/// The point in time by which the handler must have its answer ready.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// From the invocation's context: its deadline (epoch milliseconds) less [`ANSWER_RESERVE`].
    pub fn from_context(ctx: &Context) -> Self {
        let remaining = if ctx.deadline == 0 {
            NO_DEADLINE
        } else {
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            let left_ms = u128::from(ctx.deadline).saturating_sub(now_ms);
            Duration::from_millis(u64::try_from(left_ms).unwrap_or(u64::MAX)).saturating_sub(ANSWER_RESERVE)
        };
        Self::after(remaining)
    }

    pub fn after(remaining: Duration) -> Self {
        Self { at: Instant::now() + remaining }
    }

    /// The same deadline, `reserve` earlier (time kept for what comes after the work).
    pub fn less(&self, reserve: Duration) -> Self {
        Self { at: self.at.checked_sub(reserve).unwrap_or(self.at) }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The deadline as wall-clock epoch milliseconds (what the ledger writes as an expiry).
    pub fn epoch_millis(&self) -> i64 {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        i64::try_from(now_ms + self.remaining().as_millis()).unwrap_or(i64::MAX)
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Runs `work`, or gives up at the deadline with [`FunctionError::DeadlineExceeded`] naming `during`.
    pub async fn run<T>(
        &self,
        during: &str,
        work: impl Future<Output = Result<T, FunctionError>>,
    ) -> Result<T, FunctionError> {
        match tokio::time::timeout_at(self.at, work).await {
            Ok(result) => result,
            Err(_) => Err(FunctionError::DeadlineExceeded { during: during.to_owned() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_past_the_deadline_ends_in_deadline_exceeded() {
        let deadline = Deadline::after(Duration::from_millis(20));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        };
        let err = deadline.run("ECS UpdateService", slow).await.unwrap_err();
        assert_eq!(err, FunctionError::DeadlineExceeded { during: "ECS UpdateService".into() });
        assert_eq!(err.status(), 504);
    }

    #[tokio::test]
    async fn work_inside_the_deadline_returns_its_result() {
        let deadline = Deadline::after(Duration::from_secs(5));
        assert_eq!(deadline.run("x", async { Ok(7) }).await, Ok(7));
    }

    #[test]
    fn context_deadline_keeps_the_answer_reserve() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let mut ctx = Context::default();
        ctx.deadline = now_ms + 3_000;
        let remaining = Deadline::from_context(&ctx).remaining();
        assert!(remaining <= Duration::from_millis(2_500), "{remaining:?}");
        assert!(remaining > Duration::from_millis(2_000), "{remaining:?}");

        ctx.deadline = now_ms.saturating_sub(1_000); // already past
        assert!(Deadline::from_context(&ctx).expired());
    }
}
