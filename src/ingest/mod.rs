//! Turns each sender's payload into normalized [`Alert`]s: one file per sender, each a
//! pure `parse(body, now)`. Decoding rules shared by all senders (JSON with named error
//! paths, timestamps) live here.

pub mod alertmanager;
pub mod changes;
pub mod datadog;
pub mod fields;
pub mod generic;
pub mod grafana;
pub mod nagios;
pub mod pagerduty;
pub mod prtg;

use crate::alert::Alert;
use crate::name::UnknownName;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use std::fmt;
use std::str::FromStr;

/// The senders of spec §6, each with its own route and `[sources.X]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    Alertmanager,
    Nagios,
    Prtg,
    Datadog,
    Grafana,
    Pagerduty,
    Generic,
}

impl SourceKind {
    /// Every sender, in route order.
    pub const ALL: [SourceKind; 7] = [
        Self::Alertmanager,
        Self::Nagios,
        Self::Prtg,
        Self::Datadog,
        Self::Grafana,
        Self::Pagerduty,
        Self::Generic,
    ];

    /// The name used in routes, config and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alertmanager => "alertmanager",
            Self::Nagios => "nagios",
            Self::Prtg => "prtg",
            Self::Datadog => "datadog",
            Self::Grafana => "grafana",
            Self::Pagerduty => "pagerduty",
            Self::Generic => "generic",
        }
    }

    /// Senders that may post `application/x-www-form-urlencoded` (spec §10).
    pub fn accepts_form(self) -> bool {
        matches!(self, Self::Nagios | Self::Prtg | Self::Datadog)
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                UnknownName::new(
                    "sender",
                    text,
                    "alertmanager, grafana, nagios, prtg, datadog, pagerduty, generic",
                )
            })
    }
}

/// Why a payload was refused. Always the sender's fault (400), never ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IngestError {
    /// The offending field's path, such as `alerts[0].status`, when there is one.
    pub field: Option<String>,
    pub message: String,
}

impl IngestError {
    /// An error about one field.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(path.into()),
            message: message.into(),
        }
    }

    /// An error about the body as a whole.
    pub fn body(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }

    /// `field: message`, for the `detail` of a 400.
    pub fn detail(&self) -> String {
        match &self.field {
            Some(field) => format!("{field}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// What a payload asks for: the alerts, plus the PagerDuty `routing_key` that may
/// authenticate it.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub alerts: Vec<Alert>,
    pub routing_key: Option<String>,
}

/// Parses a body for `kind`.
pub fn parse(kind: SourceKind, body: &[u8], now: DateTime<Utc>) -> Result<Payload, IngestError> {
    let mut payload = parse_unbounded(kind, without_bom(body), now)?;
    for alert in &mut payload.alerts {
        bound(alert)?;
    }
    Ok(payload)
}

/// The body without the UTF-8 byte order mark Windows PowerShell and .NET senders
/// put before their JSON, which JSON parsers refuse at "line 1 column 1".
pub fn without_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// PostgreSQL cannot store a NUL character in a text column: one would fail the
/// commit of a whole batch, so text that lands in one refuses it at the door. (In
/// JSON kept whole, such as an alert's details, it is stored escaped and is fine.)
pub fn refuse_nul(field: &str, text: &str) -> Result<(), IngestError> {
    if text.contains('\0') {
        return Err(IngestError::field(
            field,
            "contains a NUL character (\\u0000), which cannot be stored; remove it",
        ));
    }
    Ok(())
}

/// Longest sender identity kept (it lives in memory while the alert fires).
const MAX_DEDUP_KEY_BYTES: usize = 255;
const MAX_LABELS: usize = 64;
const MAX_LABEL_NAME_BYTES: usize = 128;
const MAX_LABEL_VALUE_BYTES: usize = 1024;
const MAX_SUMMARY_CHARS: usize = 1024;
/// A resource or check is a name (it titles the incident and every page), held to
/// a label value's limit: a 500 KB host name made a 2 MB page email.
const MAX_NAME_BYTES: usize = 1024;
/// Longer links are dropped like links that are not `http(s)`.
const MAX_LINK_BYTES: usize = 2048;

/// Holds an alert to the limits of SPEC §11: identities and labels over them are
/// refused (naming the field), a long summary is cut, and links that are not
/// `http(s)` are dropped, since they end up clickable in emails and pages.
fn bound(alert: &mut Alert) -> Result<(), IngestError> {
    // Forms decode %00 to a NUL the JSON check never sees.
    let texts = [
        ("dedup_key", &alert.dedup_key),
        ("resource", &alert.resource),
        ("check", &alert.check),
        ("summary", &alert.summary),
    ];
    let labels = alert
        .labels
        .iter()
        .flat_map(|(name, value)| [("labels", name), ("labels", value)]);
    let links = alert.links.iter().map(|link| ("links", link));
    for (field, text) in texts.into_iter().chain(labels).chain(links) {
        refuse_nul(field, text)?;
    }
    if alert.dedup_key.len() > MAX_DEDUP_KEY_BYTES {
        return Err(IngestError::field(
            "dedup_key",
            format!(
                "is {} bytes; send at most {MAX_DEDUP_KEY_BYTES} (a hash of a longer identity works)",
                alert.dedup_key.len()
            ),
        ));
    }
    for (field, name) in [("resource", &alert.resource), ("check", &alert.check)] {
        if name.len() > MAX_NAME_BYTES {
            return Err(IngestError::field(
                field,
                format!(
                    "is {} bytes; send at most {MAX_NAME_BYTES} (a name, not a description: put long text in summary or details)",
                    name.len()
                ),
            ));
        }
    }
    if alert.labels.len() > MAX_LABELS {
        return Err(IngestError::field(
            "labels",
            format!(
                "has {} labels; send at most {MAX_LABELS}",
                alert.labels.len()
            ),
        ));
    }
    for (name, value) in &alert.labels {
        let shown: String = name.chars().take(40).collect();
        if name.len() > MAX_LABEL_NAME_BYTES {
            return Err(IngestError::field(
                format!("labels.{shown}"),
                format!("the label name is over {MAX_LABEL_NAME_BYTES} bytes"),
            ));
        }
        if value.len() > MAX_LABEL_VALUE_BYTES {
            return Err(IngestError::field(
                format!("labels.{shown}"),
                format!(
                    "the value is over {MAX_LABEL_VALUE_BYTES} bytes; put long text in the description"
                ),
            ));
        }
    }
    if alert.summary.chars().count() > MAX_SUMMARY_CHARS {
        let mut cut: String = alert.summary.chars().take(MAX_SUMMARY_CHARS - 1).collect();
        cut.push('…');
        alert.summary = cut;
    }
    alert
        .links
        .retain(|link| is_web_link(link) && link.len() <= MAX_LINK_BYTES);
    Ok(())
}

/// Whether a link is `http://` or `https://` (any case): the only schemes that
/// may become clickable in a message.
pub fn is_web_link(link: &str) -> bool {
    let lower = link.trim_start().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn parse_unbounded(
    kind: SourceKind,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Payload, IngestError> {
    match kind {
        SourceKind::Alertmanager => alertmanager::parse(body, now).map(Payload::alerts),
        SourceKind::Pagerduty => pagerduty::parse(body, now),
        SourceKind::Generic => generic::parse(body, now).map(Payload::alerts),
        SourceKind::Nagios => nagios::parse(body, now).map(Payload::alerts),
        SourceKind::Prtg => prtg::parse(body, now).map(Payload::alerts),
        SourceKind::Datadog => datadog::parse(body, now).map(Payload::alerts),
        SourceKind::Grafana => grafana::parse(body, now).map(Payload::alerts),
    }
}

impl Payload {
    fn alerts(alerts: Vec<Alert>) -> Self {
        Self {
            alerts,
            routing_key: None,
        }
    }
}

/// Decodes JSON strictly: trailing data, duplicate fields, wrong types and excessive
/// nesting are errors that name the path of the offending field.
pub fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, IngestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::body("the body is empty; send a JSON document"));
    }

    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = crate::serde_text::readable(&format!("invalid JSON: {inner}"));
        if path == "." || path == "?" || path.is_empty() {
            IngestError::body(message)
        } else {
            IngestError::field(path, message)
        }
    })?;
    deserializer
        .end()
        .map_err(|error| IngestError::body(format!("invalid JSON: {error}")))?;
    Ok(value)
}

/// Reads the timestamp shapes senders use (senders.md §0.1.5). Go's zero time and
/// unreadable values mean "none": the receipt time is used instead.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() || text.starts_with("0001-01-01") {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|at| at.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|naive| naive.and_utc())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_sender_shapes() {
        assert!(parse_time("2025-03-14T09:07:41.517Z").is_some());
        assert!(parse_time("2015-07-17T08:42:58.315+0000").is_some());
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)] // read only through Debug in the assertion
        struct Shape {
            alerts: Vec<String>,
        }
        let error = from_json::<Shape>(br#"{"alerts": {"a": 1}}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("alerts"));
        assert!(
            from_json::<Shape>(br#"{"alerts": []} {}"#)
                .unwrap_err()
                .message
                .contains("trailing")
        );
        assert!(
            from_json::<Shape>(b"  \n")
                .unwrap_err()
                .message
                .contains("empty")
        );
    }
}
