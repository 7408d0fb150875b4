//! The changes a restore makes: each puts capacity back down to what it was before an incident.
//! They are the restore's own type, so the scale_up Lambda has no way to express them.

use incident_core::config::{ElastiCache, Target};
use incident_core::plan::Change;
use incident_core::state::State;
use incident_scaling::send;
use serde::Serialize;
use shared::FunctionError;
use shared::ecs::{self, ServiceRef};
use shared::iam::Permission;

use super::{Clients, Current};

/// One change of a restore. Serialised, it is the call's parameters under the API's member names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum RestoreChange {
    /// Application Auto Scaling RegisterScalableTarget: the bounds back as they were, first, so
    /// that autoscaling does not undo the count.
    SetScalableTargetBounds {
        service_namespace: &'static str,
        resource_id: String,
        scalable_dimension: &'static str,
        min_capacity: i32,
        max_capacity: i32,
    },
    /// ECS UpdateService with the desired count as it was.
    SetDesiredCount { cluster: String, service: String, desired_count: i32 },
    /// RDS ModifyDBInstance back to the class it had.
    ModifyDbInstanceClass { db_instance_identifier: String, db_instance_class: String, apply_immediately: bool },
    /// ElastiCache ModifyReplicationGroup back to the node type it had.
    ModifyReplicationGroupNodeType { replication_group_id: String, cache_node_type: String, apply_immediately: bool },
    /// ElastiCache DecreaseReplicaCount (always applied at once: ElastiCache supports no other way).
    DecreaseReplicaCount { replication_group_id: String, new_replica_count: i32, apply_immediately: bool },
    /// ElastiCache ModifyCacheCluster down to fewer nodes, naming those removed (the newest).
    RemoveCacheClusterNodes {
        cache_cluster_id: String,
        num_cache_nodes: i32,
        cache_node_ids_to_remove: Vec<String>,
        apply_immediately: bool,
    },
}

impl RestoreChange {
    /// The changes that put `target` back to `original`; `None` when the state is not one scale_up
    /// leaves on such a target. `now` applies at once what would wait for the maintenance window.
    pub fn to_put_back(original: &State, target: &Target, current: &Current, now: bool) -> Option<Vec<Self>> {
        Some(match (target, original) {
            (Target::EcsService(t), State::EcsService { desired_count, autoscaling }) => {
                let floor = autoscaling.map(|b| Self::SetScalableTargetBounds {
                    service_namespace: "ecs",
                    resource_id: format!("service/{}/{}", t.cluster, t.service),
                    scalable_dimension: "ecs:service:DesiredCount",
                    min_capacity: b.min_capacity,
                    max_capacity: b.max_capacity,
                });
                let (cluster, service) = (t.cluster.clone(), t.service.clone());
                floor
                    .into_iter()
                    .chain([Self::SetDesiredCount { cluster, service, desired_count: *desired_count }])
                    .collect()
            }
            (Target::RdsInstance(t), State::RdsInstance { instance_class }) => vec![Self::ModifyDbInstanceClass {
                db_instance_identifier: t.instance_id.clone(),
                db_instance_class: instance_class.clone(),
                apply_immediately: now,
            }],
            (Target::Redis(redis), state) => vec![Self::cache(redis.elasticache.as_ref()?, state, current, now)?],
            _ => return None,
        })
    }

    fn cache(spec: &ElastiCache, original: &State, current: &Current, now: bool) -> Option<Self> {
        Some(match (spec, original) {
            (ElastiCache::NodeType { replication_group_id, .. }, State::CacheNodeType { cache_node_type }) => {
                Self::ModifyReplicationGroupNodeType {
                    replication_group_id: replication_group_id.clone(),
                    cache_node_type: cache_node_type.clone(),
                    apply_immediately: now,
                }
            }
            (ElastiCache::Replicas { replication_group_id, .. }, State::CacheReplicas { replicas }) => {
                Self::DecreaseReplicaCount {
                    replication_group_id: replication_group_id.clone(),
                    new_replica_count: *replicas,
                    apply_immediately: true,
                }
            }
            (ElastiCache::Nodes { cache_cluster_id, .. }, State::CacheNodes { num_cache_nodes }) => {
                let keep = usize::try_from(*num_cache_nodes).unwrap_or(0);
                Self::RemoveCacheClusterNodes {
                    cache_cluster_id: cache_cluster_id.clone(),
                    num_cache_nodes: *num_cache_nodes,
                    cache_node_ids_to_remove: current.node_ids.iter().skip(keep).cloned().collect(),
                    apply_immediately: now,
                }
            }
            _ => return None,
        })
    }

    /// Whether it takes effect at the next maintenance window rather than now.
    pub fn waits_for_maintenance(&self) -> bool {
        match self {
            Self::ModifyDbInstanceClass { apply_immediately, .. }
            | Self::ModifyReplicationGroupNodeType { apply_immediately, .. }
            | Self::RemoveCacheClusterNodes { apply_immediately, .. } => !apply_immediately,
            _ => false,
        }
    }

    pub async fn send(&self, clients: &Clients) -> Result<(), FunctionError> {
        let cache = &clients.elasticache;
        match self {
            Self::SetScalableTargetBounds { resource_id, scalable_dimension, min_capacity, max_capacity, .. } => {
                send::raise_floor(&clients.autoscaling, resource_id, scalable_dimension, (*min_capacity, *max_capacity))
                    .await
            }
            Self::SetDesiredCount { cluster, service, desired_count } => {
                ecs::set_desired_count(&clients.ecs, &ServiceRef::new(cluster, service), *desired_count).await.map(drop)
            }
            Self::ModifyDbInstanceClass { db_instance_identifier: id, db_instance_class: class, apply_immediately } => {
                send::modify_db_instance(&clients.rds, id, class, *apply_immediately).await.map(drop)
            }
            Self::ModifyReplicationGroupNodeType { replication_group_id, cache_node_type, apply_immediately } => {
                send::modify_node_type(cache, replication_group_id, cache_node_type, *apply_immediately).await
            }
            Self::DecreaseReplicaCount { replication_group_id, new_replica_count, apply_immediately } => {
                send::decrease_replicas(cache, replication_group_id, *new_replica_count, *apply_immediately).await
            }
            Self::RemoveCacheClusterNodes {
                cache_cluster_id,
                num_cache_nodes,
                cache_node_ids_to_remove,
                apply_immediately,
            } => {
                send::modify_nodes(
                    cache,
                    cache_cluster_id,
                    *num_cache_nodes,
                    cache_node_ids_to_remove,
                    *apply_immediately,
                )
                .await
            }
        }
    }
}

impl Change for RestoreChange {
    fn call(&self) -> &'static str {
        match self {
            Self::SetScalableTargetBounds { .. } => "ApplicationAutoScaling RegisterScalableTarget",
            Self::SetDesiredCount { .. } => "ECS UpdateService",
            Self::ModifyDbInstanceClass { .. } => "RDS ModifyDBInstance",
            Self::ModifyReplicationGroupNodeType { .. } => "ElastiCache ModifyReplicationGroup",
            Self::DecreaseReplicaCount { .. } => "ElastiCache DecreaseReplicaCount",
            Self::RemoveCacheClusterNodes { .. } => "ElastiCache ModifyCacheCluster",
        }
    }

    fn permission(&self) -> Option<Permission> {
        Some(match self {
            Self::SetScalableTargetBounds { .. } => send::register_scalable_target_permission(),
            Self::SetDesiredCount { cluster, service, .. } => ecs::update_service_permission(cluster, service),
            Self::ModifyDbInstanceClass { db_instance_identifier, .. } => {
                send::modify_db_permission(db_instance_identifier)
            }
            Self::ModifyReplicationGroupNodeType { replication_group_id, .. } => {
                send::group_permission("elasticache:ModifyReplicationGroup", replication_group_id)
            }
            Self::DecreaseReplicaCount { replication_group_id, .. } => {
                send::group_permission("elasticache:DecreaseReplicaCount", replication_group_id)
            }
            Self::RemoveCacheClusterNodes { cache_cluster_id, .. } => send::modify_cluster_permission(cache_cluster_id),
        })
    }
}

/// The restore's permissions: its reads and every change it can make, `${...}` standing for the
/// target's fields.
pub fn permissions() -> Vec<Permission> {
    let (group, cluster) = ("${replicationGroupId}".to_owned(), "${cacheClusterId}".to_owned());
    let every_change = [
        RestoreChange::SetScalableTargetBounds {
            service_namespace: "ecs",
            resource_id: String::new(),
            scalable_dimension: "",
            min_capacity: 1,
            max_capacity: 1,
        },
        RestoreChange::SetDesiredCount { cluster: "${cluster}".into(), service: "${service}".into(), desired_count: 1 },
        RestoreChange::ModifyDbInstanceClass {
            db_instance_identifier: "${instanceId}".into(),
            db_instance_class: String::new(),
            apply_immediately: false,
        },
        RestoreChange::ModifyReplicationGroupNodeType {
            replication_group_id: group.clone(),
            cache_node_type: String::new(),
            apply_immediately: false,
        },
        RestoreChange::DecreaseReplicaCount {
            replication_group_id: group,
            new_replica_count: 1,
            apply_immediately: true,
        },
        RestoreChange::RemoveCacheClusterNodes {
            cache_cluster_id: cluster,
            num_cache_nodes: 1,
            cache_node_ids_to_remove: Vec::new(),
            apply_immediately: false,
        },
    ];
    let mut declared = incident_scaling::observe::permissions();
    declared.extend(every_change.iter().filter_map(Change::permission));
    declared
}
