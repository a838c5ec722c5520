//! Tocsin turns monitoring alerts into handled incidents.
//!
//! The modules, in the order an alert flows through them:
//! - [`ingest`]: one parser per sender, payload → [`alert::Alert`].
//! - [`dedup`]: identity of an alert and the in-memory index of open ones.
//! - [`rules`]: matchers and ordered rules → priority, policy, grouping.
//! - [`incident`]: the incident state machine and its timeline entries.
//! - [`sla`]: response and resolution deadlines; [`change`]: what changed before an incident.
//! - [`pipeline`]: the single writer that applies all of the above and group-commits.
//! - [`store`]: the storage contract, split by concern, over SQLite (embedded) or PostgreSQL (replicas).
//! - [`api`]: the HTTP API; [`metrics`]: Prometheus metrics.
//! - [`config`], [`clock`], [`app`]: configuration, time, and wiring; [`tls`]: native HTTPS.

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
pub mod silence;
pub mod simulate;
pub mod sla;
pub mod store;
pub mod supervise;
pub mod ticket;
pub mod tls;
pub mod webhook_auth;
