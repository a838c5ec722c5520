//! The durable outbox: every message is a row; due rows are claimed (`claim.rs`),
//! composed from the incident as it is now (`compose.rs`), sent on their channel
//! (`dispatch.rs`), and their outcome recorded (`settle.rs`). Transient failures retry
//! with exponential backoff and jitter (from 5 s, capped at 60 s) until the channel's
//! deadline; a channel that keeps failing also brings in the user's next channel.
//! Every attempt is on the incident timeline and in `tocsin_notifications_total`.
//! Chat messages with buttons are updated after any act (`chat.rs`).

mod chat;
mod claim;
mod compose;
mod dispatch;
mod facts;
mod settle;

pub use chat::ChatSync;
pub use claim::Handoff;
pub use compose::{CSAT_LABELS, Message};
pub use settle::{Settler, describe, fallback};

use super::NotifyError;
use super::ack_link::AckLinks;
use super::email::EmailSender;
use super::sms::SmsSender;
use crate::clock::Clock;
use crate::incident::IncidentStatus;
use crate::metrics::Metrics;
use crate::store::paging::{Delivery, Notification, NotificationKind, Settlement};
use crate::store::{Store, StoreError};
use crate::templates::Templates;
use facts::Facts;
use std::sync::Arc;

/// Delivers what the pipeline queued.
pub struct Outbox {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: crate::config::SharedConfig,
    pub metrics: Metrics,
    pub templates: Arc<Templates>,
    pub links: AckLinks,
    pub email: Option<EmailSender>,
    pub sms: Option<SmsSender>,
    pub http: reqwest::Client,
    pub handoff: Arc<Handoff>,
    pub chat_sync: ChatSync,
    pub settler: Settler,
}

impl Outbox {
    /// Sends one claimed message and settles its row; `facts` holds what its flush
    /// read of its incident already, else it is read here.
    async fn deliver(
        &self,
        notification: Notification,
        claim: &str,
        facts: Option<&Facts>,
    ) -> Result<(), StoreError> {
        // Sent before by this process, but the store was down when it said so: the
        // lease ran out and the row came back; record it, do not send it again.
        if let Some(sent) = self.settler.sent_unstored(notification.id) {
            let again = Settlement {
                claim: claim.to_string(),
                ..sent
            };
            return self.settler.settle(self.store.as_ref(), again).await;
        }
        let outcome = if notification.kind == NotificationKind::Report {
            self.send_report(&notification).await
        } else {
            let read;
            let facts = match facts {
                Some(facts) => facts,
                None => {
                    read = self.facts(&[notification.incident_id]).await?;
                    &read
                }
            };
            match facts.incident(notification.incident_id) {
                // Acknowledging or resolving cancels the pages still queued; one
                // already claimed (the writer claims L1 pages as it queues them) is
                // cancelled here instead.
                Some(incident)
                    if notification.kind == NotificationKind::Page
                        && incident.status != IncidentStatus::Triggered =>
                {
                    let cancelled = Settlement {
                        id: notification.id,
                        claim: claim.to_string(),
                        delivery: Delivery::Cancelled,
                        at: self.clock.now(),
                        timeline: None,
                    };
                    return self.settler.settle(self.store.as_ref(), cancelled).await;
                }
                Some(incident) => self.send(&notification, incident, facts).await,
                None => Err(NotifyError::Permanent(format!(
                    "incident {} no longer exists",
                    notification.incident_id
                ))),
            }
        };
        self.settle(&notification, claim, outcome).await
    }
}
