//! Rows of the paging machinery: outbox notifications; the timer and the values it
//! stores are [`crate::page`]'s.

use crate::oncall::Channel;
use chrono::{DateTime, Utc};

pub use crate::page::{Delivery, Escalation, EscalationState, NotificationKind};

/// One message to one person on one channel, as queued in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// 0 until stored.
    pub id: i64,
    pub incident_id: i64,
    pub user_id: String,
    pub channel: Channel,
    pub address: String,
    pub kind: NotificationKind,
    /// The escalation step (`L2#1`) that caused it; part of its uniqueness.
    pub step: String,
    pub attempts: i64,
    pub due_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

/// A page that reached someone: whom an incident's resolution tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged {
    pub incident_id: i64,
    pub user_id: String,
    pub channel: String,
    pub address: String,
}

/// The outcome of one attempt on a claimed message, and the timeline line that tells
/// it (none for a report, which belongs to no incident, or a cancelled page): the
/// store writes the two together, so a timeline never misses a message that went
/// out, nor tells of one whose row says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    pub id: i64,
    /// The claim the attempt was made under: a row another claim holds now is left.
    pub claim: String,
    pub delivery: Delivery,
    pub at: DateTime<Utc>,
    pub timeline: Option<crate::incident::TimelineEntry>,
}

/// What the pages of one flush show of their incidents, read together for all of
/// them: the incidents (one gone since is missing), their newest alerts (up to the
/// number asked for, per incident), tickets, and runs waiting for approval (oldest
/// first).
#[derive(Debug, Default)]
pub struct PageFacts {
    pub incidents: Vec<crate::incident::Incident>,
    pub alerts: Vec<super::AlertRecord>,
    pub tickets: Vec<super::tickets::Ticket>,
    pub approvals: Vec<super::runs::RunRecord>,
}
