//! Freshdesk, Tickets API v2: Basic auth with the API key as user and `X` as password;
//! create with `POST /api/v2/tickets`, private notes with
//! `POST /api/v2/tickets/{id}/notes`, solve with `PUT /api/v2/tickets/{id}`
//! (`status` 4, Resolved); a lost create is looked up with
//! `GET /api/v2/search/tickets`. Descriptions and notes are HTML.

use super::{Call, Opening, TicketConfig, TicketEvent, first};
use crate::alert::Priority;
use reqwest::Method;
use serde_json::{Value, json};

/// Freshdesk's statuses: 2 Open, 3 Pending, 4 Resolved, 5 Closed.
const OPEN: i64 = 2;
const RESOLVED: i64 = 4;

/// Freshdesk's priorities: 4 Urgent, 3 High, 2 Medium, 1 Low.
pub fn priority(priority: Priority) -> i64 {
    match priority {
        Priority::P1 => 4,
        Priority::P2 => 3,
        Priority::P3 => 2,
        Priority::P4 => 1,
    }
}

fn from_priority(word: &str) -> Option<Priority> {
    match word.to_ascii_lowercase().as_str() {
        "urgent" | "4" => Some(Priority::P1),
        "high" | "3" => Some(Priority::P2),
        "medium" | "2" => Some(Priority::P3),
        "low" | "1" => Some(Priority::P4),
        _ => None,
    }
}

pub fn create(config: &TicketConfig, opening: &Opening<'_>) -> Call {
    let incident = opening.incident;
    let mut tags = super::tags(config, incident);
    // Freshdesk has no field of the caller's own to look a ticket up by: the
    // marker goes in a tag.
    tags.push(super::marker(incident.id));
    let mut ticket = json!({
        "subject": opening.subject,
        "description": html(&opening.description),
        "email": config.requester,
        "priority": priority(incident.priority),
        "status": OPEN,
        "tags": tags,
    });
    if let Some(group) = config.group.as_ref().and_then(|g| g.parse::<i64>().ok()) {
        ticket["group_id"] = json!(group);
    }
    Call::new(Method::POST, "/api/v2/tickets".into(), ticket)
}

/// Looks for the ticket an earlier create opened by its marker tag (Freshdesk's
/// search, `GET /api/v2/search/tickets?query="tag:'…'"`), before a retry whose
/// first answer was lost opens a second one. The search reads an index that may
/// show a new ticket minutes late (`super::search_lag`).
pub fn find(incident_id: i64) -> Call {
    let query = format!("\"tag:'{}'\"", super::marker(incident_id));
    Call::search("/api/v2/search/tickets", &[("query", &query)])
}

/// `(id, reference)` of the ticket [`find`] found.
pub fn found(answer: &Value) -> Option<(String, String)> {
    let id = first(answer, &["/results/0/id"])?;
    Some((id.clone(), id))
}

pub fn created(answer: &Value) -> Option<(String, String)> {
    let id = first(answer, &["/id"])?;
    Some((id.clone(), id))
}

pub fn url(config: &TicketConfig, id: &str) -> String {
    format!("{}/a/tickets/{id}", config.base_url)
}

pub fn note(reference: &str, text: &str) -> Call {
    Call::new(
        Method::POST,
        format!("/api/v2/tickets/{reference}/notes"),
        json!({ "body": html(text), "private": true }),
    )
}

pub fn solve(reference: &str) -> Vec<Call> {
    vec![Call::new(
        Method::PUT,
        format!("/api/v2/tickets/{reference}"),
        json!({ "status": RESOLVED }),
    )]
}

pub fn set_priority(reference: &str, to: Priority) -> Call {
    Call::new(
        Method::PUT,
        format!("/api/v2/tickets/{reference}"),
        json!({ "priority": priority(to) }),
    )
}

/// An automation rule's webhook with the body docs/helpdesk.md gives, wrapped in
/// `freshdesk_webhook` (the classic style) or not.
pub fn event(value: &Value) -> TicketEvent {
    let body = value.get("freshdesk_webhook").unwrap_or(value);
    let status = first(body, &["/ticket_status", "/status"]).unwrap_or_default();
    TicketEvent {
        ticket: first(body, &["/ticket_id", "/id"]).unwrap_or_default(),
        solved: matches!(
            status.to_ascii_lowercase().as_str(),
            "resolved" | "closed" | "4" | "5"
        ),
        priority: first(body, &["/ticket_priority", "/priority"]).and_then(|p| from_priority(&p)),
        assignee: first(body, &["/ticket_agent_name", "/agent"]),
    }
}

/// Plain text as HTML: escaped, line breaks kept, links left as text.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_and_flat_webhooks_read_alike() {
        let classic = event(
            &json!({ "freshdesk_webhook": { "ticket_id": 12, "ticket_status": "Resolved", "ticket_priority": "Urgent" } }),
        );
        assert_eq!(
            (classic.ticket.as_str(), classic.solved, classic.priority),
            ("12", true, Some(Priority::P1))
        );
        let flat = event(
            &json!({ "ticket_id": "12", "ticket_status": "Open", "ticket_agent_name": "Ann" }),
        );
        assert_eq!(
            (flat.solved, flat.assignee.as_deref()),
            (false, Some("Ann"))
        );
    }

    #[test]
    fn notes_are_escaped_html() {
        assert_eq!(html("a < b\nc"), "a &lt; b<br>c");
    }
}
