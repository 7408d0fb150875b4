#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The console test events in fixtures/incident-playbook, as the built binary reads them: every
//! valid one is an event the function takes, every invalid one a clear 400 before any AWS call
//! (the endpoint is a closed port: a call would be a different error).

use incident_playbook::trigger::{Trigger, parse};
use shared::testing::{fixture_files, run_binary};

const BINARY: &str = env!("CARGO_BIN_EXE_incident-playbook");

#[test]
fn every_valid_fixture_is_an_event_the_function_takes() {
    let files = fixture_files("incident-playbook");
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let trigger = parse(&event).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file.file_name().unwrap().to_str().unwrap();
        let expected = match &trigger {
            Trigger::Alarm(change) => name.contains("alarm") && !change.name.is_empty(),
            Trigger::Deployment(change) => {
                name.starts_with("ecs-deployment") && (change.completed() || change.failed())
            }
            Trigger::Sweep => name.starts_with("schedule"),
        };
        assert!(expected, "{name} read as {trigger:?}");
    }
}

#[test]
fn every_invalid_fixture_is_a_clear_400_with_no_aws_call() {
    let targets = std::fs::read_to_string(shared::testing::fixtures_dir().join("targets.json")).unwrap();
    let envs = [
        ("TARGETS_JSON", targets.as_str()),
        ("LEDGER_TABLE", "ledger"),
        ("RESTART_SERVICE_FUNCTION", "restart"),
        ("SCALE_UP_FUNCTION", "scale"),
        ("CLEAR_CACHE_FUNCTION", "clear"),
        ("NOTIFY_HUMAN_FUNCTION", "notify"),
        ("ROLLBACK_SERVICE_FUNCTION", "rollback"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let files = fixture_files("incident-playbook/invalid");
    assert!(!files.is_empty());
    for file in files {
        let run = run_binary(BINARY, &file, &envs);
        assert_eq!(run.status, 1, "{}: {:?}", file.display(), run.stdout);
        assert_eq!(run.stdout["errorType"], "InvalidRequest", "{}: {:?}", file.display(), run.stdout);
        let message = run.stdout["errorMessage"].as_str().unwrap();
        assert!(message.contains("event") || message.contains("detail-type"), "{}: {message}", file.display());
    }
}
