//! `ApiError`: every failure the HTTP API reports, as a status and a JSON body
//! `{"error", "detail"}` that says what is wrong and what to do.

use crate::pipeline::PipelineError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub detail: String,
}

impl ApiError {
    /// Any status with a message and its detail.
    pub fn new(status: StatusCode, error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            detail: detail.into(),
        }
    }

    /// 408: a request body not whole within the listener's `server.client_timeout`
    /// (tower-http's `RequestBodyDeadline`): stalled, or trickling.
    pub fn body_stalled() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request timeout",
            "the body did not arrive whole within server.client_timeout; send it whole, at once",
        )
    }

    /// [`Self::body_stalled`] when reading a body failed because the listener's
    /// deadline cut it off (tower-http's `TimeoutError`, anywhere in the causes).
    pub fn if_body_stalled(error: &axum::Error) -> Option<Self> {
        body_error_is::<tower_http::timeout::TimeoutError>(error).then(Self::body_stalled)
    }

    /// 400.
    pub fn bad_request(error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, detail)
    }

    /// 404 for a missing thing.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found", detail)
    }

    /// 503 when the store cannot be reached; the client should retry. The detail is
    /// ours, never the database driver's text (that goes to the log).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
}

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> Self {
        match &error {
            PipelineError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "a write was refused: the client is told to retry");
                Self::unavailable(format!(
                    "{}; nothing was applied, retry shortly",
                    cause.detail()
                ))
            }
            PipelineError::NotFound(_) | PipelineError::Missing(_) => {
                Self::not_found(error.to_string())
            }
            PipelineError::Invalid(_) => Self::bad_request("invalid request", error.to_string()),
            PipelineError::Transition(_) | PipelineError::NotPossible(_) => Self::new(
                StatusCode::CONFLICT,
                "not allowed in this state",
                error.to_string(),
            ),
            PipelineError::Spent => Self::new(StatusCode::GONE, "already used", error.to_string()),
            PipelineError::KeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency key reused",
                error.to_string(),
            ),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        tracing::error!(%error, "store read failed");
        Self::unavailable("the store cannot answer the read right now; retry shortly")
    }
}

/// Whether `E` is among the causes of a body's read error.
pub fn body_error_is<E: std::error::Error + 'static>(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(source) = cause {
        if source.is::<E>() {
            return true;
        }
        cause = source.source();
    }
    false
}

/// A refusal axum wrote itself, read back: the error to answer with, the `Allow` of
/// a 405, and whether the path (not the query or body) could not be read.
pub struct Refusal {
    pub error: ApiError,
    pub allow: Option<axum::http::HeaderValue>,
    pub bad_path: bool,
}

/// The refusals axum writes itself — a query string, path or JSON body its
/// extractors cannot read (plain text), a method the route does not take (an empty
/// 405) — read back so they can be answered in the house style; every other
/// response is given back unchanged.
pub async fn refusal(response: Response) -> Result<Refusal, Response> {
    let status = response.status();
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|value| value.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return Err(response);
    }
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    // axum's extractors render the listener's body timeout as an unreadable body
    // (its `TimeoutError` only as text, here): the client stalled, it did not err.
    if text.contains("data was not received within the designated timeout") {
        return Ok(Refusal {
            error: ApiError::body_stalled(),
            allow,
            bad_path: false,
        });
    }
    let detail = match (status, &allow) {
        (StatusCode::METHOD_NOT_ALLOWED, Some(allow)) => format!(
            "this route takes {}; see /api/v1/openapi.json",
            allow.to_str().unwrap_or("other methods")
        ),
        (StatusCode::METHOD_NOT_ALLOWED, None) => {
            "this route does not take that method; see /api/v1/openapi.json".to_string()
        }
        _ if text.is_empty() => "see /api/v1/openapi.json for what this route takes".into(),
        _ => crate::serde_text::readable(&text),
    };
    let error = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    Ok(Refusal {
        error: ApiError::new(status, &error, detail),
        allow,
        bad_path: text.starts_with("Invalid URL"),
    })
}

/// axum's own refusals as a page for a person: `bad_path` answers a path that
/// cannot be read, `page(status, title, text)` draws the rest; a 405 keeps `Allow`.
pub async fn refusal_page(
    response: Response,
    bad_path: impl FnOnce() -> Response,
    page: impl FnOnce(StatusCode, &str, &str) -> Response,
) -> Response {
    let refusal = match refusal(response).await {
        Ok(refusal) => refusal,
        Err(response) => return response,
    };
    if refusal.bad_path {
        return bad_path();
    }
    let mut answer = page(
        refusal.error.status,
        &refusal.error.error,
        &refusal.error.detail,
    );
    if let Some(allow) = refusal.allow {
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow);
    }
    answer
}

/// Middleware: axum's own refusals become `{"error","detail"}` JSON like every
/// other error (SPEC §11).
pub async fn json_errors(response: Response) -> Response {
    match refusal(response).await {
        Err(response) => response,
        Ok(refusal) => {
            let mut answer = refusal.error.into_response();
            if let Some(allow) = refusal.allow {
                answer
                    .headers_mut()
                    .insert(axum::http::header::ALLOW, allow);
            }
            answer
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "detail": self.detail });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
