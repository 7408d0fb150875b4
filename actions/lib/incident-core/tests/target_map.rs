#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The target map's validation at its boundaries: each rule refuses the first value past it, names
//! the field, and accepts the last value within it. Written for the mutants cargo-mutants found
//! surviving in config.rs (docs/mutants.md).

use incident_core::config::{ElastiCache, Target, TargetConfig};
use serde_json::{Value, json};

const EXAMPLE: &str = include_str!("../../../../fixtures/targets.json");

fn example() -> Value {
    serde_json::from_str(EXAMPLE).unwrap()
}

fn parsed(map: &Value) -> Result<TargetConfig, String> {
    TargetConfig::parse(&map.to_string(), "test").map_err(|e| e.to_string())
}

fn refused(map: Value, says: &str) {
    let error = parsed(&map).expect_err(says);
    assert!(error.contains(says), "{error:?} does not say {says:?}");
}

fn with(path: &[&str], value: Value) -> Value {
    let mut map = example();
    let mut at = &mut map;
    for key in &path[..path.len() - 1] {
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = value;
    map
}

#[test]
fn target_names_are_1_to_64_safe_characters() {
    let renamed = |name: &str| {
        let mut map = example();
        let api = map.as_object_mut().unwrap().remove("api").unwrap();
        map[name] = api;
        map
    };
    assert!(parsed(&renamed(&"a".repeat(64))).is_ok());
    assert!(parsed(&renamed("api.v2_blue-1")).is_ok());
    refused(renamed(&"a".repeat(65)), "use 1-64 letters");
    refused(renamed("api service"), "use 1-64 letters");
    refused(renamed(""), "use 1-64 letters");
}

#[test]
fn ec2_instance_ids_are_i_and_8_or_17_hex_digits() {
    assert!(parsed(&with(&["web-hosts", "instanceIds"], json!(["i-0123abcd", "i-0123456789abcdef0"]))).is_ok());
    refused(with(&["web-hosts", "instanceIds"], json!([])), "instanceIds is empty");
    refused(with(&["web-hosts", "instanceIds"], json!(["i-0123abc"])), "is not an EC2 instance id");
    refused(with(&["web-hosts", "instanceIds"], json!(["i-0123456789abcdef01"])), "is not an EC2 instance id");
    refused(with(&["web-hosts", "instanceIds"], json!(["i-0123abcg"])), "is not an EC2 instance id");
    refused(with(&["web-hosts", "instanceIds"], json!(["0123456789"])), "is not an EC2 instance id");
}

#[test]
fn rds_identifiers_are_1_to_63_letters_digits_hyphens() {
    assert!(parsed(&with(&["database", "instanceId"], json!("d".repeat(63)))).is_ok());
    refused(with(&["database", "instanceId"], json!("d".repeat(64))), "is not an RDS identifier");
    refused(with(&["database", "instanceId"], json!("prod_db")), "is not an RDS identifier");
    refused(with(&["database", "instanceId"], json!("")), "is not an RDS identifier");
}

#[test]
fn ladders_are_non_empty_prefixed_sizes_listed_once() {
    let ladder = |l: Value| with(&["database", "classLadder"], l);
    refused(ladder(json!([])), "classLadder is empty");
    refused(ladder(json!(["cache.r5.large"])), "does not look like a size (expected db.");
    refused(ladder(json!([format!("db.{}", "x".repeat(62))])), "does not look like a size");
    refused(ladder(json!(["db.r5.large", "db.r5.xlarge", "db.r5.large"])), "lists \"db.r5.large\" twice");
    let longest = format!("db.{}", "x".repeat(61));
    let mut map = ladder(json!([longest]));
    map["database"]["instanceClass"] = json!({"low": longest, "medium": longest, "high": longest, "critical": longest});
    assert!(parsed(&map).is_ok(), "a size of 64 characters is a size");
}

#[test]
fn ecs_counts_reach_max_count_and_no_further() {
    let mut map = example();
    let max = map["api"]["maxCount"].clone();
    map["api"]["desiredCount"]["critical"] = max;
    assert!(parsed(&map).is_ok(), "desiredCount may equal maxCount");
    map["api"]["desiredCount"] = json!({"low": 1, "medium": 1, "high": 1, "critical": 1});
    assert!(parsed(&map).is_ok(), "desiredCount may be 1");
}

#[test]
fn elasticache_names_exactly_one_of_group_or_cluster() {
    let cache = |elasticache: Value| with(&["cache", "elasticache"], elasticache);
    refused(
        cache(json!({"replicationGroupId": "g", "cacheClusterId": "c", "scaleBy": "nodes", "maxNodes": 2})),
        "exactly one of replicationGroupId or cacheClusterId",
    );
    refused(
        cache(json!({"scaleBy": "replicas", "maxReplicas": 2})),
        "exactly one of replicationGroupId or cacheClusterId",
    );
    let map = cache(json!({"cacheClusterId": "memcached-1", "scaleBy": "nodes", "maxNodes": 4}));
    let config = parsed(&map).unwrap();
    let Target::Redis(redis) = config.get("cache").unwrap() else { panic!("cache is not a redis target") };
    let spec: &ElastiCache = redis.elasticache.as_ref().unwrap();
    assert_eq!((spec.cache_cluster_id(), spec.replication_group_id()), (Some("memcached-1"), None));
    let config = parsed(&example()).unwrap();
    let Target::Redis(redis) = config.get("cache").unwrap() else { panic!("cache is not a redis target") };
    let spec = redis.elasticache.as_ref().unwrap();
    assert_eq!((spec.replication_group_id(), spec.cache_cluster_id()), (Some("production-cache"), None));
}

#[test]
fn a_ladders_rungs_are_found_by_size() {
    let config = parsed(&example()).unwrap();
    let Target::RdsInstance(db) = config.get("database").unwrap() else { panic!("database is not RDS") };
    let sizes = db.class_ladder.sizes().to_vec();
    assert!(sizes.len() >= 2, "{sizes:?}");
    assert_eq!(db.class_ladder.rung(&sizes[1]), Some(1));
    assert_eq!(db.class_ladder.rung(&sizes[0]), Some(0));
    assert_eq!(db.class_ladder.rung("db.none"), None);
}

#[test]
fn an_unknown_target_names_its_kind_in_the_error() {
    refused(with(&["web-hosts", "instanceIds"], json!([])), "target \"web-hosts\" (ec2_instances)");
    refused(with(&["database", "instanceId"], json!("")), "target \"database\" (rds_instance)");
}

#[test]
fn a_redis_url_names_a_host() {
    for url in ["redis://:6379", "redis://", "rediss:///0"] {
        refused(with(&["cache", "url"], json!(url)), "url has no host");
    }
    assert!(parsed(&with(&["cache", "url"], json!("redis://cache:6379/0"))).is_ok());
}

#[test]
fn a_redis_password_is_a_secrets_manager_arn() {
    for arn in ["arn:aws:ssm:us-east-1:123456789012:parameter/redis", "secretsmanager:redis"] {
        refused(with(&["cache", "passwordSecretArn"], json!(arn)), "is not a Secrets Manager ARN");
    }
}
