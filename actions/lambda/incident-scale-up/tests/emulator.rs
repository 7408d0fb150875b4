#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! incident-scale-up against the AWS emulator (moto server), plus aws-smithy-mocks for the two
//! ElastiCache calls moto does not implement (IncreaseReplicaCount, ModifyCacheCluster).

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_elasticache::operation::describe_cache_clusters::DescribeCacheClustersOutput;
use aws_sdk_elasticache::operation::describe_replication_groups::DescribeReplicationGroupsOutput;
use aws_sdk_elasticache::operation::increase_replica_count::IncreaseReplicaCountOutput;
use aws_sdk_elasticache::operation::modify_cache_cluster::ModifyCacheClusterOutput;
use aws_sdk_elasticache::types::{CacheCluster, NodeGroup, NodeGroupMember, ReplicationGroup};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use incident_core::guard::{Guard, GuardSettings};
use incident_core::testing::{response_json, targets};
use incident_scale_up::{Deps, ScaleUp, handler};
use serde_json::{Value, json};
use shared::aws::SdkConfig;
use shared::ecs::ServiceRef;
use shared::testing::exact::assert_exact;
use shared::testing::iam::IamWorld;
use shared::testing::{
    FaultProxy, action_event, create_service, desired_count, emulator_config, fixture_files, function_config,
};

use incident_ledger::testing::scaling::{create_db, db_class, scalable_capacity};

const NODE_LADDER: [&str; 3] = ["cache.t3.small", "cache.m5.large", "cache.m5.xlarge"];

/// The tests' own clients, for setting up and reading back (the function's are in `deps`).
struct Moto {
    ecs: aws_sdk_ecs::Client,
    rds: aws_sdk_rds::Client,
    elasticache: aws_sdk_elasticache::Client,
    autoscaling: aws_sdk_applicationautoscaling::Client,
}

struct World {
    deps: Deps,
    moto: Moto,
    api: ServiceRef,
    db: String,
    group: String,
    /// The target map as deployed (its JSON).
    map: Value,
}

async fn create_group(elasticache: &aws_sdk_elasticache::Client, node_type: &str) -> String {
    let id = format!("rg-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    elasticache
        .create_replication_group()
        .replication_group_id(&id)
        .replication_group_description("scale_up test")
        .engine("redis")
        .cache_node_type(node_type)
        .num_cache_clusters(2)
        .send()
        .await
        .unwrap();
    id
}

async fn node_type(elasticache: &aws_sdk_elasticache::Client, id: &str) -> String {
    let out = elasticache.describe_replication_groups().replication_group_id(id).send().await.unwrap();
    out.replication_groups()[0].cache_node_type().unwrap().to_owned()
}

/// The fixtures' targets (api, database, cache, web-hosts) on fresh emulator resources.
async fn world(api_count: i32, db_class_now: &str, node_type_now: &str) -> World {
    world_through(api_count, db_class_now, node_type_now, function_config(env!("CARGO_PKG_NAME")).await).await
}

/// The same world, the function's clients built from `function` (e.g. through a recording proxy).
async fn world_through(api_count: i32, db_class_now: &str, node_type_now: &str, function: SdkConfig) -> World {
    let config = emulator_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let rds = aws_sdk_rds::Client::new(&config);
    let elasticache = aws_sdk_elasticache::Client::new(&config);
    let api = create_service(&ecs, "scale-api", api_count).await;
    let db = create_db(&rds, db_class_now).await;
    let group = create_group(&elasticache, node_type_now).await;
    let map = json!({
        "api": {"kind": "ecs_service", "cluster": api.cluster, "service": api.service,
                "desiredCount": {"low": 5, "medium": 5, "high": 5, "critical": 10}, "maxCount": 20},
        "database": {"kind": "rds_instance", "instanceId": db,
                "instanceClass": {"low": "db.r5.xlarge", "medium": "db.r5.xlarge", "high": "db.r5.xlarge", "critical": "db.r5.2xlarge"},
                "classLadder": ["db.r5.large", "db.r5.xlarge", "db.r5.2xlarge", "db.r5.4xlarge"]},
        "cache": {"kind": "redis", "url": "redis://127.0.0.1:6390",
                "elasticache": {"replicationGroupId": group, "scaleBy": "node_type", "nodeTypeLadder": NODE_LADDER}},
        "web-hosts": {"kind": "ec2_instances", "instanceIds": ["i-0123456789abcdef0"]},
    });
    let targets = targets(map.clone());
    let action = ScaleUp {
        ecs: aws_sdk_ecs::Client::new(&function).into(),
        autoscaling: aws_sdk_applicationautoscaling::Client::new(&function).into(),
        rds: aws_sdk_rds::Client::new(&function).into(),
        elasticache: aws_sdk_elasticache::Client::new(&function).into(),
        targets,
    };
    let deps = Deps { action, guard: Guard::default() };
    World {
        deps,
        moto: Moto { ecs, rds, elasticache, autoscaling: aws_sdk_applicationautoscaling::Client::new(&config) },
        api,
        db,
        group,
        map,
    }
}

fn request(target: &str, priority: &str, extra: Value) -> Value {
    let mut r = json!({"action": "scale_up", "target": target, "incidentId": "INC-7", "priority": priority});
    r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    r
}

async fn invoke(deps: &Deps, payload: Value) -> Value {
    response_json(&handler(action_event(payload), deps).await.unwrap())
}

/// Autoscaling on `api`, 2 to 6 tasks.
async fn register_scalable_target(w: &World) {
    w.moto
        .autoscaling
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(format!("service/{}/{}", w.api.cluster, w.api.service))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(2)
        .max_capacity(6)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_ecs_service_goes_to_the_priority_count_and_autoscaling_follows() {
    let w = world(2, "db.r5.large", "cache.t3.small").await;
    register_scalable_target(&w).await;
    let response = invoke(&w.deps, request("api", "critical", json!({}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 10);
    assert_eq!(
        scalable_capacity(&w.moto.autoscaling, &w.api).await,
        (10, 10),
        "MinCapacity raised, MaxCapacity lifted to it"
    );
    assert_eq!(response["details"]["scalableTarget"]["minCapacity"], json!({"before": 2, "after": 10}));
    assert_eq!(response["details"]["scalableTarget"]["maxCapacity"], json!({"before": 6, "after": 10}));
    assert_eq!(response["details"]["previousDesiredCount"], 2);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_ecs_service_without_autoscaling_is_scaled_and_says_so() {
    let w = world(1, "db.r5.large", "cache.t3.small").await;
    let response = invoke(&w.deps, request("api", "medium", json!({}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 5);
    assert_eq!(response["details"]["scalableTarget"], Value::Null);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_ecs_service_is_never_scaled_down() {
    let w = world(12, "db.r5.large", "cache.t3.small").await;
    let response = invoke(&w.deps, request("api", "high", json!({}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["details"]["change"], "no change");
    assert!(response["message"].as_str().unwrap().starts_with("No change"), "{response}");
    assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 12);
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_rds_instance_moves_up_to_the_priority_class_and_never_down() {
    let w = world(1, "db.r5.large", "cache.t3.small").await;
    let response = invoke(&w.deps, request("database", "critical", json!({}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(db_class(&w.moto.rds, &w.db).await, "db.r5.2xlarge");
    assert_eq!(response["details"]["previousInstanceClass"], "db.r5.large");

    // Already larger than what "high" asks for: no change.
    let response = invoke(&w.deps, request("database", "high", json!({}))).await;
    assert_eq!(response["details"]["change"], "no change", "{response}");
    assert_eq!(db_class(&w.moto.rds, &w.db).await, "db.r5.2xlarge");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_rds_instance_that_is_not_available_is_a_conflict() {
    let w = world(1, "db.r5.large", "cache.t3.small").await;
    w.moto.rds.stop_db_instance().db_instance_identifier(&w.db).send().await.unwrap();
    let response = invoke(&w.deps, request("database", "critical", json!({}))).await;
    assert_eq!(response["statusCode"], 409, "{response}");
    assert!(response["message"].as_str().unwrap().contains("not available"));
    assert_eq!(db_class(&w.moto.rds, &w.db).await, "db.r5.large");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_replication_group_climbs_the_node_type_ladder_and_stops_at_the_top() {
    let w = world(1, "db.r5.large", "cache.t3.small").await;
    let response = invoke(&w.deps, request("cache", "high", json!({}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(node_type(&w.moto.elasticache, &w.group).await, "cache.m5.large");
    invoke(&w.deps, request("cache", "high", json!({}))).await;
    assert_eq!(node_type(&w.moto.elasticache, &w.group).await, "cache.m5.xlarge");
    let response = invoke(&w.deps, request("cache", "critical", json!({}))).await;
    assert_eq!(response["success"], true);
    assert_eq!(response["details"]["change"], "no change");
    assert!(response["message"].as_str().unwrap().contains("already at the largest size on the ladder"), "{response}");
    assert_eq!(node_type(&w.moto.elasticache, &w.group).await, "cache.m5.xlarge");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn dry_runs_report_the_calls_and_change_nothing() {
    let w = world(2, "db.r5.large", "cache.t3.small").await;
    let response = invoke(&w.deps, request("api", "critical", json!({"dryRun": true}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(
        response["details"]["plannedCalls"],
        json!([{"call": "ECS UpdateService", "params": {"cluster": w.api.cluster, "service": w.api.service, "desiredCount": 10}}])
    );
    assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 2);

    let response = invoke(&w.deps, request("database", "critical", json!({"dryRun": true}))).await;
    assert_eq!(response["details"]["plannedCalls"][0]["call"], "RDS ModifyDBInstance", "{response}");
    assert_eq!(db_class(&w.moto.rds, &w.db).await, "db.r5.large");

    let response = invoke(&w.deps, request("cache", "critical", json!({"dryRun": true}))).await;
    assert_eq!(response["details"]["plannedCalls"][0]["params"]["cacheNodeType"], "cache.m5.large", "{response}");
    assert_eq!(node_type(&w.moto.elasticache, &w.group).await, "cache.t3.small");
}

/// The backend forwards its own incident record in incidentDetails: the action acts, and says which
/// fields it ignored. The envelope stays strict: an unknown top-level field is still a 400 (corpus).
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_forwarded_incident_record_scales_and_reports_the_fields_it_ignored() {
    let w = world(2, "db.r5.large", "cache.t3.small").await;
    let details = json!({"incidentDetails": {"title": "API slow", "ticketUrl": "https://t/7", "severity": "SEV2"}});
    let response = invoke(&w.deps, request("api", "high", details)).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 5);
    assert_eq!(
        response["details"]["adjustments"],
        json!([{"field": "incidentDetails.severity", "change": "unknown field; ignored"},
               {"field": "incidentDetails.ticketUrl", "change": "unknown field; ignored"}])
    );
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn every_fixture_is_answered_as_expected() {
    for file in fixture_files("incident-scale-up") {
        let w = world(1, "db.r5.large", "cache.t3.small").await;
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let response = invoke(&w.deps, payload.clone()).await;
        assert_eq!(response["success"], true, "{}: {response}", file.display());
        if payload["dryRun"] == true {
            assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 1, "{}", file.display());
        }
    }
    for file in fixture_files("incident-scale-up/invalid") {
        let w = world(1, "db.r5.large", "cache.t3.small").await;
        let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let response = invoke(&w.deps, payload).await;
        let status = response["statusCode"].as_u64().unwrap();
        assert!((400..500).contains(&status), "{}: {response}", file.display());
        assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 1, "{}", file.display());
    }
}

/// Deps with a mocked ElastiCache client and `config` as the targets.
async fn mocked_deps(elasticache: aws_sdk_elasticache::Client, config: &Value) -> Deps {
    let emulator = emulator_config().await;
    let action = ScaleUp {
        ecs: aws_sdk_ecs::Client::new(&emulator).into(),
        autoscaling: aws_sdk_applicationautoscaling::Client::new(&emulator).into(),
        rds: aws_sdk_rds::Client::new(&emulator).into(),
        elasticache: elasticache.into(),
        targets: targets(config.clone()),
    };
    Deps { action, guard: Guard::default() }
}

/// moto has no IncreaseReplicaCount: the mock pins the exact call on the real client type, and
/// the dry run (describe only) planned exactly that call.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_replication_group_scaled_by_replicas_gets_one_more_up_to_the_max() {
    let describe = || {
        mock!(aws_sdk_elasticache::Client::describe_replication_groups).then_output(|| {
            let members =
                (0..3).map(|i| NodeGroupMember::builder().cache_cluster_id(format!("rg-00{i}")).build()).collect();
            DescribeReplicationGroupsOutput::builder()
                .replication_groups(
                    ReplicationGroup::builder()
                        .replication_group_id("sessions-rg")
                        .status("available")
                        .node_groups(
                            NodeGroup::builder().node_group_id("0001").set_node_group_members(Some(members)).build(),
                        )
                        .build(),
                )
                .build()
        })
    };
    let increase = mock!(aws_sdk_elasticache::Client::increase_replica_count)
        .match_requests(|r| {
            r.replication_group_id() == Some("sessions-rg")
                && r.new_replica_count() == Some(3)
                && r.apply_immediately() == Some(true)
        })
        .then_output(|| IncreaseReplicaCountOutput::builder().build());
    let sessions = json!({"sessions": {"kind": "redis", "url": "redis://sessions:6379",
            "elasticache": {"replicationGroupId": "sessions-rg", "scaleBy": "replicas", "maxReplicas": 4}}});
    let dry_client = mock_client!(aws_sdk_elasticache, RuleMode::Sequential, [&describe()]);
    let dry =
        invoke(&mocked_deps(dry_client, &sessions).await, request("sessions", "high", json!({"dryRun": true}))).await;
    let planned = json!({"replicationGroupId": "sessions-rg", "newReplicaCount": 3, "applyImmediately": true});
    assert_eq!(
        dry["details"]["plannedCalls"],
        json!([{"call": "ElastiCache IncreaseReplicaCount", "params": planned}])
    );
    let elasticache = mock_client!(aws_sdk_elasticache, RuleMode::Sequential, [&describe(), &increase]);
    let deps = mocked_deps(elasticache, &sessions).await;
    let response = invoke(&deps, request("sessions", "high", json!({}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["details"]["previousReplicas"], 2);
    assert_eq!(response["details"]["replicas"], 3);
    assert_eq!(increase.num_calls(), 1);
}

/// moto has no ModifyCacheCluster: the mock pins the exact call on the real client type, and
/// the dry run (describe only) planned exactly that call.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_memcached_cluster_gets_one_more_node() {
    let describe = || {
        mock!(aws_sdk_elasticache::Client::describe_cache_clusters).then_output(|| {
            DescribeCacheClustersOutput::builder()
                .cache_clusters(
                    CacheCluster::builder()
                        .cache_cluster_id("mc")
                        .cache_cluster_status("available")
                        .num_cache_nodes(2)
                        .build(),
                )
                .build()
        })
    };
    let modify = mock!(aws_sdk_elasticache::Client::modify_cache_cluster)
        .match_requests(|r| {
            r.cache_cluster_id() == Some("mc") && r.num_cache_nodes() == Some(3) && r.apply_immediately() == Some(true)
        })
        .then_output(|| ModifyCacheClusterOutput::builder().build());
    let memcached = json!({"memcached": {"kind": "redis", "url": "redis://mc:11211",
            "elasticache": {"cacheClusterId": "mc", "scaleBy": "nodes", "maxNodes": 3}}});
    let dry_client = mock_client!(aws_sdk_elasticache, RuleMode::Sequential, [&describe()]);
    let dry =
        invoke(&mocked_deps(dry_client, &memcached).await, request("memcached", "critical", json!({"dryRun": true})))
            .await;
    let planned = json!({"cacheClusterId": "mc", "numCacheNodes": 3, "applyImmediately": true});
    assert_eq!(dry["details"]["plannedCalls"], json!([{"call": "ElastiCache ModifyCacheCluster", "params": planned}]));
    let elasticache = mock_client!(aws_sdk_elasticache, RuleMode::Sequential, [&describe(), &modify]);
    let deps = mocked_deps(elasticache, &memcached).await;
    let response = invoke(&deps, request("memcached", "critical", json!({}))).await;
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["details"]["numCacheNodes"], 3);
    assert_eq!(modify.num_calls(), 1);
}

/// The dry run's plannedCalls are what the real run sends, for every target kind the emulator
/// serves: an ECS service with and without autoscaling, an RDS instance, a replication group.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_dry_run_plans_exactly_the_calls_a_real_run_makes() {
    let proxy = FaultProxy::start();
    let function = proxy.sdk_config(env!("CARGO_PKG_NAME")).await;
    let plain = world_through(2, "db.r5.large", "cache.t3.small", function.clone()).await;
    let scaled = world_through(2, "db.r5.large", "cache.t3.small", function).await;
    register_scalable_target(&scaled).await;
    let cases = [("ecs, autoscaled", &scaled, "api"), ("ecs", &plain, "api"), ("rds", &plain, "database")];
    for (what, w, target) in cases.into_iter().chain([("replication group", &plain, "cache")]) {
        let dry = invoke(&w.deps, request(target, "critical", json!({"dryRun": true}))).await;
        proxy.reset();
        let real = invoke(&w.deps, request(target, "critical", json!({}))).await;
        assert_eq!(real["success"], true, "{what}: {real}");
        assert_exact(what, &dry, &proxy);
    }
    assert_eq!(desired_count(&scaled.moto.ecs, &scaled.api).await, 10, "the real runs happened");
}

/// A dry run's planToken approves the calls a human read: it applies while they are still the
/// calls to make, even when the count moved in between (autoscaling added a task); once the calls
/// would differ, the same token is refused with the new plan (as a dry run shows it) and nothing
/// changes; an old token is refused too.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_plan_token_runs_the_approved_calls_and_only_those() {
    let w = world(2, "db.r5.large", "cache.t3.small").await;
    let dry = invoke(&w.deps, request("api", "high", json!({"dryRun": true}))).await;
    let token = dry["details"]["planToken"].as_str().unwrap().to_owned();
    // Approved at 2 tasks (set to 5); autoscaling added one since: still "set to 5", still approved.
    shared::testing::ensure_service(&w.moto.ecs, &w.api, 3).await;
    let approved = invoke(&w.deps, request("api", "high", json!({"planToken": token}))).await;
    assert_eq!(approved["success"], true, "{approved}");
    assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 5);

    // Approved at 2 tasks; someone scaled to 6 since: the plan is now "no change", not the one approved.
    shared::testing::ensure_service(&w.moto.ecs, &w.api, 2).await;
    let dry = invoke(&w.deps, request("api", "high", json!({"dryRun": true}))).await;
    let token = dry["details"]["planToken"].as_str().unwrap().to_owned();
    shared::testing::ensure_service(&w.moto.ecs, &w.api, 6).await;
    let stale = invoke(&w.deps, request("api", "high", json!({"planToken": token}))).await;
    assert_eq!((stale["statusCode"].as_u64(), stale["error"]["code"].as_str()), (Some(409), Some("STALE_PLAN")));
    assert!(stale["message"].as_str().unwrap().contains("the planned calls changed"), "{stale}");
    assert_eq!(stale["details"]["plannedCalls"], json!([]), "the new plan: {stale}");
    assert_eq!(stale["details"]["currentState"]["desiredCount"], 6, "{stale}");
    assert_ne!(stale["details"]["planToken"], token, "a token for the new plan");
    assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 6, "nothing changed");

    // Back at 2: a token older than PLAN_TOKEN_TTL_SECONDS is refused, a fresh one applies.
    shared::testing::ensure_service(&w.moto.ecs, &w.api, 2).await;
    let (_, digest) = token.rsplit_once('.').unwrap();
    let old = format!("v2.{}.{digest}", chrono::Utc::now().timestamp() - 901);
    let expired = invoke(&w.deps, request("api", "high", json!({"planToken": old}))).await;
    assert_eq!(expired["error"]["code"], "STALE_PLAN", "{expired}");
    assert!(expired["message"].as_str().unwrap().contains("s old"), "{expired}");
    assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 2);
    let applied = invoke(&w.deps, request("api", "high", json!({"planToken": token}))).await;
    assert_eq!(applied["success"], true, "{applied}");
    assert_eq!(desired_count(&w.moto.ecs, &w.api).await, 5);
}

/// IAM world (deployments/tests/check_iam.py checks every call below against actions.yaml's
/// ScaleRole, rendered for this target cluster): an autoscaled ECS service, an RDS instance and a
/// replication group scaled up (the roles scoped to the map's, as deploy.sh derives them); a service
/// outside TargetCluster, a database and a replication group outside the map are out of reach.
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn iam_world_scale_every_kind() {
    let mut w = world(2, "db.r5.large", "cache.t3.small").await;
    register_scalable_target(&w).await;
    let outside = ServiceRef::new(w.api.cluster.clone() + "-elsewhere", "production-api-service");
    let world = IamWorld::of(env!("CARGO_PKG_NAME"), "actions.yaml")
        .parameter("TargetCluster", &w.api.cluster)
        .targets(&w.map)
        .untouchable("ecs:UpdateService", shared::testing::iam::service_arn(&outside))
        .untouchable("rds:ModifyDBInstance", "arn:aws:rds:us-east-1:123456789012:db:production-db")
        .untouchable(
            "elasticache:ModifyReplicationGroup",
            "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:sessions",
        )
        .write();
    let config = world.config().await;
    w.deps.action.ecs = aws_sdk_ecs::Client::new(&config).into();
    w.deps.action.autoscaling = aws_sdk_applicationautoscaling::Client::new(&config).into();
    // The ledger's calls too, on the stack's table (the world names its ARN below).
    let ledger = with_ledger(&mut w, &config, GuardSettings::default()).await;
    world.name_resource("LedgerTable", &shared::testing::iam::table_arn(&ledger.table));
    w.deps.action.rds = aws_sdk_rds::Client::new(&config).into();
    w.deps.action.elasticache = aws_sdk_elasticache::Client::new(&config).into();
    for target in ["api", "database", "cache"] {
        let response = invoke(&w.deps, request(target, "critical", json!({}))).await;
        assert_eq!(response["success"], true, "{target}: {response}");
    }
}

/// The deps of `w` with a guard on a new ledger table (the function's calls through `function`).
async fn with_ledger(w: &mut World, function: &SdkConfig, settings: GuardSettings) -> incident_ledger::DynamoLedger {
    let (guard, ledger) = incident_ledger::testing::guard(&emulator_config().await, function, settings).await;
    w.deps.guard = guard;
    ledger
}
