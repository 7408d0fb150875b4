//! `fluidity-wake`: starts the Fluidity ECS service when the agent needs it.
//!
//! The state table: desired 0 and running 0 → desired 1, `waking`; desired ≥ 1 and
//! running 0 → no change, `starting`; desired ≥ 1 and running > 0 → no change, `already_running`.
//! Wake never raises the desired count above 1 (repeated agent starts must not scale out). When a
//! task is running, the answer carries its public and private IP, so the agent can connect at once.

use chrono::{SecondsFormat, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::FunctionError;
use shared::aws::LazyClient;
use shared::ecs::{self, ServiceOverrides, ServiceRef, ServiceScope};
use shared::frame::run_lifecycle;

/// How long a Fargate task takes to start, for `estimatedStartTime`.
pub const ESTIMATED_START_SECONDS: i64 = 90;

/// Built once per cold start in `main`.
pub struct Deps {
    pub ecs: aws_sdk_ecs::Client,
    pub ec2: LazyClient<aws_sdk_ec2::Client>,
    /// From `ECS_CLUSTER_NAME` and `ECS_SERVICE_NAME`.
    /// The function's own service, and those a request may name instead.
    pub services: ServiceScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WakeStatus {
    Waking,
    Starting,
    AlreadyRunning,
}

/// What wake does for the service's current counts: the status, and the desired count to set, if any.
pub fn plan_wake(desired: i32, running: i32) -> (WakeStatus, Option<i32>) {
    match (desired, running) {
        // A stopped service; or one still stopping after a kill, which the agent now needs again.
        (d, _) if d <= 0 => (WakeStatus::Waking, Some(1)),
        (_, 0) => (WakeStatus::Starting, None),
        _ => (WakeStatus::AlreadyRunning, None),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WakeResponse {
    pub status: WakeStatus,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    /// RFC 3339: now + 90 s while starting; now when already running.
    pub estimated_start_time: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
}

/// wake's permissions: the service, its tasks, and the task's network interface.
pub fn permissions() -> Vec<shared::iam::Permission> {
    let (cluster, service) = ("${ECS_CLUSTER_NAME}", "${ECS_SERVICE_NAME}");
    vec![
        ecs::describe_services_permission(cluster, service),
        ecs::update_service_permission(cluster, service),
        ecs::list_tasks_permission(cluster),
        ecs::describe_tasks_permission(cluster),
        // DescribeNetworkInterfaces has no resource-level permissions.
        shared::iam::Permission::any("ec2:DescribeNetworkInterfaces"),
    ]
}

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, FunctionError> {
    run_lifecycle(event, "wake", |request: ServiceOverrides, _source| wake(request, deps)).await
}

async fn wake(request: ServiceOverrides, deps: &Deps) -> Result<WakeResponse, FunctionError> {
    let target = deps.services.resolve(&request)?;
    let service = ecs::describe_service(&deps.ecs, &target).await?;
    let (desired, running, pending) = (service.desired_count(), service.running_count(), service.pending_count());
    let (status, set_desired) = plan_wake(desired, running);
    let now = Utc::now();
    let mut response = WakeResponse {
        status,
        desired_count: desired,
        running_count: running,
        pending_count: pending,
        estimated_start_time: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        message: String::new(),
        public_ip: None,
        private_ip: None,
    };
    if status != WakeStatus::AlreadyRunning {
        let eta = now + chrono::Duration::seconds(ESTIMATED_START_SECONDS);
        response.estimated_start_time = eta.to_rfc3339_opts(SecondsFormat::Secs, true);
    }
    match status {
        WakeStatus::Waking => {
            let updated = ecs::set_desired_count(&deps.ecs, &target, set_desired.unwrap_or(1)).await?;
            response.desired_count = updated.desired_count();
            response.message = "Service wake initiated. ECS task starting (estimated 60-90 seconds)".to_owned();
        }
        WakeStatus::Starting => {
            response.message = "Service is starting. ECS task starting (estimated 60-90 seconds)".to_owned();
        }
        WakeStatus::AlreadyRunning => {
            // The address is a convenience: failing to read it must not fail the wake.
            match task_address(deps, &target).await {
                Ok(Some((public_ip, private_ip))) => {
                    response.public_ip = public_ip;
                    response.private_ip = private_ip;
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(code = err.code(), "could not read the task's address: {err}"),
            }
            response.message = match &response.public_ip {
                Some(ip) => format!("Service is already running at {ip}"),
                None => "Service is already running".to_owned(),
            };
        }
    }
    tracing::info!(
        cluster = %target.cluster,
        service = %target.service,
        status = ?status,
        desiredCount = response.desired_count,
        runningCount = running,
        "wake"
    );
    Ok(response)
}

/// The first running task's (public IP, private IP): ListTasks → DescribeTasks → ENI → DescribeNetworkInterfaces.
async fn task_address(
    deps: &Deps,
    target: &ServiceRef,
) -> Result<Option<(Option<String>, Option<String>)>, FunctionError> {
    let tasks = ecs::running_service_tasks(&deps.ecs, target).await?;
    let Some((eni, private_ip)) = tasks.iter().filter(|t| t.last_status() == Some("RUNNING")).find_map(ecs::task_eni)
    else {
        return Ok(None);
    };
    let public_ip = public_ip(&deps.ec2, &eni).await?;
    Ok(Some((public_ip, private_ip)))
}

/// The public IPv4 address of a network interface, if it has one (EC2 DescribeNetworkInterfaces).
pub async fn public_ip(ec2: &aws_sdk_ec2::Client, eni: &str) -> Result<Option<String>, FunctionError> {
    let out = ec2
        .describe_network_interfaces()
        .network_interface_ids(eni)
        .send()
        .await
        .map_err(|err| FunctionError::aws("EC2 DescribeNetworkInterfaces", &err))?;
    Ok(out.network_interfaces().first().and_then(|n| n.association()).and_then(|a| a.public_ip()).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_state_table() {
        assert_eq!(plan_wake(0, 0), (WakeStatus::Waking, Some(1)));
        assert_eq!(plan_wake(1, 0), (WakeStatus::Starting, None));
        assert_eq!(plan_wake(1, 1), (WakeStatus::AlreadyRunning, None));
    }

    #[test]
    fn wake_never_sets_more_than_one() {
        for desired in 0..5 {
            for running in 0..5 {
                let (_, set) = plan_wake(desired, running);
                assert!(set.is_none_or(|n| n == 1), "desired {desired}, running {running}: {set:?}");
            }
        }
        assert_eq!(plan_wake(3, 0), (WakeStatus::Starting, None), "never touches a service already asked to run");
    }

    #[test]
    fn a_service_still_stopping_after_a_kill_is_woken() {
        assert_eq!(plan_wake(0, 1), (WakeStatus::Waking, Some(1)));
    }
}
