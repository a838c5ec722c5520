//! Change events: `POST /v2/change/enqueue` (PagerDuty's change events, as its
//! clients send them), `POST /api/v1/changes` (a CI pipeline's curl) and
//! `GET /api/v1/changes`. They are stored as they come; incidents show the recent ones.

use super::auth::find_token;
use super::error::ApiError;
use super::{AppState, Page, page};
use crate::change::Change;
use crate::clock::rfc3339;
use crate::config::Role;
use crate::ingest::SourceKind;
use crate::ingest::changes;
use crate::store::ChangeQuery;
use crate::webhook_auth::{presented_token, same_secret};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /v2/change/enqueue`: authenticated as the PagerDuty sender (its token as a
/// header, `?token=` or the body's `routing_key`); answers as PagerDuty does.
pub async fn enqueue(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let config = state.config.load_full();
    let source = config.sources.get(&SourceKind::Pagerduty).ok_or_else(|| {
        ApiError::not_found(
            "add a [sources.pagerduty] table with a token to the config to accept PagerDuty change events",
        )
    })?;
    let matches = |given: Option<&str>| match (&source.token, given) {
        (None, _) => true,
        (Some(expected), Some(given)) => same_secret(given, expected),
        (Some(_), None) => false,
    };
    let header_ok =
        presented_token(&headers, query.as_deref()).is_some_and(|token| matches(Some(&token)));
    let event = changes::pagerduty(&body, state.clock.now());
    let routing_ok = match &event {
        Ok(event) => matches(event.routing_key.as_deref()),
        Err(_) => matches(super::ingest::routing_key_of(&body).as_deref()),
    };
    if !header_ok && !routing_ok {
        return Err(unauthorized(
            "the [sources.pagerduty] token (as routing_key, Bearer or ?token=)",
        ));
    }
    limit_sender(&state, SourceKind::Pagerduty)?;
    json_only(&headers)?;
    let event = event.map_err(|error| ApiError::bad_request("invalid event", error.detail()))?;
    refuse_unscoped(&event.change, false)?;
    state
        .store
        .record_change(&event.change, state.clock.now())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "success", "message": "Change event processed" })),
    ))
}

/// Change events are JSON: any other declared type is 415, as on the ingest routes.
fn json_only(headers: &HeaderMap) -> Result<(), ApiError> {
    match super::ingest::declared_type(headers) {
        Some(declared) if !super::ingest::is_json(&declared) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type",
            format!("Content-Type {declared:?} cannot be read here; send application/json"),
        )),
        _ => Ok(()),
    }
}

/// `POST /api/v1/changes`: a sender's ingest token or a responder's API token.
pub async fn create(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let config = state.config.load_full();
    let token = presented_token(&headers, query.as_deref()).ok_or_else(|| {
        unauthorized("an ingest token of any [sources.X] or a responder API token")
    })?;
    let senders: Vec<SourceKind> = config
        .sources
        .iter()
        .filter(|(_, source)| {
            source
                .token
                .as_deref()
                .is_some_and(|expected| same_secret(&token, expected))
        })
        .map(|(kind, _)| *kind)
        .collect();
    let api_token = find_token(&config, &token);
    let responder = api_token.is_some_and(|found| found.role >= Role::Responder);
    if !responder {
        if senders.is_empty() && api_token.is_some() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient role",
                "recording a change takes an ingest token of any [sources.X] or a responder API token; this token's role is viewer",
            ));
        }
        if senders.is_empty() {
            return Err(unauthorized(
                "an ingest token of any [sources.X] or a responder API token",
            ));
        }
        // A sender's changes count toward its alerts' rate (of every source its token
        // is), since each is a write.
        for kind in senders {
            limit_sender(&state, kind)?;
        }
    }
    json_only(&headers)?;
    let change = changes::tocsin(&body, state.clock.now())
        .map_err(|error| ApiError::bad_request("invalid body", error.detail()))?;
    refuse_unscoped(&change, responder)?;
    let id = state
        .store
        .record_change(&change, state.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

/// A change naming no resource shows on every incident's page for its window: only
/// a person (a responder token) may say that, not a sender's token, which would
/// otherwise put its text and link into every page email.
fn refuse_unscoped(change: &Change, responder: bool) -> Result<(), ApiError> {
    if change.resource.is_some() || responder {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "resource required",
        "name the resource the change is about (resource, or payload.source for PagerDuty); a change of everything needs a responder API token",
    ))
}

/// A sender's `[sources.X] rate_limit`, which its change events share with its alerts.
fn limit_sender(state: &AppState, kind: SourceKind) -> Result<(), ApiError> {
    if !state.over_rate(kind) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate limit exceeded",
        format!(
            "[sources.{kind}] rate_limit is reached (alerts and change events together); retry after a second"
        ),
    ))
}

fn unauthorized(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing or wrong token",
        format!("send {what} as Authorization: Bearer <token>"),
    )
}

/// `?resource=&since=&limit=&cursor=` of the change list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    resource: Option<String>,
    since: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/changes`: newest first; `resource` keeps the changes of that resource
/// and those naming none.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let (limit, before_id) = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let since = match query.since.as_deref() {
        None => now - state.config.load().changes.retention,
        Some(text) => super::query_time("since", text)?,
    };
    let changes = state
        .store
        .changes(&ChangeQuery {
            since,
            until: DateTime::<Utc>::MAX_UTC,
            resource: query.resource.filter(|r| !r.is_empty()),
            before_id,
            limit: limit + 1,
        })
        .await?;
    Ok(Json(
        Page::of(changes, limit, |change| change.id).to_json(change_json),
    ))
}

/// A change as the API, emails and the dashboard show it.
pub fn change_json(change: &Change) -> Value {
    json!({
        "id": change.id,
        "source": change.source,
        "summary": change.summary,
        "resource": change.resource,
        "at": rfc3339(change.at),
        "links": change.links,
        "details": change.details,
    })
}

/// The changes an incident on `resource` opened at `opened_at` may be explained by.
pub async fn recent_for(
    state: &AppState,
    resource: &str,
    opened_at: DateTime<Utc>,
) -> Result<Vec<Value>, ApiError> {
    let window = state.config.load().changes.window;
    let changes = state
        .store
        .changes(&ChangeQuery::explaining(resource, opened_at, window))
        .await?;
    Ok(changes
        .iter()
        .filter(|change| change.explains(resource, opened_at, window))
        .map(change_json)
        .collect())
}
