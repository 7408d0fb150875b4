use serde_json::{Value, json};

use super::*;

const EXAMPLE: &str = include_str!("../../../../../fixtures/targets.json");

fn parse(map: &Value) -> Result<Playbooks, String> {
    let text = map.to_string();
    let targets = TargetConfig::parse(&text, "test").map_err(|e| e.to_string())?;
    Playbooks::parse(&text, "test", &targets).map_err(|e| e.to_string())
}

fn example() -> Value {
    serde_json::from_str(EXAMPLE).unwrap()
}

#[test]
fn the_example_maps_alarms_by_name_and_by_tag() {
    let playbooks = parse(&example()).unwrap();
    let by_name = playbooks.for_alarm("production-api-5xx", &BTreeMap::new()).unwrap();
    assert_eq!(by_name.target, "api");
    assert_eq!(by_name.steps.len(), 2);
    assert_eq!(by_name.steps[1].priority, Priority::Critical);
    assert_eq!(by_name.steps[1].verify_within, Duration::from_secs(5 * 60));
    assert_eq!(by_name.steps[0].verify_within, Duration::from_secs(10 * 60));
    let tags = BTreeMap::from([(PLAYBOOK_TAG.to_owned(), "database-cpu".to_owned())]);
    assert_eq!(playbooks.for_alarm("anything", &tags).unwrap().target, "database");
}

#[test]
fn an_alarm_that_maps_to_nothing_or_to_two_is_refused() {
    let playbooks = parse(&example()).unwrap();
    assert_eq!(playbooks.for_alarm("nobody-knows", &BTreeMap::new()), Err(Unmapped::Nothing));
    let unknown = BTreeMap::from([(PLAYBOOK_TAG.to_owned(), "no-such".to_owned())]);
    assert_eq!(playbooks.for_alarm("x", &unknown), Err(Unmapped::UnknownPlaybook("no-such".into())));
    let other = BTreeMap::from([(PLAYBOOK_TAG.to_owned(), "database-cpu".to_owned())]);
    assert!(matches!(playbooks.for_alarm("production-api-5xx", &other), Err(Unmapped::Ambiguous { .. })));
    assert!(Unmapped::Nothing.to_string().contains(PLAYBOOK_TAG));
}

#[test]
fn a_bad_playbook_stops_init_saying_what_to_fix() {
    let cases: [(&str, Value, &str); 6] = [
        ("/playbooks/api-errors/target", json!("nope"), "unknown target"),
        ("/playbooks/api-errors/steps", json!([]), "0 steps"),
        ("/playbooks/api-errors/steps/0/action", json!("notify_human"), "cannot act on a ecs_service"),
        ("/playbooks/api-errors/steps/0/action", json!("clear_cache"), "cannot act on a ecs_service"),
        ("/playbooks/api-errors/verifyWithinMinutes", json!(0), "verifyWithinMinutes 0 must be 1 to 120"),
        (
            "/playbooks/api-errors/steps/0",
            json!({"action": "restart_service", "params": {"mode": "flush"}}),
            "only clear_cache takes params",
        ),
    ];
    for (pointer, value, says) in cases {
        let mut map = example();
        *map.pointer_mut(pointer).unwrap() = value;
        let err = parse(&map).unwrap_err();
        assert!(err.contains(says) && err.contains("api-errors"), "{pointer}: {err}");
    }
    let mut map = example();
    map["playbooks"]["database-cpu"]["alarms"] = json!(["production-api-5xx"]);
    assert!(parse(&map).unwrap_err().contains("both list alarm"));
    let mut map = example();
    map["playbooks"]["api-errors"]["stepz"] = json!([]);
    assert!(parse(&map).unwrap_err().contains("unknown field `stepz`"));
}

#[test]
fn a_map_without_playbooks_has_none_and_the_actions_ignore_the_section() {
    let mut map = example();
    map.as_object_mut().unwrap().remove("playbooks");
    assert!(parse(&map).unwrap().names().is_empty());
    let targets = TargetConfig::parse(EXAMPLE, "fixtures").unwrap();
    assert!(!targets.names().contains(&"playbooks".to_owned()));
}

/// A rollback is a step like the others, on an ECS service only.
#[test]
fn a_rollback_step_fits_an_ecs_service_only() {
    let mut map = example();
    map["playbooks"]["api-errors"]["steps"] = json!([{"action": "restart_service"}, {"action": "rollback_service"}]);
    let playbooks = parse(&map).unwrap();
    let steps = &playbooks.for_alarm("production-api-5xx", &BTreeMap::new()).unwrap().steps;
    assert_eq!(steps[1].action, ActionKind::RollbackService);
    map["playbooks"]["database-cpu"]["steps"] = json!([{"action": "rollback_service"}]);
    let err = parse(&map).unwrap_err();
    assert!(err.contains("cannot act on a rds_instance") && err.contains("database-cpu"), "{err}");
}
