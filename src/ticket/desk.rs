//! The desk delivers queued ticket calls: it claims due `ticket_ops` rows (at most one
//! per ticket, oldest first), makes the platform's calls, and records the outcome on
//! the incident timeline. Transient failures (unreachable, 5xx, 429) retry with the
//! outbox's backoff until the table's `deadline`; anything else fails at once with the
//! platform's answer. It runs in its own loop so a slow helpdesk never holds up a page.

use super::{
    Call, Opening, Platform, Settings, TicketConfig, freshdesk, jira, servicenow, zendesk,
};
use crate::clock::{Clock, rfc3339};
use crate::incident::links::LinkKind;
use crate::incident::{Incident, TicketCall, TimelineEntry, TimelineKind};
use crate::metrics::Metrics;
use crate::name::UnknownName;
use crate::page::NotifyError;
use crate::store::paging::Delivery;
use crate::store::tickets::{Ticket, TicketOp, TicketOpKind};
use crate::store::{CLAIM_LEASE, Claims, Store, StoreError, work_claims};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Calls claimed per round.
const CLAIM: i64 = 32;
/// How often the desk looks for due calls on its own.
const PERIOD: Duration = Duration::from_millis(500);
/// How much of a refusal's body is kept in the timeline.
const ANSWER_SHOWN: usize = 300;

/// Delivers ticket calls.
pub struct Desk {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// The running configuration's ticket settings, read at every call.
    pub settings: Arc<dyn Fn() -> Arc<dyn Settings> + Send + Sync>,
    pub metrics: Metrics,
    pub http: reqwest::Client,
}

impl Desk {
    /// Makes every call due now; returns how many were attempted.
    pub async fn flush(self: &Arc<Self>) -> Result<usize, StoreError> {
        work_claims(
            self.store.as_ref(),
            self.clock.as_ref(),
            Claims::TicketOps,
            |op: &TicketOp| op.id,
            |claim| {
                let (store, now) = (Arc::clone(&self.store), self.clock.now());
                async move {
                    store
                        .claim_ticket_ops(now, CLAIM_LEASE, CLAIM, &claim)
                        .await
                }
            },
            |op, claim| {
                let desk = Arc::clone(self);
                async move { desk.deliver(op, &claim).await }
            },
        )
        .await
    }

    /// Flushes every half second until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(PERIOD) => {}
            }
            if *stop.borrow() {
                return;
            }
            if let Err(error) = self.flush().await {
                tracing::error!(%error, "ticket desk flush failed");
            }
        }
    }

    async fn deliver(&self, op: TicketOp, claim: &str) -> Result<(), StoreError> {
        let outcome = self.perform(&op).await;
        let now = self.clock.now();
        let attempt = op.attempts;
        let what = format!("{} {}", op.platform, describe(op.kind));
        let (delivery, kind, message) = match outcome {
            Ok(done) => (Delivery::Sent, done_kind(op.kind), done),
            Err(error) => {
                let (delivery, message) = error.settle(&what, attempt, op.id, op.deadline, now);
                let kind = if matches!(delivery, Delivery::Retry { .. }) {
                    TimelineKind::TicketRetry
                } else {
                    TimelineKind::TicketFailed
                };
                (delivery, kind, message)
            }
        };
        let outcome = match &delivery {
            Delivery::Sent => "done",
            Delivery::Retry { .. } => "retry",
            Delivery::Failed { .. } => "failed",
            Delivery::Cancelled => "cancelled",
        };
        self.metrics
            .ticket_calls
            .with_label_values(&[op.platform.as_str(), outcome])
            .inc();
        // The op first: a timeline that cannot be written must not leave it claimed.
        self.store
            .finish_ticket_op(op.id, claim, &delivery, now)
            .await?;
        self.store
            .append_timeline(&[TimelineEntry {
                incident_id: op.incident_id,
                at: now,
                kind: kind(TicketCall {
                    platform: op.platform.as_str().to_string(),
                    op: op.kind.as_str().to_string(),
                    attempt,
                }),
                actor: "tocsin".into(),
                message,
            }])
            .await
    }

    /// Makes the calls of one operation; returns what to put on the timeline.
    async fn perform(&self, op: &TicketOp) -> Result<String, NotifyError> {
        let config = (self.settings)();
        let settings = config
            .tickets()
            .iter()
            .find(|ticket| ticket.platform == op.platform)
            .ok_or_else(|| {
                NotifyError::Permanent(format!(
                    "there is no [[tickets]] table for {} any more",
                    op.platform
                ))
            })?;
        let existing = self
            .store
            .tickets(&[op.incident_id])
            .await
            .map_err(transient)?
            .into_iter()
            .find(|ticket| ticket.platform == op.platform);
        match (op.kind, existing) {
            // Opened before a crash cut the bookkeeping short: never open a second one.
            (TicketOpKind::Create, Some(ticket)) => Ok(format!(
                "{} ticket {} is already open: {}",
                op.platform, ticket.id, ticket.url
            )),
            (TicketOpKind::Create, None) => self.open(config.as_ref(), settings, op).await,
            (_, None) => Err(NotifyError::Permanent(format!(
                "no {} ticket was opened for this incident",
                op.platform
            ))),
            (TicketOpKind::Note, Some(ticket)) => {
                let call = match op.platform {
                    Platform::Zendesk => zendesk::note(&ticket.reference, &op.body),
                    Platform::Freshdesk => freshdesk::note(&ticket.reference, &op.body),
                    Platform::ServiceNow => servicenow::note(&ticket.reference, &op.body),
                    Platform::Jira => jira::note(&ticket.reference, &op.body),
                };
                self.call(settings, call).await?;
                Ok(format!(
                    "internal note added to {} ticket {}",
                    op.platform, ticket.id
                ))
            }
            (TicketOpKind::Priority, Some(ticket)) => {
                let to = op
                    .body
                    .parse()
                    .map_err(|error: UnknownName| NotifyError::Permanent(error.to_string()))?;
                let reference = &ticket.reference;
                let call = match op.platform {
                    Platform::Zendesk => zendesk::set_priority(reference, to),
                    Platform::Freshdesk => freshdesk::set_priority(reference, to),
                    Platform::ServiceNow => servicenow::set_priority(reference, to),
                    Platform::Jira => jira::set_priority(reference, to),
                };
                self.call(settings, call).await?;
                Ok(format!("{} ticket {} set to {to}", op.platform, ticket.id))
            }
            (TicketOpKind::Solve, Some(ticket)) => {
                self.solve(settings, &ticket, &op.body).await?;
                Ok(format!("{} ticket {} solved", op.platform, ticket.id))
            }
        }
    }

    async fn open(
        &self,
        config: &dyn Settings,
        settings: &TicketConfig,
        op: &TicketOp,
    ) -> Result<String, NotifyError> {
        let incident_id = op.incident_id;
        // An earlier attempt may have opened the ticket and lost the answer (a
        // timeout, a crash): look for it first.
        if op.attempts > 1
            && let Some((id, reference)) = self.find_earlier(settings, op).await?
        {
            let ticket = self.ticket(settings, incident_id, id, reference);
            self.store
                .save_ticket(&ticket, self.clock.now())
                .await
                .map_err(transient)?;
            return Ok(format!(
                "{} ticket {} was opened by an earlier attempt whose answer was lost: {}",
                ticket.platform, ticket.id, ticket.url
            ));
        }
        let incident = self
            .store
            .incident(incident_id)
            .await
            .map_err(transient)?
            .ok_or_else(|| {
                NotifyError::Permanent(format!("incident {incident_id} no longer exists"))
            })?;
        let opening = Opening {
            incident: &incident,
            subject: incident.subject(&format!("[{}]", incident.priority)),
            description: description(config, &incident),
        };
        let (call, read): (Call, ReadCreated) = match settings.platform {
            Platform::Zendesk => (zendesk::create(settings, &opening), zendesk::created),
            Platform::Freshdesk => (freshdesk::create(settings, &opening), freshdesk::created),
            Platform::ServiceNow => (servicenow::create(settings, &opening), servicenow::created),
            Platform::Jira => (jira::create(settings, &opening), jira::created),
        };
        let answer = self.call(settings, call).await?;
        let (id, reference) = read(&answer).ok_or_else(|| {
            NotifyError::Permanent(format!(
                "{} answered without a ticket id: {}",
                settings.platform,
                shorten(&answer.to_string())
            ))
        })?;
        let ticket = self.ticket(settings, incident_id, id, reference);
        self.store
            .save_ticket(&ticket, self.clock.now())
            .await
            .map_err(transient)?;
        Ok(format!(
            "{} ticket {} opened: {}",
            ticket.platform, ticket.id, ticket.url
        ))
    }

    /// The ticket an earlier attempt of `op` opened, if any. A platform whose search
    /// shows a new ticket late is asked again, not created on, until that lag has
    /// passed since the call was queued. A search the platform refuses (a role
    /// without search rights) opens the ticket as before lookups existed.
    async fn find_earlier(
        &self,
        settings: &TicketConfig,
        op: &TicketOp,
    ) -> Result<Option<(String, String)>, NotifyError> {
        let found = match self.find(settings, op.incident_id).await {
            Err(NotifyError::Permanent(why)) => {
                tracing::warn!(platform = %op.platform, %why, "cannot search for a ticket a lost create may have opened; opening one");
                return Ok(None);
            }
            found => found?,
        };
        let lag = super::search_lag(op.platform);
        if found.is_none() && self.clock.now() < op.queued_at + lag {
            return Err(NotifyError::Transient(format!(
                "no {} ticket {} found yet; its search can take up to {} min to show a new ticket, so it is searched again before another is opened",
                op.platform,
                super::marker(op.incident_id),
                lag.num_minutes()
            )));
        }
        Ok(found)
    }

    /// The ticket an earlier create opened, found by the id Tocsin gave it.
    async fn find(
        &self,
        settings: &TicketConfig,
        incident_id: i64,
    ) -> Result<Option<(String, String)>, NotifyError> {
        let (call, read): (Call, ReadCreated) = match settings.platform {
            Platform::Zendesk => (zendesk::find(incident_id), zendesk::found),
            Platform::ServiceNow => (servicenow::find(incident_id), servicenow::found),
            Platform::Freshdesk => (freshdesk::find(incident_id), freshdesk::found),
            Platform::Jira => (jira::find(settings, incident_id), jira::found),
        };
        let answer = self.call(settings, call).await?;
        Ok(read(&answer))
    }

    fn ticket(
        &self,
        settings: &TicketConfig,
        incident_id: i64,
        id: String,
        reference: String,
    ) -> Ticket {
        let url = match settings.platform {
            Platform::Zendesk => zendesk::url(settings, &id),
            Platform::Freshdesk => freshdesk::url(settings, &id),
            Platform::ServiceNow => servicenow::url(settings, &reference),
            Platform::Jira => jira::url(settings, &id),
        };
        Ticket {
            incident_id,
            platform: settings.platform,
            id,
            reference,
            url,
        }
    }

    async fn solve(
        &self,
        settings: &TicketConfig,
        ticket: &Ticket,
        text: &str,
    ) -> Result<(), NotifyError> {
        let reference = &ticket.reference;
        let calls = match settings.platform {
            Platform::Zendesk => zendesk::solve(reference),
            Platform::Freshdesk => freshdesk::solve(reference),
            Platform::ServiceNow => servicenow::solve(settings, reference, text),
            Platform::Jira => jira::solve(settings, reference),
        };
        for call in calls {
            self.call(settings, call).await?;
        }
        if settings.platform == Platform::Jira && settings.resolve_transition.is_none() {
            let answer = self.call(settings, jira::transitions(reference)).await?;
            let id = jira::done_transition(&answer).ok_or_else(|| {
                NotifyError::Permanent(format!(
                    "issue {reference} offers no transition to a done status; set resolve_transition in the jira [[tickets]] table"
                ))
            })?;
            self.call(settings, jira::transition(reference, &id))
                .await?;
        }
        Ok(())
    }

    /// One authenticated call; 5xx, 429, 408 and network errors are worth retrying.
    async fn call(&self, settings: &TicketConfig, call: Call) -> Result<Value, NotifyError> {
        let platform = settings.platform;
        let (user, password) = credentials(settings);
        let mut request = self
            .http
            .request(call.method, format!("{}{}", settings.base_url, call.path))
            .basic_auth(user, Some(&password))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|error| {
            NotifyError::Transient(format!(
                "{platform} is unreachable: {}",
                error.without_url()
            ))
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        // An answer that repeats the credentials it was sent keeps them off the timeline.
        let answer = shorten(&crate::notify::redact(&text, &[password]));
        Err(match status {
            s if s.is_server_error()
                || s == StatusCode::TOO_MANY_REQUESTS
                || s == StatusCode::REQUEST_TIMEOUT =>
            {
                NotifyError::Transient(format!("{platform} answered {status}: {answer}"))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => NotifyError::Permanent(format!(
                "{platform} refused the credentials ({status}): check user and token in its [[tickets]] table"
            )),
            _ => {
                NotifyError::Permanent(format!("{platform} refused the call ({status}): {answer}"))
            }
        })
    }
}

/// Reads `(id, reference)` from a platform's answer to a create.
type ReadCreated = fn(&Value) -> Option<(String, String)>;

/// Basic-auth user and password, as each platform documents them.
fn credentials(settings: &TicketConfig) -> (String, String) {
    match settings.platform {
        Platform::Zendesk => (format!("{}/token", settings.user), settings.token.clone()),
        Platform::Freshdesk => (settings.token.clone(), "X".into()),
        Platform::ServiceNow | Platform::Jira => (settings.user.clone(), settings.token.clone()),
    }
}

/// The ticket's body: what happened, the SLA, where to look, how to get in.
fn description(config: &dyn Settings, incident: &Incident) -> String {
    let mut text = format!(
        "{summary}\n\n\
         Priority: {priority}\nResource: {resource}\nCheck: {check}\nSource: {source}\n\
         Opened: {opened}\nRespond by: {respond}\nResolve by: {resolve}\n\
         Incident: {public}/api/v1/incidents/{id}\nDashboard: {public}/\n",
        summary = incident.summary,
        priority = incident.priority,
        resource = incident.resource,
        check = incident.check,
        source = incident.source,
        opened = rfc3339(incident.created_at),
        respond = rfc3339(incident.response_due),
        resolve = rfc3339(incident.resolve_due),
        public = config.public_url(),
        id = incident.id,
    );
    for (kind, heading) in [
        (LinkKind::Kb, "Knowledge base"),
        (LinkKind::Remote, "Remote access"),
    ] {
        let links: Vec<String> = incident
            .links
            .iter()
            .filter(|link| link.kind == kind)
            .map(|link| format!("- {}: {}", link.title, link.url))
            .collect();
        if !links.is_empty() {
            text.push_str(&format!("\n{heading}:\n{}\n", links.join("\n")));
        }
    }
    text.push_str(
        "\nOpened by Tocsin. Escalations, runbook results and acknowledgements are added here \
         as internal notes; the ticket is solved when the incident resolves.",
    );
    text
}

fn describe(kind: TicketOpKind) -> &'static str {
    match kind {
        TicketOpKind::Create => "ticket",
        TicketOpKind::Note => "internal note",
        TicketOpKind::Priority => "priority change",
        TicketOpKind::Solve => "solve",
    }
}

fn done_kind(kind: TicketOpKind) -> fn(TicketCall) -> TimelineKind {
    match kind {
        TicketOpKind::Create => TimelineKind::TicketOpened,
        TicketOpKind::Note => TimelineKind::TicketNoted,
        TicketOpKind::Priority => TimelineKind::TicketPriority,
        TicketOpKind::Solve => TimelineKind::TicketSolved,
    }
}

fn transient(error: StoreError) -> NotifyError {
    NotifyError::Transient(error.to_string())
}

fn shorten(text: &str) -> String {
    text.chars().take(ANSWER_SHOWN).collect()
}
