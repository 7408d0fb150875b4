#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-notify-human against the AWS emulator: the page is read back from an SQS queue
//! subscribed to the topic, as an on-call integration would receive it. The SMS form is read from
//! the Publish request itself, as SNS received it (moto does not deliver SMS), through the proxy.

use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use incident_core::guard::Guard;
use incident_core::testing::corpus::messy_pages;
use incident_core::testing::response_json;
use incident_notify_human::sms::{SMS_SEPTETS, length, septets};
use incident_notify_human::{Deps, MAX_MESSAGE_BYTES, NotifyHuman, handler};
use serde_json::{Value, json};
use shared::testing::exact::{Call, planned, sent};
use shared::testing::iam::IamWorld;
use shared::testing::{Fault, FaultProxy, action_event, fixture_files, function_config, query_params};

mod common;

use common::{Inbox, subscribed_inbox};

struct Pager {
    deps: Deps,
    inbox: Inbox,
}

/// A topic with a queue subscribed to it; the function publishes to the topic straight in moto.
async fn pager() -> Pager {
    let inbox = subscribed_inbox().await;
    let sns = aws_sdk_sns::Client::new(&function_config(env!("CARGO_PKG_NAME")).await);
    Pager {
        deps: Deps {
            action: NotifyHuman { sns, topic_arn: inbox.topic_arn.clone(), causes: None },
            guard: Guard::default(),
        },
        inbox,
    }
}

async fn received(p: &Pager) -> Vec<Value> {
    common::received(&p.inbox).await
}

async fn invoke(deps: &Deps, payload: Value) -> Value {
    response_json(&handler(action_event(payload), deps).await.unwrap())
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
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

/// A pager whose SNS client goes through a proxy that records what SNS received.
async fn recorded_pager() -> (Pager, FaultProxy) {
    let inbox = subscribed_inbox().await;
    let proxy = FaultProxy::start();
    let sns = aws_sdk_sns::Client::new(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await);
    (
        Pager {
            deps: Deps {
                action: NotifyHuman { sns, topic_arn: inbox.topic_arn.clone(), causes: None },
                guard: Guard::default(),
            },
            inbox,
        },
        proxy,
    )
}

/// The forms of the one Publish the proxy saw: (MessageStructure, the message JSON).
fn published(proxy: &FaultProxy) -> (String, Value) {
    let bodies = proxy.bodies("Publish");
    assert_eq!(bodies.len(), 1, "one Publish");
    let params = query_params(&bodies[0]);
    (params["MessageStructure"].clone(), serde_json::from_str(&params["Message"]).unwrap())
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_messy_page_is_sent_exactly_once_and_says_what_it_changed() {
    for (what, payload, fields) in messy_pages() {
        let p = pager().await;
        let response = invoke(&p.deps, payload).await;
        assert_eq!(response["success"], true, "{what}: {response}");
        let adjusted: Vec<&str> = response["details"]["adjustments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["field"].as_str().unwrap())
            .collect();
        for field in fields {
            assert!(adjusted.contains(field), "{what}: {field} not in {adjusted:?}");
        }
        let messages = received(&p).await;
        assert_eq!(messages.len(), 1, "{what}: exactly one page");
        let body = messages[0]["Message"].as_str().unwrap();
        assert!(body.len() <= MAX_MESSAGE_BYTES, "{what}");
        assert!(!body.lines().next().unwrap().chars().any(char::is_control), "{what}: a clean first line");
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_long_messy_title_from_a_forwarded_record_pages_with_the_title_cut_and_the_priority_noted() {
    let (p, proxy) = recorded_pager().await;
    let title = format!("Checkout\u{7} API failing\n{}", "x".repeat(223));
    let payload = json!({"action": "notify_human", "incidentId": "INC-88",
        "incidentDetails": {"title": title, "description": "Error rate 38%.", "ticketUrl": "https://t/88"}});
    let response = invoke(&p.deps, payload).await;
    assert_eq!(response["success"], true, "{response}");
    let messages = received(&p).await;
    assert_eq!(messages.len(), 1);
    let page = &messages[0];
    let body = page["Message"].as_str().unwrap();
    let first = body.lines().next().unwrap();
    assert!(first.starts_with("[HIGH] INC-88: Checkout API failing xxx") && first.ends_with('…'), "{first}");
    assert!(body.contains("Priority:  high (the request's priority: missing; paged as high)"), "{body}");
    assert_eq!(page["MessageAttributes"]["priority"]["Value"], "high");
    // The SMS form: one SMS of GSM-7 characters with priority, incident id and title.
    let (structure, forms) = published(&proxy);
    assert_eq!(structure, "json");
    let sms = forms["sms"].as_str().unwrap();
    assert!(sms.starts_with("[HIGH] INC-88: Checkout API failing x"), "{sms}");
    assert!(length(sms) <= SMS_SEPTETS && sms.chars().all(|c| septets(c).is_some()), "{sms}");
    // Email and SQS (default) get the full message; the queue got exactly the default form.
    assert_eq!(forms["email"], forms["default"]);
    assert_eq!(forms["default"].as_str().unwrap(), body);
    assert_eq!(response["details"]["sms"], sms);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_megabyte_description_is_cut_so_that_the_page_still_fits_sns() {
    let (p, proxy) = recorded_pager().await;
    let payload = json!({"action": "notify_human", "incidentId": "INC-89", "priority": "critical",
        "incidentDetails": {"title": "Huge log paste", "description": "log line\n".repeat(120_000)}});
    let response = invoke(&p.deps, payload).await;
    assert_eq!(response["success"], true, "{response}");
    let (_, forms) = published(&proxy);
    let message = query_params(&proxy.bodies("Publish")[0])["Message"].clone();
    assert!(message.len() <= MAX_MESSAGE_BYTES, "{} bytes", message.len());
    let body = forms["default"].as_str().unwrap();
    assert!(body.contains("[… description cut: the first part of 1080000 bytes]"));
    assert_eq!(received(&p).await.len(), 1);
    let cut = &response["details"]["adjustments"][0];
    assert_eq!(cut["field"], "incidentDetails.description");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_page_without_details_still_goes_out_with_placeholders() {
    let p = pager().await;
    let response = invoke(&p.deps, json!({"action": "notify_human", "incidentId": "INC-5", "priority": "high"})).await;
    assert_eq!(response["success"], true, "{response}");
    let messages = received(&p).await;
    assert!(messages[0]["Message"].as_str().unwrap().contains("(no title provided)"));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_dry_run_reports_the_publish_and_sends_nothing() {
    let p = pager().await;
    let response =
        invoke(&p.deps, json!({"action": "notify_human", "incidentId": "INC-6", "priority": "low", "dryRun": true}))
            .await;
    assert_eq!(response["success"], true, "{response}");
    let call = &response["details"]["plannedCalls"][0];
    assert_eq!(call["call"], "SNS Publish");
    assert_eq!(call["params"]["subject"], "[LOW] Incident INC-6 requires attention");
    assert_eq!(call["params"]["messageAttributes"]["priority"]["stringValue"], "low");
    assert_eq!(call["params"]["messageStructure"], "json");
    let forms: Value = serde_json::from_str(call["params"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(forms["sms"], "[LOW] INC-6: (no title provided)");
    assert!(received(&p).await.is_empty(), "nothing was published");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_fixture_is_answered_as_expected() {
    for file in fixture_files("incident-notify-human") {
        let p = pager().await;
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let response = invoke(&p.deps, payload.clone()).await;
        assert_eq!(response["success"], true, "{}: {response}", file.display());
        let expected = if payload["dryRun"] == true { 0 } else { 1 };
        assert_eq!(received(&p).await.len(), expected, "{}", file.display());
    }
    for file in fixture_files("incident-notify-human/invalid") {
        let p = pager().await;
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let response = invoke(&p.deps, payload).await;
        assert_eq!(response["statusCode"], 400, "{}: {response}", file.display());
        assert!(received(&p).await.is_empty(), "{}", file.display());
    }
}

/// moto does not deduplicate FIFO publishes; the mock pins the FIFO parameters on the real client.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn fifo_topics_get_the_incident_as_group_and_a_stable_deduplication_id() {
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| {
            r.message_group_id() == Some("INC-77") && r.message_deduplication_id().is_some_and(|d| d.len() == 64)
        })
        .then_output(|| PublishOutput::builder().message_id("m-1").sequence_number("1").build());
    let action = NotifyHuman {
        sns: mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]),
        topic_arn: "arn:aws:sns:us-east-1:123456789012:oncall.fifo".into(),
        causes: None,
    };
    let deps = Deps { action, guard: Guard::default() };
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

/// The page says when it was composed (`Time:      2026-12-01T03:00:00Z`): a dry run and the real
/// run a moment later differ in that line, and only there.
fn undated(calls: Vec<Call>) -> Vec<Call> {
    let undate = |text: &str| {
        let lines = text.split("\\n").map(|line| if line.starts_with("Time:") { "Time: (when sent)" } else { line });
        lines.collect::<Vec<_>>().join("\\n")
    };
    calls
        .into_iter()
        .map(|mut call| {
            call.params.values_mut().for_each(|v| *v = undate(v));
            call
        })
        .collect()
}

/// The dry run's plannedCalls are the Publish the real run sends: topic, subject, structure, every
/// form of the message and the attributes, for a standard and a FIFO topic.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_dry_run_plans_exactly_the_publish_a_real_run_makes() {
    let (mut p, proxy) = recorded_pager().await;
    let fifo = common::fifo_topic().await;
    let payload = json!({"action": "notify_human", "incidentId": "INC-9", "priority": "critical",
        "incidentDetails": {"title": "Checkout failing", "description": "5xx at 40%"}});
    for topic in [p.deps.action.topic_arn.clone(), fifo] {
        p.deps.action.topic_arn = topic.clone();
        let mut dry_payload = payload.clone();
        dry_payload["dryRun"] = json!(true);
        let dry = invoke(&p.deps, dry_payload).await;
        proxy.reset();
        let real = invoke(&p.deps, payload.clone()).await;
        assert_eq!(real["success"], true, "{topic}: {real}");
        let (planned, sent) = (undated(planned(&dry)), undated(sent(&proxy)));
        assert_eq!(planned.len(), 1, "{dry}");
        assert_eq!(sent, planned, "{topic}: the real run sent (left) another Publish than the dry run planned (right)");
    }
}

/// IAM world (deployments/tests/check_iam.py checks every call below against actions.yaml's
/// NotifyRole, whose OnCallTopic is this world's topic): the page goes to that topic only.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_page_the_on_call_topic() {
    let mut p = pager().await;
    let other = common::fifo_topic().await;
    let world = IamWorld::of(env!("CARGO_PKG_NAME"), "actions.yaml")
        .parameter("TargetCluster", "production")
        .resource("OnCallTopic", &p.deps.action.topic_arn)
        .untouchable("sns:Publish", other)
        .write();
    p.deps.action.sns = aws_sdk_sns::Client::new(&world.config().await);
    let response =
        invoke(&p.deps, json!({"action": "notify_human", "incidentId": "INC-IAM", "priority": "high"})).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(received(&p).await.len(), 1);
}

/// A pager with a ledger on a new table (its calls through `function`).
async fn ledgered_pager(function: &shared::aws::SdkConfig) -> (Pager, incident_ledger::DynamoLedger) {
    let mut p = pager().await;
    p.deps.action.sns = aws_sdk_sns::Client::new(function);
    let setup = shared::testing::emulator_config().await;
    let (guard, ledger) = incident_ledger::testing::guard(&setup, function, Default::default()).await;
    p.deps.guard = guard;
    (p, ledger)
}

/// The engineer paged sees what automation already did for the incident, refusals included; a
/// retried page within the TTL is sent once.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_page_lists_what_automation_did_and_a_retry_is_sent_once() {
    let (p, ledger) = ledgered_pager(&function_config(env!("CARGO_PKG_NAME")).await).await;
    // What two actions wrote for INC-H1 (as their frames do), one of them refused.
    for (action, outcome, message) in [
        ("restart_service", "success", "Service api restart initiated: new deployment ecs-svc/123"),
        ("scale_up", "BUDGET_EXHAUSTED", "budget per target and action (api, scale_up) spent"),
    ] {
        let record = incident_core::ledger::NewRecord {
            incident_id: "INC-H1".into(),
            action: action.into(),
            target: "api".into(),
            priority: "high".into(),
            outcome: outcome.into(),
            status_code: if outcome == "success" { 200 } else { 429 },
            message: message.into(),
            before: None,
            after: None,
            details: Value::Null,
            request_id: uuid::Uuid::new_v4().to_string(),
            changed: false,
        };
        ledger.record_change(&record).await.unwrap();
    }
    let page = json!({"action": "notify_human", "incidentId": "INC-H1", "priority": "high",
                      "incidentDetails": {"title": "API down"}});
    let response = invoke(&p.deps, page.clone()).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["details"]["earlierRecords"], 2);
    let again = invoke(&p.deps, page).await;
    assert_eq!(again["replayed"], true, "{again}");
    let messages = received(&p).await;
    assert_eq!(messages.len(), 1, "sent once");
    let body = messages[0]["Message"].as_str().unwrap();
    assert!(body.contains("What automation did (2 record(s), UTC):"), "{body}");
    assert!(body.contains("restart_service api: Service api restart initiated: new deployment ecs-svc/123"), "{body}");
    assert!(body.contains("scale_up api: [BUDGET_EXHAUSTED] budget per target and action"), "{body}");
}

/// The ledger down: the page still goes out, and says the history could not be read.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn with_the_ledger_down_the_page_still_goes_out_and_says_so() {
    let proxy = FaultProxy::start();
    for operation in ["Query", "PutItem", "TransactWriteItems"] {
        proxy.inject(operation, shared::testing::Fault::Unavailable, shared::testing::ALWAYS);
    }
    let (p, _) = ledgered_pager(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await).await;
    let response =
        invoke(&p.deps, json!({"action": "notify_human", "incidentId": "INC-H2", "priority": "critical"})).await;
    assert_eq!(response["success"], true, "{response}");
    let messages = received(&p).await;
    assert_eq!(messages.len(), 1);
    let body = messages[0]["Message"].as_str().unwrap();
    assert!(body.contains("What automation did: unknown (the incident ledger could not be read"), "{body}");
}

/// A follow-up page for the same incident and priority, with other words ("restart did not help"),
/// is another page and is delivered; an identical retry of either is not.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_follow_up_page_with_other_words_is_delivered_and_a_retry_is_not() {
    let (p, _) = ledgered_pager(&function_config(env!("CARGO_PKG_NAME")).await).await;
    let page = |description: &str| {
        json!({"action": "notify_human", "incidentId": "INC-42", "priority": "critical",
               "incidentDetails": {"title": "API down", "description": description}})
    };
    let first = invoke(&p.deps, page("5xx at 40%")).await;
    let follow_up = invoke(&p.deps, page("restart did not help, database unreachable")).await;
    let retried = invoke(&p.deps, page("restart did not help, database unreachable")).await;
    assert_eq!((first["success"].as_bool(), follow_up["success"].as_bool()), (Some(true), Some(true)));
    assert_ne!(follow_up["replayed"], true, "{follow_up}");
    assert_eq!(retried["replayed"], true, "{retried}");
    let messages = received(&p).await;
    assert_eq!(messages.len(), 2, "the page and its follow-up, once each");
    assert!(messages[1]["Message"].as_str().unwrap().contains("database unreachable"));
    assert!(
        messages[1]["Message"].as_str().unwrap().contains("What automation did (1 record(s)"),
        "it lists the first page"
    );
}

/// A page goes out within the function's timeout (15 s) whatever DynamoDB does: every call
/// answering after 30 s (the SDK's own 4 attempts of 10 s would outlast the function), failing
/// with 503, or throttled. The page says that the history could not be read.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_page_goes_out_within_its_timeout_whatever_dynamodb_does() {
    let timeout = std::time::Duration::from_secs(15);
    for fault in [Fault::Delay(std::time::Duration::from_secs(30)), Fault::Unavailable, Fault::Throttle] {
        let proxy = FaultProxy::start();
        for operation in ["Query", "PutItem", "TransactWriteItems", "DeleteItem"] {
            proxy.inject(operation, fault, shared::testing::ALWAYS);
        }
        let (p, _) = ledgered_pager(&proxy.sdk_config(env!("CARGO_PKG_NAME")).await).await;
        let started = std::time::Instant::now();
        let page = json!({"action": "notify_human", "incidentId": "INC-SLOW", "priority": "critical"});
        let response =
            response_json(&handler(shared::testing::event_with_deadline(page, timeout), &p.deps).await.unwrap());
        let took = started.elapsed();
        assert_eq!(response["success"], true, "{fault:?}: {response}");
        assert!(took < timeout, "{fault:?}: answered after {took:?}");
        let messages = received(&p).await;
        assert_eq!(messages.len(), 1, "{fault:?}");
        let body = messages[0]["Message"].as_str().unwrap();
        assert!(
            body.contains("What automation did: unknown (the incident ledger could not be read"),
            "{fault:?}: {body}"
        );
    }
}
