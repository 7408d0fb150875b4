//! The target map's `playbooks` section: which alarm starts which steps on which target.
//!
//! ```json
//! "playbooks": {
//!   "api-errors": {
//!     "alarms": ["api-5xx-errors"],
//!     "target": "api", "priority": "high", "verifyWithinMinutes": 10,
//!     "steps": [{"action": "restart_service"}, {"action": "scale_up", "priority": "critical"}]
//!   }
//! }
//! ```
//!
//! An alarm maps to a playbook by its name (`alarms`), or by its tag `incident-playbook` naming the
//! playbook (CloudWatch puts the alarm's tags in the payload with `AlarmTagsPropagation`). Nothing
//! is guessed: an alarm that maps to nothing, to an unknown playbook or to two is refused. The page
//! to the on-call engineer ends every playbook; it is not a step.

use std::collections::BTreeMap;
use std::time::Duration;

use incident_core::config::{PLAYBOOKS, Target, TargetConfig};
use incident_core::contract::{ActionKind, Priority};
use serde::Deserialize;
use serde_json::{Map, Value};
use shared::ConfigError;

/// The alarm tag that names an alarm's playbook.
pub const PLAYBOOK_TAG: &str = "incident-playbook";
/// At most this many steps before the page.
pub const MAX_STEPS: usize = 5;
/// A verification window is 1 to this many minutes (a fix not seen within two hours is not one).
pub const MAX_VERIFY_MINUTES: u64 = 120;
/// The window when a playbook names none.
pub const DEFAULT_VERIFY_MINUTES: u64 = 10;

/// One validated playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playbook {
    pub name: String,
    pub target: String,
    pub priority: Priority,
    pub steps: Vec<Step>,
}

impl Playbook {
    /// What is left of a run's playbook that the target map no longer has: no steps, only the page.
    pub fn gone(run: &crate::run::Run) -> Self {
        Self { name: run.playbook.clone(), target: run.target.clone(), priority: Priority::High, steps: Vec::new() }
    }
}

/// One step: an action on the playbook's target, and how long its fix has to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: ActionKind,
    pub priority: Priority,
    pub verify_within: Duration,
    /// The action's own parameters (clear_cache's `mode`), passed as they are.
    pub params: Map<String, Value>,
}

/// Why an alarm has no playbook to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmapped {
    /// Neither its name nor its tag maps it.
    Nothing,
    /// Its tag names a playbook the map does not have.
    UnknownPlaybook(String),
    /// Its name maps to one playbook and its tag to another.
    Ambiguous { by_name: String, by_tag: String },
}

impl std::fmt::Display for Unmapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nothing => write!(
                f,
                "maps to no playbook: list it in a playbook's \"alarms\", or tag it {PLAYBOOK_TAG}=<playbook>"
            ),
            Self::UnknownPlaybook(name) => {
                write!(
                    f,
                    "is tagged {PLAYBOOK_TAG}={:?}, which no playbook in the target map is",
                    shared::text::shown(name)
                )
            }
            Self::Ambiguous { by_name, by_tag } => {
                write!(f, "maps to two playbooks: \"{by_name}\" by its name and \"{by_tag}\" by its tag; keep one")
            }
        }
    }
}

/// The validated `playbooks` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Playbooks {
    by_name: BTreeMap<String, Playbook>,
    /// Alarm name to playbook name.
    by_alarm: BTreeMap<String, String>,
}

impl Playbooks {
    /// The section of the map in `json` (none is an empty section), checked against its targets.
    pub fn parse(json: &str, source_name: &str, targets: &TargetConfig) -> Result<Self, ConfigError> {
        let invalid = |problem: String| ConfigError::Targets { source_name: source_name.to_owned(), problem };
        let mut map: Map<String, Value> = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        let Some(section) = map.remove(PLAYBOOKS) else { return Ok(Self::default()) };
        let raw: BTreeMap<String, RawPlaybook> = serde_path_to_error::deserialize(section).map_err(|err| {
            let path = err.path().to_string();
            invalid(format!("at `{PLAYBOOKS}.{path}`: {}", err.into_inner()))
        })?;
        let mut playbooks = Self::default();
        for (name, raw) in raw {
            let playbook = raw.validate(&name, targets).map_err(|p| invalid(format!("playbook \"{name}\": {p}")))?;
            for alarm in &raw.alarms {
                if let Some(other) = playbooks.by_alarm.insert(alarm.clone(), name.clone()) {
                    return Err(invalid(format!("playbooks \"{other}\" and \"{name}\" both list alarm {alarm:?}")));
                }
            }
            playbooks.by_name.insert(name, playbook);
        }
        Ok(playbooks)
    }

    /// The playbook an alarm of this name and these tags starts.
    pub fn for_alarm(&self, alarm: &str, tags: &BTreeMap<String, String>) -> Result<&Playbook, Unmapped> {
        let by_name = self.by_alarm.get(alarm);
        let by_tag = tags.get(PLAYBOOK_TAG);
        let name = match (by_name, by_tag) {
            (Some(a), Some(b)) if a != b => {
                return Err(Unmapped::Ambiguous { by_name: a.clone(), by_tag: b.clone() });
            }
            (Some(name), _) | (None, Some(name)) => name,
            (None, None) => return Err(Unmapped::Nothing),
        };
        self.by_name.get(name).ok_or_else(|| Unmapped::UnknownPlaybook(name.clone()))
    }

    pub fn get(&self, name: &str) -> Option<&Playbook> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPlaybook {
    #[serde(default)]
    alarms: Vec<String>,
    target: String,
    priority: Priority,
    #[serde(default)]
    verify_within_minutes: Option<u64>,
    steps: Vec<RawStep>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawStep {
    action: ActionKind,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    verify_within_minutes: Option<u64>,
    #[serde(default)]
    params: Map<String, Value>,
}

impl RawPlaybook {
    fn validate(&self, name: &str, targets: &TargetConfig) -> Result<Playbook, String> {
        let ok_name = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok_name {
            return Err("use 1-64 letters, digits, '-', '_' or '.' in a playbook's name".to_owned());
        }
        let target = targets.get(&self.target).map_err(|e| e.to_string())?;
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(format!("{} steps; give 1 to {MAX_STEPS} (the page ends every playbook)", self.steps.len()));
        }
        if let Some(alarm) = self.alarms.iter().find(|a| a.is_empty() || a.len() > 255) {
            return Err(format!("alarm name {alarm:?} must be 1 to 255 characters"));
        }
        let window = minutes("verifyWithinMinutes", self.verify_within_minutes.unwrap_or(DEFAULT_VERIFY_MINUTES))?;
        let steps = self.steps.iter().enumerate().map(|(i, step)| step.validate(i, target, self.priority, window));
        Ok(Playbook {
            name: name.to_owned(),
            target: self.target.clone(),
            priority: self.priority,
            steps: steps.collect::<Result<_, _>>()?,
        })
    }
}

impl RawStep {
    fn validate(&self, index: usize, target: &Target, priority: Priority, window: Duration) -> Result<Step, String> {
        let at = format!("steps[{index}] ({})", self.action.as_str());
        if !fits(self.action, target) {
            return Err(format!("{at}: {} cannot act on a {} target", self.action.as_str(), target.kind()));
        }
        if self.action != ActionKind::ClearCache && !self.params.is_empty() {
            return Err(format!("{at}: only clear_cache takes params"));
        }
        let verify_within = match self.verify_within_minutes {
            Some(m) => minutes(&format!("{at}.verifyWithinMinutes"), m)?,
            None => window,
        };
        let priority = self.priority.unwrap_or(priority);
        Ok(Step { action: self.action, priority, verify_within, params: self.params.clone() })
    }
}

fn minutes(field: &str, value: u64) -> Result<Duration, String> {
    if !(1..=MAX_VERIFY_MINUTES).contains(&value) {
        return Err(format!("{field} {value} must be 1 to {MAX_VERIFY_MINUTES}"));
    }
    Ok(Duration::from_secs(value * 60))
}

/// Whether an action can act on a target of this kind (the page is not a step).
fn fits(action: ActionKind, target: &Target) -> bool {
    match action {
        ActionKind::RestartService => matches!(target, Target::EcsService(_) | Target::Ec2Instances(_)),
        ActionKind::ScaleUp => match target {
            Target::EcsService(_) | Target::RdsInstance(_) => true,
            Target::Redis(redis) => redis.elasticache.is_some(),
            Target::Ec2Instances(_) => false,
        },
        ActionKind::ClearCache => matches!(target, Target::Redis(_)),
        ActionKind::RollbackService => matches!(target, Target::EcsService(_)),
        ActionKind::NotifyHuman => false,
    }
}

#[cfg(test)]
mod tests;
