#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! clear_cache's rolling reboot of an ElastiCache replication group. moto has no
//! RebootCacheCluster: `aws-smithy-mocks` on the real client stands in for ElastiCache, with node
//! statuses that the reboots change, and it refuses a reboot that starts while another node is
//! still rebooting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use aws_sdk_elasticache::operation::describe_cache_clusters::DescribeCacheClustersOutput;
use aws_sdk_elasticache::operation::describe_replication_groups::DescribeReplicationGroupsOutput;
use aws_sdk_elasticache::operation::reboot_cache_cluster::RebootCacheClusterOutput;
use aws_sdk_elasticache::types::{CacheCluster, CacheNode, NodeGroup, NodeGroupMember, ReplicationGroup};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use incident_clear_cache::{Deps, handler};
use incident_core::testing::response_json;
use serde_json::json;
use shared::testing::{action_event, emulator_config};

mod common;
use common::{deps, guarded, invoke, invoke_within, request};

/// A replication group's nodes in the mocked ElastiCache, whose status the reboots change.
#[derive(Default)]
struct FakeGroup {
    /// cluster id -> (role, describes left before a rebooting node is available again)
    nodes: Vec<(String, String)>,
    rebooting: HashMap<String, u32>,
    reboots: Vec<String>,
}

fn group_world(state: Arc<StdMutex<FakeGroup>>) -> aws_sdk_elasticache::Client {
    let group_state = state.clone();
    let describe_group =
        mock!(aws_sdk_elasticache::Client::describe_replication_groups).then_compute_output(move |_| {
            let state = group_state.lock().unwrap();
            let members = state.nodes.iter().map(|(cluster, role)| {
                NodeGroupMember::builder().cache_cluster_id(cluster).cache_node_id("0001").current_role(role).build()
            });
            let group = ReplicationGroup::builder()
                .replication_group_id("sessions")
                .set_member_clusters(Some(state.nodes.iter().map(|(c, _)| c.clone()).collect()))
                .node_groups(
                    NodeGroup::builder().node_group_id("0001").set_node_group_members(Some(members.collect())).build(),
                )
                .cluster_enabled(false)
                .build();
            DescribeReplicationGroupsOutput::builder().replication_groups(group).build()
        });
    let cluster_state = state.clone();
    let describe_cluster = mock!(aws_sdk_elasticache::Client::describe_cache_clusters)
        .match_requests(|r| r.show_cache_node_info() == Some(true))
        .then_compute_output(move |r| {
            let mut state = cluster_state.lock().unwrap();
            let id = r.cache_cluster_id().unwrap().to_owned();
            let status = match state.rebooting.get_mut(&id) {
                Some(0) => {
                    state.rebooting.remove(&id);
                    "available"
                }
                Some(left) => {
                    *left -= 1;
                    "rebooting cache cluster nodes"
                }
                None => "available",
            };
            let node = CacheNode::builder().cache_node_id("0001").cache_node_status(if status == "available" {
                "available"
            } else {
                "rebooting"
            });
            let cluster =
                CacheCluster::builder().cache_cluster_id(&id).cache_cluster_status(status).cache_nodes(node.build());
            DescribeCacheClustersOutput::builder().cache_clusters(cluster.build()).build()
        });
    let reboot_state = state;
    let reboot = mock!(aws_sdk_elasticache::Client::reboot_cache_cluster)
        .match_requests(|r| r.cache_node_ids_to_reboot() == ["0001"])
        .then_compute_output(move |r| {
            let mut state = reboot_state.lock().unwrap();
            assert!(state.rebooting.is_empty(), "a reboot started while {:?} was still rebooting", state.rebooting);
            let id = r.cache_cluster_id().unwrap().to_owned();
            state.rebooting.insert(id.clone(), 2);
            state.reboots.push(id);
            RebootCacheClusterOutput::builder().build()
        });
    mock_client!(aws_sdk_elasticache, RuleMode::MatchAny, [&describe_group, &describe_cluster, &reboot])
}

fn three_node_group() -> Arc<StdMutex<FakeGroup>> {
    Arc::new(StdMutex::new(FakeGroup {
        nodes: vec![
            ("sessions-001".into(), "primary".into()),
            ("sessions-002".into(), "replica".into()),
            ("sessions-003".into(), "replica".into()),
        ],
        ..FakeGroup::default()
    }))
}

const GROUP_TARGET: &str = "sessions-rg";

async fn group_deps(elasticache: aws_sdk_elasticache::Client) -> Deps {
    let mut deps = deps(
        json!({GROUP_TARGET: {"kind": "redis", "url": "redis://sessions:6379",
               "elasticache": {"replicationGroupId": "sessions", "scaleBy": "replicas", "maxReplicas": 5}}}),
        None,
    )
    .await;
    deps.action.elasticache = elasticache.into();
    deps
}

/// moto has no RebootCacheCluster: the mocks stand in for ElastiCache, and they refuse a reboot
/// that starts while another node is still rebooting.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn reboot_mode_reboots_one_node_at_a_time_replicas_first() {
    let state = three_node_group();
    let deps = group_deps(group_world(state.clone())).await;
    let response = invoke(&deps, request(GROUP_TARGET, json!({"mode": "reboot"}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(state.lock().unwrap().reboots, ["sessions-002", "sessions-003", "sessions-001"], "primary last");
    assert_eq!(response["details"]["oneAtATime"], true);
    let dry = invoke(&deps, request(GROUP_TARGET, json!({"mode": "reboot", "dryRun": true}))).await;
    let calls = dry["details"]["plannedCalls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0]["params"], json!({"cacheClusterId": "sessions-002", "cacheNodeIdsToReboot": ["0001"]}));
    assert_eq!(state.lock().unwrap().reboots.len(), 3, "the dry run rebooted nothing");
    // Exact: the dry run plans the reboots the real run made, in the same order (the mock accepts
    // only `cacheNodeIdsToReboot: ["0001"]`).
    let planned: Vec<&str> = calls.iter().map(|c| c["params"]["cacheClusterId"].as_str().unwrap()).collect();
    assert_eq!(planned, state.lock().unwrap().reboots);
    assert!(calls.iter().all(
        |c| c["call"] == "ElastiCache RebootCacheCluster" && c["params"]["cacheNodeIdsToReboot"] == json!(["0001"])
    ));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_reboot_already_under_way_is_a_409_and_nothing_more_is_rebooted() {
    let state = three_node_group();
    state.lock().unwrap().rebooting.insert("sessions-003".into(), 100);
    let deps = group_deps(group_world(state.clone())).await;
    let response = invoke(&deps, request(GROUP_TARGET, json!({"mode": "reboot"}))).await;
    assert_eq!(response["statusCode"], 409, "{response}");
    assert!(response["message"].as_str().unwrap().contains("sessions-003"), "{response}");
    assert!(state.lock().unwrap().reboots.is_empty());
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_rolling_reboot_stops_cleanly_at_the_deadline_saying_how_far_it_got() {
    let state = three_node_group();
    let mut deps = group_deps(group_world(state.clone())).await;
    deps.action.reboot_poll = Duration::from_millis(400);
    let mut event = action_event(request(GROUP_TARGET, json!({"mode": "reboot"})));
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    event.context.deadline = now_ms + 3_000;
    let response = response_json(&handler(event, &deps).await.unwrap());
    assert_eq!(response["statusCode"], 504, "{response}");
    let details = &response["details"];
    assert_eq!(
        details["rebooted"].as_array().unwrap().len() + 1 + details["notStarted"].as_array().unwrap().len(),
        3,
        "{details}"
    );
    assert!(response["message"].as_str().unwrap().contains("still rebooting"), "{response}");
    assert_eq!(state.lock().unwrap().reboots.len(), details["rebooted"].as_array().unwrap().len() + 1);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_cluster_mode_enabled_group_is_a_409_that_says_reboot_is_not_supported() {
    let describe = mock!(aws_sdk_elasticache::Client::describe_replication_groups).then_output(|| {
        let shards = (1..=2).map(|i| NodeGroup::builder().node_group_id(format!("000{i}")).build()).collect();
        DescribeReplicationGroupsOutput::builder()
            .replication_groups(
                ReplicationGroup::builder()
                    .replication_group_id("sessions")
                    .cluster_enabled(true)
                    .set_node_groups(Some(shards))
                    .build(),
            )
            .build()
    });
    // Sequential with no other rule: a RebootCacheCluster call would fail the test.
    let deps = group_deps(mock_client!(aws_sdk_elasticache, RuleMode::Sequential, [&describe])).await;
    let response = invoke(&deps, request(GROUP_TARGET, json!({"mode": "reboot"}))).await;
    assert_eq!(response["statusCode"], 409, "{response}");
    assert!(response["message"].as_str().unwrap().contains("cluster mode enabled"), "{response}");
}

/// A rolling reboot stopped halfway changed the group: its budget stays spent, and a retry of the
/// same request is answered with that failure again rather than rebooting from the start.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_reboot_stopped_halfway_is_replayed_to_its_retry_and_reboots_nothing_more() {
    let state = three_node_group();
    let (mut deps, ledger) = guarded(group_deps(group_world(state.clone())).await).await;
    deps.action.reboot_poll = Duration::from_millis(400);
    let reboot = request(GROUP_TARGET, json!({"mode": "reboot"}));
    let stopped = invoke_within(&deps, reboot.clone(), Duration::from_millis(3_000)).await;
    assert_eq!(stopped["statusCode"], 504, "{stopped}");
    let rebooted = state.lock().unwrap().reboots.len();
    assert!(rebooted >= 1, "{stopped}");
    let setup = emulator_config().await;
    assert_eq!(incident_ledger::testing::spent(&setup, &ledger.table, "BUDGET#fleet").await, 1);
    assert_eq!(incident_ledger::testing::key_statuses(&setup, &ledger.table, "INC-3").await, ["COMPLETED"]);
    let retry = invoke_within(&deps, reboot, Duration::from_secs(30)).await;
    assert_eq!((retry["replayed"].as_bool(), &retry["statusCode"]), (Some(true), &stopped["statusCode"]), "{retry}");
    assert_eq!(state.lock().unwrap().reboots.len(), rebooted, "nothing more was rebooted");
}
