//! Who inhibits whom, as the writer loads it. With one writer (SQLite) it is
//! computed from every firing alert and kept in memory only; replicas (PostgreSQL)
//! read the `inhibitors` rows instead, written with each firing and resolution, and
//! a batch reads again only the keys its alerts hold or are inhibited by
//! (`slice.rs`). The rules live in the configuration, so each replica brings the rows
//! in line with them when it starts.

use super::Writer;
use crate::dedup::DedupKey;
use crate::inhibit::Inhibitors;
use crate::store::{AlertQuery, StoreError, WriteBatch};
use std::collections::{BTreeSet, HashSet};

impl Writer {
    /// The inhibitors among the firing alerts, by the rules of now: their fields,
    /// not just their ids, so every firing alert is read.
    pub(super) async fn firing_inhibitors(&self) -> Result<Inhibitors, StoreError> {
        let firing = self
            .store
            .alerts(&AlertQuery {
                statuses: vec!["firing".into()],
                limit: i64::MAX,
                ..Default::default()
            })
            .await?;
        let mut inhibitors = Inhibitors::default();
        for record in firing {
            let holder = DedupKey {
                source: record.source.clone(),
                key: record.dedup_key.clone(),
            }
            .joined();
            inhibitors.fire(&self.decider.config.inhibit, &holder, &record.into_alert());
        }
        Ok(inhibitors)
    }

    /// The inhibitors as the store's rows say.
    pub(super) async fn stored_inhibitors(&self) -> Result<Inhibitors, StoreError> {
        let mut inhibitors = Inhibitors::default();
        inhibitors.replace(&[], self.store.inhibitors(None).await?);
        Ok(inhibitors)
    }

    /// At start, under the whole turn: the rows become what the firing alerts hold
    /// by the rules of now (rules changed, or alerts fired before the rows existed).
    pub(super) async fn reconcile_inhibitors(&mut self) -> Result<(), StoreError> {
        self.store.begin_turn().await?;
        match self.inhibitors_in_line().await {
            Ok(inhibitors) => {
                self.decider.view.inhibitors = inhibitors;
                Ok(())
            }
            Err(error) => {
                self.store.end_turn().await;
                Err(error)
            }
        }
    }

    async fn inhibitors_in_line(&self) -> Result<Inhibitors, StoreError> {
        let computed = self.firing_inhibitors().await?;
        let wanted: HashSet<(String, String)> = computed
            .all()
            .map(|(key, holder)| (key.clone(), holder.clone()))
            .collect();
        let stored: HashSet<(String, String)> =
            self.store.inhibitors(None).await?.into_iter().collect();
        let mut batch = WriteBatch::default();
        // A holder with any row out of line is written again whole.
        let redone: BTreeSet<&String> = stored
            .symmetric_difference(&wanted)
            .map(|(_, holder)| holder)
            .collect();
        for holder in &redone {
            batch.release_inhibitors(holder);
        }
        for (key, holder) in &wanted {
            if redone.contains(holder) {
                batch.hold_inhibitor(key.clone(), holder);
            }
        }
        if !batch.is_empty() {
            tracing::info!(
                holders = redone.len(),
                "inhibitor rows brought in line with the firing alerts and [[inhibit]] rules"
            );
        }
        self.store.commit(&batch).await?;
        Ok(computed)
    }
}
