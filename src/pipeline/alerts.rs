//! What senders post: new alerts, repeats, resolves and sender acknowledgements.

use super::decide::Decider;
use super::{Accepted, Effects, OpenIncident, PipelineError, entry};
use crate::alert::{Alert, AlertAction, AlertStatus};
use crate::dedup::{Decision, DedupKey, OpenAlert};
use crate::incident::{Incident, Opening, TimelineKind};
use crate::rules::{Classification, classify};
use crate::silence::silenced_by;
use crate::store::{AlertRecord, AlertUpdate, WriteBatch};
use chrono::{DateTime, Utc};

fn count(counts: &mut std::collections::HashMap<String, u64>, source: &str) {
    match counts.get_mut(source) {
        Some(count) => *count += 1,
        None => {
            counts.insert(source.to_string(), 1);
        }
    }
}

/// The stored form of an open alert's current state.
pub(super) fn update_of(
    open: &OpenAlert,
    status: AlertStatus,
    resolved_at: Option<DateTime<Utc>>,
) -> AlertUpdate {
    AlertUpdate {
        count: open.count,
        last_seen: open.last_seen,
        status,
        resolved_at,
        incident_id: open.incident_id,
        silenced: open.silenced,
        inhibited: open.inhibited,
        flapping: open.flapping,
    }
}

impl Decider {
    /// A silenced alert that fires again after its silence ended opens (or joins)
    /// its incident now, as if it had just fired.
    fn maybe_unsilence(
        &mut self,
        alert: &Alert,
        key: &DedupKey,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) {
        let (silenced, inhibited) = self.quiet(alert, key, now);
        if silenced || inhibited {
            if let Some(open) = self.view.alerts.get_mut(key)
                && (open.silenced, open.inhibited) != (silenced, inhibited)
            {
                (open.silenced, open.inhibited) = (silenced, inhibited);
                batch.update_alert(open.id, update_of(open, AlertStatus::Firing, None));
            }
            return;
        }
        self.reopen_quiet_alert(key, alert.clone(), now, batch, effects);
    }

    /// Whether `alert` is kept quiet now: (silenced by a silence or a maintenance
    /// window, inhibited by a firing source alert).
    fn quiet(&self, alert: &Alert, key: &DedupKey, now: DateTime<Utc>) -> (bool, bool) {
        let silenced = silenced_by(&self.view.silences, alert, now).is_some()
            || self
                .config
                .maintenance
                .iter()
                .any(|window| window.covers(alert, now));
        let inhibited = self
            .view
            .inhibitors
            .inhibits(&self.config.inhibit, &key.joined(), alert);
        (silenced, inhibited)
    }

    /// An open alert that was kept quiet (silenced or flapping) and no longer is:
    /// it opens or joins its incident now, unless it already has one.
    pub(super) fn reopen_quiet_alert(
        &mut self,
        key: &DedupKey,
        alert: Alert,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) {
        if self
            .view
            .alerts
            .get(key)
            .is_some_and(|open| open.incident_id.is_some())
        {
            if let Some(open) = self.view.alerts.get_mut(key) {
                open.silenced = false;
                batch.update_alert(open.id, update_of(open, AlertStatus::Firing, None));
            }
            return;
        }
        let alert = &alert;
        let classification = classify(alert, &self.config.rules);
        let incident_id = if self
            .config
            .incidents
            .auto_open
            .contains(&classification.priority)
        {
            Some(self.incident_for(alert, &classification, now, batch, effects))
        } else {
            None
        };
        if let Some(open) = self.view.alerts.get_mut(key) {
            open.silenced = false;
            open.inhibited = false;
            open.incident_id = incident_id;
            batch.update_alert(open.id, update_of(open, AlertStatus::Firing, None));
        }
    }

    pub(super) fn ingest(
        &mut self,
        alert: Alert,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Accepted, PipelineError> {
        let key = DedupKey::of(&alert);
        count(&mut effects.received, &alert.source);
        match alert.action {
            AlertAction::Acknowledge => {
                let said = sender_said(&alert);
                return self.sender_acknowledges(&key, &alert.source, &said, now, batch, effects);
            }
            AlertAction::DowntimeStart => self.sender_downtime(&alert, true, now, batch)?,
            AlertAction::DowntimeEnd => self.sender_downtime(&alert, false, now, batch)?,
            AlertAction::Report => {}
        }
        match self.view.alerts.decide(&key, alert.status) {
            Decision::Open => {
                // Only identities that resolved recently have a history to check; a
                // flood of new alerts creates none.
                let flapping = if self.view.flaps.contains_key(&key) {
                    self.state_changed(&key, now, batch)
                } else {
                    false
                };
                let accepted = self.open_alert(alert, flapping, now, batch, effects);
                if let Some(flap) = self.view.flaps.get_mut(&key)
                    && accepted.incident_id.is_some()
                {
                    flap.incident_id = accepted.incident_id;
                    batch.keep_flap(&key, flap);
                }
                Ok(accepted)
            }
            Decision::Repeat(id) => {
                count(&mut effects.deduplicated, &alert.source);
                let open = self
                    .view
                    .alerts
                    .get_mut(&key)
                    .ok_or(PipelineError::NotFound(id))?;
                open.count += 1;
                open.last_seen = now;
                let was_silenced = open.silenced || open.inhibited;
                batch.update_alert(id, update_of(open, AlertStatus::Firing, None));
                if was_silenced {
                    self.maybe_unsilence(&alert, &key, now, batch, effects);
                }
                let incident_id = self.view.alerts.get(&key).and_then(|open| open.incident_id);
                Ok(Accepted {
                    id: Some(id),
                    dedup_key: key.key,
                    incident_id,
                })
            }
            Decision::Resolve(_) => {
                if !self.view.flaps.contains_key(&key)
                    && let Some(open) = self.view.alerts.get(&key)
                {
                    // The history starts with the firing this resolve ends.
                    let mut flap = crate::flapping::Flap::default();
                    flap.change(open.last_seen, self.config.flapping);
                    flap.incident_id = open.incident_id;
                    self.view.flaps.insert(key.clone(), flap);
                }
                self.state_changed(&key, now, batch);
                self.resolve_alert(&key, &alert.source, now, batch, effects)
            }
            Decision::Stale => Ok(self.stale_follow_up(key)),
        }
    }

    /// Opens an alert. A flapping alert opens no incident and pages no one: it waits
    /// to settle (see `settle_flapping`).
    pub(super) fn open_alert(
        &mut self,
        alert: Alert,
        flapping: bool,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Accepted {
        let classification = classify(&alert, &self.config.rules);
        let id = self.view.ids.alerts.take();
        let key = DedupKey::of(&alert);
        let (silenced, inhibited) = self.quiet(&alert, &key, now);
        let auto_open = self
            .config
            .incidents
            .auto_open
            .contains(&classification.priority);
        let incident_id = if auto_open && !silenced && !inhibited && !flapping {
            Some(self.incident_for(&alert, &classification, now, batch, effects))
        } else {
            None
        };
        self.hold_inhibitors(&key, &alert, batch);
        self.view.alerts.insert(
            key.clone(),
            OpenAlert {
                id,
                incident_id,
                priority: classification.priority,
                count: 1,
                last_seen: now,
                silenced,
                inhibited,
                flapping,
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
            silenced,
            inhibited,
            flapping,
        });
        Accepted {
            id: Some(id),
            dedup_key: key.key,
            incident_id,
        }
    }

    /// Joins the open incident of the alert's group when it is inside the group
    /// window, else opens a new one and starts paging.
    fn incident_for(
        &mut self,
        alert: &Alert,
        classification: &Classification,
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
            open.mixed |= incident.source != alert.source;
            open.firing += 1;
            incident.alert_count += 1;
            incident.last_alert_at = now;
            batch.record(entry(
                incident_id,
                now,
                TimelineKind::AlertAdded,
                &alert.source,
                format!("{} on {} joined the incident", alert.check, alert.resource),
            ));
            batch.upsert_incident(incident);
            self.raise_priority(
                incident_id,
                classification.priority,
                &alert.source,
                now,
                batch,
            );
            return incident_id;
        }
        let id = self.view.ids.incidents.take();
        let mut incident = Incident::open(
            id,
            alert,
            classification,
            self.config.sla_for(classification.priority),
            now,
        );
        incident.links = links_of(&self.config, alert, classification);
        let rule = classification
            .rule
            .as_deref()
            .map_or(String::new(), |rule| format!(" by rule {rule:?}"));
        let opening = Opening {
            alert: alert.dedup_key.clone(),
            rule: classification.rule.clone(),
        };
        batch.record(entry(
            id,
            now,
            TimelineKind::Opened(opening),
            &alert.source,
            format!("opened as {}{rule}: {}", incident.priority, alert.summary),
        ));
        self.start_paging(&mut incident, now, batch, effects);
        self.start_runbooks(alert, classification, &incident, now, batch, effects);
        Self::notify_stakeholders(&self.config, &incident, "opened", now, batch);
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
                mixed: false,
            },
        );
        self.view.schedule_sla(id);
        id
    }

    fn resolve_alert(
        &mut self,
        key: &DedupKey,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Accepted, PipelineError> {
        let Some(open) = self.view.alerts.remove(key) else {
            return Ok(Accepted {
                id: None,
                dedup_key: key.key.clone(),
                incident_id: None,
            });
        };
        self.release_inhibitors(key, batch);
        let mut update = update_of(&open, AlertStatus::Resolved, Some(now));
        update.last_seen = now;
        batch.update_alert(open.id, update);
        if let Some(incident_id) = open.incident_id {
            self.alert_of_incident_resolved(incident_id, key, actor, now, batch, effects)?;
        }
        Ok(Accepted {
            id: Some(open.id),
            dedup_key: key.key.clone(),
            incident_id: open.incident_id,
        })
    }

    fn alert_of_incident_resolved(
        &mut self,
        incident_id: i64,
        key: &DedupKey,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let Some(open) = self.view.incidents.get_mut(&incident_id) else {
            return Ok(());
        };
        open.firing -= 1;
        batch.record(entry(
            incident_id,
            now,
            TimelineKind::AlertResolved,
            actor,
            format!("alert {} resolved", key.key),
        ));
        if open.firing > 0 || !self.config.incidents.auto_resolve {
            return Ok(());
        }
        self.resolve_incident(
            incident_id,
            "tocsin",
            "every alert resolved: incident resolved automatically".into(),
            now,
            batch,
            effects,
        )
        .map(|_| ())
    }

    /// A PagerDuty-style `acknowledge` from the sender acknowledges the alert's incident.
    fn sender_acknowledges(
        &mut self,
        key: &DedupKey,
        actor: &str,
        said: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Accepted, PipelineError> {
        let Some(open) = self.view.alerts.get(key).cloned() else {
            return Ok(self.stale_follow_up(key.clone()));
        };
        let others = open.incident_id.and_then(|id| {
            self.view
                .incidents
                .get(&id)
                .filter(|incident| incident.mixed || incident.incident.source != actor)
                .map(|_| id)
        });
        if let Some(incident_id) = others {
            // A sender speaks for its own alerts only: one sender's token must not
            // silence the paging of an incident other senders' alerts also raised.
            batch.record(entry(
                incident_id,
                now,
                TimelineKind::AlertAcknowledged,
                actor,
                format!(
                    "{actor} acknowledged its alert {}; the incident has alerts from other senders and stays as it is",
                    key.key
                ),
            ));
        } else if let Some(incident_id) = open.incident_id {
            self.acknowledge_incident(
                incident_id,
                actor,
                format!("acknowledged by the sender ({actor}){said}"),
                now,
                batch,
                effects,
            )?;
        }
        Ok(Accepted {
            id: Some(open.id),
            dedup_key: key.key.clone(),
            incident_id: open.incident_id,
        })
    }

    /// A firing alert holds the inhibitor keys of the rules whose source it matches,
    /// in the view and, with replicas, in the store, where their batches read them.
    fn hold_inhibitors(&mut self, key: &DedupKey, alert: &Alert, batch: &mut WriteBatch) {
        if self.config.inhibit.is_empty() {
            return;
        }
        let holder = key.joined();
        let held = self
            .view
            .inhibitors
            .fire(&self.config.inhibit, &holder, alert);
        if self.replicas {
            for key in held {
                batch.hold_inhibitor(key, &holder);
            }
        }
    }

    /// An alert that stopped firing inhibits nothing any more.
    pub(super) fn release_inhibitors(&mut self, key: &DedupKey, batch: &mut WriteBatch) {
        if self.config.inhibit.is_empty() {
            return;
        }
        let holder = key.joined();
        self.view.inhibitors.resolve(&holder);
        if self.replicas {
            batch.release_inhibitors(&holder);
        }
    }

    /// A follow-up for an identity that is not firing changes nothing and is accepted,
    /// as PagerDuty drops such events. No alert answers it, so its ids are null: the
    /// store keeps no index by identity, which would cost a random B-tree write per
    /// new alert on the ingest path.
    fn stale_follow_up(&self, key: DedupKey) -> Accepted {
        Accepted {
            id: None,
            dedup_key: key.key,
            incident_id: None,
        }
    }
}

/// The links of an incident opened by `alert`: the `kb` of its rule and of the runbooks
/// chosen for it, then every remote-access link whose matchers select the alert.
fn links_of(
    config: &crate::config::Config,
    alert: &Alert,
    classification: &Classification,
) -> Vec<crate::incident::links::Link> {
    let rule_kb = classification
        .rule
        .as_ref()
        .and_then(|name| config.rules.iter().find(|rule| &rule.name == name))
        .into_iter()
        .flat_map(|rule| rule.kb.iter());
    let runbook_kb = config
        .runbooks
        .iter()
        .filter(|runbook| classification.runbooks.contains(&runbook.name) || runbook.matches(alert))
        .flat_map(|runbook| runbook.kb.iter());
    crate::incident::links::for_alert(alert, rule_kb.chain(runbook_kb), &config.remote_access)
}

/// Who acknowledged at the sender, and why, as the sender said it (Nagios:
/// `NOTIFICATIONAUTHOR`, `NOTIFICATIONCOMMENT`): `": jdoe: looking into it"`.
fn sender_said(alert: &Alert) -> String {
    ["author", "comment"]
        .iter()
        .filter_map(|label| alert.labels.get(*label))
        .filter(|text| !text.trim().is_empty())
        .map(|text| format!(": {text}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::decide::testing::{alert, at, decider, ingest, kinds, p1, paged, toggle};
    use crate::alert::{AlertStatus, Severity};

    #[test]
    fn a_p1_opens_an_incident_and_pages_the_first_tier_and_its_repeat_only_counts() {
        let mut decider = decider("");
        let firing = || alert("db-01", Severity::Critical, AlertStatus::Firing);
        let (first, batch) = ingest(&mut decider, firing(), at(0));
        let incident_id = first.incident_id.expect("a P1 opens an incident");
        assert_eq!(kinds(&batch), ["opened", "escalated"]);
        assert_eq!(paged(&batch), [("alice".to_string(), "L1#0".to_string())]);
        let timers: Vec<_> = batch.escalations().collect();
        assert_eq!(timers.len(), 1);
        let timer = timers[0].1.as_ref().expect("the next tier waits");
        assert_eq!(timer.due_at, Some(at(10)));

        let (repeat, batch) = ingest(&mut decider, firing(), at(1));
        assert_eq!(repeat.id, first.id, "the same alert");
        assert_eq!(repeat.incident_id, Some(incident_id));
        assert_eq!(
            batch.incidents().count(),
            0,
            "no incident opened or changed"
        );
        assert!(batch.notifications().is_empty(), "nobody paged again");
        let (_, update) = batch.alert_updates().next().unwrap();
        assert_eq!((update.count, update.last_seen), (2, at(1)));
    }

    #[test]
    fn a_p3_is_stored_without_an_incident() {
        let mut decider = decider("");
        let warning = alert("web-01", Severity::Warning, AlertStatus::Firing);
        let (accepted, batch) = ingest(&mut decider, warning, at(0));
        assert_eq!(accepted.incident_id, None);
        assert_eq!(batch.new_alerts().len(), 1);
        assert_eq!(batch.incidents().count(), 0);
    }

    #[test]
    fn the_last_alert_resolving_resolves_the_incident_and_stops_its_paging() {
        let mut decider = decider("");
        let incident_id = p1(&mut decider, "db-01", at(0));
        let resolved = alert("db-01", Severity::Critical, AlertStatus::Resolved);
        let (accepted, batch) = ingest(&mut decider, resolved, at(5));
        assert_eq!(accepted.incident_id, Some(incident_id));
        assert_eq!(kinds(&batch), ["alert_resolved", "resolved"]);
        let incident = batch.incident(incident_id).unwrap();
        assert_eq!(incident.resolved_at, Some(at(5)));
        assert_eq!(batch.cancelled_pages(), [incident_id]);
        assert!(
            batch.escalations().all(|(_, timer)| timer.is_none()),
            "the timer ends"
        );
        assert_eq!(
            decider.resolved,
            [incident_id],
            "whom to tell is read after the batch's decisions"
        );
        assert!(decider.view.incidents.is_empty());
    }

    #[test]
    fn an_alert_that_flaps_opens_no_new_incident_until_it_settles() {
        let mut decider = decider("[flapping]\nchanges = 4\nwindow = \"10m\"\n");
        let incident_id = p1(&mut decider, "db-01", at(0));
        let batches = toggle(&mut decider, "db-01", 1..=4);
        let opened: Vec<i64> = batches
            .iter()
            .flat_map(|(_, batch)| batch.incidents())
            .filter(|incident| incident.id != incident_id && incident.resolved_at.is_none())
            .map(|incident| incident.id)
            .collect();
        let (last, batch) = &batches[3];
        assert_eq!(last.incident_id, None, "flapping: no incident");
        assert!(batch.notifications().is_empty(), "and no page");
        assert_eq!(opened.len(), 1, "the second firing opened one: {opened:?}");
    }
}
