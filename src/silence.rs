//! Silences (maintenance windows): matchers and a time span. A silenced alert is
//! stored and listed but opens no incident and pages no one. Pure.

use crate::alert::Alert;
use crate::rules::{Matcher, MatcherError};
use chrono::{DateTime, Utc};

/// One silence.
#[derive(Debug, Clone)]
pub struct Silence {
    pub id: i64,
    /// As written, for the API.
    pub matchers: Vec<String>,
    pub parsed: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

/// Why a silence cannot be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SilenceError {
    #[error("matchers: at least one matcher is required, e.g. [\"resource=\\\"db-01\\\"\"]")]
    NoMatchers,
    #[error("matchers[{index}]: {error}")]
    Matcher { index: usize, error: MatcherError },
}

impl Silence {
    /// Parses the matchers; the error names the first bad one.
    pub fn new(
        id: i64,
        matchers: Vec<String>,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        created_by: String,
        comment: String,
        created_at: DateTime<Utc>,
    ) -> Result<Self, SilenceError> {
        if matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        let parsed = matchers
            .iter()
            .enumerate()
            .map(|(index, text)| {
                Matcher::parse(text).map_err(|error| SilenceError::Matcher { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            id,
            matchers,
            parsed,
            starts_at,
            ends_at,
            created_by,
            comment,
            created_at,
        })
    }

    /// In force at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Every matcher matches `alert`.
    pub fn matches(&self, alert: &Alert) -> bool {
        self.parsed.iter().all(|matcher| matcher.matches(alert))
    }

    /// `active`, `pending` or `expired`.
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        if now < self.starts_at {
            "pending"
        } else if now < self.ends_at {
            "active"
        } else {
            "expired"
        }
    }
}

/// The first silence in force at `now` that matches `alert`.
pub fn silenced_by<'a>(
    silences: &'a [Silence],
    alert: &Alert,
    now: DateTime<Utc>,
) -> Option<&'a Silence> {
    silences
        .iter()
        .find(|silence| silence.is_active(now) && silence.matches(alert))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertAction, AlertStatus, Labels, Severity};
    use chrono::TimeDelta;

    #[test]
    fn a_silence_covers_matching_alerts_inside_its_span() {
        let now = Utc::now();
        let silence = Silence::new(
            1,
            vec![r#"resource="db-01""#.into()],
            now,
            now + TimeDelta::hours(1),
            "ops".into(),
            "maintenance".into(),
            now,
        )
        .unwrap();
        let alert = |resource: &str| Alert {
            source: "generic".into(),
            dedup_key: "k".into(),
            resource: resource.into(),
            check: "c".into(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            action: AlertAction::Report,
            summary: "s".into(),
            details: serde_json::Value::Null,
            labels: Labels::new(),
            links: vec![],
            occurred_at: None,
        };
        let list = [silence];
        assert!(silenced_by(&list, &alert("db-01"), now).is_some());
        assert!(silenced_by(&list, &alert("db-02"), now).is_none());
        assert!(
            silenced_by(&list, &alert("db-01"), now + TimeDelta::hours(1)).is_none(),
            "expired"
        );
        assert_eq!(list[0].state(now - TimeDelta::seconds(1)), "pending");
        assert!(Silence::new(2, vec![], now, now, "x".into(), String::new(), now).is_err());
        assert!(
            Silence::new(
                2,
                vec!["nope".into()],
                now,
                now,
                "x".into(),
                String::new(),
                now
            )
            .unwrap_err()
            .to_string()
            .starts_with("matchers[0]")
        );
    }
}
