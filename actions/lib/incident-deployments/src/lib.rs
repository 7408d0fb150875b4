//! What changed recently on an ECS service: its service deployments within a horizon, the
//! revisions each went from and to, and their task definitions. rollback_service plans from it;
//! notify_human names the likely cause of an incident with it.
//!
//! [`observe::recent`] makes the describe calls; [`recent`] holds what they found, and the pure
//! readings of it.

pub mod observe;
pub mod recent;

use std::time::Duration;

use shared::ConfigError;
use shared::settings::Settings;

pub use observe::{permissions, recent};
pub use recent::{Deployment, Primary, Recent, Revision, short_task_definition};

pub const DEFAULT_HORIZON_MINUTES: u64 = 120;
/// A week: ListServiceDeployments keeps 90 days, but a deployment older than a week is a human's
/// lead, not automation's.
const MAX_HORIZON_MINUTES: u64 = 7 * 24 * 60;

/// `DEPLOYMENT_HORIZON_MINUTES`, default 120, 1 to a week: how far back a deployment counts as the
/// likely cause of an incident (the one rollback_service rolls back, the one a page names).
pub fn horizon_from_env() -> Result<Duration, ConfigError> {
    let minutes =
        Settings::from_env().whole("DEPLOYMENT_HORIZON_MINUTES", DEFAULT_HORIZON_MINUTES, 1..=MAX_HORIZON_MINUTES)?;
    Ok(Duration::from_secs(minutes * 60))
}
