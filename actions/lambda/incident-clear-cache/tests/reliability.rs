#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-clear-cache when things go wrong: Secrets Manager faults through the fault proxy,
//! Redis down, refusing the password or stalling, the bad-input corpus, fuzzed requests, and the
//! password kept out of every log line and response. Each test starts its own redis-server.

use std::time::{Duration, Instant};

use incident_clear_cache::cache::{COMMAND_TIMEOUT, CONNECT_TIMEOUT};
use incident_clear_cache::{ClearCache, Deps, PasswordSource, handler};
use incident_core::contract::ActionKind;
use incident_core::guard::Guard;
use incident_core::testing::corpus::{assert_action_corpus, fuzz_action};
use incident_core::testing::{response_json, targets};
use serde_json::{Value, json};
use shared::testing::{
    ALWAYS, Fault, FaultProxy, LocalRun, TempRedis, action_event, emulator_config, event_with_deadline, run_binary,
    unique,
};

struct World {
    deps: Deps,
    proxy: FaultProxy,
}

/// Targets: "cache" (Redis at `url`, password from a secret holding `password`) and "api" (ECS).
async fn world(url: &str, password: &str) -> (World, String) {
    let secrets = aws_sdk_secretsmanager::Client::new(&emulator_config().await);
    let secret = secrets.create_secret().name(unique("redis-auth")).secret_string(password).send().await.unwrap();
    let arn = secret.arn().unwrap().to_owned();
    let proxy = FaultProxy::start();
    let config = proxy.sdk_config(env!("CARGO_PKG_NAME")).await;
    let action = ClearCache {
        secrets: aws_sdk_secretsmanager::Client::new(&config).into(),
        elasticache: aws_sdk_elasticache::Client::new(&config).into(),
        targets: targets(json!({
            "cache": {"kind": "redis", "url": url, "passwordSecretArn": arn},
            "api": {"kind": "ecs_service", "cluster": "c", "service": "s",
                    "desiredCount": {"low": 1, "medium": 1, "high": 2, "critical": 2}, "maxCount": 4},
        })),
        passwords: PasswordSource::new(None),
        reboot_poll: Duration::from_millis(20),
    };
    (World { deps: Deps { action, guard: Guard::default() }, proxy }, arn)
}

fn clear() -> Value {
    json!({"action": "clear_cache", "target": "cache", "incidentId": "INC-7", "priority": "high"})
}

/// A TCP listener that accepts connections and never answers: a hung or overloaded server.
fn stalled_server() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", listener.local_addr().unwrap().port());
    (listener, url)
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_throttled_secret_fetch_is_retried_and_the_cache_cleared() {
    let redis = TempRedis::start(&["--requirepass", "thr0ttle-Pa55"]);
    let (w, _) = world(&redis.url(), "thr0ttle-Pa55").await;
    w.proxy.inject("GetSecretValue", Fault::Throttle, 2);
    let response = response_json(&handler(action_event(clear()), &w.deps).await.unwrap());
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(w.proxy.count("GetSecretValue"), 3);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_failing_secrets_manager_is_a_502_naming_the_call() {
    let redis = TempRedis::start(&[]);
    let (w, _) = world(&redis.url(), "unused-Pa55").await;
    w.proxy.inject("GetSecretValue", Fault::Unavailable, ALWAYS);
    let response = response_json(&handler(action_event(clear()), &w.deps).await.unwrap());
    assert_eq!(response["statusCode"], 502, "{response}");
    assert!(response["message"].as_str().unwrap().contains("SecretsManager GetSecretValue"), "{response}");
    assert_eq!(w.proxy.count("GetSecretValue"), 4);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_stalled_redis_is_a_bounded_502_that_says_it_timed_out() {
    let (_listener, url) = stalled_server();
    let (w, _) = world(&url, "stall-Pa55").await;
    let started = Instant::now();
    let response = response_json(&handler(action_event(clear()), &w.deps).await.unwrap());
    let took = started.elapsed();
    assert_eq!(response["statusCode"], 502, "{response}");
    assert_eq!(response["error"]["code"], "REDIS_ERROR");
    let message = response["message"].as_str().unwrap();
    assert!(message.contains("timed out") && message.contains(url.trim_start_matches("redis://")), "{message}");
    assert!(took <= CONNECT_TIMEOUT + COMMAND_TIMEOUT + Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_stalled_redis_with_little_time_left_is_a_504_before_the_deadline() {
    let (_listener, url) = stalled_server();
    let (w, _) = world(&url, "stall-Pa55").await;
    let lambda_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let response = response_json(&handler(event_with_deadline(clear(), lambda_timeout), &w.deps).await.unwrap());
    assert!([502, 504].contains(&response["statusCode"].as_u64().unwrap()), "{response}");
    assert!(started.elapsed() < lambda_timeout, "answered after {:?}", started.elapsed());
}

/// Runs the built binary (production logging, at trace level so every log line any crate would
/// write is there) and checks that `password` is in neither its logs nor its answer.
fn assert_password_kept_out(run: &LocalRun, password: &str, path: &str) {
    assert!(!run.stderr.is_empty(), "{path}: the run logged nothing");
    for (n, line) in run.stderr.lines().enumerate() {
        assert!(!line.contains(password), "{path}: log line {n} holds the password: {line}");
    }
    assert!(!run.stdout.to_string().contains(password), "{path}: the answer holds the password: {}", run.stdout);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_password_appears_in_no_log_line_and_no_response_on_any_path() {
    let password = unique("Pa55");
    let secrets = aws_sdk_secretsmanager::Client::new(&emulator_config().await);
    let arn = secrets
        .create_secret()
        .name(unique("redis-auth"))
        .secret_string(json!({"username": "default", "password": password}).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let right = TempRedis::start(&["--requirepass", &password]);
    let wrong = TempRedis::start(&["--requirepass", "another-Pa55"]);
    let (_stall, stalled_url) = stalled_server();
    let down = format!(
        "redis://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let dir = std::env::temp_dir().join(unique("secrets-test"));
    std::fs::create_dir_all(&dir).unwrap();
    let event = dir.join("event.json");
    std::fs::write(&event, clear().to_string()).unwrap();
    let paths = [
        ("success", right.url(), 200),
        ("password refused", wrong.url(), 502),
        ("server down", down, 502),
        ("server stalled", stalled_url, 502),
    ];
    for (path, url, status) in paths {
        let targets = json!({"cache": {"kind": "redis", "url": url, "passwordSecretArn": arn}}).to_string();
        let envs = [("TARGETS_JSON", targets.as_str()), ("RUST_LOG", "trace"), ("AWS_LAMBDA_FUNCTION_TIMEOUT", "12")];
        let run = run_binary(env!("CARGO_BIN_EXE_incident-clear-cache"), &event, &envs);
        assert_eq!(run.stdout["statusCode"], status, "{path}: {}", run.stdout);
        assert_password_kept_out(&run, &password, path);
    }
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_bad_request_is_a_clear_4xx_with_no_aws_call() {
    let redis = TempRedis::start(&[]);
    let (w, _) = world(&redis.url(), "unused-Pa55").await;
    let invoke = async |payload| handler(action_event(payload), &w.deps).await.unwrap();
    let cases = assert_action_corpus(&w.proxy, ActionKind::ClearCache, invoke).await;
    assert!(cases >= 30, "{cases} cases");
}

#[test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
fn fuzzed_requests_never_panic_and_invalid_ones_make_no_aws_call() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    // No real Redis behind "cache": a fuzzed request that is valid fails to connect, quickly.
    let down = format!(
        "redis://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let (w, _) = runtime.block_on(world(&down, "unused-Pa55"));
    fuzz_action(&w.proxy, ActionKind::ClearCache, |payload| {
        runtime.block_on(handler(action_event(payload), &w.deps)).unwrap()
    });
}
