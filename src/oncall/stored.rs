//! Overrides written from the console ("I take this shift until …"). The store holds
//! them; this mirror, shared by every configuration a reload swaps in, lets paging,
//! `GET /api/v1/oncall` and the console read them without a query. It is filled at
//! start and again after each write, so a restart keeps them.

use super::schedule::Override;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A stored on-call override: `user_id` takes `schedule` from `starts_at` to `ends_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRow {
    pub id: i64,
    pub schedule: String,
    pub user_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
}

/// The stored overrides that have not ended, oldest first.
#[derive(Debug, Clone, Default)]
pub struct StoredOverrides(Arc<ArcSwap<Vec<OverrideRow>>>);

impl StoredOverrides {
    /// Replaces the mirror with the rows just read from the store.
    pub fn replace(&self, rows: Vec<OverrideRow>) {
        self.0.store(Arc::new(rows));
    }

    /// The override of `schedule` at `at`; the latest written wins.
    pub fn at(&self, schedule: &str, at: DateTime<Utc>) -> Option<Override> {
        self.0
            .load()
            .iter()
            .rev()
            .find(|row| row.schedule == schedule && row.starts_at <= at && at < row.ends_at)
            .map(|row| Override {
                user: row.user_id.clone(),
                start: row.starts_at,
                end: row.ends_at,
            })
    }
}
