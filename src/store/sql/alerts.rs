//! Alerts and silences: the rows a batch writes, and the API's and noise analysis's
//! reads of them.

use super::{Backend, Columns, On, Sql, SqlStore};
use crate::alert::Severity;
use crate::clock::to_millis;
use crate::silence::Silence;
use crate::store::{AlertQuery, AlertRecord, AlertStore, AlertUpdate, AlertVolume, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub(super) const ALERT_COLUMNS: &str = "id, source, dedup_key, resource, check_name, severity, priority, status, summary, details, labels, links, count, first_seen, last_seen, occurred_at, resolved_at, incident_id, silenced, flapping, inhibited";

#[async_trait]
impl<B: Backend> AlertStore for SqlStore<B> {
    async fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        let sql = Sql::new(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?")).arg(id);
        self.db
            .fetch_optional(On::Writer, sql)
            .await?
            .as_ref()
            .map(alert_from_row)
            .transpose()
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let mut sql = Sql::new(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE 1 = 1"));
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
            sql.push(&format!(" AND ({})", conditions.join(" OR ")));
        }
        sql.and_in(
            "priority",
            query.priorities.iter().map(|p| p.as_str().to_string()),
        );
        if let Some(source) = &query.source {
            sql.push(" AND source = ").bind(source);
        }
        if let Some(resource) = &query.resource {
            sql.push(" AND resource = ").bind(resource);
        }
        if let Some(incident) = query.incident_id {
            sql.push(" AND incident_id = ").bind(incident);
        }
        if let Some(before) = query.before_id {
            sql.push(" AND id < ").bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ").bind(query.limit);
        self.fetch_map(On::Readers, sql, alert_from_row).await
    }

    async fn alert_volume(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlertVolume>, StoreError> {
        let sql = Sql::new(
            "SELECT source, check_name, COUNT(*) AS alerts, CAST(SUM(count) AS BIGINT) AS notifications, \
             CAST(SUM(CASE WHEN flapping THEN 1 ELSE 0 END) AS BIGINT) AS flapping, \
             CAST(SUM(CASE WHEN flapping THEN COALESCE(resolved_at, last_seen) - first_seen ELSE 0 END) AS BIGINT) / 1000 AS flapping_seconds \
             FROM alerts WHERE first_seen >= ? AND first_seen < ? GROUP BY source, check_name",
        )
        .arg(to_millis(from))
        .arg(to_millis(to));
        self.fetch_map(On::Readers, sql, |row| {
            Ok(AlertVolume {
                source: row.text("source")?,
                check: row.text("check_name")?,
                alerts: row.int("alerts")?,
                notifications: row.int("notifications")?,
                flapping: row.int("flapping")?,
                flapping_seconds: row.int("flapping_seconds")?,
            })
        })
        .await
    }

    async fn silences(
        &self,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<Silence>, StoreError> {
        let sql = Sql::new(format!(
            "SELECT {SILENCE_COLUMNS} FROM silences WHERE id < ? ORDER BY id DESC LIMIT ?"
        ))
        .arg(before_id.unwrap_or(i64::MAX))
        .arg(limit);
        self.silence_rows(sql).await
    }
}

const SILENCE_COLUMNS: &str = "id, matchers, starts_at, ends_at, created_by, comment, created_at";

impl<B: Backend> SqlStore<B> {
    /// The silences that have not ended at `now`.
    pub(super) async fn active_silences(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<Silence>, StoreError> {
        let sql = Sql::new(format!(
            "SELECT {SILENCE_COLUMNS} FROM silences WHERE ends_at > ? ORDER BY id DESC"
        ))
        .arg(to_millis(now));
        self.silence_rows(sql).await
    }

    async fn silence_rows(&self, sql: Sql) -> Result<Vec<Silence>, StoreError> {
        self.fetch_map(On::Writer, sql, |row| {
            let matchers: Vec<String> = row.json("matchers")?;
            Silence::new(
                row.int("id")?,
                matchers,
                row.time("starts_at")?,
                row.time("ends_at")?,
                row.text("created_by")?,
                row.text("comment")?,
                row.time("created_at")?,
            )
            .map_err(|error| StoreError::Corrupt(error.to_string()))
        })
        .await
    }
}

pub(super) fn insert_alerts(alerts: &[AlertRecord]) -> Sql {
    let mut sql = Sql::once(format!("INSERT INTO alerts ({ALERT_COLUMNS}) "));
    sql.values(alerts, |row, alert| {
        row.bind(alert.id)
            .bind(&alert.source)
            .bind(&alert.dedup_key)
            .bind(&alert.resource)
            .bind(&alert.check)
            .bind(alert.severity.as_str())
            .bind(alert.priority.as_str())
            .bind(alert.status.as_str())
            .bind(&alert.summary)
            .bind(alert.details.to_string())
            .bind(serde_json::to_string(&alert.labels).unwrap_or_default())
            .bind(serde_json::to_string(&alert.links).unwrap_or_default())
            .bind(alert.count)
            .bind(to_millis(alert.first_seen))
            .bind(to_millis(alert.last_seen))
            .bind(alert.occurred_at.map(to_millis))
            .bind(alert.resolved_at.map(to_millis))
            .bind(alert.incident_id)
            .bind(alert.silenced)
            .bind(alert.flapping)
            .bind(alert.inhibited);
    });
    sql.push(";");
    sql
}

pub(super) fn update_alert(id: i64, update: &AlertUpdate) -> Sql {
    let mut sql = Sql::once("UPDATE alerts SET count = ");
    sql.bind(update.count)
        .push(", last_seen = ")
        .bind(to_millis(update.last_seen))
        .push(", status = ")
        .bind(update.status.as_str())
        .push(", resolved_at = ")
        .bind(update.resolved_at.map(to_millis))
        .push(", incident_id = ")
        .bind(update.incident_id)
        .push(", silenced = ")
        .bind(update.silenced)
        .push(", flapping = ")
        .bind(update.flapping)
        .push(", inhibited = ")
        .bind(update.inhibited)
        .push(" WHERE id = ")
        .bind(id)
        .push(";");
    sql
}

/// Many alerts' changes in one statement, for a server where every statement is a
/// round trip made while the batch holds its locks.
pub(super) fn update_alerts(updates: &[(&i64, &AlertUpdate)]) -> Sql {
    let mut sql = Sql::once(
        "UPDATE alerts SET count = v.count, last_seen = v.last_seen, status = v.status, \
         resolved_at = v.resolved_at, incident_id = v.incident_id, silenced = v.silenced, \
         flapping = v.flapping, inhibited = v.inhibited FROM (",
    );
    sql.values(updates, |tuple, (id, update)| {
        tuple
            .bind(**id)
            .bind(update.count)
            .bind(to_millis(update.last_seen))
            .bind(update.status.as_str())
            .bind(update.resolved_at.map(to_millis))
            .bind(update.incident_id)
            .bind(update.silenced)
            .bind(update.flapping)
            .bind(update.inhibited);
    });
    sql.push(
        ") AS v (id, count, last_seen, status, resolved_at, incident_id, silenced, flapping, inhibited) \
         WHERE alerts.id = v.id;",
    );
    sql
}

pub(super) fn upsert_silence(silence: &Silence) -> Sql {
    let mut sql = Sql::once(
        "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at) VALUES ",
    );
    sql.tuple(|values| {
        values
            .bind(silence.id)
            .bind(serde_json::to_string(&silence.matchers).unwrap_or_default())
            .bind(to_millis(silence.starts_at))
            .bind(to_millis(silence.ends_at))
            .bind(&silence.created_by)
            .bind(&silence.comment)
            .bind(to_millis(silence.created_at));
    });
    sql.push(" ON CONFLICT (id) DO UPDATE SET ends_at = excluded.ends_at, starts_at = excluded.starts_at;");
    sql
}

pub(super) fn alert_from_row(row: &impl Columns) -> Result<AlertRecord, StoreError> {
    Ok(AlertRecord {
        id: row.int("id")?,
        source: row.text("source")?,
        dedup_key: row.text("dedup_key")?,
        resource: row.text("resource")?,
        check: row.text("check_name")?,
        severity: Severity::from_word(&row.text("severity")?)
            .ok_or_else(|| StoreError::Corrupt("unknown severity".into()))?,
        priority: row.word("priority")?,
        status: row.word("status")?,
        summary: row.text("summary")?,
        details: row.json("details")?,
        labels: row.json("labels")?,
        links: row.json("links")?,
        count: row.int("count")?,
        first_seen: row.time("first_seen")?,
        last_seen: row.time("last_seen")?,
        occurred_at: row.opt_time("occurred_at")?,
        resolved_at: row.opt_time("resolved_at")?,
        incident_id: row.opt_int("incident_id")?,
        silenced: row.flag("silenced")?,
        inhibited: row.flag("inhibited")?,
        flapping: row.flag("flapping")?,
    })
}
