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
