//! Operations endpoints: liveness, readiness (the store answers) and metrics.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::time::Duration;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when the store answers within two seconds and every
/// background task runs, else 503.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if let Some(reason) = state.fatal.reason() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "ready": false, "detail": reason })),
        );
    }
    let answer = tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await;
    match answer {
        Ok(Ok(())) => (StatusCode::OK, Json(serde_json::json!({ "ready": true }))),
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: the store refused the ping");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({ "ready": false, "detail": "the store does not answer; the log says why" }),
                ),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                serde_json::json!({ "ready": false, "detail": "the store did not answer within 2s" }),
            ),
        ),
    }
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// `POST /-/reload` (admin): reads the configuration file again; a bad one is refused
/// with every error and the running one stays.
pub async fn reload(State(state): State<AppState>) -> impl IntoResponse {
    match crate::reload::reload(
        &state.config,
        state.config_path.get().map(std::path::PathBuf::as_path),
    ) {
        Ok(note) => (
            StatusCode::OK,
            Json(serde_json::json!({ "reloaded": true, "detail": note })),
        ),
        Err(errors) => (
            StatusCode::BAD_REQUEST,
            Json(
                serde_json::json!({ "error": "the configuration has errors; the running one stays", "detail": errors.to_string() }),
            ),
        ),
    }
}

/// `GET /api/v1/openapi.json`: the API description kept in `docs/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../docs/openapi.json"),
    )
}
