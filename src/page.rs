//! Paging values the writer decides and the outbox settles: the escalation timer of an
//! incident, a page (which message, to whom, on which channel, at which step, when,
//! and by when it must have gone out) and what became of one delivery attempt. Pure
//! data: the pipeline turns pages into outbox rows, the store keeps them.

use crate::name::UnknownName;
use crate::oncall::Channel;
use chrono::{DateTime, Utc};
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
