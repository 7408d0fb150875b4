#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! rollback_service's whole life (driver, guards in an in-memory ledger, observe, plan, apply) on
//! an ECS that `aws-smithy-mocks` stands in for: moto implements none of ListServiceDeployments,
//! DescribeServiceDeployments, DescribeServiceRevisions or StopServiceDeployment (tests/common).
//! DescribeServices and UpdateService are mocked here too, from one service's state; the real
//! UpdateService(taskDefinition) runs against moto in tests/emulator.rs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsError;
use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
use aws_sdk_ecs::types::error::ServerException;
use aws_sdk_ecs::types::{Deployment, Service, ServiceDeploymentStatus};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use incident_core::guard::{Guard, GuardSettings};
use incident_core::testing::memory::MemoryLedger;
use incident_core::testing::{response_json, targets};
use incident_rollback_service::{Deps, Rollback, handler};
use serde_json::{Value, json};
use shared::testing::action_event;

mod common;
use common::{FakeHistory, deployment};

/// The service as DescribeServices shows it: its task definition and primary deployment, which
/// UpdateService replaces.
#[derive(Debug)]
struct FakeService {
    task_definition: String,
    primary: String,
    updates: Vec<String>,
}

struct World {
    deps: Deps,
    ledger: MemoryLedger,
    history: Arc<Mutex<FakeHistory>>,
    service: Arc<Mutex<FakeService>>,
}

/// UpdateService starts a service deployment, as ECS does: it joins the history, completed.
fn service_rules(service: &Arc<Mutex<FakeService>>, history: &Arc<Mutex<FakeHistory>>) -> [Rule; 2] {
    let (read, write, history) = (service.clone(), service.clone(), history.clone());
    let shown = |s: &FakeService| {
        let primary =
            Deployment::builder().id(&s.primary).status("PRIMARY").task_definition(&s.task_definition).build();
        Service::builder().service_name("api").status("ACTIVE").task_definition(&s.task_definition).deployments(primary)
    };
    let describe = mock!(aws_sdk_ecs::Client::describe_services).then_compute_output(move |_| {
        DescribeServicesOutput::builder().services(shown(&read.lock().unwrap()).build()).build()
    });
    let update = mock!(aws_sdk_ecs::Client::update_service).then_compute_output(move |req| {
        let mut s = write.lock().unwrap();
        let td = req.task_definition().expect("a rollback sets the task definition").to_owned();
        s.updates.push(td.clone());
        let id = format!("rollback{}", s.updates.len());
        let started = deployment(&id, &s.task_definition, &td, 0, ServiceDeploymentStatus::Successful);
        history.lock().unwrap().deployments.push(started);
        (s.task_definition, s.primary) = (td, format!("ecs-svc/{}", s.updates.len() + 100));
        UpdateServiceOutput::builder().service(shown(&s).build()).build()
    });
    [describe, update]
}

fn world(current: &str, deployments: Vec<common::FakeDeployment>, unattended: bool) -> World {
    let history = FakeHistory::new("production", "api", deployments);
    let service = Arc::new(Mutex::new(FakeService {
        task_definition: current.into(),
        primary: "ecs-svc/1".into(),
        updates: vec![],
    }));
    let mut rules = common::rules(&history).to_vec();
    rules.extend(service_rules(&service, &history));
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules);
    let ledger = MemoryLedger::default();
    let action = Rollback {
        ecs: ecs.into(),
        targets: targets(json!({"api": {"kind": "ecs_service", "cluster": "production", "service": "api",
            "desiredCount": {"low": 2, "medium": 2, "high": 3, "critical": 4}, "maxCount": 6,
            "rollbackUnattended": unattended}})),
        horizon: Duration::from_secs(7200),
    };
    let guard = Guard::new(Some(Arc::new(ledger.clone())), GuardSettings::default());
    World { deps: Deps { action, guard }, ledger, history, service }
}

fn request(incident: &str, extra: Value) -> Value {
    let mut payload =
        json!({"action": "rollback_service", "target": "api", "incidentId": incident, "priority": "critical"});
    payload.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    payload
}

async fn invoke(w: &World, payload: Value) -> Value {
    response_json(&handler(action_event(payload), &w.deps).await.unwrap())
}

/// The demo's story: a bad deployment completed; the rollback waits for a human's approval (the
/// token of a dry run), then goes back to the task definition that served before it.
#[tokio::test]
async fn a_completed_deployment_is_rolled_back_only_once_a_human_approved_the_plan() {
    let bad = deployment("d42", "api:41", "api:42", 11, ServiceDeploymentStatus::Successful);
    let w = world("api:42", vec![bad], false);
    let asked = invoke(&w, request("INC-1", json!({}))).await;
    assert_eq!(asked["error"]["code"], "APPROVAL_REQUIRED", "{asked}");
    assert_eq!(asked["details"]["plannedCalls"][0]["params"]["taskDefinition"], "api:41", "{asked}");
    assert!(w.service.lock().unwrap().updates.is_empty(), "nothing applied without approval");
    let dry = invoke(&w, request("INC-1", json!({"dryRun": true}))).await;
    let token = dry["details"]["planToken"].as_str().unwrap();
    let done = invoke(&w, request("INC-1", json!({"planToken": token}))).await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(w.service.lock().unwrap().updates, ["api:41"]);
    assert_eq!(done["details"]["fromRevision"]["taskDefinition"], "api:41");
    assert_eq!(done["details"]["toRevision"]["taskDefinition"], "api:42");
    assert_eq!(done["details"]["newDeploymentId"], "ecs-svc/101");
    let record = w.ledger.records().into_iter().find(|r| r.outcome == "success").unwrap();
    assert_eq!(record.details["fromRevision"]["taskDefinition"], "api:41", "the record names both revisions");
    assert_eq!(record.details["toRevision"]["taskDefinition"], "api:42");
    assert!(record.changed, "a pending verification of the new deployment");
    let again = invoke(&w, request("INC-2", json!({"planToken": token}))).await;
    assert_eq!(again["statusCode"], 409, "the rollback is never rolled back: {again}");
}

#[tokio::test]
async fn a_target_allowed_unattended_rolls_back_without_a_token() {
    let bad = deployment("d42", "api:41", "api:42", 30, ServiceDeploymentStatus::Successful);
    let w = world("api:42", vec![bad], true);
    let done = invoke(&w, request("INC-1", json!({}))).await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(w.service.lock().unwrap().updates, ["api:41"]);
}

/// A deployment still rolling out is ECS's to roll back: StopServiceDeployment with ROLLBACK, no
/// approval needed; one that finished in between answers ConflictException, which is a 409 with
/// nothing changed.
#[tokio::test]
async fn a_rollout_under_way_is_stopped_with_rollback_and_a_finished_one_is_a_409() {
    let rolling = deployment("d43", "api:42", "api:43", 2, ServiceDeploymentStatus::InProgress);
    let w = world("api:43", vec![rolling], false);
    let done = invoke(&w, request("INC-1", json!({}))).await;
    assert_eq!(done["success"], true, "{done}");
    let stops = w.history.lock().unwrap().stops.clone();
    assert_eq!(stops.len(), 1);
    assert!(stops[0].0.ends_with("/production/api/d43") && stops[0].1 == "ROLLBACK", "{stops:?}");
    // ECS rolls back within the stopped deployment: what verification waits for is the task
    // definition coming back, not a new deployment.
    assert!(done["message"].as_str().unwrap().ends_with("ECS is rolling deployment d43 back"), "{done}");
    let record = w.ledger.records().into_iter().find(|r| r.outcome == "success").unwrap();
    let after = serde_json::to_value(record.after).unwrap();
    assert_eq!(after, json!({"kind": "ecs_deployment", "deploymentId": null, "taskDefinition": "api:42"}), "{done}");
    assert!(w.service.lock().unwrap().updates.is_empty());

    let rolling = deployment("d44", "api:43", "api:44", 2, ServiceDeploymentStatus::InProgress);
    let w = world("api:44", vec![rolling], false);
    w.history.lock().unwrap().finishes_before_stop = true;
    let late = invoke(&w, request("INC-2", json!({}))).await;
    assert_eq!(late["error"]["code"], "CONFLICT", "{late}");
    assert!(late["message"].as_str().unwrap().contains("finished before it could be stopped"), "{late}");
    assert!(w.service.lock().unwrap().updates.is_empty(), "nothing else was tried: {late}");
    let record = w.ledger.records().into_iter().last().unwrap();
    assert!(!record.changed, "nothing changed, nothing to verify");
}

/// ListServiceDeployments' order is not documented and it pages: the newest is found on any page.
#[tokio::test]
async fn the_newest_deployment_is_found_across_pages_in_any_order() {
    let older = (0..5)
        .map(|i| deployment(&format!("old{i}"), "api:39", "api:40", 100 - i, ServiceDeploymentStatus::Successful));
    let mut all: Vec<_> = older.collect();
    all.push(deployment("d42", "api:41", "api:42", 5, ServiceDeploymentStatus::Successful));
    let w = world("api:42", all, true);
    w.history.lock().unwrap().page = 2;
    let dry = invoke(&w, request("INC-1", json!({"dryRun": true}))).await;
    assert_eq!(dry["details"]["deploymentId"], "d42", "{dry}");
    assert_eq!(dry["details"]["plannedCalls"][0]["params"]["taskDefinition"], "api:41");
}

#[tokio::test]
async fn nothing_within_the_horizon_answers_409_naming_the_last_deployment() {
    let old = deployment("d40", "api:39", "api:40", 300, ServiceDeploymentStatus::Successful);
    let w = world("api:40", vec![old], true);
    let answer = invoke(&w, request("INC-1", json!({}))).await;
    assert_eq!(answer["statusCode"], 409, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("nothing recent to roll back") && message.contains("ecs-svc/1"), "{message}");
    assert!(w.service.lock().unwrap().updates.is_empty());
}

/// A failed describe is a 502 that changed nothing and spent nothing: the retry acts.
#[tokio::test]
async fn a_failing_deployment_listing_is_a_502_and_nothing_is_changed() {
    let service = Arc::new(Mutex::new(FakeService {
        task_definition: "api:2".into(),
        primary: "ecs-svc/1".into(),
        updates: vec![],
    }));
    let failing = mock!(aws_sdk_ecs::Client::list_service_deployments).then_error(|| {
        ListServiceDeploymentsError::ServerException(ServerException::builder().message("internal").build())
    });
    let mut rules = vec![failing];
    let mut w = world("api:2", vec![], true);
    rules.extend(service_rules(&service, &w.history));
    w.deps.action.ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &rules).into();
    let answer = invoke(&w, request("INC-1", json!({}))).await;
    assert_eq!(answer["statusCode"], 502, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("ListServiceDeployments"), "{answer}");
    assert!(service.lock().unwrap().updates.is_empty());
}
