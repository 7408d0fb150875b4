//! `incident-clear-cache`: clears a Redis cache.
//!
//! Modes: `flush` (default) runs `FLUSHALL ASYNC`; `pattern` removes the keys matching `keyPattern`
//! with SCAN + UNLINK in batches (never KEYS), stopping cleanly before the deadline; `reboot`
//! reboots the ElastiCache nodes one at a time (see [`reboot`]). The credentials come from Secrets
//! Manager (a password, or an ACL user's name and password), are cached across warm invocations,
//! are fetched again once after an authentication failure (rotation), and never appear in a log
//! line or a response.

pub mod reboot;

use std::collections::HashMap;
use std::time::Duration;

use lambda_runtime::LambdaEvent;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, IntoConnectionInfo, RedisError};
use serde_json::{Value, json};
use shared::FunctionError;
use shared::action::{Failure, Outcome, PlannedCall, run_action, target_name, unsupported_target};
use shared::config::{RedisTarget, Target, TargetConfig};
use shared::contract::{ActionKind, ActionRequest, ActionResponse, ClearMode};
use shared::deadline::Deadline;
use tokio::sync::Mutex;

/// Connecting must fail fast: a Lambda in the wrong subnet should hear about it in seconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One command (SCAN, UNLINK, FLUSHALL ASYNC, INFO) on a healthy server takes milliseconds.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// The pattern scan stops this long before the deadline, to report how far it got.
pub const STOP_MARGIN: Duration = Duration::from_millis(1500);
/// Keys asked for per SCAN step: large enough for few round trips, small enough not to block Redis.
pub const SCAN_COUNT: u32 = 1000;

/// Built once per cold start in `main`.
pub struct Deps {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub targets: TargetConfig,
    pub passwords: PasswordSource,
    /// How often a rebooting node is looked at ([`reboot::DEFAULT_POLL`]).
    pub reboot_poll: Duration,
}

/// How the function authenticates to Redis: the default user's password, or an ACL user.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// An ElastiCache RBAC / Redis ACL user; `None` authenticates the default user.
    pub username: Option<String>,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // Never the password, even in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// Where Redis credentials come from: Secrets Manager, cached per secret for warm invocations,
/// or `REDIS_PASSWORD` as a local fallback for targets without `passwordSecretArn`.
pub struct PasswordSource {
    local_fallback: Option<String>,
    cache: Mutex<HashMap<String, Credentials>>,
}

impl PasswordSource {
    pub fn new(local_fallback: Option<String>) -> Self {
        Self { local_fallback, cache: Mutex::new(HashMap::new()) }
    }

    pub fn from_env() -> Self {
        Self::new(std::env::var("REDIS_PASSWORD").ok().filter(|p| !p.is_empty()))
    }

    /// The credentials for a target; `refresh` bypasses the cache (after an authentication failure).
    async fn get(
        &self,
        secrets: &aws_sdk_secretsmanager::Client,
        arn: Option<&str>,
        refresh: bool,
    ) -> Result<Option<Credentials>, FunctionError> {
        let Some(arn) = arn else {
            return Ok(self.local_fallback.clone().map(|password| Credentials { username: None, password }));
        };
        let mut cache = self.cache.lock().await;
        if !refresh && let Some(password) = cache.get(arn) {
            return Ok(Some(password.clone()));
        }
        let out =
            secrets.get_secret_value().secret_id(arn).send().await.map_err(|err| match err.as_service_error() {
                Some(e) if e.is_resource_not_found_exception() => {
                    FunctionError::ResourceNotFound { kind: "Secrets Manager secret", id: arn.to_owned() }
                }
                _ => FunctionError::aws("SecretsManager GetSecretValue", &err),
            })?;
        let text = out.secret_string().ok_or_else(|| FunctionError::Aws {
            operation: "SecretsManager GetSecretValue".into(),
            code: "NoSecretString".into(),
            message: format!("secret {arn} has no string value; store the password as text or JSON"),
        })?;
        let credentials = credentials_from_secret(text).map_err(|problem| FunctionError::Aws {
            operation: "SecretsManager GetSecretValue".into(),
            code: "UnusableSecret".into(),
            message: format!("secret {arn}: {problem}"),
        })?;
        cache.insert(arn.to_owned(), credentials.clone());
        Ok(Some(credentials))
    }
}

/// A secret string is the plain password, or JSON with a `password` field (the RDS/ElastiCache
/// rotation shape) and, for an ElastiCache RBAC / Redis ACL user, a `username`.
pub fn credentials_from_secret(secret: &str) -> Result<Credentials, &'static str> {
    match serde_json::from_str::<Value>(secret) {
        Ok(Value::Object(fields)) => {
            let password = match fields.get("password") {
                Some(Value::String(password)) if !password.is_empty() => password.clone(),
                _ => return Err("the secret is JSON but has no non-empty \"password\" field"),
            };
            let username = match fields.get("username") {
                None | Some(Value::Null) => None,
                Some(Value::String(name)) if !name.is_empty() => Some(name.clone()),
                Some(_) => return Err("the secret's \"username\" is not a non-empty string"),
            };
            Ok(Credentials { username, password })
        }
        _ if secret.is_empty() => Err("the secret is empty"),
        _ => Ok(Credentials { username: None, password: secret.to_owned() }),
    }
}

/// `host:port` of a Redis URL, for messages: never the credentials, never the password.
pub fn redis_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    authority.rsplit_once('@').map_or(authority, |(_, host)| host).to_owned()
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    Ok(run_action(event, ActionKind::ClearCache, |request, _, deadline| clear(request, deadline, deps)).await)
}

async fn clear(request: ActionRequest, deadline: Deadline, deps: &Deps) -> Result<Outcome, Failure> {
    let name = target_name(&request);
    let target = match deps.targets.get(name)? {
        Target::Redis(target) => target,
        other => return Err(unsupported_target(ActionKind::ClearCache, name, other, &["redis"]).into()),
    };
    match request.clear_mode() {
        ClearMode::Reboot => {
            let spec = target.elasticache.as_ref().ok_or_else(|| {
                FunctionError::invalid(
                    "mode",
                    format!(
                        "\"reboot\" needs an ElastiCache cluster, and target \"{name}\" has no elasticache settings"
                    ),
                )
            })?;
            reboot::reboot(&deps.elasticache, spec, request.dry_run, deps.reboot_poll, deadline).await
        }
        mode => clear_redis(deps, target, mode, request.key_pattern.as_deref(), request.dry_run, deadline).await,
    }
}

/// Runs the Redis work, fetching the password again once if the server refuses it.
async fn clear_redis(
    deps: &Deps,
    target: &RedisTarget,
    mode: ClearMode,
    pattern: Option<&str>,
    dry_run: bool,
    deadline: Deadline,
) -> Result<Outcome, Failure> {
    let host = redis_host(&target.url);
    let arn = target.password_secret_arn.as_deref();
    let mut refresh = false;
    loop {
        let credentials = deps.passwords.get(&deps.secrets, arn, refresh).await?;
        let result = match connect(&target.url, credentials, deadline).await {
            Ok(mut con) => match mode {
                ClearMode::Pattern => clear_pattern(&mut con, &host, pattern.unwrap_or("*"), dry_run, deadline).await,
                _ => flush(&mut con, &host, dry_run).await.map_err(RedisFailure::Redis),
            },
            Err(err) => Err(RedisFailure::Redis(err)),
        };
        match result {
            Ok(outcome) => return Ok(outcome),
            Err(RedisFailure::Redis(err)) if is_auth_error(&err) && arn.is_some() && !refresh => {
                tracing::warn!(host = %host, "Redis refused the cached password; fetching it again in case it was rotated");
                refresh = true;
            }
            Err(RedisFailure::Redis(err)) => return Err(redis_error(&host, &err).into()),
            Err(RedisFailure::Stopped(failure)) => return Err(*failure),
        }
    }
}

enum RedisFailure {
    Redis(RedisError),
    /// The pattern scan stopped at the deadline, with its progress in the failure's details.
    Stopped(Box<Failure>),
}

impl From<RedisError> for RedisFailure {
    fn from(err: RedisError) -> Self {
        Self::Redis(err)
    }
}

fn is_auth_error(err: &RedisError) -> bool {
    err.kind() == ErrorKind::AuthenticationFailed || matches!(err.code(), Some("NOAUTH" | "WRONGPASS"))
}

fn redis_error(host: &str, err: &RedisError) -> FunctionError {
    let message = if is_auth_error(err) {
        "authentication failed; check the credentials secret (passwordSecretArn: the password, and the ACL \
         username if the cache uses one)"
            .to_owned()
    } else if err.is_timeout() {
        format!("timed out ({err}); check that the function can reach the cache (VPC, security group)")
    } else if err.is_connection_refusal() || err.is_io_error() {
        format!("unreachable ({err}); check the URL, the VPC settings and the security group")
    } else {
        err.to_string()
    };
    FunctionError::Redis { host: host.to_owned(), message }
}

async fn connect(
    url: &str,
    credentials: Option<Credentials>,
    deadline: Deadline,
) -> Result<MultiplexedConnection, RedisError> {
    let mut info = url.into_connection_info()?;
    if let Some(Credentials { username, password }) = credentials {
        info.redis.username = username;
        info.redis.password = Some(password);
    }
    let client = redis::Client::open(info)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT.min(deadline.remaining()))
        .set_response_timeout(COMMAND_TIMEOUT);
    client.get_multiplexed_async_connection_with_config(&config).await
}

/// Total keys over every database, from `INFO keyspace` (`db0:keys=5,expires=0,...`).
pub fn keys_in_keyspace(info: &str) -> u64 {
    info.lines()
        .filter(|line| line.starts_with("db"))
        .filter_map(|line| line.split_once(':'))
        .filter_map(|(_, stats)| stats.split(',').find_map(|kv| kv.strip_prefix("keys=")))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

async fn key_count(con: &mut MultiplexedConnection) -> Result<u64, RedisError> {
    let info: String = redis::cmd("INFO").arg("keyspace").query_async(con).await?;
    Ok(keys_in_keyspace(&info))
}

async fn flush(con: &mut MultiplexedConnection, host: &str, dry_run: bool) -> Result<Outcome, RedisError> {
    let before = key_count(con).await?;
    let resource = format!("Redis {host}");
    if dry_run {
        let call = PlannedCall::new("Redis FLUSHALL", json!({"host": host, "args": ["ASYNC"]}));
        return Ok(Outcome {
            message: format!("Dry run: would flush {resource} ({before} keys)"),
            resource,
            before: json!({"keys": before}),
            after: json!({"keys": before}),
            details: json!({"mode": "flush", "host": host, "keysBefore": before, "keysAfter": before, "keysRemoved": 0,
                            "plannedCalls": [call]}),
        });
    }
    // ASYNC: the keys leave the keyspace at once and memory is reclaimed in the background, so a
    // large cache does not block Redis (and everyone using it) while it is freed.
    redis::cmd("FLUSHALL").arg("ASYNC").query_async::<()>(con).await?;
    let after = key_count(con).await?;
    Ok(Outcome {
        message: format!("Cache cleared: {} keys removed from {resource}", before.saturating_sub(after)),
        resource,
        before: json!({"keys": before}),
        after: json!({"keys": after}),
        details: json!({"mode": "flush", "host": host, "keysBefore": before, "keysAfter": after,
                        "keysRemoved": before.saturating_sub(after)}),
    })
}

async fn clear_pattern(
    con: &mut MultiplexedConnection,
    host: &str,
    pattern: &str,
    dry_run: bool,
    deadline: Deadline,
) -> Result<Outcome, RedisFailure> {
    let before = key_count(con).await?;
    let resource = format!("Redis {host}");
    let (mut cursor, mut matched, mut removed, mut steps) = (0u64, 0u64, 0u64, 0u64);
    let complete = loop {
        let budget = deadline.remaining().saturating_sub(STOP_MARGIN);
        let step = async {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(con)
                .await?;
            let unlinked = if keys.is_empty() || dry_run {
                0
            } else {
                redis::cmd("UNLINK").arg(&keys).query_async::<u64>(con).await?
            };
            Ok::<_, RedisError>((next, keys.len() as u64, unlinked))
        };
        match tokio::time::timeout(budget, step).await {
            Ok(result) => {
                let (next, found, unlinked) = result?;
                matched += found;
                removed += unlinked;
                steps += 1;
                cursor = next;
                if cursor == 0 {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    // Keys written while the scan ran can be removed too, so `removed` may exceed `before`.
    let estimate = before.saturating_sub(removed);
    let after = if complete || !deadline.expired() { key_count(con).await.unwrap_or(estimate) } else { estimate };
    let mut details = json!({
        "mode": "pattern", "host": host, "keyPattern": pattern, "keysBefore": before, "keysAfter": after,
        "keysMatched": matched, "keysRemoved": removed, "scanSteps": steps, "complete": complete,
    });
    if !complete {
        details["resumeCursor"] = json!(cursor);
        let error = FunctionError::DeadlineExceeded {
            during: format!("clear_cache pattern scan (stopped cleanly after {steps} steps; {removed} keys removed)"),
        };
        return Err(RedisFailure::Stopped(Box::new(Failure { error, details })));
    }
    if dry_run {
        details["plannedCalls"] = json!([PlannedCall::new(
            "Redis UNLINK",
            json!({"host": host, "keysMatching": pattern, "keyCount": matched, "via": "SCAN MATCH in batches"})
        )]);
        return Ok(Outcome {
            message: format!("Dry run: would remove {matched} keys matching {pattern:?} from {resource}"),
            resource,
            before: json!({"keys": before}),
            after: json!({"keys": before}),
            details,
        });
    }
    Ok(Outcome {
        message: format!("Removed {removed} keys matching {pattern:?} from {resource}"),
        resource,
        before: json!({"keys": before}),
        after: json!({"keys": after}),
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_hold_a_plain_password_or_json_with_one_and_maybe_a_user() {
        let plain = |password: &str| Credentials { username: None, password: password.into() };
        assert_eq!(credentials_from_secret("s3cret").unwrap(), plain("s3cret"));
        assert_eq!(credentials_from_secret(r#"{"password":"p@ss"}"#).unwrap(), plain("p@ss"));
        assert_eq!(
            credentials_from_secret(r#"{"username":"oncall","password":"p@ss"}"#).unwrap(),
            Credentials { username: Some("oncall".into()), password: "p@ss".into() }
        );
        assert!(credentials_from_secret(r#"{"user":"x"}"#).is_err());
        assert!(credentials_from_secret(r#"{"username":7,"password":"p"}"#).is_err());
        assert!(credentials_from_secret("").is_err());
        // A JSON string or number is still a plain password.
        assert_eq!(credentials_from_secret("12345").unwrap(), plain("12345"));
        let debug = format!("{:?}", credentials_from_secret(r#"{"username":"u","password":"hunter2"}"#).unwrap());
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn hosts_are_named_without_credentials() {
        assert_eq!(redis_host("redis://127.0.0.1:6390/2"), "127.0.0.1:6390");
        assert_eq!(redis_host("rediss://cache.example.com:6379"), "cache.example.com:6379");
        assert_eq!(redis_host("redis://user:hunter2@cache:6379/0"), "cache:6379");
    }

    #[test]
    fn keyspace_info_is_summed_over_databases() {
        let info = "# Keyspace\r\ndb0:keys=5,expires=0,avg_ttl=0\r\ndb3:keys=12,expires=1,avg_ttl=10\r\n";
        assert_eq!(keys_in_keyspace(info), 17);
        assert_eq!(keys_in_keyspace("# Keyspace\r\n"), 0);
    }
}
