//! The incident ledger: one DynamoDB table (`LEDGER_TABLE`) that keeps automation from acting
//! twice, looping or acting while humans have taken over, and remembers what it did.
//!
//! - [`DynamoLedger`] is the table behind `incident_core`'s [`Ledger`](incident_core::ledger::Ledger)
//!   trait: every action's guard works on it ([`guard_from_env`] builds that guard in `main`);
//! - the operator's side: pause, resume, history ([`DynamoLedger::pause`], ...), and, with the
//!   `cli` feature, the `incident-ledger` command and the restore after an incident ([`restore`]).
//!
//! The item layout is in [`items`]; the semantics of idempotency are those of Powertools for AWS
//! Lambda (an in-progress key, a completed one replayed, a failed one removed), plus a key marked
//! as applying just before the first change, which a retry never takes before it expires.

pub mod items;
mod operator;
pub mod store;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod restore;
#[cfg(feature = "test-util")]
pub mod testing;

use std::sync::Arc;

use incident_core::guard::{Guard, GuardSettings};
use shared::ConfigError;
use shared::iam::{Permission, arn};
use shared::settings::Settings;
pub use store::DynamoLedger;

/// The guard of an action: on `LEDGER_TABLE` with its settings, or without a ledger (a local run:
/// no idempotency, budgets, pause or records, which init says).
pub fn guard_from_env(config: &aws_config::SdkConfig) -> Result<Guard, ConfigError> {
    let settings = Settings::from_env();
    let guard_settings = GuardSettings::from_settings(&settings)?;
    let Some(table) = settings.optional("LEDGER_TABLE") else {
        tracing::warn!("LEDGER_TABLE is not set: no idempotency, budgets, pause or incident records");
        return Ok(Guard::new(None, guard_settings));
    };
    let ledger = DynamoLedger { dynamodb: client(config), table };
    Ok(Guard::new(Some(Arc::new(ledger)), guard_settings))
}

/// The ledger's DynamoDB client: the function's, with retries that fit in one of the guard's rounds
/// (a share of `LEDGER_TIMEOUT_MS`). The SDK's own backoff starts at a second: a throttled counter
/// would outlast the round unanswered and read as an outage; this way its throttling comes back in
/// time to be retried by the round as contention.
pub fn client(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    let retry = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(std::time::Duration::from_millis(20))
        .with_max_backoff(std::time::Duration::from_millis(200));
    aws_sdk_dynamodb::Client::new(&config.to_builder().retry_config(retry).build())
}

/// Which of the ledger's items an action touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// notify_human: the incident's records (read, and its own written) and its idempotency key.
    Page,
    /// A mutating action: besides, the pauses and budget counters read, the counters spent.
    Mutate,
    /// restart_service: besides, its claims.
    MutateAndClaim,
}

/// What an action needs on the ledger's table, `${LEDGER_TABLE}` standing for its name, each call
/// on the items it touches only (`dynamodb:LeadingKeys`, the partition keys): a function may read
/// a pause but never write one, which only the operators' policy may. A transaction's parts are
/// authorised as PutItem, UpdateItem and DeleteItem.
pub fn permissions(uses: Use) -> Vec<Permission> {
    let (mutates, claims) = (uses != Use::Page, uses == Use::MutateAndClaim);
    let calls: [(&'static str, &[&str], bool); 6] = [
        ("dynamodb:Query", &["INCIDENT#*"], true),
        ("dynamodb:PutItem", &["IDEMPOTENCY#*", "INCIDENT#*"], true),
        ("dynamodb:DeleteItem", &["IDEMPOTENCY#*"], true),
        ("dynamodb:BatchGetItem", &["PAUSE", "BUDGET#*"], mutates),
        ("dynamodb:UpdateItem", &["IDEMPOTENCY#*", "BUDGET#*"], mutates),
        // A change's pending verification, written with its record.
        ("dynamodb:PutItem", &["VERIFY"], mutates),
    ];
    let claim_calls: &[(&'static str, &[&str], bool)] =
        &[("dynamodb:PutItem", &["CLAIM#*"], claims), ("dynamodb:DeleteItem", &["CLAIM#*"], claims)];
    let table = arn("dynamodb", "table/${LEDGER_TABLE}");
    calls
        .iter()
        .chain(claim_calls)
        .filter(|(_, _, needed)| *needed)
        .flat_map(|(action, keys, _)| keys.iter().map(move |key| (*action, *key)))
        .map(|(action, key)| {
            Permission::new(action, table.clone()).when("ForAllValues:StringLike", "dynamodb:LeadingKeys", key)
        })
        .collect()
}
