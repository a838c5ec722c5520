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
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tower_http::timeout::RequestBodyDeadline;

/// HTTP/2's connection preface: hyper-util reads this many bytes, with no timer of
/// its own, to tell HTTP/1 from HTTP/2 before either protocol's timers start.
const PREFACE: usize = 24;

/// Open files `serve` asks for: far more connections than one instance serves.
const OPEN_FILES: u64 = 65_536;

/// Raises the soft limit on open files to the hard one, as Go's runtime and nginx's
/// `worker_rlimit_nofile` do: systemd starts services at a soft 1,024 (hard
/// 524,288), and every sender connection, dashboard stream and database file is one,
/// so a busy instance would stop accepting (EMFILE) long before the machine must.
/// At most [`OPEN_FILES`]: runbooks inherit it, and tools that walk every possible
/// descriptor crawl under a hard limit of `infinity` (about 10^9).
pub fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let wanted = hard.min(OPEN_FILES);
    if soft >= wanted {
        return;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, wanted, hard) {
        Ok(()) => tracing::info!(from = soft, to = wanted, "raised the open files limit"),
        Err(error) => tracing::warn!(
            %error,
            soft,
            "cannot raise the open files limit; set LimitNOFILE in the service's unit"
        ),
    }
}

/// Serves `router` until `shutdown` completes, then stops accepting and waits for
/// the open connections to finish the requests they are serving. `client_timeout`
/// bounds the wait for a request's headers (an idle keep-alive connection's too)
/// and then for its whole body.
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
    // A deadline for the whole body, not for each next piece of it: a body trickling
    // one byte per `client_timeout` would otherwise hold its connection forever.
    let service = TowerToHyperService::new(RequestBodyDeadline::new(router, client_timeout));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(client_timeout);
    // An HTTP/2 peer that stops answering pings is dropped; one that answers them
    // but sends nothing is an idle connection, as HTTP/2 allows.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(client_timeout);
    match acceptor {
        None => {
            let stream = FirstBytes::new(stream, client_timeout);
            let serving = builder.serve_connection(TokioIo::new(stream), service);
            watcher.watch(serving).await
        }
        Some(acceptor) => {
            let stream = crate::tls::handshake(&acceptor, stream).await?;
            let stream = FirstBytes::new(stream, client_timeout);
            let serving = builder.serve_connection(TokioIo::new(stream), service);
            watcher.watch(serving).await
        }
    }
}

/// A connection whose client must send its first [`PREFACE`] bytes within a
/// deadline: a client that connects and sends nothing (or a few bytes) is closed
/// instead of held while hyper-util waits to tell the protocol. Transparent after.
struct FirstBytes<S> {
    inner: S,
    deadline: Option<Pin<Box<Sleep>>>,
    seen: usize,
}

impl<S> FirstBytes<S> {
    fn new(inner: S, within: Duration) -> Self {
        Self {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(within))),
            seen: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstBytes<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.seen += buf.filled().len() - before;
                if this.seen >= PREFACE {
                    this.deadline = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent no request within server.client_timeout",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstBytes<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
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
