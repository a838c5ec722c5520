//! The live dashboard at `GET /`: server-rendered with Handlebars (templates
//! `dashboard.html.hbs` and `dashboard_panel.html.hbs`, compiled in, overridable), a
//! small inline script for SLA countdowns, and server-sent events
//! (`GET /api/v1/stream`) that make the page fetch a fresh panel after every change.
//! No external asset: it works offline and on a phone. Off loopback it needs a viewer
//! token (SPEC §11) unless `[dashboard] public = true`.

use super::AppState;
use super::auth::find_token;
use super::error::ApiError;
use crate::clock::rfc3339;
use crate::incident::Incident;
use crate::sla::SlaFlags;
use crate::store::tickets::Ticket;
use crate::store::{AlertQuery, IncidentQuery};
use crate::webhook_auth::presented_token;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use chrono::{TimeDelta, Timelike};
use serde_json::{Value, json};
use std::convert::Infallible;

/// Middleware: a private dashboard needs an API token (any role) as Bearer, or a
/// session: the console's (`/ui/login`), or the dashboard's own, which a token given
/// once as `?token=` on the page opens, so the page's own requests (panel, live
/// stream) need no token in their URLs and the cookie never holds the token itself.
pub async fn access(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    use super::console::session::{COOKIE, DASHBOARD_COOKIE, current, open};
    let config = state.config.load_full();
    if config.dashboard_public() {
        return Ok(next.run(request).await);
    }
    let from_query = presented_token(&HeaderMap::new(), request.uri().query())
        .filter(|token| find_token(&config, token).is_some());
    let bearer = presented_token(request.headers(), None)
        .is_some_and(|token| find_token(&config, &token).is_some());
    let unavailable =
        |_| ApiError::unavailable("the session store did not answer; reload in a moment");
    let mut signed_in = false;
    if !bearer {
        for name in [COOKIE, DASHBOARD_COOKIE] {
            if !signed_in {
                signed_in = current(&state, request.headers(), name)
                    .await
                    .map_err(unavailable)?
                    .is_some();
            }
        }
    }
    if !bearer && from_query.is_none() && !signed_in {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "dashboard needs a token",
            "sign in at /ui/login, or open /?token=<an API token> once (any role), or set [dashboard] public = true",
        ));
    }
    // Only the page opens a session: its panel and stream would otherwise store one
    // more for every request that carries the token.
    let page = request.uri().path() == "/";
    let mut response = next.run(request).await;
    if let Some(token) = from_query.filter(|_| page && !signed_in) {
        match open(&state, &config, &token, DASHBOARD_COOKIE).await {
            Ok(cookie) => {
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                }
            }
            Err(_) => {
                return Err(ApiError::unavailable(
                    "the session could not be stored; reload in a moment",
                ));
            }
        }
    }
    Ok(response)
}

/// `GET /`.
pub async fn page(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let panel = render_panel(&state).await?;
    let html = state
        .templates
        .render("dashboard.html", &json!({ "panel": panel }))
        .map_err(|error| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "template error",
                error.to_string(),
            )
        })?;
    Ok(Html(html))
}

/// `GET /dashboard/panel`: the part of the page that changes.
pub async fn panel(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Html(render_panel(&state).await?))
}

/// `GET /api/v1/stream`: a `change` event after every committed change.
pub async fn stream(
    State(state): State<AppState>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.changes.subscribe();
    // The stream ends when Tocsin stops, or a stop would wait for every open page.
    let closing = state.closing.subscribe();
    let events = futures_util::stream::unfold(
        (receiver, closing),
        |(mut receiver, mut closing)| async move {
            let next = tokio::select! {
                _ = closing.wait_for(|closing| *closing) => None,
                next = receiver.recv() => Some(next),
            };
            match next? {
                // Missed changes collapse into one: the page refetches everything anyway.
                Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some((
                    Ok(Event::default().event("change").data("1")),
                    (receiver, closing),
                )),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

async fn render_panel(state: &AppState) -> Result<String, ApiError> {
    let now = state.clock.now();
    let open = state
        .store
        .incidents(&IncidentQuery {
            statuses: vec!["triggered".into(), "acknowledged".into()],
            limit: 200,
            ..IncidentQuery::default()
        })
        .await?;
    let mut open_sorted = open.clone();
    open_sorted.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.id.cmp(&a.id)));
    let resolved: Vec<Incident> = state
        .store
        .incidents(&IncidentQuery {
            statuses: vec!["resolved".into()],
            limit: 20,
            ..IncidentQuery::default()
        })
        .await?
        .into_iter()
        .filter(|i| {
            i.resolved_at
                .is_some_and(|at| now - at < TimeDelta::hours(24))
        })
        .collect();
    let queue = state
        .store
        .alerts(&AlertQuery { statuses: vec!["firing".into()], limit: 200, ..AlertQuery::default() })
        .await?
        .into_iter()
        .filter(|alert| alert.incident_id.is_none())
        .take(20)
        .map(|alert| json!({ "priority": alert.priority.as_str(), "check": alert.check, "resource": alert.resource, "summary": alert.summary, "count": alert.count }))
        .collect::<Vec<_>>();
    let on_call = crate::oncall::report::report(&state.config.load().directory, now);
    let oncall = on_call["schedules"].clone();
    // Without schedules, who a page reaches first is each policy's first tier.
    let first_tiers: Vec<Value> = crate::oncall::report::first_tiers(&on_call)
        .into_iter()
        .map(|(policy, level, users)| json!({ "policy": policy, "level": level, "users": users.join(", ") }))
        .collect();
    let start_of_day = now - TimeDelta::seconds(i64::from(now.num_seconds_from_midnight()));
    let today = crate::report::read::kpis(
        state.store.as_ref(),
        start_of_day,
        now + TimeDelta::seconds(1),
        now,
    )
    .await?;
    let week = crate::report::read::kpis(
        state.store.as_ref(),
        now - TimeDelta::days(7),
        now + TimeDelta::seconds(1),
        now,
    )
    .await?;
    let ids: Vec<i64> = open_sorted.iter().chain(&resolved).map(|i| i.id).collect();
    let tickets = state.store.tickets(&ids).await?;
    let mut runs = Vec::new();
    for runbook in &state.config.load().runbooks {
        runs.extend(state.store.runbook_runs(&runbook.name, 5).await?);
    }
    runs.sort_by_key(|run| std::cmp::Reverse(run.started_at));
    // What changed lately, next to what broke: the first question of an incident.
    let changes = state
        .store
        .changes(&crate::change::ChangeQuery {
            since: now - state.config.load().changes.window,
            until: now,
            resource: None,
            before_id: None,
            limit: 10,
        })
        .await?;
    let context = json!({
        "changes": changes.iter().map(super::changes::change_json).collect::<Vec<_>>(),
        "open_count": open_sorted.len(),
        "open": open_sorted.iter().map(|i| incident_row(i, &tickets)).collect::<Vec<_>>(),
        "resolved": resolved.iter().map(|i| incident_row(i, &tickets)).collect::<Vec<_>>(),
        "queue": queue,
        "oncall": oncall,
        "first_tiers": first_tiers,
        "today": figures(&today["overall"]),
        "week": figures(&week["overall"]),
        "runs": runs.iter().take(8).map(|run| json!({ "runbook": run.runbook, "status": run.status, "target": run.target, "started_at": rfc3339(run.started_at) })).collect::<Vec<_>>(),
    });
    state
        .templates
        .render("dashboard_panel.html", &context)
        .map_err(|error| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "template error",
                error.to_string(),
            )
        })
}

fn incident_row(incident: &Incident, tickets: &[Ticket]) -> Value {
    let tickets: Vec<Value> = tickets
        .iter()
        .filter(|ticket| ticket.incident_id == incident.id)
        .map(Ticket::to_json)
        .collect();
    json!({
        "links": incident.links,
        "tickets": tickets,
        "id": incident.id,
        "priority": incident.priority.as_str(),
        "title": incident.title,
        "summary": incident.summary,
        "status": incident.status.as_str(),
        "escalation_level": incident.escalation_level,
        "on_hold": incident.on_hold,
        "acknowledged_at": incident.acknowledged_at.map(rfc3339),
        "resolved_at": incident.resolved_at.map(rfc3339),
        "response_due": rfc3339(incident.response_due),
        "resolve_due": rfc3339(incident.resolve_due),
        "response_breached": incident.sla_flags & SlaFlags::RESPONSE_BREACHED != 0,
        "resolve_breached": incident.sla_flags & SlaFlags::RESOLVE_BREACHED != 0,
    })
}

/// The dashboard shows percentages and human durations.
fn figures(kpi: &Value) -> Value {
    json!({
        "incidents": kpi["incidents"],
        "mtta": crate::kpi::duration(&kpi["mtta_seconds"]),
        "mttr": crate::kpi::duration(&kpi["mttr_seconds"]),
        "response": crate::kpi::percent(&kpi["sla_response_compliance"]),
        "resolve": crate::kpi::percent(&kpi["sla_resolve_compliance"]),
        "fcr": crate::kpi::percent(&kpi["fcr_rate"]),
        "auto": crate::kpi::percent(&kpi["auto_remediation_rate"]),
    })
}
