//! The reaper's world in the emulator: a cluster with a listener, deployments made by the real
//! `fluidity-mark-deployment` code, tasks that report ShutdownReady with the drain watcher's own EMF
//! line, and what is left of each deployment, read back as a user would.
#![allow(dead_code)] // each test file uses a part of the world

// Re-exported: the tests' own imports are these.
pub use std::time::Duration;

pub use aws_sdk_ecs::types::{ContainerDefinition, LoadBalancer, PortMapping};
pub use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, FixedResponseActionConfig, RuleCondition};
pub use chrono::{DateTime, Utc};
pub use fluidity_drain::{DrainConfig, emf_line};
pub use fluidity_mark_deployment::{MarkRequest, mark};
pub use fluidity_reaper::{Deps, ReaperReport, ReaperSettings, ServiceAction, reap, reap_at};
pub use shared::ecs::ServiceRef;
pub use shared::testing::cloudwatch::put_emf;
pub use shared::testing::{FaultProxy, desired_count, emulator_config, function_config, keep_tasks_running, unique};

pub struct World {
    /// The tests' own config (setting up, reading back).
    pub config: shared::aws::SdkConfig,
    /// The reaper's: its calls are recorded as the reaper's.
    pub function: shared::aws::SdkConfig,
    pub cluster: String,
    pub name: String,
    pub listener: String,
    pub vpc: String,
}

/// Where the reaper's clock stands in a test: the wall clock at the start, plus the minutes run.
pub fn at(start: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    start + chrono::Duration::seconds(seconds)
}

pub async fn world() -> World {
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

pub fn fixed_404() -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(FixedResponseActionConfig::builder().status_code("404").build())
        .build()
}

pub fn forward_to(tg: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(tg).build()
}

pub struct Deployment {
    pub id: String,
    pub target: ServiceRef,
    pub target_group: String,
    pub rule: String,
    pub parameter: String,
    pub tasks: Vec<String>,
}

/// What exists of a deployment: (service ACTIVE, its rule, its target group, its state parameter).
pub type Exists = (bool, bool, bool, bool);

impl World {
    /// The original test plan's configuration: PERIOD 60, CONSEC 2, MIN_AGE 60 s, MAX_AGE 1 h.
    pub fn settings(&self) -> ReaperSettings {
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

    pub fn deps_with(&self, config: &shared::aws::SdkConfig, settings: ReaperSettings) -> Deps {
        Deps {
            ecs: aws_sdk_ecs::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config).into(),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config).into(),
            ssm: aws_sdk_ssm::Client::new(config).into(),
            settings,
        }
    }

    pub fn deps(&self, settings: impl FnOnce(&mut ReaperSettings)) -> Deps {
        let mut s = self.settings();
        settings(&mut s);
        self.deps_with(&self.function, s)
    }

    /// The reaper's clients through a fault proxy, with MIN_AGE 0.
    pub async fn proxied(&self, proxy: &FaultProxy) -> Deps {
        let mut settings = self.settings();
        settings.min_age = Duration::ZERO;
        self.deps_with(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await, settings)
    }

    /// A deployment retired by an earlier run (desiredCount 0; moto reports runningCount 0 with it).
    pub async fn retired(&self, d: &Deployment) {
        self.ecs()
            .update_service()
            .cluster(&self.cluster)
            .service(&d.target.service)
            .desired_count(0)
            .send()
            .await
            .unwrap();
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.config)
    }

    pub fn elb(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.config)
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.config)
    }

    pub async fn target_group(&self, id: &str) -> String {
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

    pub async fn rule(&self, priority: i32, path: &str, action: Action) -> String {
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
    pub async fn deploy(&self, id: &str, priority: i32) -> Deployment {
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

    pub async fn mark(&self, id: &str) {
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
    pub async fn tasks_report(&self, d: &Deployment, tasks: &[String], reports: &[(DateTime<Utc>, bool)]) {
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

    pub async fn exists(&self, d: &Deployment) -> Exists {
        let svc =
            self.ecs().describe_services().cluster(&self.cluster).services(&d.target.service).send().await.unwrap();
        let service = svc.services().iter().any(|s| s.status() == Some("ACTIVE"));
        let rules = self.elb().describe_rules().listener_arn(&self.listener).send().await.unwrap();
        let rule = rules.rules().iter().any(|r| r.rule_arn() == Some(d.rule.as_str()));
        let tg = self.elb().describe_target_groups().target_group_arns(&d.target_group).send().await.is_ok();
        let param = self.ssm().get_parameter().name(&d.parameter).send().await.is_ok();
        (service, rule, tg, param)
    }

    pub async fn state(&self, d: &Deployment) -> String {
        let out = self.ssm().get_parameter().name(&d.parameter).send().await.unwrap();
        out.parameter().unwrap().value().unwrap().to_owned()
    }

    pub async fn tag(&self, d: &Deployment, key: &str) -> Option<String> {
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
    pub async fn reporting_tasks(&self, d: &Deployment) -> Vec<String> {
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

pub fn only(report: &ReaperReport) -> &fluidity_reaper::ServiceReport {
    assert_eq!(report.services.len(), 1, "{report:?}");
    &report.services[0]
}
