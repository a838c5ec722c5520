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
/// token or an API token with the responder role. The caller is checked before the
/// name, so heartbeat names are not told to whoever asks.
pub async fn check_in(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let config = state.config.load_full();
    let token = presented_token(&headers, query.as_deref()).unwrap_or_default();
    let heartbeat = config.heartbeats.iter().find(|beat| beat.name == name);
    let general = || {
        config
            .sources
            .values()
            .filter_map(|s| s.token.as_deref())
            .any(|t| same_secret(&token, t))
            || config
                .api_tokens
                .iter()
                .any(|t| t.role >= Role::Responder && same_secret(&token, &t.token))
    };
    let allowed = match heartbeat.and_then(|beat| beat.token.as_deref()) {
        Some(expected) => same_secret(&token, expected),
        None if heartbeat.is_some() => general(),
        None => {
            general()
                || config
                    .heartbeats
                    .iter()
                    .filter_map(|beat| beat.token.as_deref())
                    .any(|t| same_secret(&token, t))
        }
    };
    if !allowed {
        // Known but not enough: a viewer's token where any responder token would do.
        let own_token = heartbeat.is_some_and(|beat| beat.token.is_some());
        let viewer = !own_token
            && config
                .api_tokens
                .iter()
                .any(|t| t.role < Role::Responder && same_secret(&token, &t.token));
        return Err(if viewer {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient role",
                "a heartbeat takes its own token, an ingest token or a responder API token; this token's role is viewer",
            )
        } else {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong token",
                "send the heartbeat's token as Bearer or ?token=",
            )
        });
    }
    let heartbeat = heartbeat.ok_or_else(|| {
        ApiError::not_found(format!(
            "heartbeat {name:?} is not configured; add a [[heartbeats]] entry"
        ))
    })?;
    state.pipeline.beat(&name).await?;
    let now = state.clock.now();
    Ok(Json(json!({
        "name": name,
        "last_seen": crate::clock::rfc3339(now),
        "due_by": crate::clock::rfc3339(now + heartbeat.interval + heartbeat.grace),
    })))
}
