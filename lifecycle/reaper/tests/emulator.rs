#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The seed's own test plan (004), against the emulator: ECS, SSM and ELBv2 in moto, the deployer
//! being the real `fluidity-mark-deployment` code. The tasks' ShutdownReady metrics are served by an
//! aws-smithy-mocks rule on the real CloudWatch client, because the Rust SDK speaks only RPC v2 CBOR
//! to CloudWatch and moto does not implement it (getmoto/moto#9195).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_sdk_ecs::types::{ContainerDefinition, LoadBalancer, PortMapping};
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, FixedResponseActionConfig, RuleCondition};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use fluidity_mark_deployment::{MarkRequest, mark};
use fluidity_reaper::{Deps, ReaperSettings, reap};
use shared::ecs::ServiceRef;
use shared::testing::{desired_count, emulator_config, keep_tasks_running, unique};

/// Task ids whose ShutdownReady is 1 in every period; every other task has no datapoints.
type ReadyTasks = Arc<Mutex<HashSet<String>>>;

fn cloudwatch(ready: ReadyTasks, consec: usize) -> (aws_sdk_cloudwatch::Client, Rule) {
    let rule = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| {
            r.metric_data_queries().len() <= 500
                && r.metric_data_queries().iter().all(|q| {
                    let ms = q.metric_stat().unwrap();
                    ms.metric().unwrap().namespace() == Some("App/Drain") && ms.stat() == Some("Minimum")
                })
        })
        .then_compute_output(move |r| {
            let ready = ready.lock().unwrap();
            let results = r.metric_data_queries().iter().map(|q| {
                let dims = q.metric_stat().unwrap().metric().unwrap().dimensions();
                let task = dims.iter().find(|d| d.name() == Some("task_id")).unwrap().value().unwrap();
                let values = if ready.contains(task) { vec![1.0; consec] } else { Vec::new() };
                MetricDataResult::builder().id(q.id().unwrap()).set_values(Some(values)).build()
            });
            GetMetricDataOutput::builder().set_metric_data_results(Some(results.collect())).build()
        });
    (mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]), rule)
}

struct World {
    config: shared::aws::SdkConfig,
    cluster: String,
    name: String,
    listener: String,
    vpc: String,
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
    let default = Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(FixedResponseActionConfig::builder().status_code("404").build())
        .build();
    let listener = elb
        .create_listener()
        .load_balancer_arn(lb_arn)
        .port(80)
        .protocol("HTTP".into())
        .default_actions(default)
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
    World { config, cluster, name, listener, vpc }
}

impl World {
    fn deps(&self, cloudwatch: aws_sdk_cloudwatch::Client, settings: impl FnOnce(&mut ReaperSettings)) -> Deps {
        let mut s = ReaperSettings::new(&self.cluster);
        s.deployment_name = Some(self.name.clone());
        s.listener_arn = Some(self.listener.clone());
        s.min_age = Duration::ZERO;
        settings(&mut s);
        Deps {
            ecs: aws_sdk_ecs::Client::new(&self.config),
            cloudwatch,
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&self.config),
            ssm: aws_sdk_ssm::Client::new(&self.config),
            settings: s,
        }
    }

    /// Deploys version `id`: a target group, a listener rule to it, a service with two tasks; then marks it.
    async fn deploy(&self, id: &str, priority: i32) -> Deployment {
        let ecs = aws_sdk_ecs::Client::new(&self.config);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&self.config);
        let tg = elb
            .create_target_group()
            .name(format!("tg-{}-{id}", self.name))
            .protocol("HTTP".into())
            .port(8080)
            .vpc_id(&self.vpc)
            .target_type("ip".into())
            .send()
            .await
            .unwrap();
        let tg = tg.target_groups()[0].target_group_arn().unwrap().to_owned();
        let forward = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&tg).build();
        let condition = RuleCondition::builder().field("path-pattern").values(format!("/{id}/*")).build();
        let rule = elb
            .create_rule()
            .listener_arn(&self.listener)
            .priority(priority)
            .conditions(condition)
            .actions(forward)
            .send()
            .await
            .unwrap();
        let rule = rule.rules()[0].rule_arn().unwrap().to_owned();
        let service = shared::deployment::service_name(&self.name, id);
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
        let request = MarkRequest {
            cluster: self.cluster.clone(),
            deployment_name: self.name.clone(),
            deployment_id: id.to_owned(),
            dry_run: false,
        };
        mark(&ecs, &aws_sdk_ssm::Client::new(&self.config), &request).await.unwrap();
        Deployment {
            target: ServiceRef::new(&self.cluster, service),
            target_group: tg,
            rule,
            parameter: shared::deployment::state_parameter(&self.name, id),
            tasks,
        }
    }

    async fn exists(&self, d: &Deployment) -> (bool, bool, bool, bool) {
        let ecs = aws_sdk_ecs::Client::new(&self.config);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&self.config);
        let ssm = aws_sdk_ssm::Client::new(&self.config);
        let svc = ecs.describe_services().cluster(&self.cluster).services(&d.target.service).send().await.unwrap();
        let service = svc.services().iter().any(|s| s.status() == Some("ACTIVE"));
        let rules = elb.describe_rules().listener_arn(&self.listener).send().await.unwrap();
        let rule = rules.rules().iter().any(|r| r.rule_arn() == Some(d.rule.as_str()));
        let tg = elb.describe_target_groups().target_group_arns(&d.target_group).send().await.is_ok();
        let param = ssm.get_parameter().name(&d.parameter).send().await.is_ok();
        (service, rule, tg, param)
    }
}

struct Deployment {
    target: ServiceRef,
    target_group: String,
    rule: String,
    parameter: String,
    tasks: Vec<String>,
}

#[tokio::test]
async fn the_seed_test_plan_retires_then_cleans_up_the_old_deployment_and_leaves_the_new_one() {
    let w = world().await;
    let a = w.deploy("a1", 10).await;
    let b = w.deploy("b2", 20).await; // marking B turns A to draining
    let ssm = aws_sdk_ssm::Client::new(&w.config);
    let state = |p: String| {
        let ssm = ssm.clone();
        async move { ssm.get_parameter().name(p).send().await.unwrap().parameter().unwrap().value().unwrap().to_owned() }
    };
    assert_eq!(state(a.parameter.clone()).await, "draining");
    assert_eq!(state(b.parameter.clone()).await, "active");

    let ready: ReadyTasks = Arc::default();
    let (cw, metric_rule) = cloudwatch(ready.clone(), 3);
    let deps = w.deps(cw, |_| {});
    let ecs = deps.ecs.clone();

    // No ShutdownReady yet: A waits.
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(report.draining, 1, "only A is draining: {report:?}");
    assert_eq!(report.services[0].reason, "0 of 2 task(s) ready");
    assert_eq!(desired_count(&ecs, &a.target).await, 2);

    // Step 2: A's tasks report ShutdownReady=1; the reaper scales A to 0 without waiting.
    ready.lock().unwrap().extend(a.tasks.iter().cloned());
    let report = reap(false, &deps).await.unwrap();
    assert_eq!((report.retired, report.cleaned_up), (1, 0), "{report:?}");
    assert_eq!(desired_count(&ecs, &a.target).await, 0);
    assert_eq!(w.exists(&a).await, (true, true, true, true), "cleanup waits for the next run");

    // Step 3: the next run deletes A's rule, target group, parameters and service. B is untouched.
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(report.cleaned_up, 1, "{report:?}");
    assert_eq!(w.exists(&a).await, (false, false, false, false));
    assert_eq!(w.exists(&b).await, (true, true, true, true));
    assert_eq!(desired_count(&ecs, &b.target).await, 2);
    assert!(metric_rule.num_calls() >= 2);

    // A later run finds nothing to do.
    assert_eq!(reap(false, &deps).await.unwrap().draining, 0);
}

#[tokio::test]
async fn max_age_forces_retirement_without_metrics() {
    let w = world().await;
    let a = w.deploy("old", 10).await;
    let _b = w.deploy("new", 20).await;
    let (cw, _) = cloudwatch(Arc::default(), 3);
    let deps = w.deps(cw, |s| s.max_age = Duration::from_millis(500));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(report.retired, 1, "{report:?}");
    assert!(report.services[0].reason.contains("MAX_AGE exceeded"), "{report:?}");
    assert_eq!(desired_count(&deps.ecs, &a.target).await, 0);
}

#[tokio::test]
async fn too_young_services_wait_and_a_dry_run_changes_nothing() {
    let w = world().await;
    let a = w.deploy("v1", 10).await;
    let _b = w.deploy("v2", 20).await;
    let ready: ReadyTasks = Arc::new(Mutex::new(a.tasks.iter().cloned().collect()));
    let (cw, _) = cloudwatch(ready, 3);
    let young = w.deps(cw.clone(), |s| s.min_age = Duration::from_secs(3600));
    let report = reap(false, &young).await.unwrap();
    assert!(report.services[0].reason.starts_with("too young"), "{report:?}");

    let deps = w.deps(cw, |_| {});
    let report = reap(true, &deps).await.unwrap();
    assert_eq!(report.retired, 1);
    assert!(report.services[0].reason.starts_with("dry run, nothing changed"), "{report:?}");
    assert_eq!(desired_count(&deps.ecs, &a.target).await, 2);
}

#[tokio::test]
async fn services_of_other_names_and_active_ones_are_never_touched() {
    let w = world().await;
    let a = w.deploy("x1", 10).await;
    // A Fluidity-style service scaled to zero by sleep: 0/0, but not draining and not of this name.
    let ecs = aws_sdk_ecs::Client::new(&w.config);
    ecs.create_service()
        .cluster(&w.cluster)
        .service_name("fluidity-server")
        .task_definition("reaper-app")
        .desired_count(0)
        .send()
        .await
        .unwrap();
    let (cw, _) = cloudwatch(Arc::default(), 3);
    let deps = w.deps(cw, |s| s.deployment_name = None);
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(report.draining, 0, "{report:?}");
    assert_eq!(w.exists(&a).await, (true, true, true, true));
    let fluidity = ServiceRef::new(&w.cluster, "fluidity-server");
    let out = ecs.describe_services().cluster(&fluidity.cluster).services(&fluidity.service).send().await.unwrap();
    assert_eq!(out.services()[0].status(), Some("ACTIVE"));
}

#[tokio::test]
async fn the_fixtures_run_through_the_binary() {
    let w = world().await; // a cluster with no draining service: no metric query is needed
    let envs = [("CLUSTER", w.cluster.as_str()), ("DEPLOYMENT_NAME", w.name.as_str())];
    for file in shared::testing::fixture_files("lifecycle/reaper") {
        let run = shared::testing::run_binary(env!("CARGO_BIN_EXE_fluidity-reaper"), &file, &envs);
        assert_eq!(run.status, 0, "{}: {:?}\n{}", file.display(), run.stdout, run.stderr);
        assert_eq!(run.stdout["draining"], 0);
        assert_eq!(run.stdout["dryRun"], file.ends_with("dry-run.json"));
    }
    for file in shared::testing::fixture_files("lifecycle/reaper/invalid") {
        let run = shared::testing::run_binary(env!("CARGO_BIN_EXE_fluidity-reaper"), &file, &envs);
        assert_eq!(run.status, 1, "{}", file.display());
        assert_eq!(run.stdout["errorType"], "InvalidRequest");
    }
}

#[tokio::test]
async fn a_half_finished_cleanup_completes_on_the_next_run() {
    let w = world().await;
    let a = w.deploy("h1", 10).await;
    let b = w.deploy("h2", 20).await;
    let (cw, _) = cloudwatch(Arc::default(), 3);
    let deps = w.deps(cw, |_| {});
    deps.ecs.update_service().cluster(&w.cluster).service(&a.target.service).desired_count(0).send().await.unwrap();
    // An earlier run got as far as the rule and the target group, then stopped.
    deps.elb.delete_rule().rule_arn(&a.rule).send().await.unwrap();
    deps.elb.delete_target_group().target_group_arn(&a.target_group).send().await.unwrap();
    let report = reap(false, &deps).await.unwrap();
    assert_eq!(report.cleaned_up, 1, "{report:?}");
    assert_eq!(w.exists(&a).await, (false, false, false, false));
    assert_eq!(w.exists(&b).await, (true, true, true, true));
}
