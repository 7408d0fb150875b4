//! `mode: "reboot"`: a rolling reboot of the ElastiCache nodes behind a redis target, one node at a
//! time. Rebooting every node at once would take the whole cache down; here each node is rebooted
//! only once every node is available, and the next only once it is available again. Replicas go
//! first and primaries last, so the cache keeps serving writes for as long as possible.
//!
//! RebootCacheCluster is not supported on cluster-mode-enabled replication groups: those answer a
//! 409 that says so. A node that is not available (a reboot already under way) is a 409 too.

use std::time::Duration;

use aws_sdk_elasticache::types::{CacheCluster, ClusterMode, ReplicationGroup};
use incident_core::action::{Applied, Failure, Progress};
use incident_core::config::ElastiCache;
use incident_core::plan::Plan;
use incident_core::state::{CacheNode, State};
use shared::FunctionError;
use shared::deadline::Deadline;
use shared::iam::{Permission, arn};

use crate::ClearChange;
use crate::details::{ClearDetails, RebootDetails};

/// How often a rebooting node is looked at.
pub const DEFAULT_POLL: Duration = Duration::from_secs(10);

/// What the describe calls found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootObserved {
    /// The resource named in messages, e.g. `ElastiCache replication group sessions`.
    pub resource: String,
    /// Set for a cluster-mode-enabled replication group, where RebootCacheCluster is not supported.
    pub cluster_mode_enabled: bool,
    pub nodes: Vec<CacheNode>,
}

/// The nodes to reboot, in order, or why not now.
pub fn order(observed: &RebootObserved) -> Result<Vec<CacheNode>, FunctionError> {
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

/// One RebootCacheCluster per node, in [`order`].
pub fn plan(observed: &RebootObserved) -> Result<Plan<ClearChange, ClearDetails>, FunctionError> {
    let nodes = order(observed)?;
    let resource = observed.resource.clone();
    let changes = nodes
        .iter()
        .map(|n| ClearChange::RebootNode {
            cache_cluster_id: n.cache_cluster_id.clone(),
            cache_node_ids_to_reboot: vec![n.cache_node_id.clone()],
        })
        .collect();
    Ok(Plan {
        intent: format!("reboot the {} node(s) of {resource} one at a time", nodes.len()),
        done: format!("Rebooted the {} node(s) of {resource} one at a time; all available", nodes.len()),
        no_change: String::new(),
        before: State::CacheNodeStatuses { nodes: nodes.clone() },
        after: State::CacheNodeStatuses { nodes: nodes.clone() },
        details: ClearDetails::Reboot(RebootDetails { order: Some(nodes), ..reboot_details() }),
        changes,
        resource,
    })
}

fn reboot_details() -> RebootDetails {
    RebootDetails {
        mode: "reboot",
        one_at_a_time: Some(true),
        order: None,
        rebooted: None,
        stopped_at: None,
        not_started: None,
    }
}

pub fn describe_group_permission(id: &str) -> Permission {
    Permission::new("elasticache:DescribeReplicationGroups", arn("elasticache", &format!("replicationgroup:{id}")))
}

pub fn describe_cluster_permission(id: &str) -> Permission {
    Permission::new("elasticache:DescribeCacheClusters", arn("elasticache", &format!("cluster:{id}")))
}

pub fn reboot_permission(cluster: &str) -> Permission {
    Permission::new("elasticache:RebootCacheCluster", arn("elasticache", &format!("cluster:{cluster}")))
}

pub async fn observe(
    elasticache: &aws_sdk_elasticache::Client,
    spec: &ElastiCache,
) -> Result<RebootObserved, FunctionError> {
    let (group, cluster_ids, resource) = match (spec.replication_group_id(), spec.cache_cluster_id()) {
        (Some(group_id), _) => {
            let group = describe_group(elasticache, group_id).await?;
            let members = group.member_clusters().to_vec();
            (Some(group), members, format!("ElastiCache replication group {group_id}"))
        }
        (None, cluster) => {
            let ids: Vec<String> = cluster.into_iter().map(str::to_owned).collect();
            let resource = format!("ElastiCache cluster {}", ids.join(", "));
            (None, ids, resource)
        }
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
fn node_views(cluster: &CacheCluster, group: Option<&ReplicationGroup>) -> Vec<CacheNode> {
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
            Some(CacheNode {
                cache_cluster_id: cluster_id.to_owned(),
                cache_node_id: node_id.to_owned(),
                role,
                status: status.to_owned(),
            })
        })
        .collect()
}

/// Reboots the nodes in the plan's order, each only once the one before it is available again;
/// stops cleanly before the deadline, saying how far it got.
pub async fn apply(
    plan: &Plan<ClearChange, ClearDetails>,
    elasticache: &aws_sdk_elasticache::Client,
    poll: Duration,
    deadline: Deadline,
) -> Result<Applied<ClearDetails>, Failure<ClearDetails>> {
    let State::CacheNodeStatuses { nodes } = &plan.before else {
        return Err(FunctionError::Conflict("no nodes".into()).into());
    };
    for (i, change) in plan.changes.iter().enumerate() {
        let ClearChange::RebootNode { cache_cluster_id, cache_node_ids_to_reboot } = change else { continue };
        let rebooted = reboot_node(elasticache, cache_cluster_id, cache_node_ids_to_reboot).await;
        let waited = match &rebooted {
            Ok(()) => {
                wait_until_available(elasticache, cache_cluster_id, cache_node_ids_to_reboot, poll, deadline).await
            }
            Err(err) => Err(err.clone()),
        };
        if let Err(error) = waited {
            let details = RebootDetails {
                rebooted: Some(nodes[..i].to_vec()),
                stopped_at: nodes.get(i).cloned(),
                not_started: nodes.get(i + 1..).map(<[CacheNode]>::to_vec),
                one_at_a_time: None,
                ..reboot_details()
            };
            let progress = if i > 0 || rebooted.is_ok() { Progress::Changed } else { Progress::Nothing };
            return Err(Failure::with_details(error, ClearDetails::Reboot(details), progress));
        }
    }
    let details = ClearDetails::Reboot(RebootDetails { rebooted: Some(nodes.clone()), ..reboot_details() });
    Ok(Applied::as_planned(plan, details))
}

async fn reboot_node(
    elasticache: &aws_sdk_elasticache::Client,
    cluster: &str,
    nodes: &[String],
) -> Result<(), FunctionError> {
    elasticache
        .reboot_cache_cluster()
        .cache_cluster_id(cluster)
        .set_cache_node_ids_to_reboot(Some(nodes.to_vec()))
        .send()
        .await
        .map(drop)
        .map_err(|err| match err.as_service_error() {
            Some(e) if e.is_invalid_cache_cluster_state_fault() => {
                FunctionError::Conflict(format!("ElastiCache cluster {cluster} cannot be rebooted now (not available)"))
            }
            _ => FunctionError::aws("ElastiCache RebootCacheCluster", &err),
        })
}

/// Waits until the nodes and their cluster are available again; stops cleanly before the deadline.
async fn wait_until_available(
    elasticache: &aws_sdk_elasticache::Client,
    cluster: &str,
    nodes: &[String],
    poll: Duration,
    deadline: Deadline,
) -> Result<(), FunctionError> {
    loop {
        if deadline.remaining() < poll + Duration::from_secs(1) {
            return Err(FunctionError::DeadlineExceeded {
                during: format!(
                    "the rolling reboot (node {} of cluster {cluster} is still rebooting; the later nodes were not \
                     started: call again once it is available)",
                    nodes.join(", ")
                ),
            });
        }
        tokio::time::sleep(poll).await;
        let views = node_views(&describe_cluster(elasticache, cluster).await?, None);
        let ours = views.iter().filter(|n| nodes.contains(&n.cache_node_id));
        if ours.clone().count() == nodes.len() && ours.into_iter().all(|n| n.status == "available") {
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

    fn node(cluster: &str, role: Option<&str>, status: &str) -> CacheNode {
        CacheNode {
            cache_cluster_id: cluster.into(),
            cache_node_id: "0001".into(),
            role: role.map(str::to_owned),
            status: status.into(),
        }
    }

    fn observed(nodes: Vec<CacheNode>) -> RebootObserved {
        RebootObserved { resource: "ElastiCache replication group rg".into(), cluster_mode_enabled: false, nodes }
    }

    #[test]
    fn replicas_go_first_and_the_primary_last() {
        let order = order(&observed(vec![
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
        let err = order(&observed(vec![
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
        let err = order(&o).unwrap_err();
        assert_eq!(err.status(), 409);
        assert!(err.to_string().contains("does not support RebootCacheCluster"), "{err}");
        assert!(order(&observed(Vec::new())).unwrap_err().to_string().contains("no cache nodes"));
    }

    #[test]
    fn the_plan_is_one_reboot_per_node_in_order() {
        let plan = plan(&observed(vec![
            node("rg-001", Some("primary"), "available"),
            node("rg-002", Some("replica"), "available"),
        ]))
        .unwrap();
        let clusters: Vec<&str> = plan
            .changes
            .iter()
            .map(|c| match c {
                ClearChange::RebootNode { cache_cluster_id, .. } => cache_cluster_id.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(clusters, ["rg-002", "rg-001"]);
        assert_eq!(plan.intent, "reboot the 2 node(s) of ElastiCache replication group rg one at a time");
    }
}
