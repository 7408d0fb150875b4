#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The reaper at scale: 500 draining services × 10 tasks, plus an active one, in one run, with every
//! API call counted. The AWS side is aws-smithy-mocks rules on the real clients rather than moto:
//! moto's ListTasks ignores its serviceName filter, so counts taken there would measure moto's
//! behaviour (every task of the cluster, for every service), not the reaper's.

use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_services::ListServicesOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
use aws_sdk_ecs::types::{Deployment, Service, Tag, Task};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use fluidity_reaper::{Deps, ReaperSettings, reap};

const SERVICES: usize = 500;
const TASKS: usize = 10;
const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";

fn service_arn(i: usize) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:service/prod/svc-shop-d{i}")
}

#[tokio::test]
async fn five_hundred_draining_services_in_one_run_with_the_minimum_calls() {
    // Service SERVICES is the active deployment; 0..SERVICES are draining.
    let list_services = mock!(aws_sdk_ecs::Client::list_services).then_compute_output(|r| {
        let start: usize = r.next_token().map_or(0, |t| t.parse().unwrap());
        let page = r.max_results().unwrap_or(10) as usize;
        let end = (start + page).min(SERVICES + 1);
        let out = ListServicesOutput::builder().set_service_arns(Some((start..end).map(service_arn).collect()));
        if end < SERVICES + 1 { out.next_token(end.to_string()).build() } else { out.build() }
    });
    let old = aws_smithy_types::DateTime::from_secs(chrono::Utc::now().timestamp() - 3600);
    let since = fluidity_names::service::format_since(chrono::Utc::now() - chrono::Duration::minutes(30));
    let describe_services = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|r| r.services().len() <= 10)
        .then_compute_output(move |r| {
            let services = r.services().iter().map(|arn| {
                let name = arn.rsplit('/').next().unwrap();
                let id = name.strip_prefix("svc-shop-").unwrap();
                let state = if id == format!("d{SERVICES}") { "active" } else { "draining" };
                let tags =
                    [("deployment_name", "shop"), ("deployment_id", id), ("state", state), ("draining_since", &since)]
                        .map(|(k, v)| Tag::builder().key(k).value(v).build());
                Service::builder()
                    .service_name(name)
                    .service_arn(arn)
                    .status("ACTIVE")
                    .desired_count(TASKS as i32)
                    .running_count(TASKS as i32)
                    .deployments(Deployment::builder().status("PRIMARY").created_at(old).build())
                    .set_tags(Some(tags.to_vec()))
                    .build()
            });
            DescribeServicesOutput::builder().set_services(Some(services.collect())).build()
        });
    let list_tasks = mock!(aws_sdk_ecs::Client::list_tasks).then_compute_output(|r| {
        let service = r.service_name().unwrap().to_owned();
        let arns = (0..TASKS).map(|t| format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{service}-t{t}"));
        ListTasksOutput::builder().set_task_arns(Some(arns.collect())).build()
    });
    let describe_tasks = mock!(aws_sdk_ecs::Client::describe_tasks)
        .match_requests(|r| r.tasks().len() <= 100)
        .then_compute_output(|r| {
            let tasks = r.tasks().iter().map(|arn| {
                let id = arn.rsplit('/').next().unwrap();
                let service = &id[..id.rfind("-t").unwrap()];
                Task::builder().task_arn(arn).group(format!("service:{service}")).last_status("RUNNING").build()
            });
            DescribeTasksOutput::builder().set_tasks(Some(tasks.collect())).build()
        });
    let update_service = mock!(aws_sdk_ecs::Client::update_service)
        .match_requests(|r| r.desired_count() == Some(0))
        .then_compute_output(|r| {
            UpdateServiceOutput::builder()
                .service(Service::builder().service_name(r.service().unwrap()).status("ACTIVE").build())
                .build()
        });
    let metrics = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.metric_data_queries().len() <= 500)
        .then_compute_output(|r| {
            let results = r
                .metric_data_queries()
                .iter()
                .map(|q| MetricDataResult::builder().id(q.id().unwrap()).values(1.0).values(1.0).values(1.0).build());
            GetMetricDataOutput::builder().set_metric_data_results(Some(results.collect())).build()
        });
    let ecs = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&list_services, &describe_services, &list_tasks, &describe_tasks, &update_service]
    );
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&metrics]);
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .build();
    let mut settings = ReaperSettings::new(CLUSTER);
    settings.deployment_name = Some("shop".into());
    let deps = Deps {
        ecs,
        cloudwatch: cloudwatch.into(),
        // No cleanup in this run (every service still has tasks): a call to either would fail the test.
        elb: mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::Sequential, []).into(),
        ssm: aws_sdk_ssm::Client::from_conf(config).into(),
        settings,
    };

    let started = Instant::now();
    let report = reap(false, &deps).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!((report.draining, report.retired), (SERVICES, SERVICES), "the active deployment is not draining");

    let calls = [
        ("ListServices", list_services.num_calls(), (SERVICES + 1).div_ceil(100)),
        // Discovery, then the state tags read again right before acting on the services to retire.
        ("DescribeServices", describe_services.num_calls(), (SERVICES + 1).div_ceil(10) + SERVICES.div_ceil(10)),
        ("ListTasks", list_tasks.num_calls(), SERVICES),
        ("DescribeTasks", describe_tasks.num_calls(), SERVICES),
        ("GetMetricData", metrics.num_calls(), (SERVICES * TASKS).div_ceil(500)),
        ("UpdateService", update_service.num_calls(), SERVICES),
    ];
    for (call, made, minimum) in calls {
        eprintln!("{call}: {made} calls (minimum {minimum})");
        assert_eq!(made, minimum, "{call}");
    }
    assert!(elapsed < Duration::from_secs(60), "the reaper's own work for one run: {elapsed:?}");
}

/// One service's failure is reported and does not stop the others; the run ends in a function error
/// naming it, so the schedule's alarm fires.
#[tokio::test]
async fn one_failing_service_does_not_stop_the_others() {
    let list_services = mock!(aws_sdk_ecs::Client::list_services).then_output(|| {
        ListServicesOutput::builder().set_service_arns(Some((0..3).map(service_arn).collect())).build()
    });
    let describe_services = mock!(aws_sdk_ecs::Client::describe_services).then_compute_output(|r| {
        let services = r.services().iter().map(|arn| {
            let name = arn.rsplit('/').next().unwrap();
            let id = name.strip_prefix("svc-shop-").unwrap();
            let tags = [
                ("deployment_name", "shop"),
                ("deployment_id", id),
                ("state", "draining"),
                ("draining_since", "2026-12-01T00:00:00Z"),
            ]
            .map(|(k, v)| Tag::builder().key(k).value(v).build());
            // No running task: each is retired at once, without metrics.
            Service::builder()
                .service_name(name)
                .status("ACTIVE")
                .desired_count(2)
                .running_count(0)
                .set_tags(Some(tags.to_vec()))
                .build()
        });
        DescribeServicesOutput::builder().set_services(Some(services.collect())).build()
    });
    let failing = mock!(aws_sdk_ecs::Client::update_service)
        .match_requests(|r| r.service() == Some("svc-shop-d1"))
        .sequence()
        .http_status(500, None)
        .repeatedly()
        .build();
    let update_service = mock!(aws_sdk_ecs::Client::update_service).then_compute_output(|r| {
        UpdateServiceOutput::builder()
            .service(Service::builder().service_name(r.service().unwrap()).status("ACTIVE").build())
            .build()
    });
    let ecs =
        mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list_services, &describe_services, &failing, &update_service]);
    let mut settings = ReaperSettings::new(CLUSTER);
    settings.deployment_name = Some("shop".into());
    settings.min_age = Duration::ZERO;
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .build();
    let deps = Deps {
        ecs,
        cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::Sequential, []).into(),
        elb: mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::Sequential, []).into(),
        ssm: aws_sdk_ssm::Client::from_conf(config).into(),
        settings,
    };
    let err = reap(false, &deps).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, shared::FunctionError::PartialFailure { total: 3, .. }), "{err:?}");
    assert_eq!(err.code(), "PARTIAL_FAILURE");
    assert!(message.contains("1 of 3 draining services failed (2 retired"), "{message}");
    assert!(message.contains("svc-shop-d1: AWS ECS UpdateService failed"), "{message}");
    assert_eq!(update_service.num_calls(), 2, "the other two were retired");
    assert!(failing.num_calls() >= 1);
}
