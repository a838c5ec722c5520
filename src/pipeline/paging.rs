//! Paging inside the writer: starting an incident's escalation, firing due timers,
//! and jumping a tier on request. Decisions come from [`crate::escalation`]; this
//! file applies them to the incident, the batch and the metrics.

use super::decide::Decider;
use super::{Effects, PipelineError, entry};
use crate::escalation::{self, Paging};
use crate::incident::{Incident, IncidentStatus, TimelineKind};
use crate::page::{Escalation, EscalationState, Page};
use crate::store::WriteBatch;
use crate::store::paging::Notification;
use chrono::{DateTime, Utc};

impl Decider {
    /// A new incident starts its policy; the first tier is usually due at once.
    pub(super) fn start_paging(
        &mut self,
        incident: &mut Incident,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) {
        let config = self.config.clone();
        let Some(policy) = config
            .directory
            .policy_for(incident.escalation_policy.as_deref())
        else {
            let why = match &incident.escalation_policy {
                Some(name) => {
                    format!("escalation policy {name:?} does not exist: nobody was paged")
                }
                None => "no escalation policy is configured: nobody was paged".to_string(),
            };
            batch.record(entry(incident.id, now, TimelineKind::Paging, "tocsin", why));
            return;
        };
        let timer = escalation::start(policy, incident, now);
        let deadline = |channel| config.delivery_deadline(channel);
        let paging = escalation::page_due(
            timer,
            policy,
            incident,
            &config.directory,
            &deadline,
            now,
            false,
        );
        self.apply_paging(incident, paging, now, batch, effects);
    }

    /// Fires every escalation timer that is due.
    pub(super) fn tick(
        &mut self,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> usize {
        let due = self.view.timers.due(now);
        let fired = due.len();
        for timer in due {
            let Some(open) = self.view.incidents.get(&timer.incident_id) else {
                // The incident is gone (resolved in a way that left its timer behind).
                self.end_timer(timer.incident_id, batch);
                continue;
            };
            let mut incident = open.incident.clone();
            let timer = match timer.state {
                EscalationState::Tiers => timer,
                EscalationState::AckTimeout => {
                    if incident.status == IncidentStatus::Acknowledged {
                        incident.status = IncidentStatus::Triggered;
                        batch.record(entry(
                            incident.id,
                            now,
                            TimelineKind::Retriggered,
                            "tocsin",
                            "acknowledged but not resolved within the policy's ack_timeout: paging again".into(),
                        ));
                    }
                    escalation::retrigger(timer, now)
                }
            };
            self.run_timer(&mut incident, timer, now, false, batch, effects);
            batch.upsert_incident(&incident);
            if let Some(open) = self.view.incidents.get_mut(&incident.id) {
                open.incident = incident;
            }
        }
        fired
    }

    /// `POST /incidents/{id}/escalate`: page the next tier now.
    pub(super) fn escalate_now(
        &mut self,
        incident_id: i64,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Incident, PipelineError> {
        let (incident, timer) = self.next_tier(incident_id)?;
        Ok(self.page_next_tier(incident, timer, actor, now, batch, effects))
    }

    /// The open incident and its timer, when a further tier is left to page; else
    /// why not, before anything of the request is recorded.
    pub(super) fn next_tier(
        &self,
        incident_id: i64,
    ) -> Result<(Incident, Escalation), PipelineError> {
        let incident = self.open_incident(incident_id)?;
        let timer = self
            .escalation_of(incident_id)
            .filter(|timer| timer.state == EscalationState::Tiers && timer.due_at.is_some())
            .ok_or_else(|| {
                PipelineError::NotPossible(format!(
                    "incident {incident_id} has no further tier to page (no policy, acknowledged, or its last tier was paged)"
                ))
            })?;
        Ok((incident, timer))
    }

    /// Pages the tier after the last one paged, now.
    pub(super) fn page_next_tier(
        &mut self,
        mut incident: Incident,
        timer: Escalation,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Incident {
        let incident_id = incident.id;
        batch.record(entry(
            incident_id,
            now,
            TimelineKind::EscalationRequested,
            actor,
            format!("{actor} asked to escalate"),
        ));
        self.run_timer(&mut incident, timer, now, true, batch, effects);
        batch.upsert_incident(&incident);
        if let Some(open) = self.view.incidents.get_mut(&incident_id) {
            open.incident = incident.clone();
        }
        incident
    }

    fn run_timer(
        &mut self,
        incident: &mut Incident,
        timer: Escalation,
        now: DateTime<Utc>,
        force: bool,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) {
        let config = self.config.clone();
        let Some(policy) = config.directory.policies.get(&timer.policy) else {
            batch.record(entry(
                incident.id,
                now,
                TimelineKind::Paging,
                "tocsin",
                format!(
                    "escalation policy {:?} no longer exists: paging stopped",
                    timer.policy
                ),
            ));
            self.end_timer(incident.id, batch);
            return;
        };
        let deadline = |channel| config.delivery_deadline(channel);
        let paging = escalation::page_due(
            timer,
            policy,
            incident,
            &config.directory,
            &deadline,
            now,
            force,
        );
        self.apply_paging(incident, paging, now, batch, effects);
    }

    fn apply_paging(
        &mut self,
        incident: &mut Incident,
        paging: Paging,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) {
        for (kind, message) in paging.timeline {
            batch.record(entry(incident.id, now, kind, "tocsin", message));
        }
        for page in paging.pages {
            batch.queue(queued(page));
        }
        incident.escalated |= paging.escalated;
        effects.escalations.extend(paging.levels);
        // A policy that ran out keeps its row without a due time, so a later
        // `escalate` can say there is nothing left to page.
        match paging.next {
            Some(next) => self.keep_timer(next, batch),
            None => self.end_timer(incident.id, batch),
        }
    }

    /// Pages the newly eligible channels of incidents whose priority rose.
    pub(super) fn repage_upgraded(&mut self, now: DateTime<Utc>, batch: &mut WriteBatch) {
        let config = self.config.clone();
        let deadline = |channel| config.delivery_deadline(channel);
        for incident_id in std::mem::take(&mut self.upgraded) {
            let Some(incident) = self
                .view
                .incidents
                .get(&incident_id)
                .map(|open| open.incident.clone())
            else {
                continue;
            };
            let Some(timer) = self.escalation_of(incident_id) else {
                continue;
            };
            let Some(policy) = config.directory.policies.get(&timer.policy) else {
                continue;
            };
            let paging = escalation::repage_after_upgrade(
                &timer,
                policy,
                &incident,
                &config.directory,
                &deadline,
                now,
            );
            for page in paging.pages {
                batch.queue(queued(page));
            }
            for (kind, message) in paging.timeline {
                batch.record(entry(
                    incident_id,
                    now,
                    kind,
                    "tocsin",
                    format!("after the priority upgrade: {message}"),
                ));
            }
        }
    }

    /// The incident's escalation timer as the batch so far leaves it.
    pub(super) fn escalation_of(&self, incident_id: i64) -> Option<Escalation> {
        self.view.timers.get(incident_id).cloned()
    }

    /// Keeps an escalation's timer, in the view and in the batch.
    pub(super) fn keep_timer(&mut self, timer: Escalation, batch: &mut WriteBatch) {
        self.view.timers.set(timer.clone());
        batch.set_escalation(timer);
    }

    /// Ends an incident's escalation, in the view and in the batch.
    pub(super) fn end_timer(&mut self, incident_id: i64, batch: &mut WriteBatch) {
        self.view.timers.end(incident_id);
        batch.end_escalation(incident_id);
    }
}

/// The outbox row of a page the escalation decided: not stored yet, never tried.
fn queued(page: Page) -> Notification {
    Notification {
        id: 0,
        incident_id: page.incident_id,
        user_id: page.user_id,
        channel: page.channel,
        address: page.address,
        kind: page.kind,
        step: page.step,
        attempts: 0,
        due_at: page.due_at,
        deadline: page.deadline,
    }
}

#[cfg(test)]
mod tests {
    use super::super::decide::testing::{at, decider, kinds, p1, paged};
    use super::*;

    fn tick(decider: &mut Decider, now: DateTime<Utc>) -> (usize, WriteBatch) {
        let mut batch = WriteBatch::default();
        let fired = decider.tick(now, &mut batch, &mut Effects::default());
        (fired, batch)
    }

    #[test]
    fn a_due_timer_pages_the_next_tier_once_and_waits_for_the_one_after() {
        let mut decider = decider("");
        let id = p1(&mut decider, "db-01", at(0));
        assert_eq!(tick(&mut decider, at(9)).0, 0, "L2 is not due yet");
        let (fired, batch) = tick(&mut decider, at(10));
        assert_eq!(fired, 1);
        assert_eq!(paged(&batch), [("carol".to_string(), "L2#1".to_string())]);
        assert_eq!(
            decider.escalation_of(id).and_then(|timer| timer.due_at),
            Some(at(30)),
            "L3 is 20 minutes after L2"
        );
        assert_eq!(tick(&mut decider, at(10)).0, 0, "not paged twice");
        let (_, batch) = tick(&mut decider, at(30));
        assert_eq!(paged(&batch), [("dave".to_string(), "L3#2".to_string())]);
    }

    #[test]
    fn escalating_past_the_last_tier_is_refused_and_changes_nothing() {
        let mut decider = decider("");
        let id = p1(&mut decider, "db-01", at(0));
        let mut escalate = |now| {
            let mut batch = WriteBatch::default();
            let result =
                decider.escalate_now(id, "alice", now, &mut batch, &mut Effects::default());
            (result, batch)
        };
        let (to_l2, batch) = escalate(at(1));
        assert!(to_l2.unwrap().escalated);
        assert_eq!(kinds(&batch)[0], "escalation_requested");
        assert_eq!(paged(&batch), [("carol".to_string(), "L2#1".to_string())]);
        let (to_l3, _) = escalate(at(2));
        assert!(to_l3.is_ok());
        let (refused, batch) = escalate(at(3));
        assert!(
            matches!(refused, Err(PipelineError::NotPossible(_))),
            "{refused:?}"
        );
        assert!(batch.is_empty());
    }

    #[test]
    fn an_escalation_with_a_note_refused_records_nothing() {
        let mut decider = decider("");
        let id = p1(&mut decider, "db-01", at(0));
        for minute in [1, 2] {
            let mut batch = WriteBatch::default();
            decider
                .escalate_now(id, "alice", at(minute), &mut batch, &mut Effects::default())
                .unwrap();
        }
        let mut batch = WriteBatch::default();
        let note = Some("paging Dave's manager instead".to_string());
        let refused = decider.act(
            id,
            super::super::Action::Escalate { note },
            "alice",
            at(3),
            &mut batch,
            &mut Effects::default(),
        );
        assert!(
            matches!(refused, Err(PipelineError::NotPossible(_))),
            "{refused:?}"
        );
        // A refused command that changed the batch would fail every other of it.
        assert!(batch.is_empty(), "{:?}", kinds(&batch));
    }
}
