//! `incident-scale-up`: gives a struggling resource more capacity, never less.
//!
//! Each target kind is observed (describe calls only), planned by a pure function, and applied:
//! - `ecs_service`: desired count = the configured count for the priority, never below the current
//!   count and never above `maxCount`; an Application Auto Scaling target's MinCapacity (and
//!   MaxCapacity if lower) is raised first, so autoscaling doesn't undo the action.
//! - `rds_instance`: the configured class for the priority, with ApplyImmediately; never down the ladder.
//! - `redis` with `elasticache`: the next node type up the ladder, one more replica, or one more
//!   Memcached node, as the target says.

pub mod observe;
pub mod plan;
pub mod restore;
mod send;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{Value, json};
use shared::FunctionError;
use shared::aws::LazyClient;
use shared::config::{Target, TargetConfig};
use shared::contract::{ActionKind, ActionRequest, ActionResponse};
use shared::ecs::{self, ServiceRef};
use shared::frame::action::{Failure, Outcome, run_action, unsupported_target};
use shared::plan::{Change, Permission, Plan, PlanPolicy, arn, carry_out};

/// Built once per cold start in `main`.
pub struct Deps {
    pub ecs: LazyClient<aws_sdk_ecs::Client>,
    pub autoscaling: LazyClient<aws_sdk_applicationautoscaling::Client>,
    pub rds: LazyClient<aws_sdk_rds::Client>,
    pub elasticache: LazyClient<aws_sdk_elasticache::Client>,
    pub targets: TargetConfig,
    pub plans: PlanPolicy,
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    Ok(run_action(event, ActionKind::ScaleUp, &deps.plans, |request, _| scale_up(request, deps)).await)
}

async fn scale_up(request: ActionRequest, deps: &Deps) -> Result<Outcome, Failure> {
    let name = request.target_name();
    let plan = match deps.targets.get(name)? {
        Target::EcsService(target) => {
            let observed = observe::ecs(deps, target, request.priority).await?;
            plan::ecs(&observed, request.priority, target)
        }
        Target::RdsInstance(target) => plan::rds(&observe::rds(deps, target).await?, request.priority, target)?,
        Target::Redis(redis) => match &redis.elasticache {
            Some(spec) => plan::elasticache(&observe::elasticache(deps, spec).await?, spec)?,
            None => return Err(FunctionError::invalid(
                "target",
                format!(
                    "\"{name}\" is a redis target without elasticache settings; scale_up cannot resize a plain Redis"
                ),
            )
            .into()),
        },
        other @ Target::Ec2Instances(_) => {
            let supported = ["ecs_service", "rds_instance", "redis (ElastiCache)"];
            return Err(unsupported_target(ActionKind::ScaleUp, name, other, &supported).into());
        }
    };
    carry_out(&request, plan, &deps.plans, |plan| apply(plan, deps)).await
}

/// One change scale_up makes. Serialised, it is the call's parameters under the API's member names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum ScaleChange {
    /// Application Auto Scaling RegisterScalableTarget: a floor at the new count, so a scale-in
    /// cannot undo the update.
    RaiseScalableTargetMin {
        service_namespace: &'static str,
        resource_id: String,
        scalable_dimension: &'static str,
        min_capacity: i32,
        max_capacity: i32,
    },
    /// ECS UpdateService with a new desired count.
    SetDesiredCount { cluster: String, service: String, desired_count: i32 },
    /// RDS ModifyDBInstance to a larger class, applied now.
    ModifyDbInstanceClass { db_instance_identifier: String, db_instance_class: String, apply_immediately: bool },
    /// ElastiCache ModifyReplicationGroup to a larger node type, applied now.
    ModifyReplicationGroupNodeType { replication_group_id: String, cache_node_type: String, apply_immediately: bool },
    /// ElastiCache IncreaseReplicaCount.
    IncreaseReplicaCount { replication_group_id: String, new_replica_count: i32, apply_immediately: bool },
    /// ElastiCache ModifyCacheCluster with one more node (Memcached).
    ModifyCacheClusterNodes { cache_cluster_id: String, num_cache_nodes: i32, apply_immediately: bool },
    /// ElastiCache DecreaseReplicaCount (the restore after an incident).
    DecreaseReplicaCount { replication_group_id: String, new_replica_count: i32, apply_immediately: bool },
    /// ElastiCache ModifyCacheCluster down to fewer nodes, naming those removed (the restore).
    RemoveCacheClusterNodes {
        cache_cluster_id: String,
        num_cache_nodes: i32,
        cache_node_ids_to_remove: Vec<String>,
        apply_immediately: bool,
    },
}

/// The permissions of scale_up's observe steps and changes, `${...}` standing for the target's fields.
pub fn permissions() -> Vec<Permission> {
    let mut declared = own_permissions();
    // The incident ledger, which the frame writes around every invocation.
    declared.extend(shared::ledger::Ledger::permissions(ActionKind::ScaleUp));
    declared
}

fn own_permissions() -> Vec<Permission> {
    let scale_out = [
        ScaleChange::IncreaseReplicaCount {
            replication_group_id: TEMPLATE_GROUP.into(),
            new_replica_count: 1,
            apply_immediately: true,
        },
        ScaleChange::ModifyCacheClusterNodes {
            cache_cluster_id: TEMPLATE_CACHE_CLUSTER.into(),
            num_cache_nodes: 1,
            apply_immediately: true,
        },
    ];
    observe_and_change_permissions(scale_out)
}

/// The target config fields that declared permissions name, e.g. `${replicationGroupId}`.
pub(crate) const TEMPLATE_GROUP: &str = "${replicationGroupId}";
pub(crate) const TEMPLATE_CACHE_CLUSTER: &str = "${cacheClusterId}";

/// The reads, the changes scale_up and its restore both make (ECS count and floor, RDS class,
/// ElastiCache node type), and `cache_changes`, the ElastiCache changes of one direction.
pub(crate) fn observe_and_change_permissions(cache_changes: [ScaleChange; 2]) -> Vec<Permission> {
    let (c, s) = ("${cluster}", "${service}");
    let both_ways = [
        ScaleChange::raise_min(c, s, 1, 1),
        ScaleChange::SetDesiredCount { cluster: c.into(), service: s.into(), desired_count: 1 },
        ScaleChange::rds("${instanceId}", ""),
        ScaleChange::node_type(TEMPLATE_GROUP, ""),
    ];
    let mut declared = crate::observe::permissions();
    declared.extend(both_ways.iter().chain(&cache_changes).filter_map(Change::permission));
    declared
}

impl ScaleChange {
    pub fn raise_min(cluster: &str, service: &str, min_capacity: i32, max_capacity: i32) -> Self {
        Self::RaiseScalableTargetMin {
            service_namespace: "ecs",
            resource_id: format!("service/{cluster}/{service}"),
            scalable_dimension: "ecs:service:DesiredCount",
            min_capacity,
            max_capacity,
        }
    }

    pub fn rds(id: &str, class: &str) -> Self {
        Self::ModifyDbInstanceClass {
            db_instance_identifier: id.into(),
            db_instance_class: class.into(),
            apply_immediately: true,
        }
    }

    pub fn node_type(group: &str, node_type: &str) -> Self {
        Self::ModifyReplicationGroupNodeType {
            replication_group_id: group.into(),
            cache_node_type: node_type.into(),
            apply_immediately: true,
        }
    }
}

impl Change for ScaleChange {
    fn call(&self) -> &'static str {
        match self {
            Self::RaiseScalableTargetMin { .. } => "ApplicationAutoScaling RegisterScalableTarget",
            Self::SetDesiredCount { .. } => "ECS UpdateService",
            Self::ModifyDbInstanceClass { .. } => "RDS ModifyDBInstance",
            Self::ModifyReplicationGroupNodeType { .. } => "ElastiCache ModifyReplicationGroup",
            Self::IncreaseReplicaCount { .. } => "ElastiCache IncreaseReplicaCount",
            Self::ModifyCacheClusterNodes { .. } | Self::RemoveCacheClusterNodes { .. } => {
                "ElastiCache ModifyCacheCluster"
            }
            Self::DecreaseReplicaCount { .. } => "ElastiCache DecreaseReplicaCount",
        }
    }

    fn permission(&self) -> Option<Permission> {
        Some(match self {
            // Scalable targets are named by an opaque ARN, so a policy can only grant them by a wildcard.
            Self::RaiseScalableTargetMin { .. } => Permission::new(
                "application-autoscaling:RegisterScalableTarget",
                arn("application-autoscaling", "scalable-target/*"),
            ),
            Self::SetDesiredCount { cluster, service, .. } => ecs::update_service_permission(cluster, service),
            Self::ModifyDbInstanceClass { db_instance_identifier, .. } => {
                Permission::new("rds:ModifyDBInstance", arn("rds", &format!("db:{db_instance_identifier}")))
            }
            Self::ModifyReplicationGroupNodeType { replication_group_id, .. } => Permission::new(
                "elasticache:ModifyReplicationGroup",
                arn("elasticache", &format!("replicationgroup:{replication_group_id}")),
            ),
            Self::IncreaseReplicaCount { replication_group_id, .. } => Permission::new(
                "elasticache:IncreaseReplicaCount",
                arn("elasticache", &format!("replicationgroup:{replication_group_id}")),
            ),
            Self::ModifyCacheClusterNodes { cache_cluster_id, .. }
            | Self::RemoveCacheClusterNodes { cache_cluster_id, .. } => Permission::new(
                "elasticache:ModifyCacheCluster",
                arn("elasticache", &format!("cluster:{cache_cluster_id}")),
            ),
            Self::DecreaseReplicaCount { replication_group_id, .. } => Permission::new(
                "elasticache:DecreaseReplicaCount",
                arn("elasticache", &format!("replicationgroup:{replication_group_id}")),
            ),
        })
    }
}

/// Applies the changes in order; the plan's own words say what was done.
async fn apply(plan: Plan<ScaleChange>, deps: &Deps) -> Result<Outcome, Failure> {
    let mut reported = json!({});
    for change in &plan.changes {
        if let Some(status) = change.apply(deps).await? {
            reported["status"] = json!(status);
        }
    }
    Ok(plan.as_done(reported))
}

impl ScaleChange {
    /// Sends this change; answers the resource's status where the API reports one (only RDS does).
    async fn apply(&self, deps: &Deps) -> Result<Option<String>, FunctionError> {
        let cache = &deps.elasticache;
        match self {
            Self::RaiseScalableTargetMin {
                resource_id: r,
                scalable_dimension: d,
                min_capacity: lo,
                max_capacity: hi,
                ..
            } => send::raise_floor(&deps.autoscaling, r, d, (*lo, *hi)).await?,
            Self::SetDesiredCount { cluster, service, desired_count } => {
                ecs::set_desired_count(&deps.ecs, &ServiceRef::new(cluster, service), *desired_count).await.map(drop)?
            }
            Self::ModifyDbInstanceClass { db_instance_identifier: id, db_instance_class: class, apply_immediately } => {
                return send::modify_db_instance(&deps.rds, id, class, *apply_immediately).await;
            }
            Self::ModifyReplicationGroupNodeType {
                replication_group_id: id,
                cache_node_type: node,
                apply_immediately: now,
            } => send::modify_node_type(cache, id, node, *now).await?,
            Self::IncreaseReplicaCount { replication_group_id: id, new_replica_count: n, apply_immediately } => {
                send::increase_replicas(cache, id, *n, *apply_immediately).await?
            }
            Self::ModifyCacheClusterNodes { cache_cluster_id: id, num_cache_nodes: n, apply_immediately } => {
                send::modify_nodes(cache, id, *n, &[], *apply_immediately).await?
            }
            Self::DecreaseReplicaCount { replication_group_id: id, new_replica_count: n, apply_immediately } => {
                send::decrease_replicas(cache, id, *n, *apply_immediately).await?
            }
            Self::RemoveCacheClusterNodes {
                cache_cluster_id: id,
                num_cache_nodes: n,
                cache_node_ids_to_remove,
                apply_immediately,
            } => send::modify_nodes(cache, id, *n, cache_node_ids_to_remove, *apply_immediately).await?,
        }
        Ok(None)
    }

    /// Sends this change (the restore command, which needs no status back).
    pub(crate) async fn send(&self, deps: &Deps) -> Result<(), FunctionError> {
        self.apply(deps).await.map(|_| ())
    }
}
