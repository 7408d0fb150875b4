//! Observe → plan → apply, the shape of every incident action.
//!
//! An action *observes* (describe calls only) into a typed snapshot, *plans* with a pure function
//! from the snapshot into a [`Plan`] of typed changes, and *applies* the changes in order. The
//! shared part is here: a dry run answers with the plan and applies nothing; `plannedCalls` is each
//! change serialised, from the same values `apply` sends, so a dry run cannot disagree with a real
//! run; and the dry run's `planToken` lets a human approve exactly that plan (see [`PlanToken`]).

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::FunctionError;
use crate::contract::ActionRequest;
use crate::frame::action::{Failure, Outcome, PlannedCall};
use crate::ledger::{Ledger, LedgerFailure};
use crate::settings::Settings;

/// One IAM permission: the action and the resource ARN. `${Partition}`, `${Region}` and
/// `${Account}` stand for the deployment's own (CloudFormation's pseudo parameters); the other
/// `${...}` of a declaration stand for the target config's fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Permission {
    pub action: &'static str,
    pub resource: String,
    /// A condition the grant must carry instead of a resource ARN (`ArnEquals`, key, value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// An IAM condition: `{"ArnEquals": {"ecs:cluster": "arn:..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Condition {
    pub operator: &'static str,
    pub key: &'static str,
    pub value: String,
}

impl Permission {
    pub fn new(action: &'static str, resource: impl Into<String>) -> Self {
        Self { action, resource: resource.into(), condition: None }
    }

    /// The same, granted only under a condition (e.g. `kms:ViaService`).
    pub fn when(mut self, operator: &'static str, key: &'static str, value: impl Into<String>) -> Self {
        self.condition = Some(Condition { operator, key, value: value.into() });
        self
    }

    /// An action AWS authorises only on `*` (no resource-level permissions).
    pub fn any(action: &'static str) -> Self {
        Self::new(action, "*")
    }

    /// An action authorised on `*` and scoped by a condition key, e.g. ECS ListTasks by `ecs:cluster`.
    pub fn any_where(action: &'static str, key: &'static str, value: impl Into<String>) -> Self {
        Self {
            action,
            resource: "*".to_owned(),
            condition: Some(Condition { operator: "ArnEquals", key, value: value.into() }),
        }
    }
}

/// `arn:${Partition}:<service>:${Region}:${Account}:<resource>`.
pub fn arn(service: &str, resource: &str) -> String {
    format!("arn:${{Partition}}:{service}:${{Region}}:${{Account}}:{resource}")
}

/// A change an action makes to a resource. Serialising it gives the call's parameters, under the
/// API's own member names; `call` names the service and operation.
pub trait Change: Serialize {
    /// e.g. `"ECS UpdateService"`.
    fn call(&self) -> &'static str;
    /// The IAM permission it needs; `None` for what IAM does not authorise (a Redis command).
    fn permission(&self) -> Option<Permission>;

    fn planned(&self) -> PlannedCall {
        PlannedCall::new(self.call(), serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

/// What an action will do, made by a pure function from what it observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<C> {
    /// The real resource, e.g. `ECS service production/api`.
    pub resource: String,
    /// The state the plan was made from; a plan token covers it.
    pub before: Value,
    /// The state the changes leave.
    pub after: Value,
    /// In the order they are applied; empty when nothing needs to change.
    pub changes: Vec<C>,
    /// What applying does, after "would": `scale ECS service production/api from 2 to 10 tasks`.
    pub intent: String,
    /// The answer once applied: `Scaled ECS service production/api from 2 to 10 tasks`.
    pub done: String,
    /// The answer when `changes` is empty.
    pub no_change: String,
    /// Response details beside `plannedCalls` and `planToken`.
    pub details: Value,
}

impl<C: Change> Plan<C> {
    /// A plan that changes nothing, answered with `message`.
    pub fn unchanged(resource: String, state: Value, message: String, details: Value) -> Self {
        Self {
            resource,
            before: state.clone(),
            after: state,
            changes: Vec::new(),
            intent: String::new(),
            done: String::new(),
            no_change: message,
            details,
        }
    }

    pub fn planned_calls(&self) -> Vec<PlannedCall> {
        self.changes.iter().map(Change::planned).collect()
    }

    /// The answer to a dry run, or to a plan token that no longer holds: the plan, and its token.
    pub fn as_dry_run(&self, token: &PlanToken) -> Outcome {
        let mut details = self.details.clone();
        if !details.is_object() {
            details = json!({});
        }
        details["plannedCalls"] = json!(self.planned_calls());
        details["wouldBecome"] = self.after.clone();
        details["planToken"] = json!(token.0);
        let message =
            if self.changes.is_empty() { self.no_change.clone() } else { format!("Dry run: would {}", self.intent) };
        Outcome {
            message,
            resource: self.resource.clone(),
            before: self.before.clone(),
            after: self.before.clone(),
            details,
        }
    }

    /// The answer once every change was applied, with `details` added to the plan's.
    pub fn as_done(self, details: Value) -> Outcome {
        let mut all = self.details;
        if let (Some(all), Value::Object(extra)) = (all.as_object_mut(), details) {
            all.extend(extra);
        }
        Outcome { message: self.done, resource: self.resource, before: self.before, after: self.after, details: all }
    }

    /// The answer when there is nothing to apply.
    pub fn as_no_change(&self) -> Outcome {
        let mut details = self.details.clone();
        if details.is_object() {
            details["change"] = json!("no change");
        }
        Outcome {
            message: self.no_change.clone(),
            resource: self.resource.clone(),
            before: self.before.clone(),
            after: self.after.clone(),
            details,
        }
    }
}

/// How plans are carried out: how long a dry run's plan token may be applied
/// (`PLAN_TOKEN_TTL_SECONDS`, default 900), and the incident ledger that guards the invocation
/// (idempotency, pause, budgets, records; none in a local run without `LEDGER_TABLE`).
#[derive(Debug, Clone)]
pub struct PlanPolicy {
    pub token_ttl: Duration,
    pub ledger: Option<Ledger>,
}

impl Default for PlanPolicy {
    fn default() -> Self {
        Self { token_ttl: Duration::from_secs(900), ledger: None }
    }
}

impl PlanPolicy {
    /// The token TTL from `PLAN_TOKEN_TTL_SECONDS`, and the ledger from `LEDGER_TABLE` and its settings.
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, crate::ConfigError> {
        let seconds = Settings::from_env().whole("PLAN_TOKEN_TTL_SECONDS", 900u64, 1..=86_400)?;
        Ok(Self { token_ttl: Duration::from_secs(seconds), ledger: Ledger::from_env(config)? })
    }

    /// The same policy with this ledger (tests).
    pub fn with_ledger(mut self, ledger: Ledger) -> Self {
        self.ledger = Some(ledger);
        self
    }
}

/// A dry run's approval handle: `v1.<issued, epoch seconds>.<digest>`, where the digest covers the
/// request (action, target, priority, the action's parameters), the state the plan was made from
/// and the changes. It is a digest, not a credential: who may invoke is IAM's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanToken(pub String);

impl PlanToken {
    pub fn issue<C: Change>(request: &ActionRequest, plan: &Plan<C>, issued_at: i64) -> Self {
        Self(format!("v1.{issued_at}.{}", digest(request, plan)))
    }

    /// (issued at, digest) of a token a caller sent back.
    fn read(text: &str) -> Option<(i64, &str)> {
        let rest = text.strip_prefix("v1.")?;
        let (issued, digest) = rest.split_once('.')?;
        let valid = digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit());
        Some((issued.parse().ok()?, digest)).filter(|_| valid)
    }
}

fn digest<C: Change>(request: &ActionRequest, plan: &Plan<C>) -> String {
    let covered = json!({
        "action": request.action.as_str(),
        "target": request.target,
        "priority": request.priority.as_str(),
        "params": request.params,
        "before": plan.before,
        "changes": plan.planned_calls(),
    });
    let mut hash = Sha256::new();
    hash.update(covered.to_string().as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a plan token was not applied.
pub fn check_token<C: Change>(
    request: &ActionRequest,
    plan: &Plan<C>,
    given: &str,
    policy: &PlanPolicy,
    now: i64,
) -> Result<(), String> {
    let (issued, digest_given) = PlanToken::read(given)
        .ok_or_else(|| "the planToken is not one a dry run gave (v1.<time>.<digest>)".to_owned())?;
    let age = now - issued;
    let ttl = i64::try_from(policy.token_ttl.as_secs()).unwrap_or(i64::MAX);
    if age > ttl || age < -60 {
        return Err(format!("the planToken is {age} s old; a plan may be applied for {ttl} s: review the new plan"));
    }
    if digest_given != digest(request, plan) {
        return Err("the state moved since the dry run, so the plan changed: review the new plan".to_owned());
    }
    Ok(())
}

/// The shared part of every action after planning: a plan token is checked (a stale one is a 409
/// answering with the new plan), a dry run answers with the plan, an empty plan with its message,
/// and only then does `apply` run.
pub async fn carry_out<C, F, Fut>(
    request: &ActionRequest,
    plan: Plan<C>,
    policy: &PlanPolicy,
    apply: F,
) -> Result<Outcome, Failure>
where
    C: Change,
    F: FnOnce(Plan<C>) -> Fut,
    Fut: Future<Output = Result<Outcome, Failure>>,
{
    let now = Utc::now().timestamp();
    let token = PlanToken::issue(request, &plan, now);
    if let Some(given) = &request.plan_token
        && let Err(reason) = check_token(request, &plan, given, policy, now)
    {
        let shown = plan.as_dry_run(&token);
        let mut details = shown.details;
        // The state the new plan was made from, beside what it would become.
        details["currentState"] = shown.before;
        return Err(Failure { error: FunctionError::StalePlan { reason, plan: shown.message }, details });
    }
    if request.dry_run {
        return Ok(plan.as_dry_run(&token));
    }
    if plan.changes.is_empty() {
        return Ok(plan.as_no_change());
    }
    if let Some(ledger) = &policy.ledger {
        match ledger.consume_budgets(request.action, request).await {
            Ok(()) => {}
            Err(FunctionError::LedgerUnavailable { problem, .. }) if ledger.settings.failure == LedgerFailure::Open => {
                tracing::warn!("acting without counting the budgets (LEDGER_FAILURE=open): {problem}");
            }
            Err(refused) => return Err(refused.into()),
        }
    }
    apply(plan).await
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::contract::{ActionKind, IncidentId, Priority, TargetRef};

    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct SetCount {
        service: String,
        desired_count: i32,
    }

    impl Change for SetCount {
        fn call(&self) -> &'static str {
            "ECS UpdateService"
        }
        fn permission(&self) -> Option<Permission> {
            Some(Permission::new("ecs:UpdateService", arn("ecs", &format!("service/c/{}", self.service))))
        }
    }

    fn request() -> ActionRequest {
        ActionRequest {
            action: ActionKind::ScaleUp,
            target: Some(TargetRef::try_from("api".to_owned()).unwrap()),
            incident_id: IncidentId::try_from("INC-1".to_owned()).unwrap(),
            priority: Priority::High,
            incident_details: None,
            dry_run: false,
            plan_token: None,
            params: serde_json::Map::new(),
        }
    }

    fn plan(from: i32, to: i32) -> Plan<SetCount> {
        Plan {
            resource: "ECS service c/api".into(),
            before: json!({"desiredCount": from}),
            after: json!({"desiredCount": to}),
            changes: vec![SetCount { service: "api".into(), desired_count: to }],
            intent: format!("scale from {from} to {to}"),
            done: format!("Scaled from {from} to {to}"),
            no_change: String::new(),
            details: json!({}),
        }
    }

    #[test]
    fn planned_calls_are_the_changes_serialised() {
        let calls = plan(2, 5).planned_calls();
        assert_eq!(calls, [PlannedCall::new("ECS UpdateService", json!({"service": "api", "desiredCount": 5}))]);
        assert_eq!(
            plan(2, 5).changes[0].permission().unwrap().resource,
            "arn:${Partition}:ecs:${Region}:${Account}:service/c/api"
        );
    }

    #[test]
    fn a_token_holds_for_the_same_plan_within_its_time_only() {
        let policy = PlanPolicy::default();
        let token = PlanToken::issue(&request(), &plan(2, 5), 1_000);
        assert_eq!(check_token(&request(), &plan(2, 5), &token.0, &policy, 1_500), Ok(()));
        let moved = check_token(&request(), &plan(3, 5), &token.0, &policy, 1_500).unwrap_err();
        assert!(moved.contains("the state moved"), "{moved}");
        let late = check_token(&request(), &plan(2, 5), &token.0, &policy, 1_000 + 901).unwrap_err();
        assert!(late.contains("901 s old"), "{late}");
        let mut other = request();
        other.priority = Priority::Critical;
        assert!(check_token(&other, &plan(2, 5), &token.0, &policy, 1_500).is_err(), "another request");
        assert!(check_token(&request(), &plan(2, 5), "approved", &policy, 1_500).unwrap_err().contains("not one"));
    }

    #[test]
    fn a_dry_run_shows_the_plan_and_its_token() {
        let p = plan(2, 5);
        let outcome = p.as_dry_run(&PlanToken::issue(&request(), &p, 1_000));
        assert_eq!(outcome.message, "Dry run: would scale from 2 to 5");
        assert_eq!(outcome.before, outcome.after, "nothing changed");
        assert_eq!(outcome.details["wouldBecome"], json!({"desiredCount": 5}));
        assert!(outcome.details["planToken"].as_str().unwrap().starts_with("v1.1000."));
    }
}
