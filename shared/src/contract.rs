//! The request/response contract between the backend incident API and the four incident actions.

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::FunctionError;
use crate::events::parse_request;

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
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RestartService => "restart_service",
            Self::ScaleUp => "scale_up",
            Self::ClearCache => "clear_cache",
            Self::NotifyHuman => "notify_human",
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

/// How clear_cache clears: the whole server, the keys matching a pattern, or by rebooting the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearMode {
    Flush,
    Pattern,
    Reboot,
}

impl ClearMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flush => "flush",
            Self::Pattern => "pattern",
            Self::Reboot => "reboot",
        }
    }
}

/// Longest accepted clear_cache `keyPattern`.
pub const MAX_KEY_PATTERN_LEN: usize = 256;

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
        Self { field: crate::ecs::truncate_for_message(&field.into()), change: change.into() }
    }
}

/// A request as the backend incident API sends it. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActionRequest {
    pub action: ActionKind,
    /// The target name in the target config; absent for notify_human.
    #[serde(default)]
    pub target: Option<String>,
    pub incident_id: String,
    pub priority: Priority,
    #[serde(default)]
    pub incident_details: Option<IncidentDetails>,
    #[serde(default)]
    pub dry_run: bool,
    /// clear_cache only: `flush` (default), `pattern` or `reboot`.
    #[serde(default)]
    pub mode: Option<ClearMode>,
    /// clear_cache only: the SCAN MATCH pattern of `pattern` mode (implies it when `mode` is absent).
    #[serde(default)]
    pub key_pattern: Option<String>,
}

impl ActionRequest {
    /// Parses and fully validates a request for the function that handles `expected`.
    /// Nothing about the request is trusted until this returns `Ok`.
    pub fn parse(payload: Value, expected: ActionKind) -> Result<Self, FunctionError> {
        let request: Self = parse_request(payload)?;
        request.validate(expected)?;
        Ok(request)
    }

    fn validate(&self, expected: ActionKind) -> Result<(), FunctionError> {
        if self.action != expected {
            return Err(FunctionError::invalid(
                "action",
                format!("this function handles \"{}\", not \"{}\"", expected.as_str(), self.action.as_str()),
            ));
        }
        validate_id("incidentId", &self.incident_id)?;
        match (&self.target, expected) {
            (Some(target), _) => validate_id("target", target)?,
            (None, ActionKind::NotifyHuman) => {}
            (None, _) => return Err(FunctionError::invalid("target", "missing: name a target from the target config")),
        }
        self.validate_clear_options(expected)?;
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

    fn validate_clear_options(&self, expected: ActionKind) -> Result<(), FunctionError> {
        if expected != ActionKind::ClearCache {
            if self.mode.is_some() {
                return Err(FunctionError::invalid("mode", "only clear_cache takes a mode"));
            }
            if self.key_pattern.is_some() {
                return Err(FunctionError::invalid("keyPattern", "only clear_cache takes a keyPattern"));
            }
            return Ok(());
        }
        match (self.clear_mode(), &self.key_pattern) {
            (ClearMode::Pattern, None) => Err(FunctionError::invalid(
                "keyPattern",
                "missing: mode \"pattern\" needs a keyPattern such as \"session:*\"",
            )),
            (ClearMode::Pattern, Some(pattern)) => {
                if pattern.is_empty() || pattern.len() > MAX_KEY_PATTERN_LEN {
                    return Err(FunctionError::invalid(
                        "keyPattern",
                        format!("must be 1-{MAX_KEY_PATTERN_LEN} bytes, got {}", pattern.len()),
                    ));
                }
                if pattern.chars().any(char::is_control) {
                    return Err(FunctionError::invalid("keyPattern", "contains control characters"));
                }
                Ok(())
            }
            (mode, Some(_)) => Err(FunctionError::invalid(
                "keyPattern",
                format!("only mode \"pattern\" takes a keyPattern, not \"{}\"", mode.as_str()),
            )),
            (_, None) => Ok(()),
        }
    }

    /// clear_cache's mode: as given, else `pattern` when a keyPattern is given, else `flush`.
    pub fn clear_mode(&self) -> ClearMode {
        match (self.mode, &self.key_pattern) {
            (Some(mode), _) => mode,
            (None, Some(_)) => ClearMode::Pattern,
            (None, None) => ClearMode::Flush,
        }
    }

    /// The incidentDetails fields this request carried that nothing reads.
    pub fn adjustments(&self) -> Vec<Adjustment> {
        let ignored = self.incident_details.iter().flat_map(|d| d.ignored.keys());
        ignored.map(|name| Adjustment::new(format!("incidentDetails.{name}"), "unknown field; ignored")).collect()
    }

    pub fn echo(&self) -> RequestEcho {
        RequestEcho {
            incident_id: Some(self.incident_id.clone()),
            action: Some(self.action.as_str().to_owned()),
            target: self.target.clone(),
            dry_run: self.dry_run,
        }
    }
}

/// Incident ids and target names: 1-128 printable ASCII characters, no spaces.
pub fn validate_id(field: &str, value: &str) -> Result<(), FunctionError> {
    if value.is_empty() {
        return Err(FunctionError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(FunctionError::invalid(field, format!("{} characters; at most {MAX_ID_LEN}", value.len())));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(FunctionError::invalid(field, "use printable ASCII without spaces, e.g. \"INC-42\""));
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
        })
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
        assert_eq!(req.priority, Priority::High);
        assert!(!req.dry_run);
    }

    #[test]
    fn the_seed_console_event_parses_without_optional_fields() {
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
    fn clear_cache_options_are_checked() {
        let clear = |extra: Value| {
            let mut v = with("action", json!("clear_cache"));
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            v
        };
        let c = ActionKind::ClearCache;
        assert_eq!(ActionRequest::parse(clear(json!({})), c).unwrap().clear_mode(), ClearMode::Flush);
        let implied = ActionRequest::parse(clear(json!({"keyPattern": "session:*"})), c).unwrap();
        assert_eq!(implied.clear_mode(), ClearMode::Pattern);
        assert!(parse_err(clear(json!({"mode": "pattern"})), c).contains("`keyPattern`: missing"));
        assert!(parse_err(clear(json!({"mode": "flush", "keyPattern": "a*"})), c).contains("only mode"));
        assert!(parse_err(clear(json!({"mode": "nuke"})), c).contains("`mode`: unknown variant `nuke`"));
        assert!(parse_err(clear(json!({"keyPattern": "a\nb"})), c).contains("control characters"));
        assert!(parse_err(with("mode", json!("flush")), ActionKind::RestartService).contains("only clear_cache"));
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
