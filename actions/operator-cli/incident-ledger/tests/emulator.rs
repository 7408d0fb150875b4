#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The operator's command against the emulator: the restore after an incident from the records
//! scale_up wrote (typed states), with one resource changed by hand in between, as the operator's
//! policy allows it; pause and resume; the history. (The same restore after a real scale_up run is
//! in incident-scale-up's tests.)

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use incident_core::config::TargetConfig;
use incident_core::ledger::NewRecord;
use incident_core::state::{Bounds, State};
use incident_core::testing::targets;
use incident_ledger::DynamoLedger;
use incident_ledger::cli::{Command, Context, run};
use incident_ledger::restore::Clients;
use incident_ledger::testing::scaling::{create_db, db_class, scalable_capacity};
use serde_json::{Value, json};
use shared::ecs::ServiceRef;
use shared::testing::{create_service, desired_count, emulator_config};

/// What scale_up records: a success with its typed before and after.
fn scaled(target: &str, before: State, after: State) -> NewRecord {
    NewRecord {
        incident_id: "INC-900".into(),
        action: "scale_up".into(),
        target: target.into(),
        priority: "critical".into(),
        outcome: "success".into(),
        status_code: 200,
        message: format!("scaled {target}"),
        before: Some(before),
        after: Some(after),
        details: Value::Null,
        request_id: uuid::Uuid::new_v4().to_string(),
        changed: true,
    }
}

fn ecs(desired_count: i32, (min_capacity, max_capacity): (i32, i32)) -> State {
    State::EcsService { desired_count, autoscaling: Some(Bounds { min_capacity, max_capacity }) }
}

fn class(instance_class: &str) -> State {
    State::RdsInstance { instance_class: instance_class.into() }
}

/// The incident's targets in the emulator, as scale_up left them (api at 10 with its floor at 10,
/// the database at 2xlarge, then moved to xlarge by a human).
async fn incident(setup: &shared::aws::SdkConfig) -> (ServiceRef, String, TargetConfig) {
    let (ecs, rds) = (aws_sdk_ecs::Client::new(setup), aws_sdk_rds::Client::new(setup));
    let autoscaling = aws_sdk_applicationautoscaling::Client::new(setup);
    let api = create_service(&ecs, "restore-api", 10).await;
    autoscaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(format!("service/{}/{}", api.cluster, api.service))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(10)
        .max_capacity(10)
        .send()
        .await
        .unwrap();
    let db = create_db(&rds, "db.r5.xlarge").await;
    let map = targets(json!({
        "api": {"kind": "ecs_service", "cluster": api.cluster, "service": api.service,
                "desiredCount": {"low": 5, "medium": 5, "high": 5, "critical": 10}, "maxCount": 20},
        "database": {"kind": "rds_instance", "instanceId": db,
                "instanceClass": {"low": "db.r5.xlarge", "medium": "db.r5.xlarge", "high": "db.r5.xlarge", "critical": "db.r5.2xlarge"},
                "classLadder": ["db.r5.large", "db.r5.xlarge", "db.r5.2xlarge"]},
    }));
    (api, db, map)
}

fn clients(config: &shared::aws::SdkConfig) -> Clients {
    Clients {
        ecs: aws_sdk_ecs::Client::new(config).into(),
        autoscaling: aws_sdk_applicationautoscaling::Client::new(config).into(),
        rds: aws_sdk_rds::Client::new(config).into(),
        elasticache: aws_sdk_elasticache::Client::new(config).into(),
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_restore_puts_back_what_automation_scaled_and_leaves_what_a_human_changed() {
    let setup = emulator_config().await;
    let (api, db, map) = incident(&setup).await;
    let ledger = incident_ledger::testing::ledger(&setup, &setup).await;
    for record in [
        scaled("api", ecs(2, (2, 6)), ecs(5, (5, 6))),
        scaled("api", ecs(5, (5, 6)), ecs(10, (10, 10))),
        scaled("database", class("db.r5.large"), class("db.r5.2xlarge")),
    ] {
        ledger.record_change(&record).await.unwrap();
    }
    // The operator's command, in an IAM world: actions.yaml's LedgerOperatorPolicy.
    let world = shared::testing::iam::IamWorld::of(env!("CARGO_PKG_NAME"), "actions.yaml")
        .parameter("TargetCluster", &api.cluster)
        // Scoped to the map's database, as deploy.sh derives it.
        .targets(&json!({"database": {"kind": "rds_instance", "instanceId": db}}))
        .resource("LedgerTable", shared::testing::iam::table_arn(&ledger.table))
        .write();
    let operator = world.config().await;
    let ledger = DynamoLedger { dynamodb: aws_sdk_dynamodb::Client::new(&operator), ..ledger };
    let context = Context { targets: Some(map), clients: Some(clients(&operator)) };
    let restore = |dry_run, now| Command::Restore { incident: "INC-900".into(), dry_run, now };
    let status = |answer: &Value, target: &str| {
        answer["targets"].as_array().unwrap().iter().find(|t| t["target"] == target).unwrap()["status"].clone()
    };
    let (ecs_client, rds) = (aws_sdk_ecs::Client::new(&setup), aws_sdk_rds::Client::new(&setup));
    let dry = run(&restore(true, false), &ledger, &context).await.unwrap();
    assert_eq!((status(&dry, "api"), status(&dry, "database")), (json!("restore"), json!("changedSince")), "{dry}");
    assert_eq!(desired_count(&ecs_client, &api).await, 10, "a dry run changes nothing");
    let done = run(&restore(false, false), &ledger, &context).await.unwrap();
    assert_eq!(status(&done, "api"), json!("restore"), "{done}");
    assert_eq!(done["targets"][0]["when"], "now", "{done}");
    assert_eq!(desired_count(&ecs_client, &api).await, 2);
    let autoscaling = aws_sdk_applicationautoscaling::Client::new(&setup);
    assert_eq!(scalable_capacity(&autoscaling, &api).await, (2, 6), "the autoscaling floor is back");
    assert_eq!(db_class(&rds, &db).await, "db.r5.xlarge", "what the human chose is left alone");
    let records = ledger.history("INC-900").await.unwrap();
    let last = records.last().unwrap();
    assert_eq!((last.action.as_str(), last.target.as_str(), last.outcome.as_str()), ("restore", "api", "success"));
    assert_eq!((last.before.clone(), last.after.clone()), (Some(ecs(10, (10, 10))), Some(ecs(2, (2, 6)))));
    let again = run(&restore(true, false), &ledger, &context).await.unwrap();
    assert_eq!(status(&again, "api"), json!("alreadyRestored"), "{again}");
}

/// A database restored by default waits for its maintenance window (a resize is a reboot or a
/// failover); `--now` applies it at once. Both say when.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_downsize_waits_for_the_maintenance_window_unless_now() {
    let setup = emulator_config().await;
    let (_, db, map) = incident(&setup).await;
    aws_sdk_rds::Client::new(&setup)
        .modify_db_instance()
        .db_instance_identifier(&db)
        .db_instance_class("db.r5.2xlarge")
        .send()
        .await
        .unwrap();
    let ledger = incident_ledger::testing::ledger(&setup, &setup).await;
    ledger.record_change(&scaled("database", class("db.r5.large"), class("db.r5.2xlarge"))).await.unwrap();
    let context = Context { targets: Some(map), clients: Some(clients(&setup)) };
    let dry = run(&Command::Restore { incident: "INC-900".into(), dry_run: true, now: false }, &ledger, &context)
        .await
        .unwrap();
    let database = &dry["targets"][0];
    assert_eq!(
        (database["status"].as_str(), database["when"].as_str()),
        (Some("restore"), Some("next_maintenance_window"))
    );
    assert_eq!(database["changes"][0]["applyImmediately"], false, "{dry}");
    let now = run(&Command::Restore { incident: "INC-900".into(), dry_run: true, now: true }, &ledger, &context)
        .await
        .unwrap();
    assert_eq!(
        (now["targets"][0]["when"].as_str(), now["targets"][0]["changes"][0]["applyImmediately"].as_bool()),
        (Some("now"), Some(true))
    );
}

/// Pause and resume through the command, as an operator runs them; a pause of a name the target
/// map does not have pauses nothing, so it is refused, naming the known targets.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn pause_and_resume_answer_what_they_did_and_a_typo_is_refused() {
    let setup = emulator_config().await;
    let ledger = incident_ledger::testing::ledger(&setup, &setup).await;
    let map = targets(json!({"api": {"kind": "ecs_service", "cluster": "c", "service": "api",
        "desiredCount": {"low": 5, "medium": 5, "high": 5, "critical": 10}, "maxCount": 20}}));
    let context = Context { targets: Some(map), clients: None };
    let pause =
        |target: &str| Command::Pause { target: Some(target.into()), by: "alice".into(), reason: "taking over".into() };
    let typo = run(&pause("apj"), &ledger, &context).await.unwrap_err();
    assert_eq!(typo.code(), "UNKNOWN_TARGET", "{typo}");
    assert!(typo.to_string().contains("known targets: api"), "{typo}");
    let paused = run(&pause("api"), &ledger, &context).await.unwrap();
    assert_eq!((paused["paused"].as_str(), paused["by"].as_str()), (Some("api"), Some("alice")));
    let resumed = run(&Command::Resume { target: Some("api".into()) }, &ledger, &context).await.unwrap();
    assert_eq!(resumed, json!({"resumed": "api", "wasPaused": true}));
    let again = run(&Command::Resume { target: Some("api".into()) }, &ledger, &context).await.unwrap();
    assert_eq!(again["wasPaused"], false);
    let history = run(&Command::History { incident: "INC-NONE".into() }, &ledger, &context).await.unwrap();
    assert_eq!(history, json!({"incidentId": "INC-NONE", "records": []}));
}
