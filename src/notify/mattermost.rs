//! The Mattermost channel: an incoming webhook with interactive buttons whose
//! integration posts back to `/api/v1/chat/mattermost`, each carrying a token that is
//! the HMAC of its incident, action and user ([`ButtonClaim`]).

use super::ack_link::{AckLinks, ButtonClaim};
use super::outbox::Message;
use super::{NotifyError, call};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Where the buttons post.
pub const CALLBACK_PATH: &str = "/api/v1/chat/mattermost";

/// The webhook body with an attachment holding the buttons.
pub fn request(
    http: &reqwest::Client,
    webhook: &str,
    message: &Message,
    buttons: &[Value],
) -> reqwest::RequestBuilder {
    http.post(webhook).json(&json!({
        "text": message.short,
        "attachments": [ {
            "fallback": message.short,
            "title": message.subject,
            "text": message.context["incident"]["summary"],
            "actions": buttons,
        } ],
    }))
}

/// The `Acknowledge` and `Resolve` buttons for `user` on the incident, valid until
/// `expires_at`.
pub fn buttons(
    links: &AckLinks,
    public_url: &str,
    incident_id: i64,
    user: &str,
    expires_at: DateTime<Utc>,
) -> Vec<Value> {
    [("ack", "Acknowledge"), ("resolve", "Resolve")]
        .iter()
        .map(|(action, label)| {
            let token = links.sign_button(&ButtonClaim {
                incident_id,
                action: (*action).to_string(),
                user_id: user.to_string(),
                expires_at,
            });
            json!({
                "id": action,
                "name": label,
                "integration": { "url": format!("{public_url}{CALLBACK_PATH}"), "context": { "token": token } },
            })
        })
        .collect()
}

/// Posts the message.
pub async fn send(
    http: &reqwest::Client,
    webhook: &str,
    message: &Message,
    buttons: &[Value],
) -> Result<(), NotifyError> {
    call(request(http, webhook, message, buttons), "Mattermost").await?;
    Ok(())
}
