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

impl NotifyError {
    /// What this failure of attempt `attempt` on row `id` (described by `what`) means
    /// for the row: retried after a backoff while it is transient and `deadline` is
    /// ahead, given up otherwise; and the timeline message that says so. The outbox
    /// and the ticket desk share this policy.
    pub fn settle(
        self,
        what: &str,
        attempt: i64,
        id: i64,
        deadline: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (crate::store::paging::Delivery, String) {
        use crate::store::paging::Delivery;
        match self {
            Self::Transient(error) if now < deadline => {
                let at = now + outbox::backoff(attempt, id);
                let message = format!(
                    "{what} attempt {attempt} failed: {error}; retrying in {}s",
                    (at - now).num_seconds()
                );
                (Delivery::Retry { at, error }, message)
            }
            error => (
                Delivery::Failed {
                    error: error.to_string(),
                },
                format!("{what} failed after {attempt} attempt(s): {error}"),
            ),
        }
    }
}
