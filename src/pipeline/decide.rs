//! The decisions, apart from all I/O: a [`Decider`] holds the view of what is open,
//! the configuration of the batch and what the batch read before it decides
//! ([`Facts`]), and applies each command to the view and to the batch's
//! [`WriteBatch`] synchronously. The writer loads and locks the slice first, then
//! calls it, then commits what it decided; so each step (alerts, incidents, paging,
//! watch, runbooks, tickets, drills) is unit-tested on memory alone.

use super::facts::Facts;
use super::{Command, Effects, PipelineError, Queued, Reply, RunRequest, Unavailable, View};
use crate::config::Config;
use crate::incident::Incident;
use crate::store::WriteBatch;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::oneshot;

/// The decision state of the writer: everything a decision reads or changes.
pub(super) struct Decider {
    /// The configuration of the current batch, taken at its start so a reload never
    /// changes the rules in the middle of a batch.
    pub config: Arc<Config>,
    pub view: View,
    /// Incidents whose priority rose in this batch; their paging is re-evaluated.
    pub upgraded: Vec<i64>,
    /// Incidents this batch resolved: everyone a page reached is told, read for all
    /// of them at once after the batch's decisions.
    pub resolved: Vec<i64>,
    /// Whether runbooks may start (cooldowns, caps, breakers): the recent run rows,
    /// reloaded with the view.
    pub guard: crate::runbook::guard::Guard,
    /// Runs started and not yet finished, by id.
    pub running: HashMap<i64, crate::store::runs::RunRecord>,
    /// Runs whose end this batch records; they leave `running` once it commits.
    pub finishing: Vec<i64>,
    /// Runs of a replica that died, taken over to record their end here.
    pub adopted: HashSet<i64>,
    /// What this batch's decisions read of the store, read before they are made.
    pub facts: Facts,
    /// Runs decided in this batch, handed to the executor once it commits.
    pub pending_runs: Vec<RunRequest>,
    /// When rows past their retention were last deleted.
    pub pruned_at: Option<DateTime<Utc>>,
}

impl Decider {
    pub fn new(config: Arc<Config>) -> Self {
        Decider {
            config,
            view: View::default(),
            upgraded: Vec::new(),
            resolved: Vec::new(),
            guard: crate::runbook::guard::Guard::default(),
            running: HashMap::new(),
            finishing: Vec::new(),
            adopted: HashSet::new(),
            facts: Facts::default(),
            pending_runs: Vec::new(),
            pruned_at: None,
        }
    }

    /// Everything time makes due: heartbeats, flapping, recoveries, runs lost with
    /// their replica, drills, SLA, then the escalation timers.
    fn tick_all(
        &mut self,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<usize, PipelineError> {
        self.prune(now, batch);
        self.check_heartbeats(now, batch, effects)?;
        self.settle_flapping(now, batch, effects)?;
        self.check_recoveries(now, batch, effects)?;
        self.expire_approvals(now, batch);
        self.check_lost_runs(now, batch, effects)?;
        let drills = self.check_drills(now, batch, effects);
        let sla = self.check_sla(now, batch, effects);
        drills.and(sla)?;
        Ok(self.tick(now, batch, effects))
    }

    /// Applies one command to the view and the batch, and returns how to answer it
    /// once the batch's fate is known.
    pub fn apply(
        &mut self,
        queued: Queued,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> (Reply, bool) {
        let key = queued.idempotency;
        match queued.command {
            Command::Ingest {
                alerts,
                once,
                reply,
            } => {
                if let Some(once) = &once
                    && self.is_spent(once, batch)
                {
                    return answer(reply, Err(PipelineError::Spent));
                }
                let mut accepted = Vec::with_capacity(alerts.len());
                let mut failure = None;
                for alert in alerts {
                    match self.ingest(alert, now, batch, effects) {
                        Ok(one) => accepted.push(one),
                        Err(error) => {
                            failure = Some(error);
                            break;
                        }
                    }
                }
                let result = match failure {
                    Some(error) => Err(error),
                    None => {
                        if let Some(once) = &once {
                            batch.spend(once, now);
                        }
                        Ok(accepted)
                    }
                };
                answer(reply, result)
            }
            Command::Act {
                incident_id,
                action,
                actor,
                once,
                reply,
            } => {
                if let Some(first) = self.recall(key.as_deref(), batch) {
                    let first = match first {
                        Ok(id) => self.current_incident(id, batch),
                        Err(error) => Err(error),
                    };
                    return answer(reply, first);
                }
                let result = match once {
                    Some(once) => {
                        self.act_spending(incident_id, action, &actor, &once, now, batch, effects)
                    }
                    None => self.act(incident_id, action, &actor, now, batch, effects),
                };
                remember(key, result.as_ref().map(|incident| incident.id), now, batch);
                answer(reply, result)
            }
            Command::Tick { reply } => {
                let result = self.tick_all(now, batch, effects);
                answer(reply, result)
            }
            Command::Silence { change, reply } => {
                if let Some(first) = self.recall(key.as_deref(), batch) {
                    let first = match first {
                        Ok(id) => self.current_silence(id),
                        Err(error) => Err(error),
                    };
                    return answer(reply, first);
                }
                let result = self.change_silence(change, now, batch);
                remember(key, result.as_ref().map(|silence| silence.id), now, batch);
                answer(reply, result)
            }
            Command::Beat { name, reply } => {
                let result = self.beat(&name, now, batch, effects);
                answer(reply, result)
            }
            Command::RunFinished {
                run_id,
                outcome,
                reply,
            } => {
                let result = self.run_finished(run_id, outcome, now, batch, effects);
                answer(reply, result)
            }
            Command::Drill { name, actor, reply } => {
                if let Some(first) = self.recall(key.as_deref(), batch) {
                    let first = match first {
                        Ok(id) => self.current_incident(id, batch),
                        Err(error) => Err(error),
                    };
                    return answer(reply, first);
                }
                let result = self.start_drill(&name, &actor, now, batch, effects);
                remember(key, result.as_ref().map(|incident| incident.id), now, batch);
                answer(reply, result)
            }
            Command::RunManual {
                name,
                values,
                incident_id,
                actor,
                reply,
            } => {
                if let Some(first) = self.recall(key.as_deref(), batch) {
                    return answer(reply, first);
                }
                let result = self.manual_run(&name, values, incident_id, &actor, now, batch);
                remember(key, result.as_ref().copied(), now, batch);
                answer(reply, result)
            }
            Command::Approve {
                incident_id,
                runbooks,
                actor,
                once,
                reply,
            } => {
                let result =
                    self.approve_all(incident_id, &runbooks, &actor, once.as_deref(), now, batch);
                answer(reply, result)
            }
        }
    }

    /// Approves each run; a failure after the first poisons the batch, so none of
    /// them starts.
    fn approve_all(
        &mut self,
        incident_id: i64,
        runbooks: &[String],
        actor: &str,
        once: Option<&str>,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> Result<Vec<i64>, PipelineError> {
        if let Some(once) = once
            && self.is_spent(once, batch)
        {
            return Err(PipelineError::Spent);
        }
        let mut started = Vec::with_capacity(runbooks.len());
        for runbook in runbooks {
            started.push(self.approve_run(incident_id, runbook, actor, now, batch)?);
        }
        if let Some(once) = once {
            batch.spend(once, now);
        }
        Ok(started)
    }

    /// Whether a single-use key was spent, in this batch or before.
    pub(super) fn is_spent(&self, key: &str, batch: &WriteBatch) -> bool {
        batch.spends(key) || self.facts.spent.contains(key)
    }

    /// What an earlier request with the same idempotency key answered: the id of
    /// the incident, silence or run it acted on, kept in this batch or before it.
    fn recall(&self, key: Option<&str>, batch: &WriteBatch) -> Option<Result<i64, PipelineError>> {
        let key = key?;
        let kept = batch
            .remembered(key)
            .or_else(|| self.facts.answers.get(key).map(String::as_str))?;
        Some(kept.parse().map_err(|_| {
            PipelineError::NotPossible(
                "the first answer to this Idempotency-Key cannot be read; send the request with a new key".into(),
            )
        }))
    }

    /// An incident as it is now, open or closed.
    fn current_incident(&self, id: i64, batch: &WriteBatch) -> Result<Incident, PipelineError> {
        if let Some(incident) = batch.incident(id) {
            return Ok(incident.clone());
        }
        if let Ok(incident) = self.open_incident(id) {
            return Ok(incident);
        }
        self.closed_incident(id, batch)
            .ok_or(PipelineError::NotFound(id))
    }

    /// An incident that is not open: as this batch left it, or as read before it.
    pub(super) fn closed_incident(&self, id: i64, batch: &WriteBatch) -> Option<Incident> {
        batch
            .incident(id)
            .or_else(|| self.facts.closed.get(&id))
            .cloned()
    }

    /// A silence as it is now, active or ended.
    fn current_silence(&self, id: i64) -> Result<crate::silence::Silence, PipelineError> {
        self.view
            .silences
            .iter()
            .find(|silence| silence.id == id)
            .or_else(|| self.facts.silences.get(&id))
            .cloned()
            .ok_or_else(|| PipelineError::Missing(format!("silence {id} no longer exists")))
    }
}

/// Answers a command once its batch has committed, or with 503 when it did not;
/// also says whether the command failed.
fn answer<T: Send + 'static>(
    reply: oneshot::Sender<Result<T, PipelineError>>,
    result: Result<T, PipelineError>,
) -> (Reply, bool) {
    let failed = result.is_err();
    let reply: Reply = Box::new(move |committed| {
        let result = if committed {
            result
        } else {
            Err(PipelineError::Unavailable(Unavailable::NotCommitted))
        };
        let _ = reply.send(result);
    });
    (reply, failed)
}

/// Keeps what a successful command acted on (an id) for its idempotency key, in the
/// same commit as the act.
fn remember(
    key: Option<String>,
    result: Result<i64, &PipelineError>,
    now: DateTime<Utc>,
    batch: &mut WriteBatch,
) {
    if let (Some(key), Ok(id)) = (key, result) {
        batch.remember(&key, id.to_string(), now);
    }
}
