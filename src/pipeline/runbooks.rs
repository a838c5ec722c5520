//! Runbooks inside the writer: which runbooks a new incident starts, the guard's
//! verdict, and what a finished run means for its incident. The runs themselves
//! happen outside the writer (`runbook::executor`) and report back here.

use super::{Effects, PipelineError, Writer, entry};
use crate::alert::Alert;
use crate::incident::{Incident, TimelineEntry};
use crate::rules::Classification;
use crate::runbook::runner::RunOutcome;
use crate::runbook::{OnFailure, OnSuccess, Params, Runbook};
use crate::store::WriteBatch;
use crate::store::runs::RunRecord;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// A run the executor should start.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub run_id: i64,
    pub runbook: Runbook,
    pub params: Params,
    pub incident_id: Option<i64>,
    pub priority: String,
}

/// Longest output kept on the timeline (the run row keeps the bounded whole).
const TIMELINE_OUTPUT: usize = 4000;

impl Writer {
    /// A new incident starts the runbooks its rule names and those whose matchers
    /// match its alert. Refusals are on the timeline; paging goes on regardless.
    pub(super) fn start_runbooks(
        &mut self,
        alert: &Alert,
        classification: &Classification,
        incident: &Incident,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) {
        let config = self.config.clone();
        let chosen: Vec<&Runbook> = config
            .runbooks
            .iter()
            .filter(|runbook| {
                classification.runbooks.contains(&runbook.name) || runbook.matches(alert)
            })
            .collect();
        for runbook in chosen {
            let verdict = runbook
                .render(alert, incident.id, incident.priority.as_str())
                .and_then(|params| {
                    self.guard
                        .check(runbook, &params.target(), now)
                        .map(|()| params)
                });
            match verdict {
                Ok(params) => {
                    self.start_run(
                        runbook,
                        params,
                        Some(incident.id),
                        incident.priority.as_str(),
                        "auto",
                        "tocsin",
                        now,
                        batch,
                    );
                }
                Err(why) => {
                    effects.runbook_runs.push((runbook.name.clone(), "refused"));
                    batch.record(entry(
                        incident.id,
                        now,
                        "runbook_refused",
                        "tocsin",
                        format!("runbook {} not run: {why}", runbook.name),
                    ));
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // one call site per trigger; a struct would only rename them
    fn start_run(
        &mut self,
        runbook: &Runbook,
        params: Params,
        incident_id: Option<i64>,
        priority: &str,
        trigger: &str,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> i64 {
        let run_id = self.view.next_run_id;
        self.view.next_run_id += 1;
        let target = params.target();
        self.guard.started(runbook, &target, now);
        let record = RunRecord {
            id: run_id,
            runbook: runbook.name.clone(),
            incident_id,
            trigger: trigger.to_string(),
            actor: actor.to_string(),
            target: target.clone(),
            params: params.redacted(),
            status: "running".into(),
            exit_code: None,
            output: String::new(),
            started_at: now,
            finished_at: None,
            recovery_due: None,
        };
        batch.upsert_run(record.clone());
        if let Some(incident_id) = incident_id {
            batch.record(TimelineEntry {
                data: serde_json::json!({ "run_id": run_id, "params": record.params }),
                ..entry(
                    incident_id,
                    now,
                    "runbook_started",
                    actor,
                    format!("runbook {} started ({target})", runbook.name),
                )
            });
        }
        self.running.insert(run_id, record);
        self.pending_runs.push(RunRequest {
            run_id,
            runbook: runbook.clone(),
            params,
            incident_id,
            priority: priority.to_string(),
        });
        run_id
    }

    /// `POST /api/v1/runbooks/{name}/run`: validated like an automatic run; only the
    /// concurrency limit applies, since a person decided.
    pub(super) async fn manual_run(
        &mut self,
        name: &str,
        values: BTreeMap<String, String>,
        incident_id: Option<i64>,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> Result<i64, PipelineError> {
        let config = self.config.clone();
        let runbook = config
            .runbooks
            .iter()
            .find(|runbook| runbook.name == name)
            .ok_or_else(|| {
                PipelineError::Missing(format!(
                    "runbook {name:?} does not exist; GET /api/v1/runbooks lists them"
                ))
            })?;
        let params = runbook.validate(values).map_err(PipelineError::Invalid)?;
        let priority = match incident_id {
            Some(id) => match self.view.incidents.get(&id) {
                Some(open) => open.incident.priority.as_str().to_string(),
                None => self
                    .store
                    .incident(id)
                    .await
                    .map_err(|error| PipelineError::Unavailable(error.to_string()))?
                    .ok_or(PipelineError::NotFound(id))?
                    .priority
                    .as_str()
                    .to_string(),
            },
            None => String::new(),
        };
        let running = self
            .running
            .values()
            .filter(|run| run.runbook == runbook.name)
            .count();
        if running >= runbook.concurrency as usize {
            return Err(PipelineError::NotPossible(format!(
                "runbook {name} is already running {running} time(s) (concurrency {})",
                runbook.concurrency
            )));
        }
        Ok(self.start_run(
            runbook,
            params,
            incident_id,
            &priority,
            "manual",
            actor,
            now,
            batch,
        ))
    }

    /// A run ended: record it, and apply `on_success` / `on_failure` to its incident.
    pub(super) async fn run_finished(
        &mut self,
        run_id: i64,
        outcome: RunOutcome,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let Some(mut record) = self.running.remove(&run_id) else {
            return Ok(());
        };
        let config = self.config.clone();
        let runbook = config
            .runbooks
            .iter()
            .find(|runbook| runbook.name == record.runbook);
        let adopted = self.adopted.remove(&run_id);
        let breaker_opened = runbook.is_some_and(|runbook| {
            if adopted {
                // Never counted as running here: only its outcome counts.
                self.guard
                    .counted(runbook, &record.target, outcome.success, now)
            } else {
                self.guard
                    .finished(runbook, &record.target, outcome.success, now)
            }
        });
        let label = if outcome.success {
            "success"
        } else if outcome.timed_out {
            "timeout"
        } else {
            "failure"
        };
        effects.runbook_runs.push((record.runbook.clone(), label));
        record.status = match (outcome.success, outcome.timed_out) {
            (true, _) => "success",
            (false, true) => "timeout",
            (false, false) => "failed",
        }
        .into();
        record.exit_code = outcome.exit_code;
        record.output = outcome.output.clone();
        record.finished_at = Some(now);
        let Some(incident_id) = record.incident_id else {
            batch.upsert_run(record);
            return Ok(());
        };
        let exit = outcome
            .exit_code
            .map_or_else(|| "no exit code".to_string(), |code| format!("exit {code}"));
        let shown: String = outcome.output.chars().take(TIMELINE_OUTPUT).collect();
        batch.record(TimelineEntry {
            data: serde_json::json!({ "run_id": run_id, "exit_code": outcome.exit_code, "timed_out": outcome.timed_out, "output": shown }),
            ..entry(incident_id, now, &format!("runbook_{label}"), &format!("runbook:{}", record.runbook), format!("runbook {} {label} ({exit}): {}", record.runbook, shown.trim()))
        });
        let open = self.view.incidents.contains_key(&incident_id);
        match (
            outcome.success,
            runbook.map(|r| (r.on_success, r.on_failure, r.recovery_timeout)),
        ) {
            (true, Some((OnSuccess::Resolve, _, _))) if open => {
                if let Some(open) = self.view.incidents.get_mut(&incident_id) {
                    open.incident.remediated = true;
                }
                let message = format!(
                    "resolved by runbook {} (automated remediation)",
                    record.runbook
                );
                self.resolve_incident(
                    incident_id,
                    &format!("runbook:{}", record.runbook),
                    message,
                    now,
                    batch,
                    effects,
                )
                .await?;
                batch.record(entry(
                    incident_id,
                    now,
                    "auto_remediated",
                    &format!("runbook:{}", record.runbook),
                    format!(
                        "fixed by runbook {} before anyone had to act",
                        record.runbook
                    ),
                ));
            }
            (true, Some((OnSuccess::WaitForRecovery, _, wait))) if open => {
                record.status = "awaiting_recovery".into();
                record.recovery_due = Some(now + wait);
                batch.record(entry(
                    incident_id,
                    now,
                    "runbook_waiting",
                    "tocsin",
                    format!(
                        "waiting up to {} min for the sender's recovery",
                        wait.num_minutes()
                    ),
                ));
                self.view.awaiting.push(record.clone());
            }
            (false, Some((_, OnFailure::Escalate, _))) if open => {
                self.escalate_after_runbook(
                    incident_id,
                    &record.runbook,
                    "failed",
                    now,
                    batch,
                    effects,
                )
                .await?;
            }
            _ => {}
        }
        if breaker_opened && open && runbook.is_some_and(|r| r.on_failure == OnFailure::Nothing) {
            self.escalate_after_runbook(
                incident_id,
                &record.runbook,
                "tripped its circuit breaker",
                now,
                batch,
                effects,
            )
            .await?;
        }
        batch.upsert_run(record);
        Ok(())
    }

    async fn escalate_after_runbook(
        &mut self,
        incident_id: i64,
        runbook: &str,
        what: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let actor = format!("runbook:{runbook}");
        match self
            .escalate_now(incident_id, &actor, now, batch, effects)
            .await
        {
            Ok(_) => {
                batch.record(entry(
                    incident_id,
                    now,
                    "escalated_by_runbook",
                    &actor,
                    format!(
                        "runbook {runbook} {what}: escalated without waiting for the tier delay"
                    ),
                ));
                Ok(())
            }
            Err(PipelineError::NotPossible(why)) => {
                batch.record(entry(
                    incident_id,
                    now,
                    "escalated_by_runbook",
                    &actor,
                    format!("runbook {runbook} {what}; {why}"),
                ));
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// At shutdown: the runs still going are cut short with the process. Recorded as
    /// interrupted, so no replica takes them for lost and escalates a rolling restart.
    pub(super) async fn interrupt_running(&mut self) {
        if self.running.is_empty() {
            return;
        }
        if let Err(error) = self.store.begin_turn().await {
            tracing::warn!(%error, "cannot record the runbook runs cut short by the stop");
            return;
        }
        let now = self.clock.now();
        let mut batch = WriteBatch::default();
        for (_, mut record) in self.running.drain() {
            record.status = "interrupted".into();
            record.finished_at = Some(now);
            if let Some(incident_id) = record.incident_id {
                batch.record(entry(
                    incident_id,
                    now,
                    "runbook_interrupted",
                    "tocsin",
                    format!(
                        "runbook {} interrupted: Tocsin stopped while it ran",
                        record.runbook
                    ),
                ));
            }
            batch.upsert_run(record);
        }
        if let Err(error) = self.store.commit(&batch).await {
            tracing::warn!(%error, "cannot record the runbook runs cut short by the stop");
        }
    }

    /// Runs another replica started and stopped renewing (it died): each ends as a
    /// failure that says so, and its `on_failure` applies here. Runs of this process
    /// are alive by definition and left alone.
    pub(super) async fn check_lost_runs(
        &mut self,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let lost = self
            .store
            .lost_runs(now)
            .await
            .map_err(|error| PipelineError::Unavailable(error.to_string()))?;
        for record in lost {
            if self.running.contains_key(&record.id) {
                continue;
            }
            let run_id = record.id;
            self.running.insert(run_id, record);
            self.adopted.insert(run_id);
            let outcome = RunOutcome {
                success: false,
                exit_code: None,
                timed_out: false,
                output: "interrupted: the Tocsin replica running it stopped before it finished; \
                         the runbook may have done part of its work"
                    .into(),
                delivery: None,
            };
            self.run_finished(run_id, outcome, now, batch, effects)
                .await?;
        }
        Ok(())
    }

    /// Runs waiting for the sender's recovery: recovered when the incident resolved
    /// in time, else the incident escalates.
    pub(super) async fn check_recoveries(
        &mut self,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let awaiting = std::mem::take(&mut self.view.awaiting);
        for mut run in awaiting {
            let Some(incident_id) = run.incident_id else {
                continue;
            };
            if !self.view.incidents.contains_key(&incident_id) {
                run.status = "recovered".into();
                if let Some(mut incident) = self
                    .store
                    .incident(incident_id)
                    .await
                    .map_err(|error| PipelineError::Unavailable(error.to_string()))?
                {
                    incident.remediated = true;
                    batch.upsert_incident(&incident);
                }
                batch.record(entry(
                    incident_id,
                    now,
                    "auto_remediated",
                    &format!("runbook:{}", run.runbook),
                    format!("the sender reported recovery after runbook {}", run.runbook),
                ));
                batch.upsert_run(run);
            } else if run.recovery_due.is_some_and(|due| due <= now) {
                run.status = "recovery_missed".into();
                let runbook = run.runbook.clone();
                batch.upsert_run(run);
                self.escalate_after_runbook(
                    incident_id,
                    &runbook,
                    "ran but no recovery arrived in time",
                    now,
                    batch,
                    effects,
                )
                .await?;
            } else {
                self.view.awaiting.push(run);
            }
        }
        Ok(())
    }
}
