//! What a timeline entry records: one name per kind, stored and served snake_case
//! under the names SPEC §11 keeps (`opened`, `paging`, `notified`…).

use serde::{Serialize, Serializer};
use std::fmt;

/// The kind of a timeline entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TimelineKind {
    /// An incident opened.
    Opened,
    /// An alert joined the incident.
    AlertAdded,
    /// One of its alerts resolved.
    AlertResolved,
    /// A sender acknowledged one of its alerts.
    AlertAcknowledged,
    /// A more urgent alert raised its priority.
    PriorityRaised,
    /// An alert started flapping.
    Flapping,
    /// Paging could not reach someone (no policy, nobody on call, no channel).
    Paging,
    /// A tier was paged.
    Escalated,
    /// A tier with nobody to page was skipped.
    EscalationSkipped,
    /// A responder asked to page the next tier.
    EscalationRequested,
    /// Acknowledged but not resolved within the ack timeout: paging again.
    Retriggered,
    /// A message went out.
    Notified,
    /// A message failed and will be tried again.
    NotificationRetry,
    /// A message was given up.
    NotificationFailed,
    /// A message went to the next channel instead.
    NotificationFallback,
    Acknowledged,
    Resolved,
    /// A human's note.
    Note,
    /// The SLA clocks were paused.
    Hold,
    /// The SLA clocks run again.
    Unhold,
    /// Part of an SLA budget is used up.
    SlaWarning,
    /// An SLA deadline passed.
    SlaBreach,
    RunbookStarted,
    RunbookSuccess,
    RunbookFailure,
    RunbookTimeout,
    /// A guard (cooldown, cap, concurrency, breaker) refused a run.
    RunbookRefused,
    /// A run waits for a running one.
    RunbookWaiting,
    /// A run waits for a responder's approval.
    RunbookPendingApproval,
    RunbookApproved,
    RunbookApprovalExpired,
    /// Tocsin stopped while a run was going.
    RunbookInterrupted,
    /// A runbook resolved the incident.
    AutoRemediated,
    /// A failed runbook paged a tier.
    EscalatedByRunbook,
    TicketOpened,
    TicketNoted,
    TicketPriority,
    TicketSolved,
    TicketRetry,
    TicketFailed,
    /// A paging drill started.
    Drill,
    /// A drill ended unacknowledged.
    DrillFailed,
    /// A name this version does not know (a row written by a newer one): kept and
    /// served as it was stored, so a timeline always loads.
    Other(String),
}

impl TimelineKind {
    /// The stored and served name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Opened => "opened",
            Self::AlertAdded => "alert_added",
            Self::AlertResolved => "alert_resolved",
            Self::AlertAcknowledged => "alert_acknowledged",
            Self::PriorityRaised => "priority_raised",
            Self::Flapping => "flapping",
            Self::Paging => "paging",
            Self::Escalated => "escalated",
            Self::EscalationSkipped => "escalation_skipped",
            Self::EscalationRequested => "escalation_requested",
            Self::Retriggered => "retriggered",
            Self::Notified => "notified",
            Self::NotificationRetry => "notification_retry",
            Self::NotificationFailed => "notification_failed",
            Self::NotificationFallback => "notification_fallback",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Note => "note",
            Self::Hold => "hold",
            Self::Unhold => "unhold",
            Self::SlaWarning => "sla_warning",
            Self::SlaBreach => "sla_breach",
            Self::RunbookStarted => "runbook_started",
            Self::RunbookSuccess => "runbook_success",
            Self::RunbookFailure => "runbook_failure",
            Self::RunbookTimeout => "runbook_timeout",
            Self::RunbookRefused => "runbook_refused",
            Self::RunbookWaiting => "runbook_waiting",
            Self::RunbookPendingApproval => "runbook_pending_approval",
            Self::RunbookApproved => "runbook_approved",
            Self::RunbookApprovalExpired => "runbook_approval_expired",
            Self::RunbookInterrupted => "runbook_interrupted",
            Self::AutoRemediated => "auto_remediated",
            Self::EscalatedByRunbook => "escalated_by_runbook",
            Self::TicketOpened => "ticket_opened",
            Self::TicketNoted => "ticket_noted",
            Self::TicketPriority => "ticket_priority",
            Self::TicketSolved => "ticket_solved",
            Self::TicketRetry => "ticket_retry",
            Self::TicketFailed => "ticket_failed",
            Self::Drill => "drill",
            Self::DrillFailed => "drill_failed",
            Self::Other(name) => name,
        }
    }
}

/// Any name is a kind: a known one its variant, any other kept as [`TimelineKind::Other`].
impl From<&str> for TimelineKind {
    fn from(name: &str) -> Self {
        match name {
            "opened" => Self::Opened,
            "alert_added" => Self::AlertAdded,
            "alert_resolved" => Self::AlertResolved,
            "alert_acknowledged" => Self::AlertAcknowledged,
            "priority_raised" => Self::PriorityRaised,
            "flapping" => Self::Flapping,
            "paging" => Self::Paging,
            "escalated" => Self::Escalated,
            "escalation_skipped" => Self::EscalationSkipped,
            "escalation_requested" => Self::EscalationRequested,
            "retriggered" => Self::Retriggered,
            "notified" => Self::Notified,
            "notification_retry" => Self::NotificationRetry,
            "notification_failed" => Self::NotificationFailed,
            "notification_fallback" => Self::NotificationFallback,
            "acknowledged" => Self::Acknowledged,
            "resolved" => Self::Resolved,
            "note" => Self::Note,
            "hold" => Self::Hold,
            "unhold" => Self::Unhold,
            "sla_warning" => Self::SlaWarning,
            "sla_breach" => Self::SlaBreach,
            "runbook_started" => Self::RunbookStarted,
            "runbook_success" => Self::RunbookSuccess,
            "runbook_failure" => Self::RunbookFailure,
            "runbook_timeout" => Self::RunbookTimeout,
            "runbook_refused" => Self::RunbookRefused,
            "runbook_waiting" => Self::RunbookWaiting,
            "runbook_pending_approval" => Self::RunbookPendingApproval,
            "runbook_approved" => Self::RunbookApproved,
            "runbook_approval_expired" => Self::RunbookApprovalExpired,
            "runbook_interrupted" => Self::RunbookInterrupted,
            "auto_remediated" => Self::AutoRemediated,
            "escalated_by_runbook" => Self::EscalatedByRunbook,
            "ticket_opened" => Self::TicketOpened,
            "ticket_noted" => Self::TicketNoted,
            "ticket_priority" => Self::TicketPriority,
            "ticket_solved" => Self::TicketSolved,
            "ticket_retry" => Self::TicketRetry,
            "ticket_failed" => Self::TicketFailed,
            "drill" => Self::Drill,
            "drill_failed" => Self::DrillFailed,
            other => Self::Other(other.to_string()),
        }
    }
}

impl From<String> for TimelineKind {
    fn from(name: String) -> Self {
        Self::from(name.as_str())
    }
}

impl fmt::Display for TimelineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TimelineKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_keeps_its_stored_name() {
        for name in [
            "opened",
            "alert_added",
            "alert_resolved",
            "alert_acknowledged",
            "priority_raised",
            "flapping",
            "paging",
            "escalated",
            "escalation_skipped",
            "escalation_requested",
            "retriggered",
            "notified",
            "notification_retry",
            "notification_failed",
            "notification_fallback",
            "acknowledged",
            "resolved",
            "note",
            "hold",
            "unhold",
            "sla_warning",
            "sla_breach",
            "runbook_started",
            "runbook_success",
            "runbook_failure",
            "runbook_timeout",
            "runbook_refused",
            "runbook_waiting",
            "runbook_pending_approval",
            "runbook_approved",
            "runbook_approval_expired",
            "runbook_interrupted",
            "auto_remediated",
            "escalated_by_runbook",
            "ticket_opened",
            "ticket_noted",
            "ticket_priority",
            "ticket_solved",
            "ticket_retry",
            "ticket_failed",
            "drill",
            "drill_failed",
        ] {
            let kind = TimelineKind::from(name);
            assert!(
                !matches!(kind, TimelineKind::Other(_)),
                "{name} has a variant"
            );
            assert_eq!(kind.as_str(), name);
            assert_eq!(serde_json::to_value(&kind).unwrap(), name);
        }
    }

    #[test]
    fn an_unknown_name_still_loads_as_it_was() {
        let kind = TimelineKind::from("written_by_a_newer_version");
        assert_eq!(
            kind,
            TimelineKind::Other("written_by_a_newer_version".into())
        );
        assert_eq!(kind.to_string(), "written_by_a_newer_version");
    }
}
