//! PRTG's "Execute HTTP Action" (senders.md §5): the placeholders an operator puts in
//! the payload, form-encoded or typed as JSON. The state comes from `%status` (English
//! or German), with `%colorofstate` as a language-independent fallback.

use super::IngestError;
use super::fields::Fields;
use crate::alert::{Alert, AlertAction, AlertStatus, Labels, Severity};
use chrono::{DateTime, Utc};

const GREEN: &str = "#b4cc38";
const YELLOW: &str = "#ffcb05";
const RED: &str = "#d71920";

/// Parses one notification.
pub fn parse(body: &[u8], _now: DateTime<Utc>) -> Result<Vec<Alert>, IngestError> {
    let fields = Fields::read(body, &[])?;
    let device = fields
        .get(&["device", "server", "host"])
        .map(str::to_string);
    let sensor = fields.get(&["sensor", "name"]).map(str::to_string);
    let sensor_id = fields.get(&["sensorid", "id"]).map(str::to_string);
    let (device, sensor) = match (device, sensor) {
        (Some(device), Some(sensor)) => (device, sensor),
        (None, _) => {
            return Err(IngestError::field(
                "device",
                "is required (PRTG placeholder %device)",
            ));
        }
        (_, None) => {
            return Err(IngestError::field(
                "sensor",
                "is required (PRTG placeholder %sensor)",
            ));
        }
    };
    let status = fields
        .get(&["status", "state"])
        .unwrap_or_default()
        .to_string();
    let color = fields.get(&["colorofstate"]).map(str::to_ascii_lowercase);
    let state = classify(&status, color.as_deref()).ok_or_else(|| {
        IngestError::field(
            "status",
            format!("{status:?} is not a PRTG state (Up, Down, Warning, Unusual, Paused, …)"),
        )
    })?;
    let message = fields.get(&["message", "lastmessage"]).unwrap_or_default();
    let mut labels = Labels::new();
    if let Some(stars) = fields.get(&["priority", "prio"]).and_then(stars) {
        labels.insert("prtg_priority".into(), stars.to_string());
    }
    labels.insert("prtg_status".into(), status.clone());
    for (label, names) in [
        ("prtg_group", &["group"][..]),
        ("prtg_probe", &["probe"][..]),
        ("prtg_host", &["host"][..]),
    ] {
        if let Some(value) = fields.get(names) {
            labels.insert(label.into(), value.to_string());
        }
    }
    let home = fields.get(&["home"]).unwrap_or("home");
    let dedup_key = match &sensor_id {
        Some(id) => format!("{}/{id}", home.trim_end_matches('/')),
        None => format!("{}/{device}/{sensor}", home.trim_end_matches('/')),
    };
    let links = [
        fields.get(&["linksensor", "link"]),
        fields.get(&["linkdevice"]),
    ]
    .into_iter()
    .flatten()
    .map(str::to_string)
    .collect();
    Ok(vec![Alert {
        source: "prtg".into(),
        dedup_key,
        summary: if message.is_empty() {
            format!("{device} {sensor} {status}")
        } else {
            format!("{device} {sensor} {status}: {message}")
        },
        resource: device,
        check: sensor,
        severity: state.0,
        status: state.1,
        action: AlertAction::Report,
        details: fields.details(&["token"]),
        labels,
        links,
        occurred_at: None,
    }])
}

/// Severity and status from the status text. Paused sensors resolve: PRTG sends
/// nothing more for them, so an open alert would otherwise stay open for good.
fn classify(status: &str, color: Option<&str>) -> Option<(Severity, AlertStatus)> {
    let text = status.trim().to_lowercase();
    let resolved = text.starts_with("up")
        || text.starts_with("ok")
        || text.contains("ended")
        || text.contains("beendet")
        || text.contains("now: up")
        || text.contains("jetzt: ok")
        || text.contains("threshold not reached")
        || text.contains("nicht erreicht")
        || text.starts_with("paused")
        || text.starts_with("pausiert");
    if resolved {
        return Some((Severity::Info, AlertStatus::Resolved));
    }
    let firing = |severity| Some((severity, AlertStatus::Firing));
    if text.starts_with("down (partial)") || text.starts_with("fehler (teilweise)") {
        return firing(Severity::Error);
    }
    if text.starts_with("down") || text.starts_with("fehler") {
        return firing(Severity::Critical);
    }
    if text.starts_with("warning")
        || text.starts_with("warnung")
        || text.starts_with("unknown")
        || text.starts_with("unbekannt")
        || text.contains("threshold reached")
        || text.contains("schwellenwert erreicht")
    {
        return firing(Severity::Warning);
    }
    if text.starts_with("unusual") || text.starts_with("ungewöhnlich") {
        return firing(Severity::Info);
    }
    match color {
        Some(GREEN) => Some((Severity::Info, AlertStatus::Resolved)),
        Some(YELLOW) => firing(Severity::Warning),
        Some(RED) => firing(Severity::Critical),
        _ => None,
    }
}

/// `*****` or `5` → 5.
fn stars(priority: &str) -> Option<usize> {
    let trimmed = priority.trim();
    let count = if trimmed.chars().all(|c| c == '*') {
        trimmed.len()
    } else {
        trimmed.parse().ok()?
    };
    (1..=5).contains(&count).then_some(count)
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
    fn down_form_and_json_agree() {
        let form = parse(&fixture("prtg-down.form"), Utc::now())
            .unwrap()
            .remove(0);
        let json = parse(&fixture("prtg-down.json"), Utc::now())
            .unwrap()
            .remove(0);
        assert_eq!(form.resource, "core-sw-01 (10.1.0.2)");
        assert_eq!(form.check, "Ping");
        assert_eq!(
            (form.severity, form.status),
            (Severity::Critical, AlertStatus::Firing)
        );
        assert_eq!(form.dedup_key, "https://prtg.example.net/2345");
        assert_eq!(form.labels["prtg_priority"], "5");
        assert_eq!(json.dedup_key, form.dedup_key);
        assert_eq!(json.severity, Severity::Critical);
    }

    #[test]
    fn up_resolves_the_same_sensor() {
        let up = parse(&fixture("prtg-up.json"), Utc::now())
            .unwrap()
            .remove(0);
        assert_eq!(up.status, AlertStatus::Resolved);
        let down = parse(&fixture("prtg-down.json"), Utc::now())
            .unwrap()
            .remove(0);
        assert_eq!(up.dedup_key, down.dedup_key);
    }

    #[test]
    fn states_in_english_german_and_colour() {
        assert_eq!(
            classify("Warning", None),
            Some((Severity::Warning, AlertStatus::Firing))
        );
        assert_eq!(
            classify("Unusual", None),
            Some((Severity::Info, AlertStatus::Firing))
        );
        assert_eq!(
            classify("Down (Partial)", None),
            Some((Severity::Error, AlertStatus::Firing))
        );
        assert_eq!(
            classify("Fehler", None),
            Some((Severity::Critical, AlertStatus::Firing))
        );
        assert_eq!(
            classify("Fehler beendet (jetzt: OK)", None).map(|s| s.1),
            Some(AlertStatus::Resolved)
        );
        assert_eq!(
            classify("Paused by user", None).map(|s| s.1),
            Some(AlertStatus::Resolved)
        );
        assert_eq!(
            classify("???", Some(RED)),
            Some((Severity::Critical, AlertStatus::Firing))
        );
        assert_eq!(classify("???", None), None);
        assert_eq!(stars("***"), Some(3));
        assert_eq!(stars("9"), None);
    }

    #[test]
    fn missing_fields_are_named() {
        assert_eq!(
            parse(b"sensor=Ping&status=Down", Utc::now())
                .unwrap_err()
                .field
                .as_deref(),
            Some("device")
        );
        assert_eq!(
            parse(b"device=d&sensor=s&status=Sideways", Utc::now())
                .unwrap_err()
                .field
                .as_deref(),
            Some("status")
        );
    }
}
