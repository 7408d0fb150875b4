//! How the work ended, and the answer to it: the one place where an action's typed details become
//! JSON, where the audit line is written, and where the response gets its adjustments and the
//! ledger's notes.

use serde::Serialize;
use serde_json::{Value, json};
use shared::FunctionError;

use crate::action::{Applied, Failure, Parsed, Progress};
use crate::contract::{ActionResponse, Adjustment, ResponseCore};
use crate::guard::Ticket;
use crate::plan::{Change, Plan, PlanToken};
use crate::state::State;

/// What the work came to when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub message: String,
    pub resource: String,
    pub before: State,
    pub after: State,
    pub details: Value,
    /// Whether the resource was changed.
    pub changed: bool,
}

impl Done {
    /// A dry run's answer, or the plan a stale token is answered with: the plan, and its token.
    pub fn preview<C: Change, D: Serialize>(plan: &Plan<C, D>, token: &PlanToken) -> Self {
        let mut details = object(&plan.details);
        details["plannedCalls"] = json!(plan.planned_calls());
        details["wouldBecome"] = json!(plan.after);
        details["planToken"] = json!(token.0);
        Self::unchanged(plan, plan.preview_message(), details)
    }

    /// The answer when there is nothing to apply.
    pub fn no_change<C, D: Serialize>(plan: &Plan<C, D>) -> Self {
        let mut details = object(&plan.details);
        details["change"] = json!("no change");
        Self::unchanged(plan, plan.no_change.clone(), details)
    }

    fn unchanged<C, D>(plan: &Plan<C, D>, message: String, details: Value) -> Self {
        let (before, after) = (plan.before.clone(), plan.before.clone());
        Self { message, resource: plan.resource.clone(), before, after, details, changed: false }
    }

    /// The answer once every change was applied.
    pub fn applied<C, D: Serialize>(plan: &Plan<C, D>, applied: Applied<D>) -> Self {
        Self {
            message: applied.message,
            resource: plan.resource.clone(),
            before: plan.before.clone(),
            after: applied.after,
            details: object(&applied.details),
            changed: true,
        }
    }
}

/// The details as a JSON object (serialising typed details cannot fail; a non-object is wrapped).
fn object<D: Serialize>(details: &D) -> Value {
    match serde_json::to_value(details) {
        Ok(Value::Object(fields)) => Value::Object(fields),
        Ok(Value::Null) | Err(_) => json!({}),
        Ok(other) => json!({ "value": other }),
    }
}

impl<D: Serialize> Failure<D> {
    /// The same failure with its details as JSON.
    pub fn serialised(self) -> Failure<Value> {
        Failure { error: self.error, details: self.details.map(|d| object(&d)), progress: self.progress }
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    Worked(Done),
    Failed(Failure<Value>),
    /// An identical request completed earlier: its answer.
    Replayed(Box<ResponseCore>),
}

impl Ended {
    pub fn refused(error: FunctionError) -> Self {
        Self::Failed(Failure::from(error))
    }

    pub fn from_work(result: Result<Done, Failure<Value>>) -> Self {
        match result {
            Ok(done) => Self::Worked(done),
            Err(failure) => Self::Failed(failure),
        }
    }

    pub fn before(&self) -> Option<&State> {
        match self {
            Self::Worked(done) => Some(&done.before),
            _ => None,
        }
    }

    pub fn after(&self) -> Option<&State> {
        match self {
            Self::Worked(done) => Some(&done.after),
            _ => None,
        }
    }

    /// How far the invocation got in changing its resource (a replay changed nothing itself).
    pub fn progress(&self) -> Progress {
        match self {
            Self::Worked(done) if done.changed => Progress::Changed,
            Self::Worked(_) | Self::Replayed(_) => Progress::Nothing,
            Self::Failed(failure) => failure.progress,
        }
    }
}

/// The answer, logged: an audit line for what was done, a warning for what failed. It carries the
/// adjustments made to the request, how many records the incident had when the ledger was read,
/// and what the guard had to note.
pub fn respond<P>(request_id: &str, parsed: &Parsed<P>, ended: Ended, ticket: &Ticket) -> ActionResponse {
    let echo = parsed.request.echo();
    let (adjustments, target) = (&parsed.adjustments, parsed.request.target_name());
    let response = match ended {
        Ended::Worked(done) => {
            tracing::info!(
                audit = true,
                target,
                resource = %done.resource,
                before = %json!(done.before),
                after = %json!(done.after),
                dryRun = parsed.request.dry_run,
                "{}",
                done.message
            );
            // What the change left, typed: what the playbook verifies a fix against.
            let mut details = done.details;
            if done.changed {
                details["after"] = json!(done.after);
            }
            ActionResponse::success(request_id, &echo, done.message, with_adjustments(details, adjustments))
        }
        Ended::Failed(failure) => {
            let (error, details) = (failure.error, failure.details.unwrap_or_else(|| json!({})));
            tracing::warn!(target, code = error.code(), dryRun = parsed.request.dry_run, "failed: {error}");
            ActionResponse::failure(request_id, &echo, &error, with_adjustments(details, adjustments))
        }
        Ended::Replayed(recorded) => {
            tracing::info!(audit = true, replayed = true, "an identical request completed: its answer is replayed");
            return ActionResponse::replay(*recorded);
        }
    };
    // Only a history that was read is counted: 0 would say "no earlier records", not "unknown".
    let response = match ticket.recorded() && ticket.history.unavailable.is_none() {
        true => response.with_detail("earlierRecords", json!(ticket.history.earlier)),
        false => response,
    };
    match &ticket.note {
        Some(note) => response.with_detail("ledger", json!(note)),
        None => response,
    }
}

pub fn log_adjustments(adjustments: &[Adjustment]) {
    if !adjustments.is_empty() {
        let fields: Vec<&str> = adjustments.iter().map(|a| a.field.as_str()).collect();
        let said: Vec<String> = adjustments.iter().map(|a| format!("{}: {}", a.field, a.change)).collect();
        tracing::info!(adjusted = ?fields, "request adjusted instead of refused: {}", said.join("; "));
    }
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
