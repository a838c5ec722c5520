//! The approve link of a page (`/approve/{token}`), for a runbook that waits for a
//! responder's approval. `GET` only shows what the link does, with one button, since
//! mail scanners fetch every link in a mail; `POST` approves.

use super::AppState;
use super::error::ApiError;
use crate::notify::ack_link::{ApprovalClaim, LinkError};
use crate::pipeline::PipelineError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// `GET /approve/{token}`: names the runbook and the incident; changes nothing.
pub async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let claim = match verify(&state, &token) {
        Ok(claim) => claim,
        Err(error) => return refused(error),
    };
    let waiting = match state.store.pending_approvals(claim.incident_id).await {
        Ok(waiting) => waiting,
        Err(error) => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                &error.to_string(),
                false,
            );
        }
    };
    let Some(run) = waiting.iter().find(|run| run.runbook == claim.runbook) else {
        return page(
            StatusCode::GONE,
            "Nothing to approve",
            &format!(
                "Runbook {} no longer waits for approval on incident #{}: it was approved, expired or the incident was resolved.",
                claim.runbook, claim.incident_id
            ),
            false,
        );
    };
    page(
        StatusCode::OK,
        &format!("Approve runbook {}?", claim.runbook),
        &format!(
            "Runbook {} ({}) waits for approval on incident #{}. Approving runs it now, as {}.",
            claim.runbook, run.target, claim.incident_id, claim.user_id
        ),
        true,
    )
}

/// `POST /approve/{token}`: the run starts.
pub async fn approve(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let claim = match verify(&state, &token) {
        Ok(claim) => claim,
        Err(error) => return refused(error),
    };
    let actor = format!("{} (email link)", claim.user_id);
    match state
        .pipeline
        .approve_runbook(claim.incident_id, &claim.runbook, &actor)
        .await
    {
        Ok(run_id) => page(
            StatusCode::OK,
            "Approved",
            &format!(
                "Runbook {} started on incident #{} (run {run_id}); its result goes on the incident's timeline.",
                claim.runbook, claim.incident_id
            ),
            false,
        ),
        Err(error @ PipelineError::NotPossible(_)) => {
            page(StatusCode::GONE, "Not approved", &error.to_string(), false)
        }
        Err(error) => {
            let error = ApiError::from(error);
            page(error.status, "Not approved", &error.detail, false)
        }
    }
}

fn verify(state: &AppState, token: &str) -> Result<ApprovalClaim, LinkError> {
    state.links.verify_approval(token, state.clock.now())
}

fn refused(error: LinkError) -> Response {
    match error {
        LinkError::Forged => page(
            StatusCode::FORBIDDEN,
            "Link refused",
            &error.to_string(),
            false,
        ),
        LinkError::Expired => page(
            StatusCode::GONE,
            "Link expired",
            "This approval link has expired: the run was not approved in time. Start the runbook from the API or the CLI if it is still needed.",
            false,
        ),
    }
}

/// A small page; with `button`, a form that posts back to the same URL.
fn page(status: StatusCode, title: &str, message: &str, button: bool) -> Response {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let form = if button {
        "<form method=\"post\"><button type=\"submit\" style=\"padding:10px 18px\">Approve</button></form>"
    } else {
        ""
    };
    let body = format!(
        "<!doctype html><html><head><meta name=\"viewport\" content=\"width=device-width\"><title>{0}</title></head>\
         <body style=\"font-family:sans-serif;margin:2em\"><h1>{0}</h1><p>{1}</p>{form}</body></html>",
        escape(title),
        escape(message)
    );
    (status, Html(body)).into_response()
}
