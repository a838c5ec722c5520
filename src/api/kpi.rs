//! `GET /api/v1/kpi?from=&to=`: the KPIs of spec §6 (default: the last 7 days).

use super::AppState;
use super::error::ApiError;
use crate::store::{IncidentQuery, Store, StoreError};
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
    let to = time("to", &window.to)?.unwrap_or(now);
    let from = time("from", &window.from)?.unwrap_or(to - TimeDelta::days(7));
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid query",
            "from must be before to",
        ));
    }
    Ok(Json(compute(state.store.as_ref(), from, to, now).await?))
}

/// The KPI report of `[from, to)` as seen at `now` (also used by the weekly report).
pub async fn compute(
    store: &dyn Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let created = store
        .incidents(&IncidentQuery {
            created_from: Some(from),
            created_to: Some(to),
            limit: i64::MAX,
            ..IncidentQuery::default()
        })
        .await?;
    let open = store
        .incidents(&IncidentQuery {
            statuses: vec!["triggered".into(), "acknowledged".into()],
            limit: i64::MAX,
            ..IncidentQuery::default()
        })
        .await?;
    Ok(crate::kpi::report(&created, &open, from, to, now))
}
