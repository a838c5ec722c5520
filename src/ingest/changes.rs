//! Change-event bodies: PagerDuty's Events API v2 change events
//! (`POST /v2/change/enqueue`) and Tocsin's own (`POST /api/v1/changes`). Pure.

use super::{IngestError, from_json, is_web_link, parse_time};
use crate::change::{Change, ChangeLink};
use chrono::{DateTime, Utc};
use serde::Deserialize;

const MAX_SUMMARY: usize = 1024;
const MAX_FIELD: usize = 255;

/// A parsed change with the routing key a PagerDuty sender may authenticate with.
#[derive(Debug)]
pub struct ChangeEvent {
    pub change: Change,
    pub routing_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PagerdutyChange {
    #[serde(default)]
    routing_key: Option<String>,
    payload: PagerdutyPayload,
    #[serde(default)]
    links: Vec<ChangeLink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PagerdutyPayload {
    summary: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    custom_details: Option<serde_json::Value>,
}

/// PagerDuty's change event. Its `payload.source` is where the change happened, so
/// it is the change's resource; the reporting tool is `pagerduty`.
pub fn pagerduty(body: &[u8], now: DateTime<Utc>) -> Result<ChangeEvent, IngestError> {
    let event: PagerdutyChange = from_json(body)?;
    let change = Change {
        id: 0,
        source: "pagerduty".into(),
        summary: summary(&event.payload.summary, "payload.summary")?,
        resource: optional(event.payload.source, "payload.source")?,
        at: time(event.payload.timestamp.as_deref(), "payload.timestamp", now)?,
        links: web_links(event.links),
        details: event.payload.custom_details.unwrap_or_default(),
    };
    Ok(ChangeEvent {
        change,
        routing_key: event.routing_key,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TocsinChange {
    summary: String,
    source: String,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    links: Vec<LinkField>,
    /// An object, as documented: an array or a number here is a sender's mistake.
    #[serde(default)]
    details: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A link as a plain URL or as `{"href", "text"}`. The refusal names both shapes
/// instead of serde's "did not match any variant of untagged enum".
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a link is a URL string or {\"href\": URL, \"text\": label}"
)]
enum LinkField {
    Url(String),
    Link(ChangeLink),
}

/// `POST /api/v1/changes`: `summary`, `source`, optional `resource`, `timestamp`,
/// `links`, `details`.
pub fn tocsin(body: &[u8], now: DateTime<Utc>) -> Result<Change, IngestError> {
    let event: TocsinChange = from_json(body)?;
    let links = event
        .links
        .into_iter()
        .map(|link| match link {
            LinkField::Url(href) => ChangeLink { href, text: None },
            LinkField::Link(link) => link,
        })
        .collect();
    let source = optional(Some(event.source), "source")?.ok_or_else(|| {
        IngestError::field("source", "is empty; name the tool, e.g. \"github-actions\"")
    })?;
    Ok(Change {
        id: 0,
        source,
        summary: summary(&event.summary, "summary")?,
        resource: optional(event.resource, "resource")?,
        at: time(event.timestamp.as_deref(), "timestamp", now)?,
        links: web_links(links),
        details: event
            .details
            .map(serde_json::Value::Object)
            .unwrap_or_default(),
    })
}

fn summary(text: &str, field: &str) -> Result<String, IngestError> {
    super::refuse_nul(field, text)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(IngestError::field(
            field,
            "is empty; say what changed, e.g. \"deploy api v1.4.2\"",
        ));
    }
    if text.chars().count() > MAX_SUMMARY {
        let mut cut: String = text.chars().take(MAX_SUMMARY - 1).collect();
        cut.push('…');
        return Ok(cut);
    }
    Ok(text.to_string())
}

fn optional(value: Option<String>, field: &str) -> Result<Option<String>, IngestError> {
    let Some(value) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    super::refuse_nul(field, &value)?;
    if value.len() > MAX_FIELD {
        return Err(IngestError::field(
            field,
            format!("is over {MAX_FIELD} bytes"),
        ));
    }
    Ok(Some(value))
}

/// How far ahead of this server's clock a change may say it happened (clock skew):
/// the list is newest first, so one dated years ahead would head it for ever.
const MAX_AHEAD: chrono::TimeDelta = chrono::TimeDelta::hours(1);

fn time(text: Option<&str>, field: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, IngestError> {
    let Some(text) = text else {
        return Ok(now);
    };
    // Go's zero time, which some senders send for "unset": valid RFC 3339 text.
    if text.trim().starts_with("0001-01-01") {
        return Err(IngestError::field(
            field,
            format!("{text:?} is year 1, not the time of a change; leave it out to mean now"),
        ));
    }
    let at = parse_time(text).ok_or_else(|| {
        IngestError::field(
            field,
            format!("{text:?} is not an RFC 3339 / ISO 8601 time"),
        )
    })?;
    if at > now + MAX_AHEAD {
        return Err(IngestError::field(
            field,
            format!(
                "{text:?} is more than an hour ahead of this server's clock; send the time the change happened, or leave it out to mean now"
            ),
        ));
    }
    Ok(at)
}

fn web_links(links: Vec<ChangeLink>) -> Vec<ChangeLink> {
    links
        .into_iter()
        .filter(|link| is_web_link(&link.href))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example body of PagerDuty's "Send Change Event" documentation.
    const DOCUMENTED: &str = r#"{
      "routing_key": "737ea619db564d41bd9824063e1f6b08",
      "payload": {
        "summary": "Build Success: Increase snapshot create timeout to 30 seconds",
        "timestamp": "2020-07-17T08:42:58.315+0000",
        "source": "acme-build-pipeline-tool-default-i-9999",
        "custom_details": {
          "build_state": "passed",
          "build_number": "2",
          "run_time": "1236s"
        }
      },
      "links": [
        {
          "href": "https://acme.pagerduty.dev/build/2",
          "text": "View more details in Acme!"
        }
      ]
    }"#;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn pagerdutys_documented_change_event_parses() {
        let event = pagerduty(DOCUMENTED.as_bytes(), now()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            event.routing_key.as_deref(),
            Some("737ea619db564d41bd9824063e1f6b08")
        );
        let change = event.change;
        assert_eq!(
            change.resource.as_deref(),
            Some("acme-build-pipeline-tool-default-i-9999")
        );
        assert_eq!(change.at.to_rfc3339(), "2020-07-17T08:42:58.315+00:00");
        assert_eq!(change.links.len(), 1);
        assert_eq!(change.details["build_number"], "2");
    }

    #[test]
    fn a_tocsin_change_needs_a_summary_and_a_source() {
        let ok = tocsin(br#"{"summary":"deploy api v2","source":"github-actions","resource":"api-3","links":["https://ci.example/run/7","javascript:x"]}"#, now())
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ok.resource.as_deref(), Some("api-3"));
        assert_eq!(ok.at, now());
        assert_eq!(ok.links.len(), 1);
        let missing = tocsin(br#"{"summary":"deploy"}"#, now())
            .err()
            .map(|e| e.detail());
        assert!(missing.is_some_and(|d| d.contains("source")));
        let empty = tocsin(br#"{"summary":" ","source":"ci"}"#, now())
            .err()
            .map(|e| e.detail());
        assert!(empty.is_some_and(|d| d.contains("summary")));
    }

    #[test]
    fn a_link_of_neither_shape_is_refused_with_both_shapes_named() {
        let detail = tocsin(br#"{"summary":"deploy","source":"ci","links":[7]}"#, now())
            .err()
            .map(|e| e.detail())
            .unwrap_or_default();
        assert!(detail.starts_with("links[0]: "), "{detail}");
        assert!(detail.contains(r#"a URL string or {"href""#), "{detail}");
        assert!(!detail.contains("untagged enum"), "{detail}");
        let details = tocsin(
            br#"{"summary":"deploy","source":"ci","details":[1]}"#,
            now(),
        )
        .err()
        .map(|e| e.detail())
        .unwrap_or_default();
        assert!(details.starts_with("details: "), "{details}");
    }
}
