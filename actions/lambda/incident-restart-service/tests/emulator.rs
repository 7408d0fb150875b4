#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-restart-service against the AWS emulator (moto server). Run through scripts/test.sh.

use std::time::Duration;

use aws_sdk_ec2::types::InstanceType;
use incident_core::guard::{Guard, GuardSettings};
use incident_core::testing::{response_json, targets};
use incident_restart_service::{DEFAULT_COOLDOWN, Deps, Restart, handler};
use serde_json::{Value, json};
use shared::ecs::ServiceRef;
use shared::testing::exact::{assert_exact, planned};
use shared::testing::iam::IamWorld;
use shared::testing::{
    FaultProxy, action_event, create_service, emulator_config, fixture, fixture_files, function_config,
};

struct World {
    deps: Deps,
    /// The tests' own ECS client (the function's is in `deps`).
    moto: aws_sdk_ecs::Client,
    api: ServiceRef,
    running: String,
    stopped: String,
}

async fn primary_deployment(ecs: &aws_sdk_ecs::Client, target: &ServiceRef) -> String {
    let out = ecs.describe_services().cluster(&target.cluster).services(&target.service).send().await.unwrap();
    let service = &out.services()[0];
    service.deployments().iter().find(|d| d.status() == Some("PRIMARY")).unwrap().id().unwrap().to_owned()
}

/// Two ECS services and two EC2 instances (one running, one stopped), behind the fixtures' target names.
async fn world(cooldown: Duration) -> World {
    world_through(cooldown, function_config(env!("CARGO_PKG_NAME")).await).await
}

/// The same world, the function's clients built from `function` (e.g. through a recording proxy).
async fn world_through(cooldown: Duration, function: shared::aws::SdkConfig) -> World {
    let config = emulator_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let api = create_service(&ecs, "restart-api", 2).await;
    let auth = create_service(&ecs, "restart-auth", 2).await;
    let run = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(2)
        .max_count(2)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = run.instances().iter().map(|i| i.instance_id().unwrap().to_owned()).collect();
    ec2.stop_instances().instance_ids(&ids[1]).send().await.unwrap();
    let targets = targets(json!({
        "api": {"kind": "ecs_service", "cluster": api.cluster, "service": api.service,
                "desiredCount": {"low": 2, "medium": 2, "high": 3, "critical": 4}, "maxCount": 6},
        "auth-service": {"kind": "ecs_service", "cluster": auth.cluster, "service": auth.service,
                "desiredCount": {"low": 2, "medium": 2, "high": 3, "critical": 4}, "maxCount": 6},
        "web-hosts": {"kind": "ec2_instances", "instanceIds": ids},
        "cache": {"kind": "redis", "url": "redis://127.0.0.1:6390"},
    }));
    // The guard on a ledger table of its own, which keeps the claims; without a cooldown, none.
    let guard = match cooldown.is_zero() {
        true => Guard::default(),
        false => incident_ledger::testing::guard(&config, &function, GuardSettings::default()).await.0,
    };
    let action = Restart {
        ecs: aws_sdk_ecs::Client::new(&function).into(),
        ec2: aws_sdk_ec2::Client::new(&function).into(),
        targets,
        cooldown,
    };
    let deps = Deps { action, guard };
    World { deps, moto: ecs, api, running: ids[0].clone(), stopped: ids[1].clone() }
}

fn request(extra: Value) -> Value {
    let mut r = json!({"action": "restart_service", "target": "api", "incidentId": "INC-42", "priority": "high"});
    r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    r
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_restart_starts_a_new_deployment() {
    let w = world(Duration::ZERO).await;
    let before = primary_deployment(&w.moto, &w.api).await;
    let response = response_json(&handler(action_event(request(json!({}))), &w.deps).await.unwrap());
    assert_eq!(response["success"], true, "{response}");
    let after = primary_deployment(&w.moto, &w.api).await;
    assert_ne!(after, before, "the emulator holds a new primary deployment");
    assert_eq!(response["details"]["deploymentId"], after);
    assert_eq!(response["details"]["previousDeploymentId"], before);
    assert_eq!(response["details"]["cluster"], w.api.cluster);
    assert!(response["details"]["taskDefinition"].as_str().unwrap().contains("task-definition/"));
    assert!(response["message"].as_str().unwrap().contains("restart initiated"));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_second_restart_within_the_cooldown_is_refused_and_changes_nothing() {
    // A freshly created or restarted service is rolling out (moto keeps rolloutState IN_PROGRESS).
    let w = world(DEFAULT_COOLDOWN).await;
    let before = primary_deployment(&w.moto, &w.api).await;
    let response = response_json(&handler(action_event(request(json!({}))), &w.deps).await.unwrap());
    assert_eq!(response["statusCode"], 409, "{response}");
    assert_eq!(response["error"]["code"], "CONFLICT");
    assert!(response["message"].as_str().unwrap().contains("restart already in progress since"), "{response}");
    assert_eq!(primary_deployment(&w.moto, &w.api).await, before);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_dry_run_reports_the_call_and_leaves_the_deployment() {
    let w = world(Duration::ZERO).await;
    let before = primary_deployment(&w.moto, &w.api).await;
    let response = response_json(&handler(action_event(request(json!({"dryRun": true}))), &w.deps).await.unwrap());
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["dryRun"], true);
    assert_eq!(
        response["details"]["plannedCalls"],
        json!([{"call": "ECS UpdateService", "params": {"cluster": w.api.cluster, "service": w.api.service, "forceNewDeployment": true}}])
    );
    assert_eq!(primary_deployment(&w.moto, &w.api).await, before);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn ec2_targets_reboot_the_running_instances_and_report_the_skipped_ones() {
    let w = world(Duration::ZERO).await;
    let payload = request(json!({"target": "web-hosts"}));
    let response = response_json(&handler(action_event(payload), &w.deps).await.unwrap());
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["details"]["rebooted"], json!([w.running]));
    assert_eq!(response["details"]["skipped"], json!([{"instanceId": w.stopped, "state": "stopped"}]));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn unknown_and_unsuitable_targets_are_refused() {
    let w = world(Duration::ZERO).await;
    let response =
        response_json(&handler(action_event(request(json!({"target": "default-service"}))), &w.deps).await.unwrap());
    assert_eq!(response["statusCode"], 404);
    assert_eq!(
        response["error"]["message"],
        "unknown target \"default-service\"; known targets: api, auth-service, cache, web-hosts"
    );
    let response = response_json(&handler(action_event(request(json!({"target": "cache"}))), &w.deps).await.unwrap());
    assert_eq!(response["statusCode"], 400);
    assert!(response["message"].as_str().unwrap().contains("\"cache\" is a redis target"), "{response}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_fixture_is_answered_as_expected() {
    for file in fixture_files("incident-restart-service") {
        let w = world(Duration::ZERO).await;
        let before = primary_deployment(&w.moto, &w.api).await;
        let payload = fixture(file.strip_prefix(shared::testing::fixtures_dir()).unwrap().to_str().unwrap());
        let response = response_json(&handler(action_event(payload.clone()), &w.deps).await.unwrap());
        assert_eq!(response["success"], true, "{}: {response}", file.display());
        if payload["dryRun"] == true {
            assert_eq!(primary_deployment(&w.moto, &w.api).await, before, "{}", file.display());
        }
    }
    for file in fixture_files("incident-restart-service/invalid") {
        let w = world(Duration::ZERO).await;
        let before = primary_deployment(&w.moto, &w.api).await;
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let response = response_json(&handler(action_event(payload), &w.deps).await.unwrap());
        let status = response["statusCode"].as_u64().unwrap();
        assert!((400..500).contains(&status), "{}: {response}", file.display());
        assert!(response["error"]["code"].is_string());
        assert_eq!(primary_deployment(&w.moto, &w.api).await, before, "{}", file.display());
    }
}

async fn invoke(deps: &Deps, payload: Value) -> Value {
    response_json(&handler(action_event(payload), deps).await.unwrap())
}

/// The dry run's plannedCalls are what the real run sends, for each target kind; the restart's
/// claim is the ledger's bookkeeping, not a planned call, and is left in the ledger's table.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_dry_run_plans_exactly_the_calls_a_real_run_makes() {
    let proxy = FaultProxy::start();
    // A 1 s cooldown keeps the claim in the plan; the new service's own rollout is older than that.
    let w = world_through(Duration::from_secs(1), proxy.sdk_config(env!("CARGO_PKG_NAME")).await).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for target in ["api", "web-hosts"] {
        let dry = invoke(&w.deps, request(json!({"target": target, "dryRun": true}))).await;
        assert_eq!(dry["success"], true, "{dry}");
        proxy.reset();
        let real = invoke(&w.deps, request(json!({"target": target}))).await;
        assert_eq!(real["success"], true, "{real}");
        assert_exact(target, &dry, &proxy);
    }
    let planned = planned(&invoke(&w.deps, request(json!({"target": "auth-service", "dryRun": true}))).await);
    assert_eq!(planned.iter().map(|c| c.call.as_str()).collect::<Vec<_>>(), ["ECS UpdateService"]);
    let claim = claim_item(&w.deps, &w.api).await.expect("the real run's claim is in the ledger");
    assert_eq!(claim["holder"].as_s().unwrap(), "incident INC-42");
}

/// The restart claim of `service` as the ledger's table holds it.
async fn claim_item(
    deps: &Deps,
    service: &ServiceRef,
) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let table = deps.guard.ledger().unwrap().table();
    let dynamodb = aws_sdk_dynamodb::Client::new(&emulator_config().await);
    let pk = format!("CLAIM#restart/{}/{}", service.cluster, service.service);
    let out = dynamodb.get_item().table_name(table).key("pk", S(pk)).key("sk", S("CLAIM".into()));
    out.consistent_read(true).send().await.unwrap().item().cloned()
}

/// An approved dry run runs as approved; the same request again is its answer replayed, and the
/// same approval for another incident is refused by the restart's claim: nothing is restarted twice.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_plan_token_runs_the_approved_restart_once() {
    let w = world(Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let dry = invoke(&w.deps, request(json!({"dryRun": true}))).await;
    let token = dry["details"]["planToken"].as_str().unwrap().to_owned();
    let before = primary_deployment(&w.moto, &w.api).await;
    let approved = invoke(&w.deps, request(json!({"planToken": token}))).await;
    assert_eq!(approved["success"], true, "{approved}");
    let restarted = primary_deployment(&w.moto, &w.api).await;
    assert_ne!(restarted, before);
    let again = invoke(&w.deps, request(json!({"planToken": token}))).await;
    assert_eq!(again["replayed"], true, "{again}");
    let other = invoke(&w.deps, request(json!({"planToken": token, "incidentId": "INC-43"}))).await;
    assert_eq!(
        (other["statusCode"].as_u64(), other["error"]["code"].as_str()),
        (Some(409), Some("CONFLICT")),
        "{other}"
    );
    assert_eq!(primary_deployment(&w.moto, &w.api).await, restarted, "not restarted twice");
}

/// IAM world (deployments/tests/check_iam.py checks every call below against actions.yaml's
/// RestartRole, rendered for this target cluster and stack): the claim in the stack's ledger table
/// and the restart of a target, and a reboot; a service outside TargetCluster and an instance
/// outside the map are out of reach.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_restart_and_reboot() {
    let mut w = world(Duration::from_secs(1)).await;
    // The roles are scoped to the map's instances (as deploy.sh derives them): another is out of reach.
    let instances = json!({"web-hosts": {"kind": "ec2_instances", "instanceIds": [w.running, w.stopped]}});
    let builder = IamWorld::of(env!("CARGO_PKG_NAME"), "actions.yaml")
        .parameter("TargetCluster", &w.api.cluster)
        .targets(&instances)
        .untouchable("ec2:RebootInstances", "arn:aws:ec2:us-east-1:123456789012:instance/i-0bbbbbbbbbbbbbbb0");
    // The claims are in the stack's ledger table.
    let table = w.deps.guard.ledger().unwrap().table().to_owned();
    let builder = builder.resource("LedgerTable", shared::testing::iam::table_arn(&table));
    let outside = ServiceRef::new(w.api.cluster.clone() + "-elsewhere", "production-api-service");
    let world = builder.untouchable("ecs:UpdateService", shared::testing::iam::service_arn(&outside)).write();
    let config = world.config().await;
    w.deps.action.ecs = aws_sdk_ecs::Client::new(&config).into();
    w.deps.action.ec2 = aws_sdk_ec2::Client::new(&config).into();
    let ledger = incident_ledger::DynamoLedger { dynamodb: incident_ledger::client(&config), table };
    w.deps.guard = Guard::new(Some(std::sync::Arc::new(ledger)), GuardSettings::default());
    tokio::time::sleep(Duration::from_millis(1_500)).await; // past the new service's own rollout
    for target in ["api", "web-hosts"] {
        let response = invoke(&w.deps, request(json!({"target": target}))).await;
        assert_eq!(response["success"], true, "{target}: {response}");
    }
}

/// A remediation loop: twenty restarts of one target at once, each for another incident (so none
/// is a retry of another), with 3 restarts an hour allowed: three deployments, seventeen 429s.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn twenty_concurrent_restarts_spend_the_budget_and_no_more() {
    let proxy = FaultProxy::start();
    let function = proxy.sdk_config(env!("CARGO_PKG_NAME")).await;
    let mut w = world_through(Duration::ZERO, function.clone()).await;
    let limit = |count| incident_core::budget::Limit { count, window: Duration::from_secs(3600) };
    let budgets =
        incident_core::budget::Budgets { per_target_action: limit(3), per_target: limit(6), fleet: limit(20) };
    let settings = GuardSettings { budgets, ..Default::default() };
    w.deps.guard = incident_ledger::testing::guard(&emulator_config().await, &function, settings).await.0;
    let runs = (0..20).map(|i| invoke(&w.deps, request(json!({"incidentId": format!("INC-LOOP-{i}")}))));
    let answers = futures::future::join_all(runs).await;
    let restarted = answers.iter().filter(|a| a["success"] == true).count();
    let refused = answers.iter().filter(|a| a["error"]["code"] == "BUDGET_EXHAUSTED").count();
    assert_eq!((restarted, refused), (3, 17), "{answers:?}");
    assert_eq!(proxy.count("UpdateService"), 3, "{:?}", proxy.calls());
}

/// Six alerts restart one EC2 target at once, each for another incident: the target's claim lets
/// one reboot through, once; the others answer 409 naming who holds it, and spend no budget.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn six_concurrent_restarts_of_one_ec2_target_reboot_it_once() {
    let proxy = FaultProxy::start();
    let w = world_through(Duration::from_secs(60), proxy.sdk_config(env!("CARGO_PKG_NAME")).await).await;
    let runs =
        (0..6).map(|i| invoke(&w.deps, request(json!({"target": "web-hosts", "incidentId": format!("INC-E{i}")}))));
    let answers: Vec<Value> = futures::future::join_all(runs).await;
    let rebooted = answers.iter().filter(|a| a["success"] == true).count();
    let claimed = answers.iter().filter(|a| a["error"]["code"] == "CONFLICT").count();
    assert_eq!((rebooted, claimed), (1, 5), "{answers:?}");
    assert_eq!(proxy.count("RebootInstances"), 1, "{:?}", proxy.calls());
    let refusal = answers.iter().find(|a| a["error"]["code"] == "CONFLICT").unwrap();
    assert!(refusal["message"].as_str().unwrap().contains("a reboot of EC2 instances"), "{refusal}");
}
