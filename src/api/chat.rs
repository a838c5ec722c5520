//! The buttons of chat messages coming back: Slack's interactivity requests
//! (`POST /api/v1/chat/slack`, signed with the app's signing secret), Telegram's
//! callback queries (`POST /api/v1/chat/telegram`, carrying the webhook secret) and
//! Mattermost's integration actions (`POST /api/v1/chat/mattermost`, each button's
//! own HMAC token). A click acts as the `[[users]]` entry whose `slack` / `telegram`
//! is the clicker (for Mattermost, the user the button was sent to), once.

use super::AppState;
use super::error::ApiError;
use crate::notify::{slack, telegram};
use crate::oncall::{Channel, User};
use crate::pipeline::{Action, PipelineError};
use crate::webhook_auth::same_secret;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `POST /api/v1/chat/slack`: a click on `Acknowledge` or `Resolve`.
pub async fn slack(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let slack = config.chat.slack.as_ref().ok_or_else(|| {
        ApiError::not_found("Slack is off: add a [slack] section (see docs/channels.md)")
    })?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    };
    slack::verify(
        &slack.signing_secret,
        header("x-slack-request-timestamp"),
        &body,
        header("x-slack-signature"),
        state.clock.now().timestamp(),
    )
    .map_err(|error| ApiError::new(StatusCode::UNAUTHORIZED, "bad signature", error.to_string()))?;
    let payload = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| {
            ApiError::bad_request(
                "no payload",
                "Slack sends its click as the form field payload",
            )
        })?;
    let payload: Value = serde_json::from_str(&payload).map_err(|error| {
        ApiError::bad_request("invalid payload", format!("payload is not JSON: {error}"))
    })?;
    let clicker = payload["user"]["id"].as_str().unwrap_or_default();
    let button = &payload["actions"][0];
    let action = button["action_id"].as_str().unwrap_or_default();
    let id = button["value"]
        .as_str()
        .and_then(|value| value.parse::<i64>().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "unknown button",
                "the button carries no incident id; only Tocsin's Acknowledge and Resolve buttons act here",
            )
        })?;
    let user = mapped(&config.directory, Channel::Slack, clicker)?;
    // A click's trigger id is unique: a request captured and sent again acts no more.
    let once = format!(
        "slack:{}",
        payload["trigger_id"]
            .as_str()
            .or(button["action_ts"].as_str())
            .unwrap_or_default()
    );
    let done = act(&state, id, action, user, "slack", &once).await?;
    Ok(Json(json!({ "text": done })).into_response())
}

/// `POST /api/v1/chat/telegram`: a callback query from an inline keyboard. Telegram
/// delivers again whatever is not answered 2xx, so a refusal of the click itself is
/// answered 200 with a notice for the clicker (`answerCallbackQuery`).
pub async fn telegram(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let telegram = config.chat.telegram.as_ref().ok_or_else(|| {
        ApiError::not_found("Telegram is off: add a [telegram] section (see docs/channels.md)")
    })?;
    let given = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !same_secret(given, &telegram.webhook_secret) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad secret",
            "X-Telegram-Bot-Api-Secret-Token is missing or wrong; call setWebhook with secret_token = [telegram] webhook_secret",
        ));
    }
    let update: Value = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request("invalid update", format!("the body is not JSON: {error}"))
    })?;
    let query = &update["callback_query"];
    let Some(query_id) = query["id"].as_str() else {
        // Messages and other updates: nothing to do, and nothing to deliver again.
        return Ok(Json(json!({})).into_response());
    };
    let clicker = match &query["from"]["id"] {
        Value::Number(id) => id.to_string(),
        other => other.as_str().unwrap_or_default().to_string(),
    };
    let data = query["data"].as_str().unwrap_or_default();
    let outcome = match telegram::parse_callback(data) {
        None => Err(ApiError::bad_request(
            "unknown button",
            format!("callback data {data:?} is not ack:<id> or resolve:<id>"),
        )),
        Some((action, id)) => match mapped(&config.directory, Channel::Telegram, &clicker) {
            Ok(user) => {
                act(
                    &state,
                    id,
                    action,
                    user,
                    "telegram",
                    &format!("telegram:{query_id}"),
                )
                .await
            }
            Err(error) => Err(error),
        },
    };
    let text = match outcome {
        Ok(done) => done,
        Err(error) if error.status == StatusCode::SERVICE_UNAVAILABLE => return Err(error),
        Err(error) => error.detail,
    };
    Ok(Json(json!({
        "method": "answerCallbackQuery",
        "callback_query_id": query_id,
        "text": text,
    }))
    .into_response())
}

/// `POST /api/v1/chat/mattermost`: a button of a Mattermost page, whose context
/// token says (under Tocsin's link key) which incident, action and user it is for.
pub async fn mattermost(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: Value = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request("invalid request", format!("the body is not JSON: {error}"))
    })?;
    let token = request["context"]["token"].as_str().unwrap_or_default();
    let claim = state
        .links
        .verify_button(token, state.clock.now())
        .map_err(|error| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad button",
                format!("{error}; only the buttons of Tocsin's own messages act here"),
            )
        })?;
    let config = state.config.load_full();
    let user = config.directory.users.get(&claim.user_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown user",
            format!("user {:?} is no longer in [[users]]", claim.user_id),
        )
    })?;
    let once = format!("mattermost:{token}");
    let done = act(
        &state,
        claim.incident_id,
        &claim.action,
        user,
        "mattermost",
        &once,
    )
    .await?;
    Ok(Json(json!({ "ephemeral_text": done, "update": { "message": done } })).into_response())
}

/// The person behind a chat account, or a refusal that says how to map them.
fn mapped<'d>(
    directory: &'d crate::oncall::Directory,
    channel: Channel,
    account: &str,
) -> Result<&'d User, ApiError> {
    directory.user_by_address(channel, account).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "unknown user",
            format!(
                "{channel} account {account:?} belongs to no Tocsin user; add {} = \"{account}\" to the person's [[users]] entry",
                channel.user_key()
            ),
        )
    })
}

/// Acknowledges or resolves incident `id` as `user`, once per `once`.
async fn act(
    state: &AppState,
    id: i64,
    action: &str,
    user: &User,
    via: &str,
    once: &str,
) -> Result<String, ApiError> {
    let (action, verb) = match action {
        "ack" => (Action::Acknowledge { note: None }, "acknowledged"),
        "resolve" => (Action::Resolve { note: None }, "resolved"),
        other => {
            return Err(ApiError::bad_request(
                "unknown button",
                format!("action {other:?} is neither ack nor resolve"),
            ));
        }
    };
    let actor = format!("{} ({via})", user.id);
    let incident = state
        .pipeline
        .act_once(id, action, &actor, once)
        .await
        .map_err(|error| match error {
            PipelineError::Spent => ApiError::new(
                StatusCode::GONE,
                "already handled",
                "this click was already acted on; the incident stays as it is",
            ),
            error => error.into(),
        })?;
    Ok(format!("Incident #{} {verb} by {}", incident.id, user.id))
}
