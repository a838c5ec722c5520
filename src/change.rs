//! Change events: deploys, config pushes, feature flags. They answer the first
//! question of every incident — what changed? — by showing, on an incident, the
//! changes made to its resource (or to everything) shortly before it opened. Pure.

use chrono::{DateTime, TimeDelta, Utc};

/// A link a change carries (a build, a diff, a pipeline run).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeLink {
    pub href: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One change as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: i64,
    /// The tool that reported it (`github-actions`, `argocd`, `pagerduty`, …).
    pub source: String,
    pub summary: String,
    /// What it changed; `None` means it may concern anything.
    pub resource: Option<String>,
    /// When it happened (the sender's time, else when it arrived).
    pub at: DateTime<Utc>,
    pub links: Vec<ChangeLink>,
    pub details: serde_json::Value,
}

/// Which change events to read.
#[derive(Debug, Clone)]
pub struct ChangeQuery {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Changes of this resource (as resource or source) and those naming none.
    pub resource: Option<String>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Most changes an incident shows.
const SHOWN_ON_AN_INCIDENT: i64 = 20;

impl ChangeQuery {
    /// The changes that may explain an incident on `resource` opened at `opened_at`;
    /// keep those whose [`Change::explains`] holds.
    pub fn explaining(resource: &str, opened_at: DateTime<Utc>, window: TimeDelta) -> Self {
        Self {
            since: opened_at - window,
            until: opened_at,
            resource: Some(resource.to_string()),
            before_id: None,
            limit: SHOWN_ON_AN_INCIDENT,
        }
    }
}

impl Change {
    /// Whether this change may explain an incident on `resource` opened at
    /// `opened_at`: it happened within `window` before the opening, and it names that
    /// resource (as its resource or its source) or no resource at all.
    pub fn explains(&self, resource: &str, opened_at: DateTime<Utc>, window: TimeDelta) -> bool {
        let recent = self.at <= opened_at && opened_at - self.at <= window;
        let concerns = match &self.resource {
            None => true,
            Some(changed) => changed == resource || self.source == resource,
        };
        recent && concerns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(resource: Option<&str>, minutes_before: i64, opened: DateTime<Utc>) -> Change {
        Change {
            id: 1,
            source: "github-actions".into(),
            summary: "deploy".into(),
            resource: resource.map(str::to_string),
            at: opened - TimeDelta::minutes(minutes_before),
            links: Vec::new(),
            details: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_recent_change_of_the_resource_or_of_everything_explains_an_incident() {
        let opened = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let window = TimeDelta::hours(2);
        assert!(change(Some("api-3"), 10, opened).explains("api-3", opened, window));
        assert!(!change(Some("db-1"), 10, opened).explains("api-3", opened, window));
        assert!(change(None, 10, opened).explains("api-3", opened, window));
        assert!(!change(Some("api-3"), 121, opened).explains("api-3", opened, window));
        assert!(
            !change(Some("api-3"), -5, opened).explains("api-3", opened, window),
            "a change after the opening did not cause it"
        );
    }
}
