//! Overrides written from the console ("I take this shift until …"). The store holds
//! them; this mirror, shared by every configuration a reload swaps in, lets paging,
//! `GET /api/v1/oncall` and the console read them without a query. It is filled at
//! start and again after each write, so a restart keeps them.

use super::schedule::Override;
use crate::store::StoreError;
use crate::store::console::{ConsoleStore, OverrideRow};
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// The stored overrides that have not ended, oldest first.
#[derive(Debug, Clone, Default)]
pub struct StoredOverrides(Arc<ArcSwap<Vec<OverrideRow>>>);

impl StoredOverrides {
    /// Reads them again from the store.
    pub async fn refresh(
        &self,
        store: &dyn ConsoleStore,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.0.store(Arc::new(store.overrides(now).await?));
        Ok(())
    }

    /// Replaces the mirror (for `tocsin oncall`, which reads the rows itself).
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
