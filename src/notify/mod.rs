//! Notifications: one file per channel (`email.rs`, `sms.rs`, `webhook.rs`, `slack.rs`,
//! `telegram.rs`, `ntfy.rs`, `teams.rs`, `mattermost.rs`, `voice.rs`), signed acknowledgement links,
//! and the durable outbox that delivers, retries and falls back.
//!
//! The chat and push channel files share one shape: `request` builds the provider's
//! documented request from the config, the address and a composed message; `send`
//! makes it through [`call`] and reads the provider's answer.

pub mod ack_link;
pub mod email;
pub mod mattermost;
pub mod ntfy;
pub mod outbox;
pub mod slack;
pub mod sms;
pub mod teams;
pub mod telegram;
pub mod test_send;
pub mod voice;
pub mod webhook;

pub use crate::page::NotifyError;

/// Alert text made inert for the chat clients that render Markdown (Mattermost,
/// Teams): a sender's summary must not carry links, images or `@channel` mentions
/// into the message beside the real buttons.
pub fn inert_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '[' | ']' | '(' | ')' | '!' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            // A zero-width space after `@` keeps `@channel` from notifying anyone.
            '@' => out.push_str("@\u{200b}"),
            c => out.push(c),
        }
    }
    out
}

/// Makes a provider request: a refused connection, a timeout, a 5xx or a 429 is
/// transient, any other non-2xx permanent. The URL never goes into the error (Telegram
/// puts the bot token in it), and what the provider answered is kept (it says why)
/// with the request's credentials cut out: a provider or a proxy in between may
/// repeat the webhook URL or the token it was sent, and errors go on the timeline.
pub async fn call(
    request: reqwest::RequestBuilder,
    provider: &str,
) -> Result<reqwest::Response, NotifyError> {
    let (client, request) = request.build_split();
    let request = request.map_err(|error| {
        NotifyError::Permanent(format!(
            "cannot build the request to {provider}: {}",
            error.without_url()
        ))
    })?;
    let secrets = credentials_of(&request);
    let response = client.execute(request).await.map_err(|error| {
        NotifyError::Transient(format!("cannot reach {provider}: {}", error.without_url()))
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let answer = response.text().await.unwrap_or_default();
    let detail: String = redact(&answer, &secrets).chars().take(200).collect();
    if status.is_server_error() || status.as_u16() == 429 {
        Err(NotifyError::Transient(format!(
            "{provider} answered {status}: {detail}"
        )))
    } else {
        Err(NotifyError::Permanent(format!(
            "{provider} refused the message ({status}): {detail}"
        )))
    }
}

/// Shorter pieces are words of the provider's own API ("api", "v1"), not secrets.
const SECRET_MIN_LEN: usize = 6;
/// A piece shaped like a word (letters, lower case after the first: "services",
/// "Bearer") is a word of the API unless it is this long: cutting such words out
/// of an answer would garble its reason.
const SECRET_WORD_LEN: usize = 12;

/// Whatever in a request may be a credential: the URL's user, password, path
/// segments and query values (a webhook's URL is its secret, a topic or bot token a
/// segment of it, Telegram's after `bot`), and the words of its `Authorization`
/// header, Basic's decoded too; each also split at `:`.
fn credentials_of(request: &reqwest::Request) -> Vec<String> {
    let url = request.url();
    let mut pieces: Vec<String> = vec![url.as_str().to_string(), url.username().to_string()];
    pieces.extend(url.password().map(str::to_string));
    pieces.extend(
        url.path_segments()
            .into_iter()
            .flatten()
            .map(str::to_string),
    );
    pieces.extend(url.query_pairs().map(|(_, value)| value.into_owned()));
    for value in request.headers().get_all(reqwest::header::AUTHORIZATION) {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        for word in value.split_whitespace() {
            use base64::Engine;
            if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(word) {
                let decoded = String::from_utf8_lossy(&decoded).into_owned();
                pieces.extend(decoded.split(':').map(str::to_string));
            }
            pieces.push(word.to_string());
        }
    }
    let decoded: Vec<String> = pieces
        .iter()
        .map(|piece| {
            percent_encoding::percent_decode_str(piece)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    pieces.extend(decoded);
    let bot_tokens: Vec<String> = pieces
        .iter()
        .filter_map(|piece| piece.strip_prefix("bot"))
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    pieces.extend(bot_tokens);
    let parts: Vec<String> = pieces
        .iter()
        .flat_map(|piece| piece.split(':'))
        .map(str::to_string)
        .collect();
    pieces.extend(parts);
    let url = url.as_str().to_string();
    pieces.retain(|piece| {
        let word = piece.chars().all(|c| c.is_ascii_alphabetic())
            && piece.chars().skip(1).all(|c| c.is_ascii_lowercase());
        *piece == url
            || (piece.len() >= SECRET_MIN_LEN && (!word || piece.len() >= SECRET_WORD_LEN))
    });
    // Longest first, so a URL is cut whole before its segments are.
    pieces.sort_by_key(|piece| std::cmp::Reverse(piece.len()));
    pieces.dedup();
    pieces
}

/// `text` with every one of `secrets` cut out.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_string(), |text, secret| {
            text.replace(secret.as_str(), "…")
        })
}

#[cfg(test)]
mod tests {
    use super::{credentials_of, inert_markdown, redact};

    fn request(url: &str, authorization: &str) -> reqwest::Request {
        let mut request = reqwest::Request::new(reqwest::Method::POST, url.parse().unwrap());
        request.headers_mut().insert(
            reqwest::header::AUTHORIZATION,
            authorization.parse().unwrap(),
        );
        request
    }

    #[test]
    fn what_a_provider_repeats_of_the_url_or_token_is_cut_from_its_answer() {
        let webhook = request(
            "https://hooks.example/webhookb2/SECRETHOOK%2Fx?sig=SECRETSIG",
            "Bearer tk_SECRETNTFY",
        );
        let secrets = credentials_of(&webhook);
        let answer = "bad request to https://hooks.example/webhookb2/SECRETHOOK%2Fx?sig=SECRETSIG; \
                      path /webhookb2/SECRETHOOK/x sig=SECRETSIG auth=Bearer tk_SECRETNTFY; \
                      the channel is archived; webhooks of services need a Bearer";
        let redacted = redact(answer, &secrets);
        for secret in ["SECRETHOOK", "SECRETSIG", "tk_SECRETNTFY"] {
            assert!(!redacted.contains(secret), "{redacted}");
        }
        assert!(
            redacted.contains("the channel is archived; webhooks of services need a Bearer"),
            "the provider's words stay: {redacted}"
        );
        let telegram = request(
            "https://api.telegram.example/bot123456:ABCdef-ghi/sendMessage",
            "Bearer x",
        );
        let redacted = redact(
            "token 123456:ABCdef-ghi (ABCdef-ghi) was revoked",
            &credentials_of(&telegram),
        );
        assert_eq!(redacted, "token … (…) was revoked");
        assert_eq!(redact("unchanged", &[String::new()]), "unchanged");
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode("AC123456:twilio-auth-token");
        let twilio = request(
            "https://api.twilio.example/2010-04-01/Accounts/AC123456/Messages.json",
            &format!("Basic {basic}"),
        );
        let redacted = redact(
            "account AC123456 token twilio-auth-token is invalid",
            &credentials_of(&twilio),
        );
        assert_eq!(redacted, "account … token … is invalid");
    }

    #[test]
    fn a_summary_cannot_link_embed_or_mention_in_markdown_chats() {
        assert_eq!(
            inert_markdown("@channel disk full [ack](https://evil.example) ![](x.png)"),
            "@\u{200b}channel disk full \\[ack\\]\\(https://evil.example\\) \\!\\[\\]\\(x.png\\)"
        );
    }
}
