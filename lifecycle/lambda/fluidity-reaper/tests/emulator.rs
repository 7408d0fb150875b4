#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The original reaper's own test plan, against the emulator with real metrics: ECS, ELBv2, SSM and
//! CloudWatch in moto (CloudWatch over RPC v2 CBOR through `scripts/emulator.py`), the deployer
//! being the real `fluidity-mark-deployment` code, and each task's ShutdownReady being the drain
//! watcher's own EMF line, turned into datapoints as CloudWatch Logs does.
//!
//! Where that plan waits minutes for periods to pass, these tests run the reaper "later"
//! (`reap_at`) and the tasks report at those later times; moto, like CloudWatch, accepts datapoints
//! with timestamps ahead of the wall clock.

use std::time::Duration;

use aws_sdk_ecs::types::{ContainerDefinition, LoadBalancer, PortMapping};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig, RuleCondition, TargetGroupTuple,
};
use chrono::{DateTime, Utc};
use fluidity_drain::{DrainConfig, emf_line};
use fluidity_mark_deployment::{MarkRequest, mark};
use fluidity_reaper::{Deps, ReaperReport, ReaperSettings, ServiceAction, reap, reap_at};
use shared::ecs::ServiceRef;
use shared::testing::cloudwatch::put_emf;
use shared::testing::iam::{IamWorld, service_arn};
use shared::testing::{FaultProxy, desired_count, emulator_config, function_config, keep_tasks_running, unique};

struct World {
    /// The tests' own config (setting up, reading back).
    config: shared::aws::SdkConfig,
    /// The reaper's: its calls are recorded as the reaper's.
    function: shared::aws::SdkConfig,
    cluster: String,
    name: String,
    listener: String,
    vpc: String,
}

/// Where the reaper's clock stands in a test: the wall clock at the start, plus the minutes run.
fn at(start: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    start + chrono::Duration::seconds(seconds)
}

async fn world() -> World {
    keep_tasks_running();
    let config = emulator_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let vpc =
        ec2.create_vpc().cidr_block("10.1.0.0/16").send().await.unwrap().vpc().unwrap().vpc_id().unwrap().to_owned();
    let mut subnets = Vec::new();
    for (cidr, az) in [("10.1.1.0/24", "us-east-1a"), ("10.1.2.0/24", "us-east-1b")] {
        let subnet = ec2.create_subnet().vpc_id(&vpc).cidr_block(cidr).availability_zone(az).send().await.unwrap();
        subnets.push(subnet.subnet().unwrap().subnet_id().unwrap().to_owned());
    }
    let lb = elb
        .create_load_balancer()
        .name(format!("alb-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]))
        .set_subnets(Some(subnets))
        .send()
        .await
        .unwrap();
    let lb_arn = lb.load_balancers()[0].load_balancer_arn().unwrap().to_owned();
    let listener = elb
        .create_listener()
        .load_balancer_arn(lb_arn)
        .port(80)
        .protocol("HTTP".into())
        .default_actions(fixed_404())
        .send()
        .await
        .unwrap();
    let listener = listener.listeners()[0].listener_arn().unwrap().to_owned();
    let cluster = unique("reaper");
    ecs.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let container = ContainerDefinition::builder()
        .name("app")
        .image("app:latest")
        .memory(512)
        .port_mappings(PortMapping::builder().container_port(8080).build())
        .build();
    ecs.register_task_definition().family("reaper-app").container_definitions(container).send().await.unwrap();
    let name = format!("app{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let function = function_config(env!("CARGO_PKG_NAME")).await;
    World { config, function, cluster, name, listener, vpc }
}

fn fixed_404() -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(FixedResponseActionConfig::builder().status_code("404").build())
        .build()
}

fn forward_to(tg: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(tg).build()
}

struct Deployment {
    id: String,
    target: ServiceRef,
    target_group: String,
    rule: String,
    parameter: String,
    tasks: Vec<String>,
}

/// What exists of a deployment: (service ACTIVE, its rule, its target group, its state parameter).
type Exists = (bool, bool, bool, bool);

impl World {
    /// The original test plan's configuration: PERIOD 60, CONSEC 2, MIN_AGE 60 s, MAX_AGE 1 h.
    fn settings(&self) -> ReaperSettings {
        let mut s = ReaperSettings::new(&self.cluster);
        s.deployment_name = Some(self.name.clone());
        s.listener_arn = Some(self.listener.clone());
        s.period = 60;
        s.consec = 2;
        s.min_age = Duration::from_secs(60);
        s.max_age = Duration::from_secs(3600);
        // These tests put each datapoint where they mean it; the lag has a test of its own.
        s.metric_lag = Duration::ZERO;
        s
    }

    fn deps_with(&self, config: &shared::aws::SdkConfig, settings: ReaperSettings) -> Deps {
        Deps {
            ecs: aws_sdk_ecs::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config).into(),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config).into(),
            ssm: aws_sdk_ssm::Client::new(config).into(),
            settings,
        }
    }

    fn deps(&self, settings: impl FnOnce(&mut ReaperSettings)) -> Deps {
        let mut s = self.settings();
        settings(&mut s);
        self.deps_with(&self.function, s)
    }

    /// The reaper's clients through a fault proxy, with MIN_AGE 0.
    async fn proxied(&self, proxy: &FaultProxy) -> Deps {
        let mut settings = self.settings();
        settings.min_age = Duration::ZERO;
        self.deps_with(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await, settings)
    }

    /// A deployment retired by an earlier run (desiredCount 0; moto reports runningCount 0 with it).
    async fn retired(&self, d: &Deployment) {
        self.ecs()
            .update_service()
            .cluster(&self.cluster)
            .service(&d.target.service)
            .desired_count(0)
            .send()
            .await
            .unwrap();
    }

    fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.config)
    }

    fn elb(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.config)
    }

    fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.config)
    }

    async fn target_group(&self, id: &str) -> String {
        let tg = self
            .elb()
            .create_target_group()
            .name(format!("tg-{}-{id}", self.name))
            .protocol("HTTP".into())
            .port(8080)
            .vpc_id(&self.vpc)
            .target_type("ip".into())
            .send()
            .await
            .unwrap();
        tg.target_groups()[0].target_group_arn().unwrap().to_owned()
    }

    async fn rule(&self, priority: i32, path: &str, action: Action) -> String {
        let condition = RuleCondition::builder().field("path-pattern").values(path).build();
        let rule = self
            .elb()
            .create_rule()
            .listener_arn(&self.listener)
            .priority(priority)
            .conditions(condition)
            .actions(action)
            .send()
            .await
            .unwrap();
        rule.rules()[0].rule_arn().unwrap().to_owned()
    }

    /// Deploys version `id`: a target group, a listener rule to it, a service with two running
    /// tasks; then marks it (the older deployments turn draining).
    async fn deploy(&self, id: &str, priority: i32) -> Deployment {
        let ecs = self.ecs();
        let tg = self.target_group(id).await;
        let rule = self.rule(priority, &format!("/{id}/*"), forward_to(&tg)).await;
        let service = fluidity_names::service::service_name(&self.name, id);
        ecs.create_service()
            .cluster(&self.cluster)
            .service_name(&service)
            .task_definition("reaper-app")
            .desired_count(2)
            .load_balancers(
                LoadBalancer::builder().target_group_arn(&tg).container_name("app").container_port(8080).build(),
            )
            .send()
            .await
            .unwrap();
        // moto reports runningCount = desiredCount only once a service is updated.
        ecs.update_service().cluster(&self.cluster).service(&service).desired_count(2).send().await.unwrap();
        let run = ecs
            .run_task()
            .cluster(&self.cluster)
            .task_definition("reaper-app")
            .count(2)
            .group(format!("service:{service}"))
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .send()
            .await
            .unwrap();
        let tasks = run.tasks().iter().map(|t| t.task_arn().unwrap().rsplit('/').next().unwrap().to_owned()).collect();
        self.mark(id).await;
        Deployment {
            id: id.to_owned(),
            target: ServiceRef::new(&self.cluster, service),
            target_group: tg,
            rule,
            parameter: fluidity_names::service::state_parameter(&self.name, id),
            tasks,
        }
    }

    async fn mark(&self, id: &str) {
        let request = MarkRequest {
            cluster: self.cluster.clone(),
            deployment_name: self.name.clone(),
            deployment_id: id.to_owned(),
            dry_run: false,
        };
        let deployer = function_config("fluidity-mark-deployment").await;
        mark(&aws_sdk_ecs::Client::new(&deployer), &aws_sdk_ssm::Client::new(&deployer), &request).await.unwrap();
    }

    /// The deployment's tasks report ShutdownReady at these times, through the drain watcher's EMF
    /// line, which CloudWatch Logs turns into datapoints.
    async fn tasks_report(&self, d: &Deployment, tasks: &[String], reports: &[(DateTime<Utc>, bool)]) {
        let mut lines = Vec::new();
        for task in tasks {
            let watcher = DrainConfig {
                parameter: d.parameter.clone(),
                poll: Duration::from_secs(5),
                grace: Duration::from_secs(20),
                deployment_name: self.name.clone(),
                deployment_id: d.id.clone(),
                task_id: task.clone(),
            };
            lines.extend(reports.iter().map(|(when, ready)| emf_line(&watcher, *ready, when.timestamp_millis())));
        }
        put_emf(&aws_sdk_cloudwatch::Client::new(&self.config), &lines).await;
    }

    async fn exists(&self, d: &Deployment) -> Exists {
        let svc =
            self.ecs().describe_services().cluster(&self.cluster).services(&d.target.service).send().await.unwrap();
        let service = svc.services().iter().any(|s| s.status() == Some("ACTIVE"));
        let rules = self.elb().describe_rules().listener_arn(&self.listener).send().await.unwrap();
        let rule = rules.rules().iter().any(|r| r.rule_arn() == Some(d.rule.as_str()));
        let tg = self.elb().describe_target_groups().target_group_arns(&d.target_group).send().await.is_ok();
        let param = self.ssm().get_parameter().name(&d.parameter).send().await.is_ok();
        (service, rule, tg, param)
    }

    async fn state(&self, d: &Deployment) -> String {
        let out = self.ssm().get_parameter().name(&d.parameter).send().await.unwrap();
        out.parameter().unwrap().value().unwrap().to_owned()
    }

    async fn tag(&self, d: &Deployment, key: &str) -> Option<String> {
        let out = self
            .ecs()
            .describe_services()
            .cluster(&self.cluster)
            .services(&d.target.service)
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .unwrap();
        fluidity_names::service::tag(&out.services()[0], key).map(str::to_owned)
    }

    /// The task ids that have ShutdownReady metrics in CloudWatch for a deployment.
    async fn reporting_tasks(&self, d: &Deployment) -> Vec<String> {
        let cw = aws_sdk_cloudwatch::Client::new(&self.config);
        let out = cw
            .list_metrics()
            .namespace("App/Drain")
            .metric_name("ShutdownReady")
            .dimensions(
                aws_sdk_cloudwatch::types::DimensionFilter::builder().name("deployment_id").value(&d.id).build(),
            )
            .send()
            .await
            .unwrap();
        let mut tasks: Vec<String> = out
            .metrics()
            .iter()
            .filter(|m| {
                m.dimensions()
                    .iter()
                    .any(|dim| dim.name() == Some("deployment_name") && dim.value() == Some(&self.name))
            })
            .filter_map(|m| m.dimensions().iter().find(|dim| dim.name() == Some("task_id")).and_then(|dim| dim.value()))
            .map(str::to_owned)
            .collect();
        tasks.sort();
        tasks.dedup();
        tasks
    }
}

fn only(report: &ReaperReport) -> &fluidity_reaper::ServiceReport {
    assert_eq!(report.services.len(), 1, "{report:?}");
    &report.services[0]
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_seed_test_plan_with_real_shutdown_ready_metrics() {
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
