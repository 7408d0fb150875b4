//! Remediation budgets: at most so many mutations per window, per target and action, per target,
//! and across the fleet (the storm guard). Each budget is one counter item per fixed window, spent
//! with one conditional update of its own (see [`crate::guard`] for why not a transaction).

use std::time::Duration;

use chrono::{SecondsFormat, TimeZone, Utc};
use shared::FunctionError;

/// At most `count` mutations per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub count: u64,
    pub window: Duration,
}

impl Limit {
    /// `3/3600`: 3 per 3600 seconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (count, seconds) = text.split_once('/').ok_or_else(|| format!("{text:?} is not <count>/<seconds>"))?;
        let count: u64 = count.trim().parse().map_err(|_| format!("{text:?}: the count is not a whole number"))?;
        let seconds: u64 = seconds.trim().parse().map_err(|_| format!("{text:?}: the window is not whole seconds"))?;
        if count == 0 || !(60..=7 * 24 * 3600).contains(&seconds) {
            return Err(format!("{text:?}: the count must be at least 1 and the window 60 s to 7 days"));
        }
        Ok(Self { count, window: Duration::from_secs(seconds) })
    }
}

/// The three budgets; see the README for their defaults and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// `BUDGET_PER_TARGET_ACTION` (default 3/3600): one action on one target, e.g. 3 restarts an hour.
    pub per_target_action: Limit,
    /// `BUDGET_PER_TARGET` (default 6/3600): every action on one target.
    pub per_target: Limit,
    /// `BUDGET_FLEET` (default 20/600): every mutation of every target, the storm guard.
    pub fleet: Limit,
}

impl Default for Budgets {
    fn default() -> Self {
        let limit = |count, seconds| Limit { count, window: Duration::from_secs(seconds) };
        Self { per_target_action: limit(3, 3600), per_target: limit(6, 3600), fleet: limit(20, 600) }
    }
}

/// One budget's counter for the window holding a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// For people: `per target and action (api, scale_up)`.
    pub name: String,
    /// The counter item's partition key: `BUDGET#target-action#api#scale_up`.
    pub pk: String,
    /// Epoch seconds.
    pub window_start: i64,
    pub limit: Limit,
}

impl Counter {
    /// The counter item's sort key.
    pub fn sk(&self) -> String {
        format!("WINDOW#{}", self.window_start)
    }

    /// When the item may go (epoch s): a window after its own ends.
    pub fn expires_at(&self) -> i64 {
        self.window_start + 2 * self.window_secs()
    }

    fn window_secs(&self) -> i64 {
        i64::try_from(self.limit.window.as_secs()).unwrap_or(i64::MAX / 4)
    }

    fn resets(&self) -> String {
        let end = self.window_start + self.window_secs();
        Utc.timestamp_opt(end, 0).single().map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)).unwrap_or_default()
    }

    /// The 429 for this budget at `count`.
    pub fn exhausted(&self, count: u64) -> FunctionError {
        FunctionError::BudgetExhausted {
            budget: self.name.clone(),
            count,
            limit: self.limit.count,
            window_seconds: self.limit.window.as_secs(),
            resets: self.resets(),
        }
    }
}

/// The counters a mutation of `target` by `action` at `now` (epoch s) spends.
pub fn counters(budgets: &Budgets, target: &str, action: &str, now: i64) -> Vec<Counter> {
    let counter = |name: String, pk: String, limit: Limit| {
        let window = i64::try_from(limit.window.as_secs()).unwrap_or(i64::MAX / 4);
        Counter { name, pk, window_start: now - now.rem_euclid(window), limit }
    };
    vec![
        counter(
            format!("per target and action ({target}, {action})"),
            format!("BUDGET#target-action#{target}#{action}"),
            budgets.per_target_action,
        ),
        counter(format!("per target ({target})"), format!("BUDGET#target#{target}"), budgets.per_target),
        counter("fleet-wide".to_owned(), "BUDGET#fleet".to_owned(), budgets.fleet),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_read_as_count_per_seconds() {
        assert_eq!(Limit::parse("3/3600"), Ok(Limit { count: 3, window: Duration::from_secs(3600) }));
        for bad in ["3", "0/3600", "3/10", "3/59", "3/604801", "x/60", "3/1e9"] {
            assert!(Limit::parse(bad).is_err(), "{bad}");
        }
        // The window's bounds themselves: 60 s and 7 days.
        assert!(Limit::parse("1/60").is_ok() && Limit::parse("1/604800").is_ok());
    }

    #[test]
    fn windows_are_fixed_and_named_with_their_reset() {
        let c = counters(&Budgets::default(), "api", "scale_up", 7_250);
        assert_eq!((c[0].window_start, c[2].window_start), (7_200, 7_200));
        assert_eq!(c[0].pk, "BUDGET#target-action#api#scale_up");
        assert_eq!((c[0].sk(), c[0].expires_at()), ("WINDOW#7200".to_owned(), 7_200 + 7_200));
        let FunctionError::BudgetExhausted { resets, budget, .. } = c[2].exhausted(20) else { panic!("budget") };
        assert_eq!((budget.as_str(), resets.as_str()), ("fleet-wide", "1970-01-01T02:10:00Z"));
    }
}
