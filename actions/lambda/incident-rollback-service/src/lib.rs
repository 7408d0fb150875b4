//! `incident-rollback-service`: rolls an ECS service back to the revision that served before its
//! last deployment; observed, planned and applied here, the rest is the one driver's
//! (`incident_core::driver`).
//!
//! - A deployment still rolling out: `StopServiceDeployment(stopType=ROLLBACK)`, ECS's own rollback.
//! - A deployment completed within the horizon (`DEPLOYMENT_HORIZON_MINUTES`, default 120):
//!   `UpdateService(taskDefinition)` with the task definition of the revision that was serving when
//!   it started (not "revision − 1", which may be another bad build). It changes code in production,
//!   so it needs a dry run's plan token unless the target sets `rollbackUnattended`.
//! - Nothing within the horizon: 409 naming the last deployment and its age. A deployment that
//!   itself went back to an earlier revision (a rollback) is never rolled back.

pub mod plan;

use std::time::Duration;

use incident_core::action::{Action, Applied, ClaimSpec, Failure, Invocation, View, unsupported_target};
use incident_core::config::{EcsServiceTarget, Target, TargetConfig};
use incident_core::contract::{ActionKind, ActionResponse, NoParams};
use incident_core::driver::Function;
use incident_core::plan::Change;
use incident_deployments::Recent;
use incident_deployments::observe::on_service_and;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::FunctionError;
use shared::aws::LazyClient;
use shared::ecs::{self, ServiceRef};
use shared::iam::Permission;

pub use incident_deployments::horizon_from_env;
pub use plan::{RollbackChange, RollbackDetails, RollbackPlan};

/// rollback_service's client, target map and horizon, built once per cold start in `main`.
pub struct Rollback {
    pub ecs: LazyClient<aws_sdk_ecs::Client>,
    pub targets: TargetConfig,
    /// `DEPLOYMENT_HORIZON_MINUTES`: how far back a deployment counts as the likely cause.
    pub horizon: Duration,
}

/// The function as `main` builds it: the action and its guard.
pub type Deps = Function<Rollback>;

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    deps.handle(event).await
}

impl Rollback {
    fn target(&self, name: &str) -> Result<&EcsServiceTarget, FunctionError> {
        match self.targets.get(name)? {
            Target::EcsService(target) => Ok(target),
            other => Err(unsupported_target(ActionKind::RollbackService, name, other.kind(), &["ecs_service"])),
        }
    }
}

impl Action for Rollback {
    const KIND: ActionKind = ActionKind::RollbackService;
    type Params = NoParams;
    type Observed = Recent;
    type Change = RollbackChange;
    type Details = RollbackDetails;

    /// No claim (two rollbacks at once go back to the same task definition, and a third sees them as
    /// returns). The target's kind is checked here, before the ledger is touched: a target it cannot
    /// handle is a 400 with no call at all.
    fn claim(&self, call: &Invocation<'_, NoParams>) -> Result<Option<ClaimSpec>, FunctionError> {
        self.target(call.target()).map(|_| None)
    }

    async fn observe(&self, call: &Invocation<'_, NoParams>, _view: View) -> Result<Recent, Failure<RollbackDetails>> {
        let target = self.target(call.target())?;
        let service = ServiceRef::new(&target.cluster, &target.service);
        Ok(incident_deployments::recent(&self.ecs, &service, call.now, self.horizon).await?)
    }

    fn plan(&self, call: &Invocation<'_, NoParams>, recent: &Recent) -> Result<RollbackPlan, FunctionError> {
        plan::rollback(recent, self.target(call.target())?, call.now)
    }

    fn approval_needed(&self, call: &Invocation<'_, NoParams>, plan: &RollbackPlan) -> Option<String> {
        match self.target(call.target()) {
            Ok(target) => plan::approval_needed(plan, target),
            // Never reached (plan read the same target), and never open if it were.
            Err(err) => Some(format!("the target could not be read ({err})")),
        }
    }

    async fn apply(
        &self,
        _call: &Invocation<'_, NoParams>,
        plan: &RollbackPlan,
        _recent: Recent,
    ) -> Result<Applied<RollbackDetails>, Failure<RollbackDetails>> {
        let service = ServiceRef::new(&plan.details.cluster, &plan.details.service);
        match plan.changes.first() {
            Some(RollbackChange::StopServiceDeployment { service_deployment_arn, .. }) => {
                stop_with_rollback(&self.ecs, service_deployment_arn).await?;
                Ok(plan::rolled_back(plan, None))
            }
            Some(RollbackChange::UpdateService { task_definition, .. }) => {
                let updated = ecs::set_task_definition(&self.ecs, &service, task_definition).await?;
                let primary = ecs::primary_deployment(&updated)
                    .and_then(|d| Some((d.id()?.to_owned(), d.task_definition().map(str::to_owned))));
                Ok(plan::rolled_back(plan, primary))
            }
            // Not reached: the driver answers a plan without changes itself.
            None => Ok(Applied::as_planned(plan, plan.details.clone())),
        }
    }
}

/// StopServiceDeployment with rollback. A deployment that finished in the meantime cannot be
/// stopped (ConflictException): nothing was changed, and a new request plans from its end.
async fn stop_with_rollback(client: &aws_sdk_ecs::Client, arn: &str) -> Result<(), FunctionError> {
    use aws_sdk_ecs::operation::stop_service_deployment::StopServiceDeploymentError;
    use aws_sdk_ecs::types::StopServiceDeploymentStopType;
    let stop = client.stop_service_deployment().service_deployment_arn(arn);
    match stop.stop_type(StopServiceDeploymentStopType::Rollback).send().await {
        Ok(_) => Ok(()),
        Err(err) => match err.as_service_error() {
            Some(StopServiceDeploymentError::ConflictException(_)) => Err(FunctionError::Conflict(format!(
                "deployment {arn} finished before it could be stopped; nothing was changed: ask again to plan \
                 from its end"
            ))),
            _ => Err(FunctionError::aws("ECS StopServiceDeployment", &err)),
        },
    }
}

/// The permissions of rollback_service's observe steps and changes, and the ledger's.
pub fn permissions() -> Vec<Permission> {
    let (cluster, service) = ("${cluster}", "${service}");
    let update = RollbackChange::UpdateService {
        cluster: cluster.into(),
        service: service.into(),
        task_definition: "${taskDefinition}".into(),
    };
    let mut declared = incident_deployments::permissions(cluster, service);
    // StopServiceDeployment, like the describes, lists the service and its deployments as resources.
    let stop = on_service_and("ecs:StopServiceDeployment", cluster, service, "service-deployment");
    declared.extend(stop.into_iter().chain(update.permission()));
    declared.extend(incident_ledger::permissions(incident_ledger::Use::Mutate));
    declared
}
