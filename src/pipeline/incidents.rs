//! What humans (and auto-resolve) do to incidents: acknowledge, resolve, annotate,
//! escalate. Every transition also settles the incident's paging.

use super::decide::Decider;
use super::{Action, Effects, OpenIncident, PipelineError, entry, seconds};
use crate::alert::{AlertStatus, Priority};
use crate::config::Config;
use crate::escalation;
use crate::incident::{Incident, IncidentStatus, TimelineKind, TransitionError};
use crate::oncall::Channel;
use crate::store::WriteBatch;
use crate::store::paging::{Notification, NotificationKind, Paged};
use chrono::{DateTime, Utc};

impl Decider {
    pub(super) fn act(
        &mut self,
        incident_id: i64,
        action: Action,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Incident, PipelineError> {
        if !self.view.incidents.contains_key(&incident_id) {
            return self.act_on_closed(incident_id, action, actor, now, batch);
        }
        match action {
            Action::Acknowledge { note } => {
                // A second acknowledgement changes nothing, but its note is kept.
                let again = self
                    .open_incident(incident_id)
                    .is_ok_and(|incident| incident.status == IncidentStatus::Acknowledged);
                let note = note.filter(|note| !note.trim().is_empty());
                if again && let Some(note) = note.clone() {
                    batch.record(entry(incident_id, now, TimelineKind::Note, actor, note));
                }
                let message = with_note(format!("acknowledged by {actor}"), note);
                self.acknowledge_incident(incident_id, actor, message, now, batch, effects)
            }
            Action::Resolve { note } => {
                let message = with_note(format!("resolved by {actor}"), note);
                self.resolve_incident(incident_id, actor, message, now, batch, effects)
            }
            Action::Note { text } => {
                batch.record(entry(incident_id, now, TimelineKind::Note, actor, text));
                self.open_incident(incident_id)
            }
            Action::Escalate { note } => {
                let (incident, timer) = self.next_tier(incident_id)?;
                if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
                    batch.record(entry(incident_id, now, TimelineKind::Note, actor, note));
                }
                Ok(self.page_next_tier(incident, timer, actor, now, batch, effects))
            }
            Action::Reprioritize { priority, note } => {
                if !self.raise_priority(incident_id, priority, actor, now, batch) {
                    batch.record(entry(incident_id, now, TimelineKind::Note, actor, note));
                }
                self.open_incident(incident_id)
            }
            Action::Hold { note } => self.hold(incident_id, true, note, actor, now, batch),
            Action::Unhold { note } => self.hold(incident_id, false, note, actor, now, batch),
        }
    }

    /// Raises an open incident to a more urgent priority: new SLA deadlines, paging
    /// re-evaluated after the batch, stakeholders told. False when `priority` is not
    /// more urgent (nothing changes).
    pub(super) fn raise_priority(
        &mut self,
        incident_id: i64,
        priority: Priority,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> bool {
        let sla = self.config.sla_for(priority);
        let Some(open) = self.view.incidents.get_mut(&incident_id) else {
            return false;
        };
        let incident = &mut open.incident;
        let old = incident.priority;
        if !incident.raise_priority(priority, sla) {
            return false;
        }
        // The deadlines moved earlier.
        let next = super::next_sla_look(incident, self.view.sla_warn_at);
        self.view.sla.set(incident_id, next);
        self.view.open_per_priority[old.index()] -= 1;
        self.view.open_per_priority[priority.index()] += 1;
        batch.record(entry(
            incident_id,
            now,
            TimelineKind::PriorityRaised,
            actor,
            format!("priority raised from {old} to {priority}"),
        ));
        batch.upsert_incident(incident);
        self.upgraded.push(incident_id);
        Self::notify_stakeholders(
            &self.config,
            incident,
            &format!("priority:{priority}"),
            now,
            batch,
        );
        true
    }

    /// Pauses or restarts the SLA clock.
    fn hold(
        &mut self,
        incident_id: i64,
        hold: bool,
        note: Option<String>,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> Result<Incident, PipelineError> {
        let open = self
            .view
            .incidents
            .get_mut(&incident_id)
            .ok_or(PipelineError::NotFound(incident_id))?;
        let incident = &mut open.incident;
        let changed = if hold {
            incident.hold(now)?
        } else {
            incident.unhold(now)?
        };
        // No look while on hold; after it, later deadlines.
        let next = super::next_sla_look(incident, self.view.sla_warn_at);
        self.view.sla.set(incident_id, next);
        if changed {
            let message = if hold {
                format!("put on hold by {actor}: the SLA clock is paused")
            } else {
                format!(
                    "taken off hold by {actor}: respond by {}, resolve by {}",
                    crate::clock::rfc3339(incident.response_due),
                    crate::clock::rfc3339(incident.resolve_due)
                )
            };
            batch.record(entry(
                incident_id,
                now,
                if hold {
                    TimelineKind::Hold
                } else {
                    TimelineKind::Unhold
                },
                actor,
                with_note(message, note),
            ));
            batch.upsert_incident(incident);
        }
        Ok(incident.clone())
    }

    /// An action carried by a single-use key (an ack link): refused when the key was
    /// spent, and the key is spent in the same batch as the action.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn act_spending(
        &mut self,
        incident_id: i64,
        action: Action,
        actor: &str,
        once: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Incident, PipelineError> {
        if self.is_spent(once, batch) {
            return Err(PipelineError::Spent);
        }
        let incident = self.act(incident_id, action, actor, now, batch, effects)?;
        batch.spend(once, now);
        Ok(incident)
    }

    pub(super) fn open_incident(&self, incident_id: i64) -> Result<Incident, PipelineError> {
        self.view
            .incidents
            .get(&incident_id)
            .map(|open| open.incident.clone())
            .ok_or(PipelineError::NotFound(incident_id))
    }

    /// Actions on an incident that is no longer open: only notes are allowed.
    fn act_on_closed(
        &self,
        incident_id: i64,
        action: Action,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) -> Result<Incident, PipelineError> {
        let incident = self
            .closed_incident(incident_id, batch)
            .ok_or(PipelineError::NotFound(incident_id))?;
        match action {
            Action::Note { text } => {
                batch.record(entry(incident_id, now, TimelineKind::Note, actor, text));
                Ok(incident)
            }
            Action::Acknowledge { .. }
            | Action::Resolve { .. }
            | Action::Escalate { .. }
            | Action::Hold { .. }
            | Action::Reprioritize { .. }
            | Action::Unhold { .. } => Err(TransitionError::AlreadyResolved(incident_id).into()),
        }
    }

    /// Acknowledges an open incident: its pending pages are cancelled and its
    /// escalation stops (or waits for the policy's `ack_timeout`). Acknowledging
    /// twice changes nothing.
    pub(super) fn acknowledge_incident(
        &mut self,
        incident_id: i64,
        actor: &str,
        message: String,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Incident, PipelineError> {
        let open = self.settle_sla(incident_id, now, batch, effects)?;
        let incident = &mut open.incident;
        if !incident.acknowledge(now)? {
            return Ok(incident.clone());
        }
        batch.record(entry(
            incident_id,
            now,
            TimelineKind::Acknowledged,
            actor,
            message,
        ));
        batch.upsert_incident(incident);
        if !incident.drill {
            effects
                .acknowledged
                .push((incident.priority, seconds(incident.created_at, now)));
        }
        let incident = incident.clone();
        // The response clock has stopped.
        self.view.schedule_sla(incident_id);
        batch.cancel_pages(incident_id);
        let current = self.escalation_of(incident_id);
        let config = self.config.clone();
        let policy = current
            .as_ref()
            .and_then(|e| config.directory.policies.get(&e.policy));
        match escalation::acknowledged(current, policy, now) {
            Some(waiting) => self.keep_timer(waiting, batch),
            None => self.end_timer(incident_id, batch),
        }
        if incident.drill {
            // The acknowledgement was the test; nothing is left to fix.
            let passed = format!("drill passed: acknowledged by {actor}");
            return self.resolve_incident(incident_id, "tocsin", passed, now, batch, effects);
        }
        Ok(incident)
    }

    /// The open incident a person or its alerts act on, after recording the SLA
    /// warnings and breaches due by now: a late acknowledgement or resolution still
    /// records its breach, even between two ticks.
    fn settle_sla(
        &mut self,
        incident_id: i64,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<&mut OpenIncident, PipelineError> {
        let warn_at = self.config.incidents.sla_warn_at;
        self.record_sla_events(incident_id, now, warn_at, batch, effects);
        self.view
            .incidents
            .get_mut(&incident_id)
            .ok_or(PipelineError::NotFound(incident_id))
    }

    /// Resolves an open incident and its alerts, stops its paging and tells everyone
    /// who was paged.
    pub(super) fn resolve_incident(
        &mut self,
        incident_id: i64,
        actor: &str,
        message: String,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Incident, PipelineError> {
        let open = self.settle_sla(incident_id, now, batch, effects)?;
        open.incident.resolve(now)?;
        let incident = open.incident.clone();
        batch.record(entry(
            incident_id,
            now,
            TimelineKind::Resolved,
            actor,
            message,
        ));
        batch.upsert_incident(&incident);
        for (key, alert) in self.view.alerts.remove_incident(incident_id) {
            self.release_inhibitors(&key, batch);
            batch.update_alert(
                alert.id,
                super::alerts::update_of(&alert, AlertStatus::Resolved, Some(now)),
            );
        }
        self.end_timer(incident_id, batch);
        batch.cancel_pages(incident_id);
        self.withdraw_approvals(incident_id, now, batch);
        self.resolved.push(incident_id);
        Self::notify_stakeholders(&self.config, &incident, "resolved", now, batch);
        self.forget(&incident, effects);
        Ok(incident)
    }

    /// Queues an update to the stakeholders (client contacts) the incident's rule
    /// names: `opened`, `priority:P1` or `resolved`.
    pub(super) fn notify_stakeholders(
        config: &Config,
        incident: &Incident,
        step: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
    ) {
        if incident.drill {
            return;
        }
        let Some(rule) = incident
            .rule
            .as_deref()
            .and_then(|name| config.rules.iter().find(|rule| rule.name == name))
        else {
            return;
        };
        for address in &rule.stakeholders {
            batch.queue(Notification {
                id: 0,
                incident_id: incident.id,
                user_id: "stakeholder".into(),
                channel: Channel::Email,
                address: address.clone(),
                kind: NotificationKind::Stakeholder,
                step: step.to_string(),
                attempts: 0,
                due_at: now,
                deadline: now + config.delivery_deadline(Channel::Email),
            });
        }
    }

    /// Drops a resolved incident from the view.
    fn forget(&mut self, incident: &Incident, effects: &mut Effects) {
        self.view.incidents.remove(&incident.id);
        self.view.sla.remove(incident.id);
        if let Some(group) = &incident.group_key
            && self.view.groups.get(group) == Some(&incident.id)
        {
            self.view.groups.remove(group);
        }
        self.view.open_per_priority[incident.priority.index()] -= 1;
        if let Some(resolved_at) = incident.resolved_at.filter(|_| !incident.drill) {
            effects
                .resolved
                .push((incident.priority, seconds(incident.created_at, resolved_at)));
        }
    }
}

fn with_note(message: String, note: Option<String>) -> String {
    match note.filter(|note| !note.trim().is_empty()) {
        Some(note) => format!("{message}: {note}"),
        None => message,
    }
}

/// The notices that an incident resolved, one to everyone a page reached, on the
/// channel it reached them by: nobody is woken by a call to hear that it is over.
pub(super) fn resolution_notices(
    config: &Config,
    paged: Vec<Paged>,
    now: DateTime<Utc>,
) -> Vec<Notification> {
    paged
        .into_iter()
        .filter_map(|paged| {
            let channel = paged.channel.parse::<Channel>().ok()?;
            (channel != Channel::Voice).then(|| Notification {
                id: 0,
                incident_id: paged.incident_id,
                user_id: paged.user_id,
                channel,
                address: paged.address,
                kind: NotificationKind::Resolved,
                step: "resolved".into(),
                attempts: 0,
                due_at: now,
                deadline: now + config.delivery_deadline(channel),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::decide::testing::{at, decider, kinds, p1};
    use super::*;
    use crate::incident::IncidentStatus;

    fn act(
        decider: &mut Decider,
        incident_id: i64,
        action: Action,
        now: DateTime<Utc>,
    ) -> (Result<Incident, PipelineError>, WriteBatch) {
        let mut batch = WriteBatch::default();
        let result = decider.act(
            incident_id,
            action,
            "alice",
            now,
            &mut batch,
            &mut Effects::default(),
        );
        (result, batch)
    }

    #[test]
    fn an_acknowledgement_cancels_pending_pages_and_stops_the_escalation_once() {
        let mut decider = decider("");
        let id = p1(&mut decider, "db-01", at(0));
        let (incident, batch) = act(&mut decider, id, Action::Acknowledge { note: None }, at(3));
        assert_eq!(incident.unwrap().status, IncidentStatus::Acknowledged);
        assert_eq!(kinds(&batch), ["acknowledged"]);
        assert_eq!(batch.cancelled_pages(), [id]);
        assert!(
            decider.escalation_of(id).is_none(),
            "no tier is paged after it"
        );

        let (again, batch) = act(&mut decider, id, Action::Acknowledge { note: None }, at(4));
        assert_eq!(again.unwrap().acknowledged_at, Some(at(3)));
        assert!(batch.is_empty(), "a second acknowledgement changes nothing");
        let note = Some("handing over to bob".to_string());
        let (again, batch) = act(&mut decider, id, Action::Acknowledge { note }, at(5));
        assert_eq!(again.unwrap().acknowledged_at, Some(at(3)));
        assert_eq!(kinds(&batch), ["note"], "but its note is kept");
    }

    #[test]
    fn a_closed_incident_takes_notes_only_and_an_unknown_one_is_not_found() {
        let mut decider = decider("");
        let id = p1(&mut decider, "db-01", at(0));
        let (resolved, _) = act(&mut decider, id, Action::Resolve { note: None }, at(1));
        // The next batch knows the closed incident from what it read before deciding.
        decider.facts.closed.insert(id, resolved.unwrap());
        let note = Action::Note {
            text: "root cause: full disk".into(),
        };
        let (noted, batch) = act(&mut decider, id, note, at(2));
        assert_eq!(noted.unwrap().id, id);
        assert_eq!(kinds(&batch), ["note"]);
        let (refused, batch) = act(&mut decider, id, Action::Acknowledge { note: None }, at(2));
        assert!(
            matches!(refused, Err(PipelineError::Transition(TransitionError::AlreadyResolved(i))) if i == id),
            "{refused:?}"
        );
        assert!(batch.is_empty());
        let (missing, _) = act(&mut decider, 99, Action::Note { text: "x".into() }, at(2));
        assert!(
            matches!(missing, Err(PipelineError::NotFound(99))),
            "{missing:?}"
        );
    }

    #[test]
    fn a_resolution_tells_whoever_a_page_reached_but_never_by_a_call() {
        let decider = decider("");
        let paged = |user: &str, channel: &str| Paged {
            incident_id: 7,
            user_id: user.into(),
            channel: channel.into(),
            address: format!("{user}@{channel}"),
        };
        let notices = resolution_notices(
            &decider.config,
            vec![
                paged("alice", "email"),
                paged("carol", "voice"),
                paged("dave", "sms"),
            ],
            at(30),
        );
        let told: Vec<_> = notices
            .iter()
            .map(|notice| (notice.user_id.as_str(), notice.channel, notice.kind))
            .collect();
        assert_eq!(
            told,
            [
                ("alice", Channel::Email, NotificationKind::Resolved),
                ("dave", Channel::Sms, NotificationKind::Resolved),
            ]
        );
        assert!(
            notices
                .iter()
                .all(|notice| notice.due_at == at(30) && notice.deadline > at(30))
        );
    }
}
