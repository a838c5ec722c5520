//! The console's on-call page: who is on call now and next on each schedule, and
//! whom each policy's tiers would page now — the same report as `GET /api/v1/oncall`.

use super::session::Session;
use super::{relative, render, session_json};
use crate::api::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

/// `GET /ui/oncall`.
pub async fn show(State(state): State<AppState>, session: Session) -> Response {
    let now = state.clock.now();
    let mut report = crate::api::oncall::report(&state.config.load(), now);
    if let Some(schedules) = report["schedules"].as_array_mut() {
        for schedule in schedules {
            for shift in ["now", "next"] {
                let end = schedule[shift]["end"]
                    .as_str()
                    .and_then(|end| chrono::DateTime::parse_from_rfc3339(end).ok());
                if let Some(end) = end {
                    schedule[shift]["ends"] = relative(end.to_utc(), now).into();
                }
            }
        }
    }
    let context = json!({
        "title": "On call",
        "session": session_json(&session),
        "schedules": report["schedules"],
        "policies": report["policies"],
    });
    render("oncall", StatusCode::OK, &context)
}
