//! Which ticket calls a batch causes. The writer reads the timeline entries the batch
//! records and queues the matching `ticket_ops` rows in the same commit: opening (or
//! raising into a ticketed priority) opens a ticket, escalations, acknowledgements,
//! notes, runbook results and SLA breaches become internal notes, a raise changes the
//! ticket's priority, resolving adds the resolution as a note and solves it.
//! What a platform's webhook did (its actor is the platform's name) is not echoed back
//! to that platform, and its notes go to no platform, so two helpdesks cannot start
//! a loop of notes about each other's updates.

use super::decide::Decider;
use crate::config::Config;
use crate::incident::{Incident, TimelineEntry};
use crate::store::WriteBatch;
use crate::store::tickets::{TicketOp, TicketOpKind};
use crate::ticket::{Platform, TicketConfig};
use chrono::{DateTime, Utc};

/// Timeline kinds that become internal notes.
const NOTED: [&str; 7] = [
    "escalated",
    "acknowledged",
    "note",
    "runbook_success",
    "runbook_failure",
    "runbook_timeout",
    "sla_breach",
];

impl Decider {
    /// Queues the ticket calls for what `batch` records.
    pub(super) fn queue_ticket_work(&self, now: DateTime<Utc>, batch: &mut WriteBatch) {
        if self.config.tickets.is_empty() {
            return;
        }
        let mut ops = Vec::new();
        for entry in batch.timeline() {
            let from_platform = entry.actor.parse::<Platform>().is_ok();
            let kinds: &[TicketOpKind] = match entry.kind.as_str() {
                "opened" => &[TicketOpKind::Create],
                "priority_raised" => &[
                    TicketOpKind::Create,
                    TicketOpKind::Note,
                    TicketOpKind::Priority,
                ],
                "resolved" => &[TicketOpKind::Note, TicketOpKind::Solve],
                kind if NOTED.contains(&kind) && !from_platform => &[TicketOpKind::Note],
                _ => continue,
            };
            let Some(incident) = self.incident_in(batch, entry.incident_id) else {
                continue;
            };
            for settings in chosen(&self.config, incident) {
                if entry.actor == settings.platform.as_str() {
                    continue;
                }
                for kind in kinds {
                    ops.push(TicketOp {
                        id: 0,
                        incident_id: incident.id,
                        platform: settings.platform,
                        kind: *kind,
                        step: step(*kind),
                        body: match kind {
                            TicketOpKind::Priority => incident.priority.as_str().to_string(),
                            _ => body(entry),
                        },
                        attempts: 0,
                        due_at: now,
                        deadline: now + settings.deadline,
                        queued_at: now,
                    });
                }
            }
        }
        for op in ops {
            batch.queue_ticket(op);
        }
    }

    /// The incident as this batch leaves it.
    fn incident_in<'a>(&'a self, batch: &'a WriteBatch, id: i64) -> Option<&'a Incident> {
        batch
            .incident(id)
            .or_else(|| self.view.incidents.get(&id).map(|open| &open.incident))
    }
}

/// `create` and `solve` happen once per incident and platform; every note and
/// priority change is its own (the writer queues each once, in its own commit).
fn step(kind: TicketOpKind) -> String {
    match kind {
        TicketOpKind::Create | TicketOpKind::Solve => kind.as_str().to_string(),
        TicketOpKind::Note | TicketOpKind::Priority => {
            format!("{}:{}", kind.as_str(), uuid::Uuid::new_v4().simple())
        }
    }
}

fn body(entry: &TimelineEntry) -> String {
    format!(
        "[Tocsin] {} ({}): {}",
        entry.kind.as_str().replace('_', " "),
        entry.actor,
        entry.message
    )
}

/// The platforms an incident gets a ticket on: those its rule names (`tickets = [..]`),
/// or else those whose `priorities` hold its priority. Drills get none.
fn chosen<'c>(config: &'c Config, incident: &Incident) -> Vec<&'c TicketConfig> {
    if incident.drill {
        return Vec::new();
    }
    let named = incident
        .rule
        .as_ref()
        .and_then(|name| config.rules.iter().find(|rule| &rule.name == name))
        .and_then(|rule| rule.tickets.as_ref());
    config
        .tickets
        .iter()
        .filter(|ticket| match named {
            Some(names) => names.iter().any(|name| name == ticket.platform.as_str()),
            None => ticket.priorities.contains(&incident.priority),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::decide::testing::{alert, at, decider, ingest};
    use super::*;
    use crate::alert::{AlertStatus, Severity};
    use crate::pipeline::{Action, Effects};

    const ZENDESK: &str = r#"
[[tickets]]
platform = "zendesk"
base_url = "http://127.0.0.1:9/zendesk"
user = "agent@acme.example"
token = "zd-token-1"
webhook_secret = "zendesk-webhook-secret"
"#;

    fn ops(batch: &WriteBatch) -> Vec<(TicketOpKind, &str)> {
        batch
            .ticket_ops()
            .iter()
            .map(|op| (op.kind, op.step.as_str()))
            .collect()
    }

    #[test]
    fn an_incident_opens_one_ticket_notes_what_happens_and_solves_it() {
        let mut decider = decider(ZENDESK);
        let firing = alert("db-01", Severity::Critical, AlertStatus::Firing);
        let (accepted, mut batch) = ingest(&mut decider, firing, at(0));
        let id = accepted.incident_id.unwrap();
        decider.queue_ticket_work(at(0), &mut batch);
        let created: Vec<_> = ops(&batch)
            .into_iter()
            .filter(|(kind, _)| *kind == TicketOpKind::Create)
            .collect();
        assert_eq!(created, [(TicketOpKind::Create, "create")], "one ticket");

        let act = |decider: &mut Decider, action| {
            let mut batch = WriteBatch::default();
            decider
                .act(
                    id,
                    action,
                    "alice",
                    at(5),
                    &mut batch,
                    &mut Effects::default(),
                )
                .unwrap();
            decider.queue_ticket_work(at(5), &mut batch);
            batch
        };
        let acked = act(&mut decider, Action::Acknowledge { note: None });
        assert_eq!(ops(&acked).len(), 1);
        assert_eq!(ops(&acked)[0].0, TicketOpKind::Note);
        let resolved = act(
            &mut decider,
            Action::Resolve {
                note: Some("disk freed".into()),
            },
        );
        let kinds: Vec<_> = ops(&resolved).into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(kinds, [TicketOpKind::Note, TicketOpKind::Solve]);
        assert!(resolved.ticket_ops()[0].body.contains("disk freed"));
    }
}
