//! The alert queue: `GET /api/v1/alerts`, every alert with its count and incident.

use super::error::ApiError;
use super::{AppState, Page, page};
use crate::clock::rfc3339;
use crate::store::{AlertQuery, AlertRecord};
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

/// Query string of the list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    priority: Option<String>,
    source: Option<String>,
    resource: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/v1/alerts`.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let (limit, before_id) = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let statuses = super::list_filter(
        query.status.as_deref(),
        "status",
        &["firing", "resolved", "silenced", "inhibited"],
    )?;
    let priorities = super::priority_filter(query.priority.as_deref())?;
    let alerts = state
        .store
        .alerts(&AlertQuery {
            statuses,
            priorities,
            source: query.source,
            resource: query.resource,
            incident_id: None,
            before_id,
            limit: limit + 1,
        })
        .await?;
    Ok(Json(Page::of(alerts, limit, |a| a.id).to_json(alert_json)))
}

/// The alert fields of spec §6.
pub fn alert_json(alert: &AlertRecord) -> Value {
    json!({
        "id": alert.id,
        "source": alert.source,
        "dedup_key": alert.dedup_key,
        "resource": alert.resource,
        "check": alert.check,
        "severity": alert.severity.as_str(),
        "priority": alert.priority.as_str(),
        "status": alert.status.as_str(),
        "summary": alert.summary,
        "count": alert.count,
        "first_seen": rfc3339(alert.first_seen),
        "last_seen": rfc3339(alert.last_seen),
        "occurred_at": alert.occurred_at.map(rfc3339),
        "resolved_at": alert.resolved_at.map(rfc3339),
        "incident_id": alert.incident_id,
        "silenced": alert.silenced,
        "inhibited": alert.inhibited,
        "flapping": alert.flapping,
        "labels": alert.labels,
        "links": alert.links,
        "details": alert.details,
    })
}
