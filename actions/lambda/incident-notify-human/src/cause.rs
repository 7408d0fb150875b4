//! The likely cause a page names: the target's ECS deployments within the horizon (read as
//! rollback_service reads them, incident-deployments), e.g. "deployment 4Xb… of api started 11 min
//! before the incident (task definition api:41 → api:42)". Read within [`CAUSE_BUDGET`] and never a
//! reason not to page: a cause that cannot be read is said so in the page.

use std::time::Duration;

use chrono::{DateTime, Utc};
use incident_core::config::{Target, TargetConfig};
use shared::aws::{LazyClient, SdkConfig};
use shared::ecs::ServiceRef;
use shared::iam::Permission;
use shared::settings::Settings;

/// The longest a page waits for its likely cause.
pub const CAUSE_BUDGET: Duration = Duration::from_millis(1000);
/// The longest error text a page repeats.
const MAX_PROBLEM_CHARS: usize = 200;

/// What finding a cause needs: the target map (which names the services) and ECS.
pub struct Causes {
    pub ecs: LazyClient<aws_sdk_ecs::Client>,
    pub targets: TargetConfig,
    /// `DEPLOYMENT_HORIZON_MINUTES`: how far back a deployment counts.
    pub horizon: Duration,
}

impl Causes {
    /// With a target map in the environment (`TARGETS_JSON` or `TARGETS_FILE`), what finding causes
    /// needs; without one, `None`. A map or horizon that cannot be read is logged and pages go out
    /// without a cause: a page never waits on, or fails for, its extras.
    pub fn from_env(config: &SdkConfig) -> Option<Self> {
        let settings = Settings::from_env();
        if settings.optional("TARGETS_JSON").is_none() && settings.optional("TARGETS_FILE").is_none() {
            return None;
        }
        let read = TargetConfig::from_env().and_then(|t| Ok((t, incident_deployments::horizon_from_env()?)));
        match read {
            Ok((targets, horizon)) => {
                Some(Self { ecs: LazyClient::new(config, aws_sdk_ecs::Client::new), targets, horizon })
            }
            Err(err) => {
                tracing::error!("pages will name no likely cause: {err}");
                None
            }
        }
    }

    /// The likely cause of an incident on `target` paged at `now`; `None` when the page names no
    /// ECS service of the map (nothing to look at).
    pub async fn likely(&self, target: Option<&str>, now: DateTime<Utc>) -> Option<String> {
        let Ok(Target::EcsService(t)) = self.targets.get(target?) else { return None };
        let service = ServiceRef::new(&t.cluster, &t.service);
        let read = incident_deployments::recent(&self.ecs, &service, now, self.horizon);
        Some(match tokio::time::timeout(CAUSE_BUDGET, read).await {
            Ok(Ok(recent)) => recent.likely_cause(now).unwrap_or_else(|| {
                format!(
                    "no deployment of {}/{} in the last {} min: likely not a deployment",
                    t.cluster,
                    t.service,
                    self.horizon.as_secs() / 60
                )
            }),
            Ok(Err(err)) => format!("not read ({})", shared::text::truncate(&err.to_string(), MAX_PROBLEM_CHARS)),
            Err(_) => format!("not read (ECS did not answer within {} ms)", CAUSE_BUDGET.as_millis()),
        })
    }
}

/// What reading a target's deployments needs, `${cluster}` and `${service}` standing for the map's.
pub fn permissions() -> Vec<Permission> {
    incident_deployments::permissions("${cluster}", "${service}")
}
