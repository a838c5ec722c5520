//! The acknowledgement paths that need no API token: the signed link in every page
//! email (`GET /ack/{token}`) and SMS replies (`POST /api/v1/sms/inbound`, which also
//! take `APPROVE <id>` for runbooks waiting for approval).

use super::AppState;
use super::auth::{presented_token, same_secret};
use super::error::ApiError;
use crate::notify::ack_link::LinkError;
use crate::pipeline::{Action, PipelineError};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
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
    match state
        .store
        .use_once(&format!("ack:{}", claim.nonce), now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return page(
                StatusCode::GONE,
                "Link already used",
                "This link was already used. The incident stays as it is.",
            );
        }
        Err(error) => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                &error.to_string(),
            );
        }
    }
    let actor = format!("{} (email link)", claim.user_id);
    match state
        .pipeline
        .act(
            claim.incident_id,
            Action::Acknowledge { note: None },
            &actor,
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
    /// Approve the runbook runs waiting on the incident.
    Approve(Option<i64>),
}

impl Reply {
    fn incident(self) -> Option<i64> {
        match self {
            Reply::Acknowledge(id) | Reply::Resolve(id) | Reply::Approve(id) => id,
        }
    }
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
        "APPROVE" => Some(Reply::Approve(id)),
        _ => None,
    }
}

/// `POST /api/v1/sms/inbound`.
pub async fn sms_inbound(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let expected = state
        .config
        .load()
        .sms
        .as_ref()
        .and_then(|sms| sms.inbound_token.clone())
        .ok_or_else(|| {
            ApiError::not_found(
                "SMS replies are off: set [sms] inbound_token and give it to your gateway",
            )
        })?;
    let given = presented_token(&headers, query.as_deref());
    if !given.is_some_and(|given| same_secret(&given, &expected)) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong token",
            "send the [sms] inbound_token as ?token= or Bearer",
        ));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let inbound: Inbound = if is_json {
        crate::ingest::from_json(&body)
            .map_err(|error| ApiError::bad_request("invalid body", error.detail()))?
    } else {
        serde_urlencoded_form(&body)?
    };
    let config = state.config.load_full();
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
            "reply ACK <id> to acknowledge, RES <id> to resolve or APPROVE <id> to run the runbooks waiting for approval",
        )
    })?;
    let id = match reply.incident() {
        Some(id) => id,
        None => state
            .store
            .last_paged_incident(&user.id)
            .await?
            .ok_or_else(|| {
                ApiError::bad_request("no incident", "you were never paged; reply ACK <id>")
            })?,
    };
    let actor = format!("{} (sms)", user.id);
    let (action, verb) = match reply {
        Reply::Acknowledge(_) => (Action::Acknowledge { note: None }, "acknowledged"),
        Reply::Resolve(_) => (Action::Resolve { note: None }, "resolved"),
        Reply::Approve(_) => {
            let approved = approve_waiting(&state, id, &actor).await?;
            return Ok((StatusCode::OK, approved).into_response());
        }
    };
    let incident = state.pipeline.act(id, action, &actor).await?;
    Ok((
        StatusCode::OK,
        format!("Incident #{} {verb} by {}", incident.id, user.id),
    )
        .into_response())
}

/// `APPROVE <id>`: every runbook run waiting for approval on the incident starts.
async fn approve_waiting(state: &AppState, id: i64, actor: &str) -> Result<String, ApiError> {
    let waiting = state.store.pending_approvals(id).await?;
    if waiting.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "nothing to approve",
            format!(
                "no runbook waits for approval on incident #{id}; reply ACK {id} to acknowledge it"
            ),
        ));
    }
    let mut started = Vec::new();
    for run in waiting {
        let run_id = state
            .pipeline
            .approve_runbook(id, &run.runbook, actor)
            .await?;
        started.push(format!("{} (run {run_id})", run.runbook));
    }
    Ok(format!("Incident #{id}: approved {}", started.join(", ")))
}

fn serde_urlencoded_form(body: &[u8]) -> Result<Inbound, ApiError> {
    let mut from = None;
    let mut text = None;
    for (key, value) in form_urlencoded::parse(body) {
        match key.as_ref() {
            "From" | "from" => from = Some(value.into_owned()),
            "Body" | "body" => text = Some(value.into_owned()),
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
        assert_eq!(parse_reply("approve 12"), Some(Reply::Approve(Some(12))));
    }
}
