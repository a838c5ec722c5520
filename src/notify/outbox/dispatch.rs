//! Dispatch: a composed message goes out on its row's channel, each channel through
//! its own file in `notify/`; the answer is a note on how it went out.

use super::Outbox;
use super::compose::Message;
use super::facts::Facts;
use crate::incident::Incident;
use crate::notify::NotifyError;
use crate::notify::email::EmailSender;
use crate::notify::{mattermost, ntfy, slack, teams, telegram, voice};
use crate::oncall::Channel;
use crate::store::paging::Notification;
use serde_json::json;

impl Outbox {
    /// Composes and sends one message about `incident`.
    pub(super) async fn send(
        &self,
        notification: &Notification,
        incident: &Incident,
        facts: &Facts,
    ) -> Result<String, NotifyError> {
        let message = self.compose(notification, incident, facts)?;
        self.dispatch(notification, &message).await
    }

    /// Composes and sends a scheduled report (by email, its only channel).
    pub(super) async fn send_report(
        &self,
        notification: &Notification,
    ) -> Result<String, NotifyError> {
        self.mailer()?;
        let message = self.compose_report(notification).await?;
        self.dispatch(notification, &message).await
    }

    /// Emails a secret a runbook produced (a temporary password) to `address`, at
    /// once and without storing it: it is neither queued as a row nor logged.
    pub async fn deliver_secret(
        &self,
        address: &str,
        runbook: &str,
        secret: &str,
    ) -> Result<(), NotifyError> {
        let domains = self.config.load().secret_domains.clone();
        secret_may_go_to(address, &domains)?;
        let email = self.mailer()?;
        let message = self.compose_secret(runbook, secret)?;
        email
            .send(address, &message.subject, message.text, None)
            .await
    }

    async fn dispatch(
        &self,
        notification: &Notification,
        message: &Message,
    ) -> Result<String, NotifyError> {
        let to = notification.address.as_str();
        match notification.channel {
            Channel::Email => self
                .mailer()?
                .send(
                    to,
                    &message.subject,
                    message.text.clone(),
                    message.html.clone(),
                )
                .await
                .map(|()| String::new()),
            Channel::Sms => {
                let sms = self.sms.as_ref().ok_or_else(|| {
                    NotifyError::Permanent("SMS is off: add an [sms] section to the config".into())
                })?;
                sms.send(to, &message.short)
                    .await
                    .map(|provider| format!(" via {provider}"))
            }
            Channel::Webhook => {
                let context = &message.context;
                let payload = json!({
                    "event": if message.resolved { "resolved" } else { "page" },
                    "text": message.short,
                    "incident": context["incident"],
                    "ack_url": context["ack_url"],
                    "console_url": context["console_url"],
                    "level": context["level"],
                });
                crate::notify::webhook::send(&self.http, to, &payload)
                    .await
                    .map(|()| String::new())
            }
            Channel::Slack => {
                let config = self.config.load_full();
                let slack = config.chat.slack.as_ref().ok_or_else(|| off("slack"))?;
                let posted = slack::send(&self.http, slack, to, message).await?;
                if !message.resolved {
                    self.remember_slack_message(notification.incident_id, posted)
                        .await;
                }
                Ok(String::new())
            }
            Channel::Telegram => {
                let config = self.config.load_full();
                let telegram = config
                    .chat
                    .telegram
                    .as_ref()
                    .ok_or_else(|| off("telegram"))?;
                telegram::send(&self.http, telegram, to, message)
                    .await
                    .map(|()| String::new())
            }
            Channel::Teams => teams::send(&self.http, to, message)
                .await
                .map(|()| String::new()),
            Channel::Mattermost => {
                let buttons = if message.resolved {
                    Vec::new()
                } else {
                    mattermost::buttons(
                        &self.links,
                        &self.config.load().public_url,
                        notification.incident_id,
                        &notification.user_id,
                        self.clock.now() + self.links.ttl,
                    )
                };
                mattermost::send(&self.http, to, message, &buttons)
                    .await
                    .map(|()| String::new())
            }
            Channel::Voice => {
                let config = self.config.load_full();
                let voice = config.chat.voice.as_ref().ok_or_else(|| off("voice"))?;
                let call = voice::Call::new(&config.public_url, notification);
                voice::send(&self.http, voice, to, message, &call)
                    .await
                    .map(|sid| format!(" (call {sid})"))
            }
            Channel::Ntfy => {
                let config = self.config.load_full();
                let ntfy = config.chat.ntfy.as_ref().ok_or_else(|| off("ntfy"))?;
                ntfy::send(&self.http, ntfy, to, message)
                    .await
                    .map(|()| String::new())
            }
        }
    }

    pub(super) fn mailer(&self) -> Result<&EmailSender, NotifyError> {
        self.email.as_ref().ok_or_else(|| {
            NotifyError::Permanent("email is off: add an [email] section to the config".into())
        })
    }
}

/// A channel whose section was removed by a reload after the message was queued.
fn off(channel: &str) -> NotifyError {
    NotifyError::Permanent(format!(
        "{channel} is off: add a [{channel}] section to the config (see docs/channels.md)"
    ))
}

/// A runbook's secret goes only to a domain an operator vouched for: a runbook led to
/// the wrong address (a forged directory entry, a bug) must not hand a password out.
fn secret_may_go_to(address: &str, domains: &[String]) -> Result<(), NotifyError> {
    let domain = address
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .unwrap_or_default();
    if domains.contains(&domain) {
        return Ok(());
    }
    Err(NotifyError::Permanent(format!(
        "its domain {domain:?} is not in [runbooks] secret_domains ({}); the secret was not sent. Add the domain there if it is your organisation's",
        domains.join(", ")
    )))
}
