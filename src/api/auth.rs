//! Authentication: per-source ingest tokens and API tokens with roles. Tokens are
//! compared in constant time, through their SHA-256 digests so lengths leak nothing.

use super::AppState;
use super::error::ApiError;
use crate::config::Role;
use crate::webhook_auth::{presented_token, same_secret};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

/// Who made an API call: the name of their token.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

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
