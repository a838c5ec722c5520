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

pub use crate::page::NotifyError;

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
