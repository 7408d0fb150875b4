//! The changes the actions made outside any playbook (the backend's invocations): each is verified
//! as a step is, against what it left, and its verdict written into the incident's history, where
//! the backend and the next page read it. With no playbook behind it, a failed fix escalates to
//! whoever invoked the action: the verdict is what they are told.

use chrono::Duration;
use serde_json::{Value, json};
use shared::FunctionError;

use crate::Deps;
use crate::flow::News;
use crate::playbooks::DEFAULT_VERIFY_MINUTES;
use crate::store::Change;
use crate::verify::{Expectation, judge};

/// Judges one change's verification; the verdict is written once (the entry's conditional delete).
pub async fn settle(deps: &Deps, change: &Change, news: &News) -> Result<Value, FunctionError> {
    let answer = |outcome: &str| json!({"incidentId": change.incident_id, "change": change.key, "outcome": outcome});
    let unavailable = |err| deps.unavailable(err);
    // A playbook's own steps are verified by their run, against the alarm too.
    if deps.store.load(&change.incident_id).await.map_err(unavailable)?.is_some() {
        deps.store.take_change(&change.key).await.map_err(unavailable)?;
        return Ok(answer("verified by its playbook's run"));
    }
    let Ok(target) = deps.targets.get(&change.target) else {
        deps.store.take_change(&change.key).await.map_err(unavailable)?;
        return Ok(answer("its target is no longer in the target map"));
    };
    let expectation = Expectation::of(target, &change.after);
    let seen = crate::check::resource(&deps.clients, &expectation, news.deployment.as_deref()).await;
    let now = deps.clock.now();
    let deadline = change.at + Duration::minutes(i64::try_from(DEFAULT_VERIFY_MINUTES).unwrap_or(10));
    let Some(verdict) = judge(&seen, None, now, deadline) else { return Ok(answer("verifying")) };
    if !deps.store.take_change(&change.key).await.map_err(unavailable)? {
        return Ok(answer("judged by another invocation"));
    }
    let message = format!("{} {}: {}", change.action, change.target, verdict.evidence);
    deps.record_as("verify", &change.incident_id, &change.target, verdict.outcome.as_str(), &message).await;
    crate::metrics::judged(&verdict, change.at, now);
    Ok(answer(verdict.outcome.as_str()))
}
