//! `incident-scale-up`: gives a struggling resource more capacity, never less.
//!
//! - `ecs_service`: desired count = the configured count for the priority, never below the current
//!   count and never above `maxCount`; an Application Auto Scaling target's MinCapacity (and
//!   MaxCapacity if lower) is raised first, so autoscaling doesn't undo the action.
//! - `rds_instance`: the configured class for the priority, with ApplyImmediately; never down the ladder.
//! - `redis` with `elasticache`: the next node type up the ladder, one more replica, or one more
//!   Memcached node, as the target says.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shared::FunctionError;
use shared::action::{Failure, Outcome, PlannedCall, run_action, target_name, unsupported_target};
use shared::config::{EcsServiceTarget, ElastiCacheScaling, ElastiCacheSpec, RdsInstanceTarget, Target, TargetConfig};
use shared::contract::{ActionKind, ActionRequest, ActionResponse, Priority};
use shared::ecs::{self, ServiceRef};

/// Built once per cold start in `main`.
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub rds: aws_sdk_rds::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub targets: TargetConfig,
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    Ok(run_action(event, ActionKind::ScaleUp, |request, _, _| scale_up(request, deps)).await)
}

async fn scale_up(request: ActionRequest, deps: &Deps) -> Result<Outcome, Failure> {
    let name = target_name(&request);
    match deps.targets.get(name)? {
        Target::EcsService(target) => scale_ecs(deps, target, request.priority, request.dry_run).await,
        Target::RdsInstance(target) => scale_rds(deps, target, request.priority, request.dry_run).await,
        Target::Redis(redis) => match &redis.elasticache {
            Some(spec) => scale_elasticache(deps, spec, request.dry_run).await,
            None => Err(FunctionError::invalid(
                "target",
                format!(
                    "\"{name}\" is a redis target without elasticache settings; scale_up cannot resize a plain Redis"
                ),
            )
            .into()),
        },
        other @ Target::Ec2Instances(_) => Err(unsupported_target(
            ActionKind::ScaleUp,
            name,
            other,
            &["ecs_service", "rds_instance", "redis (ElastiCache)"],
        )
        .into()),
    }
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
pub fn plan_towards(current: &str, wanted: &str, ladder: &[String]) -> Result<SizePlan, FunctionError> {
    let rung = |size: &str| ladder.iter().position(|s| s == size);
    let current_rung = rung(current).ok_or_else(|| off_ladder(current, ladder))?;
    let wanted_rung = rung(wanted).ok_or_else(|| off_ladder(wanted, ladder))?;
    Ok(if current_rung >= wanted_rung {
        let reason =
            if current == wanted { "already at the target size" } else { "already larger than the target size" };
        SizePlan::NoChange { current: current.to_owned(), reason: reason.to_owned() }
    } else {
        SizePlan::Resize { from: current.to_owned(), to: wanted.to_owned() }
    })
}

/// The next size up the ladder, or no change at the top.
pub fn plan_next_rung(current: &str, ladder: &[String]) -> Result<SizePlan, FunctionError> {
    let rung = ladder.iter().position(|s| s == current).ok_or_else(|| off_ladder(current, ladder))?;
    Ok(match ladder.get(rung + 1) {
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
fn require_available(resource: &str, status: Option<&str>) -> Result<(), FunctionError> {
    let status = status.unwrap_or("unknown");
    if status == "available" {
        Ok(())
    } else {
        Err(FunctionError::Conflict(format!("{resource} is {status}, not available; try again once it is available")))
    }
}

fn off_ladder(size: &str, ladder: &[String]) -> FunctionError {
    FunctionError::Conflict(format!(
        "size {size} is not on the configured ladder [{}]; add it so scale_up can tell up from down",
        ladder.join(", ")
    ))
}

fn unchanged(message: String, resource: String, state: Value, mut details: Value) -> Outcome {
    details["change"] = json!("no change");
    Outcome { message, resource, before: state.clone(), after: state, details }
}

fn dry_run(
    message: String,
    resource: String,
    before: Value,
    after: Value,
    mut details: Value,
    calls: Vec<PlannedCall>,
) -> Outcome {
    details["plannedCalls"] = json!(calls);
    details["wouldBecome"] = after;
    Outcome { message: format!("Dry run: would {message}"), resource, after: before.clone(), before, details }
}

async fn scale_ecs(
    deps: &Deps,
    target: &EcsServiceTarget,
    priority: Priority,
    is_dry_run: bool,
) -> Result<Outcome, Failure> {
    let service_ref = ServiceRef::new(&target.cluster, &target.service);
    let resource = format!("ECS service {}/{}", target.cluster, target.service);
    let service = ecs::describe_service(&deps.ecs, &service_ref).await?;
    let current = service.desired_count();
    let base = json!({"cluster": target.cluster, "service": target.service, "priority": priority.as_str()});
    let (from, to) = match plan_ecs_count(current, priority, target) {
        CountPlan::NoChange { current, wanted } => {
            let mut details = base;
            details["desiredCount"] = json!(current);
            return Ok(unchanged(
                format!(
                    "No change: {resource} is already at {current} tasks (wanted {wanted} for {})",
                    priority.as_str()
                ),
                resource,
                json!({"desiredCount": current}),
                details,
            ));
        }
        CountPlan::ScaleTo { from, to } => (from, to),
    };

    let resource_id = format!("service/{}/{}", target.cluster, target.service);
    let scalable = deps
        .autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&resource_id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .map_err(|err| FunctionError::aws("ApplicationAutoScaling DescribeScalableTargets", &err))?;
    let scalable = scalable.scalable_targets().first().map(|t| (t.min_capacity(), t.max_capacity()));
    let capacity_plan = scalable.and_then(|(min, max)| plan_scalable_target(min, max, to).map(|new| ((min, max), new)));

    let mut calls = Vec::new();
    if let Some((_, (new_min, new_max))) = capacity_plan {
        calls.push(PlannedCall::new(
            "ApplicationAutoScaling RegisterScalableTarget",
            json!({"serviceNamespace": "ecs", "resourceId": resource_id, "scalableDimension": "ecs:service:DesiredCount",
                   "minCapacity": new_min, "maxCapacity": new_max}),
        ));
    }
    calls.push(PlannedCall::new(
        "ECS UpdateService",
        json!({"cluster": target.cluster, "service": target.service, "desiredCount": to}),
    ));
    let scalable_report = match (scalable, capacity_plan) {
        (None, _) => Value::Null,
        (Some((min, max)), None) => {
            json!({"resourceId": resource_id, "minCapacity": {"before": min, "after": min}, "maxCapacity": {"before": max, "after": max}})
        }
        (Some(_), Some(((min, max), (new_min, new_max)))) => json!({"resourceId": resource_id,
            "minCapacity": {"before": min, "after": new_min}, "maxCapacity": {"before": max, "after": new_max}}),
    };
    let mut details = base;
    details["previousDesiredCount"] = json!(from);
    details["desiredCount"] = json!(to);
    details["scalableTarget"] = scalable_report;
    let before = json!({"desiredCount": from});
    let after = json!({"desiredCount": to});
    if is_dry_run {
        return Ok(dry_run(
            format!("scale {resource} from {from} to {to} tasks"),
            resource,
            before,
            after,
            details,
            calls,
        ));
    }

    // Raise the autoscaling floor first: otherwise a scale-in could undo the update in between.
    if let Some((_, (new_min, new_max))) = capacity_plan {
        deps.autoscaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(new_min)
            .max_capacity(new_max)
            .send()
            .await
            .map_err(|err| FunctionError::aws("ApplicationAutoScaling RegisterScalableTarget", &err))?;
    }
    ecs::set_desired_count(&deps.ecs, &service_ref, to).await?;
    Ok(Outcome { message: format!("Scaled {resource} from {from} to {to} tasks"), resource, before, after, details })
}

async fn scale_rds(
    deps: &Deps,
    target: &RdsInstanceTarget,
    priority: Priority,
    is_dry_run: bool,
) -> Result<Outcome, Failure> {
    let id = &target.instance_id;
    let resource = format!("RDS instance {id}");
    let out = deps.rds.describe_db_instances().db_instance_identifier(id).send().await.map_err(|err| {
        match err.as_service_error() {
            Some(e) if e.is_db_instance_not_found_fault() => {
                FunctionError::ResourceNotFound { kind: "RDS instance", id: id.clone() }
            }
            _ => FunctionError::aws("RDS DescribeDBInstances", &err),
        }
    })?;
    let instance = out
        .db_instances()
        .first()
        .ok_or_else(|| FunctionError::ResourceNotFound { kind: "RDS instance", id: id.clone() })?;
    require_available(&resource, instance.db_instance_status())?;
    let current = instance.db_instance_class().unwrap_or_default();
    let wanted = target.instance_class.get(priority);
    let details = json!({"instanceId": id, "priority": priority.as_str()});
    match plan_towards(current, wanted, &target.class_ladder)? {
        SizePlan::NoChange { current, reason } => Ok(unchanged(
            format!("No change: {resource} is {current}, {reason} ({wanted} for {})", priority.as_str()),
            resource,
            json!({"instanceClass": current}),
            json!({"instanceId": id, "instanceClass": current}),
        )),
        SizePlan::Resize { from, to } => {
            let mut details = details;
            details["previousInstanceClass"] = json!(from);
            details["instanceClass"] = json!(to);
            let before = json!({"instanceClass": from});
            let after = json!({"instanceClass": to});
            if is_dry_run {
                let call = PlannedCall::new(
                    "RDS ModifyDBInstance",
                    json!({"dbInstanceIdentifier": id, "dbInstanceClass": to, "applyImmediately": true}),
                );
                return Ok(dry_run(
                    format!("move {resource} from {from} to {to}"),
                    resource,
                    before,
                    after,
                    details,
                    vec![call],
                ));
            }
            let modified = deps
                .rds
                .modify_db_instance()
                .db_instance_identifier(id)
                .db_instance_class(&to)
                .apply_immediately(true)
                .send()
                .await
                .map_err(|err| match err.as_service_error() {
                    Some(e) if e.is_invalid_db_instance_state_fault() => FunctionError::Conflict(format!(
                        "{resource} cannot be modified now: {}",
                        e.meta().message().unwrap_or("")
                    )),
                    _ => FunctionError::aws("RDS ModifyDBInstance", &err),
                })?;
            details["status"] = json!(modified.db_instance().and_then(|i| i.db_instance_status()));
            Ok(Outcome {
                message: format!("Scaling {resource} from {from} to {to} (applied immediately)"),
                resource,
                before,
                after,
                details,
            })
        }
    }
}

async fn scale_elasticache(deps: &Deps, spec: &ElastiCacheSpec, is_dry_run: bool) -> Result<Outcome, Failure> {
    match (spec.scale_by, &spec.replication_group_id, &spec.cache_cluster_id) {
        (ElastiCacheScaling::NodeType | ElastiCacheScaling::Replicas, Some(group), _) => {
            scale_replication_group(deps, spec, group, is_dry_run).await
        }
        (ElastiCacheScaling::Nodes, _, Some(cluster)) => scale_memcached(deps, spec, cluster, is_dry_run).await,
        // The config is validated at cold start, so this is unreachable; answer clearly all the same.
        _ => {
            Err(FunctionError::invalid("target", "elasticache settings do not name the resource scaleBy needs").into())
        }
    }
}

async fn scale_replication_group(
    deps: &Deps,
    spec: &ElastiCacheSpec,
    group_id: &str,
    is_dry_run: bool,
) -> Result<Outcome, Failure> {
    let resource = format!("ElastiCache replication group {group_id}");
    let out =
        deps.elasticache.describe_replication_groups().replication_group_id(group_id).send().await.map_err(|err| {
            match err.as_service_error() {
                Some(e) if e.is_replication_group_not_found_fault() => {
                    FunctionError::ResourceNotFound { kind: "ElastiCache replication group", id: group_id.to_owned() }
                }
                _ => FunctionError::aws("ElastiCache DescribeReplicationGroups", &err),
            }
        })?;
    let group = out.replication_groups().first().ok_or_else(|| FunctionError::ResourceNotFound {
        kind: "ElastiCache replication group",
        id: group_id.to_owned(),
    })?;
    require_available(&resource, group.status())?;
    if spec.scale_by == ElastiCacheScaling::Replicas {
        // Replicas per node group: members less the primary; the smallest group decides.
        let current =
            group.node_groups().iter().map(|g| g.node_group_members().len() as i32 - 1).min().unwrap_or(0).max(0);
        let max = spec.max_replicas.unwrap_or(5);
        let one_more = OneMore {
            resource,
            id: ("replicationGroupId", group_id),
            count_key: ("previousReplicas", "replicas"),
            what: "a replica",
            call: "ElastiCache IncreaseReplicaCount",
            call_count_key: "newReplicaCount",
        };
        return add_one(one_more, current, max, is_dry_run, |to| async move {
            deps.elasticache
                .increase_replica_count()
                .replication_group_id(group_id)
                .new_replica_count(to)
                .apply_immediately(true)
                .send()
                .await
                .map(drop)
                .map_err(|err| FunctionError::aws("ElastiCache IncreaseReplicaCount", &err))
        })
        .await;
    }
    let current = group.cache_node_type().unwrap_or_default();
    match plan_next_rung(current, &spec.node_type_ladder)? {
        SizePlan::NoChange { current, reason } => Ok(unchanged(
            format!("No change: {resource} is {reason}"),
            resource,
            json!({"cacheNodeType": current}),
            json!({"replicationGroupId": group_id, "cacheNodeType": current}),
        )),
        SizePlan::Resize { from, to } => {
            let before = json!({"cacheNodeType": from});
            let after = json!({"cacheNodeType": to});
            let details = json!({"replicationGroupId": group_id, "previousCacheNodeType": from, "cacheNodeType": to});
            if is_dry_run {
                let call = PlannedCall::new(
                    "ElastiCache ModifyReplicationGroup",
                    json!({"replicationGroupId": group_id, "cacheNodeType": to, "applyImmediately": true}),
                );
                return Ok(dry_run(
                    format!("move {resource} from {from} to {to}"),
                    resource,
                    before,
                    after,
                    details,
                    vec![call],
                ));
            }
            deps.elasticache
                .modify_replication_group()
                .replication_group_id(group_id)
                .cache_node_type(&to)
                .apply_immediately(true)
                .send()
                .await
                .map_err(|err| FunctionError::aws("ElastiCache ModifyReplicationGroup", &err))?;
            Ok(Outcome {
                message: format!("Scaling {resource} from {from} to {to} (applied immediately)"),
                resource,
                before,
                after,
                details,
            })
        }
    }
}

async fn scale_memcached(
    deps: &Deps,
    spec: &ElastiCacheSpec,
    cluster_id: &str,
    is_dry_run: bool,
) -> Result<Outcome, Failure> {
    let resource = format!("ElastiCache cluster {cluster_id}");
    let out =
        deps.elasticache.describe_cache_clusters().cache_cluster_id(cluster_id).send().await.map_err(
            |err| match err.as_service_error() {
                Some(e) if e.is_cache_cluster_not_found_fault() => {
                    FunctionError::ResourceNotFound { kind: "ElastiCache cluster", id: cluster_id.to_owned() }
                }
                _ => FunctionError::aws("ElastiCache DescribeCacheClusters", &err),
            },
        )?;
    let cluster = out
        .cache_clusters()
        .first()
        .ok_or_else(|| FunctionError::ResourceNotFound { kind: "ElastiCache cluster", id: cluster_id.to_owned() })?;
    require_available(&resource, cluster.cache_cluster_status())?;
    let current = cluster.num_cache_nodes().unwrap_or(0);
    let max = spec.max_nodes.unwrap_or(current);
    let one_more = OneMore {
        resource,
        id: ("cacheClusterId", cluster_id),
        count_key: ("previousNumCacheNodes", "numCacheNodes"),
        what: "a node",
        call: "ElastiCache ModifyCacheCluster",
        call_count_key: "numCacheNodes",
    };
    add_one(one_more, current, max, is_dry_run, |to| async move {
        deps.elasticache
            .modify_cache_cluster()
            .cache_cluster_id(cluster_id)
            .num_cache_nodes(to)
            .apply_immediately(true)
            .send()
            .await
            .map(drop)
            .map_err(|err| FunctionError::aws("ElastiCache ModifyCacheCluster", &err))
    })
    .await
}

/// "One more, up to the configured maximum": adding a replica or a Memcached node.
struct OneMore<'a> {
    resource: String,
    /// The id's field name and value in details and in the planned call.
    id: (&'static str, &'a str),
    /// Field names of the count before and after, in details.
    count_key: (&'static str, &'static str),
    /// What is added, for messages ("a replica").
    what: &'static str,
    call: &'static str,
    call_count_key: &'static str,
}

async fn add_one<F, Fut>(
    one: OneMore<'_>,
    current: i32,
    max: i32,
    is_dry_run: bool,
    execute: F,
) -> Result<Outcome, Failure>
where
    F: FnOnce(i32) -> Fut,
    Fut: std::future::Future<Output = Result<(), FunctionError>>,
{
    let OneMore { resource, id: (id_key, id), count_key: (previous_key, count_key), what, call, call_count_key } = one;
    let (from, to) = match plan_one_more(current, max) {
        CountPlan::NoChange { current, .. } => {
            return Ok(unchanged(
                format!("No change: {resource} already has {current} {count_key}, the configured maximum ({max})"),
                resource,
                json!({count_key: current}),
                json!({id_key: id, count_key: current}),
            ));
        }
        CountPlan::ScaleTo { from, to } => (from, to),
    };
    let before = json!({count_key: from});
    let after = json!({count_key: to});
    let details = json!({id_key: id, previous_key: from, count_key: to});
    if is_dry_run {
        let planned = PlannedCall::new(call, json!({id_key: id, call_count_key: to, "applyImmediately": true}));
        return Ok(dry_run(
            format!("add {what} to {resource} ({from} → {to})"),
            resource,
            before,
            after,
            details,
            vec![planned],
        ));
    }
    execute(to).await?;
    Ok(Outcome { message: format!("Adding {what} to {resource} ({from} → {to})"), resource, before, after, details })
}

#[cfg(test)]
mod tests {
    use shared::config::PerPriority;

    use super::*;

    fn ecs_target() -> EcsServiceTarget {
        EcsServiceTarget {
            cluster: "c".into(),
            service: "s".into(),
            desired_count: PerPriority { low: 5, medium: 5, high: 5, critical: 10 },
            max_count: 8,
        }
    }

    fn ladder(sizes: &[&str]) -> Vec<String> {
        sizes.iter().map(|s| (*s).to_owned()).collect()
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
    fn next_rung_stops_plainly_at_the_top() {
        let l = ladder(&["cache.t3.small", "cache.m5.large"]);
        assert_eq!(
            plan_next_rung("cache.t3.small", &l).unwrap(),
            SizePlan::Resize { from: "cache.t3.small".into(), to: "cache.m5.large".into() }
        );
        let SizePlan::NoChange { reason, .. } = plan_next_rung("cache.m5.large", &l).unwrap() else { panic!() };
        assert!(reason.contains("already at the largest size"), "{reason}");
    }

    #[test]
    fn one_more_up_to_the_max() {
        assert_eq!(plan_one_more(1, 5), CountPlan::ScaleTo { from: 1, to: 2 });
        assert_eq!(plan_one_more(5, 5), CountPlan::NoChange { current: 5, wanted: 5 });
    }
}
