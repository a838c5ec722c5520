//! Any matcher a rule, silence or remote-access table may hold: parsed or refused
//! with a message, and a parsed one evaluates without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin::alert::{Alert, AlertAction, AlertStatus, Severity};
use tocsin::rules::Matcher;

fuzz_target!(|text: &str| {
    if let Ok(matcher) = Matcher::parse(text) {
        let alert = Alert {
            source: "nagios".into(),
            dedup_key: "k".into(),
            resource: "db-01".into(),
            check: "postgres".into(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            action: AlertAction::Report,
            summary: text.into(),
            details: serde_json::Value::Null,
            labels: [("env".to_string(), text.to_string())]
                .into_iter()
                .collect(),
            links: Vec::new(),
            occurred_at: None,
        };
        let _ = matcher.matches(&alert);
    }
});
