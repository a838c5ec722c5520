//! Classification: Alertmanager-style matchers and the ordered `[[rules]]` that turn an
//! alert into a priority, an escalation policy, runbooks and a grouping. Pure.

use crate::alert::{Alert, Priority};
use regex::Regex;
use std::fmt;

/// One condition such as `labels.env="prod"` or `check=~"postgres.*"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    field: String,
    op: MatchOp,
    value: String,
    /// Compiled and anchored, for `=~` and `!~`.
    regex: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// The fields a matcher may name besides `labels.NAME`.
pub const MATCHABLE_FIELDS: [&str; 7] = [
    "source",
    "resource",
    "check",
    "severity",
    "status",
    "summary",
    "dedup_key",
];

/// Why a matcher was refused: the matcher as written, what is wrong, and what to write.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MatcherError {
    #[error("matcher {text:?} has no operator; write e.g. check=~\"disk.*\"")]
    NoOperator { text: String },
    #[error("matcher {text:?} does not start with a field name; write e.g. check=\"disk\"")]
    NoField { text: String },
    #[error("matcher {text:?} names unknown field {field:?}; use one of {} or labels.NAME", MATCHABLE_FIELDS.join(", "))]
    UnknownField { text: String, field: String },
    #[error("matcher {text:?} has no operator after {field:?}; use =, !=, =~ or !~")]
    NoOperatorAfterField { text: String, field: String },
    #[error("matcher {text:?}: the quoted value is not closed; end it with \"")]
    UnclosedQuote { text: String },
    #[error("matcher {text:?}: the value ends with a lone backslash; write \\\\ for a backslash")]
    LoneBackslash { text: String },
    #[error("matcher {text:?} has a bad regex: {source}")]
    BadRegex { text: String, source: regex::Error },
}

/// What `unquote` refuses; [`MatcherError`] adds the matcher.
enum QuoteError {
    Unclosed,
    LoneBackslash,
}

impl Matcher {
    /// Parses `field op value`; the value may be double-quoted (with `\"` and `\\`).
    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        let text = text.trim();
        let owned = || text.to_string();
        let field_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'))
            .ok_or_else(|| MatcherError::NoOperator { text: owned() })?;
        let field = &text[..field_end];
        if field.is_empty() {
            return Err(MatcherError::NoField { text: owned() });
        }
        if !(MATCHABLE_FIELDS.contains(&field)
            || field
                .strip_prefix("labels.")
                .is_some_and(|name| !name.is_empty()))
        {
            return Err(MatcherError::UnknownField {
                text: owned(),
                field: field.to_string(),
            });
        }
        let rest = text[field_end..].trim_start();
        let (op, rest) = if let Some(rest) = rest.strip_prefix("=~") {
            (MatchOp::Regex, rest)
        } else if let Some(rest) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, rest)
        } else if let Some(rest) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, rest)
        } else if let Some(rest) = rest.strip_prefix('=') {
            (MatchOp::Equal, rest)
        } else {
            return Err(MatcherError::NoOperatorAfterField {
                text: owned(),
                field: field.to_string(),
            });
        };
        let value = unquote(rest.trim()).map_err(|why| match why {
            QuoteError::Unclosed => MatcherError::UnclosedQuote { text: owned() },
            QuoteError::LoneBackslash => MatcherError::LoneBackslash { text: owned() },
        })?;
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|source| {
                    MatcherError::BadRegex {
                        text: owned(),
                        source,
                    }
                })?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            field: field.to_string(),
            op,
            value,
            regex,
        })
    }

    /// An absent field or label counts as the empty string, as in Alertmanager.
    pub fn matches(&self, alert: &Alert) -> bool {
        let actual = alert.field(&self.field).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => actual == self.value,
            (MatchOp::NotEqual, _) => actual != self.value,
            (MatchOp::Regex, Some(regex)) => regex.is_match(actual),
            (MatchOp::NotRegex, Some(regex)) => !regex.is_match(actual),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{}{:?}", self.field, op, self.value)
    }
}

fn unquote(text: &str) -> Result<String, QuoteError> {
    let Some(inner) = text.strip_prefix('"') else {
        return Ok(text.to_string());
    };
    let inner = inner.strip_suffix('"').ok_or(QuoteError::Unclosed)?;
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some('n') => value.push('\n'),
                // Regex escapes such as \d pass through untouched.
                Some(other) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return Err(QuoteError::LoneBackslash),
            }
        } else {
            value.push(c);
        }
    }
    Ok(value)
}

/// A validated `[[rules]]` entry.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub priority: Option<Priority>,
    pub escalation_policy: Option<String>,
    pub runbooks: Vec<String>,
    pub group_by: Vec<String>,
    pub stakeholders: Vec<String>,
    /// Knowledge-base link templates for its incidents.
    pub kb: Vec<String>,
    /// Ticketing platforms for its incidents, instead of each platform's `priorities`.
    pub tickets: Option<Vec<String>>,
}

/// What the rules decided for one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub priority: Priority,
    /// The rule that matched, if any.
    pub rule: Option<String>,
    pub escalation_policy: Option<String>,
    pub runbooks: Vec<String>,
    /// The alert's group key when the rule sets `group_by`; see [`group_key`].
    pub group_key: Option<String>,
}

/// First matching rule wins; without one, the severity decides (spec §3).
pub fn classify(alert: &Alert, rules: &[Rule]) -> Classification {
    let default_priority = alert.severity.default_priority();
    match rules
        .iter()
        .find(|rule| rule.matchers.iter().all(|matcher| matcher.matches(alert)))
    {
        Some(rule) => Classification {
            priority: rule.priority.unwrap_or(default_priority),
            rule: Some(rule.name.clone()),
            escalation_policy: rule.escalation_policy.clone(),
            runbooks: rule.runbooks.clone(),
            group_key: group_key(alert, &rule.name, &rule.group_by),
        },
        None => Classification {
            priority: default_priority,
            rule: None,
            escalation_policy: None,
            runbooks: Vec::new(),
            group_key: None,
        },
    }
}

/// Alerts with the same rule and the same values of the `group_by` fields share a key.
/// The rule name is part of it so two rules grouping by `resource` stay apart.
fn group_key(alert: &Alert, rule: &str, group_by: &[String]) -> Option<String> {
    if group_by.is_empty() {
        return None;
    }
    let mut key = rule.to_string();
    for field in group_by {
        key.push('\u{1f}');
        key.push_str(field);
        key.push('=');
        key.push_str(alert.field(field).unwrap_or(""));
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertAction, AlertStatus, Labels, Severity};

    fn alert(check: &str, env: &str) -> Alert {
        let mut labels = Labels::new();
        labels.insert("env".into(), env.into());
        Alert {
            source: "generic".into(),
            dedup_key: "k".into(),
            resource: "db-01".into(),
            check: check.into(),
            severity: Severity::Warning,
            status: AlertStatus::Firing,
            action: AlertAction::Report,
            summary: "s".into(),
            details: serde_json::Value::Null,
            labels,
            links: vec![],
            occurred_at: None,
        }
    }

    fn rule(name: &str, matchers: &[&str], priority: Priority) -> Rule {
        Rule {
            name: name.into(),
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            priority: Some(priority),
            escalation_policy: None,
            runbooks: vec![],
            group_by: vec!["resource".into()],
            stakeholders: vec![],
            kb: vec![],
            tickets: None,
        }
    }

    #[test]
    fn regex_matchers_are_anchored() {
        let matcher = Matcher::parse(r#"check=~"postgres.*""#).unwrap();
        assert!(matcher.matches(&alert("postgres-lag", "prod")));
        assert!(!matcher.matches(&alert("my-postgres-lag", "prod")));
    }

    #[test]
    fn absent_label_is_empty() {
        assert!(
            Matcher::parse(r#"labels.team!="dba""#)
                .unwrap()
                .matches(&alert("x", "prod"))
        );
        assert!(
            Matcher::parse(r#"labels.team="""#)
                .unwrap()
                .matches(&alert("x", "prod"))
        );
    }

    #[test]
    fn first_matching_rule_wins_and_sets_group_key() {
        let rules = [
            rule(
                "prod db",
                &[r#"labels.env="prod""#, r#"check=~"postgres.*""#],
                Priority::P1,
            ),
            rule("prod", &[r#"labels.env="prod""#], Priority::P2),
        ];
        let first = classify(&alert("postgres-lag", "prod"), &rules);
        assert_eq!(first.priority, Priority::P1);
        assert_eq!(first.rule.as_deref(), Some("prod db"));
        assert!(first.group_key.unwrap().contains("resource=db-01"));
        assert_eq!(
            classify(&alert("cpu", "prod"), &rules).priority,
            Priority::P2
        );
        let none = classify(&alert("cpu", "dev"), &rules);
        assert_eq!((none.priority, none.rule), (Priority::P3, None));
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        let error = |text: &str| Matcher::parse(text).unwrap_err().to_string();
        assert!(error("check").contains("no operator"));
        assert!(error(r#"host="x""#).contains("unknown field"));
        assert!(error(r#"check=~"(""#).contains("bad regex"));
    }

    #[test]
    fn a_refused_matcher_names_itself_and_what_to_write() {
        let error = |text: &str| Matcher::parse(text).unwrap_err().to_string();
        assert_eq!(
            error(r#"labels.env "prod""#),
            r#"matcher "labels.env \"prod\"" has no operator after "labels.env"; use =, !=, =~ or !~"#
        );
        assert_eq!(
            error(r#"check="disk"#),
            r#"matcher "check=\"disk": the quoted value is not closed; end it with ""#
        );
        assert_eq!(
            error("=x"),
            r#"matcher "=x" does not start with a field name; write e.g. check="disk""#
        );
        assert!(
            error(r#"check="x\""#)
                .ends_with(r#"the value ends with a lone backslash; write \\ for a backslash"#)
        );
        assert!(
            error(r#"host="x""#).contains(r#"unknown field "host"; use one of source, resource"#)
        );
    }
}
