//! What an operator does to the ledger: pause and resume automation, read an incident's history,
//! and record a change made outside an action (the restore's).

use chrono::Utc;
use incident_core::ledger::{NewRecord, Record};
use serde_json::{Value, json};
use shared::FunctionError;

use crate::items::{key, pause_sk, record_item, record_of, rfc3339, s};
use crate::store::{DynamoLedger, classify};

impl DynamoLedger {
    fn failed(&self, problem: incident_core::ledger::LedgerError) -> FunctionError {
        FunctionError::LedgerUnavailable { table: self.table.clone(), problem: problem.problem().to_owned() }
    }

    /// Pauses automation globally (`target` None) or for one target.
    pub async fn pause(&self, target: Option<&str>, by: &str, reason: &str) -> Result<Value, FunctionError> {
        let since = rfc3339(Utc::now());
        let mut item = key("PAUSE", pause_sk(target));
        item.insert("by".into(), s(by));
        item.insert("reason".into(), s(reason));
        item.insert("since".into(), s(since.clone()));
        let put = self.dynamodb.put_item().table_name(&self.table).set_item(Some(item)).send().await;
        put.map_err(|e| self.failed(classify("PutItem", &e)))?;
        Ok(json!({"paused": target.unwrap_or("everything"), "by": by, "reason": reason, "since": since}))
    }

    /// Resumes what [`DynamoLedger::pause`] paused.
    pub async fn resume(&self, target: Option<&str>) -> Result<Value, FunctionError> {
        let out = self
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key("PAUSE", pause_sk(target))))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.failed(classify("DeleteItem", &e)))?;
        Ok(json!({"resumed": target.unwrap_or("everything"), "wasPaused": out.attributes().is_some()}))
    }

    /// Every record of an incident, oldest first.
    pub async fn history(&self, incident: &str) -> Result<Vec<Record>, FunctionError> {
        let mut pages = self
            .dynamodb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("INCIDENT#{incident}")))
            .into_paginator()
            .send();
        let mut records = Vec::new();
        while let Some(page) = pages.next().await {
            records.extend(page.map_err(|e| self.failed(classify("Query", &e)))?.items().iter().map(record_of));
        }
        Ok(records)
    }

    /// Writes a record that is not an action invocation's (the restore command's).
    pub async fn record_change(&self, record: &NewRecord) -> Result<(), FunctionError> {
        let put = self.dynamodb.put_item().table_name(&self.table).set_item(Some(record_item(record))).send().await;
        put.map(drop).map_err(|e| self.failed(classify("PutItem", &e)))
    }
}
