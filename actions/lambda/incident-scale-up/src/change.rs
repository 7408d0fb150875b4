//! The changes scale_up makes, each more capacity, never less: no variant can scale anything down
//! (the restore after an incident has a change type of its own, in `incident-ledger`).

use incident_core::plan::Change;
use incident_scaling::send;
use serde::Serialize;
use shared::FunctionError;
use shared::ecs::{self, ServiceRef};
use shared::iam::Permission;

use crate::ScaleUp;

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
    /// ECS UpdateService with a larger desired count.
    SetDesiredCount { cluster: String, service: String, desired_count: i32 },
    /// RDS ModifyDBInstance to a larger class, applied now.
    ModifyDbInstanceClass { db_instance_identifier: String, db_instance_class: String, apply_immediately: bool },
    /// ElastiCache ModifyReplicationGroup to a larger node type, applied now.
    ModifyReplicationGroupNodeType { replication_group_id: String, cache_node_type: String, apply_immediately: bool },
    /// ElastiCache IncreaseReplicaCount.
    IncreaseReplicaCount { replication_group_id: String, new_replica_count: i32, apply_immediately: bool },
    /// ElastiCache ModifyCacheCluster with one more node (Memcached).
    ModifyCacheClusterNodes { cache_cluster_id: String, num_cache_nodes: i32, apply_immediately: bool },
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

    /// Sends this change; answers the resource's status where the API reports one (only RDS does).
    pub async fn send(&self, scale: &ScaleUp) -> Result<Option<String>, FunctionError> {
        let cache = &scale.elasticache;
        match self {
            Self::RaiseScalableTargetMin { resource_id, scalable_dimension, min_capacity, max_capacity, .. } => {
                send::raise_floor(&scale.autoscaling, resource_id, scalable_dimension, (*min_capacity, *max_capacity))
                    .await?
            }
            Self::SetDesiredCount { cluster, service, desired_count } => {
                let service = ServiceRef::new(cluster, service);
                ecs::set_desired_count(&scale.ecs, &service, *desired_count).await.map(drop)?
            }
            Self::ModifyDbInstanceClass { db_instance_identifier: id, db_instance_class: class, apply_immediately } => {
                return send::modify_db_instance(&scale.rds, id, class, *apply_immediately).await;
            }
            Self::ModifyReplicationGroupNodeType { replication_group_id, cache_node_type, apply_immediately } => {
                send::modify_node_type(cache, replication_group_id, cache_node_type, *apply_immediately).await?
            }
            Self::IncreaseReplicaCount { replication_group_id, new_replica_count, apply_immediately } => {
                send::increase_replicas(cache, replication_group_id, *new_replica_count, *apply_immediately).await?
            }
            Self::ModifyCacheClusterNodes { cache_cluster_id, num_cache_nodes, apply_immediately } => {
                send::modify_nodes(cache, cache_cluster_id, *num_cache_nodes, &[], *apply_immediately).await?
            }
        }
        Ok(None)
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
            Self::ModifyCacheClusterNodes { .. } => "ElastiCache ModifyCacheCluster",
        }
    }

    fn permission(&self) -> Option<Permission> {
        Some(match self {
            Self::RaiseScalableTargetMin { .. } => send::register_scalable_target_permission(),
            Self::SetDesiredCount { cluster, service, .. } => ecs::update_service_permission(cluster, service),
            Self::ModifyDbInstanceClass { db_instance_identifier, .. } => {
                send::modify_db_permission(db_instance_identifier)
            }
            Self::ModifyReplicationGroupNodeType { replication_group_id, .. } => {
                send::group_permission("elasticache:ModifyReplicationGroup", replication_group_id)
            }
            Self::IncreaseReplicaCount { replication_group_id, .. } => {
                send::group_permission("elasticache:IncreaseReplicaCount", replication_group_id)
            }
            Self::ModifyCacheClusterNodes { cache_cluster_id, .. } => send::modify_cluster_permission(cache_cluster_id),
        })
    }
}

/// The permissions of scale_up's observe steps and changes, `${...}` standing for the target's
/// fields, and the ledger's, which the guard writes around every invocation.
pub fn permissions() -> Vec<Permission> {
    let (c, s, group, cluster) = ("${cluster}", "${service}", "${replicationGroupId}", "${cacheClusterId}");
    let every_change = [
        ScaleChange::raise_min(c, s, 1, 1),
        ScaleChange::SetDesiredCount { cluster: c.into(), service: s.into(), desired_count: 1 },
        ScaleChange::rds("${instanceId}", ""),
        ScaleChange::node_type(group, ""),
        ScaleChange::IncreaseReplicaCount {
            replication_group_id: group.into(),
            new_replica_count: 1,
            apply_immediately: true,
        },
        ScaleChange::ModifyCacheClusterNodes {
            cache_cluster_id: cluster.into(),
            num_cache_nodes: 1,
            apply_immediately: true,
        },
    ];
    let mut declared = incident_scaling::observe::permissions();
    declared.extend(every_change.iter().filter_map(Change::permission));
    declared.extend(incident_ledger::permissions(incident_ledger::Use::Mutate));
    declared
}
