//! Chat messages kept current: a posted Slack message is remembered with the status
//! it shows, and each flush updates (`chat.update`) those whose incident has changed
//! since, whoever acted and by whatever path. Updates are best effort: a failed one
//! is tried again after a pause, and a lost one costs a stale button, not a page.

use super::Outbox;
use crate::clock::rfc3339;
use crate::incident::{Incident, IncidentStatus};
use crate::notify::slack::{self, Posted};
use crate::store::channels::ChatMessage;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use std::sync::Mutex;

/// Messages updated per flush.
const BATCH: i64 = 32;
/// The pause after a failed update before the next try.
const PAUSE: TimeDelta = TimeDelta::seconds(5);

/// When updates may be tried again after a failure.
#[derive(Default)]
pub struct ChatSync {
    not_before: Mutex<Option<DateTime<Utc>>>,
}

impl ChatSync {
    fn gate(&self) -> std::sync::MutexGuard<'_, Option<DateTime<Utc>>> {
        self.not_before
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Outbox {
    /// Remembers where a page went on Slack, so an act can update it. A store that
    /// fails here only leaves the buttons as they are: the page went out, and saying
    /// otherwise would send it twice.
    pub(super) async fn remember_slack_message(&self, incident_id: i64, posted: Posted) {
        let message = ChatMessage {
            incident_id,
            provider: "slack".into(),
            chat: posted.channel,
            message: posted.ts,
        };
        if let Err(error) = self
            .store
            .save_chat_message(&message, IncidentStatus::Triggered)
            .await
        {
            tracing::warn!(%error, incident_id, "cannot remember the Slack message; it will not be updated");
        }
    }

    /// Updates the chat messages whose incident changed.
    pub(super) async fn sync_chat(&self) {
        let now = self.clock.now();
        if self.chat_sync.gate().is_some_and(|at| now < at) {
            return;
        }
        let config = self.config.load_full();
        let Some(slack) = config.chat.slack.as_ref() else {
            return;
        };
        let stale = match self.store.stale_chat_messages(BATCH).await {
            Ok(stale) => stale,
            Err(error) => {
                tracing::warn!(%error, "cannot read the chat messages to update");
                return;
            }
        };
        for (message, status) in stale {
            let incident = match self.store.incident(message.incident_id).await {
                Ok(Some(incident)) => incident,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(%error, "cannot read an incident to update its chat message");
                    return;
                }
            };
            let posted = Posted {
                channel: message.chat.clone(),
                ts: message.message.clone(),
            };
            let shown = slack::update(&self.http, slack, &posted, &incident_json(&incident)).await;
            let recorded = match shown {
                Ok(()) => self.store.chat_message_shown(&message, status).await,
                Err(error) => {
                    tracing::warn!(%error, incident_id = incident.id, "Slack message not updated; trying again shortly");
                    *self.chat_sync.gate() = Some(now + PAUSE);
                    return;
                }
            };
            if let Err(error) = recorded {
                tracing::warn!(%error, "cannot record a chat message update");
            }
        }
    }
}

/// The incident as the chat channels show it.
fn incident_json(incident: &Incident) -> Value {
    json!({
        "id": incident.id,
        "priority": incident.priority.as_str(),
        "status": incident.status.as_str(),
        "resource": incident.resource,
        "summary": incident.summary,
        "response_due": rfc3339(incident.response_due),
        "resolve_due": rfc3339(incident.resolve_due),
    })
}
