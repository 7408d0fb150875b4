//! The one driver: the life of every incident action, top to bottom. [`run`] is what each action's
//! handler calls; [`life`] is the order every action follows:
//!
//! 1. read and validate the request (a problem is a 400, before any call);
//! 2. the guard's check: pause, budgets, idempotency (skipped by a dry run);
//! 3. observe, 4. plan, 5. a plan token checked (a stale one answers with the new plan), or
//!    required where the action says the plan needs a human's approval;
//! 6. a dry run answers here, and so does a plan that changes nothing;
//! 7. the guard's hold: the claim, the key marked as applying, one mutation of each budget;
//! 8. apply: a failure says how far it got ([`Progress`]);
//! 9. the answer, its audit line and metrics, and the guard's record of it, giving back what a
//!    change that did not happen took.
//!
//! Steps 3 to 8 are bounded by the deadline (a 504 before Lambda's timeout), less a share kept
//! for the record; the guard bounds its own rounds.

use std::future::Future;
use std::pin::Pin;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{Value, json};
use shared::FunctionError;
use shared::deadline::Deadline;
use tracing::Instrument;

use crate::action::{Action, ClaimSpec, Failure, Invocation, Parsed, Progress, View};
use crate::answer::{Done, Ended};
use crate::contract::{ActionResponse, RequestEcho};
use crate::guard::{Ending, Entry, Guard, Ticket, Verdict};
use crate::ledger::History;
use crate::plan::{Change, Plan, PlanToken};

/// What an action's `main` builds once per cold start: the action (its clients and config) and
/// its guard.
pub struct Function<A> {
    pub action: A,
    pub guard: Guard,
}

impl<A: Action> Function<A> {
    /// One invocation; an action always answers (errors included), so this never fails.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<ActionResponse, FunctionError> {
        Ok(run(&self.action, &self.guard, event).await)
    }
}

/// Runs one invocation of `action`: see the module docs.
pub async fn run<A: Action>(action: &A, guard: &Guard, event: LambdaEvent<Value>) -> ActionResponse {
    let started = std::time::Instant::now();
    let call = Call { deadline: Deadline::from_context(&event.context), request_id: event.context.request_id };
    let raw = RequestEcho::from_raw(&event.payload);
    let response = match A::parse(event.payload) {
        Ok(parsed) => {
            let span =
                tracing::info_span!("action", incidentId = %parsed.request.incident_id, action = A::KIND.as_str());
            life(action, guard, &call, parsed).instrument(span).await
        }
        Err(err) => {
            tracing::warn!(action = A::KIND.as_str(), code = err.code(), "rejected: {err}");
            ActionResponse::failure(&call.request_id, &raw, &err, json!({}))
        }
    };
    crate::metrics::measured(A::KIND, started, response)
}

/// What the driver knows of an invocation besides its request.
struct Call {
    deadline: Deadline,
    request_id: String,
}

/// The life of every action invocation, in order.
async fn life<A: Action>(action: &A, guard: &Guard, call: &Call, parsed: Parsed<A::Params>) -> ActionResponse {
    crate::answer::log_adjustments(&parsed.adjustments);
    let claim = match action.claim(&call.invocation(&parsed, &History::default(), call.deadline)) {
        Ok(claim) => claim,
        Err(err) => return crate::answer::respond(call.id(), &parsed, Ended::refused(err), &Ticket::default()),
    };
    let entry = call.entry::<A>(guard, &parsed, claim);
    let (mut ticket, verdict) = Box::pin(guard.enter(&entry)).await;
    let ended = match verdict {
        Verdict::Go => bounded(action, guard, call, &parsed, &mut ticket).await,
        Verdict::Replay(recorded) => Ended::Replayed(recorded),
        Verdict::Refused(err) => Ended::refused(err),
    };
    let response = crate::answer::respond(call.id(), &parsed, ended.clone(), &ticket);
    let ending =
        Ending { response: &response.core, before: ended.before(), after: ended.after(), progress: ended.progress() };
    Box::pin(guard.finish(ticket, &ending, guard.round_after(call.deadline))).await;
    response
}

/// Observe, plan, approve, hold the guards and apply, within the deadline less the record's share.
/// Cut off once the guards let it act, the change may or may not have happened.
async fn bounded<A: Action>(
    action: &A,
    guard: &Guard,
    call: &Call,
    parsed: &Parsed<A::Params>,
    ticket: &mut Ticket,
) -> Ended {
    let deadline = call.deadline.less(guard.finish_reserve(call.deadline));
    let history = ticket.history.clone();
    let invocation = call.invocation(parsed, &history, deadline);
    // Type-erased and on the heap: action futures are large and deeply nested, and erasing them here
    // keeps every binary's main future small (and within the compiler's layout depth).
    let work: Pin<Box<dyn Future<Output = Result<Done, Failure<Value>>> + '_>> =
        Box::pin(work(action, guard, &invocation, ticket));
    let result = match tokio::time::timeout_at(deadline.instant(), work).await {
        Ok(result) => result,
        Err(_) => {
            let error = FunctionError::DeadlineExceeded { during: A::KIND.as_str().to_owned() };
            let progress = if ticket.acting() { Progress::Unknown } else { Progress::Nothing };
            Err(Failure { error, details: None, progress })
        }
    };
    Ended::from_work(result)
}

/// Steps 3 to 8.
async fn work<A: Action>(
    action: &A,
    guard: &Guard,
    call: &Invocation<'_, A::Params>,
    ticket: &mut Ticket,
) -> Result<Done, Failure<Value>> {
    let view = if call.request.dry_run { View::Preview } else { View::Apply };
    let observed = action.observe(call, view).await.map_err(Failure::serialised)?;
    let plan = action.plan(call, &observed).map_err(Failure::from)?;
    approve(action, guard, call, &plan).await?;
    if call.request.dry_run {
        let token = PlanToken::issue(call.request, &plan.planned_calls(), call.now.timestamp());
        return Ok(Done::preview(&plan, &token));
    }
    if plan.changes.is_empty() {
        return Ok(Done::no_change(&plan));
    }
    if let Some(why) = action.approval_needed(call, &plan).filter(|_| call.request.plan_token.is_none()) {
        return Err(approval_required(call, &plan, why));
    }
    guard.spend(ticket, guard.round_before(call.deadline)).await.map_err(Failure::from)?;
    let applied = action.apply(call, &plan, observed).await.map_err(|f| f.serialised().after_apply())?;
    Ok(Done::applied(&plan, applied))
}

/// A plan token sent back must approve the calls just planned. A stale one is a 409 carrying the
/// plan a dry run would show now, with a fresh token; notify_human ignores tokens (a page is never
/// held back).
async fn approve<A: Action>(
    action: &A,
    guard: &Guard,
    call: &Invocation<'_, A::Params>,
    plan: &Plan<A::Change, A::Details>,
) -> Result<(), Failure<Value>> {
    let Some(given) = call.request.plan_token.as_deref().filter(|_| A::MUTATES) else { return Ok(()) };
    let (ttl, now) = (guard.settings.token_ttl, call.now.timestamp());
    let Err(reason) = PlanToken::check(given, call.request, &plan.planned_calls(), ttl, now) else { return Ok(()) };
    let observed = action.observe(call, View::Preview).await.map_err(Failure::serialised)?;
    let fresh = action.plan(call, &observed).map_err(Failure::from)?;
    let token = PlanToken::issue(call.request, &fresh.planned_calls(), now);
    let shown = Done::preview(&fresh, &token);
    let mut details = shown.details;
    details["currentState"] = json!(fresh.before);
    let error = FunctionError::StalePlan { reason, plan: shown.message };
    Err(Failure::with_details(error, details, Progress::Nothing))
}

/// The 409 for a plan that needs a human's approval: the plan as a dry run shows it, but not its
/// token. A caller that merely resent the answer's token would approve itself; the token comes
/// from a dry run someone asked for and read.
fn approval_required<C: Change, D: Serialize>(
    call: &Invocation<'_, impl Sized>,
    plan: &Plan<C, D>,
    why: String,
) -> Failure<Value> {
    let token = PlanToken::issue(call.request, &plan.planned_calls(), call.now.timestamp());
    let mut shown = Done::preview(plan, &token);
    if let Some(details) = shown.details.as_object_mut() {
        details.remove("planToken");
    }
    let error = FunctionError::ApprovalRequired { why, plan: shown.message };
    Failure::with_details(error, shown.details, Progress::Nothing)
}

impl Call {
    fn id(&self) -> &str {
        &self.request_id
    }

    fn invocation<'a, P>(&self, parsed: &'a Parsed<P>, history: &'a History, deadline: Deadline) -> Invocation<'a, P> {
        Invocation {
            request: &parsed.request,
            params: &parsed.params,
            adjustments: &parsed.adjustments,
            deadline,
            history,
            now: chrono::Utc::now(),
        }
    }

    fn entry<'a, A: Action>(
        &'a self,
        guard: &Guard,
        parsed: &'a Parsed<A::Params>,
        claim: Option<ClaimSpec>,
    ) -> Entry<'a> {
        Entry {
            kind: A::KIND,
            mutates: A::MUTATES,
            reads_history: A::READS_HISTORY,
            request: &parsed.request,
            identity: A::identity(parsed),
            claim,
            request_id: &self.request_id,
            round: guard.round_before(self.deadline),
        }
    }
}
