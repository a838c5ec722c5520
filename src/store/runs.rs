//! Rows of runbook runs.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// One run as stored and listed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: i64,
    pub runbook: String,
    pub incident_id: Option<i64>,
    /// `auto` or `manual`.
    pub trigger: String,
    pub actor: String,
    pub target: String,
    /// Secrets already replaced by `[REDACTED]`.
    pub params: BTreeMap<String, String>,
    pub status: String,
    pub exit_code: Option<i32>,
    pub output: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub recovery_due: Option<DateTime<Utc>>,
    /// While `pending_approval`: when the proposal expires unapproved.
    pub approval_due: Option<DateTime<Utc>>,
}
