//! End-to-end tests: the real router over real HTTP on 127.0.0.1, a real SQLite file,
//! and a manual clock. `process.rs` drives the real binary.

// Test helpers panic on purpose: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod changes;
mod console;
mod dashboard;
mod harness;
mod helpdesk;
mod https;
mod incidents;
mod ingest;
mod operations;
mod paging;
mod process;
mod real_senders;
mod replicas;
mod runbooks;
mod senders;
mod sla;
mod sms_gateway;
mod smtp_sink;
mod tickets;
mod trust;
mod webdriver;
