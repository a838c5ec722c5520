//! The tick loop: fires due escalation timers through the pipeline, delivers due
//! messages from the outbox, and watches itself (`tocsin_escalations_overdue`). It
//! wakes every 250 ms, and at once when a commit queued messages, so a page leaves
//! within milliseconds of the alert and a timer fires within 1 s of its due time.

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::notify::outbox::Outbox;
use crate::pipeline::Pipeline;
use crate::store::Store;
use chrono::TimeDelta;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

const PERIOD: Duration = Duration::from_millis(250);
/// A step later than this is reported as overdue.
const OVERDUE: TimeDelta = TimeDelta::seconds(30);

/// What one tick needs.
#[derive(Clone)]
pub struct Ticker {
    pub pipeline: Pipeline,
    pub outbox: Arc<Outbox>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
}

impl Ticker {
    /// One round: due escalations, then due messages, then the self-check.
    pub async fn tick(&self) {
        if let Err(error) = self.pipeline.tick().await {
            tracing::error!(%error, "escalation tick failed");
        }
        if let Err(error) = self.outbox.flush().await {
            tracing::error!(%error, "outbox flush failed");
        }
        match self
            .store
            .overdue_escalations(self.clock.now() - OVERDUE)
            .await
        {
            Ok(overdue) => {
                if overdue > 0 {
                    tracing::error!(overdue, "escalation steps are overdue by more than 30 s");
                }
                self.metrics.escalations_overdue.set(overdue);
            }
            Err(error) => tracing::error!(%error, "cannot count overdue escalations"),
        }
    }

    /// Ticks until `stop` turns true.
    pub async fn run(self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(PERIOD) => {}
            }
            if *stop.borrow() {
                return;
            }
            self.tick().await;
        }
    }
}
