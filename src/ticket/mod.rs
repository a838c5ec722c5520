//! The helpdesk integration: a ticket on each configured platform for the incidents
//! that call for one, kept in step with the incident (internal notes for escalations,
//! runbook results and acknowledgements; solved when it resolves), and the platform's
//! webhooks coming back (solved, reassigned, priority changed).
//!
//! The writer decides (`pipeline/tickets.rs` queues `ticket_ops` rows in the same
//! commit as the change); [`desk::Desk`] delivers them, one call per ticket at a time,
//! with retries, apart from paging so a helpdesk outage never delays a page. Each
//! platform's file knows its documented request shapes, priority scale and webhook.

pub mod desk;
pub mod freshdesk;
pub mod jira;
pub mod servicenow;
pub mod zendesk;

use crate::alert::Priority;
use crate::incident::Incident;
pub use crate::store::tickets::Platform;
use axum::http::HeaderMap;
use chrono::TimeDelta;
use serde_json::Value;

/// One `[[tickets]]` table.
#[derive(Debug, Clone)]
pub struct TicketConfig {
    pub platform: Platform,
    /// Without a trailing slash.
    pub base_url: String,
    pub user: String,
    pub token: String,
    /// Incidents of these priorities get a ticket, unless their rule names its own.
    pub priorities: Vec<Priority>,
    /// Zendesk/Freshdesk group id, ServiceNow assignment group.
    pub group: Option<String>,
    /// Zendesk/Freshdesk requester email, ServiceNow caller.
    pub requester: Option<String>,
    pub tags: Vec<String>,
    /// Jira project key.
    pub project: Option<String>,
    /// Jira issue type.
    pub issue_type: String,
    /// Jira transition that resolves; found by its "done" status when not set.
    pub resolve_transition: Option<String>,
    /// ServiceNow close code of a resolved incident.
    pub close_code: String,
    /// The secret the platform's webhooks prove themselves with.
    pub webhook_secret: Option<String>,
    /// How long a call is retried before it is given up.
    pub deadline: TimeDelta,
}

/// One HTTP call to a platform, relative to its `base_url`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: reqwest::Method,
    pub path: String,
    pub body: Option<Value>,
}

impl Call {
    fn new(method: reqwest::Method, path: String, body: Value) -> Self {
        Self {
            method,
            path,
            body: Some(body),
        }
    }

    fn get(path: String) -> Self {
        Self {
            method: reqwest::Method::GET,
            path,
            body: None,
        }
    }

    /// A search: `path` with its query parameters, each value percent-encoded.
    fn search(path: &str, params: &[(&str, &str)]) -> Self {
        let query: Vec<String> = params
            .iter()
            .map(|(name, value)| {
                let value = percent_encoding::utf8_percent_encode(
                    value,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                format!("{name}={value}")
            })
            .collect();
        Self::get(format!("{path}?{}", query.join("&")))
    }
}

/// What a platform's webhook says happened to a ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketEvent {
    /// The ticket's id or API reference, as the platform sends it.
    pub ticket: String,
    pub solved: bool,
    pub priority: Option<Priority>,
    pub assignee: Option<String>,
}

/// What the desk reads of the running configuration, anew for every call, so a
/// reload reaches it; the configuration implements it.
pub trait Settings: Send + Sync {
    /// The `[[tickets]]` tables.
    fn tickets(&self) -> &[TicketConfig];
    /// `server.public_url`, for the links in a ticket's description.
    fn public_url(&self) -> &str;
}

/// Why a helpdesk's webhook is refused: 401 for the credentials, 400 for the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhooks from {0} are off: set webhook_secret in its [[tickets]] table")]
    Off(Platform),
    #[error("no credential: send the webhook_secret as the Basic-auth password or a bearer token")]
    NoCredential,
    #[error("the credential does not match webhook_secret")]
    WrongCredential,
    #[error(transparent)]
    Signature(#[from] crate::webhook_auth::SignatureError),
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body names no ticket id")]
    NoTicket,
}

/// Checks that a webhook comes from the platform: Zendesk's and Jira's HMAC
/// signatures, the shared secret as Basic-auth password or bearer token for Freshdesk
/// and ServiceNow (whose webhooks carry no signature).
pub fn authenticate(
    config: &TicketConfig,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), WebhookError> {
    let Some(secret) = &config.webhook_secret else {
        return Err(WebhookError::Off(config.platform));
    };
    match config.platform {
        Platform::Zendesk => Ok(zendesk::verify(secret, headers, body, now)?),
        Platform::Jira => Ok(jira::verify(secret, headers, body, now)?),
        Platform::Freshdesk | Platform::ServiceNow => {
            let given = crate::webhook_auth::presented_token(headers, None)
                .ok_or(WebhookError::NoCredential)?;
            if crate::webhook_auth::same_secret(&given, secret) {
                Ok(())
            } else {
                Err(WebhookError::WrongCredential)
            }
        }
    }
}

/// Reads a platform's webhook body.
pub fn event(platform: Platform, body: &[u8]) -> Result<TicketEvent, WebhookError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| WebhookError::NotJson(error.to_string()))?;
    let event = match platform {
        Platform::Zendesk => zendesk::event(&value),
        Platform::Freshdesk => freshdesk::event(&value),
        Platform::ServiceNow => servicenow::event(&value),
        Platform::Jira => jira::event(&value),
    };
    if event.ticket.is_empty() {
        return Err(WebhookError::NoTicket);
    }
    Ok(event)
}

/// A JSON value that platforms send as a string or a number, as a string.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The first of several JSON pointers that holds a value.
fn first(value: &Value, pointers: &[&str]) -> Option<String> {
    pointers
        .iter()
        .find_map(|pointer| value.pointer(pointer).and_then(text))
}

/// Everything a new ticket says: subject, description, and the platform-neutral facts.
#[derive(Debug, Clone)]
pub struct Opening<'a> {
    pub incident: &'a Incident,
    pub subject: String,
    pub description: String,
}

/// The id Tocsin gives an incident's ticket on every platform, so a create whose
/// answer was lost is found by it before it is retried.
pub fn marker(incident_id: i64) -> String {
    format!("tocsin-{incident_id}")
}

/// How long a platform's lookup by [`marker`] may miss a ticket just created:
/// Zendesk's `external_id` filter and ServiceNow's table query read the tickets
/// themselves; Freshdesk's and Jira's searches read an index that follows them.
pub fn search_lag(platform: Platform) -> TimeDelta {
    match platform {
        Platform::Zendesk | Platform::ServiceNow => TimeDelta::zero(),
        Platform::Freshdesk => TimeDelta::minutes(5),
        Platform::Jira => TimeDelta::minutes(1),
    }
}

/// The configured tags, plus `tocsin` and the priority (`p1`), so helpdesk views can
/// filter what Tocsin opened.
fn tags(config: &TicketConfig, incident: &Incident) -> Vec<String> {
    let mut tags = config.tags.clone();
    for tag in [
        "tocsin".to_string(),
        incident.priority.as_str().to_ascii_lowercase(),
    ] {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}
