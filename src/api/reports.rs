//! `GET /api/v1/reports/monthly?month=2026-11&format=html|csv`: the monthly service
//! review, the same as the `[reports.monthly]` email (default: the last complete month).

use super::AppState;
use super::error::ApiError;
use crate::report::ReportError;
use crate::report::monthly;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Query string.
#[derive(Debug, Deserialize)]
pub struct MonthlyQuery {
    month: Option<String>,
    format: Option<String>,
}

/// The handler.
pub async fn monthly(
    State(state): State<AppState>,
    Query(query): Query<MonthlyQuery>,
) -> Result<Response, ApiError> {
    let csv = match query.format.as_deref() {
        None | Some("html") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid query",
                format!("format: {other:?} is not html or csv"),
            ));
        }
    };
    let config = state.config.load();
    let now = state.clock.now();
    let month = query.month.unwrap_or_else(|| monthly::last_month(now));
    let model = match monthly::review(state.store.as_ref(), &config, &month, now).await {
        Ok(model) => model,
        Err(ReportError::Store(error)) => return Err(error.into()),
        Err(error) => return Err(ApiError::bad_request("invalid query", error.to_string())),
    };
    let rendered = if csv {
        monthly::csv(&model)
    } else {
        monthly::html(&state.templates, &model)
    };
    let body = rendered.map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot render the review",
            error.to_string(),
        )
    })?;
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "text/html; charset=utf-8"
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}
