//! Claiming: the rows the writer handed over with their claim, then due rows claimed
//! under a lease of their own, each round sent concurrently.
//!
//! Messages due the moment they are queued (an L1 page) skip the claim: the writer
//! writes them claimed and hands the claim over ([`Handoff`]) once the batch is
//! durable, so a page leaves one query and one fsync sooner.

use super::Outbox;
use super::facts::Facts;
use crate::store::paging::{Notification, NotificationKind};
use crate::store::{CLAIM_LEASE, Claims, RENEW_EVERY, StoreError, work_claimed, work_claims};
use chrono::TimeDelta;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};

/// Messages claimed per round.
const CLAIM: i64 = 64;
/// Handed messages composed and sent at once. A storm hands thousands in one flush;
/// started all together, their rendering filled the runtime's run queue and the
/// pipeline waited behind it to be told its batch had committed (commits of up to
/// 1.6 s seen from the pipeline, the writer idle). 16 measured faster for ingest than
/// 64 and 8 faster still (BENCHMARKS.md), but the limit also holds sends waiting on
/// a slow relay: 16 of 200 ms each still send 80 pages a second from one flush.
const HANDED_AT_ONCE: usize = 16;

/// How the writer tells the outbox about messages it queued: a wake, and the claims
/// it wrote messages due now under, for the outbox to take over.
pub struct Handoff {
    pub wake: Arc<Notify>,
    claims: Mutex<Vec<String>>,
}

impl Handoff {
    pub fn new(wake: Arc<Notify>) -> Self {
        Self {
            wake,
            claims: Mutex::new(Vec::new()),
        }
    }

    /// Called once a batch that queued messages is durable.
    pub fn hand(&self, claim: Option<&str>) {
        self.claims().extend(claim.map(str::to_string));
        self.wake.notify_one();
    }

    fn hand_back(&self, claims: impl Iterator<Item = String>) {
        self.claims().extend(claims);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.claims())
    }

    /// A panic elsewhere while holding the list leaves it whole (pushes and takes
    /// only), so a poisoned lock is still used.
    fn claims(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Outbox {
    /// Sends everything due now, concurrently within each claimed round; returns how
    /// many messages were attempted.
    pub async fn flush(self: &Arc<Self>) -> Result<usize, StoreError> {
        let deliver = |notification, claim: String| {
            let outbox = Arc::clone(self);
            async move { outbox.deliver(notification, &claim, None).await }
        };
        let handed = self.take_handed().await?;
        let worked = handed.iter().map(|(_, rows)| rows.len()).sum::<usize>();
        let facts = self.handed_facts(&handed).await;
        let lanes = Arc::new(Semaphore::new(HANDED_AT_ONCE));
        let deliver_handed = |notification, claim: String| {
            let outbox = Arc::clone(self);
            let facts = facts.clone();
            let lanes = Arc::clone(&lanes);
            async move {
                // Never closed: no permit is never the case, and would only mean no limit.
                let _lane = lanes.acquire_owned().await.ok();
                outbox.deliver(notification, &claim, facts.as_deref()).await
            }
        };
        // Every handed claim at once, as one claim round's rows are.
        futures_util::future::join_all(handed.into_iter().map(|(claim, rows)| {
            let deliver = &deliver_handed;
            async move {
                work_claimed(
                    self.store.as_ref(),
                    self.clock.as_ref(),
                    Claims::Notifications,
                    |notification: &Notification| notification.id,
                    &claim,
                    rows,
                    deliver,
                )
                .await;
            }
        }))
        .await;
        let claimed = work_claims(
            self.store.as_ref(),
            self.clock.as_ref(),
            Claims::Notifications,
            |notification: &Notification| notification.id,
            |claim| {
                let (store, now) = (Arc::clone(&self.store), self.clock.now());
                async move {
                    store
                        .claim_notifications(now, CLAIM_LEASE, CLAIM, &claim)
                        .await
                }
            },
            deliver,
        )
        .await?;
        self.sync_chat().await;
        Ok(worked + claimed)
    }

    /// What the handed messages show of their incidents, read once for all of them;
    /// none when that read fails, and each message reads its own (and meets the
    /// failure itself, where it is handled as before).
    async fn handed_facts(&self, handed: &[(String, Vec<Notification>)]) -> Option<Arc<Facts>> {
        let incidents: Vec<i64> = handed
            .iter()
            .flat_map(|(_, rows)| rows.iter())
            .filter(|row| row.kind != NotificationKind::Report)
            .map(|row| row.incident_id)
            .collect();
        if incidents.is_empty() {
            return None;
        }
        match self.facts(&incidents).await {
            Ok(facts) => Some(Arc::new(facts)),
            Err(error) => {
                tracing::warn!(%error, "cannot read what the handed pages show; each reads its own");
                None
            }
        }
    }

    /// The rows of every claim the writer handed over whose lease leaves this process
    /// time to renew it as an outbox claim would be (3 s): one closer to running out
    /// may be taken over by another process any moment, so it is left to the claim
    /// path. Claims not read because the store failed are handed back.
    async fn take_handed(&self) -> Result<Vec<(String, Vec<Notification>)>, StoreError> {
        let mut claims = self.handoff.take().into_iter();
        let margin = CLAIM_LEASE - TimeDelta::from_std(RENEW_EVERY).unwrap_or_default();
        let mut handed = Vec::new();
        while let Some(claim) = claims.next() {
            let held_past = self.clock.now() + margin;
            match self.store.claimed_notifications(&claim, held_past).await {
                Ok(rows) => handed.push((claim, rows)),
                Err(error) => {
                    self.handoff.hand_back(std::iter::once(claim).chain(claims));
                    return Err(error);
                }
            }
        }
        Ok(handed)
    }
}
