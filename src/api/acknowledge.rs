//! The acknowledgement paths that need no API token: the signed link in every page
//! email (`GET` shows, `POST /ack/{token}` acknowledges), the satisfaction link of
//! resolution emails (`/csat/{token}`, the same way) and SMS replies
//! (`POST /api/v1/sms/inbound`, which also take `APPROVE <id>` for runbooks waiting
//! for approval).

use super::AppState;
use super::error::ApiError;
use super::link_page::{self, Button};
use super::twilio;
use crate::config::channels::{SmsConfig, SmsProvider};
use crate::incident::{Incident, IncidentStatus};
use crate::notify::ack_link::{AckClaim, CSAT_PREFIX, LinkError};
use crate::notify::outbox::CSAT_LABELS;
use crate::pipeline::{Action, PipelineError};
use crate::webhook_auth::{presented_token, same_secret};
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// `GET /ack/{token}`: names the incident and offers one button; changes nothing.
pub async fn ack_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let claim = match ack_claim(&state, &token).await {
        Ok(claim) => claim,
        Err(refusal) => return refusal,
    };
    let incident = match incident(&state, claim.incident_id).await {
        Ok(incident) => incident,
        Err(refusal) => return refusal,
    };
    if incident.status == IncidentStatus::Resolved {
        return link_page::message(
            StatusCode::GONE,
            "Nothing to acknowledge",
            &format!("Incident #{} is already resolved.", incident.id),
        );
    }
    let state_line = match incident.status {
        IncidentStatus::Acknowledged => "It is already acknowledged.".to_string(),
        _ => format!(
            "Acknowledging it as {} stops its escalation.",
            claim.user_id
        ),
    };
    link_page::form(
        &format!("Acknowledge incident #{}?", incident.id),
        &[
            format!(
                "#{} [{}] {}",
                incident.id,
                incident.priority.as_str(),
                incident.title
            ),
            state_line,
        ],
        &[Button {
            label: format!("Acknowledge #{}", incident.id),
            field: None,
            picked: true,
        }],
    )
}

/// `POST /ack/{token}`: acknowledges, once per link.
pub async fn acknowledge(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let claim = match ack_claim(&state, &token).await {
        Ok(claim) => claim,
        Err(refusal) => return refusal,
    };
    let actor = format!("{} (email link)", claim.user_id);
    match state
        .pipeline
        .act_once(
            claim.incident_id,
            Action::Acknowledge { note: None },
            &actor,
            &ack_nonce(&claim),
        )
        .await
    {
        Ok(incident) => link_page::message_with_link(
            StatusCode::OK,
            "Acknowledged",
            &format!(
                "Incident #{} ({}) is acknowledged by {}. Escalation has stopped.",
                incident.id, incident.title, claim.user_id
            ),
            (
                "Open the incident in the console",
                &format!(
                    "{}/ui/incidents/{}",
                    state.config.load().public_url,
                    incident.id
                ),
            ),
        ),
        Err(PipelineError::Spent) => used_link(),
        Err(error @ PipelineError::Unavailable(_)) => try_again(&error),
        Err(error) => link_page::message(
            StatusCode::GONE,
            "Nothing to acknowledge",
            &error.to_string(),
        ),
    }
}

fn ack_nonce(claim: &AckClaim) -> String {
    format!("ack:{}", claim.nonce)
}

/// A valid, unexpired, unused acknowledge link's claim, or the page refusing it.
async fn ack_claim(state: &AppState, token: &str) -> Result<AckClaim, Response> {
    let claim = state
        .links
        .verify(token, state.clock.now())
        .map_err(refused)?;
    // A satisfaction link is signed with the same key: it acknowledges nothing.
    if claim.user_id.starts_with(CSAT_PREFIX) {
        return Err(refused(LinkError::Forged));
    }
    match state.store.is_spent(&ack_nonce(&claim)).await {
        Ok(false) => Ok(claim),
        Ok(true) => Err(used_link()),
        Err(error) => Err(try_again(&error)),
    }
}

async fn incident(state: &AppState, id: i64) -> Result<Incident, Response> {
    match state.store.incident(id).await {
        Ok(Some(incident)) => Ok(incident),
        Ok(None) => Err(link_page::message(
            StatusCode::GONE,
            "No such incident",
            &format!("Incident #{id} no longer exists."),
        )),
        Err(error) => Err(try_again(&error)),
    }
}

fn refused(error: LinkError) -> Response {
    match error {
        LinkError::Forged => {
            link_page::message(StatusCode::FORBIDDEN, "Link refused", &error.to_string())
        }
        LinkError::Expired => {
            link_page::message(StatusCode::GONE, "Link expired", &error.to_string())
        }
    }
}

fn used_link() -> Response {
    link_page::message(
        StatusCode::GONE,
        "Link already used",
        "This link was already used. The incident stays as it is; see it on the dashboard.",
    )
}

/// The cause goes to the log, not to whoever holds the link.
fn try_again(error: &dyn std::fmt::Display) -> Response {
    tracing::warn!(%error, "an email link could not be served");
    link_page::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "Tocsin cannot reach its database right now. Nothing was changed: open the link again in a minute.",
    )
}

/// `GET /csat/{token}?score=1..5`: the five scores as buttons, the one picked in the
/// email first in bold; records nothing.
pub async fn csat_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (claim, _) = match csat_claim(&state, &token).await {
        Ok(claim) => claim,
        Err(refusal) => return refusal,
    };
    let incident = match incident(&state, claim.incident_id).await {
        Ok(incident) => incident,
        Err(refusal) => return refusal,
    };
    let picked = score_in(query.as_deref().unwrap_or_default().as_bytes());
    let buttons: Vec<Button> = (1..=5)
        .zip(CSAT_LABELS)
        .map(|(score, label)| Button {
            label: format!("{score} – {label}"),
            field: Some(("score", score.to_string())),
            picked: picked == Some(score),
        })
        .collect();
    link_page::form(
        "How did we do?",
        &[format!(
            "How satisfied are you with how incident #{} ({}) was handled? Press one score to send it.",
            incident.id, incident.title
        )],
        &buttons,
    )
}

/// `POST /csat/{token}` with `score` (form field, else the link's own `?score=`):
/// records a stakeholder's satisfaction. The first answer counts.
pub async fn csat_answer(
    State(state): State<AppState>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (claim, address) = match csat_claim(&state, &token).await {
        Ok(claim) => claim,
        Err(refusal) => return refusal,
    };
    let score = score_in(&body).or_else(|| score_in(query.as_deref()?.as_bytes()));
    let Some(score) = score else {
        return link_page::message(
            StatusCode::BAD_REQUEST,
            "Pick a score",
            "Open the link from the email again and press one of the five scores (1 to 5).",
        );
    };
    match state
        .store
        .record_csat(claim.incident_id, &address, score, state.clock.now())
        .await
    {
        Ok(true) => link_page::message(
            StatusCode::OK,
            "Thank you",
            &format!(
                "Your answer ({score}/5) on incident #{} is recorded.",
                claim.incident_id
            ),
        ),
        Ok(false) => already_answered(),
        Err(error) => try_again(&error),
    }
}

/// A valid, unexpired, unanswered satisfaction link's claim and address, or the page
/// refusing it.
async fn csat_claim(state: &AppState, token: &str) -> Result<(AckClaim, String), Response> {
    let claim = state
        .links
        .verify(token, state.clock.now())
        .map_err(refused)?;
    // An acknowledge link is signed with the same key: it is no survey answer.
    let Some(address) = claim.user_id.strip_prefix(CSAT_PREFIX).map(str::to_string) else {
        return Err(refused(LinkError::Forged));
    };
    match state.store.csat_answered(claim.incident_id, &address).await {
        Ok(false) => Ok((claim, address)),
        Ok(true) => Err(already_answered()),
        Err(error) => Err(try_again(&error)),
    }
}

fn already_answered() -> Response {
    link_page::message(
        StatusCode::GONE,
        "Already answered",
        "Your first answer is the one that counts. Thank you.",
    )
}

fn score_in(form: &[u8]) -> Option<i64> {
    form_urlencoded::parse(form)
        .find(|(key, _)| key == "score")
        .and_then(|(_, value)| value.parse::<i64>().ok())
        .filter(|score| (1..=5).contains(score))
}

/// Twilio posts `From` and `Body` as a form; other gateways JSON `{"from", "body"}`.
#[derive(Debug, Deserialize)]
struct Inbound {
    #[serde(alias = "From")]
    from: String,
    #[serde(alias = "Body")]
    body: String,
    /// Twilio's id of the message: a signed request replayed carries the same one.
    #[serde(skip)]
    message_sid: Option<String>,
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
            "reply ACK <id> to acknowledge, RES <id> to resolve or APPROVE <id> to run the runbooks waiting for approval",
        )
    })?;
    let id = paged_incident(&state, &user.id, reply.incident()).await?;
    let actor = format!("{} (sms)", user.id);
    let (action, verb) = match reply {
        Reply::Acknowledge(_) => (Action::Acknowledge { note: None }, "acknowledged"),
        Reply::Resolve(_) => (Action::Resolve { note: None }, "resolved"),
        Reply::Approve(_) => {
            let approved =
                approve_waiting(&state, id, &actor, inbound.message_sid.as_deref()).await?;
            return Ok((StatusCode::OK, approved).into_response());
        }
    };
    let incident = match &inbound.message_sid {
        // Spent in the act's own commit: a signed request captured and sent again
        // (a bare "R" would resolve whatever paged the phone last) acts no more.
        Some(sid) => state
            .pipeline
            .act_once(id, action, &actor, &format!("twilio:{sid}"))
            .await
            .map_err(|error| match error {
                PipelineError::Spent => ApiError::new(
                    StatusCode::GONE,
                    "already handled",
                    format!(
                        "Twilio message {sid} was already acted on; send a new reply to act again"
                    ),
                ),
                error => error.into(),
            })?,
        None => state.pipeline.act(id, action, &actor).await?,
    };
    Ok((
        StatusCode::OK,
        format!("Incident #{} {verb} by {}", incident.id, user.id),
    )
        .into_response())
}

/// `APPROVE <id>`: every runbook run waiting for approval on the incident starts.
async fn approve_waiting(
    state: &AppState,
    id: i64,
    actor: &str,
    message_sid: Option<&str>,
) -> Result<String, ApiError> {
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
    let names: Vec<String> = waiting.iter().map(|run| run.runbook.clone()).collect();
    // All or none, and a signed message once: a replay approves nothing.
    let once = message_sid.map(|sid| format!("twilio:{sid}"));
    let run_ids = state
        .pipeline
        .approve_runbooks(id, names.clone(), actor, once)
        .await
        .map_err(|error| match error {
            PipelineError::Spent => ApiError::new(
                StatusCode::GONE,
                "already handled",
                "this message was already acted on; send a new reply to act again",
            ),
            error => error.into(),
        })?;
    let started: Vec<String> = waiting
        .iter()
        .zip(&run_ids)
        .map(|(run, run_id)| format!("{} on {} (run {run_id})", run.runbook, run.target))
        .collect();
    Ok(format!("Incident #{id}: approved {}", started.join(", ")))
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
    let message_sid = params
        .iter()
        .find(|(name, _)| name == "MessageSid")
        .map(|(_, sid)| sid.clone());
    Ok(Inbound {
        message_sid,
        ..inbound_from_form(params)?
    })
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
        (Some(from), Some(body)) => Ok(Inbound {
            from,
            body,
            message_sid: None,
        }),
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
        assert_eq!(parse_reply("approve 12"), Some(Reply::Approve(Some(12))));
    }
}
