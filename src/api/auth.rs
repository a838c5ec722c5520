//! Authentication: per-source ingest tokens and API tokens with roles. Tokens are
//! compared in constant time, through their SHA-256 digests so lengths leak nothing.

use super::AppState;
use super::error::ApiError;
use crate::config::Role;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who made an API call: the name of their token.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

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

/// The API token `token` is, compared in constant time with every configured one.
pub fn find_token<'c>(
    config: &'c crate::config::Config,
    token: &str,
) -> Option<&'c crate::config::ApiToken> {
    config.api_tokens.iter().fold(None, |found, candidate| {
        if same_secret(token, &candidate.token) {
            Some(candidate)
        } else {
            found
        }
    })
}

/// Middleware: the request needs an API token with at least `role`. Runs before the
/// handler parses its path, so a token without the role gets 403 on any id.
pub async fn require(
    State((state, role)): State<(AppState, Role)>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = presented_token(request.headers(), None).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing API token",
            "send Authorization: Bearer <token> with a token from [api] tokens",
        )
    })?;
    let config = state.config.load_full();
    let found = find_token(&config, &token).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong API token",
            "the token matches none in [api] tokens",
        )
    })?;
    if found.role < role {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient role",
            format!(
                "token {:?} is a {:?}; this needs {:?} or above",
                found.name, found.role, role
            ),
        ));
    }
    request.extensions_mut().insert(Actor(found.name.clone()));
    request.extensions_mut().insert(found.role);
    Ok(next.run(request).await)
}
