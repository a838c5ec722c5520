//! Datadog's webhook integration (senders.md §6): the `$`-variables of the payload
//! template, as JSON or with "Encode as form". Every value arrives as a string.

use super::IngestError;
use super::fields::Fields;
use crate::alert::{Alert, AlertAction, AlertStatus, Labels, Severity};
use chrono::{DateTime, Utc};

/// Parses one notification.
pub fn parse(body: &[u8], _now: DateTime<Utc>) -> Result<Vec<Alert>, IngestError> {
    let fields = Fields::read(body, &[])?;
    let title = fields
        .get(&["title", "event_title"])
        .unwrap_or_default()
        .to_string();
    let (title_transition, bare_title) = split_title(&title);
    let explicit_transition = fields.get(&["alert_transition"]).map(str::to_string);
    // Datadog's default template carries neither a transition nor a priority: only the
    // title says it triggered, which is too little to wake anyone (P3, as its fixture).
    let default_template = explicit_transition.is_none();
    let transition = explicit_transition.or(title_transition).ok_or_else(|| {
        IngestError::field(
            "alert_transition",
            "is required ($ALERT_TRANSITION), or a title starting with [Triggered …]",
        )
    })?;
    let transition_lower = transition.to_ascii_lowercase();
    let status = if transition_lower == "recovered" {
        AlertStatus::Resolved
    } else {
        AlertStatus::Firing
    };
    let known = [
        "triggered",
        "re-triggered",
        "renotify",
        "warn",
        "re-warn",
        "no data",
        "re-no data",
        "recovered",
    ];
    if !known.contains(&transition_lower.as_str()) {
        return Err(IngestError::field(
            "alert_transition",
            format!(
                "{transition:?} is not one of Triggered, Re-Triggered, Warn, Re-Warn, No Data, Renotify, Recovered"
            ),
        ));
    }
    let severity = match fields
        .get(&["alert_priority"])
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("P1") => Severity::Critical,
        Some("P2") => Severity::Error,
        Some("P3") => Severity::Warning,
        Some("P4") | Some("P5") => Severity::Info,
        Some(other) => {
            return Err(IngestError::field(
                "alert_priority",
                format!("{other:?} is not one of P1..P5"),
            ));
        }
        None if default_template
            || transition_lower.contains("warn")
            || transition_lower.contains("no data") =>
        {
            Severity::Warning
        }
        None => Severity::Error,
    };
    let scope = normalized_scope(fields.get(&["alert_scope"]).unwrap_or_default());
    let labels = tags(fields.get(&["tags"]).unwrap_or_default());
    let resource = fields
        .get(&["hostname"])
        .map(str::to_string)
        .or_else(|| {
            scope
                .split(',')
                .find_map(|tag| tag.strip_prefix("host:"))
                .map(str::to_string)
        })
        .or_else(|| labels.get("host").cloned())
        .unwrap_or_else(|| "datadog".to_string());
    let check = fields
        .get(&["alert_title"])
        .map(str::to_string)
        .unwrap_or_else(|| bare_title.clone());
    if check.is_empty() {
        return Err(IngestError::field(
            "alert_title",
            "is required ($ALERT_TITLE), or a title",
        ));
    }
    let monitor = fields.get(&["aggreg_key", "alert_id"]);
    let dedup_key = match monitor {
        Some(monitor) if scope.is_empty() => monitor.to_string(),
        Some(monitor) => format!("{monitor}/{scope}"),
        None => format!("{}/{bare_title}", fields.get(&["org.id"]).unwrap_or("org")),
    };
    let summary = fields
        .get(&["alert_title"])
        .map_or(bare_title, str::to_string);
    let mut labels = labels;
    labels.insert("datadog_transition".into(), transition.clone());
    if let Some(cycle) = fields.get(&["alert_cycle_key"]) {
        labels.insert("datadog_cycle".into(), cycle.to_string());
    }
    let links = [fields.get(&["link"]), fields.get(&["snapshot"])]
        .into_iter()
        .flatten()
        .map(str::to_string)
        .collect();
    let occurred_at = fields
        .get(&["date", "last_updated"])
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis);
    Ok(vec![Alert {
        source: "datadog".into(),
        dedup_key,
        resource,
        check,
        severity,
        status,
        action: AlertAction::Report,
        summary,
        details: fields.details(&[]),
        labels,
        links,
        occurred_at,
    }])
}

/// `[Triggered on {host:db-01}] Title` → (`Triggered`, `Title`).
fn split_title(title: &str) -> (Option<String>, String) {
    let Some(rest) = title.strip_prefix('[') else {
        return (None, title.trim().to_string());
    };
    let Some((inside, after)) = rest.split_once(']') else {
        return (None, title.trim().to_string());
    };
    let transition = inside
        .split(" on ")
        .next()
        .unwrap_or(inside)
        .trim()
        .to_string();
    (Some(transition), after.trim().to_string())
}

/// Sorted, trimmed, comma-joined, so the same scope always gives the same key.
fn normalized_scope(scope: &str) -> String {
    let mut parts: Vec<&str> = scope
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    parts.sort_unstable();
    parts.join(",")
}

/// `env:prod,team:dba,monitor` → `{env: prod, team: dba, monitor: ""}`.
fn tags(tags: &str) -> Labels {
    tags.split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(|tag| match tag.split_once(':') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (tag.to_string(), String::new()),
        })
        .collect()
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

    fn one(name: &str) -> Alert {
        parse(&fixture(name), Utc::now()).unwrap().remove(0)
    }

    #[test]
    fn triggered_and_recovered_share_a_key() {
        let triggered = one("datadog-triggered.json");
        let recovered = one("datadog-recovered.json");
        assert_eq!(triggered.resource, "db-01.prod.example.net");
        assert_eq!(triggered.check, "PostgreSQL replication lag is high");
        assert_eq!(
            (triggered.severity, triggered.status),
            (Severity::Error, AlertStatus::Firing)
        );
        assert_eq!(triggered.labels["team"], "dba");
        assert_eq!(recovered.status, AlertStatus::Resolved);
        assert_eq!(triggered.dedup_key, recovered.dedup_key);
    }

    #[test]
    fn each_host_of_a_monitor_is_its_own_alert() {
        let warn = one("datadog-warn-no-priority.json");
        assert_eq!(
            warn.severity,
            Severity::Warning,
            "Warn without a priority is P3"
        );
        assert_ne!(warn.dedup_key, one("datadog-triggered.json").dedup_key);
        assert_eq!(warn.resource, "db-02.prod.example.net");
    }

    #[test]
    fn the_default_payload_reads_the_title() {
        let alert = one("datadog-default-payload.json");
        assert_eq!(alert.status, AlertStatus::Firing);
        assert_eq!(alert.check, "PostgreSQL replication lag is high");
        assert_eq!(
            alert.severity,
            Severity::Warning,
            "P3: no priority to go by"
        );
        assert_eq!(alert.dedup_key, "123456/PostgreSQL replication lag is high");
    }

    #[test]
    fn encode_as_form_works_and_bad_values_are_named() {
        let form = b"alert_transition=Triggered&alert_title=Disk%20full&hostname=web-1&alert_id=1&alert_priority=P1&tags=env%3Aprod";
        let alert = parse(form, Utc::now()).unwrap().remove(0);
        assert_eq!(
            (alert.severity, alert.resource.as_str()),
            (Severity::Critical, "web-1")
        );
        let bad = parse(b"alert_transition=Exploded&alert_title=x", Utc::now()).unwrap_err();
        assert_eq!(bad.field.as_deref(), Some("alert_transition"));
        let bad = parse(
            b"alert_transition=Triggered&alert_title=x&alert_priority=P9",
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(bad.field.as_deref(), Some("alert_priority"));
    }
}
