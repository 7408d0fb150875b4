//! `incident-ledger`: the operator's command for the incident ledger (`LEDGER_TABLE`).
//!
//! - `pause [--target T] --reason R`: every mutating action (globally, or on T) answers 423 until
//!   resumed; T must be a target of the map when one is given (`TARGETS_FILE`, `TARGETS_JSON`);
//! - `resume [--target T]`;
//! - `history INCIDENT`: what automation did for an incident, oldest first;
//! - `restore INCIDENT [--dry-run] [--now]`: puts back what scale_up raised for the incident, each
//!   target only while it is as automation left it, and records what it did (see [`restore`]).

use incident_core::config::TargetConfig;
use incident_core::ledger::NewRecord;
use serde_json::{Value, json};
use shared::FunctionError;
use shared::iam::{Permission, arn};

use crate::DynamoLedger;
use crate::restore::{self, Clients, Scaled, TargetRestore};

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Pause { target: Option<String>, by: String, reason: String },
    Resume { target: Option<String> },
    History { incident: String },
    Restore { incident: String, dry_run: bool, now: bool },
}

/// What a command may need besides the ledger: the target map (to check a pause's target, and to
/// restore), and the clients of a restore.
pub struct Context {
    pub targets: Option<TargetConfig>,
    pub clients: Option<Clients>,
}

/// Runs one command; its answer is what the command prints.
pub async fn run(command: &Command, ledger: &DynamoLedger, context: &Context) -> Result<Value, FunctionError> {
    match command {
        Command::Pause { target, by, reason } => {
            check_target(target.as_deref(), context.targets.as_ref())?;
            ledger.pause(target.as_deref(), by, reason).await
        }
        Command::Resume { target } => ledger.resume(target.as_deref()).await,
        Command::History { incident } => {
            let records = ledger.history(incident).await?;
            Ok(json!({"incidentId": incident, "records": records}))
        }
        Command::Restore { incident, dry_run, now } => {
            let (Some(targets), Some(clients)) = (&context.targets, &context.clients) else {
                return Err(FunctionError::invalid(
                    "restore",
                    "the target map is needed to restore (TARGETS_FILE or TARGETS_JSON)",
                ));
            };
            restore_incident(incident, (*dry_run, *now), ledger, targets, clients).await
        }
    }
}

/// A pause's target must be one of the map's: a typo would pause nothing.
fn check_target(target: Option<&str>, targets: Option<&TargetConfig>) -> Result<(), FunctionError> {
    match (target, targets) {
        (Some(name), Some(map)) => map.get(name).map(drop),
        (Some(name), None) => {
            eprintln!(
                "incident-ledger: WARNING: no target map (TARGETS_FILE or TARGETS_JSON), so {name:?} is not checked; \
                 a name that is not a target pauses nothing"
            );
            Ok(())
        }
        (None, _) => Ok(()),
    }
}

async fn restore_incident(
    incident: &str,
    (dry_run, now): (bool, bool),
    ledger: &DynamoLedger,
    targets: &TargetConfig,
    clients: &Clients,
) -> Result<Value, FunctionError> {
    let (scaled, legacy) = restore::scaled_targets(&ledger.history(incident).await?);
    let mut answers: Vec<Value> = legacy
        .iter()
        .map(|target| {
            json!({"status": "notRestored", "target": target,
        "reason": "its records were written before typed states (schema 1); restore it by hand from `history`"})
        })
        .collect();
    let mut failures = Vec::new();
    for one in &scaled {
        let (restore, applied) = restore::restore_target(clients, targets, one, dry_run, now).await;
        let mut answer = serde_json::to_value(&restore).unwrap_or(Value::Null);
        if let Err(err) = &applied {
            answer["error"] = err.to_json();
            failures.push(answer.to_string());
        }
        if let (Some(record), false) = (restore_record(incident, one, &restore, &applied), dry_run) {
            ledger.record_change(&record).await?;
        }
        answers.push(answer);
    }
    if !failures.is_empty() {
        let summary = format!("{} not restored", failures.len());
        return Err(FunctionError::PartialFailure { what: "targets", total: answers.len(), summary, failures });
    }
    Ok(json!({"incidentId": incident, "dryRun": dry_run, "targets": answers}))
}

/// What the ledger keeps of one target's restore, done or failed (nothing when there was none).
fn restore_record(
    incident: &str,
    scaled: &Scaled,
    restore: &TargetRestore,
    applied: &Result<(), FunctionError>,
) -> Option<NewRecord> {
    let TargetRestore::Restore { from, to, changes, when, .. } = restore else { return None };
    let target = &scaled.target;
    Some(NewRecord {
        incident_id: incident.to_owned(),
        action: "restore".to_owned(),
        target: target.clone(),
        priority: String::new(),
        outcome: applied.as_ref().map_or_else(|e| e.code().to_owned(), |()| "success".to_owned()),
        status_code: applied.as_ref().map_or_else(FunctionError::status, |()| 200),
        message: match applied {
            Ok(()) => format!("restored {target} to {} ({})", json!(to), json!(when)),
            Err(err) => format!("restoring {target} failed: {err}"),
        },
        before: Some(from.clone()),
        after: Some(if applied.is_ok() { to.clone() } else { from.clone() }),
        details: json!({"changes": changes, "when": when}),
        request_id: uuid::Uuid::new_v4().to_string(),
        // A restore undoes automation after the incident: nothing to verify.
        changed: false,
    })
}

/// The command's permissions: the ledger's, and the restore's reads and changes.
pub fn permissions() -> Vec<Permission> {
    let table = arn("dynamodb", "table/${LEDGER_TABLE}");
    let mut declared: Vec<Permission> = ["dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"]
        .into_iter()
        .map(|action| Permission::new(action, table.clone()))
        .collect();
    declared.extend(restore::permissions());
    declared
}
