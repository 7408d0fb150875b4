//! What scaling looks at: describe calls only.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use incident_core::config::ElastiCache;
use incident_core::state::Bounds;
use shared::FunctionError;
use shared::ecs::{self, ServiceRef};
use shared::iam::{Permission, arn};

/// An RDS instance's class and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsObserved {
    pub class: String,
    pub status: String,
}

/// What an ElastiCache target's scaling reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElastiCacheObserved {
    /// A replication group: its node type, replicas per node group (the smallest group's), status.
    Group { node_type: String, replicas: i32, status: String },
    /// A cache cluster: its node count and status.
    Cluster { nodes: i32, status: String },
}

/// What observing every kind of target needs, `${...}` standing for the target's fields.
pub fn permissions() -> Vec<Permission> {
    vec![
        ecs::describe_services_permission("${cluster}", "${service}"),
        Permission::any("application-autoscaling:DescribeScalableTargets"),
        Permission::new("rds:DescribeDBInstances", arn("rds", "db:${instanceId}")),
        describe_group_permission("${replicationGroupId}"),
        describe_cluster_permission("${cacheClusterId}"),
    ]
}

pub fn describe_group_permission(id: &str) -> Permission {
    Permission::new("elasticache:DescribeReplicationGroups", arn("elasticache", &format!("replicationgroup:{id}")))
}

pub fn describe_cluster_permission(id: &str) -> Permission {
    Permission::new("elasticache:DescribeCacheClusters", arn("elasticache", &format!("cluster:{id}")))
}

/// An ECS service's desired count.
pub async fn desired_count(ecs: &aws_sdk_ecs::Client, cluster: &str, service: &str) -> Result<i32, FunctionError> {
    Ok(ecs::describe_service(ecs, &ServiceRef::new(cluster, service)).await?.desired_count())
}

/// An ECS service's Application Auto Scaling bounds, if it has a scalable target.
pub async fn scalable_bounds(
    autoscaling: &aws_sdk_applicationautoscaling::Client,
    cluster: &str,
    service: &str,
) -> Result<Option<Bounds>, FunctionError> {
    let out = autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(format!("service/{cluster}/{service}"))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .map_err(|err| FunctionError::aws("ApplicationAutoScaling DescribeScalableTargets", &err))?;
    let first = out.scalable_targets().first();
    Ok(first.map(|t| Bounds { min_capacity: t.min_capacity(), max_capacity: t.max_capacity() }))
}

/// A Memcached cluster's node ids, in the order ElastiCache numbers them (newest last).
pub async fn node_ids(elasticache: &aws_sdk_elasticache::Client, id: &str) -> Result<Vec<String>, FunctionError> {
    let out = elasticache
        .describe_cache_clusters()
        .cache_cluster_id(id)
        .show_cache_node_info(true)
        .send()
        .await
        .map_err(|err| FunctionError::aws("ElastiCache DescribeCacheClusters", &err))?;
    let mut ids: Vec<String> = out
        .cache_clusters()
        .iter()
        .flat_map(|c| c.cache_nodes())
        .filter_map(|n| n.cache_node_id().map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}

pub async fn rds(rds: &aws_sdk_rds::Client, id: &str) -> Result<RdsObserved, FunctionError> {
    let not_found = || FunctionError::ResourceNotFound { kind: "RDS instance", id: id.to_owned() };
    let out = rds.describe_db_instances().db_instance_identifier(id).send().await.map_err(|err| {
        match err.as_service_error() {
            Some(e) if e.is_db_instance_not_found_fault() => not_found(),
            _ => FunctionError::aws("RDS DescribeDBInstances", &err),
        }
    })?;
    let instance = out.db_instances().first().ok_or_else(not_found)?;
    Ok(RdsObserved {
        class: instance.db_instance_class().unwrap_or_default().to_owned(),
        status: instance.db_instance_status().unwrap_or("unknown").to_owned(),
    })
}

pub async fn elasticache(
    elasticache: &aws_sdk_elasticache::Client,
    spec: &ElastiCache,
) -> Result<ElastiCacheObserved, FunctionError> {
    match spec {
        ElastiCache::NodeType { replication_group_id, .. } | ElastiCache::Replicas { replication_group_id, .. } => {
            group(elasticache, replication_group_id).await
        }
        ElastiCache::Nodes { cache_cluster_id, .. } => cluster(elasticache, cache_cluster_id).await,
    }
}

async fn group(elasticache: &aws_sdk_elasticache::Client, id: &str) -> Result<ElastiCacheObserved, FunctionError> {
    let not_found = || FunctionError::ResourceNotFound { kind: "ElastiCache replication group", id: id.to_owned() };
    let out =
        elasticache.describe_replication_groups().replication_group_id(id).send().await.map_err(|err| {
            match err.as_service_error() {
                Some(e) if e.is_replication_group_not_found_fault() => not_found(),
                _ => FunctionError::aws("ElastiCache DescribeReplicationGroups", &err),
            }
        })?;
    let group = out.replication_groups().first().ok_or_else(not_found)?;
    // Replicas per node group: members less the primary; the smallest group decides.
    let members = group.node_groups().iter().map(|g| i32::try_from(g.node_group_members().len()).unwrap_or(i32::MAX));
    let replicas = members.map(|m| m - 1).min().unwrap_or(0);
    Ok(ElastiCacheObserved::Group {
        node_type: group.cache_node_type().unwrap_or_default().to_owned(),
        replicas: replicas.max(0),
        status: group.status().unwrap_or("unknown").to_owned(),
    })
}

async fn cluster(elasticache: &aws_sdk_elasticache::Client, id: &str) -> Result<ElastiCacheObserved, FunctionError> {
    let not_found = || FunctionError::ResourceNotFound { kind: "ElastiCache cluster", id: id.to_owned() };
    let out = elasticache.describe_cache_clusters().cache_cluster_id(id).send().await.map_err(|err| {
        match err.as_service_error() {
            Some(e) if e.is_cache_cluster_not_found_fault() => not_found(),
            _ => FunctionError::aws("ElastiCache DescribeCacheClusters", &err),
        }
    })?;
    let cluster = out.cache_clusters().first().ok_or_else(not_found)?;
    Ok(ElastiCacheObserved::Cluster {
        nodes: cluster.num_cache_nodes().unwrap_or(0),
        status: cluster.cache_cluster_status().unwrap_or("unknown").to_owned(),
    })
}
