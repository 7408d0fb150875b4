//! scale_up's decisions: pure functions from what was observed to a [`Plan`], never down.

use incident_core::config::{EcsServiceTarget, ElastiCache, Ladder, RdsInstanceTarget};
use incident_core::contract::Priority;
use incident_core::plan::Plan;
use incident_core::state::{Bounds, State};
use incident_scaling::observe::{ElastiCacheObserved, RdsObserved};
use serde::Serialize;
use shared::FunctionError;

use crate::change::ScaleChange;

/// A scale_up plan.
pub type ScalePlan = Plan<ScaleChange, ScaleDetails>;

/// What scale_up's answer says, per kind of target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ScaleDetails {
    Ecs(EcsDetails),
    Rds(RdsDetails),
    NodeType(NodeTypeDetails),
    Replicas(ReplicaDetails),
    Nodes(NodeDetails),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsDetails {
    pub cluster: String,
    pub service: String,
    pub priority: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_desired_count: Option<i32>,
    pub desired_count: i32,
    /// The autoscaling target's bounds before and after; absent without one, or without a change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalable_target: Option<ScalableReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalableReport {
    pub resource_id: String,
    pub min_capacity: BeforeAfter,
    pub max_capacity: BeforeAfter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BeforeAfter {
    pub before: i32,
    pub after: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RdsDetails {
    pub instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_instance_class: Option<String>,
    pub instance_class: String,
    /// The instance's status as ModifyDBInstance answered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeTypeDetails {
    pub replication_group_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_cache_node_type: Option<String>,
    pub cache_node_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaDetails {
    pub replication_group_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_replicas: Option<i32>,
    pub replicas: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeDetails {
    pub cache_cluster_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_num_cache_nodes: Option<i32>,
    pub num_cache_nodes: i32,
}

/// A count change: from the current value to the new one, or no change (with the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountPlan {
    ScaleTo { from: i32, to: i32 },
    NoChange { current: i32, wanted: i32 },
}

/// The ECS desired count for this priority: the configured count, capped at `maxCount`, never below now.
pub fn plan_ecs_count(current: i32, priority: Priority, target: &EcsServiceTarget) -> CountPlan {
    let wanted = (*target.desired_count.get(priority)).min(target.max_count);
    if current >= wanted {
        CountPlan::NoChange { current, wanted }
    } else {
        CountPlan::ScaleTo { from: current, to: wanted }
    }
}

/// New bounds for a scalable target so that autoscaling keeps at least `new_count`; `None` if it already does.
pub fn plan_scalable_target(now: Bounds, new_count: i32) -> Option<Bounds> {
    (now.min_capacity < new_count)
        .then_some(Bounds { min_capacity: new_count, max_capacity: now.max_capacity.max(new_count) })
}

/// A size change along a ladder (instance classes or node types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizePlan {
    Resize { from: String, to: String },
    NoChange { current: String, reason: String },
}

/// Moves to `wanted`, unless the current size is already it or larger on the ladder.
/// A current size that is not on the ladder cannot be compared, so it is a conflict, never a guess.
pub fn plan_towards(current: &str, wanted: &str, ladder: &Ladder) -> Result<SizePlan, FunctionError> {
    let current_rung = ladder.rung(current).ok_or_else(|| off_ladder(current, ladder))?;
    let wanted_rung = ladder.rung(wanted).ok_or_else(|| off_ladder(wanted, ladder))?;
    Ok(if current_rung >= wanted_rung {
        let reason =
            if current == wanted { "already at the target size" } else { "already larger than the target size" };
        SizePlan::NoChange { current: current.to_owned(), reason: reason.to_owned() }
    } else {
        SizePlan::Resize { from: current.to_owned(), to: wanted.to_owned() }
    })
}

/// The next size up the ladder, or no change at the top.
pub fn plan_next_rung(current: &str, ladder: &Ladder) -> Result<SizePlan, FunctionError> {
    let rung = ladder.rung(current).ok_or_else(|| off_ladder(current, ladder))?;
    Ok(match ladder.sizes().get(rung + 1) {
        Some(next) => SizePlan::Resize { from: current.to_owned(), to: next.clone() },
        None => SizePlan::NoChange {
            current: current.to_owned(),
            reason: format!("already at the largest size on the ladder ({current}); nothing larger is configured"),
        },
    })
}

/// One more (replica or node), up to `max`.
pub fn plan_one_more(current: i32, max: i32) -> CountPlan {
    if current >= max {
        CountPlan::NoChange { current, wanted: max }
    } else {
        CountPlan::ScaleTo { from: current, to: current + 1 }
    }
}

/// A resource that is modifying, rebooting or otherwise busy is a conflict: resizing it now would fail or stack changes.
pub fn require_available(resource: &str, status: &str) -> Result<(), FunctionError> {
    if status == "available" {
        Ok(())
    } else {
        Err(FunctionError::Conflict(format!("{resource} is {status}, not available; try again once it is available")))
    }
}

fn off_ladder(size: &str, ladder: &Ladder) -> FunctionError {
    FunctionError::Conflict(format!(
        "size {size} is not on the configured ladder [{}]; add it so scale_up can tell up from down",
        ladder.sizes().join(", ")
    ))
}

/// An ECS service's count for the priority; the autoscaling floor raised first when it is lower.
pub fn ecs(desired: i32, bounds: Option<Bounds>, priority: Priority, target: &EcsServiceTarget) -> ScalePlan {
    let (cluster, service) = (&target.cluster, &target.service);
    let resource = format!("ECS service {cluster}/{service}");
    let details = |previous, desired, scalable_target| {
        let (cluster, service, priority) = (cluster.clone(), service.clone(), priority.as_str());
        ScaleDetails::Ecs(EcsDetails {
            cluster,
            service,
            priority,
            previous_desired_count: previous,
            desired_count: desired,
            scalable_target,
        })
    };
    let (from, to) = match plan_ecs_count(desired, priority, target) {
        CountPlan::NoChange { current, wanted } => {
            let message = format!(
                "No change: {resource} is already at {current} tasks (wanted {wanted} for {})",
                priority.as_str()
            );
            let state = State::EcsService { desired_count: current, autoscaling: bounds };
            return Plan::unchanged(resource, state, message, details(None, current, None));
        }
        CountPlan::ScaleTo { from, to } => (from, to),
    };
    let raised = bounds.and_then(|now| plan_scalable_target(now, to));
    let report = bounds.map(|now| scalable_report(cluster, service, now, raised.unwrap_or(now)));
    // Raise the autoscaling floor first: otherwise a scale-in could undo the update in between.
    let raise = raised.map(|b| ScaleChange::raise_min(cluster, service, b.min_capacity, b.max_capacity));
    let set = ScaleChange::SetDesiredCount { cluster: cluster.clone(), service: service.clone(), desired_count: to };
    Plan {
        intent: format!("scale {resource} from {from} to {to} tasks"),
        done: format!("Scaled {resource} from {from} to {to} tasks"),
        no_change: String::new(),
        before: State::EcsService { desired_count: from, autoscaling: bounds },
        after: State::EcsService { desired_count: to, autoscaling: raised.or(bounds) },
        changes: raise.into_iter().chain([set]).collect(),
        details: details(Some(from), to, report),
        resource,
    }
}

fn scalable_report(cluster: &str, service: &str, before: Bounds, after: Bounds) -> ScalableReport {
    ScalableReport {
        resource_id: format!("service/{cluster}/{service}"),
        min_capacity: BeforeAfter { before: before.min_capacity, after: after.min_capacity },
        max_capacity: BeforeAfter { before: before.max_capacity, after: after.max_capacity },
    }
}

pub fn rds(observed: &RdsObserved, priority: Priority, target: &RdsInstanceTarget) -> Result<ScalePlan, FunctionError> {
    let id = &target.instance_id;
    let resource = format!("RDS instance {id}");
    require_available(&resource, &observed.status)?;
    let wanted = target.instance_class.get(priority);
    let state = |class: &str| State::RdsInstance { instance_class: class.to_owned() };
    Ok(match plan_towards(&observed.class, wanted, &target.class_ladder)? {
        SizePlan::NoChange { current, reason } => Plan::unchanged(
            resource.clone(),
            state(&current),
            format!("No change: {resource} is {current}, {reason} ({wanted} for {})", priority.as_str()),
            ScaleDetails::Rds(RdsDetails {
                instance_id: id.clone(),
                priority: None,
                previous_instance_class: None,
                instance_class: current,
                status: None,
            }),
        ),
        SizePlan::Resize { from, to } => Plan {
            intent: format!("move {resource} from {from} to {to}"),
            done: format!("Scaling {resource} from {from} to {to} (applied immediately)"),
            no_change: String::new(),
            before: state(&from),
            after: state(&to),
            changes: vec![ScaleChange::rds(id, &to)],
            details: ScaleDetails::Rds(RdsDetails {
                instance_id: id.clone(),
                priority: Some(priority.as_str()),
                previous_instance_class: Some(from),
                instance_class: to,
                status: None,
            }),
            resource,
        },
    })
}

pub fn elasticache(observed: &ElastiCacheObserved, spec: &ElastiCache) -> Result<ScalePlan, FunctionError> {
    match (spec, observed) {
        (
            ElastiCache::NodeType { replication_group_id: id, ladder },
            ElastiCacheObserved::Group { node_type, status, .. },
        ) => node_type_plan(id, ladder, node_type, status),
        (
            ElastiCache::Replicas { replication_group_id: id, max_replicas },
            ElastiCacheObserved::Group { replicas, status, .. },
        ) => {
            let resource = format!("ElastiCache replication group {id}");
            require_available(&resource, status)?;
            Ok(one_more(OneMore::Replicas(id), resource, *replicas, *max_replicas))
        }
        (ElastiCache::Nodes { cache_cluster_id: id, max_nodes }, ElastiCacheObserved::Cluster { nodes, status }) => {
            let resource = format!("ElastiCache cluster {id}");
            require_available(&resource, status)?;
            Ok(one_more(OneMore::Nodes(id), resource, *nodes, *max_nodes))
        }
        // observe reads a group for the group variants and a cluster for the other.
        _ => Err(FunctionError::Conflict("the ElastiCache resource is not the kind its target says".to_owned())),
    }
}

fn node_type_plan(id: &str, ladder: &Ladder, current: &str, status: &str) -> Result<ScalePlan, FunctionError> {
    let resource = format!("ElastiCache replication group {id}");
    require_available(&resource, status)?;
    let state = |node_type: &str| State::CacheNodeType { cache_node_type: node_type.to_owned() };
    let details = |previous, now: &str| {
        let id = id.to_owned();
        ScaleDetails::NodeType(NodeTypeDetails {
            replication_group_id: id,
            previous_cache_node_type: previous,
            cache_node_type: now.to_owned(),
        })
    };
    Ok(match plan_next_rung(current, ladder)? {
        SizePlan::NoChange { current, reason } => {
            let message = format!("No change: {resource} is {reason}");
            Plan::unchanged(resource, state(&current), message, details(None, &current))
        }
        SizePlan::Resize { from, to } => Plan {
            intent: format!("move {resource} from {from} to {to}"),
            done: format!("Scaling {resource} from {from} to {to} (applied immediately)"),
            no_change: String::new(),
            before: state(&from),
            after: state(&to),
            changes: vec![ScaleChange::node_type(id, &to)],
            details: details(Some(from), &to),
            resource,
        },
    })
}

/// "One more, up to the configured maximum": a replica of a group, or a node of a Memcached cluster.
#[derive(Debug, Clone, Copy)]
enum OneMore<'a> {
    Replicas(&'a str),
    Nodes(&'a str),
}

impl OneMore<'_> {
    /// What is added, for messages, and what it is counted as.
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Self::Replicas(_) => ("a replica", "replicas"),
            Self::Nodes(_) => ("a node", "numCacheNodes"),
        }
    }

    fn state(self, count: i32) -> State {
        match self {
            Self::Replicas(_) => State::CacheReplicas { replicas: count },
            Self::Nodes(_) => State::CacheNodes { num_cache_nodes: count },
        }
    }

    fn details(self, previous: Option<i32>, count: i32) -> ScaleDetails {
        match self {
            Self::Replicas(id) => ScaleDetails::Replicas(ReplicaDetails {
                replication_group_id: id.to_owned(),
                previous_replicas: previous,
                replicas: count,
            }),
            Self::Nodes(id) => ScaleDetails::Nodes(NodeDetails {
                cache_cluster_id: id.to_owned(),
                previous_num_cache_nodes: previous,
                num_cache_nodes: count,
            }),
        }
    }

    fn change(self, to: i32) -> ScaleChange {
        match self {
            Self::Replicas(id) => ScaleChange::IncreaseReplicaCount {
                replication_group_id: id.to_owned(),
                new_replica_count: to,
                apply_immediately: true,
            },
            Self::Nodes(id) => ScaleChange::ModifyCacheClusterNodes {
                cache_cluster_id: id.to_owned(),
                num_cache_nodes: to,
                apply_immediately: true,
            },
        }
    }
}

fn one_more(what: OneMore<'_>, resource: String, current: i32, max: i32) -> ScalePlan {
    let (added, counted) = what.words();
    let (from, to) = match plan_one_more(current, max) {
        CountPlan::NoChange { current, .. } => {
            let message =
                format!("No change: {resource} already has {current} {counted}, the configured maximum ({max})");
            return Plan::unchanged(resource, what.state(current), message, what.details(None, current));
        }
        CountPlan::ScaleTo { from, to } => (from, to),
    };
    Plan {
        intent: format!("add {added} to {resource} ({from} → {to})"),
        done: format!("Adding {added} to {resource} ({from} → {to})"),
        no_change: String::new(),
        before: what.state(from),
        after: what.state(to),
        changes: vec![what.change(to)],
        details: what.details(Some(from), to),
        resource,
    }
}

#[cfg(test)]
mod tests;
