#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-notify-human when things go wrong: SNS faults injected by the fault proxy between the
//! SDK and moto (the page is read back from a subscribed SQS queue, so a retried Publish is seen
//! to deliver exactly one page), the bad-input corpus, and fuzzed requests. Run through scripts/test.sh.

use std::time::{Duration, Instant};

use incident_core::contract::ActionKind;
use incident_core::guard::Guard;
use incident_core::testing::corpus::{assert_action_corpus, fuzz_action, valid_action_request};
use incident_core::testing::response_json;
use incident_notify_human::{Deps, NotifyHuman, handler};
use serde_json::{Value, json};
use shared::testing::{ALWAYS, Fault, FaultProxy, action_event, event_with_deadline};

mod common;

use common::{Inbox, subscribed_inbox};

struct Pager {
    deps: Deps,
    proxy: FaultProxy,
    inbox: Inbox,
}

/// A topic with a queue subscribed to it in moto; the function's SNS client goes through a fresh proxy.
async fn pager() -> Pager {
    let inbox = subscribed_inbox().await;
    let proxy = FaultProxy::start();
    let sns = aws_sdk_sns::Client::new(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await);
    let deps =
        Deps { action: NotifyHuman { sns, topic_arn: inbox.topic_arn.clone(), causes: None }, guard: Guard::default() };
    Pager { deps, proxy, inbox }
}

async fn pages(p: &Pager) -> usize {
    common::received(&p.inbox).await.len()
}

fn page() -> Value {
    let mut request = valid_action_request(ActionKind::NotifyHuman);
    request["incidentDetails"] = json!({"title": "Checkout latency", "description": "p99 above 4 s"});
    request
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn throttled_and_dropped_publishes_are_retried_and_exactly_one_page_arrives() {
    for (fault, times) in [(Fault::Throttle, 3), (Fault::TooManyRequests, 2), (Fault::DropConnection, 1)] {
        let p = pager().await;
        p.proxy.inject("Publish", fault, times);
        let response = response_json(&handler(action_event(page()), &p.deps).await.unwrap());
        assert_eq!(response["success"], true, "{fault:?}: {response}");
        assert_eq!(p.proxy.count("Publish"), times as usize + 1, "{fault:?}");
        assert_eq!(pages(&p).await, 1, "{fault:?}: one page reached the subscriber");
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn persistent_5xx_is_a_502_naming_the_call() {
    let p = pager().await;
    p.proxy.inject("Publish", Fault::InternalError, ALWAYS);
    let response = response_json(&handler(action_event(page()), &p.deps).await.unwrap());
    assert_eq!(response["statusCode"], 502, "{response}");
    assert!(response["message"].as_str().unwrap().contains("SNS Publish"), "{response}");
    assert_eq!(p.proxy.count("Publish"), 4);
    assert_eq!(pages(&p).await, 0);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn latency_beyond_the_deadline_is_a_504_answered_before_it() {
    let p = pager().await;
    p.proxy.inject("Publish", Fault::Delay(Duration::from_secs(30)), ALWAYS);
    let lambda_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let response = response_json(&handler(event_with_deadline(page(), lambda_timeout), &p.deps).await.unwrap());
    assert_eq!(response["statusCode"], 504, "{response}");
    assert!(started.elapsed() < lambda_timeout, "answered after {:?}", started.elapsed());
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_bad_request_is_a_clear_4xx_with_no_aws_call() {
    let p = pager().await;
    let invoke = async |payload| handler(action_event(payload), &p.deps).await.unwrap();
    let cases = assert_action_corpus(&p.proxy, ActionKind::NotifyHuman, invoke).await;
    assert!(cases >= 14, "{cases} cases: only a missing or broken action or incidentId refuses a page");
    assert_eq!(pages(&p).await, 0, "nobody was paged");
}

#[test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
fn fuzzed_requests_never_panic_and_invalid_ones_make_no_aws_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let p = runtime.block_on(pager());
    fuzz_action(&p.proxy, ActionKind::NotifyHuman, |payload| {
        runtime.block_on(handler(action_event(payload), &p.deps)).unwrap()
    });
}
