//! What a batch's decisions need of the store beyond the open state, read before
//! they are made: which single-use keys were spent, the first answers of repeated
//! `Idempotency-Key`s, the closed incidents the batch names, the whole alerts that
//! stop flapping or back a proposed run, and the runs lost with their replica. The
//! decisions then read only memory, and a failed read fails the batch before
//! anything is decided. Most batches (new alerts, repeats) need none of it.

use super::{Command, IDEMPOTENCY_WINDOW, Queued, View, Writer};
use crate::alert::Alert;
use crate::dedup::DedupKey;
use crate::incident::Incident;
use crate::silence::Silence;
use crate::store::runs::RunRecord;
use crate::store::{AlertQuery, StoreError};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// Proposed runs are rendered again from at most this many of their incident's alerts.
pub(super) const PROPOSAL_ALERTS: i64 = 1000;

/// What one batch reads of the store before it decides.
#[derive(Debug, Default)]
pub(super) struct Facts {
    /// The batch's single-use keys spent before it.
    pub spent: HashSet<String>,
    /// First answers kept for the batch's `Idempotency-Key`s.
    pub answers: HashMap<String, String>,
    /// Incidents the batch names that were not open when it started.
    pub closed: HashMap<i64, Incident>,
    /// Silences answered before under a repeated key.
    pub silences: HashMap<i64, Silence>,
    /// Alerts, whole, by id: those that stop flapping now and open their incident.
    pub alerts: HashMap<i64, Alert>,
    /// The alerts of incidents whose proposed runs are approved.
    pub incident_alerts: HashMap<i64, Vec<Alert>>,
    /// Runs another replica started and stopped renewing.
    pub lost_runs: Vec<RunRecord>,
}

/// What a repeated `Idempotency-Key` answers with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Recalled {
    Incident,
    Silence,
    Run,
}

/// What to read: the keys and ids the commands name, given the view.
#[derive(Debug, Default, PartialEq)]
struct Wanted {
    spent: Vec<String>,
    answers: Vec<(String, Recalled)>,
    closed: Vec<i64>,
    alerts: Vec<i64>,
    incident_alerts: Vec<i64>,
    lost_runs: bool,
}

impl Wanted {
    fn of(
        commands: &[Queued],
        view: &View,
        flapping: crate::flapping::Policy,
        now: DateTime<Utc>,
    ) -> Self {
        let mut wanted = Wanted::default();
        let mut changes: HashMap<DedupKey, usize> = HashMap::new();
        for queued in commands {
            let recalled = match &queued.command {
                Command::Act { .. } | Command::Drill { .. } => Some(Recalled::Incident),
                Command::Silence { .. } => Some(Recalled::Silence),
                Command::RunManual { .. } => Some(Recalled::Run),
                _ => None,
            };
            if let (Some(key), Some(recalled)) = (&queued.idempotency, recalled) {
                wanted.answers.push((key.key.clone(), recalled));
            }
            match &queued.command {
                Command::Ingest { alerts, once, .. } => {
                    wanted.spent.extend(once.iter().cloned());
                    // Only identities with a history can start flapping: most
                    // batches have none to look up.
                    if !view.flaps.is_empty() {
                        for alert in alerts {
                            *changes.entry(DedupKey::of(alert)).or_default() += 1;
                        }
                    }
                }
                Command::Act {
                    incident_id, once, ..
                } => {
                    wanted.spent.extend(once.iter().cloned());
                    wanted.closed.push(*incident_id);
                }
                Command::Approve {
                    incident_id, once, ..
                } => {
                    wanted.spent.extend(once.iter().cloned());
                    wanted.closed.push(*incident_id);
                    wanted.incident_alerts.push(*incident_id);
                }
                Command::RunManual { incident_id, .. } => wanted.closed.extend(*incident_id),
                Command::Beat { name, .. } => {
                    *changes
                        .entry(super::watch::heartbeat_key(name))
                        .or_default() += 1;
                }
                Command::Tick { .. } => {
                    wanted.lost_runs = true;
                    wanted.tick(view, flapping, now, &mut changes);
                }
                Command::Silence { .. } | Command::RunFinished { .. } | Command::Drill { .. } => {}
            }
        }
        // An identity whose history may start flapping in this batch marks the
        // incident it last belonged to, which may have closed since.
        for (key, count) in changes {
            if let Some(flap) = view.flaps.get(&key)
                && !flap.flapping
                && flap.changes().count() + count >= flapping.changes as usize
            {
                wanted.closed.extend(flap.incident_id);
            }
        }
        // Only incidents that are not open are read; the view has the open ones.
        wanted.closed.retain(|id| !view.incidents.contains_key(id));
        for list in [
            &mut wanted.closed,
            &mut wanted.alerts,
            &mut wanted.incident_alerts,
        ] {
            list.sort_unstable();
            list.dedup();
        }
        wanted
    }

    /// The timer pass: the alerts that stop flapping now (and their incidents), the
    /// incidents of runs waiting for a recovery, the heartbeats it may fire.
    fn tick(
        &mut self,
        view: &View,
        flapping: crate::flapping::Policy,
        now: DateTime<Utc>,
        changes: &mut HashMap<DedupKey, usize>,
    ) {
        for (key, flap) in &view.flaps {
            if flap.settled(now, flapping) {
                self.closed.extend(flap.incident_id);
                self.alerts.extend(view.alerts.get(key).map(|open| open.id));
            }
        }
        self.closed
            .extend(view.awaiting.iter().filter_map(|run| run.incident_id));
        for name in view.heartbeats.keys() {
            *changes
                .entry(super::watch::heartbeat_key(name))
                .or_default() += 1;
        }
    }
}

impl Writer {
    /// Reads what the batch's decisions will need, after its locks are taken.
    pub(super) async fn read_facts(
        &mut self,
        commands: &[Queued],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let wanted = Wanted::of(
            commands,
            &self.decider.view,
            self.decider.config.flapping,
            now,
        );
        let mut facts = Facts::default();
        for key in wanted.spent {
            if self.store.is_spent(&key).await? {
                facts.spent.insert(key);
            }
        }
        let mut closed = wanted.closed;
        for (key, recalled) in wanted.answers {
            let Some(answer) = self
                .store
                .remembered_answer(&key, now - IDEMPOTENCY_WINDOW)
                .await?
            else {
                continue;
            };
            // A repeated request answers with what its first one acted on, as it is
            // now.
            match (
                recalled,
                super::kept_answer(&answer).map(|(id, _)| id).ok_or(()),
            ) {
                (Recalled::Incident, Ok(id)) if !self.decider.view.incidents.contains_key(&id) => {
                    closed.push(id);
                }
                (Recalled::Silence, Ok(id))
                    if !self
                        .decider
                        .view
                        .silences
                        .iter()
                        .any(|silence| silence.id == id) =>
                {
                    if let Some(silence) = self.ended_silence(id).await? {
                        facts.silences.insert(id, silence);
                    }
                }
                _ => {}
            }
            facts.answers.insert(key, answer);
        }
        closed.sort_unstable();
        closed.dedup();
        for id in closed {
            if let Some(incident) = self.store.incident(id).await? {
                facts.closed.insert(id, incident);
            }
        }
        for id in wanted.alerts {
            if let Some(record) = self.store.alert(id).await? {
                facts.alerts.insert(id, record.into_alert());
            }
        }
        for incident_id in wanted.incident_alerts {
            let query = AlertQuery {
                incident_id: Some(incident_id),
                limit: PROPOSAL_ALERTS,
                ..Default::default()
            };
            let alerts = self.store.alerts(&query).await?;
            facts.incident_alerts.insert(
                incident_id,
                alerts
                    .into_iter()
                    .map(|record| record.into_alert())
                    .collect(),
            );
        }
        if wanted.lost_runs {
            facts.lost_runs = self.store.lost_runs(now).await?;
        }
        self.decider.facts = facts;
        Ok(())
    }

    /// A silence no longer active, by id.
    async fn ended_silence(&self, id: i64) -> Result<Option<Silence>, StoreError> {
        Ok(self
            .store
            .silences(1, Some(id + 1))
            .await?
            .into_iter()
            .find(|silence| silence.id == id))
    }
}

#[cfg(test)]
mod tests {
    use super::super::decide::testing::{alert, at, decider, p1};
    use super::super::{Action, Admission};
    use super::*;
    use crate::alert::{AlertStatus, Severity};
    use std::sync::Arc;

    fn queued(command: Command, key: Option<&str>) -> Queued {
        Queued {
            command,
            idempotency: key.map(|key| crate::pipeline::IdempotencyKey {
                key: key.to_string(),
                request: String::new(),
            }),
            admission: Arc::new(Admission::default()),
        }
    }

    fn note(incident_id: i64, once: Option<&str>, key: Option<&str>) -> Queued {
        let command = Command::Act {
            incident_id,
            action: Action::Note { text: "n".into() },
            actor: "alice".into(),
            once: once.map(str::to_string),
            reply: tokio::sync::oneshot::channel().0,
        };
        queued(command, key)
    }

    #[test]
    fn new_alerts_and_acts_on_open_incidents_read_nothing() {
        let mut decider = decider("");
        let open = p1(&mut decider, "db-01", at(0));
        let firing = alert("web-01", Severity::Critical, AlertStatus::Firing);
        let ingest = queued(
            Command::Ingest {
                alerts: vec![firing],
                once: None,
                reply: tokio::sync::oneshot::channel().0,
            },
            None,
        );
        let wanted = Wanted::of(
            &[ingest, note(open, None, None)],
            &decider.view,
            decider.config.flapping,
            at(1),
        );
        assert_eq!(wanted, Wanted::default());
    }

    #[test]
    fn keys_closed_incidents_and_the_timer_pass_read_what_they_name() {
        let mut decider = decider("[flapping]\nchanges = 3\nwindow = \"10m\"\n");
        let commands = [
            note(7, Some("link-1"), Some("retry-1")),
            note(7, None, None),
            queued(
                Command::Tick {
                    reply: tokio::sync::oneshot::channel().0,
                },
                None,
            ),
        ];
        let wanted = Wanted::of(&commands, &decider.view, decider.config.flapping, at(1));
        assert_eq!(wanted.spent, ["link-1"]);
        assert_eq!(
            wanted.answers,
            [("retry-1".to_string(), Recalled::Incident)]
        );
        assert_eq!(wanted.closed, [7], "once, and only as it is not open");
        assert!(wanted.lost_runs);
        assert!(wanted.alerts.is_empty(), "nothing flaps");

        // An alert that flapped: the timer pass that settles it reads it whole.
        let first = p1(&mut decider, "db-01", at(0));
        super::super::decide::testing::toggle(&mut decider, "db-01", 1..=2);
        let tick = [queued(
            Command::Tick {
                reply: tokio::sync::oneshot::channel().0,
            },
            None,
        )];
        let early = Wanted::of(&tick, &decider.view, decider.config.flapping, at(5));
        assert!(early.alerts.is_empty());
        let settled = Wanted::of(&tick, &decider.view, decider.config.flapping, at(12));
        assert_eq!(settled.alerts.len(), 1);
        assert_eq!(
            settled.closed,
            [first],
            "its first incident, resolved since"
        );
    }
}
