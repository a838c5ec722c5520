//! The normalized alert every sender's payload is turned into, and the small
//! vocabulary types (severity, status, priority) the rest of the pipeline speaks.

use crate::name::UnknownName;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Labels are a sorted string map so their JSON form and hashes are stable.
pub type Labels = BTreeMap<String, String>;

/// How bad the sender says the problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    /// Reads the many words senders use (senders.md §0.3), case-insensitively.
    pub fn from_word(word: &str) -> Option<Self> {
        match word.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "page" | "emergency" | "fatal" | "p1" | "sev1" => {
                Some(Self::Critical)
            }
            "error" | "err" | "high" | "major" | "p2" | "sev2" => Some(Self::Error),
            "warning" | "warn" | "medium" | "minor" | "p3" | "sev3" => Some(Self::Warning),
            "info" | "informational" | "low" | "notice" | "none" | "p4" | "p5" => Some(Self::Info),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }

    /// The default classification of spec §3.
    pub fn default_priority(self) -> Priority {
        match self {
            Self::Critical => Priority::P1,
            Self::Error => Priority::P2,
            Self::Warning => Priority::P3,
            Self::Info => Priority::P4,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the sender says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl FromStr for AlertStatus {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        match text {
            "firing" => Ok(Self::Firing),
            "resolved" => Ok(Self::Resolved),
            _ => Err(UnknownName::new("alert status", text, "firing, resolved")),
        }
    }
}

/// P1 is the most urgent. The derived order makes `P1 < P2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    /// All priorities, most urgent first.
    pub const ALL: [Priority; 4] = [Self::P1, Self::P2, Self::P3, Self::P4];

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P1 => "P1",
            Self::P2 => "P2",
            Self::P3 => "P3",
            Self::P4 => "P4",
        }
    }

    /// Position in [`Priority::ALL`], for per-priority arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        match text {
            "P1" => Ok(Self::P1),
            "P2" => Ok(Self::P2),
            "P3" => Ok(Self::P3),
            "P4" => Ok(Self::P4),
            _ => Err(UnknownName::new("priority", text, "P1, P2, P3, P4")),
        }
    }
}

/// What a sender asked for, besides "here is the state of an alert".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAction {
    /// Fire, repeat or resolve, per `status`.
    Report,
    /// The sender's own acknowledgement (PagerDuty `acknowledge`): acknowledges the incident.
    Acknowledge,
    /// The sender put the object in scheduled downtime (Nagios `DOWNTIMESTART`):
    /// silence it, then treat the state as a report.
    DowntimeStart,
    /// The downtime ended or was cancelled: lift that silence.
    DowntimeEnd,
}

/// One alert as the pipeline sees it, whatever sender it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The ingest source name (`alertmanager`, `pagerduty`, `generic`, …).
    pub source: String,
    /// The sender's identity for this alert, or a stable hash; see the `dedup` module.
    pub dedup_key: String,
    pub resource: String,
    pub check: String,
    pub severity: Severity,
    pub status: AlertStatus,
    pub action: AlertAction,
    pub summary: String,
    /// Free-form sender details (annotations, custom details, …) as JSON.
    pub details: serde_json::Value,
    pub labels: Labels,
    pub links: Vec<String>,
    pub occurred_at: Option<DateTime<Utc>>,
}

impl Alert {
    /// The alert's fields as templates see them (runbook parameters, kb and remote
    /// links): the names rules use, with `labels` as a map.
    pub fn template_context(&self) -> serde_json::Value {
        serde_json::json!({
            "source": self.source,
            "resource": self.resource,
            "check": self.check,
            "severity": self.severity.as_str(),
            "status": self.status.as_str(),
            "summary": self.summary,
            "dedup_key": self.dedup_key,
            "labels": self.labels,
        })
    }

    /// Looks up a field by the name rules and templates use: `source`, `resource`,
    /// `check`, `severity`, `status`, `summary`, `dedup_key` or `labels.NAME`.
    pub fn field(&self, name: &str) -> Option<&str> {
        if let Some(label) = name.strip_prefix("labels.") {
            return self.labels.get(label).map(String::as_str);
        }
        match name {
            "source" => Some(&self.source),
            "resource" => Some(&self.resource),
            "check" => Some(&self.check),
            "severity" => Some(self.severity.as_str()),
            "status" => Some(self.status.as_str()),
            "summary" => Some(&self.summary),
            "dedup_key" => Some(&self.dedup_key),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_words_map_to_default_priorities() {
        assert_eq!(
            Severity::from_word("CRITICAL").unwrap().default_priority(),
            Priority::P1
        );
        assert_eq!(
            Severity::from_word("high").unwrap().default_priority(),
            Priority::P2
        );
        assert_eq!(
            Severity::from_word("warn").unwrap().default_priority(),
            Priority::P3
        );
        assert_eq!(
            Severity::from_word("low").unwrap().default_priority(),
            Priority::P4
        );
        assert_eq!(Severity::from_word("urgent"), None);
    }

    #[test]
    fn p1_is_more_urgent_than_p2() {
        assert!(Priority::P1 < Priority::P2);
    }
}
