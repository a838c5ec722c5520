//! SMS through HTTP gateways: Twilio's Messages API (or a compatible one at a
//! configurable base URL), a generic JSON webhook, or the log. Providers are tried in
//! order on every attempt, so a second provider takes over when the first fails.

use super::NotifyError;
use crate::config::channels::{SmsConfig, SmsProvider};

/// Sends SMS as configured in `[sms]`.
pub struct SmsSender {
    providers: Vec<SmsProvider>,
    http: reqwest::Client,
}

impl SmsSender {
    /// Uses `http` for the gateways.
    pub fn new(config: &SmsConfig, http: reqwest::Client) -> Self {
        Self {
            providers: config.providers.clone(),
            http,
        }
    }

    /// Sends `body` to `to`; returns the name of the provider that took it.
    pub async fn send(&self, to: &str, body: &str) -> Result<&'static str, NotifyError> {
        let mut errors = Vec::new();
        let mut transient = false;
        for provider in &self.providers {
            match self.send_with(provider, to, body).await {
                Ok(()) => return Ok(provider.name()),
                Err(error) => {
                    transient |= matches!(error, NotifyError::Transient(_));
                    tracing::warn!(provider = provider.name(), %error, "SMS provider failed; trying the next");
                    errors.push(format!("{}: {error}", provider.name()));
                }
            }
        }
        let message = if errors.is_empty() {
            "no SMS provider is configured".to_string()
        } else {
            errors.join("; ")
        };
        Err(if transient {
            NotifyError::Transient(message)
        } else {
            NotifyError::Permanent(message)
        })
    }

    async fn send_with(
        &self,
        provider: &SmsProvider,
        to: &str,
        body: &str,
    ) -> Result<(), NotifyError> {
        let request = match provider {
            SmsProvider::Log => {
                tracing::info!(to, body, "SMS (log provider)");
                return Ok(());
            }
            SmsProvider::Twilio {
                base_url,
                account_sid,
                auth_token,
                from,
            } => self
                .http
                .post(format!(
                    "{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json"
                ))
                .basic_auth(account_sid, Some(auth_token))
                .form(&[("To", to), ("From", from.as_str()), ("Body", body)]),
            SmsProvider::Webhook { url, from } => self
                .http
                .post(url)
                .json(&serde_json::json!({ "to": to, "from": from, "body": body })),
        };
        super::call(request, "the SMS gateway").await?;
        Ok(())
    }
}
