//! The single writer every change goes through: dedup → classify → incident →
//! escalation → timeline, applied to the in-memory view of what is open, then written
//! by one group commit.
//!
//! Requests queue on a channel; the writer takes everything waiting, applies it in
//! order, commits it in one transaction (one fsync for all of them) and only then
//! answers. A failed commit answers every request of the batch with
//! [`PipelineError::Unavailable`] and rebuilds the in-memory view from the store, so
//! memory never claims what the disk does not hold.
//!
//! Each batch is locked and read (`slice.rs`), then what its decisions need beyond
//! the open state is read (`facts.rs`), then the [`decide::Decider`] applies every
//! command synchronously to memory and the batch, reading nothing, and the batch is
//! committed.
//!
//! The decision steps: `alerts.rs` what senders post (dedup, grouping, opening incidents and
//! their links), `incidents.rs` what humans do, `paging.rs` the escalation timers and
//! the outbox rows of the pages they decide, `watch.rs` silences, heartbeats, flapping
//! and SLA events, `runbooks.rs` which runs start or wait for approval and what their
//! outcome does, `tickets.rs` which ticket calls a batch causes, `drills.rs` paging
//! drills, and `executor.rs`, the task outside the writer that starts the runs it
//! decided and reports their end back.

mod alerts;
mod decide;
mod drills;
pub mod executor;
mod facts;
mod ids;
mod incidents;
mod inhibition;
mod paging;
mod passes;
mod runbooks;
mod slice;
mod tickets;
mod watch;

use crate::alert::{Alert, Priority};
use crate::clock::Clock;
use crate::dedup::OpenAlerts;
use crate::incident::{Incident, TimelineEntry, TimelineKind, TransitionError};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, WriteBatch};
use chrono::{DateTime, Utc};
use decide::Decider;
pub use runbooks::RunRequest;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::{mpsc, oneshot};
pub use watch::{HEARTBEAT_SOURCE, NewSilence, SilenceChange};

/// Most commands applied in one group commit.
const MAX_BATCH: usize = 1024;
/// Requests waiting for the writer before senders are made to wait too.
const QUEUE: usize = 8192;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}; nothing was applied, retry shortly")]
    Unavailable(#[source] Unavailable),
    #[error("incident {0} does not exist")]
    NotFound(i64),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("{0}")]
    NotPossible(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Missing(String),
    /// A single-use key (an ack link) was spent by an earlier request.
    #[error("this link was already used; the incident stays as it is")]
    Spent,
    /// An `Idempotency-Key` sent again with another request than the first.
    #[error(
        "this Idempotency-Key was first used with another body; send each different request with a key of its own"
    )]
    KeyReused,
}

/// An `Idempotency-Key`, scoped to its caller and route, and a digest of the request
/// it came with: a repeat is answered as the first only when it is the same request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request: String,
}

/// A kept answer: `"<id> <request digest>"`, or `"<id>"` alone as kept before
/// digests (taken as the same request). The id, and the digest if any.
fn kept_answer(kept: &str) -> Option<(i64, Option<&str>)> {
    let (id, request) = match kept.split_once(' ') {
        Some((id, request)) => (id, Some(request)),
        None => (kept, None),
    };
    Some((id.parse().ok()?, request))
}

/// Why the writer could not carry out a command. The cause is for the log; a client
/// is only told that nothing happened and to retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    /// Shared: one failed commit fails every command of its batch.
    #[error("the store cannot take the write: {0}")]
    Store(Arc<StoreError>),
    #[error("the writer has stopped")]
    Stopped,
    #[error("the store did not take the write in time")]
    Late,
    #[error("the batch could not be committed")]
    NotCommitted,
}

impl Unavailable {
    /// What a client may be told: never the store's own text.
    pub fn detail(&self) -> &'static str {
        match self {
            Self::Store(_) | Self::NotCommitted => "the store cannot take the write",
            Self::Stopped => "the writer has stopped",
            Self::Late => "the store did not take the write in time",
        }
    }
}

impl From<StoreError> for PipelineError {
    fn from(error: StoreError) -> Self {
        Self::Unavailable(Unavailable::Store(Arc::new(error)))
    }
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
    Acknowledge {
        note: Option<String>,
    },
    Resolve {
        note: Option<String>,
    },
    Note {
        text: String,
    },
    /// Page the next tier now.
    Escalate {
        note: Option<String>,
    },
    /// A ticketing platform changed the ticket's priority: a more urgent one raises
    /// the incident (and pages as for it); a less urgent one is only noted, since the
    /// monitoring, not the helpdesk, says how bad it is.
    Reprioritize {
        priority: Priority,
        note: String,
    },
    /// Pause the SLA clock (waiting on the client).
    Hold {
        note: Option<String>,
    },
    /// Restart it.
    Unhold {
        note: Option<String>,
    },
}

enum Command {
    Ingest {
        alerts: Vec<Alert>,
        /// A signed request's signature, spent with the alerts so a replay is refused.
        once: Option<String>,
        reply: oneshot::Sender<Result<Vec<Accepted>, PipelineError>>,
    },
    Act {
        incident_id: i64,
        action: Action,
        actor: String,
        /// A single-use key spent in the same commit as the action.
        once: Option<String>,
        reply: oneshot::Sender<Result<Incident, PipelineError>>,
    },
    /// Run the escalation steps and heartbeat checks that are due.
    Tick {
        reply: oneshot::Sender<Result<usize, PipelineError>>,
    },
    Silence {
        change: SilenceChange,
        reply: oneshot::Sender<Result<crate::silence::Silence, PipelineError>>,
    },
    Beat {
        name: String,
        reply: oneshot::Sender<Result<(), PipelineError>>,
    },
    RunFinished {
        run_id: i64,
        outcome: crate::runbook::runner::RunOutcome,
        reply: oneshot::Sender<Result<(), PipelineError>>,
    },
    /// Start a paging drill.
    Drill {
        name: String,
        actor: String,
        reply: oneshot::Sender<Result<Incident, PipelineError>>,
    },
    RunManual {
        name: String,
        values: std::collections::BTreeMap<String, String>,
        incident_id: Option<i64>,
        actor: String,
        reply: oneshot::Sender<Result<i64, PipelineError>>,
    },
    /// A responder approves a run proposed on an incident.
    Approve {
        incident_id: i64,
        runbooks: Vec<String>,
        actor: String,
        /// A single-use key (an SMS's message id) spent with the approvals.
        once: Option<String>,
        reply: oneshot::Sender<Result<Vec<i64>, PipelineError>>,
    },
}

/// A command on its way to the writer.
struct Queued {
    command: Command,
    /// Scope and client key of an `Idempotency-Key` request.
    idempotency: Option<IdempotencyKey>,
    admission: Arc<Admission>,
}

/// Whether a queued command was taken into a batch or given up by its sender.
/// Exactly one of the two wins, so a request answered 503 for waiting too long is
/// never applied later, and one whose batch has started is answered with its outcome.
#[derive(Default)]
struct Admission(AtomicU8);

const WAITING: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

impl Admission {
    fn start(&self) -> bool {
        self.0
            .compare_exchange(WAITING, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn abandon(&self) -> bool {
        self.0
            .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// How long an `Idempotency-Key` answer is kept.
pub const IDEMPOTENCY_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The handle the API holds; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    commands: mpsc::Sender<Queued>,
    timeout: std::time::Duration,
    /// Set by [`Pipeline::keyed`]: the next command is answered once per key.
    idempotency: Option<IdempotencyKey>,
}

/// A handle that does not keep the writer alive (held by the runbook executor, so
/// shutdown is not blocked by it).
#[derive(Clone)]
pub struct WeakPipeline {
    commands: mpsc::WeakSender<Queued>,
    timeout: std::time::Duration,
}

impl WeakPipeline {
    /// The pipeline, while it still runs.
    pub fn upgrade(&self) -> Option<Pipeline> {
        self.commands.upgrade().map(|commands| Pipeline {
            commands,
            timeout: self.timeout,
            idempotency: None,
        })
    }
}

impl Pipeline {
    /// Loads what is open from the store and returns the handle with the writer
    /// task, for the caller to spawn. The task ends once every handle is dropped and
    /// the queue is drained. `outbox` is woken after every commit that queued messages.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        shared: crate::config::SharedConfig,
        metrics: Metrics,
        outbox: Arc<crate::notify::outbox::Handoff>,
        runs: mpsc::UnboundedSender<RunRequest>,
        changes: tokio::sync::broadcast::Sender<()>,
    ) -> Result<(Self, impl std::future::Future<Output = ()> + Send + 'static), StoreError> {
        let config = shared.load_full();
        let mut writer = Writer {
            store,
            clock,
            timeout: config.write_timeout,
            shared,
            metrics,
            outbox,
            stale: false,
            runs,
            changes,
            decider: Decider::new(config),
            reloaded_at: DateTime::UNIX_EPOCH,
            own_pass: None,
        };
        writer.decider.replicas = writer.store.shared();
        writer.store.interrupt_orphaned_runs().await?;
        writer.reload().await?;
        if writer.decider.replicas && !writer.decider.config.inhibit.is_empty() {
            writer.reconcile_inhibitors().await?;
        }
        let (commands, receiver) = mpsc::channel(QUEUE);
        let timeout = writer.timeout;
        let task = writer.run(receiver);
        Ok((
            Self {
                commands,
                timeout,
                idempotency: None,
            },
            task,
        ))
    }

    /// Runs alerts through the pipeline; returns once they are durable.
    pub async fn ingest(&self, alerts: Vec<Alert>) -> Result<Vec<Accepted>, PipelineError> {
        self.ingest_once(alerts, None).await
    }

    /// Runs a signed request's alerts through the pipeline, spending its signature
    /// in the same commit: [`PipelineError::Spent`] when it was seen before. A
    /// signature over a timestamp expires with its 5-minute window and is kept
    /// briefly; one without can be replayed any time and is kept for a month.
    pub async fn ingest_signed(
        &self,
        alerts: Vec<Alert>,
        signature: &str,
        timestamped: bool,
    ) -> Result<Vec<Accepted>, PipelineError> {
        let prefix = if timestamped { "sigts" } else { "sig" };
        self.ingest_once(alerts, Some(format!("{prefix}:{signature}")))
            .await
    }

    async fn ingest_once(
        &self,
        alerts: Vec<Alert>,
        once: Option<String>,
    ) -> Result<Vec<Accepted>, PipelineError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Ingest {
            alerts,
            once,
            reply,
        };
        self.send(command, answer).await
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
            once: None,
            reply,
        };
        self.send(command, answer).await
    }

    /// Applies a human's action and spends the single-use key `once` (an ack link's
    /// nonce) in the same commit: a link is used exactly when its action is durable.
    /// [`PipelineError::Spent`] when it was used before.
    pub async fn act_once(
        &self,
        incident_id: i64,
        action: Action,
        actor: &str,
        once: &str,
    ) -> Result<Incident, PipelineError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Act {
            incident_id,
            action,
            actor: actor.to_string(),
            once: Some(once.to_string()),
            reply,
        };
        self.send(command, answer).await
    }

    /// This handle with an idempotency key: the command it sends next is applied
    /// once per key within [`IDEMPOTENCY_WINDOW`]; a repeat gets the first answer.
    /// `key` must already be scoped to its caller and route.
    pub fn keyed(&self, key: Option<IdempotencyKey>) -> Pipeline {
        Pipeline {
            idempotency: key,
            ..self.clone()
        }
    }

    /// Pages every escalation step due now; returns how many timers fired.
    pub async fn tick(&self) -> Result<usize, PipelineError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Tick { reply }, answer).await
    }

    /// Adds or expires a silence.
    pub async fn silence(
        &self,
        change: SilenceChange,
    ) -> Result<crate::silence::Silence, PipelineError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Silence { change, reply }, answer).await
    }

    /// Records a heartbeat check-in.
    pub async fn beat(&self, name: &str) -> Result<(), PipelineError> {
        let (reply, answer) = oneshot::channel();
        self.send(
            Command::Beat {
                name: name.to_string(),
                reply,
            },
            answer,
        )
        .await
    }

    /// Starts a paging drill now.
    pub async fn drill(&self, name: &str, actor: &str) -> Result<Incident, PipelineError> {
        let (reply, answer) = oneshot::channel();
        self.send(
            Command::Drill {
                name: name.to_string(),
                actor: actor.to_string(),
                reply,
            },
            answer,
        )
        .await
    }

    /// Reports the end of a runbook run.
    pub async fn run_finished(
        &self,
        run_id: i64,
        outcome: crate::runbook::runner::RunOutcome,
    ) -> Result<(), PipelineError> {
        let (reply, answer) = oneshot::channel();
        self.send(
            Command::RunFinished {
                run_id,
                outcome,
                reply,
            },
            answer,
        )
        .await
    }

    /// Starts a runbook by hand; returns the run id once it is recorded.
    pub async fn run_runbook(
        &self,
        name: &str,
        values: std::collections::BTreeMap<String, String>,
        incident_id: Option<i64>,
        actor: &str,
    ) -> Result<i64, PipelineError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::RunManual {
            name: name.to_string(),
            values,
            incident_id,
            actor: actor.to_string(),
            reply,
        };
        self.send(command, answer).await
    }

    /// Approves the run of `runbook` waiting on an incident; returns its run id.
    pub async fn approve_runbook(
        &self,
        incident_id: i64,
        runbook: &str,
        actor: &str,
    ) -> Result<i64, PipelineError> {
        let runs = self
            .approve_runbooks(incident_id, vec![runbook.to_string()], actor, None)
            .await?;
        runs.first()
            .copied()
            .ok_or_else(|| PipelineError::NotPossible(format!("runbook {runbook} did not start")))
    }

    /// Approves several waiting runs of an incident in one commit, all or none,
    /// spending `once` (an SMS's message id) with them: a replayed reply approves
    /// nothing. Returns the run ids in the order asked.
    pub async fn approve_runbooks(
        &self,
        incident_id: i64,
        runbooks: Vec<String>,
        actor: &str,
        once: Option<String>,
    ) -> Result<Vec<i64>, PipelineError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Approve {
            incident_id,
            runbooks,
            actor: actor.to_string(),
            once,
            reply,
        };
        self.send(command, answer).await
    }

    /// A handle that does not keep the writer running.
    pub fn downgrade(&self) -> WeakPipeline {
        WeakPipeline {
            commands: self.commands.downgrade(),
            timeout: self.timeout,
        }
    }

    /// Queues a command and waits for its answer. A command whose batch has not
    /// started within the write timeout is given up, answered 503, and never applied;
    /// once its batch has started, the answer is the batch's outcome.
    async fn send<T>(
        &self,
        command: Command,
        mut answer: oneshot::Receiver<Result<T, PipelineError>>,
    ) -> Result<T, PipelineError> {
        let gone = || PipelineError::Unavailable(Unavailable::Stopped);
        let late = || PipelineError::Unavailable(Unavailable::Late);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let admission = Arc::new(Admission::default());
        let queued = Queued {
            command,
            idempotency: self.idempotency.clone(),
            admission: Arc::clone(&admission),
        };
        match tokio::time::timeout_at(deadline, self.commands.send(queued)).await {
            Err(_) => return Err(late()),
            Ok(Err(_)) => return Err(gone()),
            Ok(Ok(())) => {}
        }
        match tokio::time::timeout_at(deadline, &mut answer).await {
            Ok(result) => result.map_err(|_| gone())?,
            Err(_) if admission.abandon() => Err(late()),
            Err(_) => answer.await.map_err(|_| gone())?,
        }
    }
}

/// An open incident and how many of its alerts still fire.
struct OpenIncident {
    incident: Incident,
    firing: i64,
    /// Some alert of it came from another sender than the one that opened it: no
    /// single sender may then acknowledge it.
    mixed: bool,
}

/// The in-memory view of what is open, mirrored from the store.
#[derive(Default)]
struct View {
    alerts: OpenAlerts,
    incidents: HashMap<i64, OpenIncident>,
    /// Group key → the open incident alerts of that group join.
    groups: HashMap<String, i64>,
    open_per_priority: [i64; 4],
    ids: ids::Ids,
    silences: Vec<crate::silence::Silence>,
    /// The store's count of silence changes when `silences` was read.
    silences_version: i64,
    /// Last check-in of each heartbeat.
    heartbeats: HashMap<String, DateTime<Utc>>,
    /// Firing alerts that inhibit others.
    inhibitors: crate::inhibit::Inhibitors,
    /// Recent state changes per alert identity, for flap detection.
    flaps: HashMap<crate::dedup::DedupKey, crate::flapping::Flap>,
    /// Successful runs waiting for the sender's recovery.
    awaiting: Vec<crate::store::runs::RunRecord>,
    /// Proposed runs waiting for a responder's approval.
    pending_approvals: Vec<crate::store::runs::RunRecord>,
    /// The escalation timers of the open incidents.
    timers: crate::escalation::Timers,
    /// When each open incident's SLA clocks next need a look (drills have none).
    sla: crate::sla::SlaSchedule,
    /// The `sla_warn_at` the schedule was computed with; a reload that changes it
    /// computes it again.
    sla_warn_at: f64,
}

impl View {
    /// Adds open incidents read from the store, each group pointing to its newest,
    /// and marks those an alert of another sender joined (`senders`: incident id,
    /// the source of one of its alerts).
    fn add_open(&mut self, incidents: Vec<(Incident, i64)>, senders: Vec<(i64, String)>) {
        for (incident, firing) in incidents {
            if let Some(group) = &incident.group_key
                && self
                    .groups
                    .get(group)
                    .is_none_or(|newest| *newest < incident.id)
            {
                self.groups.insert(group.clone(), incident.id);
            }
            self.open_per_priority[incident.priority.index()] += 1;
            self.incidents.insert(
                incident.id,
                OpenIncident {
                    incident,
                    firing,
                    mixed: false,
                },
            );
        }
        for (incident_id, source) in senders {
            if let Some(open) = self.incidents.get_mut(&incident_id) {
                open.mixed |= open.incident.source != source;
            }
        }
    }
}

/// Metric updates held back until their batch has committed.
#[derive(Default)]
struct Effects {
    /// Per source: counted here and added once per batch, so a storm costs one
    /// metric update per batch rather than one per alert.
    received: HashMap<String, u64>,
    deduplicated: HashMap<String, u64>,
    opened: Vec<Priority>,
    acknowledged: Vec<(Priority, f64)>,
    resolved: Vec<(Priority, f64)>,
    escalations: Vec<String>,
    runbook_runs: Vec<(String, &'static str)>,
    sla_breaches: Vec<(crate::alert::Priority, &'static str)>,
}

struct Writer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    shared: crate::config::SharedConfig,
    metrics: Metrics,
    outbox: Arc<crate::notify::outbox::Handoff>,
    timeout: std::time::Duration,
    /// Set after a failed commit: the view must be rebuilt before it is trusted.
    stale: bool,
    runs: mpsc::UnboundedSender<RunRequest>,
    /// Told after every commit that changed something (the dashboard listens).
    changes: tokio::sync::broadcast::Sender<()>,
    /// The decisions, made in memory over what this writer loaded and read.
    decider: Decider,
    /// When the view was last read whole, by the clock.
    reloaded_at: DateTime<Utc>,
    /// This replica's last timer pass, as the other replicas read it.
    own_pass: Option<DateTime<Utc>>,
}

type Reply = Box<dyn FnOnce(bool) + Send>;

impl View {
    /// Sets when an open incident's SLA clocks next need a look; none for a drill
    /// (out of the SLA) or an incident no longer open.
    fn schedule_sla(&mut self, id: i64) {
        let next = self
            .incidents
            .get(&id)
            .and_then(|open| next_sla_look(&open.incident, self.sla_warn_at));
        self.sla.set(id, next);
    }

    /// The whole schedule again, for every open incident.
    fn schedule_all_sla(&mut self, warn_at: f64) {
        self.sla = crate::sla::SlaSchedule::default();
        self.sla_warn_at = warn_at;
        let ids: Vec<i64> = self.incidents.keys().copied().collect();
        for id in ids {
            self.schedule_sla(id);
        }
    }
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Queued>) {
        let mut commands = Vec::with_capacity(MAX_BATCH);
        while receiver.recv_many(&mut commands, MAX_BATCH).await > 0 {
            self.process(commands.drain(..)).await;
        }
        self.interrupt_running().await;
    }

    /// Loads the view: with one writer, everything open; with replicas, what every
    /// batch may need beyond its own rows (see `slice.rs`).
    async fn reload(&mut self) -> Result<(), StoreError> {
        let shared = self.store.shared();
        let state = if shared {
            self.store.load_open_incidents(HEARTBEAT_SOURCE).await?
        } else {
            self.store.load_open_state().await?
        };
        let ids = if shared {
            // Blocks reserved from the store stay this replica's.
            std::mem::take(&mut self.decider.view.ids)
        } else {
            ids::Ids {
                alerts: ids::IdPool::from(state.next_alert_id),
                incidents: ids::IdPool::from(state.next_incident_id),
                silences: ids::IdPool::from(state.next_silence_id),
                runs: ids::IdPool::from(state.next_run_id),
            }
        };
        let mut view = View {
            ids,
            silences: state.silences,
            silences_version: state.silences_version,
            heartbeats: state.heartbeats,
            awaiting: state.awaiting_recovery,
            ..View::default()
        };
        // Flap history is the store's, shared by replicas; an alert marked flapping
        // without one (kept before histories were) settles a window after it was seen.
        view.flaps = state.flaps.into_iter().collect();
        let mut senders = Vec::new();
        for (key, alert) in state.alerts {
            if let Some(incident_id) = alert.incident_id {
                senders.push((incident_id, key.source.clone()));
            }
            if alert.flapping && !view.flaps.contains_key(&key) {
                view.flaps.insert(
                    key.clone(),
                    crate::flapping::Flap::seen_flapping(alert.last_seen, alert.incident_id),
                );
            }
            view.alerts.insert(key, alert);
        }
        view.add_open(state.incidents, senders);
        for timer in state.escalations {
            view.timers.set(timer);
        }
        view.schedule_all_sla(self.decider.config.incidents.sla_warn_at);
        if !self.decider.config.inhibit.is_empty() {
            view.inhibitors = if shared {
                self.stored_inhibitors().await?
            } else {
                self.firing_inhibitors().await?
            };
        }
        let now = self.clock.now();
        view.silences.retain(|silence| silence.ends_at > now);
        self.decider.view = view;
        self.read_runs().await?;
        self.reloaded_at = now;
        self.stale = false;
        self.publish_open_gauge();
        Ok(())
    }

    /// The runbook guard and the runs waiting for approval, from the recent run rows.
    async fn read_runs(&mut self) -> Result<(), StoreError> {
        let since =
            crate::runbook::guard::Guard::since(&self.decider.config.runbooks, self.clock.now());
        let runs = self.store.recent_runs(since).await?;
        self.decider.guard = crate::runbook::guard::Guard::of(&runs);
        self.decider.view.pending_approvals = runs
            .into_iter()
            .filter(|run| run.status == "pending_approval")
            .collect();
        Ok(())
    }

    async fn process(&mut self, commands: impl Iterator<Item = Queued>) {
        let (commands, passing) = self.share_timer_pass(commands.collect()).await;
        if commands.is_empty() {
            return;
        }
        self.decider.config = self.shared.load_full();
        // Every decision is made on what the store holds now: with replicas, the
        // batch's rows are locked and read again first; then what the decisions
        // need beyond the open state is read, so deciding never waits on the store.
        let now = match self.prepare_and_read(&commands).await {
            Ok(now) => now,
            Err(error) => {
                tracing::error!(%error, "cannot take the batch's locks or read its rows");
                self.store.end_turn().await;
                self.stale = true;
                let cause = Unavailable::Store(Arc::new(error));
                for queued in commands {
                    queued
                        .command
                        .fail(PipelineError::Unavailable(cause.clone()));
                }
                return;
            }
        };
        let mut batch = WriteBatch::default();
        let mut effects = Effects::default();
        let mut replies: Vec<Reply> = Vec::new();
        // A command that fails after changing the batch would commit half of itself
        // (the first alerts of a request); such a batch is not committed at all.
        let mut poisoned = false;
        for queued in commands {
            // Given up by its sender (answered 503): never applied.
            if !queued.admission.start() {
                continue;
            }
            let before = batch.revision();
            let (reply, failed) = self.decider.apply(queued, now, &mut batch, &mut effects);
            if failed && batch.revision() != before {
                // Its own error, so a client does not retry a deterministic failure
                // for ever; the others of the batch get 503 and retry without it.
                poisoned = true;
                reply(true);
            } else {
                replies.push(reply);
            }
        }
        if self.decider.view.ids.ran_short() {
            tracing::error!("a batch needed more new ids than reserved for it; answering 503");
            poisoned = true;
        }
        if poisoned {
            tracing::error!("a command failed half-way; answering 503 to its batch and reloading");
            self.store.end_turn().await;
            self.abandon_batch(replies).await;
            return;
        }
        self.decider.repage_upgraded(now, &mut batch);
        if let Err(error) = self.tell_resolved(now, &mut batch).await {
            tracing::error!(%error, "cannot read who was paged for the incidents resolved; answering 503");
            self.store.end_turn().await;
            self.abandon_batch(replies).await;
            return;
        }
        self.decider.queue_ticket_work(now, &mut batch);
        if !batch.notifications().is_empty() {
            batch.claim_due(crate::store::DueClaim {
                token: uuid::Uuid::new_v4().simple().to_string(),
                now,
                until: now + crate::store::CLAIM_LEASE,
            });
        }
        let started = std::time::Instant::now();
        let committed = self.store.commit(&batch).await;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.commit_requests.observe(replies.len() as f64);
        match committed {
            Ok(()) => {
                if !batch.notifications().is_empty() {
                    self.outbox.hand(batch.handed_claim());
                }
                if !batch.is_empty() {
                    // Nobody listening is fine.
                    let _ = self.changes.send(());
                }
                for request in self.decider.pending_runs.drain(..) {
                    if self.runs.send(request).is_err() {
                        tracing::error!("the runbook executor has stopped; a run was not started");
                    }
                }
                for run_id in self.decider.finishing.drain(..) {
                    self.decider.running.remove(&run_id);
                    self.decider.adopted.remove(&run_id);
                }
                let since = crate::runbook::guard::Guard::since(&self.decider.config.runbooks, now);
                self.decider.guard.prune(since);
                self.publish(effects);
                // Marked before the tick is answered: a replica ticking as soon as
                // this pass returns must see it, or it passes too (one round trip,
                // once a period, for the requests sharing the batch).
                if passing {
                    self.mark_timer_pass(now).await;
                }
                for reply in replies {
                    reply(true);
                }
            }
            Err(error) => {
                tracing::error!(%error, "group commit failed; answering 503 and reloading");
                self.abandon_batch(replies).await;
            }
        }
    }

    /// The batch's locks and rows, then its facts, read at the time it decides at.
    async fn prepare_and_read(&mut self, commands: &[Queued]) -> Result<DateTime<Utc>, StoreError> {
        self.prepare(commands).await?;
        let now = self.clock.now();
        self.read_facts(commands, now).await?;
        Ok(now)
    }

    /// Queues the notices of the incidents the batch resolved.
    async fn tell_resolved(
        &mut self,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> Result<(), StoreError> {
        let resolved = std::mem::take(&mut self.decider.resolved);
        if resolved.is_empty() {
            return Ok(());
        }
        let paged = self.store.delivered_pages_of(&resolved).await?;
        for notice in incidents::resolution_notices(&self.decider.config, paged, now) {
            batch.queue(notice);
        }
        Ok(())
    }

    /// Answers 503 to every command of a batch that is not committed and rebuilds
    /// the view, which holds the batch's changes.
    async fn abandon_batch(&mut self, replies: Vec<Reply>) {
        self.stale = true;
        self.decider.upgraded.clear();
        self.decider.resolved.clear();
        for request in self.decider.pending_runs.drain(..) {
            self.decider.running.remove(&request.run_id);
        }
        // An adopted run is found lost again at the next tick; this process's own
        // runs stay, and their executor reports their end again.
        for run_id in self.decider.finishing.drain(..) {
            if self.decider.adopted.remove(&run_id) {
                self.decider.running.remove(&run_id);
            }
        }
        for reply in replies {
            reply(false);
        }
        if let Err(error) = self.reload().await {
            tracing::error!(%error, "cannot reload the open state; will retry on the next request");
        }
    }

    fn publish(&self, effects: Effects) {
        let metrics = &self.metrics;
        for (source, count) in effects.received {
            metrics
                .alerts_received
                .with_label_values(&[source.as_str()])
                .inc_by(count);
        }
        for (source, count) in effects.deduplicated {
            metrics
                .alerts_deduplicated
                .with_label_values(&[source.as_str()])
                .inc_by(count);
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
        for level in effects.escalations {
            metrics
                .escalations
                .with_label_values(&[level.as_str()])
                .inc();
        }
        for (priority, kind) in effects.sla_breaches {
            metrics
                .sla_breaches
                .with_label_values(&[priority.as_str(), kind])
                .inc();
        }
        for (runbook, outcome) in effects.runbook_runs {
            metrics
                .runbook_runs
                .with_label_values(&[runbook.as_str(), outcome])
                .inc();
        }
        self.publish_open_gauge();
    }

    fn publish_open_gauge(&self) {
        for priority in Priority::ALL {
            self.metrics
                .incidents_open
                .with_label_values(&[priority.as_str()])
                .set(self.decider.view.open_per_priority[priority.index()]);
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
            Command::Tick { reply } => {
                let _ = reply.send(Err(error));
            }
            Command::Silence { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Command::Beat { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Command::RunFinished { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Command::RunManual { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Command::Approve { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Command::Drill { reply, .. } => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

fn entry(
    incident_id: i64,
    at: DateTime<Utc>,
    kind: TimelineKind,
    actor: &str,
    message: String,
) -> TimelineEntry {
    TimelineEntry {
        incident_id,
        at,
        kind,
        actor: actor.to_string(),
        message,
    }
}

/// When an incident's SLA clocks next need a look; never for a drill, which is out
/// of the SLA.
fn next_sla_look(incident: &Incident, warn_at: f64) -> Option<DateTime<Utc>> {
    if incident.drill {
        return None;
    }
    incident.next_sla_check(warn_at)
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}
