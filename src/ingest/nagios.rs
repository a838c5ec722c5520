//! Nagios Core, Naemon and Icinga notifications (senders.md §3, §4): the macros a
//! notification command posts, as a form or JSON, with or without `NAGIOS_`/`ICINGA_`
//! prefixes; and Icinga 2 API event-stream objects (`Notification`, `StateChange`).

use super::fields::Fields;
use super::{IngestError, parse_time};
use crate::alert::{Alert, AlertAction, AlertStatus, Labels, Severity};
use chrono::{DateTime, Utc};

/// Fields that carry credentials and are never stored.
const SECRETS: [&str; 4] = ["contactpager", "apikey", "pager", "token"];

/// Parses one notification.
pub fn parse(body: &[u8], _now: DateTime<Utc>) -> Result<Vec<Alert>, IngestError> {
    let fields = Fields::read(body, &["nagios_", "icinga_"])?;
    let event = fields.get(&["type"]).map(str::to_ascii_lowercase);
    match event.as_deref() {
        Some("notification") | Some("statechange") => icinga_event(&fields),
        _ => notification(&fields).map(|alert| vec![alert]),
    }
}

fn host_of(fields: &Fields) -> Result<String, IngestError> {
    fields
        .get(&["hostname", "host_name", "host", "hostdisplayname"])
        .map(str::to_string)
        .ok_or_else(|| {
            IngestError::field("HOSTNAME", "is required (also read as host_name or host)")
        })
}

fn notification(fields: &Fields) -> Result<Alert, IngestError> {
    let host = host_of(fields)?;
    let object = fields
        .get(&["pd_nagios_object", "entity_type"])
        .map(str::to_ascii_lowercase);
    let service = fields
        .get(&[
            "servicedesc",
            "service_desc",
            "service_description",
            "servicename",
            "service",
        ])
        .filter(|_| object.as_deref() != Some("host"))
        .map(str::to_string);
    let kind = fields
        .get(&["notificationtype", "notification_type"])
        .unwrap_or("PROBLEM")
        .to_ascii_uppercase();
    let state = match &service {
        Some(_) => fields
            .get(&["servicestate", "service_state", "state", "status"])
            .map(str::to_string)
            .or_else(|| {
                fields
                    .get(&["servicestateid", "service_state_id"])
                    .and_then(service_state_name)
            }),
        None => fields
            .get(&["hoststate", "host_state", "host_status", "state", "status"])
            .map(str::to_string)
            .or_else(|| {
                fields
                    .get(&["hoststateid", "host_state_id"])
                    .and_then(host_state_name)
            }),
    }
    .map(|state| state.to_ascii_uppercase());
    let (status, action) = match kind.as_str() {
        "PROBLEM" => (AlertStatus::Firing, AlertAction::Report),
        "RECOVERY" => (AlertStatus::Resolved, AlertAction::Report),
        "ACKNOWLEDGEMENT" => (AlertStatus::Firing, AlertAction::Acknowledge),
        // Flapping, downtime and custom notifications do not resolve anything by
        // themselves: the state they carry decides.
        "FLAPPINGSTART" | "FLAPPINGSTOP" | "FLAPPINGEND" | "FLAPPINGDISABLED" | "CUSTOM" => {
            (state_status(state.as_deref()), AlertAction::Report)
        }
        "DOWNTIMESTART" => (state_status(state.as_deref()), AlertAction::DowntimeStart),
        "DOWNTIMEEND" | "DOWNTIMECANCELLED" => {
            (state_status(state.as_deref()), AlertAction::DowntimeEnd)
        }
        other => {
            return Err(IngestError::field(
                "NOTIFICATIONTYPE",
                format!(
                    "{other:?} is not a Nagios notification type (PROBLEM, RECOVERY, ACKNOWLEDGEMENT, FLAPPINGSTART, DOWNTIMESTART, CUSTOM, …)"
                ),
            ));
        }
    };
    let Some(state) = state else {
        let name = if service.is_some() {
            "SERVICESTATE"
        } else {
            "HOSTSTATE"
        };
        return Err(IngestError::field(
            name,
            "is required: the state decides the severity",
        ));
    };
    let severity = severity_of(&state, service.is_some()).ok_or_else(|| {
        IngestError::field("SERVICESTATE", format!("{state:?} is not a Nagios state"))
    })?;
    let check = service.clone().unwrap_or_else(|| "host".to_string());
    let output = match &service {
        Some(_) => fields.get(&["serviceoutput", "service_output", "output", "plugin_output"]),
        None => fields.get(&["hostoutput", "host_output", "output", "plugin_output"]),
    };
    let summary = output.map_or_else(|| format!("{check} on {host} is {state}"), str::to_string);
    let mut labels = Labels::new();
    labels.insert("nagios_state".into(), state.clone());
    labels.insert("nagios_notification".into(), kind.clone());
    for (label, names) in [
        (
            "nagios_instance",
            &["server", "nagios_server", "instance"][..],
        ),
        ("hostgroups", &["hostgroupnames", "host_group_names"][..]),
        (
            "state_type",
            &[
                "servicestatetype",
                "service_state_type",
                "hoststatetype",
                "host_state_type",
            ][..],
        ),
        (
            "author",
            &[
                "notificationauthor",
                "notification_author",
                "notificationauthorname",
                "author",
            ][..],
        ),
        (
            "comment",
            &["notificationcomment", "notification_comment", "comment"][..],
        ),
    ] {
        if let Some(value) = fields.get(names) {
            labels.insert(label.into(), value.to_string());
        }
    }
    if kind.starts_with("FLAPPING") {
        labels.insert(
            "nagios_flapping".into(),
            (kind == "FLAPPINGSTART").to_string(),
        );
    }
    if kind.starts_with("DOWNTIME") {
        labels.insert(
            "nagios_downtime".into(),
            (kind == "DOWNTIMESTART").to_string(),
        );
    }
    let links = [
        fields.get(&["servicenotesurl", "service_notes_url", "notes_url"]),
        fields.get(&["hostnotesurl", "host_notes_url"]),
    ]
    .into_iter()
    .flatten()
    .map(str::to_string)
    .collect();
    Ok(Alert {
        source: "nagios".into(),
        dedup_key: identity(&host, service.as_deref()),
        resource: host,
        check,
        severity,
        status,
        action,
        summary,
        details: fields.details(&SECRETS),
        labels,
        links,
        occurred_at: occurred(fields),
    })
}

/// Icinga's own object name: `host!service`, or the host alone.
fn identity(host: &str, service: Option<&str>) -> String {
    match service {
        Some(service) => format!("{host}!{service}"),
        None => host.to_string(),
    }
}

fn occurred(fields: &Fields) -> Option<DateTime<Utc>> {
    if let Some(seconds) = fields
        .get(&["timet", "event_time", "timestamp"])
        .and_then(|t| t.parse::<f64>().ok())
    {
        return DateTime::from_timestamp_millis((seconds * 1000.0) as i64);
    }
    fields
        .get(&["longdatetime", "long_date_time"])
        .and_then(parse_time)
}

fn state_status(state: Option<&str>) -> AlertStatus {
    match state {
        Some("OK") | Some("UP") => AlertStatus::Resolved,
        _ => AlertStatus::Firing,
    }
}

fn severity_of(state: &str, service: bool) -> Option<Severity> {
    match (state, service) {
        ("CRITICAL", _) | ("DOWN", _) => Some(Severity::Critical),
        ("UNREACHABLE", _) => Some(Severity::Error),
        ("WARNING", _) | ("UNKNOWN", _) => Some(Severity::Warning),
        ("OK", _) | ("UP", _) => Some(Severity::Info),
        _ => None,
    }
}

fn service_state_name(id: &str) -> Option<String> {
    ["OK", "WARNING", "CRITICAL", "UNKNOWN"]
        .get(id.trim().parse::<f64>().ok()? as usize)
        .map(|s| s.to_string())
}

fn host_state_name(id: &str) -> Option<String> {
    ["UP", "DOWN", "UNREACHABLE"]
        .get(id.trim().parse::<f64>().ok()? as usize)
        .map(|s| s.to_string())
}

/// An Icinga 2 API event. Soft state changes are not alerts: nothing is returned.
fn icinga_event(fields: &Fields) -> Result<Vec<Alert>, IngestError> {
    let host = host_of(fields)?;
    let service = fields.get(&["service"]).map(str::to_string);
    let is_state_change = fields
        .get(&["type"])
        .is_some_and(|t| t.eq_ignore_ascii_case("statechange"));
    if is_state_change
        && fields
            .get(&["state_type"])
            .and_then(|t| t.parse::<f64>().ok())
            == Some(0.0)
    {
        return Ok(Vec::new());
    }
    let state_id = fields
        .get(&["state", "check_result.state"])
        .ok_or_else(|| IngestError::field("check_result.state", "is required"))?;
    let state = if service.is_some() {
        service_state_name(state_id)
    } else {
        host_state_name(state_id)
    }
    .ok_or_else(|| {
        IngestError::field(
            "check_result.state",
            format!("{state_id:?} is not an Icinga state"),
        )
    })?;
    let kind = fields
        .get(&["notification_type"])
        .unwrap_or(if is_state_change {
            "STATECHANGE"
        } else {
            "PROBLEM"
        })
        .to_ascii_uppercase();
    let (status, action) = match kind.as_str() {
        "ACKNOWLEDGEMENT" => (AlertStatus::Firing, AlertAction::Acknowledge),
        "RECOVERY" => (AlertStatus::Resolved, AlertAction::Report),
        _ => (state_status(Some(&state)), AlertAction::Report),
    };
    let severity = severity_of(&state, service.is_some()).unwrap_or(Severity::Warning);
    let check = service.clone().unwrap_or_else(|| "host".to_string());
    let summary = fields
        .get(&["check_result.output", "text"])
        .map_or_else(|| format!("{check} on {host} is {state}"), str::to_string);
    let mut labels = Labels::new();
    labels.insert("nagios_state".into(), state);
    labels.insert("nagios_notification".into(), kind);
    if let Some(source) = fields.get(&["check_result.check_source"]) {
        labels.insert("nagios_instance".into(), source.to_string());
    }
    Ok(vec![Alert {
        source: "nagios".into(),
        dedup_key: identity(&host, service.as_deref()),
        resource: host,
        check,
        severity,
        status,
        action,
        summary,
        details: fields.details(&SECRETS),
        labels,
        links: Vec::new(),
        occurred_at: occurred(fields),
    }])
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
        let mut alerts = parse(&fixture(name), Utc::now()).unwrap();
        assert_eq!(alerts.len(), 1, "{name}");
        alerts.remove(0)
    }

    #[test]
    fn service_problem_form() {
        let alert = one("nagios-service-problem.form");
        assert_eq!(alert.resource, "db-01.prod.example.net");
        assert_eq!(alert.check, "PostgreSQL Replication Lag");
        assert_eq!(
            alert.dedup_key,
            "db-01.prod.example.net!PostgreSQL Replication Lag"
        );
        assert_eq!(
            (alert.severity, alert.status),
            (Severity::Critical, AlertStatus::Firing)
        );
        assert!(
            alert
                .summary
                .starts_with("POSTGRES_REPLICATION_DELAY CRITICAL")
        );
        assert_eq!(
            alert.labels["nagios_instance"],
            "nagios-01.mgmt.example.net"
        );
        assert!(
            alert.details.get("contactpager").is_none(),
            "the PagerDuty key is never stored"
        );
        assert_eq!(
            alert.links,
            ["https://runbooks.example.net/postgres/replication-lag"]
        );
        assert_eq!(alert.occurred_at.unwrap().timestamp(), 1_741_943_561);
    }

    #[test]
    fn host_down_prefixed_form_and_json_share_an_identity() {
        let form = one("nagios-host-down-prefixed.form");
        let json = one("nagios-host-down.json");
        assert_eq!(
            form.check, "host",
            "an empty SERVICEDESC makes a host alert"
        );
        assert_eq!(
            (form.severity, form.status),
            (Severity::Critical, AlertStatus::Firing)
        );
        assert_eq!(form.dedup_key, json.dedup_key);
        assert_eq!(form.dedup_key, "edge-rtr-02");
    }

    #[test]
    fn recovery_acknowledgement_and_downtime() {
        let recovery = one("nagios-service-recovery.json");
        assert_eq!(recovery.status, AlertStatus::Resolved);
        assert_eq!(
            recovery.dedup_key,
            "db-01.prod.example.net!PostgreSQL Replication Lag"
        );
        assert!(recovery.details.get("apikey").is_none());
        let ack = one("nagios-service-acknowledgement.form");
        assert_eq!(ack.action, AlertAction::Acknowledge);
        assert_eq!(ack.labels["author"], "jdoe");
        let downtime = one("nagios-service-downtimestart.form");
        assert_eq!(
            downtime.status,
            AlertStatus::Firing,
            "a downtime is not a recovery"
        );
        assert_eq!(downtime.action, AlertAction::DowntimeStart);
        assert_eq!(downtime.labels["nagios_downtime"], "true");
    }

    #[test]
    fn icinga_forms_and_event_stream() {
        let form = one("icinga2-service-problem.form");
        assert_eq!(form.check, "https", "SERVICENAME is an alias");
        assert_eq!(form.severity, Severity::Critical);
        let problem = one("icinga2-problem.json");
        assert_eq!(
            (problem.dedup_key.as_str(), problem.severity),
            ("web-01.prod.example.net!https", Severity::Critical)
        );
        let ok = one("icinga2-statechange-ok.json");
        assert_eq!(ok.status, AlertStatus::Resolved);
        assert_eq!(ok.dedup_key, problem.dedup_key);
    }

    #[test]
    fn bad_notifications_name_the_field() {
        assert_eq!(
            parse(b"SERVICEDESC=x&SERVICESTATE=OK", Utc::now())
                .unwrap_err()
                .field
                .as_deref(),
            Some("HOSTNAME")
        );
        assert_eq!(
            parse(
                b"HOSTNAME=h&NOTIFICATIONTYPE=BOGUS&HOSTSTATE=UP",
                Utc::now()
            )
            .unwrap_err()
            .field
            .as_deref(),
            Some("NOTIFICATIONTYPE")
        );
        assert_eq!(
            parse(b"HOSTNAME=h&SERVICEDESC=s", Utc::now())
                .unwrap_err()
                .field
                .as_deref(),
            Some("SERVICESTATE")
        );
        assert!(
            parse(
                &fixture("malformed-nagios-shell-unescaped.json"),
                Utc::now()
            )
            .is_err()
        );
    }
}
