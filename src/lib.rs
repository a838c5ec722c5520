//! Tocsin turns monitoring alerts into handled incidents.
//!
//! The core (pure, depends on nothing outside it; `tests/it/layers.rs` keeps it so):
//! - [`alert`]: the normalized alert, severity, priority; [`dedup`]: alert identity
//!   and the index of open ones; [`rules`]: matchers and ordered rules → priority,
//!   policy, grouping.
//! - [`incident`]: the incident state machine, its timeline kinds and its links;
//!   [`sla`]: response and resolution targets and events; [`change`]: what changed
//!   before an incident.
//! - [`oncall`]: users, policies, rotations and who is on call; [`escalation`]: which
//!   tier pages whom and when; [`page`]: the paging values the writer decides and
//!   the outbox settles.
//! - [`silence`], [`inhibit`], [`flapping`]: why an alert is kept quiet; [`name`]: the
//!   error of parsing a fixed name.
//!
//! The edges, in the order an alert flows through them:
//! - [`ingest`]: one parser per sender, payload → [`alert::Alert`].
//! - [`pipeline`]: the single writer that applies the core and group-commits; it also
//!   starts runbook runs ([`runbook`]: manifests, guards, the child process).
//! - [`store`]: the storage contract, split by concern, and its SQLite and PostgreSQL backends.
//! - [`notify`]: the outbox and its channels; [`templates`]: the Handlebars message
//!   templates the outbox and the reports render; [`ticket`]: the helpdesk integration;
//!   [`scheduler`]: the timer, outbox and cron loops.
//! - [`api`]: the HTTP API; [`webhook_auth`]: tokens and signed webhooks (API and
//!   helpdesks); [`metrics`]: Prometheus metrics.
//! - [`kpi`] (pure figures), [`noise`], [`report`]: what the incidents add up to.
//! - [`config`]: `tocsin.toml` parsed and validated into the core's values;
//!   [`reload`]: swapping it at run time; [`clock`]: time; [`app`]: wiring;
//!   [`tls`]: native HTTPS; [`supervise`]: tasks that must not die quietly;
//!   [`cli`], [`simulate`]: the client commands and the dry run.

pub mod alert;
pub mod api;
pub mod app;
pub mod change;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dedup;
pub mod escalation;
pub mod flapping;
pub mod incident;
pub mod ingest;
pub mod inhibit;
pub mod kpi;
pub mod metrics;
pub mod name;
pub mod noise;
pub mod notify;
pub mod oncall;
pub mod page;
pub mod pipeline;
pub mod reload;
pub mod report;
pub mod rules;
pub mod runbook;
pub mod scheduler;
pub mod serde_text;
pub mod server;
pub mod silence;
pub mod simulate;
pub mod sla;
pub mod store;
pub mod supervise;
pub mod templates;
pub mod ticket;
pub mod tls;
pub mod webhook_auth;
