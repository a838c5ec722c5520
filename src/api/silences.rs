//! Maintenance windows: `GET/POST /api/v1/silences`, `DELETE /api/v1/silences/{id}`.

use super::AppState;
use super::auth::Actor;
use super::error::ApiError;
use super::idempotency::Idempotency;
use crate::clock::rfc3339;
use crate::pipeline::{NewSilence, SilenceChange};
use crate::silence::Silence;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    matchers: Vec<String>,
    #[serde(default)]
    starts_at: Option<String>,
    ends_at: String,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

fn time(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid body",
                format!("{field}: {text:?} is not an RFC 3339 time"),
            )
        })
}

/// `POST /api/v1/silences`: 201 `{"id"}`.
pub async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Idempotency(key): Idempotency,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: Body = crate::ingest::from_json(&body)
        .map_err(|error| ApiError::bad_request("invalid body", error.detail()))?;
    let texts = body.matchers.iter().map(|matcher| ("matchers", matcher));
    let optional = [("created_by", &body.created_by), ("comment", &body.comment)];
    let optional = optional
        .into_iter()
        .filter_map(|(field, text)| text.as_ref().map(|text| (field, text)));
    for (field, text) in texts.chain(optional) {
        crate::ingest::refuse_nul(field, text)
            .map_err(|error| ApiError::bad_request("invalid body", error.detail()))?;
    }
    let new = NewSilence {
        matchers: body.matchers,
        starts_at: body
            .starts_at
            .as_deref()
            .map(|text| time("starts_at", text))
            .transpose()?,
        ends_at: time("ends_at", &body.ends_at)?,
        // A name given for someone else keeps the token that made it beside it: the
        // list is what an audit reads.
        created_by: match body.created_by.filter(|c| !c.is_empty()) {
            Some(given) if given != actor.0 => format!("{given} (via {})", actor.0),
            Some(given) => given,
            None => actor.0,
        },
        comment: body.comment.unwrap_or_default(),
    };
    let silence = state
        .pipeline
        .keyed(key)
        .silence(SilenceChange::Add(new))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": silence.id }))))
}

/// `?limit=` and `?cursor=` of the silence list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/silences`: silences newest first, with their state, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let (limit, before_id) = super::page(query.limit.as_deref(), query.cursor.as_deref())?;
    let silences = state.store.silences(limit + 1, before_id).await?;
    Ok(Json(
        super::Page::of(silences, limit, |silence| silence.id)
            .to_json(|silence| silence_json(silence, now)),
    ))
}

/// `DELETE /api/v1/silences/{id}`: expires it now.
pub async fn expire(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id
        .parse::<i64>()
        .map_err(|_| ApiError::not_found(format!("silence {id:?} does not exist")))?;
    let silence = state.pipeline.silence(SilenceChange::Expire(id)).await?;
    Ok(Json(silence_json(&silence, state.clock.now())))
}

/// A silence as the API and the console show it.
pub fn silence_json(silence: &Silence, now: DateTime<Utc>) -> Value {
    json!({
        "id": silence.id,
        "matchers": silence.matchers,
        "starts_at": rfc3339(silence.starts_at),
        "ends_at": rfc3339(silence.ends_at),
        "created_by": silence.created_by,
        "comment": silence.comment,
        "created_at": rfc3339(silence.created_at),
        "state": silence.state(now),
    })
}
