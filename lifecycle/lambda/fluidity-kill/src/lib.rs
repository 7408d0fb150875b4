//! `fluidity-kill`: stops the Fluidity ECS service at once.
//!
//! It always calls `UpdateService(desiredCount=0)`, with no describe first, so its IAM policy is
//! `ecs:UpdateService` alone. Setting 0 on a stopped service succeeds: kill is idempotent.
//! Triggers: the agent's shutdown (API Gateway `/kill` or a Function URL), the nightly
//! EventBridge schedule, or a direct invoke.

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::FunctionError;
use shared::ecs::{self, ServiceOverrides, ServiceScope};
use shared::events::EventSource;
use shared::frame::run_lifecycle;

/// Built once per cold start in `main`.
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    /// From `ECS_CLUSTER_NAME` and `ECS_SERVICE_NAME`.
    /// The function's own service, and those a request may name instead.
    pub services: ServiceScope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KillResponse {
    pub status: &'static str,
    pub desired_count: i32,
    pub message: &'static str,
}

impl KillResponse {
    pub const KILLED: Self = Self {
        status: "killed",
        desired_count: 0,
        message: "Service shutdown initiated. ECS tasks will terminate immediately.",
    };
}

/// kill's one permission: UpdateService on its service.
pub fn permissions() -> Vec<shared::iam::Permission> {
    vec![ecs::update_service_permission("${ECS_CLUSTER_NAME}", "${ECS_SERVICE_NAME}")]
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, FunctionError> {
    run_lifecycle(event, "kill", |request: ServiceOverrides, source| kill(request, source, deps)).await
}

async fn kill(request: ServiceOverrides, source: EventSource, deps: &Deps) -> Result<KillResponse, FunctionError> {
    let target = deps.services.resolve(&request)?;
    let service = ecs::set_desired_count(&deps.ecs, &target, 0).await?;
    tracing::info!(
        cluster = %target.cluster,
        service = %target.service,
        source = ?source,
        runningCount = service.running_count(),
        "kill: desiredCount set to 0"
    );
    Ok(KillResponse::KILLED)
}

#[cfg(test)]
mod tests {
    //! Which calls kill makes, pinned with aws-smithy-mocks on the real client: a Sequential mock
    //! client with no rule for an operation fails any call to it, so these prove that invalid input
    //! reaches no AWS API and that a kill is exactly one UpdateService.
    use aws_sdk_ecs::Client;
    use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
    use aws_sdk_ecs::types::Service;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use lambda_runtime::Context;
    use serde_json::json;

    use super::*;

    fn deps(ecs: Client) -> Deps {
        Deps { ecs, services: ServiceScope::only(shared::ecs::ServiceRef::new("fluidity", "fluidity-server")) }
    }

    async fn invoke(deps: &Deps, payload: Value) -> Result<Value, FunctionError> {
        handler(LambdaEvent::new(payload, Context::default()), deps).await
    }

    #[tokio::test]
    async fn a_kill_is_one_update_service_to_zero_and_nothing_else() {
        let update = mock!(Client::update_service)
            .match_requests(|r| {
                r.desired_count() == Some(0)
                    && r.cluster() == Some("fluidity")
                    && r.service() == Some("fluidity-server")
            })
            .then_output(|| {
                UpdateServiceOutput::builder()
                    .service(Service::builder().service_name("fluidity-server").status("ACTIVE").build())
                    .build()
            });
        let deps = deps(mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&update]));
        let answer = invoke(&deps, json!({})).await.unwrap();
        assert_eq!(answer, serde_json::to_value(KillResponse::KILLED).unwrap());
        assert_eq!(update.num_calls(), 1);
    }

    #[tokio::test]
    async fn invalid_requests_make_no_aws_call() {
        let deps = deps(mock_client!(aws_sdk_ecs, RuleMode::Sequential, []));
        for payload in [
            json!({"service": "x"}),
            json!({"service_name": ""}),
            json!({"cluster_name": "a b"}),
            json!({"service_name": "x".repeat(300)}),
            json!({"cluster_name": ["fluidity"]}),
            json!(17),
        ] {
            let err = invoke(&deps, payload.clone()).await.unwrap_err();
            assert_eq!(err.status(), 400, "{payload}: {err}");
            assert_eq!(err.error_type(), "InvalidRequest");
        }
    }
}
