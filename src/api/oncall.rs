//! `GET /api/v1/oncall`: who is on call now and next, per schedule, and whom each
//! policy's tiers would page now.

use super::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::Value;

/// The handler.
pub async fn oncall(State(state): State<AppState>) -> Json<Value> {
    Json(crate::oncall::report::report(
        &state.config.load().directory,
        state.clock.now(),
    ))
}
