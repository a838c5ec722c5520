//! `Idempotency-Key` on action routes (SPEC §11): a client that retries after a lost
//! answer or a 503 gets the first answer instead of acting twice. The key is scoped
//! to the caller's token and the route, so two clients never share answers, and
//! kept with a digest of the body, so a key sent again with another body is refused
//! 422 (as the IETF's Idempotency-Key draft says) instead of answered as the first.

use super::auth::Actor;
use super::error::ApiError;
use crate::pipeline::IdempotencyKey;
use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The digest of a keyed request's body, left by [`digest_body`] for the extractor.
#[derive(Clone)]
struct BodyDigest(String);

/// Middleware on the action routes, after authentication: the body of a request
/// carrying an `Idempotency-Key` is read here (within `server.max_body_bytes`) and
/// digested, then handed on unchanged.
/// `limit` is the one axum's `DefaultBodyLimit` holds every other body to.
pub async fn digest_body(State(limit): State<usize>, request: Request, next: Next) -> Response {
    if !request.headers().contains_key("idempotency-key") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(error) => return unread(&error, limit).into_response(),
    };
    parts
        .extensions
        .insert(BodyDigest(hex::encode(Sha256::digest(&bytes))));
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn unread(error: &axum::Error, limit: usize) -> ApiError {
    if let Some(stalled) = ApiError::if_body_stalled(error) {
        return stalled;
    }
    if super::error::body_error_is::<http_body_util::LengthLimitError>(error) {
        return ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload too large",
            format!(
                "the body is larger than server.max_body_bytes ({limit} bytes); send a smaller one"
            ),
        );
    }
    ApiError::bad_request(
        "unreadable body",
        format!("the body could not be read: {error}"),
    )
}

/// The route a request matched (`/api/v1/incidents/{id}/notes`), its path when none
/// did.
fn route(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<MatchedPath>()
        .map_or(parts.uri.path(), MatchedPath::as_str)
}

/// Longest key accepted.
const MAX_KEY_BYTES: usize = 255;

/// The scoped key of a request, when it carries one.
pub struct Idempotency(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key("idempotency-key") {
            return Ok(Self(None));
        }
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
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
        let mut scoped = Sha256::new()
            .chain_update(actor)
            .chain_update([0])
            .chain_update(parts.method.as_str())
            .chain_update(route(parts))
            .chain_update([0]);
        // The route's parameters as the handler reads them: `/incidents/01/notes`,
        // `/incidents/+1/notes` and `/incidents/%31/notes` all act on incident 1,
        // so a retry whose path a proxy spelt another way is still the same request.
        // Only `{id}` is a number: a runbook named `01` is not one named `1`.
        if let Some(params) = &params {
            for (name, value) in params {
                let value = match value.parse::<i64>() {
                    Ok(number) if name == "id" => number.to_string(),
                    _ => value.to_string(),
                };
                scoped.update(name);
                scoped.update([0]);
                scoped.update(value);
                scoped.update([0]);
            }
        }
        let scoped = scoped.chain_update(key).finalize();
        let request = parts
            .extensions
            .get::<BodyDigest>()
            .map(|digest| digest.0.clone())
            .unwrap_or_default();
        Ok(Self(Some(IdempotencyKey {
            key: hex::encode(scoped),
            request,
        })))
    }
}
