#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The reaper among resources it must not take with it, in the emulator: a listener rule shared by
//! weight with another deployment, a target group the default action holds, a rollback during a
//! run or a cleanup, a cluster shared with services it does not manage; the fixtures through the
//! binary, a half-finished cleanup, and the reaper's IAM world.

mod world;

use aws_sdk_elasticloadbalancingv2::types::{ForwardActionConfig, TargetGroupTuple};
use shared::testing::iam::{IamWorld, service_arn};
use world::*;

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_shared_weighted_rule_keeps_forwarding_to_the_other_deployment() {
    let w = world().await;
    let a = w.deploy("w1", 10).await;
    let b = w.deploy("w2", 20).await;
    // Blue/green: one rule sends 90 % to A and 10 % to B.
    let weighted = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(TargetGroupTuple::builder().target_group_arn(&a.target_group).weight(90).build())
                .target_groups(TargetGroupTuple::builder().target_group_arn(&b.target_group).weight(10).build())
                .build(),
        )
        .build();
    let shared_rule = w.rule(5, "/shop/*", weighted).await;
    let deps = w.deps(|s| s.min_age = Duration::ZERO);
    w.retired(&a).await;
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(report.cleaned_up, 1, "{report:?}");
    assert!(only(&report).reason.contains("1 shared rule(s) now forward only elsewhere"), "{report:?}");
    assert_eq!(w.exists(&a).await, (false, false, false, false));
    let rules = w.elb().describe_rules().listener_arn(&w.listener).send().await.unwrap();
    let kept =
        rules.rules().iter().find(|r| r.rule_arn() == Some(shared_rule.as_str())).expect("the shared rule stays");
    let targets: Vec<&str> = kept.actions()[0]
        .forward_config()
        .unwrap()
        .target_groups()
        .iter()
        .filter_map(|t| t.target_group_arn())
        .collect();
    assert_eq!(targets, [b.target_group.as_str()], "only B is left on the shared rule");
    assert_eq!(w.exists(&b).await, (true, true, true, true));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_target_group_held_by_the_default_action_keeps_the_service_until_it_is_freed() {
    let w = world().await;
    let a = w.deploy("d1", 10).await;
    let _b = w.deploy("d2", 20).await;
    w.elb()
        .modify_listener()
        .listener_arn(&w.listener)
        .default_actions(forward_to(&a.target_group))
        .send()
        .await
        .unwrap();
    let deps = w.deps(|s| s.min_age = Duration::ZERO);
    w.retired(&a).await;
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(only(&report).action, ServiceAction::Waiting, "{report:?}");
    assert!(only(&report).reason.contains("is the listener's default action"), "{report:?}");
    assert_eq!(w.exists(&a).await, (true, true, true, true), "nothing was deleted");
    // The operator points the default action elsewhere; the next run completes the cleanup.
    w.elb().modify_listener().listener_arn(&w.listener).default_actions(fixed_404()).send().await.unwrap();
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(report.cleaned_up, 1, "{report:?}");
    assert_eq!(w.exists(&a).await, (false, false, false, false));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_rollback_during_a_run_wins_over_retiring() {
    let w = world().await;
    let a = w.deploy("r1", 10).await;
    let _b = w.deploy("r2", 20).await;
    let t = Utc::now();
    w.tasks_report(&a, &a.tasks, &[(at(t, -90), true), (at(t, -30), true)]).await;
    // The metric read is slow; while it runs, the deployer rolls back to A.
    let proxy = FaultProxy::start();
    proxy.inject("GetMetricData", shared::testing::Fault::Delay(Duration::from_millis(1500)), 1);
    let deps = w.proxied(&proxy).await;
    let rollback = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        w.mark("r1").await;
    };
    let (report, ()) = tokio::join!(reap_at(false, &deps, t), rollback);
    let report = report.unwrap();
    assert_eq!(only(&report).action, ServiceAction::Skipped, "{report:?}");
    assert_eq!(only(&report).reason, "marked active during this run; left alone");
    assert_eq!(desired_count(&w.ecs(), &a.target).await, 2, "A keeps serving");
    assert_eq!(proxy.count("UpdateService"), 0);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_rollback_during_a_cleanup_keeps_the_service() {
    let w = world().await;
    let a = w.deploy("k1", 10).await;
    let _b = w.deploy("k2", 20).await;
    w.retired(&a).await;
    let proxy = FaultProxy::start();
    proxy.inject("DeleteParameters", shared::testing::Fault::Delay(Duration::from_millis(1500)), 1);
    let deps = w.proxied(&proxy).await;
    let rollback = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        w.mark("k1").await;
    };
    let (report, ()) = tokio::join!(reap(false, &deps), rollback);
    let report = report.unwrap();
    assert_eq!(only(&report).action, ServiceAction::Skipped, "{report:?}");
    assert_eq!(proxy.count("DeleteService"), 0);
    assert!(w.exists(&a).await.0, "the service is not deleted");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn in_a_shared_cluster_only_the_managed_services_are_described_or_touched() {
    let w = world().await;
    let a = w.deploy("s1", 10).await;
    let ecs = w.ecs();
    // Eleven services of other owners: describing them too would take a second DescribeServices call.
    for i in 0..11 {
        ecs.create_service()
            .cluster(&w.cluster)
            .service_name(format!("production-api-{i}"))
            .task_definition("reaper-app")
            .desired_count(0)
            .send()
            .await
            .unwrap();
    }
    // A Fluidity-style service scaled to zero by sleep: 0/0, but not draining and not of this name.
    ecs.create_service()
        .cluster(&w.cluster)
        .service_name("fluidity-server")
        .task_definition("reaper-app")
        .desired_count(0)
        .send()
        .await
        .unwrap();
    let proxy = FaultProxy::start();
    let mut settings = w.settings();
    settings.deployment_name = None;
    let deps = w.deps_with(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await, settings);
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(report.draining, 0, "{report:?}");
    assert_eq!(proxy.count("DescribeServices"), 1, "only svc-* services are described: {:?}", proxy.calls());
    assert_eq!(w.exists(&a).await, (true, true, true, true));
    let out = ecs.describe_services().cluster(&w.cluster).services("fluidity-server").send().await.unwrap();
    assert_eq!(out.services()[0].status(), Some("ACTIVE"));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_fixtures_run_through_the_binary() {
    let w = world().await; // a cluster with no draining service: no metric query is needed
    let envs = [("CLUSTER", w.cluster.as_str()), ("DEPLOYMENT_NAME", w.name.as_str())];
    for file in shared::testing::fixture_files("fluidity-reaper") {
        let run = shared::testing::run_binary(env!("CARGO_BIN_EXE_fluidity-reaper"), &file, &envs);
        assert_eq!(run.status, 0, "{}: {:?}\n{}", file.display(), run.stdout, run.stderr);
        assert_eq!(run.stdout["draining"], 0);
        assert_eq!(run.stdout["dryRun"], file.ends_with("dry-run.json"));
    }
    for file in shared::testing::fixture_files("fluidity-reaper/invalid") {
        let run = shared::testing::run_binary(env!("CARGO_BIN_EXE_fluidity-reaper"), &file, &envs);
        assert_eq!(run.status, 1, "{}", file.display());
        assert_eq!(run.stdout["errorType"], "InvalidRequest");
    }
    let bad = [("CLUSTER", w.cluster.as_str()), ("PERIOD", "90")];
    let file = shared::testing::fixtures_dir().join("fluidity-reaper/eventbridge-schedule.json");
    let run = shared::testing::run_binary(env!("CARGO_BIN_EXE_fluidity-reaper"), &file, &bad);
    assert_eq!(run.status, 1);
    assert_eq!(run.stdout["errorType"], "Runtime.InitError");
    assert!(run.stdout["errorMessage"].as_str().unwrap().contains("PERIOD"), "{:?}", run.stdout);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_half_finished_cleanup_completes_on_the_next_run() {
    let w = world().await;
    let a = w.deploy("h1", 10).await;
    let b = w.deploy("h2", 20).await;
    let deps = w.deps(|s| s.min_age = Duration::ZERO);
    w.retired(&a).await;
    // An earlier run got as far as the rule and the target group, then stopped.
    w.elb().delete_rule().rule_arn(&a.rule).send().await.unwrap();
    w.elb().delete_target_group().target_group_arn(&a.target_group).send().await.unwrap();
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(report.cleaned_up, 1, "{report:?}");
    assert_eq!(w.exists(&a).await, (false, false, false, false));
    assert_eq!(w.exists(&b).await, (true, true, true, true));
}

/// IAM world (deployments/tests/check_iam.py checks every call below against reaper.yaml's
/// ReaperRole, rendered for this cluster, deployment name and listener): a deployment retired and
/// cleaned up (service, listener rule, target group, parameters) in a cluster shared with an
/// incident target the reaper must never describe, scale or delete.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_reap_in_a_shared_cluster() {
    let w = world().await;
    let ecs = w.ecs();
    let bystander = ServiceRef::new(&w.cluster, "production-api-service");
    ecs.create_service()
        .cluster(&w.cluster)
        .service_name(&bystander.service)
        .task_definition("reaper-app")
        .desired_count(0)
        .send()
        .await
        .unwrap();
    let iam = IamWorld::of(env!("CARGO_PKG_NAME"), "reaper.yaml")
        .parameter("DeploymentCluster", &w.cluster)
        .parameter("DeploymentName", &w.name)
        .parameter("ListenerArn", &w.listener)
        .untouchable("ecs:DescribeServices", service_arn(&bystander))
        .untouchable("ecs:UpdateService", service_arn(&bystander))
        .untouchable("ecs:DeleteService", service_arn(&bystander))
        .write();
    let t = Utc::now();
    let a = w.deploy("a1", 10).await;
    let _b = w.deploy("b2", 20).await;
    w.tasks_report(&a, &a.tasks, &[(at(t, 150), true), (at(t, 210), true)]).await;
    let deps = w.deps_with(&iam.config().await, w.settings());
    let report = reap_at(false, &deps, at(t, 240)).await.unwrap();
    assert_eq!(report.retired, 1, "{report:?}");
    let report = reap_at(false, &deps, at(t, 300)).await.unwrap();
    assert_eq!(report.cleaned_up, 1, "{report:?}");
    assert_eq!(w.exists(&a).await, (false, false, false, false));
    let out = ecs.describe_services().cluster(&w.cluster).services(&bystander.service).send().await.unwrap();
    assert_eq!(out.services()[0].status(), Some("ACTIVE"));
}
