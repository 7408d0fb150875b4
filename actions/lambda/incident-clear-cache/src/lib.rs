//! `incident-clear-cache`: clears a Redis cache.
//!
//! Modes: `flush` (default) runs `FLUSHALL ASYNC`; `pattern` removes the keys matching `keyPattern`
//! with SCAN + UNLINK in batches (never KEYS), stopping cleanly before the deadline (see [`cache`]);
//! `reboot` reboots the ElastiCache nodes one at a time (see [`reboot`]). Each is observed, planned
//! and applied. The credentials come from Secrets Manager (a password, or an ACL user's name and
//! password), are cached across warm invocations, are fetched again once after an authentication
//! failure (rotation), and never appear in a log line or a response.

pub mod cache;
pub mod details;
pub mod reboot;

use std::collections::HashMap;
use std::time::Duration;

use incident_core::action::{Action, Applied, Failure, Invocation, Parsed, View, unsupported_target};
use incident_core::config::{ElastiCache, RedisTarget, Target, TargetConfig};
use incident_core::contract::{ActionKind, ActionResponse};
use incident_core::driver::Function;
use incident_core::plan::{Change, Plan};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::FunctionError;
use shared::aws::LazyClient;
use shared::deadline::Deadline;
use shared::iam::Permission;
use tokio::sync::Mutex;

use crate::details::ClearDetails;

/// clear_cache's clients, target map and credentials, built once per cold start in `main`.
pub struct ClearCache {
    pub secrets: LazyClient<aws_sdk_secretsmanager::Client>,
    pub elasticache: LazyClient<aws_sdk_elasticache::Client>,
    pub targets: TargetConfig,
    pub passwords: PasswordSource,
    /// How often a rebooting node is looked at ([`reboot::DEFAULT_POLL`]).
    pub reboot_poll: Duration,
}

/// How clear_cache clears: the whole server, the keys matching a pattern, or by rebooting the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearMode {
    Flush,
    Pattern,
    Reboot,
}

impl ClearMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flush => "flush",
            Self::Pattern => "pattern",
            Self::Reboot => "reboot",
        }
    }
}

/// Longest accepted `keyPattern`.
pub const MAX_KEY_PATTERN_LEN: usize = 256;

/// clear_cache's own request parameters, beside the shared envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClearParams {
    /// `flush` (default), `pattern` or `reboot`.
    #[serde(default)]
    pub mode: Option<ClearMode>,
    /// The SCAN MATCH pattern of `pattern` mode (implies it when `mode` is absent).
    #[serde(default)]
    pub key_pattern: Option<String>,
}

impl ClearParams {
    /// The mode: as given, else `pattern` when a keyPattern is given, else `flush`.
    pub fn mode(&self) -> ClearMode {
        match (self.mode, &self.key_pattern) {
            (Some(mode), _) => mode,
            (None, Some(_)) => ClearMode::Pattern,
            (None, None) => ClearMode::Flush,
        }
    }

    fn validate(&self) -> Result<(), FunctionError> {
        match (self.mode(), &self.key_pattern) {
            (ClearMode::Pattern, None) => Err(FunctionError::invalid(
                "keyPattern",
                "missing: mode \"pattern\" needs a keyPattern such as \"session:*\"",
            )),
            (ClearMode::Pattern, Some(pattern)) => {
                if pattern.is_empty() || pattern.len() > MAX_KEY_PATTERN_LEN {
                    return Err(FunctionError::invalid(
                        "keyPattern",
                        format!("must be 1-{MAX_KEY_PATTERN_LEN} bytes, got {}", pattern.len()),
                    ));
                }
                if pattern.chars().any(char::is_control) {
                    return Err(FunctionError::invalid("keyPattern", "contains control characters"));
                }
                Ok(())
            }
            (mode, Some(_)) => Err(FunctionError::invalid(
                "keyPattern",
                format!("only mode \"pattern\" takes a keyPattern, not \"{}\"", mode.as_str()),
            )),
            (_, None) => Ok(()),
        }
    }
}

/// One change clear_cache makes. Serialised, it is the command's or the call's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum ClearChange {
    /// `FLUSHALL ASYNC`.
    FlushAll { host: String, args: Vec<&'static str> },
    /// SCAN MATCH `keys_matching` in batches, UNLINK each batch.
    UnlinkMatching { host: String, keys_matching: String, via: &'static str },
    /// ElastiCache RebootCacheCluster of one node.
    RebootNode { cache_cluster_id: String, cache_node_ids_to_reboot: Vec<String> },
}

impl Change for ClearChange {
    fn call(&self) -> &'static str {
        match self {
            Self::FlushAll { .. } => "Redis FLUSHALL",
            Self::UnlinkMatching { .. } => "Redis UNLINK",
            Self::RebootNode { .. } => "ElastiCache RebootCacheCluster",
        }
    }

    fn permission(&self) -> Option<Permission> {
        match self {
            // Redis commands are authorised by the cache's own ACL (the credentials), not by IAM.
            Self::FlushAll { .. } | Self::UnlinkMatching { .. } => None,
            Self::RebootNode { cache_cluster_id, .. } => Some(reboot::reboot_permission(cache_cluster_id)),
        }
    }
}

/// The IAM permissions of clear_cache's observe steps and changes, and the ledger's.
pub fn permissions() -> Vec<Permission> {
    let mut declared = vec![
        Permission::new("secretsmanager:GetSecretValue", "${passwordSecretArn}"),
        // A secret under a customer managed key: Secrets Manager decrypts it with the caller's
        // permission, so the function needs kms:Decrypt, and only by way of Secrets Manager.
        Permission::new("kms:Decrypt", "${RedisSecretKmsKeyArn}").when(
            "StringEquals",
            "kms:ViaService",
            "secretsmanager.${Region}.amazonaws.com",
        ),
        reboot::describe_group_permission("${replicationGroupId}"),
        reboot::describe_cluster_permission("${cacheClusterId}"),
        reboot::reboot_permission("${cacheClusterId}"),
    ];
    declared.extend(incident_ledger::permissions(incident_ledger::Use::Mutate));
    declared
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
        Self::new(shared::settings::Settings::from_env().optional("REDIS_PASSWORD"))
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

/// The function as `main` builds it: the action and its guard.
pub type Deps = Function<ClearCache>;

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    deps.handle(event).await
}

/// What clear_cache reads: the Redis server (with the connection it clears on), or the nodes.
pub enum Observed {
    Redis { con: redis::aio::MultiplexedConnection, observed: cache::RedisObserved },
    Nodes(reboot::RebootObserved),
}

impl ClearCache {
    fn target<'a>(&'a self, name: &str) -> Result<&'a RedisTarget, FunctionError> {
        match self.targets.get(name)? {
            Target::Redis(target) => Ok(target),
            other => Err(unsupported_target(ActionKind::ClearCache, name, other.kind(), &["redis"])),
        }
    }

    fn nodes_of<'a>(&self, name: &str, target: &'a RedisTarget) -> Result<&'a ElastiCache, FunctionError> {
        target.elasticache.as_ref().ok_or_else(|| {
            FunctionError::invalid(
                "mode",
                format!("\"reboot\" needs an ElastiCache cluster, and target \"{name}\" has no elasticache settings"),
            )
        })
    }

    /// Flush or pattern: connected (fetching the credentials again once if the server refuses
    /// them), then observed on that connection.
    async fn observe_redis(
        &self,
        target: &RedisTarget,
        params: &ClearParams,
        view: View,
        deadline: Deadline,
    ) -> Result<Observed, Failure<ClearDetails>> {
        let host = redis_host(&target.url);
        let mut con = self.connect_with_refresh(target, &host, deadline).await?;
        let pattern = params.key_pattern.as_deref().unwrap_or("*");
        let observed = cache::observe(&mut con, &host, (params.mode(), pattern), view, deadline).await?;
        Ok(Observed::Redis { con, observed })
    }

    async fn connect_with_refresh(
        &self,
        target: &RedisTarget,
        host: &str,
        deadline: Deadline,
    ) -> Result<redis::aio::MultiplexedConnection, FunctionError> {
        let arn = target.password_secret_arn.as_deref();
        let credentials = self.passwords.get(&self.secrets, arn, false).await?;
        match cache::connect(&target.url, credentials, deadline).await {
            Ok(con) => Ok(con),
            Err(err) if cache::is_auth_error(&err) && arn.is_some() => {
                tracing::warn!(host = %host, "Redis refused the cached credentials; fetching them again in case they were rotated");
                let credentials = self.passwords.get(&self.secrets, arn, true).await?;
                cache::connect(&target.url, credentials, deadline).await.map_err(|err| cache::redis_error(host, &err))
            }
            Err(err) => Err(cache::redis_error(host, &err)),
        }
    }
}

impl Action for ClearCache {
    const KIND: ActionKind = ActionKind::ClearCache;
    type Params = ClearParams;
    type Observed = Observed;
    type Change = ClearChange;
    type Details = ClearDetails;

    /// The request, envelope and parameters, validated before any call.
    fn parse(payload: Value) -> Result<Parsed<ClearParams>, FunctionError> {
        let parsed = Parsed::<ClearParams>::strict(payload, ActionKind::ClearCache)?;
        parsed.params.validate()?;
        Ok(parsed)
    }

    async fn observe(&self, call: &Invocation<'_, ClearParams>, view: View) -> Result<Observed, Failure<ClearDetails>> {
        let target = self.target(call.target())?;
        match call.params.mode() {
            ClearMode::Reboot => {
                let spec = self.nodes_of(call.target(), target)?;
                Ok(Observed::Nodes(reboot::observe(&self.elasticache, spec).await?))
            }
            _ => self.observe_redis(target, call.params, view, call.deadline).await,
        }
    }

    fn plan(
        &self,
        call: &Invocation<'_, ClearParams>,
        observed: &Observed,
    ) -> Result<Plan<ClearChange, ClearDetails>, FunctionError> {
        match observed {
            Observed::Nodes(nodes) => reboot::plan(nodes),
            Observed::Redis { observed, .. } => {
                Ok(cache::plan(observed, call.params.mode(), call.params.key_pattern.as_deref().unwrap_or("*")))
            }
        }
    }

    async fn apply(
        &self,
        call: &Invocation<'_, ClearParams>,
        plan: &Plan<ClearChange, ClearDetails>,
        observed: Observed,
    ) -> Result<Applied<ClearDetails>, Failure<ClearDetails>> {
        match observed {
            Observed::Nodes(_) => reboot::apply(plan, &self.elasticache, self.reboot_poll, call.deadline).await,
            Observed::Redis { mut con, observed } => {
                cache::apply(plan, &mut con, (&observed.host, observed.keys), call.deadline).await
            }
        }
    }
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

    fn refused(extra: Value) -> String {
        let mut request =
            serde_json::json!({"action": "clear_cache", "target": "cache", "incidentId": "INC-1", "priority": "high"});
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let err = <ClearCache as Action>::parse(request).unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
        err.to_string()
    }

    #[test]
    fn clear_cache_options_are_checked() {
        let mode = |extra: Value| {
            let mut request =
                serde_json::json!({"action": "clear_cache", "target": "c", "incidentId": "I", "priority": "low"});
            request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            <ClearCache as Action>::parse(request).unwrap().params.mode()
        };
        assert_eq!(mode(serde_json::json!({})), ClearMode::Flush);
        assert_eq!(mode(serde_json::json!({"keyPattern": "session:*"})), ClearMode::Pattern, "a keyPattern implies it");
        assert!(refused(serde_json::json!({"mode": "pattern"})).contains("`keyPattern`: missing"));
        assert!(refused(serde_json::json!({"mode": "flush", "keyPattern": "a*"})).contains("only mode"));
        assert!(refused(serde_json::json!({"mode": "nuke"})).contains("`mode`: unknown variant `nuke`"));
        assert!(refused(serde_json::json!({"keyPattern": "a\nb"})).contains("control characters"));
        assert!(refused(serde_json::json!({"extra": 1})).contains("unknown field `extra`"));
    }

    #[test]
    fn hosts_are_named_without_credentials() {
        assert_eq!(redis_host("redis://127.0.0.1:6390/2"), "127.0.0.1:6390");
        assert_eq!(redis_host("rediss://cache.example.com:6379"), "cache.example.com:6379");
        assert_eq!(redis_host("redis://user:hunter2@cache:6379/0"), "cache:6379");
    }
}
