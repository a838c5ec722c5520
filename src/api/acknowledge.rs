//! The acknowledgement paths that need no API token: the signed link in every page
//! email (`GET /ack/{token}`) and SMS replies (`POST /api/v1/sms/inbound`).

use super::AppState;
use super::auth::{presented_token, same_secret};
use super::error::ApiError;
use super::twilio;
use crate::config::channels::{SmsConfig, SmsProvider};
use crate::notify::ack_link::LinkError;
use crate::pipeline::{Action, PipelineError};
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

/// `GET /ack/{token}`: acknowledges at once and shows a confirmation page.
pub async fn link(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let now = state.clock.now();
    let claim = match state.links.verify(&token, now) {
        Ok(claim) => claim,
        Err(error @ LinkError::Forged) => {
            return page(StatusCode::FORBIDDEN, "Link refused", &error.to_string());
        }
        Err(error @ LinkError::Expired) => {
            return page(StatusCode::GONE, "Link expired", &error.to_string());
        }
    };
    let actor = format!("{} (email link)", claim.user_id);
    match state
        .pipeline
        .act_once(
            claim.incident_id,
            Action::Acknowledge { note: None },
            &actor,
            &format!("ack:{}", claim.nonce),
        )
        .await
    {
        Ok(incident) => page(
            StatusCode::OK,
            "Acknowledged",
            &format!(
                "Incident #{} ({}) is acknowledged by {}. Escalation has stopped.",
                incident.id, incident.title, claim.user_id
            ),
        ),
        Err(PipelineError::Spent) => page(
            StatusCode::GONE,
            "Link already used",
            "This link was already used. The incident stays as it is.",
        ),
        Err(PipelineError::Transition(error)) => page(
            StatusCode::GONE,
            "Nothing to acknowledge",
            &error.to_string(),
        ),
        Err(error) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            &error.to_string(),
        ),
    }
}

/// `GET /csat/{token}?score=1..5`: a stakeholder's satisfaction, one click from the
/// resolution email. The first answer counts; a forged link is refused.
pub async fn csat(
    State(state): State<AppState>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let now = state.clock.now();
    let claim = match state.links.verify(&token, now) {
        Ok(claim) if claim.user_id.starts_with("csat:") => claim,
        Ok(_) | Err(LinkError::Forged) => {
            return page(
                StatusCode::FORBIDDEN,
                "Link refused",
                "This link is not one Tocsin issued.",
            );
        }
        Err(error @ LinkError::Expired) => {
            return page(StatusCode::GONE, "Link expired", &error.to_string());
        }
    };
    let score = query
        .as_deref()
        .and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "score")
                .map(|(_, value)| value.into_owned())
        })
        .and_then(|value| value.parse::<i64>().ok())
        .filter(|score| (1..=5).contains(score));
    let Some(score) = score else {
        return page(
            StatusCode::BAD_REQUEST,
            "Pick a score",
            "Open one of the five links of the email (score 1 to 5).",
        );
    };
    let address = claim.user_id.trim_start_matches("csat:");
    match state
        .store
        .record_csat(claim.incident_id, address, score, now)
        .await
    {
        Ok(true) => page(
            StatusCode::OK,
            "Thank you",
            &format!(
                "Your answer ({score}/5) on incident #{} is recorded.",
                claim.incident_id
            ),
        ),
        Ok(false) => page(
            StatusCode::OK,
            "Already answered",
            "Your first answer is the one that counts. Thank you.",
        ),
        Err(error) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            &error.to_string(),
        ),
    }
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<!doctype html><html><head><meta name=\"viewport\" content=\"width=device-width\"><title>{0}</title></head>\
         <body style=\"font-family:sans-serif;margin:2em\"><h1>{0}</h1><p>{1}</p></body></html>",
        escape(title),
        escape(message)
    );
    (status, Html(body)).into_response()
}

/// Twilio posts `From` and `Body` as a form; other gateways JSON `{"from", "body"}`.
#[derive(Debug, Deserialize)]
struct Inbound {
    #[serde(alias = "From")]
    from: String,
    #[serde(alias = "Body")]
    body: String,
}

/// What a reply asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Acknowledge(Option<i64>),
    Resolve(Option<i64>),
}

/// Reads `ACK 12`, `ack12`, `A 12`, `12 A`, `RES 12`, `R12`, or a bare `A`/`ACK`
/// (the incident last paged to this phone). Case and `#` do not matter.
pub fn parse_reply(text: &str) -> Option<Reply> {
    let cleaned: String = text.trim().to_ascii_uppercase().replace('#', " ");
    let letters: String = cleaned
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .collect();
    let digits: String = cleaned.chars().filter(char::is_ascii_digit).collect();
    let other = cleaned
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || c.is_whitespace()));
    if other {
        return None;
    }
    let id = if digits.is_empty() {
        None
    } else {
        Some(digits.parse().ok()?)
    };
    match letters.as_str() {
        "A" | "ACK" | "OK" => Some(Reply::Acknowledge(id)),
        "R" | "RES" | "RESOLVE" => Some(Reply::Resolve(id)),
        _ => None,
    }
}

/// `POST /api/v1/sms/inbound`: acts on an incident that paged the replying phone.
pub async fn sms_inbound(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let sms = config.sms.as_ref().ok_or_else(replies_off)?;
    let inbound = authenticated_inbound(sms, &config.public_url, &uri, &headers, &body)?;
    let user = config
        .directory
        .user_by_phone(&inbound.from)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "unknown sender",
                "this phone number belongs to no configured user",
            )
        })?;
    let reply = parse_reply(&inbound.body).ok_or_else(|| {
        ApiError::bad_request(
            "unknown reply",
            "reply ACK <id> to acknowledge or RES <id> to resolve",
        )
    })?;
    let (id, action, verb) = match reply {
        Reply::Acknowledge(id) => (id, Action::Acknowledge { note: None }, "acknowledged"),
        Reply::Resolve(id) => (id, Action::Resolve { note: None }, "resolved"),
    };
    let id = paged_incident(&state, &user.id, id).await?;
    let actor = format!("{} (sms)", user.id);
    let incident = state.pipeline.act(id, action, &actor).await?;
    Ok((
        StatusCode::OK,
        format!("Incident #{} {verb} by {}", incident.id, user.id),
    )
        .into_response())
}

fn replies_off() -> ApiError {
    ApiError::not_found(
        "SMS replies are off: set [sms] inbound_token (or use provider = \"twilio\") and point your gateway at /api/v1/sms/inbound",
    )
}

/// The reply a request carries, once the request proved it comes from the gateway:
/// the `inbound_token` when one is set, and Twilio's signature whenever a Twilio
/// account is configured (its webhooks carry no token of ours unless put in the URL).
fn authenticated_inbound(
    sms: &SmsConfig,
    public_url: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Inbound, ApiError> {
    let twilio_tokens: Vec<&str> = sms
        .providers
        .iter()
        .filter_map(|provider| match provider {
            SmsProvider::Twilio { auth_token, .. } if !auth_token.is_empty() => {
                Some(auth_token.as_str())
            }
            _ => None,
        })
        .collect();
    if twilio_tokens.is_empty() && sms.inbound_token.is_none() {
        return Err(replies_off());
    }
    if let Some(expected) = &sms.inbound_token {
        let given = presented_token(headers, uri.query());
        if !given.is_some_and(|given| same_secret(&given, expected)) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong token",
                "send the [sms] inbound_token as ?token= or Bearer",
            ));
        }
    }
    if twilio_tokens.is_empty() {
        return parse_inbound(headers, body);
    }
    // Twilio posts a form; the parameters it signed are the ones acted on.
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let signature = headers
        .get(twilio::SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing signature",
                "with [sms] provider = \"twilio\" only requests Twilio signed (X-Twilio-Signature) are accepted; point the number's messaging webhook at server.public_url + /api/v1/sms/inbound",
            )
        })?;
    let path = uri
        .path_and_query()
        .map_or(uri.path(), |path| path.as_str());
    let url = format!("{public_url}{path}");
    if !twilio_tokens
        .iter()
        .any(|token| twilio::verify(token, &url, &params, signature))
    {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong signature",
            "X-Twilio-Signature does not match: check [sms] auth_token, and that server.public_url is the start of the exact URL Twilio posts to",
        ));
    }
    inbound_from_form(params)
}

fn parse_inbound(headers: &HeaderMap, body: &[u8]) -> Result<Inbound, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        crate::ingest::from_json(body)
            .map_err(|error| ApiError::bad_request("invalid body", error.detail()))
    } else {
        inbound_from_form(form_urlencoded::parse(body).into_owned().collect())
    }
}

fn inbound_from_form(params: Vec<(String, String)>) -> Result<Inbound, ApiError> {
    let mut from = None;
    let mut text = None;
    for (key, value) in params {
        match key.as_str() {
            "From" | "from" => from = Some(value),
            "Body" | "body" => text = Some(value),
            _ => {}
        }
    }
    match (from, text) {
        (Some(from), Some(body)) => Ok(Inbound { from, body }),
        _ => Err(ApiError::bad_request(
            "invalid body",
            "From and Body are required",
        )),
    }
}

/// The incident a reply acts on: the one it names if that one paged this user's
/// phone, else the one last paged to it. A number that can be typed is no proof of
/// being on call for it.
async fn paged_incident(
    state: &AppState,
    user_id: &str,
    named: Option<i64>,
) -> Result<i64, ApiError> {
    match (named, state.store.sms_paged_incident(user_id, named).await?) {
        (_, Some(id)) => Ok(id),
        (Some(id), None) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not paged",
            format!(
                "incident #{id} did not page this phone, so it cannot be changed by SMS from it; reply about an incident you were paged for, or use the dashboard or the API"
            ),
        )),
        (None, None) => Err(ApiError::bad_request(
            "no incident",
            "no incident paged this phone by SMS; acknowledge from the page email, the dashboard or the API",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes_that_work_on_any_phone() {
        assert_eq!(parse_reply("ACK 12"), Some(Reply::Acknowledge(Some(12))));
        assert_eq!(parse_reply("ack12"), Some(Reply::Acknowledge(Some(12))));
        assert_eq!(parse_reply(" a #12 "), Some(Reply::Acknowledge(Some(12))));
        assert_eq!(parse_reply("12 A"), Some(Reply::Acknowledge(Some(12))));
        assert_eq!(parse_reply("RES 7"), Some(Reply::Resolve(Some(7))));
        assert_eq!(parse_reply("r7"), Some(Reply::Resolve(Some(7))));
        assert_eq!(parse_reply("A"), Some(Reply::Acknowledge(None)));
        assert_eq!(parse_reply("hello"), None);
        assert_eq!(parse_reply("ACK 12; DROP"), None);
    }
}
