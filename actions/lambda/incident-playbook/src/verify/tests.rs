use chrono::{Duration, TimeZone};
use incident_core::config::TargetConfig;

use super::*;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 2, minute, 0).unwrap()
}

const DEADLINE: u32 = 30;

fn verdict(seen: Seen, alarm: Option<AlarmState>, minute: u32) -> Option<(Outcome, String)> {
    judge(&seen, alarm.map(|s| ("api-5xx", s)), at(minute), at(DEADLINE)).map(|v| (v.outcome, v.evidence))
}

#[test]
fn a_fix_is_verified_only_when_the_resource_shows_it_and_the_alarm_is_ok() {
    let done = || Seen::Done("deployment d COMPLETED".into());
    assert_eq!(verdict(done(), Some(AlarmState::Ok), 10).unwrap().0, Outcome::Verified);
    assert_eq!(verdict(done(), None, 10).unwrap().0, Outcome::Verified, "no alarm started it");
    assert_eq!(verdict(done(), Some(AlarmState::Alarm), 10), None, "the alarm may still recover");
}

#[test]
fn the_restart_worked_and_the_symptom_did_not_is_a_failure() {
    let (outcome, evidence) =
        verdict(Seen::Done("deployment d COMPLETED".into()), Some(AlarmState::Alarm), DEADLINE).unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert!(evidence.contains("symptom stayed") && evidence.contains("alarm api-5xx ALARM"), "{evidence}");
}

#[test]
fn a_failed_rollout_fails_at_once_and_an_undecided_one_is_inconclusive_at_the_deadline() {
    let failed = verdict(Seen::Failed("deployment d FAILED: circuit breaker".into()), Some(AlarmState::Alarm), 1);
    assert_eq!(failed.unwrap().0, Outcome::Failed);
    let pending = || Seen::Pending("deployment d IN_PROGRESS".into());
    assert_eq!(verdict(pending(), Some(AlarmState::Alarm), DEADLINE - 1), None);
    let (outcome, evidence) = verdict(pending(), Some(AlarmState::Alarm), DEADLINE).unwrap();
    assert_eq!(outcome, Outcome::Inconclusive);
    assert!(evidence.contains("when the window closed"), "{evidence}");
    assert_eq!(verdict(pending(), Some(AlarmState::Ok), DEADLINE).unwrap().0, Outcome::Inconclusive);
    let _ = Duration::zero();
}

#[test]
fn what_success_looks_like_comes_from_the_typed_state_the_action_left() {
    let targets = TargetConfig::parse(include_str!("../../../../../fixtures/targets.json"), "fixtures").unwrap();
    let api = targets.get("api").unwrap();
    let restarted = State::EcsDeployment { deployment_id: Some("ecs-svc/9".into()), task_definition: None };
    assert_eq!(
        Expectation::of(api, &restarted),
        Expectation::EcsDeployment {
            cluster: "production".into(),
            service: "production-api-service".into(),
            deployment_id: "ecs-svc/9".into()
        }
    );
    // A rollout stopped with rollback: ECS brings the earlier task definition back in that deployment.
    let stopped = State::EcsDeployment { deployment_id: None, task_definition: Some("api:41".into()) };
    assert!(matches!(
        Expectation::of(api, &stopped),
        Expectation::EcsTaskDefinition { ref task_definition, .. } if task_definition == "api:41"
    ));
    let scaled = State::EcsService { desired_count: 10, autoscaling: None };
    assert!(matches!(Expectation::of(api, &scaled), Expectation::EcsRunning { count: 10, .. }));
    let db = State::RdsInstance { instance_class: "db.r5.2xlarge".into() };
    assert!(matches!(Expectation::of(targets.get("database").unwrap(), &db), Expectation::RdsClass { .. }));
    let node = State::CacheNodeType { cache_node_type: "cache.r6g.xlarge".into() };
    assert!(matches!(
        Expectation::of(targets.get("cache").unwrap(), &node),
        Expectation::CacheNodeType { ref replication_group_id, .. } if replication_group_id == "production-cache"
    ));
    let keys = State::Redis { keys: 0 };
    assert_eq!(Expectation::of(targets.get("sessions").unwrap(), &keys), Expectation::Immediate);
    let hosts = State::Ec2Instances { instances: Default::default() };
    assert!(matches!(Expectation::of(targets.get("web-hosts").unwrap(), &hosts), Expectation::Ec2Status { .. }));
}
