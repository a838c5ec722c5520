//! The writer's side: the open state loaded at start, the turn, and the group commit
//! that writes a whole [`WriteBatch`] in one transaction.

use super::alerts::{insert_alerts, update_alert, update_alerts, upsert_silence};
use super::flaps::keep_flap;
use super::incidents::{INCIDENT_COLUMNS, incident_from_row, insert_timeline, upsert_incidents};
use super::paging::{
    ESCALATION_COLUMNS, escalation_from_row, insert_notifications, upsert_escalations,
};
use super::runs::{RUN_COLUMNS, run_from_row, upsert_run};
use super::tickets::insert_ticket_ops;
use super::{Backend, Columns, INSERT_CHUNK, On, Sql, SqlStore};
use crate::clock::to_millis;
use crate::dedup::{DedupKey, OpenAlert};
use crate::incident::Incident;
use crate::store::{AlertStore, OpenState, StoreError, WriteBatch, WriteStore};
use async_trait::async_trait;

#[async_trait]
impl<B: Backend> WriteStore for SqlStore<B> {
    async fn ping(&self) -> Result<(), StoreError> {
        self.db.execute(On::Readers, Sql::new("SELECT 1")).await?;
        Ok(())
    }

    async fn load_open_state(&self) -> Result<OpenState, StoreError> {
        self.open_state(Sql::new(format!(
            "SELECT {OPEN_ALERT_COLUMNS} FROM alerts WHERE status = 'firing'"
        )))
        .await
    }

    async fn begin_turn(&self) -> Result<bool, StoreError> {
        self.db.take_turn().await
    }

    async fn end_turn(&self) {
        self.db.give_up_turn().await;
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            self.db.give_up_turn().await;
            return Ok(());
        }
        self.db
            .execute_batch(statements(batch, B::ROUND_TRIPS))
            .await
    }
}

/// The statements that write `batch`, in the order they must run. With
/// `round_trips` (a server) alerts' changes are written many rows per statement;
/// SQLite's writer runs one kept statement per row, which costs no round trip.
fn statements(batch: &WriteBatch, round_trips: bool) -> Vec<Sql> {
    let mut out = Vec::new();
    let incidents: Vec<&Incident> = batch.incidents().collect();
    for chunk in incidents.chunks(INSERT_CHUNK / 2) {
        out.push(upsert_incidents(chunk));
    }
    // Updates before inserts: an identity resolved and firing again in one batch
    // then never has two firing rows, which PostgreSQL's unique index refuses.
    if round_trips {
        let updates: Vec<_> = batch.alert_updates().collect();
        for chunk in updates.chunks(INSERT_CHUNK / 2) {
            out.push(update_alerts(chunk));
        }
    } else {
        for (id, update) in batch.alert_updates() {
            out.push(update_alert(*id, update));
        }
    }
    for chunk in batch.new_alerts().chunks(INSERT_CHUNK) {
        out.push(insert_alerts(chunk));
    }
    for chunk in batch.timeline().chunks(INSERT_CHUNK) {
        out.push(insert_timeline(chunk));
    }
    for chunk in batch.notifications().chunks(INSERT_CHUNK / 2) {
        out.push(insert_notifications(chunk, |n| batch.claim_of(n)));
    }
    for incident_id in batch.cancelled_pages() {
        let mut sql = Sql::once(
            "UPDATE notifications SET status = 'cancelled' WHERE kind = 'page' AND status = 'pending' AND incident_id = ",
        );
        sql.bind(*incident_id).push(";");
        out.push(sql);
    }
    for run in batch.runs() {
        out.push(upsert_run(run));
    }
    for chunk in batch.ticket_ops().chunks(INSERT_CHUNK / 2) {
        out.push(insert_ticket_ops(chunk));
    }
    for silence in batch.silences() {
        out.push(upsert_silence(silence));
    }
    if !batch.silences().is_empty() {
        out.push(Sql::new(
            "UPDATE silence_changes SET version = version + 1;",
        ));
    }
    for (name, at) in batch.heartbeats() {
        let mut sql = Sql::once("INSERT INTO heartbeats (name, last_seen) VALUES (");
        sql.bind(name)
            .push(", ")
            .bind(to_millis(*at))
            .push(") ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen;");
        out.push(sql);
    }
    for (key, flap) in batch.flaps() {
        out.push(keep_flap(key, flap.as_ref()));
    }
    let (held, released) = batch.inhibitors();
    for chunk in released.chunks(INSERT_CHUNK) {
        let mut sql = Sql::once("DELETE FROM inhibitors WHERE holder IN (");
        sql.list(chunk.iter().map(String::as_str)).push(");");
        out.push(sql);
    }
    for chunk in held.chunks(INSERT_CHUNK / 2) {
        let mut sql = Sql::once("INSERT INTO inhibitors (key, holder) VALUES ");
        for (i, (key, holder)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .bind(key.as_str())
                .push(", ")
                .bind(holder.as_str())
                .push(")");
        }
        sql.push(" ON CONFLICT (key, holder) DO NOTHING;");
        out.push(sql);
    }
    for (key, at) in batch.spent() {
        let mut sql = Sql::once("INSERT INTO ack_links_used (nonce, used_at) VALUES (");
        sql.bind(key).push(", ").bind(to_millis(*at)).push(");");
        out.push(sql);
    }
    for (key, (answer, at)) in batch.answers() {
        let mut sql = Sql::once("INSERT INTO idempotency_keys (key, answer, created_at) VALUES (");
        sql.bind(key)
            .push(", ")
            .bind(answer)
            .push(", ")
            .bind(to_millis(*at))
            .push(") ON CONFLICT (key) DO UPDATE SET answer = excluded.answer, created_at = excluded.created_at;");
        out.push(sql);
    }
    if let Some(prune) = batch.pruning() {
        for (delete, before) in [
            (
                "DELETE FROM idempotency_keys WHERE created_at < ",
                prune.answers_before,
            ),
            ("DELETE FROM changes WHERE at < ", prune.changes_before),
            (
                "DELETE FROM ack_links_used WHERE used_at < ",
                prune.keys_used_before,
            ),
            (
                "DELETE FROM ack_links_used WHERE nonce LIKE 'sigts:%' AND used_at < ",
                prune.timestamped_signatures_used_before,
            ),
        ] {
            let mut sql = Sql::once(delete);
            sql.bind(to_millis(before)).push(";");
            out.push(sql);
        }
        // The newest silence stays, so its id is never handed out again.
        let mut sql = Sql::once("DELETE FROM silences WHERE ends_at < ");
        sql.bind(to_millis(prune.silences_ended_before))
            .push(" AND id < (SELECT MAX(id) FROM silences);");
        out.push(sql);
    }
    let kept: Vec<_> = batch
        .escalations()
        .filter_map(|(_, e)| e.as_ref())
        .collect();
    for chunk in kept.chunks(INSERT_CHUNK / 8) {
        out.push(upsert_escalations(chunk));
    }
    let ended: Vec<i64> = batch
        .escalations()
        .filter(|(_, escalation)| escalation.is_none())
        .map(|(id, _)| *id)
        .collect();
    for chunk in ended.chunks(INSERT_CHUNK) {
        let mut sql = Sql::once("DELETE FROM escalations WHERE incident_id IN (");
        sql.list(chunk.iter().copied()).push(");");
        out.push(sql);
    }
    out
}

/// The columns of an alert the writer keeps in memory.
pub(super) const OPEN_ALERT_COLUMNS: &str =
    "id, source, dedup_key, incident_id, priority, count, last_seen, silenced, inhibited, flapping";

impl<B: Backend> SqlStore<B> {
    /// The open state with the firing alerts `alerts` selects.
    pub(super) async fn open_state(&self, alerts: Sql) -> Result<OpenState, StoreError> {
        let alerts = self.open_alerts(alerts).await?;
        let incidents = self
            .open_incidents(Sql::new(format!(
                "SELECT {INCIDENT_COLUMNS}, {FIRING} FROM incidents WHERE status <> 'resolved'"
            )))
            .await?;
        let next_alert_id = self
            .fetch_one(
                On::Writer,
                Sql::new("SELECT COALESCE(MAX(id), 0) + 1 FROM alerts"),
            )
            .await?
            .first_int()?;
        let next_incident_id = self
            .fetch_one(
                On::Writer,
                Sql::new("SELECT COALESCE(MAX(id), 0) + 1 FROM incidents"),
            )
            .await?
            .first_int()?;
        let awaiting_recovery = self
            .db
            .fetch_all(
                On::Writer,
                Sql::new(format!(
                    "SELECT {RUN_COLUMNS} FROM runbook_runs WHERE status = 'awaiting_recovery'"
                )),
            )
            .await?
            .iter()
            .map(run_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_run_id = self
            .fetch_one(
                On::Writer,
                Sql::new("SELECT COALESCE(MAX(id), 0) + 1 FROM runbook_runs"),
            )
            .await?
            .first_int()?;
        let silences_version = self
            .fetch_one(On::Writer, Sql::new("SELECT version FROM silence_changes"))
            .await?
            .first_int()?;
        let silences = self.silences(i64::MAX, None).await?;
        let next_silence_id = silences.iter().map(|s| s.id).max().unwrap_or(0) + 1;
        let heartbeats = self
            .db
            .fetch_all(
                On::Writer,
                Sql::new("SELECT name, last_seen FROM heartbeats"),
            )
            .await?
            .iter()
            .map(|row| Ok((row.text("name")?, row.time("last_seen")?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(OpenState {
            alerts,
            incidents,
            next_alert_id,
            next_incident_id,
            silences,
            silences_version,
            next_silence_id,
            heartbeats,
            flaps: self.all_flaps().await?,
            awaiting_recovery,
            next_run_id,
            escalations: self
                .fetch_map(
                    On::Writer,
                    Sql::new(format!("SELECT {ESCALATION_COLUMNS} FROM escalations")),
                    escalation_from_row,
                )
                .await?,
        })
    }

    /// Firing alerts as the writer keeps them, from `sql` selecting [`OPEN_ALERT_COLUMNS`].
    pub(super) async fn open_alerts(
        &self,
        sql: Sql,
    ) -> Result<Vec<(DedupKey, OpenAlert)>, StoreError> {
        self.fetch_map(On::Writer, sql, open_alert_from_row).await
    }

    /// Incidents with how many of their alerts fire, from `sql` selecting
    /// [`INCIDENT_COLUMNS`] and [`FIRING`].
    pub(super) async fn open_incidents(
        &self,
        sql: Sql,
    ) -> Result<Vec<(Incident, i64)>, StoreError> {
        self.fetch_map(On::Writer, sql, |row| {
            Ok((incident_from_row(row)?, row.int("firing")?))
        })
        .await
    }
}

/// A firing alert as the writer keeps it, from a row of [`OPEN_ALERT_COLUMNS`].
pub(super) fn open_alert_from_row(row: &impl Columns) -> Result<(DedupKey, OpenAlert), StoreError> {
    let key = DedupKey {
        source: row.text("source")?,
        key: row.text("dedup_key")?,
    };
    let open = OpenAlert {
        id: row.int("id")?,
        incident_id: row.opt_int("incident_id")?,
        priority: row.word("priority")?,
        count: row.int("count")?,
        last_seen: row.time("last_seen")?,
        silenced: row.flag("silenced")?,
        inhibited: row.flag("inhibited")?,
        flapping: row.flag("flapping")?,
    };
    Ok((key, open))
}

/// How many alerts of each selected incident fire, as the column `firing`.
pub(super) const FIRING: &str = "(SELECT COUNT(*) FROM alerts a WHERE a.incident_id = incidents.id AND a.status = 'firing') AS firing";
