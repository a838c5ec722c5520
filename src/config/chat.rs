//! `[slack]`, `[telegram]`, `[ntfy]` and `[voice]`: the chat, push and voice
//! channels' sections, and the check that every user reached on one of them has the
//! section it needs.

use super::Checker;
use super::raw::RawConfig;
use crate::oncall::{Channel, Directory};
use chrono::TimeDelta;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSlack {
    pub bot_token: String,
    pub signing_secret: String,
    pub api_url: String,
    pub deadline: String,
}

impl Default for RawSlack {
    fn default() -> Self {
        Self {
            bot_token: String::new(),
            signing_secret: String::new(),
            api_url: "https://slack.com/api".into(),
            deadline: "1h".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTelegram {
    pub bot_token: String,
    pub webhook_secret: String,
    pub api_url: String,
    pub deadline: String,
}

impl Default for RawTelegram {
    fn default() -> Self {
        Self {
            bot_token: String::new(),
            webhook_secret: String::new(),
            api_url: "https://api.telegram.org".into(),
            deadline: "1h".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawNtfy {
    pub base_url: String,
    pub token: Option<String>,
    pub deadline: String,
}

impl Default for RawNtfy {
    fn default() -> Self {
        Self {
            base_url: "https://ntfy.sh".into(),
            token: None,
            deadline: "1h".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawVoice {
    pub provider: String,
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    pub deadline: String,
}

impl Default for RawVoice {
    fn default() -> Self {
        Self {
            provider: "twilio".into(),
            base_url: "https://api.twilio.com".into(),
            account_sid: String::new(),
            auth_token: String::new(),
            from: String::new(),
            deadline: "15m".into(),
        }
    }
}

/// `[voice]`: calls through Twilio's Calls API (or a compatible one at `base_url`).
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConfig {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    pub deadline: TimeDelta,
}

/// `[slack]`: a bot posting with `chat.postMessage` and updating with `chat.update`.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackConfig {
    pub bot_token: String,
    pub signing_secret: String,
    pub api_url: String,
    pub deadline: TimeDelta,
}

/// `[telegram]`: a bot posting with `sendMessage`.
#[derive(Debug, Clone, PartialEq)]
pub struct TelegramConfig {
    pub bot_token: String,
    pub webhook_secret: String,
    pub api_url: String,
    pub deadline: TimeDelta,
}

/// `[ntfy]`: a (self-hosted) ntfy server.
#[derive(Debug, Clone, PartialEq)]
pub struct NtfyConfig {
    pub base_url: String,
    pub token: Option<String>,
    pub deadline: TimeDelta,
}

/// The chat and push channels that are configured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatConfig {
    pub slack: Option<SlackConfig>,
    pub telegram: Option<TelegramConfig>,
    pub ntfy: Option<NtfyConfig>,
    pub voice: Option<VoiceConfig>,
}

impl ChatConfig {
    /// How long messages on `channel` are retried, when it is one of these.
    pub fn deadline(&self, channel: Channel) -> Option<TimeDelta> {
        match channel {
            Channel::Slack => self.slack.as_ref().map(|s| s.deadline),
            Channel::Telegram => self.telegram.as_ref().map(|t| t.deadline),
            Channel::Ntfy => self.ntfy.as_ref().map(|n| n.deadline),
            Channel::Voice => self.voice.as_ref().map(|v| v.deadline),
            Channel::Email
            | Channel::Sms
            | Channel::Webhook
            | Channel::Teams
            | Channel::Mattermost => None,
        }
    }

    fn configured(&self, channel: Channel) -> bool {
        match channel {
            Channel::Slack => self.slack.is_some(),
            Channel::Telegram => self.telegram.is_some(),
            Channel::Ntfy => self.ntfy.is_some(),
            Channel::Voice => self.voice.is_some(),
            // Their webhook URL is all they need.
            Channel::Email
            | Channel::Sms
            | Channel::Webhook
            | Channel::Teams
            | Channel::Mattermost => true,
        }
    }
}

pub(super) fn chat(raw: &RawConfig, directory: &Directory, check: &mut Checker<'_>) -> ChatConfig {
    let chat = ChatConfig {
        slack: raw.slack.as_ref().map(|slack| SlackConfig {
            bot_token: required(
                check,
                "slack.bot_token",
                &slack.bot_token,
                "SLACK_BOT_TOKEN",
            ),
            signing_secret: required(
                check,
                "slack.signing_secret",
                &slack.signing_secret,
                "SLACK_SIGNING_SECRET",
            ),
            api_url: url(check, "slack.api_url", &slack.api_url),
            deadline: check.duration("slack.deadline", &slack.deadline),
        }),
        telegram: raw.telegram.as_ref().map(|telegram| TelegramConfig {
            bot_token: required(
                check,
                "telegram.bot_token",
                &telegram.bot_token,
                "TELEGRAM_BOT_TOKEN",
            ),
            webhook_secret: required(
                check,
                "telegram.webhook_secret",
                &telegram.webhook_secret,
                "TELEGRAM_WEBHOOK_SECRET",
            ),
            api_url: url(check, "telegram.api_url", &telegram.api_url),
            deadline: check.duration("telegram.deadline", &telegram.deadline),
        }),
        ntfy: raw.ntfy.as_ref().map(|ntfy| NtfyConfig {
            base_url: url(check, "ntfy.base_url", &ntfy.base_url),
            token: ntfy.token.clone().filter(|token| !token.is_empty()),
            deadline: check.duration("ntfy.deadline", &ntfy.deadline),
        }),
        voice: raw.voice.as_ref().map(|voice| voice_config(voice, check)),
    };
    for (i, raw_user) in raw.users.iter().enumerate() {
        let Some(user) = directory.users.get(&raw_user.id) else {
            continue;
        };
        for (j, rule) in user.notify.iter().enumerate() {
            if rule.channel == Channel::Voice && chat.voice.is_none() {
                check.error(
                    format!("users[{i}].notify[{j}].channel"),
                    "voice calls need a [voice] section with account_sid, auth_token and from (see docs/channels.md)",
                );
            }
        }
        for channel in [Channel::Teams, Channel::Mattermost] {
            if let Some(webhook) = user.address(channel)
                && !(webhook.starts_with("https://") || webhook.starts_with("http://"))
            {
                check.error(
                    format!("users[{i}].{}", channel.user_key()),
                    format!(
                        "is not an http(s) URL; paste the incoming webhook URL {channel} gave you"
                    ),
                );
            }
        }
        for channel in Channel::ALL {
            if user.address(channel).is_some() && !chat.configured(channel) {
                check.error(
                    format!("users[{i}].{}", channel.user_key()),
                    format!(
                        "user {:?} is reached on {channel}, which has no [{channel}] section; add it (see docs/channels.md) or remove the key",
                        user.id
                    ),
                );
            }
        }
    }
    chat
}

fn voice_config(voice: &RawVoice, check: &mut Checker<'_>) -> VoiceConfig {
    if voice.provider != "twilio" {
        check.error(
            "voice.provider",
            format!(
                "unknown provider {:?}; use twilio (or a Twilio-compatible API at base_url)",
                voice.provider
            ),
        );
    }
    VoiceConfig {
        base_url: url(check, "voice.base_url", &voice.base_url),
        account_sid: required(check, "voice.account_sid", &voice.account_sid, "TWILIO_SID"),
        auth_token: required(check, "voice.auth_token", &voice.auth_token, "TWILIO_TOKEN"),
        from: required(check, "voice.from", &voice.from, "TWILIO_NUMBER"),
        deadline: check.duration("voice.deadline", &voice.deadline),
    }
}

fn required(check: &mut Checker<'_>, path: &str, value: &str, variable: &str) -> String {
    if value.trim().is_empty() {
        check.error(
            path,
            format!("is empty; set it from the environment, e.g. \"${{{variable}}}\""),
        );
    }
    value.to_string()
}

fn url(check: &mut Checker<'_>, path: &str, value: &str) -> String {
    let value = value.trim_end_matches('/');
    if !(value.starts_with("https://") || value.starts_with("http://")) {
        check.error(
            path,
            format!("{value:?} is not an http(s) URL such as \"https://example.com\""),
        );
    }
    value.to_string()
}
