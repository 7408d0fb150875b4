//! The drain watcher. Each task polls its deployment's SSM state parameter; on the first
//! `draining` it starts a grace timer, and once the grace has passed it reports `ShutdownReady = 1`.
//! One CloudWatch Embedded Metric Format line per poll goes to stdout (namespace `App/Drain`,
//! dimensions `deployment_name`, `deployment_id`, `task_id`), which the reaper reads. Rust apps use
//! [`DrainWatcher`] (`is_draining()`, `is_shutdown_ready()`); any other app runs the
//! `fluidity-drain-watcher` sidecar, which also writes the state to a file and serves it over HTTP.
//!
//! It depends on no Lambda runtime and on no AWS SDK but SSM's, since applications embed it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shared::emf::{MetricRecord, Unit};
use tokio::time::Instant;

/// A setting the watcher cannot start with; it names the variable.
#[derive(Debug, thiserror::Error)]
pub enum DrainConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {problem}")]
    Invalid { name: &'static str, problem: String },
}

pub const NAMESPACE: &str = "App/Drain";
pub const METRIC: &str = "ShutdownReady";
/// Parameter Store allows 40 GetParameter calls a second per account and region by default, shared
/// with every other application: at one call per task every 45 s (30 to 60 s, jittered), 1,800
/// tasks use all of it, where a 5 s poll let 200 do so. A task then sees `draining` up to a minute
/// late, well inside the reaper's CONSEC periods of 300 s.
pub const DEFAULT_POLL: Duration = Duration::from_secs(45);
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainConfig {
    /// `DRAIN_PARAM`, default `/apps/<DEPLOYMENT_NAME>/<DEPLOYMENT_ID>/state`.
    pub parameter: String,
    /// `DRAIN_POLL_SECONDS` (default 45): the mean wait between polls, each jittered by up to a third
    /// either way so that the tasks of one deployment do not poll in step.
    pub poll: Duration,
    /// `DRAIN_GRACE_SECONDS` (default 30).
    pub grace: Duration,
    pub deployment_name: String,
    pub deployment_id: String,
    pub task_id: String,
}

impl DrainConfig {
    /// From the task definition's environment; the task id from the ECS metadata endpoint or `TASK_ID`.
    pub fn from_env() -> Result<Self, DrainConfigError> {
        let required = |name: &'static str| std::env::var(name).map_err(|_| DrainConfigError::Missing(name));
        let seconds = |name: &'static str, default: Duration| -> Result<Duration, DrainConfigError> {
            match std::env::var(name) {
                Err(_) => Ok(default),
                Ok(text) => {
                    text.trim().parse::<u64>().ok().filter(|s| (1..=3600).contains(s)).map(Duration::from_secs).ok_or(
                        DrainConfigError::Invalid {
                            name,
                            problem: format!("{text:?} must be whole seconds from 1 to 3600"),
                        },
                    )
                }
            }
        };
        let deployment_name = required("DEPLOYMENT_NAME")?;
        let deployment_id = required("DEPLOYMENT_ID")?;
        let parameter = std::env::var("DRAIN_PARAM")
            .unwrap_or_else(|_| fluidity_names::deployment::state_parameter(&deployment_name, &deployment_id));
        let task_id = match std::env::var("ECS_CONTAINER_METADATA_URI_V4") {
            Ok(uri) => task_id_from_metadata(&uri)
                .map_err(|problem| DrainConfigError::Invalid { name: "ECS_CONTAINER_METADATA_URI_V4", problem })?,
            Err(_) => required("TASK_ID")?,
        };
        Ok(Self {
            parameter,
            poll: seconds("DRAIN_POLL_SECONDS", DEFAULT_POLL)?,
            grace: seconds("DRAIN_GRACE_SECONDS", DEFAULT_GRACE)?,
            deployment_name,
            deployment_id,
            task_id,
        })
    }
}

/// The task id is the last part of the task ARN.
pub fn task_id_from_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `GET <uri>/task` on the ECS task metadata endpoint (v4) → `TaskARN` → its id.
pub fn task_id_from_metadata(uri: &str) -> Result<String, String> {
    let url = format!("{}/task", uri.trim_end_matches('/'));
    let agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(2))).build().new_agent();
    let body = agent
        .get(&url)
        .call()
        .map_err(|e| format!("GET {url} failed: {e}"))?
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {url}: unreadable body: {e}"))?;
    let metadata: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))?;
    let arn = metadata["TaskARN"].as_str().ok_or_else(|| format!("GET {url}: no TaskARN in the answer"))?;
    Ok(task_id_from_arn(arn).to_owned())
}

/// The drain state machine: what the polls have seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainState {
    draining_since: Option<Instant>,
}

impl DrainState {
    /// One poll's result: the parameter's value, or `None` when the poll failed (the last state holds).
    pub fn observe(&mut self, value: Option<&str>, now: Instant) {
        match value {
            Some("draining") => {
                self.draining_since.get_or_insert(now);
            }
            Some(_) => self.draining_since = None,
            None => {}
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining_since.is_some()
    }

    /// Draining for at least the grace period.
    pub fn is_shutdown_ready(&self, now: Instant, grace: Duration) -> bool {
        self.draining_since.is_some_and(|since| now.saturating_duration_since(since) >= grace)
    }
}

/// One EMF line: `ShutdownReady` (0 or 1) with the task's dimensions.
pub fn emf_line(config: &DrainConfig, ready: bool, timestamp_ms: i64) -> String {
    MetricRecord::new(NAMESPACE, timestamp_ms)
        .dimension("deployment_name", &config.deployment_name)
        .dimension("deployment_id", &config.deployment_id)
        .dimension("task_id", &config.task_id)
        .metric(METRIC, f64::from(u8::from(ready)), Unit::Count)
        .to_line()
}

/// The wait before the next poll: `poll` scaled by `fraction` (in [0, 1)) to between two thirds and
/// four thirds of it (30 to 60 s at the default 45 s).
pub fn jittered(poll: Duration, fraction: f64) -> Duration {
    poll.mul_f64(2.0 / 3.0 + fraction.clamp(0.0, 1.0) * 2.0 / 3.0)
}

/// A fraction in [0, 1), from std's randomly keyed hasher (random per process) over the clock: enough
/// to keep tasks out of step, with no random-number crate in the applications that embed the watcher.
fn rand_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    (hasher.finish() % 1_000_000) as f64 / 1_000_000.0
}

/// The watcher running in the background; cheap to clone and ask from request handlers.
#[derive(Debug, Clone, Default)]
pub struct DrainWatcher {
    draining: Arc<AtomicBool>,
    ready: Arc<AtomicBool>,
}

impl DrainWatcher {
    /// Starts polling on the current tokio runtime; every poll's EMF line goes to `emit`.
    pub fn spawn(ssm: aws_sdk_ssm::Client, config: DrainConfig, mut emit: impl FnMut(String) + Send + 'static) -> Self {
        let watcher = Self::default();
        let flags = watcher.clone();
        tokio::spawn(async move {
            let mut state = DrainState::default();
            let mut first = true;
            loop {
                if !std::mem::take(&mut first) {
                    tokio::time::sleep(jittered(config.poll, rand_fraction())).await;
                }
                let value = match ssm.get_parameter().name(&config.parameter).send().await {
                    Ok(out) => out.parameter().and_then(|p| p.value()).map(str::to_owned),
                    Err(err) => {
                        tracing::warn!(parameter = %config.parameter, "drain poll failed, keeping the last state: {err}");
                        None
                    }
                };
                let now = Instant::now();
                state.observe(value.as_deref(), now);
                let ready = state.is_shutdown_ready(now, config.grace);
                flags.draining.store(state.is_draining(), Ordering::Relaxed);
                flags.ready.store(ready, Ordering::Relaxed);
                emit(emf_line(&config, ready, chrono::Utc::now().timestamp_millis()));
            }
        });
        watcher
    }

    /// The deployment was marked draining: stop minting affinity, shorten TTLs.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Draining for at least the grace period: the reaper may retire this task.
    pub fn is_shutdown_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// `{"draining": .., "shutdownReady": ..}`: what the sidecar writes to its file and serves over HTTP.
    pub fn status_json(&self) -> String {
        format!(r#"{{"draining":{},"shutdownReady":{}}}"#, self.is_draining(), self.is_shutdown_ready())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn config() -> DrainConfig {
        DrainConfig {
            parameter: "/apps/myapp/a1/state".into(),
            poll: DEFAULT_POLL,
            grace: Duration::from_secs(30),
            deployment_name: "myapp".into(),
            deployment_id: "a1".into(),
            task_id: "0123456789abcdef".into(),
        }
    }

    #[test]
    fn polls_are_30_to_60_seconds_apart_by_default() {
        assert_eq!(jittered(DEFAULT_POLL, 0.0), Duration::from_secs(30));
        assert_eq!(jittered(DEFAULT_POLL, 0.5), Duration::from_secs(45));
        assert!(jittered(DEFAULT_POLL, 0.999_999) < Duration::from_secs(60));
        let waits: Vec<Duration> = (0..50).map(|_| jittered(DEFAULT_POLL, rand_fraction())).collect();
        assert!(waits.iter().all(|w| (Duration::from_secs(30)..Duration::from_secs(60)).contains(w)), "{waits:?}");
        assert!(waits.iter().any(|w| *w != waits[0]), "jittered, not in step: {waits:?}");
    }

    #[test]
    fn ready_only_after_the_grace_from_the_first_draining() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(30);
        let mut s = DrainState::default();
        s.observe(Some("active"), t0);
        assert!(!s.is_draining() && !s.is_shutdown_ready(t0, grace));
        s.observe(Some("draining"), t0 + Duration::from_secs(5));
        s.observe(Some("draining"), t0 + Duration::from_secs(20));
        assert!(s.is_draining());
        assert!(!s.is_shutdown_ready(t0 + Duration::from_secs(34), grace), "the timer starts at the first draining");
        assert!(s.is_shutdown_ready(t0 + Duration::from_secs(35), grace));
    }

    #[test]
    fn a_failed_poll_keeps_the_last_state_and_active_resets_it() {
        let t0 = Instant::now();
        let mut s = DrainState::default();
        s.observe(Some("draining"), t0);
        s.observe(None, t0 + Duration::from_secs(40));
        assert!(s.is_shutdown_ready(t0 + Duration::from_secs(40), Duration::from_secs(30)));
        s.observe(Some("active"), t0 + Duration::from_secs(45));
        assert!(!s.is_draining());
    }

    #[test]
    fn task_ids_come_from_arns() {
        assert_eq!(task_id_from_arn("arn:aws:ecs:us-east-1:123456789012:task/prod/0123abcd"), "0123abcd");
    }

    /// The CloudWatch Embedded Metric Format specification, checked field by field: a root `_aws`
    /// object with an integer millisecond `Timestamp` and `CloudWatchMetrics`, a list of directives
    /// each with a 1-255 character `Namespace`, `Dimensions` (a list of dimension sets, each at most
    /// 30 names, every name a root member with a string value), and `Metrics` (at most 100, each with
    /// a `Name` that is a root member holding a number, and a valid `Unit`).
    fn assert_valid_emf(line: &str) {
        assert!(!line.contains('\n'), "one line");
        let root: Value = serde_json::from_str(line).expect("EMF is JSON");
        let aws = root["_aws"].as_object().expect("_aws object");
        assert!(aws["Timestamp"].is_i64() && aws["Timestamp"].as_i64().unwrap() > 1_600_000_000_000, "ms timestamp");
        let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics array");
        assert!(!directives.is_empty());
        for d in directives {
            let ns = d["Namespace"].as_str().expect("Namespace");
            assert!((1..=255).contains(&ns.len()));
            for set in d["Dimensions"].as_array().expect("Dimensions") {
                let set = set.as_array().expect("dimension set");
                assert!(set.len() <= 30);
                for name in set {
                    assert!(root[name.as_str().unwrap()].is_string(), "dimension {name} is a root string member");
                }
            }
            let metrics = d["Metrics"].as_array().expect("Metrics");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().expect("metric Name");
                assert!(root[name].is_number(), "metric {name} is a root number member");
                let unit = m["Unit"].as_str().unwrap_or("None");
                assert!(["Count", "None", "Seconds", "Percent"].contains(&unit));
            }
        }
    }

    #[test]
    fn the_emf_line_follows_the_specification() {
        for ready in [false, true] {
            let line = emf_line(&config(), ready, 1_795_388_400_000);
            assert_valid_emf(&line);
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["ShutdownReady"], u8::from(ready));
            assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "App/Drain");
            assert_eq!(v["task_id"], "0123456789abcdef");
        }
    }
}
