//! Before a batch decides anything: its locks, and a view current for what it
//! touches. With one writer (SQLite) that is the turn and the view as it is. With
//! replicas on PostgreSQL the view is a cache: a batch of alerts and human actions
//! locks the identities, groups, runbooks, inhibitor keys and incidents it touches
//! (advisory locks on buckets of their hashes, always the first four before the
//! incidents, each in ascending order) and reads exactly those rows again, while
//! other replicas' batches on other keys run beside it. The timer pass (one a period
//! for all replicas: `passes.rs`) and the rare commands (silences, heartbeats,
//! runbooks, drills) take the whole turn, waiting for every batch in flight, and read
//! the open incidents again.

use super::{Command, Queued, Writer};
use crate::alert::AlertAction;
use crate::config::Config;
use crate::dedup::DedupKey;
use crate::inhibit::Inhibitors;
use crate::rules::classify;
use crate::store::{IdTable, OpenState, StoreError, TouchedRows};

/// What a batch's commands touch.
#[derive(Debug, Default)]
pub(super) struct Touched {
    identities: Vec<DedupKey>,
    groups: Vec<String>,
    incidents: Vec<i64>,
    /// Runbooks the batch's alerts may start: their guard (cooldown, cap,
    /// concurrency) is read again under their lock.
    runbooks: Vec<String>,
    /// Inhibitor keys the batch's alerts may hold or be inhibited by: who holds
    /// them is read again under their lock.
    inhibit_keys: Vec<String>,
    /// Alerts the batch may create, those that may open an incident, and
    /// downtimes (which make silences): for the ids it needs.
    alerts: i64,
    opening: i64,
    downtimes: i64,
    /// Some command needs the whole turn.
    whole_turn: bool,
}

impl Touched {
    pub(super) fn of(commands: &[Queued], config: &Config) -> Self {
        let mut touched = Touched::default();
        for queued in commands {
            match &queued.command {
                Command::Ingest { alerts, .. } => {
                    for alert in alerts {
                        touched.alerts += 1;
                        touched.identities.push(DedupKey::of(alert));
                        let classification = classify(alert, &config.rules);
                        if config
                            .incidents
                            .auto_open
                            .contains(&classification.priority)
                        {
                            touched.opening += 1;
                        }
                        touched.runbooks.extend(
                            config
                                .runbooks
                                .iter()
                                .filter(|runbook| config.runbooks_enabled.contains(&runbook.name))
                                .filter(|runbook| {
                                    classification.runbooks.contains(&runbook.name)
                                        || runbook.matches(alert)
                                })
                                .map(|runbook| runbook.name.clone()),
                        );
                        if let Some(group) = classification.group_key {
                            touched.groups.push(group);
                        }
                        if !config.inhibit.is_empty() {
                            touched
                                .inhibit_keys
                                .extend(Inhibitors::keys_of(&config.inhibit, alert));
                        }
                        // A downtime changes the silences every replica decides with.
                        if matches!(
                            alert.action,
                            AlertAction::DowntimeStart | AlertAction::DowntimeEnd
                        ) {
                            touched.downtimes += 1;
                            touched.whole_turn = true;
                        }
                    }
                }
                Command::Act { incident_id, .. } => touched.incidents.push(*incident_id),
                Command::Approve { incident_id, .. } => {
                    touched.incidents.push(*incident_id);
                    touched.whole_turn = true;
                }
                Command::Tick { .. }
                | Command::Silence { .. }
                | Command::Beat { .. }
                | Command::RunFinished { .. }
                | Command::Drill { .. }
                | Command::RunManual { .. } => touched.whole_turn = true,
            }
        }
        touched.identities.sort();
        touched.identities.dedup();
        touched.groups.sort();
        touched.groups.dedup();
        touched.incidents.sort_unstable();
        touched.incidents.dedup();
        touched.runbooks.sort();
        touched.runbooks.dedup();
        touched.inhibit_keys.sort();
        touched.inhibit_keys.dedup();
        touched
    }

    /// The lock keys of the identities, groups and runbooks.
    fn first_keys(&self) -> Vec<i64> {
        let identities = self
            .identities
            .iter()
            .map(|key| lock_key(b'a', &[&key.source, &key.key]));
        let groups = self.groups.iter().map(|group| lock_key(b'g', &[group]));
        let runbooks = self.runbooks.iter().map(|name| lock_key(b'r', &[name]));
        let inhibitors = self.inhibit_keys.iter().map(|key| lock_key(b'n', &[key]));
        identities
            .chain(groups)
            .chain(runbooks)
            .chain(inhibitors)
            .map(|hash| bucket(FIRST, hash))
            .collect()
    }
}

/// Lock keys per phase. PostgreSQL keeps every advisory lock in one shared table
/// (`max_locks_per_transaction` × connections, 6,400 slots by default), so a batch
/// of thousands of alerts must not take a lock each: keys share buckets, a batch
/// holds at most 1,024 locks, and two batches only wait on each other when a bucket
/// is common (or, under a storm, when their batches are large).
const BUCKETS: i64 = 512;
/// The first lock key of each phase; every incident bucket sorts after every
/// identity, group and runbook bucket, which keeps the order of the two phases.
const FIRST: i64 = 0x746f_6373_0000_0000;
const INCIDENTS: i64 = FIRST + BUCKETS;

fn bucket(phase: i64, hash: i64) -> i64 {
    phase + hash.rem_euclid(BUCKETS)
}

/// The advisory lock key of an incident.
fn incident_key(id: i64) -> i64 {
    bucket(INCIDENTS, lock_key(b'i', &[&id.to_string()]))
}

/// A stable 64-bit hash (FNV-1a) of a kind and its parts: every replica, whatever its
/// build, locks the same key for the same row.
fn lock_key(kind: u8, parts: &[&str]) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut eat = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    };
    eat(kind);
    for part in parts {
        // A separator no text holds, so ("ab", "c") and ("a", "bc") differ.
        eat(0);
        part.bytes().for_each(&mut eat);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Conflicts with another replica's batch retried before a batch answers 503.
const ATTEMPTS: usize = 3;

impl Writer {
    /// Takes the batch's locks and makes the view current for what it touches. On an
    /// error nothing is held any more.
    pub(super) async fn prepare(&mut self, commands: &[Queued]) -> Result<(), StoreError> {
        if !self.store.shared() {
            let changed = self.store.begin_turn().await?;
            if self.stale || changed {
                self.reload().await.inspect_err(|_| self.stale = true)?;
            }
            return Ok(());
        }
        let mut touched = Touched::of(commands, &self.decider.config);
        // A view a failed commit left behind may hold what was never committed: read
        // it all again before trusting any of it.
        touched.whole_turn |= self.stale;
        let mut attempt = 1;
        loop {
            let prepared = if touched.whole_turn {
                self.take_whole_turn(&touched).await
            } else {
                self.lock_slice(&touched).await
            };
            let prepared = match prepared {
                Ok(()) => self.top_up_ids(&touched, commands.len()).await,
                Err(error) => Err(error),
            };
            match prepared {
                Ok(()) => return Ok(()),
                Err(error) => {
                    self.store.end_turn().await;
                    if !error.is_conflict() || attempt == ATTEMPTS {
                        return Err(error);
                    }
                    tracing::info!(%error, "a batch conflicted with another replica's; locking again");
                    attempt += 1;
                }
            }
        }
    }

    /// The whole turn: every other batch has committed; the open incidents are read
    /// again, and the alerts the batch names.
    async fn take_whole_turn(&mut self, touched: &Touched) -> Result<(), StoreError> {
        self.store.begin_turn().await?;
        self.reload().await.inspect_err(|_| self.stale = true)?;
        self.refresh(touched).await
    }

    /// A keyed batch: its identities, groups and runbooks locked (the runs read again
    /// under the runbooks' locks), then their incidents (and those a human acts on),
    /// then all of them read again.
    async fn lock_slice(&mut self, touched: &Touched) -> Result<(), StoreError> {
        self.store.begin_keyed(&touched.first_keys()).await?;
        if !touched.runbooks.is_empty() {
            self.read_runs().await?;
        }
        self.refresh(touched).await
    }

    /// Reads again the rows `touched` names and replaces their entries in the view.
    /// Incidents are locked (a no-op within the whole turn) before they are read:
    /// whoever changes an incident or its alerts holds its lock, so an alert read
    /// before as part of an incident is taken from the incident's alerts read after.
    async fn refresh(&mut self, touched: &Touched) -> Result<(), StoreError> {
        let TouchedRows {
            alerts,
            mut incidents,
            flaps,
            silences_version,
        } = self
            .store
            .read_touched(&touched.identities, &touched.groups)
            .await?;
        // Another replica's silence applies to this batch's alerts, not to those
        // after this replica's next timer pass. Silences change only in the whole
        // turn, which this batch holds shared: the counter read with the alerts is
        // exact, and the silences are read again only when it moved.
        if let Some(version) = silences_version
            && version != self.decider.view.silences_version
        {
            self.decider.view.silences = self.store.active_silences(self.clock.now()).await?;
            self.decider.view.silences_version = version;
        }
        incidents.extend(&touched.incidents);
        // An alert that starts or stops flapping marks the incident it belonged to
        // when it started, which its history keeps and which may no longer be the
        // alert's (resolved since, by a human on another replica): locked and read
        // again like the others, so the mark never writes over a newer row.
        incidents.extend(flaps.iter().filter_map(|(_, flap)| flap.incident_id));
        incidents.sort_unstable();
        incidents.dedup();
        if !touched.whole_turn {
            let keys: Vec<i64> = incidents.iter().copied().map(incident_key).collect();
            self.store.lock_keys(&keys).await?;
        }
        let mut slice = if incidents.is_empty() {
            OpenState::default()
        } else {
            self.store.load_slice(&incidents).await?
        };
        slice.alerts.extend(
            alerts
                .into_iter()
                .filter(|(_, alert)| alert.incident_id.is_none()),
        );
        slice.flaps = flaps;
        self.absorb(touched, &incidents, slice);
        if !touched.inhibit_keys.is_empty() {
            let held = self.store.inhibitors(Some(&touched.inhibit_keys)).await?;
            self.decider
                .view
                .inhibitors
                .replace(&touched.inhibit_keys, held);
        }
        Ok(())
    }

    /// Replaces the view's entries for the identities, groups and incidents read.
    fn absorb(&mut self, touched: &Touched, incidents: &[i64], slice: OpenState) {
        let view = &mut self.decider.view;
        for key in &touched.identities {
            view.alerts.remove(key);
            view.flaps.remove(key);
        }
        view.flaps.extend(slice.flaps);
        view.alerts.forget_incidents(incidents);
        for id in incidents {
            view.timers.end(*id);
            if let Some(open) = view.incidents.remove(id) {
                view.open_per_priority[open.incident.priority.index()] -= 1;
                if let Some(group) = &open.incident.group_key
                    && view.groups.get(group) == Some(id)
                {
                    view.groups.remove(group);
                }
            }
        }
        for group in &touched.groups {
            view.groups.remove(group);
        }
        let mut senders = Vec::new();
        for (key, alert) in slice.alerts {
            if let Some(incident_id) = alert.incident_id {
                senders.push((incident_id, key.source.clone()));
            }
            view.alerts.insert(key, alert);
        }
        view.add_open(slice.incidents, senders);
        for timer in slice.escalations {
            view.timers.set(timer);
        }
    }

    /// Enough ids in every pool for what the batch may create: an alert per alert
    /// and heartbeat, an incident per alert that may open one, command and
    /// heartbeat, the runs those may start, a silence per command or downtime.
    async fn top_up_ids(&mut self, touched: &Touched, commands: usize) -> Result<(), StoreError> {
        let heartbeats = self.decider.config.heartbeats.len() as i64;
        let commands = commands as i64;
        let runbooks = self.decider.config.runbooks_enabled.len() as i64;
        // The timer pass opens the incidents of alerts that stopped flapping.
        let incidents =
            touched.opening + commands + heartbeats + self.decider.view.flaps.len() as i64;
        for table in IdTable::ALL {
            let missing = self.decider.view.ids.pool(table).take_missing();
            let needed = missing
                + match table {
                    IdTable::Alerts => touched.alerts + heartbeats,
                    IdTable::Incidents => incidents,
                    IdTable::Silences => touched.downtimes + commands,
                    IdTable::Runs => incidents * runbooks + commands,
                };
            let available = self.decider.view.ids.pool(table).available();
            if available < needed {
                let blocks = self.store.reserve_ids(table, needed - available).await?;
                self.decider.view.ids.pool(table).add(blocks);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, AlertStatus, Severity};
    use std::sync::Arc;

    fn config(extra: &str) -> Config {
        let rules = "[[rules]]\nname = \"per host\"\nmatch = ['severity=\"critical\"']\ngroup_by = [\"resource\"]\n";
        Config::parse(&format!("{extra}\n{rules}"), "test.toml").unwrap()
    }

    fn alert(resource: &str, severity: Severity, action: AlertAction) -> Alert {
        Alert {
            source: "generic".into(),
            dedup_key: format!("{resource}/disk"),
            resource: resource.into(),
            check: "disk".into(),
            severity,
            status: AlertStatus::Firing,
            action,
            summary: String::new(),
            details: serde_json::Value::Null,
            labels: Default::default(),
            links: Vec::new(),
            occurred_at: None,
        }
    }

    fn queued(command: Command) -> Queued {
        Queued {
            command,
            idempotency: None,
            admission: Arc::default(),
        }
    }

    fn ingest(alerts: Vec<Alert>) -> Queued {
        queued(Command::Ingest {
            alerts,
            once: None,
            reply: tokio::sync::oneshot::channel().0,
        })
    }

    fn act(incident_id: i64) -> Queued {
        queued(Command::Act {
            incident_id,
            action: super::super::Action::Note { text: "n".into() },
            actor: "alice".into(),
            once: None,
            reply: tokio::sync::oneshot::channel().0,
        })
    }

    #[test]
    fn alerts_and_actions_touch_their_identities_groups_and_incidents_only() {
        let web = || alert("web-1", Severity::Critical, AlertAction::Report);
        let touched = Touched::of(
            &[
                ingest(vec![
                    web(),
                    alert("db-1", Severity::Warning, AlertAction::Report),
                ]),
                ingest(vec![web()]),
                act(7),
                act(3),
                act(7),
            ],
            &config(""),
        );
        assert!(!touched.whole_turn);
        assert_eq!(
            touched.identities,
            vec![
                DedupKey::of(&alert("db-1", Severity::Warning, AlertAction::Report)),
                DedupKey::of(&web())
            ]
        );
        assert_eq!(touched.groups.len(), 1, "{:?}", touched.groups);
        assert_eq!(touched.incidents, vec![3, 7]);
        assert_eq!(
            (touched.alerts, touched.opening),
            (3, 2),
            "a P3 opens no incident"
        );
        assert_eq!(touched.first_keys().len(), 3);
        assert!(
            touched
                .first_keys()
                .iter()
                .all(|key| (FIRST..INCIDENTS).contains(key))
        );
        assert!((INCIDENTS..INCIDENTS + BUCKETS).contains(&incident_key(i64::MAX)));
    }

    #[test]
    fn timers_and_downtimes_take_the_whole_turn_and_inhibition_is_keyed() {
        let tick = queued(Command::Tick {
            reply: tokio::sync::oneshot::channel().0,
        });
        assert!(Touched::of(&[tick], &config("")).whole_turn);
        let downtime = ingest(vec![alert(
            "web-1",
            Severity::Warning,
            AlertAction::DowntimeStart,
        )]);
        let touched = Touched::of(&[downtime], &config(""));
        assert!(touched.whole_turn);
        assert_eq!(touched.downtimes, 1);
        let inhibit = "[[inhibit]]\nsource_match = ['check=\"down\"']\ntarget_match = ['check!=\"down\"']\nequal = [\"resource\"]\n";
        let plain = ingest(vec![alert("web-1", Severity::Warning, AlertAction::Report)]);
        let touched = Touched::of(&[plain], &config(inhibit));
        assert!(!touched.whole_turn, "inhibition is keyed");
        assert_eq!(
            touched.inhibit_keys.len(),
            1,
            "the key it may be inhibited by"
        );
        assert_eq!(touched.first_keys().len(), 2, "its identity and that key");
    }

    #[test]
    fn lock_keys_are_stable_and_tell_parts_apart() {
        assert_eq!(
            lock_key(b'a', &["generic", "x"]),
            lock_key(b'a', &["generic", "x"])
        );
        assert_ne!(lock_key(b'a', &["ab", "c"]), lock_key(b'a', &["a", "bc"]));
        assert_ne!(lock_key(b'g', &["x"]), lock_key(b'a', &["x"]));
        // Pinned: replicas of different builds must agree.
        assert_eq!(
            incident_key(1),
            INCIDENTS + lock_key(b'i', &["1"]).rem_euclid(512)
        );
        assert_eq!(lock_key(b'g', &[]), {
            let hash = (0xcbf2_9ce4_8422_2325_u64 ^ u64::from(b'g')).wrapping_mul(0x0100_0000_01b3);
            i64::from_ne_bytes(hash.to_ne_bytes())
        });
    }
}
