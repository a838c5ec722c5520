//! Rows of the helpdesk integration: the ticket an incident has on each platform, and
//! the queue of calls to make there (open, add an internal note, solve).

use crate::name::UnknownName;
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

/// A ticketing platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Zendesk,
    Freshdesk,
    ServiceNow,
    Jira,
}

impl Platform {
    pub const ALL: [Platform; 4] = [Self::Zendesk, Self::Freshdesk, Self::ServiceNow, Self::Jira];

    /// The name used in the config, the API and the webhook route.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zendesk => "zendesk",
            Self::Freshdesk => "freshdesk",
            Self::ServiceNow => "servicenow",
            Self::Jira => "jira",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|platform| platform.as_str() == text)
            .ok_or_else(|| {
                UnknownName::new(
                    "ticket platform",
                    text,
                    "zendesk, freshdesk, servicenow, jira",
                )
            })
    }
}

/// A ticket opened for an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub incident_id: i64,
    pub platform: Platform,
    /// What people see and search for: `123`, `INC0010001`, `OPS-7`.
    pub id: String,
    /// What the platform's API addresses: usually `id`, ServiceNow's `sys_id`.
    pub reference: String,
    pub url: String,
}

impl Ticket {
    /// `{"platform", "id", "url"}`, as the API, emails and the dashboard show it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "platform": self.platform.as_str(), "id": self.id, "url": self.url })
    }
}

/// What a queued call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketOpKind {
    Create,
    Note,
    /// Set the ticket's priority to the incident's (after a raise).
    Priority,
    /// Mark it solved; the resolution itself goes as the note before.
    Solve,
}

impl TicketOpKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Note => "note",
            Self::Priority => "priority",
            Self::Solve => "solve",
        }
    }
}

impl FromStr for TicketOpKind {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        match text {
            "create" => Ok(Self::Create),
            "note" => Ok(Self::Note),
            "priority" => Ok(Self::Priority),
            "solve" => Ok(Self::Solve),
            _ => Err(UnknownName::new(
                "ticket call kind",
                text,
                "create, note, priority, solve",
            )),
        }
    }
}

/// One queued call to a ticketing platform. Calls for the same ticket are made in id
/// order, one at a time, so a note never overtakes the ticket it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketOp {
    /// 0 until stored.
    pub id: i64,
    pub incident_id: i64,
    pub platform: Platform,
    pub kind: TicketOpKind,
    /// `create` and `solve` (once per incident and platform, so an incident never gets
    /// two tickets), or a unique id for notes and priority changes.
    pub step: String,
    /// The note's text (for a solve, the resolution note).
    pub body: String,
    /// Attempts started, counted when claimed: one whose process died mid-call
    /// counts, so the next knows a create may already have been made.
    pub attempts: i64,
    pub due_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    /// When the change that called for it committed.
    pub queued_at: DateTime<Utc>,
}
