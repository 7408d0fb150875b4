#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The loop when its dependencies fail: the ledger down or hanging (the fault proxy in front of the
//! emulator's DynamoDB), and the paging function failing. The page is never dropped or held back.

mod world;

use std::time::Duration;

use aws_sdk_lambda::types::Environment;
use incident_playbook::run::Status;
use serde_json::json;
use shared::testing::{ALWAYS, Fault, FaultProxy};
use world::{World, world};

fn one_step() -> serde_json::Value {
    json!([{"action": "restart_service"}])
}

/// The world's playbook with its ledger calls through a proxy that answers them with `fault`.
async fn ledger_faulty(w: &mut World, operation: &str, fault: Fault) -> FaultProxy {
    let proxy = FaultProxy::start();
    let dynamodb = incident_ledger::client(&proxy.sdk_config("incident-playbook").await);
    w.deps.store.dynamodb = dynamodb.clone();
    w.deps.ledger.dynamodb = dynamodb;
    proxy.inject(operation, fault, ALWAYS);
    proxy
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_ledger_that_is_down_stops_automation_and_pages_at_once() {
    let mut w = world(one_step(), &[]).await;
    let _proxy = ledger_faulty(&mut w, "PutItem", Fault::InternalError).await;
    let answer = w.send(w.alarm_event("ALARM")).await;
    assert!(answer["outcome"].as_str().unwrap().starts_with("paged without the ledger"), "{answer}");
    let pages = w.pages().await;
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert!(pages[0]["Message"].as_str().unwrap().contains("the incident ledger is unavailable"), "{pages:?}");
    assert_eq!(w.desired().await, 2);
    let ecs = aws_sdk_ecs::Client::new(&w.setup);
    let service = shared::ecs::describe_service(&ecs, &w.api).await.unwrap();
    assert_eq!(service.deployments().len(), 1, "no restart without the ledger");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_hanging_ledger_does_not_hold_back_the_page() {
    let mut w = world(one_step(), &[]).await;
    // Each attempt hangs past the SDK's 10-second read timeout, and the SDK tries three times.
    let _proxy = ledger_faulty(&mut w, "PutItem", Fault::Delay(Duration::from_secs(60))).await;
    let sent = tokio::time::timeout(Duration::from_secs(15), w.send(w.alarm_event("ALARM"))).await;
    let answer = sent.expect("the page waited on the hanging ledger");
    assert!(answer["outcome"].as_str().unwrap().starts_with("paged without the ledger"), "{answer}");
    assert_eq!(w.pages().await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_page_that_did_not_go_out_is_sent_by_the_sweep_once() {
    let w = world(one_step(), &[]).await;
    let lambda = aws_sdk_lambda::Client::new(&w.setup);
    let notify = w.deps.functions.notify_human.clone();
    let env = |topic: &str| {
        let vars = Environment::builder().variables("LEDGER_TABLE", &w.table).variables("SNS_TOPIC_ARN", topic);
        vars.build()
    };
    // notify_human cannot start: its topic is not an SNS topic's ARN.
    let broken = lambda.update_function_configuration().function_name(&notify).environment(env("not-a-topic"));
    broken.send().await.unwrap();
    w.send(w.alarm_event("ALARM")).await;
    let deployment = match w.run().await.pending.unwrap().expectation {
        incident_playbook::verify::Expectation::EcsDeployment { deployment_id, .. } => deployment_id,
        other => panic!("{other:?}"),
    };
    let answer = w.deployment("ecs-deployment-failed-LIVE.json", &deployment).await;
    assert_eq!(w.run().await.status, Status::Paging, "{answer}");
    assert!(w.pages().await.is_empty());

    let fixed = lambda.update_function_configuration().function_name(&notify).environment(env(&w.topic_arn));
    fixed.send().await.unwrap();
    w.sweep().await;
    assert_eq!(w.run().await.status, Status::Paging, "the page is still another invocation's to send");
    w.advance(2);
    w.sweep().await;
    w.sweep().await;
    assert_eq!(w.run().await.status, Status::Paged);
    assert_eq!(w.pages().await.len(), 1, "exactly one page");
}
