//! PagerDuty Events API v2 (senders.md §7): trigger, acknowledge and resolve keyed by
//! `dedup_key`. Validation follows PagerDuty's own limits so a sender that works
//! against PagerDuty works against us, and one that would be refused there is refused here.

use super::{IngestError, Payload, from_json, parse_time};
use crate::alert::{Alert, AlertAction, AlertStatus, Labels, Severity};
use chrono::{DateTime, Utc};
use serde::Deserialize;

const MAX_DEDUP_KEY: usize = 255;
const MAX_SUMMARY: usize = 1024;

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    routing_key: Option<String>,
    event_action: String,
    #[serde(default)]
    dedup_key: Option<String>,
    #[serde(default)]
    payload: Option<EventPayload>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    client_url: Option<String>,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    images: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct EventPayload {
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    component: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    custom_details: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct Link {
    href: String,
    #[serde(default)]
    text: Option<String>,
}

/// Parses one event. A trigger without `dedup_key` gets a fresh UUID, as PagerDuty does.
pub fn parse(body: &[u8], _now: DateTime<Utc>) -> Result<Payload, IngestError> {
    // Events API v1 (`service_key`, `event_type`) reads as v2 missing its fields:
    // name the version instead.
    if let Ok(v1) = serde_json::from_slice::<serde_json::Value>(body)
        && v1.get("event_type").is_some()
        && v1.get("event_action").is_none()
    {
        return Err(IngestError::field(
            "event_type",
            "this is a PagerDuty Events API v1 body; Tocsin takes Events API v2 (routing_key, event_action, payload): point the integration at an Events API v2 URL",
        ));
    }
    let event: Event = from_json(body)?;
    let action = match event.event_action.as_str() {
        "trigger" => AlertAction::Report,
        "acknowledge" => AlertAction::Acknowledge,
        "resolve" => AlertAction::Report,
        other => {
            return Err(IngestError::field(
                "event_action",
                format!("{other:?} is not one of \"trigger\", \"acknowledge\", \"resolve\""),
            ));
        }
    };
    let is_trigger = event.event_action == "trigger";
    let dedup_key = match event.dedup_key.clone().filter(|key| !key.is_empty()) {
        Some(key) if key.chars().count() > MAX_DEDUP_KEY => {
            return Err(IngestError::field(
                "dedup_key",
                format!("is longer than {MAX_DEDUP_KEY} characters"),
            ));
        }
        Some(key) => key,
        None if is_trigger => uuid::Uuid::new_v4().simple().to_string(),
        None => {
            return Err(IngestError::field(
                "dedup_key",
                format!("is required for {:?}", event.event_action),
            ));
        }
    };
    let alert = if is_trigger {
        trigger(&event, dedup_key)?
    } else {
        follow_up(&event, dedup_key, action)
    };
    Ok(Payload {
        alerts: vec![alert],
        routing_key: event.routing_key.clone(),
    })
}

fn trigger(event: &Event, dedup_key: String) -> Result<Alert, IngestError> {
    let payload = event
        .payload
        .as_ref()
        .ok_or_else(|| IngestError::field("payload", "is required for \"trigger\""))?;
    let summary = required(&payload.summary, "payload.summary")?;
    if summary.chars().count() > MAX_SUMMARY {
        return Err(IngestError::field(
            "payload.summary",
            format!("is longer than {MAX_SUMMARY} characters"),
        ));
    }
    let source = required(&payload.source, "payload.source")?;
    let severity_word = required(&payload.severity, "payload.severity")?;
    let severity = match severity_word.as_str() {
        "critical" => Severity::Critical,
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        "info" => Severity::Info,
        other => {
            return Err(IngestError::field(
                "payload.severity",
                format!("{other:?} is not one of critical, error, warning, info"),
            ));
        }
    };
    let check = [&payload.class, &payload.component]
        .into_iter()
        .flatten()
        .find(|text| !text.is_empty())
        .cloned()
        .unwrap_or_else(|| summary.clone());
    let mut labels = Labels::new();
    for (name, value) in [
        ("component", &payload.component),
        ("group", &payload.group),
        ("class", &payload.class),
    ] {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            labels.insert(name.to_string(), value.clone());
        }
    }
    Ok(Alert {
        source: "pagerduty".into(),
        dedup_key,
        resource: source,
        check,
        severity,
        status: AlertStatus::Firing,
        action: AlertAction::Report,
        summary,
        details: serde_json::json!({
            "custom_details": payload.custom_details,
            "client": event.client,
            "client_url": event.client_url,
            "links": event.links,
            "images": event.images,
        }),
        labels,
        links: event.links.iter().map(|link| link.href.clone()).collect(),
        occurred_at: payload.timestamp.as_deref().and_then(parse_time),
    })
}

/// Acknowledge and resolve name an existing alert by key; their payload is ignored.
fn follow_up(event: &Event, dedup_key: String, action: AlertAction) -> Alert {
    Alert {
        source: "pagerduty".into(),
        dedup_key,
        resource: String::new(),
        check: String::new(),
        severity: Severity::Info,
        status: if action == AlertAction::Acknowledge {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        },
        action,
        summary: String::new(),
        details: serde_json::Value::Null,
        labels: Labels::new(),
        links: Vec::new(),
        occurred_at: event
            .payload
            .as_ref()
            .and_then(|p| p.timestamp.as_deref())
            .and_then(parse_time),
    }
}

fn required(value: &Option<String>, path: &str) -> Result<String, IngestError> {
    value
        .clone()
        .filter(|text| !text.trim().is_empty())
        .ok_or_else(|| IngestError::field(path, "is required"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn trigger_maps_source_class_and_severity() {
        let payload = parse(&fixture("pagerduty-trigger.json"), Utc::now()).unwrap();
        let alert = &payload.alerts[0];
        assert_eq!(
            payload.routing_key.as_deref(),
            Some("e93facc04764012d7bfb002500d5d1a6")
        );
        assert_eq!(
            alert.dedup_key,
            "db-01.prod.example.net/postgres-replication-lag"
        );
        assert_eq!(alert.resource, "db-01.prod.example.net");
        assert_eq!(alert.check, "replication lag");
        assert_eq!(alert.severity, Severity::Critical);
        assert!(alert.occurred_at.is_some(), "+0000 offsets are read");
    }

    #[test]
    fn a_v1_event_is_named_as_such() {
        let refused = parse(&fixture("pagerduty-v1-legacy-trigger.json"), Utc::now())
            .err()
            .map(|error| error.detail())
            .unwrap_or_default();
        assert!(refused.contains("Events API v1"), "{refused}");
    }

    #[test]
    fn trigger_without_dedup_key_gets_one() {
        let payload = parse(&fixture("pagerduty-trigger-no-dedup.json"), Utc::now()).unwrap();
        assert_eq!(payload.alerts[0].dedup_key.len(), 32);
    }

    #[test]
    fn follow_ups_need_a_key() {
        let ack = parse(&fixture("pagerduty-acknowledge.json"), Utc::now()).unwrap();
        assert_eq!(ack.alerts[0].action, AlertAction::Acknowledge);
        let resolve = parse(&fixture("pagerduty-resolve.json"), Utc::now()).unwrap();
        assert_eq!(resolve.alerts[0].status, AlertStatus::Resolved);
        let error = parse(
            &fixture("malformed-pagerduty-ack-without-dedup.json"),
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("dedup_key"));
    }

    #[test]
    fn pagerduty_limits_are_enforced() {
        let missing = parse(
            &fixture("malformed-missing-required-pagerduty.json"),
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("payload.summary"));
        let bad = parse(&fixture("malformed-pagerduty-bad-action.json"), Utc::now()).unwrap_err();
        assert_eq!(bad.field.as_deref(), Some("event_action"));
    }
}
