//! `POST /api/v1/ingest/{source}` and `POST /v2/enqueue`: authenticate the source,
//! read the body within its limit, parse it, and answer 202 only once the pipeline has
//! committed it. Refusals are counted by reason in `tocsin_alerts_rejected_total`.

use super::AppState;
use super::error::ApiError;
use crate::ingest::{self, IngestError, SourceKind};
use crate::pipeline::{Accepted, PipelineError};
use crate::webhook_auth::{presented_token, same_secret};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::time::{Duration, Instant};

/// How long the rest of an oversized body is read and discarded before answering 413.
const DRAIN_TIME: Duration = Duration::from_secs(5);
/// How much of an oversized body is discarded, as a multiple of the limit.
const DRAIN_FACTOR: usize = 8;

/// A refusal, with the metric reason it counts under.
struct Refusal {
    reason: &'static str,
    error: ApiError,
}

impl Refusal {
    fn new(
        reason: &'static str,
        status: StatusCode,
        error: &str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            reason,
            error: ApiError::new(status, error, detail),
        }
    }

    fn invalid(error: &IngestError) -> Self {
        Self::new(
            "invalid",
            StatusCode::BAD_REQUEST,
            "invalid payload",
            error.detail(),
        )
    }
}

/// `POST /api/v1/ingest/{source}`.
pub async fn ingest(
    State(state): State<AppState>,
    Path(source): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(kind) = source.parse::<SourceKind>() else {
        return ApiError::not_found(format!(
            "no sender is called {source:?}; use one of {}",
            SourceKind::ALL.map(SourceKind::as_str).join(", ")
        ))
        .into_response();
    };
    handle(state, kind, query, headers, body).await
}

/// `POST /v2/enqueue`, PagerDuty's own path.
pub async fn enqueue(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, SourceKind::Pagerduty, query, headers, body).await
}

async fn handle(
    state: AppState,
    kind: SourceKind,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let outcome = accept(&state, kind, query.as_deref(), &headers, body).await;
    state
        .metrics
        .ingest_duration_seconds
        .with_label_values(&[kind.as_str()])
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(accepted) => accepted_response(kind, accepted),
        Err(refusal) => {
            state
                .metrics
                .alerts_rejected
                .with_label_values(&[kind.as_str(), refusal.reason])
                .inc();
            let mut response = refusal_response(kind, refusal.error);
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            response
        }
    }
}

async fn accept(
    state: &AppState,
    kind: SourceKind,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<Accepted>, Refusal> {
    let config = state.config.load_full();
    let source = config.sources.get(&kind).ok_or_else(|| {
        Refusal::new(
            "not_enabled",
            StatusCode::NOT_FOUND,
            "source not enabled",
            format!(
                "add a [sources.{kind}] table with a token to the config to accept {kind} alerts"
            ),
        )
    })?;
    let token = presented_token(headers, query);
    let token_ok = match (&source.token, &token) {
        (None, _) => true,
        (Some(expected), Some(given)) => same_secret(given, expected),
        (Some(_), None) => false,
    };
    // PagerDuty senders authenticate with the body's routing_key instead.
    if !token_ok && kind != SourceKind::Pagerduty {
        return Err(unauthorized(kind, token.is_some()));
    }
    // Only an authenticated request counts toward the rate limit, so nobody without
    // the token can keep a real sender at 429.
    let rate_limit = || {
        if !state.over_rate(kind) {
            return Ok(());
        }
        Err(Refusal::new(
            "rate_limited",
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded",
            format!("[sources.{kind}] rate_limit is reached; retry after a second"),
        ))
    };

    // A header token proves the sender at once; a source without one is proven only
    // by its signature or routing key, further down.
    if token_ok && source.token.is_some() {
        rate_limit()?;
    }
    check_content_type(kind, headers)?;
    check_content_encoding(headers)?;
    let body = read_body(body, declared(headers), config.max_body_bytes).await?;
    let signature = match &source.signature {
        Some(signature) => Some(
            crate::webhook_auth::verify(signature, headers, &body, state.clock.now()).map_err(
                |why| {
                    Refusal::new(
                        "bad_signature",
                        StatusCode::UNAUTHORIZED,
                        "bad signature",
                        why.to_string(),
                    )
                },
            )?,
        ),
        None => None,
    };
    let routing_ok = |routing_key: Option<&str>| match (&source.token, routing_key) {
        (Some(expected), Some(given)) => same_secret(given, expected),
        _ => false,
    };
    let payload = match ingest::parse(kind, &body, state.clock.now()) {
        Ok(payload) => payload,
        // A sender we can authenticate learns what is wrong; anyone else only that
        // they are not authenticated.
        Err(error) if token_ok || routing_ok(routing_key_of(&body).as_deref()) => {
            return Err(Refusal::invalid(&error));
        }
        Err(_) => return Err(unauthorized(kind, token.is_some())),
    };
    if !token_ok && !routing_ok(payload.routing_key.as_deref()) {
        return Err(unauthorized(
            kind,
            token.is_some() || payload.routing_key.is_some(),
        ));
    }
    if !(token_ok && source.token.is_some()) {
        rate_limit()?;
    }
    let applied = match &signature {
        Some(signature) => {
            let timestamped = source
                .signature
                .as_ref()
                .is_some_and(|config| config.timestamp_header.is_some());
            state
                .pipeline
                .ingest_signed(payload.alerts, signature, timestamped)
                .await
        }
        None => state.pipeline.ingest(payload.alerts).await,
    };
    applied.map_err(|error| match error {
        PipelineError::Spent => Refusal::new(
            "bad_signature",
            StatusCode::UNAUTHORIZED,
            "replayed signature",
            "this signature was already accepted once; sign each request anew (a fresh timestamp)",
        ),
        PipelineError::Unavailable(_) => Refusal {
            reason: "unavailable",
            error: error.into(),
        },
        other => Refusal {
            reason: "invalid",
            error: other.into(),
        },
    })
}

/// The `routing_key` of a body that may be invalid otherwise: a sender proven by it
/// hears what is wrong with its body (400), not that its key is (401).
pub(super) fn routing_key_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct RoutingKey {
        routing_key: Option<String>,
    }
    serde_json::from_slice::<RoutingKey>(crate::ingest::without_bom(body))
        .ok()?
        .routing_key
}

fn unauthorized(kind: SourceKind, presented: bool) -> Refusal {
    let (error, detail) = if presented {
        (
            "wrong token",
            format!("the token does not match [sources.{kind}] token"),
        )
    } else {
        (
            "missing token",
            format!(
                "send Authorization: Bearer <token> or ?token=<token> with the [sources.{kind}] token"
            ),
        )
    };
    Refusal::new("unauthorized", StatusCode::UNAUTHORIZED, error, detail)
}

/// JSON endpoints take `application/json` and `*+json`; the form-capable senders also
/// take forms. No declared type is read as JSON.
fn check_content_type(kind: SourceKind, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(declared) = declared_type(headers) else {
        return Ok(());
    };
    let form = declared == "application/x-www-form-urlencoded";
    if is_json(&declared) || (form && kind.accepts_form()) {
        return Ok(());
    }
    let accepted = if kind.accepts_form() {
        "application/json or application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    Err(Refusal::new(
        "unsupported_media_type",
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported content type",
        format!("Content-Type {declared:?} cannot be read here; send {accepted}"),
    ))
}

/// Bodies are read as sent: a compressed one would be parsed as garbage (and `br`
/// on a plain one would be a lie this reader cannot tell), so any encoding but
/// `identity` is refused, naming it.
fn check_content_encoding(headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(());
    };
    let encoding = value.to_str().unwrap_or("?").trim();
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        return Ok(());
    }
    Err(Refusal::new(
        "unsupported_media_type",
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported content encoding",
        format!(
            "Content-Encoding {encoding:?} cannot be read here; send the body uncompressed, without Content-Encoding"
        ),
    ))
}

/// The declared `Content-Type` without its parameters, lowercased; `None` when
/// there is none (read as JSON).
pub(super) fn declared_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    Some(
        value
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// `application/json` or an `application/…+json` type.
pub(super) fn is_json(declared: &str) -> bool {
    declared == "application/json"
        || (declared.starts_with("application/") && declared.ends_with("+json"))
}

/// What the client said of its body before sending it.
struct Declared {
    /// `Content-Length`, when it is a number.
    length: Option<u64>,
    /// `Expect: 100-continue`: the body comes only once it is asked for.
    waits_to_send: bool,
}

fn declared(headers: &HeaderMap) -> Declared {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    Declared {
        length: text(header::CONTENT_LENGTH).and_then(|length| length.parse().ok()),
        waits_to_send: text(header::EXPECT)
            .is_some_and(|expect| expect.eq_ignore_ascii_case("100-continue")),
    }
}

/// Reads at most `limit` bytes. Past it, discards the rest (bounded in size and
/// time) so a client that writes its whole body before reading still sees the 413.
/// A body declared larger is not waited for: it is only drained, or, from a client
/// that waits to be asked for it (`100-continue`), not asked for at all.
async fn read_body(body: Body, declared: Declared, limit: usize) -> Result<Bytes, Refusal> {
    let mut body = body;
    let too_large = || {
        Refusal::new(
            "too_large",
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload too large",
            format!(
                "the body is larger than server.max_body_bytes ({limit} bytes); send fewer alerts per request"
            ),
        )
    };
    let cap = limit.saturating_mul(DRAIN_FACTOR);
    if declared.length.is_some_and(|length| length > limit as u64) {
        if !declared.waits_to_send {
            drain(body, 0, cap).await;
        }
        return Err(too_large());
    }
    let mut buffer = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(unreadable)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buffer.len() + data.len() > limit {
            drain(body, buffer.len() + data.len(), cap).await;
            return Err(too_large());
        }
        buffer.extend_from_slice(&data);
    }
    Ok(Bytes::from(buffer))
}

/// A body not whole within `server.client_timeout` (enforced by the listener)
/// is 408; one that broke off is 400.
fn unreadable(error: axum::Error) -> Refusal {
    if let Some(stalled) = ApiError::if_body_stalled(&error) {
        return Refusal {
            reason: "invalid",
            error: stalled,
        };
    }
    Refusal::new(
        "invalid",
        StatusCode::BAD_REQUEST,
        "unreadable body",
        format!("the body could not be read: {error}"),
    )
}

async fn drain(mut body: Body, mut seen: usize, cap: usize) {
    let discard = async {
        while seen < cap {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

fn accepted_response(kind: SourceKind, accepted: Vec<Accepted>) -> Response {
    if kind == SourceKind::Pagerduty {
        let dedup_key = accepted.first().map(|a| a.dedup_key.clone());
        let body = serde_json::json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key });
        return (StatusCode::ACCEPTED, Json(body)).into_response();
    }
    let alerts = accepted
        .iter()
        .map(|a| AcceptedAlert {
            dedup_key: &a.dedup_key,
            id: a.id,
            incident_id: a.incident_id,
        })
        .collect();
    (StatusCode::ACCEPTED, Json(AcceptedBody { alerts })).into_response()
}

/// The 202's body, serialized straight from the answers: building it as a
/// `serde_json::Value` first cost a map and its keys per alert on every request.
/// Fields in the order `json!` wrote them (sorted), so the bytes are unchanged.
#[derive(serde::Serialize)]
struct AcceptedBody<'a> {
    alerts: Vec<AcceptedAlert<'a>>,
}

#[derive(serde::Serialize)]
struct AcceptedAlert<'a> {
    dedup_key: &'a str,
    id: Option<i64>,
    incident_id: Option<i64>,
}

/// PagerDuty clients read `status`/`message`/`errors`; everyone else `error`/`detail`.
/// PagerDuty routes carry both.
fn refusal_response(kind: SourceKind, error: ApiError) -> Response {
    if kind != SourceKind::Pagerduty {
        return error.into_response();
    }
    let status_word = if error.status == StatusCode::BAD_REQUEST {
        "invalid event"
    } else {
        "unrecognized request"
    };
    let message = if error.status == StatusCode::BAD_REQUEST {
        "Event object is invalid".to_string()
    } else {
        error.error.clone()
    };
    let body = serde_json::json!({
        "status": status_word,
        "message": message,
        "errors": [error.detail],
        "error": error.error,
        "detail": error.detail,
    });
    (error.status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Senders' scripts read the 202's body: the same bytes as before it was
    /// serialized without a `serde_json::Value` in between.
    #[test]
    fn the_accepted_body_keeps_its_shape() {
        let body = AcceptedBody {
            alerts: vec![AcceptedAlert {
                dedup_key: "db-01/disk",
                id: Some(7),
                incident_id: None,
            }],
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            serde_json::json!({ "alerts": [{ "id": 7, "dedup_key": "db-01/disk", "incident_id": null }] })
                .to_string()
        );
    }
}
