//! The Slack channel: a bot's `chat.postMessage` to the user's member id with Block
//! Kit buttons `ack` and `resolve`, `chat.update` once the incident changed, and the
//! check of Slack's request signature on the clicks that come back.

use super::outbox::Message;
use super::{NotifyError, call};
use crate::config::chat::SlackConfig;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// How old a signed click may be: Slack's own advice against replays.
pub const MAX_AGE_SECONDS: i64 = 5 * 60;

/// Where a posted message lives, for `chat.update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

/// `chat.postMessage` as Slack's Web API documents it.
pub fn request(
    http: &reqwest::Client,
    config: &SlackConfig,
    member: &str,
    message: &Message,
) -> reqwest::RequestBuilder {
    let incident = &message.context["incident"];
    let status = if message.resolved {
        "resolved"
    } else {
        incident["status"].as_str().unwrap_or("triggered")
    };
    http.post(format!("{}/chat.postMessage", config.api_url))
        .bearer_auth(&config.bot_token)
        .json(&json!({
            "channel": member,
            "text": message.short,
            "blocks": blocks(incident, status),
        }))
}

/// Posts `message` to `member`; returns where it landed.
pub async fn send(
    http: &reqwest::Client,
    config: &SlackConfig,
    member: &str,
    message: &Message,
) -> Result<Posted, NotifyError> {
    let answer = web_api(request(http, config, member, message)).await?;
    match (answer["channel"].as_str(), answer["ts"].as_str()) {
        (Some(channel), Some(ts)) => Ok(Posted {
            channel: channel.to_string(),
            ts: ts.to_string(),
        }),
        _ => Err(NotifyError::Permanent(
            "Slack accepted the message but named no channel and ts".into(),
        )),
    }
}

/// `chat.update` of a posted message to show `incident` (its JSON, as composed) now.
pub async fn update(
    http: &reqwest::Client,
    config: &SlackConfig,
    posted: &Posted,
    incident: &Value,
) -> Result<(), NotifyError> {
    let status = incident["status"].as_str().unwrap_or("triggered");
    let request = http
        .post(format!("{}/chat.update", config.api_url))
        .bearer_auth(&config.bot_token)
        .json(&json!({
            "channel": posted.channel,
            "ts": posted.ts,
            "text": format!("[{}] #{} is {status}", incident["priority"].as_str().unwrap_or_default(), incident["id"]),
            "blocks": blocks(incident, status),
        }));
    web_api(request).await.map(|_| ())
}

/// Slack's Web API answers 200 with `ok: false` for most refusals.
async fn web_api(request: reqwest::RequestBuilder) -> Result<Value, NotifyError> {
    let answer: Value = call(request, "Slack")
        .await?
        .json()
        .await
        .map_err(|error| NotifyError::Transient(format!("Slack's answer is not JSON: {error}")))?;
    if answer["ok"].as_bool() == Some(true) {
        return Ok(answer);
    }
    let error = answer["error"].as_str().unwrap_or("unknown error");
    Err(match error {
        "ratelimited" | "internal_error" | "fatal_error" | "service_unavailable" => {
            NotifyError::Transient(format!("Slack answered {error}"))
        }
        _ => NotifyError::Permanent(format!(
            "Slack refused the message: {error}; check [slack] bot_token's scopes (chat:write) and the user's slack member id"
        )),
    })
}

/// The incident, its SLA due times and, while there is something to do, the buttons.
fn blocks(incident: &Value, status: &str) -> Value {
    let text = |key: &str| escape(incident[key].as_str().unwrap_or_default());
    let mut blocks = vec![json!({
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": format!(
                "*[{}] #{} {}*\n{}\nStatus: *{status}* · respond by {} · resolve by {}",
                text("priority"), incident["id"], text("resource"), text("summary"),
                text("response_due"), text("resolve_due"),
            ),
        },
    })];
    let id = incident["id"].to_string();
    let button = |label: &str, action: &str| json!({ "type": "button", "text": { "type": "plain_text", "text": label }, "action_id": action, "value": id });
    let buttons: Vec<Value> = match status {
        "triggered" => vec![button("Acknowledge", "ack"), button("Resolve", "resolve")],
        "acknowledged" => vec![button("Resolve", "resolve")],
        _ => Vec::new(),
    };
    if !buttons.is_empty() {
        blocks.push(json!({ "type": "actions", "elements": buttons }));
    }
    Value::Array(blocks)
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Why a request was not taken as Slack's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the X-Slack-Signature does not match; check [slack] signing_secret against the app's Basic Information page"
    )]
    Forged,
    #[error(
        "the X-Slack-Request-Timestamp is more than 5 minutes away from now; check the server's clock"
    )]
    Stale,
}

/// Checks `X-Slack-Signature` (`v0=` hex HMAC-SHA256 of `v0:<timestamp>:<body>`) and
/// that `timestamp` is within five minutes of `now` (seconds since the epoch).
pub fn verify(
    signing_secret: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Stale)?;
    if (now - sent).abs() > MAX_AGE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let given = signature
        .strip_prefix("v0=")
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or(SignatureError::Forged)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(signing_secret.as_bytes())
        .map_err(|_| SignatureError::Forged)?;
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| SignatureError::Forged)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Slack's "Verifying requests from Slack"
    /// (docs.slack.dev/authentication/verifying-requests-from-slack).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_published_example_verifies() {
        assert_eq!(
            verify(
                SECRET,
                TIMESTAMP,
                BODY.as_bytes(),
                SIGNATURE,
                1_531_420_618 + 60
            ),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_secret_or_an_old_timestamp_is_refused() {
        let now = 1_531_420_618;
        let body = BODY.replace("roadrunner", "coyote");
        assert_eq!(
            verify(SECRET, TIMESTAMP, body.as_bytes(), SIGNATURE, now),
            Err(SignatureError::Forged)
        );
        assert_eq!(
            verify(
                "8f742231b10e8888abcd99yyyzzz85a6",
                TIMESTAMP,
                BODY.as_bytes(),
                SIGNATURE,
                now
            ),
            Err(SignatureError::Forged)
        );
        assert_eq!(
            verify(SECRET, TIMESTAMP, BODY.as_bytes(), SIGNATURE, now + 6 * 60),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, TIMESTAMP, BODY.as_bytes(), "v0=zz", now),
            Err(SignatureError::Forged)
        );
    }
}
