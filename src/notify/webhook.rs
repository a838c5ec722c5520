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
        .map_err(|error| NotifyError::Transient(format!("cannot reach {url}: {error}")))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() || status.as_u16() == 429 {
        Err(NotifyError::Transient(format!("{url} answered {status}")))
    } else {
        Err(NotifyError::Permanent(format!(
            "{url} refused the message ({status})"
        )))
    }
}
