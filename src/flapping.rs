//! Flap detection: an alert that changes state (fires, resolves, fires again…) at
//! least `changes` times within `window` is flapping. Pure bookkeeping; the pipeline
//! decides what flapping means (no new incident, no page, until it settles).

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::VecDeque;

/// `[flapping]`: `changes` state changes or more within `window` is flapping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub changes: u32,
    pub window: TimeDelta,
}

/// The recent history of one alert identity.
#[derive(Debug, Clone, Default)]
pub struct Flap {
    changes: VecDeque<DateTime<Utc>>,
    pub flapping: bool,
    /// The incident the alert belonged to when it started flapping.
    pub incident_id: Option<i64>,
}

impl Flap {
    /// Records a state change at `now`; returns true when this change made the
    /// alert start flapping.
    pub fn change(&mut self, now: DateTime<Utc>, policy: Policy) -> bool {
        self.changes.push_back(now);
        self.forget_before(now - policy.window);
        let was = self.flapping;
        self.flapping = self.flapping || self.changes.len() >= policy.changes as usize;
        self.flapping && !was
    }

    fn forget_before(&mut self, limit: DateTime<Utc>) {
        while self.changes.front().is_some_and(|at| *at < limit) {
            self.changes.pop_front();
        }
    }

    /// True once a flapping alert has not changed for a whole window.
    pub fn settled(&self, now: DateTime<Utc>, policy: Policy) -> bool {
        self.flapping
            && self
                .changes
                .back()
                .is_none_or(|last| now - *last >= policy.window)
    }

    /// An alert the store marks flapping that this process has no history of (another
    /// replica saw it flap): it settles a window after its last change.
    pub fn seen_flapping(last_change: DateTime<Utc>, incident_id: Option<i64>) -> Self {
        Self {
            changes: VecDeque::from([last_change]),
            flapping: true,
            incident_id,
        }
    }

    /// A history as the store keeps it: its changes, oldest first.
    pub fn kept(changes: Vec<DateTime<Utc>>, flapping: bool, incident_id: Option<i64>) -> Self {
        Self {
            changes: changes.into(),
            flapping,
            incident_id,
        }
    }

    /// The state changes still inside the window, oldest first.
    pub fn changes(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.changes.iter().copied()
    }

    /// Nothing left to remember.
    pub fn is_idle(&self, now: DateTime<Utc>, policy: Policy) -> bool {
        !self.flapping
            && self
                .changes
                .back()
                .is_none_or(|last| now - *last >= policy.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn flapping_starts_at_the_threshold_inside_the_window_and_settles_after_it() {
        let config = Policy {
            changes: 3,
            window: TimeDelta::minutes(10),
        };
        let t0 = Utc::now();
        let mut flap = Flap::default();
        assert!(!flap.change(t0, config));
        assert!(!flap.change(t0 + TimeDelta::minutes(1), config));
        assert!(
            flap.change(t0 + TimeDelta::minutes(2), config),
            "third change in 10 minutes"
        );
        assert!(
            !flap.change(t0 + TimeDelta::minutes(3), config),
            "already flapping"
        );
        assert!(!flap.settled(t0 + TimeDelta::minutes(12), config));
        assert!(flap.settled(t0 + TimeDelta::minutes(13), config));

        let mut slow = Flap::default();
        for minute in [0, 11, 22, 33] {
            assert!(
                !slow.change(t0 + TimeDelta::minutes(minute), config),
                "changes spread out never flap"
            );
        }
    }
}
