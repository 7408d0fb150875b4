//! An action of the tests' own, on a resource in memory: the driver's and the guard's tests run
//! the whole life of an action with it, with no AWS service behind it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use shared::FunctionError;
use shared::iam::Permission;

use crate::action::{Action, Applied, ClaimSpec, Failure, Invocation, Progress, View};
use crate::contract::{ActionKind, NoParams};
use crate::plan::{Change, Plan};
use crate::state::State;

/// A resource of the tests' own: a count, which the action raises to `wanted`.
#[derive(Clone, Default)]
pub struct Raise {
    pub count: Arc<Mutex<i32>>,
    pub wanted: i32,
    /// Observations made, with their view.
    pub observed: Arc<Mutex<Vec<View>>>,
    pub applied: Arc<Mutex<u32>>,
    /// Apply fails with this error, having got this far (the count is changed unless `Nothing`).
    pub apply_fails: Option<(FunctionError, Progress)>,
    pub apply_takes: Duration,
    pub claims: bool,
    /// Its changes need a human's approval (a plan token), for this reason.
    pub approval: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetCount {
    pub desired_count: i32,
}

impl Change for SetCount {
    fn call(&self) -> &'static str {
        "Test SetCount"
    }
    fn permission(&self) -> Option<Permission> {
        None
    }
}

impl Action for Raise {
    const KIND: ActionKind = ActionKind::ScaleUp;
    type Params = NoParams;
    type Observed = i32;
    type Change = SetCount;
    type Details = Value;

    fn claim(&self, call: &Invocation<'_, NoParams>) -> Result<Option<ClaimSpec>, FunctionError> {
        let spec = ClaimSpec {
            resource: format!("raise/{}", call.target()),
            what: "a raise".into(),
            hold: Duration::from_secs(60),
        };
        Ok(self.claims.then_some(spec))
    }

    async fn observe(&self, _call: &Invocation<'_, NoParams>, view: View) -> Result<i32, Failure<Value>> {
        self.observed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(view);
        Ok(*self.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn plan(&self, _call: &Invocation<'_, NoParams>, count: &i32) -> Result<Plan<SetCount, Value>, FunctionError> {
        let state = |n| State::EcsService { desired_count: n, autoscaling: None };
        if *count >= self.wanted {
            return Ok(Plan::unchanged("count".into(), state(*count), "No change".into(), json!({"count": count})));
        }
        Ok(Plan {
            resource: "count".into(),
            before: state(*count),
            after: state(self.wanted),
            changes: vec![SetCount { desired_count: self.wanted }],
            intent: format!("raise to {}", self.wanted),
            done: format!("Raised to {}", self.wanted),
            no_change: String::new(),
            details: json!({"count": count}),
        })
    }

    fn approval_needed(&self, _call: &Invocation<'_, NoParams>, _plan: &Plan<SetCount, Value>) -> Option<String> {
        self.approval.clone()
    }

    async fn apply(
        &self,
        _: &Invocation<'_, NoParams>,
        plan: &Plan<SetCount, Value>,
        _: i32,
    ) -> Result<Applied<Value>, Failure<Value>> {
        tokio::time::sleep(self.apply_takes).await;
        if let Some((error, progress)) = self.apply_fails.clone() {
            if progress != Progress::Nothing {
                *self.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = self.wanted;
            }
            return Err(Failure::with_details(error, json!({"tried": true}), progress));
        }
        *self.count.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = self.wanted;
        *self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        Ok(Applied::as_planned(plan, json!({"count": self.wanted})))
    }
}

/// The action raising the count to `wanted`.
pub fn raise(wanted: i32) -> Raise {
    Raise { wanted, ..Raise::default() }
}
