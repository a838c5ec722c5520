//! The store contract: everything Tocsin keeps lives behind [`Store`], so SQLite (the
//! embedded default) and PostgreSQL (scale-out) are interchangeable. Writes arrive as
//! one [`WriteBatch`] per group commit; reads serve the API.

pub mod channels;
pub mod console;
mod contract;
mod delegate;
pub mod paging;
mod postgres;
pub mod runs;
mod sql;
mod sqlite;
mod sqlite_writer;
pub mod tickets;

use crate::alert::{AlertStatus, Labels, Priority, Severity};
use crate::dedup::{DedupKey, OpenAlert};
use crate::flapping::Flap;
use crate::incident::{Incident, TimelineEntry};
use crate::silence::Silence;
use chrono::{DateTime, Utc};
use paging::{Escalation, Notification, NotificationKind};
use std::collections::HashMap;
use std::sync::Arc;
use tickets::TicketOp;

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
    /// SQLite's write connection (its own thread) refused a write.
    #[error(
        "the database refused the write: {0}; check that its disk is not full and the file is writable"
    )]
    Write(String),
    #[error("the database writer has stopped")]
    WriterStopped,
    /// A write made together with others (the outbox's settlements) failed; the
    /// caller that made the write holds the cause itself, the others its text.
    #[error("{0}")]
    Together(String),
}

impl StoreError {
    /// A deadlock or serialization failure between replicas (SQLSTATE 40P01, 40001):
    /// nothing was written, and the same batch taken again succeeds.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(error)) => {
                matches!(error.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
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
    pub inhibited: bool,
    pub flapping: bool,
}

impl AlertRecord {
    /// The alert as a sender would have posted it, for re-running it through the rules.
    pub fn into_alert(self) -> crate::alert::Alert {
        crate::alert::Alert {
            source: self.source,
            dedup_key: self.dedup_key,
            resource: self.resource,
            check: self.check,
            severity: self.severity,
            status: self.status,
            action: crate::alert::AlertAction::Report,
            summary: self.summary,
            details: self.details,
            labels: self.labels,
            links: self.links,
            occurred_at: self.occurred_at,
        }
    }
}

/// The mutable part of an existing alert, written by a repeat or a resolve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertUpdate {
    pub count: i64,
    pub last_seen: DateTime<Utc>,
    pub status: AlertStatus,
    pub resolved_at: Option<DateTime<Utc>>,
    pub incident_id: Option<i64>,
    pub silenced: bool,
    pub inhibited: bool,
    pub flapping: bool,
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
    /// Escalation timers to write (`Some`) or delete (`None`), by incident.
    escalations: HashMap<i64, Option<Escalation>>,
    notifications: Vec<Notification>,
    cancelled_pages: Vec<i64>,
    silences: Vec<Silence>,
    heartbeats: HashMap<String, DateTime<Utc>>,
    /// Flap histories to write (`Some`) or delete (`None`), by identity.
    flaps: HashMap<DedupKey, Option<Flap>>,
    /// Inhibitor keys firing alerts now hold (key, holder), and the holders that
    /// resolved (their keys go first).
    inhibitors_held: Vec<(String, String)>,
    inhibitors_released: Vec<String>,
    runs: Vec<runs::RunRecord>,
    ticket_ops: Vec<TicketOp>,
    due_claim: Option<DueClaim>,
    /// Single-use keys (ack links) spent by this batch.
    spent: Vec<(String, DateTime<Utc>)>,
    /// Answers kept for `Idempotency-Key` repeats: key → JSON answer.
    remembered: HashMap<String, (String, DateTime<Utc>)>,
    /// Housekeeping: idempotency answers and expired silences older than these go.
    prune: Option<Prune>,
    /// Counts every change, so the writer can tell whether a failed command left
    /// something behind in the batch.
    revision: u64,
}

pub use crate::change::ChangeQuery;
pub use contract::{
    AlertStore, IdTable, IncidentStore, KeyStore, LeaseStore, OutboxStore, PageHistory, RunStore,
    SharedWrites, Store, TicketStore, WriteStore,
};
pub use delegate::Forward;

/// Every store trait, for calling store methods on a concrete store (a `dyn Store`
/// needs no import).
pub mod prelude {
    pub use super::channels::ChannelStore;
    pub use super::console::ConsoleStore;
    pub use super::{
        AlertStore, IncidentStore, KeyStore, LeaseStore, OutboxStore, PageHistory, RunStore,
        SharedWrites, Store, TicketStore, WriteStore,
    };
}

/// Rows past their retention, deleted in the batch that carries this.
#[derive(Debug, Clone, Copy)]
pub struct Prune {
    pub answers_before: DateTime<Utc>,
    pub silences_ended_before: DateTime<Utc>,
    /// Single-use keys: those of timestamped signatures outlive their 5-minute window;
    /// the others (ack links, Twilio messages, signatures without a time) are kept a
    /// month and longer than an ack link lives.
    pub keys_used_before: DateTime<Utc>,
    pub timestamped_signatures_used_before: DateTime<Utc>,
    pub changes_before: DateTime<Utc>,
}

/// The claim messages due at once are written under: the writer's process claims
/// them in the batch that queues them, so its outbox sends them without a claim
/// query (and its fsync) of its own between an alert and its page.
#[derive(Debug, Clone)]
pub struct DueClaim {
    pub token: String,
    /// Messages due at or before this are written claimed.
    pub now: DateTime<Utc>,
    /// The end of the lease, as for a claim the outbox takes.
    pub until: DateTime<Utc>,
}

impl WriteBatch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.new_alerts.is_empty()
            && self.alert_updates.is_empty()
            && self.incidents.is_empty()
            && self.timeline.is_empty()
            && self.escalations.is_empty()
            && self.notifications.is_empty()
            && self.cancelled_pages.is_empty()
            && self.silences.is_empty()
            && self.heartbeats.is_empty()
            && self.flaps.is_empty()
            && self.inhibitors_held.is_empty()
            && self.inhibitors_released.is_empty()
            && self.runs.is_empty()
            && self.ticket_ops.is_empty()
            && self.spent.is_empty()
            && self.remembered.is_empty()
            && self.prune.is_none()
    }

    /// How many changes this batch holds; grows with every change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Spends a single-use key in this batch's commit.
    pub fn spend(&mut self, key: &str, at: DateTime<Utc>) {
        self.revision += 1;
        self.spent.push((key.to_string(), at));
    }

    /// Whether this batch already spends `key`.
    pub fn spends(&self, key: &str) -> bool {
        self.spent.iter().any(|(spent, _)| spent == key)
    }

    /// Single-use keys to record as used.
    pub fn spent(&self) -> &[(String, DateTime<Utc>)] {
        &self.spent
    }

    /// Keeps the answer to a request made with an `Idempotency-Key`.
    pub fn remember(&mut self, key: &str, answer: String, at: DateTime<Utc>) {
        self.revision += 1;
        self.remembered.insert(key.to_string(), (answer, at));
    }

    /// The answer this batch keeps for `key`.
    pub fn remembered(&self, key: &str) -> Option<&str> {
        self.remembered.get(key).map(|(answer, _)| answer.as_str())
    }

    /// Answers to keep.
    pub fn answers(&self) -> impl Iterator<Item = (&String, &(String, DateTime<Utc>))> {
        self.remembered.iter()
    }

    /// Deletes rows past their retention in this batch's commit.
    pub fn prune(&mut self, prune: Prune) {
        self.prune = Some(prune);
    }

    /// The housekeeping this batch carries.
    pub fn pruning(&self) -> Option<Prune> {
        self.prune
    }

    /// Queues a call to a ticketing platform; a duplicate (same incident, platform,
    /// kind and step) is dropped by the store, so an incident gets one ticket per
    /// platform.
    pub fn queue_ticket(&mut self, op: TicketOp) {
        self.revision += 1;
        self.ticket_ops.push(op);
    }

    /// Ticket calls to queue, in order.
    pub fn ticket_ops(&self) -> &[TicketOp] {
        &self.ticket_ops
    }

    /// An incident this batch writes.
    pub fn incident(&self, id: i64) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    /// Inserts or replaces a runbook run.
    pub fn upsert_run(&mut self, run: runs::RunRecord) {
        self.revision += 1;
        self.runs.push(run);
    }

    /// Runs to write.
    pub fn runs(&self) -> &[runs::RunRecord] {
        &self.runs
    }

    /// Inserts or replaces a silence.
    pub fn upsert_silence(&mut self, silence: &Silence) {
        self.revision += 1;
        self.silences.push(silence.clone());
    }

    /// Records a heartbeat check-in.
    pub fn beat(&mut self, name: &str, at: DateTime<Utc>) {
        self.revision += 1;
        self.heartbeats.insert(name.to_string(), at);
    }

    /// Keeps an identity's flap history as it now is.
    pub fn keep_flap(&mut self, key: &DedupKey, flap: &Flap) {
        self.revision += 1;
        self.flaps.insert(key.clone(), Some(flap.clone()));
    }

    /// Deletes an identity's flap history: it settled or went idle.
    pub fn forget_flap(&mut self, key: &DedupKey) {
        self.revision += 1;
        self.flaps.insert(key.clone(), None);
    }

    /// A firing alert (`holder`: its identity joined) holds an inhibitor key.
    pub fn hold_inhibitor(&mut self, key: String, holder: &str) {
        self.revision += 1;
        self.inhibitors_held.push((key, holder.to_string()));
    }

    /// A resolved alert holds no inhibitor key any more.
    pub fn release_inhibitors(&mut self, holder: &str) {
        self.revision += 1;
        self.inhibitors_held.retain(|(_, held)| held != holder);
        self.inhibitors_released.push(holder.to_string());
    }

    /// Inhibitor keys held, and holders released (written first).
    pub fn inhibitors(&self) -> (&[(String, String)], &[String]) {
        (&self.inhibitors_held, &self.inhibitors_released)
    }

    /// Flap histories to write or delete.
    pub fn flaps(&self) -> impl Iterator<Item = (&DedupKey, &Option<Flap>)> {
        self.flaps.iter()
    }

    /// Silences to write.
    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// Heartbeat check-ins to write.
    pub fn heartbeats(&self) -> impl Iterator<Item = (&String, &DateTime<Utc>)> {
        self.heartbeats.iter()
    }

    /// Writes an escalation timer.
    pub fn set_escalation(&mut self, escalation: Escalation) {
        self.revision += 1;
        self.escalations
            .insert(escalation.incident_id, Some(escalation));
    }

    /// Stops an incident's escalation.
    pub fn end_escalation(&mut self, incident_id: i64) {
        self.revision += 1;
        self.escalations.insert(incident_id, None);
    }

    /// Queues a message; a duplicate of an existing one (same incident, user, channel,
    /// kind and step) is dropped by the store, so nobody is paged twice for one step.
    pub fn queue(&mut self, notification: Notification) {
        self.revision += 1;
        self.notifications.push(notification);
    }

    /// Cancels the pages of an incident still waiting in the outbox (acknowledged or
    /// resolved before they went out). Pages queued in this batch are cancelled too.
    pub fn cancel_pages(&mut self, incident_id: i64) {
        self.revision += 1;
        self.cancelled_pages.push(incident_id);
    }

    /// Writes the messages of this batch that are due now already claimed.
    pub fn claim_due(&mut self, claim: DueClaim) {
        self.due_claim = Some(claim);
    }

    /// The claim a queued message is written under, if it is written claimed: due
    /// now, and not a page this batch also cancels (that one stays pending, to be
    /// cancelled).
    pub fn claim_of(&self, notification: &Notification) -> Option<&DueClaim> {
        self.due_claim.as_ref().filter(|claim| {
            notification.due_at <= claim.now
                && !(notification.kind == NotificationKind::Page
                    && self.cancelled_pages.contains(&notification.incident_id))
        })
    }

    /// The claim the outbox takes over once this batch is durable, when some of its
    /// messages are written under it.
    pub fn handed_claim(&self) -> Option<&str> {
        self.notifications
            .iter()
            .find_map(|notification| self.claim_of(notification))
            .map(|claim| claim.token.as_str())
    }

    /// Escalation changes.
    pub fn escalations(&self) -> impl Iterator<Item = (&i64, &Option<Escalation>)> {
        self.escalations.iter()
    }

    /// Messages to queue.
    pub fn notifications(&self) -> &[Notification] {
        &self.notifications
    }

    /// Incidents whose pending pages are cancelled.
    pub fn cancelled_pages(&self) -> &[i64] {
        &self.cancelled_pages
    }

    /// A new alert row.
    pub fn insert_alert(&mut self, alert: AlertRecord) {
        self.revision += 1;
        self.new_alert_index.insert(alert.id, self.new_alerts.len());
        self.new_alerts.push(alert);
    }

    /// Changes an alert, whether it is new in this batch or already stored.
    pub fn update_alert(&mut self, id: i64, update: AlertUpdate) {
        self.revision += 1;
        match self.new_alert_index.get(&id) {
            Some(&index) => {
                let alert = &mut self.new_alerts[index];
                alert.count = update.count;
                alert.last_seen = update.last_seen;
                alert.status = update.status;
                alert.resolved_at = update.resolved_at;
                alert.incident_id = update.incident_id;
                alert.silenced = update.silenced;
                alert.inhibited = update.inhibited;
                alert.flapping = update.flapping;
            }
            None => {
                self.alert_updates.insert(id, update);
            }
        }
    }

    /// Inserts or replaces an incident row.
    pub fn upsert_incident(&mut self, incident: &Incident) {
        self.revision += 1;
        self.incidents.insert(incident.id, incident.clone());
    }

    /// Appends to an incident's timeline.
    pub fn record(&mut self, entry: TimelineEntry) {
        self.revision += 1;
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
    /// Silences that have not ended, how often silences changed (a counter), and
    /// the next free silence id.
    pub silences: Vec<Silence>,
    pub silences_version: i64,
    pub next_silence_id: i64,
    /// Last check-in of each heartbeat.
    pub heartbeats: HashMap<String, DateTime<Utc>>,
    /// Flap histories: every one kept, or those of the identities read.
    pub flaps: Vec<(DedupKey, Flap)>,
    /// Runs waiting for the sender's recovery, and the next free run id.
    pub awaiting_recovery: Vec<runs::RunRecord>,
    pub next_run_id: i64,
    /// The escalation timers: every one, or those of the incidents read.
    pub escalations: Vec<paging::Escalation>,
}

/// What one batch touches, read again under its locks (replicas).
#[derive(Debug, Default)]
pub struct TouchedRows {
    /// The firing alerts of the batch's identities.
    pub alerts: Vec<(DedupKey, OpenAlert)>,
    /// The open incidents those alerts and the batch's groups belong to, ascending.
    pub incidents: Vec<i64>,
    /// The flap histories of the batch's identities.
    pub flaps: Vec<(DedupKey, Flap)>,
    /// How often silences changed, when the batch names an identity.
    pub silences_version: Option<i64>,
}

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    pub statuses: Vec<String>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    pub priorities: Vec<Priority>,
    /// Only ids below this (the page cursor).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    /// `firing`, `resolved`, `silenced` or `inhibited`.
    pub statuses: Vec<String>,
    pub priorities: Vec<Priority>,
    pub source: Option<String>,
    pub resource: Option<String>,
    pub incident_id: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// The alerts of one source and check first seen in a window, for the noise analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertVolume {
    pub source: String,
    pub check: String,
    /// Alert episodes (rows).
    pub alerts: i64,
    /// Notifications received for them, repeats included.
    pub notifications: i64,
    /// Episodes that were flapping.
    pub flapping: i64,
    /// How long those episodes lasted, first seen to resolved (or last seen).
    pub flapping_seconds: i64,
}

/// How long a claim lasts unless renewed (spec §10): a dead replica's claims are
/// taken over within this.
pub const CLAIM_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
/// How often claims still being worked on are renewed.
pub const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Works every due row of `table`: claims a round under a fresh token (`claim`), runs
/// `work` on its rows concurrently while their leases are renewed, and claims again
/// until nothing is due. Returns how many rows were worked.
pub async fn work_claims<T, C, CF, W, WF>(
    store: &dyn Store,
    clock: &dyn crate::clock::Clock,
    table: Claims,
    id: fn(&T) -> i64,
    claim: C,
    work: W,
) -> Result<usize, StoreError>
where
    C: Fn(String) -> CF,
    CF: std::future::Future<Output = Result<Vec<T>, StoreError>>,
    W: Fn(T, String) -> WF,
    WF: std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
{
    let mut worked = 0;
    loop {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let claimed = claim(token.clone()).await?;
        if claimed.is_empty() {
            return Ok(worked);
        }
        worked += claimed.len();
        work_claimed(store, clock, table, id, &token, claimed, &work).await;
    }
}

/// Runs `work` on rows already claimed under `token`, concurrently, while their
/// leases are renewed.
pub async fn work_claimed<T, W, WF>(
    store: &dyn Store,
    clock: &dyn crate::clock::Clock,
    table: Claims,
    id: fn(&T) -> i64,
    token: &str,
    claimed: Vec<T>,
    work: &W,
) where
    W: Fn(T, String) -> WF,
    WF: std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
{
    let ids: Vec<i64> = claimed.iter().map(id).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for row in claimed {
        tasks.spawn(work(row, token.to_string()));
    }
    while_leased(store, clock, table, token, &ids, tasks).await;
}

/// Waits for `work` (one task per claimed row) while renewing the rows' lease, so no
/// other replica takes over a claim that is still being worked on.
async fn while_leased(
    store: &dyn Store,
    clock: &dyn crate::clock::Clock,
    table: Claims,
    claim: &str,
    ids: &[i64],
    mut work: tokio::task::JoinSet<Result<(), StoreError>>,
) {
    let start = tokio::time::Instant::now() + RENEW_EVERY;
    let mut renew = tokio::time::interval_at(start, RENEW_EVERY);
    loop {
        tokio::select! {
            done = work.join_next() => match done {
                None => return,
                Some(Ok(Err(error))) => tracing::error!(%error, ?table, "cannot record the outcome of a claimed row"),
                Some(Err(error)) => tracing::error!(%error, ?table, "a claimed row's task failed"),
                Some(Ok(Ok(()))) => {}
            },
            _ = renew.tick() => {
                if let Err(error) = store.renew_claims(table, claim, ids, clock.now() + CLAIM_LEASE).await {
                    tracing::warn!(%error, ?table, "cannot renew claims; another replica may take them over");
                }
            }
        }
    }
}

/// Tables whose rows are claimed with a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claims {
    Notifications,
    TicketOps,
    /// Runbook runs while their child process runs.
    Runs,
}

impl Claims {
    /// The table, the status of a claimed row, the column holding its lease, and
    /// whether rows carry the claimer's token (a run belongs to the process that
    /// started it).
    fn lease(self) -> (&'static str, &'static str, &'static str, bool) {
        match self {
            Self::Notifications => ("notifications", "sending", "due_at", true),
            Self::TicketOps => ("ticket_ops", "sending", "due_at", true),
            Self::Runs => ("runbook_runs", "running", "lease_until", false),
        }
    }
}

/// Opens the backend named by `[storage] url`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sql::SqlStore::new(
            sqlite::SqliteStore::open(url).await?,
        )))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(sql::SqlStore::new(
            postgres::PostgresStore::open(url).await?,
        )))
    } else {
        Err(StoreError::Open(format!(
            "storage url {url:?}: use sqlite://PATH (embedded) or postgres://USER@HOST/DB"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn page(incident_id: i64, due_at: DateTime<Utc>) -> Notification {
        Notification {
            id: 0,
            incident_id,
            user_id: "alice".into(),
            channel: crate::oncall::Channel::Email,
            address: "alice@example.com".into(),
            kind: NotificationKind::Page,
            step: "L1#1".into(),
            attempts: 0,
            due_at,
            deadline: due_at + TimeDelta::hours(1),
        }
    }

    #[test]
    fn only_messages_due_now_and_not_cancelled_are_written_claimed() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let mut batch = WriteBatch::default();
        batch.queue(page(1, now + TimeDelta::minutes(10)));
        batch.queue(page(4, now));
        assert_eq!(batch.handed_claim(), None, "no claim asked for");
        batch.claim_due(DueClaim {
            token: "t".into(),
            now,
            until: now + CLAIM_LEASE,
        });
        assert!(
            batch.claim_of(&batch.notifications()[0]).is_none(),
            "an L2 page due later waits"
        );
        assert_eq!(batch.handed_claim(), Some("t"));
        let mut batch = WriteBatch::default();
        batch.claim_due(DueClaim {
            token: "t".into(),
            now,
            until: now + CLAIM_LEASE,
        });
        batch.queue(page(2, now));
        batch.cancel_pages(2);
        assert_eq!(batch.handed_claim(), None, "a page cancelled in its batch");
        batch.queue(page(3, now));
        assert_eq!(batch.handed_claim(), Some("t"));
        assert!(batch.claim_of(&batch.notifications()[1]).is_some());
    }
}
