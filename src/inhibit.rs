//! Inhibition and recurring maintenance windows: two more reasons an alert is kept
//! quiet (stored and listed, but no incident and no page). Pure.
//!
//! An `[[inhibit]]` rule says: while an alert matching `source_match` fires, alerts
//! matching `target_match` whose `equal` fields have the same values are inhibited —
//! a host that is down suppresses the alerts of its services, as in Alertmanager.

use crate::alert::Alert;
use crate::rules::Matcher;
use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use std::collections::HashMap;

/// A validated `[[inhibit]]` rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source_match: Vec<Matcher>,
    pub target_match: Vec<Matcher>,
    pub equal: Vec<String>,
}

impl InhibitRule {
    fn values(&self, alert: &Alert) -> Vec<String> {
        self.equal
            .iter()
            .map(|field| alert.field(field).unwrap_or("").to_string())
            .collect()
    }
}

/// The firing alerts that inhibit others: rule index → the `equal` values each holds,
/// with the identity of the alert that holds it.
#[derive(Debug, Default)]
pub struct Inhibitors {
    active: HashMap<usize, Vec<(String, Vec<String>)>>,
}

impl Inhibitors {
    /// Remembers `alert` (identified by `key`) for each rule it is a source of.
    pub fn fire(&mut self, rules: &[InhibitRule], key: &str, alert: &Alert) {
        for (index, rule) in rules.iter().enumerate() {
            if rule.source_match.iter().all(|m| m.matches(alert)) {
                self.active
                    .entry(index)
                    .or_default()
                    .push((key.to_string(), rule.values(alert)));
            }
        }
    }

    /// Forgets the alert identified by `key`.
    pub fn resolve(&mut self, key: &str) {
        for holders in self.active.values_mut() {
            holders.retain(|(holder, _)| holder != key);
        }
    }

    /// True when a firing source alert (other than `key` itself) inhibits `alert`.
    pub fn inhibits(&self, rules: &[InhibitRule], key: &str, alert: &Alert) -> bool {
        rules.iter().enumerate().any(|(index, rule)| {
            rule.target_match.iter().all(|m| m.matches(alert))
                && self.active.get(&index).is_some_and(|holders| {
                    let values = rule.values(alert);
                    holders
                        .iter()
                        .any(|(holder, held)| holder != key && *held == values)
                })
        })
    }
}

/// A validated `[[maintenance]]` window: a daily span on some weekdays, in a zone.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub time_zone: Tz,
    /// Empty means every day.
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl MaintenanceWindow {
    /// In force at `now`. A span that ends before it starts runs past midnight and
    /// belongs to the day it starts on.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.time_zone);
        let time = local.time();
        let day_allowed = |day: Weekday| self.days.is_empty() || self.days.contains(&day);
        if self.start <= self.end {
            day_allowed(local.weekday()) && self.start <= time && time < self.end
        } else if time >= self.start {
            day_allowed(local.weekday())
        } else {
            time < self.end && day_allowed(local.weekday().pred())
        }
    }

    /// In force and matching.
    pub fn covers(&self, alert: &Alert, now: DateTime<Utc>) -> bool {
        self.is_active(now) && self.matchers.iter().all(|m| m.matches(alert))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertAction, AlertStatus, Labels, Severity};

    fn alert(resource: &str, check: &str) -> Alert {
        Alert {
            source: "nagios".into(),
            dedup_key: format!("{resource}!{check}"),
            resource: resource.into(),
            check: check.into(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            action: AlertAction::Report,
            summary: "s".into(),
            details: serde_json::Value::Null,
            labels: Labels::new(),
            links: vec![],
            occurred_at: None,
        }
    }

    #[test]
    fn a_down_host_inhibits_its_services_only() {
        let rules = [InhibitRule {
            source_match: vec![Matcher::parse(r#"check="host""#).unwrap()],
            target_match: vec![Matcher::parse(r#"check!="host""#).unwrap()],
            equal: vec!["resource".into()],
        }];
        let mut inhibitors = Inhibitors::default();
        let host = alert("web-1", "host");
        inhibitors.fire(&rules, "web-1", &host);
        assert!(inhibitors.inhibits(&rules, "web-1!http", &alert("web-1", "http")));
        assert!(
            !inhibitors.inhibits(&rules, "web-2!http", &alert("web-2", "http")),
            "another host"
        );
        assert!(!inhibitors.inhibits(&rules, "web-1", &host), "not itself");
        inhibitors.resolve("web-1");
        assert!(!inhibitors.inhibits(&rules, "web-1!http", &alert("web-1", "http")));
    }

    #[test]
    fn windows_follow_local_time_and_may_cross_midnight() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        let window = MaintenanceWindow {
            name: "patching".into(),
            matchers: vec![],
            time_zone: "Europe/Paris".parse().unwrap(),
            days: vec![Weekday::Sat],
            start: NaiveTime::from_hms_opt(23, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
        };
        // Saturday 2026-11-28 23:30 Paris = 22:30 UTC.
        assert!(window.is_active(at("2026-11-28T22:30:00Z")));
        assert!(
            window.is_active(at("2026-11-29T00:30:00Z")),
            "01:30 Sunday belongs to Saturday's span"
        );
        assert!(
            !window.is_active(at("2026-11-29T01:30:00Z")),
            "02:30 Sunday is after it"
        );
        assert!(!window.is_active(at("2026-11-27T22:30:00Z")), "Friday");
    }
}
