//! Each invocation's metrics, as CloudWatch Embedded Metric Format lines (no API call).

use shared::emf::{MetricRecord, MetricSink, Unit};

use crate::contract::{ActionKind, ActionResponse};

/// `METRICS_STACK`, read once: the stack the function belongs to (the template sets it), the `Stack`
/// dimension of every metric, so that each environment's alarms watch their own.
fn stack() -> &'static str {
    static STACK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STACK.get_or_init(|| std::env::var("METRICS_STACK").unwrap_or_else(|_| "local".to_owned()))
}

/// The invocation's metrics (EMF), then its answer.
pub fn measured(kind: ActionKind, started: std::time::Instant, response: ActionResponse) -> ActionResponse {
    let outcome = response.core.error.as_ref().and_then(|e| e["code"].as_str()).unwrap_or("SUCCESS");
    let outcome = if response.core.replayed == Some(true) { "REPLAYED" } else { outcome };
    let sink = MetricSink::from_env();
    let now = chrono::Utc::now().timestamp_millis();
    for record in invocation_metrics(stack(), kind, outcome, started.elapsed(), now) {
        sink.emit(&record);
    }
    response
}

/// One invocation as EMF records in `IncidentActions`, each with the stack's `Stack` dimension:
/// `Invocations` and `Duration` by action and outcome, and, by the stack alone (what its alarms
/// watch), `Failed` (a 5xx: the remediation did not happen) and `BudgetExhausted`.
pub fn invocation_metrics(
    stack: &str,
    kind: ActionKind,
    outcome: &str,
    took: std::time::Duration,
    timestamp_ms: i64,
) -> [MetricRecord; 2] {
    let failed = !matches!(outcome, "SUCCESS" | "REPLAYED") && !outcome.ends_with("_REQUEST");
    let server_side =
        failed && matches!(outcome, "AWS_ERROR" | "REDIS_ERROR" | "DEADLINE_EXCEEDED" | "LEDGER_UNAVAILABLE");
    [
        MetricRecord::new("IncidentActions", timestamp_ms)
            .dimension("Stack", stack)
            .dimension("action", kind.as_str())
            .dimension("outcome", outcome)
            .metric("Invocations", 1.0, Unit::Count)
            .metric("Duration", took.as_secs_f64() * 1000.0, Unit::Milliseconds),
        MetricRecord::new("IncidentActions", timestamp_ms)
            .dimension("Stack", stack)
            .metric("Failed", f64::from(u8::from(server_side)), Unit::Count)
            .metric("BudgetExhausted", f64::from(u8::from(outcome == "BUDGET_EXHAUSTED")), Unit::Count),
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn each_invocation_is_two_emf_records_the_alarms_can_watch() {
        let took = Duration::from_millis(42);
        let [by_outcome, totals] =
            invocation_metrics("fluidity-prod-actions", ActionKind::ScaleUp, "AWS_ERROR", took, 1_800_000_000_000);
        let line: Value = serde_json::from_str(&by_outcome.to_line()).unwrap();
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "IncidentActions");
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Stack", "action", "outcome"]]));
        assert_eq!(line["Stack"], "fluidity-prod-actions", "each environment's alarms watch their own");
        assert_eq!(
            (line["action"].as_str(), line["outcome"].as_str(), line["Invocations"].as_i64()),
            (Some("scale_up"), Some("AWS_ERROR"), Some(1))
        );
        assert_eq!(line["Duration"], 42);
        let totals: Value = serde_json::from_str(&totals.to_line()).unwrap();
        assert_eq!(totals["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Stack"]]));
        assert_eq!(totals["Stack"], "fluidity-prod-actions");
        assert_eq!((totals["Failed"].as_i64(), totals["BudgetExhausted"].as_i64()), (Some(1), Some(0)));
        for (outcome, failed, spent) in [
            ("SUCCESS", 0, 0),
            ("REPLAYED", 0, 0),
            ("BUDGET_EXHAUSTED", 0, 1),
            ("INVALID_REQUEST", 0, 0),
            ("LEDGER_UNAVAILABLE", 1, 0),
        ] {
            let [_, totals] = invocation_metrics("s", ActionKind::ScaleUp, outcome, took, 0);
            let totals: Value = serde_json::from_str(&totals.to_line()).unwrap();
            assert_eq!(
                (totals["Failed"].as_i64(), totals["BudgetExhausted"].as_i64()),
                (Some(failed), Some(spent)),
                "{outcome}"
            );
        }
    }
}
