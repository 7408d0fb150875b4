//! What an action saw of a resource and what it left: the `before` and `after` of every plan, of the
//! audit line and of the ledger's records, typed. The ledger stores them with [`SCHEMA`], and the
//! restore after an incident reads them back as this type, never by a JSON path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the records' layout: 2 since the states are typed (records without a `schema`
/// are version 1, written before 2026-12-05; their states are shown as text and not restored).
pub const SCHEMA: u32 = 2;

/// A resource's state as one action sees it. Serialised with its `kind`, e.g.
/// `{"kind": "ecs_service", "desiredCount": 2}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum State {
    /// An ECS service's desired count, and the bounds of its Application Auto Scaling target.
    EcsService {
        desired_count: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        autoscaling: Option<Bounds>,
    },
    /// An ECS service's primary deployment and its task definition (a restart).
    EcsDeployment { deployment_id: Option<String>, task_definition: Option<String> },
    /// An RDS instance's class.
    RdsInstance { instance_class: String },
    /// An ElastiCache replication group's node type.
    CacheNodeType { cache_node_type: String },
    /// An ElastiCache replication group's replica count.
    CacheReplicas { replicas: i32 },
    /// A Memcached cluster's node count.
    CacheNodes { num_cache_nodes: i32 },
    /// Each node of an ElastiCache cluster or group and its status (a rolling reboot).
    CacheNodeStatuses { nodes: Vec<CacheNode> },
    /// EC2 instances by id, with their state (`running`, `stopped`; `rebooting` once asked to).
    Ec2Instances { instances: BTreeMap<String, String> },
    /// A Redis server's key count.
    Redis { keys: u64 },
    /// A page: the message SNS accepted (none before it was sent).
    Page { message_id: Option<String> },
}

/// An Application Auto Scaling target's MinCapacity and MaxCapacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bounds {
    pub min_capacity: i32,
    pub max_capacity: i32,
}

/// One ElastiCache node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheNode {
    pub cache_cluster_id: String,
    pub cache_node_id: String,
    /// `primary` or `replica` in a replication group; none for a cluster outside one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The node's status, or its cluster's when that is not `available`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn states_read_back_as_they_were_written() {
        let scaled =
            State::EcsService { desired_count: 10, autoscaling: Some(Bounds { min_capacity: 10, max_capacity: 20 }) };
        let text = serde_json::to_value(&scaled).unwrap();
        assert_eq!(
            text,
            json!({"kind": "ecs_service", "desiredCount": 10, "autoscaling": {"minCapacity": 10, "maxCapacity": 20}})
        );
        assert_eq!(serde_json::from_value::<State>(text).unwrap(), scaled);
        let plain = serde_json::to_value(State::EcsService { desired_count: 2, autoscaling: None }).unwrap();
        assert_eq!(plain, json!({"kind": "ecs_service", "desiredCount": 2}));
        let unknown = serde_json::from_value::<State>(json!({"kind": "mainframe", "lpars": 3}));
        assert!(unknown.is_err(), "a state of a kind this code does not know is refused, never guessed");
    }
}
