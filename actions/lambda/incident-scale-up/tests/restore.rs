#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! scale_up and the restore after it, end to end in the emulator: an incident scales a service
//! (twice) and a database through the real handler, whose records the operator's restore reads
//! back (typed states, the autoscaling floor among them); a human changes the database in between.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use incident_core::guard::GuardSettings;
use incident_core::testing::{response_json, targets};
use incident_ledger::DynamoLedger;
use incident_ledger::cli::{Command, Context, run};
use incident_ledger::restore::Clients;
use incident_ledger::testing::scaling::{create_db, db_class, scalable_capacity};
use incident_scale_up::{Deps, ScaleUp, handler};
use serde_json::{Value, json};
use shared::testing::{action_event, create_service, desired_count, emulator_config, function_config};

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_after_the_incident_restore_puts_back_what_scale_up_raised_and_leaves_what_a_human_changed() {
    let setup = emulator_config().await;
    let (ecs, rds) = (aws_sdk_ecs::Client::new(&setup), aws_sdk_rds::Client::new(&setup));
    let autoscaling = aws_sdk_applicationautoscaling::Client::new(&setup);
    let api = create_service(&ecs, "restore-api", 2).await;
    autoscaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(format!("service/{}/{}", api.cluster, api.service))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(2)
        .max_capacity(6)
        .send()
        .await
        .unwrap();
    let db = create_db(&rds, "db.r5.large").await;
    let map = targets(json!({
        "api": {"kind": "ecs_service", "cluster": api.cluster, "service": api.service,
                "desiredCount": {"low": 5, "medium": 5, "high": 5, "critical": 10}, "maxCount": 20},
        "database": {"kind": "rds_instance", "instanceId": db,
                "instanceClass": {"low": "db.r5.xlarge", "medium": "db.r5.xlarge", "high": "db.r5.xlarge", "critical": "db.r5.2xlarge"},
                "classLadder": ["db.r5.large", "db.r5.xlarge", "db.r5.2xlarge"]},
    }));
    let function = function_config(env!("CARGO_PKG_NAME")).await;
    let (guard, ledger) = incident_ledger::testing::guard(&setup, &function, GuardSettings::default()).await;
    let action = ScaleUp {
        ecs: aws_sdk_ecs::Client::new(&function).into(),
        autoscaling: aws_sdk_applicationautoscaling::Client::new(&function).into(),
        rds: aws_sdk_rds::Client::new(&function).into(),
        elasticache: aws_sdk_elasticache::Client::new(&function).into(),
        targets: map.clone(),
    };
    let deps = Deps { action, guard };
    let request = |target: &str, priority: &str| {
        action_event(json!({"action": "scale_up", "target": target, "incidentId": "INC-900", "priority": priority}))
    };
    for (target, priority) in [("api", "high"), ("api", "critical"), ("database", "critical")] {
        let answer = response_json(&handler(request(target, priority), &deps).await.unwrap());
        assert_eq!(answer["success"], true, "{answer}");
    }
    assert_eq!((desired_count(&ecs, &api).await, scalable_capacity(&autoscaling, &api).await), (10, (10, 10)));
    assert_eq!(db_class(&rds, &db).await, "db.r5.2xlarge");
    // A human moves the database to another class during the incident.
    rds.modify_db_instance().db_instance_identifier(&db).db_instance_class("db.r5.xlarge").send().await.unwrap();

    // The operator's command from here on, in an IAM world: actions.yaml's LedgerOperatorPolicy.
    let world = shared::testing::iam::IamWorld::of("incident-ledger", "actions.yaml")
        .parameter("TargetCluster", &api.cluster)
        // Scoped to the map's database, as deploy.sh derives it.
        .targets(&json!({"database": {"kind": "rds_instance", "instanceId": db}}))
        .resource("LedgerTable", shared::testing::iam::table_arn(&ledger.table))
        .write();
    let operator = world.config().await;
    let ledger = DynamoLedger { dynamodb: aws_sdk_dynamodb::Client::new(&operator), ..ledger };
    let clients = Clients {
        ecs: aws_sdk_ecs::Client::new(&operator).into(),
        autoscaling: aws_sdk_applicationautoscaling::Client::new(&operator).into(),
        rds: aws_sdk_rds::Client::new(&operator).into(),
        elasticache: aws_sdk_elasticache::Client::new(&operator).into(),
    };
    let context = Context { targets: Some(map), clients: Some(clients) };
    let history = run(&Command::History { incident: "INC-900".into() }, &ledger, &context).await.unwrap();
    let actions: Vec<&str> =
        history["records"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["scale_up", "scale_up", "scale_up"]);
    let restore = |dry_run| Command::Restore { incident: "INC-900".into(), dry_run, now: false };
    let status = |answer: &Value, target: &str| {
        answer["targets"].as_array().unwrap().iter().find(|t| t["target"] == target).unwrap()["status"].clone()
    };
    let dry = run(&restore(true), &ledger, &context).await.unwrap();
    assert_eq!((status(&dry, "api"), status(&dry, "database")), (json!("restore"), json!("changedSince")), "{dry}");
    assert_eq!(desired_count(&ecs, &api).await, 10, "a dry run changes nothing");
    let done = run(&restore(false), &ledger, &context).await.unwrap();
    assert_eq!(status(&done, "api"), json!("restore"), "{done}");
    assert_eq!(desired_count(&ecs, &api).await, 2);
    assert_eq!(scalable_capacity(&autoscaling, &api).await, (2, 6), "the autoscaling floor is back");
    assert_eq!(db_class(&rds, &db).await, "db.r5.xlarge", "what the human chose is left alone");
    let again = run(&restore(true), &ledger, &context).await.unwrap();
    assert_eq!(status(&again, "api"), json!("alreadyRestored"), "{again}");
}
