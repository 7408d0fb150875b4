//! scale_up's decisions: pure functions from what was observed to a [`Plan`].

use serde_json::{Value, json};
use shared::FunctionError;
use shared::config::{EcsServiceTarget, ElastiCache, Ladder, RdsInstanceTarget};
use shared::contract::Priority;
use shared::plan::Plan;

use crate::ScaleChange;
use crate::observe::{EcsObserved, ElastiCacheObserved, RdsObserved};

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

/// New (min, max) for a scalable target so that autoscaling keeps at least `new_count`; `None` if it already does.
pub fn plan_scalable_target(min: i32, max: i32, new_count: i32) -> Option<(i32, i32)> {
    (min < new_count).then_some((new_count, max.max(new_count)))
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

/// The autoscaling target's capacities before and after, for the response; `null` without one.
fn scalable_target_report(
    resource_id: &str,
    now: Option<(i32, i32)>,
    raised: Option<((i32, i32), (i32, i32))>,
) -> Value {
    let Some((min, max)) = now else { return Value::Null };
    let (new_min, new_max) = raised.map_or((min, max), |(_, new)| new);
    json!({"resourceId": resource_id,
        "minCapacity": {"before": min, "after": new_min}, "maxCapacity": {"before": max, "after": new_max}})
}

pub fn ecs(observed: &EcsObserved, priority: Priority, target: &EcsServiceTarget) -> Plan<ScaleChange> {
    let (cluster, service) = (&target.cluster, &target.service);
    let resource = format!("ECS service {cluster}/{service}");
    let mut details = json!({"cluster": cluster, "service": service, "priority": priority.as_str()});
    let (from, to) = match plan_ecs_count(observed.desired, priority, target) {
        CountPlan::NoChange { current, wanted } => {
            details["desiredCount"] = json!(current);
            let message = format!(
                "No change: {resource} is already at {current} tasks (wanted {wanted} for {})",
                priority.as_str()
            );
            return Plan::unchanged(resource, json!({"desiredCount": current}), message, details);
        }
        CountPlan::ScaleTo { from, to } => (from, to),
    };
    let floor =
        observed.scalable.and_then(|(min, max)| plan_scalable_target(min, max, to).map(|new| ((min, max), new)));
    details["previousDesiredCount"] = json!(from);
    details["desiredCount"] = json!(to);
    details["scalableTarget"] =
        scalable_target_report(&format!("service/{cluster}/{service}"), observed.scalable, floor);
    // Raise the autoscaling floor first: otherwise a scale-in could undo the update in between.
    let raise = floor.map(|(_, (min, max))| ScaleChange::raise_min(cluster, service, min, max));
    let set = ScaleChange::SetDesiredCount { cluster: cluster.clone(), service: service.clone(), desired_count: to };
    let changes: Vec<ScaleChange> = raise.into_iter().chain([set]).collect();
    Plan {
        intent: format!("scale {resource} from {from} to {to} tasks"),
        done: format!("Scaled {resource} from {from} to {to} tasks"),
        no_change: String::new(),
        before: json!({"desiredCount": from}),
        after: json!({"desiredCount": to}),
        resource,
        changes,
        details,
    }
}

pub fn rds(
    observed: &RdsObserved,
    priority: Priority,
    target: &RdsInstanceTarget,
) -> Result<Plan<ScaleChange>, FunctionError> {
    let id = &target.instance_id;
    let resource = format!("RDS instance {id}");
    require_available(&resource, &observed.status)?;
    let wanted = target.instance_class.get(priority);
    Ok(match plan_towards(&observed.class, wanted, &target.class_ladder)? {
        SizePlan::NoChange { current, reason } => Plan::unchanged(
            resource.clone(),
            json!({"instanceClass": current}),
            format!("No change: {resource} is {current}, {reason} ({wanted} for {})", priority.as_str()),
            json!({"instanceId": id, "instanceClass": current}),
        ),
        SizePlan::Resize { from, to } => Plan {
            intent: format!("move {resource} from {from} to {to}"),
            done: format!("Scaling {resource} from {from} to {to} (applied immediately)"),
            no_change: String::new(),
            before: json!({"instanceClass": from}),
            after: json!({"instanceClass": to}),
            details: json!({"instanceId": id, "priority": priority.as_str(), "previousInstanceClass": from, "instanceClass": to}),
            changes: vec![ScaleChange::rds(id, &to)],
            resource,
        },
    })
}

pub fn elasticache(observed: &ElastiCacheObserved, spec: &ElastiCache) -> Result<Plan<ScaleChange>, FunctionError> {
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
            let more = OneMore { resource, id_key: "replicationGroupId", id, what: "a replica", count_key: "replicas" };
            Ok(more.plan(*replicas, *max_replicas, |to| ScaleChange::IncreaseReplicaCount {
                replication_group_id: id.clone(),
                new_replica_count: to,
                apply_immediately: true,
            }))
        }
        (ElastiCache::Nodes { cache_cluster_id: id, max_nodes }, ElastiCacheObserved::Cluster { nodes, status }) => {
            let resource = format!("ElastiCache cluster {id}");
            require_available(&resource, status)?;
            let more = OneMore { resource, id_key: "cacheClusterId", id, what: "a node", count_key: "numCacheNodes" };
            Ok(more.plan(*nodes, *max_nodes, |to| ScaleChange::ModifyCacheClusterNodes {
                cache_cluster_id: id.clone(),
                num_cache_nodes: to,
                apply_immediately: true,
            }))
        }
        // observe::elasticache reads a group for the group variants and a cluster for the other.
        _ => Err(FunctionError::Conflict("the ElastiCache resource is not the kind its target says".to_owned())),
    }
}

fn node_type_plan(id: &str, ladder: &Ladder, current: &str, status: &str) -> Result<Plan<ScaleChange>, FunctionError> {
    let resource = format!("ElastiCache replication group {id}");
    require_available(&resource, status)?;
    Ok(match plan_next_rung(current, ladder)? {
        SizePlan::NoChange { current, reason } => Plan::unchanged(
            resource.clone(),
            json!({"cacheNodeType": current}),
            format!("No change: {resource} is {reason}"),
            json!({"replicationGroupId": id, "cacheNodeType": current}),
        ),
        SizePlan::Resize { from, to } => Plan {
            intent: format!("move {resource} from {from} to {to}"),
            done: format!("Scaling {resource} from {from} to {to} (applied immediately)"),
            no_change: String::new(),
            before: json!({"cacheNodeType": from}),
            after: json!({"cacheNodeType": to}),
            details: json!({"replicationGroupId": id, "previousCacheNodeType": from, "cacheNodeType": to}),
            changes: vec![ScaleChange::node_type(id, &to)],
            resource,
        },
    })
}

/// "One more, up to the configured maximum": adding a replica or a Memcached node.
struct OneMore<'a> {
    resource: String,
    id_key: &'static str,
    id: &'a str,
    /// What is added, for messages ("a replica").
    what: &'static str,
    /// The count's field name in details and state ("replicas").
    count_key: &'static str,
}

impl OneMore<'_> {
    fn plan(self, current: i32, max: i32, change: impl FnOnce(i32) -> ScaleChange) -> Plan<ScaleChange> {
        let Self { resource, id_key, id, what, count_key } = self;
        let (from, to) = match plan_one_more(current, max) {
            CountPlan::NoChange { current, .. } => {
                let message =
                    format!("No change: {resource} already has {current} {count_key}, the configured maximum ({max})");
                return Plan::unchanged(
                    resource,
                    json!({count_key: current}),
                    message,
                    json!({id_key: id, count_key: current}),
                );
            }
            CountPlan::ScaleTo { from, to } => (from, to),
        };
        let previous_key = format!("previous{}{}", count_key[..1].to_uppercase(), &count_key[1..]);
        Plan {
            intent: format!("add {what} to {resource} ({from} → {to})"),
            done: format!("Adding {what} to {resource} ({from} → {to})"),
            no_change: String::new(),
            before: json!({count_key: from}),
            after: json!({count_key: to}),
            details: json!({id_key: id, previous_key: from, count_key: to}),
            changes: vec![change(to)],
            resource,
        }
    }
}

#[cfg(test)]
mod tests {
    use shared::config::PerPriority;
    use shared::plan::Change;

    use super::*;

    fn ecs_target() -> EcsServiceTarget {
        EcsServiceTarget {
            cluster: "c".into(),
            service: "s".into(),
            desired_count: PerPriority { low: 5, medium: 5, high: 5, critical: 10 },
            max_count: 8,
        }
    }

    fn ladder(sizes: &[&str]) -> Ladder {
        Ladder::new(sizes.iter().map(|s| (*s).to_owned()).collect()).unwrap()
    }

    fn rds_target() -> RdsInstanceTarget {
        RdsInstanceTarget {
            instance_id: "db".into(),
            instance_class: PerPriority {
                low: "db.r5.large".into(),
                medium: "db.r5.large".into(),
                high: "db.r5.xlarge".into(),
                critical: "db.r5.2xlarge".into(),
            },
            class_ladder: ladder(&["db.r5.large", "db.r5.xlarge", "db.r5.2xlarge"]),
        }
    }

    fn calls(plan: &Plan<ScaleChange>) -> Vec<&'static str> {
        plan.changes.iter().map(Change::call).collect()
    }

    #[test]
    fn ecs_count_follows_priority_never_down_never_above_max() {
        let t = ecs_target();
        assert_eq!(plan_ecs_count(2, Priority::High, &t), CountPlan::ScaleTo { from: 2, to: 5 });
        assert_eq!(
            plan_ecs_count(2, Priority::Critical, &t),
            CountPlan::ScaleTo { from: 2, to: 8 },
            "capped at maxCount"
        );
        assert_eq!(plan_ecs_count(5, Priority::Low, &t), CountPlan::NoChange { current: 5, wanted: 5 });
        assert_eq!(
            plan_ecs_count(12, Priority::Critical, &t),
            CountPlan::NoChange { current: 12, wanted: 8 },
            "never down"
        );
    }

    #[test]
    fn scalable_target_floor_is_raised_and_max_follows_if_lower() {
        assert_eq!(plan_scalable_target(2, 20, 10), Some((10, 20)));
        assert_eq!(plan_scalable_target(2, 6, 10), Some((10, 10)));
        assert_eq!(plan_scalable_target(10, 20, 10), None);
        assert_eq!(plan_scalable_target(12, 20, 10), None);
    }

    #[test]
    fn an_ecs_plan_raises_the_floor_first_then_the_count() {
        let plan = ecs(&EcsObserved { desired: 2, scalable: Some((2, 6)) }, Priority::Critical, &ecs_target());
        assert_eq!(calls(&plan), ["ApplicationAutoScaling RegisterScalableTarget", "ECS UpdateService"]);
        assert_eq!(plan.changes[0], ScaleChange::raise_min("c", "s", 8, 8));
        assert_eq!(plan.intent, "scale ECS service c/s from 2 to 8 tasks");
        let without = ecs(&EcsObserved { desired: 2, scalable: None }, Priority::High, &ecs_target());
        assert_eq!(calls(&without), ["ECS UpdateService"]);
        assert_eq!(without.details["scalableTarget"], Value::Null);
        let floor_high_enough =
            ecs(&EcsObserved { desired: 2, scalable: Some((9, 20)) }, Priority::High, &ecs_target());
        assert_eq!(calls(&floor_high_enough), ["ECS UpdateService"]);
        let never_down = ecs(&EcsObserved { desired: 12, scalable: None }, Priority::Critical, &ecs_target());
        assert!(never_down.changes.is_empty());
        assert_eq!(never_down.no_change, "No change: ECS service c/s is already at 12 tasks (wanted 8 for critical)");
    }

    #[test]
    fn sizes_move_up_the_ladder_only() {
        let l = ladder(&["db.r5.large", "db.r5.xlarge", "db.r5.2xlarge"]);
        assert_eq!(
            plan_towards("db.r5.large", "db.r5.2xlarge", &l).unwrap(),
            SizePlan::Resize { from: "db.r5.large".into(), to: "db.r5.2xlarge".into() }
        );
        assert!(matches!(plan_towards("db.r5.xlarge", "db.r5.xlarge", &l).unwrap(), SizePlan::NoChange { .. }));
        assert!(matches!(plan_towards("db.r5.2xlarge", "db.r5.xlarge", &l).unwrap(), SizePlan::NoChange { .. }));
        let err = plan_towards("db.m5.large", "db.r5.xlarge", &l).unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(err.to_string().contains("db.m5.large is not on the configured ladder"));
    }

    #[test]
    fn an_rds_plan_moves_to_the_priority_class_if_available() {
        let plan = rds(
            &RdsObserved { class: "db.r5.large".into(), status: "available".into() },
            Priority::Critical,
            &rds_target(),
        )
        .unwrap();
        assert_eq!(plan.changes, [ScaleChange::rds("db", "db.r5.2xlarge")]);
        let busy = rds(
            &RdsObserved { class: "db.r5.large".into(), status: "modifying".into() },
            Priority::Critical,
            &rds_target(),
        );
        assert_eq!(busy.unwrap_err().status(), 409, "not available: 409");
        let larger = rds(
            &RdsObserved { class: "db.r5.2xlarge".into(), status: "available".into() },
            Priority::High,
            &rds_target(),
        )
        .unwrap();
        assert!(larger.changes.is_empty() && larger.no_change.contains("already larger than the target size"));
    }

    #[test]
    fn next_rung_stops_plainly_at_the_top() {
        let l = ladder(&["cache.t3.small", "cache.m5.large"]);
        assert_eq!(
            plan_next_rung("cache.t3.small", &l).unwrap(),
            SizePlan::Resize { from: "cache.t3.small".into(), to: "cache.m5.large".into() }
        );
        let SizePlan::NoChange { reason, .. } = plan_next_rung("cache.m5.large", &l).unwrap() else { panic!() };
        assert!(reason.contains("already at the largest size"), "{reason}");
        let group = |node_type: &str| ElastiCacheObserved::Group {
            node_type: node_type.into(),
            replicas: 1,
            status: "available".into(),
        };
        let spec = ElastiCache::NodeType { replication_group_id: "rg".into(), ladder: l };
        assert_eq!(
            elasticache(&group("cache.t3.small"), &spec).unwrap().changes,
            [ScaleChange::node_type("rg", "cache.m5.large")]
        );
        assert!(elasticache(&group("cache.m5.large"), &spec).unwrap().changes.is_empty(), "top of the ladder");
    }

    #[test]
    fn one_more_replica_or_node_up_to_the_max() {
        assert_eq!(plan_one_more(1, 5), CountPlan::ScaleTo { from: 1, to: 2 });
        assert_eq!(plan_one_more(5, 5), CountPlan::NoChange { current: 5, wanted: 5 });
        let spec = ElastiCache::Replicas { replication_group_id: "rg".into(), max_replicas: 3 };
        let at = |replicas| ElastiCacheObserved::Group { node_type: "x".into(), replicas, status: "available".into() };
        let plan = elasticache(&at(2), &spec).unwrap();
        assert_eq!(plan.details, json!({"replicationGroupId": "rg", "previousReplicas": 2, "replicas": 3}));
        assert!(elasticache(&at(3), &spec).unwrap().changes.is_empty());
        let nodes = ElastiCache::Nodes { cache_cluster_id: "mc".into(), max_nodes: 4 };
        let busy = ElastiCacheObserved::Cluster { nodes: 2, status: "modifying".into() };
        assert_eq!(elasticache(&busy, &nodes).unwrap_err().status(), 409);
    }
}
