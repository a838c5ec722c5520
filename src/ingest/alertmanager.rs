//! Prometheus Alertmanager webhook, version 4 (senders.md §1), and Grafana's unified
//! alerting webhook, which is the same shape with a few extra fields (§2). One alert
//! per `alerts[]` item; each item's own `status` decides, never the top-level one.

use super::{IngestError, from_json, parse_time};
use crate::alert::{Alert, AlertAction, AlertStatus, Labels, Severity};
use crate::dedup;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Webhook {
    version: String,
    alerts: Vec<WebhookAlert>,
    /// "firing" when any alert fires; read per alert instead. Declared so a
    /// duplicated `status` key is refused like any other duplicate.
    #[serde(default, rename = "status")]
    _group_status: Option<String>,
    #[serde(default)]
    receiver: Option<String>,
    #[serde(default, rename = "externalURL")]
    external_url: Option<String>,
    #[serde(default)]
    group_key: Option<String>,
    #[serde(default)]
    truncated_alerts: Option<u64>,
    /// Grafana: the rendered notification title.
    #[serde(default)]
    title: Option<String>,
    /// Grafana: the organisation the rule belongs to.
    #[serde(default)]
    org_id: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert {
    status: String,
    labels: Labels,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default, rename = "dashboardURL")]
    dashboard_url: Option<String>,
    #[serde(default, rename = "panelURL")]
    panel_url: Option<String>,
    #[serde(default)]
    values: Option<serde_json::Value>,
}

/// Parses one Alertmanager webhook body.
pub fn parse(body: &[u8], _now: DateTime<Utc>) -> Result<Vec<Alert>, IngestError> {
    parse_as(body, "alertmanager")
}

/// Parses an Alertmanager-shaped body for `source` (`alertmanager` or `grafana`).
pub fn parse_as(body: &[u8], source: &str) -> Result<Vec<Alert>, IngestError> {
    let webhook: Webhook = from_json(body)?;
    if let Some(truncated) = webhook.truncated_alerts.filter(|n| *n > 0) {
        // Alerts cut by max_alerts are not resolved; we simply did not see them.
        tracing::warn!(
            truncated,
            "alertmanager truncated this notification (max_alerts)"
        );
    }
    webhook
        .alerts
        .iter()
        .enumerate()
        .map(|(index, alert)| normalize(&webhook, alert, index, source))
        .collect()
}

fn normalize(
    webhook: &Webhook,
    alert: &WebhookAlert,
    index: usize,
    source: &str,
) -> Result<Alert, IngestError> {
    let status = match alert.status.as_str() {
        "firing" => AlertStatus::Firing,
        "resolved" => AlertStatus::Resolved,
        other => {
            return Err(IngestError::field(
                format!("alerts[{index}].status"),
                format!("{other:?} is neither \"firing\" nor \"resolved\""),
            ));
        }
    };
    let labels = &alert.labels;
    let check = labels
        .get("alertname")
        .filter(|name| !name.is_empty())
        .cloned()
        .unwrap_or_else(|| "alert".to_string());
    let dedup_key = alert
        .fingerprint
        .clone()
        .filter(|fingerprint| !fingerprint.is_empty())
        .unwrap_or_else(|| dedup::label_fingerprint(labels));
    let severity = ["severity", "priority", "level"]
        .iter()
        .find_map(|name| labels.get(*name).and_then(|word| Severity::from_word(word)))
        .unwrap_or(Severity::Warning);
    let links = [
        alert.generator_url.as_ref(),
        alert.annotations.get("runbook_url"),
        alert.dashboard_url.as_ref(),
        alert.panel_url.as_ref(),
    ]
    .into_iter()
    .flatten()
    .filter(|link| !link.is_empty())
    .cloned()
    .collect();
    Ok(Alert {
        source: source.into(),
        dedup_key,
        resource: resource(labels),
        summary: summary(
            &alert.annotations,
            webhook.title.as_deref().unwrap_or(&check),
        ),
        check,
        severity,
        status,
        action: AlertAction::Report,
        details: serde_json::json!({
            "annotations": alert.annotations,
            "generator_url": alert.generator_url,
            "receiver": webhook.receiver,
            "group_key": webhook.group_key,
            "external_url": webhook.external_url,
            "version": webhook.version,
            "ends_at": alert.ends_at.as_deref().and_then(parse_time).map(crate::clock::rfc3339),
            "values": alert.values,
            "org_id": webhook.org_id,
        }),
        labels: labels.clone(),
        links,
        occurred_at: alert.starts_at.as_deref().and_then(parse_time),
    })
}

/// The host the alert is about: `instance` without its port, else the usual labels.
fn resource(labels: &Labels) -> String {
    if let Some(instance) = labels.get("instance").filter(|i| !i.is_empty()) {
        return strip_port(instance).to_string();
    }
    ["host", "hostname", "node", "pod", "service", "job"]
        .iter()
        .find_map(|name| labels.get(*name).filter(|value| !value.is_empty()))
        .cloned()
        .unwrap_or_else(|| "unknown".to_string())
}

fn strip_port(instance: &str) -> &str {
    match instance.rsplit_once(':') {
        // An IPv6 literal without brackets has many colons and no port to strip.
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !host.ends_with(':') => {
            host.trim_start_matches('[').trim_end_matches(']')
        }
        _ => instance,
    }
}

fn summary(annotations: &BTreeMap<String, String>, check: &str) -> String {
    ["summary", "message", "description"]
        .iter()
        .find_map(|name| {
            annotations
                .get(*name)
                .filter(|text| !text.trim().is_empty())
        })
        .and_then(|text| text.lines().next())
        .unwrap_or(check)
        .to_string()
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
    fn firing_fixture_gives_two_critical_alerts() {
        let alerts = parse(&fixture("alertmanager-firing.json"), Utc::now()).unwrap();
        assert_eq!(alerts.len(), 2);
        let first = &alerts[0];
        assert_eq!(first.dedup_key, "3f2a9c1d7b4e8a60");
        assert_eq!(first.resource, "db-01.prod.example.net");
        assert_eq!(first.check, "PostgresReplicationLagHigh");
        assert_eq!(first.severity, Severity::Critical);
        assert_eq!(first.status, AlertStatus::Firing);
        assert_eq!(
            first.summary,
            "Replication lag on db-01.prod.example.net is 412s"
        );
        assert_eq!(first.details["ends_at"], serde_json::Value::Null);
    }

    #[test]
    fn mixed_fixture_decides_per_alert() {
        let alerts = parse(&fixture("alertmanager-mixed-truncated.json"), Utc::now()).unwrap();
        let statuses: Vec<_> = alerts
            .iter()
            .map(|a| (a.resource.as_str(), a.status))
            .collect();
        assert!(statuses.contains(&("db-01.prod.example.net", AlertStatus::Resolved)));
        assert!(
            alerts
                .iter()
                .any(|a| a.status == AlertStatus::Firing && a.severity == Severity::Warning)
        );
    }

    #[test]
    fn wrong_types_are_refused_with_the_field() {
        let error = parse(&fixture("malformed-wrong-types.json"), Utc::now()).unwrap_err();
        assert!(error.field.is_some(), "{error:?}");
        let missing = parse(
            &fixture("malformed-missing-required-alertmanager.json"),
            Utc::now(),
        )
        .unwrap_err();
        assert!(missing.detail().contains("missing field"), "{missing:?}");
    }

    #[test]
    fn ports_are_stripped_from_instances() {
        assert_eq!(strip_port("db-01:9187"), "db-01");
        assert_eq!(strip_port("[::1]:9100"), "::1");
        assert_eq!(strip_port("db-01"), "db-01");
    }
}
