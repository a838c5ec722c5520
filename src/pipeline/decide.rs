//! The decisions, apart from all I/O: a [`Decider`] holds the view of what is open,
//! the configuration of the batch and what the batch read before it decides
//! ([`Facts`]), and applies each command to the view and to the batch's
//! [`WriteBatch`] synchronously. The writer loads and locks the slice first, then
//! calls it, then commits what it decided; so each step (alerts, incidents, paging,
//! watch, runbooks, tickets, drills) is unit-tested on memory alone.

use super::facts::Facts;
use super::{
    Command, Effects, IdempotencyKey, PipelineError, Queued, Reply, RunRequest, Unavailable, View,
};
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
    /// Other processes write the store (replicas): they read who inhibits whom from
    /// its rows, so those are written; one writer keeps it in memory only.
    pub replicas: bool,
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
            replicas: false,
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
        self.settle_flapping(now, batch, effects);
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
                if let Some(first) = self.recall(key.as_ref(), batch) {
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
                if let Some(first) = self.recall(key.as_ref(), batch) {
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
                if let Some(first) = self.recall(key.as_ref(), batch) {
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
                if let Some(first) = self.recall(key.as_ref(), batch) {
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

    /// Approves every run or none: all are checked before the first starts, so a
    /// refused one changes nothing and the batch's other commands still commit.
    pub(super) fn approve_all(
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
        let mut approvals = Vec::with_capacity(runbooks.len());
        for runbook in runbooks {
            approvals.push(self.plan_approval(incident_id, runbook, &approvals, batch)?);
        }
        let started = approvals
            .into_iter()
            .map(|approval| self.start_approved(approval, actor, now, batch))
            .collect();
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
    fn recall(
        &self,
        key: Option<&IdempotencyKey>,
        batch: &WriteBatch,
    ) -> Option<Result<i64, PipelineError>> {
        let key = key?;
        let kept = batch
            .remembered(&key.key)
            .or_else(|| self.facts.answers.get(&key.key).map(String::as_str))?;
        Some(match super::kept_answer(kept) {
            Some((_, Some(request))) if request != key.request => Err(PipelineError::KeyReused),
            Some((id, _)) => Ok(id),
            None => Err(PipelineError::NotPossible(
                "the first answer to this Idempotency-Key cannot be read; send the request with a new key".into(),
            )),
        })
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
    key: Option<IdempotencyKey>,
    result: Result<i64, &PipelineError>,
    now: DateTime<Utc>,
    batch: &mut WriteBatch,
) {
    if let (Some(key), Ok(id)) = (key, result) {
        batch.remember(&key.key, format!("{id} {}", key.request), now);
    }
}

/// What the steps' unit tests share: a decider over a configuration, with ids from
/// 1, and one command at a time applied to a fresh batch, as the writer does.
#[cfg(test)]
pub(super) mod testing {
    use super::Decider;
    use crate::alert::{Alert, AlertAction, AlertStatus, Severity};
    use crate::config::Config;
    use crate::pipeline::{Accepted, Effects, ids};
    use crate::store::WriteBatch;
    use chrono::{DateTime, TimeDelta, Utc};
    use std::sync::Arc;

    /// Three responders and a policy paging them 0, 10 and 20 minutes in.
    pub const POLICY: &str = r#"
[[users]]
id = "alice"
email = "alice@example.com"
[[users]]
id = "carol"
email = "carol@example.com"
[[users]]
id = "dave"
email = "dave@example.com"
[[escalation_policies]]
name = "default"
tiers = [
  { level = "L1", targets = ["user:alice"], after = "0s" },
  { level = "L2", targets = ["user:carol"], after = "10m" },
  { level = "L3", targets = ["user:dave"], after = "20m" },
]
"#;

    pub fn decider(extra: &str) -> Decider {
        decider_with(extra, &[])
    }

    /// A decider whose runbooks are these `(name, manifest)`s, every one enabled.
    pub fn decider_with(extra: &str, runbooks: &[(&str, &str)]) -> Decider {
        let mut config = Config::parse(&format!("{POLICY}\n{extra}"), "test.toml")
            .unwrap_or_else(|errors| panic!("{errors}"));
        for (name, manifest) in runbooks {
            let runbook = crate::runbook::parse(name, std::path::Path::new("/"), manifest)
                .unwrap_or_else(|problems| panic!("{problems:?}"));
            config.runbooks.push(runbook);
            config.runbooks_enabled.push(name.to_string());
        }
        let mut decider = Decider::new(Arc::new(config));
        decider.view.ids = ids::Ids {
            alerts: ids::IdPool::from(1),
            incidents: ids::IdPool::from(1),
            silences: ids::IdPool::from(1),
            runs: ids::IdPool::from(1),
        };
        decider
    }

    /// `minute` minutes after the start of the tests' day.
    pub fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000) + TimeDelta::minutes(minute)
    }

    /// A generic sender's alert on `resource`; critical is a P1.
    pub fn alert(resource: &str, severity: Severity, status: AlertStatus) -> Alert {
        Alert {
            source: "generic".into(),
            dedup_key: format!("{resource}/http"),
            resource: resource.into(),
            check: "http".into(),
            severity,
            status,
            action: AlertAction::Report,
            summary: format!("{resource} is down"),
            details: serde_json::Value::Null,
            labels: Default::default(),
            links: Vec::new(),
            occurred_at: None,
        }
    }

    /// One alert in a batch of its own; what the pipeline answered and the batch.
    pub fn ingest(
        decider: &mut Decider,
        alert: Alert,
        now: DateTime<Utc>,
    ) -> (Accepted, WriteBatch) {
        let mut batch = WriteBatch::default();
        let accepted = decider
            .ingest(alert, now, &mut batch, &mut Effects::default())
            .unwrap();
        (accepted, batch)
    }

    /// A P1 on `resource`, opened at `now`; its incident id.
    pub fn p1(decider: &mut Decider, resource: &str, now: DateTime<Utc>) -> i64 {
        let firing = alert(resource, Severity::Critical, AlertStatus::Firing);
        let (accepted, _) = ingest(decider, firing, now);
        accepted.incident_id.unwrap()
    }

    /// The P1 on `resource` resolves at each odd minute of `minutes` and fires
    /// again at each even one, a batch each; the batches.
    pub fn toggle(
        decider: &mut Decider,
        resource: &str,
        minutes: std::ops::RangeInclusive<i64>,
    ) -> Vec<(Accepted, WriteBatch)> {
        minutes
            .map(|minute| {
                let status = if minute % 2 == 0 {
                    AlertStatus::Firing
                } else {
                    AlertStatus::Resolved
                };
                ingest(
                    decider,
                    alert(resource, Severity::Critical, status),
                    at(minute),
                )
            })
            .collect()
    }

    /// The names of the timeline kinds a batch records.
    pub fn kinds(batch: &WriteBatch) -> Vec<&str> {
        batch
            .timeline()
            .iter()
            .map(|entry| entry.kind.as_str())
            .collect()
    }

    /// Whom a batch pages: (user, step) per queued message.
    pub fn paged(batch: &WriteBatch) -> Vec<(String, String)> {
        batch
            .notifications()
            .iter()
            .map(|message| (message.user_id.clone(), message.step.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{at, decider, p1};
    use super::*;
    use crate::pipeline::{Action, Admission};
    use crate::store::WriteBatch;

    /// Applies an action as the writer does, its batch committed; the answer.
    fn act(
        decider: &mut Decider,
        incident_id: i64,
        once: Option<&str>,
        key: Option<&str>,
        batch: &mut WriteBatch,
    ) -> Result<Incident, PipelineError> {
        let (reply, mut answer) = oneshot::channel();
        let queued = Queued {
            command: Command::Act {
                incident_id,
                action: Action::Escalate { note: None },
                actor: "alice".into(),
                once: once.map(str::to_string),
                reply,
            },
            idempotency: key.map(|key| super::IdempotencyKey {
                key: key.to_string(),
                request: "the request".into(),
            }),
            admission: Arc::new(Admission::default()),
        };
        let (reply, _) = decider.apply(queued, at(1), batch, &mut Effects::default());
        reply(true);
        answer.try_recv().unwrap()
    }

    #[test]
    fn a_key_spent_before_the_batch_or_in_it_acts_no_more() {
        let mut decider = decider("");
        let id = p1(&mut decider, "db-01", at(0));
        decider.facts.spent.insert("link-1".into());
        let mut batch = WriteBatch::default();
        let spent = act(&mut decider, id, Some("link-1"), None, &mut batch);
        assert!(matches!(spent, Err(PipelineError::Spent)), "{spent:?}");
        assert!(batch.is_empty());
        assert!(act(&mut decider, id, Some("link-2"), None, &mut batch).is_ok());
        let again = act(&mut decider, id, Some("link-2"), None, &mut batch);
        assert!(
            matches!(again, Err(PipelineError::Spent)),
            "spent in this batch: {again:?}"
        );
    }

    #[test]
    fn a_repeated_idempotency_key_answers_with_its_first_incident_and_acts_once() {
        let mut decider = decider("");
        let id = p1(&mut decider, "db-01", at(0));
        let mut batch = WriteBatch::default();
        let first = act(&mut decider, id, None, Some("retry-1"), &mut batch).unwrap();
        assert_eq!(first.escalation_level, "L2");
        let revision = batch.revision();
        let repeat = act(&mut decider, id, None, Some("retry-1"), &mut batch).unwrap();
        assert_eq!(repeat.escalation_level, "L2", "not escalated again");
        assert_eq!(batch.revision(), revision, "the repeat changed nothing");

        // Kept before this batch: read with the facts, answered the same way.
        let mut decider = super::testing::decider("");
        let id = p1(&mut decider, "db-01", at(0));
        decider
            .facts
            .answers
            .insert("retry-2".into(), id.to_string());
        let mut batch = WriteBatch::default();
        let repeat = act(&mut decider, id, None, Some("retry-2"), &mut batch).unwrap();
        assert_eq!(repeat.escalation_level, "L1");
        assert!(batch.is_empty());

        // Kept with another request's digest: refused, nothing done.
        decider
            .facts
            .answers
            .insert("retry-3".into(), format!("{id} another-body"));
        let reused = act(&mut decider, id, None, Some("retry-3"), &mut batch);
        assert!(
            matches!(reused, Err(PipelineError::KeyReused)),
            "{reused:?}"
        );
        assert!(batch.is_empty());
    }
}
