//! The Microsoft Teams channel: a Workflows webhook ("Post to a channel when a
//! webhook request is received") taking an Adaptive Card. Teams cannot call back, so
//! the card's buttons open the acknowledgement page and the incident.

use super::outbox::Message;
use super::{NotifyError, call};
use serde_json::json;

/// The message with its Adaptive Card attachment, as the Workflows trigger expects.
pub fn request(
    http: &reqwest::Client,
    webhook: &str,
    message: &Message,
) -> reqwest::RequestBuilder {
    let context = &message.context;
    let incident = &context["incident"];
    let mut actions = Vec::new();
    if !message.resolved {
        actions.push(
            json!({ "type": "Action.OpenUrl", "title": "Acknowledge", "url": context["ack_url"] }),
        );
    }
    actions.push(json!({ "type": "Action.OpenUrl", "title": "Open incident", "url": context["incident_url"] }));
    let card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            { "type": "TextBlock", "text": message.subject, "weight": "Bolder", "size": "Medium", "wrap": true },
            { "type": "FactSet", "facts": [
                { "title": "Status", "value": if message.resolved { "resolved" } else { incident["status"].as_str().unwrap_or("triggered") } },
                { "title": "Respond by", "value": incident["response_due"] },
                { "title": "Resolve by", "value": incident["resolve_due"] },
            ] },
        ],
        "actions": actions,
    });
    http.post(webhook).json(&json!({
        "type": "message",
        "attachments": [ { "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card } ],
    }))
}

/// Posts the card. The webhook URL carries its own signature, so it stays out of
/// every error.
pub async fn send(
    http: &reqwest::Client,
    webhook: &str,
    message: &Message,
) -> Result<(), NotifyError> {
    call(request(http, webhook, message), "Teams").await?;
    Ok(())
}
