//! Runbook runs: the row a batch writes, and the reads beyond the writer's view
//! (lost, pending approval, recent, listed).

use super::{Backend, Columns, On, Sql, SqlStore};
use crate::clock::to_millis;
use crate::store::runs::RunRecord;
use crate::store::{CLAIM_LEASE, RunStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub(super) const RUN_COLUMNS: &str = "id, runbook, incident_id, trigger, actor, target, params, status, exit_code, output, started_at, finished_at, recovery_due, approval_due";

#[async_trait]
impl<B: Backend> RunStore for SqlStore<B> {
    async fn lost_runs(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>, StoreError> {
        if B::ONE_PROCESS {
            // Its runs are alive, or were marked interrupted when it last started.
            return Ok(Vec::new());
        }
        let sql = Sql::new(format!(
            "SELECT {RUN_COLUMNS} FROM runbook_runs WHERE status = 'running' AND lease_until < ?"
        ))
        .arg(to_millis(now));
        self.runs(On::Writer, sql).await
    }

    async fn pending_approvals(&self, incident_id: i64) -> Result<Vec<RunRecord>, StoreError> {
        let sql = Sql::new(format!("SELECT {RUN_COLUMNS} FROM runbook_runs WHERE incident_id = ? AND status = 'pending_approval' ORDER BY id"))
            .arg(incident_id);
        self.runs(On::Readers, sql).await
    }

    async fn interrupt_orphaned_runs(&self) -> Result<(), StoreError> {
        if B::ONE_PROCESS {
            // Runs cut short by a stop cannot be resumed safely: say so. (With
            // replicas, a running run may belong to a live one.)
            let sql =
                Sql::new("UPDATE runbook_runs SET status = 'interrupted' WHERE status = 'running'");
            self.db.execute(On::Writer, sql).await?;
        }
        Ok(())
    }

    async fn recent_runs(&self, since: DateTime<Utc>) -> Result<Vec<RunRecord>, StoreError> {
        let sql = Sql::new(format!("SELECT {RUN_COLUMNS} FROM runbook_runs WHERE started_at >= ? OR status IN ('running', 'pending_approval') ORDER BY id"))
            .arg(to_millis(since));
        self.runs(On::Writer, sql).await
    }

    async fn runbook_runs(&self, runbook: &str, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
        let sql = Sql::new(format!(
            "SELECT {RUN_COLUMNS} FROM runbook_runs WHERE runbook = ? ORDER BY id DESC LIMIT ?"
        ))
        .arg(runbook)
        .arg(limit);
        self.runs(On::Readers, sql).await
    }
}

impl<B: Backend> SqlStore<B> {
    async fn runs(&self, on: On, sql: Sql) -> Result<Vec<RunRecord>, StoreError> {
        self.db
            .fetch_all(on, sql)
            .await?
            .iter()
            .map(run_from_row)
            .collect()
    }
}

pub(super) fn upsert_run(run: &RunRecord) -> Sql {
    // A run starts with a lease its executor renews; a finished run holds none.
    let lease = (run.status == "running").then(|| to_millis(run.started_at + CLAIM_LEASE));
    let mut sql = Sql::once(format!(
        "INSERT INTO runbook_runs ({RUN_COLUMNS}, lease_until) VALUES "
    ));
    sql.tuple(|values| {
        values
            .bind(run.id)
            .bind(&run.runbook)
            .bind(run.incident_id)
            .bind(&run.trigger)
            .bind(&run.actor)
            .bind(&run.target)
            .bind(serde_json::to_string(&run.params).unwrap_or_default())
            .bind(&run.status)
            .bind(run.exit_code)
            .bind(&run.output)
            .bind(to_millis(run.started_at))
            .bind(run.finished_at.map(to_millis))
            .bind(run.recovery_due.map(to_millis))
            .bind(run.approval_due.map(to_millis))
            .bind(lease);
    });
    sql.push(
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status, exit_code = excluded.exit_code, \
         output = excluded.output, started_at = excluded.started_at, finished_at = excluded.finished_at, \
         recovery_due = excluded.recovery_due, approval_due = excluded.approval_due, lease_until = excluded.lease_until \
         WHERE runbook_runs.status IN ('running', 'awaiting_recovery', 'pending_approval');",
    );
    sql
}

pub(super) fn run_from_row(row: &impl Columns) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        id: row.int("id")?,
        runbook: row.text("runbook")?,
        incident_id: row.opt_int("incident_id")?,
        trigger: row.text("trigger")?,
        actor: row.text("actor")?,
        target: row.text("target")?,
        params: row.json("params")?,
        status: row.text("status")?,
        exit_code: row.opt_int32("exit_code")?,
        output: row.text("output")?,
        started_at: row.time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        recovery_due: row.opt_time("recovery_due")?,
        approval_due: row.opt_time("approval_due")?,
    })
}
