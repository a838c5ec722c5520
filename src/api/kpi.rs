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
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Window {
    /// `[from, to)`; by default the `span` up to and including now.
    pub fn resolve(
        &self,
        now: DateTime<Utc>,
        span: TimeDelta,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
        let to = time("to", &self.to)?.unwrap_or(now + TimeDelta::milliseconds(1));
        let from = time("from", &self.from)?.unwrap_or(to - span);
        if from >= to {
            return Err(ApiError::bad_request(
                "invalid query",
                "from must be before to",
            ));
        }
        Ok((from, to))
    }
}

fn time(name: &str, text: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.as_deref()
        .map(|text| super::query_time(name, text))
        .transpose()
}

/// The handler.
pub async fn kpi(
    State(state): State<AppState>,
    Query(window): Query<Window>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let (from, to) = window.resolve(now, TimeDelta::days(7))?;
    Ok(Json(
        crate::report::read::kpis(state.store.as_ref(), from, to, now).await?,
    ))
}
