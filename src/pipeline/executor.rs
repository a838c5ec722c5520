//! Starts the runs the pipeline decided, each in its own task, and reports their end
//! back. A secret a runbook hands over (a new password) goes straight to the email
//! channel and is never stored, logged or put on a timeline.

use super::{PipelineError, RunRequest, WeakPipeline};
use crate::notify::outbox::Outbox;
use crate::runbook::runner;
use crate::store::{CLAIM_LEASE, Claims, RENEW_EVERY};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Runs requests until the pipeline closes the channel.
pub async fn execute(
    mut requests: mpsc::UnboundedReceiver<RunRequest>,
    pipeline: WeakPipeline,
    outbox: Arc<Outbox>,
) {
    let mut running = tokio::task::JoinSet::new();
    while let Some(request) = requests.recv().await {
        let pipeline = pipeline.clone();
        let outbox = outbox.clone();
        running.spawn(async move {
            let run_id = request.run_id;
            let renewer = Arc::clone(&outbox);
            // The lease is renewed until the end is recorded, so no other replica takes
            // the run for lost while it runs, hands over a secret or waits for the turn.
            renewing(&renewer, run_id, run_and_report(request, pipeline, outbox)).await;
        });
        while running.try_join_next().is_some() {}
    }
    // The writer is gone (it recorded these runs as interrupted): cut them short, and
    // wait until they have let go of the store.
    running.shutdown().await;
}

/// Runs one request, hands over its secret if it made one, and reports the outcome.
async fn run_and_report(request: RunRequest, pipeline: WeakPipeline, outbox: Arc<Outbox>) {
    let mut outcome = runner::run(
        &request.runbook,
        &request.params,
        request.incident_id,
        &request.priority,
        &request.secret_domains,
    )
    .await;
    if let Some((address, secret)) = outcome.delivery.take() {
        if let Err(error) = outbox
            .deliver_secret(&address, &request.runbook.name, &secret)
            .await
        {
            outcome.success = false;
            outcome.output.push_str(&format!(
                "\ncould not deliver the new credential to {address}: {error}"
            ));
        } else {
            outcome
                .output
                .push_str(&format!("\nthe new credential was sent to {address}"));
        }
    }
    report(&pipeline, request.run_id, outcome).await;
}

/// First wait before reporting an outcome again, doubled up to `RETRY_AT_MOST`.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(200);
const RETRY_AT_MOST: std::time::Duration = std::time::Duration::from_secs(5);
/// How long an outcome is reported before the run is left to its lease.
const REPORT_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// Reports the outcome until it is recorded: it happened (a password may already
/// have been mailed), so a store that fails once must not turn it into "interrupted".
/// The lease is renewed meanwhile, so no replica takes the run for lost.
async fn report(pipeline: &WeakPipeline, run_id: i64, outcome: runner::RunOutcome) {
    let mut wait = RETRY_FIRST;
    let give_up = tokio::time::Instant::now() + REPORT_FOR;
    loop {
        if tokio::time::Instant::now() > give_up {
            // The lease then runs out and the run is recorded lost, instead of this
            // outcome failing every batch it joins for ever.
            tracing::error!(
                run = run_id,
                "the end of a runbook run could not be recorded for 10 minutes; giving up"
            );
            return;
        }
        let Some(live) = pipeline.upgrade() else {
            tracing::warn!(
                run = run_id,
                "Tocsin stopped before the end of a runbook run was recorded"
            );
            return;
        };
        match live.run_finished(run_id, outcome.clone()).await {
            Ok(()) => return,
            Err(PipelineError::Unavailable(error)) => {
                tracing::warn!(%error, run = run_id, "cannot record the end of a runbook run yet; retrying");
            }
            Err(error) => {
                tracing::error!(%error, run = run_id, "cannot record the end of a runbook run");
                return;
            }
        }
        drop(live);
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_AT_MOST);
    }
}

/// Drives `work` while renewing the run's lease every `RENEW_EVERY`.
async fn renewing(outbox: &Outbox, run_id: i64, work: impl std::future::Future<Output = ()>) {
    tokio::pin!(work);
    let start = tokio::time::Instant::now() + RENEW_EVERY;
    let mut renew = tokio::time::interval_at(start, RENEW_EVERY);
    loop {
        tokio::select! {
            () = &mut work => return,
            _ = renew.tick() => {
                let until = outbox.clock.now() + CLAIM_LEASE;
                if let Err(error) = outbox.store.renew_claims(Claims::Runs, "", &[run_id], until).await {
                    tracing::warn!(%error, run = run_id, "cannot renew the run's lease");
                }
            }
        }
    }
}
