#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The loop against the emulator: moto's PutMetricAlarm and SetAlarmState drive the alarm, the ECS
//! deployment events come from the fixtures (moto has no rollouts and sends no events), the actions
//! run as their built binaries behind moto's Lambda Invoke, and the clock is the test's, moved on
//! instead of slept.

mod world;

use aws_sdk_cloudwatch::types::StateValue;
use incident_playbook::run::Status;
use incident_playbook::verify::{Expectation, Outcome};
use serde_json::json;
use shared::testing::iam::{IamWorld, table_arn};
use world::{World, set_alarm, world};

fn restart_then_scale() -> serde_json::Value {
    json!([{"action": "restart_service"}, {"action": "scale_up", "priority": "critical", "verifyWithinMinutes": 5}])
}

/// The deployment the restart started, as the pending verification holds it.
async fn restart_deployment(w: &World) -> String {
    match w.run().await.pending.expect("a pending verification").expectation {
        Expectation::EcsDeployment { deployment_id, .. } => deployment_id,
        other => panic!("not a restart's verification: {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_alarm_starts_the_first_step_and_a_verified_fix_pages_no_one() {
    let w = world(restart_then_scale(), &[]).await;
    let answer = w.send(w.alarm_event("ALARM")).await;
    assert_eq!(answer["outcome"], "verifying", "{answer}");
    let run = w.run().await;
    assert_eq!((run.status, run.step), (Status::Verifying, 0), "{:?}", run.evidence_lines());
    let deployment = restart_deployment(&w).await;
    assert!(run.evidence_lines().iter().any(|l| l.contains("restart_service api →")), "{:?}", run.evidence_lines());

    w.advance(6);
    w.deployment("ecs-deployment-completed-LIVE.json", &deployment).await;
    assert_eq!(w.run().await.status, Status::Verifying, "the alarm is still in ALARM: not verified yet");
    set_alarm(&w.setup, &w.alarm, StateValue::Ok).await;
    let answer = w.send(w.alarm_event("OK")).await;
    let run = w.run().await;
    assert_eq!(run.status, Status::Resolved, "{answer}");
    assert_eq!(run.verdicts, [Outcome::Verified]);
    assert_eq!(w.desired().await, 2, "no second step ran");
    assert!(w.pages().await.is_empty(), "a verified fix pages no one");
    let history = w.history().await;
    assert!(history.iter().any(|r| r.outcome == "verified" && r.message.contains("COMPLETED")), "{history:?}");
    assert!(w.deps.store.open().await.unwrap().iter().all(|(i, _)| *i != w.incident()), "the run left the open index");
    let changes = w.deps.store.changes().await.unwrap();
    assert!(changes.iter().all(|c| c.incident_id != w.incident()), "its steps' changes are its run's: {changes:?}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_failed_verdict_runs_the_next_step_and_exhausted_steps_page_once_with_the_evidence() {
    let w = world(restart_then_scale(), &[]).await;
    w.send(w.alarm_event("ALARM")).await;
    let deployment = restart_deployment(&w).await;
    w.advance(9);
    w.deployment("ecs-deployment-failed-LIVE.json", &deployment).await;
    let run = w.run().await;
    assert_eq!((run.status, run.step, run.verdicts.as_slice()), (Status::Verifying, 1, [Outcome::Failed].as_slice()));
    assert_eq!(w.desired().await, 6, "scale_up at critical ran");

    w.advance(3);
    w.sweep().await;
    assert_eq!(
        w.run().await.status,
        Status::Verifying,
        "running reached 6, but the alarm is still ALARM inside the window"
    );
    w.advance(3);
    w.sweep().await;
    w.sweep().await;
    w.send(w.alarm_event("ALARM")).await;
    let run = w.run().await;
    assert_eq!(run.status, Status::Paged, "{:?}", run.evidence_lines());
    assert_eq!(run.verdicts, [Outcome::Failed, Outcome::Failed]);
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1, "exactly one page: {pages:?}");
    let body = pages[0]["Message"].as_str().unwrap();
    for seen in
        ["restart_service api", "FAILED: ECS deployment circuit breaker", "scale_up api", "symptom stayed", &w.alarm]
    {
        assert!(body.contains(seen), "the page lacks {seen:?}:\n{body}");
    }
    assert!(w.pages().await.is_empty(), "no second page");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_redelivered_alarm_acts_once() {
    let w = world(restart_then_scale(), &[]).await;
    w.send(w.alarm_event("ALARM")).await;
    let first = restart_deployment(&w).await;
    let again = w.send(w.alarm_event("ALARM")).await;
    assert_eq!(again["outcome"], "already started", "{again}");
    let bridged = {
        let direct = w.alarm_event("ALARM");
        json!({"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "detail": direct["alarmData"]})
    };
    assert_eq!(w.send(bridged).await["outcome"], "already started");
    assert_eq!(restart_deployment(&w).await, first, "one restart");
    let open = w.deps.store.open().await.unwrap();
    assert_eq!(open.iter().filter(|(i, _)| *i == w.incident()).count(), 1, "still open, once");
    assert_eq!(w.history().await.iter().filter(|r| r.action == "restart_service").count(), 1);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_suppressed_alarm_an_alarm_already_ok_and_an_unmapped_alarm_do_nothing() {
    let w = world(restart_then_scale(), &[]).await;
    let mut suppressed = w.alarm_event("ALARM");
    suppressed["alarmData"]["state"]["actionsSuppressedBy"] = json!("Alarm");
    assert_eq!(w.send(suppressed).await["outcome"], "suppressed");
    assert!(w.deps.store.load(&w.incident()).await.unwrap().is_none(), "no run");
    assert!(w.history().await.iter().any(|r| r.outcome == "skipped"), "recorded");

    set_alarm(&w.setup, &w.alarm, StateValue::Ok).await;
    let answer = w.send(w.alarm_event("ALARM")).await;
    assert_eq!(answer["outcome"], "recovered", "{answer}");
    assert_eq!(w.history().await.iter().filter(|r| r.action == "restart_service").count(), 0, "no step, no budget");

    let mut unmapped = w.alarm_event("ALARM");
    unmapped["alarmData"]["alarmName"] = json!("nobody-maps-this");
    let err = incident_playbook::handler(shared::testing::action_event(unmapped), &w.deps).await.unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(err.to_string().contains("maps to no playbook"), "{err}");
    assert!(w.pages().await.is_empty());
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_sweep_and_an_event_racing_on_one_verification_act_once() {
    let w = world(restart_then_scale(), &[]).await;
    w.send(w.alarm_event("ALARM")).await;
    let deployment = restart_deployment(&w).await;
    w.advance(11);
    let (a, b) = tokio::join!(w.sweep(), w.deployment("ecs-deployment-failed-LIVE.json", &deployment));
    let run = w.run().await;
    assert_eq!(run.verdicts.len(), 1, "one verdict: {a} {b}");
    assert_eq!(run.step, 1);
    let scale_ups = w.history().await.iter().filter(|r| r.action == "scale_up").count();
    assert_eq!(scale_ups, 1, "the next step ran once");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_pause_holds_every_step_and_the_page_still_goes_out() {
    let w = world(restart_then_scale(), &[]).await;
    w.deps.ledger.pause(Some("api"), "oncall@example.com", "investigating").await.unwrap();
    w.send(w.alarm_event("ALARM")).await;
    let run = w.run().await;
    assert_eq!(run.status, Status::Paged, "{:?}", run.evidence_lines());
    let lines = run.evidence_lines().join("\n");
    assert_eq!(lines.matches("not applied (423)").count(), 2, "each step met the pause:\n{lines}");
    assert_eq!(w.desired().await, 2, "nothing changed");
    assert_eq!(w.pages().await.len(), 1);
    let changes = w.deps.store.changes().await.unwrap();
    assert!(changes.iter().all(|c| c.incident_id != w.incident()), "a page is not a change to verify: {changes:?}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_spent_budget_holds_the_next_step() {
    let w = world(restart_then_scale(), &[("BUDGET_PER_TARGET", "1/3600")]).await;
    w.send(w.alarm_event("ALARM")).await;
    let deployment = restart_deployment(&w).await;
    w.deployment("ecs-deployment-failed-LIVE.json", &deployment).await;
    let run = w.run().await;
    assert_eq!(run.status, Status::Paged, "{:?}", run.evidence_lines());
    assert!(
        run.evidence_lines().iter().any(|l| l.contains("scale_up api → not applied (429)")),
        "{:?}",
        run.evidence_lines()
    );
    assert_eq!(w.desired().await, 2, "the budget held scale_up back");
    assert_eq!(w.pages().await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_the_loop_under_its_role() {
    let mut w = world(restart_then_scale(), &[]).await;
    let f = w.deps.functions.clone();
    let world = IamWorld::of(env!("CARGO_PKG_NAME"), "actions.yaml")
        .parameter("TargetCluster", &w.api.cluster)
        .resource("LedgerTable", table_arn(&w.table))
        .resource("RestartServiceFunction", &f.restart_service)
        .resource("ScaleUpFunction", &f.scale_up)
        .resource("ClearCacheFunction", &f.clear_cache)
        .resource("NotifyHumanFunction", &f.notify_human)
        .untouchable("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:123456789012:function:another-teams-function")
        .untouchable(
            "ecs:DescribeServices",
            format!("arn:aws:ecs:us-east-1:123456789012:service/{}-other/api", w.api.cluster),
        )
        .write();
    let clock = w.deps.clock.clone();
    w.deps = world::deps_on(&world.config().await, &w.targets, f, &w.table);
    w.deps.clock = clock;
    w.send(w.alarm_event("ALARM")).await;
    let deployment = restart_deployment(&w).await;
    w.deployment("ecs-deployment-failed-LIVE.json", &deployment).await;
    w.advance(10);
    w.sweep().await;
    assert_eq!(w.run().await.status, Status::Paged, "{:?}", w.run().await.evidence_lines());
    assert_eq!(w.pages().await.len(), 1);
}

/// What the backend does: invokes an action by ARN, outside any playbook.
async fn backend_invokes(w: &World, function: &str, action: &str, incident: &str) -> serde_json::Value {
    let request = json!({"action": action, "target": "api", "incidentId": incident, "priority": "critical"});
    incident_playbook::invoke::invoke(&w.deps.lambda, function, &request).await.unwrap()
}

async fn verdicts(w: &World, incident: &str) -> Vec<(String, String)> {
    let history = w.deps.ledger.history(incident).await.unwrap();
    history.into_iter().filter(|r| r.action == "verify").map(|r| (r.outcome, r.message)).collect()
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_backends_changes_are_verified_too_and_their_verdicts_recorded_once() {
    let w = world(restart_then_scale(), &[]).await;
    let restart = backend_invokes(&w, &w.deps.functions.restart_service.clone(), "restart_service", "INC-700").await;
    assert_eq!(restart["success"], true, "{restart}");
    let deployment = restart["details"]["after"]["deploymentId"].as_str().unwrap().to_owned();
    let pending = w.deps.store.changes().await.unwrap();
    assert!(pending.iter().any(|c| c.incident_id == "INC-700" && c.action == "restart_service"), "{pending:?}");
    w.sweep().await;
    assert!(verdicts(&w, "INC-700").await.is_empty(), "moto's rollout is still in progress: no verdict yet");
    w.deployment("ecs-deployment-failed-LIVE.json", &deployment).await;
    w.deployment("ecs-deployment-failed-LIVE.json", &deployment).await;
    let recorded = verdicts(&w, "INC-700").await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].0, "failed");
    assert!(
        recorded[0].1.starts_with("restart_service api: deployment") && recorded[0].1.contains("FAILED"),
        "{recorded:?}"
    );

    let scale = backend_invokes(&w, &w.deps.functions.scale_up.clone(), "scale_up", "INC-701").await;
    assert_eq!(scale["success"], true, "{scale}");
    let (a, b) = tokio::join!(w.sweep(), w.sweep());
    let recorded = verdicts(&w, "INC-701").await;
    assert_eq!(recorded.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>(), ["verified"], "{recorded:?} {a} {b}");
    assert!(w.deps.store.changes().await.unwrap().iter().all(|c| !c.incident_id.starts_with("INC-70")), "taken out");
    assert!(w.pages().await.is_empty(), "a verdict on the backend's change is recorded, not paged");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn insufficient_data_is_not_recovery_and_a_late_ok_says_nothing_about_a_newer_run() {
    let w = world(restart_then_scale(), &[]).await;
    // A service whose tasks all died reports nothing: its alarm goes to INSUFFICIENT_DATA.
    set_alarm(&w.setup, &w.alarm, StateValue::InsufficientData).await;
    let answer = w.send(w.alarm_event("ALARM")).await;
    assert_eq!(answer["outcome"], "verifying", "the step ran: {answer}");
    let deployment = restart_deployment(&w).await;
    w.deployment("ecs-deployment-completed-LIVE.json", &deployment).await;
    assert_eq!(w.run().await.status, Status::Verifying, "the restart worked; the alarm has not recovered");
    let mut late_ok = w.alarm_event("OK");
    late_ok["alarmData"]["state"]["timestamp"] = json!("2026-12-05T02:10:00.000+0000");
    w.send(late_ok).await;
    let run = w.run().await;
    assert_eq!(
        run.status,
        Status::Verifying,
        "an OK from before this ALARM verifies nothing: {:?}",
        run.evidence_lines()
    );
}
