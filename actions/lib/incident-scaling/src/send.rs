//! The calls that change capacity, in either direction (scale_up's plans raise, the restore's
//! lower), with the values a plan holds; and the permission of each.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use shared::FunctionError;
use shared::iam::{Permission, arn};

/// Scalable targets are named by an opaque ARN, so a policy can only grant them by a wildcard.
pub fn register_scalable_target_permission() -> Permission {
    Permission::new(
        "application-autoscaling:RegisterScalableTarget",
        arn("application-autoscaling", "scalable-target/*"),
    )
}

pub fn modify_db_permission(id: &str) -> Permission {
    Permission::new("rds:ModifyDBInstance", arn("rds", &format!("db:{id}")))
}

/// An ElastiCache change of a replication group (`elasticache:ModifyReplicationGroup`, ...).
pub fn group_permission(action: &'static str, id: &str) -> Permission {
    Permission::new(action, arn("elasticache", &format!("replicationgroup:{id}")))
}

pub fn modify_cluster_permission(id: &str) -> Permission {
    Permission::new("elasticache:ModifyCacheCluster", arn("elasticache", &format!("cluster:{id}")))
}

/// Application Auto Scaling RegisterScalableTarget with the new (MinCapacity, MaxCapacity).
pub async fn raise_floor(
    autoscaling: &aws_sdk_applicationautoscaling::Client,
    resource_id: &str,
    dimension: &str,
    (min, max): (i32, i32),
) -> Result<(), FunctionError> {
    autoscaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id)
        .scalable_dimension(ScalableDimension::from(dimension))
        .min_capacity(min)
        .max_capacity(max)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| FunctionError::aws("ApplicationAutoScaling RegisterScalableTarget", &err))
}

/// RDS ModifyDBInstance to `class`; answers the instance's status. An instance in a state that
/// cannot be modified is a 409.
pub async fn modify_db_instance(
    rds: &aws_sdk_rds::Client,
    id: &str,
    class: &str,
    apply_immediately: bool,
) -> Result<Option<String>, FunctionError> {
    let modified = rds
        .modify_db_instance()
        .db_instance_identifier(id)
        .db_instance_class(class)
        .apply_immediately(apply_immediately);
    let out = modified.send().await.map_err(|err| match err.as_service_error() {
        Some(e) if e.is_invalid_db_instance_state_fault() => FunctionError::Conflict(format!(
            "RDS instance {id} cannot be modified now: {}",
            aws_sdk_rds::error::ProvideErrorMetadata::message(e).unwrap_or("")
        )),
        _ => FunctionError::aws("RDS ModifyDBInstance", &err),
    })?;
    Ok(out.db_instance().and_then(|i| i.db_instance_status()).map(str::to_owned))
}

/// ElastiCache ModifyReplicationGroup to `node_type`.
pub async fn modify_node_type(
    elasticache: &aws_sdk_elasticache::Client,
    group: &str,
    node_type: &str,
    apply_immediately: bool,
) -> Result<(), FunctionError> {
    let modify = elasticache.modify_replication_group().replication_group_id(group).cache_node_type(node_type);
    modify
        .apply_immediately(apply_immediately)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| FunctionError::aws("ElastiCache ModifyReplicationGroup", &err))
}

/// ElastiCache IncreaseReplicaCount to `replicas`.
pub async fn increase_replicas(
    elasticache: &aws_sdk_elasticache::Client,
    group: &str,
    replicas: i32,
    apply_immediately: bool,
) -> Result<(), FunctionError> {
    let increase = elasticache.increase_replica_count().replication_group_id(group).new_replica_count(replicas);
    increase
        .apply_immediately(apply_immediately)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| FunctionError::aws("ElastiCache IncreaseReplicaCount", &err))
}

/// ElastiCache ModifyCacheCluster to `nodes` nodes (Memcached); fewer nodes name the ones removed.
pub async fn modify_nodes(
    elasticache: &aws_sdk_elasticache::Client,
    cluster: &str,
    nodes: i32,
    remove: &[String],
    apply_immediately: bool,
) -> Result<(), FunctionError> {
    let modify = elasticache.modify_cache_cluster().cache_cluster_id(cluster).num_cache_nodes(nodes);
    let modify = if remove.is_empty() { modify } else { modify.set_cache_node_ids_to_remove(Some(remove.to_vec())) };
    modify
        .apply_immediately(apply_immediately)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| FunctionError::aws("ElastiCache ModifyCacheCluster", &err))
}

/// ElastiCache DecreaseReplicaCount to `replicas`.
pub async fn decrease_replicas(
    elasticache: &aws_sdk_elasticache::Client,
    group: &str,
    replicas: i32,
    apply_immediately: bool,
) -> Result<(), FunctionError> {
    let decrease = elasticache.decrease_replica_count().replication_group_id(group).new_replica_count(replicas);
    decrease
        .apply_immediately(apply_immediately)
        .send()
        .await
        .map(|_| ())
        .map_err(|err| FunctionError::aws("ElastiCache DecreaseReplicaCount", &err))
}
