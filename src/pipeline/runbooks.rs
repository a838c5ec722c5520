//! Runbooks inside the writer: which runbooks a new incident starts or proposes for
//! approval, the guard's verdict, approvals and their expiry, and what a finished run
//! means for its incident. The runs themselves happen outside the writer
//! (`runbook::executor`) and report back here.

use super::decide::Decider;
use super::{Effects, PipelineError, entry};
use crate::alert::Alert;
use crate::incident::{Incident, Proposal, RunEnd, RunStart, TimelineKind};
use crate::rules::Classification;
use crate::runbook::runner::RunOutcome;
use crate::runbook::{Approval, NotRun, OnFailure, OnSuccess, Params, Runbook};
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
    /// `[runbooks] secret_domains`, so a runbook can refuse before it makes a secret
    /// Tocsin would not deliver.
    pub secret_domains: Vec<String>,
}

/// Longest output kept on the timeline (the run row keeps the bounded whole).
const TIMELINE_OUTPUT: usize = 4000;

/// A waiting run an approval will start, with what it starts with.
pub(super) struct Approved {
    proposed: RunRecord,
    runbook: Runbook,
    params: Params,
    priority: String,
}

impl Decider {
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
        // Only the runbooks an operator listed run on their own (spec §11).
        let chosen: Vec<&Runbook> = config
            .runbooks
            .iter()
            .filter(|runbook| config.runbooks_enabled.contains(&runbook.name))
            .filter(|runbook| {
                classification.runbooks.contains(&runbook.name) || runbook.matches(alert)
            })
            .collect();
        for runbook in chosen {
            let verdict = runbook
                .render(alert, incident.id, incident.priority.as_str())
                .map_err(NotRun::from)
                .and_then(|params| {
                    self.guard
                        .check(runbook, &params.target(), now)
                        .map(|()| params)
                        .map_err(NotRun::from)
                });
            match verdict {
                Ok(params) if runbook.approval == Approval::Responder => {
                    self.propose_run(runbook, &params, incident.id, now, batch);
                }
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
                        TimelineKind::RunbookRefused,
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
        let record = self.new_run(runbook, &params, incident_id, trigger, actor, now);
        self.launch(record, runbook, params, priority, batch)
    }

    /// A run row, `running`, under the next free id.
    fn new_run(
        &mut self,
        runbook: &Runbook,
        params: &Params,
        incident_id: Option<i64>,
        trigger: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> RunRecord {
        let id = self.view.ids.runs.take();
        RunRecord {
            id,
            runbook: runbook.name.clone(),
            incident_id,
            trigger: trigger.to_string(),
            actor: actor.to_string(),
            target: params.target(),
            params: params.redacted(),
            status: "running".into(),
            exit_code: None,
            output: String::new(),
            started_at: now,
            finished_at: None,
            recovery_due: None,
            approval_due: None,
        }
    }

    /// Records `record` as running and hands it to the executor once the batch commits.
    fn launch(
        &mut self,
        record: RunRecord,
        runbook: &Runbook,
        params: Params,
        priority: &str,
        batch: &mut WriteBatch,
    ) -> i64 {
        let (run_id, incident_id) = (record.id, record.incident_id);
        if let Some(incident_id) = incident_id {
            let start = RunStart {
                run_id,
                params: record.params.clone(),
            };
            batch.record(entry(
                incident_id,
                record.started_at,
                TimelineKind::RunbookStarted(start),
                &record.actor,
                format!("runbook {} started ({})", runbook.name, record.target),
            ));
        }
        self.save_run(batch, record.clone());
        self.running.insert(run_id, record);
        self.pending_runs.push(RunRequest {
            run_id,
            runbook: runbook.clone(),
            params,
            incident_id,
            priority: priority.to_string(),
            secret_domains: self.config.secret_domains.clone(),
        });
        run_id
    }

    /// Writes a run row; the guard sees it at once, so the next alert of the same
    /// batch is judged with it.
    fn save_run(&mut self, batch: &mut WriteBatch, record: RunRecord) {
        self.guard.record(&record);
        batch.upsert_run(record);
    }

    /// An `approval = "responder"` runbook: the run waits on the incident for a
    /// responder until its `approval_timeout`.
    fn propose_run(
        &mut self,
        runbook: &Runbook,
        params: &Params,
        incident_id: i64,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) {
        let mut record = self.new_run(runbook, params, Some(incident_id), "auto", "tocsin", now);
        let due = now + runbook.approval_timeout;
        record.status = "pending_approval".into();
        record.approval_due = Some(due);
        let proposal = Proposal {
            run_id: record.id,
            runbook: runbook.name.clone(),
            params: record.params.clone(),
            approval_due: due,
        };
        batch.record(entry(
            incident_id,
            now,
            TimelineKind::RunbookPendingApproval(proposal),
            "tocsin",
            format!(
                "runbook {} ({}) waits for a responder's approval until {}: POST /api/v1/incidents/{incident_id}/runbooks/{}/approve runs it",
                runbook.name,
                record.target,
                crate::clock::rfc3339(due),
                runbook.name
            ),
        ));
        self.view.pending_approvals.push(record.clone());
        self.save_run(batch, record);
    }

    /// `POST /api/v1/incidents/{id}/runbooks/{name}/approve`, first half: checks the
    /// waiting run could start, changing nothing. A person decided, so only the
    /// concurrency limit still applies. An approval of several runs is planned whole
    /// before any starts, so a refusal of the last leaves the batch untouched instead
    /// of failing its other commands. `planned` are the runs this approval already
    /// starts: not waiting any more, and holding slots.
    pub(super) fn plan_approval(
        &self,
        incident_id: i64,
        name: &str,
        planned: &[Approved],
        batch: &WriteBatch,
    ) -> Result<Approved, PipelineError> {
        let Some(proposed) = self.view.pending_approvals.iter().find(|run| {
            run.incident_id == Some(incident_id)
                && run.runbook == name
                && !planned
                    .iter()
                    .any(|approval| approval.proposed.id == run.id)
        }) else {
            return Err(self.nothing_to_approve(incident_id, name, batch));
        };
        if !self.view.incidents.contains_key(&incident_id) {
            return Err(PipelineError::NotPossible(format!(
                "incident {incident_id} is resolved: runbook {name} is no longer needed; run it by hand if it still is"
            )));
        }
        let priority = self.priority_of(incident_id, batch)?;
        let runbook = self
            .config
            .runbooks
            .iter()
            .find(|runbook| runbook.name == name)
            .ok_or_else(|| {
                PipelineError::NotPossible(format!(
                    "runbook {name} is no longer in the runbooks directory; restore its manifest or handle the incident by hand"
                ))
            })?;
        let params = self.proposed_params(runbook, proposed, &priority)?;
        let starting = planned
            .iter()
            .filter(|approval| approval.runbook.name == name)
            .count();
        self.guard
            .check_concurrency(runbook, starting)
            .map_err(|why| {
                PipelineError::NotPossible(format!("runbook {name} cannot start now: {why}"))
            })?;
        Ok(Approved {
            proposed: proposed.clone(),
            runbook: runbook.clone(),
            params,
            priority,
        })
    }

    /// Starts a run `plan_approval` accepted; nothing can refuse it any more.
    pub(super) fn start_approved(
        &mut self,
        approval: Approved,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> i64 {
        let Approved {
            proposed,
            runbook,
            params,
            priority,
        } = approval;
        self.view
            .pending_approvals
            .retain(|run| run.id != proposed.id);
        if let Some(incident_id) = proposed.incident_id {
            batch.record(entry(
                incident_id,
                now,
                TimelineKind::RunbookApproved,
                actor,
                format!(
                    "runbook {} ({}) approved by {actor}",
                    runbook.name, proposed.target
                ),
            ));
        }
        let record = RunRecord {
            status: "running".into(),
            actor: actor.to_string(),
            started_at: now,
            approval_due: None,
            ..proposed
        };
        self.launch(record, &runbook, params, &priority, batch)
    }

    /// Why there is nothing to approve: no such incident (404), or no proposal (409).
    fn nothing_to_approve(
        &self,
        incident_id: i64,
        name: &str,
        batch: &WriteBatch,
    ) -> PipelineError {
        let known = self
            .config
            .runbooks
            .iter()
            .any(|runbook| runbook.name == name);
        match self.priority_of(incident_id, batch) {
            Err(error) => error,
            Ok(_) if !known => PipelineError::Missing(format!(
                "runbook {name:?} does not exist; GET /api/v1/runbooks lists them"
            )),
            Ok(_) => PipelineError::NotPossible(format!(
                "no run of runbook {name} waits for approval on incident {incident_id}: it was approved, expired or never proposed (the incident's timeline says which)"
            )),
        }
    }

    /// The parameters of a proposed run, rendered again from the incident's alerts:
    /// the stored ones have their secrets redacted.
    fn proposed_params(
        &self,
        runbook: &Runbook,
        proposed: &RunRecord,
        priority: &str,
    ) -> Result<Params, PipelineError> {
        let Some(incident_id) = proposed.incident_id else {
            return runbook
                .validate(proposed.params.clone())
                .map_err(|why| PipelineError::Invalid(why.to_string()));
        };
        self.facts
            .incident_alerts
            .get(&incident_id)
            .into_iter()
            .flatten()
            .filter_map(|alert| runbook.render(alert, incident_id, priority).ok())
            .find(|params| params.target() == proposed.target)
            .ok_or_else(|| {
                PipelineError::NotPossible(format!(
                    "the alerts of incident {incident_id} no longer give runbook {} the parameters it proposed ({}); run it by hand if it is still needed",
                    runbook.name, proposed.target
                ))
            })
    }

    /// The priority of an incident, open or not; `NotFound` when there is none.
    fn priority_of(&self, incident_id: i64, batch: &WriteBatch) -> Result<String, PipelineError> {
        let priority = match self.view.incidents.get(&incident_id) {
            Some(open) => open.incident.priority,
            None => {
                self.closed_incident(incident_id, batch)
                    .ok_or(PipelineError::NotFound(incident_id))?
                    .priority
            }
        };
        Ok(priority.as_str().to_string())
    }

    /// Proposals nobody approved in time: they never run, and paging goes on as it was.
    pub(super) fn expire_approvals(&mut self, now: DateTime<Utc>, batch: &mut WriteBatch) {
        self.end_proposals(
            |run| run.approval_due.is_some_and(|due| due <= now),
            "was not approved in time and did not run; escalation goes on as usual",
            now,
            batch,
        );
    }

    /// The proposals of an incident that resolved: nothing is left for them to fix,
    /// and an approve link in an old page must not start them.
    pub(super) fn withdraw_approvals(
        &mut self,
        incident_id: i64,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) {
        self.end_proposals(
            |run| run.incident_id == Some(incident_id),
            "was not approved before the incident resolved and will not run",
            now,
            batch,
        );
    }

    fn end_proposals(
        &mut self,
        ended: impl Fn(&RunRecord) -> bool,
        why: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) {
        let (expired, waiting): (Vec<RunRecord>, Vec<RunRecord>) =
            std::mem::take(&mut self.view.pending_approvals)
                .into_iter()
                .partition(|run| ended(run));
        self.view.pending_approvals = waiting;
        for mut run in expired {
            run.status = "approval_expired".into();
            run.finished_at = Some(now);
            if let Some(incident_id) = run.incident_id {
                batch.record(entry(
                    incident_id,
                    now,
                    TimelineKind::RunbookApprovalExpired,
                    "tocsin",
                    format!("runbook {} ({}) {why}", run.runbook, run.target),
                ));
            }
            self.save_run(batch, run);
        }
    }

    /// `POST /api/v1/runbooks/{name}/run`: validated like an automatic run; only the
    /// concurrency limit applies, since a person decided.
    pub(super) fn manual_run(
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
        // An incident that does not exist is the caller's first mistake, not the
        // parameters it would have supplied.
        let priority = match incident_id {
            Some(id) => self.priority_of(id, batch)?,
            None => String::new(),
        };
        let params = runbook
            .validate(values)
            .map_err(|why| PipelineError::Invalid(why.to_string()))?;
        self.guard.check_by_hand(runbook, now).map_err(|why| {
            PipelineError::NotPossible(format!("runbook {name} cannot start now: {why}"))
        })?;
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
    pub(super) fn run_finished(
        &mut self,
        run_id: i64,
        outcome: RunOutcome,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        if self.finishing.contains(&run_id) {
            return Ok(());
        }
        // Kept in `running` until the batch commits: if it does not, the executor
        // reports the outcome again, and it is not later taken for interrupted.
        let Some(record) = self.running.get(&run_id).cloned() else {
            return Ok(());
        };
        self.end_run(record, outcome, now, batch, effects)?;
        self.finishing.push(run_id);
        Ok(())
    }

    fn end_run(
        &mut self,
        mut record: RunRecord,
        outcome: RunOutcome,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let run_id = record.id;
        let config = self.config.clone();
        let runbook = config
            .runbooks
            .iter()
            .find(|runbook| runbook.name == record.runbook);
        let breaker_was_open = runbook
            .and_then(|runbook| self.guard.breaker_closes(runbook, &record.target, now))
            .is_some();
        let (label, kind): (_, fn(RunEnd) -> TimelineKind) = if outcome.success {
            ("success", TimelineKind::RunbookSuccess)
        } else if outcome.timed_out {
            ("timeout", TimelineKind::RunbookTimeout)
        } else {
            ("failure", TimelineKind::RunbookFailure)
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
        self.guard.record(&record);
        let breaker_opened = !breaker_was_open
            && runbook
                .and_then(|runbook| self.guard.breaker_closes(runbook, &record.target, now))
                .is_some();
        let Some(incident_id) = record.incident_id else {
            self.save_run(batch, record);
            return Ok(());
        };
        let exit = outcome
            .exit_code
            .map_or_else(|| "no exit code".to_string(), |code| format!("exit {code}"));
        let shown: String = outcome.output.chars().take(TIMELINE_OUTPUT).collect();
        let message = format!(
            "runbook {} {label} ({exit}): {}",
            record.runbook,
            shown.trim()
        );
        let end = RunEnd {
            run_id,
            exit_code: outcome.exit_code,
            timed_out: outcome.timed_out,
            output: shown,
        };
        let actor = format!("runbook:{}", record.runbook);
        batch.record(entry(incident_id, now, kind(end), &actor, message));
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
                )?;
                batch.record(entry(
                    incident_id,
                    now,
                    TimelineKind::AutoRemediated,
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
                    TimelineKind::RunbookWaiting,
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
                )?;
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
            )?;
        }
        self.save_run(batch, record);
        Ok(())
    }

    fn escalate_after_runbook(
        &mut self,
        incident_id: i64,
        runbook: &str,
        what: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let actor = format!("runbook:{runbook}");
        match self.escalate_now(incident_id, &actor, now, batch, effects) {
            Ok(_) => {
                batch.record(entry(
                    incident_id,
                    now,
                    TimelineKind::EscalatedByRunbook,
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
                    TimelineKind::EscalatedByRunbook,
                    &actor,
                    format!("runbook {runbook} {what}; {why}"),
                ));
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Runs another replica started and stopped renewing (it died): each ends as a
    /// failure that says so, and its `on_failure` applies here. Runs of this process
    /// are alive by definition and left alone.
    pub(super) fn check_lost_runs(
        &mut self,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let lost = std::mem::take(&mut self.facts.lost_runs);
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
            self.run_finished(run_id, outcome, now, batch, effects)?;
        }
        Ok(())
    }

    /// Runs waiting for the sender's recovery: recovered when the incident resolved
    /// in time, else the incident escalates.
    pub(super) fn check_recoveries(
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
                if let Some(mut incident) = self.closed_incident(incident_id, batch) {
                    incident.remediated = true;
                    batch.upsert_incident(&incident);
                }
                batch.record(entry(
                    incident_id,
                    now,
                    TimelineKind::AutoRemediated,
                    &format!("runbook:{}", run.runbook),
                    format!("the sender reported recovery after runbook {}", run.runbook),
                ));
                self.save_run(batch, run);
            } else if run.recovery_due.is_some_and(|due| due <= now) {
                run.status = "recovery_missed".into();
                let runbook = run.runbook.clone();
                self.save_run(batch, run);
                self.escalate_after_runbook(
                    incident_id,
                    &runbook,
                    "ran but no recovery arrived in time",
                    now,
                    batch,
                    effects,
                )?;
            } else {
                self.view.awaiting.push(run);
            }
        }
        Ok(())
    }
}

impl super::Writer {
    /// At shutdown: the runs still going are cut short with the process. Recorded as
    /// interrupted, so no replica takes them for lost and escalates a rolling restart.
    pub(super) async fn interrupt_running(&mut self) {
        if self.decider.running.is_empty() {
            return;
        }
        if let Err(error) = self.store.begin_turn().await {
            tracing::warn!(%error, "cannot record the runbook runs cut short by the stop");
            return;
        }
        let now = self.clock.now();
        let mut batch = WriteBatch::default();
        for (_, mut record) in self.decider.running.drain() {
            record.status = "interrupted".into();
            record.finished_at = Some(now);
            if let Some(incident_id) = record.incident_id {
                batch.record(entry(
                    incident_id,
                    now,
                    TimelineKind::RunbookInterrupted,
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
}

#[cfg(test)]
mod tests {
    use super::super::decide::testing::{alert, at, decider_with, ingest, kinds, paged};
    use super::*;
    use crate::alert::{AlertStatus, Severity};

    const RESTART: &str = r#"
command = ["/bin/true"]
match = ['check="http"']
timeout = "60s"
on_success = "resolve"
on_failure = "escalate"
[params.host]
from = "{{resource}}"
pattern = "^[a-z0-9-]+$"
"#;

    fn outcome(success: bool) -> RunOutcome {
        RunOutcome {
            success,
            exit_code: Some(if success { 0 } else { 1 }),
            timed_out: false,
            output: String::new(),
            delivery: None,
        }
    }

    fn finish(decider: &mut Decider, run_id: i64, success: bool, now: DateTime<Utc>) -> WriteBatch {
        let mut batch = WriteBatch::default();
        decider
            .run_finished(
                run_id,
                outcome(success),
                now,
                &mut batch,
                &mut Effects::default(),
            )
            .unwrap();
        batch
    }

    #[test]
    fn a_new_incident_starts_its_runbook_and_a_success_resolves_it() {
        let mut decider = decider_with("", &[("restart", RESTART)]);
        let firing = alert("db-01", Severity::Critical, AlertStatus::Firing);
        let (accepted, batch) = ingest(&mut decider, firing, at(0));
        let incident_id = accepted.incident_id.unwrap();
        assert_eq!(batch.runs().len(), 1);
        let run = decider
            .pending_runs
            .pop()
            .expect("handed to the executor after the commit");
        assert_eq!(run.params.target(), "host=db-01");

        let batch = finish(&mut decider, run.run_id, true, at(1));
        assert!(
            kinds(&batch).contains(&"auto_remediated"),
            "{:?}",
            kinds(&batch)
        );
        let incident = batch.incident(incident_id).unwrap();
        assert!(incident.remediated && incident.resolved_at == Some(at(1)));
        assert_eq!(decider.finishing, [run.run_id]);
        assert!(
            finish(&mut decider, run.run_id, true, at(2)).is_empty(),
            "recorded once"
        );
    }

    #[test]
    fn a_run_lost_with_its_replica_ends_as_a_failure_and_escalates() {
        let mut decider = decider_with("", &[("restart", RESTART)]);
        let firing = alert("db-01", Severity::Critical, AlertStatus::Firing);
        let (accepted, batch) = ingest(&mut decider, firing, at(0));
        let incident_id = accepted.incident_id.unwrap();
        let mut lost = batch.runs()[0].clone();
        // Another replica started it; this one only read it back as lost.
        decider.pending_runs.clear();
        decider.running.clear();
        lost.id = 41;
        decider.facts.lost_runs = vec![lost];
        let mut batch = WriteBatch::default();
        decider
            .check_lost_runs(at(3), &mut batch, &mut Effects::default())
            .unwrap();
        let saved = &batch.runs()[0];
        assert_eq!((saved.id, saved.status.as_str()), (41, "failed"));
        assert!(
            saved.output.contains("replica running it stopped"),
            "{}",
            saved.output
        );
        assert_eq!(paged(&batch), [("carol".to_string(), "L2#1".to_string())]);
        assert!(
            kinds(&batch).contains(&"escalated_by_runbook"),
            "{:?}",
            kinds(&batch)
        );
        assert!(decider.view.incidents.contains_key(&incident_id));
    }

    #[test]
    fn a_proposal_is_approved_with_its_incidents_alerts_read_before_the_batch() {
        let manual = format!("approval = \"responder\"\napproval_timeout = \"15m\"\n{RESTART}");
        let mut decider = decider_with("", &[("restart", &manual)]);
        let firing = || alert("db-01", Severity::Critical, AlertStatus::Firing);
        let (accepted, batch) = ingest(&mut decider, firing(), at(0));
        let incident_id = accepted.incident_id.unwrap();
        assert!(
            kinds(&batch).contains(&"runbook_pending_approval"),
            "{:?}",
            kinds(&batch)
        );
        assert!(
            decider.pending_runs.is_empty(),
            "nothing runs before approval"
        );

        let approve = |decider: &mut Decider| {
            let mut batch = WriteBatch::default();
            let result = decider.approve_all(
                incident_id,
                &["restart".to_string()],
                "alice",
                None,
                at(2),
                &mut batch,
            );
            (result, batch)
        };
        // Without the alerts the parameters cannot be rendered again.
        let (refused, _) = approve(&mut decider);
        assert!(
            matches!(refused, Err(PipelineError::NotPossible(_))),
            "{refused:?}"
        );
        decider
            .facts
            .incident_alerts
            .insert(incident_id, vec![firing()]);
        let (started, batch) = approve(&mut decider);
        assert!(started.is_ok(), "{started:?}");
        assert!(
            kinds(&batch).contains(&"runbook_approved"),
            "{:?}",
            kinds(&batch)
        );
        assert_eq!(decider.pending_runs.len(), 1);
        let (twice, _) = approve(&mut decider);
        assert!(
            matches!(twice, Err(PipelineError::NotPossible(_))),
            "{twice:?}"
        );
    }

    #[test]
    fn an_approval_of_several_runs_refused_on_the_last_changes_nothing() {
        let manual = format!("approval = \"responder\"\napproval_timeout = \"15m\"\n{RESTART}");
        let single = format!("concurrency = 1\n{manual}");
        let mut decider = decider_with("", &[("restart", &manual), ("diagnose", &single)]);
        let firing = |host| alert(host, Severity::Critical, AlertStatus::Firing);
        let mut incident_on = |host| {
            let (accepted, _) = ingest(&mut decider, firing(host), at(0));
            accepted.incident_id.unwrap()
        };
        let (first, second) = (incident_on("db-01"), incident_on("db-02"));
        assert_eq!(decider.view.pending_approvals.len(), 4, "two runs each");
        for (id, host) in [(first, "db-01"), (second, "db-02")] {
            decider.facts.incident_alerts.insert(id, vec![firing(host)]);
        }
        let names = |names: &[&str]| {
            names
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>()
        };
        let mut batch = WriteBatch::default();
        // The second incident's diagnosis takes its runbook's only slot.
        decider
            .approve_all(
                second,
                &names(&["diagnose"]),
                "bob",
                None,
                at(1),
                &mut batch,
            )
            .unwrap();
        let (revision, running) = (batch.revision(), decider.pending_runs.len());

        let both = names(&["restart", "diagnose"]);
        let refused = decider.approve_all(first, &both, "alice", Some("sms-1"), at(1), &mut batch);
        assert!(
            matches!(&refused, Err(PipelineError::NotPossible(why)) if why.contains("concurrency")),
            "{refused:?}"
        );
        assert_eq!(batch.revision(), revision, "nothing of it in the batch");
        assert_eq!(
            decider.pending_runs.len(),
            running,
            "the restart did not start"
        );
        assert_eq!(decider.view.pending_approvals.len(), 3, "both still wait");
        assert!(
            !decider.is_spent("sms-1", &batch),
            "the reply can be sent again"
        );

        let restart = decider
            .approve_all(first, &both[..1], "alice", None, at(1), &mut batch)
            .unwrap();
        assert_eq!(restart.len(), 1);
        assert_eq!(decider.view.pending_approvals.len(), 2);
    }
}
