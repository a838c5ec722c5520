//! Notifications: one file per channel (`email.rs`, `sms.rs`, `webhook.rs`, `slack.rs`,
//! `telegram.rs`, `ntfy.rs`, `teams.rs`, `mattermost.rs`, `voice.rs`), signed acknowledgement links,
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
pub mod test_send;
pub mod voice;
pub mod webhook;

pub use crate::page::NotifyError;

/// Alert text made inert for the chat clients that render Markdown (Mattermost,
/// Teams): a sender's summary must not carry links, images or `@channel` mentions
/// into the message beside the real buttons.
pub fn inert_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '[' | ']' | '(' | ')' | '!' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            // A zero-width space after `@` keeps `@channel` from notifying anyone.
            '@' => out.push_str("@\u{200b}"),
            c => out.push(c),
        }
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::inert_markdown;

    #[test]
    fn a_summary_cannot_link_embed_or_mention_in_markdown_chats() {
        assert_eq!(
            inert_markdown("@channel disk full [ack](https://evil.example) ![](x.png)"),
            "@\u{200b}channel disk full \\[ack\\]\\(https://evil.example\\) \\!\\[\\]\\(x.png\\)"
        );
    }
}
