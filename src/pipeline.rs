//! The single writer every change goes through: dedup → classify → incident → timeline,
//! applied to the in-memory view of what is open, then written by one group commit.
//!
//! Requests queue on a channel; the writer takes everything waiting, applies it in
//! order, commits it in one transaction (one fsync for all of them) and only then
//! answers. A failed commit answers every request of the batch with
//! [`PipelineError::Unavailable`] and rebuilds the in-memory view from the store, so
//! memory never claims what the disk does not hold.

use crate::alert::{Alert, AlertAction, AlertStatus, Priority};
use crate::clock::Clock;
use crate::config::Config;
use crate::dedup::{Decision, DedupKey, OpenAlert, OpenAlerts};
use crate::incident::{Incident, TimelineEntry, TransitionError};
use crate::metrics::Metrics;
use crate::rules::classify;
use crate::store::{AlertRecord, AlertUpdate, Store, StoreError, WriteBatch};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most commands applied in one group commit.
const MAX_BATCH: usize = 1024;
/// Requests waiting for the writer before senders are made to wait too.
const QUEUE: usize = 8192;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the store cannot take the write right now ({0}); retry shortly")]
    Unavailable(String),
    #[error("incident {0} does not exist")]
    NotFound(i64),
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

/// What the pipeline did with one alert of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// `None` only for a resolve or acknowledgement of an identity never seen.
    pub id: Option<i64>,
    pub dedup_key: String,
    pub incident_id: Option<i64>,
}

/// A human's action on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Acknowledge { note: Option<String> },
    Resolve { note: Option<String> },
    Note { text: String },
}

enum Command {
    Ingest {
        alerts: Vec<Alert>,
        reply: oneshot::Sender<Result<Vec<Accepted>, PipelineError>>,
    },
    Act {
        incident_id: i64,
        action: Action,
        actor: String,
        reply: oneshot::Sender<Result<Incident, PipelineError>>,
    },
}

/// The handle the API holds; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    commands: mpsc::Sender<Command>,
    timeout: std::time::Duration,
}

impl Pipeline {
    /// Loads what is open from the store and starts the writer task. The task ends
    /// once every handle is dropped and the queue is drained.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: Arc<Config>,
        metrics: Metrics,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), StoreError> {
        let mut writer = Writer {
            store,
            clock,
            timeout: config.write_timeout,
            config,
            metrics,
            view: View::default(),
            stale: false,
        };
        writer.reload().await?;
        let (commands, receiver) = mpsc::channel(QUEUE);
        let timeout = writer.timeout;
        let task = tokio::spawn(writer.run(receiver));
        Ok((Self { commands, timeout }, task))
    }

    /// Runs alerts through the pipeline; returns once they are durable.
    pub async fn ingest(&self, alerts: Vec<Alert>) -> Result<Vec<Accepted>, PipelineError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Ingest { alerts, reply }, answer).await
    }

    /// Applies a human's action; returns the incident as it now is.
    pub async fn act(
        &self,
        incident_id: i64,
        action: Action,
        actor: &str,
    ) -> Result<Incident, PipelineError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Act {
            incident_id,
            action,
            actor: actor.to_string(),
            reply,
        };
        self.send(command, answer).await
    }

    async fn send<T>(
        &self,
        command: Command,
        answer: oneshot::Receiver<Result<T, PipelineError>>,
    ) -> Result<T, PipelineError> {
        let gone = || PipelineError::Unavailable("the writer has stopped".into());
        let exchange = async {
            self.commands.send(command).await.map_err(|_| gone())?;
            answer.await.map_err(|_| gone())?
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| PipelineError::Unavailable("the write did not commit in time".into()))?
    }
}

/// An open incident and how many of its alerts still fire.
struct OpenIncident {
    incident: Incident,
    firing: i64,
}

/// The in-memory view of what is open, mirrored from the store.
#[derive(Default)]
struct View {
    alerts: OpenAlerts,
    incidents: HashMap<i64, OpenIncident>,
    /// Group key → the open incident alerts of that group join.
    groups: HashMap<String, i64>,
    open_per_priority: [i64; 4],
    next_alert_id: i64,
    next_incident_id: i64,
}

/// Metric updates held back until their batch has committed.
#[derive(Default)]
struct Effects {
    received: Vec<String>,
    deduplicated: Vec<String>,
    opened: Vec<Priority>,
    acknowledged: Vec<(Priority, f64)>,
    resolved: Vec<(Priority, f64)>,
}

struct Writer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    metrics: Metrics,
    timeout: std::time::Duration,
    view: View,
    /// Set after a failed commit: the view must be rebuilt before it is trusted.
    stale: bool,
}

type Reply = Box<dyn FnOnce(bool) + Send>;

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        let mut commands = Vec::with_capacity(MAX_BATCH);
        while receiver.recv_many(&mut commands, MAX_BATCH).await > 0 {
            self.process(commands.drain(..)).await;
        }
    }

    async fn reload(&mut self) -> Result<(), StoreError> {
        let state = self.store.load_open_state().await?;
        let mut view = View {
            next_alert_id: state.next_alert_id,
            next_incident_id: state.next_incident_id,
            ..View::default()
        };
        for (key, alert) in state.alerts {
            view.alerts.insert(key, alert);
        }
        for (incident, firing) in state.incidents {
            if let Some(group) = &incident.group_key {
                view.groups.insert(group.clone(), incident.id);
            }
            view.open_per_priority[incident.priority.index()] += 1;
            view.incidents
                .insert(incident.id, OpenIncident { incident, firing });
        }
        self.view = view;
        self.stale = false;
        self.publish_open_gauge();
        Ok(())
    }

    async fn process(&mut self, commands: impl Iterator<Item = Command>) {
        if self.stale
            && let Err(error) = self.reload().await
        {
            tracing::error!(%error, "store still unavailable");
            for command in commands {
                command.fail(PipelineError::Unavailable(error.to_string()));
            }
            return;
        }
        let now = self.clock.now();
        let mut batch = WriteBatch::default();
        let mut effects = Effects::default();
        let mut replies: Vec<Reply> = Vec::new();
        for command in commands {
            replies.push(self.apply(command, now, &mut batch, &mut effects).await);
        }
        let started = std::time::Instant::now();
        let committed = self.store.commit(&batch).await;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.commit_requests.observe(replies.len() as f64);
        match committed {
            Ok(()) => {
                self.publish(effects);
                for reply in replies {
                    reply(true);
                }
            }
            Err(error) => {
                tracing::error!(%error, "group commit failed; answering 503 and reloading");
                self.stale = true;
                for reply in replies {
                    reply(false);
                }
                if let Err(error) = self.reload().await {
                    tracing::error!(%error, "cannot reload the open state; will retry on the next request");
                }
            }
        }
    }

    /// Applies one command to the view and the batch, and returns how to answer it
    /// once the batch's fate is known.
    async fn apply(
        &mut self,
        command: Command,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Reply {
        match command {
            Command::Ingest { alerts, reply } => {
                let mut accepted = Vec::with_capacity(alerts.len());
                let mut failure = None;
                for alert in alerts {
                    match self.ingest(alert, now, batch, effects).await {
                        Ok(one) => accepted.push(one),
                        Err(error) => {
                            failure = Some(error);
                            break;
                        }
                    }
                }
                Box::new(move |committed| {
                    let result = match (committed, failure) {
                        (false, _) => Err(unavailable()),
                        (true, Some(error)) => Err(error),
                        (true, None) => Ok(accepted),
                    };
                    let _ = reply.send(result);
                })
            }
            Command::Act {
                incident_id,
                action,
                actor,
                reply,
            } => {
                let result = self
                    .act(incident_id, action, &actor, now, batch, effects)
                    .await;
                Box::new(move |committed| {
                    let _ = reply.send(if committed {
                        result
                    } else {
                        Err(unavailable())
                    });
                })
            }
        }
    }

    async fn ingest(
        &mut self,
        alert: Alert,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Accepted, PipelineError> {
        let key = DedupKey::of(&alert);
        effects.received.push(alert.source.clone());
        if alert.action == AlertAction::Acknowledge {
            return self
                .sender_acknowledges(&key, &alert.source, now, batch, effects)
                .await;
        }
        let accepted = match self.view.alerts.decide(&key, alert.status) {
            Decision::Open => self.open_alert(alert, now, batch, effects),
            Decision::Repeat(id) => {
                effects.deduplicated.push(alert.source.clone());
                let open = self
                    .view
                    .alerts
                    .get_mut(&key)
                    .ok_or(PipelineError::NotFound(id))?;
                open.count += 1;
                open.last_seen = now;
                let update = AlertUpdate {
                    count: open.count,
                    last_seen: now,
                    status: AlertStatus::Firing,
                    resolved_at: None,
                };
                batch.update_alert(id, update);
                Accepted {
                    id: Some(id),
                    dedup_key: key.key,
                    incident_id: open.incident_id,
                }
            }
            Decision::Resolve(_) => self.resolve_alert(&key, &alert.source, now, batch, effects),
            Decision::Stale => self.stale_follow_up(key).await?,
        };
        Ok(accepted)
    }

    fn open_alert(
        &mut self,
        alert: Alert,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Accepted {
        let classification = classify(&alert, &self.config.rules);
        let id = self.view.next_alert_id;
        self.view.next_alert_id += 1;
        let incident_id = if self
            .config
            .incidents
            .auto_open
            .contains(&classification.priority)
        {
            Some(self.incident_for(&alert, &classification, now, batch, effects))
        } else {
            None
        };
        let key = DedupKey::of(&alert);
        self.view.alerts.insert(
            key.clone(),
            OpenAlert {
                id,
                incident_id,
                priority: classification.priority,
                count: 1,
                last_seen: now,
            },
        );
        batch.insert_alert(AlertRecord {
            id,
            source: alert.source,
            dedup_key: alert.dedup_key,
            resource: alert.resource,
            check: alert.check,
            severity: alert.severity,
            priority: classification.priority,
            status: AlertStatus::Firing,
            summary: alert.summary,
            details: alert.details,
            labels: alert.labels,
            links: alert.links,
            count: 1,
            first_seen: now,
            last_seen: now,
            occurred_at: alert.occurred_at,
            resolved_at: None,
            incident_id,
            silenced: false,
            flapping: false,
        });
        Accepted {
            id: Some(id),
            dedup_key: key.key,
            incident_id,
        }
    }

    /// Joins the open incident of the alert's group when it is inside the group
    /// window, else opens a new one.
    fn incident_for(
        &mut self,
        alert: &Alert,
        classification: &crate::rules::Classification,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> i64 {
        let window = self.config.incidents.group_window;
        let joinable = classification
            .group_key
            .as_ref()
            .and_then(|group| self.view.groups.get(group))
            .copied()
            .filter(|id| {
                self.view
                    .incidents
                    .get(id)
                    .is_some_and(|open| now - open.incident.last_alert_at <= window)
            });
        if let Some(incident_id) = joinable
            && let Some(open) = self.view.incidents.get_mut(&incident_id)
        {
            let incident = &mut open.incident;
            open.firing += 1;
            incident.alert_count += 1;
            incident.last_alert_at = now;
            batch.record(entry(
                incident_id,
                now,
                "alert_added",
                &alert.source,
                format!("{} on {} joined the incident", alert.check, alert.resource),
            ));
            let old = incident.priority;
            if incident.raise_priority(
                classification.priority,
                self.config.sla_for(classification.priority),
            ) {
                self.view.open_per_priority[old.index()] -= 1;
                self.view.open_per_priority[incident.priority.index()] += 1;
                batch.record(entry(
                    incident_id,
                    now,
                    "priority_raised",
                    &alert.source,
                    format!("priority raised from {old} to {}", incident.priority),
                ));
            }
            batch.upsert_incident(incident);
            return incident_id;
        }
        let id = self.view.next_incident_id;
        self.view.next_incident_id += 1;
        let incident = Incident::open(
            id,
            alert,
            classification,
            self.config.sla_for(classification.priority),
            now,
        );
        let rule = classification
            .rule
            .as_deref()
            .map_or(String::new(), |rule| format!(" by rule {rule:?}"));
        batch.record(TimelineEntry {
            data: serde_json::json!({ "alert": alert.dedup_key, "rule": classification.rule }),
            ..entry(
                id,
                now,
                "opened",
                &alert.source,
                format!("opened as {}{rule}: {}", incident.priority, alert.summary),
            )
        });
        if self.config.escalation_policies.is_empty() {
            batch.record(entry(
                id,
                now,
                "paging",
                "tocsin",
                "no escalation policy is configured: nobody was paged".into(),
            ));
        }
        if let Some(group) = &classification.group_key {
            self.view.groups.insert(group.clone(), id);
        }
        batch.upsert_incident(&incident);
        effects.opened.push(incident.priority);
        self.view.open_per_priority[incident.priority.index()] += 1;
        self.view.incidents.insert(
            id,
            OpenIncident {
                incident,
                firing: 1,
            },
        );
        id
    }

    fn resolve_alert(
        &mut self,
        key: &DedupKey,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Accepted {
        let Some(open) = self.view.alerts.remove(key) else {
            return Accepted {
                id: None,
                dedup_key: key.key.clone(),
                incident_id: None,
            };
        };
        batch.update_alert(
            open.id,
            AlertUpdate {
                count: open.count,
                last_seen: now,
                status: AlertStatus::Resolved,
                resolved_at: Some(now),
            },
        );
        if let Some(incident_id) = open.incident_id {
            self.alert_of_incident_resolved(incident_id, key, actor, now, batch, effects);
        }
        Accepted {
            id: Some(open.id),
            dedup_key: key.key.clone(),
            incident_id: open.incident_id,
        }
    }

    fn alert_of_incident_resolved(
        &mut self,
        incident_id: i64,
        key: &DedupKey,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) {
        let Some(open) = self.view.incidents.get_mut(&incident_id) else {
            return;
        };
        open.firing -= 1;
        batch.record(entry(
            incident_id,
            now,
            "alert_resolved",
            actor,
            format!("alert {} resolved", key.key),
        ));
        if open.firing > 0 || !self.config.incidents.auto_resolve {
            return;
        }
        if open.incident.resolve(now).is_ok() {
            batch.record(entry(
                incident_id,
                now,
                "resolved",
                "tocsin",
                "every alert resolved: incident resolved automatically".into(),
            ));
            batch.upsert_incident(&open.incident);
            let incident = open.incident.clone();
            self.forget(&incident, effects);
        }
    }

    /// A PagerDuty-style `acknowledge` from the sender acknowledges the alert's incident.
    async fn sender_acknowledges(
        &mut self,
        key: &DedupKey,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Accepted, PipelineError> {
        let Some(open) = self.view.alerts.get(key).cloned() else {
            return self.stale_follow_up(key.clone()).await;
        };
        if let Some(incident_id) = open.incident_id
            && let Some(open_incident) = self.view.incidents.get_mut(&incident_id)
        {
            let incident = &mut open_incident.incident;
            if incident.acknowledge(now)? {
                batch.record(entry(
                    incident_id,
                    now,
                    "acknowledged",
                    actor,
                    format!("acknowledged by the sender ({actor})"),
                ));
                batch.upsert_incident(incident);
                effects
                    .acknowledged
                    .push((incident.priority, seconds(incident.created_at, now)));
            }
        }
        Ok(Accepted {
            id: Some(open.id),
            dedup_key: key.key.clone(),
            incident_id: open.incident_id,
        })
    }

    /// A follow-up for an identity that is not firing changes nothing; it is answered
    /// with the last alert of that identity, as PagerDuty drops such events.
    async fn stale_follow_up(&self, key: DedupKey) -> Result<Accepted, PipelineError> {
        let latest = self
            .store
            .latest_alert(&key)
            .await
            .map_err(|error| PipelineError::Unavailable(error.to_string()))?;
        Ok(Accepted {
            id: latest.map(|(id, _)| id),
            dedup_key: key.key,
            incident_id: latest.and_then(|(_, incident)| incident),
        })
    }

    async fn act(
        &mut self,
        incident_id: i64,
        action: Action,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Incident, PipelineError> {
        let Some(open) = self.view.incidents.get_mut(&incident_id) else {
            return self
                .act_on_closed(incident_id, action, actor, now, batch)
                .await;
        };
        let incident = &mut open.incident;
        match action {
            Action::Acknowledge { note } => {
                if incident.acknowledge(now)? {
                    batch.record(entry(
                        incident_id,
                        now,
                        "acknowledged",
                        actor,
                        with_note(format!("acknowledged by {actor}"), note),
                    ));
                    batch.upsert_incident(incident);
                    effects
                        .acknowledged
                        .push((incident.priority, seconds(incident.created_at, now)));
                }
                Ok(incident.clone())
            }
            Action::Resolve { note } => {
                incident.resolve(now)?;
                batch.record(entry(
                    incident_id,
                    now,
                    "resolved",
                    actor,
                    with_note(format!("resolved by {actor}"), note),
                ));
                batch.upsert_incident(incident);
                let incident = incident.clone();
                for alert in self.view.alerts.remove_incident(incident_id) {
                    let update = AlertUpdate {
                        count: alert.count,
                        last_seen: alert.last_seen,
                        status: AlertStatus::Resolved,
                        resolved_at: Some(now),
                    };
                    batch.update_alert(alert.id, update);
                }
                self.forget(&incident, effects);
                Ok(incident)
            }
            Action::Note { text } => {
                batch.record(entry(incident_id, now, "note", actor, text));
                Ok(incident.clone())
            }
        }
    }

    /// Actions on an incident that is no longer open: only notes are allowed.
    async fn act_on_closed(
        &self,
        incident_id: i64,
        action: Action,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> Result<Incident, PipelineError> {
        let incident = self
            .store
            .incident(incident_id)
            .await
            .map_err(|error| PipelineError::Unavailable(error.to_string()))?
            .ok_or(PipelineError::NotFound(incident_id))?;
        match action {
            Action::Note { text } => {
                batch.record(entry(incident_id, now, "note", actor, text));
                Ok(incident)
            }
            Action::Acknowledge { .. } | Action::Resolve { .. } => {
                Err(TransitionError::AlreadyResolved(incident_id).into())
            }
        }
    }

    /// Drops a resolved incident from the view.
    fn forget(&mut self, incident: &Incident, effects: &mut Effects) {
        self.view.incidents.remove(&incident.id);
        if let Some(group) = &incident.group_key
            && self.view.groups.get(group) == Some(&incident.id)
        {
            self.view.groups.remove(group);
        }
        self.view.open_per_priority[incident.priority.index()] -= 1;
        if let Some(resolved_at) = incident.resolved_at {
            effects
                .resolved
                .push((incident.priority, seconds(incident.created_at, resolved_at)));
        }
    }

    fn publish(&self, effects: Effects) {
        let metrics = &self.metrics;
        for source in effects.received {
            metrics
                .alerts_received
                .with_label_values(&[source.as_str()])
                .inc();
        }
        for source in effects.deduplicated {
            metrics
                .alerts_deduplicated
                .with_label_values(&[source.as_str()])
                .inc();
        }
        for priority in effects.opened {
            metrics
                .incidents_opened
                .with_label_values(&[priority.as_str()])
                .inc();
        }
        for (priority, seconds) in effects.acknowledged {
            metrics
                .incident_ack_seconds
                .with_label_values(&[priority.as_str()])
                .observe(seconds);
        }
        for (priority, seconds) in effects.resolved {
            metrics
                .incident_resolve_seconds
                .with_label_values(&[priority.as_str()])
                .observe(seconds);
        }
        self.publish_open_gauge();
    }

    fn publish_open_gauge(&self) {
        for priority in Priority::ALL {
            self.metrics
                .incidents_open
                .with_label_values(&[priority.as_str()])
                .set(self.view.open_per_priority[priority.index()]);
        }
    }
}

impl Command {
    fn fail(self, error: PipelineError) {
        match self {
            Command::Ingest { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Command::Act { reply, .. } => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

fn unavailable() -> PipelineError {
    PipelineError::Unavailable("the batch could not be committed".into())
}

fn entry(
    incident_id: i64,
    at: DateTime<Utc>,
    kind: &str,
    actor: &str,
    message: String,
) -> TimelineEntry {
    TimelineEntry {
        incident_id,
        at,
        kind: kind.to_string(),
        actor: actor.to_string(),
        message,
        data: serde_json::Value::Null,
    }
}

fn with_note(message: String, note: Option<String>) -> String {
    match note.filter(|note| !note.trim().is_empty()) {
        Some(note) => format!("{message}: {note}"),
        None => message,
    }
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}
