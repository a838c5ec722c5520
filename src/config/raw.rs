//! The configuration file exactly as written, before validation. Every key of spec §9
//! has a home here; unknown keys are refused so a typo never silently changes nothing.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: String,
    pub public_url: String,
    pub max_body_bytes: u64,
    /// How long an acknowledgement link in an email stays valid.
    pub ack_link_ttl: String,
    /// PEM certificate chain; with `tls_key`, the listener speaks HTTPS only.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// How long a client may take over its request headers (or leave a keep-alive
    /// connection idle), and go without sending any of its body.
    pub client_timeout: String,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 1_048_576,
            ack_link_ttl: "24h".into(),
            tls_cert: None,
            tls_key: None,
            client_timeout: "75s".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStorage {
    pub url: String,
    /// Longest a request waits for its batch to commit before answering 503.
    pub write_timeout: String,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            url: "sqlite://data/tocsin.db".into(),
            write_timeout: "5s".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApi {
    pub tokens: Vec<RawApiToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiToken {
    pub name: String,
    pub token: String,
    pub role: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSource {
    pub token: Option<String>,
    pub rate_limit: Option<String>,
    /// Shared secret of an HMAC-SHA256 body signature the sender must send.
    pub hmac_secret: Option<String>,
    pub signature_header: Option<String>,
    pub timestamp_header: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIncidents {
    pub auto_open: Vec<String>,
    pub auto_resolve: bool,
    pub group_window: String,
    /// Fraction of an SLA budget after which the timeline warns (0 turns it off).
    pub sla_warn_at: f64,
}

impl Default for RawIncidents {
    fn default() -> Self {
        Self {
            auto_open: vec!["P1".into(), "P2".into()],
            auto_resolve: true,
            group_window: "5m".into(),
            sla_warn_at: 0.8,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSla {
    pub respond: Option<String>,
    pub resolve: Option<String>,
    pub escalate_on_breach: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEmail {
    pub transport: String,
    pub host: String,
    pub port: u16,
    pub tls: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub spool_dir: String,
    /// Give up retrying a message this long after it was due.
    pub deadline: String,
}

impl Default for RawEmail {
    fn default() -> Self {
        Self {
            transport: "smtp".into(),
            host: "127.0.0.1".into(),
            port: 25,
            tls: "none".into(),
            username: None,
            password: None,
            from: "tocsin@example.com".into(),
            spool_dir: "data/outbox".into(),
            deadline: "24h".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSms {
    pub provider: Option<String>,
    pub base_url: Option<String>,
    pub url: Option<String>,
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    pub from: Option<String>,
    /// Ordered fallbacks; the first is the primary. Replaces the inline provider.
    pub providers: Vec<RawSmsProvider>,
    /// Token SMS gateways must present on `/api/v1/sms/inbound` (`?token=` or Bearer).
    pub inbound_token: Option<String>,
    pub deadline: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSmsProvider {
    pub provider: Option<String>,
    pub base_url: Option<String>,
    pub url: Option<String>,
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    pub from: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// URL for the `webhook` channel (chat tools).
    #[serde(default)]
    pub webhook: Option<String>,
    /// Slack member id, Telegram chat id, ntfy topic (`notify` channels of the same name).
    #[serde(default)]
    pub slack: Option<String>,
    #[serde(default)]
    pub telegram: Option<String>,
    #[serde(default)]
    pub ntfy_topic: Option<String>,
    #[serde(default)]
    pub teams_webhook: Option<String>,
    #[serde(default)]
    pub mattermost_webhook: Option<String>,
    #[serde(default)]
    pub notify: Vec<RawNotifyRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifyRule {
    pub channel: String,
    #[serde(default = "zero_seconds")]
    pub after: String,
    #[serde(default)]
    pub min_priority: Option<String>,
}

fn zero_seconds() -> String {
    "0s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub name: String,
    #[serde(default = "utc")]
    pub time_zone: String,
    pub rotation: RawRotation,
    #[serde(default)]
    pub overrides: Vec<RawOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverride {
    pub user: String,
    pub start: String,
    pub end: String,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRotation {
    pub every: String,
    pub handoff: String,
    pub users: Vec<String>,
    #[serde(default)]
    pub start: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: String,
    #[serde(default)]
    pub repeat: u32,
    #[serde(default)]
    pub repeat_after: Option<String>,
    #[serde(default)]
    pub ack_timeout: Option<String>,
    pub tiers: Vec<RawTier>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub level: String,
    pub targets: Vec<String>,
    #[serde(default = "zero_seconds")]
    pub after: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    #[serde(rename = "match", default)]
    pub matchers: Vec<String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub escalation_policy: Option<String>,
    #[serde(default)]
    pub runbooks: Vec<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default)]
    pub stakeholders: Vec<String>,
    /// Knowledge-base links (templates over the alert's fields).
    #[serde(default)]
    pub kb: Vec<String>,
    /// Ticketing platforms for this rule's incidents, instead of `[[tickets]] priorities`.
    #[serde(default)]
    pub tickets: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTicket {
    pub platform: String,
    pub base_url: String,
    #[serde(default)]
    pub user: String,
    pub token: String,
    #[serde(default = "p1_p2")]
    pub priorities: Vec<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub requester: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default = "task")]
    pub issue_type: String,
    #[serde(default)]
    pub resolve_transition: Option<String>,
    #[serde(default = "solved_permanently")]
    pub close_code: String,
    #[serde(default)]
    pub webhook_secret: Option<String>,
    #[serde(default = "one_day")]
    pub deadline: String,
}

fn p1_p2() -> Vec<String> {
    vec!["P1".into(), "P2".into()]
}

fn task() -> String {
    "Task".into()
}

fn solved_permanently() -> String {
    "Solved (Permanently)".into()
}

fn one_day() -> String {
    "24h".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteAccess {
    pub name: String,
    #[serde(rename = "match", default)]
    pub matchers: Vec<String>,
    pub url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRunbooks {
    pub dir: String,
    /// `None`: the default, `["diagnostics"]`, not checked against the directory.
    pub enabled: Option<Vec<String>>,
    /// `None`: the domains of the `[[users]]` emails.
    pub secret_domains: Option<Vec<String>>,
}

impl Default for RawRunbooks {
    fn default() -> Self {
        Self {
            dir: "runbooks".into(),
            enabled: None,
            secret_domains: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub name: String,
    pub interval: String,
    #[serde(default = "zero_seconds")]
    pub grace: String,
    /// Token the check-in must carry; without one, any source token or a responder
    /// API token is accepted.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFlapping {
    pub changes: u32,
    pub window: String,
}

impl Default for RawFlapping {
    fn default() -> Self {
        Self {
            changes: 6,
            window: "10m".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInhibit {
    pub source_match: Vec<String>,
    pub target_match: Vec<String>,
    #[serde(default)]
    pub equal: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    pub name: String,
    #[serde(rename = "match", default)]
    pub matchers: Vec<String>,
    #[serde(default = "utc")]
    pub time_zone: String,
    #[serde(default)]
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReports {
    pub weekly: Option<RawReport>,
    pub monthly: Option<RawReport>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    #[serde(default = "monday_eight")]
    pub cron: String,
    pub to: Vec<String>,
}

fn monday_eight() -> String {
    "0 0 8 * * Mon".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrill {
    pub name: String,
    pub cron: String,
    #[serde(default)]
    pub escalation_policy: Option<String>,
    /// Instead of a policy: page whoever is on call on this schedule.
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default = "p1")]
    pub priority: String,
    #[serde(default = "fifteen_minutes")]
    pub ack_window: String,
}

fn p1() -> String {
    "P1".into()
}

fn fifteen_minutes() -> String {
    "15m".into()
}

/// Every top-level section. Each is read on its own so one bad section does not hide
/// the errors of the others.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub server: RawServer,
    pub storage: RawStorage,
    pub api: RawApi,
    pub sources: BTreeMap<String, RawSource>,
    pub incidents: RawIncidents,
    pub sla: BTreeMap<String, RawSla>,
    pub email: Option<RawEmail>,
    pub sms: Option<RawSms>,
    pub slack: Option<super::chat::RawSlack>,
    pub telegram: Option<super::chat::RawTelegram>,
    pub ntfy: Option<super::chat::RawNtfy>,
    pub voice: Option<super::chat::RawVoice>,
    pub users: Vec<RawUser>,
    pub schedules: Vec<RawSchedule>,
    pub escalation_policies: Vec<RawPolicy>,
    pub rules: Vec<RawRule>,
    pub runbooks: RawRunbooks,
    pub templates_dir: Option<String>,
    pub heartbeats: Vec<RawHeartbeat>,
    pub flapping: RawFlapping,
    pub inhibit: Vec<RawInhibit>,
    pub reports: RawReports,
    pub drills: Vec<RawDrill>,
    pub maintenance: Vec<RawMaintenance>,
    pub tickets: Vec<RawTicket>,
    pub remote_access: Vec<RawRemoteAccess>,
    pub dashboard: RawDashboard,
    pub silences: RawSilences,
    pub changes: RawChanges,
    pub console: super::console::RawConsole,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawChanges {
    /// How long before an incident opened a change is shown on it.
    pub window: String,
    /// How long change events are kept.
    pub retention: String,
}

impl Default for RawChanges {
    fn default() -> Self {
        Self {
            window: "2h".into(),
            retention: "30d".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDashboard {
    /// Whether `GET /` needs no token; unset means only while listening on loopback.
    pub public: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSilences {
    /// How long an ended silence is kept before it is deleted.
    pub retention: String,
}

impl Default for RawSilences {
    fn default() -> Self {
        Self {
            retention: "7d".into(),
        }
    }
}
