//! Tocsin's own JSON alert (spec §2), one object or an array of them, with Grafana
//! OnCall's formatted-webhook names accepted as aliases (spec §10).

use super::{IngestError, from_json, parse_time};
use crate::alert::{Alert, AlertAction, AlertStatus, Labels, Severity};
use crate::dedup;
use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct GenericAlert {
    resource: Option<String>,
    host: Option<String>,
    check: Option<String>,
    service: Option<String>,
    severity: Option<String>,
    summary: Option<String>,
    title: Option<String>,
    message: Option<String>,
    status: Option<String>,
    state: Option<String>,
    dedup_key: Option<String>,
    alert_uid: Option<String>,
    source: Option<String>,
    labels: Option<Labels>,
    details: Option<serde_json::Value>,
    links: Option<Vec<String>>,
    link_to_upstream_details: Option<String>,
    image_url: Option<String>,
    occurred_at: Option<String>,
    timestamp: Option<String>,
}

/// Parses an object or an array of objects.
pub fn parse(body: &[u8], _now: DateTime<Utc>) -> Result<Vec<Alert>, IngestError> {
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if is_array {
        let items: Vec<GenericAlert> = from_json(body)?;
        if items.is_empty() {
            return Err(IngestError::body("the array holds no alert"));
        }
        items
            .into_iter()
            .enumerate()
            .map(|(index, item)| normalize(item, &format!("[{index}].")))
            .collect()
    } else {
        let item: GenericAlert = from_json(body)?;
        Ok(vec![normalize(item, "")?])
    }
}

fn first(values: [&Option<String>; 2]) -> Option<String> {
    values
        .into_iter()
        .flatten()
        .find(|text| !text.trim().is_empty())
        .cloned()
}

fn normalize(item: GenericAlert, prefix: &str) -> Result<Alert, IngestError> {
    let missing = |field: &str, aliases: &str| {
        IngestError::field(
            format!("{prefix}{field}"),
            format!("is required (alias: {aliases})"),
        )
    };
    let (status, action) = status(&item, prefix)?;
    let resource =
        first([&item.resource, &item.host]).ok_or_else(|| missing("resource", "host"))?;
    let check = first([&item.check, &item.service]).ok_or_else(|| missing("check", "service"))?;
    let summary = first([&item.summary, &item.title]).ok_or_else(|| missing("summary", "title"))?;
    // A resolve names an alert that already exists, so it need not repeat the severity.
    let severity = match (&item.severity, status) {
        (Some(word), _) => Severity::from_word(word).ok_or_else(|| {
            IngestError::field(
                format!("{prefix}severity"),
                format!(
                    "{word:?} is not one of critical, error, warning, info (or high, low, page)"
                ),
            )
        })?,
        (None, AlertStatus::Resolved) => Severity::Info,
        (None, AlertStatus::Firing) => {
            return Err(IngestError::field(
                format!("{prefix}severity"),
                "is required: critical, error, warning or info",
            ));
        }
    };
    let dedup_key = first([&item.dedup_key, &item.alert_uid])
        .unwrap_or_else(|| dedup::fallback_key("generic", &resource, &check));
    let mut links = item.links.clone().unwrap_or_default();
    links.extend(item.link_to_upstream_details.clone());
    let occurred_at = first([&item.occurred_at, &item.timestamp])
        .as_deref()
        .and_then(parse_time);
    Ok(Alert {
        source: "generic".into(),
        dedup_key,
        resource,
        check,
        severity,
        status,
        action,
        summary,
        details: serde_json::json!({
            "details": item.details,
            "message": item.message,
            "origin": item.source,
            "image_url": item.image_url,
        }),
        labels: item.labels.unwrap_or_default(),
        links,
        occurred_at,
    })
}

fn status(item: &GenericAlert, prefix: &str) -> Result<(AlertStatus, AlertAction), IngestError> {
    if let Some(status) = &item.status {
        return match status.as_str() {
            "firing" => Ok((AlertStatus::Firing, AlertAction::Report)),
            "resolved" => Ok((AlertStatus::Resolved, AlertAction::Report)),
            "acknowledged" => Ok((AlertStatus::Firing, AlertAction::Acknowledge)),
            other => Err(IngestError::field(
                format!("{prefix}status"),
                format!("{other:?} is not one of firing, resolved, acknowledged"),
            )),
        };
    }
    match item.state.as_deref() {
        Some("ok") => Ok((AlertStatus::Resolved, AlertAction::Report)),
        _ => Ok((AlertStatus::Firing, AlertAction::Report)),
    }
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
    fn oncall_aliases_are_read() {
        let firing = parse(&fixture("generic-firing.json"), Utc::now()).unwrap();
        let alert = &firing[0];
        assert_eq!(alert.dedup_key, "billing-api/latency-p99");
        assert_eq!(alert.resource, "billing-api.prod.example.net");
        assert_eq!(alert.check, "billing-api");
        assert_eq!(alert.severity, Severity::Error);
        assert_eq!(alert.labels["env"], "prod");
        let resolved = parse(&fixture("generic-resolved.json"), Utc::now()).unwrap();
        assert_eq!(resolved[0].status, AlertStatus::Resolved);
        assert_eq!(resolved[0].dedup_key, alert.dedup_key);
    }

    #[test]
    fn arrays_name_the_failing_item() {
        let body = br#"[{"resource":"a","check":"c","severity":"info","summary":"s"},{"resource":"b","check":"c","summary":"s"}]"#;
        let error = parse(body, Utc::now()).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("[1].severity"));
    }

    #[test]
    fn without_a_key_the_hash_is_stable() {
        let body = br#"{"resource":"web-1","check":"http","severity":"critical","summary":"down"}"#;
        let one = parse(body, Utc::now()).unwrap();
        let two = parse(body, Utc::now()).unwrap();
        assert_eq!(one[0].dedup_key, two[0].dedup_key);
        assert_eq!(
            one[0].dedup_key,
            dedup::fallback_key("generic", "web-1", "http")
        );
    }

    #[test]
    fn unicode_is_kept_exactly() {
        let alerts = parse(&fixture("unicode-valid.json"), Utc::now()).unwrap();
        let alert = &alerts[0];
        assert_eq!(alert.dedup_key, "ünïcødé/チェック/🔥");
        assert_eq!(alert.check, "проверка-диска");
        assert!(
            alert.details["message"]
                .as_str()
                .unwrap()
                .contains("nul-escape: \u{0}")
        );
        assert_eq!(alert.labels["ws"], "  leading and trailing  ");
    }
}
