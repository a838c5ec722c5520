//! SLA clocks: deadlines from an incident's creation (never the sender's time) and
//! whether they were missed. Pure; the incident applies them to itself
//! (`Incident::due_sla_events`, `Incident::sla_breached`).

use chrono::{DateTime, TimeDelta, Utc};

/// Response and resolution budgets of one priority (`[sla.P1]`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTarget {
    pub respond: TimeDelta,
    pub resolve: TimeDelta,
    pub escalate_on_breach: bool,
}

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
