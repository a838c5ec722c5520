//! End-to-end tests: the real router over real HTTP on 127.0.0.1, a real SQLite file,
//! and a manual clock. `process.rs` drives the real binary.

// Test helpers panic on purpose: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ack_links;
mod bad_input;
mod changes;
mod channels;
mod channels_voice;
mod chat_providers;
mod console;
mod dashboard;
mod drills;
mod harness;
mod helpdesk;
mod https;
mod incidents;
mod ingest;
mod layers;
mod operations;
mod paging;
mod pg_proxy;
mod process;
mod real_senders;
mod relay;
mod replicas;
mod reports;
mod runbooks;
mod scale_out;
mod senders;
mod sla;
mod sms_gateway;
mod sms_replies;
mod smtp_sink;
mod store_conformance;
mod tickets;
mod trust;
mod webdriver;
