//! Loads `config/tocsin.toml`: `${VAR}` interpolation, per-section parsing, then one
//! validation pass that collects every error with its key path and line (spec §9, §10).
//! No other module reads the environment.

pub mod channels;
pub mod chat;
pub mod console;
mod helpdesk;
mod locate;
pub mod raw;
mod runbooks;

use crate::alert::Priority;
use crate::clock::parse_duration;
use crate::ingest::SourceKind;
use crate::name::UnknownName;
use crate::oncall::schedule::{Override, Schedule};
use crate::oncall::{Channel, Directory, EscalationPolicy, NotifyRule, Target, Tier, User};
use crate::rules::{Matcher, Rule};
use crate::sla::SlaTarget;
use channels::{EmailConfig, EmailTransport, SmsConfig, SmsProvider, SmtpTls};
use chrono::TimeDelta;
use raw::*;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The running configuration, replaced whole by a reload (SIGHUP, `POST /-/reload`).
pub type SharedConfig = std::sync::Arc<arc_swap::ArcSwap<Config>>;

/// The documented default configuration, compiled in for `--print-default-config` and
/// for tests that want "the file as shipped".
pub const DEFAULT_CONFIG: &str = include_str!("../../config/tocsin.toml");

/// One problem in the configuration, pointing at where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path such as `escalation_policies[0].tiers[1].after`; empty for syntax errors.
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every error found in one file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors {
    pub file: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} has {} error(s):", self.file, self.errors.len())?;
        for error in &self.errors {
            writeln!(f, "  {}:{error}", self.file)?;
        }
        Ok(())
    }
}

/// Who may do what with the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Responder,
    Admin,
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        match text {
            "viewer" => Ok(Self::Viewer),
            "responder" => Ok(Self::Responder),
            "admin" => Ok(Self::Admin),
            _ => Err(UnknownName::new(
                "API token role",
                text,
                "viewer, responder, admin",
            )),
        }
    }
}

/// An API token and what it may do.
#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub token: String,
    pub role: Role,
}

/// One enabled ingest source.
#[derive(Debug, Clone, Default)]
pub struct SourceConfig {
    /// `None` accepts unauthenticated posts (a warning is logged at start).
    pub token: Option<String>,
    /// Requests per second before 429.
    pub rate_limit: Option<NonZeroU32>,
    /// Body signature the sender must send, when configured.
    pub signature: Option<crate::webhook_auth::SignatureConfig>,
}

/// `[incidents]`.
#[derive(Debug, Clone)]
pub struct IncidentsConfig {
    pub auto_open: Vec<Priority>,
    pub auto_resolve: bool,
    pub group_window: TimeDelta,
    pub sla_warn_at: f64,
}

/// A dead-man's switch: something must check in every `interval` (plus `grace`).
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatConfig {
    pub name: String,
    pub interval: TimeDelta,
    pub grace: TimeDelta,
    pub token: Option<String>,
}

/// A paging drill: on its cron, a synthetic incident pages the policy for real.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillConfig {
    pub name: String,
    pub cron: String,
    pub escalation_policy: Option<String>,
    pub priority: Priority,
    /// Not acknowledged within this, the drill failed.
    pub ack_window: TimeDelta,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: String,
    pub max_body_bytes: usize,
    pub ack_link_ttl: TimeDelta,
    /// `[server] client_timeout`: a request's headers, and then its whole body,
    /// arrive within this or the connection is closed (read at start).
    pub client_timeout: std::time::Duration,
    /// `[server] tls_cert` and `tls_key`: HTTPS only when set.
    pub tls: Option<crate::tls::TlsFiles>,
    pub storage_url: String,
    pub write_timeout: std::time::Duration,
    pub api_tokens: Vec<ApiToken>,
    pub sources: BTreeMap<SourceKind, SourceConfig>,
    pub incidents: IncidentsConfig,
    /// Indexed by [`Priority::index`].
    pub sla: [SlaTarget; 4],
    pub rules: Vec<Rule>,
    /// Users, schedules and escalation policies.
    pub directory: Directory,
    pub email: Option<EmailConfig>,
    pub sms: Option<SmsConfig>,
    /// `[slack]`, `[telegram]`, `[ntfy]`, `[voice]`.
    pub chat: chat::ChatConfig,
    pub runbooks_dir: PathBuf,
    /// The manifests found in `runbooks_dir`: none until `reload::load` has read
    /// them and checked them against this file ([`Config::runbook_errors`]).
    pub runbooks: Vec<crate::runbook::Runbook>,
    /// `[runbooks] enabled`: the runbooks that run on their own; the others only by
    /// an admin's hand.
    pub runbooks_enabled: Vec<String>,
    /// Whether `[runbooks] enabled` was written: only a list someone wrote must name
    /// runbooks that exist (the default, `diagnostics`, may be absent).
    pub runbooks_enabled_listed: bool,
    /// `[runbooks] secret_domains`: where a runbook's secret may be mailed, lower case.
    pub secret_domains: Vec<String>,
    pub templates_dir: PathBuf,
    pub heartbeats: Vec<HeartbeatConfig>,
    pub flapping: crate::flapping::Policy,
    pub inhibit: Vec<crate::inhibit::InhibitRule>,
    /// `[[drills]]`.
    pub drills: Vec<DrillConfig>,
    /// `[reports.weekly]`: the cron (six fields, seconds first) and the recipients.
    pub weekly_report: Option<(String, Vec<String>)>,
    /// `[reports.monthly]`: likewise, for the monthly service review.
    pub monthly_report: Option<(String, Vec<String>)>,
    pub maintenance: Vec<crate::inhibit::MaintenanceWindow>,
    /// `[[tickets]]`: one per ticketing platform.
    pub tickets: Vec<crate::ticket::TicketConfig>,
    /// `[[remote_access]]`: link templates to reach a resource.
    pub remote_access: Vec<crate::incident::links::RemoteAccess>,
    /// `[dashboard] public` as written; see [`Config::dashboard_public`].
    pub dashboard_public_setting: Option<bool>,
    /// How long ended silences are kept.
    pub silence_retention: TimeDelta,
    /// `[changes]`.
    pub changes: ChangesConfig,
    /// `[console]`.
    pub console: console::ConsoleConfig,
}

/// `[changes]`: which change events an incident shows, and for how long they are kept.
#[derive(Debug, Clone, Copy)]
pub struct ChangesConfig {
    pub window: TimeDelta,
    pub retention: TimeDelta,
}

/// The tokens published in the README and the shipped config, with the variable
/// that replaces each.
const DEVELOPMENT_TOKENS: [(&str, &str); 2] = [
    ("dev-admin-token", "TOCSIN_ADMIN_TOKEN"),
    ("dev-ingest-token", "TOCSIN_INGEST_TOKEN"),
];

impl Config {
    /// Why `serve` must not start: a development token in use while listening
    /// beyond loopback, where anyone who has read the README could use it.
    pub fn exposure_refusal(&self) -> Option<String> {
        if !self.exposed() {
            return None;
        }
        let open: Vec<&str> = self
            .sources
            .iter()
            .filter(|(_, source)| source.token.is_none() && source.signature.is_none())
            .map(|(kind, _)| kind.as_str())
            .collect();
        if !open.is_empty() {
            return Some(format!(
                "refusing to serve beyond loopback ({}, {}) while [sources.{}] has no token: anyone could post alerts and acknowledge; give each a token",
                self.listen,
                self.public_url,
                open.join("], [sources.")
            ));
        }
        let in_use: Vec<&str> = self
            .api_tokens
            .iter()
            .map(|token| token.token.as_str())
            .chain(self.sources.values().filter_map(|s| s.token.as_deref()))
            .collect();
        let variables: Vec<&str> = DEVELOPMENT_TOKENS
            .iter()
            .filter(|(token, _)| in_use.contains(token))
            .map(|(_, variable)| *variable)
            .collect();
        if variables.is_empty() {
            return None;
        }
        Some(format!(
            "refusing to serve beyond loopback ({}, {}) with the published development token(s): set {} to secrets of your own (e.g. `openssl rand -hex 32`), or listen on 127.0.0.1 with a loopback server.public_url",
            self.listen,
            self.public_url,
            variables.join(" and ")
        ))
    }

    /// Why the links in messages would not reach this instance: `public_url` is a
    /// loopback address on another port than the one it listens on (the listen
    /// address was changed, `TOCSIN_LISTEN`, and the public URL left as shipped).
    pub fn public_url_mismatch(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.public_url).ok()?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let port = url.port_or_known_default()?;
        (loopback && self.listen.ip().is_loopback() && port != self.listen.port()).then(|| {
            format!(
                "server.public_url {} is not where this instance listens ({}): links in pages and emails will not reach it; set public_url (or TOCSIN_PUBLIC_URL in the shipped config) to the address people open",
                self.public_url, self.listen
            )
        })
    }

    /// Whether people beyond this machine reach Tocsin: it listens beyond loopback,
    /// or its public URL (a reverse proxy in front) is not a loopback address.
    pub fn exposed(&self) -> bool {
        let public_host_is_loopback = reqwest::Url::parse(&self.public_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .is_some_and(|host| {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
        !self.listen.ip().is_loopback() || !public_host_is_loopback
    }

    /// Whether the dashboard (`GET /`) is shown without a token: as set, else only
    /// while Tocsin is not [exposed](Config::exposed).
    pub fn dashboard_public(&self) -> bool {
        self.dashboard_public_setting.unwrap_or(!self.exposed())
    }

    /// Reads a configuration file; [`Config::parse`] validates the text.
    pub fn read(path: &Path) -> Result<String, ConfigErrors> {
        std::fs::read_to_string(path).map_err(|error| ConfigErrors {
            file: path.display().to_string(),
            errors: vec![ConfigError {
                path: String::new(),
                line: None,
                message: format!(
                    "cannot read it ({error}); pass --config PATH or run from the directory that holds config/tocsin.toml"
                ),
            }],
        })
    }

    /// Validates configuration text; `file` names it in errors. The runbooks are
    /// not read here: `reload::load` reads them and checks the references.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigErrors> {
        let (config, errors) = Self::check(text);
        Self::finish(config, errors, text, file)
    }

    /// The configuration as far as `text` could be read, and every error in it, for
    /// a caller that adds checks of its own (the runbooks) before [`Config::finish`],
    /// so that one report holds every error.
    pub fn check(text: &str) -> (Option<Self>, Vec<ConfigError>) {
        let lookup = |name: &str| std::env::var(name).ok();
        let mut errors = Vec::new();
        let config = build(text, &lookup, &mut errors);
        (config, errors)
    }

    /// One error per key path, each with its line in `text`: the configuration only
    /// when none is left.
    pub fn finish(
        config: Option<Self>,
        mut errors: Vec<ConfigError>,
        text: &str,
        file: &str,
    ) -> Result<Self, ConfigErrors> {
        // One error per key: a value that failed interpolation would also fail validation.
        let mut seen = BTreeSet::new();
        errors.retain(|error| error.path.is_empty() || seen.insert(error.path.clone()));
        for error in &mut errors {
            if error.line.is_none() && !error.path.is_empty() {
                error.line = locate::line_of(text, &error.path);
            }
        }
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(ConfigErrors {
                file: file.to_string(),
                errors,
            }),
        }
    }

    /// How long messages on `channel` are retried before they fail.
    pub fn delivery_deadline(&self, channel: crate::oncall::Channel) -> TimeDelta {
        use crate::oncall::Channel;
        match channel {
            Channel::Email => self.email.as_ref().map(|e| e.deadline),
            Channel::Sms => self.sms.as_ref().map(|s| s.deadline),
            Channel::Webhook => None,
            chat => self.chat.deadline(chat),
        }
        .unwrap_or(TimeDelta::hours(24))
    }

    /// The SLA budgets of `priority`.
    pub fn sla_for(&self, priority: Priority) -> SlaTarget {
        self.sla[priority.index()]
    }
}

type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

fn build(text: &str, lookup: &Lookup<'_>, errors: &mut Vec<ConfigError>) -> Option<Config> {
    let mut table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(error) => {
            let error: toml::de::Error = error;
            let line = error
                .span()
                .map(|span| text[..span.start].matches('\n').count() + 1);
            errors.push(ConfigError {
                path: String::new(),
                line,
                message: format!("not valid TOML: {}", error.message()),
            });
            return None;
        }
    };
    for (key, value) in table.iter_mut() {
        interpolate(value, key, lookup, errors);
    }
    let read_from = errors.len();
    let raw = read_sections(table, errors);
    let unread: Vec<String> = errors[read_from..]
        .iter()
        .map(|error| error.path.clone())
        .filter(|path| !path.is_empty())
        .collect();
    let checked_from = errors.len();
    let config = validate(raw, errors);
    // A check naming a key whose value could not be read saw that key's default, not
    // what the file says: its complaint would send the reader after a wrong cause.
    let checked = errors.split_off(checked_from);
    errors.extend(checked.into_iter().filter(|error| {
        !unread
            .iter()
            .any(|path| error.message.contains(path.as_str()))
    }));
    Some(config)
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string value.
fn interpolate(
    value: &mut toml::Value,
    path: &str,
    lookup: &Lookup<'_>,
    errors: &mut Vec<ConfigError>,
) {
    match value {
        toml::Value::String(text) => match expand(text, lookup) {
            Ok(expanded) => *text = expanded,
            Err(why) => errors.push(ConfigError {
                path: path.to_string(),
                line: None,
                message: why.to_string(),
            }),
        },
        toml::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{index}]"), lookup, errors);
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                interpolate(item, &format!("{path}.{key}"), lookup, errors);
            }
        }
        _ => {}
    }
}

/// Why a `${VAR}` cannot be replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ExpandError {
    #[error("{0:?} opens ${{ without a closing }}")]
    Unclosed(String),
    #[error("environment variable {0} is not set; export it, or write ${{{0}:-default}}")]
    Unset(String),
}

fn expand(text: &str, lookup: &Lookup<'_>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| ExpandError::Unclosed(text.to_string()))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        match (lookup(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(ExpandError::Unset(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn read_sections(table: toml::Table, errors: &mut Vec<ConfigError>) -> RawConfig {
    let mut raw = RawConfig::default();
    for (key, value) in table {
        match key.as_str() {
            "server" => section(value, &key, errors, &mut raw.server),
            "storage" => section(value, &key, errors, &mut raw.storage),
            "api" => section(value, &key, errors, &mut raw.api),
            "sources" => section(value, &key, errors, &mut raw.sources),
            "incidents" => section(value, &key, errors, &mut raw.incidents),
            "sla" => section(value, &key, errors, &mut raw.sla),
            "email" => section(value, &key, errors, &mut raw.email),
            "sms" => section(value, &key, errors, &mut raw.sms),
            "slack" => section(value, &key, errors, &mut raw.slack),
            "telegram" => section(value, &key, errors, &mut raw.telegram),
            "ntfy" => section(value, &key, errors, &mut raw.ntfy),
            "voice" => section(value, &key, errors, &mut raw.voice),
            "users" => section(value, &key, errors, &mut raw.users),
            "schedules" => section(value, &key, errors, &mut raw.schedules),
            "escalation_policies" => section(value, &key, errors, &mut raw.escalation_policies),
            "rules" => section(value, &key, errors, &mut raw.rules),
            "runbooks" => section(value, &key, errors, &mut raw.runbooks),
            "templates_dir" => section(value, &key, errors, &mut raw.templates_dir),
            "heartbeats" => section(value, &key, errors, &mut raw.heartbeats),
            "flapping" => section(value, &key, errors, &mut raw.flapping),
            "inhibit" => section(value, &key, errors, &mut raw.inhibit),
            "reports" => section(value, &key, errors, &mut raw.reports),
            "drills" => section(value, &key, errors, &mut raw.drills),
            "maintenance" => section(value, &key, errors, &mut raw.maintenance),
            "tickets" => section(value, &key, errors, &mut raw.tickets),
            "remote_access" => section(value, &key, errors, &mut raw.remote_access),
            "dashboard" => section(value, &key, errors, &mut raw.dashboard),
            "silences" => section(value, &key, errors, &mut raw.silences),
            "changes" => section(value, &key, errors, &mut raw.changes),
            "console" => section(value, &key, errors, &mut raw.console),
            _ => errors.push(ConfigError {
                path: key.clone(),
                line: None,
                message: format!(
                    "unknown section {key:?}; see config/tocsin.toml for the valid ones"
                ),
            }),
        }
    }
    raw
}

fn section<T: DeserializeOwned>(
    value: toml::Value,
    key: &str,
    errors: &mut Vec<ConfigError>,
    slot: &mut T,
) {
    let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
        Ok(parsed) => {
            *slot = parsed;
            return;
        }
        Err(error) => error,
    };
    // Serde stops at a section's first bad key. Every key of a table section is read
    // again on its own (the others take their defaults), so one run names each bad
    // key, and the good ones are kept to be checked further (spec §10).
    if let toml::Value::Table(table) = value {
        let mut good = toml::Table::new();
        let mut bad = Vec::new();
        for (name, entry) in table {
            let alone = toml::Table::from_iter([(name.clone(), entry.clone())]);
            match serde_path_to_error::deserialize::<_, T>(toml::Value::Table(alone)) {
                // A required key the others hold ("missing field") is not this key's.
                Err(error) if error.path().iter().next().is_some() => bad.push(error),
                _ => {
                    good.insert(name, entry);
                }
            }
        }
        if !bad.is_empty() {
            errors.extend(bad.into_iter().map(|error| section_error(key, error)));
            match serde_path_to_error::deserialize::<_, T>(toml::Value::Table(good)) {
                Ok(parsed) => *slot = parsed,
                Err(error) => errors.push(section_error(key, error)),
            }
            return;
        }
    }
    errors.push(section_error(key, error));
}

fn section_error(key: &str, error: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    let inner = error.path().to_string();
    let path = if inner == "." || inner.is_empty() {
        key.to_string()
    } else if inner.starts_with('[') {
        format!("{key}{inner}")
    } else {
        format!("{key}.{inner}")
    };
    ConfigError {
        path,
        line: None,
        message: crate::serde_text::readable(&error.into_inner().to_string())
            .replace("a JSON object", "a table"),
    }
}

/// Collects errors while turning raw strings into typed values.
struct Checker<'e> {
    errors: &'e mut Vec<ConfigError>,
}

impl Checker<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            line: None,
            message: message.into(),
        });
    }

    fn duration(&mut self, path: &str, text: &str) -> TimeDelta {
        parse_duration(text).unwrap_or_else(|why| {
            self.error(path, why.to_string());
            TimeDelta::zero()
        })
    }

    fn priority(&mut self, path: &str, text: &str) -> Option<Priority> {
        let parsed = text.parse().ok();
        if parsed.is_none() {
            self.error(
                path,
                format!("unknown priority {text:?}; use P1, P2, P3 or P4"),
            );
        }
        parsed
    }
}

fn validate(raw: RawConfig, errors: &mut Vec<ConfigError>) -> Config {
    let mut check = Checker { errors };
    let listen = raw.server.listen.parse().unwrap_or_else(|_| {
        check.error(
            "server.listen",
            format!(
                "{:?} is not an address:port such as \"127.0.0.1:8080\"",
                raw.server.listen
            ),
        );
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    if raw.server.max_body_bytes == 0 {
        check.error("server.max_body_bytes", "must be more than 0");
    }
    let storage_url = raw.storage.url.clone();
    if !["sqlite:", "postgres:", "postgresql:"]
        .iter()
        .any(|scheme| storage_url.starts_with(scheme))
    {
        check.error(
            "storage.url",
            format!("{storage_url:?} is neither sqlite://PATH nor postgres://…"),
        );
    }
    let write_timeout = check
        .duration("storage.write_timeout", &raw.storage.write_timeout)
        .to_std()
        .unwrap_or_default();

    let ack_link_ttl = check.duration("server.ack_link_ttl", &raw.server.ack_link_ttl);
    let client_timeout = check
        .duration("server.client_timeout", &raw.server.client_timeout)
        .to_std()
        .unwrap_or_default();
    if client_timeout.is_zero() && parse_duration(&raw.server.client_timeout).is_ok() {
        check.error(
            "server.client_timeout",
            "must be more than 0s: a client would have no time to send its request",
        );
    }
    let tls = tls_files(&raw.server, &mut check);
    let api_tokens = api_tokens(&raw.api, &mut check);
    let sources = sources(&raw.sources, &mut check);
    let incidents = IncidentsConfig {
        auto_open: raw
            .incidents
            .auto_open
            .iter()
            .enumerate()
            .filter_map(|(i, p)| check.priority(&format!("incidents.auto_open[{i}]"), p))
            .collect(),
        auto_resolve: raw.incidents.auto_resolve,
        sla_warn_at: if (0.0..1.0).contains(&raw.incidents.sla_warn_at) {
            raw.incidents.sla_warn_at
        } else {
            check.error(
                "incidents.sla_warn_at",
                "must be a fraction from 0 (off) to below 1, such as 0.8",
            );
            0.0
        },
        group_window: check.duration("incidents.group_window", &raw.incidents.group_window),
    };
    let sla = sla(&raw.sla, &mut check);
    let mut directory = directory(&raw, &mut check);
    let rules = rules(&raw, &mut check);
    let email = raw
        .email
        .as_ref()
        .map(|email| email_config(email, &mut check));
    let sms = raw.sms.as_ref().map(|sms| sms_config(sms, &mut check));
    let chat = chat::chat(&raw, &directory, &mut check);
    let heartbeats = raw
        .heartbeats
        .iter()
        .enumerate()
        .map(|(i, beat)| {
            let interval = check.duration(&format!("heartbeats[{i}].interval"), &beat.interval);
            if interval <= TimeDelta::zero() {
                check.error(
                    format!("heartbeats[{i}].interval"),
                    "must be longer than 0s",
                );
            }
            HeartbeatConfig {
                name: beat.name.clone(),
                interval,
                grace: check.duration(&format!("heartbeats[{i}].grace"), &beat.grace),
                token: beat.token.clone().filter(|t| !t.is_empty()),
            }
        })
        .collect();
    let flapping = crate::flapping::Policy {
        changes: raw.flapping.changes.max(1),
        window: check.duration("flapping.window", &raw.flapping.window),
    };
    let inhibit = inhibit_rules(&raw, &mut check);
    let runbooks_enabled_listed = raw.runbooks.enabled.is_some();
    let runbooks_enabled = raw
        .runbooks
        .enabled
        .clone()
        .unwrap_or_else(|| vec!["diagnostics".to_string()]);
    let secret_domains = secret_domains(&raw, &directory);
    let maintenance = maintenance_windows(&raw, &mut check);
    let tickets = helpdesk::tickets(&raw, &mut check);
    let remote_access = helpdesk::remote_access(&raw, &mut check);
    let drills = raw
        .drills
        .iter()
        .enumerate()
        .map(|(i, drill)| {
            let path = format!("drills[{i}]");
            check_cron(&format!("{path}.cron"), &drill.cron, &mut check);
            if raw.drills[..i].iter().any(|other| other.name == drill.name) {
                check.error(
                    format!("{path}.name"),
                    format!(
                        "drill {:?} is defined twice; give each drill its own name",
                        drill.name
                    ),
                );
            }
            if let Some(policy) = &drill.escalation_policy
                && !raw.escalation_policies.iter().any(|p| &p.name == policy)
            {
                check.error(
                    format!("{path}.escalation_policy"),
                    format!("unknown escalation policy {policy:?}"),
                );
            }
            let escalation_policy = match (&drill.escalation_policy, &drill.schedule) {
                (Some(_), Some(_)) => {
                    check.error(
                        format!("{path}.schedule"),
                        "name an escalation_policy or a schedule, not both",
                    );
                    None
                }
                (None, Some(schedule)) => drill_policy(&drill.name, schedule, &mut directory)
                    .or_else(|| {
                        check.error(
                            format!("{path}.schedule"),
                            format!("unknown schedule {schedule:?}"),
                        );
                        None
                    }),
                (policy, None) => policy.clone(),
            };
            DrillConfig {
                name: drill.name.clone(),
                cron: drill.cron.clone(),
                escalation_policy,
                priority: check
                    .priority(&format!("{path}.priority"), &drill.priority)
                    .unwrap_or(Priority::P1),
                ack_window: check.duration(&format!("{path}.ack_window"), &drill.ack_window),
            }
        })
        .collect();
    let weekly_report = raw
        .reports
        .weekly
        .as_ref()
        .map(|weekly| report("weekly", weekly, raw.email.is_some(), &mut check));
    let monthly_report = raw
        .reports
        .monthly
        .as_ref()
        .map(|monthly| report("monthly", monthly, raw.email.is_some(), &mut check));

    Config {
        listen,
        public_url: raw.server.public_url.trim_end_matches('/').to_string(),
        max_body_bytes: usize::try_from(raw.server.max_body_bytes).unwrap_or(usize::MAX),
        ack_link_ttl,
        client_timeout,
        tls,
        storage_url,
        write_timeout,
        api_tokens,
        sources,
        incidents,
        sla,
        rules,
        directory,
        email,
        sms,
        chat,
        runbooks_dir: PathBuf::from(raw.runbooks.dir),
        runbooks: Vec::new(),
        runbooks_enabled,
        runbooks_enabled_listed,
        secret_domains,
        heartbeats,
        flapping,
        inhibit,
        maintenance,
        weekly_report,
        monthly_report,
        drills,
        tickets,
        remote_access,
        dashboard_public_setting: raw.dashboard.public,
        silence_retention: check.duration("silences.retention", &raw.silences.retention),
        changes: ChangesConfig {
            window: check.duration("changes.window", &raw.changes.window),
            retention: check.duration("changes.retention", &raw.changes.retention),
        },
        console: console::ConsoleConfig {
            session_ttl: check.duration("console.session_ttl", &raw.console.session_ttl),
        },
        templates_dir: PathBuf::from(
            raw.templates_dir
                .unwrap_or_else(|| "config/templates".into()),
        ),
    }
}

/// `[runbooks] secret_domains`, or the domains of the users' email addresses.
fn secret_domains(raw: &RawConfig, directory: &Directory) -> Vec<String> {
    let domains: BTreeSet<String> = match &raw.runbooks.secret_domains {
        Some(domains) => domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
        None => directory
            .users
            .values()
            .filter_map(|user| user.email.as_deref()?.rsplit_once('@'))
            .map(|(_, domain)| domain.to_ascii_lowercase())
            .collect(),
    };
    domains.into_iter().collect()
}

/// Both files or neither; when both are set they are read now, so `check-config`
/// catches a missing, unreadable or mismatched pair before `serve` does.
fn tls_files(server: &RawServer, check: &mut Checker<'_>) -> Option<crate::tls::TlsFiles> {
    let set = |path: &Option<String>| path.clone().filter(|path| !path.is_empty());
    let files = match (set(&server.tls_cert), set(&server.tls_key)) {
        (None, None) => return None,
        (Some(cert), Some(key)) => crate::tls::TlsFiles {
            cert: cert.into(),
            key: key.into(),
        },
        (Some(_), None) => {
            check.error(
                "server.tls_cert",
                "is set without server.tls_key; set both for HTTPS, or neither for plain HTTP",
            );
            return None;
        }
        (None, Some(_)) => {
            check.error(
                "server.tls_key",
                "is set without server.tls_cert; set both for HTTPS, or neither for plain HTTP",
            );
            return None;
        }
    };
    if let Err(error) = crate::tls::load(&files) {
        check.error(error.config_key(), error.to_string());
    }
    Some(files)
}

fn api_tokens(api: &RawApi, check: &mut Checker<'_>) -> Vec<ApiToken> {
    let mut seen = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut tokens = Vec::new();
    for (i, token) in api.tokens.iter().enumerate() {
        // The name is who acted on the timeline and scopes Idempotency-Key answers:
        // two tokens sharing one would share both.
        if !names.insert(token.name.clone()) {
            check.error(
                format!("api.tokens[{i}].name"),
                format!(
                    "{:?} names another token too; give each its own",
                    token.name
                ),
            );
        }
        let Ok(role) = token.role.parse() else {
            check.error(
                format!("api.tokens[{i}].role"),
                format!(
                    "unknown role {:?}; use viewer, responder or admin",
                    token.role
                ),
            );
            continue;
        };
        if token.token.len() < 8 {
            check.error(
                format!("api.tokens[{i}].token"),
                "is shorter than 8 characters; use a long random string",
            );
        }
        if !seen.insert(token.token.clone()) {
            check.error(format!("api.tokens[{i}].token"), "is used by another token");
        }
        tokens.push(ApiToken {
            name: token.name.clone(),
            token: token.token.clone(),
            role,
        });
    }
    tokens
}

fn sources(
    raw: &BTreeMap<String, RawSource>,
    check: &mut Checker<'_>,
) -> BTreeMap<SourceKind, SourceConfig> {
    let mut sources = BTreeMap::new();
    for (name, source) in raw {
        let Ok(kind) = name.parse::<SourceKind>() else {
            check.error(
                format!("sources.{name}"),
                format!(
                    "unknown source {name:?}; use one of {}",
                    SourceKind::ALL.map(SourceKind::as_str).join(", ")
                ),
            );
            continue;
        };
        let rate_limit = source.rate_limit.as_deref().and_then(|text| {
            let parsed = text
                .strip_suffix("/s")
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(NonZeroU32::new);
            if parsed.is_none() {
                check.error(
                    format!("sources.{name}.rate_limit"),
                    format!("{text:?} is not a rate such as \"100/s\""),
                );
            }
            parsed
        });
        let token = source.token.clone().filter(|token| !token.is_empty());
        // Grafana names its own headers; Tocsin's generic convention signs a timestamp.
        let grafana = kind == SourceKind::Grafana;
        let signature = source
            .hmac_secret
            .clone()
            .filter(|secret| !secret.is_empty())
            .map(|secret| crate::webhook_auth::SignatureConfig {
                secret,
                header: source.signature_header.clone().unwrap_or_else(|| {
                    if grafana {
                        "X-Grafana-Alert-Signature".into()
                    } else {
                        "X-Tocsin-Signature".into()
                    }
                }),
                timestamp_header: source
                    .timestamp_header
                    .clone()
                    .or_else(|| (!grafana).then(|| "X-Tocsin-Timestamp".into())),
            });
        if signature.is_none()
            && (source.signature_header.is_some() || source.timestamp_header.is_some())
        {
            check.error(
                format!("sources.{name}.hmac_secret"),
                "signature headers are set but hmac_secret is not",
            );
        }
        sources.insert(
            kind,
            SourceConfig {
                token,
                rate_limit,
                signature,
            },
        );
    }
    sources
}

fn sla(raw: &BTreeMap<String, RawSla>, check: &mut Checker<'_>) -> [SlaTarget; 4] {
    let defaults = [("15m", "1h"), ("1h", "4h"), ("4h", "24h"), ("24h", "72h")];
    for name in raw.keys() {
        if name.parse::<Priority>().is_err() {
            check.error(
                format!("sla.{name}"),
                format!("unknown priority {name:?}; use [sla.P1] … [sla.P4]"),
            );
        }
    }
    Priority::ALL.map(|priority| {
        let (respond, resolve) = defaults[priority.index()];
        let entry = raw.get(priority.as_str());
        let path = format!("sla.{priority}");
        let respond = entry.and_then(|e| e.respond.as_deref()).unwrap_or(respond);
        let resolve = entry.and_then(|e| e.resolve.as_deref()).unwrap_or(resolve);
        SlaTarget {
            respond: check.duration(&format!("{path}.respond"), respond),
            resolve: check.duration(&format!("{path}.resolve"), resolve),
            escalate_on_breach: entry.is_some_and(|e| e.escalate_on_breach),
        }
    })
}

fn directory(raw: &RawConfig, check: &mut Checker<'_>) -> Directory {
    let user_ids: BTreeSet<&str> = raw.users.iter().map(|u| u.id.as_str()).collect();
    let schedule_names: BTreeSet<&str> = raw.schedules.iter().map(|s| s.name.as_str()).collect();
    let mut directory = Directory::default();
    for (i, user) in raw.users.iter().enumerate() {
        let notify = user
            .notify
            .iter()
            .enumerate()
            .filter_map(|(j, rule)| {
                let path = format!("users[{i}].notify[{j}]");
                let after = check.duration(&format!("{path}.after"), &rule.after);
                let min_priority = rule
                    .min_priority
                    .as_deref()
                    .and_then(|p| check.priority(&format!("{path}.min_priority"), p));
                let Ok(channel) = rule.channel.parse::<Channel>() else {
                    check.error(
                        format!("{path}.channel"),
                        format!(
                            "unknown channel {:?}; use email, sms, webhook, slack, telegram, ntfy, teams, mattermost or voice",
                            rule.channel
                        ),
                    );
                    return None;
                };
                Some(NotifyRule {
                    channel,
                    after,
                    min_priority,
                })
            })
            .collect();
        let parsed = User {
            id: user.id.clone(),
            name: user.name.clone().unwrap_or_else(|| user.id.clone()),
            email: user.email.clone().filter(|e| !e.is_empty()),
            phone: user.phone.clone().filter(|p| !p.is_empty()),
            webhook: user.webhook.clone().filter(|w| !w.is_empty()),
            slack: user.slack.clone().filter(|s| !s.is_empty()),
            telegram: user.telegram.clone().filter(|t| !t.is_empty()),
            ntfy_topic: user.ntfy_topic.clone().filter(|t| !t.is_empty()),
            teams_webhook: user.teams_webhook.clone().filter(|w| !w.is_empty()),
            mattermost_webhook: user.mattermost_webhook.clone().filter(|w| !w.is_empty()),
            notify,
        };
        for (j, rule) in parsed.notify.iter().enumerate() {
            if parsed.address(rule.channel).is_none() {
                check.error(
                    format!("users[{i}].notify[{j}].channel"),
                    format!(
                        "user {:?} has no {} address for channel {:?}; set {} in this [[users]] entry",
                        user.id,
                        rule.channel,
                        rule.channel.as_str(),
                        rule.channel.user_key()
                    ),
                );
            }
        }
        if directory.users.insert(user.id.clone(), parsed).is_some() {
            check.error(
                format!("users[{i}].id"),
                format!("user {:?} is defined twice", user.id),
            );
        }
    }
    for (i, schedule) in raw.schedules.iter().enumerate() {
        let path = format!("schedules[{i}]");
        for (j, user) in schedule.rotation.users.iter().enumerate() {
            if !user_ids.contains(user.as_str()) {
                check.error(
                    format!("{path}.rotation.users[{j}]"),
                    format!("unknown user {user:?}"),
                );
            }
        }
        let overrides = schedule
            .overrides
            .iter()
            .enumerate()
            .filter_map(|(j, o)| {
                if !user_ids.contains(o.user.as_str()) {
                    check.error(format!("{path}.overrides[{j}].user"), format!("unknown user {:?}", o.user));
                }
                let time = |check: &mut Checker<'_>, key: &str, text: &str| {
                    chrono::DateTime::parse_from_rfc3339(text)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .map_err(|_| check.error(format!("{path}.overrides[{j}].{key}"), format!("{text:?} is not an RFC 3339 time such as \"2026-12-24T18:00:00+01:00\"")))
                        .ok()
                };
                let start = time(check, "start", &o.start)?;
                let end = time(check, "end", &o.end)?;
                Some(Override { user: o.user.clone(), start, end })
            })
            .collect();
        let every = check.duration(&format!("{path}.rotation.every"), &schedule.rotation.every);
        let start = schedule.rotation.start.as_deref().and_then(|text| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| {
                    check.error(
                        format!("{path}.rotation.start"),
                        format!("{text:?} is not a date such as \"2026-01-05\""),
                    )
                })
                .ok()
        });
        match Schedule::new(
            &schedule.name,
            &schedule.time_zone,
            every,
            &schedule.rotation.handoff,
            schedule.rotation.users.clone(),
            start,
            overrides,
        ) {
            Ok(parsed) => {
                directory.schedules.insert(schedule.name.clone(), parsed);
            }
            Err(message) if every > TimeDelta::zero() => {
                check.error(format!("{path}.rotation"), message.to_string())
            }
            Err(_) => {}
        }
    }
    for (i, policy) in raw.escalation_policies.iter().enumerate() {
        let path = format!("escalation_policies[{i}]");
        let tiers: Vec<Tier> = policy
            .tiers
            .iter()
            .enumerate()
            .map(|(j, tier)| {
                let tier_path = format!("{path}.tiers[{j}]");
                let targets = tier
                    .targets
                    .iter()
                    .enumerate()
                    .filter_map(|(k, target)| {
                        let parsed = match target.split_once(':') {
                            Some(("user", id)) if user_ids.contains(id) => {
                                Ok(Target::User(id.to_string()))
                            }
                            Some(("user", id)) => Err(format!("unknown user {id:?}")),
                            Some(("schedule", name)) if schedule_names.contains(name) => {
                                Ok(Target::Schedule(name.to_string()))
                            }
                            Some(("schedule", name)) => Err(format!("unknown schedule {name:?}")),
                            _ => Err(format!(
                                "target {target:?} is neither user:ID nor schedule:NAME"
                            )),
                        };
                        parsed
                            .map_err(|message| {
                                check.error(format!("{tier_path}.targets[{k}]"), message)
                            })
                            .ok()
                    })
                    .collect();
                Tier {
                    level: tier.level.clone(),
                    targets,
                    after: check.duration(&format!("{tier_path}.after"), &tier.after),
                }
            })
            .collect();
        if tiers.is_empty() {
            check.error(format!("{path}.tiers"), "a policy needs at least one tier");
        }
        // Without repeat_after, a repeat waits as long as the gap before the last tier.
        let last_gap = tiers
            .iter()
            .skip(1)
            .map(|t| t.after)
            .next_back()
            .unwrap_or(TimeDelta::minutes(10));
        let parsed = EscalationPolicy {
            name: policy.name.clone(),
            repeat: policy.repeat,
            repeat_after: policy.repeat_after.as_deref().map_or(last_gap, |text| {
                check.duration(&format!("{path}.repeat_after"), text)
            }),
            ack_timeout: policy
                .ack_timeout
                .as_deref()
                .map(|text| check.duration(&format!("{path}.ack_timeout"), text)),
            tiers,
        };
        if directory
            .policies
            .insert(policy.name.clone(), parsed)
            .is_some()
        {
            check.error(
                format!("{path}.name"),
                format!("policy {:?} is defined twice", policy.name),
            );
        }
    }
    directory
}

fn rules(raw: &RawConfig, check: &mut Checker<'_>) -> Vec<Rule> {
    let policies: BTreeSet<&str> = raw
        .escalation_policies
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let mut rules = Vec::new();
    for (i, rule) in raw.rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        let matchers = matchers(&format!("{path}.match"), &rule.matchers, check);
        let priority = rule
            .priority
            .as_deref()
            .and_then(|p| check.priority(&format!("{path}.priority"), p));
        if let Some(policy) = &rule.escalation_policy
            && !policies.contains(policy.as_str())
        {
            check.error(
                format!("{path}.escalation_policy"),
                format!("unknown escalation policy {policy:?}"),
            );
        }
        for (j, field) in rule.group_by.iter().enumerate() {
            if !(crate::rules::MATCHABLE_FIELDS.contains(&field.as_str())
                || field.starts_with("labels."))
            {
                check.error(
                    format!("{path}.group_by[{j}]"),
                    format!(
                        "unknown field {field:?}; use resource, check, source, … or labels.NAME"
                    ),
                );
            }
        }
        rules.push(Rule {
            name: rule.name.clone(),
            matchers,
            priority,
            escalation_policy: rule.escalation_policy.clone(),
            runbooks: rule.runbooks.clone(),
            group_by: rule.group_by.clone(),
            stakeholders: rule.stakeholders.clone(),
            kb: rule.kb.clone(),
            tickets: rule.tickets.clone(),
        });
    }
    rules
}

/// A drill on a schedule pages whoever is on call there: a one-tier policy of its
/// own, `drill:NAME`, so paging, acknowledgement and the failure report work as for
/// any policy. `None` for an unknown schedule.
fn drill_policy(name: &str, schedule: &str, directory: &mut Directory) -> Option<String> {
    directory.schedules.get(schedule)?;
    let policy = format!("drill:{name}");
    directory.policies.insert(
        policy.clone(),
        crate::oncall::EscalationPolicy {
            name: policy.clone(),
            tiers: vec![crate::oncall::Tier {
                level: "L1".into(),
                targets: vec![crate::oncall::Target::Schedule(schedule.to_string())],
                after: TimeDelta::zero(),
            }],
            repeat: 0,
            repeat_after: TimeDelta::zero(),
            ack_timeout: None,
        },
    );
    Some(policy)
}

/// `[reports.NAME]`: a valid cron, real addresses, and email to send them by.
fn report(
    name: &str,
    report: &RawReport,
    email: bool,
    check: &mut Checker<'_>,
) -> (String, Vec<String>) {
    let path = format!("reports.{name}");
    check_cron(&format!("{path}.cron"), &report.cron, check);
    if report.to.is_empty() {
        check.error(format!("{path}.to"), "name at least one address");
    }
    for (i, address) in report.to.iter().enumerate() {
        if address.parse::<lettre::message::Mailbox>().is_err() {
            check.error(
                format!("{path}.to[{i}]"),
                format!("{address:?} is not an email address"),
            );
        }
    }
    if !email {
        check.error(
            path,
            format!("the {name} report is emailed: add an [email] section"),
        );
    }
    (report.cron.clone(), report.to.clone())
}

/// Cron strings have six fields, seconds first, as tokio-cron-scheduler reads them.
fn check_cron(path: &str, text: &str, check: &mut Checker<'_>) {
    let parsed = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(text);
    if let Err(error) = parsed {
        check.error(
            path,
            format!("{text:?} is not a six-field cron string such as \"0 0 8 * * Mon\" ({error})"),
        );
    }
}

/// Parses `texts` as matchers; each refused one is an error at `path[j]`.
fn matchers(path: &str, texts: &[String], check: &mut Checker<'_>) -> Vec<Matcher> {
    texts
        .iter()
        .enumerate()
        .filter_map(|(j, text)| {
            Matcher::parse(text)
                .map_err(|error| check.error(format!("{path}[{j}]"), error.to_string()))
                .ok()
        })
        .collect()
}

fn inhibit_rules(raw: &RawConfig, check: &mut Checker<'_>) -> Vec<crate::inhibit::InhibitRule> {
    raw.inhibit
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            if rule.source_match.is_empty() || rule.target_match.is_empty() {
                check.error(
                    format!("inhibit[{i}]"),
                    "source_match and target_match each need at least one matcher",
                );
            }
            crate::inhibit::InhibitRule::new(
                matchers(
                    &format!("inhibit[{i}].source_match"),
                    &rule.source_match,
                    check,
                ),
                matchers(
                    &format!("inhibit[{i}].target_match"),
                    &rule.target_match,
                    check,
                ),
                rule.equal.clone(),
            )
        })
        .collect()
}

fn maintenance_windows(
    raw: &RawConfig,
    check: &mut Checker<'_>,
) -> Vec<crate::inhibit::MaintenanceWindow> {
    let mut windows = Vec::new();
    for (i, window) in raw.maintenance.iter().enumerate() {
        let path = format!("maintenance[{i}]");
        let time = |check: &mut Checker<'_>, key: &str, text: &str| {
            chrono::NaiveTime::parse_from_str(text, "%H:%M")
                .map_err(|_| {
                    check.error(
                        format!("{path}.{key}"),
                        format!("{text:?} is not a time such as \"02:00\""),
                    )
                })
                .ok()
        };
        let start = time(check, "start", &window.start);
        let end = time(check, "end", &window.end);
        let days: Vec<chrono::Weekday> = window
            .days
            .iter()
            .enumerate()
            .filter_map(|(j, day)| {
                day.parse()
                    .map_err(|_| {
                        check.error(
                            format!("{path}.days[{j}]"),
                            format!("{day:?} is not a weekday such as \"Sat\""),
                        )
                    })
                    .ok()
            })
            .collect();
        let zone = window
            .time_zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| {
                check.error(
                    format!("{path}.time_zone"),
                    format!("{:?} is not an IANA time zone", window.time_zone),
                )
            })
            .ok();
        let parsed = matchers(&format!("{path}.match"), &window.matchers, check);
        if let (Some(start), Some(end), Some(time_zone)) = (start, end, zone) {
            windows.push(crate::inhibit::MaintenanceWindow {
                name: window.name.clone(),
                matchers: parsed,
                time_zone,
                days,
                start,
                end,
            });
        }
    }
    windows
}

fn email_config(email: &RawEmail, check: &mut Checker<'_>) -> EmailConfig {
    let tls = match email.tls.as_str() {
        "none" => SmtpTls::None,
        "starttls" => SmtpTls::StartTls,
        "tls" => SmtpTls::Tls,
        other => {
            check.error(
                "email.tls",
                format!("unknown tls mode {other:?}; use none, starttls or tls"),
            );
            SmtpTls::None
        }
    };
    let transport = match email.transport.as_str() {
        "spool" => EmailTransport::Spool {
            dir: email.spool_dir.clone(),
        },
        other => {
            if other != "smtp" {
                check.error(
                    "email.transport",
                    format!("unknown transport {other:?}; use smtp or spool"),
                );
            }
            let credentials = match (&email.username, &email.password) {
                (Some(user), Some(password)) => Some((user.clone(), password.clone())),
                (None, None) => None,
                _ => {
                    check.error(
                        "email.username",
                        "username and password go together; set both or neither",
                    );
                    None
                }
            };
            EmailTransport::Smtp {
                host: email.host.clone(),
                port: email.port,
                tls,
                credentials,
            }
        }
    };
    if email.from.parse::<lettre::message::Mailbox>().is_err() {
        check.error(
            "email.from",
            format!("{:?} is not an email address", email.from),
        );
    }
    EmailConfig {
        transport,
        from: email.from.clone(),
        deadline: check.duration("email.deadline", &email.deadline),
    }
}

fn sms_provider(raw: &RawSmsProvider, path: &str, check: &mut Checker<'_>) -> Option<SmsProvider> {
    let mut need = |key: &str, value: &Option<String>| -> String {
        value.clone().filter(|v| !v.is_empty()).unwrap_or_else(|| {
            check.error(
                format!("{path}.{key}"),
                "is required for this provider".to_string(),
            );
            String::new()
        })
    };
    match raw.provider.as_deref().unwrap_or("log") {
        "log" => Some(SmsProvider::Log),
        "twilio" => Some(SmsProvider::Twilio {
            base_url: raw
                .base_url
                .clone()
                .unwrap_or_else(|| "https://api.twilio.com".into())
                .trim_end_matches('/')
                .to_string(),
            account_sid: need("account_sid", &raw.account_sid),
            auth_token: need("auth_token", &raw.auth_token),
            from: need("from", &raw.from),
        }),
        "webhook" => Some(SmsProvider::Webhook {
            url: need("url", &raw.url),
            from: raw.from.clone(),
        }),
        other => {
            check.error(
                format!("{path}.provider"),
                format!("unknown provider {other:?}; use twilio, webhook or log"),
            );
            None
        }
    }
}

fn sms_config(sms: &RawSms, check: &mut Checker<'_>) -> SmsConfig {
    let inline = [
        &sms.provider,
        &sms.base_url,
        &sms.url,
        &sms.account_sid,
        &sms.auth_token,
        &sms.from,
    ];
    if !sms.providers.is_empty() && inline.iter().any(|value| value.is_some()) {
        check.error(
            "sms.providers",
            "set the provider keys in [sms] or list [[sms.providers]], not both",
        );
    }
    let providers = if sms.providers.is_empty() {
        let inline = RawSmsProvider {
            provider: sms.provider.clone(),
            base_url: sms.base_url.clone(),
            url: sms.url.clone(),
            account_sid: sms.account_sid.clone(),
            auth_token: sms.auth_token.clone(),
            from: sms.from.clone(),
        };
        sms_provider(&inline, "sms", check).into_iter().collect()
    } else {
        sms.providers
            .iter()
            .enumerate()
            .filter_map(|(i, provider)| {
                sms_provider(provider, &format!("sms.providers[{i}]"), check)
            })
            .collect()
    };
    SmsConfig {
        providers,
        inbound_token: sms.inbound_token.clone().filter(|t| !t.is_empty()),
        deadline: check.duration("sms.deadline", sms.deadline.as_deref().unwrap_or("24h")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(text: &str, env: &[(&str, &str)]) -> Result<Config, Vec<ConfigError>> {
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let mut errors = Vec::new();
        let config = build(text, &lookup, &mut errors);
        Config::finish(config, errors, text, "t.toml").map_err(|errors| errors.errors)
    }

    #[test]
    fn empty_file_gives_the_spec_defaults() {
        let config = parse_with("", &[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.storage_url, "sqlite://data/tocsin.db");
        assert_eq!(config.sla_for(Priority::P1).respond, TimeDelta::minutes(15));
        assert_eq!(config.sla_for(Priority::P4).resolve, TimeDelta::hours(72));
        assert_eq!(config.incidents.auto_open, vec![Priority::P1, Priority::P2]);
        assert!(config.sources.is_empty());
    }

    #[test]
    fn runbooks_are_opt_in_and_secrets_go_to_the_users_domains() {
        let users = "[[users]]\nid = \"a\"\nemail = \"a@Example.com\"\n";
        let config = parse_with(users, &[]).unwrap();
        assert_eq!(config.runbooks_enabled, ["diagnostics"]);
        assert!(!config.runbooks_enabled_listed);
        assert_eq!(config.secret_domains, ["example.com"]);
        let config = parse_with(
            &format!(
                "[runbooks]\nenabled = [\"fix\"]\nsecret_domains = [\"Corp.example\"]\n{users}"
            ),
            &[],
        )
        .unwrap();
        assert_eq!(config.runbooks_enabled, ["fix"]);
        assert!(config.runbooks_enabled_listed);
        assert_eq!(config.secret_domains, ["corp.example"]);
    }

    #[test]
    fn the_shipped_default_config_is_valid() {
        parse_with(DEFAULT_CONFIG, &[]).unwrap();
    }

    #[test]
    fn the_shipped_example_configs_are_valid() {
        let text = include_str!("../../config/examples/all-senders.toml");
        let names = [
            "AM_TOKEN",
            "GRAFANA_TOKEN",
            "GRAFANA_HMAC_SECRET",
            "NAGIOS_TOKEN",
            "PRTG_TOKEN",
            "DATADOG_TOKEN",
            "PD_ROUTING_KEY",
            "GENERIC_TOKEN",
            "GENERIC_HMAC_SECRET",
        ];
        let env: Vec<(&str, &str)> = names
            .iter()
            .map(|name| (*name, "a-long-secret-value"))
            .collect();
        let config = parse_with(text, &env).unwrap();
        assert_eq!(config.sources.len(), 7);
        assert_eq!(config.inhibit.len(), 1);
    }

    #[test]
    fn drills_name_a_known_policy_a_valid_cron_and_a_unique_name() {
        let policy = "[[users]]\nid = \"ann\"\nemail = \"ann@example.com\"\n[[escalation_policies]]\nname = \"default\"\ntiers = [ { level = \"L1\", targets = [\"user:ann\"], after = \"0s\" } ]\n";
        let drill = |name: &str, cron: &str, policy: &str| {
            format!(
                "[[drills]]\nname = \"{name}\"\ncron = \"{cron}\"\nescalation_policy = \"{policy}\"\n"
            )
        };
        let config = parse_with(
            &format!("{policy}{}", drill("chain", "0 0 9 * * Mon", "default")),
            &[],
        )
        .unwrap();
        assert_eq!(config.drills[0].priority, Priority::P1);
        assert_eq!(config.drills[0].ack_window, TimeDelta::minutes(15));
        let text = format!(
            "{policy}{}{}",
            drill("chain", "0 9 * * Mon", "nope"),
            drill("chain", "0 0 9 * * Mon", "default")
        );
        let paths: Vec<String> = parse_with(&text, &[])
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "drills[0].cron",
                "drills[0].escalation_policy",
                "drills[1].name"
            ]
        );

        let schedule = "[[schedules]]\nname = \"primary\"\ntime_zone = \"Europe/Paris\"\nrotation = { every = \"1w\", handoff = \"Mon 09:00\", users = [\"ann\"] }\n";
        let on_schedule =
            "[[drills]]\nname = \"rota\"\ncron = \"0 0 9 * * Mon\"\nschedule = \"primary\"\n";
        let config = parse_with(&format!("{policy}{schedule}{on_schedule}"), &[]).unwrap();
        let name = config.drills[0].escalation_policy.clone().unwrap();
        assert_eq!(name, "drill:rota");
        let tiers = &config.directory.policies[&name].tiers;
        assert_eq!(
            tiers[0].targets,
            [crate::oncall::Target::Schedule("primary".into())]
        );
        let both = format!("{on_schedule}escalation_policy = \"default\"\n");
        let errors = parse_with(&format!("{policy}{schedule}{both}"), &[]).unwrap_err();
        assert_eq!(errors[0].path, "drills[0].schedule");
        let unknown = on_schedule.replace("\"primary\"", "\"nope\"");
        let errors = parse_with(&format!("{policy}{unknown}"), &[]).unwrap_err();
        assert_eq!(errors[0].message, "unknown schedule \"nope\"");
    }

    #[test]
    fn cron_strings_need_six_fields() {
        let email = "[email]\ntransport = \"spool\"\n";
        assert!(
            parse_with(
                &format!(
                    "{email}[reports.weekly]\ncron = \"0 0 8 * * Mon\"\nto = [\"sm@example.com\"]\n"
                ),
                &[]
            )
            .is_ok()
        );
        let errors = parse_with(
            &format!(
                "{email}[reports.weekly]\ncron = \"0 8 * * Mon\"\nto = [\"sm@example.com\"]\n"
            ),
            &[],
        )
        .unwrap_err();
        assert_eq!(errors[0].path, "reports.weekly.cron");
        let errors = parse_with(
            "[reports.monthly]\ncron = \"0 8 1 * *\"\nto = [\"not an address\"]\n",
            &[],
        )
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "reports.monthly.cron",
                "reports.monthly.to[0]",
                "reports.monthly"
            ],
            "and email must be on"
        );
    }

    #[test]
    fn behind_a_public_proxy_tocsin_is_exposed_though_it_listens_on_loopback() {
        let config = parse_with(DEFAULT_CONFIG, &[]).unwrap_or_else(|errors| panic!("{errors:?}"));
        assert!(!config.exposed(), "the shipped config stays on loopback");
        assert!(config.dashboard_public());
        let mut config = config;
        config.public_url = "https://tocsin.example.net".into();
        assert!(config.exposed());
        assert!(
            !config.dashboard_public(),
            "a private dashboard behind a proxy"
        );
        let refusal = config.exposure_refusal().unwrap_or_default();
        assert!(refusal.contains("TOCSIN_ADMIN_TOKEN"), "{refusal}");
        let open = parse_with(
            "[server]\npublic_url = \"https://tocsin.example.net\"\n[sources.generic]\n",
            &[],
        )
        .unwrap_or_else(|errors| panic!("{errors:?}"));
        let refusal = open.exposure_refusal().unwrap_or_default();
        assert!(
            refusal.contains("[sources.generic] has no token"),
            "{refusal}"
        );
    }

    #[test]
    fn a_listen_port_changed_alone_is_named_because_links_would_miss_it() {
        let moved = parse_with(DEFAULT_CONFIG, &[("TOCSIN_LISTEN", "127.0.0.1:18950")])
            .unwrap_or_else(|errors| panic!("{errors:?}"));
        let mismatch = moved.public_url_mismatch().unwrap_or_default();
        assert!(
            mismatch.contains("127.0.0.1:18950") && mismatch.contains("TOCSIN_PUBLIC_URL"),
            "{mismatch}"
        );
        let both = parse_with(
            DEFAULT_CONFIG,
            &[
                ("TOCSIN_LISTEN", "127.0.0.1:18950"),
                ("TOCSIN_PUBLIC_URL", "http://localhost:18950"),
            ],
        )
        .unwrap_or_else(|errors| panic!("{errors:?}"));
        assert_eq!(both.public_url_mismatch(), None);
        assert_eq!(both.public_url, "http://localhost:18950");
        let shipped = parse_with(DEFAULT_CONFIG, &[]).unwrap_or_else(|errors| panic!("{errors:?}"));
        assert_eq!(shipped.public_url_mismatch(), None);
    }

    #[test]
    fn two_api_tokens_may_not_share_a_name() {
        let text = "[api]\ntokens = [\n  { name = \"ops\", token = \"first-secret-1\", role = \"admin\" },\n  { name = \"ops\", token = \"second-secret-2\", role = \"viewer\" },\n]\n";
        let errors = parse_with(text, &[]).err().unwrap_or_default();
        assert!(
            errors.iter().any(|e| e.path == "api.tokens[1].name"),
            "{errors:?}"
        );
    }

    #[test]
    fn durations_follow_the_spec_grammar() {
        assert_eq!(parse_duration("90s").unwrap(), TimeDelta::seconds(90));
        assert_eq!(parse_duration("1w").unwrap(), TimeDelta::days(7));
        assert_eq!(parse_duration("520w").unwrap(), TimeDelta::weeks(520));
        for bad in ["10 minutes", "1h30m", "5", "", "m", "14000000w", "3654d"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn env_variables_are_interpolated() {
        let text = "[api]\ntokens = [{ name = \"ops\", token = \"${T}\", role = \"admin\" }]\n[sources.generic]\ntoken = \"${G:-fallback-token}\"\n";
        let config = parse_with(text, &[("T", "secret-admin")]).unwrap();
        assert_eq!(config.api_tokens[0].token, "secret-admin");
        assert_eq!(
            config.sources[&SourceKind::Generic].token.as_deref(),
            Some("fallback-token")
        );
        let errors = parse_with(text, &[]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.contains("T is not set"),
            "{}",
            errors[0].message
        );
        assert_eq!(errors[0].line, Some(2));
    }

    #[test]
    fn every_error_is_reported_with_path_and_line() {
        let text = r#"[server]
listen = "nowhere"

[incidents]
group_window = "5 minutes"
auto_open = "P1"

[[users]]
id = "alice"

[[escalation_policies]]
name = "default"
tiers = [
  { level = "L1", targets = ["user:alice"], after = "0s" },
  { level = "L2", targets = ["user:ghost"], after = "10m" },
]

[[rules]]
name = "r"
match = ['check=~"("']
priority = "P9"
"#;
        let errors = parse_with(text, &[]).unwrap_err();
        let find = |path: &str| {
            errors
                .iter()
                .find(|e| e.path == path)
                .unwrap_or_else(|| panic!("no error at {path}: {errors:?}"))
        };
        assert_eq!(find("server.listen").line, Some(2));
        // A key of the wrong type does not hide its section's other errors.
        assert_eq!(find("incidents.group_window").line, Some(5));
        let auto_open = find("incidents.auto_open");
        assert_eq!(auto_open.line, Some(6));
        assert!(
            auto_open.message.contains("expected a sequence"),
            "{auto_open:?}"
        );
        let ghost = find("escalation_policies[0].tiers[1].targets[0]");
        assert_eq!(ghost.message, "unknown user \"ghost\"");
        assert_eq!(ghost.line, Some(15));
        assert_eq!(find("rules[0].match[0]").line, Some(20));
        assert_eq!(find("rules[0].priority").line, Some(21));
        assert_eq!(errors.len(), 6, "{errors:?}");
    }

    #[test]
    fn a_key_that_cannot_be_read_is_not_also_reported_missing() {
        let errors =
            parse_with("[server]\ntls_cert = \"cert.pem\"\ntls_key = 5\n", &[]).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "server.tls_key");
    }

    #[test]
    fn tls_needs_both_files_and_names_the_missing_one() {
        let errors = parse_with("[server]\ntls_cert = \"cert.pem\"\n", &[]).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "server.tls_cert");
        assert_eq!(errors[0].line, Some(2));
        assert!(errors[0].message.contains("server.tls_key"), "{errors:?}");
        let errors = parse_with("[server]\ntls_key = \"key.pem\"\n", &[]).unwrap_err();
        assert!(errors[0].message.contains("server.tls_cert"), "{errors:?}");
        // An empty value is unset, so `${TOCSIN_TLS_CERT:-}` can switch HTTPS off.
        let config = parse_with("[server]\ntls_cert = \"\"\ntls_key = \"\"\n", &[]).unwrap();
        assert!(config.tls.is_none());
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        let errors =
            parse_with("[server]\nlisten = 8080\n[storage]\nurll = \"x\"\n", &[]).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.path == "server.listen" && e.line == Some(2))
        );
        assert!(errors.iter().any(|e| e.message.contains("urll")));
    }
}
