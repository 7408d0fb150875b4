//! What an incident action is: an [`Action`] implements only observe, plan and apply, with its
//! typed observation, changes and details. Everything else in its life (reading the request, the
//! ledger's guards, the deadline, the dry run, the plan token, the answer, the record) is the one
//! driver's, [`crate::driver::run`].

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared::FunctionError;
use shared::deadline::Deadline;

use crate::contract::{ActionKind, ActionRequest, Adjustment};
use crate::ledger::History;
use crate::plan::{Change, Plan};
use crate::state::State;

/// One incident action. The driver calls, in this order: [`Action::parse`], [`Action::claim`],
/// [`Action::observe`], [`Action::plan`], and, when the plan changes something and the guards let
/// it, [`Action::apply`].
pub trait Action {
    const KIND: ActionKind;
    /// Whether the action changes anything. Mutating actions are paused, budgeted and approved by
    /// plan tokens; notify_human is none of these, since a page is never held back.
    const MUTATES: bool = true;
    /// Whether its plan lists the incident's earlier records (notify_human's page does); the
    /// others only count them.
    const READS_HISTORY: bool = false;
    /// The action's own request parameters, beside the envelope.
    type Params: DeserializeOwned + Default;
    /// What observe read, the live handle it may need to apply (a Redis connection) included.
    type Observed;
    type Change: Change;
    /// What the answer's `details` say, typed; serialised once, into the answer.
    type Details: Serialize;

    /// The request, read and validated before anything else; any problem is a 400.
    fn parse(payload: Value) -> Result<Parsed<Self::Params>, FunctionError> {
        Parsed::strict(payload, Self::KIND)
    }

    /// What makes two requests the same action (the ledger's idempotency key), beside the incident,
    /// action, target and priority: the action's parameters.
    fn identity(parsed: &Parsed<Self::Params>) -> Value {
        Value::Object(parsed.request.params.clone())
    }

    /// The resource that concurrent invocations must not act on at once (a restart's claim).
    fn claim(&self, _call: &Invocation<'_, Self::Params>) -> Result<Option<ClaimSpec>, FunctionError> {
        Ok(None)
    }

    /// The describe calls only. `View::Preview` is what a dry run shows (it may read more, such as
    /// the keys a pattern would remove).
    fn observe(
        &self,
        call: &Invocation<'_, Self::Params>,
        view: View,
    ) -> impl Future<Output = Result<Self::Observed, Failure<Self::Details>>>;

    /// A pure function from what was observed to what to do.
    fn plan(
        &self,
        call: &Invocation<'_, Self::Params>,
        observed: &Self::Observed,
    ) -> Result<Plan<Self::Change, Self::Details>, FunctionError>;

    /// Why applying this plan needs a human's approval, if it does: a request without a dry run's
    /// plan token is then answered 409 APPROVAL_REQUIRED with the plan and the token that approves
    /// it, before any budget is spent (a rollback of a completed deployment changes code).
    fn approval_needed(
        &self,
        _call: &Invocation<'_, Self::Params>,
        _plan: &Plan<Self::Change, Self::Details>,
    ) -> Option<String> {
        None
    }

    /// Sends the plan's changes, in order, from the values the plan holds.
    fn apply(
        &self,
        call: &Invocation<'_, Self::Params>,
        plan: &Plan<Self::Change, Self::Details>,
        observed: Self::Observed,
    ) -> impl Future<Output = Result<Applied<Self::Details>, Failure<Self::Details>>>;
}

/// A request as read: the envelope, the action's own parameters, and what was changed in it
/// instead of refusing it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<P> {
    pub request: ActionRequest,
    pub params: P,
    pub adjustments: Vec<Adjustment>,
}

impl<P: DeserializeOwned> Parsed<P> {
    /// The mutating actions' reading: the envelope strictly (an unknown field is a 400), the
    /// parameters as `P`, incidentDetails as free text (unknown fields there are ignored and reported).
    pub fn strict(payload: Value, kind: ActionKind) -> Result<Self, FunctionError> {
        let (request, params) = ActionRequest::parse_with::<P>(payload, kind)?;
        let adjustments = request.adjustments();
        Ok(Self { request, params, adjustments })
    }
}

/// What observe, plan and apply get besides the action's own clients and config.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a, P> {
    pub request: &'a ActionRequest,
    pub params: &'a P,
    pub adjustments: &'a [Adjustment],
    /// The invocation's deadline: long work (a scan, a rolling reboot) stops cleanly before it.
    pub deadline: Deadline,
    /// The incident's earlier records ([`Action::READS_HISTORY`]) or their count.
    pub history: &'a History,
    /// The time the plan is made at, so that planning stays a pure function.
    pub now: DateTime<Utc>,
}

impl<P> Invocation<'_, P> {
    /// The target name (every action but notify_human has one once validated).
    pub fn target(&self) -> &str {
        self.request.target_name()
    }
}

/// How much observe reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// What applying needs.
    Apply,
    /// What a dry run shows a human, e.g. how many keys a pattern matches now.
    Preview,
}

/// A resource to hold while acting on it: one conditional write in the ledger just before the first
/// change, which one of any number of concurrent invocations wins. Held for `hold` (the cooldown,
/// and at least until its holder's deadline), given back at once when nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimSpec {
    /// e.g. `restart/production/api`.
    pub resource: String,
    /// What acting on it is, for the refusal: `a restart of ECS service production/api`.
    pub what: String,
    pub hold: Duration,
}

/// The answer once the changes were applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied<D> {
    pub message: String,
    pub after: State,
    pub details: D,
}

impl<D> Applied<D> {
    /// The plan's own answer and after-state, with the details the calls left.
    pub fn as_planned<C: Change>(plan: &Plan<C, D>, details: D) -> Self {
        Self { message: plan.done.clone(), after: plan.after.clone(), details }
    }
}

/// How far a failed invocation got in changing its resource: what the guard gives back and what
/// an identical retry may do follow from it (see [`crate::guard::Guard::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing was changed: the budgets and the claim are given back, and a retry acts.
    Nothing,
    /// Part of a change that is safe to repeat was made (the keys removed before the deadline): the
    /// budgets stay spent, and a retry carries on.
    Partway,
    /// The resource was changed and the rest failed (a second change, a reboot halfway): the budgets
    /// and the claim stay, and an identical retry gets this failure again rather than acting twice.
    Changed,
    /// The change may or may not have happened (its call went unanswered, the work was cut off
    /// after the budgets were spent): an identical retry is refused with 409 OUTCOME_UNKNOWN until
    /// a human has looked.
    Unknown,
}

/// A failed step, with whatever it had done before failing (e.g. the keys removed before the
/// deadline) and how far it got.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure<D> {
    pub error: FunctionError,
    pub details: Option<D>,
    pub progress: Progress,
}

impl<D> From<FunctionError> for Failure<D> {
    fn from(error: FunctionError) -> Self {
        Self { error, details: None, progress: Progress::Nothing }
    }
}

impl<D> Failure<D> {
    /// A failure after the resource was already changed (a later step of several failed).
    pub fn after_change(error: FunctionError, details: D) -> Self {
        Self { error, details: Some(details), progress: Progress::Changed }
    }

    /// A failure with its progress details, at the given progress.
    pub fn with_details(error: FunctionError, details: D, progress: Progress) -> Self {
        Self { error, details: Some(details), progress }
    }

    /// A failed change whose call went unanswered: it may have happened.
    pub fn unknown(error: FunctionError) -> Self {
        Self { error, details: None, progress: Progress::Unknown }
    }

    /// The same failure, seen from the driver once apply returned it: a change whose AWS call went
    /// unanswered (a timeout, a lost response, a 5xx) may have happened although the action saw
    /// nothing change.
    pub fn after_apply(mut self) -> Self {
        if self.progress == Progress::Nothing && self.error.may_have_happened() {
            self.progress = Progress::Unknown;
        }
        self
    }
}

/// The 400 for a target whose kind an action cannot handle.
pub fn unsupported_target(kind: ActionKind, name: &str, target_kind: &str, supported: &[&str]) -> FunctionError {
    FunctionError::invalid(
        "target",
        format!("\"{name}\" is a {target_kind} target; {} handles {}", kind.as_str(), supported.join(" and ")),
    )
}
