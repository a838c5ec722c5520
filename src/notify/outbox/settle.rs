//! Settling: what an attempt's outcome does to its row (sent, retried after a
//! backoff, failed, cancelled), the timeline entry and metric that record it, and
//! the fallback to the user's next channel when one keeps failing.

use super::Outbox;
use crate::incident::{Message, TimelineEntry, TimelineKind};
use crate::notify::NotifyError;
use crate::oncall::Channel;
use crate::store::paging::{Delivery, Notification, NotificationKind, Settlement};
use crate::store::{OutboxStore, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio::sync::oneshot;

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
        self.settler.settle(self.store.as_ref(), settlement).await?;
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

/// Settlements made at about the same moment, written as one request: a storm's
/// pages finish a few at a time, and each written alone cost a savepoint, a hand-off
/// to the writer and a wake back (BENCHMARKS.md). Group commit, as the pipeline's:
/// whoever takes the write turn writes every settlement waiting, and the others
/// find theirs answered when their turn comes. A settlement waits for no timer, so a
/// sent page is recorded as soon as alone.
#[derive(Default)]
pub struct Settler {
    waiting: std::sync::Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
    /// Messages this process sent whose outcome the store refused (it was down or
    /// full), kept so that when their lease runs out and the claim path takes them
    /// again they are recorded as sent, not sent twice.
    unstored: std::sync::Mutex<HashMap<i64, Settlement>>,
}

/// How long a sent message whose outcome could not be stored is remembered: far
/// longer than any outage a lease would be taken over after.
const REMEMBER_UNSTORED: chrono::TimeDelta = chrono::TimeDelta::hours(1);

type Waiting = (Settlement, oneshot::Sender<Result<(), String>>);

impl Settler {
    /// Records `settlement` with the others waiting, once it is its turn.
    pub async fn settle(
        &self,
        store: &dyn OutboxStore,
        settlement: Settlement,
    ) -> Result<(), StoreError> {
        let (reply, mut answer) = oneshot::channel();
        self.waiting().push((settlement, reply));
        let _turn = self.turn.lock().await;
        // A turn before this one took it along and answered before giving the turn.
        if let Ok(answered) = answer.try_recv() {
            return answered.map_err(StoreError::Together);
        }
        let (settlements, replies): (Vec<Settlement>, Vec<_>) =
            std::mem::take(&mut *self.waiting()).into_iter().unzip();
        // Remembered until the write says otherwise, so a write that fails, or never
        // ends (its task aborted, a panic), leaves the sends known.
        self.remember_unstored(&settlements);
        let written = store.settle_notifications(&settlements).await;
        if written.is_ok() {
            self.forget_stored(&settlements);
        }
        let told = written.as_ref().map(|_| ()).map_err(ToString::to_string);
        for reply in replies {
            // This one's own answer is taken below; a caller gone hears nothing.
            let _ = reply.send(told.clone());
        }
        match answer.try_recv() {
            Ok(_) => written,
            // Taken by a turn whose write was abandoned (its task aborted or
            // panicked): remembered, and recorded when the claim path brings it back.
            Err(_) => Err(StoreError::Together(
                "the write of its group was abandoned; a sent message is recorded when its lease runs out"
                    .into(),
            )),
        }
    }

    /// The settlement of message `id` if this process sent it and the store refused
    /// its outcome: the message must be recorded as sent, not sent again.
    pub fn sent_unstored(&self, id: i64) -> Option<Settlement> {
        self.unstored_sent().get(&id).cloned()
    }

    fn forget_stored(&self, settlements: &[Settlement]) {
        let mut unstored = self.unstored_sent();
        for settlement in settlements {
            unstored.remove(&settlement.id);
        }
    }

    fn remember_unstored(&self, settlements: &[Settlement]) {
        let mut unstored = self.unstored_sent();
        if let Some(newest) = settlements.iter().map(|settlement| settlement.at).max() {
            unstored.retain(|_, kept| newest - kept.at < REMEMBER_UNSTORED);
        }
        for settlement in settlements {
            // Only a send matters: a retry or a failure not recorded is attempted
            // again, which is what it asked for.
            if matches!(settlement.delivery, Delivery::Sent) {
                unstored.insert(settlement.id, settlement.clone());
            }
        }
    }

    fn unstored_sent(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Settlement>> {
        self.unstored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pushes and takes only, so a lock poisoned by a panic elsewhere is still whole.
    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::paging::PageFacts;
    use async_trait::async_trait;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Records the groups written; holds each write while the test holds `hold`.
    #[derive(Default)]
    struct Groups {
        written: std::sync::Mutex<Vec<Vec<i64>>>,
        hold: tokio::sync::Mutex<()>,
        writing: AtomicUsize,
        failing: AtomicBool,
    }

    #[async_trait]
    impl OutboxStore for Groups {
        async fn overdue_escalations(&self, _: DateTime<Utc>) -> Result<i64, StoreError> {
            Ok(0)
        }
        async fn claimed_notifications(
            &self,
            _: &str,
            _: DateTime<Utc>,
        ) -> Result<Vec<Notification>, StoreError> {
            Ok(Vec::new())
        }
        async fn claim_notifications(
            &self,
            _: DateTime<Utc>,
            _: chrono::TimeDelta,
            _: i64,
            _: &str,
        ) -> Result<Vec<Notification>, StoreError> {
            Ok(Vec::new())
        }
        async fn settle_notifications(&self, settlements: &[Settlement]) -> Result<(), StoreError> {
            self.writing.fetch_add(1, Ordering::SeqCst);
            let _held = self.hold.lock().await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(StoreError::Write("disk full".into()));
            }
            let ids = settlements.iter().map(|settlement| settlement.id).collect();
            self.written.lock().unwrap().push(ids);
            Ok(())
        }
        async fn page_facts(&self, _: &[i64], _: i64) -> Result<PageFacts, StoreError> {
            Ok(PageFacts::default())
        }
        async fn queue_notifications(&self, _: &[Notification]) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn sent(id: i64) -> Settlement {
        Settlement {
            id,
            claim: "c".into(),
            delivery: Delivery::Sent,
            at: DateTime::UNIX_EPOCH,
            timeline: None,
        }
    }

    /// Settles 1, then 2..=11 while 1 is being written; returns each one's answer.
    async fn storm(groups: &Arc<Groups>) -> Vec<Result<(), StoreError>> {
        let settler = Arc::new(Settler::default());
        let held = groups.hold.lock().await;
        let mut tasks = tokio::task::JoinSet::new();
        for id in 1..=11 {
            let (settler, store) = (Arc::clone(&settler), Arc::clone(groups));
            tasks.spawn(async move { settler.settle(store.as_ref(), sent(id)).await });
            if id == 1 {
                while groups.writing.load(Ordering::SeqCst) == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        drop(held);
        tasks.join_all().await
    }

    #[tokio::test]
    async fn settlements_waiting_behind_a_write_are_written_together_and_each_answered() {
        let groups = Arc::new(Groups::default());
        let answers = storm(&groups).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        let written = groups.written.lock().unwrap().clone();
        assert_eq!(
            written.len(),
            2,
            "one write, then one for all who waited: {written:?}"
        );
        assert_eq!(written[0], [1]);
        let mut rest = written[1].clone();
        rest.sort_unstable();
        assert_eq!(rest, (2..=11).collect::<Vec<i64>>());
    }

    #[tokio::test]
    async fn a_failed_group_write_fails_every_settlement_in_it() {
        let groups = Arc::new(Groups::default());
        groups.failing.store(true, Ordering::SeqCst);
        let answers = storm(&groups).await;
        assert_eq!(answers.len(), 11);
        for answer in answers {
            let error = answer.expect_err("none of them was written");
            assert!(error.to_string().contains("disk full"), "{error}");
        }
    }

    /// A send whose outcome the store refused is remembered, so the claim path that
    /// takes the row again records it instead of sending it twice; a refused retry
    /// is not (attempting it again is what it asked for).
    #[tokio::test]
    async fn a_send_the_store_could_not_record_is_remembered() {
        let groups = Groups::default();
        groups.failing.store(true, Ordering::SeqCst);
        let settler = Settler::default();
        assert!(settler.settle(&groups, sent(7)).await.is_err());
        let retry = Settlement {
            delivery: Delivery::Retry {
                at: DateTime::UNIX_EPOCH,
                error: "relay down".into(),
            },
            ..sent(8)
        };
        assert!(settler.settle(&groups, retry).await.is_err());
        assert_eq!(settler.sent_unstored(7).map(|kept| kept.id), Some(7));
        assert!(settler.sent_unstored(8).is_none());
        let later = Settlement {
            at: DateTime::UNIX_EPOCH + REMEMBER_UNSTORED,
            ..sent(9)
        };
        assert!(settler.settle(&groups, later).await.is_err());
        assert!(
            settler.sent_unstored(7).is_none(),
            "forgotten after an hour"
        );
        // Recorded at last: nothing left to remember.
        groups.failing.store(false, Ordering::SeqCst);
        let kept = settler.sent_unstored(9).unwrap();
        assert!(settler.settle(&groups, kept).await.is_ok());
        assert!(settler.sent_unstored(9).is_none());
    }

    /// A write that never ends (its task aborted mid-write) leaves its sends known.
    #[tokio::test]
    async fn a_send_whose_write_was_abandoned_is_remembered() {
        let groups = Arc::new(Groups::default());
        let settler = Arc::new(Settler::default());
        let held = groups.hold.lock().await;
        let writing = {
            let (settler, store) = (Arc::clone(&settler), Arc::clone(&groups));
            tokio::spawn(async move { settler.settle(store.as_ref(), sent(5)).await })
        };
        while groups.writing.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        writing.abort();
        assert!(writing.await.is_err(), "aborted");
        drop(held);
        assert_eq!(settler.sent_unstored(5).map(|kept| kept.id), Some(5));
    }
}
