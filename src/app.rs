//! The composition root: opens the store, starts the pipeline writer, builds the
//! router, and serves it until SIGTERM or Ctrl-C, then drains in-flight work.

use crate::api::{AppState, router};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::ack_link::AckLinks;
use crate::notify::email::EmailSender;
use crate::notify::outbox::Outbox;
use crate::notify::sms::SmsSender;
use crate::pipeline::Pipeline;
use crate::scheduler::Ticker;
use crate::store::{self, Store};
use crate::supervise::{self, Fatal};
use crate::templates::Templates;
use crate::tls::Certificates;
use anyhow::Context;
use axum::Router;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Whether timers and deliveries run by themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// The tick loop runs (the daemon).
    Tick,
    /// Only explicit [`Ticker::tick`] calls run timers and deliveries (tests).
    Manual,
}

/// A started Tocsin: its state and the tasks behind it.
pub struct App {
    pub state: AppState,
    /// One round of escalations and deliveries; tests call it after moving the clock.
    pub ticker: Ticker,
    writer: JoinHandle<()>,
    scheduler: JoinHandle<()>,
    executor: JoinHandle<()>,
    reports: Option<tokio_cron_scheduler::JobScheduler>,
    stop: watch::Sender<bool>,
}

impl App {
    /// Opens the store named in `config` and starts the pipeline.
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store = store::open(&config.storage_url)
            .await
            .context("cannot open the store")?;
        Self::start_with_store(config, clock, store, Background::Tick).await
    }

    /// Starts the pipeline on a store opened by the caller (tests inject faults this
    /// way). With [`Background::Manual`] nothing fires unless [`Ticker::tick`] is
    /// called, so tests that move a clock decide exactly when timers run.
    pub async fn start_with_store(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Arc<dyn Store>,
        background: Background,
    ) -> anyhow::Result<Self> {
        // reqwest and lettre share rustls; ring is the one provider compiled in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Console overrides are rows: a restart finds them before the first page.
        config.directory.stored.replace(
            store
                .overrides(clock.now())
                .await
                .context("cannot read the on-call overrides from the store")?,
        );
        let config = Arc::new(config);
        warn_about_tokens(&config);
        let shared: crate::config::SharedConfig = Arc::new(arc_swap::ArcSwap::new(config.clone()));
        let metrics = Metrics::new().context("cannot register metrics")?;
        let wake = Arc::new(Notify::new());
        let handoff = Arc::new(crate::notify::outbox::Handoff::new(wake.clone()));
        let (runs, run_requests) = tokio::sync::mpsc::unbounded_channel();
        let (changes, _) = tokio::sync::broadcast::channel(16);
        let (pipeline, writer) = Pipeline::start(
            store.clone(),
            clock.clone(),
            shared.clone(),
            metrics.clone(),
            handoff.clone(),
            runs,
            changes.clone(),
        )
        .await
        .context("cannot load the open alerts and incidents from the store")?;
        let fatal = Fatal::default();
        let writer = supervise::spawn("writer", &fatal, writer);
        let released = store
            .release_claims(clock.now())
            .await
            .context("cannot reset the outbox")?;
        if released > 0 {
            tracing::warn!(
                released,
                "messages that were being sent when Tocsin stopped are queued again"
            );
        }
        let links = ack_links(store.as_ref(), config.ack_link_ttl).await?;
        let templates = Arc::new(
            Templates::load(&config.templates_dir).context("cannot load the message templates")?,
        );
        let outbox = Arc::new(outbox(
            &shared,
            store.clone(),
            clock.clone(),
            metrics.clone(),
            links.clone(),
            templates.clone(),
            handoff,
        )?);
        let executor = supervise::spawn(
            "runbook executor",
            &fatal,
            crate::pipeline::executor::execute(run_requests, pipeline.downgrade(), outbox.clone()),
        );
        let desk = Arc::new(crate::ticket::desk::Desk {
            store: store.clone(),
            clock: clock.clone(),
            settings: {
                let shared = shared.clone();
                Arc::new(move || -> Arc<dyn crate::ticket::Settings> { shared.load_full() })
            },
            metrics: metrics.clone(),
            http: outbox.http.clone(),
        });
        let ticker = Ticker {
            pipeline: pipeline.clone(),
            outbox,
            desk: desk.clone(),
            store: store.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            overrides: config.directory.stored.clone(),
        };
        let reports = crate::scheduler::cron_jobs(
            &config,
            store.clone(),
            clock.clone(),
            wake.clone(),
            pipeline.downgrade(),
        )
        .await
        .context("cannot start the cron jobs (weekly report, drills)")?;
        let (stop, stopped) = watch::channel(false);
        if store.shared() {
            tokio::spawn(relay_commits(
                store.clone(),
                changes.clone(),
                stopped.clone(),
            ));
        }
        let scheduler = match background {
            Background::Tick => {
                let desk = supervise::spawn("ticket desk", &fatal, desk.run(stopped.clone()));
                let ticks = supervise::spawn("timer", &fatal, ticker.clone().run(wake, stopped));
                tokio::spawn(async move {
                    let _ = tokio::join!(desk, ticks);
                })
            }
            Background::Manual => tokio::spawn(async {}),
        };
        let limiters = config
            .sources
            .iter()
            .filter_map(|(kind, source)| {
                source
                    .rate_limit
                    .map(|rate| (*kind, RateLimiter::direct(Quota::per_second(rate))))
            })
            .collect::<HashMap<_, _>>();
        let state = Arc::new(crate::api::Handles {
            config: shared,
            config_path: std::sync::OnceLock::new(),
            store,
            pipeline,
            clock,
            metrics,
            links,
            templates,
            changes,
            limiters: Arc::new(limiters),
            fatal,
            closing: watch::Sender::new(false),
        });
        Ok(Self {
            state,
            ticker,
            writer,
            scheduler,
            executor,
            reports,
            stop,
        })
    }

    /// The HTTP API.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Stops everything at once, committing and giving back nothing, as SIGKILL
    /// would (tests of replicas taking over a dead one's work).
    pub fn abort(self) {
        self.writer.abort();
        self.scheduler.abort();
        self.executor.abort();
    }

    /// Stops the tick loop and waits for the writer to commit what is queued; call
    /// after the server stopped.
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut reports) = self.reports.take()
            && let Err(error) = reports.shutdown().await
        {
            tracing::warn!(%error, "the report scheduler did not stop cleanly");
        }
        if let Err(error) = self.scheduler.await {
            tracing::error!(%error, "the scheduler ended abnormally");
        }
        drop(self.state);
        drop(self.ticker);
        if let Err(error) = self.writer.await {
            tracing::error!(%error, "the pipeline writer ended abnormally");
        }
        // The writer is gone, so the executor's channel is closed: it cuts the runs in
        // flight short (they are recorded as interrupted) and ends.
        if let Err(error) = self.executor.await {
            tracing::error!(%error, "the runbook executor ended abnormally");
        }
    }
}

/// The link-signing key lives in the store so links survive restarts and work on
/// every replica.
async fn ack_links(store: &dyn Store, ttl: chrono::TimeDelta) -> anyhow::Result<AckLinks> {
    let fresh = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let key = store
        .setting("ack_link_key", &fresh)
        .await
        .context("cannot read the link-signing key")?;
    AckLinks::new(key.as_bytes(), ttl).context("the stored link-signing key is empty")
}

fn outbox(
    config: &crate::config::SharedConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    links: AckLinks,
    templates: Arc<Templates>,
    handoff: Arc<crate::notify::outbox::Handoff>,
) -> anyhow::Result<Outbox> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .context("cannot build the HTTP client")?;
    // The channels are set up once: SMTP and SMS gateway changes need a restart.
    let current = config.load_full();
    let email = current
        .email
        .as_ref()
        .map(EmailSender::new)
        .transpose()
        .context("cannot set up email")?;
    let sms = current
        .sms
        .as_ref()
        .map(|sms| SmsSender::new(sms, http.clone()));
    Ok(Outbox {
        store,
        clock,
        config: config.clone(),
        metrics,
        templates,
        links,
        email,
        sms,
        http,
        handoff,
        chat_sync: crate::notify::outbox::ChatSync::default(),
        settler: crate::notify::outbox::Settler::default(),
    })
}

/// How long a stop waits for open connections.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the daemon until a shutdown signal; SIGHUP reloads the configuration and,
/// with HTTPS, the certificate files.
pub async fn serve(
    config: Config,
    path: std::path::PathBuf,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let listen = config.listen;
    let client_timeout = config.client_timeout;
    if let Some(refusal) = config.exposure_refusal() {
        anyhow::bail!(refusal);
    }
    if let Some(mismatch) = config.public_url_mismatch() {
        tracing::warn!("{mismatch}");
    }
    let certificates = config
        .tls
        .as_ref()
        .map(Certificates::load)
        .transpose()
        .with_context(|| format!("cannot serve HTTPS; fix [server] in {}", path.display()))?
        .map(Arc::new);
    if certificates.is_some() && !config.public_url.starts_with("https://") {
        tracing::warn!(
            public_url = %config.public_url,
            "Tocsin serves HTTPS only, but the links in messages use server.public_url; set it to https://…"
        );
    }
    let app = App::start(config, clock).await?;
    // Nothing has set it yet: only `serve` reads its configuration from a file.
    let _ = app.state.config_path.set(path);
    let hangups = tokio::spawn(reload_on_hangup(app.state.clone(), certificates.clone()));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {listen}; is another process using it? change [server] listen"
            )
        })?;
    let scheme = if certificates.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%listen, scheme, "tocsin is listening");
    let fatal = app.state.fatal.clone();
    let router = app.router();
    let stopping = Arc::new(Notify::new());
    let signal = {
        let stopping = Arc::clone(&stopping);
        let state = app.state.clone();
        async move {
            shutdown_signal().await;
            state.closing.send_replace(true);
            stopping.notify_one();
        }
    };
    let serving = crate::server::serve(listener, router, certificates, client_timeout, signal);
    // A dead task ends the process at once: waiting for in-flight requests would
    // only hold answers the dead writer can never give. A stop waits for requests in
    // flight, but not for connections that never end by themselves (the dashboard's
    // live stream), so a supervisor's stop never runs into its kill timeout.
    tokio::select! {
        () = serving => {}
        () = fatal.tripped() => {
            anyhow::bail!("{}", fatal.reason().unwrap_or("a background task died"));
        }
        () = async {
            stopping.notified().await;
            tokio::time::sleep(DRAIN).await;
        } => {
            tracing::warn!("connections still open {} s after the stop (live dashboards, slow clients) are closed", DRAIN.as_secs());
        }
    }
    tracing::info!("shutting down: finishing the in-flight batch");
    hangups.abort();
    // The queued batch and in-flight messages get ten seconds.
    if tokio::time::timeout(std::time::Duration::from_secs(10), app.finish())
        .await
        .is_err()
    {
        tracing::warn!("in-flight work did not finish within 10 s; exiting anyway");
    }
    Ok(())
}

async fn reload_on_hangup(state: AppState, certificates: Option<Arc<Certificates>>) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        return;
    };
    while hangup.recv().await.is_some() {
        if let Err(errors) = crate::reload::reload(
            &state.config,
            state.config_path.get().map(std::path::PathBuf::as_path),
        ) {
            tracing::error!("configuration refused, the running one stays:\n{errors}");
        }
        if let Some(certificates) = &certificates {
            reload_certificates(&state, certificates);
        }
    }
}

/// Reads the files the running configuration names (new paths when a reload just
/// changed them); a bad pair leaves the running certificate in place.
fn reload_certificates(state: &AppState, certificates: &Certificates) {
    // HTTPS turned off in the file: the listener keeps its mode until a restart.
    let Some(files) = state.config.load().tls.clone() else {
        return;
    };
    match certificates.reload(&files) {
        Ok(()) => tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded"),
        Err(error) => tracing::error!(
            config_key = error.config_key(),
            "TLS certificate refused, the running one stays: {error}"
        ),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

fn warn_about_tokens(config: &Config) {
    for (kind, source) in &config.sources {
        match &source.token {
            None => {
                tracing::warn!(source = %kind, "[sources.{kind}] has no token: anyone who can reach Tocsin can post alerts")
            }
            Some(token) if token.starts_with("dev-") => {
                tracing::warn!(source = %kind, "[sources.{kind}] uses the development token; set TOCSIN_INGEST_TOKEN")
            }
            Some(_) => {}
        }
    }
    if config
        .api_tokens
        .iter()
        .any(|t| t.token.starts_with("dev-"))
    {
        tracing::warn!("an API token is the development default; set TOCSIN_ADMIN_TOKEN");
    }
}

/// Other replicas' commits, for the dashboard's live stream, until Tocsin stops; a
/// lost connection is opened again after a second.
async fn relay_commits(
    store: Arc<dyn Store>,
    changes: tokio::sync::broadcast::Sender<()>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => return,
            relayed = store.relay_commits(&changes) => {
                if let Err(error) = relayed {
                    tracing::warn!(%error, "not following other replicas' commits; the dashboard shows them on its next refresh");
                }
            }
        }
        tokio::select! {
            _ = stopped.wait_for(|stopped| *stopped) => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}
