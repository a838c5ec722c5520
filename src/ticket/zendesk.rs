//! Zendesk Support, Tickets API: Basic auth `{user}/token:{token}`; create with
//! `POST /api/v2/tickets.json`, private comments, priority and solve with
//! `PUT /api/v2/tickets/{id}.json`. Webhooks are signed: base64 HMAC-SHA256 of the
//! timestamp header followed by the body.

use super::{Call, Opening, TicketConfig, TicketEvent, first};
use crate::alert::Priority;
use crate::webhook_auth::SignatureError;
use axum::http::HeaderMap;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

/// Zendesk's four priorities.
pub fn priority(priority: Priority) -> &'static str {
    match priority {
        Priority::P1 => "urgent",
        Priority::P2 => "high",
        Priority::P3 => "normal",
        Priority::P4 => "low",
    }
}

fn from_priority(word: &str) -> Option<Priority> {
    match word.to_ascii_lowercase().as_str() {
        "urgent" => Some(Priority::P1),
        "high" => Some(Priority::P2),
        "normal" => Some(Priority::P3),
        "low" => Some(Priority::P4),
        _ => None,
    }
}

pub fn create(config: &TicketConfig, opening: &Opening<'_>) -> Call {
    let incident = opening.incident;
    let mut ticket = json!({
        "subject": opening.subject,
        "comment": { "body": opening.description, "public": false },
        "priority": priority(incident.priority),
        "type": "incident",
        "tags": super::tags(config, incident),
        "external_id": super::marker(incident.id),
    });
    if let Some(group) = config.group.as_ref().and_then(|g| g.parse::<i64>().ok()) {
        ticket["group_id"] = json!(group);
    }
    if let Some(requester) = &config.requester {
        let name = requester.split('@').next().unwrap_or(requester);
        ticket["requester"] = json!({ "email": requester, "name": name });
    }
    Call::new(
        Method::POST,
        "/api/v2/tickets.json".into(),
        json!({ "ticket": ticket }),
    )
}

/// Looks for the ticket an earlier create opened by its `external_id`, before a
/// retry whose first answer was lost opens a second one.
pub fn find(incident_id: i64) -> Call {
    Call::get(format!(
        "/api/v2/tickets.json?external_id={}",
        super::marker(incident_id)
    ))
}

/// `(id, reference)` of the ticket [`find`] found.
pub fn found(answer: &Value) -> Option<(String, String)> {
    let id = first(answer, &["/tickets/0/id"])?;
    Some((id.clone(), id))
}

/// `(id, reference)` from the 201 answer.
pub fn created(answer: &Value) -> Option<(String, String)> {
    let id = first(answer, &["/ticket/id"])?;
    Some((id.clone(), id))
}

pub fn url(config: &TicketConfig, id: &str) -> String {
    format!("{}/agent/tickets/{id}", config.base_url)
}

pub fn note(reference: &str, text: &str) -> Call {
    Call::new(
        Method::PUT,
        format!("/api/v2/tickets/{reference}.json"),
        json!({ "ticket": { "comment": { "body": text, "public": false } } }),
    )
}

pub fn solve(reference: &str) -> Vec<Call> {
    vec![Call::new(
        Method::PUT,
        format!("/api/v2/tickets/{reference}.json"),
        json!({ "ticket": { "status": "solved" } }),
    )]
}

pub fn set_priority(reference: &str, to: Priority) -> Call {
    Call::new(
        Method::PUT,
        format!("/api/v2/tickets/{reference}.json"),
        json!({ "ticket": { "priority": priority(to) } }),
    )
}

/// Both webhook styles: an event subscription (`zen:event-type:ticket.*` with
/// `detail`) and a trigger with the body docs/helpdesk.md recommends
/// (`ticket_id`, `status`, `priority`, `assignee`).
pub fn event(value: &Value) -> TicketEvent {
    let kind = value["type"].as_str().unwrap_or_default();
    let ticket =
        first(value, &["/detail/id", "/ticket_id", "/ticket/id", "/id"]).unwrap_or_default();
    let status = first(value, &["/detail/status", "/status", "/ticket/status"]).unwrap_or_default();
    let subscribed = kind.starts_with("zen:event-type:");
    let priority = if subscribed {
        kind.ends_with("priority_changed")
            .then(|| first(value, &["/event/current", "/detail/priority"]))
            .flatten()
    } else {
        first(value, &["/priority", "/ticket/priority"])
    }
    .and_then(|word| from_priority(&word));
    let assignee = if subscribed {
        kind.ends_with("agent_assignment_changed")
            .then(|| first(value, &["/event/current", "/detail/assignee_id"]))
            .flatten()
            .map(|id| format!("agent {id}"))
    } else {
        first(value, &["/assignee", "/ticket/assignee"])
    };
    TicketEvent {
        ticket,
        solved: matches!(status.to_ascii_lowercase().as_str(), "solved" | "closed"),
        priority,
        assignee,
    }
}

/// How far a signed timestamp may be from now before it is taken for a replay.
const REPLAY_WINDOW_SECONDS: i64 = 300;

/// `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(secret, timestamp + body)), with
/// the timestamp within 5 minutes of now.
pub fn verify(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    const SIGNATURE: &str = "X-Zendesk-Webhook-Signature";
    const TIMESTAMP: &str = "X-Zendesk-Webhook-Signature-Timestamp";
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = header(SIGNATURE).ok_or_else(|| SignatureError::Missing(SIGNATURE.into()))?;
    let timestamp =
        header(TIMESTAMP).ok_or_else(|| SignatureError::MissingTime(TIMESTAMP.into()))?;
    let signed_at =
        DateTime::parse_from_rfc3339(timestamp.trim()).map_err(|_| SignatureError::Unreadable {
            header: TIMESTAMP.into(),
            expected: "an ISO 8601 time",
        })?;
    if (now - signed_at.with_timezone(&Utc)).num_seconds().abs() > REPLAY_WINDOW_SECONDS {
        return Err(SignatureError::Replay(TIMESTAMP.into()));
    }
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Unreadable {
            header: SIGNATURE.into(),
            expected: "base64",
        })?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .map_err(|_| SignatureError::UnusableSecret)?;
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

/// Signs like Zendesk does, for tests and docs.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_subscriptions_and_triggers_both_read() {
        let solved = event(&json!({
            "type": "zen:event-type:ticket.status_changed",
            "detail": { "id": "35436", "status": "SOLVED", "priority": "HIGH" },
            "event": { "current": "SOLVED", "previous": "OPEN" }
        }));
        assert_eq!(
            (solved.ticket.as_str(), solved.solved, solved.priority),
            ("35436", true, None)
        );
        let raised = event(&json!({
            "type": "zen:event-type:ticket.priority_changed",
            "detail": { "id": "35436", "status": "OPEN", "priority": "URGENT" },
            "event": { "current": "URGENT", "previous": "HIGH" }
        }));
        assert_eq!(
            (raised.solved, raised.priority),
            (false, Some(Priority::P1))
        );
        let trigger = event(&json!({ "ticket_id": 7, "status": "open", "assignee": "Bob" }));
        assert_eq!(
            (trigger.ticket.as_str(), trigger.assignee.as_deref()),
            ("7", Some("Bob"))
        );
    }

    #[test]
    fn a_signature_over_another_body_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-zendesk-webhook-signature-timestamp",
            "2026-11-29T03:00:00Z".parse().unwrap(),
        );
        let signature = sign("s3cret", "2026-11-29T03:00:00Z", b"{}");
        headers.insert("x-zendesk-webhook-signature", signature.parse().unwrap());
        let now = DateTime::parse_from_rfc3339("2026-11-29T03:02:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(verify("s3cret", &headers, b"{}", now).is_ok());
        assert!(verify("s3cret", &headers, b"{\"x\":1}", now).is_err());
        assert!(verify("other", &headers, b"{}", now).is_err());
        let later = now + chrono::TimeDelta::minutes(10);
        assert!(matches!(
            verify("s3cret", &headers, b"{}", later),
            Err(SignatureError::Replay(_))
        ));
    }
}
