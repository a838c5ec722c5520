//! The console's on-call page: who is on call now and next on each schedule, whom
//! each policy's tiers would page now — the same report as `GET /api/v1/oncall` — and
//! the override form ("I take this shift for …"): a row in the store, mirrored into the
//! directory that paging reads, so the next page goes to the person who took it.

use super::session::Session;
use super::{Fields, page_error, relative, render, session_json};
use crate::api::AppState;
use crate::config::Role;
use crate::store::console::OverrideRow;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

/// The lengths the override form offers.
const LENGTHS: [&str; 7] = ["1h", "4h", "8h", "12h", "1d", "3d", "1w"];

/// `GET /ui/oncall`.
pub async fn show(State(state): State<AppState>, session: Session) -> Response {
    let now = state.clock.now();
    let mut report = crate::oncall::report::report(&state.config.load().directory, now);
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
    let config = state.config.load();
    // A responder takes shifts for themselves; an admin assigns anyone.
    let users: Vec<_> = config
        .directory
        .users
        .values()
        .filter(|user| session.role >= Role::Admin || user.id == session.actor)
        .map(|user| json!({ "id": user.id, "name": user.name, "me": user.id == session.actor }))
        .collect();
    let context = json!({
        "title": "On call",
        "session": session_json(&session),
        "schedules": report["schedules"],
        "policies": report["policies"],
        "users": users,
        "lengths": LENGTHS,
    });
    render("oncall", StatusCode::OK, &context)
}

/// `POST /ui/oncall`: `schedule`, `user` and `length` — that user takes the schedule
/// from now for that long.
pub async fn take(State(state): State<AppState>, session: Session, fields: Fields) -> Response {
    if let Err(refused) = session.authorize(&fields, Role::Responder) {
        return *refused;
    }
    let config = state.config.load_full();
    let schedule = fields.get("schedule").unwrap_or_default();
    let user = fields.get("user").unwrap_or_default();
    if session.role < Role::Admin && user != session.actor {
        return page_error(
            StatusCode::FORBIDDEN,
            "Not your shift to give",
            &format!(
                "A responder takes shifts for themselves only, and this session is {:?}, not {user:?}. Sign in with the API token named after your [[users]] id, or ask an admin, who may assign anyone.",
                session.actor
            ),
        );
    }
    let length = fields.get("length").unwrap_or_default();
    let problem = if !config.directory.schedules.contains_key(schedule) {
        Some(format!(
            "{schedule:?} is not a schedule; pick one from the list."
        ))
    } else if !config.directory.users.contains_key(user) {
        Some(format!(
            "{user:?} is not a user of [[users]]; pick one from the list."
        ))
    } else if !LENGTHS.contains(&length) {
        Some(format!(
            "Pick how long you take the shift: one of {}.",
            LENGTHS.join(", ")
        ))
    } else {
        None
    };
    let length = crate::clock::parse_duration(length).ok();
    let (None, Some(length)) = (problem.as_ref(), length) else {
        return page_error(
            StatusCode::BAD_REQUEST,
            "Cannot take that shift",
            problem.as_deref().unwrap_or("Pick a length from the list."),
        );
    };
    let now = state.clock.now();
    let row = OverrideRow {
        id: 0,
        schedule: schedule.to_string(),
        user_id: user.to_string(),
        starts_at: now,
        ends_at: now + length,
        created_by: session.actor.clone(),
    };
    let written = match state.store.add_override(&row, now).await {
        Ok(_) => state
            .store
            .overrides(now)
            .await
            .map(|rows| config.directory.stored.replace(rows)),
        Err(error) => Err(error),
    };
    match written {
        Ok(()) => {
            tracing::info!(schedule, user, by = %session.actor, "on-call override taken");
            // The dashboard and other consoles show who is on call: tell them.
            let _ = state.changes.send(());
            Redirect::to("/ui/oncall").into_response()
        }
        Err(error) => super::api_error(error.into()),
    }
}
