//! The incident ledger: one DynamoDB table (`LEDGER_TABLE`) that every action invocation writes
//! to, and that keeps automation from acting twice, looping or acting while humans have taken over.
//!
//! Items (`pk`, `sk`, both strings; `expiresAt` is the table's TTL attribute, epoch seconds):
//! - `INCIDENT#<incidentId>` / `REC#<epoch ms, 13 digits>#<request id>`: what one invocation did:
//!   `at`, `action`, `target`, `priority`, `outcome` (`success`, `replayed` or the error code),
//!   `statusCode`, `message`, `before`, `after` and `details` (JSON text), `requestId`.
//! - `IDEMPOTENCY#<sha256 of incident, action, target, priority, parameters>` / `IDEMPOTENCY`:
//!   `status` `INPROGRESS` (until `inProgressUntil`, the invocation's deadline, epoch ms) or
//!   `COMPLETED` (with the `response` it gave, kept for `IDEMPOTENCY_TTL_SECONDS`).
//! - `BUDGET#<scope>` / `WINDOW#<window start, epoch s>`: `count` of mutations in that window;
//!   scopes `target-action#<target>#<action>`, `target#<target>`, `fleet`.
//! - `PAUSE` / `GLOBAL` or `TARGET#<target>`: `by`, `reason`, `since`.
//! - `CLAIM#<resource>` / `CLAIM`: a claim held until `heldUntil` (epoch ms) by `holder`
//!   (`claimId` tells its takings apart), e.g. restart_service's `restart/<cluster>/<service>`.
//!
//! The semantics of idempotency are those of Powertools for AWS Lambda: the first request writes
//! an in-progress record with a conditional put; a duplicate while it is in progress is refused
//! (409); once completed, a duplicate is answered with the recorded response (`"replayed": true`);
//! a failed invocation removes its record, so a retry acts; a crashed one's record expires at its
//! deadline. Budgets are counted in fixed windows with conditional writes in one transaction, so
//! they hold across concurrent invocations and cold starts.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, Select,
    TransactWriteItem, Update,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::contract::{ActionKind, ActionRequest, ResponseCore};
use crate::deadline::Deadline;
use crate::plan::{Permission, arn};
use crate::settings::{Settings, invalid};
use crate::{ConfigError, FunctionError};

type Item = HashMap<String, AttributeValue>;

/// Records are kept this long (the table's TTL removes them after).
pub const RECORD_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// At most this much of a response's details goes into a record (a DynamoDB item is at most 400 KB).
const MAX_DETAILS_BYTES: usize = 16 * 1024;

/// At most `count` mutations per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub count: u64,
    pub window: Duration,
}

impl Limit {
    /// `3/3600`: 3 per 3600 seconds.
    fn parse(text: &str) -> Result<Self, String> {
        let (count, seconds) = text.split_once('/').ok_or_else(|| format!("{text:?} is not <count>/<seconds>"))?;
        let count: u64 = count.trim().parse().map_err(|_| format!("{text:?}: the count is not a whole number"))?;
        let seconds: u64 = seconds.trim().parse().map_err(|_| format!("{text:?}: the window is not whole seconds"))?;
        if count == 0 || !(60..=7 * 24 * 3600).contains(&seconds) {
            return Err(format!("{text:?}: the count must be at least 1 and the window 60 s to 7 days"));
        }
        Ok(Self { count, window: Duration::from_secs(seconds) })
    }
}

/// The three budgets; see the README for their defaults and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// `BUDGET_PER_TARGET_ACTION` (default 3/3600): one action on one target, e.g. 3 restarts an hour.
    pub per_target_action: Limit,
    /// `BUDGET_PER_TARGET` (default 6/3600): every action on one target.
    pub per_target: Limit,
    /// `BUDGET_FLEET` (default 20/600): every mutation of every target, the storm guard.
    pub fleet: Limit,
}

impl Default for Budgets {
    fn default() -> Self {
        let limit = |count, seconds| Limit { count, window: Duration::from_secs(seconds) };
        Self { per_target_action: limit(3, 3600), per_target: limit(6, 3600), fleet: limit(20, 600) }
    }
}

/// `LEDGER_FAILURE`: what a mutating action does when the ledger cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LedgerFailure {
    /// `closed` (default): answer 502 and do nothing.
    #[default]
    Closed,
    /// `open`: act without idempotency, budgets or pause, and say so in the logs.
    Open,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    /// `IDEMPOTENCY_TTL_SECONDS` (default 3600): how long a completed request is replayed.
    pub idempotency_ttl: Duration,
    pub budgets: Budgets,
    pub failure: LedgerFailure,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        Self { idempotency_ttl: Duration::from_secs(3600), budgets: Budgets::default(), failure: LedgerFailure::Closed }
    }
}

impl LedgerSettings {
    pub fn from_settings(settings: &Settings<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let limit = |name: &'static str, default: Limit| -> Result<Limit, ConfigError> {
            Ok(settings.parsed(name, Limit::parse)?.unwrap_or(default))
        };
        let failure = match settings.optional("LEDGER_FAILURE").as_deref() {
            None | Some("closed") => LedgerFailure::Closed,
            Some("open") => LedgerFailure::Open,
            Some(other) => return Err(invalid("LEDGER_FAILURE", format!("{other:?} is not closed or open"))),
        };
        Ok(Self {
            idempotency_ttl: Duration::from_secs(settings.whole(
                "IDEMPOTENCY_TTL_SECONDS",
                3600u64,
                60..=7 * 24 * 3600,
            )?),
            budgets: Budgets {
                per_target_action: limit("BUDGET_PER_TARGET_ACTION", defaults.budgets.per_target_action)?,
                per_target: limit("BUDGET_PER_TARGET", defaults.budgets.per_target)?,
                fleet: limit("BUDGET_FLEET", defaults.budgets.fleet)?,
            },
            failure,
        })
    }
}

/// The ledger a function writes to.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub dynamodb: Client,
    pub table: String,
    pub settings: LedgerSettings,
}

/// Who takes a claim: a name people read (`incident INC-42`) and an id of this one taking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub name: String,
    pub id: String,
}

impl Holder {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), id: uuid::Uuid::new_v4().to_string() }
    }
}

/// A claim someone else holds: their name, and since when (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    pub holder: String,
    pub since: String,
}

/// One invocation's record, as history lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub at: String,
    pub action: String,
    pub target: String,
    pub priority: String,
    pub outcome: String,
    pub message: String,
    pub before: Value,
    pub after: Value,
    pub details: Value,
    pub request_id: String,
}

impl Record {
    /// `02:15 restart_service api: <message>` for a page.
    pub fn line(&self) -> String {
        let time = DateTime::parse_from_rfc3339(&self.at).map(|t| t.format("%H:%M").to_string()).unwrap_or_default();
        let target = if self.target.is_empty() { String::new() } else { format!(" {}", self.target) };
        let outcome = if self.outcome == "success" { String::new() } else { format!(" [{}]", self.outcome) };
        format!("{time} {}{target}:{outcome} {}", self.action, self.message)
    }
}

/// What the ledger knew when an invocation began.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// The incident's earlier records, oldest first (read in full for notify_human only).
    pub records: Vec<Record>,
    /// How many there were.
    pub earlier: usize,
    /// The ledger could not be read; why.
    pub unavailable: Option<String>,
    /// Read from a ledger (false without one: a local run knows no history).
    pub from_ledger: bool,
}

/// How an invocation may go on.
#[derive(Debug)]
pub enum Begin {
    /// Act; finish with this ticket.
    Go(Ticket),
    /// An identical request completed: answer with its response.
    Replay(Box<ResponseCore>),
}

/// An invocation the ledger let through.
#[derive(Debug, Clone, Default)]
pub struct Ticket {
    /// Its idempotency key, when it holds one (not when the ledger was unavailable).
    key: Option<String>,
    pub history: History,
}

impl Ticket {
    /// A ticket for acting without the ledger (notify_human or `LEDGER_FAILURE=open`).
    pub fn without_ledger(problem: String) -> Self {
        Self { key: None, history: History { unavailable: Some(problem), from_ledger: true, ..History::default() } }
    }
}

/// Whether `kind` changes anything (and so is paused and budgeted).
fn mutates(kind: ActionKind) -> bool {
    kind != ActionKind::NotifyHuman
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn text(item: &Item, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

fn number(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The idempotency key of a request: what makes two requests the same action.
pub fn idempotency_key(kind: ActionKind, request: &ActionRequest) -> String {
    let covered = json!({
        "incidentId": request.incident_id.to_string(), "action": kind.as_str(),
        "target": request.target.as_deref().unwrap_or(""), "priority": request.priority.as_str(),
        "params": request.params,
    });
    let digest = Sha256::digest(covered.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// One budget's counter for the window holding `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counter {
    name: String,
    pk: String,
    window_start: i64,
    limit: Limit,
}

impl Counter {
    fn sk(&self) -> String {
        format!("WINDOW#{}", self.window_start)
    }

    fn resets(&self) -> String {
        let end = self.window_start + self.limit.window.as_secs() as i64;
        Utc.timestamp_opt(end, 0).single().map(rfc3339).unwrap_or_default()
    }

    fn exhausted(&self, count: u64) -> FunctionError {
        FunctionError::BudgetExhausted {
            budget: self.name.clone(),
            count,
            limit: self.limit.count,
            window_seconds: self.limit.window.as_secs(),
            resets: self.resets(),
        }
    }
}

fn counters(budgets: &Budgets, target: &str, action: &str, now: i64) -> Vec<Counter> {
    let counter = |name: String, pk: String, limit: Limit| {
        let window = limit.window.as_secs() as i64;
        Counter { name, pk, window_start: now - now.rem_euclid(window), limit }
    };
    vec![
        counter(
            format!("per target and action ({target}, {action})"),
            format!("BUDGET#target-action#{target}#{action}"),
            budgets.per_target_action,
        ),
        counter(format!("per target ({target})"), format!("BUDGET#target#{target}"), budgets.per_target),
        counter("fleet-wide".to_owned(), "BUDGET#fleet".to_owned(), budgets.fleet),
    ]
}

impl Ledger {
    /// `LEDGER_TABLE`, or none (a local run: no idempotency, budgets, pause or records, said at init).
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Option<Self>, ConfigError> {
        let settings = Settings::from_env();
        let Some(table) = settings.optional("LEDGER_TABLE") else {
            tracing::warn!("LEDGER_TABLE is not set: no idempotency, budgets, pause or incident records");
            return Ok(None);
        };
        Ok(Some(Self { dynamodb: Client::new(config), table, settings: LedgerSettings::from_settings(&settings)? }))
    }

    /// What the ledger needs on its table for `kind`: `${LEDGER_TABLE}` stands for the table's name.
    /// Reading pauses and budgets (BatchGetItem) and counting budgets (UpdateItem, in a transaction)
    /// are for the mutating actions only.
    pub fn permissions(kind: ActionKind) -> Vec<Permission> {
        let table = arn("dynamodb", "table/${LEDGER_TABLE}");
        let mut actions = vec!["dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"];
        if mutates(kind) {
            actions.extend(["dynamodb:BatchGetItem", "dynamodb:UpdateItem"]);
        }
        actions.into_iter().map(|action| Permission::new(action, table.clone())).collect()
    }

    fn unavailable(&self, operation: &str, err: impl std::fmt::Display) -> FunctionError {
        FunctionError::LedgerUnavailable { table: self.table.clone(), problem: format!("{operation}: {err}") }
    }

    /// A failed DynamoDB call as the ledger being unavailable, with the call's AWS error code.
    fn failed<E>(&self, operation: &str, err: &SdkError<E, HttpResponse>) -> FunctionError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match FunctionError::aws(&format!("DynamoDB {operation}"), err) {
            FunctionError::Aws { code, message, .. } => self.unavailable(operation, format!("{code}: {message}")),
            other => self.unavailable(operation, other),
        }
    }

    /// Before the work: refused while paused or over budget (mutating actions), replayed when an
    /// identical request completed, refused while one is in progress; otherwise a ticket.
    pub async fn begin(
        &self,
        kind: ActionKind,
        request: &ActionRequest,
        deadline: Deadline,
        request_id: &str,
    ) -> Result<Begin, FunctionError> {
        let now = Utc::now();
        if mutates(kind) {
            self.check_pause_and_budgets(kind, request, now).await?;
        }
        let history = self.history_for(kind, request).await?;
        let key = idempotency_key(kind, request);
        let mut item = key_item(&key);
        item.extend([
            ("status".into(), s("INPROGRESS")),
            ("inProgressUntil".into(), n(deadline.epoch_millis())),
            ("expiresAt".into(), n(now.timestamp() + self.settings.idempotency_ttl.as_secs() as i64)),
            ("requestId".into(), s(request_id)),
            ("incidentId".into(), s(request.incident_id.to_string())),
        ]);
        match self.put_unless_taken(item, now).await {
            Ok(_) => Ok(Begin::Go(Ticket { key: Some(key), history })),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    self.claimed_before(kind, request, &failed.item().cloned().unwrap_or_default())
                }
                _ => Err(self.failed("PutItem", &err)),
            },
        }
    }

    /// Takes an idempotency key: new, expired, or in progress past its deadline (a crashed invocation).
    async fn put_unless_taken(
        &self,
        item: Item,
        now: DateTime<Utc>,
    ) -> Result<PutItemOutput, SdkError<PutItemError, HttpResponse>> {
        self.dynamodb
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
            .await
    }

    /// The key was taken: by a completed identical request (its answer replayed) or one in progress.
    fn claimed_before(&self, kind: ActionKind, request: &ActionRequest, old: &Item) -> Result<Begin, FunctionError> {
        if text(old, "status") == "COMPLETED" {
            let recorded = serde_json::from_str(&text(old, "response"))
                .map_err(|e| self.unavailable("the recorded response", e))?;
            return Ok(Begin::Replay(Box::new(recorded)));
        }
        Err(FunctionError::Conflict(format!(
            "an identical request (incident {}, {}, priority {}) is in progress (request {}); \
             its answer will be replayed once it completes",
            request.incident_id,
            kind.as_str(),
            request.priority.as_str(),
            text(old, "requestId")
        )))
    }

    /// Paused globally or for the target, or a budget already spent: refused before any other call.
    async fn check_pause_and_budgets(
        &self,
        kind: ActionKind,
        request: &ActionRequest,
        now: DateTime<Utc>,
    ) -> Result<(), FunctionError> {
        let target = request.target.as_deref().unwrap_or("");
        let counters = counters(&self.settings.budgets, target, kind.as_str(), now.timestamp());
        let mut keys = vec![key("PAUSE", "GLOBAL"), key("PAUSE", format!("TARGET#{target}"))];
        keys.extend(counters.iter().map(|c| key(c.pk.clone(), c.sk())));
        let items = self.read_consistently(keys).await?;
        let find = |pk: &str, sk: &str| items.iter().find(|i| text(i, "pk") == pk && text(i, "sk") == sk);
        for (sk, scope) in
            [("GLOBAL".to_owned(), "globally".to_owned()), (format!("TARGET#{target}"), format!("for {target}"))]
        {
            if let Some(pause) = find("PAUSE", &sk) {
                return Err(FunctionError::AutomationPaused {
                    scope,
                    by: text(pause, "by"),
                    reason: text(pause, "reason"),
                    since: text(pause, "since"),
                });
            }
        }
        for counter in &counters {
            let count = find(&counter.pk, &counter.sk()).map_or(0, |i| number(i, "count")) as u64;
            if count >= counter.limit.count {
                return Err(counter.exhausted(count));
            }
        }
        Ok(())
    }

    /// The items at these keys (up to 100, BatchGetItem's limit), read strongly consistent.
    async fn read_consistently(&self, keys: Vec<Item>) -> Result<Vec<Item>, FunctionError> {
        let wanted = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| self.unavailable("BatchGetItem", e))?;
        let out = self
            .dynamodb
            .batch_get_item()
            .request_items(&self.table, wanted)
            .send()
            .await
            .map_err(|e| self.failed("BatchGetItem", &e))?;
        Ok(out.responses().and_then(|r| r.get(&self.table)).cloned().unwrap_or_default())
    }

    /// The incident's records: all of them for notify_human (its page lists them), the count for the others.
    async fn history_for(&self, kind: ActionKind, request: &ActionRequest) -> Result<History, FunctionError> {
        let incident = &request.incident_id.to_string();
        if kind == ActionKind::NotifyHuman {
            let records = self.history(incident).await?;
            return Ok(History { earlier: records.len(), records, unavailable: None, from_ledger: true });
        }
        let out = self
            .dynamodb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("INCIDENT#{incident}")))
            .select(Select::Count)
            .send()
            .await
            .map_err(|e| self.failed("Query", &e))?;
        Ok(History { earlier: out.count() as usize, from_ledger: true, ..History::default() })
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
            let page = page.map_err(|e| self.failed("Query", &e))?;
            records.extend(page.items().iter().map(record_of));
        }
        Ok(records)
    }

    /// Takes the claim on `resource` for `holder`, to hold for `hold`: one conditional PutItem, which
    /// exactly one of any number of concurrent callers wins; a claim past its hold (its holder
    /// finished or crashed) is taken over. `Err` with the live claim when another caller holds it.
    pub async fn claim(
        &self,
        resource: &str,
        holder: &Holder,
        hold: Duration,
    ) -> Result<Result<(), HeldClaim>, FunctionError> {
        let now = Utc::now();
        let until = now.timestamp_millis() + i64::try_from(hold.as_millis()).unwrap_or(i64::MAX / 2);
        let mut item = key(format!("CLAIM#{resource}"), "CLAIM");
        item.extend([
            ("holder".to_owned(), s(&holder.name)),
            ("claimId".to_owned(), s(&holder.id)),
            ("since".to_owned(), s(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))),
            ("heldUntil".to_owned(), n(until)),
            // Kept a day past its hold for whoever looks into the table, then removed by TTL.
            ("expiresAt".to_owned(), n(until / 1000 + 86_400)),
        ]);
        let put = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR heldUntil < :now")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Ok(())),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let old = failed.item().cloned().unwrap_or_default();
                    Ok(Err(HeldClaim { holder: text(&old, "holder"), since: text(&old, "since") }))
                }
                _ => Err(self.failed("PutItem", &err)),
            },
        }
    }

    /// Gives a claim back early (the work it guarded failed, so a retry should not wait out the
    /// hold); only `holder`'s own claim is deleted. A failure is logged: the claim then expires.
    pub async fn release(&self, resource: &str, holder: &Holder) {
        let delete = self
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("CLAIM#{resource}"), "CLAIM")))
            .condition_expression("claimId = :id")
            .expression_attribute_values(":id", s(&holder.id))
            .send()
            .await;
        if let Err(err) = delete {
            tracing::warn!(
                resource,
                "could not give back the claim (it expires at the end of its hold): {}",
                self.failed("DeleteItem", &err)
            );
        }
    }

    /// Before the first mutating call: one more mutation in each budget, all three or none
    /// (nothing for notify_human, which is never budgeted).
    pub async fn consume_budgets(&self, kind: ActionKind, request: &ActionRequest) -> Result<(), FunctionError> {
        if !mutates(kind) {
            return Ok(());
        }
        let now = Utc::now().timestamp();
        let target = request.target.as_deref().unwrap_or("");
        let counters = counters(&self.settings.budgets, target, kind.as_str(), now);
        let mut transaction = self.dynamodb.transact_write_items();
        for counter in &counters {
            let update = self.budget_increment(counter)?;
            transaction = transaction.transact_items(TransactWriteItem::builder().update(update).build());
        }
        match transaction.send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                let reasons: Vec<CancellationReason> = match err.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(e)) => e.cancellation_reasons().to_vec(),
                    _ => Vec::new(),
                };
                let spent = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed"));
                match spent.and_then(|i| counters.get(i)) {
                    Some(counter) => Err(counter.exhausted(counter.limit.count)),
                    None => Err(self.failed("TransactWriteItems", &err)),
                }
            }
        }
    }

    /// One more mutation in a budget's window, unless the window is already full.
    fn budget_increment(&self, counter: &Counter) -> Result<Update, FunctionError> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(counter.pk.clone(), counter.sk())))
            .update_expression("ADD #count :one SET expiresAt = :expires")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(counter.limit.count))
            .expression_attribute_values(
                ":expires",
                n(counter.window_start + 2 * counter.limit.window.as_secs() as i64),
            )
            .build()
            .map_err(|e| self.unavailable("TransactWriteItems", e))
    }

    /// After the work: the record, and the idempotency key completed with the response (or given
    /// back after a failure, so that a retry acts). A failure here is logged: the work is done.
    pub async fn finish(
        &self,
        kind: ActionKind,
        request: &ActionRequest,
        ticket: &Ticket,
        response: &ResponseCore,
        (before, after): (&Value, &Value),
    ) {
        let mut transaction = self.dynamodb.transact_write_items();
        match self.record_put(kind, request, response, before, after) {
            Ok(put) => transaction = transaction.transact_items(TransactWriteItem::builder().put(put).build()),
            Err(err) => tracing::error!("cannot build the ledger record: {err}"),
        }
        if let Some(idempotency) = &ticket.key {
            let item = if response.success { self.completed(idempotency, response) } else { None };
            transaction = match item {
                Some(put) => transaction.transact_items(TransactWriteItem::builder().put(put).build()),
                None => match aws_sdk_dynamodb::types::Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(format!("IDEMPOTENCY#{idempotency}"), "IDEMPOTENCY")))
                    .build()
                {
                    Ok(delete) => transaction.transact_items(TransactWriteItem::builder().delete(delete).build()),
                    Err(_) => transaction,
                },
            };
        }
        if let Err(err) = transaction.send().await {
            tracing::error!(table = %self.table, "the ledger record was not written: {}", self.failed("TransactWriteItems", &err));
        }
    }

    /// Writes only the record (a refusal, or a replay).
    pub async fn record(&self, kind: ActionKind, request: &ActionRequest, response: &ResponseCore) {
        let put = match self.record_put(kind, request, response, &Value::Null, &Value::Null) {
            Ok(put) => put,
            Err(err) => return tracing::error!("cannot build the ledger record: {err}"),
        };
        let sent = self.dynamodb.put_item().table_name(&self.table).set_item(Some(put.item().clone())).send().await;
        if let Err(err) = sent {
            tracing::error!(table = %self.table, "the ledger record was not written: {}", self.failed("PutItem", &err));
        }
    }

    fn record_put(
        &self,
        kind: ActionKind,
        request: &ActionRequest,
        response: &ResponseCore,
        before: &Value,
        after: &Value,
    ) -> Result<Put, aws_sdk_dynamodb::error::BuildError> {
        let outcome = match (&response.error, response.replayed) {
            (_, Some(true)) => "replayed".to_owned(),
            (None, _) => "success".to_owned(),
            (Some(error), _) => error["code"].as_str().unwrap_or("ERROR").to_owned(),
        };
        let details = crate::text::prefix_bytes(&response.details.to_string(), MAX_DETAILS_BYTES).to_owned();
        let record = Record {
            at: String::new(),
            action: kind.as_str().to_owned(),
            target: request.target.as_deref().unwrap_or("").to_owned(),
            priority: request.priority.as_str().to_owned(),
            outcome,
            message: response.message.clone(),
            before: before.clone(),
            after: after.clone(),
            details: serde_json::from_str(&details).unwrap_or(Value::String(details)),
            request_id: response.execution_id.clone(),
        };
        let item = record_item(&request.incident_id.to_string(), &record, response.status_code);
        Put::builder().table_name(&self.table).set_item(Some(item)).build()
    }

    fn completed(&self, idempotency: &str, response: &ResponseCore) -> Option<Put> {
        let mut item = key_item(idempotency);
        item.insert("status".into(), s("COMPLETED"));
        item.insert("response".into(), s(serde_json::to_string(response).ok()?));
        item.insert("requestId".into(), s(response.execution_id.clone()));
        item.insert("expiresAt".into(), n(Utc::now().timestamp() + self.settings.idempotency_ttl.as_secs() as i64));
        Put::builder().table_name(&self.table).set_item(Some(item)).build().ok()
    }

    /// Pauses automation globally (`target` None) or for one target.
    pub async fn pause(&self, target: Option<&str>, by: &str, reason: &str) -> Result<Value, FunctionError> {
        let sk = target.map_or_else(|| "GLOBAL".to_owned(), |t| format!("TARGET#{t}"));
        let since = rfc3339(Utc::now());
        let mut item = key("PAUSE", sk);
        item.insert("by".into(), s(by));
        item.insert("reason".into(), s(reason));
        item.insert("since".into(), s(since.clone()));
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| self.failed("PutItem", &e))?;
        Ok(json!({"paused": target.unwrap_or("everything"), "by": by, "reason": reason, "since": since}))
    }

    /// Resumes what [`Ledger::pause`] paused.
    pub async fn resume(&self, target: Option<&str>) -> Result<Value, FunctionError> {
        let sk = target.map_or_else(|| "GLOBAL".to_owned(), |t| format!("TARGET#{t}"));
        let out = self
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key("PAUSE", sk)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.failed("DeleteItem", &e))?;
        Ok(json!({"resumed": target.unwrap_or("everything"), "wasPaused": out.attributes().is_some()}))
    }

    /// Writes a record that is not an action invocation's (the restore command's).
    pub async fn record_change(&self, incident: &str, record: &Record) -> Result<(), FunctionError> {
        let status = if record.outcome == "success" { 200 } else { 500 };
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(incident, record, status)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed("PutItem", &e))
    }
}

/// A record as its item: written now (its `at` is the time of writing), kept for [`RECORD_TTL`].
fn record_item(incident: &str, record: &Record, status: u16) -> Item {
    let now = Utc::now();
    HashMap::from([
        ("pk".to_owned(), s(format!("INCIDENT#{incident}"))),
        ("sk".to_owned(), s(format!("REC#{:013}#{}", now.timestamp_millis(), record.request_id))),
        ("at".to_owned(), s(rfc3339(now))),
        ("action".to_owned(), s(record.action.clone())),
        ("target".to_owned(), s(record.target.clone())),
        ("priority".to_owned(), s(record.priority.clone())),
        ("outcome".to_owned(), s(record.outcome.clone())),
        ("statusCode".to_owned(), n(status)),
        ("message".to_owned(), s(record.message.clone())),
        ("before".to_owned(), s(record.before.to_string())),
        ("after".to_owned(), s(record.after.to_string())),
        ("details".to_owned(), s(record.details.to_string())),
        ("requestId".to_owned(), s(record.request_id.clone())),
        ("expiresAt".to_owned(), n(now.timestamp() + RECORD_TTL.as_secs() as i64)),
    ])
}

fn key_item(idempotency: &str) -> Item {
    key(format!("IDEMPOTENCY#{idempotency}"), "IDEMPOTENCY")
}

fn record_of(item: &Item) -> Record {
    let json = |name: &str| serde_json::from_str(&text(item, name)).unwrap_or(Value::Null);
    Record {
        at: text(item, "at"),
        action: text(item, "action"),
        target: text(item, "target"),
        priority: text(item, "priority"),
        outcome: text(item, "outcome"),
        message: text(item, "message"),
        before: json("before"),
        after: json("after"),
        details: json("details"),
        request_id: text(item, "requestId"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_read_as_count_per_seconds() {
        assert_eq!(Limit::parse("3/3600"), Ok(Limit { count: 3, window: Duration::from_secs(3600) }));
        for bad in ["3", "0/3600", "3/10", "x/60", "3/1e9"] {
            assert!(Limit::parse(bad).is_err(), "{bad}");
        }
        let vars = [("BUDGET_FLEET", "50/900"), ("LEDGER_FAILURE", "open")];
        let settings = Settings::with(|name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()));
        let read = LedgerSettings::from_settings(&settings).unwrap();
        assert_eq!(read.budgets.fleet, Limit { count: 50, window: Duration::from_secs(900) });
        assert_eq!(read.budgets.per_target_action, Budgets::default().per_target_action);
        assert_eq!(read.failure, LedgerFailure::Open);
    }

    #[test]
    fn windows_are_fixed_and_named_with_their_reset() {
        let c = counters(&Budgets::default(), "api", "scale_up", 7_250);
        assert_eq!((c[0].window_start, c[2].window_start), (7_200, 7_200));
        assert_eq!(c[0].pk, "BUDGET#target-action#api#scale_up");
        let FunctionError::BudgetExhausted { resets, budget, .. } = c[2].exhausted(20) else { panic!("budget") };
        assert_eq!((budget.as_str(), resets.as_str()), ("fleet-wide", "1970-01-01T02:10:00Z"));
    }

    #[test]
    fn a_different_priority_is_a_different_request() {
        let request = |priority: &str| {
            ActionRequest::parse(
                json!({"action": "scale_up", "target": "api", "incidentId": "INC-1", "priority": priority}),
                ActionKind::ScaleUp,
            )
            .unwrap()
        };
        let high = idempotency_key(ActionKind::ScaleUp, &request("high"));
        assert_eq!(high, idempotency_key(ActionKind::ScaleUp, &request("high")));
        assert_ne!(high, idempotency_key(ActionKind::ScaleUp, &request("critical")));
    }

    #[test]
    fn a_record_reads_as_one_line_of_a_page() {
        let record = Record {
            at: "2026-12-01T02:16:05Z".into(),
            action: "scale_up".into(),
            target: "api".into(),
            priority: "critical".into(),
            outcome: "success".into(),
            message: "Scaled ECS service production/api from 2 to 10 tasks".into(),
            before: Value::Null,
            after: Value::Null,
            details: Value::Null,
            request_id: "r".into(),
        };
        assert_eq!(record.line(), "02:16 scale_up api: Scaled ECS service production/api from 2 to 10 tasks");
        let refused = Record { outcome: "BUDGET_EXHAUSTED".into(), message: "budget spent".into(), ..record };
        assert_eq!(refused.line(), "02:16 scale_up api: [BUDGET_EXHAUSTED] budget spent");
    }
}
