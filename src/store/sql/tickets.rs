//! The helpdesk rows: the queue of ticket calls (claimed one per ticket, in order)
//! and the tickets platforms opened.

use super::{Backend, Columns, On, Sql, SqlStore};
use crate::clock::to_millis;
use crate::store::paging::Delivery;
use crate::store::tickets::Platform;
use crate::store::tickets::{Ticket, TicketOp, TicketOpKind};
use crate::store::{StoreError, TicketStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl<B: Backend> TicketStore for SqlStore<B> {
    async fn claim_ticket_ops(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: i64,
        claim: &str,
    ) -> Result<Vec<TicketOp>, StoreError> {
        let sql = Sql::new(format!(
            "UPDATE ticket_ops SET status = 'sending', attempts = attempts + 1, due_at = ?, claim = ? WHERE id IN \
             (SELECT o.id FROM ticket_ops o WHERE o.status IN ('pending', 'sending') AND o.due_at <= ? \
              AND NOT EXISTS (SELECT 1 FROM ticket_ops p WHERE p.incident_id = o.incident_id \
                AND p.platform = o.platform AND p.id < o.id AND p.status IN ('pending', 'sending')) \
              ORDER BY o.id LIMIT ?{}) \
             RETURNING id, incident_id, platform, kind, step, body, attempts, due_at, deadline, created_at",
            B::CLAIM_LOCK
        ))
        .arg(to_millis(now + lease))
        .arg(claim)
        .arg(to_millis(now))
        .arg(limit);
        self.fetch_map(On::Writer, sql, |row| {
            Ok(TicketOp {
                id: row.int("id")?,
                incident_id: row.int("incident_id")?,
                platform: row.word("platform")?,
                kind: row.word::<TicketOpKind>("kind")?,
                step: row.text("step")?,
                body: row.text("body")?,
                attempts: row.int("attempts")?,
                due_at: row.time("due_at")?,
                deadline: row.time("deadline")?,
                queued_at: row.time("created_at")?,
            })
        })
        .await
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
        let sql = Sql::new("UPDATE ticket_ops SET status = ?, due_at = ?, last_error = ? WHERE id = ? AND status = 'sending' AND claim = ?")
            .arg(status)
            .arg(to_millis(due_at))
            .arg(error)
            .arg(id)
            .arg(claim);
        self.db.execute(On::Writer, sql).await?;
        Ok(())
    }

    async fn save_ticket(&self, ticket: &Ticket, now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = Sql::new("INSERT INTO tickets (incident_id, platform, ticket_id, reference, url, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .arg(ticket.incident_id)
            .arg(ticket.platform.as_str())
            .arg(&ticket.id)
            .arg(&ticket.reference)
            .arg(&ticket.url)
            .arg(to_millis(now));
        self.db.execute(On::Writer, sql).await?;
        Ok(())
    }

    async fn tickets(&self, incident_ids: &[i64]) -> Result<Vec<Ticket>, StoreError> {
        if incident_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(
            "SELECT incident_id, platform, ticket_id, reference, url FROM tickets WHERE incident_id IN (",
        );
        sql.list(incident_ids.iter().copied())
            .push(") ORDER BY incident_id, created_at");
        self.fetch_map(On::Readers, sql, |row| {
            Ok(Ticket {
                incident_id: row.int("incident_id")?,
                platform: row.word("platform")?,
                id: row.text("ticket_id")?,
                reference: row.text("reference")?,
                url: row.text("url")?,
            })
        })
        .await
    }

    async fn note_assignee(
        &self,
        platform: Platform,
        ticket: &str,
        assignee: &str,
    ) -> Result<bool, StoreError> {
        let sql = Sql::new("UPDATE tickets SET assignee = ? WHERE platform = ? AND (ticket_id = ? OR reference = ?) AND assignee IS DISTINCT FROM ?")
            .arg(assignee)
            .arg(platform.as_str())
            .arg(ticket)
            .arg(ticket)
            .arg(assignee);
        Ok(self.db.execute(On::Writer, sql).await? > 0)
    }

    async fn ticket_incident(
        &self,
        platform: Platform,
        ticket: &str,
    ) -> Result<Option<i64>, StoreError> {
        let sql = Sql::new("SELECT incident_id FROM tickets WHERE platform = ? AND (ticket_id = ? OR reference = ?) ORDER BY incident_id DESC LIMIT 1")
            .arg(platform.as_str())
            .arg(ticket)
            .arg(ticket);
        self.db
            .fetch_optional(On::Readers, sql)
            .await?
            .map(|row| row.first_int())
            .transpose()
    }
}

pub(super) fn insert_ticket_ops(ops: &[TicketOp]) -> Sql {
    let mut sql = Sql::once(
        "INSERT INTO ticket_ops (incident_id, platform, kind, step, body, status, attempts, due_at, deadline, created_at) ",
    );
    sql.values(ops, |row, op| {
        row.bind(op.incident_id)
            .bind(op.platform.as_str())
            .bind(op.kind.as_str())
            .bind(&op.step)
            .bind(&op.body)
            .bind("pending")
            .bind(op.attempts)
            .bind(to_millis(op.due_at))
            .bind(to_millis(op.deadline))
            .bind(to_millis(op.queued_at));
    });
    sql.push(" ON CONFLICT DO NOTHING;");
    sql
}
