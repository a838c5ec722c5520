//! Email through lettre: SMTP (plain, STARTTLS or TLS, optional auth), or a spool
//! directory of `.eml` files.
//!
//! Plain SMTP (a local relay, the usual setup) goes over sockets of our own with
//! `TCP_NODELAY`: lettre 0.11.23's pooled transport writes the body and the final `.`
//! separately with Nagle on, and the relay's delayed ACK then holds every page 40 ms
//! (fixed upstream in lettre#1159, unreleased). lettre still speaks all of SMTP; only
//! the sockets are ours. A connection is kept after its message for the next one (for
//! up to 30 s, checked with NOOP first), which saves the connect, greeting and EHLO —
//! about half of a page's time at the relay.

use super::NotifyError;
use crate::config::channels::{EmailConfig, EmailTransport, SmtpTls};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Mutex;
use std::time::{Duration, Instant};

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Plain SMTP on no-delay sockets.
    Relay {
        host: String,
        port: u16,
        credentials: Option<Credentials>,
        /// At most this many messages on their way to the relay at once (lettre's pool
        /// size).
        slots: tokio::sync::Semaphore,
        /// Connections done with their message, and since when.
        idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    },
    Spool(AsyncFileTransport<Tokio1Executor>),
}

/// Longest one message may take on a relay connection, connect to the accepted DATA.
const RELAY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a goodbye may take once the message is accepted (its outcome is ignored).
const QUIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections to a relay at once.
const RELAY_CONNECTIONS: usize = 10;
/// How long a kept connection may take to answer NOOP before a fresh one is opened
/// instead (one silently dropped by a firewall never answers).
const NOOP_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections kept for the next message (so at most 14 sockets to the relay: 10
/// sending, 4 kept).
const RELAY_IDLE: usize = 4;
/// A kept connection idle longer than this is closed rather than reused (servers drop
/// idle clients after a few minutes; lettre's pool uses 60 s).
const RELAY_IDLE_FOR: Duration = Duration::from_secs(30);

/// Sends email as configured in `[email]`.
pub struct EmailSender {
    transport: Transport,
    from: Mailbox,
}

impl EmailSender {
    /// Builds the transport; nothing connects until the first message.
    pub fn new(config: &EmailConfig) -> Result<Self, NotifyError> {
        let from = config.from.parse::<Mailbox>().map_err(|error| {
            NotifyError::Permanent(format!("email.from {:?}: {error}", config.from))
        })?;
        let transport = match &config.transport {
            EmailTransport::Spool { dir } => {
                std::fs::create_dir_all(dir).map_err(|error| {
                    NotifyError::Permanent(format!(
                        "cannot create the spool directory {dir}: {error}"
                    ))
                })?;
                Transport::Spool(AsyncFileTransport::<Tokio1Executor>::new(dir))
            }
            EmailTransport::Smtp {
                host,
                port,
                tls: SmtpTls::None,
                credentials,
            } => Transport::Relay {
                host: host.clone(),
                port: *port,
                credentials: credentials
                    .as_ref()
                    .map(|(user, password)| Credentials::new(user.clone(), password.clone())),
                slots: tokio::sync::Semaphore::new(RELAY_CONNECTIONS),
                idle: Mutex::new(Vec::new()),
            },
            EmailTransport::Smtp {
                host,
                port,
                tls,
                credentials,
            } => {
                let builder = match tls {
                    SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                        .map_err(|error| {
                            NotifyError::Permanent(format!("email.host {host:?}: {error}"))
                        })?,
                    SmtpTls::Tls => {
                        AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|error| {
                            NotifyError::Permanent(format!("email.host {host:?}: {error}"))
                        })?
                    }
                };
                let builder = builder.port(*port).timeout(Some(Duration::from_secs(10)));
                let builder = match credentials {
                    Some((user, password)) => {
                        builder.credentials(Credentials::new(user.clone(), password.clone()))
                    }
                    None => builder,
                };
                Transport::Smtp(builder.build())
            }
        };
        Ok(Self { transport, from })
    }

    /// Sends one message with a text part and, when given, an HTML part.
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        text: String,
        html: Option<String>,
    ) -> Result<(), NotifyError> {
        let to = to
            .parse::<Mailbox>()
            .map_err(|error| NotifyError::Permanent(format!("address {to:?}: {error}")))?;
        // lettre adds a Date but no Message-ID, which RFC 5322 asks for and some
        // receiving servers (Gmail) refuse or mark as spam without.
        let message_id = format!(
            "<{}@{}>",
            uuid::Uuid::new_v4().simple(),
            self.from.email.domain()
        );
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id));
        let message = match html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(text, html)),
            None => builder.body(text),
        }
        .map_err(|error| NotifyError::Permanent(format!("cannot build the message: {error}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(smtp_error),
            Transport::Relay {
                host,
                port,
                credentials,
                slots,
                idle,
            } => {
                let _slot = slots.acquire().await.map_err(|_| {
                    NotifyError::Transient("SMTP: the relay connections are closed".into())
                })?;
                let delivery = async {
                    // A kept connection the relay has closed fails its NOOP and is
                    // dropped: nothing was sent on it, so a fresh one is safe.
                    if let Some(mut kept) = take_idle(idle)
                        && tokio::time::timeout(NOOP_TIMEOUT, kept.test_connected())
                            .await
                            .unwrap_or(false)
                    {
                        kept.send(message.envelope(), &message.formatted())
                            .await
                            .map_err(smtp_error)?;
                        return Ok(kept);
                    }
                    relay(host, *port, credentials.as_ref(), &message).await
                };
                match tokio::time::timeout(RELAY_TIMEOUT, delivery).await {
                    Ok(Ok(connection)) => {
                        keep_idle(idle, connection);
                        Ok(())
                    }
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(NotifyError::Transient(format!(
                        "SMTP: {host}:{port} took longer than {}s",
                        RELAY_TIMEOUT.as_secs()
                    ))),
                }
            }
            Transport::Spool(spool) => spool
                .send(message)
                .await
                .map(|_| ())
                .map_err(|error| NotifyError::Transient(format!("spool: {error}"))),
        }
    }
}

/// The most recently used kept connection that has not idled too long; the others
/// that have are closed.
fn take_idle(idle: &Mutex<Vec<(AsyncSmtpConnection, Instant)>>) -> Option<AsyncSmtpConnection> {
    let mut idle = idle
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (fresh, stale): (Vec<_>, Vec<_>) = idle
        .drain(..)
        .partition(|(_, since)| since.elapsed() < RELAY_IDLE_FOR);
    *idle = fresh;
    for (connection, _) in stale {
        say_goodbye(connection);
    }
    idle.pop().map(|(connection, _)| connection)
}

/// Keeps a connection whose message was accepted for the next one, or says goodbye
/// when enough are kept.
fn keep_idle(idle: &Mutex<Vec<(AsyncSmtpConnection, Instant)>>, connection: AsyncSmtpConnection) {
    let mut idle = idle
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if idle.len() < RELAY_IDLE {
        idle.push((connection, Instant::now()));
    } else {
        say_goodbye(connection);
    }
}

/// QUIT in the background: its outcome changes nothing (the message, if any, was
/// already accepted, and must not be sent again).
fn say_goodbye(mut connection: AsyncSmtpConnection) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(QUIT_TIMEOUT, connection.quit()).await;
    });
}

/// One message over a fresh no-delay connection: EHLO, AUTH when configured, the
/// message; returns the connection for the next message.
async fn relay(
    host: &str,
    port: u16,
    credentials: Option<&Credentials>,
    message: &Message,
) -> Result<AsyncSmtpConnection, NotifyError> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|error| {
            NotifyError::Transient(format!("SMTP: cannot reach {host}:{port}: {error}"))
        })?;
    stream
        .set_nodelay(true)
        .map_err(|error| NotifyError::Transient(format!("SMTP: {error}")))?;
    let hello = ClientId::default();
    let mut connection = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
        .await
        .map_err(smtp_error)?;
    if let Some(credentials) = credentials {
        connection
            .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
            .await
            .map_err(smtp_error)?;
    }
    connection
        .send(message.envelope(), &message.formatted())
        .await
        .map_err(smtp_error)?;
    Ok(connection)
}

fn smtp_error(error: lettre::transport::smtp::Error) -> NotifyError {
    if error.is_permanent() {
        NotifyError::Permanent(format!("the SMTP server refused the message: {error}"))
    } else {
        NotifyError::Transient(format!("SMTP: {error}"))
    }
}
