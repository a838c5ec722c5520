//! Validated `[email]` and `[sms]` sections.

use chrono::TimeDelta;

/// How email leaves Tocsin.
#[derive(Debug, Clone, PartialEq)]
pub enum EmailTransport {
    Smtp {
        host: String,
        port: u16,
        tls: SmtpTls,
        credentials: Option<(String, String)>,
    },
    /// Each message becomes a file in this directory (for trying Tocsin out).
    Spool { dir: String },
}

/// `[email] tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

/// `[email]`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    pub transport: EmailTransport,
    pub from: String,
    pub deadline: TimeDelta,
}

/// One SMS gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum SmsProvider {
    /// Twilio's Messages API or a compatible one at `base_url`.
    Twilio {
        base_url: String,
        account_sid: String,
        auth_token: String,
        from: String,
    },
    /// POSTs `{"to", "from", "body"}` as JSON to `url`.
    Webhook { url: String, from: Option<String> },
    /// Writes the message to the log only.
    Log,
}

impl SmsProvider {
    /// The provider's kind, for the timeline and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Twilio { .. } => "twilio",
            Self::Webhook { .. } => "webhook",
            Self::Log => "log",
        }
    }
}

/// `[sms]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsConfig {
    /// Tried in order on every attempt; the first that accepts the message wins.
    pub providers: Vec<SmsProvider>,
    pub inbound_token: Option<String>,
    pub deadline: TimeDelta,
}
