//! `tocsin send-test-alert --to USER --channel C`: one test message straight to the
//! provider with the configuration's credentials, so a channel is known to work before
//! an incident needs it. Nothing is stored; the message has no buttons.

use super::outbox::Message;
use super::{NotifyError, mattermost, ntfy, slack, teams, telegram, voice};
use crate::config::Config;
use crate::oncall::Channel;
use crate::store::paging::{Notification, NotificationKind};
use serde_json::json;

/// Sends the test message to `user_id` on `channel`; says where it went.
pub async fn send_test(
    config: &Config,
    user_id: &str,
    channel: Channel,
) -> Result<String, NotifyError> {
    let user = config.directory.users.get(user_id).ok_or_else(|| {
        NotifyError::Permanent(format!("no [[users]] entry has id = {user_id:?}"))
    })?;
    let to = user.address(channel).ok_or_else(|| {
        NotifyError::Permanent(format!(
            "user {user_id:?} has no {} (set {} in their [[users]] entry)",
            channel.user_key(),
            channel.user_key()
        ))
    })?;
    // This runs outside the daemon, which otherwise installs rustls' provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|error| {
            NotifyError::Permanent(format!("cannot build the HTTP client: {error}"))
        })?;
    let text = "[TEST] Tocsin test message: this channel works. Nothing to do.".to_string();
    let message = Message {
        subject: text.clone(),
        text: text.clone(),
        html: None,
        short: text,
        // Nothing to act on: no buttons, no ack action.
        resolved: true,
        context: json!({
            "incident": {
                "id": 0, "priority": "P4", "status": "resolved", "resource": "tocsin-test",
                "summary": "Tocsin test message", "response_due": "-", "resolve_due": "-",
            },
            "ack_url": config.public_url,
            "incident_url": config.public_url,
        }),
    };
    let off = |section: &str| {
        NotifyError::Permanent(format!(
            "add a [{section}] section to the config (see docs/channels.md)"
        ))
    };
    match channel {
        Channel::Email => {
            let email = config.email.as_ref().ok_or_else(|| off("email"))?;
            super::email::EmailSender::new(email)?
                .send(to, &message.subject, message.text.clone(), None)
                .await?;
        }
        Channel::Sms => {
            let sms = config.sms.as_ref().ok_or_else(|| off("sms"))?;
            super::sms::SmsSender::new(sms, http)
                .send(to, &message.short)
                .await?;
        }
        Channel::Webhook => {
            let payload = json!({ "event": "test", "text": message.short });
            super::webhook::send(&http, to, &payload).await?;
        }
        Channel::Slack => {
            let slack_config = config.chat.slack.as_ref().ok_or_else(|| off("slack"))?;
            slack::send(&http, slack_config, to, &message).await?;
        }
        Channel::Telegram => {
            let telegram_config = config
                .chat
                .telegram
                .as_ref()
                .ok_or_else(|| off("telegram"))?;
            telegram::send(&http, telegram_config, to, &message).await?;
        }
        Channel::Ntfy => {
            let ntfy_config = config.chat.ntfy.as_ref().ok_or_else(|| off("ntfy"))?;
            ntfy::send(&http, ntfy_config, to, &message).await?;
        }
        Channel::Teams => teams::send(&http, to, &message).await?,
        Channel::Mattermost => mattermost::send(&http, to, &message, &[]).await?,
        Channel::Voice => {
            let voice_config = config.chat.voice.as_ref().ok_or_else(|| off("voice"))?;
            let page = Notification {
                id: 0,
                incident_id: 0,
                user_id: user.id.clone(),
                channel,
                address: to.to_string(),
                kind: NotificationKind::Page,
                step: "test".into(),
                attempts: 0,
                due_at: chrono::DateTime::UNIX_EPOCH,
                deadline: chrono::DateTime::UNIX_EPOCH,
            };
            let call = voice::Call::new(&config.public_url, &page);
            voice::send(&http, voice_config, to, &message, &call).await?;
        }
    }
    Ok(format!("test message sent to {user_id} via {channel}"))
}
