//! The steps and the page go through the actions' own contract: Lambda `Invoke` by ARN, as the
//! backend calls them, so each keeps its role, its budgets, its pause and its idempotency.

use aws_sdk_lambda::primitives::Blob;
use incident_core::contract::{ActionKind, Priority, ResponseCore};
use incident_core::state::State;
use serde_json::{Map, Value, json};
use shared::ConfigError;
use shared::iam::{Permission, arn};
use shared::settings::Settings;

/// The action functions, by name or ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Functions {
    pub restart_service: String,
    pub scale_up: String,
    pub clear_cache: String,
    pub notify_human: String,
    pub rollback_service: String,
}

/// The environment variable that names each action's function.
pub const FUNCTION_VARS: [(&str, ActionKind); 5] = [
    ("RESTART_SERVICE_FUNCTION", ActionKind::RestartService),
    ("SCALE_UP_FUNCTION", ActionKind::ScaleUp),
    ("CLEAR_CACHE_FUNCTION", ActionKind::ClearCache),
    ("NOTIFY_HUMAN_FUNCTION", ActionKind::NotifyHuman),
    ("ROLLBACK_SERVICE_FUNCTION", ActionKind::RollbackService),
];

impl Functions {
    pub fn from_env() -> Result<Self, ConfigError> {
        let settings = Settings::from_env();
        let get = |name: &'static str| settings.optional(name).ok_or(ConfigError::MissingEnv(name));
        Ok(Self {
            restart_service: get(FUNCTION_VARS[0].0)?,
            scale_up: get(FUNCTION_VARS[1].0)?,
            clear_cache: get(FUNCTION_VARS[2].0)?,
            notify_human: get(FUNCTION_VARS[3].0)?,
            rollback_service: get(FUNCTION_VARS[4].0)?,
        })
    }

    pub fn of(&self, kind: ActionKind) -> &str {
        match kind {
            ActionKind::RestartService => &self.restart_service,
            ActionKind::ScaleUp => &self.scale_up,
            ActionKind::ClearCache => &self.clear_cache,
            ActionKind::NotifyHuman => &self.notify_human,
            ActionKind::RollbackService => &self.rollback_service,
        }
    }
}

/// `lambda:InvokeFunction` on the five actions, `${...}` standing for their ARNs.
pub fn permissions() -> Vec<Permission> {
    FUNCTION_VARS
        .into_iter()
        .map(|(var, _)| format!("${{{var}}}"))
        .map(|function| Permission::new("lambda:InvokeFunction", arn("lambda", &format!("function:{function}"))))
        .collect()
}

/// The Lambda client the steps and the page are invoked with: one attempt, never retried (a retry
/// of an action that is still working would meet its own idempotency key and read as refused), and
/// a read timeout above the longest action's Lambda timeout (clear_cache's 900 s).
pub fn client(config: &aws_config::SdkConfig) -> aws_sdk_lambda::Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .read_timeout(std::time::Duration::from_secs(910))
        .build();
    let retry = aws_config::retry::RetryConfig::standard().with_max_attempts(1);
    aws_sdk_lambda::Client::new(&config.to_builder().timeout_config(timeouts).retry_config(retry).build())
}

/// A request in the actions' contract.
pub fn request(
    kind: ActionKind,
    target: Option<&str>,
    incident: &str,
    priority: Priority,
    details: Value,
    params: &Map<String, Value>,
) -> Value {
    let mut request = json!({
        "action": kind.as_str(), "incidentId": incident, "priority": priority.as_str(), "incidentDetails": details,
    });
    if let Some(target) = target {
        request["target"] = json!(target);
    }
    for (name, value) in params {
        request[name] = value.clone();
    }
    request
}

/// What an action's answer means for the playbook.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// It changed its resource (now, or in the identical request it replays): the state it left.
    Applied { after: State, message: String },
    /// It changed nothing (no change needed, refused, failed): its status and why.
    NotApplied { status: u16, message: String },
}

impl Answer {
    pub fn of(core: &ResponseCore) -> Self {
        let after = core.details.get("after").and_then(|a| serde_json::from_value::<State>(a.clone()).ok());
        match after {
            Some(after) if core.success && !core.dry_run => Self::Applied { after, message: core.message.clone() },
            _ => Self::NotApplied { status: core.status_code, message: core.message.clone() },
        }
    }
}

/// Invokes a function and waits for its answer; an error says what failed (the call, or the
/// function, with Lambda's error).
pub async fn invoke(lambda: &aws_sdk_lambda::Client, function: &str, request: &Value) -> Result<Value, String> {
    let call = lambda.invoke().function_name(function).payload(Blob::new(request.to_string()));
    let out = call.send().await.map_err(|err| shared::FunctionError::aws("Lambda Invoke", &err).to_string())?;
    let payload = out.payload().map(|p| p.as_ref().to_vec()).unwrap_or_default();
    let text = String::from_utf8_lossy(&payload);
    if let Some(kind) = out.function_error() {
        return Err(format!("{function} failed ({kind}): {}", shared::text::shown(&text)));
    }
    serde_json::from_str(&text).map_err(|e| format!("{function} answered with something that is not JSON: {e}"))
}

/// An action's answer as its contract's core.
pub fn core_of(answer: &Value) -> Result<ResponseCore, String> {
    serde_json::from_value(answer.clone()).map_err(|e| format!("the answer is not an action's response: {e}"))
}
