//! SLA clocks: deadlines from an incident's creation (never the sender's time) and
//! whether they were missed. Pure.

use crate::config::SlaTarget;
use crate::incident::Incident;
use chrono::{DateTime, Utc};

/// `(response_due, resolve_due)` for an incident created at `created_at`.
pub fn due_times(created_at: DateTime<Utc>, target: SlaTarget) -> (DateTime<Utc>, DateTime<Utc>) {
    (created_at + target.respond, created_at + target.resolve)
}

/// True once the acknowledgement or the resolution came (or is still missing) after
/// its deadline.
pub fn breached(incident: &Incident, now: DateTime<Utc>) -> bool {
    let responded = incident
        .acknowledged_at
        .or(incident.resolved_at)
        .unwrap_or(now);
    let resolved = incident.resolved_at.unwrap_or(now);
    responded > incident.response_due || resolved > incident.resolve_due
}
