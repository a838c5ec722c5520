//! Notifications: one file per channel (`email.rs`, `sms.rs`, `webhook.rs`), the
//! Handlebars templates, signed acknowledgement links, and the durable outbox that
//! delivers, retries and falls back.

pub mod ack_link;
pub mod email;
pub mod outbox;
pub mod sms;
pub mod templates;
pub mod webhook;

/// Why a delivery failed, which decides whether it is retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Worth another try later (server down, timeout, 5xx, 429).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (address refused, channel not configured).
    #[error("{0}")]
    Permanent(String),
}
