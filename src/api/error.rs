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

    /// 400.
    pub fn bad_request(error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, detail)
    }

    /// 404 for a missing thing.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found", detail)
    }

    /// 503 when the store cannot be reached; the client should retry.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable", detail)
    }
}

impl From<PipelineError> for ApiError {
    fn from(error: PipelineError) -> Self {
        match &error {
            PipelineError::Unavailable(_) => Self::unavailable(error.to_string()),
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
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        tracing::error!(%error, "store read failed");
        Self::unavailable(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "detail": self.detail });
        (self.status, Json(body)).into_response()
    }
}
