//! The incident: what a human is asked to handle. Its state machine
//! (triggered → acknowledged → resolved) refuses illegal moves, and every move is
//! written to the timeline by the caller. Pure: no I/O, time is passed in.

use crate::alert::{Alert, Priority};
use crate::name::UnknownName;
use crate::rules::Classification;
use crate::sla::{Clock, SlaEvent, SlaFlags, SlaTarget};
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

pub mod links;
mod timeline;

pub use timeline::{Message, Opening, Proposal, RunEnd, RunStart, TicketCall, TimelineKind};

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentStatus {
    Triggered,
    Acknowledged,
    Resolved,
}

impl IncidentStatus {
    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triggered => "triggered",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentStatus {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        match text {
            "triggered" => Ok(Self::Triggered),
            "acknowledged" => Ok(Self::Acknowledged),
            "resolved" => Ok(Self::Resolved),
            _ => Err(UnknownName::new(
                "incident status",
                text,
                "triggered, acknowledged, resolved",
            )),
        }
    }
}

/// A move the state machine refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("incident {0} is already resolved; open a new one by sending the alert again")]
    AlreadyResolved(i64),
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: i64,
    pub title: String,
    pub priority: Priority,
    pub status: IncidentStatus,
    pub created_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub alert_count: i64,
    pub escalation_level: String,
    pub response_due: DateTime<Utc>,
    pub resolve_due: DateTime<Utc>,
    pub flapping: bool,
    pub on_hold: bool,
    pub source: String,
    pub resource: String,
    pub check: String,
    pub summary: String,
    pub group_key: Option<String>,
    pub rule: Option<String>,
    pub escalation_policy: Option<String>,
    /// When an alert last opened or joined it; the group window counts from here.
    pub last_alert_at: DateTime<Utc>,
    /// SLA warnings and breaches already recorded (see [`SlaFlags`]).
    pub sla_flags: u8,
    /// Start of the current hold; the SLA clock is paused while it lasts.
    pub hold_since: Option<DateTime<Utc>>,
    /// Resolved by a runbook (automated remediation).
    pub remediated: bool,
    /// Paged beyond its first tier.
    pub escalated: bool,
    /// A paging drill, not a real incident: out of the SLA KPIs, no runbook, no
    /// stakeholder.
    pub drill: bool,
    /// Knowledge-base and remote-access links, rendered when it opened.
    pub links: Vec<links::Link>,
}

impl Incident {
    /// A subject line: `[P1] #12 db-01: summary`, on one line, cut to 200 characters
    /// (mail clients and helpdesks truncate or reject longer ones).
    pub fn subject(&self, prefix: &str) -> String {
        const LIMIT: usize = 200;
        let full = format!("{prefix} #{} {}: {}", self.id, self.resource, self.summary);
        let single_line = full.replace(['\r', '\n'], " ");
        if single_line.chars().count() <= LIMIT {
            return single_line;
        }
        single_line.chars().take(LIMIT - 1).collect::<String>() + "…"
    }

    /// A new triggered incident opened by `alert`.
    pub fn open(
        id: i64,
        alert: &Alert,
        classification: &Classification,
        sla: SlaTarget,
        now: DateTime<Utc>,
    ) -> Self {
        let (response_due, resolve_due) = crate::sla::due_times(now, sla);
        Self {
            id,
            title: format!("{} on {}", alert.check, alert.resource),
            priority: classification.priority,
            status: IncidentStatus::Triggered,
            created_at: now,
            acknowledged_at: None,
            resolved_at: None,
            alert_count: 1,
            escalation_level: "L1".into(),
            response_due,
            resolve_due,
            flapping: false,
            on_hold: false,
            source: alert.source.clone(),
            resource: alert.resource.clone(),
            check: alert.check.clone(),
            summary: alert.summary.clone(),
            group_key: classification.group_key.clone(),
            rule: classification.rule.clone(),
            escalation_policy: classification.escalation_policy.clone(),
            last_alert_at: now,
            sla_flags: 0,
            hold_since: None,
            remediated: false,
            escalated: false,
            drill: false,
            links: Vec::new(),
        }
    }

    /// Pauses the SLA clock.
    pub fn hold(&mut self, now: DateTime<Utc>) -> Result<bool, TransitionError> {
        if self.status == IncidentStatus::Resolved {
            return Err(TransitionError::AlreadyResolved(self.id));
        }
        if self.on_hold {
            return Ok(false);
        }
        self.on_hold = true;
        self.hold_since = Some(now);
        Ok(true)
    }

    /// Restarts the SLA clock: the deadlines still ahead move by the time held.
    pub fn unhold(&mut self, now: DateTime<Utc>) -> Result<bool, TransitionError> {
        if self.status == IncidentStatus::Resolved {
            return Err(TransitionError::AlreadyResolved(self.id));
        }
        let Some(since) = self.hold_since.take() else {
            return Ok(false);
        };
        let held = now - since;
        if self.acknowledged_at.is_none() {
            self.response_due += held;
        }
        self.resolve_due += held;
        self.on_hold = false;
        Ok(true)
    }

    /// True until resolved.
    pub fn is_open(&self) -> bool {
        self.status != IncidentStatus::Resolved
    }

    /// Acknowledges; returns false when it already was (nothing changes).
    pub fn acknowledge(&mut self, now: DateTime<Utc>) -> Result<bool, TransitionError> {
        match self.status {
            IncidentStatus::Resolved => Err(TransitionError::AlreadyResolved(self.id)),
            IncidentStatus::Acknowledged => Ok(false),
            IncidentStatus::Triggered => {
                self.status = IncidentStatus::Acknowledged;
                self.acknowledged_at = Some(now);
                Ok(true)
            }
        }
    }

    /// Resolves.
    pub fn resolve(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if self.status == IncidentStatus::Resolved {
            return Err(TransitionError::AlreadyResolved(self.id));
        }
        self.status = IncidentStatus::Resolved;
        self.resolved_at = Some(now);
        Ok(())
    }

    /// Raises the priority when a more urgent alert joins; the SLA deadlines follow,
    /// still counted from creation. Returns true when it changed.
    pub fn raise_priority(&mut self, priority: Priority, sla: SlaTarget) -> bool {
        if priority >= self.priority {
            return false;
        }
        self.priority = priority;
        (self.response_due, self.resolve_due) = crate::sla::due_times(self.created_at, sla);
        true
    }
    /// The SLA events due at `now` and not yet recorded; marks them recorded. While on
    /// hold the clocks are paused. `warn_at` is the fraction of a budget that warns
    /// (0 = never).
    pub fn due_sla_events(&mut self, now: DateTime<Utc>, warn_at: f64) -> Vec<SlaEvent> {
        if self.on_hold || self.status == IncidentStatus::Resolved {
            return Vec::new();
        }
        let mut events = Vec::new();
        let clocks = [
            (
                Clock::Response,
                self.acknowledged_at.is_none(),
                self.response_due,
                SlaFlags::RESPONSE_BREACHED,
                SlaFlags::RESPONSE_WARNED,
            ),
            (
                Clock::Resolve,
                true,
                self.resolve_due,
                SlaFlags::RESOLVE_BREACHED,
                SlaFlags::RESOLVE_WARNED,
            ),
        ];
        for (clock, running, due, breached, warned) in clocks {
            if !running || self.sla_flags & breached != 0 {
                continue;
            }
            if now > due {
                self.sla_flags |= breached | warned;
                events.push(SlaEvent::Breach(clock));
                continue;
            }
            let budget = (due - self.created_at).num_milliseconds() as f64;
            let used = (now - self.created_at).num_milliseconds() as f64;
            if warn_at > 0.0 && self.sla_flags & warned == 0 && used >= budget * warn_at {
                self.sla_flags |= warned;
                events.push(SlaEvent::Warning(clock));
            }
        }
        events
    }

    /// The earliest time [`Incident::due_sla_events`] may have something to record:
    /// the next warning or breach of a running clock; none while on hold, resolved,
    /// or once both clocks are done. Never later than the event itself (warnings are
    /// rounded down to the millisecond), so a schedule built on it misses nothing.
    pub fn next_sla_check(&self, warn_at: f64) -> Option<DateTime<Utc>> {
        if self.on_hold || self.status == IncidentStatus::Resolved {
            return None;
        }
        let clocks = [
            (
                self.acknowledged_at.is_none(),
                self.response_due,
                SlaFlags::RESPONSE_BREACHED,
                SlaFlags::RESPONSE_WARNED,
            ),
            (
                true,
                self.resolve_due,
                SlaFlags::RESOLVE_BREACHED,
                SlaFlags::RESOLVE_WARNED,
            ),
        ];
        clocks
            .into_iter()
            .filter(|(running, _, breached, _)| *running && self.sla_flags & breached == 0)
            .map(|(_, due, _, warned)| {
                if warn_at > 0.0 && self.sla_flags & warned == 0 {
                    let budget = (due - self.created_at).num_milliseconds() as f64;
                    let warn_after = (budget * warn_at).floor() as i64;
                    self.created_at + chrono::TimeDelta::milliseconds(warn_after)
                } else {
                    due
                }
            })
            .min()
    }

    /// True once the acknowledgement or the resolution came (or is still missing)
    /// after its deadline.
    pub fn sla_breached(&self, now: DateTime<Utc>) -> bool {
        let responded = self.acknowledged_at.or(self.resolved_at).unwrap_or(now);
        let resolved = self.resolved_at.unwrap_or(now);
        responded > self.response_due || resolved > self.resolve_due
    }
}

/// One line of an incident's history.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub incident_id: i64,
    pub at: DateTime<Utc>,
    pub kind: TimelineKind,
    /// Who or what did it: an API token's name, a sender, or `tocsin`.
    pub actor: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertAction, AlertStatus, Labels, Severity};
    use chrono::TimeDelta;

    fn incident() -> Incident {
        let alert = Alert {
            source: "generic".into(),
            dedup_key: "k".into(),
            resource: "web-1".into(),
            check: "http".into(),
            severity: Severity::Warning,
            status: AlertStatus::Firing,
            action: AlertAction::Report,
            summary: "down".into(),
            details: serde_json::Value::Null,
            labels: Labels::new(),
            links: vec![],
            occurred_at: None,
        };
        let class = Classification {
            priority: Priority::P2,
            rule: None,
            escalation_policy: None,
            runbooks: vec![],
            group_key: None,
        };
        let sla = SlaTarget {
            respond: TimeDelta::hours(1),
            resolve: TimeDelta::hours(4),
            escalate_on_breach: false,
        };
        Incident::open(1, &alert, &class, sla, Utc::now())
    }

    #[test]
    fn walks_triggered_acknowledged_resolved() {
        let mut incident = incident();
        assert_eq!(incident.title, "http on web-1");
        assert_eq!(
            incident.response_due - incident.created_at,
            TimeDelta::hours(1)
        );
        let now = Utc::now();
        assert_eq!(incident.acknowledge(now), Ok(true));
        assert_eq!(incident.acknowledge(now), Ok(false));
        incident.resolve(now).unwrap();
        assert_eq!(incident.status, IncidentStatus::Resolved);
        assert_eq!(
            incident.resolve(now),
            Err(TransitionError::AlreadyResolved(1))
        );
        assert!(incident.acknowledge(now).is_err());
    }

    #[test]
    fn only_more_urgent_alerts_raise_priority() {
        let mut incident = incident();
        let p1 = SlaTarget {
            respond: TimeDelta::minutes(15),
            resolve: TimeDelta::hours(1),
            escalate_on_breach: false,
        };
        assert!(!incident.raise_priority(Priority::P3, p1));
        assert!(incident.raise_priority(Priority::P1, p1));
        assert_eq!(
            incident.response_due - incident.created_at,
            TimeDelta::minutes(15)
        );
    }

    /// Each SLA event is found by a look at its incident's next check time, in the
    /// order warning, breach; acknowledging stops the response clock, resolving both.
    #[test]
    fn the_next_sla_check_is_the_next_warning_or_breach() {
        let mut incident = incident();
        let created = incident.created_at;
        let warn_response = created + TimeDelta::minutes(48);
        assert_eq!(incident.next_sla_check(0.8), Some(warn_response));
        assert_eq!(incident.next_sla_check(0.0), Some(incident.response_due));
        assert!(
            incident
                .due_sla_events(warn_response - TimeDelta::seconds(1), 0.8)
                .is_empty()
        );
        assert_eq!(
            incident.due_sla_events(warn_response, 0.8),
            vec![SlaEvent::Warning(Clock::Response)]
        );
        assert_eq!(incident.next_sla_check(0.8), Some(incident.response_due));
        incident
            .acknowledge(created + TimeDelta::minutes(50))
            .unwrap();
        let warn_resolve = created + TimeDelta::minutes(192);
        assert_eq!(incident.next_sla_check(0.8), Some(warn_resolve));
        assert_eq!(
            incident.due_sla_events(warn_resolve, 0.8),
            vec![SlaEvent::Warning(Clock::Resolve)]
        );
        let resolve_due = incident.resolve_due;
        assert_eq!(incident.next_sla_check(0.8), Some(resolve_due));
        assert_eq!(
            incident.due_sla_events(resolve_due + TimeDelta::seconds(1), 0.8),
            vec![SlaEvent::Breach(Clock::Resolve)]
        );
        assert_eq!(incident.next_sla_check(0.8), None, "both clocks done");
    }

    #[test]
    fn no_sla_check_while_on_hold_and_a_later_one_after() {
        let mut incident = incident();
        let created = incident.created_at;
        incident.hold(created + TimeDelta::minutes(10)).unwrap();
        assert_eq!(incident.next_sla_check(0.8), None);
        incident.unhold(created + TimeDelta::minutes(40)).unwrap();
        // 80 % of the response budget, now 90 minutes with the 30 held.
        assert_eq!(
            incident.next_sla_check(0.8),
            Some(created + TimeDelta::minutes(72))
        );
        incident.resolve(created + TimeDelta::minutes(50)).unwrap();
        assert_eq!(incident.next_sla_check(0.8), None);
    }
}
