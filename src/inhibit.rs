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
    source_match: Vec<Matcher>,
    target_match: Vec<Matcher>,
    equal: Vec<String>,
    /// The rule's `source_match` and `equal` as text, the first part of its keys.
    holders: serde_json::Value,
}

impl InhibitRule {
    pub fn new(source_match: Vec<Matcher>, target_match: Vec<Matcher>, equal: Vec<String>) -> Self {
        let sources: Vec<String> = source_match.iter().map(ToString::to_string).collect();
        Self {
            holders: serde_json::json!([sources, equal]),
            source_match,
            target_match,
            equal,
        }
    }

    /// What an alert holds as a source of this rule, or is inhibited by as a target:
    /// the rule's `source_match` and `equal` with the alert's values of those fields,
    /// as one text. Rules differing only in their targets share their keys, since the
    /// same alerts hold them; the text is what replicas lock and store.
    pub fn key(&self, alert: &Alert) -> String {
        let values: Vec<&str> = self
            .equal
            .iter()
            .map(|field| alert.field(field).unwrap_or(""))
            .collect();
        serde_json::json!([self.holders, values]).to_string()
    }

    fn holds(&self, alert: &Alert) -> bool {
        self.source_match.iter().all(|m| m.matches(alert))
    }

    fn targets(&self, alert: &Alert) -> bool {
        self.target_match.iter().all(|m| m.matches(alert))
    }
}

/// The firing alerts that inhibit others: who holds each key.
#[derive(Debug, Default)]
pub struct Inhibitors {
    /// Key → the alerts (`source`/`dedup_key` joined) holding it.
    held: HashMap<String, Vec<String>>,
    /// Alert → the keys it holds.
    holding: HashMap<String, Vec<String>>,
}

impl Inhibitors {
    /// A firing alert holds the keys of the rules whose `source_match` it matches;
    /// returns them.
    pub fn fire(&mut self, rules: &[InhibitRule], holder: &str, alert: &Alert) -> Vec<String> {
        let keys: Vec<String> = rules
            .iter()
            .filter(|rule| rule.holds(alert))
            .map(|rule| rule.key(alert))
            .collect();
        for key in &keys {
            self.hold(key, holder);
        }
        keys
    }

    fn hold(&mut self, key: &str, holder: &str) {
        let holders = self.held.entry(key.to_string()).or_default();
        if !holders.iter().any(|held| held == holder) {
            holders.push(holder.to_string());
            self.holding
                .entry(holder.to_string())
                .or_default()
                .push(key.to_string());
        }
    }

    /// A resolved alert holds nothing any more.
    pub fn resolve(&mut self, holder: &str) {
        for key in self.holding.remove(holder).unwrap_or_default() {
            if let Some(holders) = self.held.get_mut(&key) {
                holders.retain(|held| held != holder);
                if holders.is_empty() {
                    self.held.remove(&key);
                }
            }
        }
    }

    /// Whether another firing alert inhibits `alert` (`holder` is its own identity).
    pub fn inhibits(&self, rules: &[InhibitRule], holder: &str, alert: &Alert) -> bool {
        rules.iter().any(|rule| {
            rule.targets(alert)
                && self
                    .held
                    .get(&rule.key(alert))
                    .is_some_and(|holders| holders.iter().any(|held| held != holder))
        })
    }

    /// Every key `alert` may hold or be inhibited by: what a batch naming it locks
    /// and reads again.
    pub fn keys_of(rules: &[InhibitRule], alert: &Alert) -> Vec<String> {
        let mut keys: Vec<String> = rules
            .iter()
            .filter(|rule| rule.holds(alert) || rule.targets(alert))
            .map(|rule| rule.key(alert))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Who holds `keys` now, as read from the store: replaces what was known of them.
    pub fn replace(&mut self, keys: &[String], rows: Vec<(String, String)>) {
        for key in keys {
            for holder in self.held.remove(key).unwrap_or_default() {
                if let Some(held) = self.holding.get_mut(&holder) {
                    held.retain(|other| other != key);
                }
            }
        }
        for (key, holder) in rows {
            self.hold(&key, &holder);
        }
    }

    /// Every key held, with its holders.
    pub fn all(&self) -> impl Iterator<Item = (&String, &String)> {
        self.held
            .iter()
            .flat_map(|(key, holders)| holders.iter().map(move |holder| (key, holder)))
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
        let rules = [InhibitRule::new(
            vec![Matcher::parse(r#"check="host""#).unwrap()],
            vec![Matcher::parse(r#"check!="host""#).unwrap()],
            vec!["resource".into()],
        )];
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
    fn a_source_and_its_targets_share_one_key_read_back_from_rows() {
        let rules = [InhibitRule::new(
            vec![Matcher::parse(r#"check="host""#).unwrap()],
            vec![Matcher::parse(r#"check!="host""#).unwrap()],
            vec!["resource".into()],
        )];
        let host = alert("web-1", "host");
        let http = alert("web-1", "http");
        let keys = Inhibitors::keys_of(&rules, &host);
        assert_eq!(keys, Inhibitors::keys_of(&rules, &http), "locked alike");
        assert_ne!(keys, Inhibitors::keys_of(&rules, &alert("web-2", "http")));
        let mut mine = Inhibitors::default();
        assert_eq!(mine.fire(&rules, "web-1", &host), keys);
        // Another replica knows only what it reads of those keys.
        let mut theirs = Inhibitors::default();
        theirs.replace(
            &keys,
            mine.all().map(|(k, h)| (k.clone(), h.clone())).collect(),
        );
        assert!(theirs.inhibits(&rules, "web-1!http", &http));
        theirs.replace(&keys, Vec::new());
        assert!(
            !theirs.inhibits(&rules, "web-1!http", &http),
            "released since"
        );
        assert_eq!(theirs.all().count(), 0);
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
