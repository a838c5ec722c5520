//! The rows one batch touches, for replicas writing concurrently: the open incidents
//! of the alerts and groups a batch names, their firing alerts, and ids reserved in
//! blocks. The locks themselves are the backend's (`Backend::lock_keys`).

use super::flaps::flap_from_row;
use super::incidents::INCIDENT_COLUMNS;
use super::paging::{ESCALATION_COLUMNS, escalation_from_row};
use super::writes::{FIRING, OPEN_ALERT_COLUMNS, open_alert_from_row};
use super::{Arg, Backend, CHUNK, Columns, ID_BLOCK, On, Sql, SqlStore};
use crate::clock::{from_millis, to_millis};
use crate::dedup::DedupKey;
use crate::store::{IdTable, OpenState, SharedWrites, StoreError, TouchedRows};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::ops::Range;

/// One round trip for what a batch needs of `keys` (all of `source`): their firing
/// alerts and flap histories, and with `silences` the silences' change counter —
/// rows of one shape told apart by `kind`, since every query is a round trip made
/// under the batch's locks.
///
/// The keys are one array, so the text is one of two whatever their number: parsed
/// once per connection, where a list written out was parsed for every batch.
/// PostgreSQL still plans it per execution (it keeps choosing custom plans).
fn identities_rows(source: &str, keys: &[DedupKey], silences: bool) -> Sql {
    let counter = if silences {
        " UNION ALL SELECT 'silences', version, '', '', NULL, '', CAST(0 AS BIGINT), \
         CAST(0 AS BIGINT), FALSE, FALSE, FALSE, NULL FROM silence_changes"
    } else {
        ""
    };
    let keys: Vec<String> = keys.iter().map(|key| key.key.clone()).collect();
    Sql::new(format!(
        "SELECT 'alert' AS kind, {OPEN_ALERT_COLUMNS}, NULL AS changes FROM alerts \
         WHERE status = 'firing' AND source = ? AND dedup_key = ANY(?) \
         UNION ALL SELECT 'flap', CAST(0 AS BIGINT), source, dedup_key, incident_id, '', \
         CAST(0 AS BIGINT), CAST(0 AS BIGINT), FALSE, FALSE, flapping, changes FROM flap_history \
         WHERE source = ? AND dedup_key = ANY(?){counter}"
    ))
    .arg(source)
    .arg(Arg::Texts(keys.clone()))
    .arg(source)
    .arg(Arg::Texts(keys))
}

#[async_trait]
impl<B: Backend> SharedWrites for SqlStore<B> {
    fn shared(&self) -> bool {
        !B::ONE_PROCESS
    }

    async fn begin_keyed(&self, keys: &[i64]) -> Result<(), StoreError> {
        self.db.begin_keyed(&in_order(keys)).await
    }

    async fn lock_keys(&self, keys: &[i64]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.db.lock_keys(&in_order(keys)).await
    }

    async fn read_touched(
        &self,
        identities: &[DedupKey],
        groups: &[String],
    ) -> Result<TouchedRows, StoreError> {
        let mut touched = TouchedRows::default();
        // Per source, so the unique index on firing alerts is searched on both of its
        // columns (`source = ? AND dedup_key = ANY`), whatever the statistics say.
        for same_source in identities.chunk_by(|a, b| a.source == b.source) {
            for chunk in same_source.chunks(CHUNK) {
                let first = touched.silences_version.is_none();
                let sql = identities_rows(&chunk[0].source, chunk, first);
                for row in self.db.fetch_all(On::Writer, sql).await? {
                    match row.text("kind")?.as_str() {
                        "alert" => touched.alerts.push(open_alert_from_row(&row)?),
                        "flap" => touched.flaps.push(flap_from_row(&row)?),
                        _ => touched.silences_version = Some(row.int("id")?),
                    }
                }
            }
        }
        let mut ids: Vec<i64> = touched
            .alerts
            .iter()
            .filter_map(|(_, alert)| alert.incident_id)
            .collect();
        for chunk in groups.chunks(CHUNK) {
            let mut sql =
                Sql::once("SELECT id FROM incidents WHERE status <> 'resolved' AND group_key IN (");
            sql.list(chunk.iter()).push(")");
            for row in self.db.fetch_all(On::Writer, sql).await? {
                ids.push(row.first_int()?);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        touched.incidents = ids;
        Ok(touched)
    }

    async fn load_slice(&self, incidents: &[i64]) -> Result<OpenState, StoreError> {
        let mut state = OpenState::default();
        for chunk in incidents.chunks(CHUNK) {
            let mut sql = Sql::once(format!(
                "SELECT {OPEN_ALERT_COLUMNS} FROM alerts WHERE status = 'firing' AND incident_id IN ("
            ));
            sql.list(chunk.iter().copied()).push(")");
            state.alerts.extend(self.open_alerts(sql).await?);
            let mut sql = Sql::once(format!(
                "SELECT {INCIDENT_COLUMNS}, {FIRING} FROM incidents WHERE status <> 'resolved' AND id IN ("
            ));
            sql.list(chunk.iter().copied()).push(")");
            state.incidents.extend(self.open_incidents(sql).await?);
        }
        // Only a batch that names open incidents reads their timers: one more
        // statement, paid by joins and acknowledgements, not by new alerts.
        let open: Vec<i64> = state
            .incidents
            .iter()
            .map(|(incident, _)| incident.id)
            .collect();
        for chunk in open.chunks(CHUNK) {
            let mut sql = Sql::once(format!(
                "SELECT {ESCALATION_COLUMNS} FROM escalations WHERE incident_id IN ("
            ));
            sql.list(chunk.iter().copied()).push(")");
            state
                .escalations
                .extend(self.fetch_map(On::Writer, sql, escalation_from_row).await?);
        }
        Ok(state)
    }

    async fn active_silences(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::silence::Silence>, StoreError> {
        SqlStore::active_silences(self, now).await
    }

    async fn load_open_incidents(&self, kept_source: &str) -> Result<OpenState, StoreError> {
        // One indexed branch each: a condition over all three would scan every firing
        // alert, at every timer pass.
        let sql = Sql::new(format!(
            "SELECT {OPEN_ALERT_COLUMNS} FROM alerts WHERE status = 'firing' AND incident_id IN (SELECT id FROM incidents WHERE status <> 'resolved') \
             UNION SELECT {OPEN_ALERT_COLUMNS} FROM alerts WHERE status = 'firing' AND source = ? \
             UNION SELECT {OPEN_ALERT_COLUMNS} FROM alerts WHERE status = 'firing' AND flapping"
        ))
        .arg(kept_source);
        self.open_state(sql).await
    }

    async fn timers_passed_at(&self) -> Result<DateTime<Utc>, StoreError> {
        let sql = Sql::new("SELECT passed_at FROM timer_passes");
        let row = self.db.fetch_optional(On::Readers, sql).await?;
        Ok(from_millis(match row {
            Some(row) => row.int("passed_at")?,
            None => 0,
        }))
    }

    async fn mark_timers_passed(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut sql = Sql::once("UPDATE timer_passes SET passed_at = ");
        sql.bind(to_millis(at));
        self.db.execute(On::Writer, sql).await?;
        Ok(())
    }

    async fn inhibitors(
        &self,
        keys: Option<&[String]>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let Some(keys) = keys else {
            let sql = Sql::new("SELECT key, holder FROM inhibitors");
            return self.fetch_map(On::Writer, sql, inhibitor_from_row).await;
        };
        let mut held = Vec::new();
        for chunk in keys.chunks(CHUNK) {
            let mut sql = Sql::once("SELECT key, holder FROM inhibitors WHERE key IN (");
            sql.list(chunk.iter().map(String::as_str)).push(")");
            held.extend(self.fetch_map(On::Writer, sql, inhibitor_from_row).await?);
        }
        Ok(held)
    }

    async fn relay_commits(
        &self,
        to: &tokio::sync::broadcast::Sender<()>,
    ) -> Result<(), StoreError> {
        self.db.relay_commits(to).await
    }

    async fn reserve_ids(&self, table: IdTable, count: i64) -> Result<Vec<Range<i64>>, StoreError> {
        let mut blocks = Vec::new();
        let mut reserved = 0;
        while reserved < count {
            let first = self.db.id_block(table).await?;
            blocks.push(first..first + ID_BLOCK);
            reserved += ID_BLOCK;
        }
        Ok(blocks)
    }
}

/// An inhibitor key and the alert holding it.
fn inhibitor_from_row(row: &impl Columns) -> Result<(String, String), StoreError> {
    Ok((row.text("key")?, row.text("holder")?))
}

/// Keys sorted and each once: every batch takes its locks in one order, so two
/// batches never wait on each other.
fn in_order(keys: &[i64]) -> Vec<i64> {
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}
