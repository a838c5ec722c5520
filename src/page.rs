//! Paging values the writer decides and the outbox settles: the escalation timer of an
//! incident, a page (which message, to whom, on which channel, at which step, when,
//! and by when it must have gone out) and what became of one delivery attempt. Pure
//! data: the pipeline turns pages into outbox rows, the store keeps them.

use crate::name::UnknownName;
use crate::oncall::Channel;
use chrono::{DateTime, TimeDelta, Utc};
use std::str::FromStr;

/// What an escalation timer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationState {
    /// Paging tiers; `due_at` is when the next tier is paged.
    Tiers,
    /// Acknowledged; `due_at` is when it re-triggers unless resolved.
    AckTimeout,
}

impl EscalationState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tiers => "tiers",
            Self::AckTimeout => "ack_timeout",
        }
    }
}

impl FromStr for EscalationState {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        match text {
            "tiers" => Ok(Self::Tiers),
            "ack_timeout" => Ok(Self::AckTimeout),
            _ => Err(UnknownName::new(
                "escalation state",
                text,
                "tiers, ack_timeout",
            )),
        }
    }
}

/// The durable timer of one incident's escalation.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub incident_id: i64,
    pub policy: String,
    pub tier: i64,
    pub cycle: i64,
    pub steps: i64,
    pub due_at: Option<DateTime<Utc>>,
    pub state: EscalationState,
    /// The last step that paged someone (`L2#1`), re-paged after a priority upgrade.
    pub last_step: Option<String>,
}

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    Page,
    Resolved,
    /// A report (weekly): not tied to an incident; `step` names the period.
    Report,
    /// An update to a stakeholder (client contact): `step` is `opened`,
    /// `priority:P1` or `resolved`.
    Stakeholder,
    /// A failed drill, reported to the policy's last tier.
    DrillReport,
}

impl NotificationKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Resolved => "resolved",
            Self::Report => "report",
            Self::Stakeholder => "stakeholder",
            Self::DrillReport => "drill_report",
        }
    }
}

impl FromStr for NotificationKind {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        match text {
            "page" => Ok(Self::Page),
            "resolved" => Ok(Self::Resolved),
            "report" => Ok(Self::Report),
            "stakeholder" => Ok(Self::Stakeholder),
            "drill_report" => Ok(Self::DrillReport),
            _ => Err(UnknownName::new(
                "notification kind",
                text,
                "page, resolved, report, stakeholder, drill_report",
            )),
        }
    }
}

/// A message the escalation decided to send, before the outbox has a row for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub incident_id: i64,
    pub user_id: String,
    pub channel: Channel,
    pub address: String,
    pub kind: NotificationKind,
    /// The escalation step (`L2#1`) that caused it; part of its uniqueness.
    pub step: String,
    pub due_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

/// What happened to one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Sent,
    /// Try again at this time.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Given up.
    Failed {
        error: String,
    },
    /// Not sent: it no longer applies (a page for an incident acknowledged or
    /// resolved before it went out).
    Cancelled,
}

/// Why a delivery failed, which decides whether it is retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Worth another try later (server down, timeout, 5xx, 429).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (address refused, channel not configured).
    #[error("{0}")]
    Permanent(String),
}

impl NotifyError {
    /// What this failure of attempt `attempt` on row `id` (described by `what`) means
    /// for the row: retried after a backoff while it is transient and `deadline` is
    /// ahead, given up otherwise; and the timeline message that says so. The outbox
    /// and the ticket desk share this policy.
    pub fn settle(
        self,
        what: &str,
        attempt: i64,
        id: i64,
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> (Delivery, String) {
        match self {
            Self::Transient(error) if now < deadline => {
                let at = now + backoff(attempt, id);
                let message = format!(
                    "{what} attempt {attempt} failed: {error}; retrying in {}s",
                    (at - now).num_seconds()
                );
                (Delivery::Retry { at, error }, message)
            }
            error => (
                Delivery::Failed {
                    error: error.to_string(),
                },
                format!("{what} failed after {attempt} attempt(s): {error}"),
            ),
        }
    }
}

/// 5 s, 10 s, 20 s, 40 s, then 60 s, each shortened by up to 20 % by a jitter drawn
/// from the message id, so retries of many messages spread out and the first retry
/// still comes within 5 s.
pub fn backoff(attempt: i64, id: i64) -> TimeDelta {
    let exponent = u32::try_from(attempt.clamp(1, 5) - 1).unwrap_or(0);
    let base_ms = (5_000_i64 << exponent).min(60_000);
    let spread = (id.wrapping_mul(2_654_435_761) % 21).abs() - 20;
    TimeDelta::milliseconds(base_ms + base_ms * spread / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_within_five_seconds_and_caps_at_a_minute() {
        for id in 0..50 {
            let first = backoff(1, id);
            assert!(
                first >= TimeDelta::seconds(4) && first <= TimeDelta::seconds(5),
                "{first}"
            );
            assert!(backoff(10, id) <= TimeDelta::seconds(60));
        }
        assert!(backoff(3, 1) > backoff(2, 1));
    }
}
