//! The playbook's items in the incident ledger's table.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a run (one alarm's incident) | `PLAYBOOK#<incidentId>` | `RUN` |
//! | the open runs' index, which the sweep reads | `PLAYBOOK` | `<incidentId>` |
//!
//! A run is rewritten whole, on the condition that its `version` is the one read: of a sweep and an
//! event that both judge one verification, exactly one writes its verdict and acts on it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use incident_core::ledger::LedgerError;
use incident_core::state::State;
use incident_ledger::items::{RECORD_TTL, VERIFY, key, n, s, text};
use incident_ledger::store::classify;
use shared::iam::{Permission, arn};

use crate::run::Run;

const INDEX: &str = "PLAYBOOK";

/// A change an action made, whose verification is pending (the actions write it beside their
/// record: see incident_ledger::items::verification_item).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its sort key in the `VERIFY` partition: `<incidentId>#<request id>`.
    pub key: String,
    pub incident_id: String,
    pub action: String,
    pub target: String,
    pub after: State,
    pub at: DateTime<Utc>,
}

impl Change {
    fn of(item: &incident_ledger::items::Item) -> Option<Self> {
        let after = serde_json::from_str(&text(item, "after"));
        let at = DateTime::parse_from_rfc3339(&text(item, "at")).map(|t| t.with_timezone(&Utc));
        let (Ok(after), Ok(at)) = (after, at) else {
            tracing::warn!(key = text(item, "sk"), "a pending verification is unreadable; skipped");
            return None;
        };
        Some(Self {
            key: text(item, "sk"),
            incident_id: text(item, "incidentId"),
            action: text(item, "action"),
            target: text(item, "target"),
            after,
            at,
        })
    }
}

fn run_key(incident: &str) -> incident_ledger::items::Item {
    key(format!("PLAYBOOK#{incident}"), "RUN")
}

/// The runs on the ledger's table.
#[derive(Debug, Clone)]
pub struct Store {
    pub dynamodb: Client,
    pub table: String,
}

impl Store {
    /// Writes a new run; `false` when its incident already has one (a redelivered alarm). The run
    /// is indexed first, so that a crash right after leaves it where the sweep finds it; a
    /// redelivery of a closed run's alarm takes that entry out again.
    pub async fn create(&self, run: &Run) -> Result<bool, LedgerError> {
        self.index(run).await?;
        let put = self.dynamodb.put_item().table_name(&self.table).set_item(Some(item(run)));
        match put.condition_expression("attribute_not_exists(pk)").send().await {
            Ok(_) => Ok(true),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => {
                if self.load(&run.incident_id).await?.is_some_and(|held| !held.status.open()) {
                    self.unindex(&run.incident_id).await?;
                }
                Ok(false)
            }
            Err(err) => Err(classify("PutItem", &err)),
        }
    }

    /// Writes `run` over the version it was read at; `false` when another invocation wrote first.
    /// A closed run leaves the open index.
    pub async fn save(&self, run: &mut Run) -> Result<bool, LedgerError> {
        let read = run.version;
        run.version += 1;
        let put = self.dynamodb.put_item().table_name(&self.table).set_item(Some(item(run)));
        let result =
            put.condition_expression("version = :read").expression_attribute_values(":read", n(read)).send().await;
        match result {
            Ok(_) if run.status.open() => self.index(run).await.map(|()| true),
            Ok(_) => self.unindex(&run.incident_id).await.map(|()| true),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(err) => {
                run.version = read;
                Err(classify("PutItem", &err))
            }
        }
    }

    /// The run of an incident, read strongly consistent.
    pub async fn load(&self, incident: &str) -> Result<Option<Run>, LedgerError> {
        let get = self.dynamodb.get_item().table_name(&self.table).set_key(Some(run_key(incident)));
        let out = get.consistent_read(true).send().await.map_err(|err| classify("GetItem", &err))?;
        let Some(item) = out.item() else { return Ok(None) };
        let run = serde_json::from_str(&text(item, "run"))
            .map_err(|e| LedgerError::Unavailable(format!("run of {incident} is unreadable: {e}")))?;
        Ok(Some(run))
    }

    /// The incidents of the open runs, and each one's alarm.
    pub async fn open(&self) -> Result<Vec<(String, String)>, LedgerError> {
        let items = self.partition(INDEX).await?;
        Ok(items.iter().map(|i| (text(i, "sk"), text(i, "alarm"))).collect())
    }

    /// The changes whose verification is pending (an unreadable one is dropped, and logged).
    pub async fn changes(&self) -> Result<Vec<Change>, LedgerError> {
        let items = self.partition(VERIFY).await?;
        Ok(items.iter().filter_map(Change::of).collect())
    }

    /// Takes a change's verification out; `false` when another invocation already did (and judged it).
    pub async fn take_change(&self, sort_key: &str) -> Result<bool, LedgerError> {
        let delete = self.dynamodb.delete_item().table_name(&self.table).set_key(Some(key(VERIFY, sort_key)));
        match delete.condition_expression("attribute_exists(pk)").send().await {
            Ok(_) => Ok(true),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(err) => Err(classify("DeleteItem", &err)),
        }
    }

    async fn partition(&self, pk: &str) -> Result<Vec<incident_ledger::items::Item>, LedgerError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let query = self.dynamodb.query().table_name(&self.table).key_condition_expression("pk = :pk");
            let query = query.expression_attribute_values(":pk", s(pk)).set_exclusive_start_key(start);
            let out = query.consistent_read(true).send().await.map_err(|err| classify("Query", &err))?;
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    async fn index(&self, run: &Run) -> Result<(), LedgerError> {
        let mut entry = key(INDEX, &run.incident_id);
        entry.insert("alarm".to_owned(), s(&run.alarm));
        entry.insert("expiresAt".to_owned(), n(expires_at()));
        let put = self.dynamodb.put_item().table_name(&self.table).set_item(Some(entry));
        put.send().await.map(|_| ()).map_err(|err| classify("PutItem", &err))
    }

    /// Takes a run out of the open index (a run that is gone is closed too).
    pub async fn unindex(&self, incident: &str) -> Result<(), LedgerError> {
        let delete = self.dynamodb.delete_item().table_name(&self.table).set_key(Some(key(INDEX, incident)));
        delete.send().await.map(|_| ()).map_err(|err| classify("DeleteItem", &err))
    }
}

fn expires_at() -> i64 {
    chrono::Utc::now().timestamp() + i64::try_from(RECORD_TTL.as_secs()).unwrap_or(0)
}

fn item(run: &Run) -> incident_ledger::items::Item {
    let mut item = run_key(&run.incident_id);
    item.insert("run".to_owned(), s(serde_json::to_string(run).unwrap_or_default()));
    item.insert("status".to_owned(), s(serde_json::to_value(run.status).unwrap_or_default().as_str().unwrap_or("")));
    item.insert("version".to_owned(), n(run.version));
    item.insert("expiresAt".to_owned(), n(expires_at()));
    item
}

/// What the playbook needs on the ledger's table: its runs and their index, and the incidents'
/// records (read, and its own written), each call on those items only.
pub fn permissions() -> Vec<Permission> {
    let table = arn("dynamodb", "table/${LEDGER_TABLE}");
    let calls: [(&'static str, &str); 8] = [
        ("dynamodb:GetItem", "PLAYBOOK#*"),
        ("dynamodb:PutItem", "PLAYBOOK#*"),
        ("dynamodb:PutItem", "PLAYBOOK"),
        ("dynamodb:DeleteItem", "PLAYBOOK"),
        ("dynamodb:Query", "PLAYBOOK"),
        ("dynamodb:Query", "VERIFY"),
        ("dynamodb:DeleteItem", "VERIFY"),
        ("dynamodb:PutItem", "INCIDENT#*"),
    ];
    calls
        .iter()
        .map(|(action, leading)| {
            Permission::new(action, table.clone()).when("ForAllValues:StringLike", "dynamodb:LeadingKeys", *leading)
        })
        .collect()
}
