//! The frame every incident action runs in: validate the whole request before any AWS call,
//! bound the work by the Lambda deadline, write one audit line, and always answer with an
//! [`ActionResponse`], errors included (the backend reads `success` and `message`).

use std::future::Future;
use std::pin::Pin;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::FunctionError;
use crate::config::Target;
use crate::contract::{ActionKind, ActionRequest, ActionResponse, Adjustment, RequestEcho};
use crate::deadline::Deadline;
use crate::ledger::{Begin, History, Ledger, LedgerFailure, Ticket};
use crate::plan::PlanPolicy;

/// What an action did (or, on a dry run, would do).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub message: String,
    /// The real resource acted on, e.g. `ECS service production/api`.
    pub resource: String,
    /// The state before and after, for the audit line (equal on a dry run or when nothing changed).
    pub before: Value,
    pub after: Value,
    pub details: Value,
}

/// A failed action, with whatever progress it made before failing (e.g. keys removed before the deadline).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: FunctionError,
    pub details: Value,
}

impl From<FunctionError> for Failure {
    fn from(error: FunctionError) -> Self {
        Self { error, details: json!({}) }
    }
}

/// One call an action would make, as a dry run reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedCall {
    /// Service and operation, e.g. `"ECS UpdateService"` or `"Redis FLUSHALL"`.
    pub call: &'static str,
    pub params: Value,
}

impl PlannedCall {
    pub fn new(call: &'static str, params: Value) -> Self {
        Self { call, params }
    }
}

/// How an action reads its request: the validated request, and what was changed instead of refused.
pub type Parse = fn(Value, ActionKind) -> Result<(ActionRequest, Vec<Adjustment>), FunctionError>;

/// The mutating actions' reading: the envelope strictly (an unknown field is a 400), incidentDetails
/// as free text (unknown fields there are ignored and reported).
pub fn parse_strict(payload: Value, kind: ActionKind) -> Result<(ActionRequest, Vec<Adjustment>), FunctionError> {
    let request = ActionRequest::parse(payload, kind)?;
    let adjustments = request.adjustments();
    Ok((request, adjustments))
}

/// What the work of one invocation gets besides the request.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// What was changed in the request instead of refusing it.
    pub adjustments: Vec<Adjustment>,
    pub deadline: Deadline,
    /// The incident's earlier records (notify_human lists them in the page).
    pub history: History,
}

/// Runs one invocation of an action whose request is read with [`parse_strict`].
pub async fn run_action<'a, F, Fut>(
    event: LambdaEvent<Value>,
    kind: ActionKind,
    plans: &'a PlanPolicy,
    work: F,
) -> ActionResponse
where
    F: FnOnce(ActionRequest, Invocation) -> Fut,
    Fut: Future<Output = Result<Outcome, Failure>> + 'a,
{
    run_action_with(event, kind, parse_strict, plans, work).await
}

/// Runs one invocation of an action. Unless it is a dry run, the incident ledger (when there is
/// one) goes around the work: it refuses while paused or over budget, replays an identical
/// completed request, and records what the invocation did. `work` gets the validated request, the
/// adjustments made to it, the deadline and the incident's history; the response's details carry
/// the adjustments and how many records the incident had, success or not.
pub async fn run_action_with<'a, F, Fut>(
    event: LambdaEvent<Value>,
    kind: ActionKind,
    parse: Parse,
    plans: &'a PlanPolicy,
    work: F,
) -> ActionResponse
where
    F: FnOnce(ActionRequest, Invocation) -> Fut,
    Fut: Future<Output = Result<Outcome, Failure>> + 'a,
{
    let started = std::time::Instant::now();
    let deadline = Deadline::from_context(&event.context);
    let execution_id = event.context.request_id;
    let raw_echo = RequestEcho::from_raw(&event.payload);
    let (request, adjustments) = match parse(event.payload, kind) {
        Ok(parsed) => parsed,
        Err(err) => {
            tracing::warn!(action = kind.as_str(), code = err.code(), "rejected: {err}");
            return ActionResponse::failure(&execution_id, &raw_echo, &err, json!({}));
        }
    };
    let span = tracing::info_span!("action", incidentId = %request.incident_id, action = kind.as_str());
    let call = Call { kind, started, deadline, execution_id };
    run_parsed(call, plans, request, adjustments, work).instrument(span).await
}

/// What the frame knows of an invocation before the request is read.
struct Call {
    kind: ActionKind,
    started: std::time::Instant,
    deadline: Deadline,
    execution_id: String,
}

/// The frame around a valid request: the ledger before and after, the work within the deadline.
async fn run_parsed<'a, F, Fut>(
    call: Call,
    plans: &'a PlanPolicy,
    request: ActionRequest,
    adjustments: Vec<Adjustment>,
    work: F,
) -> ActionResponse
where
    F: FnOnce(ActionRequest, Invocation) -> Fut,
    Fut: Future<Output = Result<Outcome, Failure>> + 'a,
{
    let Call { kind, started, deadline, execution_id } = call;
    let echo = request.echo();
    log_adjustments(&adjustments);
    let ledger = plans.ledger.as_ref().filter(|_| !request.dry_run);
    // The ledger's futures are boxed like the work's (see below).
    let ticket = match Box::pin(begin(ledger, kind, &request, deadline, &execution_id, &echo)).await {
        Began::Go(ticket) => ticket,
        Began::Answered(response) => return measured(kind, started, *response),
    };
    let (dry_run, target) = (request.dry_run, request.target.clone());
    let invocation = Invocation { adjustments: adjustments.clone(), deadline, history: ticket.history.clone() };
    // Type-erased and on the heap: action futures are large and deeply nested, and erasing them here
    // keeps every binary's main future small (and within the compiler's layout depth).
    let work: Pin<Box<dyn Future<Output = Result<Outcome, Failure>> + 'a>> =
        Box::pin(work(request.clone(), invocation));
    let result = match tokio::time::timeout_at(deadline.instant(), work).await {
        Ok(result) => result,
        Err(_) => Err(FunctionError::DeadlineExceeded { during: kind.as_str().to_owned() }.into()),
    };
    let states = result.as_ref().map(|o| (o.before.clone(), o.after.clone())).unwrap_or_default();
    let mut response = answer(&execution_id, &echo, target.as_deref(), dry_run, result, &adjustments);
    if let Some(ledger) = ledger {
        response = response.with_detail("earlierRecords", json!(ticket.history.earlier));
        Box::pin(ledger.finish(kind, &request, &ticket, &response.core, (&states.0, &states.1))).await;
    }
    measured(kind, started, response)
}

/// How an invocation goes on after the ledger had its say.
enum Began {
    Go(Ticket),
    /// Answered already: replayed, or refused (paused, over budget, in progress, ledger unavailable).
    Answered(Box<ActionResponse>),
}

async fn begin(
    ledger: Option<&Ledger>,
    kind: ActionKind,
    request: &ActionRequest,
    deadline: Deadline,
    execution_id: &str,
    echo: &RequestEcho,
) -> Began {
    let Some(ledger) = ledger else { return Began::Go(Ticket::default()) };
    match ledger.begin(kind, request, deadline, execution_id).await {
        Ok(Begin::Go(ticket)) => Began::Go(ticket),
        Ok(Begin::Replay(recorded)) => {
            tracing::info!(audit = true, replayed = true, "an identical request completed: its answer is replayed");
            let response = ActionResponse::replay(*recorded);
            ledger.record(kind, request, &response.core).await;
            Began::Answered(Box::new(response))
        }
        // A page is never held back by the ledger; a mutating action is, unless the operator chose open.
        Err(FunctionError::LedgerUnavailable { problem, .. })
            if kind == ActionKind::NotifyHuman || ledger.settings.failure == LedgerFailure::Open =>
        {
            tracing::warn!("going on without the incident ledger: {problem}");
            Began::Go(Ticket::without_ledger(problem))
        }
        Err(err @ FunctionError::LedgerUnavailable { .. }) => {
            tracing::error!(code = err.code(), "refused: {err}");
            Began::Answered(Box::new(ActionResponse::failure(execution_id, echo, &err, json!({}))))
        }
        Err(refused) => {
            tracing::warn!(code = refused.code(), "refused: {refused}");
            let response = ActionResponse::failure(execution_id, echo, &refused, json!({}));
            ledger.record(kind, request, &response.core).await;
            Began::Answered(Box::new(response))
        }
    }
}

/// The invocation's metrics (EMF), then its answer.
fn measured(kind: ActionKind, started: std::time::Instant, response: ActionResponse) -> ActionResponse {
    let outcome = response.core.error.as_ref().and_then(|e| e["code"].as_str()).unwrap_or("SUCCESS");
    let outcome = if response.core.replayed == Some(true) { "REPLAYED" } else { outcome };
    let sink = crate::emf::MetricSink::from_env();
    for record in invocation_metrics(kind, outcome, started.elapsed(), chrono::Utc::now().timestamp_millis()) {
        sink.emit(&record);
    }
    response
}

/// One invocation as EMF records in `IncidentActions`: `Invocations` and `Duration` by action and
/// outcome, and, without dimensions (what the stack's alarms watch), `Failed` (a 5xx: the
/// remediation did not happen) and `BudgetExhausted`.
pub fn invocation_metrics(
    kind: ActionKind,
    outcome: &str,
    took: std::time::Duration,
    timestamp_ms: i64,
) -> [crate::emf::MetricRecord; 2] {
    use crate::emf::{MetricRecord, Unit};
    let failed = !matches!(outcome, "SUCCESS" | "REPLAYED") && !outcome.ends_with("_REQUEST");
    let server_side =
        failed && matches!(outcome, "AWS_ERROR" | "REDIS_ERROR" | "DEADLINE_EXCEEDED" | "LEDGER_UNAVAILABLE");
    [
        MetricRecord::new("IncidentActions", timestamp_ms)
            .dimension("action", kind.as_str())
            .dimension("outcome", outcome)
            .metric("Invocations", 1.0, Unit::Count)
            .metric("Duration", took.as_secs_f64() * 1000.0, Unit::Milliseconds),
        MetricRecord::new("IncidentActions", timestamp_ms)
            .metric("Failed", f64::from(u8::from(server_side)), Unit::Count)
            .metric("BudgetExhausted", f64::from(u8::from(outcome == "BUDGET_EXHAUSTED")), Unit::Count),
    ]
}

/// The response to the work's result, logged: an audit line for what was done, a warning for what failed.
fn answer(
    execution_id: &str,
    echo: &RequestEcho,
    target: Option<&str>,
    dry_run: bool,
    result: Result<Outcome, Failure>,
    adjustments: &[Adjustment],
) -> ActionResponse {
    let target = target.unwrap_or("");
    match result {
        Ok(outcome) => {
            tracing::info!(
                audit = true,
                target,
                resource = %outcome.resource,
                before = %outcome.before,
                after = %outcome.after,
                dryRun = dry_run,
                "{}",
                outcome.message
            );
            ActionResponse::success(execution_id, echo, outcome.message, with_adjustments(outcome.details, adjustments))
        }
        Err(failure) => {
            let code = failure.error.code();
            tracing::warn!(target, code, dryRun = dry_run, "failed: {}", failure.error);
            ActionResponse::failure(execution_id, echo, &failure.error, with_adjustments(failure.details, adjustments))
        }
    }
}

fn log_adjustments(adjustments: &[Adjustment]) {
    if !adjustments.is_empty() {
        let fields: Vec<&str> = adjustments.iter().map(|a| a.field.as_str()).collect();
        tracing::info!(adjusted = ?fields, "request adjusted instead of refused: {}", describe(adjustments));
    }
}

fn describe(adjustments: &[Adjustment]) -> String {
    adjustments.iter().map(|a| format!("{}: {}", a.field, a.change)).collect::<Vec<_>>().join("; ")
}

/// `details` with `adjustments` added (after any the work reported itself), when there are any.
fn with_adjustments(mut details: Value, adjustments: &[Adjustment]) -> Value {
    if adjustments.is_empty() {
        return details;
    }
    if !details.is_object() {
        details = json!({});
    }
    let mut all: Vec<Value> = adjustments.iter().map(|a| json!(a)).collect();
    if let Some(Value::Array(own)) = details.get("adjustments") {
        all.extend(own.iter().cloned());
    }
    details["adjustments"] = Value::Array(all);
    details
}

/// The 400 for a target whose kind this action cannot handle.
pub fn unsupported_target(kind: ActionKind, name: &str, target: &Target, supported: &[&str]) -> FunctionError {
    FunctionError::invalid(
        "target",
        format!("\"{name}\" is a {} target; {} handles {}", target.kind(), kind.as_str(), supported.join(" and ")),
    )
}

/// The target name of a validated request (present for every action but notify_human).
pub fn target_name(request: &ActionRequest) -> &str {
    request.target.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use lambda_runtime::Context;

    use super::*;

    fn event(payload: Value, deadline_in: Option<Duration>) -> LambdaEvent<Value> {
        let mut ctx = Context::default();
        ctx.request_id = "req-1".into();
        if let Some(left) = deadline_in {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            ctx.deadline = (now + left).as_millis() as u64;
        }
        LambdaEvent::new(payload, ctx)
    }

    fn valid() -> Value {
        json!({"action": "scale_up", "target": "api", "incidentId": "INC-1", "priority": "low"})
    }

    #[tokio::test]
    async fn an_invalid_request_never_reaches_the_work() {
        let bad = json!({"action": "scale_up", "target": "api", "incidentId": "INC-1", "priority": 3});
        let response = run_action(event(bad, None), ActionKind::ScaleUp, &PlanPolicy::default(), |_, _| async {
            panic!("work must not run for an invalid request")
        })
        .await;
        assert_eq!(response.core.status_code, 400);
        assert_eq!(response.core.execution_id, "req-1");
        assert_eq!(response.core.incident_id.as_deref(), Some("INC-1"));
    }

    #[tokio::test]
    async fn work_past_the_deadline_is_answered_with_504_before_it() {
        let started = std::time::Instant::now();
        let response = run_action(
            event(valid(), Some(Duration::from_millis(800))),
            ActionKind::ScaleUp,
            &PlanPolicy::default(),
            |_, _| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Err(FunctionError::Conflict("unreachable".into()).into())
            },
        )
        .await;
        assert_eq!(response.core.status_code, 504);
        assert_eq!(response.core.error.as_ref().unwrap()["code"], "DEADLINE_EXCEEDED");
        assert!(started.elapsed() < Duration::from_millis(800), "answered before the deadline itself");
    }

    #[tokio::test]
    async fn failures_keep_their_progress_details() {
        let response = run_action(event(valid(), None), ActionKind::ScaleUp, &PlanPolicy::default(), |_, _| async {
            Err(Failure { error: FunctionError::Conflict("busy".into()), details: json!({"done": 3}) })
        })
        .await;
        assert_eq!(response.core.status_code, 409);
        assert_eq!(response.core.details, json!({"done": 3}));
    }

    #[tokio::test]
    async fn ignored_incident_details_are_reported_whatever_the_outcome() {
        let mut forwarded = valid();
        forwarded["incidentDetails"] = json!({"title": "x", "ticketUrl": "https://example.com/1"});
        let plans = PlanPolicy::default();
        let response = run_action(event(forwarded, None), ActionKind::ScaleUp, &plans, |_, invocation| async move {
            assert_eq!(invocation.adjustments.len(), 1, "the work sees them too");
            Err(Failure { error: FunctionError::Conflict("busy".into()), details: json!({}) })
        })
        .await;
        assert_eq!(
            response.core.details["adjustments"],
            json!([{"field": "incidentDetails.ticketUrl", "change": "unknown field; ignored"}])
        );
    }

    #[test]
    fn each_invocation_is_two_emf_records_the_alarms_can_watch() {
        let took = Duration::from_millis(42);
        let [by_outcome, totals] = invocation_metrics(ActionKind::ScaleUp, "AWS_ERROR", took, 1_800_000_000_000);
        let line: Value = serde_json::from_str(&by_outcome.to_line()).unwrap();
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "IncidentActions");
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["action", "outcome"]]));
        assert_eq!(
            (line["action"].as_str(), line["outcome"].as_str(), line["Invocations"].as_i64()),
            (Some("scale_up"), Some("AWS_ERROR"), Some(1))
        );
        assert_eq!(line["Duration"], 42);
        let totals: Value = serde_json::from_str(&totals.to_line()).unwrap();
        assert_eq!(totals["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert_eq!((totals["Failed"].as_i64(), totals["BudgetExhausted"].as_i64()), (Some(1), Some(0)));
        for (outcome, failed, spent) in [
            ("SUCCESS", 0, 0),
            ("REPLAYED", 0, 0),
            ("BUDGET_EXHAUSTED", 0, 1),
            ("INVALID_REQUEST", 0, 0),
            ("LEDGER_UNAVAILABLE", 1, 0),
        ] {
            let [_, totals] = invocation_metrics(ActionKind::ScaleUp, outcome, took, 0);
            let totals: Value = serde_json::from_str(&totals.to_line()).unwrap();
            assert_eq!(
                (totals["Failed"].as_i64(), totals["BudgetExhausted"].as_i64()),
                (Some(failed), Some(spent)),
                "{outcome}"
            );
        }
    }
}
