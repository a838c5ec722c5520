//! Email through lettre: SMTP (plain, STARTTLS or TLS, optional auth) with pooled
//! connections, or a spool directory of `.eml` files.

use super::NotifyError;
use crate::config::channels::{EmailConfig, EmailTransport, SmtpTls};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Spool(AsyncFileTransport<Tokio1Executor>),
}

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
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject);
        let message = match html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(text, html)),
            None => builder.body(text),
        }
        .map_err(|error| NotifyError::Permanent(format!("cannot build the message: {error}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|error| {
                if error.is_permanent() {
                    NotifyError::Permanent(format!("the SMTP server refused the message: {error}"))
                } else {
                    NotifyError::Transient(format!("SMTP: {error}"))
                }
            }),
            Transport::Spool(spool) => spool
                .send(message)
                .await
                .map(|_| ())
                .map_err(|error| NotifyError::Transient(format!("spool: {error}"))),
        }
    }
}
