//! `incident-ledger`: the operator's command for the incident ledger (`LEDGER_TABLE`).
//!
//! - `pause [--target T] --reason R`: every mutating action (globally, or on T) answers 423 until resumed;
//! - `resume [--target T]`;
//! - `history INCIDENT`: what automation did for an incident, oldest first;
//! - `restore INCIDENT [--dry-run]`: puts back what scale_up raised for the incident (ECS desired
//!   count and autoscaling floor, RDS class, ElastiCache node type, replicas or nodes), each target
//!   only while it is as automation left it, and records what it did.

use serde_json::{Value, json};
use shared::FunctionError;
use shared::config::TargetConfig;
use shared::ledger::{Ledger, Record};
use shared::plan::Permission;

use incident_scale_up::ScaleChange;
use incident_scale_up::restore::{self, TargetRestore};

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Pause { target: Option<String>, by: String, reason: String },
    Resume { target: Option<String> },
    History { incident: String },
    Restore { incident: String, dry_run: bool },
}

/// Runs one command; its answer is what the command prints. `scale` (scale_up's clients and the
/// target map) is needed to restore only.
pub async fn run(
    command: &Command,
    ledger: &Ledger,
    scale: Option<&incident_scale_up::Deps>,
) -> Result<Value, FunctionError> {
    match command {
        Command::Pause { target, by, reason } => ledger.pause(target.as_deref(), by, reason).await,
        Command::Resume { target } => ledger.resume(target.as_deref()).await,
        Command::History { incident } => {
            let records = ledger.history(incident).await?;
            Ok(json!({"incidentId": incident, "records": records}))
        }
        Command::Restore { incident, dry_run } => {
            let scale =
                scale.ok_or_else(|| FunctionError::invalid("restore", "the target map is needed to restore"))?;
            restore_incident(incident, *dry_run, ledger, scale, &scale.targets).await
        }
    }
}

async fn restore_incident(
    incident: &str,
    dry_run: bool,
    ledger: &Ledger,
    scale: &incident_scale_up::Deps,
    targets: &TargetConfig,
) -> Result<Value, FunctionError> {
    let records = ledger.history(incident).await?;
    let mut answers = Vec::new();
    let mut failed = 0;
    for (restore, applied) in restore::restore(scale, targets, &records, dry_run).await {
        let mut answer = serde_json::to_value(&restore).unwrap_or(Value::Null);
        if let Err(err) = &applied {
            failed += 1;
            answer["error"] = err.to_json();
        }
        if let (TargetRestore::Restore { target, from, to, changes }, false) = (&restore, dry_run) {
            let record = restore_record(target, from, to, changes, &applied);
            ledger.record_change(incident, &record).await?;
        }
        answers.push(answer);
    }
    if failed > 0 {
        return Err(FunctionError::PartialFailure {
            what: "targets",
            total: answers.len(),
            summary: format!("{failed} not restored"),
            failures: answers.iter().filter(|a| a.get("error").is_some()).map(Value::to_string).collect(),
        });
    }
    Ok(json!({"incidentId": incident, "dryRun": dry_run, "targets": answers}))
}

/// What the ledger keeps of one target's restore, done or failed.
fn restore_record(
    target: &str,
    from: &Value,
    to: &Value,
    changes: &[ScaleChange],
    applied: &Result<(), FunctionError>,
) -> Record {
    Record {
        at: String::new(),
        action: "restore".to_owned(),
        target: target.to_owned(),
        priority: String::new(),
        outcome: applied.as_ref().map_or_else(|e| e.code().to_owned(), |()| "success".to_owned()),
        message: match applied {
            Ok(()) => format!("restored {target} from {from} to {to}"),
            Err(err) => format!("restoring {target} failed: {err}"),
        },
        before: from.clone(),
        after: if applied.is_ok() { to.clone() } else { from.clone() },
        details: json!({"changes": changes}),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// The command's permissions: the ledger's, and the restore's reads and changes.
pub fn permissions() -> Vec<Permission> {
    let table = shared::plan::arn("dynamodb", "table/${LEDGER_TABLE}");
    let mut declared: Vec<Permission> = ["dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"]
        .into_iter()
        .map(|action| Permission::new(action, table.clone()))
        .collect();
    declared.extend(restore::permissions());
    declared
}
