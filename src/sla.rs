//! SLA clocks: deadlines from an incident's creation (never the sender's time) and
//! whether they were missed. Pure; the incident applies them to itself
//! (`Incident::due_sla_events`, `Incident::sla_breached`).

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeSet, HashMap};

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

/// When each open incident's SLA clocks next need a look, soonest first, so the
/// timer pass visits only the incidents with something due instead of walking every
/// open one (`O(due)`, not `O(open)`). A time here is never later than the incident's
/// next event; one that turns out early is simply set again after the look.
#[derive(Debug, Default)]
pub struct SlaSchedule {
    by_time: BTreeSet<(DateTime<Utc>, i64)>,
    of: HashMap<i64, DateTime<Utc>>,
}

impl SlaSchedule {
    /// Sets (or, with `None`, clears) when incident `id` is next due.
    pub fn set(&mut self, id: i64, at: Option<DateTime<Utc>>) {
        if let Some(old) = self.of.remove(&id) {
            self.by_time.remove(&(old, id));
        }
        if let Some(at) = at {
            self.of.insert(id, at);
            self.by_time.insert((at, id));
        }
    }

    /// Forgets an incident (resolved, or left the view).
    pub fn remove(&mut self, id: i64) {
        self.set(id, None);
    }

    /// Takes the incidents due at or before `now`, soonest first; each is out of the
    /// schedule until it is set again.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<i64> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.by_time.first() {
            if at > now {
                break;
            }
            self.by_time.pop_first();
            self.of.remove(&id);
            due.push(id);
        }
        due
    }

    /// True when no incident is scheduled.
    pub fn is_empty(&self) -> bool {
        self.of.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(minute)
    }

    #[test]
    fn due_incidents_come_soonest_first_and_only_once_due() {
        let mut schedule = SlaSchedule::default();
        schedule.set(3, Some(at(30)));
        schedule.set(1, Some(at(10)));
        schedule.set(2, Some(at(20)));
        assert_eq!(schedule.take_due(at(5)), Vec::<i64>::new());
        assert_eq!(schedule.take_due(at(20)), vec![1, 2]);
        assert_eq!(
            schedule.take_due(at(20)),
            Vec::<i64>::new(),
            "taken ones wait to be set again"
        );
        assert_eq!(schedule.take_due(at(60)), vec![3]);
        assert!(schedule.is_empty());
    }

    #[test]
    fn setting_again_moves_an_incident_and_none_or_remove_drops_it() {
        let mut schedule = SlaSchedule::default();
        schedule.set(1, Some(at(10)));
        schedule.set(2, Some(at(10)));
        schedule.set(1, Some(at(40)));
        schedule.set(2, None);
        assert_eq!(schedule.take_due(at(30)), Vec::<i64>::new());
        assert_eq!(schedule.take_due(at(40)), vec![1]);
        schedule.set(1, Some(at(50)));
        schedule.remove(1);
        assert_eq!(schedule.take_due(at(60)), Vec::<i64>::new());
        assert!(schedule.is_empty());
    }
}
