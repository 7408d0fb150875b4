#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-rollback-service against the AWS emulator (moto server), with its ledger in DynamoDB.
//! The service, its task definitions and the rollback's UpdateService(taskDefinition) are moto's;
//! the deployment history is not (moto implements none of ListServiceDeployments,
//! DescribeServiceDeployments or DescribeServiceRevisions), so `aws-smithy-mocks` answers those
//! three on the same client and lets every other call through to moto (tests/common). Run through
//! scripts/test.sh.

use aws_sdk_ecs::types::ServiceDeploymentStatus;
use incident_core::testing::response_json;
use incident_rollback_service::{Deps, handler};
use serde_json::{Value, json};
use shared::ecs::ServiceRef;
use shared::testing::exact::assert_exact;
use shared::testing::iam::{IamWorld, table_arn};
use shared::testing::{FaultProxy, action_event, emulator_config, fixture, fixture_files};

mod common;
use common::world::{SUCCESSFUL, task_definition, world, world_in};

async fn invoke(deps: &Deps, payload: Value) -> Value {
    response_json(&handler(action_event(payload), deps).await.unwrap())
}

fn request(extra: Value) -> Value {
    let mut payload =
        json!({"action": "rollback_service", "target": "api", "incidentId": "INC-900", "priority": "high"});
    payload.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    payload
}

/// The demo's story in moto: a request without approval changes nothing; the approved plan sends
/// exactly the dry run's UpdateService, and moto's service runs the good task definition again.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_approved_rollback_sends_exactly_the_planned_update_and_moto_runs_the_good_build() {
    let proxy = FaultProxy::start();
    let w = world(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await, false, SUCCESSFUL).await;
    let asked = invoke(&w.deps, request(json!({}))).await;
    assert_eq!(asked["error"]["code"], "APPROVAL_REQUIRED", "{asked}");
    assert_eq!(task_definition(&w.moto, &w.api).await, w.bad, "nothing changed without approval");
    let dry = invoke(&w.deps, request(json!({"dryRun": true}))).await;
    assert_eq!(dry["details"]["plannedCalls"][0]["params"]["taskDefinition"], w.good.as_str(), "{dry}");
    proxy.reset();
    let token = dry["details"]["planToken"].as_str().unwrap();
    let done = invoke(&w.deps, request(json!({"planToken": token}))).await;
    assert_eq!(done["success"], true, "{done}");
    assert_exact("rollback", &dry, &proxy);
    assert_eq!(task_definition(&w.moto, &w.api).await, w.good, "moto's service runs the good build again");
    assert_eq!(done["details"]["fromRevision"]["taskDefinition"], w.good.as_str());
    assert_eq!(done["details"]["toRevision"]["taskDefinition"], w.bad.as_str());
    assert!(done["details"]["newDeploymentId"].as_str().unwrap().starts_with("ecs-svc/"), "{done}");
}

/// The console test events: the dry run answers with a plan and changes nothing, a LIVE event with
/// no token asks for approval; each invalid event is a 4xx, with nothing changed.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_fixture_is_answered_as_expected() {
    let function = emulator_config().await;
    for file in fixture_files("incident-rollback-service") {
        let w = world(&function, false, SUCCESSFUL).await;
        let payload = fixture(file.strip_prefix(shared::testing::fixtures_dir()).unwrap().to_str().unwrap());
        let response = invoke(&w.deps, payload.clone()).await;
        match payload["dryRun"] == true {
            true => assert_eq!(response["success"], true, "{}: {response}", file.display()),
            false => assert_eq!(response["error"]["code"], "APPROVAL_REQUIRED", "{}: {response}", file.display()),
        }
        assert_eq!(task_definition(&w.moto, &w.api).await, w.bad, "{}", file.display());
    }
    for file in fixture_files("incident-rollback-service/invalid") {
        let w = world(&function, true, SUCCESSFUL).await;
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let response = invoke(&w.deps, payload).await;
        let status = response["statusCode"].as_u64().unwrap();
        assert!((400..500).contains(&status), "{}: {response}", file.display());
        assert!(response["error"]["code"].is_string());
        assert_eq!(task_definition(&w.moto, &w.api).await, w.bad, "{}", file.display());
    }
}

/// Both of the rollback's paths under its role, in a stack whose TargetCluster is the service's:
/// the history read, the completed deployment rolled back by UpdateService, the rollout under way
/// stopped with rollback. The mocked calls still reach the emulator's recording, so that
/// deployments/tests/check_iam.py judges them too; a service of another cluster is out of reach.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_roll_back_a_completed_deployment_and_stop_one_under_way() {
    for status in [SUCCESSFUL, ServiceDeploymentStatus::InProgress] {
        let cluster = shared::testing::unique("rollback-iam");
        let outside = ServiceRef::new(format!("{cluster}-elsewhere"), "api");
        let world = IamWorld::of(env!("CARGO_PKG_NAME"), "actions.yaml")
            .parameter("TargetCluster", &cluster)
            .untouchable("ecs:UpdateService", shared::testing::iam::service_arn(&outside))
            .write();
        let w = world_in(&world.config().await, &cluster, true, status.clone()).await;
        world.name_resource("LedgerTable", &table_arn(&w.table));
        let done = invoke(&w.deps, request(json!({}))).await;
        assert_eq!(done["success"], true, "{status:?}: {done}");
    }
}
