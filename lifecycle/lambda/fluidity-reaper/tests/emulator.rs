#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The original reaper's own test plan, against the emulator with real metrics: ECS, ELBv2, SSM and
//! CloudWatch in moto (which speaks CloudWatch's RPC v2 CBOR itself), the deployer being the real
//! `fluidity-mark-deployment` code, and each task's ShutdownReady being the drain watcher's own EMF
//! line, turned into datapoints as CloudWatch Logs does. Shared listener rules, target groups,
//! rollbacks and shared clusters are in `resources.rs`; the world both run in is `world/`.
//!
//! Where that plan waits minutes for periods to pass, these tests run the reaper "later"
//! (`reap_at`) and the tasks report at those later times; moto, like CloudWatch, accepts datapoints
//! with timestamps ahead of the wall clock.

mod world;

use world::*;

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_original_test_plan_with_real_shutdown_ready_metrics() {
    let w = world().await;
    let t = Utc::now();
    // Deploy A; its tasks run and report ShutdownReady 0 (active, not draining).
    let a = w.deploy("a1", 10).await;
    w.tasks_report(&a, &a.tasks, &[(at(t, -90), false), (at(t, -30), false)]).await;
    assert_eq!(w.state(&a).await, "active");
    // Deploy B: A turns draining, with the time draining began.
    let b = w.deploy("b2", 20).await;
    assert_eq!((w.state(&a).await, w.state(&b).await), ("draining".to_owned(), "active".to_owned()));
    assert_eq!(w.tag(&a, "state").await.as_deref(), Some("draining"));
    let since = w.tag(&a, "draining_since").await.expect("draining_since tag");
    assert!(since.ends_with('Z') && since.starts_with(&t.format("%Y-%m-%d").to_string()), "{since}");
    let mut reporting = a.tasks.clone();
    reporting.sort();
    assert_eq!(w.reporting_tasks(&a).await, reporting, "CloudWatch has a ShutdownReady series per task of A");
    let deps = w.deps(|_| {});
    let ecs = w.ecs();

    // Right after the deploy, A is younger than MIN_AGE.
    let report = reap_at(false, &deps, t).await.unwrap();
    assert!(only(&report).reason.starts_with("too young"), "{report:?}");
    assert_eq!(only(&report).draining_since.as_deref(), Some(since.as_str()));

    // Within the grace period the tasks still report 0, then 1: a period holding a 0 is not ready.
    w.tasks_report(&a, &a.tasks, &[(at(t, 10), false), (at(t, 30), true), (at(t, 90), true)]).await;
    let report = reap_at(false, &deps, at(t, 120)).await.unwrap();
    assert_eq!(only(&report).reason, "0 of 2 task(s) ready", "{report:?}");
    assert_eq!(desired_count(&ecs, &a.target).await, 2);

    // Two whole periods of 1: A is retired (desiredCount 0), without waiting for its tasks.
    w.tasks_report(&a, &a.tasks, &[(at(t, 150), true), (at(t, 210), true)]).await;
    let report = reap_at(false, &deps, at(t, 240)).await.unwrap();
    assert_eq!((report.retired, report.cleaned_up), (1, 0), "{report:?}");
    assert_eq!(only(&report).reason, "all 2 task(s) ShutdownReady for 2 periods");
    assert_eq!(desired_count(&ecs, &a.target).await, 0);
    assert_eq!(w.exists(&a).await, (true, true, true, true), "cleanup waits for the next run");

    // The next run deletes A's rule, target group, parameters and service. B is untouched.
    let report = reap_at(false, &deps, at(t, 300)).await.unwrap();
    assert_eq!(report.cleaned_up, 1, "{report:?}");
    assert_eq!(w.exists(&a).await, (false, false, false, false));
    assert_eq!(w.exists(&b).await, (true, true, true, true));
    assert_eq!(desired_count(&ecs, &b.target).await, 2);

    // Deploy C: B drains the same way; C stays active and serving.
    let c = w.deploy("c3", 30).await;
    w.tasks_report(&b, &b.tasks, &[(at(t, 330), true), (at(t, 390), true)]).await;
    let report = reap_at(false, &deps, at(t, 420)).await.unwrap();
    assert_eq!((only(&report).service.as_str(), report.retired), (b.target.service.as_str(), 1), "{report:?}");
    let report = reap_at(false, &deps, at(t, 480)).await.unwrap();
    assert_eq!(report.cleaned_up, 1, "{report:?}");
    assert_eq!(w.exists(&b).await, (false, false, false, false));
    assert_eq!(w.exists(&c).await, (true, true, true, true));
    assert_eq!(w.state(&c).await, "active");
    assert_eq!(reap_at(false, &deps, at(t, 540)).await.unwrap().draining, 0, "nothing left to do");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn max_age_retires_a_deployment_that_never_reports_counting_from_when_it_began_draining() {
    let w = world().await;
    let old = w.deploy("old", 10).await; // an old version without the drain watcher: it never reports
    // It has run for longer than MAX_AGE before it is marked draining.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _new = w.deploy("new", 20).await;
    let deps = w.deps(|s| {
        s.min_age = Duration::ZERO;
        s.max_age = Duration::from_secs(2);
    });
    let t = Utc::now();
    let report = reap_at(false, &deps, t).await.unwrap();
    assert_eq!(only(&report).reason, "0 of 2 task(s) ready", "the drain wait starts at marking: {report:?}");
    assert_eq!(desired_count(&w.ecs(), &old.target).await, 2);

    let report = reap_at(false, &deps, at(t, 3)).await.unwrap();
    assert_eq!(report.retired, 1, "{report:?}");
    assert!(only(&report).reason.starts_with("MAX_AGE exceeded: draining for"), "{report:?}");
    assert_eq!(desired_count(&w.ecs(), &old.target).await, 0);
    let report = reap_at(false, &deps, at(t, 60)).await.unwrap();
    assert_eq!(report.cleaned_up, 1, "{report:?}");
    assert_eq!(w.exists(&old).await, (false, false, false, false));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_deployment_marked_by_other_tooling_drains_from_its_parameter_s_last_change() {
    let w = world().await;
    let a = w.deploy("x1", 10).await;
    // Other tooling: the state parameter and the state tag, but no draining_since tag.
    w.ssm()
        .put_parameter()
        .name(&a.parameter)
        .value("draining")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let arn = format!("arn:aws:ecs:us-east-1:123456789012:service/{}/{}", w.cluster, a.target.service);
    let tag = aws_sdk_ecs::types::Tag::builder().key("state").value("draining").build();
    w.ecs().tag_resource().resource_arn(arn).tags(tag).send().await.unwrap();
    let modified = w.ssm().get_parameter().name(&a.parameter).send().await.unwrap();
    let modified = shared::aws::to_chrono(modified.parameter().unwrap().last_modified_date().unwrap());
    let deps = w.deps(|s| s.min_age = Duration::ZERO);
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(only(&report).draining_since.as_deref(), Some(fluidity_names::service::format_since(modified).as_str()));
    assert_eq!(only(&report).action, ServiceAction::Waiting, "{report:?}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_window_ends_before_the_newest_minutes_that_have_not_arrived_yet() {
    let w = world().await;
    let a = w.deploy("v1", 10).await;
    let _b = w.deploy("v2", 20).await;
    let t = Utc::now();
    // Ready in two whole periods; the newest minute's datapoints are still on their way through Logs.
    w.tasks_report(&a, &a.tasks, &[(at(t, 30), true), (at(t, 90), true)]).await;
    let no_lag = w.deps(|s| s.min_age = Duration::ZERO);
    let report = reap_at(true, &no_lag, at(t, 180)).await.unwrap();
    assert_eq!(only(&report).reason, "0 of 2 task(s) ready", "the empty newest period reads as not ready: {report:?}");
    let lagged = w.deps(|s| (s.min_age, s.metric_lag) = (Duration::ZERO, Duration::from_secs(60)));
    let report = reap_at(false, &lagged, at(t, 180)).await.unwrap();
    assert_eq!(only(&report).action, ServiceAction::Retired, "{report:?}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn silent_tasks_keep_a_deployment_waiting_and_the_newest_period_decides() {
    let w = world().await;
    let a = w.deploy("v1", 10).await;
    let _b = w.deploy("v2", 20).await;
    let deps = w.deps(|s| s.min_age = Duration::ZERO);
    let t = Utc::now();
    // One task ready for two periods; the other silent.
    w.tasks_report(&a, &a.tasks[..1], &[(at(t, 30), true), (at(t, 90), true)]).await;
    let report = reap_at(false, &deps, at(t, 120)).await.unwrap();
    assert_eq!(only(&report).reason, "1 of 2 task(s) ready", "{report:?}");
    // The silent one reports 1, 1 then 0: newest first, its latest period is not ready.
    w.tasks_report(&a, &a.tasks[1..], &[(at(t, 30), true), (at(t, 90), true), (at(t, 150), false)]).await;
    w.tasks_report(&a, &a.tasks[..1], &[(at(t, 150), true)]).await;
    let report = reap_at(false, &deps, at(t, 180)).await.unwrap();
    assert_eq!(only(&report).reason, "1 of 2 task(s) ready", "{report:?}");
    // An old 0 behind two newer 1s does not matter.
    w.tasks_report(&a, &a.tasks, &[(at(t, 210), true), (at(t, 270), true)]).await;
    let report = reap_at(false, &deps, at(t, 300)).await.unwrap();
    assert_eq!(report.retired, 1, "{report:?}");
    assert_eq!(desired_count(&w.ecs(), &a.target).await, 0);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn too_young_services_wait_and_a_dry_run_changes_nothing() {
    let w = world().await;
    let a = w.deploy("y1", 10).await;
    let _b = w.deploy("y2", 20).await;
    let t = Utc::now();
    w.tasks_report(&a, &a.tasks, &[(at(t, -90), true), (at(t, -30), true)]).await;
    let young = w.deps(|s| s.min_age = Duration::from_secs(3600));
    let report = reap_at(false, &young, t).await.unwrap();
    assert!(only(&report).reason.starts_with("too young"), "{report:?}");

    let deps = w.deps(|s| s.min_age = Duration::ZERO);
    let report = reap_at(true, &deps, t).await.unwrap();
    assert_eq!(report.retired, 1);
    assert!(only(&report).reason.starts_with("dry run, nothing changed"), "{report:?}");
    assert_eq!(desired_count(&w.ecs(), &a.target).await, 2);
}
