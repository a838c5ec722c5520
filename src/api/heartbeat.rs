//! `POST /api/v1/heartbeat/{name}`: a dead-man's switch check-in.

use super::AppState;
use super::error::ApiError;
use crate::config::Role;
use crate::webhook_auth::{presented_token, same_secret};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// Accepts the heartbeat's own token when it has one; otherwise any ingest source
/// token or an API token with the responder role.
pub async fn check_in(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let config = state.config.load_full();
    let heartbeat = config
        .heartbeats
        .iter()
        .find(|beat| beat.name == name)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "heartbeat {name:?} is not configured; add a [[heartbeats]] entry"
            ))
        })?;
    let token = presented_token(&headers, query.as_deref()).unwrap_or_default();
    let allowed = match &heartbeat.token {
        Some(expected) => same_secret(&token, expected),
        None => {
            config
                .sources
                .values()
                .filter_map(|s| s.token.as_deref())
                .any(|t| same_secret(&token, t))
                || config
                    .api_tokens
                    .iter()
                    .any(|t| t.role >= Role::Responder && same_secret(&token, &t.token))
        }
    };
    if !allowed {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong token",
            "send the heartbeat's token as Bearer or ?token=",
        ));
    }
    state.pipeline.beat(&name).await?;
    let now = state.clock.now();
    Ok(Json(json!({
        "name": name,
        "last_seen": crate::clock::rfc3339(now),
        "due_by": crate::clock::rfc3339(now + heartbeat.interval + heartbeat.grace),
    })))
}
