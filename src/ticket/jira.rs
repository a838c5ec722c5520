//! Jira Service Management: Basic auth `{user}:{token}` (an Atlassian account email and
//! API token); create with `POST /rest/api/2/issue`, internal comments with
//! `POST /rest/servicedeskapi/request/{key}/comment` (`public: false`), resolve with
//! `POST /rest/api/2/issue/{key}/transitions`; a lost create is looked up with
//! `GET /rest/api/2/search/jql`. Webhooks with a secret are signed:
//! `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`.

use super::{Call, Opening, TicketConfig, TicketEvent, first};
use crate::alert::Priority;
use axum::http::HeaderMap;
use reqwest::Method;
use serde_json::{Value, json};

/// Jira's default priority scheme.
pub fn priority(priority: Priority) -> &'static str {
    match priority {
        Priority::P1 => "Highest",
        Priority::P2 => "High",
        Priority::P3 => "Medium",
        Priority::P4 => "Low",
    }
}

fn from_priority(word: &str) -> Option<Priority> {
    match word.to_ascii_lowercase().as_str() {
        "highest" | "blocker" | "critical" => Some(Priority::P1),
        "high" | "major" => Some(Priority::P2),
        "medium" => Some(Priority::P3),
        "low" | "lowest" | "minor" | "trivial" => Some(Priority::P4),
        _ => None,
    }
}

pub fn create(config: &TicketConfig, opening: &Opening<'_>) -> Call {
    let incident = opening.incident;
    // Jira labels cannot hold spaces.
    let mut labels: Vec<String> = super::tags(config, incident)
        .iter()
        .map(|tag| tag.replace(char::is_whitespace, "-"))
        .collect();
    // The marker a lost create is found by (`find`).
    labels.push(super::marker(incident.id));
    Call::new(
        Method::POST,
        "/rest/api/2/issue".into(),
        json!({ "fields": {
            "project": { "key": config.project },
            "summary": opening.subject,
            "description": opening.description,
            "issuetype": { "name": config.issue_type },
            "priority": { "name": priority(incident.priority) },
            "labels": labels,
        } }),
    )
}

/// Looks for the issue an earlier create opened by its marker label (Jira Cloud's
/// JQL search, `GET /rest/api/2/search/jql`), before a retry whose first answer
/// was lost opens a second one.
pub fn find(config: &TicketConfig, incident_id: i64) -> Call {
    let jql = format!(
        "project = \"{}\" AND labels = \"{}\"",
        config.project.as_deref().unwrap_or_default(),
        super::marker(incident_id)
    );
    Call::search(
        "/rest/api/2/search/jql",
        &[("jql", &jql), ("fields", "key"), ("maxResults", "1")],
    )
}

/// `(key, key)` of the issue [`find`] found.
pub fn found(answer: &Value) -> Option<(String, String)> {
    let key = first(answer, &["/issues/0/key"])?;
    Some((key.clone(), key))
}

/// `(key, key)` from the 201 answer: OPS-7 is both what people see and what the API takes.
pub fn created(answer: &Value) -> Option<(String, String)> {
    let key = first(answer, &["/key"])?;
    Some((key.clone(), key))
}

pub fn url(config: &TicketConfig, key: &str) -> String {
    format!("{}/browse/{key}", config.base_url)
}

pub fn note(reference: &str, text: &str) -> Call {
    Call::new(
        Method::POST,
        format!("/rest/servicedeskapi/request/{reference}/comment"),
        json!({ "body": text, "public": false }),
    )
}

/// The transition when it is configured; otherwise the desk asks for the issue's
/// transitions first ([`transitions`], [`done_transition`]).
pub fn solve(config: &TicketConfig, reference: &str) -> Vec<Call> {
    config
        .resolve_transition
        .iter()
        .map(|id| transition(reference, id))
        .collect()
}

pub fn set_priority(reference: &str, to: Priority) -> Call {
    Call::new(
        Method::PUT,
        format!("/rest/api/2/issue/{reference}"),
        json!({ "fields": { "priority": { "name": priority(to) } } }),
    )
}

/// `GET` the transitions the issue can take now.
pub fn transitions(reference: &str) -> Call {
    Call {
        method: Method::GET,
        path: format!("/rest/api/2/issue/{reference}/transitions"),
        body: None,
    }
}

pub fn transition(reference: &str, id: &str) -> Call {
    Call::new(
        Method::POST,
        format!("/rest/api/2/issue/{reference}/transitions"),
        json!({ "transition": { "id": id } }),
    )
}

/// The first transition into a status of the "done" category.
pub fn done_transition(answer: &Value) -> Option<String> {
    answer["transitions"]
        .as_array()?
        .iter()
        .find(|t| t.pointer("/to/statusCategory/key").and_then(Value::as_str) == Some("done"))
        .and_then(|t| first(t, &["/id"]))
}

/// Jira's own webhook body (`jira:issue_updated`): the status category tells solved;
/// the changelog tells whether priority or assignee changed.
pub fn event(value: &Value) -> TicketEvent {
    let changed = |field: &str| {
        value
            .pointer("/changelog/items")
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|item| item["field"] == field))
    };
    let fields = &value["issue"]["fields"];
    TicketEvent {
        ticket: first(value, &["/issue/key", "/issue/id"]).unwrap_or_default(),
        solved: fields
            .pointer("/status/statusCategory/key")
            .and_then(Value::as_str)
            == Some("done"),
        priority: changed("priority")
            .then(|| first(fields, &["/priority/name"]))
            .flatten()
            .and_then(|name| from_priority(&name)),
        assignee: changed("assignee")
            .then(|| first(fields, &["/assignee/displayName"]))
            .flatten(),
    }
}

/// `X-Hub-Signature: sha256=<hex>` over the body: the same HMAC check as a signed
/// ingest source's, without a timestamp.
pub fn verify(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), crate::webhook_auth::SignatureError> {
    let signature = crate::webhook_auth::SignatureConfig {
        secret: secret.to_string(),
        header: "x-hub-signature".into(),
        timestamp_header: None,
    };
    crate::webhook_auth::verify(&signature, headers, body, now).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_category_solves_and_changelog_names_changes() {
        let body = json!({
            "webhookEvent": "jira:issue_updated",
            "issue": { "key": "OPS-7", "fields": {
                "status": { "name": "Resolved", "statusCategory": { "key": "done" } },
                "priority": { "name": "Highest" },
                "assignee": { "displayName": "Dan" } } },
            "changelog": { "items": [ { "field": "status", "toString": "Resolved" } ] }
        });
        let solved = event(&body);
        assert_eq!(
            (
                solved.ticket.as_str(),
                solved.solved,
                solved.priority,
                solved.assignee
            ),
            ("OPS-7", true, None, None)
        );
        let mut reassigned = body.clone();
        reassigned["issue"]["fields"]["status"]["statusCategory"]["key"] = json!("indeterminate");
        reassigned["changelog"]["items"] =
            json!([{ "field": "assignee" }, { "field": "priority" }]);
        let event = event(&reassigned);
        assert_eq!(
            (event.solved, event.priority, event.assignee.as_deref()),
            (false, Some(Priority::P1), Some("Dan"))
        );
    }

    #[test]
    fn the_done_transition_is_found_by_category() {
        let answer = json!({ "transitions": [
            { "id": "11", "name": "In progress", "to": { "statusCategory": { "key": "indeterminate" } } },
            { "id": "31", "name": "Resolve", "to": { "statusCategory": { "key": "done" } } } ] });
        assert_eq!(done_transition(&answer).as_deref(), Some("31"));
    }
}
