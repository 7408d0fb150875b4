use incident_core::plan::Change;
use incident_core::state::Bounds;
use serde_json::{Value, json};

use super::*;

fn record(target: &str, before: State, after: State) -> Record {
    Record {
        schema: incident_core::state::SCHEMA,
        at: "2026-12-01T02:16:00Z".into(),
        action: "scale_up".into(),
        target: target.into(),
        priority: "critical".into(),
        outcome: "success".into(),
        message: String::new(),
        before: Some(before),
        after: Some(after),
        details: Value::Null,
        request_id: "r".into(),
    }
}

fn targets() -> TargetConfig {
    incident_core::testing::targets(json!({
        "api": {"kind": "ecs_service", "cluster": "prod", "service": "api",
                "desiredCount": {"low": 5, "medium": 5, "high": 5, "critical": 10}, "maxCount": 20},
        "db": {"kind": "rds_instance", "instanceId": "db", "instanceClass":
                {"low": "db.r5.large", "medium": "db.r5.large", "high": "db.r5.xlarge", "critical": "db.r5.2xlarge"},
               "classLadder": ["db.r5.large", "db.r5.xlarge", "db.r5.2xlarge"]},
        "mc": {"kind": "redis", "url": "redis://mc:11211", "elasticache": {"cacheClusterId": "mc", "scaleBy": "nodes", "maxNodes": 4}},
    }))
}

fn ecs(desired_count: i32, floor: Option<(i32, i32)>) -> State {
    let autoscaling = floor.map(|(min_capacity, max_capacity)| Bounds { min_capacity, max_capacity });
    State::EcsService { desired_count, autoscaling }
}

fn class(instance_class: &str) -> State {
    State::RdsInstance { instance_class: instance_class.into() }
}

#[test]
fn the_first_before_and_the_last_after_of_each_target() {
    let mut legacy = record("cache", class("x"), class("y"));
    (legacy.schema, legacy.before, legacy.after) = (1, None, None);
    let records = [
        record("api", ecs(2, Some((2, 6))), ecs(5, Some((5, 6)))),
        record("db", class("db.r5.large"), class("db.r5.xlarge")),
        record("api", ecs(5, Some((5, 6))), ecs(10, Some((10, 10)))),
        record("db", class("db.r5.xlarge"), class("db.r5.xlarge")),
        legacy,
    ];
    let (scaled, legacy) = scaled_targets(&records);
    assert_eq!(scaled.len(), 2);
    assert_eq!((scaled[0].original.clone(), scaled[0].left.clone()), (ecs(2, Some((2, 6))), ecs(10, Some((10, 10)))));
    assert_eq!(scaled[1].left, class("db.r5.xlarge"), "a no-change record changes nothing");
    assert_eq!(legacy, ["cache"], "a record written before typed states is named, not restored");
}

#[test]
fn a_target_as_automation_left_it_is_put_back_floor_first() {
    let scaled = Scaled { target: "api".into(), original: ecs(2, Some((2, 6))), left: ecs(10, Some((10, 10))) };
    let now = Current { state: ecs(10, Some((10, 10))), node_ids: vec![] };
    let TargetRestore::Restore { changes, when, .. } =
        plan(&scaled, targets().get("api").unwrap(), &now, false).unwrap()
    else {
        panic!("a restore")
    };
    assert_eq!(changes[0].call(), "ApplicationAutoScaling RegisterScalableTarget");
    assert_eq!(json!(changes[0])["minCapacity"], 2);
    assert_eq!(
        changes[1],
        RestoreChange::SetDesiredCount { cluster: "prod".into(), service: "api".into(), desired_count: 2 }
    );
    assert_eq!(when, When::Now, "a count costs no outage");
}

#[test]
fn a_target_changed_since_is_left_alone_and_a_restored_one_says_so() {
    let scaled = Scaled { target: "db".into(), original: class("db.r5.large"), left: class("db.r5.2xlarge") };
    let db = targets();
    let db = db.get("db").unwrap();
    let at = |c: &str| Current { state: class(c), node_ids: vec![] };
    assert!(matches!(plan(&scaled, db, &at("db.r5.xlarge"), false).unwrap(), TargetRestore::ChangedSince { .. }));
    assert!(matches!(plan(&scaled, db, &at("db.r5.large"), false).unwrap(), TargetRestore::AlreadyRestored { .. }));
    let TargetRestore::Restore { changes, when, .. } = plan(&scaled, db, &at("db.r5.2xlarge"), false).unwrap() else {
        panic!()
    };
    let waits = RestoreChange::ModifyDbInstanceClass {
        db_instance_identifier: "db".into(),
        db_instance_class: "db.r5.large".into(),
        apply_immediately: false,
    };
    assert_eq!((changes, when), (vec![waits], When::NextMaintenanceWindow), "a downsize waits unless --now");
    let TargetRestore::Restore { when, .. } = plan(&scaled, db, &at("db.r5.2xlarge"), true).unwrap() else { panic!() };
    assert_eq!(when, When::Now);
}

#[test]
fn a_memcached_cluster_loses_its_newest_nodes() {
    let nodes = |num_cache_nodes| State::CacheNodes { num_cache_nodes };
    let scaled = Scaled { target: "mc".into(), original: nodes(2), left: nodes(3) };
    let now = Current { state: nodes(3), node_ids: vec!["0001".into(), "0002".into(), "0003".into()] };
    let TargetRestore::Restore { changes, .. } = plan(&scaled, targets().get("mc").unwrap(), &now, true).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        changes,
        [RestoreChange::RemoveCacheClusterNodes {
            cache_cluster_id: "mc".into(),
            num_cache_nodes: 2,
            cache_node_ids_to_remove: vec!["0003".into()],
            apply_immediately: true
        }]
    );
}
