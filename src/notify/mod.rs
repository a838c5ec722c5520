//! Notifications: one file per channel (`email.rs`, `sms.rs`, `webhook.rs`, `slack.rs`,
//! `telegram.rs`, `ntfy.rs`, `teams.rs`, `mattermost.rs`, `voice.rs`), the Handlebars templates, signed acknowledgement links,
//! and the durable outbox that delivers, retries and falls back.
//!
//! The chat and push channel files share one shape: `request` builds the provider's
//! documented request from the config, the address and a composed message; `send`
//! makes it through [`call`] and reads the provider's answer.

pub mod ack_link;
pub mod email;
pub mod mattermost;
pub mod ntfy;
pub mod outbox;
pub mod slack;
pub mod sms;
pub mod teams;
pub mod telegram;
pub mod templates;
pub mod test_send;
pub mod voice;
pub mod webhook;

/// Makes a provider request: a refused connection, a timeout, a 5xx or a 429 is
/// transient, any other non-2xx permanent. The URL never goes into the error (Telegram
/// puts the bot token in it), so the timeline stays free of credentials.
pub async fn call(
    request: reqwest::RequestBuilder,
    provider: &str,
) -> Result<reqwest::Response, NotifyError> {
    let response = request.send().await.map_err(|error| {
        NotifyError::Transient(format!("cannot reach {provider}: {}", error.without_url()))
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let detail: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    if status.is_server_error() || status.as_u16() == 429 {
        Err(NotifyError::Transient(format!(
            "{provider} answered {status}: {detail}"
        )))
    } else {
        Err(NotifyError::Permanent(format!(
            "{provider} refused the message ({status}): {detail}"
        )))
    }
}

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
