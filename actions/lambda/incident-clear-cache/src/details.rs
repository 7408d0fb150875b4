//! What clear_cache's answer says, per mode.

use incident_core::state::CacheNode;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ClearDetails {
    Flush(FlushDetails),
    Pattern(PatternDetails),
    Reboot(RebootDetails),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlushDetails {
    pub mode: &'static str,
    pub host: String,
    pub keys_before: u64,
    pub keys_after: u64,
    pub keys_removed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatternDetails {
    pub mode: &'static str,
    pub host: String,
    pub key_pattern: String,
    pub keys_before: u64,
    /// Keys written while the scan ran can be removed too, so `keysRemoved` may exceed `keysBefore`.
    pub keys_after: u64,
    pub keys_matched: u64,
    pub keys_removed: u64,
    pub scan_steps: u64,
    pub complete: bool,
    /// Where a scan stopped at the deadline would go on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_cursor: Option<u64>,
}

/// A rolling reboot: planned (`order`), done (`rebooted`), or stopped (`stoppedAt`, `notStarted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RebootDetails {
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_at_a_time: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<CacheNode>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebooted: Option<Vec<CacheNode>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<CacheNode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_started: Option<Vec<CacheNode>>,
}
