//! What an action will do: a [`Plan`] of typed changes, made by a pure function from what it
//! observed, and the [`PlanToken`] with which a human approves exactly those calls.
//!
//! `plannedCalls` in a dry run's answer is each change serialised, from the same values `apply`
//! sends, so a dry run cannot disagree with a real run.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::iam::Permission;

use crate::contract::ActionRequest;
use crate::state::State;

/// A change an action makes to a resource. Serialising it gives the call's parameters, under the
/// API's own member names; `call` names the service and operation.
pub trait Change: Serialize {
    /// e.g. `"ECS UpdateService"`.
    fn call(&self) -> &'static str;
    /// The IAM permission it needs; `None` for what IAM does not authorise (a Redis command).
    fn permission(&self) -> Option<Permission>;

    fn planned(&self) -> PlannedCall {
        PlannedCall { call: self.call(), params: serde_json::to_value(self).unwrap_or(Value::Null) }
    }
}

/// One call an action would make, as a dry run reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedCall {
    /// Service and operation, e.g. `"ECS UpdateService"` or `"Redis FLUSHALL"`.
    pub call: &'static str,
    pub params: Value,
}

/// What an action will do, made by a pure function from what it observed. `D` is the action's own
/// typed details, serialised once, into the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<C, D> {
    /// The real resource, e.g. `ECS service production/api`.
    pub resource: String,
    /// The state the plan was made from.
    pub before: State,
    /// The state the changes leave.
    pub after: State,
    /// In the order they are applied; empty when nothing needs to change.
    pub changes: Vec<C>,
    /// What applying does, after "would": `scale ECS service production/api from 2 to 10 tasks`.
    pub intent: String,
    /// The answer once applied: `Scaled ECS service production/api from 2 to 10 tasks`.
    pub done: String,
    /// The answer when `changes` is empty.
    pub no_change: String,
    pub details: D,
}

impl<C: Change, D> Plan<C, D> {
    /// A plan that changes nothing, answered with `message`.
    pub fn unchanged(resource: String, state: State, message: String, details: D) -> Self {
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

    /// What a dry run answers: "Dry run: would ...", or the no-change message.
    pub fn preview_message(&self) -> String {
        if self.changes.is_empty() { self.no_change.clone() } else { format!("Dry run: would {}", self.intent) }
    }
}

/// A dry run's approval handle: `v2.<issued, epoch seconds>.<digest>`. The digest covers the request
/// (action, target, priority, the action's parameters) and the planned calls with their parameters:
/// what a human read and approved. It does not cover a count that leaves the calls as they were
/// (the keys in a live cache, the tasks autoscaling added), so an approval holds on a live system.
/// It is a digest, not a credential: who may invoke is IAM's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanToken(pub String);

impl PlanToken {
    pub fn issue(request: &ActionRequest, calls: &[PlannedCall], issued_at: i64) -> Self {
        Self(format!("v2.{issued_at}.{}", digest(request, calls)))
    }

    /// (issued at, digest) of a token a caller sent back.
    fn read(text: &str) -> Option<(i64, &str)> {
        let rest = text.strip_prefix("v2.")?;
        let (issued, digest) = rest.split_once('.')?;
        let valid = digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit());
        Some((issued.parse().ok()?, digest)).filter(|_| valid)
    }

    /// Why this token does not approve `calls` for `request` at `now`, if it does not.
    pub fn check(
        given: &str,
        request: &ActionRequest,
        calls: &[PlannedCall],
        ttl: Duration,
        now: i64,
    ) -> Result<(), String> {
        let (issued, digest_given) = Self::read(given).ok_or_else(|| {
            "the planToken is not one a dry run gave (v2.<time>.<digest>; a v1 token from before \
             2026-12-05 is not accepted: run the dry run again)"
                .to_owned()
        })?;
        let age = now - issued;
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        if age > ttl || age < -60 {
            return Err(format!(
                "the planToken is {age} s old; a plan may be applied for {ttl} s: review the new plan"
            ));
        }
        if digest_given != digest(request, calls) {
            return Err("the planned calls changed since the dry run: review the new plan".to_owned());
        }
        Ok(())
    }
}

fn digest(request: &ActionRequest, calls: &[PlannedCall]) -> String {
    let covered = json!({
        "action": request.action.as_str(),
        "target": request.target,
        "priority": request.priority.as_str(),
        "params": request.params,
        "calls": calls,
    });
    let mut hash = Sha256::new();
    hash.update(covered.to_string().as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use shared::iam::arn;

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

    fn plan(from: i32, to: i32) -> Plan<SetCount, ()> {
        Plan {
            resource: "ECS service c/api".into(),
            before: State::EcsService { desired_count: from, autoscaling: None },
            after: State::EcsService { desired_count: to, autoscaling: None },
            changes: vec![SetCount { service: "api".into(), desired_count: to }],
            intent: format!("scale from {from} to {to}"),
            done: format!("Scaled from {from} to {to}"),
            no_change: String::new(),
            details: (),
        }
    }

    #[test]
    fn planned_calls_are_the_changes_serialised() {
        let calls = plan(2, 5).planned_calls();
        let expected = PlannedCall { call: "ECS UpdateService", params: json!({"service": "api", "desiredCount": 5}) };
        assert_eq!(calls, [expected]);
        assert_eq!(
            plan(2, 5).changes[0].permission().unwrap().resource,
            "arn:${Partition}:ecs:${Region}:${Account}:service/c/api"
        );
        assert_eq!(plan(2, 5).preview_message(), "Dry run: would scale from 2 to 5");
    }

    #[test]
    fn a_token_approves_the_same_calls_within_its_time_only() {
        let ttl = Duration::from_secs(900);
        let check = |token: &PlanToken, request: &ActionRequest, p: &Plan<SetCount, ()>, now| {
            PlanToken::check(&token.0, request, &p.planned_calls(), ttl, now)
        };
        let token = PlanToken::issue(&request(), &plan(2, 5).planned_calls(), 1_000);
        assert_eq!(check(&token, &request(), &plan(2, 5), 1_500), Ok(()));
        // The count moved (autoscaling added a task), the call did not: still approved.
        assert_eq!(check(&token, &request(), &plan(3, 5), 1_500), Ok(()));
        let moved = check(&token, &request(), &plan(2, 6), 1_500).unwrap_err();
        assert!(moved.contains("the planned calls changed"), "{moved}");
        let late = check(&token, &request(), &plan(2, 5), 1_000 + 901).unwrap_err();
        assert!(late.contains("901 s old"), "{late}");
        let mut other = request();
        other.priority = Priority::Critical;
        assert!(check(&token, &other, &plan(2, 5), 1_500).is_err(), "another request");
        let foreign = PlanToken::check("approved", &request(), &[], ttl, 1_500).unwrap_err();
        assert!(foreign.contains("not one a dry run gave"), "{foreign}");
    }
}
