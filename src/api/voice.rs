//! Twilio's voice callbacks at `POST /api/v1/voice/twilio`: the digit gathered on a
//! paging call (1 acknowledges, 9 escalates) and, with `event=status`, how the call
//! ended. Only requests Twilio signed with the `[voice]` auth token are taken. A call
//! that was not answered, or heard without a digit, is a failed delivery: the user's
//! next channel is queued at once, and the next tier follows on its timer.

use super::AppState;
use super::error::ApiError;
use super::twilio;
use crate::incident::{IncidentStatus, Message, TimelineEntry, TimelineKind};
use crate::notify::outbox::{describe, fallback};
use crate::oncall::Channel;
use crate::pipeline::{Action, PipelineError};
use crate::store::paging::{Notification, NotificationKind};
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `POST /api/v1/voice/twilio?incident=&user=&step=[&event=status]`.
pub async fn twilio(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let voice = config.chat.voice.as_ref().ok_or_else(|| {
        ApiError::not_found("voice calls are off: add a [voice] section (see docs/channels.md)")
    })?;
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let signature = headers
        .get(twilio::SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let path = uri
        .path_and_query()
        .map_or(uri.path(), |path| path.as_str());
    if !twilio::verify(
        &voice.auth_token,
        &format!("{}{path}", config.public_url),
        &params,
        signature,
    ) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad signature",
            "X-Twilio-Signature is missing or does not match: check [voice] auth_token, and that server.public_url is the start of the URL Twilio posts to",
        ));
    }
    let query: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let get = |pairs: &[(String, String)], name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let incident_id: i64 = get(&query, "incident").parse().map_err(|_| {
        ApiError::bad_request(
            "no incident",
            "the callback URL names no incident; it is set by Tocsin when it places the call",
        )
    })?;
    let user = config
        .directory
        .users
        .get(&get(&query, "user"))
        .ok_or_else(|| ApiError::not_found("the called user is no longer in [[users]]"))?;
    let page = Notification {
        id: 0,
        incident_id,
        user_id: user.id.clone(),
        channel: Channel::Voice,
        address: user.phone.clone().unwrap_or_default(),
        kind: NotificationKind::Page,
        step: get(&query, "step"),
        attempts: 0,
        due_at: state.clock.now(),
        deadline: state.clock.now(),
    };
    if get(&query, "event") == "status" {
        let status = get(&params, "CallStatus");
        if matches!(
            status.as_str(),
            "busy" | "no-answer" | "failed" | "canceled"
        ) {
            unanswered(
                &state,
                &page,
                &get(&params, "CallSid"),
                &format!("the call was not answered ({status})"),
            )
            .await?;
        }
        return Ok(twiml("<Response/>".to_string()));
    }
    let once = format!("twilio-call:{}", get(&params, "CallSid"));
    let actor = format!("{} (voice)", user.id);
    let (action, done) = match get(&params, "Digits").as_str() {
        "1" => (Action::Acknowledge { note: None }, "acknowledged"),
        "9" => (
            Action::Escalate { note: None },
            "escalated to the next tier",
        ),
        _ => {
            unanswered(
                &state,
                &page,
                &get(&params, "CallSid"),
                "no digit was pressed",
            )
            .await?;
            return Ok(say(
                "Nothing was pressed. Tocsin will try your next channel. Goodbye.",
            ));
        }
    };
    let said = match state
        .pipeline
        .act_once(incident_id, action, &actor, &once)
        .await
    {
        Ok(incident) => format!("Incident {} {done}. Goodbye.", incident.id),
        Err(PipelineError::Spent) => "This call was already answered. Goodbye.".to_string(),
        Err(error @ PipelineError::Unavailable(_)) => return Err(error.into()),
        Err(error) => format!("Nothing was changed: {error}. Goodbye."),
    };
    Ok(say(&said))
}

/// Records the failed call and queues the user's next channel, while the incident
/// still waits for someone; once per call, however often Twilio repeats its callback.
async fn unanswered(
    state: &AppState,
    page: &Notification,
    call: &str,
    why: &str,
) -> Result<(), ApiError> {
    let incident = state.store.incident(page.incident_id).await?;
    if incident.is_none_or(|incident| incident.status != IncidentStatus::Triggered) {
        return Ok(());
    }
    let recorded = format!("twilio-unanswered:{call}");
    if state.store.is_spent(&recorded).await? {
        return Ok(());
    }
    let now = state.clock.now();
    let next = fallback(&state.config.load(), page, now);
    let also = next.as_ref().map_or(String::new(), |next| {
        format!("; also trying {}", next.channel)
    });
    let entry = TimelineEntry {
        incident_id: page.incident_id,
        at: now,
        kind: TimelineKind::NotificationFailed(Message {
            channel: "voice".into(),
            user: page.user_id.clone(),
            step: page.step.clone(),
            notification: None,
        }),
        actor: "tocsin".into(),
        message: format!("{} failed: {why}{also}", describe(page)),
    };
    state.store.append_timeline(&[entry]).await?;
    if let Some(next) = next {
        state
            .store
            .queue_notifications(std::slice::from_ref(&next))
            .await?;
        state.store.bring_forward(&next).await?;
    }
    // Spent last: a failure above leaves the callback to be recorded on Twilio's retry.
    state.store.spend_key(&recorded, now).await?;
    state
        .metrics
        .notifications
        .with_label_values(&["voice", "failed"])
        .inc();
    Ok(())
}

fn say(text: &str) -> Response {
    twiml(format!("<Response><Say>{text}</Say><Hangup/></Response>"))
}

fn twiml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}
