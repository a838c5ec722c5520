//! The voice channel: a call through Twilio's Calls API (`POST
//! {base_url}/2010-04-01/Accounts/{sid}/Calls.json`) whose TwiML says the priority,
//! resource and summary twice and gathers one digit (1 acknowledges, 9 escalates).
//! The digit and the call's final status come back to `/api/v1/voice/twilio`, whose
//! query (signed by Twilio with the rest of the URL) says which page the call was.

use super::NotifyError;
use super::outbox::Message;
use crate::config::chat::VoiceConfig;
use crate::store::paging::Notification;
use serde_json::Value;

/// Where Twilio posts the digit and, with `event=status`, the call's outcome.
pub const CALLBACK_PATH: &str = "/api/v1/voice/twilio";

/// The callback URLs of one call.
pub struct Call {
    pub gather_url: String,
    pub status_url: String,
}

impl Call {
    /// The URLs for the page `notification`.
    pub fn new(public_url: &str, notification: &Notification) -> Self {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("incident", &notification.incident_id.to_string())
            .append_pair("user", &notification.user_id)
            .append_pair("step", &notification.step)
            .finish();
        let gather_url = format!("{public_url}{CALLBACK_PATH}?{query}");
        Self {
            status_url: format!("{gather_url}&event=status"),
            gather_url,
        }
    }
}

/// The call's script: the page twice, then one digit, posted even when none comes
/// (`actionOnEmptyResult`), so silence is reported as such.
pub fn twiml(message: &Message, gather_url: &str) -> String {
    let incident = &message.context["incident"];
    let field = |key: &str| xml(incident[key].as_str().unwrap_or_default());
    let page = format!(
        "Priority {}. Resource {}. {}.",
        field("priority"),
        field("resource"),
        field("summary")
    );
    format!(
        "<Response><Gather numDigits=\"1\" timeout=\"10\" method=\"POST\" actionOnEmptyResult=\"true\" action=\"{}\"><Say>Tocsin page. {page} Again: {page} Press 1 to acknowledge, or 9 to escalate.</Say></Gather></Response>",
        xml(gather_url)
    )
}

/// The Calls API request Twilio documents.
pub fn request(
    http: &reqwest::Client,
    config: &VoiceConfig,
    to: &str,
    message: &Message,
    call: &Call,
) -> reqwest::RequestBuilder {
    http.post(format!(
        "{}/2010-04-01/Accounts/{}/Calls.json",
        config.base_url, config.account_sid
    ))
    .basic_auth(&config.account_sid, Some(&config.auth_token))
    .form(&[
        ("To", to),
        ("From", config.from.as_str()),
        ("Twiml", &twiml(message, &call.gather_url)),
        ("StatusCallback", &call.status_url),
        ("StatusCallbackMethod", "POST"),
        ("Timeout", "30"),
    ])
}

/// Places the call; returns its sid.
pub async fn send(
    http: &reqwest::Client,
    config: &VoiceConfig,
    to: &str,
    message: &Message,
    call: &Call,
) -> Result<String, NotifyError> {
    let answer: Value = super::call(request(http, config, to, message, call), "Twilio")
        .await?
        .json()
        .await
        .map_err(|error| NotifyError::Transient(format!("Twilio's answer is not JSON: {error}")))?;
    Ok(answer["sid"]
        .as_str()
        .unwrap_or("without a sid")
        .to_string())
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
