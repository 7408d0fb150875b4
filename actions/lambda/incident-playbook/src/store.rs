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
use incident_core::ledger::LedgerError;
use incident_ledger::items::{RECORD_TTL, key, n, s, text};
use incident_ledger::store::classify;
use shared::iam::{Permission, arn};

use crate::run::Run;

const INDEX: &str = "PLAYBOOK";

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
        let mut open = Vec::new();
        let mut start = None;
        loop {
            let query = self.dynamodb.query().table_name(&self.table).key_condition_expression("pk = :pk");
            let query = query.expression_attribute_values(":pk", s(INDEX)).set_exclusive_start_key(start);
            let out = query.consistent_read(true).send().await.map_err(|err| classify("Query", &err))?;
            open.extend(out.items().iter().map(|i| (text(i, "sk"), text(i, "alarm"))));
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(open);
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
    let calls: [(&'static str, &str); 6] = [
        ("dynamodb:GetItem", "PLAYBOOK#*"),
        ("dynamodb:PutItem", "PLAYBOOK#*"),
        ("dynamodb:PutItem", "PLAYBOOK"),
        ("dynamodb:DeleteItem", "PLAYBOOK"),
        ("dynamodb:Query", "PLAYBOOK"),
        ("dynamodb:PutItem", "INCIDENT#*"),
    ];
    calls
        .iter()
        .map(|(action, leading)| {
            Permission::new(action, table.clone()).when("ForAllValues:StringLike", "dynamodb:LeadingKeys", *leading)
        })
        .collect()
}
