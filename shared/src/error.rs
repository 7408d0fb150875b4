//! The errors every function reports, each with a stable code and an HTTP-style status.
//!
//! Incident actions turn a [`FunctionError`] into an error *response* (the backend reads it);
//! lifecycle functions turn it into a Lambda *function error* on direct and scheduled invokes
//! (so the Errors metric and alarms fire) and into an HTTP status over API Gateway or a Function URL.

use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use lambda_runtime::Diagnostic;

/// What went wrong while handling one event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionError {
    /// The event or request is malformed. Fix the caller; retrying will not help.
    #[error("invalid request: `{field}`: {problem}")]
    InvalidRequest { field: String, problem: String },

    /// The request names a target that the target config does not have.
    #[error("unknown target \"{target}\"; known targets: {}", known.join(", "))]
    UnknownTarget { target: String, known: Vec<String> },

    /// The ECS service (or its cluster) does not exist, or is INACTIVE.
    #[error(
        "ECS service \"{service}\" not found in cluster \"{cluster}\" (missing or INACTIVE); \
         check the cluster and service names"
    )]
    ServiceNotFound { cluster: String, service: String },

    /// Any other named AWS resource that does not exist.
    #[error("{kind} \"{id}\" not found; check the target config")]
    ResourceNotFound { kind: &'static str, id: String },

    /// The request names a service other than the function's own, and the deployment does not
    /// allow that one (`OVERRIDE_SERVICE_ARNS`). Nothing was called.
    #[error(
        "service {cluster}/{service} may not be named here: this function acts on {configured}{}; \
         a deployment allows others with OverrideServiceArns",
        if allowed.is_empty() { String::new() } else { format!(" and {}", allowed.join(", ")) }
    )]
    OverrideNotAllowed { cluster: String, service: String, configured: String, allowed: Vec<String> },

    /// The resource is in a state that makes the action unsafe or pointless right now.
    #[error("conflict: {0}")]
    Conflict(String),

    /// An AWS call failed after the SDK's retries.
    #[error("AWS {operation} failed: {code}: {message}")]
    Aws { operation: String, code: String, message: String },

    /// A Redis connection or command failed. Never carries the password.
    #[error("Redis at {host} failed: {message}")]
    Redis { host: String, message: String },

    /// The work could not finish before the Lambda deadline; nothing after `during` was attempted.
    #[error("deadline exceeded: {during} could not finish before the Lambda deadline")]
    DeadlineExceeded { during: String },

    /// A request carried a dry run's plan token, and the plan no longer holds (the state moved, or
    /// the token is too old): nothing was changed, and the response carries the new plan.
    #[error("plan not applied: {reason}; the new plan: {plan}")]
    StalePlan { reason: String, plan: String },

    /// The plan changes code in production and the target does not allow it unattended: nothing
    /// was changed, and the response carries the plan; a dry run gives the token that approves it.
    #[error(
        "approval required: {why}; the plan: {plan}; to approve it, send the request as a dry run (\"dryRun\": true), \
         read its plan, and send the request again with its planToken"
    )]
    ApprovalRequired { why: String, plan: String },

    /// An identical request is being handled right now; its answer will be replayed once it
    /// completes. Retry later.
    #[error("in progress: {0}")]
    InProgress(String),

    /// An identical request began changing the resource and never recorded how it ended (it was
    /// stopped, e.g. by the Lambda timeout). Look at the resource before acting again.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),

    /// An operator paused automation (globally or for this target): nothing was called.
    #[error("automation is paused {scope} by {by} since {since}: {reason}; resume with `{resume}`")]
    AutomationPaused { scope: String, by: String, reason: String, since: String, resume: String },

    /// A remediation budget is spent (a loop, or a storm of alarms): nothing was called.
    #[error("budget {budget} spent: {count} of {limit} mutations in {window_seconds} s; it resets at {resets}")]
    BudgetExhausted { budget: String, count: u64, limit: u64, window_seconds: u64, resets: String },

    /// The incident ledger could not be read or written, so the action did not act: acting blind
    /// could act twice or break a budget (`LEDGER_FAILURE=open` chooses otherwise).
    #[error("the incident ledger (DynamoDB table {table}) is unavailable: {problem}; nothing was done")]
    LedgerUnavailable { table: String, problem: String },

    /// A run over many resources in which some failed and the rest were handled; `failures` names
    /// each failed one and why. The next run retries them.
    #[error("{} of {total} {what} failed ({summary}): {}", failures.len(), failures.join("; "))]
    PartialFailure { what: &'static str, total: usize, summary: String, failures: Vec<String> },
}

impl FunctionError {
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::InvalidRequest { field: field.into(), problem: problem.into() }
    }

    /// HTTP-style status: what callers of the old Node templates and API Gateway clients read.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest { .. } => 400,
            Self::OverrideNotAllowed { .. } => 403,
            Self::UnknownTarget { .. } | Self::ServiceNotFound { .. } | Self::ResourceNotFound { .. } => 404,
            Self::Conflict(_)
            | Self::StalePlan { .. }
            | Self::ApprovalRequired { .. }
            | Self::InProgress(_)
            | Self::OutcomeUnknown(_) => 409,
            Self::AutomationPaused { .. } => 423,
            Self::BudgetExhausted { .. } => 429,
            Self::LedgerUnavailable { .. } => 502,
            Self::Aws { .. } | Self::Redis { .. } | Self::PartialFailure { .. } => 502,
            Self::DeadlineExceeded { .. } => 504,
        }
    }

    /// Stable, machine-readable code for the `error.code` field of responses.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "INVALID_REQUEST",
            Self::OverrideNotAllowed { .. } => "OVERRIDE_NOT_ALLOWED",
            Self::UnknownTarget { .. } => "UNKNOWN_TARGET",
            Self::ServiceNotFound { .. } => "SERVICE_NOT_FOUND",
            Self::ResourceNotFound { .. } => "RESOURCE_NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::StalePlan { .. } => "STALE_PLAN",
            Self::ApprovalRequired { .. } => "APPROVAL_REQUIRED",
            Self::InProgress(_) => "IN_PROGRESS",
            Self::OutcomeUnknown(_) => "OUTCOME_UNKNOWN",
            Self::AutomationPaused { .. } => "AUTOMATION_PAUSED",
            Self::BudgetExhausted { .. } => "BUDGET_EXHAUSTED",
            Self::LedgerUnavailable { .. } => "LEDGER_UNAVAILABLE",
            Self::Aws { .. } => "AWS_ERROR",
            Self::Redis { .. } => "REDIS_ERROR",
            Self::DeadlineExceeded { .. } => "DEADLINE_EXCEEDED",
            Self::PartialFailure { .. } => "PARTIAL_FAILURE",
        }
    }

    /// The Lambda `errorType` of a function error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "InvalidRequest",
            Self::OverrideNotAllowed { .. } => "OverrideNotAllowed",
            Self::UnknownTarget { .. } => "UnknownTarget",
            Self::ServiceNotFound { .. } => "ServiceNotFound",
            Self::ResourceNotFound { .. } => "ResourceNotFound",
            Self::Conflict(_) => "Conflict",
            Self::StalePlan { .. } => "StalePlan",
            Self::ApprovalRequired { .. } => "ApprovalRequired",
            Self::InProgress(_) => "InProgress",
            Self::OutcomeUnknown(_) => "OutcomeUnknown",
            Self::AutomationPaused { .. } => "AutomationPaused",
            Self::BudgetExhausted { .. } => "BudgetExhausted",
            Self::LedgerUnavailable { .. } => "LedgerUnavailable",
            Self::Aws { .. } => "AwsError",
            Self::Redis { .. } => "RedisError",
            Self::DeadlineExceeded { .. } => "DeadlineExceeded",
            Self::PartialFailure { .. } => "PartialFailure",
        }
    }

    /// Whether a failed call may have been carried out all the same: its answer never came (the
    /// SDK's last attempt timed out) or could not be read. An answer that is an error, a 500
    /// included, is AWS saying the call failed: the backend's retry of it must act.
    pub fn may_have_happened(&self) -> bool {
        matches!(self, Self::Aws { code, .. } if code == "Timeout" || code == "ResponseError")
    }

    /// The `error` object of a JSON error body: `{"code": ..., "message": ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code(), "message": self.to_string() })
    }

    /// A failed AWS call, named by its operation (`"ECS UpdateService"`) and the AWS error code.
    /// A response that is not a modelled AWS error is named by its HTTP status.
    pub fn aws<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let context = || crate::text::truncate(&DisplayErrorContext(err).to_string(), 300);
        let (code, message) = match err {
            SdkError::ServiceError(service) => match service.err().code() {
                Some(code) => (code.to_owned(), service.err().message().map_or_else(context, str::to_owned)),
                None => (
                    format!("HTTP {}", service.raw().status().as_u16()),
                    "the response was not an AWS error the SDK understands".to_owned(),
                ),
            },
            SdkError::TimeoutError(_) => ("Timeout".to_owned(), context()),
            SdkError::DispatchFailure(_) => ("DispatchFailure".to_owned(), context()),
            SdkError::ResponseError(_) => ("ResponseError".to_owned(), context()),
            _ => ("ConstructionFailure".to_owned(), context()),
        };
        Self::Aws { operation: operation.to_owned(), code, message }
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(err: FunctionError) -> Self {
        Diagnostic { error_type: err.error_type().to_owned(), error_message: err.to_string() }
    }
}

/// A configuration problem found at cold start. The function refuses to start, saying exactly what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    MissingEnv(&'static str),

    #[error("environment variable {name} is invalid: {problem}")]
    InvalidEnv { name: &'static str, problem: String },

    #[error("target config ({source_name}) is invalid: {problem}")]
    Targets { source_name: String, problem: String },

    #[error("TLS client setup failed: {0}")]
    Tls(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_maps_to_the_documented_status() {
        let cases = [
            (FunctionError::invalid("priority", "expected one of low, medium"), 400, "INVALID_REQUEST"),
            (FunctionError::UnknownTarget { target: "x".into(), known: vec!["api".into()] }, 404, "UNKNOWN_TARGET"),
            (FunctionError::ServiceNotFound { cluster: "c".into(), service: "s".into() }, 404, "SERVICE_NOT_FOUND"),
            (FunctionError::Conflict("busy".into()), 409, "CONFLICT"),
            (
                FunctionError::Aws { operation: "ECS UpdateService".into(), code: "X".into(), message: "m".into() },
                502,
                "AWS_ERROR",
            ),
            (FunctionError::Redis { host: "h".into(), message: "m".into() }, 502, "REDIS_ERROR"),
            (FunctionError::DeadlineExceeded { during: "ECS UpdateService".into() }, 504, "DEADLINE_EXCEEDED"),
            (
                FunctionError::PartialFailure {
                    what: "draining services",
                    total: 3,
                    summary: "2 retired".into(),
                    failures: vec!["svc-a-1: AWS ECS UpdateService failed".into()],
                },
                502,
                "PARTIAL_FAILURE",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status, "{err}");
            assert_eq!(err.code(), code, "{err}");
        }
    }

    #[test]
    fn only_an_unanswered_call_may_have_happened() {
        let aws = |code: &str| FunctionError::Aws {
            operation: "ECS UpdateService".into(),
            code: code.into(),
            message: "m".into(),
        };
        for code in ["Timeout", "ResponseError"] {
            assert!(aws(code).may_have_happened(), "{code}");
        }
        for code in
            ["ThrottlingException", "InternalFailure", "HTTP 503", "DispatchFailure", "InvalidParameterException"]
        {
            assert!(!aws(code).may_have_happened(), "{code}");
        }
        assert!(!FunctionError::DeadlineExceeded { during: "a scan, stopped cleanly".into() }.may_have_happened());
    }

    #[test]
    fn messages_name_the_problem() {
        let err = FunctionError::UnknownTarget { target: "dbx".into(), known: vec!["api".into(), "cache".into()] };
        assert_eq!(err.to_string(), "unknown target \"dbx\"; known targets: api, cache");
        let err = FunctionError::ServiceNotFound { cluster: "prod".into(), service: "api".into() };
        assert!(err.to_string().contains("\"api\" not found in cluster \"prod\""));
        let diag: Diagnostic = err.into();
        assert_eq!(diag.error_type, "ServiceNotFound");
    }
}
