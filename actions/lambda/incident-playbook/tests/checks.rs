#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The looks a verification takes, against the emulator's resources: what each reads as done, and
//! what as not yet (moto keeps an ECS rollout IN_PROGRESS for ever, so a restart's deployment is
//! only ever settled there by its event, which emulator.rs sends).

use aws_sdk_ec2::types::InstanceType;
use incident_playbook::check::{Clients, resource};
use incident_playbook::verify::{Expectation, Seen};
use shared::testing::{create_service, emulator_config, function_config, unique};

async fn clients() -> Clients {
    Clients::new(&function_config("incident-playbook").await)
}

fn done(seen: &Seen) -> bool {
    matches!(seen, Seen::Done(_))
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_ecs_service_reads_as_scaled_once_running_reaches_the_count() {
    let setup = emulator_config().await;
    let ecs = aws_sdk_ecs::Client::new(&setup);
    let api = create_service(&ecs, "checks", 3).await;
    shared::testing::ensure_service(&ecs, &api, 3).await; // moto: running follows desired through UpdateService
    let c = clients().await;
    let at = |count| Expectation::EcsRunning { cluster: api.cluster.clone(), service: api.service.clone(), count };
    assert!(done(&resource(&c, &at(3), None).await));
    let short = resource(&c, &at(5), None).await;
    assert!(matches!(&short, Seen::Pending(what) if what.contains("3 running")), "{short:?}");
    let id = shared::ecs::describe_service(&c.ecs, &api).await.unwrap().deployments()[0].id().unwrap().to_owned();
    let restart =
        Expectation::EcsDeployment { cluster: api.cluster.clone(), service: api.service.clone(), deployment_id: id };
    assert!(matches!(resource(&c, &restart, None).await, Seen::Pending(_)), "moto's rollout never completes");
    assert!(done(&resource(&c, &restart, Some("COMPLETED")).await), "its event says it did");
    assert!(matches!(resource(&c, &restart, Some("FAILED: circuit breaker")).await, Seen::Failed(_)));
    let gone =
        Expectation::EcsDeployment { cluster: api.cluster, service: api.service, deployment_id: "ecs-svc/0".into() };
    let seen = resource(&c, &gone, None).await;
    assert!(matches!(&seen, Seen::Pending(what) if what.contains("no longer listed")), "{seen:?}");
}

/// A rollout stopped with rollback: done once the primary deployment runs the earlier task
/// definition to the end (moto never ends a rollout, so only "not yet" and "not that one" read here).
#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_stopped_rollout_reads_as_rolled_back_only_on_the_earlier_task_definition() {
    let ecs = aws_sdk_ecs::Client::new(&emulator_config().await);
    let api = create_service(&ecs, "checks-td", 2).await;
    let c = clients().await;
    let running = shared::ecs::describe_service(&c.ecs, &api).await.unwrap().task_definition().unwrap().to_owned();
    let on = |td: &str| Expectation::EcsTaskDefinition {
        cluster: api.cluster.clone(),
        service: api.service.clone(),
        task_definition: td.to_owned(),
    };
    let other = resource(&c, &on("arn:aws:ecs:us-east-1:123456789012:task-definition/other:1"), None).await;
    assert!(matches!(&other, Seen::Pending(what) if what.contains("not the primary")), "{other:?}");
    let rolling = resource(&c, &on(&running), None).await;
    assert!(matches!(&rolling, Seen::Pending(what) if what.contains("of 2 running")), "{rolling:?}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn an_rds_instance_reads_as_scaled_only_in_the_planned_class() {
    let setup = emulator_config().await;
    let id = incident_ledger::testing::scaling::create_db(&aws_sdk_rds::Client::new(&setup), "db.r5.large").await;
    let c = clients().await;
    let planned = |class: &str| Expectation::RdsClass { instance_id: id.clone(), instance_class: class.into() };
    let seen = resource(&c, &planned("db.r5.large"), None).await;
    assert!(done(&seen), "{seen:?}");
    let seen = resource(&c, &planned("db.r5.2xlarge"), None).await;
    assert!(matches!(&seen, Seen::Pending(what) if what.contains("as db.r5.large")), "{seen:?}");
    let missing = Expectation::RdsClass { instance_id: unique("no-db"), instance_class: "db.r5.large".into() };
    assert!(matches!(resource(&c, &missing, None).await, Seen::Pending(what) if what.contains("could not be read")));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn instances_read_as_healthy_when_every_status_check_passes() {
    let setup = emulator_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&setup);
    let run =
        ec2.run_instances().image_id("ami-12c6146b").instance_type(InstanceType::T3Micro).min_count(2).max_count(2);
    let ids: Vec<String> =
        run.send().await.unwrap().instances().iter().map(|i| i.instance_id().unwrap().to_owned()).collect();
    let c = clients().await;
    let seen = resource(&c, &Expectation::Ec2Status { instance_ids: ids.clone() }, None).await;
    assert!(matches!(&seen, Seen::Done(what) if what.contains("all 2 pass")), "{seen:?}");
    ec2.stop_instances().instance_ids(&ids[1]).send().await.unwrap();
    let seen = resource(&c, &Expectation::Ec2Status { instance_ids: ids }, None).await;
    assert!(matches!(&seen, Seen::Pending(what) if what.contains("1 of 2 pass")), "{seen:?}");
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn a_replication_group_reads_as_scaled_on_the_planned_node_type() {
    let setup = emulator_config().await;
    let id = format!("rg-{}", unique("pb").to_lowercase().replace('_', "-"));
    let id = id[..id.len().min(40)].trim_end_matches('-').to_owned();
    let create = aws_sdk_elasticache::Client::new(&setup).create_replication_group().replication_group_id(&id);
    let create =
        create.replication_group_description("playbook check").engine("redis").cache_node_type("cache.r6g.large");
    create.num_cache_clusters(2).send().await.unwrap();
    let c = clients().await;
    let planned = |t: &str| Expectation::CacheNodeType { replication_group_id: id.clone(), node_type: t.into() };
    let seen = resource(&c, &planned("cache.r6g.large"), None).await;
    assert!(done(&seen), "{seen:?}");
    assert!(matches!(resource(&c, &planned("cache.r6g.xlarge"), None).await, Seen::Pending(_)));
}

#[tokio::test]
#[ignore = "needs the emulator and Redis: scripts/services.sh up, or run scripts/test.sh"]
async fn replicas_and_memcached_nodes_read_as_added_once_they_are_there() {
    let setup = emulator_config().await;
    let elasticache = aws_sdk_elasticache::Client::new(&setup);
    let group = format!("rg-{}", &unique("r").to_lowercase().replace('_', "-")[..12]).trim_end_matches('-').to_owned();
    let create = elasticache.create_replication_group().replication_group_id(&group).engine("redis");
    let create = create.replication_group_description("playbook check").cache_node_type("cache.r6g.large");
    create.num_cache_clusters(2).send().await.unwrap();
    let cluster =
        format!("mc-{}", &unique("m").to_lowercase().replace('_', "-")[..12]).trim_end_matches('-').to_owned();
    let create = elasticache.create_cache_cluster().cache_cluster_id(&cluster).engine("memcached");
    create.cache_node_type("cache.r6g.large").num_cache_nodes(2).send().await.unwrap();
    let c = clients().await;
    // moto lists only the primary among a node group's members (no replica), as the count reads.
    let replicas = |n| Expectation::CacheReplicas { replication_group_id: group.clone(), replicas: n };
    let seen = resource(&c, &replicas(0), None).await;
    assert!(done(&seen), "{seen:?}");
    let seen = resource(&c, &replicas(1), None).await;
    assert!(matches!(&seen, Seen::Pending(what) if what.contains("replicas: 0")), "{seen:?}");
    let nodes = |n| Expectation::CacheNodes { cache_cluster_id: cluster.clone(), nodes: n };
    let seen = resource(&c, &nodes(2), None).await;
    assert!(done(&seen), "{seen:?}");
    assert!(matches!(resource(&c, &nodes(3), None).await, Seen::Pending(_)));
    assert!(done(&resource(&c, &Expectation::Immediate, None).await), "Redis: known at once");
}
