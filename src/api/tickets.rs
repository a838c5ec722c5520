//! `POST /api/v1/tickets/{platform}/webhook`: what the helpdesk did to a ticket comes
//! back to its incident. The platform proves itself with its own signature or the
//! shared `webhook_secret` (see [`crate::ticket::authenticate`]), since helpdesks
//! cannot all send a bearer token; a responder API token is accepted too. Solved
//! resolves the incident; a more urgent priority raises it; a new assignee is noted.
//! A ticket Tocsin did not open is answered 200 and ignored, so the platform does not
//! retry or switch the webhook off.

use super::AppState;
use super::auth::find_token;
use super::error::ApiError;
use crate::config::Role;
use crate::incident::TransitionError;
use crate::pipeline::{Action, PipelineError};
use crate::ticket::{Platform, TicketEvent};
use crate::webhook_auth::presented_token;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// What a caller who proved nothing is told, whether or not the desk is configured.
const NOT_PROVEN: &str = "sign the webhook as its platform does, or send a responder API token";

/// The webhook.
pub async fn webhook(
    State(state): State<AppState>,
    Path(platform): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let config = state.config.load_full();
    let responder = presented_token(&headers, None)
        .and_then(|token| find_token(&config, &token))
        .is_some_and(|token| token.role >= Role::Responder);
    let settings = platform
        .parse::<Platform>()
        .ok()
        .and_then(|platform| config.tickets.iter().find(|t| t.platform == platform));
    let settings = match settings {
        Some(settings) => settings,
        // Nothing is looked up for a caller who has not proved anything.
        None if !responder => {
            return Err(unauthorized(NOT_PROVEN));
        }
        None => {
            return Err(ApiError::not_found(format!(
                "no [[tickets]] table for {platform:?}; configure zendesk, freshdesk, servicenow or jira first"
            )));
        }
    };
    if !responder {
        // A desk whose webhooks are off answers a stranger as one not configured
        // does: which desks exist is not told; the log says what to set.
        crate::ticket::authenticate(settings, &headers, &body, state.clock.now()).map_err(
            |error| match error {
                crate::ticket::WebhookError::Off(_) => {
                    tracing::warn!("{error}");
                    unauthorized(NOT_PROVEN)
                }
                error => unauthorized(error),
            },
        )?;
    }
    let event = crate::ticket::event(settings.platform, &body)
        .map_err(|why| ApiError::bad_request("invalid webhook", why.to_string()))?;
    let Some(incident_id) = state
        .store
        .ticket_incident(settings.platform, &event.ticket)
        .await?
    else {
        return Ok(Json(json!({
            "incident_id": null,
            "ignored": format!("{} ticket {} was not opened by Tocsin", settings.platform, event.ticket),
        })));
    };
    let done = apply(&state, settings.platform, incident_id, &event).await?;
    Ok(Json(json!({ "incident_id": incident_id, "applied": done })))
}

fn unauthorized(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why.to_string())
}

/// Carries out what changed on the incident; returns what was done. Platforms send
/// the ticket's whole state, so a priority equal to the incident's or the assignee
/// already noted changes nothing.
async fn apply(
    state: &AppState,
    platform: Platform,
    incident_id: i64,
    event: &TicketEvent,
) -> Result<Vec<&'static str>, ApiError> {
    let actor = platform.as_str();
    let ticket = &event.ticket;
    let mut done = Vec::new();
    if let Some(assignee) = &event.assignee
        && state
            .store
            .note_assignee(platform, ticket, assignee)
            .await?
    {
        let text = format!("{platform} ticket {ticket} assigned to {assignee}");
        act(state, incident_id, Action::Note { text }, actor).await?;
        done.push("noted assignee");
    }
    let current = state.store.incident(incident_id).await?.map(|i| i.priority);
    if let Some(priority) = event.priority
        && current.is_some_and(|current| current != priority)
    {
        let note = format!(
            "{platform} ticket {ticket} set to {priority}; the incident keeps its more urgent priority"
        );
        act(
            state,
            incident_id,
            Action::Reprioritize { priority, note },
            actor,
        )
        .await?;
        done.push("priority");
    }
    if event.solved {
        let note = Some(format!("{platform} ticket {ticket} was solved"));
        if act(state, incident_id, Action::Resolve { note }, actor).await? {
            done.push("resolved");
        }
    }
    Ok(done)
}

/// One action; false when the incident was already resolved (a platform echoing
/// Tocsin's own solve, or a late event), which is not an error.
async fn act(
    state: &AppState,
    incident_id: i64,
    action: Action,
    actor: &str,
) -> Result<bool, ApiError> {
    match state.pipeline.act(incident_id, action, actor).await {
        Ok(_) => Ok(true),
        Err(PipelineError::Transition(TransitionError::AlreadyResolved(_))) => Ok(false),
        Err(error) => Err(error.into()),
    }
}
