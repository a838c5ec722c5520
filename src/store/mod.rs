//! The store contract: everything Tocsin keeps lives behind [`Store`], so SQLite (the
//! embedded default) and PostgreSQL (scale-out) are interchangeable. Writes arrive as
//! one [`WriteBatch`] per group commit; reads serve the API.

pub mod sqlite;

use crate::alert::{AlertStatus, Labels, Priority, Severity};
use crate::dedup::{DedupKey, OpenAlert};
use crate::incident::{Incident, TimelineEntry};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// Why the store could not do what was asked. Callers answer 503 so senders retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database refused the operation: {0}; check that it is reachable and its disk is not full"
    )]
    Database(#[from] sqlx::Error),
    #[error("the database schema could not be brought up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Open(String),
    #[error("a stored row is unreadable: {0}")]
    Corrupt(String),
}

/// An alert as stored and listed by the API.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub id: i64,
    pub source: String,
    pub dedup_key: String,
    pub resource: String,
    pub check: String,
    pub severity: Severity,
    pub priority: Priority,
    pub status: AlertStatus,
    pub summary: String,
    pub details: serde_json::Value,
    pub labels: Labels,
    pub links: Vec<String>,
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub incident_id: Option<i64>,
    pub silenced: bool,
    pub flapping: bool,
}

/// The mutable part of an existing alert, written by a repeat or a resolve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertUpdate {
    pub count: i64,
    pub last_seen: DateTime<Utc>,
    pub status: AlertStatus,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Everything one group commit writes, in one transaction. Changes to the same row
/// within a batch are merged, so a storm of repeats costs one row write per key.
#[derive(Debug, Default)]
pub struct WriteBatch {
    new_alerts: Vec<AlertRecord>,
    new_alert_index: HashMap<i64, usize>,
    alert_updates: HashMap<i64, AlertUpdate>,
    incidents: HashMap<i64, Incident>,
    timeline: Vec<TimelineEntry>,
}

impl WriteBatch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.new_alerts.is_empty()
            && self.alert_updates.is_empty()
            && self.incidents.is_empty()
            && self.timeline.is_empty()
    }

    /// A new alert row.
    pub fn insert_alert(&mut self, alert: AlertRecord) {
        self.new_alert_index.insert(alert.id, self.new_alerts.len());
        self.new_alerts.push(alert);
    }

    /// Changes an alert, whether it is new in this batch or already stored.
    pub fn update_alert(&mut self, id: i64, update: AlertUpdate) {
        match self.new_alert_index.get(&id) {
            Some(&index) => {
                let alert = &mut self.new_alerts[index];
                alert.count = update.count;
                alert.last_seen = update.last_seen;
                alert.status = update.status;
                alert.resolved_at = update.resolved_at;
            }
            None => {
                self.alert_updates.insert(id, update);
            }
        }
    }

    /// Inserts or replaces an incident row.
    pub fn upsert_incident(&mut self, incident: &Incident) {
        self.incidents.insert(incident.id, incident.clone());
    }

    /// Appends to an incident's timeline.
    pub fn record(&mut self, entry: TimelineEntry) {
        self.timeline.push(entry);
    }

    /// New alerts, in id order.
    pub fn new_alerts(&self) -> &[AlertRecord] {
        &self.new_alerts
    }

    /// Changes to stored alerts.
    pub fn alert_updates(&self) -> impl Iterator<Item = (&i64, &AlertUpdate)> {
        self.alert_updates.iter()
    }

    /// Incidents to insert or replace.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values()
    }

    /// Timeline entries to append.
    pub fn timeline(&self) -> &[TimelineEntry] {
        &self.timeline
    }
}

/// What the pipeline needs in memory at start: the open alerts and incidents, and
/// the next free ids.
#[derive(Debug, Default)]
pub struct OpenState {
    pub alerts: Vec<(DedupKey, OpenAlert)>,
    /// Open incidents with the number of their alerts still firing.
    pub incidents: Vec<(Incident, i64)>,
    pub next_alert_id: i64,
    pub next_incident_id: i64,
}

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    pub statuses: Vec<String>,
    pub priorities: Vec<Priority>,
    /// Only ids below this (the page cursor).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    /// `firing`, `resolved` or `silenced`.
    pub statuses: Vec<String>,
    pub priorities: Vec<Priority>,
    pub source: Option<String>,
    pub resource: Option<String>,
    pub incident_id: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// The storage backend. Implementations must make [`Store::commit`] atomic and durable
/// before it returns: a 202 is only sent after it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Everything the pipeline keeps in memory.
    async fn load_open_state(&self) -> Result<OpenState, StoreError>;
    /// Writes a batch in one transaction.
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError>;
    /// One incident.
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError>;
    /// Incidents, newest first.
    async fn incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError>;
    /// Alerts, newest first.
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError>;
    /// An incident's history, oldest first.
    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError>;
    /// The newest alert of an identity, with its incident, if it was ever seen.
    async fn latest_alert(&self, key: &DedupKey) -> Result<Option<(i64, Option<i64>)>, StoreError>;
}

/// Opens the backend named by `[storage] url`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else {
        Err(StoreError::Open(format!(
            "storage url {url:?}: only sqlite:// is supported by this version; use sqlite://data/tocsin.db"
        )))
    }
}
