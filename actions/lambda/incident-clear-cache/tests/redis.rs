#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-clear-cache against a real redis-server and the AWS emulator (Secrets Manager); the
//! rolling reboot of an ElastiCache group is in `reboot.rs`.
//! FLUSHALL empties the whole server, so the tests that use the shared server take a lock;
//! password tests start redis-servers of their own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_elasticache::operation::describe_cache_clusters::DescribeCacheClustersOutput;
use aws_sdk_elasticache::types::{CacheCluster, CacheNode};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use incident_clear_cache::handler;
use incident_core::testing::response_json;
use redis::AsyncCommands;
use serde_json::{Value, json};
use shared::testing::iam::IamWorld;
use shared::testing::{TempRedis, action_event, emulator_config, fixture_files, unique};
use tokio::sync::Mutex;

mod common;
use common::{deps, guarded, invoke, invoke_within, request};

static SHARED_REDIS: Mutex<()> = Mutex::const_new(());

fn shared_redis_url() -> String {
    std::env::var("REDIS_URL").expect("REDIS_URL: run the tests through scripts/test.sh, which starts Redis")
}

async fn redis_con(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Fills the server with `n` keys named `<prefix>:<i>`.
async fn fill(con: &mut redis::aio::MultiplexedConnection, prefix: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.set(format!("{prefix}:{i}"), i).ignore();
        }
        pipe.query_async::<()>(con).await.unwrap();
    }
}

async fn dbsize(con: &mut redis::aio::MultiplexedConnection) -> u64 {
    redis::cmd("DBSIZE").query_async(con).await.unwrap()
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn flush_empties_a_real_redis_and_reports_the_counts() {
    let _lock = SHARED_REDIS.lock().await;
    let url = shared_redis_url();
    let mut con = redis_con(&url).await;
    redis::cmd("FLUSHALL").query_async::<()>(&mut con).await.unwrap();
    fill(&mut con, "page", 250).await;
    let deps = deps(json!({"sessions": {"kind": "redis", "url": url}}), None).await;
    let response = invoke(&deps, request("sessions", json!({}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["details"]["keysBefore"], 250);
    assert_eq!(response["details"]["keysAfter"], 0);
    assert_eq!(response["details"]["keysRemoved"], 250);
    assert_eq!(dbsize(&mut con).await, 0, "Redis is empty");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn pattern_mode_removes_only_the_matching_keys_among_100k() {
    let _lock = SHARED_REDIS.lock().await;
    let url = shared_redis_url();
    let mut con = redis_con(&url).await;
    redis::cmd("FLUSHALL").query_async::<()>(&mut con).await.unwrap();
    fill(&mut con, "session", 40_000).await;
    fill(&mut con, "user", 60_000).await;
    assert_eq!(dbsize(&mut con).await, 100_000);
    let deps = deps(json!({"sessions": {"kind": "redis", "url": url}}), None).await;

    let response = invoke(&deps, request("sessions", json!({"keyPattern": "session:*", "dryRun": true}))).await;
    assert_eq!(response["details"]["keysMatched"], 40_000, "{response}");
    assert_eq!(dbsize(&mut con).await, 100_000, "a dry run removes nothing");

    let response = invoke(&deps, request("sessions", json!({"mode": "pattern", "keyPattern": "session:*"}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["details"]["keysRemoved"], 40_000);
    assert_eq!(response["details"]["complete"], true);
    assert_eq!(response["details"]["keysAfter"], 60_000);
    assert_eq!(dbsize(&mut con).await, 60_000);
    let left: Vec<String> = con.keys("session:*").await.unwrap();
    assert!(left.is_empty());
    let user: Option<i64> = con.get("user:59999").await.unwrap();
    assert_eq!(user, Some(59999), "non-matching keys are untouched");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn pattern_mode_stops_cleanly_at_the_deadline_and_reports_progress() {
    let _lock = SHARED_REDIS.lock().await;
    let url = shared_redis_url();
    let mut con = redis_con(&url).await;
    redis::cmd("FLUSHALL").query_async::<()>(&mut con).await.unwrap();
    fill(&mut con, "tmp", 20_000).await;
    let deps = deps(json!({"sessions": {"kind": "redis", "url": url}}), None).await;
    // A deadline that leaves no time past the stop margin: the scan must stop at once, not be killed.
    let mut event = action_event(request("sessions", json!({"keyPattern": "tmp:*"})));
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    event.context.deadline = now_ms + 1_900;
    let response = response_json(&handler(event, &deps).await.unwrap());
    assert_eq!(response["statusCode"], 504, "{response}");
    assert_eq!(response["details"]["complete"], false);
    assert!(response["details"]["keysRemoved"].is_u64());
    assert!(response["message"].as_str().unwrap().contains("stopped cleanly"), "{response}");
}

/// A scan stopped at its deadline removed part of the keys: that part of the change is done and
/// safe to repeat, so its budget stays spent and its key is given back, and the retry removes the rest.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_scan_stopped_partway_keeps_its_budget_and_its_retry_removes_the_rest() {
    let redis = TempRedis::start(&[]);
    let mut con = redis_con(&redis.url()).await;
    fill(&mut con, "tmp", 400_000).await;
    let (deps, ledger) = guarded(deps(json!({"sessions": {"kind": "redis", "url": redis.url()}}), None).await).await;
    let setup = emulator_config().await;
    for (attempt, left) in [2_000u64, 2_200, 2_600, 3_200].into_iter().enumerate() {
        let incident = format!("INC-P{attempt}");
        let mut stopped = request("sessions", json!({"keyPattern": "tmp:*"}));
        stopped["incidentId"] = json!(incident);
        let response = invoke_within(&deps, stopped.clone(), Duration::from_millis(left)).await;
        let removed = response["details"]["keysRemoved"].as_u64().unwrap_or(0);
        if response["statusCode"] != 504 || removed == 0 {
            eprintln!("attempt {attempt}: not stopped partway ({removed} removed): {}", response["message"]);
            assert_eq!(incident_ledger::testing::spent(&setup, &ledger.table, "BUDGET#fleet").await, 0);
            continue;
        }
        assert_eq!(incident_ledger::testing::spent(&setup, &ledger.table, "BUDGET#fleet").await, 1, "{response}");
        let keys = incident_ledger::testing::key_statuses(&setup, &ledger.table, &incident).await;
        assert!(keys.is_empty(), "the key is given back, so the retry acts: {keys:?}");
        let retry = invoke_within(&deps, stopped, Duration::from_secs(60)).await;
        assert_eq!(retry["success"], true, "{retry}");
        assert_eq!(dbsize(&mut con).await, 0, "the retry removed the rest");
        assert_eq!(incident_ledger::testing::spent(&setup, &ledger.table, "BUDGET#fleet").await, 2);
        return;
    }
    panic!("no scan stopped partway; the test did not exercise the case");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn dry_run_flush_leaves_every_key() {
    let _lock = SHARED_REDIS.lock().await;
    let url = shared_redis_url();
    let mut con = redis_con(&url).await;
    redis::cmd("FLUSHALL").query_async::<()>(&mut con).await.unwrap();
    fill(&mut con, "k", 10).await;
    let deps = deps(json!({"sessions": {"kind": "redis", "url": url}}), None).await;
    let response = invoke(&deps, request("sessions", json!({"dryRun": true}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["details"]["plannedCalls"][0]["call"], "Redis FLUSHALL");
    assert_eq!(dbsize(&mut con).await, 10);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn the_password_comes_from_secrets_manager_and_is_fetched_again_after_rotation() {
    let redis = TempRedis::start(&["--requirepass", "first-Pa55"]);
    let config = emulator_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let secret = secrets
        .create_secret()
        .name(unique("redis-password"))
        .secret_string(r#"{"username": "default", "password": "first-Pa55"}"#)
        .send()
        .await
        .unwrap();
    let arn = secret.arn().unwrap().to_owned();
    let deps = deps(json!({"cache": {"kind": "redis", "url": redis.url(), "passwordSecretArn": arn}}), None).await;
    let mut admin = redis::Client::open(format!("redis://:first-Pa55@127.0.0.1:{}", redis.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    fill(&mut admin, "a", 5).await;
    assert_eq!(invoke(&deps, request("cache", json!({}))).await["details"]["keysRemoved"], 5);

    // Rotate: the server and the secret change; the function's cached password is now stale.
    secrets.put_secret_value().secret_id(&arn).secret_string("second-Pa55").send().await.unwrap();
    redis::cmd("CONFIG").arg("SET").arg("requirepass").arg("second-Pa55").query_async::<()>(&mut admin).await.unwrap();
    fill(&mut admin, "b", 7).await;
    let response = invoke(&deps, request("cache", json!({}))).await;
    assert_eq!(response["success"], true, "fetched the rotated password: {response}");
    assert_eq!(response["details"]["keysRemoved"], 7);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_wrong_password_is_a_502_naming_the_host_never_the_password() {
    let redis = TempRedis::start(&["--requirepass", "right-Pa55"]);
    let deps = deps(json!({"cache": {"kind": "redis", "url": redis.url()}}), Some("wrong-Pa55-x9")).await;
    let response = invoke(&deps, request("cache", json!({}))).await;
    assert_eq!(response["statusCode"], 502, "{response}");
    assert_eq!(response["error"]["code"], "REDIS_ERROR");
    let text = response.to_string();
    assert!(text.contains(&format!("127.0.0.1:{}", redis.port)), "{text}");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(!text.contains("wrong-Pa55-x9") && !text.contains("right-Pa55"), "{text}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_unreachable_redis_is_a_prompt_502() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let deps = deps(json!({"cache": {"kind": "redis", "url": format!("redis://127.0.0.1:{port}")}}), None).await;
    let started = Instant::now();
    let response = invoke(&deps, request("cache", json!({}))).await;
    assert_eq!(response["statusCode"], 502, "{response}");
    assert!(response["message"].as_str().unwrap().contains(&format!("127.0.0.1:{port}")));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn keys_written_during_a_pattern_scan_cannot_underflow_the_report() {
    // A server of this test's own: a writer adds matching keys while the scan runs, so the scan
    // removes more keys than the server held when it started (the report must not underflow).
    let redis = TempRedis::start(&[]);
    let mut con = redis_con(&redis.url()).await;
    let deps = deps(json!({"sessions": {"kind": "redis", "url": redis.url()}}), None).await;
    for attempt in 0..3 {
        redis::cmd("FLUSHALL").query_async::<()>(&mut con).await.unwrap();
        fill(&mut con, "session", 50_000).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (mut con, stop) = (redis_con(&redis.url()).await, stop.clone());
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut pipe = redis::pipe();
                    for i in n..n + 500 {
                        pipe.set(format!("session:new:{i}"), i).ignore();
                    }
                    pipe.query_async::<()>(&mut con).await.unwrap();
                    n += 500;
                }
                n
            })
        };
        let response = invoke(&deps, request("sessions", json!({"keyPattern": "session:*"}))).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = writer.await.unwrap();
        assert_eq!(response["success"], true, "{response}");
        let (before, removed) =
            (response["details"]["keysBefore"].as_u64().unwrap(), response["details"]["keysRemoved"].as_u64().unwrap());
        assert!(response["details"]["keysAfter"].is_u64(), "{response}");
        if removed > before {
            assert!(written > 0);
            return; // the case that used to panic in debug builds and wrap in release
        }
        eprintln!("attempt {attempt}: the writer's keys were not reached by the scan ({removed} <= {before})");
    }
    panic!("the scan never removed more keys than it started with; the test did not exercise the case");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_acl_user_from_the_secret_authenticates_as_that_user() {
    let redis = TempRedis::start(&["--requirepass", "default-Pa55"]);
    let mut admin = redis::Client::open(format!("redis://:default-Pa55@127.0.0.1:{}", redis.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // An ElastiCache RBAC-style user that may flush and count keys, and nothing it does not need.
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("oncall")
        .arg(&["on", ">oncall-Pa55", "~*", "+flushall", "+info", "+scan", "+unlink", "+ping", "+client", "+hello"][..])
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    fill(&mut admin, "acl", 12).await;
    let config = emulator_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let secret_of = async |text: &str| {
        let secret = secrets.create_secret().name(unique("redis-acl")).secret_string(text).send().await.unwrap();
        secret.arn().unwrap().to_owned()
    };
    let good = secret_of(r#"{"username": "oncall", "password": "oncall-Pa55"}"#).await;
    let wrong_user = secret_of(r#"{"username": "nobody", "password": "oncall-Pa55"}"#).await;
    let deps = deps(
        json!({"cache": {"kind": "redis", "url": redis.url(), "passwordSecretArn": good},
               "other": {"kind": "redis", "url": format!("{}/1", redis.url()), "passwordSecretArn": wrong_user}}),
        None,
    )
    .await;
    let response = invoke(&deps, request("cache", json!({}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["details"]["keysRemoved"], 12);
    assert_eq!(dbsize(&mut admin).await, 0);
    let who: String =
        redis::cmd("ACL").arg("LOG").query_async::<Vec<redis::Value>>(&mut admin).await.map(|_| String::new()).unwrap();
    drop(who);
    let refused = invoke(&deps, request("other", json!({}))).await;
    assert_eq!(refused["statusCode"], 502, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("authentication failed"), "{refused}");
    assert!(!refused.to_string().contains("oncall-Pa55"));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_fixture_is_answered_as_expected() {
    let _lock = SHARED_REDIS.lock().await;
    let url = shared_redis_url();
    // moto answers DescribeCacheClusters without node info, so the reboot fixture (a dry run) reads the
    // cluster from a mock; the mock has no RebootCacheCluster rule, so a reboot would fail the test.
    let describe = mock!(aws_sdk_elasticache::Client::describe_cache_clusters).then_output(|| {
        DescribeCacheClustersOutput::builder()
            .cache_clusters(
                CacheCluster::builder()
                    .cache_cluster_id("cache-001")
                    .cache_cluster_status("available")
                    .cache_nodes(CacheNode::builder().cache_node_id("0001").cache_node_status("available").build())
                    .build(),
            )
            .build()
    });
    let cluster = "cache-001";
    let world = json!({
        "cache": {"kind": "redis", "url": format!("{url}/1"),
                  "elasticache": {"cacheClusterId": cluster, "scaleBy": "nodes", "maxNodes": 2}},
        "sessions": {"kind": "redis", "url": url},
        "api": {"kind": "ecs_service", "cluster": "c", "service": "s",
                "desiredCount": {"low": 1, "medium": 1, "high": 1, "critical": 1}, "maxCount": 1},
    });
    let mut deps = deps(world, None).await;
    deps.action.elasticache = mock_client!(aws_sdk_elasticache, RuleMode::MatchAny, [&describe]).into();
    let mut con = redis_con(&url).await;
    for file in fixture_files("incident-clear-cache") {
        redis::cmd("FLUSHALL").query_async::<()>(&mut con).await.unwrap();
        fill(&mut con, "session", 20).await;
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let response = invoke(&deps, payload.clone()).await;
        assert_eq!(response["success"], true, "{}: {response}", file.display());
        if payload["dryRun"] == true {
            assert_eq!(dbsize(&mut con).await, 20, "{}", file.display());
        }
    }
    for file in fixture_files("incident-clear-cache/invalid") {
        redis::cmd("FLUSHALL").query_async::<()>(&mut con).await.unwrap();
        fill(&mut con, "session", 20).await;
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let response = invoke(&deps, payload).await;
        let status = response["statusCode"].as_u64().unwrap();
        assert!((400..500).contains(&status), "{}: {response}", file.display());
        assert_eq!(dbsize(&mut con).await, 20, "{}", file.display());
    }
}

/// `rediss://` goes over TLS (rustls). The test server's certificate is self-signed, so the
/// handshake must be refused by certificate verification: a clear 502 naming the host, no panic,
/// and never a fall back to plain text.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn rediss_urls_use_tls_and_verify_the_certificate() {
    let dir = std::env::temp_dir().join(unique("tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let redis = TempRedis::start_tls(&dir);
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let deps = deps(json!({"cache": {"kind": "redis", "url": url}}), None).await;
    let response = invoke(&deps, request("cache", json!({}))).await;
    assert_eq!(response["statusCode"], 502, "{response}");
    let message = response["message"].as_str().unwrap();
    assert!(message.contains(&format!("127.0.0.1:{}", redis.port)), "{message}");
    assert!(message.to_lowercase().contains("certificate") || message.contains("UnknownIssuer"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// How many times each command that removes keys ran on the server since the last `CONFIG RESETSTAT`.
async fn removals(con: &mut redis::aio::MultiplexedConnection) -> Vec<(String, u64)> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(con).await.unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?.parse().ok()?;
            ["flushall", "flushdb", "unlink", "del"].contains(&name).then(|| (name.to_owned(), calls))
        })
        .collect()
}

/// Redis commands are not AWS calls, so the server itself is asked: a real run runs the commands
/// the dry run planned (FLUSHALL; or UNLINK of the matching keys) and no other command that removes keys.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_dry_run_plans_exactly_the_commands_a_real_run_runs() {
    let server = TempRedis::start(&[]);
    let mut con = redis_con(&server.url()).await;
    let deps = deps(json!({"own": {"kind": "redis", "url": server.url()}}), None).await;
    for (params, command) in [(json!({}), "flushall"), (json!({"keyPattern": "session:*"}), "unlink")] {
        fill(&mut con, "session", 500).await;
        fill(&mut con, "user", 300).await;
        let mut dry_params = params.clone();
        dry_params["dryRun"] = json!(true);
        let dry = invoke(&deps, request("own", dry_params)).await;
        let planned = dry["details"]["plannedCalls"].as_array().unwrap().clone();
        assert_eq!(planned.len(), 1, "{dry}");
        assert_eq!(planned[0]["call"], format!("Redis {}", command.to_uppercase()), "{dry}");
        redis::cmd("CONFIG").arg("RESETSTAT").query_async::<()>(&mut con).await.unwrap();
        let real = invoke(&deps, request("own", params.clone())).await;
        assert_eq!(real["success"], true, "{real}");
        let ran = removals(&mut con).await;
        assert_eq!(ran.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), [command], "{ran:?}");
        let left = if command == "flushall" { 0 } else { 300 };
        assert_eq!(dbsize(&mut con).await, left, "{params}");
        if let Some(pattern) = planned[0]["params"]["keysMatching"].as_str() {
            let matching: Vec<String> = con.keys(pattern).await.unwrap();
            assert!(matching.is_empty(), "the planned pattern {pattern} is what was removed");
        }
        redis::cmd("FLUSHALL").query_async::<()>(&mut con).await.unwrap();
    }
}

/// IAM world (deployments/tests/check_iam.py checks every call below against actions.yaml's
/// ClearRole, rendered with this target's secret as RedisSecretArns, as deploy.sh derives it):
/// the password comes from exactly that secret; another target's secret is out of reach.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_flush_with_the_targets_own_secret() {
    let redis = TempRedis::start(&["--requirepass", "iam-Pa55"]);
    let secrets = aws_sdk_secretsmanager::Client::new(&emulator_config().await);
    let create = |name: String, value: &'static str| secrets.create_secret().name(name).secret_string(value).send();
    let own = create(unique("iam-redis"), "iam-Pa55").await.unwrap().arn().unwrap().to_owned();
    let other = create(unique("iam-other"), "other").await.unwrap().arn().unwrap().to_owned();
    let map = json!({"cache": {"kind": "redis", "url": redis.url(), "passwordSecretArn": own}});
    // RedisSecretArns as deploy.sh derives it from the map: the ARN, and the -?????? form IAM matches.
    let world = IamWorld::of(env!("CARGO_PKG_NAME"), "actions.yaml")
        .parameter("TargetCluster", "production")
        .targets(&map)
        .untouchable("secretsmanager:GetSecretValue", &other)
        .write();
    let mut deps = deps(map, None).await;
    let config = world.config().await;
    deps.action.secrets = aws_sdk_secretsmanager::Client::new(&config).into();
    deps.action.elasticache = aws_sdk_elasticache::Client::new(&config).into();
    let response = invoke(&deps, request("cache", json!({}))).await;
    assert_eq!(response["success"], true, "{response}");
}

/// A plan token approves the calls a human read, not the key count: keys written between the dry
/// run and the approval (a live cache) leave "FLUSHALL ASYNC" and "UNLINK what matches" as they
/// were, so the approved clear applies. A token for another clear is refused with the plan a dry
/// run would show now, the keys it would remove counted.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_approved_clear_applies_on_a_live_cache() {
    let redis = TempRedis::start(&[]);
    let mut con = redis_con(&redis.url()).await;
    fill(&mut con, "session", 10).await;
    let deps = deps(json!({"sessions": {"kind": "redis", "url": redis.url()}}), None).await;
    let pattern = json!({"mode": "pattern", "keyPattern": "session:*"});
    let mut dry = pattern.clone();
    dry["dryRun"] = json!(true);
    let preview = invoke(&deps, request("sessions", dry)).await;
    assert_eq!(
        preview["message"],
        "Dry run: would remove 10 keys matching \"session:*\" from Redis ".to_owned() + &redis.url()[8..]
    );
    let token = preview["details"]["planToken"].as_str().unwrap().to_owned();
    let _: () = con.set("session:new", 1).await.unwrap(); // a user logged in meanwhile
    let mut approved = pattern.clone();
    approved["planToken"] = json!(token);
    let applied = invoke(&deps, request("sessions", approved)).await;
    assert_eq!(applied["success"], true, "{applied}");
    assert_eq!(applied["details"]["keysRemoved"], 11);
    // The pattern's token sent with a flush: another call, refused with the flush as a dry run shows it.
    fill(&mut con, "page", 3).await;
    let stale = invoke(&deps, request("sessions", json!({"mode": "flush", "planToken": token}))).await;
    assert_eq!(stale["error"]["code"], "STALE_PLAN", "{stale}");
    assert_eq!(stale["details"]["plannedCalls"][0]["call"], "Redis FLUSHALL");
    assert!(stale["message"].as_str().unwrap().contains("would flush Redis"), "{stale}");
    assert_eq!(dbsize(&mut con).await, 3, "nothing cleared");
    let pattern_stale =
        invoke(&deps, request("sessions", json!({"mode": "pattern", "keyPattern": "page:*", "planToken": token})))
            .await;
    assert!(
        pattern_stale["message"].as_str().unwrap().contains("would remove 3 keys matching"),
        "counted as a dry run counts: {pattern_stale}"
    );
}
