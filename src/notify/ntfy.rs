//! The ntfy push channel: `POST {base_url}/{topic}` with the text as body, the
//! priority mapped from P1–P4, and an `Acknowledge` action that POSTs the ack link.

use super::outbox::Message;
use super::{NotifyError, call};
use crate::config::chat::NtfyConfig;
use base64::Engine;

/// The request ntfy's publish API documents.
pub fn request(
    http: &reqwest::Client,
    config: &NtfyConfig,
    topic: &str,
    message: &Message,
) -> reqwest::RequestBuilder {
    let incident = &message.context["incident"];
    let priority = match incident["priority"].as_str() {
        Some("P1") => "5",
        Some("P2") => "4",
        Some("P3") => "3",
        _ => "2",
    };
    let mut request = http
        .post(format!("{}/{topic}", config.base_url))
        .header("Title", header_text(&message.subject))
        .header("Priority", priority)
        .body(message.short.clone());
    if let (false, Some(ack_url)) = (message.resolved, message.context["ack_url"].as_str()) {
        request = request.header(
            "Actions",
            format!("http, Acknowledge, {ack_url}, method=POST, clear=true"),
        );
    }
    if let Some(token) = &config.token {
        request = request.bearer_auth(token);
    }
    request
}

/// Publishes `message` to `topic`.
pub async fn send(
    http: &reqwest::Client,
    config: &NtfyConfig,
    topic: &str,
    message: &Message,
) -> Result<(), NotifyError> {
    call(request(http, config, topic, message), "ntfy").await?;
    Ok(())
}

/// Header values are ASCII: anything else goes as RFC 2047 base64, which ntfy decodes.
fn header_text(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return text.to_string();
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    format!("=?UTF-8?B?{encoded}?=")
}

#[cfg(test)]
mod tests {
    #[test]
    fn titles_outside_ascii_are_encoded_as_rfc_2047() {
        assert_eq!(super::header_text("[P1] #1 db"), "[P1] #1 db");
        assert_eq!(super::header_text("é"), "=?UTF-8?B?w6k=?=");
    }
}
