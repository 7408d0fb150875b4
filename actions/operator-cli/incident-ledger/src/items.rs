//! The table's items: keys, attributes, and a record read back.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a record | `INCIDENT#<incidentId>` | `REC#<epoch ms, 13 digits>#<request id>` |
//! | an idempotency key | `IDEMPOTENCY#<sha256>` | `IDEMPOTENCY` |
//! | a budget counter | `BUDGET#<scope>` | `WINDOW#<window start, epoch s>` |
//! | a pause | `PAUSE` | `GLOBAL` or `TARGET#<target>` |
//! | a claim | `CLAIM#<resource>` | `CLAIM` |
//! | a change's pending verification | `VERIFY` | `<incidentId>#<request id>` |
//!
//! `expiresAt` (epoch seconds) is the table's TTL attribute.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use incident_core::ledger::{NewRecord, Record};
use incident_core::state::{SCHEMA, State};
use serde_json::Value;

pub type Item = HashMap<String, AttributeValue>;

/// Records are kept this long (the table's TTL removes them after).
pub const RECORD_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// At most this much of an answer's details goes into a record (an item is at most 400 KB).
const MAX_DETAILS_BYTES: usize = 16 * 1024;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub fn text(item: &Item, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

pub fn number(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn idempotency_key(hash: &str) -> Item {
    key(format!("IDEMPOTENCY#{hash}"), "IDEMPOTENCY")
}

pub fn claim_key(resource: &str) -> Item {
    key(format!("CLAIM#{resource}"), "CLAIM")
}

/// A pause's sort key: the global one, or one target's.
pub fn pause_sk(target: Option<&str>) -> String {
    target.map_or_else(|| "GLOBAL".to_owned(), |t| format!("TARGET#{t}"))
}

/// A record as its item, written now (its `at` is the time of writing), kept for [`RECORD_TTL`].
pub fn record_item(record: &NewRecord) -> Item {
    let now = Utc::now();
    let details = shared::text::prefix_bytes(&record.details.to_string(), MAX_DETAILS_BYTES).to_owned();
    let mut item = HashMap::from([
        ("pk".to_owned(), s(format!("INCIDENT#{}", record.incident_id))),
        ("sk".to_owned(), s(format!("REC#{:013}#{}", now.timestamp_millis(), record.request_id))),
        ("schema".to_owned(), n(SCHEMA)),
        ("at".to_owned(), s(rfc3339(now))),
        ("action".to_owned(), s(&record.action)),
        ("target".to_owned(), s(&record.target)),
        ("priority".to_owned(), s(&record.priority)),
        ("outcome".to_owned(), s(&record.outcome)),
        ("statusCode".to_owned(), n(record.status_code)),
        ("message".to_owned(), s(&record.message)),
        ("details".to_owned(), s(details)),
        ("requestId".to_owned(), s(&record.request_id)),
        ("expiresAt".to_owned(), n(now.timestamp() + i64::try_from(RECORD_TTL.as_secs()).unwrap_or(0))),
    ]);
    for (name, state) in [("before", &record.before), ("after", &record.after)] {
        if let Some(state) = state {
            item.insert(name.to_owned(), s(serde_json::to_string(state).unwrap_or_default()));
        }
    }
    item
}

/// The partition of the changes' pending verifications, which incident-playbook's sweep reads.
pub const VERIFY: &str = "VERIFY";

/// A changed record's pending verification: what the change left (`after`, typed), on which
/// target, since when. incident-playbook judges it against the resource and takes it out.
pub fn verification_item(record: &NewRecord) -> Option<Item> {
    let after = record.after.as_ref().filter(|_| record.changed)?;
    let now = Utc::now();
    let mut item = key(VERIFY, format!("{}#{}", record.incident_id, record.request_id));
    item.insert("incidentId".to_owned(), s(&record.incident_id));
    item.insert("action".to_owned(), s(&record.action));
    item.insert("target".to_owned(), s(&record.target));
    item.insert("priority".to_owned(), s(&record.priority));
    item.insert("after".to_owned(), s(serde_json::to_string(after).unwrap_or_default()));
    item.insert("at".to_owned(), s(rfc3339(now)));
    item.insert("expiresAt".to_owned(), n(now.timestamp() + i64::try_from(RECORD_TTL.as_secs()).unwrap_or(0)));
    Some(item)
}

/// A record read back. Schema 2 states are typed; a schema 1 record's (written before typed
/// states) are not read, and the restore leaves its targets alone.
pub fn record_of(item: &Item) -> Record {
    let schema = u32::try_from(number(item, "schema")).unwrap_or(0).max(1);
    let state = |name: &str| match schema {
        SCHEMA => serde_json::from_str::<State>(&text(item, name)).ok(),
        _ => None,
    };
    Record {
        schema,
        at: text(item, "at"),
        action: text(item, "action"),
        target: text(item, "target"),
        priority: text(item, "priority"),
        outcome: text(item, "outcome"),
        message: text(item, "message"),
        before: state("before"),
        after: state("after"),
        details: serde_json::from_str(&text(item, "details")).unwrap_or(Value::Null),
        request_id: text(item, "requestId"),
    }
}
