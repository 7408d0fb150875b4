//! Helpers for the actions' tests (the `test-util` feature, dev-dependencies only): the bad-input
//! corpus, the answer as the backend reads it, target maps, and an in-memory ledger.

use serde_json::Value;

use crate::config::TargetConfig;
use crate::contract::ActionResponse;

pub mod action;
pub mod corpus;
pub mod memory;

pub use shared::testing::MAX_ERROR_MESSAGE;

/// The response as the backend sees it (JSON), checking that `body` mirrors the rest.
pub fn response_json(response: &ActionResponse) -> Value {
    let value = serde_json::to_value(response).expect("response serialises");
    let body: Value = serde_json::from_str(value["body"].as_str().expect("body is a string")).expect("body is JSON");
    assert_eq!(body["statusCode"], value["statusCode"], "body mirrors the response");
    value
}

/// Builds a validated target config from JSON, as `TARGETS_JSON` would carry it.
pub fn targets(config: Value) -> TargetConfig {
    TargetConfig::parse(&config.to_string(), "test").expect("test target config is valid")
}

/// Checks that an incident action refused a bad request the way the backend needs: a 4xx response
/// with a stable code and a short message naming the problem.
pub fn assert_action_rejected(what: &str, response: &ActionResponse) {
    let status = response.core.status_code;
    assert!((400..500).contains(&status), "{what}: expected a 4xx, got {status}: {}", response.core.message);
    assert!(!response.core.success, "{what}");
    let message = &response.core.message;
    assert!(!message.is_empty() && message.len() <= MAX_ERROR_MESSAGE, "{what}: message of {} bytes", message.len());
    let error = response.core.error.as_ref().unwrap_or_else(|| panic!("{what}: no error object"));
    assert!(error["code"].is_string(), "{what}: {error}");
}
