//! The SQL both backends share. [`sql_store!`] expands, inside a backend's module,
//! to its `Store` implementation and the statement builders and row readers behind it,
//! written once for SQLite and PostgreSQL. Queries are written with `?` placeholders;
//! the backend's `q()` numbers them for PostgreSQL. What differs lives in the backend:
//! how a batch is executed (`Statements`, `execute`), how a claim locks its rows
//! (`CLAIM_LOCK`), and opening the database.

/// Implements [`super::Store`] for `$store` on the sqlx database `$db` with rows `$row`.
/// The backend module provides `q`, `CLAIM_LOCK`, `Statements` (with `next()`) and
/// `$store::execute`, and has `writer` and `readers` pools.
macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty) => {
use $crate::alert::{AlertStatus, Priority, Severity};
use $crate::clock::{from_millis, to_millis};
use $crate::dedup::{DedupKey, OpenAlert};
use $crate::incident::{Incident, IncidentStatus, TimelineEntry};
use $crate::silence::Silence;
use $crate::store::paging::{
    Delivery, Escalation, EscalationState, Notification, NotificationKind,
};
use $crate::store::runs::RunRecord;
use $crate::store::tickets::{Ticket, TicketOp, TicketOpKind};
use $crate::store::{
    AlertQuery, AlertRecord, AlertUpdate, AlertVolume, IncidentQuery, OpenState, Store,
    StoreError, WriteBatch,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};
use std::str::FromStr;

const INCIDENT_COLUMNS: &str = "id, title, priority, status, created_at, acknowledged_at, resolved_at, alert_count, escalation_level, response_due, resolve_due, flapping, on_hold, source, resource, check_name, summary, group_key, rule, escalation_policy, last_alert_at, sla_flags, hold_since, remediated, escalated, drill, links";
const ALERT_COLUMNS: &str = "id, source, dedup_key, resource, check_name, severity, priority, status, summary, details, labels, links, count, first_seen, last_seen, occurred_at, resolved_at, incident_id, silenced, flapping, inhibited";
/// Rows per multi-row INSERT, kept under SQLite's 32,766 bound parameters.
const INSERT_CHUNK: usize = 1000;

#[async_trait]
impl Store for $store {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(q("SELECT 1")).execute(&self.readers).await?;
        Ok(())
    }

    async fn load_open_state(&self) -> Result<OpenState, StoreError> {
        self.note_loaded().await?;
        let alerts = sqlx::query(q("SELECT id, source, dedup_key, incident_id, priority, count, last_seen, silenced, inhibited, flapping FROM alerts WHERE status = 'firing'"))
        .fetch_all(&self.writer)
        .await?
        .iter()
        .map(|row| {
            let key = DedupKey {
                source: row.try_get("source")?,
                key: row.try_get("dedup_key")?,
            };
            let open = OpenAlert {
                id: row.try_get("id")?,
                incident_id: row.try_get("incident_id")?,
                priority: parse_enum(row.try_get("priority")?)?,
                count: row.try_get("count")?,
                last_seen: from_millis(row.try_get("last_seen")?),
                silenced: row.try_get("silenced")?,
                inhibited: row.try_get("inhibited")?,
                flapping: row.try_get("flapping")?,
            };
            Ok((key, open))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let incidents = sqlx::query(format!(
            "SELECT {INCIDENT_COLUMNS}, (SELECT COUNT(*) FROM alerts a WHERE a.incident_id = incidents.id AND a.status = 'firing') AS firing FROM incidents WHERE status <> 'resolved'"
        ).into_safe())
        .fetch_all(&self.writer)
        .await?
        .iter()
        .map(|row| Ok((incident_from_row(row)?, row.try_get("firing")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
        let next_alert_id: i64 = sqlx::query_scalar(q("SELECT COALESCE(MAX(id), 0) + 1 FROM alerts"))
            .fetch_one(&self.writer)
            .await?;
        let next_incident_id: i64 =
            sqlx::query_scalar(q("SELECT COALESCE(MAX(id), 0) + 1 FROM incidents"))
                .fetch_one(&self.writer)
                .await?;
        let awaiting_recovery = sqlx::query(
            format!("SELECT {RUN_COLUMNS} FROM runbook_runs WHERE status = 'awaiting_recovery'")
                .into_safe(),
        )
        .fetch_all(&self.writer)
        .await?
        .iter()
        .map(run_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let next_run_id: i64 =
            sqlx::query_scalar(q("SELECT COALESCE(MAX(id), 0) + 1 FROM runbook_runs"))
                .fetch_one(&self.writer)
                .await?;
        let silences = self.silences(i64::MAX, None).await?;
        let next_silence_id = silences.iter().map(|s| s.id).max().unwrap_or(0) + 1;
        let heartbeats = sqlx::query(q("SELECT name, last_seen FROM heartbeats"))
            .fetch_all(&self.writer)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("name")?, from_millis(row.try_get("last_seen")?))))
            .collect::<Result<_, StoreError>>()?;
        Ok(OpenState {
            alerts,
            incidents,
            next_alert_id,
            next_incident_id,
            silences,
            next_silence_id,
            heartbeats,
            awaiting_recovery,
            next_run_id,
        })
    }

    async fn begin_turn(&self) -> Result<bool, StoreError> {
        self.take_turn().await
    }

    async fn end_turn(&self) {
        self.give_up_turn().await;
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            self.give_up_turn().await;
            return Ok(());
        }
        let mut out = Statements::default();
        let incidents: Vec<&Incident> = batch.incidents().collect();
        for chunk in incidents.chunks(INSERT_CHUNK / 2) {
            upsert_incidents(out.next(), chunk);
        }
        // Updates before inserts: an identity resolved and firing again in one batch
        // then never has two firing rows, which PostgreSQL's unique index refuses.
        for (id, update) in batch.alert_updates() {
            update_alert(out.next(), *id, update);
        }
        for chunk in batch.new_alerts().chunks(INSERT_CHUNK) {
            insert_alerts(out.next(), chunk);
        }
        for chunk in batch.timeline().chunks(INSERT_CHUNK) {
            insert_timeline(out.next(), chunk);
        }
        for chunk in batch.notifications().chunks(INSERT_CHUNK / 2) {
            insert_notifications(out.next(), chunk, |n| batch.claim_of(n));
        }
        for incident_id in batch.cancelled_pages() {
            out.next().push("UPDATE notifications SET status = 'cancelled' WHERE kind = 'page' AND status = 'pending' AND incident_id = ")
                .push_bind(*incident_id)
                .push(";");
        }
        for run in batch.runs() {
            upsert_run(out.next(), run);
        }
        for chunk in batch.ticket_ops().chunks(INSERT_CHUNK / 2) {
            insert_ticket_ops(out.next(), chunk);
        }
        for silence in batch.silences() {
            upsert_silence(out.next(), silence);
        }
        for (name, at) in batch.heartbeats() {
            out.next().push("INSERT INTO heartbeats (name, last_seen) VALUES (")
                .push_bind(name.clone())
                .push(", ")
                .push_bind(to_millis(*at))
                .push(") ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen;");
        }
        for (key, at) in batch.spent() {
            out.next().push("INSERT INTO ack_links_used (nonce, used_at) VALUES (")
                .push_bind(key.clone())
                .push(", ")
                .push_bind(to_millis(*at))
                .push(");");
        }
        for (key, (answer, at)) in batch.answers() {
            out.next().push("INSERT INTO idempotency_keys (key, answer, created_at) VALUES (")
                .push_bind(key.clone())
                .push(", ")
                .push_bind(answer.clone())
                .push(", ")
                .push_bind(to_millis(*at))
                .push(") ON CONFLICT (key) DO UPDATE SET answer = excluded.answer, created_at = excluded.created_at;");
        }
        if let Some(prune) = batch.pruning() {
            out.next().push("DELETE FROM idempotency_keys WHERE created_at < ")
                .push_bind(to_millis(prune.answers_before))
                .push(";");
            out.next().push("DELETE FROM changes WHERE at < ")
                .push_bind(to_millis(prune.changes_before))
                .push(";");
            out.next().push("DELETE FROM ack_links_used WHERE used_at < ")
                .push_bind(to_millis(prune.keys_used_before))
                .push(";");
            out.next().push("DELETE FROM ack_links_used WHERE nonce LIKE 'sigts:%' AND used_at < ")
                .push_bind(to_millis(prune.timestamped_signatures_used_before))
                .push(";");
            // The newest silence stays, so its id is never handed out again.
            out.next().push("DELETE FROM silences WHERE ends_at < ")
                .push_bind(to_millis(prune.silences_ended_before))
                .push(" AND id < (SELECT MAX(id) FROM silences);");
        }
        for (incident_id, escalation) in batch.escalations() {
            match escalation {
                Some(escalation) => upsert_escalation(out.next(), escalation),
                None => {
                    out.next().push("DELETE FROM escalations WHERE incident_id = ")
                        .push_bind(*incident_id)
                        .push(";");
                }
            }
        }
        self.execute(out).await
    }

    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let row = sqlx::query(
            format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?").into_safe(),
        )
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        row.as_ref().map(incident_from_row).transpose()
    }

    async fn incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        let mut sql = QueryBuilder::<$db>::new(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE 1 = 1"
        ));
        push_in(&mut sql, "status", query.statuses.iter().cloned());
        if let Some(from) = query.created_from {
            sql.push(" AND created_at >= ").push_bind(to_millis(from));
        }
        if let Some(to) = query.created_to {
            sql.push(" AND created_at < ").push_bind(to_millis(to));
        }
        push_in(
            &mut sql,
            "priority",
            query.priorities.iter().map(|p| p.as_str().to_string()),
        );
        if let Some(before) = query.before_id {
            sql.push(" AND id < ").push_bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ").push_bind(query.limit);
        sql.build()
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(incident_from_row)
            .collect()
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let mut sql =
            QueryBuilder::<$db>::new(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE 1 = 1"));
        // Each status is a fixed condition; several are alternatives.
        let conditions: Vec<&str> = query
            .statuses
            .iter()
            .filter_map(|status| match status.as_str() {
                "firing" => Some("status = 'firing'"),
                "resolved" => Some("status = 'resolved'"),
                "silenced" => Some("silenced = TRUE"),
                "inhibited" => Some("inhibited = TRUE"),
                _ => None,
            })
            .collect();
        if !conditions.is_empty() {
            sql.push(format!(" AND ({})", conditions.join(" OR ")));
        }
        push_in(
            &mut sql,
            "priority",
            query.priorities.iter().map(|p| p.as_str().to_string()),
        );
        if let Some(source) = &query.source {
            sql.push(" AND source = ").push_bind(source.clone());
        }
        if let Some(resource) = &query.resource {
            sql.push(" AND resource = ").push_bind(resource.clone());
        }
        if let Some(incident) = query.incident_id {
            sql.push(" AND incident_id = ").push_bind(incident);
        }
        if let Some(before) = query.before_id {
            sql.push(" AND id < ").push_bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ").push_bind(query.limit);
        sql.build()
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(alert_from_row)
            .collect()
    }

    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        sqlx::query(q("SELECT incident_id, at, kind, actor, message, data FROM timeline WHERE incident_id = ? ORDER BY id"))
            .bind(incident_id)
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(|row| {
                Ok(TimelineEntry {
                    incident_id: row.try_get("incident_id")?,
                    at: from_millis(row.try_get("at")?),
                    kind: row.try_get::<String, _>("kind")?.into(),
                    actor: row.try_get("actor")?,
                    message: row.try_get("message")?,
                    data: parse_json(row.try_get("data")?)?,
                })
            })
            .collect()
    }

    async fn due_escalations(&self, now: DateTime<Utc>) -> Result<Vec<Escalation>, StoreError> {
        sqlx::query(format!("SELECT {ESCALATION_COLUMNS} FROM escalations WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at").into_safe())
            .bind(to_millis(now))
            .fetch_all(&self.writer)
            .await?
            .iter()
            .map(escalation_from_row)
            .collect()
    }

    async fn escalation(&self, incident_id: i64) -> Result<Option<Escalation>, StoreError> {
        sqlx::query(
            format!("SELECT {ESCALATION_COLUMNS} FROM escalations WHERE incident_id = ?")
                .into_safe(),
        )
        .bind(incident_id)
        .fetch_optional(&self.writer)
        .await?
        .as_ref()
        .map(escalation_from_row)
        .transpose()
    }

    async fn overdue_escalations(&self, before: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(q("SELECT COUNT(*) FROM escalations WHERE due_at IS NOT NULL AND due_at < ?"))
        .bind(to_millis(before))
        .fetch_one(&self.readers)
        .await?)
    }

    async fn claimed_notifications(
        &self,
        claim: &str,
        held_past: DateTime<Utc>,
    ) -> Result<Vec<Notification>, StoreError> {
        // `status IN (..)` lets the claimable index (a handful of rows) find them.
        sqlx::query(q(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
             WHERE status IN ('pending', 'sending') AND status = 'sending' AND claim = ? \
             AND due_at > ? ORDER BY id"
        )))
        .bind(claim)
        .bind(to_millis(held_past))
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(notification_from_row)
        .collect()
    }

    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: i64,
        claim: &str,
    ) -> Result<Vec<Notification>, StoreError> {
        sqlx::query(format!(
            "UPDATE notifications SET status = 'sending', due_at = ?, claim = ? WHERE id IN \
             (SELECT id FROM notifications WHERE status IN ('pending', 'sending') AND due_at <= ? \
              ORDER BY due_at LIMIT ?{CLAIM_LOCK}) \
             RETURNING {NOTIFICATION_COLUMNS}"
        ).into_safe())
        .bind(to_millis(now + lease))
        .bind(claim)
        .bind(to_millis(now))
        .bind(limit)
        .fetch_all(&self.writer)
        .await?
        .iter()
        .map(notification_from_row)
        .collect()
    }

    async fn finish_notification(
        &self,
        id: i64,
        claim: &str,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let query = match delivery {
            Delivery::Sent => sqlx::query(q("UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL WHERE id = ? AND status = 'sending' AND claim = ?"))
                .bind(to_millis(now))
                .bind(id)
                .bind(claim),
            Delivery::Retry { at, error } => sqlx::query(q("UPDATE notifications SET status = 'pending', attempts = attempts + 1, due_at = ?, last_error = ? WHERE id = ? AND status = 'sending' AND claim = ?"))
                .bind(to_millis(*at))
                .bind(error.clone())
                .bind(id)
                .bind(claim),
            Delivery::Failed { error } => sqlx::query(q("UPDATE notifications SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ? AND status = 'sending' AND claim = ?"))
                .bind(error.clone())
                .bind(id)
                .bind(claim),
            Delivery::Cancelled => sqlx::query(q("UPDATE notifications SET status = 'cancelled' WHERE id = ? AND status = 'sending' AND claim = ?"))
                .bind(id)
                .bind(claim),
        };
        query.execute(&self.writer).await?;
        Ok(())
    }

    async fn queue_notifications(&self, notifications: &[Notification]) -> Result<(), StoreError> {
        if notifications.is_empty() {
            return Ok(());
        }
        let mut sql = QueryBuilder::<$db>::new("");
        insert_notifications(&mut sql, notifications, |_| None);
        sql.build().persistent(false).execute(&self.writer).await?;
        Ok(())
    }

    async fn renew_claims(
        &self,
        table: $crate::store::Claims,
        claim: &str,
        ids: &[i64],
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let (name, status, column, tokens) = table.lease();
        let mut sql = QueryBuilder::<$db>::new(format!("UPDATE {name} SET {column} = "));
        sql.push_bind(to_millis(until))
            .push(format!(" WHERE status = '{status}'"));
        if tokens {
            sql.push(" AND claim = ").push_bind(claim.to_string());
        }
        sql.push(" AND id IN (");
        let mut list = sql.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        sql.push(")");
        sql.build().execute(&self.writer).await?;
        Ok(())
    }

    async fn lost_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>, StoreError> {
        if ONE_PROCESS {
            // Its runs are alive, or were marked interrupted when it last started.
            return Ok(Vec::new());
        }
        sqlx::query(
            format!("SELECT {RUN_COLUMNS} FROM runbook_runs WHERE status = 'running' AND lease_until < ?")
                .into_safe(),
        )
        .bind(to_millis(now))
        .fetch_all(&self.writer)
        .await?
        .iter()
        .map(run_from_row)
        .collect()
    }

    async fn pending_approvals(&self, incident_id: i64) -> Result<Vec<RunRecord>, StoreError> {
        sqlx::query(
            format!("SELECT {RUN_COLUMNS} FROM runbook_runs WHERE incident_id = ? AND status = 'pending_approval' ORDER BY id")
                .into_safe(),
        )
        .bind(incident_id)
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(run_from_row)
        .collect()
    }

    async fn interrupt_orphaned_runs(&self) -> Result<(), StoreError> {
        if ONE_PROCESS {
            // Runs cut short by a stop cannot be resumed safely: say so. (With
            // replicas, a running run may belong to a live one.)
            sqlx::query(q("UPDATE runbook_runs SET status = 'interrupted' WHERE status = 'running'"))
                .execute(&self.writer)
                .await?;
        }
        Ok(())
    }

    async fn recent_runs(&self, since: DateTime<Utc>) -> Result<Vec<RunRecord>, StoreError> {
        sqlx::query(
            format!("SELECT {RUN_COLUMNS} FROM runbook_runs WHERE started_at >= ? OR status IN ('running', 'pending_approval') ORDER BY id")
                .into_safe(),
        )
        .bind(to_millis(since))
        .fetch_all(&self.writer)
        .await?
        .iter()
        .map(run_from_row)
        .collect()
    }

    async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        if !ONE_PROCESS {
            // Other replicas' claims are alive; a dead one's run out with their lease.
            return Ok(0);
        }
        // Due at once: `due_at` of a claimed row is its lease's end, up to 5 s ahead.
        let now = to_millis(now);
        let mut released = 0;
        for table in ["notifications", "ticket_ops"] {
            released += sqlx::query(
                format!("UPDATE {table} SET status = 'pending', due_at = CASE WHEN due_at > ? THEN ? ELSE due_at END WHERE status = 'sending'")
                    .into_safe(),
            )
            .bind(now)
            .bind(now)
            .execute(&self.writer)
            .await?
            .rows_affected();
        }
        Ok(released)
    }

    async fn delivered_pages(
        &self,
        incident_id: i64,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        sqlx::query(q("SELECT DISTINCT user_id, channel, address FROM notifications WHERE incident_id = ? AND kind = 'page' AND status = 'sent' ORDER BY user_id, channel"))
            .bind(incident_id)
            .fetch_all(&self.writer)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("user_id")?, row.try_get("channel")?, row.try_get("address")?)))
            .collect()
    }

    async fn sms_paged_incident(
        &self,
        user_id: &str,
        only: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        // A page cancelled or given up on never reached the phone; one still queued
        // or in flight is about to, and its reply may outrun the outbox's bookkeeping.
        const PAGED: &str = "user_id = ? AND channel = 'sms' AND kind = 'page' AND status IN ('pending', 'sending', 'sent')";
        let query = match only {
            Some(incident_id) => sqlx::query_scalar::<_, i64>(
                format!("SELECT incident_id FROM notifications WHERE {PAGED} AND incident_id = ? LIMIT 1").into_safe(),
            )
            .bind(user_id)
            .bind(incident_id),
            None => sqlx::query_scalar::<_, i64>(
                format!("SELECT incident_id FROM notifications WHERE {PAGED} ORDER BY id DESC LIMIT 1").into_safe(),
            )
            .bind(user_id),
        };
        Ok(query.fetch_optional(&self.readers).await?)
    }

    async fn append_timeline(&self, entries: &[TimelineEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut sql = QueryBuilder::<$db>::new("");
        insert_timeline(&mut sql, entries);
        sql.build().persistent(false).execute(&self.writer).await?;
        Ok(())
    }

    async fn record_change(
        &self,
        change: &$crate::change::Change,
        received_at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(q("INSERT INTO changes (source, summary, resource, at, links, details, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"))
            .bind(&change.source)
            .bind(&change.summary)
            .bind(&change.resource)
            .bind(to_millis(change.at))
            .bind(serde_json::to_string(&change.links).unwrap_or_else(|_| "[]".into()))
            .bind(change.details.to_string())
            .bind(to_millis(received_at))
            .fetch_one(&self.writer)
            .await?;
        Ok(id)
    }

    async fn changes(&self, query: &$crate::store::ChangeQuery) -> Result<Vec<$crate::change::Change>, StoreError> {
        sqlx::query(q("SELECT id, source, summary, resource, at, links, details FROM changes WHERE at >= ? AND at <= ? AND id < ? AND (CAST(? AS TEXT) IS NULL OR resource = ? OR source = ? OR resource IS NULL) ORDER BY at DESC, id DESC LIMIT ?"))
            .bind(to_millis(query.since))
            .bind(to_millis(query.until))
            .bind(query.before_id.unwrap_or(i64::MAX))
            .bind(&query.resource)
            .bind(&query.resource)
            .bind(&query.resource)
            .bind(query.limit)
            .fetch_all(&self.writer)
            .await?
            .iter()
            .map(|row| {
                Ok($crate::change::Change {
                    id: row.try_get("id")?,
                    source: row.try_get("source")?,
                    summary: row.try_get("summary")?,
                    resource: row.try_get("resource")?,
                    at: from_millis(row.try_get("at")?),
                    links: parse_json(row.try_get("links")?)?,
                    details: parse_json(row.try_get("details")?)?,
                })
            })
            .collect()
    }

    async fn is_spent(&self, key: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(q("SELECT 1 FROM ack_links_used WHERE nonce = ?"))
            .bind(key)
            .fetch_optional(&self.writer)
            .await?;
        Ok(row.is_some())
    }

    async fn remembered_answer(
        &self,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(q("SELECT answer FROM idempotency_keys WHERE key = ? AND created_at >= ?"))
            .bind(key)
            .bind(to_millis(since))
            .fetch_optional(&self.writer)
            .await?;
        Ok(row.map(|row| row.get::<String, _>(0)))
    }

    async fn csat_answered(&self, incident_id: i64, address: &str) -> Result<bool, StoreError> {
        let answers: i64 = sqlx::query_scalar(q("SELECT COUNT(*) FROM csat WHERE incident_id = ? AND address = ?"))
            .bind(incident_id)
            .bind(address)
            .fetch_one(&self.readers)
            .await?;
        Ok(answers > 0)
    }

    async fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        sqlx::query(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?").into_safe())
            .bind(id)
            .fetch_optional(&self.writer)
            .await?
            .as_ref()
            .map(alert_from_row)
            .transpose()
    }

    async fn runbook_runs(&self, runbook: &str, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
        sqlx::query(
            format!(
                "SELECT {RUN_COLUMNS} FROM runbook_runs WHERE runbook = ? ORDER BY id DESC LIMIT ?"
            )
            .into_safe(),
        )
        .bind(runbook)
        .bind(limit)
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(run_from_row)
        .collect()
    }

    async fn record_csat(
        &self,
        incident_id: i64,
        address: &str,
        score: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(q("INSERT INTO csat (incident_id, address, score, answered_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"))
            .bind(incident_id)
            .bind(address)
            .bind(score)
            .bind(to_millis(at))
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(inserted == 1)
    }

    async fn csat_scores(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(q("SELECT c.score FROM csat c JOIN incidents i ON i.id = c.incident_id WHERE i.created_at >= ? AND i.created_at < ?"))
        .bind(to_millis(from))
        .bind(to_millis(to))
        .fetch_all(&self.readers)
        .await?)
    }

    async fn alert_volume(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlertVolume>, StoreError> {
        sqlx::query(q("SELECT source, check_name, COUNT(*) AS alerts, CAST(SUM(count) AS BIGINT) AS notifications, \
             CAST(SUM(CASE WHEN flapping THEN 1 ELSE 0 END) AS BIGINT) AS flapping, \
             CAST(SUM(CASE WHEN flapping THEN COALESCE(resolved_at, last_seen) - first_seen ELSE 0 END) AS BIGINT) / 1000 AS flapping_seconds \
             FROM alerts WHERE first_seen >= ? AND first_seen < ? GROUP BY source, check_name"))
        .bind(to_millis(from))
        .bind(to_millis(to))
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(|row| {
            Ok(AlertVolume {
                source: row.try_get("source")?,
                check: row.try_get("check_name")?,
                alerts: row.try_get("alerts")?,
                notifications: row.try_get("notifications")?,
                flapping: row.try_get("flapping")?,
                flapping_seconds: row.try_get("flapping_seconds")?,
            })
        })
        .collect()
    }

    async fn sent_pages(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        sqlx::query(q("SELECT user_id, sent_at FROM notifications \
             WHERE kind = 'page' AND status = 'sent' AND sent_at >= ? AND sent_at < ?"))
        .bind(to_millis(from))
        .bind(to_millis(to))
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("user_id")?,
                from_millis(row.try_get("sent_at")?),
            ))
        })
        .collect()
    }

    async fn claim_ticket_ops(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: i64,
        claim: &str,
    ) -> Result<Vec<TicketOp>, StoreError> {
        sqlx::query(q(&format!("UPDATE ticket_ops SET status = 'sending', due_at = ?, claim = ? WHERE id IN \
             (SELECT o.id FROM ticket_ops o WHERE o.status IN ('pending', 'sending') AND o.due_at <= ? \
              AND NOT EXISTS (SELECT 1 FROM ticket_ops p WHERE p.incident_id = o.incident_id \
                AND p.platform = o.platform AND p.id < o.id AND p.status IN ('pending', 'sending')) \
              ORDER BY o.id LIMIT ?{CLAIM_LOCK}) \
             RETURNING id, incident_id, platform, kind, step, body, attempts, due_at, deadline")))
        .bind(to_millis(now + lease))
        .bind(claim)
        .bind(to_millis(now))
        .bind(limit)
        .fetch_all(&self.writer)
        .await?
        .iter()
        .map(|row| {
            Ok(TicketOp {
                id: row.try_get("id")?,
                incident_id: row.try_get("incident_id")?,
                platform: parse_enum(row.try_get("platform")?)?,
                kind: parse_enum::<TicketOpKind>(row.try_get("kind")?)?,
                step: row.try_get("step")?,
                body: row.try_get("body")?,
                attempts: row.try_get("attempts")?,
                due_at: from_millis(row.try_get("due_at")?),
                deadline: from_millis(row.try_get("deadline")?),
            })
        })
        .collect()
    }

    async fn finish_ticket_op(
        &self,
        id: i64,
        claim: &str,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (status, due_at, error) = match delivery {
            Delivery::Sent => ("done", now, None),
            Delivery::Retry { at, error } => ("pending", *at, Some(error.clone())),
            Delivery::Failed { error } => ("failed", now, Some(error.clone())),
            Delivery::Cancelled => ("cancelled", now, None),
        };
        sqlx::query(q("UPDATE ticket_ops SET status = ?, attempts = attempts + 1, due_at = ?, last_error = ? WHERE id = ? AND status = 'sending' AND claim = ?"))
            .bind(status)
            .bind(to_millis(due_at))
            .bind(error)
            .bind(id)
            .bind(claim)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn save_ticket(&self, ticket: &Ticket, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(q("INSERT INTO tickets (incident_id, platform, ticket_id, reference, url, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"))
            .bind(ticket.incident_id)
            .bind(ticket.platform.as_str())
            .bind(ticket.id.clone())
            .bind(ticket.reference.clone())
            .bind(ticket.url.clone())
            .bind(to_millis(now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn tickets(&self, incident_ids: &[i64]) -> Result<Vec<Ticket>, StoreError> {
        if incident_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = QueryBuilder::<$db>::new(
            "SELECT incident_id, platform, ticket_id, reference, url FROM tickets WHERE incident_id IN (",
        );
        let mut ids = sql.separated(", ");
        for id in incident_ids {
            ids.push_bind(*id);
        }
        sql.push(") ORDER BY incident_id, created_at");
        sql.build()
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(|row| {
                Ok(Ticket {
                    incident_id: row.try_get("incident_id")?,
                    platform: parse_enum(row.try_get("platform")?)?,
                    id: row.try_get("ticket_id")?,
                    reference: row.try_get("reference")?,
                    url: row.try_get("url")?,
                })
            })
            .collect()
    }

    async fn ticket_incident(
        &self,
        platform: crate::ticket::Platform,
        ticket: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(q("SELECT incident_id FROM tickets WHERE platform = ? AND (ticket_id = ? OR reference = ?) ORDER BY incident_id DESC LIMIT 1"))
            .bind(platform.as_str())
            .bind(ticket)
            .bind(ticket)
            .fetch_optional(&self.readers)
            .await?)
    }

    async fn note_assignee(
        &self,
        platform: crate::ticket::Platform,
        ticket: &str,
        assignee: &str,
    ) -> Result<bool, StoreError> {
        let changed = sqlx::query(q("UPDATE tickets SET assignee = ? WHERE platform = ? AND (ticket_id = ? OR reference = ?) AND assignee IS DISTINCT FROM ?"))
            .bind(assignee)
            .bind(platform.as_str())
            .bind(ticket)
            .bind(ticket)
            .bind(assignee)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(changed > 0)
    }

    async fn silences(&self, limit: i64, before_id: Option<i64>) -> Result<Vec<Silence>, StoreError> {
        sqlx::query(q("SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at FROM silences WHERE id < ? ORDER BY id DESC LIMIT ?"))
            .bind(before_id.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.writer)
            .await?
            .iter()
            .map(|row| {
                let matchers: Vec<String> = parse_json(row.try_get("matchers")?)?;
                Silence::new(
                    row.try_get("id")?,
                    matchers,
                    from_millis(row.try_get("starts_at")?),
                    from_millis(row.try_get("ends_at")?),
                    row.try_get("created_by")?,
                    row.try_get("comment")?,
                    from_millis(row.try_get("created_at")?),
                )
                .map_err(StoreError::Corrupt)
            })
            .collect()
    }

    async fn setting(&self, name: &str, initial: &str) -> Result<String, StoreError> {
        sqlx::query(q("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING"))
            .bind(name)
            .bind(initial)
            .execute(&self.writer)
            .await?;
        Ok(
            sqlx::query_scalar(q("SELECT value FROM settings WHERE name = ?"))
                .bind(name)
                .fetch_one(&self.writer)
                .await?,
        )
    }
}

const ESCALATION_COLUMNS: &str =
    "incident_id, policy, tier, cycle, steps, due_at, state, last_step";
const NOTIFICATION_COLUMNS: &str =
    "id, incident_id, user_id, channel, address, kind, step, attempts, due_at, deadline";

trait IntoSafe {
    fn into_safe(self) -> sqlx::AssertSqlSafe<String>;
}

impl IntoSafe for String {
    /// Our dynamic SQL is built only from the column-list constants above, never from input.
    fn into_safe(self) -> sqlx::AssertSqlSafe<String> {
        q(&self)
    }
}

fn push_in(sql: &mut QueryBuilder<$db>, column: &str, values: impl Iterator<Item = String>) {
    let values: Vec<String> = values.collect();
    if values.is_empty() {
        return;
    }
    sql.push(format!(" AND {column} IN ("));
    let mut list = sql.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    sql.push(")");
}

fn upsert_incidents(sql: &mut QueryBuilder<$db>, incidents: &[&Incident]) {
    sql.push(format!("INSERT INTO incidents ({INCIDENT_COLUMNS}) "));
    sql.push_values(incidents, |mut row, incident| {
        row.push_bind(incident.id)
            .push_bind(incident.title.clone())
            .push_bind(incident.priority.as_str())
            .push_bind(incident.status.as_str())
            .push_bind(to_millis(incident.created_at))
            .push_bind(incident.acknowledged_at.map(to_millis))
            .push_bind(incident.resolved_at.map(to_millis))
            .push_bind(incident.alert_count)
            .push_bind(incident.escalation_level.clone())
            .push_bind(to_millis(incident.response_due))
            .push_bind(to_millis(incident.resolve_due))
            .push_bind(incident.flapping)
            .push_bind(incident.on_hold)
            .push_bind(incident.source.clone())
            .push_bind(incident.resource.clone())
            .push_bind(incident.check.clone())
            .push_bind(incident.summary.clone())
            .push_bind(incident.group_key.clone())
            .push_bind(incident.rule.clone())
            .push_bind(incident.escalation_policy.clone())
            .push_bind(to_millis(incident.last_alert_at))
            .push_bind(i64::from(incident.sla_flags))
            .push_bind(incident.hold_since.map(to_millis))
            .push_bind(incident.remediated)
            .push_bind(incident.escalated)
            .push_bind(incident.drill)
            .push_bind(serde_json::to_string(&incident.links).unwrap_or_else(|_| "[]".into()));
    });
    sql.push(
        " ON CONFLICT (id) DO UPDATE SET title = excluded.title, priority = excluded.priority, \
         status = excluded.status, acknowledged_at = excluded.acknowledged_at, \
         resolved_at = excluded.resolved_at, alert_count = excluded.alert_count, \
         escalation_level = excluded.escalation_level, response_due = excluded.response_due, \
         resolve_due = excluded.resolve_due, flapping = excluded.flapping, on_hold = excluded.on_hold, \
         last_alert_at = excluded.last_alert_at, \
         sla_flags = excluded.sla_flags, hold_since = excluded.hold_since, remediated = excluded.remediated, \
         escalated = excluded.escalated, links = excluded.links;",
    );
}

fn insert_alerts(sql: &mut QueryBuilder<$db>, alerts: &[AlertRecord]) {
    sql.push(format!("INSERT INTO alerts ({ALERT_COLUMNS}) "));
    sql.push_values(alerts, |mut row, alert| {
        row.push_bind(alert.id)
            .push_bind(alert.source.clone())
            .push_bind(alert.dedup_key.clone())
            .push_bind(alert.resource.clone())
            .push_bind(alert.check.clone())
            .push_bind(alert.severity.as_str())
            .push_bind(alert.priority.as_str())
            .push_bind(alert.status.as_str())
            .push_bind(alert.summary.clone())
            .push_bind(alert.details.to_string())
            .push_bind(serde_json::to_string(&alert.labels).unwrap_or_default())
            .push_bind(serde_json::to_string(&alert.links).unwrap_or_default())
            .push_bind(alert.count)
            .push_bind(to_millis(alert.first_seen))
            .push_bind(to_millis(alert.last_seen))
            .push_bind(alert.occurred_at.map(to_millis))
            .push_bind(alert.resolved_at.map(to_millis))
            .push_bind(alert.incident_id)
            .push_bind(alert.silenced)
            .push_bind(alert.flapping)
            .push_bind(alert.inhibited);
    });
    sql.push(";");
}

const RUN_COLUMNS: &str = "id, runbook, incident_id, trigger, actor, target, params, status, exit_code, output, started_at, finished_at, recovery_due, approval_due";

fn upsert_run(sql: &mut QueryBuilder<$db>, run: &RunRecord) {
    // A run starts with a lease its executor renews; a finished run holds none.
    let lease = (run.status == "running")
        .then(|| to_millis(run.started_at + $crate::store::CLAIM_LEASE));
    sql.push(format!("INSERT INTO runbook_runs ({RUN_COLUMNS}, lease_until) VALUES ("));
    let mut values = sql.separated(", ");
    values
        .push_bind(run.id)
        .push_bind(run.runbook.clone())
        .push_bind(run.incident_id)
        .push_bind(run.trigger.clone())
        .push_bind(run.actor.clone())
        .push_bind(run.target.clone())
        .push_bind(serde_json::to_string(&run.params).unwrap_or_default())
        .push_bind(run.status.clone())
        .push_bind(run.exit_code)
        .push_bind(run.output.clone())
        .push_bind(to_millis(run.started_at))
        .push_bind(run.finished_at.map(to_millis))
        .push_bind(run.recovery_due.map(to_millis))
        .push_bind(run.approval_due.map(to_millis))
        .push_bind(lease);
    sql.push(
        ") ON CONFLICT (id) DO UPDATE SET status = excluded.status, exit_code = excluded.exit_code, \
         output = excluded.output, started_at = excluded.started_at, finished_at = excluded.finished_at, \
         recovery_due = excluded.recovery_due, approval_due = excluded.approval_due, lease_until = excluded.lease_until \
         WHERE runbook_runs.status IN ('running', 'awaiting_recovery', 'pending_approval');",
    );
}

fn run_from_row(row: &$row) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        id: row.try_get("id")?,
        runbook: row.try_get("runbook")?,
        incident_id: row.try_get("incident_id")?,
        trigger: row.try_get("trigger")?,
        actor: row.try_get("actor")?,
        target: row.try_get("target")?,
        params: parse_json(row.try_get("params")?)?,
        status: row.try_get("status")?,
        exit_code: row.try_get("exit_code")?,
        output: row.try_get("output")?,
        started_at: from_millis(row.try_get("started_at")?),
        finished_at: row
            .try_get::<Option<i64>, _>("finished_at")?
            .map(from_millis),
        recovery_due: row
            .try_get::<Option<i64>, _>("recovery_due")?
            .map(from_millis),
        approval_due: row
            .try_get::<Option<i64>, _>("approval_due")?
            .map(from_millis),
    })
}

fn upsert_silence(sql: &mut QueryBuilder<$db>, silence: &Silence) {
    sql.push("INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at) VALUES (");
    let mut values = sql.separated(", ");
    values
        .push_bind(silence.id)
        .push_bind(serde_json::to_string(&silence.matchers).unwrap_or_default())
        .push_bind(to_millis(silence.starts_at))
        .push_bind(to_millis(silence.ends_at))
        .push_bind(silence.created_by.clone())
        .push_bind(silence.comment.clone())
        .push_bind(to_millis(silence.created_at));
    sql.push(") ON CONFLICT (id) DO UPDATE SET ends_at = excluded.ends_at, starts_at = excluded.starts_at;");
}

fn update_alert(sql: &mut QueryBuilder<$db>, id: i64, update: &AlertUpdate) {
    sql.push("UPDATE alerts SET count = ")
        .push_bind(update.count)
        .push(", last_seen = ")
        .push_bind(to_millis(update.last_seen))
        .push(", status = ")
        .push_bind(update.status.as_str())
        .push(", resolved_at = ")
        .push_bind(update.resolved_at.map(to_millis))
        .push(", incident_id = ")
        .push_bind(update.incident_id)
        .push(", silenced = ")
        .push_bind(update.silenced)
        .push(", flapping = ")
        .push_bind(update.flapping)
        .push(", inhibited = ")
        .push_bind(update.inhibited)
        .push(" WHERE id = ")
        .push_bind(id)
        .push(";");
}

fn insert_timeline(sql: &mut QueryBuilder<$db>, entries: &[TimelineEntry]) {
    sql.push("INSERT INTO timeline (incident_id, at, kind, actor, message, data) ");
    sql.push_values(entries, |mut row, entry| {
        row.push_bind(entry.incident_id)
            .push_bind(to_millis(entry.at))
            .push_bind(entry.kind.as_str().to_string())
            .push_bind(entry.actor.clone())
            .push_bind(entry.message.clone())
            .push_bind(entry.data.to_string());
    });
    sql.push(";");
}

/// Queues messages; one `claim_of` returns a claim for is written already claimed
/// (`sending` until the claim's lease ends).
fn insert_notifications<'b>(
    sql: &mut QueryBuilder<$db>,
    notifications: &[Notification],
    claim_of: impl Fn(&Notification) -> Option<&'b $crate::store::DueClaim>,
) {
    sql.push("INSERT INTO notifications (incident_id, user_id, channel, address, kind, step, status, attempts, due_at, deadline, created_at, claim) ");
    sql.push_values(notifications, |mut row, n| {
        let claim = claim_of(n);
        row.push_bind(n.incident_id)
            .push_bind(n.user_id.clone())
            .push_bind(n.channel.as_str())
            .push_bind(n.address.clone())
            .push_bind(n.kind.as_str())
            .push_bind(n.step.clone())
            .push_bind(if claim.is_some() { "sending" } else { "pending" })
            .push_bind(n.attempts)
            .push_bind(to_millis(claim.map_or(n.due_at, |claim| claim.until)))
            .push_bind(to_millis(n.deadline))
            .push_bind(to_millis(n.due_at))
            .push_bind(claim.map(|claim| claim.token.clone()));
    });
    sql.push(" ON CONFLICT DO NOTHING;");
}

fn insert_ticket_ops(sql: &mut QueryBuilder<$db>, ops: &[TicketOp]) {
    sql.push("INSERT INTO ticket_ops (incident_id, platform, kind, step, body, status, attempts, due_at, deadline, created_at) ");
    sql.push_values(ops, |mut row, op| {
        row.push_bind(op.incident_id)
            .push_bind(op.platform.as_str())
            .push_bind(op.kind.as_str())
            .push_bind(op.step.clone())
            .push_bind(op.body.clone())
            .push_bind("pending")
            .push_bind(op.attempts)
            .push_bind(to_millis(op.due_at))
            .push_bind(to_millis(op.deadline))
            .push_bind(to_millis(op.due_at));
    });
    sql.push(" ON CONFLICT DO NOTHING;");
}

fn upsert_escalation(sql: &mut QueryBuilder<$db>, escalation: &Escalation) {
    sql.push(format!(
        "INSERT INTO escalations ({ESCALATION_COLUMNS}) VALUES ("
    ));
    let mut values = sql.separated(", ");
    values
        .push_bind(escalation.incident_id)
        .push_bind(escalation.policy.clone())
        .push_bind(escalation.tier)
        .push_bind(escalation.cycle)
        .push_bind(escalation.steps)
        .push_bind(escalation.due_at.map(to_millis))
        .push_bind(escalation.state.as_str())
        .push_bind(escalation.last_step.clone());
    sql.push(
        ") ON CONFLICT (incident_id) DO UPDATE SET policy = excluded.policy, tier = excluded.tier, \
         cycle = excluded.cycle, steps = excluded.steps, due_at = excluded.due_at, state = excluded.state, \
         last_step = excluded.last_step;",
    );
}

fn escalation_from_row(row: &$row) -> Result<Escalation, StoreError> {
    Ok(Escalation {
        incident_id: row.try_get("incident_id")?,
        policy: row.try_get("policy")?,
        tier: row.try_get("tier")?,
        cycle: row.try_get("cycle")?,
        steps: row.try_get("steps")?,
        due_at: row.try_get::<Option<i64>, _>("due_at")?.map(from_millis),
        state: parse_enum::<EscalationState>(row.try_get("state")?)?,
        last_step: row.try_get("last_step")?,
    })
}

fn notification_from_row(row: &$row) -> Result<Notification, StoreError> {
    Ok(Notification {
        id: row.try_get("id")?,
        incident_id: row.try_get("incident_id")?,
        user_id: row.try_get("user_id")?,
        channel: parse_enum(row.try_get("channel")?)?,
        address: row.try_get("address")?,
        kind: parse_enum::<NotificationKind>(row.try_get("kind")?)?,
        step: row.try_get("step")?,
        attempts: row.try_get("attempts")?,
        due_at: from_millis(row.try_get("due_at")?),
        deadline: from_millis(row.try_get("deadline")?),
    })
}

fn parse_enum<T: FromStr>(text: String) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("unexpected value {text:?}")))
}

fn parse_json<T: serde::de::DeserializeOwned>(text: String) -> Result<T, StoreError> {
    serde_json::from_str(&text)
        .map_err(|error| StoreError::Corrupt(format!("bad JSON column: {error}")))
}

fn incident_from_row(row: &$row) -> Result<Incident, StoreError> {
    let optional_time = |column: &str| -> Result<_, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(from_millis))
    };
    Ok(Incident {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        priority: parse_enum::<Priority>(row.try_get("priority")?)?,
        status: parse_enum::<IncidentStatus>(row.try_get("status")?)?,
        created_at: from_millis(row.try_get("created_at")?),
        acknowledged_at: optional_time("acknowledged_at")?,
        resolved_at: optional_time("resolved_at")?,
        alert_count: row.try_get("alert_count")?,
        escalation_level: row.try_get("escalation_level")?,
        response_due: from_millis(row.try_get("response_due")?),
        resolve_due: from_millis(row.try_get("resolve_due")?),
        flapping: row.try_get("flapping")?,
        on_hold: row.try_get("on_hold")?,
        source: row.try_get("source")?,
        resource: row.try_get("resource")?,
        check: row.try_get("check_name")?,
        summary: row.try_get("summary")?,
        group_key: row.try_get("group_key")?,
        rule: row.try_get("rule")?,
        escalation_policy: row.try_get("escalation_policy")?,
        last_alert_at: from_millis(row.try_get("last_alert_at")?),
        sla_flags: u8::try_from(row.try_get::<i64, _>("sla_flags")?).unwrap_or(0),
        hold_since: optional_time("hold_since")?,
        remediated: row.try_get("remediated")?,
        escalated: row.try_get("escalated")?,
        drill: row.try_get("drill")?,
        links: parse_json(row.try_get("links")?)?,
    })
}

fn alert_from_row(row: &$row) -> Result<AlertRecord, StoreError> {
    Ok(AlertRecord {
        id: row.try_get("id")?,
        source: row.try_get("source")?,
        dedup_key: row.try_get("dedup_key")?,
        resource: row.try_get("resource")?,
        check: row.try_get("check_name")?,
        severity: Severity::from_word(&row.try_get::<String, _>("severity")?)
            .ok_or_else(|| StoreError::Corrupt("unknown severity".into()))?,
        priority: parse_enum(row.try_get("priority")?)?,
        status: parse_enum::<AlertStatus>(row.try_get("status")?)?,
        summary: row.try_get("summary")?,
        details: parse_json(row.try_get("details")?)?,
        labels: parse_json(row.try_get("labels")?)?,
        links: parse_json(row.try_get("links")?)?,
        count: row.try_get("count")?,
        first_seen: from_millis(row.try_get("first_seen")?),
        last_seen: from_millis(row.try_get("last_seen")?),
        occurred_at: row
            .try_get::<Option<i64>, _>("occurred_at")?
            .map(from_millis),
        resolved_at: row
            .try_get::<Option<i64>, _>("resolved_at")?
            .map(from_millis),
        incident_id: row.try_get("incident_id")?,
        silenced: row.try_get("silenced")?,
        inhibited: row.try_get("inhibited")?,
        flapping: row.try_get("flapping")?,
    })
}

    };
}

pub(crate) use sql_store;
