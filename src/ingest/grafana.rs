//! Grafana unified alerting's webhook contact point (senders.md §2): Alertmanager's
//! shape with `version: "1"`, `orgId`, `title` and per-alert dashboard links.

use super::IngestError;
use crate::alert::Alert;
use chrono::{DateTime, Utc};

/// Parses one webhook body.
pub fn parse(body: &[u8], _now: DateTime<Utc>) -> Result<Vec<Alert>, IngestError> {
    super::alertmanager::parse_as(body, "grafana")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertStatus, Severity};

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn firing_then_resolved() {
        let firing = parse(&fixture("grafana-firing.json"), Utc::now())
            .unwrap()
            .remove(0);
        assert_eq!(firing.source, "grafana");
        assert_eq!(
            (firing.resource.as_str(), firing.check.as_str()),
            ("web-01.prod.example.net", "HighCPUUsage")
        );
        assert_eq!(
            (firing.severity, firing.status),
            (Severity::Warning, AlertStatus::Firing)
        );
        assert_eq!(firing.dedup_key, "9d6e4c2b1a0f8e7d");
        assert!(firing.links.iter().any(|link| link.contains("viewPanel=3")));
        assert_eq!(firing.details["values"]["A"], 96.4);
        let resolved = parse(&fixture("grafana-resolved.json"), Utc::now())
            .unwrap()
            .remove(0);
        assert_eq!(
            (resolved.status, resolved.dedup_key.as_str()),
            (AlertStatus::Resolved, "9d6e4c2b1a0f8e7d")
        );
    }
}
