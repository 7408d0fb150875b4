//! What wakes the playbook, typed at the edge: an alarm's state change (invoked by the alarm, or
//! through EventBridge), an ECS deployment's state change, or the schedule's sweep.

use std::collections::BTreeMap;

use aws_lambda_events::event::cloudwatch_alarms::{CloudWatchAlarmData, CloudWatchAlarmStateValue};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use shared::FunctionError;

use incident_core::contract::MAX_ID_LEN;

/// One event, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Alarm(AlarmChange),
    Deployment(DeploymentChange),
    /// The 1-minute schedule: settle what is due.
    Sweep,
}

/// An alarm's state as the playbook reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    /// CloudWatch's name for a state (DescribeAlarms' `StateValue`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "OK" => Some(Self::Ok),
            "ALARM" => Some(Self::Alarm),
            "INSUFFICIENT_DATA" => Some(Self::InsufficientData),
            _ => None,
        }
    }
}

/// An alarm's transition.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmChange {
    pub name: String,
    pub state: AlarmState,
    pub previous: Option<AlarmState>,
    /// When it entered `state`: with the name, the incident's identity.
    pub at: DateTime<Utc>,
    pub reason: String,
    /// The alarm's tags, when its `AlarmTagsPropagation` puts them in the payload.
    pub tags: BTreeMap<String, String>,
    /// A composite alarm's suppressor, when it held the actions back (`Alarm`, `WaitPeriod`, ...).
    pub suppressed_by: Option<String>,
}

/// An ECS deployment's state change (EventBridge `ECS Deployment State Change`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentChange {
    pub deployment_id: String,
    /// `SERVICE_DEPLOYMENT_COMPLETED`, `SERVICE_DEPLOYMENT_FAILED`, `SERVICE_DEPLOYMENT_IN_PROGRESS`.
    pub event_name: String,
    pub reason: String,
}

impl DeploymentChange {
    pub fn completed(&self) -> bool {
        self.event_name == "SERVICE_DEPLOYMENT_COMPLETED"
    }

    pub fn failed(&self) -> bool {
        self.event_name == "SERVICE_DEPLOYMENT_FAILED"
    }
}

const ALARM_CHANGE: &str = "CloudWatch Alarm State Change";
const DEPLOYMENT_CHANGE: &str = "ECS Deployment State Change";
const SCHEDULED: &str = "Scheduled Event";

/// Reads an event; anything else is a 400 naming what was expected, before any call.
pub fn parse(payload: &Value) -> Result<Trigger, FunctionError> {
    let detail_type = payload.get("detail-type").and_then(Value::as_str);
    match detail_type {
        Some(ALARM_CHANGE) => match (payload.get("detail"), payload.get("alarmData")) {
            (Some(detail), _) => alarm(detail, "detail"),
            (None, Some(data)) => alarm(data, "alarmData"),
            (None, None) => Err(FunctionError::invalid("detail", "missing: the alarm's state change")),
        },
        Some(DEPLOYMENT_CHANGE) => deployment(payload.get("detail").unwrap_or(&Value::Null)),
        Some(SCHEDULED) => Ok(Trigger::Sweep),
        Some(other) => Err(FunctionError::invalid(
            "detail-type",
            format!(
                "{:?} is not an event this function takes: \"{ALARM_CHANGE}\", \"{DEPLOYMENT_CHANGE}\" or \"{SCHEDULED}\"",
                shared::text::shown(other)
            ),
        )),
        None => match payload.get("alarmData") {
            Some(data) => alarm(data, "alarmData"),
            None => Err(FunctionError::invalid(
                "event",
                "not an alarm's invocation (alarmData), an EventBridge event (detail-type) or a schedule",
            )),
        },
    }
}

/// The alarm's data, from the invocation's `alarmData` or the event's `detail` (`at` names it).
fn alarm(raw: &Value, at: &str) -> Result<Trigger, FunctionError> {
    let tags = raw.get("alarmTags").map(tags).transpose()?.unwrap_or_default();
    let data: CloudWatchAlarmData<Value, Value> = serde_path_to_error::deserialize(raw).map_err(|err| {
        let field = match err.path().to_string().as_str() {
            "." => at.to_owned(),
            path => format!("{at}.{path}"),
        };
        FunctionError::invalid(field, err.into_inner().to_string())
    })?;
    let name = &data.alarm_name;
    if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        let problem = "must be 1 to 255 characters without control characters";
        return Err(FunctionError::invalid(format!("{at}.alarmName"), problem));
    }
    let state = data.state.ok_or_else(|| FunctionError::invalid(format!("{at}.state"), "missing"))?;
    Ok(Trigger::Alarm(AlarmChange {
        name: data.alarm_name,
        state: state_of(&state.value),
        previous: data.previous_state.map(|p| state_of(&p.value)),
        at: state.timestamp,
        reason: state.reason,
        tags,
        suppressed_by: state.actions_suppressed_by,
    }))
}

fn state_of(value: &CloudWatchAlarmStateValue) -> AlarmState {
    match value {
        CloudWatchAlarmStateValue::Alarm => AlarmState::Alarm,
        CloudWatchAlarmStateValue::Ok => AlarmState::Ok,
        _ => AlarmState::InsufficientData,
    }
}

fn tags(value: &Value) -> Result<BTreeMap<String, String>, FunctionError> {
    BTreeMap::<String, String>::deserialize(value)
        .map_err(|e| FunctionError::invalid("alarmTags", format!("must map tag keys to string values: {e}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDeployment {
    event_name: String,
    deployment_id: String,
    #[serde(default)]
    reason: String,
}

fn deployment(detail: &Value) -> Result<Trigger, FunctionError> {
    let raw: RawDeployment = serde_path_to_error::deserialize(detail).map_err(|err| {
        let path = err.path().to_string();
        FunctionError::invalid(format!("detail.{path}"), err.into_inner().to_string())
    })?;
    let id = &raw.deployment_id;
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(FunctionError::invalid("detail.deploymentId", "must be 1-128 printable characters"));
    }
    Ok(Trigger::Deployment(DeploymentChange {
        deployment_id: raw.deployment_id,
        event_name: raw.event_name,
        reason: raw.reason,
    }))
}

/// The incident an alarm's transition is: `alarm/<name>/<state timestamp>`. A name outside an
/// incident id's characters (printable ASCII, no spaces), or one too long, is kept readable and
/// made unique by a hash of the whole name.
pub fn incident_id(alarm: &str, at: DateTime<Utc>) -> String {
    use sha2::Digest;
    let stamp = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let room = MAX_ID_LEN - "alarm/".len() - 1 - stamp.len();
    let plain = alarm.chars().all(|c| c.is_ascii_graphic());
    let name = if plain && alarm.len() <= room {
        alarm.to_owned()
    } else {
        let hash = sha2::Sha256::digest(alarm.as_bytes());
        let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
        let readable: String = alarm.chars().map(|c| if c.is_ascii_graphic() { c } else { '_' }).collect();
        format!("{}~{hex}", &readable[..readable.len().min(room - 9)])
    };
    format!("alarm/{name}/{stamp}")
}

#[cfg(test)]
mod tests;
