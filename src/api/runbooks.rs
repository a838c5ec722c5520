//! `GET /api/v1/runbooks` (with their last runs), `POST /api/v1/runbooks/{name}/run`
//! (a run started by hand; an admin's for a runbook not in `[runbooks] enabled`) and
//! `POST /api/v1/incidents/{id}/runbooks/{name}/approve` (a proposed run approved).

use super::AppState;
use super::auth::Actor;
use super::error::ApiError;
use super::idempotency::Idempotency;
use crate::clock::rfc3339;
use crate::config::Role;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Runs listed per runbook.
const LAST_RUNS: i64 = 10;

/// The list.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut items = Vec::new();
    let config = state.config.load_full();
    for runbook in &config.runbooks {
        let runs = state.store.runbook_runs(&runbook.name, LAST_RUNS).await?;
        let last_runs: Vec<Value> = runs
            .iter()
            .map(|run| {
                json!({
                    "id": run.id,
                    "incident_id": run.incident_id,
                    "trigger": run.trigger,
                    "actor": run.actor,
                    "target": run.target,
                    "params": run.params,
                    "status": run.status,
                    "exit_code": run.exit_code,
                    "started_at": rfc3339(run.started_at),
                    "finished_at": run.finished_at.map(rfc3339),
                    "output": run.output,
                })
            })
            .collect();
        items.push(json!({
            "name": runbook.name,
            "description": runbook.description,
            "params": runbook.params.keys().collect::<Vec<_>>(),
            "on_success": format!("{:?}", runbook.on_success).to_lowercase(),
            "enabled": config.runbooks_enabled.contains(&runbook.name),
            "approval": format!("{:?}", runbook.approval).to_lowercase(),
            "last_runs": last_runs,
        }));
    }
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Default, Deserialize)]
struct RunBody {
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    incident_id: Option<i64>,
}

/// Start a run: 202 `{"run_id"}`, or 400 naming the parameter that failed its pattern.
pub async fn run(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Idempotency(key): Idempotency,
    Extension(role): Extension<Role>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: RunBody = if body.iter().all(u8::is_ascii_whitespace) {
        RunBody::default()
    } else {
        crate::ingest::from_json(&body)
            .map_err(|error| ApiError::bad_request("invalid body", error.detail()))?
    };
    let config = state.config.load_full();
    let exists = config.runbooks.iter().any(|runbook| runbook.name == name);
    if exists && !config.runbooks_enabled.contains(&name) && role < Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient role",
            format!(
                "runbook {name} is not in [runbooks] enabled: only an admin token may run it by hand (or add it to the list)"
            ),
        ));
    }
    let run_id = state
        .pipeline
        .keyed(key)
        .run_runbook(&name, body.params, body.incident_id, &actor.0)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id }))))
}

/// `POST /api/v1/incidents/{id}/runbooks/{name}/approve`: a run waiting for a
/// responder's approval starts; 202 `{"run_id"}`.
pub async fn approve(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((id, name)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::not_found(format!(
            "incident {id:?} does not exist: ids are positive integers"
        ))
    })?;
    let run_id = state.pipeline.approve_runbook(id, &name, &actor.0).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id }))))
}
