//! The target map's validation, case by case.

use serde_json::{Value, json};

use super::*;

const EXAMPLE: &str = include_str!("../../../../../fixtures/targets.json");

fn example() -> Value {
    serde_json::from_str(EXAMPLE).unwrap()
}

fn problem(config: Value) -> String {
    TargetConfig::parse(&config.to_string(), "test").unwrap_err().to_string()
}

#[test]
fn the_checked_in_example_loads_and_covers_every_kind() {
    let config = TargetConfig::parse(EXAMPLE, "fixtures/targets.json").unwrap();
    let kinds: std::collections::BTreeSet<_> = config.names().iter().map(|n| config.get(n).unwrap().kind()).collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["ec2_instances", "ecs_service", "rds_instance", "redis"]);
    let Target::EcsService(api) = config.get("api").unwrap() else { panic!("api is not an ECS service") };
    assert_eq!(*api.desired_count.get(Priority::Critical), 10);
    assert_eq!(*api.desired_count.get(Priority::Low), 5);
}

/// What deploy.sh packages into the actions' zips must pass the same init-time validation.
#[test]
fn the_shipped_target_maps_load() {
    for (name, text) in [
        ("deployments/targets-dev.json", include_str!("../../../../../deployments/targets-dev.json")),
        ("deployments/targets-prod.json", include_str!("../../../../../deployments/targets-prod.json")),
    ] {
        let config = TargetConfig::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.names().len(), 6, "{name}");
    }
}

#[test]
fn unknown_target_is_404_listing_the_known_ones() {
    let config = TargetConfig::parse(EXAMPLE, "x").unwrap();
    let err = config.get("default-service").unwrap_err();
    assert_eq!(err.status(), 404);
    let message = err.to_string();
    for name in config.names() {
        assert!(message.contains(&name), "{message}");
    }
}

#[test]
fn unknown_fields_and_kinds_are_refused() {
    let mut c = example();
    c["api"]["servce"] = json!("typo");
    assert!(problem(c).contains("unknown field `servce`"));
    let mut c = example();
    c["api"]["kind"] = json!("lambda");
    assert!(problem(c).contains("unknown variant `lambda`"));
}

#[test]
fn missing_required_fields_are_named() {
    let mut c = example();
    c["api"].as_object_mut().unwrap().remove("maxCount");
    assert!(problem(c).contains("missing field `maxCount`"));
    let mut c = example();
    c["api"]["desiredCount"].as_object_mut().unwrap().remove("critical");
    assert!(problem(c).contains("missing field `critical`"));
}

#[test]
fn scale_values_must_be_sane() {
    let mut c = example();
    c["api"]["desiredCount"]["critical"] = json!(50);
    assert!(problem(c).contains("desiredCount.critical 50 must be between 1 and maxCount"));
    let mut c = example();
    c["api"]["desiredCount"]["low"] = json!(0);
    assert!(problem(c).contains("desiredCount.low 0"));
    let mut c = example();
    c["api"]["desiredCount"]["high"] = json!(2);
    assert!(problem(c).contains("below the count for a lower priority"));
    let mut c = example();
    c["api"]["maxCount"] = json!(100000);
    assert!(problem(c).contains("maxCount 100000"));
    let mut c = example();
    c["database"]["instanceClass"]["critical"] = json!("db.t3.micro");
    assert!(problem(c).contains("not in classLadder"));
}

#[test]
fn duplicate_resources_are_refused() {
    let mut c = example();
    c["api-copy"] = c["api"].clone();
    assert!(problem(c).contains("both point at ECS service"));
}

#[test]
fn redis_urls_must_not_carry_passwords() {
    let mut c = example();
    c["cache"]["url"] = json!("redis://:hunter2@cache:6379");
    let p = problem(c);
    assert!(p.contains("must not carry credentials"));
    assert!(!p.contains("hunter2"));
    let mut c = example();
    c["cache"]["url"] = json!("http://cache:6379");
    assert!(problem(c).contains("redis:// or rediss://"));
}

#[test]
fn an_empty_or_broken_config_says_so() {
    assert!(problem(json!({})).contains("no targets"));
    let err = TargetConfig::parse("{not json", "TARGETS_JSON").unwrap_err().to_string();
    assert!(err.starts_with("target config (TARGETS_JSON) is invalid"), "{err}");
}
