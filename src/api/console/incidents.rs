//! The console's incident pages: the list (filters by status, priority, source and
//! text; newest first, a page at a time) and one incident whole — alerts and labels,
//! timeline, SLA countdowns, links, recent changes — with its actions.

use super::session::Session;
use super::{Fields, api_error, page_error, relative, render, session_json};
use crate::api::AppState;
use crate::api::alerts::alert_json;
use crate::api::incidents::incident_json;
use crate::clock::rfc3339;
use crate::config::Role;
use crate::incident::{Incident, IncidentStatus};
use crate::pipeline::Action;
use crate::store::{AlertQuery, IncidentQuery};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Incidents per page of the list.
const PAGE: usize = 25;
/// Rows read per store query while filtering by source or text.
const SCAN: i64 = 200;
/// At most this many incidents are read for one page of a filtered list.
const SCAN_LIMIT: usize = 5000;

/// The list's query string, as its filter form sends it.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    before: Option<i64>,
}

impl ListQuery {
    fn matches(&self, incident: &Incident) -> bool {
        let text = self.q.trim().to_lowercase();
        (self.source.is_empty() || incident.source == self.source)
            && (text.is_empty()
                || [
                    &incident.title,
                    &incident.summary,
                    &incident.resource,
                    &incident.check,
                ]
                .iter()
                .any(|field| field.to_lowercase().contains(&text)))
    }

    /// The query string of the next page.
    fn next(&self, before: i64) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("status", &self.status)
            .append_pair("priority", &self.priority)
            .append_pair("source", &self.source)
            .append_pair("q", &self.q)
            .append_pair("before", &before.to_string())
            .finish()
    }
}

/// `GET /ui/incidents`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Response {
    let statuses = match crate::api::list_filter(
        Some(&query.status),
        "status",
        &["triggered", "acknowledged", "resolved"],
    ) {
        Ok(statuses) => statuses,
        Err(error) => return api_error(error),
    };
    let priorities = match crate::api::priority_filter(Some(&query.priority)) {
        Ok(priorities) => priorities,
        Err(error) => return api_error(error),
    };
    // Source and text are filtered here, over the newest rows, so the store keeps one
    // list query; a page reads at most SCAN_LIMIT incidents.
    let mut found = Vec::new();
    let mut before_id = query.before;
    let mut scanned = 0;
    let mut exhausted = false;
    while found.len() <= PAGE && scanned < SCAN_LIMIT {
        let rows = match state
            .store
            .incidents(&IncidentQuery {
                statuses: statuses.clone(),
                priorities: priorities.clone(),
                before_id,
                limit: SCAN,
                ..IncidentQuery::default()
            })
            .await
        {
            Ok(rows) => rows,
            Err(error) => return api_error(error.into()),
        };
        scanned += rows.len();
        // A short read was the end of the table.
        let more_rows = i64::try_from(rows.len()).is_ok_and(|n| n == SCAN);
        before_id = rows.last().map(|incident| incident.id);
        found.extend(rows.into_iter().filter(|incident| query.matches(incident)));
        if !more_rows {
            exhausted = true;
            break;
        }
    }
    // A page cut short by the scan limit goes on from where the scan stopped.
    let resume = (!exhausted && found.len() <= PAGE)
        .then(|| before_id.map(|id| query.next(id)))
        .flatten();
    let more = found.len() > PAGE;
    found.truncate(PAGE);
    let now = state.clock.now();
    let rows: Vec<Value> = found
        .iter()
        .map(|incident| {
            let mut row = incident_json(incident, &[], now);
            row["created"] = relative(incident.created_at, now).into();
            row["sla"] = sla_text(incident, now).into();
            row
        })
        .collect();
    let next = more
        .then(|| found.last().map(|incident| query.next(incident.id)))
        .flatten()
        .or(resume);
    let selected = |value: &str, list: &str| list.split(',').any(|item| item == value);
    let statuses: Vec<Value> = ["triggered", "acknowledged", "resolved"]
        .iter()
        .map(|s| json!({ "value": s, "selected": selected(s, &query.status) }))
        .collect();
    let priorities: Vec<Value> = ["P1", "P2", "P3", "P4"]
        .iter()
        .map(|p| json!({ "value": p, "selected": selected(p, &query.priority) }))
        .collect();
    let context = json!({
        "title": "Incidents",
        "session": session_json(&session),
        "live": true,
        "incidents": rows,
        "next": next,
        "q": query.q,
        "source": query.source,
        "statuses": statuses,
        "priorities": priorities,
    });
    render("incidents", StatusCode::OK, &context)
}

/// What the SLA says now: the next deadline, or that it was missed.
fn sla_text(incident: &Incident, now: DateTime<Utc>) -> String {
    if incident.status == IncidentStatus::Resolved {
        return "resolved".into();
    }
    if incident.on_hold {
        return "on hold".into();
    }
    let (what, due) = if incident.acknowledged_at.is_none() {
        ("ack", incident.response_due)
    } else {
        ("resolve", incident.resolve_due)
    };
    if due < now {
        format!("{what} overdue {}", relative(due, now))
    } else {
        format!("{what} due {}", relative(due, now))
    }
}

fn incident_id(text: &str) -> Result<i64, Box<Response>> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            Box::new(page_error(
                StatusCode::NOT_FOUND,
                "No such incident",
                &format!("{text:?} is not an incident number; open one from the list."),
            ))
        })
}

/// `GET /ui/incidents/{id}`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    match page(&state, &session, &id).await {
        Ok(response) | Err(response) => response,
    }
}

async fn page(state: &AppState, session: &Session, id: &str) -> Result<Response, Response> {
    let id = incident_id(id).map_err(|refused| *refused)?;
    let down = |error: crate::store::StoreError| api_error(error.into());
    let (incident, timeline) = state
        .store
        .incident_with_timeline(id)
        .await
        .map_err(down)?
        .ok_or_else(|| {
            page_error(
                StatusCode::NOT_FOUND,
                "No such incident",
                &format!("Incident #{id} does not exist; open one from the list."),
            )
        })?;
    let alerts = state
        .store
        .alerts(&AlertQuery {
            incident_id: Some(id),
            limit: 200,
            ..AlertQuery::default()
        })
        .await
        .map_err(down)?;
    let tickets = state.store.tickets(&[id]).await.map_err(down)?;
    let pending = state.store.pending_approvals(id).await.map_err(down)?;
    let changes = crate::api::changes::recent_for(state, &incident.resource, incident.created_at)
        .await
        .map_err(api_error)?;
    let now = state.clock.now();
    let config = state.config.load_full();
    let runnable: Vec<Value> = config
        .runbooks
        .iter()
        .filter(|runbook| {
            session.role >= Role::Admin || config.runbooks_enabled.contains(&runbook.name)
        })
        .map(|runbook| json!({ "name": runbook.name, "description": runbook.description, "params": runbook.params.keys().collect::<Vec<_>>() }))
        .collect();
    let open = incident.status != IncidentStatus::Resolved;
    let deadline = |due: DateTime<Utc>, met: Option<DateTime<Utc>>| {
        json!({
            "at": rfc3339(due),
            "text": match met {
                Some(at) if at <= due => format!("met, {} before the deadline", relative(due, at).trim_start_matches("in ")),
                Some(at) => format!("missed by {}", relative(at, due).trim_start_matches("in ")),
                None if incident.on_hold => "paused (on hold)".to_string(),
                None if due < now => format!("overdue since {}", relative(due, now)),
                None => relative(due, now),
            },
            "late": met.map_or(due < now, |at| at > due),
        })
    };
    let mut view = incident_json(&incident, &tickets, now);
    view["links"] = incident
        .links
        .iter()
        .filter(|link| link.url.starts_with("https://") || link.url.starts_with("http://"))
        .map(|link| json!({ "title": link.title, "url": link.url }))
        .collect();
    let context = json!({
        "title": format!("#{} {}", incident.id, incident.title),
        "session": session_json(session),
        "live": true,
        "now_ms": now.timestamp_millis(),
        "incident": view,
        "respond": deadline(incident.response_due, incident.acknowledged_at),
        "resolve": deadline(incident.resolve_due, incident.resolved_at),
        "can_ack": incident.status == IncidentStatus::Triggered,
        "open": open,
        "alerts": alerts.iter().map(|alert| {
            let mut row = alert_json(alert);
            row["label_list"] = alert.labels.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect();
            row
        }).collect::<Vec<_>>(),
        "timeline": timeline.iter().map(|entry| json!({
            "at": rfc3339(entry.at),
            "ago": relative(entry.at, now),
            "kind": entry.kind,
            "actor": entry.actor,
            "message": entry.message,
            // A runbook's output keeps its lines.
            "output": entry.kind.run_output().is_some_and(|output| !output.is_empty()) || entry.message.contains('\n'),
        })).collect::<Vec<_>>(),
        "changes": changes,
        "pending": pending.iter().map(|run| json!({ "runbook": run.runbook, "target": run.target, "due": run.approval_due.map(|due| relative(due, now)) })).collect::<Vec<_>>(),
        "runnable": if open { runnable } else { Vec::new() },
    });
    Ok(render("incident", StatusCode::OK, &context))
}

/// `POST /ui/incidents/{id}`: the action form (`action` = the button pressed, `note`).
pub async fn act(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    fields: Fields,
) -> Response {
    if let Err(refused) = session.authorize(&fields, Role::Responder) {
        return *refused;
    }
    let id = match incident_id(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let note = fields
        .get("note")
        .map(str::trim)
        .filter(|note| !note.is_empty())
        .map(str::to_string);
    if let Some(Err(why)) = note
        .as_deref()
        .map(|note| crate::api::incidents::check_note("note", note))
    {
        return page_error(StatusCode::BAD_REQUEST, "Invalid note", &why);
    }
    let action = match (fields.get("action").unwrap_or_default(), note) {
        ("ack", note) => Action::Acknowledge { note },
        ("resolve", note) => Action::Resolve { note },
        ("escalate", note) => Action::Escalate { note },
        ("hold", note) => Action::Hold { note },
        ("unhold", note) => Action::Unhold { note },
        ("note", Some(text)) => Action::Note { text },
        ("note", None) => {
            return page_error(
                StatusCode::BAD_REQUEST,
                "Empty note",
                "Write something in the note field, then press Add note.",
            );
        }
        (other, _) => {
            return page_error(
                StatusCode::BAD_REQUEST,
                "Unknown action",
                &format!("{other:?} is not an action; use the page's buttons."),
            );
        }
    };
    match state.pipeline.act(id, action, &session.actor).await {
        Ok(_) => Redirect::to(&format!("/ui/incidents/{id}")).into_response(),
        Err(error) => api_error(error.into()),
    }
}

/// `POST /ui/incidents/{id}/runbooks/{name}`: approve a pending run (`do=approve`) or
/// start one by hand (`do=run`, parameters as `param.<name>`), with the API's rules:
/// a runbook outside `[runbooks] enabled` needs an admin.
pub async fn runbook(
    State(state): State<AppState>,
    session: Session,
    Path((id, name)): Path<(String, String)>,
    fields: Fields,
) -> Response {
    if let Err(refused) = session.authorize(&fields, Role::Responder) {
        return *refused;
    }
    let id = match incident_id(&id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let outcome = if fields.get("do") == Some("approve") {
        state
            .pipeline
            .approve_runbook(id, &name, &session.actor)
            .await
    } else {
        let config = state.config.load_full();
        if !config.runbooks_enabled.contains(&name) && session.role < Role::Admin {
            return page_error(
                StatusCode::FORBIDDEN,
                "Not allowed",
                &format!(
                    "Runbook {name} is not in [runbooks] enabled: only an admin may run it by hand."
                ),
            );
        }
        let params: BTreeMap<String, String> = fields
            .prefixed("param.")
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        state
            .pipeline
            .run_runbook(&name, params, Some(id), &session.actor)
            .await
    };
    match outcome {
        Ok(_) => Redirect::to(&format!("/ui/incidents/{id}")).into_response(),
        Err(error) => api_error(error.into()),
    }
}
