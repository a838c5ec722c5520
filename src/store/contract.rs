//! The store contract, split by concern so a caller or a test double names only what
//! it uses: each trait is one table family's calls, and [`Store`] is all of them, the
//! way a backend implements them and the application holds them (`Arc<dyn Store>`).

use super::paging::{Delivery, Notification, PageFacts, Paged, Settlement};
use super::runs::RunRecord;
use super::tickets::{Ticket, TicketOp};
use super::{
    AlertQuery, AlertRecord, AlertVolume, ChangeQuery, Claims, IncidentQuery, OpenState,
    StoreError, TouchedRows, WriteBatch,
};
use crate::dedup::DedupKey;
use crate::incident::{Incident, TimelineEntry};
use crate::silence::Silence;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The group-commit writer's side: its view loaded at start, its turn, its commit.
/// Implementations must make [`WriteStore::commit`] atomic and durable before it
/// returns: a 202 is only sent after it.
#[async_trait]
pub trait WriteStore: Send + Sync + 'static {
    /// Cheap liveness check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Everything the pipeline keeps in memory.
    async fn load_open_state(&self) -> Result<OpenState, StoreError>;
    /// Takes this process's turn to change alerts and incidents (PostgreSQL: a lock
    /// held until [`WriteStore::commit`] or [`WriteStore::end_turn`]). True when another
    /// replica changed them since this one last loaded or committed: reload first.
    async fn begin_turn(&self) -> Result<bool, StoreError>;
    /// Gives the turn up without writing.
    async fn end_turn(&self);
    /// Writes a batch in one transaction, and ends the turn.
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError>;
}

/// The rows one batch touches, locked and read again: how replicas on one PostgreSQL
/// database write concurrently without a global turn. A backend with one writer
/// (SQLite) is never `shared` and is never asked for the rest.
#[async_trait]
pub trait SharedWrites: Send + Sync + 'static {
    /// Whether other processes write this store at the same time.
    fn shared(&self) -> bool;
    /// Opens the batch's transaction beside other replicas' batches (the turn taken
    /// shared: only [`WriteStore::begin_turn`] waits for them all to finish) and locks
    /// `keys` in it, as [`SharedWrites::lock_keys`] does.
    async fn begin_keyed(&self, keys: &[i64]) -> Result<(), StoreError>;
    /// Locks `keys` (64-bit hashes of what the batch touches) until the batch commits
    /// or gives up its turn, in ascending order so two batches never wait on each other.
    async fn lock_keys(&self, keys: &[i64]) -> Result<(), StoreError>;
    /// The firing alerts and flap histories of `identities` (best sorted: one query
    /// per run of a source), and the open incidents they and `groups` belong to.
    async fn read_touched(
        &self,
        identities: &[DedupKey],
        groups: &[String],
    ) -> Result<TouchedRows, StoreError>;
    /// The open incidents among `incidents`, with how many of their alerts fire, and
    /// those firing alerts.
    async fn load_slice(&self, incidents: &[i64]) -> Result<OpenState, StoreError>;
    /// The silences that have not ended at `now`. Silences change only under the
    /// whole turn, so read while a batch holds it shared they are exact.
    async fn active_silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, StoreError>;
    /// What a replica keeps in memory between batches: open incidents with their
    /// firing alerts, flapping alerts and those of `kept_source` (heartbeats),
    /// silences, heartbeats, runs awaiting recovery — not every firing alert
    /// (batches read those they touch).
    async fn load_open_incidents(&self, kept_source: &str) -> Result<OpenState, StoreError>;
    /// When a replica last passed over the timers, by its own clock (the epoch if
    /// none ever did).
    async fn timers_passed_at(&self) -> Result<DateTime<Utc>, StoreError>;
    /// Records that this replica passed over the timers at `at`.
    async fn mark_timers_passed(&self, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Who holds the inhibitor `keys`, as `(key, holder)`; with `None`, every key held.
    async fn inhibitors(
        &self,
        keys: Option<&[String]>,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// Tells `to` of other replicas' commits (PostgreSQL `LISTEN`), for the
    /// dashboard's live stream, until the connection fails (the error; call again).
    /// With one writer there are none: returns at once.
    async fn relay_commits(
        &self,
        to: &tokio::sync::broadcast::Sender<()>,
    ) -> Result<(), StoreError>;
    /// At least `count` ids for new rows of `table`, in blocks no other replica gets.
    async fn reserve_ids(
        &self,
        table: IdTable,
        count: i64,
    ) -> Result<Vec<std::ops::Range<i64>>, StoreError>;
}

/// The tables whose ids the writer assigns before it writes the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTable {
    Alerts,
    Incidents,
    Silences,
    Runs,
}

impl IdTable {
    pub const ALL: [IdTable; 4] = [Self::Alerts, Self::Incidents, Self::Silences, Self::Runs];
}

/// Alerts and silences as the API lists them, and the alert volume the noise analysis reads.
#[async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// One alert.
    async fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError>;
    /// Alerts, newest first.
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError>;
    /// Alert volume per source and check, for alerts first seen in `[from, to)`.
    async fn alert_volume(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlertVolume>, StoreError>;
    /// Silences newest first: up to `limit` with an id below `before_id`.
    async fn silences(
        &self,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<Silence>, StoreError>;
}

/// Incidents, their timelines, the change events that may explain them, and their
/// satisfaction answers.
#[async_trait]
pub trait IncidentStore: Send + Sync + 'static {
    /// One incident.
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError>;
    /// Incidents, newest first.
    async fn incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError>;
    /// An incident's history, oldest first.
    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError>;
    /// An incident and its history as of one moment. They are two reads and a batch
    /// may commit between them, showing "resolved" beside a timeline without the
    /// resolution, or an "escalated to L2" entry beside an incident still at L1; so
    /// the incident is read before and after its timeline, and again while a commit
    /// changed it in between. Should commits keep coming, the last incident read is
    /// returned, which is at least as new as its timeline.
    async fn incident_with_timeline(
        &self,
        id: i64,
    ) -> Result<Option<(Incident, Vec<TimelineEntry>)>, StoreError> {
        let Some(mut before) = self.incident(id).await? else {
            return Ok(None);
        };
        for _ in 0..3 {
            let timeline = self.timeline(id).await?;
            let Some(after) = self.incident(id).await? else {
                return Ok(None);
            };
            if after == before {
                return Ok(Some((after, timeline)));
            }
            before = after;
        }
        let timeline = self.timeline(id).await?;
        Ok(self
            .incident(id)
            .await?
            .map(|incident| (incident, timeline)))
    }
    /// Appends timeline entries outside a pipeline batch (delivery attempts).
    async fn append_timeline(&self, entries: &[TimelineEntry]) -> Result<(), StoreError>;
    /// Records a change event; returns its id.
    async fn record_change(
        &self,
        change: &crate::change::Change,
        received_at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// Changes newest first (by time of change, then id): those at or after `since`,
    /// of `resource` when given, up to `limit`, after the change `before_id` in that
    /// order (none when that change no longer exists).
    async fn changes(&self, query: &ChangeQuery) -> Result<Vec<crate::change::Change>, StoreError>;
    /// Whether this address already answered the satisfaction survey of this incident.
    async fn csat_answered(&self, incident_id: i64, address: &str) -> Result<bool, StoreError>;
    /// Records a satisfaction answer; false when this address already answered for
    /// this incident (the first answer counts).
    async fn record_csat(
        &self,
        incident_id: i64,
        address: &str,
        score: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The satisfaction scores of incidents created in `[from, to)`.
    async fn csat_scores(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;
}

/// Escalation timers and the outbox's messages: claiming, finishing, queueing.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Timers due before `before`: a healthy engine has none.
    async fn overdue_escalations(&self, before: DateTime<Utc>) -> Result<i64, StoreError>;
    /// Messages a writer wrote already claimed under `claim`, not yet finished, whose
    /// lease still runs after `held_past` (a claim about to run out may be taken over
    /// by another process: it is left to the claim path).
    async fn claimed_notifications(
        &self,
        claim: &str,
        held_past: DateTime<Utc>,
    ) -> Result<Vec<Notification>, StoreError>;
    /// Claims up to `limit` messages due at `now` for sending, for `lease`: a claim
    /// not finished or renewed by then (its process died) is claimed again.
    /// `claim` is the claimer's token: only it renews or finishes the rows.
    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: i64,
        claim: &str,
    ) -> Result<Vec<Notification>, StoreError>;
    /// Records the outcomes of attempts on claimed messages, each with its timeline
    /// line, in one transaction: all of them, or (the write failed) none.
    async fn settle_notifications(&self, settlements: &[Settlement]) -> Result<(), StoreError>;
    /// What pages about `incident_ids` show of them, read at once, with up to
    /// `alerts_each` alerts per incident.
    async fn page_facts(
        &self,
        incident_ids: &[i64],
        alerts_each: i64,
    ) -> Result<PageFacts, StoreError>;
    /// Queues messages outside a pipeline batch (outbox fallbacks); duplicates are dropped.
    async fn queue_notifications(&self, notifications: &[Notification]) -> Result<(), StoreError>;
}

/// Leases on claimed rows of every claimed table ([`Claims`]).
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Extends the lease of rows `claim` still holds.
    async fn renew_claims(
        &self,
        table: Claims,
        claim: &str,
        ids: &[i64],
        until: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Returns messages and ticket calls claimed by a process that died to the queue,
    /// due at `now` at the latest.
    async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Who was paged: for resolve notices, SMS replies and the reports.
#[async_trait]
pub trait PageHistory: Send + Sync + 'static {
    /// The pages actually delivered for an incident: `(user, channel, address)`.
    async fn delivered_pages(
        &self,
        incident_id: i64,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(self
            .delivered_pages_of(&[incident_id])
            .await?
            .into_iter()
            .map(|paged| (paged.user_id, paged.channel, paged.address))
            .collect())
    }
    /// The pages actually delivered for several incidents, in one read: whom a
    /// batch's resolutions tell.
    async fn delivered_pages_of(&self, incidents: &[i64]) -> Result<Vec<Paged>, StoreError>;
    /// The incident most recently paged to a user's phone by SMS (sent, or queued to
    /// be), or with `only`, that incident if it was: what an SMS reply from that phone
    /// may act on.
    async fn sms_paged_incident(
        &self,
        user_id: &str,
        only: Option<i64>,
    ) -> Result<Option<i64>, StoreError>;
    /// Who was paged when: pages sent in `[from, to)`, any channel.
    async fn sent_pages(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError>;
}

/// Runbook runs beyond the writer's batches: lost, pending, recent, listed.
#[async_trait]
pub trait RunStore: Send + Sync + 'static {
    /// Runs still marked running whose lease ran out before `now`: their process died.
    async fn lost_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>, StoreError>;
    /// The runs waiting for a responder's approval on an incident (for the links and
    /// SMS replies that approve them).
    async fn pending_approvals(&self, incident_id: i64) -> Result<Vec<RunRecord>, StoreError>;
    /// At start, with one process per database: the runs still marked running were
    /// cut short by the last stop, and become `interrupted`. Never on a reload, when
    /// they are this process's own live runs.
    async fn interrupt_orphaned_runs(&self) -> Result<(), StoreError>;
    /// Runs started since `since`, and those running or waiting for approval however
    /// old: what the runbook guard and the pending approvals are computed from.
    async fn recent_runs(&self, since: DateTime<Utc>) -> Result<Vec<RunRecord>, StoreError>;
    /// The latest runs of a runbook, newest first.
    async fn runbook_runs(&self, runbook: &str, limit: i64) -> Result<Vec<RunRecord>, StoreError>;
}

/// The helpdesk integration: the queue of ticket calls and the tickets opened.
#[async_trait]
pub trait TicketStore: Send + Sync + 'static {
    /// Claims up to `limit` ticket calls due at `now` for `lease`: per ticket, only the
    /// oldest unfinished one, so calls reach each ticket in order. A claim whose lease
    /// ran out (its desk died or lost the store) is claimed again.
    async fn claim_ticket_ops(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: i64,
        claim: &str,
    ) -> Result<Vec<TicketOp>, StoreError>;
    /// Records the outcome of a claimed ticket call.
    async fn finish_ticket_op(
        &self,
        id: i64,
        claim: &str,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records the ticket a platform opened for an incident.
    async fn save_ticket(&self, ticket: &Ticket, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// The tickets of these incidents.
    async fn tickets(&self, incident_ids: &[i64]) -> Result<Vec<Ticket>, StoreError>;
    /// Records the assignee a platform's webhook named; false when it is the one
    /// already recorded (nothing changed).
    async fn note_assignee(
        &self,
        platform: crate::store::tickets::Platform,
        ticket: &str,
        assignee: &str,
    ) -> Result<bool, StoreError>;
    /// The incident a platform's ticket (by id or API reference) belongs to.
    async fn ticket_incident(
        &self,
        platform: crate::store::tickets::Platform,
        ticket: &str,
    ) -> Result<Option<i64>, StoreError>;
}

/// Single-use keys, kept `Idempotency-Key` answers and persistent settings.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Whether a single-use key was already spent.
    async fn is_spent(&self, key: &str) -> Result<bool, StoreError>;
    /// Spends a single-use key outside a batch, for what no batch carries (a call's
    /// failure recorded by its callback); false when it was spent before.
    async fn spend_key(&self, key: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// The answer kept for an `Idempotency-Key` since `since`, as JSON.
    async fn remembered_answer(
        &self,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;
    /// A persistent setting, created with `initial` when missing.
    async fn setting(&self, name: &str, initial: &str) -> Result<String, StoreError>;
}

/// Everything Tocsin keeps: SQLite (embedded) and PostgreSQL (scale-out) implement
/// every concern, so they are interchangeable.
pub trait Store:
    WriteStore
    + SharedWrites
    + super::channels::ChannelStore
    + super::console::ConsoleStore
    + AlertStore
    + IncidentStore
    + OutboxStore
    + LeaseStore
    + PageHistory
    + RunStore
    + TicketStore
    + KeyStore
{
}

impl<T> Store for T where
    T: WriteStore
        + SharedWrites
        + super::channels::ChannelStore
        + super::console::ConsoleStore
        + AlertStore
        + IncidentStore
        + OutboxStore
        + LeaseStore
        + PageHistory
        + RunStore
        + TicketStore
        + KeyStore
{
}
