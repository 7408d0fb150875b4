use chrono::TimeZone;
use serde_json::json;

use super::*;

fn alarm_event(state: &str) -> Value {
    json!({
        "source": "aws.cloudwatch", "alarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx",
        "accountId": "123456789012", "time": "2026-12-05T02:15:00.000+0000", "region": "us-east-1",
        "alarmData": {
            "alarmName": "api-5xx",
            "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2026-12-05T02:15:00.123+0000"},
            "previousState": {"value": "OK", "reason": "fine", "timestamp": "2026-12-05T01:00:00.000+0000"},
            "configuration": {"metrics": []},
            "alarmTags": {"incident-playbook": "api-errors", "team": "web"}
        }
    })
}

#[test]
fn an_alarm_invocation_reads_as_its_transition_with_tags() {
    let Trigger::Alarm(change) = parse(&alarm_event("ALARM")).unwrap() else { panic!("not an alarm") };
    assert_eq!(change.name, "api-5xx");
    assert_eq!(change.state, AlarmState::Alarm);
    assert_eq!(change.previous, Some(AlarmState::Ok));
    assert_eq!(change.tags["incident-playbook"], "api-errors");
    assert_eq!(change.suppressed_by, None);
    assert_eq!(incident_id(&change.name, change.at), "alarm/api-5xx/2026-12-05T02:15:00.123Z");
}

#[test]
fn the_eventbridge_form_reads_the_same() {
    let direct = alarm_event("OK");
    let bridged = json!({"version": "0", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "time": "2026-12-05T02:15:00Z", "resources": [direct["alarmArn"]], "detail": direct["alarmData"]});
    assert_eq!(parse(&bridged).unwrap(), parse(&direct).unwrap());
}

#[test]
fn a_suppressor_is_kept() {
    let mut event = alarm_event("ALARM");
    event["alarmData"]["state"]["actionsSuppressedBy"] = json!("Alarm");
    let Trigger::Alarm(change) = parse(&event).unwrap() else { panic!("not an alarm") };
    assert_eq!(change.suppressed_by.as_deref(), Some("Alarm"));
}

#[test]
fn deployment_events_and_the_schedule_are_read() {
    let event = json!({"detail-type": "ECS Deployment State Change", "source": "aws.ecs",
        "detail": {"eventType": "ERROR", "eventName": "SERVICE_DEPLOYMENT_FAILED", "deploymentId": "ecs-svc/123",
            "updatedAt": "2026-12-05T02:24:00Z", "reason": "ECS deployment circuit breaker: tasks failed to start."}});
    let Trigger::Deployment(change) = parse(&event).unwrap() else { panic!("not a deployment") };
    assert!(change.failed() && !change.completed());
    assert_eq!(change.deployment_id, "ecs-svc/123");
    let schedule = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    assert_eq!(parse(&schedule).unwrap(), Trigger::Sweep);
}

#[test]
fn anything_else_is_refused_naming_what_is_expected() {
    for (event, says) in [
        (json!({"action": "restart_service"}), "not an alarm's invocation"),
        (json!({"detail-type": "EC2 Instance State-change Notification"}), "not an event this function takes"),
        (json!({"alarmData": {"alarmName": "x"}}), "`alarmData`: missing field `configuration`"),
        (json!({"alarmData": {"alarmName": "x", "configuration": {}}}), "alarmData.state"),
        (
            json!({"alarmData": {"alarmName": "", "configuration": {}, "state": {"value": "ALARM", "reason": "", "timestamp": "2026-12-05T02:15:00Z"}}}),
            "alarmName",
        ),
        (json!({"detail-type": "ECS Deployment State Change", "detail": {"eventName": "X"}}), "deploymentId"),
    ] {
        let err = parse(&event).unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[test]
fn an_alarm_name_outside_an_incident_ids_characters_is_kept_readable_and_unique() {
    let at = Utc.with_ymd_and_hms(2026, 12, 5, 2, 15, 0).unwrap();
    let spaced = incident_id("API 5xx errors (prod)", at);
    assert!(spaced.starts_with("alarm/API_5xx_errors_(prod)~"), "{spaced}");
    assert_ne!(spaced, incident_id("API_5xx errors (prod)", at), "the hash tells them apart");
    let long = incident_id(&"a".repeat(255), at);
    assert!(long.len() <= MAX_ID_LEN, "{} characters", long.len());
    assert!(incident_core::contract::validate_id("incidentId", &long).is_ok());
    assert!(incident_core::contract::validate_id("incidentId", &incident_id("ünïcode alarm", at)).is_ok());
}
