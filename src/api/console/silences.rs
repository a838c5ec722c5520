//! The console's silences: the list (newest first) with an Expire button, and a form
//! that creates one, its matchers pre-filled from an alert's fields and labels and its
//! length picked from a few durations. Changes go through the pipeline, as the API's.

use super::session::Session;
use super::{Fields, api_error, page_error, render, session_json};
use crate::api::AppState;
use crate::config::Role;
use crate::pipeline::{NewSilence, SilenceChange};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// The lengths the form offers.
const DURATIONS: [&str; 5] = ["1h", "4h", "12h", "1d", "1w"];

/// `GET /ui/silences`.
pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    page(&state, &session, None, Vec::new(), StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub struct NewQuery {
    alert: Option<i64>,
}

/// `GET /ui/silences/new?alert=ID`: the list with the form filled from that alert.
pub async fn new(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<NewQuery>,
) -> Response {
    let mut matchers = Vec::new();
    if let Some(id) = query.alert {
        match state.store.alert(id).await {
            Ok(Some(alert)) => {
                let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
                matchers.push(format!("source={}", quote(&alert.source)));
                matchers.push(format!("resource={}", quote(&alert.resource)));
                matchers.push(format!("check={}", quote(&alert.check)));
                // A label whose name a matcher cannot spell (a sender may send
                // `a b` or an empty name) is left out; source, resource and check
                // already single the alert out.
                let spellable = |name: &str| {
                    !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                };
                for (name, value) in alert.labels.iter().filter(|(name, _)| spellable(name)) {
                    matchers.push(format!("labels.{name}={}", quote(value)));
                }
            }
            Ok(None) => {
                return page_error(
                    StatusCode::NOT_FOUND,
                    "No such alert",
                    &format!("Alert {id} does not exist; start from an incident's alert list."),
                );
            }
            Err(error) => return api_error(error.into()),
        }
    }
    page(&state, &session, query.alert, matchers, StatusCode::OK).await
}

async fn page(
    state: &AppState,
    session: &Session,
    alert: Option<i64>,
    matchers: Vec<String>,
    status: StatusCode,
) -> Response {
    let now = state.clock.now();
    let silences = match state.store.silences(100, None).await {
        Ok(silences) => silences,
        Err(error) => return api_error(error.into()),
    };
    let rows: Vec<Value> = silences
        .iter()
        .map(|silence| {
            let mut row = crate::api::silences::silence_json(silence, now);
            row["active"] = json!(silence.state(now) != "expired");
            row
        })
        .collect();
    let context = json!({
        "title": "Silences",
        "session": session_json(session),
        "silences": rows,
        "alert": alert,
        "matchers": matchers.join("\n"),
        "durations": DURATIONS,
    });
    render("silences", status, &context)
}

/// `POST /ui/silences`: `matchers` (one per line), `duration`, `comment`.
pub async fn create(State(state): State<AppState>, session: Session, fields: Fields) -> Response {
    if let Err(refused) = session.authorize(&fields, Role::Responder) {
        return *refused;
    }
    let matchers: Vec<String> = fields
        .get("matchers")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    let duration = fields.get("duration").unwrap_or_default();
    let Some(length) = DURATIONS
        .contains(&duration)
        .then(|| crate::clock::parse_duration(duration).ok())
        .flatten()
    else {
        return page_error(
            StatusCode::BAD_REQUEST,
            "Pick a duration",
            &format!(
                "Choose how long the silence lasts: one of {}.",
                DURATIONS.join(", ")
            ),
        );
    };
    for text in matchers
        .iter()
        .map(String::as_str)
        .chain(fields.get("comment"))
    {
        if let Err(error) = crate::ingest::refuse_nul("matchers", text) {
            return page_error(StatusCode::BAD_REQUEST, "Invalid silence", &error.detail());
        }
    }
    let new = NewSilence {
        matchers,
        starts_at: None,
        ends_at: state.clock.now() + length,
        created_by: session.actor.clone(),
        comment: fields.get("comment").unwrap_or_default().to_string(),
    };
    match state.pipeline.silence(SilenceChange::Add(new)).await {
        Ok(_) => Redirect::to("/ui/silences").into_response(),
        Err(error) => api_error(error.into()),
    }
}

/// `POST /ui/silences/{id}/expire`.
pub async fn expire(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    fields: Fields,
) -> Response {
    if let Err(refused) = session.authorize(&fields, Role::Responder) {
        return *refused;
    }
    match state.pipeline.silence(SilenceChange::Expire(id)).await {
        Ok(_) => Redirect::to("/ui/silences").into_response(),
        Err(error) => api_error(error.into()),
    }
}
