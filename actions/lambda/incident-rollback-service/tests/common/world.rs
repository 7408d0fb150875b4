//! The emulator tests' world: a service in moto that a bad deployment moved from its first task
//! definition to a second, and the function built with its ledger in DynamoDB and its ECS client
//! through the given config, the deployment history answered by the mocks (mod.rs).

use aws_sdk_ecs::types::{ContainerDefinition, ServiceDeploymentStatus};
use aws_smithy_mocks::{MockResponseInterceptor, RuleMode};
use incident_core::guard::GuardSettings;
use incident_core::testing::targets;
use incident_rollback_service::{Deps, Rollback};
use serde_json::json;
use shared::ecs::ServiceRef;
use shared::testing::{emulator_config, ensure_service};

use super::{FakeHistory, deployment};

pub const SUCCESSFUL: ServiceDeploymentStatus = ServiceDeploymentStatus::Successful;

pub struct World {
    pub deps: Deps,
    pub moto: aws_sdk_ecs::Client,
    pub api: ServiceRef,
    /// The task definitions before and after the bad deployment.
    pub good: String,
    pub bad: String,
    /// The ledger's table.
    pub table: String,
}

/// A service in moto that a bad deployment moved from its first task definition to a second; the
/// function's ECS client goes through `function` (a fault proxy's config) to moto, with the
/// deployment history answered by the mocks.
pub async fn world(function: &shared::aws::SdkConfig, unattended: bool, status: ServiceDeploymentStatus) -> World {
    world_in(function, &shared::testing::unique("rollback-cluster"), unattended, status).await
}

pub async fn world_in(
    function: &shared::aws::SdkConfig,
    cluster: &str,
    unattended: bool,
    status: ServiceDeploymentStatus,
) -> World {
    let setup = emulator_config().await;
    let moto = aws_sdk_ecs::Client::new(&setup);
    let api = ServiceRef::new(cluster, shared::testing::unique("rollback-api"));
    ensure_service(&moto, &api, 2).await;
    let good = task_definition(&moto, &api).await;
    let container = ContainerDefinition::builder().name("app").image("public.ecr.aws/nginx/nginx:bad").memory(512);
    let family = format!("{}-task", api.service);
    let registered = moto.register_task_definition().family(&family).container_definitions(container.build());
    let bad = registered.send().await.unwrap().task_definition().unwrap().task_definition_arn().unwrap().to_owned();
    moto.update_service().cluster(&api.cluster).service(&api.service).task_definition(&bad).send().await.unwrap();
    let history = FakeHistory::new(&api.cluster, &api.service, vec![deployment("bad-build", &good, &bad, 11, status)]);
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny).allow_passthrough();
    for rule in &super::rules(&history) {
        interceptor = interceptor.with_rule(rule);
    }
    // The mocked calls still reach the emulator (which keeps a history of its own,
    // scripts/emulator_deployments.py), and the mock's answer replaces its answer.
    let config = aws_sdk_ecs::config::Builder::from(function).interceptor(interceptor).build();
    let (guard, ledger) = incident_ledger::testing::guard(&setup, function, GuardSettings::default()).await;
    let action = Rollback {
        ecs: aws_sdk_ecs::Client::from_conf(config).into(),
        targets: targets(json!({
            "api": {"kind": "ecs_service", "cluster": api.cluster, "service": api.service,
                    "desiredCount": {"low": 2, "medium": 2, "high": 3, "critical": 4}, "maxCount": 6,
                    "rollbackUnattended": unattended},
            "cache": {"kind": "redis", "url": "redis://127.0.0.1:6390"},
        })),
        horizon: std::time::Duration::from_secs(7200),
    };
    World { deps: Deps { action, guard }, moto, api, good, bad, table: ledger.table }
}

pub async fn task_definition(moto: &aws_sdk_ecs::Client, api: &ServiceRef) -> String {
    let out = moto.describe_services().cluster(&api.cluster).services(&api.service).send().await.unwrap();
    out.services()[0].task_definition().unwrap().to_owned()
}
