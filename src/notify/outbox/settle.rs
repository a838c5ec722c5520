//! Settling: what an attempt's outcome does to its row (sent, retried after a
//! backoff, failed, cancelled), the timeline entry and metric that record it, and
//! the fallback to the user's next channel when one keeps failing.

use super::Outbox;
use crate::incident::{Message, TimelineEntry, TimelineKind};
use crate::notify::NotifyError;
use crate::oncall::Channel;
use crate::store::StoreError;
use crate::store::paging::{Delivery, Notification, NotificationKind, Settlement};
use chrono::{DateTime, Utc};

/// Failed attempts after which the user's next channel is tried as well.
const FALLBACK_AFTER: i64 = 3;

impl Outbox {
    /// Records the outcome of one attempt: the row with its timeline line, then a
    /// fallback when the channel keeps failing.
    pub(super) async fn settle(
        &self,
        notification: &Notification,
        claim: &str,
        outcome: Result<String, NotifyError>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let attempt = notification.attempts + 1;
        let what = describe(notification);
        let (delivery, kind, message) = match outcome {
            Ok(via) => (
                Delivery::Sent,
                TimelineKind::Notified as fn(Message) -> TimelineKind,
                format!("{what} sent{via}"),
            ),
            Err(error) => {
                let (delivery, message) =
                    error.settle(&what, attempt, notification.id, notification.deadline, now);
                let kind = if matches!(delivery, Delivery::Retry { .. }) {
                    TimelineKind::NotificationRetry
                } else {
                    TimelineKind::NotificationFailed
                };
                (delivery, kind, message)
            }
        };
        let outcome = match &delivery {
            Delivery::Sent => "sent",
            Delivery::Retry { .. } => "retry",
            Delivery::Failed { .. } => "failed",
            Delivery::Cancelled => "cancelled",
        };
        self.metrics
            .notifications
            .with_label_values(&[notification.channel.as_str(), outcome])
            .inc();
        let falls_back = !matches!(delivery, Delivery::Sent)
            && (attempt == FALLBACK_AFTER || matches!(delivery, Delivery::Failed { .. }));
        // The row and its line in one write: one fsync-bound request to the writer
        // instead of two, and no message recorded as sent without its line.
        let settlement = Settlement {
            id: notification.id,
            claim: claim.to_string(),
            delivery,
            at: now,
            timeline: line(notification, now, kind, message),
        };
        self.store
            .settle_notifications(std::slice::from_ref(&settlement))
            .await?;
        if falls_back {
            self.fall_back(notification, now).await?;
        }
        Ok(())
    }

    /// Queues the same message on the user's next channel, once.
    async fn fall_back(
        &self,
        failing: &Notification,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(fallback) = fallback(&self.config.load(), failing, now) else {
            return Ok(());
        };
        let said = line(
            failing,
            now,
            TimelineKind::NotificationFallback,
            format!(
                "{} keeps failing: also trying {}",
                describe(failing),
                fallback.channel
            ),
        );
        if let Some(said) = said {
            self.store.append_timeline(&[said]).await?;
        }
        self.store
            .queue_notifications(std::slice::from_ref(&fallback))
            .await?;
        self.store.bring_forward(&fallback).await
    }
}

/// The timeline line of an attempt on `notification`; none for a report, which
/// belongs to no incident (its outcome is in the metrics and logs).
fn line(
    notification: &Notification,
    at: DateTime<Utc>,
    kind: fn(Message) -> TimelineKind,
    message: String,
) -> Option<TimelineEntry> {
    if notification.kind == NotificationKind::Report {
        return None;
    }
    Some(TimelineEntry {
        incident_id: notification.incident_id,
        at,
        kind: kind(Message {
            channel: notification.channel.as_str().to_string(),
            user: notification.user_id.clone(),
            step: notification.step.clone(),
            notification: Some(notification.id),
        }),
        actor: "tocsin".to_string(),
        message,
    })
}

/// The same message on the user's channel after `failing`'s (in their rules, then
/// the usual order), due `now`; none when they have no other.
pub fn fallback(
    config: &crate::config::Config,
    failing: &Notification,
    now: DateTime<Utc>,
) -> Option<Notification> {
    let user = config.directory.users.get(&failing.user_id)?;
    let channels: Vec<Channel> = user
        .notify
        .iter()
        .map(|rule| rule.channel)
        .chain(Channel::ALL)
        .collect();
    let channel = *channels
        .iter()
        .skip_while(|channel| **channel != failing.channel)
        .skip(1)
        .chain(channels.iter())
        .find(|channel| **channel != failing.channel && user.address(**channel).is_some())?;
    Some(Notification {
        id: 0,
        channel,
        address: user.address(channel)?.to_string(),
        attempts: 0,
        due_at: now,
        deadline: now + config.delivery_deadline(channel),
        ..failing.clone()
    })
}

/// What the timeline calls a message: `L1 page to user:alice via slack`.
pub fn describe(notification: &Notification) -> String {
    let what = match notification.kind {
        NotificationKind::Page => format!(
            "{} page",
            notification.step.split('#').next().unwrap_or_default()
        ),
        NotificationKind::Resolved => "resolution notice".to_string(),
        NotificationKind::Report => "weekly report".to_string(),
        NotificationKind::Stakeholder => format!("stakeholder update ({})", notification.step),
        NotificationKind::DrillReport => "failed-drill report".to_string(),
    };
    match notification.channel {
        // A webhook's address is a URL with a secret in it, a chat id is nobody's
        // business; the timeline is for viewers.
        Channel::Webhook
        | Channel::Slack
        | Channel::Telegram
        | Channel::Ntfy
        | Channel::Teams
        | Channel::Mattermost
        | Channel::Voice => {
            format!(
                "{what} to user:{} via {}",
                notification.user_id, notification.channel
            )
        }
        Channel::Email | Channel::Sms => format!(
            "{} {what} to {} ({})",
            notification.channel, notification.user_id, notification.address
        ),
    }
}
