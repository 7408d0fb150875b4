//! Phase 2, classify, and phase 4, settle (pure): what the counts and ages say of a draining
//! service, and what its tasks' readiness says.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ReaperSettings;
use crate::discover::Draining;

/// What the counts and ages alone say about a draining service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    CleanUp,
    Retire(String),
    Wait(String),
    /// Only the tasks' ShutdownReady metrics can tell.
    CheckTasks,
}

pub(crate) fn age(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    since.map_or(Duration::ZERO, |t| now.signed_duration_since(t).to_std().unwrap_or_default())
}

/// Phase 2: the verdict from counts and ages. MIN_AGE counts from the service's creation, MAX_AGE
/// from when draining began (from creation only when nothing says when draining began).
pub fn classify(d: &Draining, now: DateTime<Utc>, s: &ReaperSettings) -> Verdict {
    if d.desired == 0 && d.running == 0 {
        return Verdict::CleanUp;
    }
    let created = age(d.created, now);
    if created < s.min_age {
        return Verdict::Wait(format!("too young: {} s old, MIN_AGE is {} s", created.as_secs(), s.min_age.as_secs()));
    }
    if d.desired == 0 {
        return Verdict::Wait(format!("retired; waiting for {} running task(s) to stop", d.running));
    }
    if d.running == 0 {
        return Verdict::Retire("no running tasks".to_owned());
    }
    let (drained, from) = match d.draining_since {
        Some(since) => (age(Some(since), now), "draining for"),
        None => (created, "draining start unknown (no draining_since tag or state parameter); created"),
    };
    if drained >= s.max_age {
        return Verdict::Retire(format!(
            "MAX_AGE exceeded: {from} {} s ago, MAX_AGE is {} s",
            drained.as_secs(),
            s.max_age.as_secs()
        ));
    }
    Verdict::CheckTasks
}

/// A task is ready when its newest CONSEC period values are all 1. Fewer datapoints than CONSEC
/// (a missing period) is not ready.
pub fn task_ready(values_newest_first: &[f64], consec: u32) -> bool {
    let consec = consec as usize;
    values_newest_first.len() >= consec && values_newest_first[..consec].iter().all(|v| *v >= 1.0)
}

/// Phase 4: the verdict once the tasks have answered.
pub fn settle(total: usize, ready: usize, consec: u32) -> Verdict {
    if total > 0 && ready == total {
        Verdict::Retire(format!("all {total} task(s) ShutdownReady for {consec} periods"))
    } else {
        Verdict::Wait(format!("{ready} of {total} task(s) ready"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn settings() -> ReaperSettings {
        ReaperSettings::new("c")
    }

    fn draining(desired: i32, running: i32, created_ago: Duration, draining_ago: Option<Duration>) -> Draining {
        let now = Utc::now();
        let ago = |d: Duration| now - chrono::Duration::from_std(d).unwrap();
        Draining {
            service: "svc-shop-a1".into(),
            deployment_name: "shop".into(),
            deployment_id: "a1".into(),
            desired,
            running,
            created: Some(ago(created_ago)),
            draining_since: draining_ago.map(ago),
            target_groups: Vec::new(),
        }
    }

    fn verdict(d: &Draining) -> Verdict {
        classify(d, Utc::now(), &settings())
    }

    #[test]
    fn age_guards() {
        let minute = Duration::from_secs(60);
        assert!(matches!(verdict(&draining(2, 2, minute, Some(minute))), Verdict::Wait(r) if r.contains("too young")));
        assert_eq!(verdict(&draining(2, 2, 10 * minute, Some(minute))), Verdict::CheckTasks);
        assert!(
            matches!(verdict(&draining(2, 2, 50 * HOUR, Some(49 * HOUR))), Verdict::Retire(r) if r.contains("MAX_AGE"))
        );
        assert!(matches!(verdict(&draining(2, 0, 10 * minute, None)), Verdict::Retire(r) if r.contains("no running")));
    }

    #[test]
    fn max_age_counts_from_draining_not_from_creation() {
        // A deployment that ran for a week and was marked draining a minute ago gets its drain wait.
        let d = draining(2, 2, 7 * 24 * HOUR, Some(Duration::from_secs(60)));
        assert_eq!(verdict(&d), Verdict::CheckTasks);
        // With nothing saying when draining began, creation is all there is, and the reason says so.
        let d = draining(2, 2, 49 * HOUR, None);
        assert!(matches!(verdict(&d), Verdict::Retire(r) if r.contains("draining start unknown")));
    }

    #[test]
    fn zero_and_zero_is_cleanup_whatever_the_age() {
        assert_eq!(verdict(&draining(0, 0, Duration::ZERO, None)), Verdict::CleanUp);
        assert!(matches!(verdict(&draining(0, 3, HOUR, Some(HOUR))), Verdict::Wait(r) if r.contains("waiting for 3")));
    }

    #[test]
    fn consec_counts_the_newest_periods() {
        assert!(task_ready(&[1.0, 1.0, 1.0], 3));
        assert!(task_ready(&[1.0, 1.0, 1.0, 0.0], 3), "older periods do not matter");
        assert!(!task_ready(&[0.0, 1.0, 1.0, 1.0], 3), "newest first: the latest period is not ready");
        assert!(!task_ready(&[1.0, 1.0], 3), "a missing period is not ready");
        assert!(!task_ready(&[], 1));
    }

    #[test]
    fn settle_needs_every_task() {
        assert!(matches!(settle(3, 3, 2), Verdict::Retire(r) if r == "all 3 task(s) ShutdownReady for 2 periods"));
        assert_eq!(settle(3, 2, 2), Verdict::Wait("2 of 3 task(s) ready".into()));
        assert_eq!(settle(0, 0, 2), Verdict::Wait("0 of 0 task(s) ready".into()));
    }
}
