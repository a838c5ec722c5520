//! What a timeline entry records: one kind per event, stored and served snake_case
//! under the names SPEC §11 keeps (`opened`, `paging`, `notified`…), each carrying
//! the data its event has (which alert opened it, which message went out, which run
//! ended how). The store keeps the name and the data as JSON beside it.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Which alert opened an incident, and under which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    /// The dedup key of the alert.
    pub alert: String,
    pub rule: Option<String>,
}

/// A message and its recipient, on every delivery kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub channel: String,
    pub user: String,
    pub step: String,
    /// The outbox row; absent when the provider reported the outcome (a voice call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<i64>,
}

/// A runbook run that started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStart {
    pub run_id: i64,
    pub params: BTreeMap<String, String>,
}

/// A run proposed to a responder, and until when they may approve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub run_id: i64,
    pub runbook: String,
    pub params: BTreeMap<String, String>,
    #[serde(serialize_with = "millis")]
    pub approval_due: DateTime<Utc>,
}

/// How a run ended, with what it printed (already redacted and cut to size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEnd {
    pub run_id: i64,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub output: String,
}

/// A call to a helpdesk platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketCall {
    pub platform: String,
    pub op: String,
    pub attempt: i64,
}

/// The kind of a timeline entry, with its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineKind {
    /// An incident opened.
    Opened(Opening),
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
    Notified(Message),
    /// A message failed and will be tried again.
    NotificationRetry(Message),
    /// A message was given up.
    NotificationFailed(Message),
    /// A message went to the next channel instead.
    NotificationFallback(Message),
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
    RunbookStarted(RunStart),
    RunbookSuccess(RunEnd),
    RunbookFailure(RunEnd),
    RunbookTimeout(RunEnd),
    /// A guard (cooldown, cap, concurrency, breaker) refused a run.
    RunbookRefused,
    /// A run waits for a running one.
    RunbookWaiting,
    /// A run waits for a responder's approval.
    RunbookPendingApproval(Proposal),
    RunbookApproved,
    RunbookApprovalExpired,
    /// Tocsin stopped while a run was going.
    RunbookInterrupted,
    /// A runbook resolved the incident.
    AutoRemediated,
    /// A failed runbook paged a tier.
    EscalatedByRunbook,
    TicketOpened(TicketCall),
    TicketNoted(TicketCall),
    TicketPriority(TicketCall),
    TicketSolved(TicketCall),
    TicketRetry(TicketCall),
    TicketFailed(TicketCall),
    /// A paging drill started.
    Drill,
    /// A drill ended unacknowledged.
    DrillFailed,
    /// A name this version does not know (a row written by a newer one), or a known
    /// name whose data does not fit: kept and served as it was stored, so a timeline
    /// always loads.
    Other {
        name: String,
        data: Value,
    },
}

impl TimelineKind {
    /// The stored and served name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Opened(_) => "opened",
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
            Self::Notified(_) => "notified",
            Self::NotificationRetry(_) => "notification_retry",
            Self::NotificationFailed(_) => "notification_failed",
            Self::NotificationFallback(_) => "notification_fallback",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Note => "note",
            Self::Hold => "hold",
            Self::Unhold => "unhold",
            Self::SlaWarning => "sla_warning",
            Self::SlaBreach => "sla_breach",
            Self::RunbookStarted(_) => "runbook_started",
            Self::RunbookSuccess(_) => "runbook_success",
            Self::RunbookFailure(_) => "runbook_failure",
            Self::RunbookTimeout(_) => "runbook_timeout",
            Self::RunbookRefused => "runbook_refused",
            Self::RunbookWaiting => "runbook_waiting",
            Self::RunbookPendingApproval(_) => "runbook_pending_approval",
            Self::RunbookApproved => "runbook_approved",
            Self::RunbookApprovalExpired => "runbook_approval_expired",
            Self::RunbookInterrupted => "runbook_interrupted",
            Self::AutoRemediated => "auto_remediated",
            Self::EscalatedByRunbook => "escalated_by_runbook",
            Self::TicketOpened(_) => "ticket_opened",
            Self::TicketNoted(_) => "ticket_noted",
            Self::TicketPriority(_) => "ticket_priority",
            Self::TicketSolved(_) => "ticket_solved",
            Self::TicketRetry(_) => "ticket_retry",
            Self::TicketFailed(_) => "ticket_failed",
            Self::Drill => "drill",
            Self::DrillFailed => "drill_failed",
            Self::Other { name, .. } => name,
        }
    }

    /// The stored and served data: the variant's fields as a JSON object, `null`
    /// for a kind that has none.
    pub fn data(&self) -> Value {
        let typed = match self {
            Self::Opened(opening) => serde_json::to_value(opening),
            Self::Notified(delivery)
            | Self::NotificationRetry(delivery)
            | Self::NotificationFailed(delivery)
            | Self::NotificationFallback(delivery) => serde_json::to_value(delivery),
            Self::RunbookStarted(start) => serde_json::to_value(start),
            Self::RunbookPendingApproval(proposal) => serde_json::to_value(proposal),
            Self::RunbookSuccess(end) | Self::RunbookFailure(end) | Self::RunbookTimeout(end) => {
                serde_json::to_value(end)
            }
            Self::TicketOpened(call)
            | Self::TicketNoted(call)
            | Self::TicketPriority(call)
            | Self::TicketSolved(call)
            | Self::TicketRetry(call)
            | Self::TicketFailed(call) => serde_json::to_value(call),
            Self::Other { data, .. } => return data.clone(),
            _ => return Value::Null,
        };
        // Plain structs with string keys always serialize.
        typed.unwrap_or(Value::Null)
    }

    /// The kind a stored row names, with its data.
    pub fn stored(name: &str, data: Value) -> Self {
        Self::known(name, &data).unwrap_or_else(|| Self::Other {
            name: name.to_string(),
            data,
        })
    }

    fn known(name: &str, data: &Value) -> Option<Self> {
        let bare = |kind: Self| data.is_null().then_some(kind);
        match name {
            "opened" => typed(data, Self::Opened),
            "alert_added" => bare(Self::AlertAdded),
            "alert_resolved" => bare(Self::AlertResolved),
            "alert_acknowledged" => bare(Self::AlertAcknowledged),
            "priority_raised" => bare(Self::PriorityRaised),
            "flapping" => bare(Self::Flapping),
            "paging" => bare(Self::Paging),
            "escalated" => bare(Self::Escalated),
            "escalation_skipped" => bare(Self::EscalationSkipped),
            "escalation_requested" => bare(Self::EscalationRequested),
            "retriggered" => bare(Self::Retriggered),
            "notified" => typed(data, Self::Notified),
            "notification_retry" => typed(data, Self::NotificationRetry),
            "notification_failed" => typed(data, Self::NotificationFailed),
            "notification_fallback" => typed(data, Self::NotificationFallback),
            "acknowledged" => bare(Self::Acknowledged),
            "resolved" => bare(Self::Resolved),
            "note" => bare(Self::Note),
            "hold" => bare(Self::Hold),
            "unhold" => bare(Self::Unhold),
            "sla_warning" => bare(Self::SlaWarning),
            "sla_breach" => bare(Self::SlaBreach),
            "runbook_started" => typed(data, Self::RunbookStarted),
            "runbook_success" => typed(data, Self::RunbookSuccess),
            "runbook_failure" => typed(data, Self::RunbookFailure),
            "runbook_timeout" => typed(data, Self::RunbookTimeout),
            "runbook_refused" => bare(Self::RunbookRefused),
            "runbook_waiting" => bare(Self::RunbookWaiting),
            "runbook_pending_approval" => typed(data, Self::RunbookPendingApproval),
            "runbook_approved" => bare(Self::RunbookApproved),
            "runbook_approval_expired" => bare(Self::RunbookApprovalExpired),
            "runbook_interrupted" => bare(Self::RunbookInterrupted),
            "auto_remediated" => bare(Self::AutoRemediated),
            "escalated_by_runbook" => bare(Self::EscalatedByRunbook),
            "ticket_opened" => typed(data, Self::TicketOpened),
            "ticket_noted" => typed(data, Self::TicketNoted),
            "ticket_priority" => typed(data, Self::TicketPriority),
            "ticket_solved" => typed(data, Self::TicketSolved),
            "ticket_retry" => typed(data, Self::TicketRetry),
            "ticket_failed" => typed(data, Self::TicketFailed),
            "drill" => bare(Self::Drill),
            "drill_failed" => bare(Self::DrillFailed),
            _ => None,
        }
    }

    /// The failed delivery, for the KPIs of undelivered channels.
    pub fn failed_delivery(&self) -> Option<&Message> {
        match self {
            Self::NotificationFailed(delivery) => Some(delivery),
            _ => None,
        }
    }

    /// What a run printed, when the entry is a run's end.
    pub fn run_output(&self) -> Option<&str> {
        match self {
            Self::RunbookSuccess(end) | Self::RunbookFailure(end) | Self::RunbookTimeout(end) => {
                Some(&end.output)
            }
            _ => None,
        }
    }
}

fn typed<T: DeserializeOwned>(data: &Value, make: fn(T) -> TimelineKind) -> Option<TimelineKind> {
    T::deserialize(data).ok().map(make)
}

/// Timestamps in the data are written as everywhere else in the API: RFC 3339 in
/// milliseconds, UTC.
fn millis<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
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
    use serde_json::json;

    fn message() -> Message {
        Message {
            channel: "email".into(),
            user: "alice".into(),
            step: "L1".into(),
            notification: Some(7),
        }
    }

    fn run_end() -> RunEnd {
        RunEnd {
            run_id: 3,
            exit_code: Some(0),
            timed_out: false,
            output: "restarted".into(),
        }
    }

    fn every_kind() -> Vec<TimelineKind> {
        use TimelineKind::*;
        let call = TicketCall {
            platform: "zendesk".into(),
            op: "create".into(),
            attempt: 1,
        };
        let params = BTreeMap::from([("user".to_string(), "jdoe".to_string())]);
        vec![
            Opened(Opening {
                alert: "disk:db-1".into(),
                rule: Some("disk".into()),
            }),
            AlertAdded,
            AlertResolved,
            AlertAcknowledged,
            PriorityRaised,
            Flapping,
            Paging,
            Escalated,
            EscalationSkipped,
            EscalationRequested,
            Retriggered,
            Notified(message()),
            NotificationRetry(message()),
            NotificationFailed(message()),
            NotificationFallback(message()),
            Acknowledged,
            Resolved,
            Note,
            Hold,
            Unhold,
            SlaWarning,
            SlaBreach,
            RunbookStarted(RunStart {
                run_id: 3,
                params: params.clone(),
            }),
            RunbookSuccess(run_end()),
            RunbookFailure(run_end()),
            RunbookTimeout(run_end()),
            RunbookRefused,
            RunbookWaiting,
            RunbookPendingApproval(Proposal {
                run_id: 3,
                runbook: "restart".into(),
                params,
                approval_due: DateTime::from_timestamp_millis(1_700_000_000_000)
                    .unwrap_or_default(),
            }),
            RunbookApproved,
            RunbookApprovalExpired,
            RunbookInterrupted,
            AutoRemediated,
            EscalatedByRunbook,
            TicketOpened(call.clone()),
            TicketNoted(call.clone()),
            TicketPriority(call.clone()),
            TicketSolved(call.clone()),
            TicketRetry(call.clone()),
            TicketFailed(call),
            Drill,
            DrillFailed,
        ]
    }

    #[test]
    fn every_kind_loads_back_as_it_was_stored() {
        let kinds = every_kind();
        assert_eq!(kinds.len(), 42);
        for kind in kinds {
            let (name, data) = (kind.as_str().to_string(), kind.data());
            let loaded = TimelineKind::stored(&name, data);
            assert_eq!(loaded, kind, "{name}");
            assert_eq!(serde_json::to_value(&loaded).unwrap(), name.as_str());
        }
    }

    #[test]
    fn the_data_keeps_the_field_names_clients_read() {
        assert_eq!(
            TimelineKind::Notified(message()).data(),
            json!({ "channel": "email", "user": "alice", "step": "L1", "notification": 7 })
        );
        let call = TimelineKind::Opened(Opening {
            alert: "k".into(),
            rule: None,
        });
        assert_eq!(call.data(), json!({ "alert": "k", "rule": null }));
        let voice = Message {
            notification: None,
            ..message()
        };
        assert_eq!(
            TimelineKind::NotificationFailed(voice).data(),
            json!({ "channel": "email", "user": "alice", "step": "L1" })
        );
        assert_eq!(TimelineKind::Note.data(), Value::Null);
    }

    #[test]
    fn an_unknown_name_or_unfitting_data_still_loads_as_it_was() {
        let data = json!({ "newer": true });
        let kind = TimelineKind::stored("written_by_a_newer_version", data.clone());
        assert_eq!(kind.to_string(), "written_by_a_newer_version");
        assert_eq!(kind.data(), data);
        let odd = TimelineKind::stored("notified", json!({ "channel": 5 }));
        assert!(matches!(odd, TimelineKind::Other { .. }));
        assert_eq!(odd.as_str(), "notified");
        assert_eq!(odd.data(), json!({ "channel": 5 }));
    }
}
