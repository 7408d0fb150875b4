#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-scale-up when things go wrong: RDS (query protocol) and ECS faults through the fault
//! proxy between the SDK and moto, the bad-input corpus, and fuzzed requests. Run through scripts/test.sh.

use std::time::{Duration, Instant};

use incident_core::contract::ActionKind;
use incident_core::guard::Guard;
use incident_core::testing::corpus::{assert_action_corpus, fuzz_action, valid_action_request};
use incident_core::testing::{response_json, targets};
use incident_scale_up::{Deps, ScaleUp, handler};
use serde_json::{Value, json};
use shared::ecs::ServiceRef;
use shared::testing::{
    ALWAYS, Fault, FaultProxy, action_event, create_service, desired_count, emulator_config, event_with_deadline,
};

use incident_ledger::testing::scaling::{create_db, db_class};

struct World {
    deps: Deps,
    proxy: FaultProxy,
    moto: aws_sdk_ecs::Config,
    api: ServiceRef,
    rds: aws_sdk_rds::Client,
    db: String,
}

/// An ECS service ("api") and an RDS instance ("db") in moto; the function's clients go through a proxy.
async fn world() -> World {
    let config = emulator_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let api = create_service(&ecs, "scale-rel", 2).await;
    let rds = aws_sdk_rds::Client::new(&config);
    let db = create_db(&rds, "db.t3.medium").await;
    let proxy = FaultProxy::start();
    let through = proxy.sdk_config(env!("CARGO_PKG_NAME")).await;
    let action = ScaleUp {
        ecs: aws_sdk_ecs::Client::new(&through).into(),
        autoscaling: aws_sdk_applicationautoscaling::Client::new(&through).into(),
        rds: aws_sdk_rds::Client::new(&through).into(),
        elasticache: aws_sdk_elasticache::Client::new(&through).into(),
        targets: targets(json!({
            "api": {"kind": "ecs_service", "cluster": api.cluster, "service": api.service,
                    "desiredCount": {"low": 2, "medium": 3, "high": 4, "critical": 6}, "maxCount": 8},
            "db": {"kind": "rds_instance", "instanceId": db,
                   "instanceClass": {"low": "db.r6g.large", "medium": "db.r6g.large", "high": "db.r6g.large",
                                     "critical": "db.r6g.xlarge"},
                   "classLadder": ["db.t3.medium", "db.r6g.large", "db.r6g.xlarge"]},
        })),
    };
    World {
        deps: Deps { action, guard: Guard::default() },
        proxy,
        moto: aws_sdk_ecs::Config::new(&config),
        api,
        rds,
        db,
    }
}

fn scale(target: &str) -> Value {
    let mut request = valid_action_request(ActionKind::ScaleUp);
    request["target"] = json!(target);
    request
}

async fn db_class_of(w: &World) -> String {
    db_class(&w.rds, &w.db).await
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn throttled_calls_are_retried_and_the_scale_up_happens() {
    let w = world().await;
    w.proxy.inject("DescribeDBInstances", Fault::Throttle, 2);
    w.proxy.inject("ModifyDBInstance", Fault::DropConnection, 1);
    let response = response_json(&handler(action_event(scale("db")), &w.deps).await.unwrap());
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(db_class_of(&w).await, "db.r6g.large");
    assert_eq!(w.proxy.count("DescribeDBInstances"), 3);
    assert_eq!(w.proxy.count("ModifyDBInstance"), 2);

    w.proxy.reset();
    w.proxy.inject("UpdateService", Fault::TooManyRequests, 3);
    let response = response_json(&handler(action_event(scale("api")), &w.deps).await.unwrap());
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(desired_count(&aws_sdk_ecs::Client::from_conf(w.moto.clone()), &w.api).await, 4);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn persistent_5xx_is_a_502_naming_the_call_and_nothing_changes() {
    let w = world().await;
    w.proxy.inject("ModifyDBInstance", Fault::Unavailable, ALWAYS);
    let response = response_json(&handler(action_event(scale("db")), &w.deps).await.unwrap());
    assert_eq!(response["statusCode"], 502, "{response}");
    assert!(response["message"].as_str().unwrap().contains("RDS ModifyDBInstance"), "{response}");
    assert_eq!(w.proxy.count("ModifyDBInstance"), 4);
    assert_eq!(db_class_of(&w).await, "db.t3.medium");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn latency_beyond_the_deadline_is_a_504_answered_before_it() {
    let w = world().await;
    w.proxy.inject("DescribeServices", Fault::Delay(Duration::from_secs(30)), ALWAYS);
    let lambda_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let response = response_json(&handler(event_with_deadline(scale("api"), lambda_timeout), &w.deps).await.unwrap());
    assert_eq!(response["statusCode"], 504, "{response}");
    assert!(started.elapsed() < lambda_timeout, "answered after {:?}", started.elapsed());
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_bad_request_is_a_clear_4xx_with_no_aws_call() {
    let w = world().await;
    let invoke = async |payload| handler(action_event(payload), &w.deps).await.unwrap();
    let cases = assert_action_corpus(&w.proxy, ActionKind::ScaleUp, invoke).await;
    assert!(cases >= 30, "{cases} cases");
}

#[test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
fn fuzzed_requests_never_panic_and_invalid_ones_make_no_aws_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let w = runtime.block_on(world());
    fuzz_action(&w.proxy, ActionKind::ScaleUp, |payload| {
        runtime.block_on(handler(action_event(payload), &w.deps)).unwrap()
    });
}
