//! `incident-restart-service`: restarts what a target names, observed, planned and applied; the rest
//! is the one driver's (`incident_core::driver`).
//!
//! - `ecs_service`: `UpdateService(forceNewDeployment=true)`, a rolling restart, unless the primary
//!   deployment is already rolling out and started less than the cooldown ago (409).
//! - `ec2_instances`: `RebootInstances` for the configured instances that are running; the others
//!   are reported as skipped.
//!
//! Concurrent restarts of one target (a burst of alerts) restart it once: each invocation first
//! takes the target's claim in the incident ledger, held for the cooldown, which one of them wins.

pub mod plan;

use std::time::Duration;

use incident_core::action::{Action, Applied, ClaimSpec, Failure, Invocation, View, unsupported_target};
use incident_core::config::{Target, TargetConfig};
use incident_core::contract::{ActionKind, ActionResponse, NoParams};
use incident_core::driver::Function;
use incident_core::guard::Guard;
use incident_core::plan::Change;
use incident_core::state::State;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::aws::LazyClient;
use shared::ecs::{self, ServiceRef};
use shared::iam::Permission;
use shared::settings::Settings;
use shared::{ConfigError, FunctionError};

pub use plan::{DeploymentView, EcsObserved, RestartChange, RestartDetails, RestartPlan, rollout_in_progress};

pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);
const MAX_COOLDOWN_SECONDS: u64 = 24 * 3600;

/// restart_service's clients, target map and cooldown, built once per cold start in `main`.
pub struct Restart {
    pub ecs: LazyClient<aws_sdk_ecs::Client>,
    pub ec2: LazyClient<aws_sdk_ec2::Client>,
    pub targets: TargetConfig,
    /// `RESTART_COOLDOWN_SECONDS`: a rollout or a claim younger than this is not restarted again.
    /// 0 turns both guards off.
    pub cooldown: Duration,
}

/// `RESTART_COOLDOWN_SECONDS`, default 300, at most a day.
pub fn cooldown_from_env() -> Result<Duration, ConfigError> {
    let seconds =
        Settings::from_env().whole("RESTART_COOLDOWN_SECONDS", DEFAULT_COOLDOWN.as_secs(), 0..=MAX_COOLDOWN_SECONDS)?;
    Ok(Duration::from_secs(seconds))
}

/// A cooldown needs the incident ledger, which keeps the claims that make it hold across
/// concurrent invocations.
pub fn check_claims(cooldown: Duration, guard: &Guard) -> Result<(), ConfigError> {
    if cooldown.is_zero() || guard.ledger().is_some() {
        return Ok(());
    }
    Err(ConfigError::InvalidEnv {
        name: "RESTART_COOLDOWN_SECONDS",
        problem: format!(
            "{} s needs the incident ledger (LEDGER_TABLE), which keeps the restart claim that holds the \
             cooldown across concurrent invocations; set LEDGER_TABLE (the actions stack does), or \
             RESTART_COOLDOWN_SECONDS=0 to restart without a cooldown",
            cooldown.as_secs()
        ),
    })
}

/// The function as `main` builds it: the action and its guard.
pub type Deps = Function<Restart>;

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    deps.handle(event).await
}

/// What restart_service reads of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Ecs(EcsObserved),
    /// Each configured instance's state, in the configured order.
    Ec2(Vec<(String, String)>),
}

impl Restart {
    fn target<'a>(&'a self, name: &str) -> Result<&'a Target, FunctionError> {
        match self.targets.get(name)? {
            target @ (Target::EcsService(_) | Target::Ec2Instances(_)) => Ok(target),
            other => Err(unsupported_target(
                ActionKind::RestartService,
                name,
                other.kind(),
                &["ecs_service", "ec2_instances"],
            )),
        }
    }

    async fn observe_ecs(&self, service: &ServiceRef) -> Result<Observed, FunctionError> {
        let service = ecs::describe_service(&self.ecs, service).await?;
        Ok(Observed::Ecs(EcsObserved {
            deployments: service.deployments().iter().map(DeploymentView::from).collect(),
            task_definition: service.task_definition().map(str::to_owned),
        }))
    }

    async fn observe_ec2(&self, ids: &[String]) -> Result<Observed, FunctionError> {
        let out =
            self.ec2.describe_instances().set_instance_ids(Some(ids.to_vec())).send().await.map_err(|err| match err
                .as_service_error()
                .and_then(|e| e.meta().code())
            {
                Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed") => FunctionError::ResourceNotFound {
                    kind: "EC2 instance",
                    id: err.as_service_error().and_then(|e| e.meta().message()).unwrap_or_default().to_owned(),
                },
                _ => FunctionError::aws("EC2 DescribeInstances", &err),
            })?;
        let instances = out.reservations().iter().flat_map(|r| r.instances());
        let mut states: Vec<(String, String)> = instances
            .map(|i| {
                let state = i.state().and_then(|s| s.name()).map_or("unknown", |n| n.as_str());
                (i.instance_id().unwrap_or_default().to_owned(), state.to_owned())
            })
            .collect();
        // Keep the configured order, so reports read the same way every time.
        states.sort_by_key(|(id, _)| ids.iter().position(|c| c == id));
        Ok(Observed::Ec2(states))
    }
}

impl Action for Restart {
    const KIND: ActionKind = ActionKind::RestartService;
    type Params = NoParams;
    type Observed = Observed;
    type Change = RestartChange;
    type Details = RestartDetails;

    /// The target's claim, held for the cooldown: describe-then-update alone is not atomic (twenty
    /// invocations can all see a quiet service before any updates it), one conditional write is.
    fn claim(&self, call: &Invocation<'_, NoParams>) -> Result<Option<ClaimSpec>, FunctionError> {
        if self.cooldown.is_zero() {
            return Ok(None);
        }
        let (resource, what) = match self.target(call.target())? {
            Target::EcsService(t) => (
                format!("restart/{}/{}", t.cluster, t.service),
                format!("a restart of ECS service {}/{}", t.cluster, t.service),
            ),
            Target::Ec2Instances(t) => (
                format!("reboot/{}", t.instance_ids.join(",")),
                format!("a reboot of EC2 instances {}", t.instance_ids.join(", ")),
            ),
            _ => return Ok(None),
        };
        Ok(Some(ClaimSpec { resource, what, hold: self.cooldown }))
    }

    async fn observe(&self, call: &Invocation<'_, NoParams>, _view: View) -> Result<Observed, Failure<RestartDetails>> {
        Ok(match self.target(call.target())? {
            Target::EcsService(t) => self.observe_ecs(&ServiceRef::new(&t.cluster, &t.service)).await?,
            Target::Ec2Instances(t) => self.observe_ec2(&t.instance_ids).await?,
            _ => return Err(FunctionError::Conflict("not a restartable target".to_owned()).into()),
        })
    }

    fn plan(&self, call: &Invocation<'_, NoParams>, observed: &Observed) -> Result<RestartPlan, FunctionError> {
        match (self.target(call.target())?, observed) {
            (Target::EcsService(t), Observed::Ecs(ecs)) => plan::ecs(ecs, t, call.now, self.cooldown),
            (Target::Ec2Instances(t), Observed::Ec2(states)) => plan::ec2(states, t),
            // observe read the same target an instant ago.
            _ => Err(FunctionError::Conflict("the target is not the kind it was when observed".to_owned())),
        }
    }

    async fn apply(
        &self,
        _call: &Invocation<'_, NoParams>,
        plan: &RestartPlan,
        _observed: Observed,
    ) -> Result<Applied<RestartDetails>, Failure<RestartDetails>> {
        match plan.changes.first() {
            Some(RestartChange::ForceNewDeployment { cluster, service, .. }) => {
                let updated = ecs::force_new_deployment(&self.ecs, &ServiceRef::new(cluster, service)).await?;
                Ok(plan::restarted(plan, &updated))
            }
            Some(RestartChange::RebootInstances { instance_ids }) => {
                let reboot = self.ec2.reboot_instances().set_instance_ids(Some(instance_ids.clone()));
                reboot.send().await.map_err(|err| FunctionError::aws("EC2 RebootInstances", &err))?;
                Ok(plan::rebooted(plan))
            }
            // Not reached: the driver answers a plan without changes itself.
            None => Ok(Applied::as_planned(plan, plan.details.clone())),
        }
    }
}

/// The permissions of restart_service's observe steps and changes, and the ledger's (which keeps
/// the claims).
pub fn permissions() -> Vec<Permission> {
    let (cluster, service) = ("${cluster}", "${service}");
    let restart = RestartChange::ForceNewDeployment {
        cluster: cluster.into(),
        service: service.into(),
        force_new_deployment: true,
    };
    let reboot = RestartChange::RebootInstances { instance_ids: vec!["${instanceId}".into()] };
    let mut declared = vec![
        ecs::describe_services_permission(cluster, service),
        // DescribeInstances has no resource-level permissions.
        Permission::any("ec2:DescribeInstances"),
    ];
    declared.extend([restart, reboot].iter().filter_map(Change::permission));
    declared.extend(incident_ledger::permissions(incident_ledger::Use::MutateAndClaim));
    declared
}

/// The state restart_service leaves an ECS service in: its new primary deployment.
pub fn deployment_state(deployment_id: Option<&str>, task_definition: Option<&str>) -> State {
    State::EcsDeployment {
        deployment_id: deployment_id.map(str::to_owned),
        task_definition: task_definition.map(str::to_owned),
    }
}
