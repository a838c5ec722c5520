//! Runbooks: manifests `runbooks/<name>.toml` beside their executables (spec §5),
//! which alerts they match, and their parameters rendered from the alert and
//! validated against a pattern each. `guard.rs` decides whether a run may start
//! (cooldown, hourly cap, circuit breaker, concurrency); `runner.rs` runs it.

pub mod guard;
pub mod runner;

use crate::alert::Alert;
use crate::clock::parse_duration;
use crate::rules::Matcher;
use chrono::TimeDelta;
use handlebars::Handlebars;
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The PATH a runbook gets unless its manifest names another.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Longest parameter value accepted, whatever the pattern says.
const MAX_PARAM_BYTES: usize = 4096;

/// What a successful run means for the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSuccess {
    Resolve,
    WaitForRecovery,
    Nothing,
}

/// What a failed run means for the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Escalate,
    Nothing,
}

/// Who must agree before an automatic run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    None,
    /// A responder approves it on the incident, within `approval_timeout`.
    Responder,
}

/// One parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub from: String,
    /// The manifest's pattern, as written (for messages).
    pub pattern_text: String,
    /// The same, anchored: it must match the whole value.
    pub pattern: Regex,
    pub secret: bool,
    /// When given, the only values accepted.
    pub allowed: Option<Vec<String>>,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub name: String,
    pub description: String,
    /// The executable, resolved against the runbooks directory, then its arguments.
    pub command: Vec<String>,
    pub dir: PathBuf,
    pub matchers: Vec<Matcher>,
    pub timeout: TimeDelta,
    pub cooldown: TimeDelta,
    pub max_runs_per_hour: Option<u32>,
    pub concurrency: u32,
    pub on_success: OnSuccess,
    pub recovery_timeout: TimeDelta,
    pub on_failure: OnFailure,
    pub params: BTreeMap<String, Param>,
    /// Environment variables passed through from the daemon, by name.
    pub pass_env: Vec<String>,
    pub path: String,
    /// Failures in a row on one target before the breaker opens.
    pub breaker_failures: u32,
    /// Knowledge-base link templates shown on the incidents it is chosen for.
    pub kb: Vec<String>,
    pub approval: Approval,
    pub approval_timeout: TimeDelta,
    /// Fixed environment variables of the child (settings of the script).
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    description: String,
    command: Vec<String>,
    #[serde(rename = "match", default)]
    matchers: Vec<String>,
    #[serde(default = "sixty_seconds")]
    timeout: String,
    #[serde(default = "zero")]
    cooldown: String,
    #[serde(default)]
    max_runs_per_hour: Option<u32>,
    #[serde(default = "one")]
    concurrency: u32,
    #[serde(default = "nothing")]
    on_success: String,
    #[serde(default = "five_minutes")]
    recovery_timeout: String,
    #[serde(default = "escalate")]
    on_failure: String,
    #[serde(default)]
    params: BTreeMap<String, RawParam>,
    #[serde(default)]
    pass_env: Vec<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default = "three")]
    breaker_failures: u32,
    /// Knowledge-base links (templates over the alert's fields).
    #[serde(default)]
    kb: Vec<String>,
    #[serde(default = "nothing")]
    approval: String,
    #[serde(default = "fifteen_minutes")]
    approval_timeout: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    from: String,
    pattern: String,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    allowed: Option<Vec<String>>,
}

fn sixty_seconds() -> String {
    "60s".into()
}
fn zero() -> String {
    "0s".into()
}
fn fifteen_minutes() -> String {
    "15m".into()
}
fn five_minutes() -> String {
    "5m".into()
}
fn nothing() -> String {
    "none".into()
}
fn escalate() -> String {
    "escalate".into()
}
fn one() -> u32 {
    1
}
fn three() -> u32 {
    3
}

/// A manifest that cannot be used: which file, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ManifestError {
    pub file: String,
    pub message: String,
}

/// Loads every `*.toml` manifest of `dir`; a missing directory holds none.
pub fn load_dir(dir: &Path) -> (Vec<Runbook>, Vec<ManifestError>) {
    let mut runbooks = Vec::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (runbooks, errors);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let error = |message: String| ManifestError {
            file: path.display().to_string(),
            message,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(why) => {
                errors.push(error(format!("cannot read it: {why}")));
                continue;
            }
        };
        match parse(&name, dir, &text) {
            Ok(runbook) => runbooks.push(runbook),
            Err(problems) => errors.extend(problems.into_iter().map(error)),
        }
    }
    (runbooks, errors)
}

/// Parses and validates one manifest; every problem is reported.
pub fn parse(name: &str, dir: &Path, text: &str) -> Result<Runbook, Vec<String>> {
    let raw: RawManifest = toml::from_str(text)
        .map_err(|error| vec![format!("not a valid manifest: {}", error.message())])?;
    let mut problems = Vec::new();
    let mut duration = |key: &str, text: &str| {
        parse_duration(text).unwrap_or_else(|why| {
            problems.push(format!("{key}: {why}"));
            TimeDelta::zero()
        })
    };
    let timeout = duration("timeout", &raw.timeout);
    let cooldown = duration("cooldown", &raw.cooldown);
    let recovery_timeout = duration("recovery_timeout", &raw.recovery_timeout);
    let approval_timeout = duration("approval_timeout", &raw.approval_timeout);
    if raw.command.is_empty() {
        problems.push(
            "command: give the executable and its arguments, e.g. [\"./restart-service.sh\"]"
                .into(),
        );
    }
    if timeout <= TimeDelta::zero() && parse_duration(&raw.timeout).is_ok() {
        problems.push("timeout: must be longer than 0s".into());
    }
    let on_success = match raw.on_success.as_str() {
        "resolve" => OnSuccess::Resolve,
        "wait_for_recovery" => OnSuccess::WaitForRecovery,
        "none" => OnSuccess::Nothing,
        other => {
            problems.push(format!(
                "on_success: {other:?} is not resolve, wait_for_recovery or none"
            ));
            OnSuccess::Nothing
        }
    };
    let approval = match raw.approval.as_str() {
        "none" => Approval::None,
        "responder" => Approval::Responder,
        other => {
            problems.push(format!("approval: {other:?} is not none or responder"));
            Approval::None
        }
    };
    for name in raw.env.keys() {
        if name.is_empty()
            || name == "PATH"
            || name.starts_with("TOCSIN_PARAM_")
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            problems.push(format!(
                "env.{name}: names use letters, digits and _, and are not PATH or TOCSIN_PARAM_*"
            ));
        }
    }
    let on_failure = match raw.on_failure.as_str() {
        "escalate" => OnFailure::Escalate,
        "none" => OnFailure::Nothing,
        other => {
            problems.push(format!("on_failure: {other:?} is not escalate or none"));
            OnFailure::Escalate
        }
    };
    let matchers = raw
        .matchers
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            Matcher::parse(text)
                .map_err(|why| problems.push(format!("match[{i}]: {why}")))
                .ok()
        })
        .collect();
    let mut params = BTreeMap::new();
    let templates = Handlebars::new();
    for (param, spec) in raw.params {
        if !param
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            problems.push(format!(
                "params.{param}: names use letters, digits, _ and -"
            ));
        }
        if let Err(why) = templates.render_template(&spec.from, &serde_json::json!({})) {
            problems.push(format!("params.{param}.from: {why}"));
        }
        // Anchored, so `[a-z]+` cannot pass `nginx; reboot` on its first letters.
        match Regex::new(&format!("^(?:{})$", spec.pattern)) {
            Ok(pattern) => {
                params.insert(
                    param,
                    Param {
                        from: spec.from,
                        pattern_text: spec.pattern,
                        pattern,
                        secret: spec.secret,
                        allowed: spec.allowed,
                    },
                );
            }
            Err(why) => problems.push(format!("params.{param}.pattern: {why}")),
        }
    }
    for (i, template) in raw.kb.iter().enumerate() {
        if let Err(why) = crate::incident::links::check_template(template) {
            problems.push(format!("kb[{i}]: {why}"));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Runbook {
        name: name.to_string(),
        description: raw.description,
        command: raw.command,
        dir: dir.to_path_buf(),
        matchers,
        timeout,
        cooldown,
        max_runs_per_hour: raw.max_runs_per_hour,
        concurrency: raw.concurrency.max(1),
        on_success,
        recovery_timeout,
        on_failure,
        params,
        pass_env: raw.pass_env,
        path: raw.path.unwrap_or_else(|| DEFAULT_PATH.to_string()),
        breaker_failures: raw.breaker_failures.max(1),
        kb: raw.kb,
        approval,
        approval_timeout,
        env: raw.env,
    })
}

/// Parameter values by name, and which of them are secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pub values: BTreeMap<String, String>,
    pub secret: Vec<String>,
}

impl Params {
    /// The values with secrets replaced, for the store and the timeline.
    pub fn redacted(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .map(|(name, value)| {
                let shown = if self.secret.contains(name) {
                    "[REDACTED]".to_string()
                } else {
                    value.clone()
                };
                (name.clone(), shown)
            })
            .collect()
    }

    /// What cooldown and the breaker are counted per: the non-secret values.
    pub fn target(&self) -> String {
        self.redacted()
            .into_iter()
            .filter(|(name, _)| !self.secret.contains(name))
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Why a run's parameters are refused; a secret's value is never shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter {name}: cannot render {template:?}: {why}")]
    Render {
        name: String,
        template: String,
        why: String,
    },
    #[error("parameter {name} is not one of this runbook's ({known})")]
    Unknown { name: String, known: String },
    #[error("parameter {name} is empty: the alert does not carry it")]
    Empty { name: String },
    #[error("parameter {name} = {shown} does not match {pattern}")]
    Mismatch {
        name: String,
        shown: String,
        pattern: String,
    },
    #[error(
        "parameter {name} = {shown} is not one of params.{name}.allowed ({allowed}) in {runbook}.toml; add it there if this runbook may act on it"
    )]
    NotAllowed {
        name: String,
        shown: String,
        allowed: String,
        runbook: String,
    },
}

/// Why a runbook an incident chose does not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRun {
    #[error(transparent)]
    Params(#[from] ParamError),
    #[error(transparent)]
    Refused(#[from] guard::Refused),
}

impl Runbook {
    /// True when every matcher matches (a runbook without matchers runs only when a
    /// rule names it).
    pub fn matches(&self, alert: &Alert) -> bool {
        !self.matchers.is_empty() && self.matchers.iter().all(|m| m.matches(alert))
    }

    /// Renders each parameter from the alert and checks it against its pattern.
    pub fn render(
        &self,
        alert: &Alert,
        incident_id: i64,
        priority: &str,
    ) -> Result<Params, ParamError> {
        let mut context = alert.template_context();
        context["incident"] = serde_json::json!({ "id": incident_id, "priority": priority });
        let mut templates = Handlebars::new();
        templates.register_escape_fn(handlebars::no_escape);
        let mut values = BTreeMap::new();
        for (name, param) in &self.params {
            let value = templates
                .render_template(&param.from, &context)
                .map_err(|why| ParamError::Render {
                    name: name.clone(),
                    template: param.from.clone(),
                    why: why.to_string(),
                })?;
            values.insert(name.clone(), value);
        }
        self.validate(values)
    }

    /// Checks given values (manual runs, or rendered ones).
    pub fn validate(&self, values: BTreeMap<String, String>) -> Result<Params, ParamError> {
        for name in values.keys() {
            if !self.params.contains_key(name) {
                return Err(ParamError::Unknown {
                    name: name.clone(),
                    known: self.params.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
        for (name, param) in &self.params {
            let value = values.get(name).map(String::as_str).unwrap_or("");
            let shown = if param.secret {
                "[REDACTED]".to_string()
            } else {
                format!("{:?}", value.chars().take(80).collect::<String>())
            };
            if value.is_empty() {
                return Err(ParamError::Empty { name: name.clone() });
            }
            if value.len() > MAX_PARAM_BYTES
                || value.contains('\0')
                || !param.pattern.is_match(value)
            {
                return Err(ParamError::Mismatch {
                    name: name.clone(),
                    shown,
                    pattern: param.pattern_text.clone(),
                });
            }
            if let Some(allowed) = &param.allowed
                && !allowed.iter().any(|one| one == value)
            {
                return Err(ParamError::NotAllowed {
                    name: name.clone(),
                    shown,
                    allowed: allowed.join(", "),
                    runbook: self.name.clone(),
                });
            }
        }
        let secret = self
            .params
            .iter()
            .filter(|(_, p)| p.secret)
            .map(|(name, _)| name.clone())
            .collect();
        Ok(Params { values, secret })
    }

    /// The environment variable of a parameter: `TOCSIN_PARAM_` + upper case, `-` → `_`.
    pub fn variable(name: &str) -> String {
        format!(
            "TOCSIN_PARAM_{}",
            name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertAction, AlertStatus, Labels, Severity};

    const MANIFEST: &str = r#"
description = "Restart a service"
command = ["./restart-service.sh"]
match = ['labels.service=~".+"', 'check=~"(?i).*(down|stopped).*"']
timeout = "60s"
cooldown = "10m"
max_runs_per_hour = 3
on_success = "resolve"
[params.service]
from = "{{labels.service}}"
pattern = "^[A-Za-z0-9@._-]{1,64}$"
[params.host]
from = "{{resource}}"
pattern = "^[A-Za-z0-9.-]{1,253}$"
"#;

    fn alert(service: &str) -> Alert {
        let mut labels = Labels::new();
        labels.insert("service".into(), service.into());
        Alert {
            source: "generic".into(),
            dedup_key: "k".into(),
            resource: "web-1".into(),
            check: "nginx down".into(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            action: AlertAction::Report,
            summary: "s".into(),
            details: serde_json::Value::Null,
            labels,
            links: vec![],
            occurred_at: None,
        }
    }

    #[test]
    fn manifests_parse_and_match() {
        let runbook = parse("restart-service", Path::new("runbooks"), MANIFEST).unwrap();
        assert_eq!(runbook.on_success, OnSuccess::Resolve);
        assert_eq!(runbook.cooldown, TimeDelta::minutes(10));
        assert!(runbook.matches(&alert("nginx")));
        let params = runbook.render(&alert("nginx"), 1, "P1").unwrap();
        assert_eq!(params.values["service"], "nginx");
        assert_eq!(params.target(), "host=web-1,service=nginx");
        assert_eq!(Runbook::variable("max-age"), "TOCSIN_PARAM_MAX_AGE");
    }

    #[test]
    fn injection_attempts_fail_validation_and_say_why() {
        let runbook = parse("restart-service", Path::new("runbooks"), MANIFEST).unwrap();
        for hostile in [
            "nginx; rm -rf /",
            "$(reboot)",
            "a\nb",
            "`id`",
            &"x".repeat(1_000_000),
        ] {
            let why = runbook
                .render(&alert(hostile), 1, "P1")
                .unwrap_err()
                .to_string();
            assert!(why.starts_with("parameter service"), "{why}");
        }
        assert!(
            runbook
                .render(&alert(""), 1, "P1")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }

    #[test]
    fn patterns_match_the_whole_value_and_allowed_lists_are_kept() {
        let manifest = "command = [\"./r.sh\"]\n[params.service]\nfrom = \"{{labels.service}}\"\npattern = \"[a-z]+\"\nallowed = [\"nginx\"]\n";
        let runbook = parse("r", Path::new("."), manifest).unwrap();
        let why = runbook
            .render(&alert("nginx;reboot"), 1, "P1")
            .unwrap_err()
            .to_string();
        assert!(why.contains("does not match [a-z]+"), "{why}");
        let why = runbook
            .render(&alert("redis"), 1, "P1")
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("not one of params.service.allowed (nginx)"),
            "{why}"
        );
        runbook.render(&alert("nginx"), 1, "P1").unwrap();
        assert_eq!(runbook.approval, Approval::None);
        assert_eq!(runbook.approval_timeout, TimeDelta::minutes(15));
    }

    #[test]
    fn bad_manifests_list_every_problem() {
        let problems = parse("x", Path::new("."), "command = []\ntimeout = \"5 minutes\"\non_success = \"maybe\"\n[params.a]\nfrom = \"{{\"\npattern = \"(\"\n").unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:?}");
        let problems = parse(
            "x",
            Path::new("."),
            "command = [\"x\"]\napproval = \"anyone\"\napproval_timeout = \"soon\"\n[env]\nPATH = \"/tmp\"\n",
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
