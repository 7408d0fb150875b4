//! incident-playbook: closes the loop. A CloudWatch alarm's transition into ALARM starts the
//! playbook the target map ties it to; each step invokes an action by ARN, through its own
//! contract and guards; every change is verified against what the action left; a fix that did not
//! work runs the next step; when no step is left, one page with the evidence.
//!
//! - [`trigger`]: the events (an alarm's invocation or its EventBridge event, an ECS deployment's
//!   state change, the schedule), typed at the edge;
//! - [`playbooks`]: the target map's `playbooks` section;
//! - [`run`] and [`store`]: one incident's run, kept in the ledger under an optimistic lock;
//! - [`flow`]: the life of a run, top to bottom; [`verify`] (pure) and [`check`] (the describes):
//!   the verdicts; [`invoke`]: the actions' contract over Lambda Invoke; [`metrics`]: EMF;
//! - [`changes`]: the verdicts on the changes the backend's invocations made.

pub mod changes;
pub mod check;
pub mod flow;
pub mod invoke;
pub mod metrics;
pub mod playbooks;
pub mod run;
pub mod store;
pub mod trigger;
pub mod verify;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use incident_core::config::TargetConfig;
use incident_core::ledger::{Ledger, NewRecord};
use incident_core::state::State;
use incident_ledger::DynamoLedger;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shared::iam::Permission;
use shared::{ConfigError, FunctionError};

use crate::flow::News;
use crate::trigger::{AlarmState, Trigger};

/// What `main` builds once: the config, the clients, the ledger.
pub struct Deps {
    pub targets: TargetConfig,
    pub playbooks: playbooks::Playbooks,
    pub functions: invoke::Functions,
    pub lambda: shared::aws::LazyClient<aws_sdk_lambda::Client>,
    pub clients: check::Clients,
    pub store: store::Store,
    pub ledger: DynamoLedger,
    pub clock: Clock,
}

/// The time verdicts are judged at: the system's, or a test's, which it moves on instead of sleeping.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<Mutex<DateTime<Utc>>>>);

impl Clock {
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Self(Some(Arc::new(Mutex::new(at))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Some(at) => *at.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
            None => Utc::now(),
        }
    }

    /// Moves a fixed clock on (a system clock moves by itself).
    pub fn advance(&self, by: chrono::Duration) {
        if let Some(at) = &self.0 {
            *at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += by;
        }
    }
}

/// The target map and its playbooks, from `TARGETS_JSON` or `TARGETS_FILE`.
pub fn config_from_env() -> Result<(TargetConfig, playbooks::Playbooks), ConfigError> {
    let (json, source) = TargetConfig::source_from_env()?;
    let targets = TargetConfig::parse(&json, &source)?;
    let playbooks = playbooks::Playbooks::parse(&json, &source, &targets)?;
    Ok((targets, playbooks))
}

/// One event: an alarm's transition, a deployment's state change, or the sweep.
pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, FunctionError> {
    let trigger =
        trigger::parse(&event.payload).inspect_err(|err| tracing::warn!(code = err.code(), "rejected: {err}"))?;
    match trigger {
        Trigger::Alarm(change) if change.state == AlarmState::Alarm => flow::start(deps, &change).await,
        Trigger::Alarm(change) if change.state == AlarmState::Ok => {
            let news = News { alarm_ok: true, ..News::default() };
            // An OK older than the run's ALARM (a late redelivery) says nothing about this run.
            let concerns = |alarm: &str, run: &run::Run| alarm == change.name && change.at >= run.alarm_at;
            settle_open(deps, &news, concerns, |_| false).await
        }
        Trigger::Alarm(change) => Ok(json!({"outcome": "ignored",
            "message": format!("alarm {} went to {}: only a transition into ALARM starts a playbook", change.name, change.state.as_str())})),
        Trigger::Deployment(change) if change.completed() || change.failed() => {
            let outcome =
                if change.completed() { "COMPLETED".to_owned() } else { format!("FAILED: {}", change.reason) };
            let news = News { deployment: Some(outcome), alarm_ok: false };
            let id = &change.deployment_id;
            let run_waits = |_: &str, run: &run::Run| run.pending.as_ref().is_some_and(|p| deploys(&p.expectation, id));
            let change_is =
                |c: &store::Change| matches!(&c.after, State::EcsDeployment { deployment_id: Some(d), .. } if d == id);
            settle_open(deps, &news, run_waits, change_is).await
        }
        Trigger::Deployment(change) => {
            Ok(json!({"outcome": "ignored", "message": format!("{} of {}", change.event_name, change.deployment_id)}))
        }
        Trigger::Sweep => settle_open(deps, &News::default(), |_, _| true, |_| true).await,
    }
}

fn deploys(expectation: &verify::Expectation, id: &str) -> bool {
    matches!(expectation, verify::Expectation::EcsDeployment { deployment_id, .. } if deployment_id == id)
}

/// Settles every open run and pending change the event concerns (a run by its alarm or itself);
/// one's failure does not hold back the others.
async fn settle_open(
    deps: &Deps,
    news: &News,
    concerns: impl Fn(&str, &run::Run) -> bool,
    concerns_change: impl Fn(&store::Change) -> bool,
) -> Result<Value, FunctionError> {
    let unavailable = |err| deps.unavailable(err);
    let mut settled = Vec::new();
    for (incident, alarm) in deps.store.open().await.map_err(unavailable)? {
        // A run that cannot be read is settled (or reported) alone: it holds back no other.
        let answer = match deps.store.load(&incident).await {
            Ok(Some(run)) if !concerns(&alarm, &run) => continue,
            Ok(Some(run)) => flow::settle_run(deps, run, news).await,
            Ok(None) | Err(_) => flow::settle(deps, &incident, news).await,
        };
        settled.push(answer.unwrap_or_else(|err| json!({"incidentId": incident, "error": err.to_string()})));
    }
    let mut changes = Vec::new();
    for change in deps.store.changes().await.map_err(unavailable)?.iter().filter(|c| concerns_change(c)) {
        match changes::settle(deps, change, news).await {
            Ok(answer) => changes.push(answer),
            Err(err) => changes.push(json!({"change": change.key, "error": err.to_string()})),
        }
    }
    Ok(json!({"outcome": "settled", "runs": settled, "changes": changes}))
}

impl Deps {
    /// A ledger that cannot be read, as the function's error.
    pub fn unavailable(&self, err: incident_core::ledger::LedgerError) -> FunctionError {
        FunctionError::LedgerUnavailable { table: self.store.table.clone(), problem: err.problem().to_owned() }
    }

    /// A line in the incident's history, beside the actions' records (a failure is logged: the
    /// run's own item keeps the evidence).
    pub async fn record(&self, incident: &str, target: &str, outcome: &str, message: &str) {
        self.record_as("playbook", incident, target, outcome, message).await;
    }

    /// The same, under another name than `playbook` (`verify`, for a change's verdict).
    pub async fn record_as(&self, action: &str, incident: &str, target: &str, outcome: &str, message: &str) {
        let record = NewRecord {
            incident_id: incident.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            priority: String::new(),
            outcome: outcome.to_owned(),
            status_code: 200,
            message: message.to_owned(),
            before: None,
            after: None,
            details: json!({}),
            request_id: format!("playbook-{}", self.clock.now().timestamp_millis()),
            changed: false,
        };
        // Bounded as every ledger call on the way to a page is.
        let wait = flow::LEDGER_WAIT;
        match tokio::time::timeout(wait, self.ledger.record(&record)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(incident, "the history record was not written: {}", err.problem()),
            Err(_) => tracing::warn!(incident, "the history record was not written within {} s", wait.as_secs()),
        }
    }
}

/// Everything the playbook may do: invoke the actions, look at what they changed and at the alarms,
/// and keep its runs in the ledger. (Lambda itself, not this code, publishes a failed asynchronous
/// invocation to the operations topic with the function's role; the policy check knows that.)
pub fn permissions() -> Vec<Permission> {
    let mut all = invoke::permissions();
    all.extend(check::permissions());
    all.extend(store::permissions());
    all
}
