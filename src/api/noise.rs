//! `GET /api/v1/noise?from=&to=&self_heal_minutes=&time_zone=`: the noisiest alerts
//! and the paging load (default: the last 30 days, self-healing within 10 minutes,
//! night hours in the team's time zone).

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
    self_heal_minutes: Option<String>,
    time_zone: Option<String>,
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
    let minutes = match query.self_heal_minutes {
        None => 10,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|minutes| (1..=1440).contains(minutes))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid query",
                    format!("self_heal_minutes: {text:?} is not a whole number from 1 to 1440"),
                )
            })?,
    };
    let time_zone = match query.time_zone {
        None => crate::report::monthly::team_time_zone(&state.config.load()),
        Some(name) => name.parse().map_err(|_| {
            ApiError::bad_request(
                "invalid query",
                format!("time_zone: {name:?} is not an IANA name such as Europe/Paris"),
            )
        })?,
    };
    let self_heal = TimeDelta::minutes(minutes);
    let report =
        crate::noise::analyse(state.store.as_ref(), from, to, self_heal, time_zone).await?;
    Ok(Json(report))
}
