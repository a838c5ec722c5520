//! `POST /api/v1/drills/{name}/run`: a paging drill started by hand.

use super::AppState;
use super::auth::Actor;
use super::error::ApiError;
use super::idempotency::Idempotency;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Starts the drill now: 201 `{"incident_id", "drill"}`, or 404 for an unknown name.
pub async fn run(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Idempotency(key): Idempotency,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let incident = state.pipeline.keyed(key).drill(&name, &actor.0).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "incident_id": incident.id, "drill": name })),
    ))
}
