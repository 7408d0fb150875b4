//! The request/response contract between the backend incident API and the four incident actions.

use chrono::{SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use shared::FunctionError;
use shared::events::parse_request;

/// Longest accepted incident id or target name.
pub const MAX_ID_LEN: usize = 128;
/// Longest accepted incident title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Largest accepted incident description: SNS's message limit, so nothing is silently dropped upstream.
pub const MAX_DESCRIPTION_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    RestartService,
    ScaleUp,
    ClearCache,
    NotifyHuman,
    RollbackService,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RestartService => "restart_service",
            Self::ScaleUp => "scale_up",
            Self::ClearCache => "clear_cache",
            Self::NotifyHuman => "notify_human",
            Self::RollbackService => "rollback_service",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// An incident id: 1-128 printable ASCII characters, no spaces (it reaches logs, SNS attributes
/// and ledger keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct IncidentId(String);

/// A target name as a request gives it: the same rules as an incident id (the target config's
/// own names are stricter, so a name that breaks these is certainly unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetRef(String);

macro_rules! id_newtype {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                check_id(&value).map(|()| Self(value))
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
id_newtype!(IncidentId);
id_newtype!(TargetRef);

/// The incident as the backend describes it: free text. Fields other than `title` and
/// `description` (a backend forwarding its own incident record) are ignored, logged and reported,
/// never refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct IncidentDetails {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The fields this service does not read, kept only to say which were ignored.
    #[serde(flatten, default, skip_serializing)]
    pub ignored: std::collections::BTreeMap<String, Value>,
}

/// Something the service changed about a request instead of refusing it (a title cut, a field
/// ignored), reported in the response's `details.adjustments` so the caller can fix its side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adjustment {
    /// The field, e.g. `incidentDetails.title`.
    pub field: String,
    /// What was done, e.g. `cut from 223 to 200 characters`.
    pub change: String,
}

impl Adjustment {
    pub fn new(field: impl Into<String>, change: impl Into<String>) -> Self {
        // A field name is the caller's text: bounded, so a 1 MB key cannot make a 1 MB response.
        Self { field: shared::text::shown(&field.into()), change: change.into() }
    }
}

/// A request as the backend incident API sends it: the envelope every action shares, and the
/// action's own parameters (`params`), which each action reads with its own type. The envelope's
/// fields are checked here; an unknown field is refused by the action's parameter type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRequest {
    pub action: ActionKind,
    /// The target name in the target config; absent for notify_human.
    #[serde(default)]
    pub target: Option<TargetRef>,
    pub incident_id: IncidentId,
    pub priority: Priority,
    #[serde(default)]
    pub incident_details: Option<IncidentDetails>,
    #[serde(default)]
    pub dry_run: bool,
    /// A dry run's `planToken`: apply only if the plan is still the one it was made for.
    #[serde(default)]
    pub plan_token: Option<String>,
    /// Everything else: the action's own parameters, e.g. clear_cache's `mode` and `keyPattern`.
    #[serde(flatten)]
    pub params: Map<String, Value>,
}

/// The parameters of an action that has none of its own: any field beyond the envelope is refused.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// clear_cache's parameters, named so that the other actions' refusal says whose they are.
const CLEAR_CACHE_PARAMS: [(&str, &str); 2] = [("mode", "a mode"), ("keyPattern", "a keyPattern")];

impl ActionRequest {
    /// Parses and fully validates a request for the function that handles `expected`, with that
    /// action's parameters as `P`. Nothing about the request is trusted until this returns `Ok`.
    pub fn parse_with<P: DeserializeOwned>(payload: Value, expected: ActionKind) -> Result<(Self, P), FunctionError> {
        let request: Self = parse_request(payload)?;
        request.validate(expected)?;
        if expected != ActionKind::ClearCache {
            for (field, what) in CLEAR_CACHE_PARAMS {
                if request.params.contains_key(field) {
                    return Err(FunctionError::invalid(field, format!("only clear_cache takes {what}")));
                }
            }
        }
        let params = parse_request(Value::Object(request.params.clone()))?;
        Ok((request, params))
    }

    /// [`Self::parse_with`] for an action without parameters of its own.
    pub fn parse(payload: Value, expected: ActionKind) -> Result<Self, FunctionError> {
        Self::parse_with::<NoParams>(payload, expected).map(|(request, _)| request)
    }

    fn validate(&self, expected: ActionKind) -> Result<(), FunctionError> {
        if self.action != expected {
            return Err(FunctionError::invalid(
                "action",
                format!("this function handles \"{}\", not \"{}\"", expected.as_str(), self.action.as_str()),
            ));
        }
        if self.target.is_none() && expected != ActionKind::NotifyHuman {
            return Err(FunctionError::invalid("target", "missing: name a target from the target config"));
        }
        if let Some(details) = &self.incident_details {
            if let Some(title) = &details.title {
                if title.chars().count() > MAX_TITLE_CHARS {
                    return Err(FunctionError::invalid(
                        "incidentDetails.title",
                        format!("{} characters; at most {MAX_TITLE_CHARS}", title.chars().count()),
                    ));
                }
                if title.chars().any(char::is_control) {
                    return Err(FunctionError::invalid(
                        "incidentDetails.title",
                        "contains control characters or line breaks; a title is one line of text",
                    ));
                }
            }
            if let Some(description) = &details.description {
                if description.len() > MAX_DESCRIPTION_BYTES {
                    return Err(FunctionError::invalid(
                        "incidentDetails.description",
                        format!("{} bytes; at most {MAX_DESCRIPTION_BYTES}", description.len()),
                    ));
                }
                if description.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
                    return Err(FunctionError::invalid(
                        "incidentDetails.description",
                        "contains control characters other than line breaks and tabs",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The incidentDetails fields this request carried that nothing reads.
    pub fn adjustments(&self) -> Vec<Adjustment> {
        let ignored = self.incident_details.iter().flat_map(|d| d.ignored.keys());
        ignored.map(|name| Adjustment::new(format!("incidentDetails.{name}"), "unknown field; ignored")).collect()
    }

    /// The target name (every action but notify_human has one once validated).
    pub fn target_name(&self) -> &str {
        self.target.as_deref().unwrap_or_default()
    }

    pub fn echo(&self) -> RequestEcho {
        RequestEcho {
            incident_id: Some(self.incident_id.to_string()),
            action: Some(self.action.as_str().to_owned()),
            target: self.target.as_ref().map(ToString::to_string),
            dry_run: self.dry_run,
        }
    }
}

/// Incident ids and target names: 1-128 printable ASCII characters, no spaces.
pub fn validate_id(field: &str, value: &str) -> Result<(), FunctionError> {
    check_id(value).map_err(|problem| FunctionError::invalid(field, problem))
}

fn check_id(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!("{} characters; at most {MAX_ID_LEN}", value.len()));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err("use printable ASCII without spaces, e.g. \"INC-42\"".to_owned());
    }
    Ok(())
}

/// The request fields a response echoes back. For a request that failed validation they are
/// read leniently from the raw payload, so the backend can still correlate the error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestEcho {
    pub incident_id: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub dry_run: bool,
}

impl RequestEcho {
    pub fn from_raw(payload: &Value) -> Self {
        let text = |key: &str| {
            payload
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| s.len() <= MAX_ID_LEN && s.chars().all(|c| c.is_ascii_graphic()))
                .map(str::to_owned)
        };
        Self {
            incident_id: text("incidentId"),
            action: text("action"),
            target: text("target"),
            dry_run: payload.get("dryRun").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

/// What every action answers, on success and on failure.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseCore {
    pub success: bool,
    pub status_code: u16,
    pub message: String,
    /// The Lambda request id of this invocation.
    pub execution_id: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub incident_id: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub dry_run: bool,
    pub details: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// `true` when this is the recorded answer to an identical request (the incident ledger's
    /// idempotency), which made no call now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<bool>,
}

/// [`ResponseCore`] plus `body`: the same object as a JSON string, which keeps callers written
/// against the old Node templates (`JSON.parse(response.body)`) working.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionResponse {
    #[serde(flatten)]
    pub core: ResponseCore,
    pub body: String,
}

impl ActionResponse {
    pub fn success(execution_id: &str, echo: &RequestEcho, message: impl Into<String>, details: Value) -> Self {
        Self::new(ResponseCore {
            success: true,
            status_code: 200,
            message: message.into(),
            execution_id: execution_id.to_owned(),
            timestamp: now_rfc3339(),
            incident_id: echo.incident_id.clone(),
            action: echo.action.clone(),
            target: echo.target.clone(),
            dry_run: echo.dry_run,
            details,
            error: None,
            replayed: None,
        })
    }

    /// An error response; `details` may carry partial progress (e.g. keys removed before the deadline).
    pub fn failure(execution_id: &str, echo: &RequestEcho, err: &FunctionError, details: Value) -> Self {
        Self::new(ResponseCore {
            success: false,
            status_code: err.status(),
            message: err.to_string(),
            execution_id: execution_id.to_owned(),
            timestamp: now_rfc3339(),
            incident_id: echo.incident_id.clone(),
            action: echo.action.clone(),
            target: echo.target.clone(),
            dry_run: echo.dry_run,
            details,
            error: Some(err.to_json()),
            replayed: None,
        })
    }

    /// The same answer with one more member in its details.
    pub fn with_detail(self, name: &str, value: Value) -> Self {
        let mut core = self.core;
        if !core.details.is_object() {
            core.details = Value::Object(serde_json::Map::new());
        }
        core.details[name] = value;
        Self::new(core)
    }

    /// The recorded answer to an identical request, marked replayed.
    pub fn replay(mut core: ResponseCore) -> Self {
        core.replayed = Some(true);
        Self::new(core)
    }

    fn new(core: ResponseCore) -> Self {
        // Serialising a struct of strings, numbers and JSON values cannot fail.
        let body = serde_json::to_string(&core).unwrap_or_default();
        Self { core, body }
    }
}

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn valid() -> Value {
        json!({
            "action": "restart_service", "target": "api", "incidentId": "INC-42", "priority": "high",
            "incidentDetails": {"title": "API 5xx", "description": "error rate 40%"}, "dryRun": false
        })
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = valid();
        v[key] = value;
        v
    }

    fn parse_err(payload: Value, expected: ActionKind) -> String {
        let err = ActionRequest::parse(payload, expected).unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
        err.to_string()
    }

    #[test]
    fn the_documented_request_parses() {
        let req = ActionRequest::parse(valid(), ActionKind::RestartService).unwrap();
        assert_eq!(req.target.as_deref(), Some("api"));
        assert_eq!(req.incident_id.to_string(), "INC-42");
        assert_eq!(req.priority, Priority::High);
        assert!(!req.dry_run);
    }

    #[test]
    fn the_original_console_event_parses_without_optional_fields() {
        let req = ActionRequest::parse(
            json!({"action": "scale_up", "target": "database", "incidentId": "incident-1", "priority": "critical"}),
            ActionKind::ScaleUp,
        )
        .unwrap();
        assert_eq!(req.incident_details, None);
    }

    #[test]
    fn notify_human_needs_no_target_but_others_do() {
        let mut v = valid();
        v.as_object_mut().unwrap().remove("target");
        v["action"] = json!("notify_human");
        ActionRequest::parse(v.clone(), ActionKind::NotifyHuman).unwrap();
        v["action"] = json!("scale_up");
        assert!(parse_err(v, ActionKind::ScaleUp).contains("`target`: missing"));
    }

    #[test]
    fn invalid_requests_name_the_field() {
        let a = ActionKind::RestartService;
        assert!(
            parse_err(with("action", json!("scale_up")), a).contains("handles \"restart_service\", not \"scale_up\"")
        );
        assert!(parse_err(with("action", json!("reboot_world")), a).contains("`action`"));
        assert!(parse_err(with("priority", json!("urgent")), a).contains("`priority`: unknown variant `urgent`"));
        assert!(parse_err(with("dryRun", json!("yes")), a).contains("`dryRun`"));
        assert!(parse_err(with("incidentId", json!("")), a).contains("`incidentId`: must not be empty"));
        assert!(parse_err(with("incidentId", json!("a b")), a).contains("`incidentId`"));
        assert!(parse_err(with("target", json!("x".repeat(500))), a).contains("at most 128"));
        assert!(parse_err(with("extra", json!(1)), a).contains("unknown field `extra`"));
        let mut missing = valid();
        missing.as_object_mut().unwrap().remove("incidentId");
        assert!(parse_err(missing, a).contains("missing field `incidentId`"));
        assert!(parse_err(json!([1, 2]), a).contains("expected a JSON object"));
    }

    #[test]
    fn clear_cache_s_parameters_are_refused_elsewhere_by_name() {
        assert!(
            parse_err(with("mode", json!("flush")), ActionKind::RestartService)
                .contains("only clear_cache takes a mode")
        );
        assert!(
            parse_err(with("keyPattern", json!("a*")), ActionKind::RestartService)
                .contains("only clear_cache takes a keyPattern")
        );
        let (_, params): (_, Map<String, Value>) =
            ActionRequest::parse_with(with("action", json!("clear_cache")), ActionKind::ClearCache).unwrap();
        assert!(params.is_empty());
    }

    #[test]
    fn incident_details_are_bounded() {
        let a = ActionKind::RestartService;
        let title = |t: &str| with("incidentDetails", json!({"title": t}));
        assert!(parse_err(title("line one\nline two"), a).contains("`incidentDetails.title`"));
        assert!(parse_err(title("bell\u{7}"), a).contains("control characters"));
        assert!(parse_err(title(&"t".repeat(201)), a).contains("at most 200"));
        let big = "d".repeat(1024 * 1024);
        assert!(parse_err(with("incidentDetails", json!({"description": big})), a).contains("at most 262144"));
        let forwarded = with("incidentDetails", json!({"title": "t", "severity": 1, "ticket": {"id": 7}}));
        let req = ActionRequest::parse(forwarded, a).unwrap();
        assert_eq!(
            req.adjustments(),
            [
                Adjustment::new("incidentDetails.severity", "unknown field; ignored"),
                Adjustment::new("incidentDetails.ticket", "unknown field; ignored")
            ]
        );
        let multi_line = with("incidentDetails", json!({"description": "line 1\nline 2\twith tab"}));
        ActionRequest::parse(multi_line, a).unwrap();
    }

    #[test]
    fn response_body_is_the_response_less_body() {
        let req = ActionRequest::parse(valid(), ActionKind::RestartService).unwrap();
        let resp = ActionResponse::success("req-1", &req.echo(), "restarted", json!({"service": "api"}));
        let value = serde_json::to_value(&resp).unwrap();
        for key in ["success", "statusCode", "message", "executionId", "timestamp", "incidentId", "action", "target"] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        assert_eq!(value["statusCode"], 200);
        assert_eq!(value["executionId"], "req-1");
        assert!(value.get("error").is_none());
        let body: Value = serde_json::from_str(value["body"].as_str().unwrap()).unwrap();
        let mut without_body = value.clone();
        without_body.as_object_mut().unwrap().remove("body");
        assert_eq!(body, without_body);
        chrono::DateTime::parse_from_rfc3339(value["timestamp"].as_str().unwrap()).unwrap();
    }

    #[test]
    fn failures_carry_a_stable_code_and_echo_what_could_be_read() {
        let raw = json!({"action": "scale_up", "incidentId": "INC-7", "priority": "urgent"});
        let err = ActionRequest::parse(raw.clone(), ActionKind::ScaleUp).unwrap_err();
        let resp = ActionResponse::failure("req-2", &RequestEcho::from_raw(&raw), &err, json!({}));
        let value = serde_json::to_value(&resp).unwrap();
        assert_eq!(value["success"], false);
        assert_eq!(value["statusCode"], 400);
        assert_eq!(value["incidentId"], "INC-7");
        assert_eq!(value["error"]["code"], "INVALID_REQUEST");
        assert!(value["error"]["message"].as_str().unwrap().contains("`priority`"));
    }
}
