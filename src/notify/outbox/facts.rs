//! What pages show of their incidents (the incident, its newest alerts, tickets,
//! runs waiting for approval, the changes that may explain it), read once for all
//! the pages of a flush instead of five reads per page: under a P1 storm those
//! reads were a tenth of the CPU, most of it hand-offs to the reader threads.

use super::Outbox;
use crate::change::{Change, ChangeQuery};
use crate::incident::Incident;
use crate::store::runs::RunRecord;
use crate::store::tickets::Ticket;
use crate::store::{AlertRecord, StoreError};
use chrono::TimeDelta;
use std::collections::HashMap;

/// Alerts a page lists.
const ALERTS_SHOWN: i64 = 20;
/// Changes read at once over every page's window; a flush whose windows hold more
/// reads them per incident instead, so none is left out.
const CHANGES_READ: i64 = 500;

/// The facts of a set of incidents, by incident.
#[derive(Debug, Default)]
pub(super) struct Facts {
    incidents: HashMap<i64, Incident>,
    alerts: HashMap<i64, Vec<AlertRecord>>,
    tickets: HashMap<i64, Vec<Ticket>>,
    approvals: HashMap<i64, Vec<RunRecord>>,
    changes: HashMap<i64, Vec<Change>>,
}

impl Facts {
    /// The incident as it is now; none when it no longer exists.
    pub(super) fn incident(&self, id: i64) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    /// Its newest alerts, newest first.
    pub(super) fn alerts(&self, incident_id: i64) -> &[AlertRecord] {
        self.alerts.get(&incident_id).map_or(&[], Vec::as_slice)
    }

    pub(super) fn tickets(&self, incident_id: i64) -> &[Ticket] {
        self.tickets.get(&incident_id).map_or(&[], Vec::as_slice)
    }

    /// Its runs waiting for approval, oldest first.
    pub(super) fn approvals(&self, incident_id: i64) -> &[RunRecord] {
        self.approvals.get(&incident_id).map_or(&[], Vec::as_slice)
    }

    /// The changes that may explain it, newest first.
    pub(super) fn changes(&self, incident_id: i64) -> &[Change] {
        self.changes.get(&incident_id).map_or(&[], Vec::as_slice)
    }
}

impl Outbox {
    /// Reads the facts of `incident_ids` (in any order, repeats allowed).
    pub(super) async fn facts(&self, incident_ids: &[i64]) -> Result<Facts, StoreError> {
        let mut ids = incident_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let read = self.store.page_facts(&ids, ALERTS_SHOWN).await?;
        let mut facts = Facts {
            incidents: read
                .incidents
                .into_iter()
                .map(|incident| (incident.id, incident))
                .collect(),
            ..Facts::default()
        };
        for alert in read.alerts {
            if let Some(incident_id) = alert.incident_id {
                facts.alerts.entry(incident_id).or_default().push(alert);
            }
        }
        for alerts in facts.alerts.values_mut() {
            alerts.sort_unstable_by_key(|alert| std::cmp::Reverse(alert.id));
        }
        for ticket in read.tickets {
            facts
                .tickets
                .entry(ticket.incident_id)
                .or_default()
                .push(ticket);
        }
        for run in read.approvals {
            if let Some(incident_id) = run.incident_id {
                facts.approvals.entry(incident_id).or_default().push(run);
            }
        }
        let window = self.config.load().changes.window;
        facts.changes = self.explaining(&facts.incidents, window).await?;
        Ok(facts)
    }

    /// The changes that may explain each incident, as
    /// [`ChangeQuery::explaining`] finds them for one: read once over the span of
    /// every window, or per incident when that span holds too many to read at once.
    async fn explaining(
        &self,
        incidents: &HashMap<i64, Incident>,
        window: TimeDelta,
    ) -> Result<HashMap<i64, Vec<Change>>, StoreError> {
        let opened = incidents.values().map(|incident| incident.created_at);
        let (Some(first), Some(last)) = (opened.clone().min(), opened.max()) else {
            return Ok(HashMap::new());
        };
        let span = ChangeQuery {
            since: first - window,
            until: last,
            resource: None,
            before_id: None,
            limit: CHANGES_READ,
        };
        let read = self.store.changes(&span).await?;
        let complete = read.len() < usize::try_from(CHANGES_READ).unwrap_or(usize::MAX);
        let mut explaining = HashMap::new();
        for incident in incidents.values() {
            let query = ChangeQuery::explaining(&incident.resource, incident.created_at, window);
            let shown = usize::try_from(query.limit).unwrap_or(usize::MAX);
            let explains =
                |change: &Change| change.explains(&incident.resource, incident.created_at, window);
            // Newest first, as the query for one incident orders them.
            let changes: Vec<Change> = if complete {
                read.iter()
                    .filter(|change| explains(change))
                    .take(shown)
                    .cloned()
                    .collect()
            } else {
                self.store
                    .changes(&query)
                    .await?
                    .into_iter()
                    .filter(|change| explains(change))
                    .take(shown)
                    .collect()
            };
            explaining.insert(incident.id, changes);
        }
        Ok(explaining)
    }
}
