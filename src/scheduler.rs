//! The tick loops: one fires due escalation timers through the pipeline and watches
//! itself (`tocsin_escalations_overdue`) every 250 ms; beside it, one delivers due
//! messages from the outbox every 250 ms and at once when a commit queued messages,
//! so a page leaves within milliseconds of the alert and a timer fires within 1 s of
//! its due time.
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
    /// On-call overrides another replica may have written: read again every round,
    /// before the timers page anyone.
    pub overrides: crate::oncall::stored::StoredOverrides,
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
        match self.store.overrides(self.clock.now()).await {
            Ok(rows) => self.overrides.replace(rows),
            Err(error) => tracing::error!(%error, "cannot read the on-call overrides"),
        }
        self.fire_timers().await;
        self.send_queued().await;
        self.check_overdue().await;
    }

    async fn fire_timers(&self) {
        if let Err(error) = self.pipeline.tick().await {
            tracing::error!(%error, "escalation tick failed");
        }
    }

    async fn send_queued(&self) {
        if let Err(error) = self.outbox.flush().await {
            tracing::error!(%error, "outbox flush failed");
        }
    }

    async fn check_overdue(&self) {
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

    /// Runs until `stop` turns true, as two loops side by side: the outbox sends on
    /// every wake (a commit queued messages) and every period; the timers and the
    /// self-check run every period. Apart, a page due now never waits behind a pass
    /// over every open incident, and a stream of wakes never starves the timers.
    pub async fn run(self, wake: Arc<Notify>, stop: watch::Receiver<bool>) {
        let sending = async {
            let mut stop = stop.clone();
            while !stopped(&mut stop, wake.notified()).await {
                self.send_queued().await;
            }
        };
        let timing = async {
            let mut stop = stop.clone();
            while !stopped(&mut stop, std::future::pending::<()>()).await {
                self.fire_timers().await;
                self.check_overdue().await;
            }
        };
        tokio::join!(sending, timing);
    }
}

/// Waits for `event` or one period, whichever comes first; true once `stop` is set
/// (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>, event: impl std::future::Future) -> bool {
    tokio::select! {
        changed = stop.changed() => if changed.is_err() {
            return true;
        },
        _ = event => {}
        _ = tokio::time::sleep(PERIOD) => {}
    }
    *stop.borrow()
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
