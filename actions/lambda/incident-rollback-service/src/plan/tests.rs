use std::time::Duration;

use aws_sdk_ecs::types::ServiceDeploymentStatus;
use incident_core::config::PerPriority;
use incident_deployments::Primary;

use super::*;

const TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/";

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap_or_default()
}

fn target(unattended: bool) -> EcsServiceTarget {
    EcsServiceTarget {
        cluster: "production".into(),
        service: "api".into(),
        desired_count: PerPriority { low: 2, medium: 2, high: 3, critical: 4 },
        max_count: 6,
        rollback_unattended: unattended,
    }
}

fn revision(td: &str, running: i32) -> Revision {
    Revision {
        arn: format!("arn:aws:ecs:us-east-1:123456789012:service-revision/production/api/{td}"),
        task_definition: Some(format!("{TD}{td}")),
        running_tasks: running,
    }
}

fn deployment(id: &str, from: &str, to: &str, minute: i64, status: ServiceDeploymentStatus) -> Deployment {
    Deployment {
        arn: format!("arn:aws:ecs:us-east-1:123456789012:service-deployment/production/api/{id}"),
        status,
        created_at: at(minute),
        sources: vec![revision(from, 3)],
        target: Some(revision(to, 0)),
    }
}

fn recent(current: &str, deployments: Vec<Deployment>) -> Recent {
    Recent {
        cluster: "production".into(),
        service: "api".into(),
        horizon: Duration::from_secs(7200),
        task_definition: Some(format!("{TD}{current}")),
        primary: Some(Primary {
            id: "ecs-svc/42".into(),
            created_at: Some(at(0)),
            task_definition: Some(format!("{TD}{current}")),
        }),
        deployments,
    }
}

fn planned(plan: &RollbackPlan) -> serde_json::Value {
    serde_json::to_value(plan.planned_calls()).unwrap_or_default()
}

#[test]
fn a_completed_deployment_is_rolled_back_to_the_task_definition_that_served_before_it() {
    let r = recent("api:42", vec![deployment("d42", "api:41", "api:42", 0, ServiceDeploymentStatus::Successful)]);
    let plan = rollback(&r, &target(false), at(11)).unwrap();
    assert_eq!(
        planned(&plan),
        serde_json::json!([{"call": "ECS UpdateService", "params":
            {"cluster": "production", "service": "api", "taskDefinition": format!("{TD}api:41")}}])
    );
    assert_eq!(plan.details.from_revision.task_definition.as_deref(), Some(&*format!("{TD}api:41")));
    assert_eq!(plan.details.to_revision.as_ref().and_then(|r| r.task_definition.clone()), Some(format!("{TD}api:42")));
    assert!(plan.intent.contains("api:41 → api:42") && plan.intent.contains("d42"), "{}", plan.intent);
    assert!(approval_needed(&plan, &target(false)).is_some(), "a human approves code going back");
    assert_eq!(approval_needed(&plan, &target(true)), None, "unless the target allows it unattended");
}

/// The trap of "revision − 1": api:49 was registered but never served (another bad build); the one
/// that served is the deployment's source.
#[test]
fn the_source_revision_is_taken_not_the_previous_task_definition_number() {
    let d = deployment("d50", "api:37", "api:50", 0, ServiceDeploymentStatus::Successful);
    let plan = rollback(&recent("api:50", vec![d]), &target(true), at(5)).unwrap();
    assert_eq!(planned(&plan)[0]["params"]["taskDefinition"], format!("{TD}api:37"), "the one that was serving");
}

/// A deployment that started while another was still rolling out had two revisions serving, and
/// ECS's running counts of a finished deployment's sources no longer say which: a human decides.
#[test]
fn a_deployment_started_over_another_is_not_guessed() {
    let mut d = deployment("d50", "api:37", "api:50", 0, ServiceDeploymentStatus::Successful);
    d.sources.push(revision("api:49", 0));
    let err = rollback(&recent("api:50", vec![d]), &target(true), at(5)).unwrap_err();
    assert!(err.to_string().contains("api:37, api:49 were all serving"), "{err}");
}

/// A status none of the above (added to ECS since, or missing) is never read as one to act on.
#[test]
fn an_unknown_status_is_refused() {
    let d = deployment("d42", "api:41", "api:42", 0, "SOMETHING_NEW".into());
    let err = rollback(&recent("api:42", vec![d]), &target(true), at(5)).unwrap_err();
    assert!(err.to_string().contains("a status this function does not know (SOMETHING_NEW)"), "{err}");
}

/// A human's rollback whose bad deployment is older than the horizon: the older revision gives it away.
#[test]
fn a_rollback_whose_deployment_is_past_the_horizon_is_not_rolled_back() {
    let human = deployment("human", "api:42", "api:41", 30, ServiceDeploymentStatus::InProgress);
    let err = rollback(&recent("api:41", vec![human]), &target(false), at(31)).unwrap_err();
    assert!(err.to_string().contains("already went back"), "{err}");
}

#[test]
fn a_deployment_still_rolling_out_is_stopped_with_rollback_without_approval() {
    let r = recent("api:42", vec![deployment("d42", "api:41", "api:42", 0, ServiceDeploymentStatus::InProgress)]);
    let plan = rollback(&r, &target(false), at(3)).unwrap();
    assert_eq!(
        planned(&plan),
        serde_json::json!([{"call": "ECS StopServiceDeployment", "params": {
            "serviceDeploymentArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/production/api/d42",
            "stopType": "ROLLBACK"}}])
    );
    assert_eq!(approval_needed(&plan, &target(false)), None);
    let permission = plan.changes[0].permission().unwrap();
    assert!(permission.resource.ends_with(":service-deployment/production/api/d42"), "{}", permission.resource);
}

#[test]
fn nothing_within_the_horizon_is_a_409_naming_the_last_deployment_and_its_age() {
    let err = rollback(&recent("api:41", vec![]), &target(true), at(185)).unwrap_err();
    assert_eq!(err.status(), 409);
    let text = err.to_string();
    for part in ["nothing recent to roll back", "ecs-svc/42", "api:41", "3 h 5 min ago", "120 min", "look elsewhere"] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    let mut none = recent("api:41", vec![]);
    none.primary = None;
    assert!(rollback(&none, &target(true), at(1)).unwrap_err().to_string().contains("lists no deployment"));
}

#[test]
fn a_service_already_on_the_earlier_task_definition_is_no_change() {
    let r =
        recent("api:41", vec![deployment("d42", "api:41", "api:42", 0, ServiceDeploymentStatus::RollbackSuccessful)]);
    let plan = rollback(&r, &target(true), at(5)).unwrap();
    assert!(plan.changes.is_empty());
    assert!(
        plan.no_change.starts_with("No change: ECS service production/api already runs api:41"),
        "{}",
        plan.no_change
    );
}

/// Rolling back a rollback would redeploy the bad build: a return to an earlier revision is refused,
/// whether it is still rolling out or done.
#[test]
fn a_rollback_is_never_rolled_back() {
    let bad = deployment("bad", "api:41", "api:42", 0, ServiceDeploymentStatus::Successful);
    for status in [ServiceDeploymentStatus::Successful, ServiceDeploymentStatus::InProgress] {
        let back = deployment("back", "api:42", "api:41", 10, status);
        let err = rollback(&recent("api:41", vec![back, bad.clone()]), &target(true), at(12)).unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(err.to_string().contains("already went back"), "{err}");
    }
    // Two rollbacks that ran at once: the second went from the bad build (still serving when it
    // started) to the good one too, and the one before it is the first rollback, not the bad build.
    let first = deployment("back1", "api:42", "api:41", 10, ServiceDeploymentStatus::Successful);
    let second = deployment("back2", "api:42", "api:41", 10, ServiceDeploymentStatus::Successful);
    let err = rollback(&recent("api:41", vec![second, first, bad.clone()]), &target(true), at(12)).unwrap_err();
    assert!(err.to_string().contains("already went back"), "{err}");
    let stopping = deployment("d42", "api:41", "api:42", 0, ServiceDeploymentStatus::RollbackInProgress);
    let err = rollback(&recent("api:42", vec![stopping]), &target(true), at(2)).unwrap_err();
    assert!(err.to_string().contains("already ROLLBACK_IN_PROGRESS"), "{err}");
}

#[test]
fn a_deployment_without_a_known_source_is_not_guessed() {
    let mut first = deployment("d1", "api:1", "api:2", 0, ServiceDeploymentStatus::Successful);
    first.sources[0].task_definition = None;
    let err = rollback(&recent("api:2", vec![first]), &target(true), at(1)).unwrap_err();
    assert!(err.to_string().contains("roll back by hand"), "{err}");
}

#[test]
fn the_answer_names_the_new_deployment_for_verification() {
    let r = recent("api:42", vec![deployment("d42", "api:41", "api:42", 0, ServiceDeploymentStatus::Successful)]);
    let plan = rollback(&r, &target(true), at(1)).unwrap();
    let applied = rolled_back(&plan, Some(("ecs-svc/77".into(), Some(format!("{TD}api:41")))));
    assert_eq!(
        applied.after,
        State::EcsDeployment { deployment_id: Some("ecs-svc/77".into()), task_definition: Some(format!("{TD}api:41")) }
    );
    assert!(applied.message.ends_with("new deployment ecs-svc/77"), "{}", applied.message);
    assert_eq!(applied.details.new_deployment_id.as_deref(), Some("ecs-svc/77"));
}

/// The playbook's restart after a bad deployment (same task definition) is not what is rolled back:
/// without this, the rollback would see the restart as the last deployment and find nothing to do.
#[test]
fn a_restart_after_the_bad_deployment_does_not_hide_it() {
    let bad = deployment("d42", "api:41", "api:42", 0, ServiceDeploymentStatus::Successful);
    let restart = deployment("restart", "api:42", "api:42", 5, ServiceDeploymentStatus::InProgress);
    let plan = rollback(&recent("api:42", vec![restart, bad]), &target(true), at(6)).unwrap();
    assert_eq!(planned(&plan)[0]["call"], "ECS UpdateService");
    assert_eq!(planned(&plan)[0]["params"]["taskDefinition"], format!("{TD}api:41"));
    assert_eq!(plan.details.deployment_id, "d42");
}
