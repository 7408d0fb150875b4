//! One alarm's incident as the playbook runs it: which step it is on, what it waits for, and the
//! evidence so far. The ledger keeps it as one item, rewritten only by whoever read its `version`
//! (see [`crate::store`]), so a sweep and an event can never both act on one verification.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::verify::{Expectation, Outcome, Verdict};

/// How long an invocation holds a run it is acting on: past it, the sweep takes over (the
/// invocation died). Longer than the function's 900-second timeout, which a step may take.
pub const ACT_LEASE: Duration = Duration::minutes(16);
/// The same for a page (notify_human answers within 15 s): a page that did not go out is sent
/// again by the next sweep after this.
pub const PAGE_LEASE: Duration = Duration::minutes(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A step is being invoked (held until `leaseUntil`).
    Acting,
    /// A step changed its resource; its verification is pending.
    Verifying,
    /// The steps are exhausted; the page is being sent (held until `leaseUntil`).
    Paging,
    /// The page was sent.
    Paged,
    /// A fix was verified, or the alarm recovered before the next step.
    Resolved,
}

impl Status {
    /// Whether the run still has something to do (it is in the open index).
    pub fn open(self) -> bool {
        matches!(self, Self::Acting | Self::Verifying | Self::Paging)
    }
}

/// A verification the run waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub expectation: Expectation,
    pub since: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    /// A deployment's outcome that its event brought (`COMPLETED`, or `FAILED: <reason>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_news: Option<String>,
}

/// One line of evidence: what was tried or seen, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub at: DateTime<Utc>,
    pub text: String,
}

/// The run, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub incident_id: String,
    pub playbook: String,
    pub alarm: String,
    pub target: String,
    /// When the alarm entered ALARM.
    pub alarm_at: DateTime<Utc>,
    pub status: Status,
    /// The step acted on or verified (0-based); the number of steps once they are exhausted.
    pub step: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
    pub evidence: Vec<Evidence>,
    /// Verdicts so far, in order (for the metrics and the answer).
    #[serde(default)]
    pub verdicts: Vec<Outcome>,
    /// The optimistic lock: each write expects the version it read.
    #[serde(default)]
    pub version: u64,
}

impl Run {
    /// A run about to act on its first step.
    pub fn start(
        incident_id: String,
        playbook: String,
        alarm: String,
        target: String,
        alarm_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            incident_id,
            playbook,
            alarm,
            target,
            alarm_at,
            status: Status::Acting,
            step: 0,
            pending: None,
            lease_until: Some(now + ACT_LEASE),
            evidence: Vec::new(),
            verdicts: Vec::new(),
            version: 0,
        }
    }

    pub fn note(&mut self, at: DateTime<Utc>, text: impl Into<String>) {
        self.evidence.push(Evidence { at, text: text.into() });
    }

    /// Whether an invocation that died left this run to be taken over.
    pub fn abandoned(&self, now: DateTime<Utc>) -> bool {
        matches!(self.status, Status::Acting | Status::Paging) && self.lease_until.is_none_or(|until| until <= now)
    }

    /// Held for acting on `step` until the lease ends.
    pub fn acting(&mut self, step: usize, now: DateTime<Utc>) {
        self.status = Status::Acting;
        self.step = step;
        self.pending = None;
        self.lease_until = Some(now + ACT_LEASE);
    }

    /// The step changed its resource: wait for `expectation` until `deadline`.
    pub fn verifying(&mut self, expectation: Expectation, now: DateTime<Utc>, deadline: DateTime<Utc>) {
        self.status = Status::Verifying;
        self.pending = Some(Pending { expectation, since: now, deadline, deployment_news: None });
        self.lease_until = None;
    }

    /// The verdict on the pending step: resolved when verified, else on to the next step.
    pub fn judged(&mut self, verdict: &Verdict, now: DateTime<Utc>) {
        self.note(now, format!("verdict {}: {}", verdict.outcome.as_str(), verdict.evidence));
        self.verdicts.push(verdict.outcome);
        self.pending = None;
        match verdict.outcome {
            Outcome::Verified => self.status = Status::Resolved,
            Outcome::Failed | Outcome::Inconclusive => self.acting(self.step + 1, now),
        }
    }

    /// The alarm is no longer in ALARM before `step`: nothing more to do, nothing spent.
    pub fn recovered(&mut self, step: usize, alarm_state: &str, now: DateTime<Utc>) {
        self.note(now, format!("step {} skipped: alarm {} is {alarm_state}; no budget spent", step + 1, self.alarm));
        self.status = Status::Resolved;
        self.pending = None;
        self.lease_until = None;
    }

    /// The steps are exhausted: the page is being sent.
    pub fn paging(&mut self, steps: usize, now: DateTime<Utc>) {
        self.status = Status::Paging;
        self.step = steps;
        self.pending = None;
        self.lease_until = Some(now + PAGE_LEASE);
    }

    /// The evidence as the page's lines: `02:15 restart_service api → ...`.
    pub fn evidence_lines(&self) -> Vec<String> {
        self.evidence.iter().map(|e| format!("{} {}", e.at.format("%H:%M"), e.text)).collect()
    }
}
