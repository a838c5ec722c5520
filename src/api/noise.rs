//! `GET /api/v1/noise?from=&to=&self_heal_minutes=`: the noisiest alerts and the
//! paging load (default: the last 30 days, self-healing within 10 minutes).

use super::AppState;
use super::error::ApiError;
use super::kpi::Window;
use axum::Json;
use axum::extract::{Query, State};
use chrono::TimeDelta;
use serde::Deserialize;
use serde_json::Value;

/// Query string.
#[derive(Debug, Deserialize)]
pub struct NoiseQuery {
    from: Option<String>,
    to: Option<String>,
    self_heal_minutes: Option<i64>,
}

/// The handler.
pub async fn noise(
    State(state): State<AppState>,
    Query(query): Query<NoiseQuery>,
) -> Result<Json<Value>, ApiError> {
    let window = Window {
        from: query.from,
        to: query.to,
    };
    let (from, to) = window.resolve(state.clock.now(), TimeDelta::days(30))?;
    let minutes = query.self_heal_minutes.unwrap_or(10);
    if !(1..=1440).contains(&minutes) {
        return Err(ApiError::bad_request(
            "invalid query",
            format!("self_heal_minutes: {minutes} is not between 1 and 1440"),
        ));
    }
    let report =
        crate::noise::analyse(state.store.as_ref(), from, to, TimeDelta::minutes(minutes)).await?;
    Ok(Json(report))
}
