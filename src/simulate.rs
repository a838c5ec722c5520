//! `tocsin simulate FILE…`: what the configuration would do with sample payloads —
//! the alerts they parse into, their priority, the rule that matched, whether they
//! open an incident and whom its first tier would page. Nothing is stored or sent.

use crate::alert::{Alert, AlertAction, AlertStatus};
use crate::config::Config;
use crate::ingest::{self, SourceKind};
use crate::rules::classify;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Guesses the sender of a payload from its shape.
pub fn detect(body: &[u8]) -> SourceKind {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let starts_like_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[');
    if value.is_none() && starts_like_json {
        return SourceKind::Generic;
    }
    let Some(value) = value else {
        let text = String::from_utf8_lossy(body).to_ascii_lowercase();
        return if text.contains("sensorid=") || text.contains("sensor=") {
            SourceKind::Prtg
        } else {
            SourceKind::Nagios
        };
    };
    let has = |key: &str| value.get(key).is_some();
    match value.get("version").and_then(Value::as_str) {
        Some("4") if has("alerts") => return SourceKind::Alertmanager,
        Some("1") if has("alerts") => return SourceKind::Grafana,
        _ => {}
    }
    if has("event_action") {
        SourceKind::Pagerduty
    } else if has("alert_transition") || (has("org") && has("title") && has("event_type")) {
        SourceKind::Datadog
    } else if has("sensorid") || has("sensor") {
        SourceKind::Prtg
    } else if [
        "NOTIFICATIONTYPE",
        "notification_type",
        "HOSTNAME",
        "host_name",
        "check_result",
    ]
    .iter()
    .any(|key| has(key))
    {
        SourceKind::Nagios
    } else {
        SourceKind::Generic
    }
}

/// The report for one file.
pub fn simulate(
    config: &Config,
    name: &str,
    body: &[u8],
    source: Option<SourceKind>,
    now: DateTime<Utc>,
) -> Value {
    let kind = source.unwrap_or_else(|| detect(body));
    match ingest::parse(kind, body, now) {
        Err(error) => json!({ "file": name, "source": kind.as_str(), "error": error.detail() }),
        Ok(payload) => json!({
            "file": name,
            "source": kind.as_str(),
            "alerts": payload.alerts.iter().map(|alert| decide(config, alert, now)).collect::<Vec<_>>(),
        }),
    }
}

fn decide(config: &Config, alert: &Alert, now: DateTime<Utc>) -> Value {
    let class = classify(alert, &config.rules);
    let opens = config.incidents.auto_open.contains(&class.priority);
    let outcome = match (alert.action, alert.status) {
        (AlertAction::Acknowledge, _) => "acknowledges the incident of this alert".to_string(),
        (AlertAction::DowntimeStart, _) => {
            "silences this alert's identity (downtime), then reports its state".to_string()
        }
        (AlertAction::DowntimeEnd, _) => {
            "lifts the downtime silence, then reports its state".to_string()
        }
        (AlertAction::Report, AlertStatus::Resolved) => {
            "resolves the open alert with this key (and its incident when it was the last)"
                .to_string()
        }
        (AlertAction::Report, AlertStatus::Firing)
            if let Some(window) = config
                .maintenance
                .iter()
                .find(|window| window.covers(alert, now)) =>
        {
            format!(
                "kept quiet by [[maintenance]] {:?}, in force now: stored silenced, opens no incident and pages nobody",
                window.name
            )
        }
        (AlertAction::Report, AlertStatus::Firing) if !opens => {
            format!(
                "kept in the alert queue: {} is not in incidents.auto_open",
                class.priority
            )
        }
        (AlertAction::Report, AlertStatus::Firing) => match &class.group_key {
            Some(_) => format!(
                "opens a {} incident, or joins the open one of its group",
                class.priority
            ),
            None => format!(
                "opens a {} incident (a repeat of an open key only counts)",
                class.priority
            ),
        },
    };
    let policy = config
        .directory
        .policy_for(class.escalation_policy.as_deref());
    let first_tier = policy.and_then(|policy| policy.tiers.first()).map(|tier| {
        let (users, nobody) = config.directory.resolve(tier, now);
        json!({ "level": tier.level, "users": users.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), "nobody_for": nobody })
    });
    json!({
        "dedup_key": alert.dedup_key,
        "resource": alert.resource,
        "check": alert.check,
        "severity": alert.severity.as_str(),
        "status": alert.status.as_str(),
        "priority": class.priority.as_str(),
        "rule": class.rule,
        "outcome": outcome,
        "escalation_policy": policy.map(|p| p.name.clone()),
        "first_tier": first_tier,
        "runbooks": class.runbooks,
    })
}

/// One report as text lines.
pub fn render(report: &Value) -> String {
    let mut out = format!(
        "{} ({})\n",
        report["file"].as_str().unwrap_or("-"),
        report["source"].as_str().unwrap_or("-")
    );
    if let Some(error) = report["error"].as_str() {
        out.push_str(&format!("  refused with 400: {error}\n"));
        return out;
    }
    for alert in report["alerts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let text = |key: &str| alert[key].as_str().unwrap_or("-").to_string();
        out.push_str(&format!(
            "  {} {} on {} [{}] key={}\n    rule: {}  →  {}\n",
            text("priority"),
            text("check"),
            text("resource"),
            text("status"),
            text("dedup_key"),
            alert["rule"].as_str().unwrap_or("(default by severity)"),
            text("outcome"),
        ));
        if let Some(policy) = alert["escalation_policy"].as_str() {
            let tier = &alert["first_tier"];
            let users: Vec<&str> = tier["users"]
                .as_array()
                .map(|u| u.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out.push_str(&format!(
                "    policy {policy}: {} would page {}\n",
                tier["level"].as_str().unwrap_or("-"),
                if users.is_empty() {
                    "nobody".to_string()
                } else {
                    users.join(", ")
                }
            ));
        }
        if let Some(runbooks) = alert["runbooks"].as_array().filter(|r| !r.is_empty()) {
            out.push_str(&format!(
                "    runbooks: {}\n",
                runbooks
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    out
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
    fn senders_are_detected_from_their_shape() {
        for (name, kind) in [
            ("alertmanager-firing.json", SourceKind::Alertmanager),
            ("grafana-firing.json", SourceKind::Grafana),
            ("pagerduty-trigger.json", SourceKind::Pagerduty),
            ("datadog-triggered.json", SourceKind::Datadog),
            ("datadog-default-payload.json", SourceKind::Datadog),
            ("prtg-down.json", SourceKind::Prtg),
            ("prtg-down.form", SourceKind::Prtg),
            ("nagios-service-problem.form", SourceKind::Nagios),
            ("nagios-service-recovery.json", SourceKind::Nagios),
            ("icinga2-problem.json", SourceKind::Nagios),
            ("generic-firing.json", SourceKind::Generic),
        ] {
            assert_eq!(detect(&fixture(name)), kind, "{name}");
        }
    }

    #[test]
    fn a_report_says_what_would_happen() {
        let config = Config::parse(
            "[[rules]]\nname = \"dba\"\nmatch = ['labels.team=\"dba\"', 'source=\"alertmanager\"']\npriority = \"P2\"\ngroup_by = [\"resource\"]\n",
            "t.toml",
        )
        .unwrap();
        let report = simulate(
            &config,
            "am.json",
            &fixture("alertmanager-firing.json"),
            None,
            Utc::now(),
        );
        assert_eq!(report["source"], "alertmanager");
        let first = &report["alerts"][0];
        assert_eq!(
            (first["priority"].as_str(), first["rule"].as_str()),
            (Some("P2"), Some("dba"))
        );
        assert!(
            first["outcome"]
                .as_str()
                .unwrap()
                .contains("joins the open one of its group")
        );
        let text = render(&report);
        assert!(
            text.contains("P2 PostgresReplicationLagHigh on db-01.prod.example.net"),
            "{text}"
        );
        let warning = simulate(
            &config,
            "w.json",
            &fixture("datadog-warn-no-priority.json"),
            None,
            Utc::now(),
        );
        assert!(
            warning["alerts"][0]["outcome"]
                .as_str()
                .unwrap()
                .contains("kept in the alert queue")
        );
        let patching = Config::parse(
            "[[maintenance]]\nname = \"all day\"\nmatch = ['resource=\"db-01.prod.example.net\"']\nstart = \"00:00\"\nend = \"23:59\"\n",
            "m.toml",
        )
        .unwrap();
        let quiet = simulate(
            &patching,
            "am.json",
            &fixture("alertmanager-firing.json"),
            None,
            Utc::now()
                .date_naive()
                .and_hms_opt(12, 0, 0)
                .unwrap()
                .and_utc(),
        );
        assert!(
            quiet["alerts"][0]["outcome"]
                .as_str()
                .unwrap()
                .contains("kept quiet by [[maintenance]] \"all day\""),
            "{quiet}"
        );
        let bad = simulate(
            &config,
            "bad.json",
            &fixture("malformed-truncated.json"),
            Some(SourceKind::Alertmanager),
            Utc::now(),
        );
        assert!(render(&bad).contains("refused with 400"));
    }
}
