use incident_core::config::Target;
use serde_json::json;

use super::*;
use crate::DEFAULT_COOLDOWN;

fn deployment(status: &str, rollout: Option<&str>, age_secs: i64, now: DateTime<Utc>) -> DeploymentView {
    DeploymentView {
        id: format!("ecs-svc/{status}"),
        status: status.into(),
        rollout_state: rollout.map(DeploymentRolloutState::from),
        created_at: Some(now - chrono::Duration::seconds(age_secs)),
        desired: 2,
        running: 2,
    }
}

#[test]
fn a_young_rollout_blocks_a_restart() {
    let now = Utc::now();
    let d = [deployment("PRIMARY", Some("IN_PROGRESS"), 60, now)];
    assert_eq!(rollout_in_progress(&d, now, DEFAULT_COOLDOWN).map(|d| d.id.as_str()), Some("ecs-svc/PRIMARY"));
}

#[test]
fn a_finished_or_old_rollout_does_not() {
    let now = Utc::now();
    let one = |status, rollout, age, cooldown| {
        rollout_in_progress(&[deployment(status, rollout, age, now)], now, cooldown).is_none()
    };
    assert!(one("PRIMARY", Some("COMPLETED"), 60, DEFAULT_COOLDOWN));
    assert!(one("PRIMARY", Some("IN_PROGRESS"), 301, DEFAULT_COOLDOWN));
    assert!(one("PRIMARY", Some("IN_PROGRESS"), 1, Duration::ZERO));
    assert!(rollout_in_progress(&[], now, DEFAULT_COOLDOWN).is_none());
    let started_after_now = deployment("PRIMARY", Some("IN_PROGRESS"), -2, now);
    assert!(
        rollout_in_progress(std::slice::from_ref(&started_after_now), now, Duration::ZERO).is_none(),
        "0 turns the guard off"
    );
    assert!(rollout_in_progress(&[started_after_now], now, DEFAULT_COOLDOWN).is_some());
}

#[test]
fn without_rollout_state_an_active_old_deployment_means_rolling_out() {
    let now = Utc::now();
    let d = [deployment("PRIMARY", None, 30, now), deployment("ACTIVE", None, 900, now)];
    assert!(rollout_in_progress(&d, now, DEFAULT_COOLDOWN).is_some());
    let d = [deployment("PRIMARY", None, 30, now)];
    assert!(rollout_in_progress(&d, now, DEFAULT_COOLDOWN).is_none());
}

#[test]
fn only_running_instances_are_rebooted() {
    let states = [
        ("i-1".to_owned(), "running".to_owned()),
        ("i-2".to_owned(), "stopped".to_owned()),
        ("i-3".to_owned(), "running".to_owned()),
    ];
    let (running, skipped) = split_running(&states);
    assert_eq!(running, ["i-1", "i-3"]);
    assert_eq!(json!(skipped), json!([{"instanceId": "i-2", "state": "stopped"}]));
}

fn target() -> EcsServiceTarget {
    let config =
        incident_core::testing::targets(json!({"api": {"kind": "ecs_service", "cluster": "prod", "service": "api",
        "desiredCount": {"low": 2, "medium": 2, "high": 3, "critical": 4}, "maxCount": 6}}));
    match config.get("api").unwrap() {
        Target::EcsService(target) => target.clone(),
        _ => unreachable!("an ecs_service target"),
    }
}

#[test]
fn a_quiet_service_is_restarted_with_one_update() {
    let now = Utc::now();
    let observed = EcsObserved {
        deployments: vec![deployment("PRIMARY", Some("COMPLETED"), 3_600, now)],
        task_definition: Some("td:1".into()),
    };
    let plan = ecs(&observed, &target(), now, DEFAULT_COOLDOWN).unwrap();
    let restart =
        RestartChange::ForceNewDeployment { cluster: "prod".into(), service: "api".into(), force_new_deployment: true };
    assert_eq!(plan.changes, [restart]);
    assert_eq!(plan.before, deployment_state(Some("ecs-svc/PRIMARY"), Some("td:1")));
}

#[test]
fn a_cooldown_needs_the_ledger_that_keeps_the_claims() {
    let guard = incident_core::guard::Guard::default();
    assert!(crate::check_claims(Duration::ZERO, &guard).is_ok());
    let err = crate::check_claims(DEFAULT_COOLDOWN, &guard).unwrap_err().to_string();
    assert!(err.contains("RESTART_COOLDOWN_SECONDS") && err.contains("LEDGER_TABLE"), "{err}");
}

#[test]
fn no_running_instance_is_a_conflict() {
    let target = Ec2InstancesTarget { instance_ids: vec!["i-1".into()] };
    let err = ec2(&[("i-1".into(), "stopped".into())], &target).unwrap_err();
    assert_eq!(err.status(), 409);
}

#[test]
fn without_rollout_state_a_primary_missing_tasks_is_rolling_out() {
    let now = Utc::now();
    let mut primary = deployment("PRIMARY", None, 30, now);
    primary.running = 1;
    assert!(rollout_in_progress(&[primary], now, DEFAULT_COOLDOWN).is_some(), "1 of 2 tasks running");
}

#[test]
fn the_answer_names_the_new_primary_deployment_and_the_one_it_replaced() {
    let now = Utc::now();
    let observed = EcsObserved {
        deployments: vec![deployment("PRIMARY", Some("COMPLETED"), 3_600, now)],
        task_definition: Some("td:1".into()),
    };
    let plan = ecs(&observed, &target(), now, DEFAULT_COOLDOWN).unwrap();
    let updated = aws_sdk_ecs::types::Service::builder()
        .deployments(Deployment::builder().id("ecs-svc/old").status("ACTIVE").build())
        .deployments(Deployment::builder().id("ecs-svc/new").status("PRIMARY").build())
        .task_definition("td:1")
        .build();
    let applied = restarted(&plan, &updated);
    assert!(applied.message.ends_with("new deployment ecs-svc/new"), "{}", applied.message);
    assert_eq!(
        json!(applied.details),
        json!({"cluster": "prod", "service": "api", "deploymentId": "ecs-svc/new",
               "previousDeploymentId": "ecs-svc/PRIMARY", "taskDefinition": "td:1"})
    );
}

#[test]
fn each_change_names_its_call_and_the_permission_it_needs() {
    let update =
        RestartChange::ForceNewDeployment { cluster: "prod".into(), service: "api".into(), force_new_deployment: true };
    assert_eq!(update.call(), "ECS UpdateService");
    let permission = update.permission().unwrap();
    assert_eq!((permission.action, permission.resource.ends_with(":service/prod/api")), ("ecs:UpdateService", true));
    let reboot = RestartChange::RebootInstances { instance_ids: vec!["i-1".into(), "i-2".into()] };
    assert_eq!(reboot.call(), "EC2 RebootInstances");
    let permission = reboot.permission().unwrap();
    assert_eq!((permission.action, permission.resource.ends_with(":instance/i-1")), ("ec2:RebootInstances", true));
}
