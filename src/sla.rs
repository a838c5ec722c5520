//! SLA clocks: deadlines from an incident's creation (never the sender's time) and
//! whether they were missed. Pure.

use crate::config::SlaTarget;
use crate::incident::Incident;
use chrono::{DateTime, Utc};

/// `(response_due, resolve_due)` for an incident created at `created_at`.
pub fn due_times(created_at: DateTime<Utc>, target: SlaTarget) -> (DateTime<Utc>, DateTime<Utc>) {
    (created_at + target.respond, created_at + target.resolve)
}

/// Which SLA events an incident has had, as stored bit flags.
pub struct SlaFlags;

impl SlaFlags {
    pub const RESPONSE_BREACHED: u8 = 1;
    pub const RESOLVE_BREACHED: u8 = 2;
    pub const RESPONSE_WARNED: u8 = 4;
    pub const RESOLVE_WARNED: u8 = 8;
}

/// The two SLA clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Response,
    Resolve,
}

impl Clock {
    /// The `kind` label of `tocsin_sla_breaches_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Response => "response",
            Self::Resolve => "resolve",
        }
    }
}

/// Something to record on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaEvent {
    /// `warn_at` of the budget is used up.
    Warning(Clock),
    Breach(Clock),
}

/// The events due at `now` and not yet recorded; marks them recorded. While on hold
/// the clocks are paused. `warn_at` is the fraction of a budget that warns (0 = never).
pub fn due_events(incident: &mut Incident, now: DateTime<Utc>, warn_at: f64) -> Vec<SlaEvent> {
    if incident.on_hold || incident.status == crate::incident::IncidentStatus::Resolved {
        return Vec::new();
    }
    let mut events = Vec::new();
    let clocks = [
        (
            Clock::Response,
            incident.acknowledged_at.is_none(),
            incident.response_due,
            SlaFlags::RESPONSE_BREACHED,
            SlaFlags::RESPONSE_WARNED,
        ),
        (
            Clock::Resolve,
            true,
            incident.resolve_due,
            SlaFlags::RESOLVE_BREACHED,
            SlaFlags::RESOLVE_WARNED,
        ),
    ];
    for (clock, running, due, breached, warned) in clocks {
        if !running || incident.sla_flags & breached != 0 {
            continue;
        }
        if now > due {
            incident.sla_flags |= breached | warned;
            events.push(SlaEvent::Breach(clock));
            continue;
        }
        let budget = (due - incident.created_at).num_milliseconds() as f64;
        let used = (now - incident.created_at).num_milliseconds() as f64;
        if warn_at > 0.0 && incident.sla_flags & warned == 0 && used >= budget * warn_at {
            incident.sla_flags |= warned;
            events.push(SlaEvent::Warning(clock));
        }
    }
    events
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
