//! The loop's metrics, as EMF lines in `IncidentPlaybook` with the stack's `Stack` dimension: time
//! to act (alarm to the first change), time to verdict, verdicts by outcome, and incidents that
//! automation resolved (verified, no page) against those it paged.

use chrono::{DateTime, Utc};
use shared::emf::{MetricRecord, MetricSink, Unit};

use crate::run::Run;
use crate::verify::{Outcome, Verdict};

const NAMESPACE: &str = "IncidentPlaybook";

fn stack() -> String {
    std::env::var("METRICS_STACK").unwrap_or_else(|_| "local".to_owned())
}

fn emit(record: &MetricRecord) {
    MetricSink::from_env().emit(record);
}

fn millis(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64
}

/// A step changed its resource: for the first one, the time from the alarm to it.
pub fn acted(run: &Run, now: DateTime<Utc>) {
    if run.verdicts.is_empty() {
        emit(&time_to_act(&stack(), run.alarm_at, now));
    }
}

pub fn time_to_act(stack: &str, alarm_at: DateTime<Utc>, now: DateTime<Utc>) -> MetricRecord {
    MetricRecord::new(NAMESPACE, now.timestamp_millis()).dimension("Stack", stack).metric(
        "TimeToAct",
        millis(alarm_at, now),
        Unit::Milliseconds,
    )
}

/// A verdict: its time from the change, by outcome; a verified one resolved the incident.
pub fn judged(verdict: &Verdict, since: DateTime<Utc>, now: DateTime<Utc>) {
    for record in verdict_records(&stack(), verdict.outcome, millis(since, now), now) {
        emit(&record);
    }
}

pub fn verdict_records(stack: &str, outcome: Outcome, took_ms: f64, now: DateTime<Utc>) -> [MetricRecord; 2] {
    [
        MetricRecord::new(NAMESPACE, now.timestamp_millis())
            .dimension("Stack", stack)
            .dimension("outcome", outcome.as_str())
            .metric("Verdicts", 1.0, Unit::Count)
            .metric("TimeToVerdict", took_ms, Unit::Milliseconds),
        MetricRecord::new(NAMESPACE, now.timestamp_millis()).dimension("Stack", stack).metric(
            "AutoResolved",
            f64::from(u8::from(outcome == Outcome::Verified)),
            Unit::Count,
        ),
    ]
}

/// The steps were exhausted and a human paged.
pub fn paged(run: &Run) {
    let now = run.evidence.last().map_or_else(Utc::now, |e| e.at);
    emit(&MetricRecord::new(NAMESPACE, now.timestamp_millis()).dimension("Stack", stack()).metric(
        "Paged",
        1.0,
        Unit::Count,
    ));
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::Value;

    use super::*;

    fn line(record: &MetricRecord) -> Value {
        serde_json::from_str(&record.to_line()).unwrap()
    }

    #[test]
    fn a_verdict_is_counted_by_outcome_with_its_time_and_whether_automation_resolved_it() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 2, 29, 0).unwrap();
        let [verdict, resolved] =
            verdict_records("fluidity-dev-actions", Outcome::Verified, 240_000.0, now).map(|r| line(&r));
        assert_eq!(verdict["_aws"]["CloudWatchMetrics"][0]["Namespace"], "IncidentPlaybook");
        assert_eq!(
            (verdict["Stack"].as_str(), verdict["outcome"].as_str()),
            (Some("fluidity-dev-actions"), Some("verified"))
        );
        assert_eq!((verdict["Verdicts"].as_i64(), verdict["TimeToVerdict"].as_i64()), (Some(1), Some(240_000)));
        assert_eq!(resolved["AutoResolved"], 1);
        let [failed, unresolved] = verdict_records("s", Outcome::Failed, 1.0, now).map(|r| line(&r));
        assert_eq!((failed["outcome"].as_str(), unresolved["AutoResolved"].as_i64()), (Some("failed"), Some(0)));
    }

    #[test]
    fn time_to_act_runs_from_the_alarm_to_the_first_change() {
        let alarm = Utc.with_ymd_and_hms(2026, 12, 5, 2, 15, 0).unwrap();
        let acted = line(&time_to_act("s", alarm, alarm + chrono::Duration::seconds(42)));
        assert_eq!(acted["TimeToAct"], 42_000);
        assert_eq!(
            line(&time_to_act("s", alarm, alarm - chrono::Duration::seconds(1)))["TimeToAct"],
            0,
            "never negative"
        );
    }
}
