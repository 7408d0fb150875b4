use incident_core::config::PerPriority;
use incident_core::plan::Change;
use serde_json::json;

use super::*;

fn ecs_target() -> EcsServiceTarget {
    EcsServiceTarget {
        cluster: "c".into(),
        service: "s".into(),
        desired_count: PerPriority { low: 5, medium: 5, high: 5, critical: 10 },
        max_count: 8,
        rollback_unattended: false,
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

fn calls(plan: &ScalePlan) -> Vec<&'static str> {
    plan.changes.iter().map(Change::call).collect()
}

fn bounds(min_capacity: i32, max_capacity: i32) -> Option<Bounds> {
    Some(Bounds { min_capacity, max_capacity })
}

#[test]
fn ecs_count_follows_priority_never_down_never_above_max() {
    let t = ecs_target();
    assert_eq!(plan_ecs_count(2, Priority::High, &t), CountPlan::ScaleTo { from: 2, to: 5 });
    assert_eq!(plan_ecs_count(2, Priority::Critical, &t), CountPlan::ScaleTo { from: 2, to: 8 }, "capped at maxCount");
    assert_eq!(plan_ecs_count(5, Priority::Low, &t), CountPlan::NoChange { current: 5, wanted: 5 });
    assert_eq!(
        plan_ecs_count(12, Priority::Critical, &t),
        CountPlan::NoChange { current: 12, wanted: 8 },
        "never down"
    );
}

#[test]
fn scalable_target_floor_is_raised_and_max_follows_if_lower() {
    assert_eq!(plan_scalable_target(bounds(2, 20).unwrap(), 10), bounds(10, 20));
    assert_eq!(plan_scalable_target(bounds(2, 6).unwrap(), 10), bounds(10, 10));
    assert_eq!(plan_scalable_target(bounds(10, 20).unwrap(), 10), None);
    assert_eq!(plan_scalable_target(bounds(12, 20).unwrap(), 10), None);
}

#[test]
fn an_ecs_plan_raises_the_floor_first_then_the_count() {
    let plan = ecs(2, bounds(2, 6), Priority::Critical, &ecs_target());
    assert_eq!(calls(&plan), ["ApplicationAutoScaling RegisterScalableTarget", "ECS UpdateService"]);
    assert_eq!(plan.changes[0], ScaleChange::raise_min("c", "s", 8, 8));
    assert_eq!(plan.intent, "scale ECS service c/s from 2 to 8 tasks");
    assert_eq!(plan.before, State::EcsService { desired_count: 2, autoscaling: bounds(2, 6) });
    assert_eq!(plan.after, State::EcsService { desired_count: 8, autoscaling: bounds(8, 8) });
    let report = json!(plan.details)["scalableTarget"].clone();
    assert_eq!(report["minCapacity"], json!({"before": 2, "after": 8}));
    let without = ecs(2, None, Priority::High, &ecs_target());
    assert_eq!(calls(&without), ["ECS UpdateService"]);
    assert_eq!(json!(without.details)["scalableTarget"], serde_json::Value::Null);
    let floor_high_enough = ecs(2, bounds(9, 20), Priority::High, &ecs_target());
    assert_eq!(calls(&floor_high_enough), ["ECS UpdateService"]);
    let never_down = ecs(12, None, Priority::Critical, &ecs_target());
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
    let at = |class: &str, status: &str| RdsObserved { class: class.into(), status: status.into() };
    let plan = rds(&at("db.r5.large", "available"), Priority::Critical, &rds_target()).unwrap();
    assert_eq!(plan.changes, [ScaleChange::rds("db", "db.r5.2xlarge")]);
    let busy = rds(&at("db.r5.large", "modifying"), Priority::Critical, &rds_target());
    assert_eq!(busy.unwrap_err().status(), 409, "not available: 409");
    let larger = rds(&at("db.r5.2xlarge", "available"), Priority::High, &rds_target()).unwrap();
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
    assert_eq!(json!(plan.details), json!({"replicationGroupId": "rg", "previousReplicas": 2, "replicas": 3}));
    assert_eq!(plan.after, State::CacheReplicas { replicas: 3 });
    assert!(elasticache(&at(3), &spec).unwrap().changes.is_empty());
    let nodes = ElastiCache::Nodes { cache_cluster_id: "mc".into(), max_nodes: 4 };
    let busy = ElastiCacheObserved::Cluster { nodes: 2, status: "modifying".into() };
    assert_eq!(elasticache(&busy, &nodes).unwrap_err().status(), 409);
}

#[test]
fn one_more_says_what_it_adds_a_replica_or_a_node() {
    let replicas = ElastiCache::Replicas { replication_group_id: "rg".into(), max_replicas: 3 };
    let group = ElastiCacheObserved::Group { node_type: "x".into(), replicas: 2, status: "available".into() };
    assert_eq!(
        elasticache(&group, &replicas).unwrap().intent,
        "add a replica to ElastiCache replication group rg (2 → 3)"
    );
    let nodes = ElastiCache::Nodes { cache_cluster_id: "mc".into(), max_nodes: 4 };
    let cluster = |nodes| ElastiCacheObserved::Cluster { nodes, status: "available".into() };
    let plan = elasticache(&cluster(2), &nodes).unwrap();
    assert_eq!(plan.intent, "add a node to ElastiCache cluster mc (2 → 3)");
    assert_eq!(json!(plan.details), json!({"cacheClusterId": "mc", "previousNumCacheNodes": 2, "numCacheNodes": 3}));
    assert_eq!(plan.after, State::CacheNodes { num_cache_nodes: 3 });
    let full = elasticache(&cluster(4), &nodes).unwrap();
    assert!(full.changes.is_empty());
    assert_eq!(
        full.no_change,
        "No change: ElastiCache cluster mc already has 4 numCacheNodes, the configured maximum (4)"
    );
}
