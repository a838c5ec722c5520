//! Incidents: list, detail with alerts and timeline, and the actions of a responder
//! (acknowledge, resolve, notes). Actions go through the pipeline so they are ordered
//! with ingest and committed before the answer.

use super::alerts::alert_json;
use super::auth::Actor;
use super::error::ApiError;
use super::idempotency::Idempotency;
use super::{AppState, Page, page};
use crate::clock::rfc3339;
use crate::incident::Incident;
use crate::pipeline::{Action, IdempotencyKey};
use crate::store::tickets::Ticket;
use crate::store::{AlertQuery, IncidentQuery};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// Query string of the list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    priority: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/incidents`.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let (limit, before_id) = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let statuses = super::list_filter(
        query.status.as_deref(),
        "status",
        &["triggered", "acknowledged", "resolved"],
    )?;
    let priorities = super::priority_filter(query.priority.as_deref())?;
    let incidents = state
        .store
        .incidents(&IncidentQuery {
            statuses,
            priorities,
            before_id,
            limit: limit + 1,
            ..IncidentQuery::default()
        })
        .await?;
    let ids: Vec<i64> = incidents.iter().map(|i| i.id).collect();
    let tickets = state.store.tickets(&ids).await?;
    let now = state.clock.now();
    Ok(Json(
        Page::of(incidents, limit, |i| i.id).to_json(|i| incident_json(i, &tickets, now)),
    ))
}

/// `GET /api/v1/incidents/{id}`: the incident with its alerts and timeline.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = incident_id(&id)?;
    let (incident, timeline) = state
        .store
        .incident_with_timeline(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("incident {id} does not exist")))?;
    let alerts = state
        .store
        .alerts(&AlertQuery {
            incident_id: Some(id),
            limit: 1000,
            ..AlertQuery::default()
        })
        .await?;
    let tickets = state.store.tickets(&[id]).await?;
    let mut body = incident_json(&incident, &tickets, state.clock.now());
    body["recent_changes"] =
        super::changes::recent_for(&state, &incident.resource, incident.created_at)
            .await?
            .into();
    body["alerts"] = alerts.iter().map(alert_json).collect();
    body["timeline"] = timeline
        .iter()
        .map(|e| json!({ "at": rfc3339(e.at), "kind": e.kind, "actor": e.actor, "message": e.message, "data": e.kind.data() }))
        .collect();
    Ok(Json(body))
}

/// Longest note, in characters: a note is a line on the timeline, in pages and
/// chat messages; a log belongs in a link.
const MAX_NOTE_CHARS: usize = 4096;

/// Optional body of `/ack` and `/resolve`. A field it does not know is refused: a
/// misspelt `notes` would otherwise act and drop the note without a word.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: Option<String>,
    text: Option<String>,
}

/// A note as the timeline takes it, from the API or the console: no NUL character,
/// at most [`MAX_NOTE_CHARS`]; else what to change.
pub fn check_note(field: &str, text: &str) -> Result<(), String> {
    crate::ingest::refuse_nul(field, text).map_err(|error| error.detail())?;
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(format!(
            "{field}: is over {MAX_NOTE_CHARS} characters; keep a note short and link to anything longer"
        ));
    }
    Ok(())
}

fn note_body(body: &Bytes) -> Result<NoteBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(NoteBody::default());
    }
    let body: NoteBody = crate::ingest::from_json(body)
        .map_err(|error| ApiError::bad_request("invalid body", error.detail()))?;
    for (field, text) in [("note", &body.note), ("text", &body.text)] {
        if let Some(text) = text {
            check_note(field, text).map_err(|why| ApiError::bad_request("invalid body", why))?;
        }
    }
    Ok(body)
}

/// `POST /api/v1/incidents/{id}/ack`.
pub async fn acknowledge(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Idempotency(key): Idempotency,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    noted(&state, &actor, key, &id, &body, |note| {
        Action::Acknowledge { note }
    })
    .await
}

/// `POST /api/v1/incidents/{id}/resolve`.
pub async fn resolve(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Idempotency(key): Idempotency,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    noted(&state, &actor, key, &id, &body, |note| Action::Resolve {
        note,
    })
    .await
}

/// `POST /api/v1/incidents/{id}/escalate`: page the next tier now.
pub async fn escalate(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Idempotency(key): Idempotency,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    noted(&state, &actor, key, &id, &body, |note| Action::Escalate {
        note,
    })
    .await
}

/// `POST /api/v1/incidents/{id}/hold`: pause the SLA clock.
pub async fn hold(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Idempotency(key): Idempotency,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    noted(&state, &actor, key, &id, &body, |note| Action::Hold {
        note,
    })
    .await
}

/// `POST /api/v1/incidents/{id}/unhold`: restart it.
pub async fn unhold(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Idempotency(key): Idempotency,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    noted(&state, &actor, key, &id, &body, |note| Action::Unhold {
        note,
    })
    .await
}

/// `POST /api/v1/incidents/{id}/notes` with `{"text": "…"}` (or `note`).
pub async fn add_note(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Idempotency(key): Idempotency,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = incident_id(&id)?;
    let body = note_body(&body)?;
    let text = body
        .text
        .or(body.note)
        .filter(|text| !text.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid body",
                "text: is required, e.g. {\"text\": \"restarted the pod\"}",
            )
        })?;
    act(&state, id, Action::Note { text }, &actor, key).await
}

/// The actions whose body is an optional `{"note": "…"}`.
async fn noted(
    state: &AppState,
    actor: &Actor,
    key: Option<IdempotencyKey>,
    id: &str,
    body: &Bytes,
    action: fn(Option<String>) -> Action,
) -> Result<Json<Value>, ApiError> {
    let id = incident_id(id)?;
    let body = note_body(body)?;
    act(state, id, action(body.note.or(body.text)), actor, key).await
}

async fn act(
    state: &AppState,
    id: i64,
    action: Action,
    actor: &Actor,
    key: Option<IdempotencyKey>,
) -> Result<Json<Value>, ApiError> {
    let incident = state.pipeline.keyed(key).act(id, action, &actor.0).await?;
    let tickets = state.store.tickets(&[id]).await?;
    Ok(Json(incident_json(&incident, &tickets, state.clock.now())))
}

fn incident_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "incident {text:?} does not exist: ids are positive integers"
            ))
        })
}

/// The incident fields of spec §6 and §10, with the tickets among `tickets` that are
/// this incident's.
pub fn incident_json(incident: &Incident, tickets: &[Ticket], now: DateTime<Utc>) -> Value {
    let tickets: Vec<Value> = tickets
        .iter()
        .filter(|ticket| ticket.incident_id == incident.id)
        .map(Ticket::to_json)
        .collect();
    json!({
        "id": incident.id,
        "title": incident.title,
        "priority": incident.priority.as_str(),
        "status": incident.status.as_str(),
        "created_at": rfc3339(incident.created_at),
        "acknowledged_at": incident.acknowledged_at.map(rfc3339),
        "resolved_at": incident.resolved_at.map(rfc3339),
        "alert_count": incident.alert_count,
        "escalation_level": incident.escalation_level,
        "response_due": rfc3339(incident.response_due),
        "resolve_due": rfc3339(incident.resolve_due),
        "sla_breached": incident.sla_breached(now),
        "flapping": incident.flapping,
        "on_hold": incident.on_hold,
        "source": incident.source,
        "resource": incident.resource,
        "check": incident.check,
        "summary": incident.summary,
        "tickets": tickets,
        "links": incident.links,
    })
}
