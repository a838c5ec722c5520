//! Paging drills: a synthetic incident marked DRILL pages the policy through the real
//! channels; its acknowledgement is timed; one not acknowledged within its window
//! fails, is reported to the policy's last tier, and ends. Drills never start
//! runbooks or reach stakeholders.

use super::decide::Decider;
use super::{Effects, OpenIncident, PipelineError, entry};
use crate::alert::{Alert, AlertAction, AlertStatus, Labels, Priority, Severity};
use crate::config::DrillConfig;
use crate::incident::{Incident, IncidentStatus, TimelineKind};
use crate::oncall::Channel;
use crate::rules::Classification;
use crate::store::WriteBatch;
use crate::store::paging::{Notification, NotificationKind};
use chrono::{DateTime, Utc};

impl Decider {
    pub(super) fn start_drill(
        &mut self,
        name: &str,
        actor: &str,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<Incident, PipelineError> {
        let config = self.config.clone();
        let drill = config
            .drills
            .iter()
            .find(|drill| drill.name == name)
            .ok_or_else(|| {
                PipelineError::Missing(format!(
                    "drill {name:?} is not configured; add a [[drills]] entry"
                ))
            })?;
        if let Some(running) = self
            .view
            .incidents
            .values()
            .find(|open| open.incident.drill && open.incident.check == name)
        {
            return Err(PipelineError::NotPossible(format!(
                "drill {name} is still running as incident {}; acknowledge it or let its window end first",
                running.incident.id
            )));
        }
        let severity = match drill.priority {
            Priority::P1 => Severity::Critical,
            Priority::P2 => Severity::Error,
            Priority::P3 => Severity::Warning,
            Priority::P4 => Severity::Info,
        };
        let alert = Alert {
            source: "drill".into(),
            dedup_key: format!("drill:{name}"),
            resource: "drill".into(),
            check: name.to_string(),
            severity,
            status: AlertStatus::Firing,
            action: AlertAction::Report,
            summary: "DRILL - a paging test, not a real incident. Acknowledge it as you would a real page.".into(),
            details: serde_json::Value::Null,
            labels: Labels::new(),
            links: Vec::new(),
            occurred_at: None,
        };
        let classification = Classification {
            priority: drill.priority,
            rule: Some(format!("drill:{name}")),
            escalation_policy: drill.escalation_policy.clone(),
            runbooks: Vec::new(),
            group_key: None,
        };
        let id = self.view.ids.incidents.take();
        let mut incident = Incident::open(
            id,
            &alert,
            &classification,
            config.sla_for(drill.priority),
            now,
        );
        incident.drill = true;
        incident.alert_count = 0;
        incident.title = format!("DRILL: {name}");
        batch.record(entry(
            id,
            now,
            TimelineKind::Drill,
            actor,
            format!(
                "drill {name} started: acknowledge within {} min",
                drill.ack_window.num_minutes()
            ),
        ));
        self.start_paging(&mut incident, now, batch, effects);
        batch.upsert_incident(&incident);
        self.view.open_per_priority[incident.priority.index()] += 1;
        self.view.incidents.insert(
            id,
            OpenIncident {
                incident: incident.clone(),
                firing: 0,
                mixed: false,
            },
        );
        Ok(incident)
    }

    /// Drills not acknowledged within their window fail: reported to the policy's
    /// last tier once, then ended.
    pub(super) fn check_drills(
        &mut self,
        now: DateTime<Utc>,
        batch: &mut WriteBatch,
        effects: &mut Effects,
    ) -> Result<(), PipelineError> {
        let config = self.config.clone();
        if config.drills.is_empty() {
            // The tick runs this every 250 ms: no walk over the open incidents for nothing.
            return Ok(());
        }
        let failed: Vec<(Incident, &DrillConfig)> = self
            .view
            .incidents
            .values()
            .filter(|open| open.incident.drill && open.incident.status == IncidentStatus::Triggered)
            .filter_map(|open| {
                let drill = config
                    .drills
                    .iter()
                    .find(|drill| drill.name == open.incident.check)?;
                (now - open.incident.created_at > drill.ack_window)
                    .then(|| (open.incident.clone(), drill))
            })
            .collect();
        for (incident, drill) in failed {
            let (id, name) = (incident.id, &drill.name);
            let window = drill.ack_window.num_minutes();
            let policy = config
                .directory
                .policy_for(incident.escalation_policy.as_deref());
            let last_tier = policy.and_then(|policy| policy.tiers.last());
            let mut told = Vec::new();
            if let Some(tier) = last_tier {
                let (users, _) = config.directory.resolve(tier, now);
                for user in users {
                    let Some(address) = user.address(Channel::Email) else {
                        continue;
                    };
                    told.push(user.id.clone());
                    batch.queue(Notification {
                        id: 0,
                        incident_id: id,
                        user_id: user.id.clone(),
                        channel: Channel::Email,
                        address: address.to_string(),
                        kind: NotificationKind::DrillReport,
                        step: "drill-failed".into(),
                        attempts: 0,
                        due_at: now,
                        deadline: now + config.delivery_deadline(Channel::Email),
                    });
                }
            }
            let reported = if told.is_empty() {
                "nobody on the last tier has an email".to_string()
            } else {
                format!("reported to {}", told.join(", "))
            };
            batch.record(entry(
                id,
                now,
                TimelineKind::DrillFailed,
                "tocsin",
                format!("drill {name} failed: nobody acknowledged within {window} min; {reported}"),
            ));
            self.resolve_incident(
                id,
                "tocsin",
                format!("drill {name} ended unacknowledged"),
                now,
                batch,
                effects,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::decide::testing::{at, decider, kinds, paged};
    use super::*;

    const DRILL: &str = "[[drills]]\nname = \"chain\"\ncron = \"0 0 9 * * Mon\"\nescalation_policy = \"default\"\npriority = \"P1\"\nack_window = \"10m\"\n";

    #[test]
    fn an_unacknowledged_drill_fails_after_its_window_and_reports_to_the_last_tier() {
        let mut decider = decider(DRILL);
        let mut batch = WriteBatch::default();
        let drill = decider
            .start_drill("chain", "alice", at(0), &mut batch, &mut Effects::default())
            .unwrap();
        assert!(drill.drill);
        assert_eq!(paged(&batch), [("alice".to_string(), "L1#0".to_string())]);

        let check = |decider: &mut Decider, now| {
            let mut batch = WriteBatch::default();
            decider
                .check_drills(now, &mut batch, &mut Effects::default())
                .unwrap();
            batch
        };
        assert!(check(&mut decider, at(10)).is_empty(), "within its window");
        let batch = check(&mut decider, at(11));
        assert!(
            kinds(&batch).contains(&"drill_failed"),
            "{:?}",
            kinds(&batch)
        );
        let reported: Vec<_> = batch
            .notifications()
            .iter()
            .filter(|message| message.kind == NotificationKind::DrillReport)
            .map(|message| message.user_id.as_str())
            .collect();
        assert_eq!(reported, ["dave"], "the policy's last tier");
        assert_eq!(batch.incident(drill.id).unwrap().resolved_at, Some(at(11)));
        assert!(decider.view.incidents.is_empty());
    }

    #[test]
    fn an_unknown_drill_is_refused_with_what_to_do() {
        let mut decider = decider(DRILL);
        let mut batch = WriteBatch::default();
        let refused =
            decider.start_drill("nope", "alice", at(0), &mut batch, &mut Effects::default());
        assert!(
            matches!(refused, Err(PipelineError::Missing(_))),
            "{refused:?}"
        );
        assert!(batch.is_empty());
    }
}
