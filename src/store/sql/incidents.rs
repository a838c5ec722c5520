//! Incidents, their timelines, change events and satisfaction answers.

use super::{Backend, Columns, On, Sql, SqlStore};
use crate::change::Change;
use crate::clock::to_millis;
use crate::incident::{Incident, TimelineEntry, TimelineKind};
use crate::store::{ChangeQuery, IncidentQuery, IncidentStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub(super) const INCIDENT_COLUMNS: &str = "id, title, priority, status, created_at, acknowledged_at, resolved_at, alert_count, escalation_level, response_due, resolve_due, flapping, on_hold, source, resource, check_name, summary, group_key, rule, escalation_policy, last_alert_at, sla_flags, hold_since, remediated, escalated, drill, links";

#[async_trait]
impl<B: Backend> IncidentStore for SqlStore<B> {
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let sql = Sql::new(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?"
        ))
        .arg(id);
        let row = self.db.fetch_optional(On::Readers, sql).await?;
        row.as_ref().map(incident_from_row).transpose()
    }

    async fn incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        let mut sql = Sql::new(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE 1 = 1"
        ));
        sql.and_in("status", query.statuses.iter().cloned());
        if let Some(from) = query.created_from {
            sql.push(" AND created_at >= ").bind(to_millis(from));
        }
        if let Some(to) = query.created_to {
            sql.push(" AND created_at < ").bind(to_millis(to));
        }
        sql.and_in(
            "priority",
            query.priorities.iter().map(|p| p.as_str().to_string()),
        );
        if let Some(before) = query.before_id {
            sql.push(" AND id < ").bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ").bind(query.limit);
        self.fetch_map(On::Readers, sql, incident_from_row).await
    }

    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        let sql = Sql::new("SELECT incident_id, at, kind, actor, message, data FROM timeline WHERE incident_id = ? ORDER BY id")
            .arg(incident_id);
        self.fetch_map(On::Readers, sql, |row| {
            Ok(TimelineEntry {
                incident_id: row.int("incident_id")?,
                at: row.time("at")?,
                kind: TimelineKind::stored(&row.text("kind")?, row.json("data")?),
                actor: row.text("actor")?,
                message: row.text("message")?,
            })
        })
        .await
    }

    async fn append_timeline(&self, entries: &[TimelineEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.db
            .execute(On::Writer, insert_timeline(entries))
            .await?;
        Ok(())
    }

    async fn record_change(
        &self,
        change: &Change,
        received_at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let sql = Sql::new("INSERT INTO changes (source, summary, resource, at, links, details, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id")
            .arg(&change.source)
            .arg(&change.summary)
            .arg(&change.resource)
            .arg(to_millis(change.at))
            .arg(serde_json::to_string(&change.links).unwrap_or_else(|_| "[]".into()))
            .arg(change.details.to_string())
            .arg(to_millis(received_at));
        self.fetch_one(On::Writer, sql).await?.first_int()
    }

    async fn changes(&self, query: &ChangeQuery) -> Result<Vec<Change>, StoreError> {
        // The limit (a number) is written out: SQLite prepares a statement again each
        // time a bound LIMIT is bound, and the outbox reads this for every flush.
        // The list is in the order of `at`, not of ids (a change may be sent late):
        // the next page starts after the cursor's change in that order.
        let sql = Sql::new(format!("SELECT id, source, summary, resource, at, links, details FROM changes WHERE at >= ? AND at <= ? AND (CAST(? AS BIGINT) IS NULL OR (at, id) < (SELECT at, id FROM changes WHERE id = ?)) AND (CAST(? AS TEXT) IS NULL OR resource = ? OR source = ? OR resource IS NULL) ORDER BY at DESC, id DESC LIMIT {}", query.limit))
            .arg(to_millis(query.since))
            .arg(to_millis(query.until))
            .arg(query.before_id)
            .arg(query.before_id)
            .arg(&query.resource)
            .arg(&query.resource)
            .arg(&query.resource);
        self.fetch_map(On::Writer, sql, |row| {
            Ok(Change {
                id: row.int("id")?,
                source: row.text("source")?,
                summary: row.text("summary")?,
                resource: row.opt_text("resource")?,
                at: row.time("at")?,
                links: row.json("links")?,
                details: row.json("details")?,
            })
        })
        .await
    }

    async fn csat_answered(&self, incident_id: i64, address: &str) -> Result<bool, StoreError> {
        let sql = Sql::new("SELECT COUNT(*) FROM csat WHERE incident_id = ? AND address = ?")
            .arg(incident_id)
            .arg(address);
        Ok(self.fetch_one(On::Readers, sql).await?.first_int()? > 0)
    }

    async fn record_csat(
        &self,
        incident_id: i64,
        address: &str,
        score: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = Sql::new("INSERT INTO csat (incident_id, address, score, answered_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .arg(incident_id)
            .arg(address)
            .arg(score)
            .arg(to_millis(at));
        Ok(self.db.execute(On::Writer, sql).await? == 1)
    }

    async fn csat_scores(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let sql = Sql::new("SELECT c.score FROM csat c JOIN incidents i ON i.id = c.incident_id WHERE i.created_at >= ? AND i.created_at < ?")
            .arg(to_millis(from))
            .arg(to_millis(to));
        self.fetch_map(On::Readers, sql, Columns::first_int).await
    }
}

pub(super) fn upsert_incidents(incidents: &[&Incident]) -> Sql {
    let mut sql = Sql::once(format!("INSERT INTO incidents ({INCIDENT_COLUMNS}) "));
    sql.values(incidents, |row, incident| {
        row.bind(incident.id)
            .bind(&incident.title)
            .bind(incident.priority.as_str())
            .bind(incident.status.as_str())
            .bind(to_millis(incident.created_at))
            .bind(incident.acknowledged_at.map(to_millis))
            .bind(incident.resolved_at.map(to_millis))
            .bind(incident.alert_count)
            .bind(&incident.escalation_level)
            .bind(to_millis(incident.response_due))
            .bind(to_millis(incident.resolve_due))
            .bind(incident.flapping)
            .bind(incident.on_hold)
            .bind(&incident.source)
            .bind(&incident.resource)
            .bind(&incident.check)
            .bind(&incident.summary)
            .bind(&incident.group_key)
            .bind(&incident.rule)
            .bind(&incident.escalation_policy)
            .bind(to_millis(incident.last_alert_at))
            .bind(i64::from(incident.sla_flags))
            .bind(incident.hold_since.map(to_millis))
            .bind(incident.remediated)
            .bind(incident.escalated)
            .bind(incident.drill)
            .bind(serde_json::to_string(&incident.links).unwrap_or_else(|_| "[]".into()));
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
    sql
}

pub(super) fn insert_timeline(entries: &[TimelineEntry]) -> Sql {
    let mut sql = Sql::once("INSERT INTO timeline (incident_id, at, kind, actor, message, data) ");
    sql.values(entries, |row, entry| {
        row.bind(entry.incident_id)
            .bind(to_millis(entry.at))
            .bind(entry.kind.as_str())
            .bind(&entry.actor)
            .bind(&entry.message)
            .bind(entry.kind.data().to_string());
    });
    sql.push(";");
    sql
}

pub(super) fn incident_from_row(row: &impl Columns) -> Result<Incident, StoreError> {
    Ok(Incident {
        id: row.int("id")?,
        title: row.text("title")?,
        priority: row.word("priority")?,
        status: row.word("status")?,
        created_at: row.time("created_at")?,
        acknowledged_at: row.opt_time("acknowledged_at")?,
        resolved_at: row.opt_time("resolved_at")?,
        alert_count: row.int("alert_count")?,
        escalation_level: row.text("escalation_level")?,
        response_due: row.time("response_due")?,
        resolve_due: row.time("resolve_due")?,
        flapping: row.flag("flapping")?,
        on_hold: row.flag("on_hold")?,
        source: row.text("source")?,
        resource: row.text("resource")?,
        check: row.text("check_name")?,
        summary: row.text("summary")?,
        group_key: row.opt_text("group_key")?,
        rule: row.opt_text("rule")?,
        escalation_policy: row.opt_text("escalation_policy")?,
        last_alert_at: row.time("last_alert_at")?,
        sla_flags: u8::try_from(row.int("sla_flags")?).unwrap_or(0),
        hold_since: row.opt_time("hold_since")?,
        remediated: row.flag("remediated")?,
        escalated: row.flag("escalated")?,
        drill: row.flag("drill")?,
        links: row.json("links")?,
    })
}
