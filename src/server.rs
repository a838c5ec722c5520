//! The listener: accepts connections, over TLS when `[server] tls_cert` is set, and
//! serves the router on each with hyper's HTTP/1 + HTTP/2 connection builder.
//! Accepted by hand rather than by `axum::serve`, which cannot speak TLS and sets no
//! timer: without one a client that never finishes its request headers, or stops
//! sending its body, holds its connection and task forever (`server.client_timeout`).

use crate::tls::Certificates;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tower_http::timeout::RequestBodyTimeout;

/// Serves `router` until `shutdown` completes, then stops accepting and waits for
/// the open connections to finish the requests they are serving. `client_timeout`
/// bounds the wait for a request's headers (an idle keep-alive connection's too)
/// and for each next piece of its body.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    certificates: Option<Arc<Certificates>>,
    client_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let connection = connection(
                    stream,
                    certificates.as_deref().map(Certificates::acceptor),
                    router.clone(),
                    client_timeout,
                    connections.watcher(),
                );
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%peer, "connection ended: {error}");
                    }
                });
            }
            Err(error) => pause_after(error).await,
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn connection(
    stream: TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    client_timeout: Duration,
    watcher: Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // A small answer must not wait for the peer's delayed ACK (Nagle's algorithm):
    // with TLS, a handshake's flights were held ~40 ms in every other test run.
    stream.set_nodelay(true)?;
    let service = TowerToHyperService::new(RequestBodyTimeout::new(router, client_timeout));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(client_timeout);
    match acceptor {
        None => {
            let serving = builder.serve_connection(TokioIo::new(stream), service);
            watcher.watch(serving).await
        }
        Some(acceptor) => {
            let stream = crate::tls::handshake(&acceptor, stream).await?;
            let serving = builder.serve_connection(TokioIo::new(stream), service);
            watcher.watch(serving).await
        }
    }
}

/// Same policy as `axum::serve`: a client that gave up is nothing; anything else
/// (out of file descriptors) is logged and retried after a pause.
async fn pause_after(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!("cannot accept a connection: {error}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
