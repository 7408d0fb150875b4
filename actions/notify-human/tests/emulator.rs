#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-notify-human against the AWS emulator: the page is read back from an SQS queue
//! subscribed to the topic, as an on-call integration would receive it.

use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use incident_notify_human::{Deps, handler};
use serde_json::{Value, json};
use shared::testing::{action_event, emulator_config, fixture_files, response_json};

mod common;

use common::{Inbox, subscribed_inbox};

struct Pager {
    deps: Deps,
    inbox: Inbox,
}

/// A topic with a queue subscribed to it; the function publishes to the topic straight in moto.
async fn pager() -> Pager {
    let inbox = subscribed_inbox().await;
    let sns = aws_sdk_sns::Client::new(&emulator_config().await);
    Pager { deps: Deps { sns, topic_arn: inbox.topic_arn.clone() }, inbox }
}

async fn received(p: &Pager) -> Vec<Value> {
    common::received(&p.inbox).await
}

async fn invoke(deps: &Deps, payload: Value) -> Value {
    response_json(&handler(action_event(payload), deps).await.unwrap())
}

#[tokio::test]
async fn the_page_arrives_with_subject_body_and_attributes() {
    let p = pager().await;
    let payload = json!({"action": "notify_human", "incidentId": "INC-42", "priority": "critical",
        "incidentDetails": {"title": "Database connection pool exhausted", "description": "All 100 connections in use.\nAPI errors 38%."}});
    let response = invoke(&p.deps, payload).await;
    assert_eq!(response["success"], true, "{response}");
    let messages = received(&p).await;
    assert_eq!(messages.len(), 1);
    let page = &messages[0];
    assert_eq!(page["MessageId"], response["details"]["messageId"]);
    assert_eq!(page["Subject"], "[CRITICAL] Incident INC-42 requires attention");
    let body = page["Message"].as_str().unwrap();
    assert_eq!(body.lines().next().unwrap(), "[CRITICAL] INC-42: Database connection pool exhausted");
    assert!(
        body.contains("Priority:  critical") && body.contains("All 100 connections in use.\nAPI errors 38%."),
        "{body}"
    );
    assert_eq!(page["MessageAttributes"]["priority"]["Value"], "critical");
    assert_eq!(page["MessageAttributes"]["incidentId"]["Value"], "INC-42");
    assert_eq!(page["MessageAttributes"]["action"]["Value"], "notify_human");
}

#[tokio::test]
async fn a_page_without_details_still_goes_out_with_placeholders() {
    let p = pager().await;
    let response = invoke(&p.deps, json!({"action": "notify_human", "incidentId": "INC-5", "priority": "high"})).await;
    assert_eq!(response["success"], true, "{response}");
    let messages = received(&p).await;
    assert!(messages[0]["Message"].as_str().unwrap().contains("(no title provided)"));
}

#[tokio::test]
async fn a_dry_run_reports_the_publish_and_sends_nothing() {
    let p = pager().await;
    let response =
        invoke(&p.deps, json!({"action": "notify_human", "incidentId": "INC-6", "priority": "low", "dryRun": true}))
            .await;
    assert_eq!(response["success"], true, "{response}");
    let call = &response["details"]["plannedCalls"][0];
    assert_eq!(call["call"], "SNS Publish");
    assert_eq!(call["params"]["subject"], "[LOW] Incident INC-6 requires attention");
    assert_eq!(call["params"]["messageAttributes"]["priority"], "low");
    assert!(received(&p).await.is_empty(), "nothing was published");
}

#[tokio::test]
async fn every_fixture_is_answered_as_expected() {
    for file in fixture_files("actions/notify_human") {
        let p = pager().await;
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let response = invoke(&p.deps, payload.clone()).await;
        assert_eq!(response["success"], true, "{}: {response}", file.display());
        let expected = if payload["dryRun"] == true { 0 } else { 1 };
        assert_eq!(received(&p).await.len(), expected, "{}", file.display());
    }
    for file in fixture_files("actions/notify_human/invalid") {
        let p = pager().await;
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let response = invoke(&p.deps, payload).await;
        assert_eq!(response["statusCode"], 400, "{}: {response}", file.display());
        assert!(received(&p).await.is_empty(), "{}", file.display());
    }
}

/// moto does not deduplicate FIFO publishes; the mock pins the FIFO parameters on the real client.
#[tokio::test]
async fn fifo_topics_get_the_incident_as_group_and_a_stable_deduplication_id() {
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| {
            r.message_group_id() == Some("INC-77") && r.message_deduplication_id().is_some_and(|d| d.len() == 64)
        })
        .then_output(|| PublishOutput::builder().message_id("m-1").sequence_number("1").build());
    let deps = Deps {
        sns: mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]),
        topic_arn: "arn:aws:sns:us-east-1:123456789012:oncall.fifo".into(),
    };
    let payload = json!({"action": "notify_human", "incidentId": "INC-77", "priority": "high"});
    let first = invoke(&deps, payload.clone()).await;
    let dry = invoke(&deps, {
        let mut p = payload.clone();
        p["dryRun"] = json!(true);
        p
    })
    .await;
    assert_eq!(first["details"]["messageId"], "m-1", "{first}");
    assert_eq!(dry["details"]["plannedCalls"][0]["params"]["messageGroupId"], "INC-77");
    assert_eq!(publish.num_calls(), 1);
}
