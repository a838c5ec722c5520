//! The paging rows: escalation timers and the outbox's messages (claim, finish,
//! queue), claim leases, and who was paged.

use super::alerts::{ALERT_COLUMNS, alert_from_row};
use super::incidents::{INCIDENT_COLUMNS, incident_from_row, insert_timeline};
use super::runs::{RUN_COLUMNS, run_from_row};
use super::{Backend, Columns, INSERT_CHUNK, On, Sql, SqlStore};
use crate::clock::to_millis;
use crate::incident::TimelineEntry;
use crate::store::paging::{
    Delivery, Escalation, EscalationState, Notification, NotificationKind, PageFacts, Paged,
    Settlement,
};
use crate::store::{
    Claims, DueClaim, LeaseStore, OutboxStore, PageHistory, StoreError, TicketStore,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub(super) const ESCALATION_COLUMNS: &str =
    "incident_id, policy, tier, cycle, steps, due_at, state, last_step";
/// Incidents per statement of [`OutboxStore::page_facts`] (SQLite takes at most 500
/// `SELECT`s in one `UNION ALL`), and the sizes a shorter list is padded to, so the
/// statements' texts repeat and stay prepared.
const FACTS_CHUNK: usize = 64;
const FACTS_SIZES: [usize; 4] = [1, 4, 16, FACTS_CHUNK];
/// Pads a list of incident ids; matches nothing.
const NO_INCIDENT: i64 = 0;
const NOTIFICATION_COLUMNS: &str =
    "id, incident_id, user_id, channel, address, kind, step, attempts, due_at, deadline";

#[async_trait]
impl<B: Backend> OutboxStore for SqlStore<B> {
    async fn overdue_escalations(&self, before: DateTime<Utc>) -> Result<i64, StoreError> {
        let sql =
            Sql::new("SELECT COUNT(*) FROM escalations WHERE due_at IS NOT NULL AND due_at < ?")
                .arg(to_millis(before));
        self.fetch_one(On::Readers, sql).await?.first_int()
    }

    async fn claimed_notifications(
        &self,
        claim: &str,
        held_past: DateTime<Utc>,
    ) -> Result<Vec<Notification>, StoreError> {
        // Found by `notifications_by_claim`: a claim holds one batch's messages, where
        // the lease index holds every message in flight.
        let sql = Sql::new(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
             WHERE status = 'sending' AND claim = ? AND due_at > ? ORDER BY due_at, id"
        ))
        .arg(claim)
        .arg(to_millis(held_past));
        self.fetch_map(On::Readers, sql, notification_from_row)
            .await
    }

    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: i64,
        claim: &str,
    ) -> Result<Vec<Notification>, StoreError> {
        // The limit is written out: SQLite prepares a statement again each time a
        // bound LIMIT is bound, and every flush ends with this claim.
        let sql = Sql::new(format!(
            "UPDATE notifications SET status = 'sending', due_at = ?, claim = ? WHERE id IN \
             (SELECT id FROM notifications WHERE status IN ('pending', 'sending') AND due_at <= ? \
              ORDER BY due_at LIMIT {limit}{}) \
             RETURNING {NOTIFICATION_COLUMNS}",
            B::CLAIM_LOCK
        ))
        .arg(to_millis(now + lease))
        .arg(claim)
        .arg(to_millis(now));
        self.fetch_map(On::Writer, sql, notification_from_row).await
    }

    async fn settle_notifications(&self, settlements: &[Settlement]) -> Result<(), StoreError> {
        if settlements.is_empty() {
            return Ok(());
        }
        let mut statements: Vec<Sql> = settlements.iter().map(finish_notification).collect();
        let lines: Vec<TimelineEntry> = settlements
            .iter()
            .filter_map(|settlement| settlement.timeline.clone())
            .collect();
        statements.extend(lines.chunks(INSERT_CHUNK).map(insert_timeline));
        self.db.execute_together(statements).await
    }

    async fn page_facts(
        &self,
        incident_ids: &[i64],
        alerts_each: i64,
    ) -> Result<PageFacts, StoreError> {
        let mut facts = PageFacts::default();
        for chunk in incident_ids.chunks(FACTS_CHUNK) {
            let ids = padded(chunk);
            let ids = ids.as_slice();
            let mut sql = Sql::new(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id IN ("
            ));
            sql.list(ids.iter().copied()).push(")");
            facts
                .incidents
                .extend(self.fetch_map(On::Readers, sql, incident_from_row).await?);
            // Each incident's newest alerts by a walk of its own down the index: a
            // window over all of them would read every alert of a big incident. The
            // limit is written out, not bound: SQLite prepares a statement again
            // whenever a bound LIMIT is bound, and this one is 64 subqueries long.
            let mut sql = Sql::new(String::new());
            for (index, id) in ids.iter().enumerate() {
                if index > 0 {
                    sql.push(" UNION ALL ");
                }
                sql.push(&format!(
                    "SELECT * FROM (SELECT {ALERT_COLUMNS} FROM alerts WHERE incident_id = "
                ))
                .bind(*id)
                .push(&format!(
                    " ORDER BY id DESC LIMIT {alerts_each}) AS newest_{index}"
                ));
            }
            facts
                .alerts
                .extend(self.fetch_map(On::Readers, sql, alert_from_row).await?);
            facts.tickets.extend(self.tickets(ids).await?);
            let mut sql = Sql::new(format!(
                "SELECT {RUN_COLUMNS} FROM runbook_runs WHERE status = 'pending_approval' AND incident_id IN ("
            ));
            sql.list(ids.iter().copied()).push(") ORDER BY id");
            facts
                .approvals
                .extend(self.fetch_map(On::Readers, sql, run_from_row).await?);
        }
        // An incident asked for twice has its alerts read twice.
        facts.alerts.sort_unstable_by_key(|alert| alert.id);
        facts.alerts.dedup_by_key(|alert| alert.id);
        Ok(facts)
    }

    async fn queue_notifications(&self, notifications: &[Notification]) -> Result<(), StoreError> {
        if notifications.is_empty() {
            return Ok(());
        }
        self.db
            .execute(On::Writer, insert_notifications(notifications, |_| None))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl<B: Backend> LeaseStore for SqlStore<B> {
    async fn renew_claims(
        &self,
        table: Claims,
        claim: &str,
        ids: &[i64],
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let (name, status, column, tokens) = table.lease();
        let mut sql = Sql::new(format!("UPDATE {name} SET {column} = "));
        sql.bind(to_millis(until))
            .push(&format!(" WHERE status = '{status}'"));
        if tokens {
            sql.push(" AND claim = ").bind(claim);
        }
        sql.push(" AND id IN (").list(ids.iter().copied()).push(")");
        self.db.execute(On::Writer, sql).await?;
        Ok(())
    }

    async fn release_claims(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        if !B::ONE_PROCESS {
            // Other replicas' claims are alive; a dead one's run out with their lease.
            return Ok(0);
        }
        // Due at once: `due_at` of a claimed row is its lease's end, up to 5 s ahead.
        let now = to_millis(now);
        let mut released = 0;
        for table in ["notifications", "ticket_ops"] {
            let sql = Sql::new(format!("UPDATE {table} SET status = 'pending', due_at = CASE WHEN due_at > ? THEN ? ELSE due_at END WHERE status = 'sending'"))
                .arg(now)
                .arg(now);
            released += self.db.execute(On::Writer, sql).await?;
        }
        Ok(released)
    }
}

#[async_trait]
impl<B: Backend> PageHistory for SqlStore<B> {
    async fn delivered_pages_of(&self, incidents: &[i64]) -> Result<Vec<Paged>, StoreError> {
        let mut paged = Vec::new();
        for chunk in incidents.chunks(super::CHUNK) {
            let mut sql = Sql::once(
                "SELECT DISTINCT incident_id, user_id, channel, address FROM notifications WHERE kind = 'page' AND status = 'sent' AND incident_id IN (",
            );
            sql.list(chunk.iter().copied())
                .push(") ORDER BY incident_id, user_id, channel");
            paged.extend(
                self.fetch_map(On::Writer, sql, |row| {
                    Ok(Paged {
                        incident_id: row.int("incident_id")?,
                        user_id: row.text("user_id")?,
                        channel: row.text("channel")?,
                        address: row.text("address")?,
                    })
                })
                .await?,
            );
        }
        Ok(paged)
    }

    async fn sms_paged_incident(
        &self,
        user_id: &str,
        only: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        // A page cancelled or given up on never reached the phone; one still queued
        // or in flight is about to, and its reply may outrun the outbox's bookkeeping.
        const PAGED: &str = "user_id = ? AND channel = 'sms' AND kind = 'page' AND status IN ('pending', 'sending', 'sent')";
        let sql = match only {
            Some(incident_id) => Sql::new(format!(
                "SELECT incident_id FROM notifications WHERE {PAGED} AND incident_id = ? LIMIT 1"
            ))
            .arg(user_id)
            .arg(incident_id),
            None => Sql::new(format!(
                "SELECT incident_id FROM notifications WHERE {PAGED} ORDER BY id DESC LIMIT 1"
            ))
            .arg(user_id),
        };
        self.db
            .fetch_optional(On::Readers, sql)
            .await?
            .map(|row| row.first_int())
            .transpose()
    }

    async fn sent_pages(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let sql = Sql::new(
            "SELECT user_id, sent_at FROM notifications \
             WHERE kind = 'page' AND status = 'sent' AND sent_at >= ? AND sent_at < ?",
        )
        .arg(to_millis(from))
        .arg(to_millis(to));
        self.fetch_map(On::Readers, sql, |row| {
            Ok((row.text("user_id")?, row.time("sent_at")?))
        })
        .await
    }
}

/// `ids` (at most [`FACTS_CHUNK`]) padded up to the next of [`FACTS_SIZES`] with
/// an id no incident has (ids start at 1), so a few sizes of statement serve every
/// flush. Repeating a real id instead made each pad of the alerts' `UNION ALL` read
/// that incident's alerts again: a flush of 17 pages read 47 copies of one.
fn padded(ids: &[i64]) -> Vec<i64> {
    let size = FACTS_SIZES
        .into_iter()
        .find(|size| *size >= ids.len())
        .unwrap_or(ids.len());
    let mut padded = ids.to_vec();
    padded.resize(size, NO_INCIDENT);
    padded
}

/// The row of a settled message; only the claim it was attempted under changes it.
fn finish_notification(settlement: &Settlement) -> Sql {
    let (id, claim) = (settlement.id, settlement.claim.as_str());
    match &settlement.delivery {
        Delivery::Sent => Sql::new("UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL WHERE id = ? AND status = 'sending' AND claim = ?")
            .arg(to_millis(settlement.at))
            .arg(id)
            .arg(claim),
        Delivery::Retry { at, error } => Sql::new("UPDATE notifications SET status = 'pending', attempts = attempts + 1, due_at = ?, last_error = ? WHERE id = ? AND status = 'sending' AND claim = ?")
            .arg(to_millis(*at))
            .arg(error)
            .arg(id)
            .arg(claim),
        Delivery::Failed { error } => Sql::new("UPDATE notifications SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ? AND status = 'sending' AND claim = ?")
            .arg(error)
            .arg(id)
            .arg(claim),
        Delivery::Cancelled => Sql::new("UPDATE notifications SET status = 'cancelled' WHERE id = ? AND status = 'sending' AND claim = ?")
            .arg(id)
            .arg(claim),
    }
}

/// Queues messages; one `claim_of` returns a claim for is written already claimed
/// (`sending` until the claim's lease ends).
pub(super) fn insert_notifications<'b>(
    notifications: &[Notification],
    claim_of: impl Fn(&Notification) -> Option<&'b DueClaim>,
) -> Sql {
    let mut sql = Sql::once(
        "INSERT INTO notifications (incident_id, user_id, channel, address, kind, step, status, attempts, due_at, deadline, created_at, claim) ",
    );
    sql.values(notifications, |row, n| {
        let claim = claim_of(n);
        row.bind(n.incident_id)
            .bind(&n.user_id)
            .bind(n.channel.as_str())
            .bind(&n.address)
            .bind(n.kind.as_str())
            .bind(&n.step)
            .bind(if claim.is_some() {
                "sending"
            } else {
                "pending"
            })
            .bind(n.attempts)
            .bind(to_millis(claim.map_or(n.due_at, |claim| claim.until)))
            .bind(to_millis(n.deadline))
            .bind(to_millis(n.due_at))
            .bind(claim.map(|claim| claim.token.clone()));
    });
    sql.push(" ON CONFLICT DO NOTHING;");
    sql
}

/// Escalation timers, each inserted or replaced.
pub(super) fn upsert_escalations(escalations: &[&Escalation]) -> Sql {
    let mut sql = Sql::once(format!("INSERT INTO escalations ({ESCALATION_COLUMNS}) "));
    sql.values(escalations, |values, escalation| {
        values
            .bind(escalation.incident_id)
            .bind(&escalation.policy)
            .bind(escalation.tier)
            .bind(escalation.cycle)
            .bind(escalation.steps)
            .bind(escalation.due_at.map(to_millis))
            .bind(escalation.state.as_str())
            .bind(&escalation.last_step);
    });
    sql.push(
        " ON CONFLICT (incident_id) DO UPDATE SET policy = excluded.policy, tier = excluded.tier, \
         cycle = excluded.cycle, steps = excluded.steps, due_at = excluded.due_at, state = excluded.state, \
         last_step = excluded.last_step;",
    );
    sql
}

pub(super) fn escalation_from_row(row: &impl Columns) -> Result<Escalation, StoreError> {
    Ok(Escalation {
        incident_id: row.int("incident_id")?,
        policy: row.text("policy")?,
        tier: row.int("tier")?,
        cycle: row.int("cycle")?,
        steps: row.int("steps")?,
        due_at: row.opt_time("due_at")?,
        state: row.word::<EscalationState>("state")?,
        last_step: row.opt_text("last_step")?,
    })
}

fn notification_from_row(row: &impl Columns) -> Result<Notification, StoreError> {
    Ok(Notification {
        id: row.int("id")?,
        incident_id: row.int("incident_id")?,
        user_id: row.text("user_id")?,
        channel: row.word("channel")?,
        address: row.text("address")?,
        kind: row.word::<NotificationKind>("kind")?,
        step: row.text("step")?,
        attempts: row.int("attempts")?,
        due_at: row.time("due_at")?,
        deadline: row.time("deadline")?,
    })
}
