//! Restore after the incident: what scale_up raised for an incident, put back as it was.
//!
//! The incident ledger holds every scale_up's before and after. For each target, the state before
//! automation first scaled it is the one to go back to, and the state after it last scaled it is
//! the one automation left. A target is restored only while it is still exactly as automation
//! left it: one that someone changed since (scaled further by hand, or back already) is reported
//! and left alone. Restoring is observe → plan → apply too: a dry run shows the changes.

use serde::Serialize;
use serde_json::{Value, json};
use shared::FunctionError;
use shared::config::{ElastiCache, Target, TargetConfig};
use shared::ecs::{self, ServiceRef};
use shared::ledger::Record;

use crate::{Deps, ScaleChange};

/// What automation did to one target during the incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaled {
    pub target: String,
    /// The state before the first scale_up (`{"desiredCount": 2}`, `{"instanceClass": ...}`, ...).
    pub original: Value,
    /// The state after the last one.
    pub left: Value,
    /// An ECS service's autoscaling bounds (min, max): before the first raise, after the last.
    pub floor: Option<((i32, i32), (i32, i32))>,
}

/// The targets scale_up changed, from an incident's records (oldest first).
pub fn scaled_targets(records: &[Record]) -> Vec<Scaled> {
    let mut scaled: Vec<Scaled> = Vec::new();
    for record in records.iter().filter(|r| r.action == "scale_up" && r.outcome == "success" && r.before != r.after) {
        let floor = floor_of(&record.details);
        match scaled.iter_mut().find(|s| s.target == record.target) {
            Some(known) => {
                known.left = record.after.clone();
                known.floor = match (known.floor, floor) {
                    (Some((first, _)), Some((_, last))) => Some((first, last)),
                    (None, later) => later,
                    (kept, None) => kept,
                };
            }
            None => scaled.push(Scaled {
                target: record.target.clone(),
                original: record.before.clone(),
                left: record.after.clone(),
                floor,
            }),
        }
    }
    scaled
}

/// `details.scalableTarget` of an ECS scale_up: ((min, max) before, (min, max) after).
fn floor_of(details: &Value) -> Option<((i32, i32), (i32, i32))> {
    let t = details.get("scalableTarget").filter(|t| t.is_object())?;
    let read = |name: &str, when: &str| t[name][when].as_i64().and_then(|v| i32::try_from(v).ok());
    Some((
        (read("minCapacity", "before")?, read("maxCapacity", "before")?),
        (read("minCapacity", "after")?, read("maxCapacity", "after")?),
    ))
}

/// A target's state now, in the records' shape, and its autoscaling bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub state: Value,
    pub floor: Option<(i32, i32)>,
    /// A Memcached cluster's node ids, newest last (which a decrease removes).
    pub node_ids: Vec<String>,
}

/// What restoring one target comes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum TargetRestore {
    /// Still as automation left it: these changes put it back.
    Restore { target: String, from: Value, to: Value, changes: Vec<ScaleChange> },
    /// Someone changed it since: left alone.
    ChangedSince { target: String, now: Value, automation_left: Value },
    /// Already as it was before the incident.
    AlreadyRestored { target: String, state: Value },
}

/// The pure plan for one target.
pub fn plan(scaled: &Scaled, target: &Target, current: &Current) -> Result<TargetRestore, FunctionError> {
    let name = scaled.target.clone();
    if current.state == scaled.original && scaled.floor.is_none_or(|(before, _)| current.floor == Some(before)) {
        return Ok(TargetRestore::AlreadyRestored { target: name, state: current.state.clone() });
    }
    let floor_as_left = scaled.floor.is_none_or(|(_, after)| current.floor == Some(after));
    if current.state != scaled.left || !floor_as_left {
        return Ok(TargetRestore::ChangedSince {
            target: name,
            now: current.state.clone(),
            automation_left: scaled.left.clone(),
        });
    }
    let changes = restore_changes(scaled, target, current)?;
    Ok(TargetRestore::Restore { target: name, from: current.state.clone(), to: scaled.original.clone(), changes })
}

/// The changes that put a target back as the record found it before the incident.
fn restore_changes(scaled: &Scaled, target: &Target, current: &Current) -> Result<Vec<ScaleChange>, FunctionError> {
    let int = |key: &str| scaled.original[key].as_i64().and_then(|v| i32::try_from(v).ok());
    let text = |key: &str| scaled.original[key].as_str().map(str::to_owned);
    let missing = || {
        FunctionError::Conflict(format!("the record of {} has no state to restore: {}", scaled.target, scaled.original))
    };
    Ok(match target {
        Target::EcsService(t) => {
            // The floor first: with the raised minimum still in place, autoscaling would undo the count.
            let floor = scaled.floor.map(|((min, max), _)| ScaleChange::raise_min(&t.cluster, &t.service, min, max));
            let desired_count = int("desiredCount").ok_or_else(missing)?;
            let count =
                ScaleChange::SetDesiredCount { cluster: t.cluster.clone(), service: t.service.clone(), desired_count };
            floor.into_iter().chain([count]).collect()
        }
        Target::RdsInstance(t) => vec![ScaleChange::rds(&t.instance_id, &text("instanceClass").ok_or_else(missing)?)],
        Target::Redis(redis) => match &redis.elasticache {
            Some(ElastiCache::NodeType { replication_group_id, .. }) => {
                vec![ScaleChange::node_type(replication_group_id, &text("cacheNodeType").ok_or_else(missing)?)]
            }
            Some(ElastiCache::Replicas { replication_group_id, .. }) => vec![ScaleChange::DecreaseReplicaCount {
                replication_group_id: replication_group_id.clone(),
                new_replica_count: int("replicas").ok_or_else(missing)?,
                apply_immediately: true,
            }],
            Some(ElastiCache::Nodes { cache_cluster_id, .. }) => {
                let keep = int("numCacheNodes").ok_or_else(missing)?;
                let remove = current.node_ids.iter().skip(usize::try_from(keep).unwrap_or(0)).cloned().collect();
                vec![ScaleChange::RemoveCacheClusterNodes {
                    cache_cluster_id: cache_cluster_id.clone(),
                    num_cache_nodes: keep,
                    cache_node_ids_to_remove: remove,
                    apply_immediately: true,
                }]
            }
            None => return Err(missing()),
        },
        Target::Ec2Instances(_) => return Err(missing()),
    })
}

/// Reads a target's state as the records hold it.
pub async fn observe(deps: &Deps, target: &Target) -> Result<Current, FunctionError> {
    let simple = |state| Current { state, floor: None, node_ids: Vec::new() };
    Ok(match target {
        Target::EcsService(t) => {
            let service = ecs::describe_service(&deps.ecs, &ServiceRef::new(&t.cluster, &t.service)).await?;
            let floor = crate::observe::scalable_bounds(deps, &t.cluster, &t.service).await?;
            Current { state: json!({"desiredCount": service.desired_count()}), floor, node_ids: Vec::new() }
        }
        Target::RdsInstance(t) => simple(json!({"instanceClass": crate::observe::rds(deps, t).await?.class})),
        Target::Redis(redis) => match &redis.elasticache {
            Some(spec @ (ElastiCache::NodeType { .. } | ElastiCache::Replicas { .. })) => {
                match crate::observe::elasticache(deps, spec).await? {
                    crate::observe::ElastiCacheObserved::Group { node_type, replicas, .. } => simple(match spec {
                        ElastiCache::NodeType { .. } => json!({"cacheNodeType": node_type}),
                        _ => json!({"replicas": replicas}),
                    }),
                    crate::observe::ElastiCacheObserved::Cluster { .. } => simple(Value::Null),
                }
            }
            Some(ElastiCache::Nodes { cache_cluster_id, .. }) => {
                let node_ids = crate::observe::node_ids(deps, cache_cluster_id).await?;
                Current { state: json!({"numCacheNodes": node_ids.len()}), floor: None, node_ids }
            }
            None => simple(Value::Null),
        },
        Target::Ec2Instances(_) => simple(Value::Null),
    })
}

/// Restores every target of the incident; a dry run answers with the plans only. Returns one
/// answer per target, with the outcome of its changes when applied.
pub async fn restore(
    deps: &Deps,
    targets: &TargetConfig,
    records: &[Record],
    dry_run: bool,
) -> Vec<(TargetRestore, Result<(), FunctionError>)> {
    let mut answers = Vec::new();
    for scaled in scaled_targets(records) {
        let planned = match targets.get(&scaled.target) {
            Ok(target) => match observe(deps, target).await {
                Ok(current) => plan(&scaled, target, &current),
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        let answer = match planned {
            Ok(restore @ TargetRestore::Restore { .. }) if !dry_run => {
                let applied = apply(deps, &restore).await;
                (restore, applied)
            }
            Ok(other) => (other, Ok(())),
            Err(err) => (
                TargetRestore::ChangedSince {
                    target: scaled.target.clone(),
                    now: Value::Null,
                    automation_left: scaled.left,
                },
                Err(err),
            ),
        };
        answers.push(answer);
    }
    answers
}

async fn apply(deps: &Deps, restore: &TargetRestore) -> Result<(), FunctionError> {
    if let TargetRestore::Restore { changes, .. } = restore {
        for change in changes {
            change.send(deps).await?;
        }
    }
    Ok(())
}

/// The restore command's own permissions: its reads and every change it can make.
pub fn permissions() -> Vec<shared::plan::Permission> {
    let scale_in = [
        ScaleChange::DecreaseReplicaCount {
            replication_group_id: crate::TEMPLATE_GROUP.into(),
            new_replica_count: 1,
            apply_immediately: true,
        },
        ScaleChange::RemoveCacheClusterNodes {
            cache_cluster_id: crate::TEMPLATE_CACHE_CLUSTER.into(),
            num_cache_nodes: 1,
            cache_node_ids_to_remove: Vec::new(),
            apply_immediately: true,
        },
    ];
    crate::observe_and_change_permissions(scale_in)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(target: &str, before: Value, after: Value, details: Value) -> Record {
        Record {
            at: "2026-12-01T02:16:00Z".into(),
            action: "scale_up".into(),
            target: target.into(),
            priority: "critical".into(),
            outcome: "success".into(),
            message: String::new(),
            before,
            after,
            details,
            request_id: "r".into(),
        }
    }

    fn targets() -> TargetConfig {
        shared::testing::targets(json!({
            "api": {"kind": "ecs_service", "cluster": "prod", "service": "api",
                    "desiredCount": {"low": 5, "medium": 5, "high": 5, "critical": 10}, "maxCount": 20},
            "db": {"kind": "rds_instance", "instanceId": "db", "instanceClass":
                    {"low": "db.r5.large", "medium": "db.r5.large", "high": "db.r5.xlarge", "critical": "db.r5.2xlarge"},
                   "classLadder": ["db.r5.large", "db.r5.xlarge", "db.r5.2xlarge"]},
            "mc": {"kind": "redis", "url": "redis://mc:11211", "elasticache": {"cacheClusterId": "mc", "scaleBy": "nodes", "maxNodes": 4}},
        }))
    }

    fn floor(before: (i32, i32), after: (i32, i32)) -> Value {
        json!({"scalableTarget": {"minCapacity": {"before": before.0, "after": after.0}, "maxCapacity": {"before": before.1, "after": after.1}}})
    }

    #[test]
    fn the_first_before_and_the_last_after_of_each_target() {
        let records = [
            record("api", json!({"desiredCount": 2}), json!({"desiredCount": 5}), floor((2, 6), (5, 6))),
            record("db", json!({"instanceClass": "db.r5.large"}), json!({"instanceClass": "db.r5.xlarge"}), json!({})),
            record("api", json!({"desiredCount": 5}), json!({"desiredCount": 10}), floor((5, 6), (10, 10))),
            record("db", json!({"instanceClass": "db.r5.xlarge"}), json!({"instanceClass": "db.r5.xlarge"}), json!({})),
        ];
        let scaled = scaled_targets(&records);
        assert_eq!(scaled.len(), 2);
        assert_eq!(
            (scaled[0].original.clone(), scaled[0].left.clone()),
            (json!({"desiredCount": 2}), json!({"desiredCount": 10}))
        );
        assert_eq!(scaled[0].floor, Some(((2, 6), (10, 10))));
        assert_eq!(scaled[1].left, json!({"instanceClass": "db.r5.xlarge"}), "a no-change record changes nothing");
    }

    #[test]
    fn a_target_as_automation_left_it_is_put_back_floor_first() {
        let scaled = Scaled {
            target: "api".into(),
            original: json!({"desiredCount": 2}),
            left: json!({"desiredCount": 10}),
            floor: Some(((2, 6), (10, 10))),
        };
        let now = Current { state: json!({"desiredCount": 10}), floor: Some((10, 10)), node_ids: vec![] };
        let TargetRestore::Restore { changes, .. } = plan(&scaled, targets().get("api").unwrap(), &now).unwrap() else {
            panic!("a restore")
        };
        assert_eq!(changes[0], ScaleChange::raise_min("prod", "api", 2, 6));
        assert_eq!(
            changes[1],
            ScaleChange::SetDesiredCount { cluster: "prod".into(), service: "api".into(), desired_count: 2 }
        );
    }

    #[test]
    fn a_target_changed_since_is_left_alone_and_a_restored_one_says_so() {
        let scaled = Scaled {
            target: "db".into(),
            original: json!({"instanceClass": "db.r5.large"}),
            left: json!({"instanceClass": "db.r5.2xlarge"}),
            floor: None,
        };
        let db = targets();
        let db = db.get("db").unwrap();
        let at = |class: &str| Current { state: json!({"instanceClass": class}), floor: None, node_ids: vec![] };
        assert!(matches!(plan(&scaled, db, &at("db.r5.xlarge")).unwrap(), TargetRestore::ChangedSince { .. }));
        assert!(matches!(plan(&scaled, db, &at("db.r5.large")).unwrap(), TargetRestore::AlreadyRestored { .. }));
        let TargetRestore::Restore { changes, .. } = plan(&scaled, db, &at("db.r5.2xlarge")).unwrap() else { panic!() };
        assert_eq!(changes, [ScaleChange::rds("db", "db.r5.large")]);
    }

    #[test]
    fn a_memcached_cluster_loses_its_newest_nodes() {
        let scaled = Scaled {
            target: "mc".into(),
            original: json!({"numCacheNodes": 2}),
            left: json!({"numCacheNodes": 3}),
            floor: None,
        };
        let now = Current {
            state: json!({"numCacheNodes": 3}),
            floor: None,
            node_ids: vec!["0001".into(), "0002".into(), "0003".into()],
        };
        let TargetRestore::Restore { changes, .. } = plan(&scaled, targets().get("mc").unwrap(), &now).unwrap() else {
            panic!()
        };
        assert_eq!(
            changes,
            [ScaleChange::RemoveCacheClusterNodes {
                cache_cluster_id: "mc".into(),
                num_cache_nodes: 2,
                cache_node_ids_to_remove: vec!["0003".into()],
                apply_immediately: true
            }]
        );
    }
}
