//! The target map: which real resource each incident `target` name means.
//!
//! Loaded once at cold start from `TARGETS_JSON` (inline JSON) or `TARGETS_FILE` (a path) and
//! validated completely, so a bad config stops the function at init with a message saying what to fix.
//! There is no default target: an unknown name is a 404 listing the known ones.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::contract::Priority;
use shared::ecs::validate_name;
use shared::settings::Settings;
use shared::{ConfigError, FunctionError};

/// The target map's one name that is not a target: the alarms' playbooks (incident-playbook's).
pub const PLAYBOOKS: &str = "playbooks";

/// Upper bound on any configured ECS count: a typo such as 1000 instead of 10 is refused at init.
pub const MAX_ECS_COUNT: i32 = 500;

/// One value per priority. All four are required, so nothing falls back silently.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerPriority<T> {
    pub low: T,
    pub medium: T,
    pub high: T,
    pub critical: T,
}

impl<T> PerPriority<T> {
    pub fn get(&self, priority: Priority) -> &T {
        match priority {
            Priority::Low => &self.low,
            Priority::Medium => &self.medium,
            Priority::High => &self.high,
            Priority::Critical => &self.critical,
        }
    }

    fn in_order(&self) -> [(Priority, &T); 4] {
        Priority::ALL.map(|p| (p, self.get(p)))
    }
}

/// A validated target: which real resource a request's `target` name means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    EcsService(EcsServiceTarget),
    Ec2Instances(Ec2InstancesTarget),
    RdsInstance(RdsInstanceTarget),
    Redis(RedisTarget),
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EcsService(_) => "ecs_service",
            Self::Ec2Instances(_) => "ec2_instances",
            Self::RdsInstance(_) => "rds_instance",
            Self::Redis(_) => "redis",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EcsServiceTarget {
    pub cluster: String,
    pub service: String,
    /// scale_up's desired count for each priority.
    pub desired_count: PerPriority<i32>,
    /// scale_up never sets more than this.
    pub max_count: i32,
    /// rollback_service may roll back a completed deployment without a plan token (a human's
    /// approval). Off by default: such a rollback changes code in production.
    #[serde(default)]
    pub rollback_unattended: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ec2InstancesTarget {
    pub instance_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsInstanceTarget {
    pub instance_id: String,
    /// scale_up's instance class for each priority; each is on the ladder.
    pub instance_class: PerPriority<String>,
    /// scale_up never moves down this ladder.
    pub class_ladder: Ladder,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// `redis://host:port[/db]`, or `rediss://` for ElastiCache in-transit encryption. No password here.
    pub url: String,
    /// Secrets Manager ARN of the credentials (a password, `{"password"}`, or `{"username",
    /// "password"}` for an ACL user); absent for a local Redis without AUTH.
    pub password_secret_arn: Option<String>,
    pub elasticache: Option<ElastiCache>,
}

/// Sizes from smallest to largest (instance classes, node types): non-empty, no size twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder(Vec<String>);

impl Ladder {
    /// A ladder of these sizes, smallest first: at least one, none twice.
    pub fn new(sizes: Vec<String>) -> Result<Self, String> {
        if sizes.is_empty() {
            return Err("a ladder needs at least one size".to_owned());
        }
        if let Some(twice) = sizes.iter().enumerate().find(|(i, s)| sizes[..*i].contains(s)) {
            return Err(format!("the ladder lists {:?} twice", twice.1));
        }
        Ok(Self(sizes))
    }

    pub fn sizes(&self) -> &[String] {
        &self.0
    }

    /// The position of `size` on the ladder, if it is on it.
    pub fn rung(&self, size: &str) -> Option<usize> {
        self.0.iter().position(|s| s == size)
    }
}

/// The ElastiCache resource behind a Redis target, and how scale_up grows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElastiCache {
    /// A replication group moved to the next node type up `ladder` (ModifyReplicationGroup).
    NodeType { replication_group_id: String, ladder: Ladder },
    /// A replication group given one more replica per node group, up to `max_replicas` (1-5).
    Replicas { replication_group_id: String, max_replicas: i32 },
    /// A cache cluster (Memcached) given one more node, up to `max_nodes` (1-60).
    Nodes { cache_cluster_id: String, max_nodes: i32 },
}

impl ElastiCache {
    pub fn replication_group_id(&self) -> Option<&str> {
        match self {
            Self::NodeType { replication_group_id, .. } | Self::Replicas { replication_group_id, .. } => {
                Some(replication_group_id)
            }
            Self::Nodes { .. } => None,
        }
    }

    pub fn cache_cluster_id(&self) -> Option<&str> {
        match self {
            Self::Nodes { cache_cluster_id, .. } => Some(cache_cluster_id),
            _ => None,
        }
    }
}

/// The target map as JSON carries it, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum RawTarget {
    EcsService(EcsServiceTarget),
    Ec2Instances(Ec2InstancesTarget),
    RdsInstance(RawRds),
    Redis(RawRedis),
}

impl RawTarget {
    fn kind(&self) -> &'static str {
        match self {
            Self::EcsService(_) => "ecs_service",
            Self::Ec2Instances(_) => "ec2_instances",
            Self::RdsInstance(_) => "rds_instance",
            Self::Redis(_) => "redis",
        }
    }

    /// The typed target; only called once [`validate_target`] passed.
    fn into_target(self) -> Target {
        match self {
            Self::EcsService(t) => Target::EcsService(t),
            Self::Ec2Instances(t) => Target::Ec2Instances(t),
            Self::RdsInstance(t) => Target::RdsInstance(RdsInstanceTarget {
                instance_id: t.instance_id,
                instance_class: t.instance_class,
                class_ladder: Ladder(t.class_ladder),
            }),
            Self::Redis(t) => Target::Redis(RedisTarget {
                url: t.url,
                password_secret_arn: t.password_secret_arn,
                elasticache: t.elasticache.map(RawElastiCache::into_typed),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRds {
    instance_id: String,
    instance_class: PerPriority<String>,
    class_ladder: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRedis {
    url: String,
    #[serde(default)]
    password_secret_arn: Option<String>,
    #[serde(default)]
    elasticache: Option<RawElastiCache>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawElastiCache {
    #[serde(default)]
    replication_group_id: Option<String>,
    #[serde(default)]
    cache_cluster_id: Option<String>,
    scale_by: ElastiCacheScaling,
    #[serde(default)]
    node_type_ladder: Vec<String>,
    #[serde(default)]
    max_replicas: Option<i32>,
    #[serde(default)]
    max_nodes: Option<i32>,
}

impl RawElastiCache {
    /// Only called once [`validate_redis`] passed, which checks every field this reads.
    fn into_typed(self) -> ElastiCache {
        let group = self.replication_group_id.unwrap_or_default();
        match self.scale_by {
            ElastiCacheScaling::NodeType => {
                ElastiCache::NodeType { replication_group_id: group, ladder: Ladder(self.node_type_ladder) }
            }
            ElastiCacheScaling::Replicas => {
                ElastiCache::Replicas { replication_group_id: group, max_replicas: self.max_replicas.unwrap_or(1) }
            }
            ElastiCacheScaling::Nodes => ElastiCache::Nodes {
                cache_cluster_id: self.cache_cluster_id.unwrap_or_default(),
                max_nodes: self.max_nodes.unwrap_or(1),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ElastiCacheScaling {
    NodeType,
    Replicas,
    Nodes,
}

/// The validated target map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    targets: BTreeMap<String, Target>,
}

impl TargetConfig {
    /// Loads from `TARGETS_JSON`, or else from the file named by `TARGETS_FILE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let (json, source_name) = Self::source_from_env()?;
        Self::parse(&json, &source_name)
    }

    /// The target map's text and where it came from (`TARGETS_JSON`, or `TARGETS_FILE=<path>`).
    pub fn source_from_env() -> Result<(String, String), ConfigError> {
        let settings = Settings::from_env();
        if let Some(json) = settings.optional("TARGETS_JSON") {
            return Ok((json, "TARGETS_JSON".to_owned()));
        }
        let path = settings.optional("TARGETS_FILE").ok_or(ConfigError::MissingEnv("TARGETS_JSON or TARGETS_FILE"))?;
        let json = std::fs::read_to_string(&path)
            .map_err(|e| shared::settings::invalid("TARGETS_FILE", format!("cannot read {path}: {e}")))?;
        Ok((json, format!("TARGETS_FILE={path}")))
    }

    /// The targets of a map; its [`PLAYBOOKS`] section is the playbook function's, not read here.
    pub fn parse(json: &str, source_name: &str) -> Result<Self, ConfigError> {
        let invalid = |problem: String| ConfigError::Targets { source_name: source_name.to_owned(), problem };
        let at = |err: serde_path_to_error::Error<serde_json::Error>| {
            let path = err.path().to_string();
            invalid(format!("at `{path}`: {}", err.into_inner()))
        };
        let mut de = serde_json::Deserializer::from_str(json);
        let mut map: serde_json::Map<String, serde_json::Value> =
            serde_path_to_error::deserialize(&mut de).map_err(at)?;
        map.remove(PLAYBOOKS);
        let raw: BTreeMap<String, RawTarget> =
            serde_path_to_error::deserialize(serde_json::Value::Object(map)).map_err(at)?;
        if raw.is_empty() {
            return Err(invalid("no targets: define at least one".to_owned()));
        }
        let mut owners: HashMap<String, &str> = HashMap::new();
        for (name, target) in &raw {
            validate_target_name(name).map_err(|p| invalid(format!("target name {name:?}: {p}")))?;
            validate_target(target).map_err(|p| invalid(format!("target \"{name}\" ({}): {p}", target.kind())))?;
            for resource in resources(target) {
                if let Some(other) = owners.insert(resource.clone(), name) {
                    return Err(invalid(format!("targets \"{other}\" and \"{name}\" both point at {resource}")));
                }
            }
        }
        Ok(Self { targets: raw.into_iter().map(|(name, target)| (name, target.into_target())).collect() })
    }

    /// The target of that name, or `UnknownTarget` listing the known ones.
    pub fn get(&self, name: &str) -> Result<&Target, FunctionError> {
        self.targets
            .get(name)
            .ok_or_else(|| FunctionError::UnknownTarget { target: shared::text::shown(name), known: self.names() })
    }

    pub fn names(&self) -> Vec<String> {
        self.targets.keys().cloned().collect()
    }
}

fn validate_target_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err("use 1-64 letters, digits, '-', '_' or '.'".to_owned()) }
}

fn validate_target(target: &RawTarget) -> Result<(), String> {
    match target {
        RawTarget::EcsService(t) => validate_ecs(t),
        RawTarget::Ec2Instances(t) => validate_ec2(t),
        RawTarget::RdsInstance(t) => validate_rds(t),
        RawTarget::Redis(t) => validate_redis(t),
    }
}

fn validate_ecs(t: &EcsServiceTarget) -> Result<(), String> {
    validate_name("cluster", &t.cluster).map_err(|e| e.to_string())?;
    validate_name("service", &t.service).map_err(|e| e.to_string())?;
    if !(1..=MAX_ECS_COUNT).contains(&t.max_count) {
        return Err(format!("maxCount {} must be between 1 and {MAX_ECS_COUNT}", t.max_count));
    }
    let mut previous = 0;
    for (priority, &count) in t.desired_count.in_order() {
        let p = priority.as_str();
        if count < 1 || count > t.max_count {
            return Err(format!("desiredCount.{p} {count} must be between 1 and maxCount ({})", t.max_count));
        }
        if count < previous {
            return Err(format!("desiredCount.{p} {count} is below the count for a lower priority ({previous})"));
        }
        previous = count;
    }
    Ok(())
}

fn validate_ec2(t: &Ec2InstancesTarget) -> Result<(), String> {
    if t.instance_ids.is_empty() {
        return Err("instanceIds is empty".to_owned());
    }
    for id in &t.instance_ids {
        let hex = id.strip_prefix("i-").unwrap_or("");
        if !(8..=17).contains(&hex.len()) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("instanceIds: {id:?} is not an EC2 instance id (i- and 8 or 17 hex digits)"));
        }
    }
    Ok(())
}

fn validate_rds(t: &RawRds) -> Result<(), String> {
    let id_ok = !t.instance_id.is_empty()
        && t.instance_id.len() <= 63
        && t.instance_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !id_ok {
        return Err(format!("instanceId {:?} is not an RDS identifier (1-63 letters, digits, hyphens)", t.instance_id));
    }
    validate_ladder("classLadder", &t.class_ladder, "db.")?;
    let mut previous = 0;
    for (priority, class) in t.instance_class.in_order() {
        let p = priority.as_str();
        let rung = t
            .class_ladder
            .iter()
            .position(|c| c == class)
            .ok_or_else(|| format!("instanceClass.{p} {class:?} is not in classLadder"))?;
        if rung < previous {
            return Err(format!("instanceClass.{p} {class:?} is smaller than the class for a lower priority"));
        }
        previous = rung;
    }
    Ok(())
}

fn validate_ladder(field: &str, ladder: &[String], prefix: &str) -> Result<(), String> {
    if ladder.is_empty() {
        return Err(format!("{field} is empty: list the sizes from smallest to largest"));
    }
    for (i, rung) in ladder.iter().enumerate() {
        if !rung.starts_with(prefix) || rung.len() > 64 {
            return Err(format!("{field}[{i}] {rung:?} does not look like a size (expected {prefix}...)"));
        }
        if ladder[..i].contains(rung) {
            return Err(format!("{field} lists {rung:?} twice"));
        }
    }
    Ok(())
}

fn validate_redis(t: &RawRedis) -> Result<(), String> {
    let rest = t
        .url
        .strip_prefix("redis://")
        .or_else(|| t.url.strip_prefix("rediss://"))
        .ok_or_else(|| "url must start with redis:// or rediss://".to_owned())?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "url must not carry credentials; put the password in Secrets Manager (passwordSecretArn)".to_owned()
        );
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err("url has no host".to_owned());
    }
    if let Some(arn) = &t.password_secret_arn
        && !(arn.starts_with("arn:") && arn.contains(":secretsmanager:"))
    {
        return Err(format!("passwordSecretArn {arn:?} is not a Secrets Manager ARN"));
    }
    let Some(ec) = &t.elasticache else { return Ok(()) };
    match (&ec.replication_group_id, &ec.cache_cluster_id) {
        (Some(_), Some(_)) | (None, None) => {
            return Err("elasticache needs exactly one of replicationGroupId or cacheClusterId".to_owned());
        }
        _ => {}
    }
    match ec.scale_by {
        ElastiCacheScaling::NodeType => {
            if ec.replication_group_id.is_none() {
                return Err("elasticache.scaleBy \"node_type\" needs replicationGroupId".to_owned());
            }
            validate_ladder("elasticache.nodeTypeLadder", &ec.node_type_ladder, "cache.")?;
        }
        ElastiCacheScaling::Replicas => {
            if ec.replication_group_id.is_none() {
                return Err("elasticache.scaleBy \"replicas\" needs replicationGroupId".to_owned());
            }
            match ec.max_replicas {
                Some(1..=5) => {}
                other => return Err(format!("elasticache.maxReplicas must be 1 to 5, got {other:?}")),
            }
        }
        ElastiCacheScaling::Nodes => {
            if ec.cache_cluster_id.is_none() {
                return Err("elasticache.scaleBy \"nodes\" needs cacheClusterId".to_owned());
            }
            match ec.max_nodes {
                Some(1..=60) => {}
                other => return Err(format!("elasticache.maxNodes must be 1 to 60, got {other:?}")),
            }
        }
    }
    Ok(())
}

/// The real resources a target points at, for the duplicate check.
fn resources(target: &RawTarget) -> Vec<String> {
    match target {
        RawTarget::EcsService(t) => vec![format!("ECS service {}/{}", t.cluster, t.service)],
        RawTarget::Ec2Instances(t) => t.instance_ids.iter().map(|id| format!("EC2 instance {id}")).collect(),
        RawTarget::RdsInstance(t) => vec![format!("RDS instance {}", t.instance_id)],
        RawTarget::Redis(t) => {
            let mut r = vec![format!("Redis {}", t.url)];
            if let Some(ec) = &t.elasticache {
                r.extend(ec.replication_group_id.iter().map(|id| format!("ElastiCache replication group {id}")));
                r.extend(ec.cache_cluster_id.iter().map(|id| format!("ElastiCache cluster {id}")));
            }
            r
        }
    }
}

#[cfg(test)]
mod tests;
