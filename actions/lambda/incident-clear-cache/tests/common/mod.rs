//! What the clear_cache tests share: the function's dependencies on given targets, and a request.

use std::time::Duration;

use incident_clear_cache::{ClearCache, Deps, PasswordSource, handler};
use incident_core::guard::Guard;
use incident_core::testing::{response_json, targets};
use serde_json::{Value, json};
use shared::testing::{action_event, function_config};

pub async fn deps(targets_json: Value, fallback: Option<&str>) -> Deps {
    let config = function_config(env!("CARGO_PKG_NAME")).await;
    let action = ClearCache {
        secrets: aws_sdk_secretsmanager::Client::new(&config).into(),
        elasticache: aws_sdk_elasticache::Client::new(&config).into(),
        targets: targets(targets_json),
        passwords: PasswordSource::new(fallback.map(str::to_owned)),
        reboot_poll: Duration::from_millis(20),
    };
    Deps { action, guard: Guard::default() }
}

pub fn request(target: &str, extra: Value) -> Value {
    let mut r = json!({"action": "clear_cache", "target": target, "incidentId": "INC-3", "priority": "high"});
    r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    r
}

pub async fn invoke(deps: &Deps, payload: Value) -> Value {
    response_json(&handler(action_event(payload), deps).await.unwrap())
}

/// The same function with a guard on a new ledger table (the function's calls straight to the
/// emulator), and that ledger, for the test's own reads.
pub async fn guarded(mut deps: Deps) -> (Deps, incident_ledger::DynamoLedger) {
    let config = function_config(env!("CARGO_PKG_NAME")).await;
    let settings = incident_core::guard::GuardSettings::default();
    let (guard, ledger) =
        incident_ledger::testing::guard(&shared::testing::emulator_config().await, &config, settings).await;
    deps.guard = guard;
    (deps, ledger)
}

/// One invocation with `left` before its deadline.
pub async fn invoke_within(deps: &Deps, payload: Value, left: Duration) -> Value {
    response_json(&handler(shared::testing::event_with_deadline(payload, left), deps).await.unwrap())
}
