//! The tick loop: fires due escalation timers through the pipeline, delivers due
//! messages from the outbox, and watches itself (`tocsin_escalations_overdue`). It
//! wakes every 250 ms, and at once when a commit queued messages, so a page leaves
//! within milliseconds of the alert and a timer fires within 1 s of its due time.
//! Wall-clock jobs (the weekly report, paging drills) run on cron beside it.

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::outbox::Outbox;
use crate::pipeline::{Pipeline, WeakPipeline};
use crate::store::Store;
use chrono::TimeDelta;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

const PERIOD: Duration = Duration::from_millis(250);
/// A step later than this is reported as overdue.
const OVERDUE: TimeDelta = TimeDelta::seconds(30);

/// What one tick needs.
#[derive(Clone)]
pub struct Ticker {
    pub pipeline: Pipeline,
    pub outbox: Arc<Outbox>,
    /// Ticket calls: flushed by [`Ticker::tick`]; the daemon runs it in its own loop.
    pub desk: Arc<crate::ticket::desk::Desk>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
}

impl Ticker {
    /// One round: due escalations, due messages, due ticket calls, the self-check.
    pub async fn tick(&self) {
        self.round().await;
        if let Err(error) = self.desk.flush().await {
            tracing::error!(%error, "ticket desk flush failed");
        }
    }

    /// Escalations, messages and the self-check: everything paging needs, and nothing
    /// that waits on a helpdesk.
    async fn round(&self) {
        if let Err(error) = self.pipeline.tick().await {
            tracing::error!(%error, "escalation tick failed");
        }
        self.send_queued().await;
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

    /// Ticks until `stop` turns true. A wake means a commit queued messages: they go
    /// out at once, without the timers and the self-check, so a page due now does not
    /// wait for a pass over every open incident. The full round keeps its own period,
    /// however often wakes come.
    pub async fn run(self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let mut next_round = tokio::time::Instant::now() + PERIOD;
        loop {
            let woken = tokio::select! {
                _ = stop.changed() => return,
                _ = wake.notified() => true,
                _ = tokio::time::sleep_until(next_round) => false,
            };
            if *stop.borrow() {
                return;
            }
            if woken {
                self.send_queued().await;
            } else {
                self.round().await;
                next_round = tokio::time::Instant::now() + PERIOD;
            }
        }
    }

    async fn send_queued(&self) {
        if let Err(error) = self.outbox.flush().await {
            tracing::error!(%error, "outbox flush failed");
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Report {
    Weekly,
    Monthly,
}

/// Starts the cron jobs: the weekly report, the monthly review and each paging drill. The drill jobs hold
/// a weak handle so they never keep the writer alive at shutdown.
pub async fn cron_jobs(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    outbox: Arc<Notify>,
    pipeline: WeakPipeline,
) -> Result<Option<JobScheduler>, JobSchedulerError> {
    if config.weekly_report.is_none() && config.monthly_report.is_none() && config.drills.is_empty()
    {
        return Ok(None);
    }
    let scheduler = JobScheduler::new().await?;
    let reports = [
        (Report::Weekly, config.weekly_report.clone()),
        (Report::Monthly, config.monthly_report.clone()),
    ];
    for (report, schedule) in reports {
        let Some((cron, to)) = schedule else { continue };
        let (store, clock, outbox) = (store.clone(), clock.clone(), outbox.clone());
        let job = Job::new_async(cron.as_str(), move |_, _| {
            let (store, clock, outbox, to) =
                (store.clone(), clock.clone(), outbox.clone(), to.clone());
            Box::pin(async move {
                let (store, clock) = (store.as_ref(), clock.as_ref());
                let queued = match report {
                    Report::Weekly => crate::report::queue_weekly(store, clock, &to, &outbox).await,
                    Report::Monthly => {
                        crate::report::monthly::queue_monthly(store, clock, &to, &outbox).await
                    }
                };
                if let Err(error) = queued {
                    tracing::error!(%error, ?report, "cannot queue the report");
                }
            })
        })?;
        scheduler.add(job).await?;
    }
    for drill in &config.drills {
        let (name, pipeline) = (drill.name.clone(), pipeline.clone());
        let job = Job::new_async(drill.cron.as_str(), move |_, _| {
            let (name, pipeline) = (name.clone(), pipeline.upgrade());
            Box::pin(async move {
                let Some(pipeline) = pipeline else { return };
                match pipeline.drill(&name, "cron").await {
                    Ok(incident) => {
                        tracing::info!(drill = %name, incident = incident.id, "drill started")
                    }
                    // Every replica's cron fires; the first one's drill is running.
                    Err(error @ crate::pipeline::PipelineError::NotPossible(_)) => {
                        tracing::info!(drill = %name, %error, "drill not started")
                    }
                    Err(error) => tracing::error!(drill = %name, %error, "cannot start the drill"),
                }
            })
        })?;
        scheduler.add(job).await?;
    }
    scheduler.start().await?;
    Ok(Some(scheduler))
}
