//! Restore after the incident: what scale_up raised for an incident, put back as it was.
//!
//! The ledger's records hold every scale_up's typed before and after ([`State`]). For each target,
//! the state before automation first scaled it is the one to go back to, and the state after it
//! last scaled it is the one automation left. A target is restored only while it is still exactly
//! as automation left it: one that someone changed since (scaled further by hand, or back already)
//! is reported and left alone. A dry run shows the changes. An RDS class, a node type or a
//! Memcached cluster's nodes change at the next maintenance window unless `--now` (a resize there
//! is a reboot or a failover: a second outage window at 3 a.m.); an ECS count, an autoscaling
//! floor and a replica count change at once, which costs no outage.

use incident_core::config::{ElastiCache, Target, TargetConfig};
use incident_core::ledger::Record;
use incident_core::state::State;
use incident_scaling::observe::{self, ElastiCacheObserved};
use serde::Serialize;
use shared::FunctionError;
use shared::aws::LazyClient;

mod change;

pub use change::{RestoreChange, permissions};

/// The clients a restore reads and changes targets with.
pub struct Clients {
    pub ecs: LazyClient<aws_sdk_ecs::Client>,
    pub autoscaling: LazyClient<aws_sdk_applicationautoscaling::Client>,
    pub rds: LazyClient<aws_sdk_rds::Client>,
    pub elasticache: LazyClient<aws_sdk_elasticache::Client>,
}

/// What automation did to one target during the incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaled {
    pub target: String,
    /// The state before the first scale_up.
    pub original: State,
    /// The state after the last one.
    pub left: State,
}

/// The targets scale_up changed, from an incident's records (oldest first), and the targets of
/// records written before typed states (schema 1), which are not restored.
pub fn scaled_targets(records: &[Record]) -> (Vec<Scaled>, Vec<String>) {
    let (mut scaled, mut legacy): (Vec<Scaled>, Vec<String>) = (Vec::new(), Vec::new());
    for record in records.iter().filter(|r| r.action == "scale_up" && r.outcome == "success") {
        let (Some(before), Some(after)) = (&record.before, &record.after) else {
            if record.schema < incident_core::state::SCHEMA && !legacy.contains(&record.target) {
                legacy.push(record.target.clone());
            }
            continue;
        };
        if before == after {
            continue;
        }
        match scaled.iter_mut().find(|s| s.target == record.target) {
            Some(known) => known.left = after.clone(),
            None => {
                scaled.push(Scaled { target: record.target.clone(), original: before.clone(), left: after.clone() })
            }
        }
    }
    (scaled, legacy)
}

/// A target's state now, in the records' shape, and a Memcached cluster's node ids (newest last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub state: State,
    pub node_ids: Vec<String>,
}

/// What restoring one target comes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum TargetRestore {
    /// Still as automation left it: these changes put it back, applied `when`.
    Restore { target: String, from: State, to: State, changes: Vec<RestoreChange>, when: When },
    /// Someone changed it since: left alone.
    ChangedSince { target: String, now: State, automation_left: State },
    /// Already as it was before the incident.
    AlreadyRestored { target: String, state: State },
    /// Not restored, and why (a record written before typed states, a target gone from the map).
    NotRestored { target: String, reason: String },
}

/// When a restore's changes take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    Now,
    /// An RDS class, node type or Memcached node change waits for the maintenance window.
    NextMaintenanceWindow,
}

/// The pure plan for one target; `now` applies what would otherwise wait for the maintenance window.
pub fn plan(scaled: &Scaled, target: &Target, current: &Current, now: bool) -> Result<TargetRestore, FunctionError> {
    let name = scaled.target.clone();
    if current.state == scaled.original {
        return Ok(TargetRestore::AlreadyRestored { target: name, state: current.state.clone() });
    }
    if current.state != scaled.left {
        let (now, automation_left) = (current.state.clone(), scaled.left.clone());
        return Ok(TargetRestore::ChangedSince { target: name, now, automation_left });
    }
    let changes = RestoreChange::to_put_back(&scaled.original, target, current, now).ok_or_else(|| {
        FunctionError::Conflict(format!(
            "the records of {name} do not say how to restore its state {:?}",
            scaled.original
        ))
    })?;
    let waits = changes.iter().any(RestoreChange::waits_for_maintenance);
    let when = if waits { When::NextMaintenanceWindow } else { When::Now };
    Ok(TargetRestore::Restore { target: name, from: current.state.clone(), to: scaled.original.clone(), changes, when })
}

/// Reads a target's state as the records hold it.
pub async fn observe(clients: &Clients, target: &Target) -> Result<Current, FunctionError> {
    let simple = |state| Current { state, node_ids: Vec::new() };
    Ok(match target {
        Target::EcsService(t) => {
            let desired_count = observe::desired_count(&clients.ecs, &t.cluster, &t.service).await?;
            let autoscaling = observe::scalable_bounds(&clients.autoscaling, &t.cluster, &t.service).await?;
            simple(State::EcsService { desired_count, autoscaling })
        }
        Target::RdsInstance(t) => {
            simple(State::RdsInstance { instance_class: observe::rds(&clients.rds, &t.instance_id).await?.class })
        }
        Target::Redis(redis) => match &redis.elasticache {
            Some(ElastiCache::Nodes { cache_cluster_id, .. }) => {
                let node_ids = observe::node_ids(&clients.elasticache, cache_cluster_id).await?;
                let num_cache_nodes = i32::try_from(node_ids.len()).unwrap_or(i32::MAX);
                Current { state: State::CacheNodes { num_cache_nodes }, node_ids }
            }
            Some(spec) => simple(group_state(spec, observe::elasticache(&clients.elasticache, spec).await?)),
            None => return Err(not_scaled(target)),
        },
        Target::Ec2Instances(_) => return Err(not_scaled(target)),
    })
}

fn group_state(spec: &ElastiCache, observed: ElastiCacheObserved) -> State {
    match (spec, observed) {
        (ElastiCache::NodeType { .. }, ElastiCacheObserved::Group { node_type, .. }) => {
            State::CacheNodeType { cache_node_type: node_type }
        }
        (_, ElastiCacheObserved::Group { replicas, .. }) => State::CacheReplicas { replicas },
        (_, ElastiCacheObserved::Cluster { nodes, .. }) => State::CacheNodes { num_cache_nodes: nodes },
    }
}

fn not_scaled(target: &Target) -> FunctionError {
    FunctionError::Conflict(format!("a {} target is not one scale_up changes", target.kind()))
}

/// One target's restore, planned and (unless a dry run) applied.
pub async fn restore_target(
    clients: &Clients,
    targets: &TargetConfig,
    scaled: &Scaled,
    dry_run: bool,
    now: bool,
) -> (TargetRestore, Result<(), FunctionError>) {
    let planned = match targets.get(&scaled.target) {
        Ok(target) => match observe(clients, target).await {
            Ok(current) => plan(scaled, target, &current, now),
            Err(err) => Err(err),
        },
        Err(err) => Err(err),
    };
    match planned {
        Ok(TargetRestore::Restore { changes, target, from, to, when }) if !dry_run => {
            let mut applied = Ok(());
            for change in &changes {
                applied = change.send(clients).await;
                if applied.is_err() {
                    break;
                }
            }
            (TargetRestore::Restore { target, from, to, changes, when }, applied)
        }
        Ok(planned) => (planned, Ok(())),
        Err(err) => (TargetRestore::NotRestored { target: scaled.target.clone(), reason: err.to_string() }, Err(err)),
    }
}

#[cfg(test)]
mod tests;
