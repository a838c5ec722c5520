//! Passing a concern's calls through to another store, for a store that changes a few
//! calls of a real one (a test double injecting faults): it implements the concerns it
//! changes itself, and [`Forward`]s every other one.

use super::channels::{ChannelStore, ChatMessage};
use super::console::{ConsoleStore, OverrideRow, SessionRow};
use super::paging::{Delivery, Notification, PageFacts, Paged, Settlement};
use super::runs::RunRecord;
use super::tickets::{Ticket, TicketOp};
use super::{
    AlertQuery, AlertRecord, AlertStore, AlertVolume, ChangeQuery, Claims, IdTable, IncidentQuery,
    IncidentStore, KeyStore, LeaseStore, OpenState, OutboxStore, PageHistory, RunStore,
    SharedWrites, StoreError, TicketStore, TouchedRows, WriteBatch, WriteStore,
};
use crate::dedup::DedupKey;
use crate::incident::{Incident, IncidentStatus, TimelineEntry};
use crate::silence::Silence;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Passes every call of the concern `C` (`dyn AlertStore`, …) to [`Forward::to`].
pub trait Forward<C: ?Sized>: Send + Sync + 'static {
    fn to(&self) -> &C;
}

#[async_trait]
impl<T: Forward<dyn WriteStore>> WriteStore for T {
    async fn ping(&self) -> Result<(), StoreError> {
        self.to().ping().await
    }
    async fn load_open_state(&self) -> Result<OpenState, StoreError> {
        self.to().load_open_state().await
    }
    async fn begin_turn(&self) -> Result<bool, StoreError> {
        self.to().begin_turn().await
    }
    async fn end_turn(&self) {
        self.to().end_turn().await
    }
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.to().commit(batch).await
    }
}

#[async_trait]
impl<T: Forward<dyn SharedWrites>> SharedWrites for T {
    fn shared(&self) -> bool {
        self.to().shared()
    }
    async fn begin_keyed(&self, keys: &[i64]) -> Result<(), StoreError> {
        self.to().begin_keyed(keys).await
    }
    async fn lock_keys(&self, keys: &[i64]) -> Result<(), StoreError> {
        self.to().lock_keys(keys).await
    }
    async fn read_touched(
        &self,
        identities: &[DedupKey],
        groups: &[String],
    ) -> Result<TouchedRows, StoreError> {
        self.to().read_touched(identities, groups).await
    }
    async fn active_silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, StoreError> {
        self.to().active_silences(now).await
    }
    async fn load_slice(&self, incidents: &[i64]) -> Result<OpenState, StoreError> {
        self.to().load_slice(incidents).await
    }
    async fn load_open_incidents(&self, kept_source: &str) -> Result<OpenState, StoreError> {
        self.to().load_open_incidents(kept_source).await
    }
    async fn timers_passed_at(&self) -> Result<DateTime<Utc>, StoreError> {
        self.to().timers_passed_at().await
    }
    async fn mark_timers_passed(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.to().mark_timers_passed(at).await
    }
    async fn inhibitors(
        &self,
        keys: Option<&[String]>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.to().inhibitors(keys).await
    }
    async fn relay_commits(
        &self,
        to: &tokio::sync::broadcast::Sender<()>,
    ) -> Result<(), StoreError> {
        self.to().relay_commits(to).await
    }
    async fn reserve_ids(
        &self,
        table: IdTable,
        count: i64,
    ) -> Result<Vec<std::ops::Range<i64>>, StoreError> {
        self.to().reserve_ids(table, count).await
    }
}

#[async_trait]
impl<T: Forward<dyn AlertStore>> AlertStore for T {
    async fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        self.to().alert(id).await
    }
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        self.to().alerts(query).await
    }
    async fn alert_volume(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlertVolume>, StoreError> {
        self.to().alert_volume(from, to).await
    }
    async fn silences(
        &self,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<Silence>, StoreError> {
        self.to().silences(limit, before_id).await
    }
}

#[async_trait]
impl<T: Forward<dyn IncidentStore>> IncidentStore for T {
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        self.to().incident(id).await
    }
    async fn incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        self.to().incidents(query).await
    }
    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        self.to().timeline(incident_id).await
    }
    async fn append_timeline(&self, entries: &[TimelineEntry]) -> Result<(), StoreError> {
        self.to().append_timeline(entries).await
    }
    async fn record_change(
        &self,
        change: &crate::change::Change,
        received_at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.to().record_change(change, received_at).await
    }
    async fn changes(&self, query: &ChangeQuery) -> Result<Vec<crate::change::Change>, StoreError> {
        self.to().changes(query).await
    }
    async fn csat_answered(&self, incident_id: i64, address: &str) -> Result<bool, StoreError> {
        self.to().csat_answered(incident_id, address).await
    }
    async fn record_csat(
        &self,
        incident_id: i64,
        address: &str,
        score: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.to().record_csat(incident_id, address, score, at).await
    }
    async fn csat_scores(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.to().csat_scores(from, to).await
    }
}

#[async_trait]
impl<T: Forward<dyn OutboxStore>> OutboxStore for T {
    async fn overdue_escalations(&self, before: DateTime<Utc>) -> Result<i64, StoreError> {
        self.to().overdue_escalations(before).await
    }
    async fn claimed_notifications(
        &self,
        claim: &str,
        held_past: DateTime<Utc>,
    ) -> Result<Vec<Notification>, StoreError> {
        self.to().claimed_notifications(claim, held_past).await
    }
    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: i64,
        claim: &str,
    ) -> Result<Vec<Notification>, StoreError> {
        self.to()
            .claim_notifications(now, lease, limit, claim)
            .await
    }
    async fn settle_notifications(&self, settlements: &[Settlement]) -> Result<(), StoreError> {
        self.to().settle_notifications(settlements).await
    }
    async fn page_facts(
        &self,
        incident_ids: &[i64],
        alerts_each: i64,
    ) -> Result<PageFacts, StoreError> {
        self.to().page_facts(incident_ids, alerts_each).await
    }
    async fn queue_notifications(&self, notifications: &[Notification]) -> Result<(), StoreError> {
        self.to().queue_notifications(notifications).await
    }
}

#[async_trait]
impl<T: Forward<dyn LeaseStore>> LeaseStore for T {
    async fn renew_claims(
        &self,
        table: Claims,
        claim: &str,
        ids: &[i64],
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.to().renew_claims(table, claim, ids, until).await
    }
    async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.to().release_claims(now).await
    }
}

#[async_trait]
impl<T: Forward<dyn PageHistory>> PageHistory for T {
    async fn delivered_pages_of(&self, incidents: &[i64]) -> Result<Vec<Paged>, StoreError> {
        self.to().delivered_pages_of(incidents).await
    }
    async fn sms_paged_incident(
        &self,
        user_id: &str,
        only: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        self.to().sms_paged_incident(user_id, only).await
    }
    async fn sent_pages(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.to().sent_pages(from, to).await
    }
}

#[async_trait]
impl<T: Forward<dyn RunStore>> RunStore for T {
    async fn lost_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>, StoreError> {
        self.to().lost_runs(now).await
    }
    async fn pending_approvals(&self, incident_id: i64) -> Result<Vec<RunRecord>, StoreError> {
        self.to().pending_approvals(incident_id).await
    }
    async fn interrupt_orphaned_runs(&self) -> Result<(), StoreError> {
        self.to().interrupt_orphaned_runs().await
    }
    async fn recent_runs(&self, since: DateTime<Utc>) -> Result<Vec<RunRecord>, StoreError> {
        self.to().recent_runs(since).await
    }
    async fn runbook_runs(&self, runbook: &str, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
        self.to().runbook_runs(runbook, limit).await
    }
}

#[async_trait]
impl<T: Forward<dyn TicketStore>> TicketStore for T {
    async fn claim_ticket_ops(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: i64,
        claim: &str,
    ) -> Result<Vec<TicketOp>, StoreError> {
        self.to().claim_ticket_ops(now, lease, limit, claim).await
    }
    async fn finish_ticket_op(
        &self,
        id: i64,
        claim: &str,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.to().finish_ticket_op(id, claim, delivery, now).await
    }
    async fn save_ticket(&self, ticket: &Ticket, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.to().save_ticket(ticket, now).await
    }
    async fn tickets(&self, incident_ids: &[i64]) -> Result<Vec<Ticket>, StoreError> {
        self.to().tickets(incident_ids).await
    }
    async fn note_assignee(
        &self,
        platform: crate::store::tickets::Platform,
        ticket: &str,
        assignee: &str,
    ) -> Result<bool, StoreError> {
        self.to().note_assignee(platform, ticket, assignee).await
    }
    async fn ticket_incident(
        &self,
        platform: crate::store::tickets::Platform,
        ticket: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.to().ticket_incident(platform, ticket).await
    }
}

#[async_trait]
impl<T: Forward<dyn KeyStore>> KeyStore for T {
    async fn is_spent(&self, key: &str) -> Result<bool, StoreError> {
        self.to().is_spent(key).await
    }
    async fn spend_key(&self, key: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.to().spend_key(key, at).await
    }
    async fn remembered_answer(
        &self,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        self.to().remembered_answer(key, since).await
    }
    async fn setting(&self, name: &str, initial: &str) -> Result<String, StoreError> {
        self.to().setting(name, initial).await
    }
}

#[async_trait]
impl<T: Forward<dyn ChannelStore>> ChannelStore for T {
    async fn save_chat_message(
        &self,
        message: &ChatMessage,
        shown: IncidentStatus,
    ) -> Result<(), StoreError> {
        self.to().save_chat_message(message, shown).await
    }
    async fn stale_chat_messages(
        &self,
        limit: i64,
    ) -> Result<Vec<(ChatMessage, IncidentStatus)>, StoreError> {
        self.to().stale_chat_messages(limit).await
    }
    async fn chat_message_shown(
        &self,
        message: &ChatMessage,
        shown: IncidentStatus,
    ) -> Result<(), StoreError> {
        self.to().chat_message_shown(message, shown).await
    }
    async fn bring_forward(&self, fallback: &Notification) -> Result<(), StoreError> {
        self.to().bring_forward(fallback).await
    }
}

#[async_trait]
impl<T: Forward<dyn ConsoleStore>> ConsoleStore for T {
    async fn create_session(
        &self,
        id_hash: &str,
        row: &SessionRow,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.to().create_session(id_hash, row, now).await
    }
    async fn session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRow>, StoreError> {
        self.to().session(id_hash, now).await
    }
    async fn end_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.to().end_session(id_hash, now).await
    }
    async fn add_override(&self, row: &OverrideRow, now: DateTime<Utc>) -> Result<i64, StoreError> {
        self.to().add_override(row, now).await
    }
    async fn overrides(&self, now: DateTime<Utc>) -> Result<Vec<OverrideRow>, StoreError> {
        self.to().overrides(now).await
    }
}
