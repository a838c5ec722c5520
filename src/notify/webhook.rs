//! The outbound webhook channel: a JSON POST per message, for chat tools.

use super::NotifyError;

/// Posts `payload` to `url`.
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    payload: &serde_json::Value,
) -> Result<(), NotifyError> {
    let response = http
        .post(url)
        .json(payload)
        .send()
        .await
        // A webhook URL is a credential (chat webhooks carry their secret in it): it
        // never goes into an error, which ends up on the timeline.
        .map_err(|error| {
            NotifyError::Transient(format!("cannot reach the webhook: {}", error.without_url()))
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() || status.as_u16() == 429 {
        Err(NotifyError::Transient(format!(
            "the webhook answered {status}"
        )))
    } else {
        Err(NotifyError::Permanent(format!(
            "the webhook refused the message ({status})"
        )))
    }
}
