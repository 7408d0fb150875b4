//! The incident ledger on DynamoDB: the [`Ledger`] the guard works on, call by call. Every call is
//! one request (the pauses and counters: one BatchGetItem, whose unprocessed keys are read again);
//! the guard decides what to issue together, what to retry and how long to wait.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, Select, TransactWriteItem,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::Utc;
use incident_core::budget::Counter;
use incident_core::contract::ResponseCore;
use incident_core::ledger::{
    Claim, Guards, HeldClaim, History, KeyClaim, KeyEnd, KeyState, Ledger, LedgerError, LedgerFuture, NewRecord, Pause,
};

use crate::items::{
    Item, claim_key, idempotency_key, key, n, number, pause_sk, record_item, record_of, rfc3339, s, text,
};

/// The ledger's table, through the function's DynamoDB client.
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    pub dynamodb: Client,
    pub table: String,
}

/// A failed call as the guard sees it: contention (retried), or the ledger unavailable.
pub fn classify<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> LedgerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let described = match shared::FunctionError::aws(&format!("DynamoDB {operation}"), err) {
        shared::FunctionError::Aws { code, message, .. } => format!("{operation}: {code}: {message}"),
        other => format!("{operation}: {other}"),
    };
    // A throttled item is a hot item (a budget counter in a storm), as a conflict is: retried
    // within the round, and never taken for an outage that would switch the guards off.
    match err.as_service_error().and_then(ProvideErrorMetadata::code) {
        Some(
            "TransactionConflictException"
            | "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded",
        ) => LedgerError::Contention(described),
        _ => LedgerError::Unavailable(described),
    }
}

/// A cancelled transaction: contention when any item met a conflict or was throttled.
fn cancelled(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> LedgerError {
    const CONTENDED: [&str; 3] = ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"];
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error()
        && let Some(reason) = e.cancellation_reasons().iter().find_map(|r| r.code().filter(|c| CONTENDED.contains(c)))
    {
        return LedgerError::Contention(format!("TransactWriteItems: TransactionCanceledException [{reason}]"));
    }
    classify("TransactWriteItems", err)
}

impl DynamoLedger {
    async fn read_items(&self, mut keys: Vec<Item>) -> Result<Vec<Item>, LedgerError> {
        let mut items = Vec::new();
        let mut attempt = 0u32;
        while !keys.is_empty() {
            let wanted = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build();
            let wanted = wanted.map_err(|e| LedgerError::Unavailable(format!("BatchGetItem: {e}")))?;
            let out = self.dynamodb.batch_get_item().request_items(&self.table, wanted).send().await;
            let out = out.map_err(|e| classify("BatchGetItem", &e))?;
            items.extend(out.responses().and_then(|r| r.get(&self.table)).cloned().unwrap_or_default());
            // DynamoDB may leave keys unprocessed (throughput, size): read them again, after a pause.
            keys =
                out.unprocessed_keys().and_then(|u| u.get(&self.table)).map(|k| k.keys().to_vec()).unwrap_or_default();
            if !keys.is_empty() {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempt.min(10)))).await;
            }
        }
        Ok(items)
    }

    async fn guards(&self, target: Option<&str>, counters: &[Counter]) -> Result<Guards, LedgerError> {
        let mut keys = vec![key("PAUSE", pause_sk(None))];
        keys.extend(target.map(|t| key("PAUSE", pause_sk(Some(t)))));
        keys.extend(counters.iter().map(|c| key(c.pk.clone(), c.sk())));
        let items = self.read_items(keys).await?;
        let find = |pk: &str, sk: &str| items.iter().find(|i| text(i, "pk") == pk && text(i, "sk") == sk);
        let pause = [None, target].into_iter().find_map(|t| {
            find("PAUSE", &pause_sk(t)).map(|item| Pause {
                scope: t.map_or_else(|| "globally".to_owned(), |t| format!("for {t}")),
                target: t.map(str::to_owned),
                by: text(item, "by"),
                reason: text(item, "reason"),
                since: text(item, "since"),
            })
        });
        let counts = counters.iter().map(|c| find(&c.pk, &c.sk()).map_or(0, |i| number(i, "count").max(0) as u64));
        Ok(Guards { pause, counts: counts.collect() })
    }

    async fn incident_history(&self, incident: &str, full: bool) -> Result<History, LedgerError> {
        let query = self
            .dynamodb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("INCIDENT#{incident}")));
        if !full {
            let out = query.select(Select::Count).send().await.map_err(|e| classify("Query", &e))?;
            return Ok(History {
                earlier: usize::try_from(out.count()).unwrap_or(0),
                from_ledger: true,
                ..History::default()
            });
        }
        let mut pages = query.into_paginator().send();
        let mut records = Vec::new();
        while let Some(page) = pages.next().await {
            records.extend(page.map_err(|e| classify("Query", &e))?.items().iter().map(record_of));
        }
        Ok(History { earlier: records.len(), records, unavailable: None, from_ledger: true })
    }

    async fn put_key(&self, claim: &KeyClaim) -> Result<KeyState, LedgerError> {
        let now = Utc::now();
        let mut item = idempotency_key(&claim.hash);
        item.extend([
            ("status".into(), s("INPROGRESS")),
            ("inProgressUntil".into(), n(claim.in_progress_until_ms)),
            ("expiresAt".into(), n(claim.expires_at)),
            ("requestId".into(), s(&claim.request_id)),
            ("incidentId".into(), s(&claim.incident_id)),
        ]);
        let put = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR expiresAt < :now OR (#status = :inprogress AND inProgressUntil < :nowms)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(now.timestamp()))
            .expression_attribute_values(":nowms", n(now.timestamp_millis()))
            .expression_attribute_values(":inprogress", s("INPROGRESS"))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(KeyState::Taken),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(held)) => {
                    key_state(&held.item().cloned().unwrap_or_default(), &claim.request_id)
                }
                _ => Err(classify("PutItem", &err)),
            },
        }
    }

    async fn applying(&self, claim: &KeyClaim) -> Result<(), LedgerError> {
        self.dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_key(&claim.hash)))
            .update_expression("SET #status = :applying, applyingSince = :since")
            .condition_expression("requestId = :me")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":applying", s("APPLYING"))
            .expression_attribute_values(":since", s(rfc3339(Utc::now())))
            .expression_attribute_values(":me", s(&claim.request_id))
            .send()
            .await
            .map(drop)
            .map_err(|e| classify("UpdateItem", &e))
    }

    async fn take_claim(&self, claim: &Claim) -> Result<Option<HeldClaim>, LedgerError> {
        let now = Utc::now();
        let mut item = claim_key(&claim.resource);
        item.extend([
            ("holder".to_owned(), s(&claim.holder)),
            ("claimId".to_owned(), s(&claim.id)),
            ("since".to_owned(), s(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))),
            ("heldUntil".to_owned(), n(claim.held_until_ms)),
            // Kept a day past its hold for whoever looks into the table, then removed by TTL.
            ("expiresAt".to_owned(), n(claim.held_until_ms / 1000 + 86_400)),
        ]);
        let put = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR heldUntil < :now OR claimId = :id")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":id", s(&claim.id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let old = failed.item().cloned().unwrap_or_default();
                    Ok(Some(HeldClaim { holder: text(&old, "holder"), since: text(&old, "since") }))
                }
                _ => Err(classify("PutItem", &err)),
            },
        }
    }

    async fn give_back_claim(&self, claim: &Claim) -> Result<(), LedgerError> {
        let delete = self
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(&claim.resource)))
            .condition_expression("claimId = :id")
            .expression_attribute_values(":id", s(&claim.id))
            .send()
            .await;
        match delete {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(err) => Err(classify("DeleteItem", &err)),
        }
    }

    /// One more mutation in the counter's window, unless it is full (then its count).
    async fn count_one(&self, counter: &Counter) -> Result<Option<u64>, LedgerError> {
        let update = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(counter.pk.clone(), counter.sk())))
            .update_expression("ADD #count :one SET expiresAt = :expires")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(counter.limit.count))
            .expression_attribute_values(":expires", n(counter.expires_at()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match update {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(full)) => {
                    let count = full.item().map_or(counter.limit.count as i64, |i| number(i, "count"));
                    Ok(Some(u64::try_from(count).unwrap_or(counter.limit.count)))
                }
                _ => Err(classify("UpdateItem", &err)),
            },
        }
    }

    async fn uncount_one(&self, counter: &Counter) -> Result<(), LedgerError> {
        let update = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(counter.pk.clone(), counter.sk())))
            .update_expression("ADD #count :minus")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match update {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(err) => Err(classify("UpdateItem", &err)),
        }
    }

    async fn write_finish(
        &self,
        record: &NewRecord,
        key_end: Option<(&KeyClaim, KeyEnd<'_>)>,
    ) -> Result<(), LedgerError> {
        let build =
            |e: aws_sdk_dynamodb::error::BuildError| LedgerError::Unavailable(format!("TransactWriteItems: {e}"));
        let pending = crate::items::verification_item(record);
        let record =
            Put::builder().table_name(&self.table).set_item(Some(record_item(record))).build().map_err(build)?;
        let mut transaction =
            self.dynamodb.transact_write_items().transact_items(TransactWriteItem::builder().put(record).build());
        if let Some((claim, end)) = key_end {
            let item = match end {
                KeyEnd::Completed(response) => {
                    let put = Put::builder().table_name(&self.table).set_item(Some(self.completed(claim, response)));
                    TransactWriteItem::builder().put(put.build().map_err(build)?)
                }
                KeyEnd::Removed => {
                    let delete = Delete::builder().table_name(&self.table).set_key(Some(idempotency_key(&claim.hash)));
                    TransactWriteItem::builder().delete(delete.build().map_err(build)?)
                }
            };
            transaction = transaction.transact_items(item.build());
        }
        if let Some(pending) = pending {
            let put = Put::builder().table_name(&self.table).set_item(Some(pending)).build().map_err(build)?;
            transaction = transaction.transact_items(TransactWriteItem::builder().put(put).build());
        }
        transaction.send().await.map(drop).map_err(|e| cancelled(&e))
    }

    fn completed(&self, claim: &KeyClaim, response: &ResponseCore) -> Item {
        let mut item = idempotency_key(&claim.hash);
        item.insert("status".into(), s("COMPLETED"));
        item.insert("response".into(), s(serde_json::to_string(response).unwrap_or_default()));
        item.insert("requestId".into(), s(&claim.request_id));
        item.insert("incidentId".into(), s(&claim.incident_id));
        item.insert("expiresAt".into(), n(claim.expires_at));
        item
    }

    async fn put_record(&self, record: &NewRecord) -> Result<(), LedgerError> {
        let sent = self.dynamodb.put_item().table_name(&self.table).set_item(Some(record_item(record))).send().await;
        sent.map(drop).map_err(|e| classify("PutItem", &e))
    }
}

/// What a key that could not be taken holds. A key applying is in progress until its holder's
/// deadline; past it, its holder stopped without recording how the change ended. A key in progress
/// by this very invocation is its own: the SDK retried a PutItem whose answer was lost.
fn key_state(held: &Item, own_request_id: &str) -> Result<KeyState, LedgerError> {
    let request_id = text(held, "requestId");
    let holder_alive = number(held, "inProgressUntil") > Utc::now().timestamp_millis();
    Ok(match text(held, "status").as_str() {
        "INPROGRESS" if request_id == own_request_id => KeyState::Taken,
        "COMPLETED" => {
            let recorded = serde_json::from_str(&text(held, "response"))
                .map_err(|e| LedgerError::Unavailable(format!("the recorded response: {e}")))?;
            KeyState::Completed(Box::new(recorded))
        }
        "APPLYING" if !holder_alive => KeyState::Applying { request_id, since: text(held, "applyingSince") },
        _ => KeyState::InProgress { request_id },
    })
}

impl Ledger for DynamoLedger {
    fn table(&self) -> &str {
        &self.table
    }

    fn read_guards<'a>(&'a self, target: Option<&'a str>, counters: &'a [Counter]) -> LedgerFuture<'a, Guards> {
        Box::pin(self.guards(target, counters))
    }

    fn history<'a>(&'a self, incident: &'a str, full: bool) -> LedgerFuture<'a, History> {
        Box::pin(self.incident_history(incident, full))
    }

    fn take_key<'a>(&'a self, key: &'a KeyClaim) -> LedgerFuture<'a, KeyState> {
        Box::pin(self.put_key(key))
    }

    fn mark_applying<'a>(&'a self, key: &'a KeyClaim) -> LedgerFuture<'a, ()> {
        Box::pin(self.applying(key))
    }

    fn claim<'a>(&'a self, claim: &'a Claim) -> LedgerFuture<'a, Option<HeldClaim>> {
        Box::pin(self.take_claim(claim))
    }

    fn release<'a>(&'a self, claim: &'a Claim) -> LedgerFuture<'a, ()> {
        Box::pin(self.give_back_claim(claim))
    }

    fn spend<'a>(&'a self, counter: &'a Counter) -> LedgerFuture<'a, Option<u64>> {
        Box::pin(self.count_one(counter))
    }

    fn refund<'a>(&'a self, counter: &'a Counter) -> LedgerFuture<'a, ()> {
        Box::pin(self.uncount_one(counter))
    }

    fn finish<'a>(&'a self, record: &'a NewRecord, key: Option<(&'a KeyClaim, KeyEnd<'a>)>) -> LedgerFuture<'a, ()> {
        Box::pin(self.write_finish(record, key))
    }

    fn record<'a>(&'a self, record: &'a NewRecord) -> LedgerFuture<'a, ()> {
        Box::pin(self.put_record(record))
    }
}
