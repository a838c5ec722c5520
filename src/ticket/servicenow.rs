//! ServiceNow, Table API on the `incident` table: Basic auth `{user}:{token}`; create
//! with `POST /api/now/table/incident`, work notes and resolve with
//! `PATCH /api/now/table/incident/{sys_id}` (`state` 6, Resolved, with a close code).
//! The priority is ServiceNow's own, derived from impact and urgency, so those are set.

use super::{Call, Opening, TicketConfig, TicketEvent, first};
use crate::alert::Priority;
use reqwest::Method;
use serde_json::{Value, json};

/// ServiceNow's incident state Resolved; 7 is Closed.
const RESOLVED: &str = "6";
/// `short_description` is a 160-character field.
const SHORT_DESCRIPTION: usize = 160;

/// `(impact, urgency)`, which the default priority lookup turns into 1 Critical,
/// 2 High, 3 Moderate and 4 Low.
pub fn impact_urgency(priority: Priority) -> (&'static str, &'static str) {
    match priority {
        Priority::P1 => ("1", "1"),
        Priority::P2 => ("1", "2"),
        Priority::P3 => ("2", "2"),
        Priority::P4 => ("2", "3"),
    }
}

fn from_priority(word: &str) -> Option<Priority> {
    match word.trim().chars().next()? {
        '1' => Some(Priority::P1),
        '2' => Some(Priority::P2),
        '3' => Some(Priority::P3),
        '4' | '5' => Some(Priority::P4),
        _ => None,
    }
}

pub fn create(config: &TicketConfig, opening: &Opening<'_>) -> Call {
    let incident = opening.incident;
    let (impact, urgency) = impact_urgency(incident.priority);
    let mut record = json!({
        "short_description": opening.subject.chars().take(SHORT_DESCRIPTION).collect::<String>(),
        "description": opening.description,
        "impact": impact,
        "urgency": urgency,
        "correlation_id": super::marker(incident.id),
        "correlation_display": "Tocsin",
    });
    if let Some(group) = &config.group {
        record["assignment_group"] = json!(group);
    }
    if let Some(caller) = &config.requester {
        record["caller_id"] = json!(caller);
    }
    Call::new(Method::POST, "/api/now/table/incident".into(), record)
}

/// `(number, sys_id)`: people know INC0010001, the API addresses the sys_id.
/// Looks for the incident an earlier create opened by its `correlation_id`, before
/// a retry whose first answer was lost opens a second one.
pub fn find(incident_id: i64) -> Call {
    Call::get(format!(
        "/api/now/table/incident?sysparm_query=correlation_id%3D{}&sysparm_limit=1",
        super::marker(incident_id)
    ))
}

/// `(number, sys_id)` of the incident [`find`] found.
pub fn found(answer: &Value) -> Option<(String, String)> {
    let sys_id = first(answer, &["/result/0/sys_id"])?;
    let number = first(answer, &["/result/0/number"]).unwrap_or_else(|| sys_id.clone());
    Some((number, sys_id))
}

pub fn created(answer: &Value) -> Option<(String, String)> {
    let sys_id = first(answer, &["/result/sys_id"])?;
    let number = first(answer, &["/result/number"]).unwrap_or_else(|| sys_id.clone());
    Some((number, sys_id))
}

pub fn url(config: &TicketConfig, sys_id: &str) -> String {
    format!(
        "{}/nav_to.do?uri=incident.do?sys_id={sys_id}",
        config.base_url
    )
}

pub fn note(reference: &str, text: &str) -> Call {
    Call::new(
        Method::PATCH,
        format!("/api/now/table/incident/{reference}"),
        json!({ "work_notes": text }),
    )
}

pub fn solve(config: &TicketConfig, reference: &str, text: &str) -> Vec<Call> {
    vec![Call::new(
        Method::PATCH,
        format!("/api/now/table/incident/{reference}"),
        json!({
            "state": RESOLVED,
            "close_code": config.close_code,
            "close_notes": text,
        }),
    )]
}

pub fn set_priority(reference: &str, to: Priority) -> Call {
    let (impact, urgency) = impact_urgency(to);
    Call::new(
        Method::PATCH,
        format!("/api/now/table/incident/{reference}"),
        json!({ "impact": impact, "urgency": urgency }),
    )
}

/// A business rule's outbound REST message with the body docs/helpdesk.md gives.
pub fn event(value: &Value) -> TicketEvent {
    let body = value.get("result").unwrap_or(value);
    let state = first(body, &["/state", "/state/value"]).unwrap_or_default();
    TicketEvent {
        ticket: first(body, &["/sys_id", "/number"]).unwrap_or_default(),
        solved: matches!(
            state.to_ascii_lowercase().as_str(),
            "6" | "7" | "resolved" | "closed"
        ),
        priority: first(body, &["/priority", "/priority/value"]).and_then(|p| from_priority(&p)),
        assignee: first(body, &["/assigned_to/display_value", "/assigned_to"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_priorities_map_back() {
        let resolved = event(
            &json!({ "sys_id": "abc", "number": "INC0010001", "state": "6", "priority": "1 - Critical" }),
        );
        assert_eq!(
            (resolved.ticket.as_str(), resolved.solved, resolved.priority),
            ("abc", true, Some(Priority::P1))
        );
        let open = event(
            &json!({ "number": "INC0010001", "state": "2", "assigned_to": { "display_value": "Beth" } }),
        );
        assert_eq!(
            (open.ticket.as_str(), open.solved, open.assignee.as_deref()),
            ("INC0010001", false, Some("Beth"))
        );
    }
}
