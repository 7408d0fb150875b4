//! `incident-scale-up`: gives a struggling resource more capacity, never less.
//!
//! Each target kind is observed (describe calls only), planned by a pure function ([`plan`]), and
//! applied ([`change`]); everything else is the one driver's (`incident_core::driver`):
//! - `ecs_service`: desired count = the configured count for the priority, never below the current
//!   count and never above `maxCount`; an Application Auto Scaling target's MinCapacity (and
//!   MaxCapacity if lower) is raised first, so autoscaling doesn't undo the action.
//! - `rds_instance`: the configured class for the priority, with ApplyImmediately; never down the ladder.
//! - `redis` with `elasticache`: the next node type up the ladder, one more replica, or one more
//!   Memcached node, as the target says.

pub mod change;
pub mod plan;

use incident_core::action::{Action, Applied, Failure, Invocation, View, unsupported_target};
use incident_core::config::{EcsServiceTarget, ElastiCache, RdsInstanceTarget, RedisTarget, Target, TargetConfig};
use incident_core::contract::{ActionKind, ActionResponse, NoParams};
use incident_core::driver::Function;
use incident_core::state::Bounds;
use incident_scaling::observe::{self, ElastiCacheObserved, RdsObserved};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::FunctionError;
use shared::aws::LazyClient;

pub use change::{ScaleChange, permissions};
use plan::{CountPlan, ScaleDetails, ScalePlan, plan_ecs_count};

/// scale_up's clients and target map, built once per cold start in `main`.
pub struct ScaleUp {
    pub ecs: LazyClient<aws_sdk_ecs::Client>,
    pub autoscaling: LazyClient<aws_sdk_applicationautoscaling::Client>,
    pub rds: LazyClient<aws_sdk_rds::Client>,
    pub elasticache: LazyClient<aws_sdk_elasticache::Client>,
    pub targets: TargetConfig,
}

/// The function as `main` builds it: the action and its guard.
pub type Deps = Function<ScaleUp>;

pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<ActionResponse, FunctionError> {
    deps.handle(event).await
}

/// What scale_up reads of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// The desired count, and the autoscaling bounds (read only when the count will change).
    Ecs {
        desired: i32,
        bounds: Option<Bounds>,
    },
    Rds(RdsObserved),
    ElastiCache(ElastiCacheObserved),
}

/// A target scale_up can resize.
#[derive(Debug, Clone, Copy)]
enum Scalable<'a> {
    Ecs(&'a EcsServiceTarget),
    Rds(&'a RdsInstanceTarget),
    ElastiCache(&'a ElastiCache),
}

impl ScaleUp {
    fn target<'a>(&'a self, name: &str) -> Result<Scalable<'a>, FunctionError> {
        match self.targets.get(name)? {
            Target::EcsService(target) => Ok(Scalable::Ecs(target)),
            Target::RdsInstance(target) => Ok(Scalable::Rds(target)),
            Target::Redis(RedisTarget { elasticache: Some(spec), .. }) => Ok(Scalable::ElastiCache(spec)),
            Target::Redis(_) => Err(FunctionError::invalid(
                "target",
                format!(
                    "\"{name}\" is a redis target without elasticache settings; scale_up cannot resize a plain Redis"
                ),
            )),
            other @ Target::Ec2Instances(_) => {
                let supported = ["ecs_service", "rds_instance", "redis (ElastiCache)"];
                Err(unsupported_target(ActionKind::ScaleUp, name, other.kind(), &supported))
            }
        }
    }

    /// DescribeServices, and DescribeScalableTargets only when the count will change (a service
    /// that needs nothing costs one call).
    async fn observe_ecs(
        &self,
        target: &EcsServiceTarget,
        call: &Invocation<'_, NoParams>,
    ) -> Result<Observed, FunctionError> {
        let desired = observe::desired_count(&self.ecs, &target.cluster, &target.service).await?;
        if matches!(plan_ecs_count(desired, call.request.priority, target), CountPlan::NoChange { .. }) {
            return Ok(Observed::Ecs { desired, bounds: None });
        }
        let bounds = observe::scalable_bounds(&self.autoscaling, &target.cluster, &target.service).await?;
        Ok(Observed::Ecs { desired, bounds })
    }
}

impl Action for ScaleUp {
    const KIND: ActionKind = ActionKind::ScaleUp;
    type Params = NoParams;
    type Observed = Observed;
    type Change = ScaleChange;
    type Details = ScaleDetails;

    async fn observe(&self, call: &Invocation<'_, NoParams>, _view: View) -> Result<Observed, Failure<ScaleDetails>> {
        Ok(match self.target(call.target())? {
            Scalable::Ecs(target) => self.observe_ecs(target, call).await?,
            Scalable::Rds(target) => Observed::Rds(observe::rds(&self.rds, &target.instance_id).await?),
            Scalable::ElastiCache(spec) => Observed::ElastiCache(observe::elasticache(&self.elasticache, spec).await?),
        })
    }

    fn plan(&self, call: &Invocation<'_, NoParams>, observed: &Observed) -> Result<ScalePlan, FunctionError> {
        let priority = call.request.priority;
        match (self.target(call.target())?, observed) {
            (Scalable::Ecs(target), Observed::Ecs { desired, bounds }) => {
                Ok(plan::ecs(*desired, *bounds, priority, target))
            }
            (Scalable::Rds(target), Observed::Rds(rds)) => plan::rds(rds, priority, target),
            (Scalable::ElastiCache(spec), Observed::ElastiCache(cache)) => plan::elasticache(cache, spec),
            // observe read the same target an instant ago.
            _ => Err(FunctionError::Conflict("the target is not the kind it was when observed".to_owned())),
        }
    }

    /// The changes in order; a failure after the first is a failure after a change.
    async fn apply(
        &self,
        _call: &Invocation<'_, NoParams>,
        plan: &ScalePlan,
        _observed: Observed,
    ) -> Result<Applied<ScaleDetails>, Failure<ScaleDetails>> {
        let mut details = plan.details.clone();
        for (done, change) in plan.changes.iter().enumerate() {
            match change.send(self).await {
                Ok(Some(status)) => {
                    if let ScaleDetails::Rds(rds) = &mut details {
                        rds.status = Some(status);
                    }
                }
                Ok(None) => {}
                Err(error) if done == 0 => return Err(error.into()),
                Err(error) => return Err(Failure::after_change(error, details)),
            }
        }
        Ok(Applied::as_planned(plan, details))
    }
}
