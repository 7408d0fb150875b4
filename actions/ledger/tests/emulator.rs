#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-ledger against the emulator: an incident's actions, the history, and the restore after
//! it, with one resource changed by hand in between.

use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use incident_ledger::{Command, run};
use serde_json::{Value, json};
use shared::ledger::{Ledger, LedgerSettings};
use shared::plan::PlanPolicy;
use shared::testing::scaling::{create_db, scalable_capacity};
use shared::testing::{
    action_event, create_service, desired_count, emulator_config, function_config, response_json, targets,
};

async fn db_class(rds: &aws_sdk_rds::Client, id: &str) -> String {
    let out = rds.describe_db_instances().db_instance_identifier(id).send().await.unwrap();
    out.db_instances()[0].db_instance_class().unwrap().to_owned()
}

#[tokio::test]
async fn iam_world_after_the_incident_restore_puts_back_what_automation_scaled_and_leaves_what_a_human_changed() {
    shared::require_emulator!();
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
    let function = function_config("incident-scale-up").await;
    let ledger = shared::testing::ledger::ledger(&setup, &function, LedgerSettings::default()).await;
    let plans = PlanPolicy::default().with_ledger(ledger.clone());
    let scale = incident_scale_up::Deps {
        ecs: aws_sdk_ecs::Client::new(&function).into(),
        autoscaling: aws_sdk_applicationautoscaling::Client::new(&function).into(),
        rds: aws_sdk_rds::Client::new(&function).into(),
        elasticache: aws_sdk_elasticache::Client::new(&function).into(),
        targets: map.clone(),
        plans: plans.clone(),
    };
    let restart = incident_restart_service::Deps {
        ecs: aws_sdk_ecs::Client::new(&function).into(),
        ec2: aws_sdk_ec2::Client::new(&function).into(),
        targets: map.clone(),
        cooldown: Duration::ZERO,
        claims: None,
        plans,
    };
    let request = |action: &str, target: &str, priority: &str| {
        action_event(json!({"action": action, "target": target, "incidentId": "INC-900", "priority": priority}))
    };
    // The incident: a restart, then scale-ups of the service (twice) and of the database.
    let restarted = response_json(
        &incident_restart_service::handler(request("restart_service", "api", "high"), &restart).await.unwrap(),
    );
    assert_eq!(restarted["success"], true, "{restarted}");
    for (target, priority) in [("api", "high"), ("api", "critical"), ("database", "critical")] {
        let answer =
            response_json(&incident_scale_up::handler(request("scale_up", target, priority), &scale).await.unwrap());
        assert_eq!(answer["success"], true, "{answer}");
    }
    assert_eq!((desired_count(&ecs, &api).await, scalable_capacity(&autoscaling, &api).await), (10, (10, 10)));
    assert_eq!(db_class(&rds, &db).await, "db.r5.2xlarge");
    // A human moves the database to another class during the incident.
    rds.modify_db_instance().db_instance_identifier(&db).db_instance_class("db.r5.xlarge").send().await.unwrap();

    let history = run(&Command::History { incident: "INC-900".into() }, &ledger, None).await.unwrap();
    let actions: Vec<&str> =
        history["records"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["restart_service", "scale_up", "scale_up", "scale_up"]);

    // The operator's command from here on, in an IAM world: actions.yaml's LedgerOperatorPolicy.
    let world = shared::testing::iam::IamWorld::of(env!("CARGO_PKG_NAME"), "actions.yaml")
        .parameter("TargetCluster", &api.cluster)
        .resource("LedgerTable", shared::testing::iam::table_arn(&ledger.table))
        .write();
    let operator = world.config().await;
    let ledger = Ledger { dynamodb: aws_sdk_dynamodb::Client::new(&operator), ..ledger };
    let scale = incident_scale_up::Deps {
        ecs: aws_sdk_ecs::Client::new(&operator).into(),
        autoscaling: aws_sdk_applicationautoscaling::Client::new(&operator).into(),
        rds: aws_sdk_rds::Client::new(&operator).into(),
        elasticache: aws_sdk_elasticache::Client::new(&operator).into(),
        ..scale
    };
    let dry =
        run(&Command::Restore { incident: "INC-900".into(), dry_run: true }, &ledger, Some(&scale)).await.unwrap();
    let status = |answer: &Value, target: &str| {
        answer["targets"].as_array().unwrap().iter().find(|t| t["target"] == target).unwrap()["status"].clone()
    };
    assert_eq!((status(&dry, "api"), status(&dry, "database")), (json!("restore"), json!("changedSince")), "{dry}");
    assert_eq!(desired_count(&ecs, &api).await, 10, "a dry run changes nothing");

    let done =
        run(&Command::Restore { incident: "INC-900".into(), dry_run: false }, &ledger, Some(&scale)).await.unwrap();
    assert_eq!(status(&done, "api"), json!("restore"), "{done}");
    assert_eq!(desired_count(&ecs, &api).await, 2);
    assert_eq!(scalable_capacity(&autoscaling, &api).await, (2, 6), "the autoscaling floor is back");
    assert_eq!(db_class(&rds, &db).await, "db.r5.xlarge", "what the human chose is left alone");
    let records = ledger.history("INC-900").await.unwrap();
    let last = records.last().unwrap();
    assert_eq!((last.action.as_str(), last.target.as_str(), last.outcome.as_str()), ("restore", "api", "success"));
    assert_eq!((last.before.clone(), last.after.clone()), (json!({"desiredCount": 10}), json!({"desiredCount": 2})));

    // Restoring again finds it done.
    let again =
        run(&Command::Restore { incident: "INC-900".into(), dry_run: true }, &ledger, Some(&scale)).await.unwrap();
    assert_eq!(status(&again, "api"), json!("alreadyRestored"), "{again}");
}

/// Pause and resume through the command, as an operator runs them.
#[tokio::test]
async fn pause_and_resume_answer_what_they_did() {
    shared::require_emulator!();
    let setup = emulator_config().await;
    let ledger: Ledger = shared::testing::ledger::ledger(&setup, &setup, LedgerSettings::default()).await;
    let paused = run(
        &Command::Pause { target: Some("api".into()), by: "alice".into(), reason: "taking over".into() },
        &ledger,
        None,
    )
    .await
    .unwrap();
    assert_eq!((paused["paused"].as_str(), paused["by"].as_str()), (Some("api"), Some("alice")));
    let resumed = run(&Command::Resume { target: Some("api".into()) }, &ledger, None).await.unwrap();
    assert_eq!(resumed, json!({"resumed": "api", "wasPaused": true}));
    let again = run(&Command::Resume { target: Some("api".into()) }, &ledger, None).await.unwrap();
    assert_eq!(again["wasPaused"], false);
}
