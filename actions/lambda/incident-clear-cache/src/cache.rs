//! `flush` and `pattern` modes on the Redis server itself: observe (the key count, and for a
//! pattern dry run the matching keys), plan, apply.

use std::time::Duration;

use incident_core::action::{Applied, Failure, Progress, View};
use incident_core::plan::Plan;
use incident_core::state::State;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, IntoConnectionInfo, RedisError};
use shared::FunctionError;
use shared::deadline::Deadline;

use crate::details::{ClearDetails, FlushDetails, PatternDetails};
use crate::{ClearChange, ClearMode, Credentials};

/// Connecting must fail fast: a Lambda in the wrong subnet should hear about it in seconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One command (SCAN, UNLINK, FLUSHALL ASYNC, INFO) on a healthy server takes milliseconds.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// The pattern scan stops this long before the deadline, to report how far it got.
pub const STOP_MARGIN: Duration = Duration::from_millis(1500);
/// Keys asked for per SCAN step: large enough for few round trips, small enough not to block Redis.
pub const SCAN_COUNT: u32 = 1000;

/// What a Redis clear sees before planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisObserved {
    pub host: String,
    /// Keys in every database (`INFO keyspace`).
    pub keys: u64,
    /// For a pattern dry run: how a count-only scan went.
    pub scan: Option<Scan>,
}

/// How far a SCAN (with UNLINK, or counting only) got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    pub matched: u64,
    pub removed: u64,
    pub steps: u64,
    pub cursor: u64,
    pub complete: bool,
}

pub fn is_auth_error(err: &RedisError) -> bool {
    err.kind() == ErrorKind::AuthenticationFailed || matches!(err.code(), Some("NOAUTH" | "WRONGPASS"))
}

/// A Redis failure as the response names it: the host, never the password.
pub fn redis_error(host: &str, err: &RedisError) -> FunctionError {
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

pub async fn connect(
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

/// The key count; and for a preview of a pattern, a count-only scan (what a real run would remove).
pub async fn observe(
    con: &mut MultiplexedConnection,
    host: &str,
    (mode, pattern): (ClearMode, &str),
    view: View,
    deadline: Deadline,
) -> Result<RedisObserved, Failure<ClearDetails>> {
    let keys = key_count(con).await.map_err(|e| redis_error(host, &e))?;
    let scan = match (mode, view) {
        (ClearMode::Pattern, View::Preview) => Some(scan(con, host, pattern, false, deadline).await?),
        _ => None,
    };
    if let Some(stopped) = scan.filter(|s| !s.complete) {
        return Err(stopped_at_deadline(pattern_details(host, pattern, keys, keys, &stopped)));
    }
    Ok(RedisObserved { host: host.to_owned(), keys, scan })
}

pub fn plan(observed: &RedisObserved, mode: ClearMode, pattern: &str) -> Plan<ClearChange, ClearDetails> {
    let host = &observed.host;
    let resource = format!("Redis {host}");
    let keys = observed.keys;
    let (change, intent, details) = match mode {
        ClearMode::Pattern => {
            let change = ClearChange::UnlinkMatching {
                host: host.clone(),
                keys_matching: pattern.to_owned(),
                via: "SCAN MATCH in batches",
            };
            let details = pattern_details(host, pattern, keys, keys, &observed.scan.unwrap_or_default());
            let count = observed.scan.map_or_else(|| "the".to_owned(), |scan| scan.matched.to_string());
            (change, format!("remove {count} keys matching {pattern:?} from {resource}"), details)
        }
        _ => {
            let details = flush_details(host, keys, keys);
            (
                ClearChange::FlushAll { host: host.clone(), args: vec!["ASYNC"] },
                format!("flush {resource} ({keys} keys)"),
                details,
            )
        }
    };
    Plan {
        resource,
        before: State::Redis { keys },
        after: State::Redis { keys },
        changes: vec![change],
        intent,
        done: String::new(),
        no_change: String::new(),
        details,
    }
}

pub async fn apply(
    plan: &Plan<ClearChange, ClearDetails>,
    con: &mut MultiplexedConnection,
    (host, before): (&str, u64),
    deadline: Deadline,
) -> Result<Applied<ClearDetails>, Failure<ClearDetails>> {
    let (message, after, details) = match plan.changes.first() {
        Some(ClearChange::UnlinkMatching { keys_matching, .. }) => {
            let scan = scan(con, host, keys_matching, true, deadline).await?;
            // Keys written while the scan ran can be removed too, so `removed` may exceed `before`.
            let estimate = before.saturating_sub(scan.removed);
            let after =
                if scan.complete || !deadline.expired() { key_count(con).await.unwrap_or(estimate) } else { estimate };
            let details = pattern_details(host, keys_matching, before, after, &scan);
            if !scan.complete {
                return Err(stopped_at_deadline(details));
            }
            (format!("Removed {} keys matching {keys_matching:?} from {}", scan.removed, plan.resource), after, details)
        }
        _ => {
            // ASYNC: the keys leave the keyspace at once and memory is reclaimed in the background,
            // so a large cache does not block Redis (and everyone using it) while it is freed.
            let flushed = redis::cmd("FLUSHALL").arg("ASYNC").query_async::<()>(con).await;
            // A flush whose answer was lost may have run; repeating it is harmless.
            flushed.map_err(|e| match may_have_run(&e) {
                true => {
                    Failure::with_details(redis_error(host, &e), flush_details(host, before, before), Progress::Partway)
                }
                false => Failure::from(redis_error(host, &e)),
            })?;
            let after = key_count(con)
                .await
                .map_err(|e| Failure::after_change(redis_error(host, &e), flush_details(host, before, before)))?;
            let removed = before.saturating_sub(after);
            (
                format!("Cache cleared: {removed} keys removed from {}", plan.resource),
                after,
                flush_details(host, before, after),
            )
        }
    };
    Ok(Applied { message, after: State::Redis { keys: after }, details })
}

fn flush_details(host: &str, before: u64, after: u64) -> ClearDetails {
    ClearDetails::Flush(FlushDetails {
        mode: "flush",
        host: host.to_owned(),
        keys_before: before,
        keys_after: after,
        keys_removed: before.saturating_sub(after),
    })
}

fn pattern_details(host: &str, pattern: &str, before: u64, after: u64, scan: &Scan) -> ClearDetails {
    ClearDetails::Pattern(PatternDetails {
        mode: "pattern",
        host: host.to_owned(),
        key_pattern: pattern.to_owned(),
        keys_before: before,
        keys_after: after,
        keys_matched: scan.matched,
        keys_removed: scan.removed,
        scan_steps: scan.steps,
        complete: scan.complete,
        resume_cursor: (!scan.complete).then_some(scan.cursor),
    })
}

/// A pattern scan stopped before the deadline: the keys it removed are gone, and a retry removes
/// the rest.
fn stopped_at_deadline(details: ClearDetails) -> Failure<ClearDetails> {
    let (steps, removed) = match &details {
        ClearDetails::Pattern(p) => (p.scan_steps, p.keys_removed),
        _ => (0, 0),
    };
    let error = FunctionError::DeadlineExceeded {
        during: format!("clear_cache pattern scan (stopped cleanly after {steps} steps; {removed} keys removed)"),
    };
    let progress = if removed > 0 { Progress::Partway } else { Progress::Nothing };
    Failure::with_details(error, details, progress)
}

/// Whether a failed Redis command may have run all the same: its answer never came.
fn may_have_run(err: &RedisError) -> bool {
    err.is_io_error() || err.is_timeout() || err.is_connection_dropped()
}

/// One SCAN batch, unlinked when `unlink`: (next cursor, keys found, keys unlinked).
async fn scan_step(
    con: &mut MultiplexedConnection,
    cursor: u64,
    pattern: &str,
    unlink: bool,
) -> Result<(u64, u64, u64), RedisError> {
    let mut batch = redis::cmd("SCAN");
    batch.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(SCAN_COUNT);
    let (next, keys): (u64, Vec<Vec<u8>>) = batch.query_async(&mut *con).await?;
    let unlinked = match keys.is_empty() || !unlink {
        true => 0,
        false => redis::cmd("UNLINK").arg(&keys).query_async::<u64>(&mut *con).await?,
    };
    Ok((next, keys.len() as u64, unlinked))
}

/// SCAN MATCH in batches (never KEYS), unlinking each batch when `unlink`; stops cleanly
/// [`STOP_MARGIN`] before the deadline.
async fn scan(
    con: &mut MultiplexedConnection,
    host: &str,
    pattern: &str,
    unlink: bool,
    deadline: Deadline,
) -> Result<Scan, Failure<ClearDetails>> {
    let mut scan = Scan::default();
    loop {
        let budget = deadline.remaining().saturating_sub(STOP_MARGIN);
        let step = scan_step(&mut *con, scan.cursor, pattern, unlink);
        match tokio::time::timeout(budget, step).await {
            Ok(result) => {
                let (next, found, unlinked) = result.map_err(|e| {
                    // Removing keys is safe to repeat: what this scan removed stays removed.
                    let partway = unlink && (scan.removed > 0 || may_have_run(&e));
                    let progress = if partway { Progress::Partway } else { Progress::Nothing };
                    Failure { error: redis_error(host, &e), details: None, progress }
                })?;
                scan.matched += found;
                scan.removed += unlinked;
                scan.steps += 1;
                scan.cursor = next;
                if next == 0 {
                    scan.complete = true;
                    return Ok(scan);
                }
            }
            Err(_) => return Ok(scan),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_info_is_summed_over_databases() {
        let info = "# Keyspace\r\ndb0:keys=5,expires=0,avg_ttl=0\r\ndb3:keys=12,expires=1,avg_ttl=10\r\n";
        assert_eq!(keys_in_keyspace(info), 17);
        assert_eq!(keys_in_keyspace("# Keyspace\r\n"), 0);
    }

    #[test]
    fn a_flush_is_one_flushall_async_and_a_pattern_one_unlink_by_scan() {
        let observed = RedisObserved { host: "h:1".into(), keys: 9, scan: None };
        let flush = plan(&observed, ClearMode::Flush, "");
        assert_eq!(flush.changes, [ClearChange::FlushAll { host: "h:1".into(), args: vec!["ASYNC"] }]);
        assert_eq!(flush.intent, "flush Redis h:1 (9 keys)");
        let counted = RedisObserved { scan: Some(Scan { matched: 4, complete: true, ..Scan::default() }), ..observed };
        let pattern = plan(&counted, ClearMode::Pattern, "session:*");
        assert_eq!(pattern.intent, "remove 4 keys matching \"session:*\" from Redis h:1");
        assert_eq!(serde_json::json!(pattern.details)["keysMatched"], 4);
    }
}
