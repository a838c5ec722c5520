//! Silences and heartbeats inside the writer: both change what an alert does, so
//! they are ordered with ingest and committed with it.

use super::decide::Decider;
use super::{Effects, PipelineError};
use crate::alert::{Alert, AlertAction, AlertStatus, Labels, Severity};
use crate::clock::rfc3339;
use crate::dedup::DedupKey;
use crate::incident::TimelineKind;
use crate::silence::Silence;
use crate::store::WriteBatch;
use chrono::{DateTime, Utc};

/// A new silence as the API received it.
#[derive(Debug, Clone)]
pub struct NewSilence {
    pub matchers: Vec<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

/// What to do with silences.
#[derive(Debug, Clone)]
pub enum SilenceChange {
    Add(NewSilence),
    Expire(i64),
}

/// The source name of heartbeat alerts.
pub const HEARTBEAT_SOURCE: &str = "heartbeat";

impl Decider {
    pub(super) fn change_silence(
        &mut self,
        change: SilenceChange,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> Result<Silence, PipelineError> {
        match change {
            SilenceChange::Add(new) => {
                // A start in the past means now.
                let starts_at = new.starts_at.map_or(now, |start| start.max(now));
                if new.ends_at <= starts_at {
                    return Err(PipelineError::Invalid(
                        "ends_at: must be after starts_at and in the future".into(),
                    ));
                }
                // As check-config refuses durations over 10 years.
                if new.ends_at > now + chrono::TimeDelta::days(3653) {
                    return Err(PipelineError::Invalid(
                        "ends_at: is more than 10 years ahead; give the silence an end within 10 years (expire it sooner with DELETE)".into(),
                    ));
                }
                let silence = Silence::new(
                    self.view.ids.silences.take(),
                    new.matchers,
                    starts_at,
                    new.ends_at,
                    new.created_by,
                    new.comment,
                    now,
                )
                .map_err(|error| PipelineError::Invalid(error.to_string()))?;
                batch.upsert_silence(&silence);
                self.view.silences.push(silence.clone());
                Ok(silence)
            }
            SilenceChange::Expire(id) => {
                let silence = self
                    .view
                    .silences
                    .iter_mut()
                    .find(|silence| silence.id == id)
                    .ok_or(PipelineError::Missing(format!(
                        "silence {id} does not exist"
                    )))?;
                if silence.ends_at > now {
                    silence.ends_at = now;
                    if silence.starts_at > now {
                        silence.starts_at = now;
                    }
                    batch.upsert_silence(silence);
                }
                Ok(silence.clone())
            }
        }
    }

    /// Once a minute: ended silences leave the view (every alert is checked against
    /// it), and the store deletes silences and idempotent answers past retention.
    pub(super) fn prune(&mut self, now: DateTime<Utc>, batch: &mut WriteBatch) {
        if self
            .pruned_at
            .is_some_and(|at| now - at < chrono::TimeDelta::minutes(1))
        {
            return;
        }
        self.pruned_at = Some(now);
        self.view.silences.retain(|silence| silence.ends_at > now);
        batch.prune(crate::store::Prune {
            answers_before: now - super::IDEMPOTENCY_WINDOW,
            silences_ended_before: now - self.config.silence_retention,
            keys_used_before: now
                - (self.config.ack_link_ttl + chrono::TimeDelta::hours(1))
                    .max(chrono::TimeDelta::days(30)),
            timestamped_signatures_used_before: now - chrono::TimeDelta::minutes(10),
            changes_before: now - self.config.changes.retention,
        });
    }

    /// A sender's scheduled downtime silences that one alert identity (for at most
    /// a week, since the sender does not say when it ends); its end lifts the silence.
    pub(super) fn sender_downtime(
        &mut self,
        alert: &Alert,
        start: bool,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> Result<(), PipelineError> {
        let escape = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
        let matchers = vec![
            format!("source=\"{}\"", escape(&alert.source)),
            format!("dedup_key=\"{}\"", escape(&alert.dedup_key)),
        ];
        if start {
            let comment = alert.labels.get("author").map_or_else(
                || format!("downtime set in {}", alert.source),
                |author| format!("downtime set in {} by {author}", alert.source),
            );
            let ends_at = now + chrono::TimeDelta::days(7);
            // A repeated DOWNTIMESTART (Nagios sends one per notification) extends the
            // silence it already made instead of piling up another.
            if let Some(silence) = self.view.silences.iter_mut().find(|silence| {
                silence.matchers == matchers
                    && silence.created_by == alert.source
                    && silence.is_active(now)
            }) {
                silence.ends_at = silence.ends_at.max(ends_at);
                silence.comment = comment;
                batch.upsert_silence(silence);
                return Ok(());
            }
            let new = NewSilence {
                matchers,
                starts_at: None,
                ends_at,
                created_by: alert.source.clone(),
                comment,
            };
            self.change_silence(SilenceChange::Add(new), now, batch)
                .map(|_| ())
        } else {
            // Only the sender's own silences: a person's silence of the same alert (a
            // seven-week disk replacement) outlives the sender's short downtime.
            let ended: Vec<i64> = self
                .view
                .silences
                .iter()
                .filter(|silence| {
                    silence.matchers == matchers
                        && silence.created_by == alert.source
                        && silence.is_active(now)
                })
                .map(|silence| silence.id)
                .collect();
            for id in ended {
                self.change_silence(SilenceChange::Expire(id), now, batch)?;
            }
            Ok(())
        }
    }

    /// A check-in: remembered, and it resolves the heartbeat's alert if one fires.
    pub(super) fn beat(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        if !self.config.heartbeats.iter().any(|beat| beat.name == name) {
            return Err(PipelineError::Missing(format!(
                "heartbeat {name:?} is not configured; add a [[heartbeats]] entry"
            )));
        }
        self.view.heartbeats.insert(name.to_string(), now);
        batch.beat(name, now);
        if self.view.alerts.get(&heartbeat_key(name)).is_some() {
            self.ingest(
                heartbeat_alert(
                    name,
                    AlertStatus::Resolved,
                    format!("{name} checked in again"),
                ),
                now,
                batch,
                effects,
            )?;
        }
        Ok(())
    }

    /// Opens a P1 for every heartbeat past its deadline that is not already firing.
    /// A heartbeat never seen counts from the first check after start.
    pub(super) fn check_heartbeats(
        &mut self,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let config = self.config.clone();
        for heartbeat in &config.heartbeats {
            let Some(last) = self.view.heartbeats.get(&heartbeat.name).copied() else {
                self.view.heartbeats.insert(heartbeat.name.clone(), now);
                batch.beat(&heartbeat.name, now);
                continue;
            };
            let deadline = last + heartbeat.interval + heartbeat.grace;
            if now > deadline
                && self
                    .view
                    .alerts
                    .get(&heartbeat_key(&heartbeat.name))
                    .is_none()
            {
                let summary = format!(
                    "monitoring is silent: no check-in from {} since {}",
                    heartbeat.name,
                    rfc3339(last)
                );
                self.ingest(
                    heartbeat_alert(&heartbeat.name, AlertStatus::Firing, summary),
                    now,
                    batch,
                    effects,
                )?;
            }
        }
        Ok(())
    }
}

/// The alert identity of a heartbeat.
pub(super) fn heartbeat_key(name: &str) -> DedupKey {
    DedupKey {
        source: HEARTBEAT_SOURCE.into(),
        key: name.to_string(),
    }
}

fn heartbeat_alert(name: &str, status: AlertStatus, summary: String) -> Alert {
    let mut labels = Labels::new();
    labels.insert("heartbeat".into(), name.to_string());
    Alert {
        source: HEARTBEAT_SOURCE.into(),
        dedup_key: name.to_string(),
        resource: name.to_string(),
        check: "heartbeat".into(),
        severity: Severity::Critical,
        status,
        action: AlertAction::Report,
        summary,
        details: serde_json::Value::Null,
        labels,
        links: Vec::new(),
        occurred_at: None,
    }
}

impl Decider {
    /// Records a state change of `key`; returns whether the alert is flapping. When
    /// this change starts the flapping, the alert's last incident is marked and its
    /// timeline says paging is paused.
    pub(super) fn state_changed(
        &mut self,
        key: &DedupKey,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> bool {
        let config = self.config.flapping;
        let flap = self.view.flaps.entry(key.clone()).or_default();
        let started = flap.change(now, config);
        let flapping = flap.flapping;
        let incident_id = flap.incident_id;
        batch.keep_flap(key, flap);
        if started {
            if let Some(open) = self.view.alerts.get_mut(key) {
                open.flapping = true;
                batch.update_alert(
                    open.id,
                    super::alerts::update_of(open, AlertStatus::Firing, None),
                );
            }
            if let Some(incident_id) = incident_id {
                self.mark_flapping(incident_id, true, now, batch);
            }
        }
        flapping
    }

    fn mark_flapping(
        &mut self,
        incident_id: i64,
        flapping: bool,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) {
        let config = self.config.flapping;
        let message = if flapping {
            format!(
                "flapping: {} state changes within {} min; no new incident or page until it settles",
                config.changes,
                config.window.num_minutes()
            )
        } else {
            "stopped flapping".to_string()
        };
        if let Some(open) = self.view.incidents.get_mut(&incident_id) {
            open.incident.flapping = flapping;
            batch.upsert_incident(&open.incident);
        } else if let Some(mut incident) = self.closed_incident(incident_id, batch) {
            incident.flapping = flapping;
            batch.upsert_incident(&incident);
        }
        batch.record(super::entry(
            incident_id,
            now,
            TimelineKind::Flapping,
            "tocsin",
            message,
        ));
    }

    /// Alerts that stopped flapping: a still-firing one opens its incident now (the
    /// problem is real); forgotten history is dropped.
    pub(super) fn settle_flapping(
        &mut self,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) {
        let config = self.config.flapping;
        let settled: Vec<DedupKey> = self
            .view
            .flaps
            .iter()
            .filter(|(_, flap)| flap.settled(now, config))
            .map(|(key, _)| key.clone())
            .collect();
        for key in settled {
            batch.forget_flap(&key);
            let incident_id = self
                .view
                .flaps
                .remove(&key)
                .and_then(|flap| flap.incident_id);
            if let Some(incident_id) = incident_id {
                self.mark_flapping(incident_id, false, now, batch);
            }
            let Some(open) = self.view.alerts.get(&key).cloned() else {
                continue;
            };
            let Some(alert) = self.facts.alerts.get(&open.id).cloned() else {
                continue;
            };
            if let Some(open) = self.view.alerts.get_mut(&key) {
                open.flapping = false;
            }
            self.reopen_quiet_alert(&key, alert, now, batch, effects);
        }
        self.view.flaps.retain(|key, flap| {
            let idle = flap.is_idle(now, config);
            if idle {
                batch.forget_flap(key);
            }
            !idle
        });
    }
}

impl Decider {
    /// Records the SLA warnings and breaches due now on open incidents, and escalates
    /// a response breach when the priority's `escalate_on_breach` says so.
    pub(super) fn check_sla(
        &mut self,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let warn_at = self.config.incidents.sla_warn_at;
        if warn_at != self.view.sla_warn_at {
            self.view.schedule_all_sla(warn_at);
        }
        // Only the incidents whose next warning or breach has come are looked at:
        // walking every open one took 10-15 ms per tick with 109,000 open, and every
        // writer batch waited behind it.
        let mut due = Vec::new();
        for id in self.view.sla.take_due(now) {
            let Some(open) = self.view.incidents.get_mut(&id) else {
                continue;
            };
            let events = open.incident.due_sla_events(now, warn_at);
            self.view.schedule_sla(id);
            if !events.is_empty() {
                due.push((id, events));
            }
        }
        for (id, events) in due {
            let breach = self.record_sla(id, &events, now, batch, effects);
            if breach && let Some(open) = self.view.incidents.get(&id) {
                let priority = open.incident.priority;
                if self.config.sla_for(priority).escalate_on_breach {
                    match self.escalate_now(id, "tocsin (SLA breach)", now, batch, effects) {
                        Ok(_) | Err(PipelineError::NotPossible(_)) => {}
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        Ok(())
    }

    /// Records what is due for one incident; returns whether a response breach was
    /// among it.
    pub(super) fn record_sla_events(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
        warn_at: f64,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> bool {
        let Some(open) = self.view.incidents.get_mut(&id) else {
            return false;
        };
        if open.incident.drill {
            return false;
        }
        let events = open.incident.due_sla_events(now, warn_at);
        self.view.schedule_sla(id);
        self.record_sla(id, &events, now, batch, effects)
    }

    /// Records SLA events already marked on the incident; returns whether a response
    /// breach was among them.
    fn record_sla(
        &self,
        id: i64,
        events: &[crate::sla::SlaEvent],
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> bool {
        let Some(open) = self.view.incidents.get(&id) else {
            return false;
        };
        if events.is_empty() {
            return false;
        }
        let incident = &open.incident;
        let mut response_breach = false;
        for event in events {
            let (kind, message) = match event {
                crate::sla::SlaEvent::Warning(clock) => {
                    let due = if *clock == crate::sla::Clock::Response {
                        incident.response_due
                    } else {
                        incident.resolve_due
                    };
                    (
                        TimelineKind::SlaWarning,
                        format!(
                            "{} SLA: {} min left (due {})",
                            clock.as_str(),
                            (due - now).num_minutes(),
                            rfc3339(due)
                        ),
                    )
                }
                crate::sla::SlaEvent::Breach(clock) => {
                    effects
                        .sla_breaches
                        .push((incident.priority, clock.as_str()));
                    response_breach |= *clock == crate::sla::Clock::Response;
                    let due = if *clock == crate::sla::Clock::Response {
                        incident.response_due
                    } else {
                        incident.resolve_due
                    };
                    (
                        TimelineKind::SlaBreach,
                        format!(
                            "{} SLA breached: it was due {}",
                            clock.as_str(),
                            rfc3339(due)
                        ),
                    )
                }
            };
            batch.record(super::entry(id, now, kind, "tocsin", message));
        }
        batch.upsert_incident(incident);
        response_breach
    }
}

#[cfg(test)]
mod tests {
    use super::super::decide::testing::{alert, at, decider, ingest, p1, toggle};
    use super::*;

    /// A downtime of any identity a sender can send makes a silence of exactly that
    /// identity: a refused one would fail its alert half-way through a request.
    #[test]
    fn a_downtime_silences_any_identity_exactly_and_its_end_lifts_it() {
        let mut decider = decider("");
        let hostile = [
            "a\"b",
            "ends\\",
            "two\nlines",
            "\\\"",
            "\"",
            "\\n",
            " padded ",
        ];
        for (n, key) in hostile.iter().enumerate() {
            let mut down = alert("db-01", Severity::Warning, AlertStatus::Firing);
            down.source = format!("nagios\\{key}");
            down.dedup_key = (*key).to_string();
            let mut batch = WriteBatch::default();
            decider
                .sender_downtime(&down, true, at(n as i64), &mut batch)
                .unwrap_or_else(|error| panic!("{key:?}: {error}"));
            let silence = decider.view.silences.last().unwrap().clone();
            assert!(silence.matches(&down), "{key:?}: {:?}", silence.matchers);
            let mut other = down.clone();
            other.dedup_key = format!("{key}x");
            assert!(!silence.matches(&other), "{key:?} only");
            decider
                .sender_downtime(&down, false, at(n as i64), &mut batch)
                .unwrap();
            assert!(
                !decider
                    .view
                    .silences
                    .iter()
                    .any(|s| s.is_active(at(n as i64)))
            );
        }
    }

    /// A sender's downtime ending lifts the silence it made, never one a person made
    /// of the same alert.
    #[test]
    fn a_downtime_end_leaves_a_persons_silence_of_the_same_alert() {
        let mut decider = decider("");
        let down = alert("db-01", Severity::Warning, AlertStatus::Firing);
        let mut batch = WriteBatch::default();
        let person = NewSilence {
            matchers: vec![
                format!("source=\"{}\"", down.source),
                format!("dedup_key=\"{}\"", down.dedup_key),
            ],
            starts_at: None,
            ends_at: at(0) + chrono::TimeDelta::days(49),
            created_by: "alice".into(),
            comment: "disk replacement".into(),
        };
        decider
            .change_silence(SilenceChange::Add(person), at(0), &mut batch)
            .unwrap();
        decider
            .sender_downtime(&down, true, at(1), &mut batch)
            .unwrap();
        decider
            .sender_downtime(&down, false, at(2), &mut batch)
            .unwrap();
        let active: Vec<&str> = decider
            .view
            .silences
            .iter()
            .filter(|silence| silence.is_active(at(3)))
            .map(|silence| silence.created_by.as_str())
            .collect();
        assert_eq!(active, ["alice"]);
    }

    #[test]
    fn a_silent_heartbeat_opens_one_p1_and_its_check_in_resolves_it() {
        let mut decider =
            decider("[[heartbeats]]\nname = \"backup\"\ninterval = \"1h\"\ngrace = \"5m\"\n");
        let check = |decider: &mut Decider, now| {
            let mut batch = WriteBatch::default();
            decider
                .check_heartbeats(now, &mut batch, &mut Effects::default())
                .unwrap();
            batch
        };
        // Never seen: counted from the first check.
        assert_eq!(check(&mut decider, at(0)).heartbeats().count(), 1);
        assert!(
            check(&mut decider, at(65)).incidents().next().is_none(),
            "within its grace"
        );
        let batch = check(&mut decider, at(66));
        let opened: Vec<_> = batch.incidents().collect();
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].priority, crate::alert::Priority::P1);
        assert!(
            opened[0].summary.contains("no check-in from backup"),
            "{}",
            opened[0].summary
        );
        assert!(
            check(&mut decider, at(67)).is_empty(),
            "already firing: one P1"
        );

        let mut batch = WriteBatch::default();
        decider
            .beat("backup", at(70), &mut batch, &mut Effects::default())
            .unwrap();
        assert!(
            batch
                .incidents()
                .all(|incident| incident.resolved_at == Some(at(70)))
        );
        assert!(decider.view.incidents.is_empty());
    }

    #[test]
    fn a_silenced_alert_opens_no_incident_until_its_silence_ends() {
        let mut decider = decider("");
        let mut batch = WriteBatch::default();
        let silence = decider
            .change_silence(
                SilenceChange::Add(NewSilence {
                    matchers: vec!["resource=\"db-01\"".into()],
                    starts_at: None,
                    ends_at: at(60),
                    created_by: "alice".into(),
                    comment: "migration".into(),
                }),
                at(0),
                &mut batch,
            )
            .unwrap();
        assert_eq!(batch.silences().len(), 1);
        let firing = || alert("db-01", Severity::Critical, AlertStatus::Firing);
        let (accepted, batch) = ingest(&mut decider, firing(), at(1));
        assert_eq!(accepted.incident_id, None);
        assert!(batch.notifications().is_empty());

        let mut batch = WriteBatch::default();
        decider
            .change_silence(SilenceChange::Expire(silence.id), at(2), &mut batch)
            .unwrap();
        let (accepted, _) = ingest(&mut decider, firing(), at(3));
        assert!(accepted.incident_id.is_some(), "the repeat after it pages");
    }

    #[test]
    fn an_alert_that_stops_flapping_opens_its_incident_from_the_alert_read_before() {
        let mut decider = decider("[flapping]\nchanges = 3\nwindow = \"10m\"\n");
        let first = p1(&mut decider, "db-01", at(0));
        toggle(&mut decider, "db-01", 1..=2);
        let key = DedupKey::of(&alert("db-01", Severity::Critical, AlertStatus::Firing));
        assert!(decider.view.flaps[&key].flapping);
        let open = decider.view.alerts.get(&key).unwrap().id;
        let settle = |decider: &mut Decider, now| {
            let mut batch = WriteBatch::default();
            decider.settle_flapping(now, &mut batch, &mut Effects::default());
            batch
        };
        assert!(
            settle(&mut decider, at(5)).is_empty(),
            "still within the window"
        );
        // The timer pass read the whole alert before deciding.
        decider.facts.alerts.insert(
            open,
            alert("db-01", Severity::Critical, AlertStatus::Firing),
        );
        let batch = settle(&mut decider, at(12));
        let opened: Vec<_> = batch
            .incidents()
            .filter(|incident| incident.id != first)
            .collect();
        assert_eq!(opened.len(), 1, "the problem is real: it pages now");
        assert!(!decider.view.flaps.contains_key(&key));
    }
}
