//! The composition root: opens the store, starts the pipeline writer, builds the
//! router, and serves it until SIGTERM or Ctrl-C, then drains in-flight work.

use crate::api::{AppState, router};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::store::{self, Store};
use anyhow::Context;
use axum::Router;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A started Tocsin: its state and the writer task behind it.
pub struct App {
    pub state: AppState,
    writer: JoinHandle<()>,
}

impl App {
    /// Opens the store named in `config` and starts the pipeline.
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store = store::open(&config.storage_url)
            .await
            .context("cannot open the store")?;
        Self::start_with_store(config, clock, store).await
    }

    /// Starts the pipeline on a store opened by the caller (tests inject faults this way).
    pub async fn start_with_store(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        warn_about_tokens(&config);
        let metrics = Metrics::new().context("cannot register metrics")?;
        let (pipeline, writer) = Pipeline::start(
            store.clone(),
            clock.clone(),
            config.clone(),
            metrics.clone(),
        )
        .await
        .context("cannot load the open alerts and incidents from the store")?;
        let limiters = config
            .sources
            .iter()
            .filter_map(|(kind, source)| {
                source
                    .rate_limit
                    .map(|rate| (*kind, RateLimiter::direct(Quota::per_second(rate))))
            })
            .collect::<HashMap<_, _>>();
        let state = AppState {
            config,
            store,
            pipeline,
            clock,
            metrics,
            limiters: Arc::new(limiters),
        };
        Ok(Self { state, writer })
    }

    /// The HTTP API.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Waits for the writer to commit what is queued; call after the server stopped.
    pub async fn finish(self) {
        drop(self.state);
        if let Err(error) = self.writer.await {
            tracing::error!(%error, "the pipeline writer ended abnormally");
        }
    }
}

/// Runs the daemon until a shutdown signal.
pub async fn serve(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = App::start(config, clock).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {listen}; is another process using it? change [server] listen"
            )
        })?;
    tracing::info!(%listen, "tocsin is listening");
    axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    tracing::info!("shutting down: finishing the in-flight batch");
    app.finish().await;
    Ok(())
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
