#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! fluidity-wake against the AWS emulator (moto server). Run through scripts/test.sh.

use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::types::{Attachment, KeyValuePair, Service, Task};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use fluidity_wake::{Deps, handler};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::FunctionError;
use shared::ecs::{ServiceRef, ServiceScope};
use shared::testing::iam::SharedCluster;
use shared::testing::{
    FargateService, create_fargate_service, desired_count, emulator_config, ensure_service, fixture_files,
    function_config, run_binary,
};

/// A Fargate service in moto, and wake's clients (its calls are recorded as wake's). The tests read
/// the service back through them too: the same describe and update calls wake may make.
async fn setup(desired: i32) -> (Deps, FargateService) {
    let service = create_fargate_service(&emulator_config().await, "wake", desired).await;
    let function = function_config(env!("CARGO_PKG_NAME")).await;
    let deps = Deps {
        ecs: aws_sdk_ecs::Client::new(&function),
        ec2: aws_sdk_ec2::Client::new(&function).into(),
        services: ServiceScope::only(service.target.clone()),
    };
    (deps, service)
}

async fn invoke(deps: &Deps, payload: Value) -> Result<Value, FunctionError> {
    handler(LambdaEvent::new(payload, Context::default()), deps).await
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_stopped_service_is_woken_to_one_and_stays_at_one() {
    let (deps, service) = setup(0).await;
    let first = invoke(&deps, json!({})).await.unwrap();
    assert_eq!(first["status"], "waking", "{first}");
    assert_eq!(first["desiredCount"], 1);
    assert_eq!(desired_count(&deps.ecs, &service.target).await, 1);
    let eta = chrono::DateTime::parse_from_rfc3339(first["estimatedStartTime"].as_str().unwrap()).unwrap();
    let ahead = eta.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((80..=91).contains(&ahead), "estimatedStartTime is now + 90 s, got +{ahead}");

    for _ in 0..3 {
        let again = invoke(&deps, json!({})).await.unwrap();
        assert_ne!(again["status"], "waking", "{again}");
        assert_eq!(desired_count(&deps.ecs, &service.target).await, 1, "wake never scales out");
    }
}

/// moto 5.2.5 fails RunTask for awsvpc tasks (its ENI lacks `private_dns_name`), so the ECS side of
/// this path (DescribeServices, ListTasks, DescribeTasks with the ENI attachment) comes from
/// aws-smithy-mocks on the real client, and the EC2 side is real: an ENI in the emulator with an
/// Elastic IP associated, read back through DescribeNetworkInterfaces.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_running_service_answers_with_its_task_address() {
    let (moto_deps, service) = setup(1).await;
    let moto_ec2 = aws_sdk_ec2::Client::new(&emulator_config().await);
    let eni = moto_ec2
        .create_network_interface()
        .subnet_id(&service.subnet)
        .groups(&service.security_group)
        .send()
        .await
        .unwrap();
    let eni = eni.network_interface().unwrap();
    let (eni_id, private_ip) =
        (eni.network_interface_id().unwrap().to_owned(), eni.private_ip_address().unwrap().to_owned());
    let address = moto_ec2.allocate_address().domain(aws_sdk_ec2::types::DomainType::Vpc).send().await.unwrap();
    moto_ec2
        .associate_address()
        .allocation_id(address.allocation_id().unwrap())
        .network_interface_id(&eni_id)
        .send()
        .await
        .unwrap();

    let name = service.target.service.clone();
    let describe_services = mock!(aws_sdk_ecs::Client::describe_services).then_output(move || {
        DescribeServicesOutput::builder()
            .services(Service::builder().service_name(&name).status("ACTIVE").desired_count(1).running_count(1).build())
            .build()
    });
    let list_tasks = mock!(aws_sdk_ecs::Client::list_tasks)
        .then_output(|| ListTasksOutput::builder().task_arns("arn:aws:ecs:us-east-1:123456789012:task/c/t1").build());
    let group = format!("service:{}", service.target.service);
    let (eni_for_mock, ip_for_mock) = (eni_id.clone(), private_ip.clone());
    let describe_tasks = mock!(aws_sdk_ecs::Client::describe_tasks).then_output(move || {
        let kv = |k: &str, v: &str| KeyValuePair::builder().name(k).value(v).build();
        let attachment = Attachment::builder()
            .r#type("ElasticNetworkInterface")
            .details(kv("networkInterfaceId", &eni_for_mock))
            .details(kv("privateIPv4Address", &ip_for_mock))
            .build();
        let task = Task::builder().task_arn("t1").group(&group).last_status("RUNNING").attachments(attachment).build();
        DescribeTasksOutput::builder().tasks(task).build()
    });
    let deps = Deps {
        ecs: mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&describe_services, &list_tasks, &describe_tasks]),
        ec2: moto_deps.ec2.clone().into(),
        services: ServiceScope::only(service.target.clone()),
    };
    let answer = invoke(&deps, json!({})).await.unwrap();
    assert_eq!(answer["status"], "already_running", "{answer}");
    assert_eq!(answer["publicIp"], address.public_ip().unwrap());
    assert_eq!(answer["privateIp"], private_ip);
    assert!(answer["message"].as_str().unwrap().contains(address.public_ip().unwrap()));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn without_a_task_there_is_no_address_and_no_error() {
    let (deps, service) = setup(0).await;
    deps.ecs
        .update_service()
        .cluster(&service.target.cluster)
        .service(&service.target.service)
        .desired_count(1)
        .send()
        .await
        .unwrap();
    let answer = invoke(&deps, json!({})).await.unwrap();
    assert_eq!(answer["status"], "already_running", "{answer}");
    assert!(answer.get("publicIp").is_none());
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_missing_service_is_service_not_found() {
    let (mut deps, service) = setup(0).await;
    deps.services = ServiceScope::only(ServiceRef::new(service.target.cluster.clone(), "nope"));
    let err = invoke(&deps, json!({})).await.unwrap_err();
    assert_eq!(err, FunctionError::ServiceNotFound { cluster: service.target.cluster.clone(), service: "nope".into() });
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_fixture_run_through_the_binary_wakes_the_service() {
    let (deps, service) = setup(0).await;
    let override_target = ServiceRef::new("fluidity", "fluidity-server");
    // overrides.json names fluidity/fluidity-server, which the deployment must allow.
    let envs = [
        ("ECS_CLUSTER_NAME", service.target.cluster.as_str()),
        ("ECS_SERVICE_NAME", service.target.service.as_str()),
        ("OVERRIDE_SERVICE_ARNS", shared::testing::FIXTURE_OVERRIDE_ARN),
    ];
    let files = fixture_files("fluidity-wake");
    assert_eq!(files.len(), 5, "direct, overrides, schedule, API Gateway, Function URL");
    // Setup calls go through the test's own client, so that they are not recorded as wake's.
    let setup_ecs = aws_sdk_ecs::Client::new(&emulator_config().await);
    for file in files {
        ensure_service(&setup_ecs, &service.target, 0).await;
        ensure_service(&setup_ecs, &override_target, 0).await;
        let run = run_binary(env!("CARGO_BIN_EXE_fluidity-wake"), &file, &envs);
        assert_eq!(run.status, 0, "{}: {:?}\n{}", file.display(), run.stdout, run.stderr);
        let answer = run.answer();
        assert_eq!(answer["status"], "waking", "{}: {answer}", file.display());
        let woken = if file.ends_with("overrides.json") { &override_target } else { &service.target };
        assert_eq!(desired_count(&deps.ecs, woken).await, 1, "{}", file.display());
    }
}

/// IAM world (deployments/tests/check_iam.py checks every call below against lambda.yaml's
/// WakeRole, rendered for this cluster and service): wake its own running service (the address
/// lookup lists the cluster's tasks), in a cluster it shares with a service it must never touch;
/// the role without overrides.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_wake_in_a_shared_cluster() {
    let setup = aws_sdk_ecs::Client::new(&emulator_config().await);
    let cluster = SharedCluster::create(&setup, "iamwake", 1).await;
    let world = cluster.lambda_world(env!("CARGO_PKG_NAME")).parameter("OverrideServiceArns", "").write();
    let config = world.config().await;
    let (ecs, ec2) = (aws_sdk_ecs::Client::new(&config), aws_sdk_ec2::Client::new(&config));
    let deps = Deps { ecs, ec2: ec2.into(), services: ServiceScope::only(cluster.own.clone()) };
    let answer = invoke(&deps, json!({})).await.unwrap();
    assert_eq!(answer["status"], "already_running", "{answer}");
    let refused = invoke(&deps, cluster.naming_allowed()).await.unwrap_err();
    assert_eq!(refused.error_type(), "OverrideNotAllowed");
}

/// IAM world: with OverrideServiceArns, a request may wake the allowed service (and the role may
/// update it), still never the bystander.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_wake_an_allowed_override() {
    let setup = aws_sdk_ecs::Client::new(&emulator_config().await);
    let cluster = SharedCluster::create(&setup, "iamwakeo", 0).await;
    let world = cluster.lambda_world(env!("CARGO_PKG_NAME")).write();
    let config = world.config().await;
    let (ecs, ec2) = (aws_sdk_ecs::Client::new(&config), aws_sdk_ec2::Client::new(&config));
    let deps = Deps { ecs, ec2: ec2.into(), services: cluster.scope() };
    let answer = invoke(&deps, cluster.naming_allowed()).await.unwrap();
    assert_eq!(answer["status"], "waking", "{answer}");
    assert_eq!(desired_count(&setup, &cluster.allowed).await, 1);
    assert_eq!(desired_count(&setup, &cluster.bystander).await, 2);
}
