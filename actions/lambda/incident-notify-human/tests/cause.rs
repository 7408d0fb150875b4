#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The likely cause a page names: the target's ECS deployments, read from the emulator. moto has no
//! service deployments; the emulator keeps one for each CreateService and each UpdateService that
//! changes the task definition (scripts/emulator_deployments.py), so a bad deployment made in moto
//! is what the page must name. The page reaches an SQS queue subscribed to the topic, as on-call
//! integrations receive it. Run through scripts/test.sh.

use std::time::Duration;

use aws_sdk_ecs::types::ContainerDefinition;
use incident_core::guard::Guard;
use incident_core::testing::{response_json, targets};
use incident_notify_human::cause::{CAUSE_BUDGET, Causes};
use incident_notify_human::{Deps, NotifyHuman, handler};
use serde_json::{Value, json};
use shared::ecs::ServiceRef;
use shared::testing::{ALWAYS, Fault, FaultProxy, action_event, create_service, emulator_config, function_config};

mod common;
use common::{Inbox, subscribed_inbox};

/// A service in moto that a deployment moved from `<service>-task:1` to `<service>-task:2`.
async fn deployed_service() -> ServiceRef {
    let moto = aws_sdk_ecs::Client::new(&emulator_config().await);
    let api = create_service(&moto, "cause", 2).await;
    let container = ContainerDefinition::builder().name("app").image("public.ecr.aws/nginx/nginx:bad").memory(512);
    let family = format!("{}-task", api.service);
    let registered = moto.register_task_definition().family(&family).container_definitions(container.build());
    let bad = registered.send().await.unwrap().task_definition().unwrap().task_definition_arn().unwrap().to_owned();
    moto.update_service().cluster(&api.cluster).service(&api.service).task_definition(bad).send().await.unwrap();
    api
}

/// notify_human with the target map naming `api`; its ECS client on `ecs` (moto, or a proxy).
async fn pager(api: &ServiceRef, ecs: &shared::aws::SdkConfig) -> (Deps, Inbox) {
    let inbox = subscribed_inbox().await;
    let causes = Causes {
        ecs: aws_sdk_ecs::Client::new(ecs).into(),
        targets: targets(json!({"api": {"kind": "ecs_service", "cluster": api.cluster, "service": api.service,
            "desiredCount": {"low": 2, "medium": 2, "high": 3, "critical": 4}, "maxCount": 6}})),
        horizon: Duration::from_secs(7200),
    };
    let sns = aws_sdk_sns::Client::new(&function_config(env!("CARGO_PKG_NAME")).await);
    let action = NotifyHuman { sns, topic_arn: inbox.topic_arn.clone(), causes: Some(causes) };
    (Deps { action, guard: Guard::default() }, inbox)
}

fn page(target: Value) -> Value {
    json!({"action": "notify_human", "incidentId": "INC-310", "priority": "critical", "target": target,
           "incidentDetails": {"title": "api 5xx"}})
}

async fn delivered_body(deps: &Deps, inbox: &Inbox, payload: Value) -> String {
    let response = response_json(&handler(action_event(payload), deps).await.unwrap());
    assert_eq!(response["success"], true, "{response}");
    let messages = common::received(inbox).await;
    assert_eq!(messages.len(), 1, "one page: {messages:?}");
    messages[0]["Message"].as_str().unwrap().to_owned()
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_page_names_the_deployment_that_preceded_the_incident() {
    let api = deployed_service().await;
    let (deps, inbox) = pager(&api, &function_config(env!("CARGO_PKG_NAME")).await).await;
    let body = delivered_body(&deps, &inbox, page(json!("api"))).await;
    let family = format!("{}-task", api.service);
    let wanted =
        format!("of {} started 0 min before the incident (task definition {family}:1 → {family}:2)", api.service);
    let cause = body.lines().find(|l| l.starts_with("Cause:")).unwrap_or_else(|| panic!("no cause in\n{body}"));
    assert!(cause.starts_with("Cause:     deployment ") && cause.contains(&wanted), "{cause}");
}

/// A page without a target, or with one the map does not name, says nothing of a cause.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_page_about_no_known_service_names_no_cause() {
    let api = deployed_service().await;
    let (deps, inbox) = pager(&api, &function_config(env!("CARGO_PKG_NAME")).await).await;
    for target in [Value::Null, json!("not-in-the-map")] {
        let body = delivered_body(&deps, &inbox, page(target)).await;
        assert!(!body.contains("Cause:"), "{body}");
    }
}

/// ECS not answering holds the page for the budget at most, and the page says the cause was not read.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_hanging_ecs_does_not_keep_the_page_and_the_page_says_so() {
    let api = deployed_service().await;
    let proxy = FaultProxy::start();
    proxy.inject("ListServiceDeployments", Fault::Delay(Duration::from_secs(60)), ALWAYS);
    let (deps, inbox) = pager(&api, &proxy.sdk_config(env!("CARGO_PKG_NAME")).await).await;
    let body = delivered_body(&deps, &inbox, page(json!("api"))).await;
    let wanted = format!("Cause:     not read (ECS did not answer within {} ms)", CAUSE_BUDGET.as_millis());
    assert!(body.contains(&wanted), "{body}");
}

/// A service ECS does not know (the map is wrong, or it was deleted) pages with the problem named.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_service_ecs_does_not_know_pages_with_the_problem_named() {
    let gone = ServiceRef::new("no-such-cluster", "api");
    let (deps, inbox) = pager(&gone, &function_config(env!("CARGO_PKG_NAME")).await).await;
    let body = delivered_body(&deps, &inbox, page(json!("api"))).await;
    let cause = body.lines().find(|l| l.starts_with("Cause:")).unwrap_or_else(|| panic!("no cause in\n{body}"));
    assert!(cause.starts_with("Cause:     not read (") && cause.contains("no-such-cluster"), "{cause}");
}

/// IAM world (deployments/tests/check_iam.py checks every call below against actions.yaml's
/// NotifyRole in a stack whose TargetCluster is the service's): the cause is read with the role's
/// describes, and the page goes to the stack's topic.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_page_naming_the_cause() {
    let api = deployed_service().await;
    let inbox = subscribed_inbox().await;
    let world = shared::testing::iam::IamWorld::of(env!("CARGO_PKG_NAME"), "actions.yaml")
        .parameter("TargetCluster", &api.cluster)
        .resource("OnCallTopic", &inbox.topic_arn)
        .write();
    let config = world.config().await;
    let (mut deps, _) = pager(&api, &config).await;
    deps.action.sns = aws_sdk_sns::Client::new(&config);
    deps.action.topic_arn.clone_from(&inbox.topic_arn);
    let body = delivered_body(&deps, &inbox, page(json!("api"))).await;
    assert!(body.contains("Cause:     deployment "), "{body}");
}
