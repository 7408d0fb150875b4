//! `mode: "reboot"`: a rolling reboot of the ElastiCache nodes behind a redis target, one node at a
//! time. Rebooting every node at once would take the whole cache down; here each node is rebooted
//! only once every node is available, and the next only once it is available again. Replicas go
//! first and primaries last, so the cache keeps serving writes for as long as possible.
//!
//! RebootCacheCluster is not supported on cluster-mode-enabled replication groups: those answer a
//! 409 that says so. A node that is not available (a reboot already under way) is a 409 too.

use std::time::Duration;

use aws_sdk_elasticache::types::{CacheCluster, ClusterMode, ReplicationGroup};
use serde::Serialize;
use serde_json::json;
use shared::FunctionError;
use shared::action::{Failure, Outcome, PlannedCall};
use shared::config::ElastiCacheSpec;
use shared::deadline::Deadline;

/// How often a rebooting node is looked at.
pub const DEFAULT_POLL: Duration = Duration::from_secs(10);

/// One cache node, as the reboot sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub cache_cluster_id: String,
    pub cache_node_id: String,
    /// `primary`, `replica`, or unknown (a single cluster outside a replication group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The node's status, or its cluster's when that is not `available`.
    pub status: String,
}

/// What the describe calls found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootObserved {
    /// The resource named in messages, e.g. `ElastiCache replication group sessions`.
    pub resource: String,
    /// Set for a cluster-mode-enabled replication group, where RebootCacheCluster is not supported.
    pub cluster_mode_enabled: bool,
    pub nodes: Vec<NodeView>,
}

/// The nodes to reboot, in order, or why not now.
pub fn plan(observed: &RebootObserved) -> Result<Vec<NodeView>, FunctionError> {
    if observed.cluster_mode_enabled {
        return Err(FunctionError::Conflict(format!(
            "{} has cluster mode enabled, where ElastiCache does not support RebootCacheCluster; \
             clear it with mode \"flush\" or \"pattern\" instead",
            observed.resource
        )));
    }
    if observed.nodes.is_empty() {
        return Err(FunctionError::Conflict(format!("no cache nodes found to reboot for {}", observed.resource)));
    }
    if let Some(busy) = observed.nodes.iter().find(|n| n.status != "available") {
        return Err(FunctionError::Conflict(format!(
            "node {} of cluster {} is {}, not available: a reboot may already be under way; \
             nodes are rebooted one at a time, so try again once every node of {} is available",
            busy.cache_node_id, busy.cache_cluster_id, busy.status, observed.resource
        )));
    }
    let mut order = observed.nodes.clone();
    // Replicas first, primaries last; a stable order otherwise.
    order.sort_by_key(|n| (n.role.as_deref() == Some("primary"), n.cache_cluster_id.clone(), n.cache_node_id.clone()));
    Ok(order)
}

pub async fn observe(
    elasticache: &aws_sdk_elasticache::Client,
    spec: &ElastiCacheSpec,
) -> Result<RebootObserved, FunctionError> {
    let (group, cluster_ids) = match (&spec.replication_group_id, &spec.cache_cluster_id) {
        (_, Some(cluster)) => (None, vec![cluster.clone()]),
        (Some(group_id), None) => {
            let group = describe_group(elasticache, group_id).await?;
            let members = group.member_clusters().to_vec();
            (Some(group), members)
        }
        (None, None) => (None, Vec::new()),
    };
    let resource = match (&spec.replication_group_id, &spec.cache_cluster_id) {
        (Some(group), None) => format!("ElastiCache replication group {group}"),
        _ => format!("ElastiCache cluster {}", cluster_ids.join(", ")),
    };
    let cluster_mode_enabled = group.as_ref().is_some_and(|g| {
        g.cluster_enabled() == Some(true)
            || g.cluster_mode() == Some(&ClusterMode::Enabled)
            || g.node_groups().len() > 1
    });
    if cluster_mode_enabled {
        return Ok(RebootObserved { resource, cluster_mode_enabled, nodes: Vec::new() });
    }
    let mut nodes = Vec::new();
    for cluster_id in &cluster_ids {
        let cluster = describe_cluster(elasticache, cluster_id).await?;
        nodes.extend(node_views(&cluster, group.as_ref()));
    }
    Ok(RebootObserved { resource, cluster_mode_enabled, nodes })
}

/// The nodes of a described cluster, with their role in the group and their status.
fn node_views(cluster: &CacheCluster, group: Option<&ReplicationGroup>) -> Vec<NodeView> {
    let cluster_id = cluster.cache_cluster_id().unwrap_or_default();
    let cluster_status = cluster.cache_cluster_status().unwrap_or("unknown");
    cluster
        .cache_nodes()
        .iter()
        .filter_map(|node| {
            let node_id = node.cache_node_id()?;
            let role = group
                .into_iter()
                .flat_map(|g| g.node_groups())
                .flat_map(|g| g.node_group_members())
                .find(|m| m.cache_cluster_id() == Some(cluster_id) && m.cache_node_id().is_none_or(|id| id == node_id))
                .and_then(|m| m.current_role())
                .map(str::to_owned);
            let status = if cluster_status == "available" {
                node.cache_node_status().unwrap_or("unknown")
            } else {
                cluster_status
            };
            Some(NodeView {
                cache_cluster_id: cluster_id.to_owned(),
                cache_node_id: node_id.to_owned(),
                role,
                status: status.to_owned(),
            })
        })
        .collect()
}

/// The RebootCacheCluster call for one node, as the dry run reports it and as apply sends it.
pub fn planned_call(node: &NodeView) -> PlannedCall {
    PlannedCall::new(
        "ElastiCache RebootCacheCluster",
        json!({"cacheClusterId": node.cache_cluster_id, "cacheNodeIdsToReboot": [node.cache_node_id]}),
    )
}

pub async fn reboot(
    elasticache: &aws_sdk_elasticache::Client,
    spec: &ElastiCacheSpec,
    dry_run: bool,
    poll: Duration,
    deadline: Deadline,
) -> Result<Outcome, Failure> {
    let observed = observe(elasticache, spec).await?;
    let order = plan(&observed)?;
    let resource = observed.resource.clone();
    let nodes = json!(order);
    if dry_run {
        let calls: Vec<PlannedCall> = order.iter().map(planned_call).collect();
        return Ok(Outcome {
            message: format!("Dry run: would reboot the {} node(s) of {resource} one at a time", order.len()),
            resource,
            before: json!({"nodes": nodes}),
            after: json!({"nodes": nodes}),
            details: json!({"mode": "reboot", "order": nodes, "oneAtATime": true, "plannedCalls": calls}),
        });
    }
    let mut rebooted: Vec<&NodeView> = Vec::new();
    for (i, node) in order.iter().enumerate() {
        let call = reboot_node(elasticache, node).await;
        let waited = match call {
            Ok(()) => wait_until_available(elasticache, node, poll, deadline).await,
            Err(err) => Err(err),
        };
        if let Err(error) = waited {
            let details = json!({
                "mode": "reboot", "rebooted": rebooted, "stoppedAt": node, "notStarted": &order[i + 1..],
            });
            return Err(Failure { error, details });
        }
        rebooted.push(node);
    }
    Ok(Outcome {
        message: format!("Rebooted the {} node(s) of {resource} one at a time; all available", order.len()),
        resource,
        before: json!({"nodes": nodes}),
        after: json!({"rebooted": nodes}),
        details: json!({"mode": "reboot", "rebooted": nodes, "oneAtATime": true}),
    })
}

async fn reboot_node(elasticache: &aws_sdk_elasticache::Client, node: &NodeView) -> Result<(), FunctionError> {
    elasticache
        .reboot_cache_cluster()
        .cache_cluster_id(&node.cache_cluster_id)
        .cache_node_ids_to_reboot(&node.cache_node_id)
        .send()
        .await
        .map(drop)
        .map_err(|err| match err.as_service_error() {
            Some(e) if e.is_invalid_cache_cluster_state_fault() => FunctionError::Conflict(format!(
                "ElastiCache cluster {} cannot be rebooted now (not available)",
                node.cache_cluster_id
            )),
            _ => FunctionError::aws("ElastiCache RebootCacheCluster", &err),
        })
}

/// Waits until the node and its cluster are available again; stops cleanly before the deadline.
async fn wait_until_available(
    elasticache: &aws_sdk_elasticache::Client,
    node: &NodeView,
    poll: Duration,
    deadline: Deadline,
) -> Result<(), FunctionError> {
    loop {
        if deadline.remaining() < poll + Duration::from_secs(1) {
            return Err(FunctionError::DeadlineExceeded {
                during: format!(
                    "the rolling reboot (node {} of cluster {} is still rebooting; the later nodes were not \
                     started: call again once it is available)",
                    node.cache_node_id, node.cache_cluster_id
                ),
            });
        }
        tokio::time::sleep(poll).await;
        let cluster = describe_cluster(elasticache, &node.cache_cluster_id).await?;
        let now = node_views(&cluster, None).into_iter().find(|n| n.cache_node_id == node.cache_node_id);
        if now.is_some_and(|n| n.status == "available") {
            return Ok(());
        }
    }
}

async fn describe_group(
    elasticache: &aws_sdk_elasticache::Client,
    id: &str,
) -> Result<ReplicationGroup, FunctionError> {
    let out =
        elasticache.describe_replication_groups().replication_group_id(id).send().await.map_err(|err| {
            match err.as_service_error() {
                Some(e) if e.is_replication_group_not_found_fault() => {
                    FunctionError::ResourceNotFound { kind: "ElastiCache replication group", id: id.to_owned() }
                }
                _ => FunctionError::aws("ElastiCache DescribeReplicationGroups", &err),
            }
        })?;
    out.replication_groups()
        .first()
        .cloned()
        .ok_or_else(|| FunctionError::ResourceNotFound { kind: "ElastiCache replication group", id: id.to_owned() })
}

async fn describe_cluster(elasticache: &aws_sdk_elasticache::Client, id: &str) -> Result<CacheCluster, FunctionError> {
    let out =
        elasticache.describe_cache_clusters().cache_cluster_id(id).show_cache_node_info(true).send().await.map_err(
            |err| match err.as_service_error() {
                Some(e) if e.is_cache_cluster_not_found_fault() => {
                    FunctionError::ResourceNotFound { kind: "ElastiCache cluster", id: id.to_owned() }
                }
                _ => FunctionError::aws("ElastiCache DescribeCacheClusters", &err),
            },
        )?;
    out.cache_clusters()
        .first()
        .cloned()
        .ok_or_else(|| FunctionError::ResourceNotFound { kind: "ElastiCache cluster", id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cluster: &str, role: Option<&str>, status: &str) -> NodeView {
        NodeView {
            cache_cluster_id: cluster.into(),
            cache_node_id: "0001".into(),
            role: role.map(str::to_owned),
            status: status.into(),
        }
    }

    fn observed(nodes: Vec<NodeView>) -> RebootObserved {
        RebootObserved { resource: "ElastiCache replication group rg".into(), cluster_mode_enabled: false, nodes }
    }

    #[test]
    fn replicas_go_first_and_the_primary_last() {
        let order = plan(&observed(vec![
            node("rg-001", Some("primary"), "available"),
            node("rg-003", Some("replica"), "available"),
            node("rg-002", Some("replica"), "available"),
        ]))
        .unwrap();
        let ids: Vec<&str> = order.iter().map(|n| n.cache_cluster_id.as_str()).collect();
        assert_eq!(ids, ["rg-002", "rg-003", "rg-001"]);
    }

    #[test]
    fn a_node_that_is_not_available_holds_the_whole_reboot() {
        let err = plan(&observed(vec![
            node("rg-001", Some("primary"), "available"),
            node("rg-002", Some("replica"), "rebooting cache cluster nodes"),
        ]))
        .unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(err.to_string().contains("node 0001 of cluster rg-002 is rebooting cache cluster nodes"), "{err}");
    }

    #[test]
    fn cluster_mode_enabled_is_a_clear_409() {
        let mut o = observed(Vec::new());
        o.cluster_mode_enabled = true;
        let err = plan(&o).unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(err.to_string().contains("does not support RebootCacheCluster"), "{err}");
        assert!(plan(&observed(Vec::new())).unwrap_err().to_string().contains("no cache nodes"));
    }
}
