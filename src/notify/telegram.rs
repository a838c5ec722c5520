//! The Telegram channel: the Bot API's `sendMessage` to the user's chat id with an
//! inline keyboard whose `callback_data` is `ack:<id>` or `resolve:<id>`.

use super::outbox::Message;
use super::{NotifyError, call};
use crate::config::chat::TelegramConfig;
use serde_json::{Value, json};

/// `sendMessage` as the Bot API documents it.
pub fn request(
    http: &reqwest::Client,
    config: &TelegramConfig,
    chat_id: &str,
    message: &Message,
) -> reqwest::RequestBuilder {
    let id = &message.context["incident"]["id"];
    let mut body = json!({ "chat_id": chat_id, "text": message.short });
    if !message.resolved {
        body["reply_markup"] = json!({ "inline_keyboard": [[
            { "text": "Acknowledge", "callback_data": format!("ack:{id}") },
            { "text": "Resolve", "callback_data": format!("resolve:{id}") },
        ]] });
    }
    http.post(format!(
        "{}/bot{}/sendMessage",
        config.api_url, config.bot_token
    ))
    .json(&body)
}

/// Sends `message` to `chat_id`.
pub async fn send(
    http: &reqwest::Client,
    config: &TelegramConfig,
    chat_id: &str,
    message: &Message,
) -> Result<(), NotifyError> {
    let answer: Value = call(request(http, config, chat_id, message), "Telegram")
        .await?
        .json()
        .await
        .map_err(|error| {
            NotifyError::Transient(format!("Telegram's answer is not JSON: {error}"))
        })?;
    if answer["ok"].as_bool() == Some(true) {
        return Ok(());
    }
    Err(NotifyError::Permanent(format!(
        "Telegram refused the message: {}; check the user's telegram chat id and that they started the bot",
        answer["description"].as_str().unwrap_or("no description")
    )))
}

/// What a button's `callback_data` asks for: (`ack` or `resolve`, incident id).
pub fn parse_callback(data: &str) -> Option<(&str, i64)> {
    let (action, id) = data.split_once(':')?;
    matches!(action, "ack" | "resolve").then_some(())?;
    Some((action, id.parse().ok()?))
}
