//! An incident ledger in memory, with faults on demand: what the driver's and the guard's own tests
//! run against, so that their policy (what is refused, retried, given back, and when) is tested
//! without a table. The DynamoDB ledger has its own tests in `incident-ledger`, against the emulator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;

use crate::budget::Counter;
use crate::contract::ResponseCore;
use crate::ledger::{
    Claim, Guards, HeldClaim, History, KeyClaim, KeyEnd, KeyState, Ledger, LedgerError, LedgerFuture, NewRecord, Pause,
    Record,
};

/// What a ledger call does instead of answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Fail(LedgerError),
    /// Answers after this long.
    Slow(Duration),
    /// Never answers.
    Hang,
}

#[derive(Debug, Default)]
struct Tables {
    keys: HashMap<String, (String, KeyClaim, Option<ResponseCore>)>,
    counts: HashMap<String, u64>,
    pauses: Vec<Pause>,
    claims: HashMap<String, Claim>,
    records: Vec<NewRecord>,
    calls: Vec<&'static str>,
    faults: HashMap<&'static str, (Fault, u32)>,
}

/// The ledger in memory. Operations are named as the trait's methods (`take_key`, `spend`, ...).
#[derive(Debug, Clone, Default)]
pub struct MemoryLedger {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryLedger {
    /// Makes the next `times` calls of `operation` do `fault` (`u32::MAX`: every call).
    pub fn inject(&self, operation: &'static str, fault: Fault, times: u32) {
        self.lock().faults.insert(operation, (fault, times));
    }

    pub fn pause(&self, target: Option<&str>, by: &str, reason: &str) {
        let scope = target.map_or_else(|| "globally".to_owned(), |t| format!("for {t}"));
        let pause = Pause {
            scope,
            target: target.map(str::to_owned),
            by: by.into(),
            reason: reason.into(),
            since: "now".into(),
        };
        self.lock().pauses.push(pause);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().calls.clone()
    }

    pub fn records(&self) -> Vec<NewRecord> {
        self.lock().records.clone()
    }

    /// The count of the budget counter whose key starts with `pk` (any window).
    pub fn count(&self, pk: &str) -> u64 {
        self.lock().counts.iter().filter(|(k, _)| k.starts_with(pk)).map(|(_, c)| *c).sum()
    }

    /// The status of the key of `incident`'s request (`INPROGRESS`, `APPLYING`, `COMPLETED`), if any.
    pub fn key_status(&self, incident: &str) -> Vec<String> {
        self.lock().keys.values().filter(|(_, k, _)| k.incident_id == incident).map(|(s, _, _)| s.clone()).collect()
    }

    pub fn claims(&self) -> Vec<String> {
        self.lock().claims.keys().cloned().collect()
    }

    /// Ends every claim's hold (a cooldown over).
    pub fn release_claims(&self) {
        self.lock().claims.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the call, and the fault to play for it if any.
    fn enter(&self, operation: &'static str) -> Option<Fault> {
        let mut tables = self.lock();
        tables.calls.push(operation);
        let (fault, left) = tables.faults.get_mut(operation)?;
        if *left == 0 {
            return None;
        }
        if *left != u32::MAX {
            *left -= 1;
        }
        Some(fault.clone())
    }

    fn call<'a, T: Send + 'a>(
        &'a self,
        operation: &'static str,
        work: impl FnOnce(&mut Tables) -> T + Send + 'a,
    ) -> LedgerFuture<'a, T> {
        let fault = self.enter(operation);
        Box::pin(async move {
            match fault {
                Some(Fault::Fail(error)) => return Err(error),
                Some(Fault::Hang) => std::future::pending::<()>().await,
                Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
                None => {}
            }
            Ok(work(&mut self.lock()))
        })
    }
}

impl Ledger for MemoryLedger {
    fn table(&self) -> &str {
        "memory"
    }

    fn read_guards<'a>(&'a self, target: Option<&'a str>, counters: &'a [Counter]) -> LedgerFuture<'a, Guards> {
        self.call("read_guards", move |t| {
            // The global pause first, as the DynamoDB ledger reads them.
            let global = t.pauses.iter().find(|p| p.target.is_none());
            let pause =
                global.or_else(|| t.pauses.iter().find(|p| p.target.is_some() && p.target.as_deref() == target));
            let pause = pause.cloned();
            let counts = counters.iter().map(|c| t.counts.get(&slot(c)).copied().unwrap_or(0)).collect();
            Guards { pause, counts }
        })
    }

    fn history<'a>(&'a self, incident: &'a str, full: bool) -> LedgerFuture<'a, History> {
        self.call("history", move |t| {
            let records: Vec<Record> = t.records.iter().filter(|r| r.incident_id == incident).map(read_back).collect();
            let earlier = records.len();
            History { records: if full { records } else { Vec::new() }, earlier, unavailable: None, from_ledger: true }
        })
    }

    fn take_key<'a>(&'a self, key: &'a KeyClaim) -> LedgerFuture<'a, KeyState> {
        self.call("take_key", move |t| match t.keys.get(&key.hash) {
            Some((status, _, Some(response))) if status == "COMPLETED" => {
                KeyState::Completed(Box::new(response.clone()))
            }
            Some((status, held, _))
                if status == "APPLYING" && held.in_progress_until_ms <= Utc::now().timestamp_millis() =>
            {
                KeyState::Applying { request_id: held.request_id.clone(), since: "earlier".into() }
            }
            Some((status, held, _))
                if held.in_progress_until_ms > Utc::now().timestamp_millis()
                    && !(status == "INPROGRESS" && held.request_id == key.request_id) =>
            {
                KeyState::InProgress { request_id: held.request_id.clone() }
            }
            _ => {
                t.keys.insert(key.hash.clone(), ("INPROGRESS".into(), key.clone(), None));
                KeyState::Taken
            }
        })
    }

    fn mark_applying<'a>(&'a self, key: &'a KeyClaim) -> LedgerFuture<'a, ()> {
        let marked = self.call("mark_applying", move |t| match t.keys.get_mut(&key.hash) {
            Some(entry) if entry.1.request_id == key.request_id => {
                entry.0 = "APPLYING".into();
                Ok(())
            }
            _ => Err(LedgerError::Unavailable("ConditionalCheckFailed: the key is not this invocation's".into())),
        });
        Box::pin(async move { marked.await? })
    }

    fn claim<'a>(&'a self, claim: &'a Claim) -> LedgerFuture<'a, Option<HeldClaim>> {
        self.call("claim", move |t| match t.claims.get(&claim.resource) {
            Some(held) if held.held_until_ms > Utc::now().timestamp_millis() && held.id != claim.id => {
                Some(HeldClaim { holder: held.holder.clone(), since: "earlier".into() })
            }
            _ => {
                t.claims.insert(claim.resource.clone(), claim.clone());
                None
            }
        })
    }

    fn release<'a>(&'a self, claim: &'a Claim) -> LedgerFuture<'a, ()> {
        self.call("release", move |t| {
            if t.claims.get(&claim.resource).is_some_and(|held| held.id == claim.id) {
                t.claims.remove(&claim.resource);
            }
        })
    }

    fn spend<'a>(&'a self, counter: &'a Counter) -> LedgerFuture<'a, Option<u64>> {
        self.call("spend", move |t| {
            let count = t.counts.entry(slot(counter)).or_insert(0);
            if *count >= counter.limit.count {
                return Some(*count);
            }
            *count += 1;
            None
        })
    }

    fn refund<'a>(&'a self, counter: &'a Counter) -> LedgerFuture<'a, ()> {
        self.call("refund", move |t| {
            if let Some(count) = t.counts.get_mut(&slot(counter)) {
                *count = count.saturating_sub(1);
            }
        })
    }

    fn finish<'a>(&'a self, record: &'a NewRecord, key: Option<(&'a KeyClaim, KeyEnd<'a>)>) -> LedgerFuture<'a, ()> {
        let ended = key.map(|(claim, end)| (claim.clone(), end_of(end)));
        self.call("finish", move |t| {
            t.records.push(record.clone());
            match ended {
                Some((key, Some(response))) => {
                    t.keys.insert(key.hash.clone(), ("COMPLETED".into(), key, Some(response)));
                }
                Some((key, None)) => {
                    t.keys.remove(&key.hash);
                }
                None => {}
            }
        })
    }

    fn record<'a>(&'a self, record: &'a NewRecord) -> LedgerFuture<'a, ()> {
        self.call("record", move |t| t.records.push(record.clone()))
    }
}

fn slot(counter: &Counter) -> String {
    format!("{}/{}", counter.pk, counter.sk())
}

fn end_of(end: KeyEnd<'_>) -> Option<ResponseCore> {
    match end {
        KeyEnd::Completed(response) => Some(response.clone()),
        KeyEnd::Removed => None,
    }
}

fn read_back(record: &NewRecord) -> Record {
    Record {
        schema: crate::state::SCHEMA,
        at: Utc::now().to_rfc3339(),
        action: record.action.clone(),
        target: record.target.clone(),
        priority: record.priority.clone(),
        outcome: record.outcome.clone(),
        message: record.message.clone(),
        before: record.before.clone(),
        after: record.after.clone(),
        details: record.details.clone(),
        request_id: record.request_id.clone(),
    }
}
