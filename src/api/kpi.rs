//! `GET /api/v1/kpi?from=&to=`: the KPIs of spec §6 (default: the last 7 days).

use super::AppState;
use super::error::ApiError;
use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::Value;

/// Query string.
#[derive(Debug, Deserialize)]
pub struct Window {
    from: Option<String>,
    to: Option<String>,
}

/// The handler.
pub async fn kpi(
    State(state): State<AppState>,
    Query(window): Query<Window>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let time = |name: &str, text: &Option<String>| -> Result<Option<DateTime<Utc>>, ApiError> {
        text.as_deref()
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|at| at.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::bad_request(
                            "invalid query",
                            format!("{name}: {text:?} is not an RFC 3339 time"),
                        )
                    })
            })
            .transpose()
    };
    // By default up to and including now: the window is half-open.
    let to = time("to", &window.to)?.unwrap_or(now + TimeDelta::milliseconds(1));
    let from = time("from", &window.from)?.unwrap_or(to - TimeDelta::days(7));
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid query",
            "from must be before to",
        ));
    }
    Ok(Json(
        crate::kpi::compute(state.store.as_ref(), from, to, now).await?,
    ))
}
