//! Authenticating what other systems post (senders, helpdesks, heartbeats): the
//! presented token and its constant-time comparison, and signed webhooks, an
//! HMAC-SHA256 of the body (and a timestamp, against replays). Used by `api` and
//! `ticket` alike.

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `[sources.X] signature`, an HMAC-SHA256 body signature: `hex(HMAC(secret, [timestamp ":"] body))`, in
/// `header`, optionally prefixed `sha256=`. With `timestamp_header`, the timestamp
/// (Unix seconds) is signed too and must be within five minutes of now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureConfig {
    pub secret: String,
    pub header: String,
    pub timestamp_header: Option<String>,
}

/// Why a webhook's signature is refused (401); each says what the sender must fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing: this source requires signed requests")]
    Missing(String),
    #[error("{header} is not {expected}")]
    Unreadable {
        header: String,
        expected: &'static str,
    },
    #[error("the configured secret is unusable")]
    UnusableSecret,
    #[error("the {0} header is missing: signed requests carry their time")]
    MissingTime(String),
    #[error("{0} is more than 5 minutes away from now: refused as a possible replay")]
    Replay(String),
    #[error("the signature does not match the body: check the shared secret on both sides")]
    Mismatch,
}

/// How far a signed timestamp may be from now.
const REPLAY_WINDOW_SECONDS: i64 = 300;

/// Checks the signature of `body` and returns it (lower-case hex), to be spent
/// once; the error says what is wrong.
pub fn verify(
    config: &SignatureConfig,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<String, SignatureError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    let given =
        header(&config.header).ok_or_else(|| SignatureError::Missing(config.header.clone()))?;
    let given = given.strip_prefix("sha256=").unwrap_or(given);
    let given = hex::decode(given).map_err(|_| SignatureError::Unreadable {
        header: config.header.clone(),
        expected: "a hex HMAC-SHA256",
    })?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(config.secret.as_bytes())
        .map_err(|_| SignatureError::UnusableSecret)?;
    if let Some(name) = &config.timestamp_header {
        let stamp = header(name).ok_or_else(|| SignatureError::MissingTime(name.clone()))?;
        let seconds: i64 = stamp.parse().map_err(|_| SignatureError::Unreadable {
            header: name.clone(),
            expected: "Unix seconds",
        })?;
        if (now.timestamp() - seconds).abs() > REPLAY_WINDOW_SECONDS {
            return Err(SignatureError::Replay(name.clone()));
        }
        mac.update(stamp.as_bytes());
        mac.update(b":");
    }
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)?;
    // Whatever the case of its hex, one signature is one key.
    Ok(hex::encode(given))
}

/// Signs like a sender would, for tests and docs.
pub fn sign(secret: &str, timestamp: Option<&str>, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    if let Some(stamp) = timestamp {
        mac.update(stamp.as_bytes());
        mac.update(b":");
    }
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time equality of two secrets.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.ct_eq(&expected).into()
}

/// The credential of a request: `Authorization: Bearer T`, the password of Basic
/// auth (Alertmanager's `basic_auth`), or `?token=T`.
pub fn presented_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            return Some(token.trim().to_string());
        }
        if let Some(encoded) = value.strip_prefix("Basic ") {
            return basic_password(encoded.trim());
        }
    }
    query.and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
    })
}

fn basic_password(encoded: &str) -> Option<String> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn config(timestamp: bool) -> SignatureConfig {
        SignatureConfig {
            secret: "s3cret".into(),
            header: "X-Tocsin-Signature".into(),
            timestamp_header: timestamp.then(|| "X-Tocsin-Timestamp".into()),
        }
    }

    #[test]
    fn signatures_with_and_without_timestamps() {
        let now = Utc::now();
        let stamp = now.timestamp().to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            "X-Tocsin-Signature",
            HeaderValue::from_str(&format!("sha256={}", sign("s3cret", Some(&stamp), b"{}")))
                .unwrap(),
        );
        headers.insert("X-Tocsin-Timestamp", HeaderValue::from_str(&stamp).unwrap());
        assert!(verify(&config(true), &headers, b"{}", now).is_ok());
        assert_eq!(
            verify(&config(true), &headers, b"{ }", now),
            Err(SignatureError::Mismatch)
        );
        let later = now + chrono::TimeDelta::minutes(6);
        assert_eq!(
            verify(&config(true), &headers, b"{}", later),
            Err(SignatureError::Replay("X-Tocsin-Timestamp".into()))
        );
        let mut plain = HeaderMap::new();
        plain.insert(
            "X-Tocsin-Signature",
            HeaderValue::from_str(&sign("s3cret", None, b"x")).unwrap(),
        );
        assert!(verify(&config(false), &plain, b"x", now).is_ok());
        assert!(matches!(
            verify(&config(false), &HeaderMap::new(), b"x", now),
            Err(SignatureError::Missing(_))
        ));
    }
}
