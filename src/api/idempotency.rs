//! `Idempotency-Key` on action routes (SPEC §11): a client that retries after a lost
//! answer or a 503 gets the first answer instead of acting twice. The key is scoped
//! to the caller's token and the route, so two clients never share answers.

use super::auth::Actor;
use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

/// Longest key accepted.
const MAX_KEY_BYTES: usize = 255;

/// The scoped key of a request, when it carries one.
pub struct Idempotency(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|key| !key.is_empty() && key.len() <= MAX_KEY_BYTES)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid Idempotency-Key",
                    "Idempotency-Key: send 1 to 255 visible ASCII characters, e.g. a UUID",
                )
            })?;
        let actor = parts
            .extensions
            .get::<Actor>()
            .map_or("", |actor| actor.0.as_str());
        let scoped = Sha256::new()
            .chain_update(actor)
            .chain_update([0])
            .chain_update(parts.method.as_str())
            .chain_update(parts.uri.path())
            .chain_update([0])
            .chain_update(key)
            .finalize();
        Ok(Self(Some(hex::encode(scoped))))
    }
}
