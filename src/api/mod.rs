//! The HTTP API of spec §6: the router, its shared state, and helpers every list
//! endpoint uses (paging, filters). One file per resource.

pub mod acknowledge;
pub mod alerts;
pub mod approve;
pub mod auth;
pub mod changes;
pub mod chat;
pub mod console;
pub mod dashboard;
pub mod drills;
pub mod error;
pub mod health;
pub mod heartbeat;
pub mod idempotency;
pub mod incidents;
pub mod ingest;
pub mod kpi;
pub mod link_page;
pub mod noise;
pub mod oncall;
pub mod reports;
pub mod runbooks;
pub mod silences;
pub mod tickets;
pub mod twilio;
pub mod voice;

use crate::alert::Priority;
use crate::clock::Clock;
use crate::config::Role;
use crate::ingest::SourceKind;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::store::Store;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use error::ApiError;
use governor::DefaultDirectRateLimiter;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// What every handler gets: one pointer, since axum clones the state for each
/// request (and each middleware layer), and cloning the fields costs a few dozen
/// reference counts per request.
impl Handles {
    /// Whether a sender has used up its `[sources.X] rate_limit` this second; counts
    /// the request when not. Alerts and change events share it.
    pub fn over_rate(&self, kind: SourceKind) -> bool {
        self.limiters
            .get(&kind)
            .is_some_and(|limiter| limiter.check().is_err())
    }
}

pub type AppState = Arc<Handles>;

/// Everything a handler may need.
pub struct Handles {
    /// Read with `.load()` for each request: a reload replaces it.
    pub config: crate::config::SharedConfig,
    /// Where the configuration was read from, for reloads (unset when built in memory).
    pub config_path: std::sync::OnceLock<std::path::PathBuf>,
    pub store: Arc<dyn Store>,
    pub pipeline: Pipeline,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub links: crate::notify::ack_link::AckLinks,
    pub templates: Arc<crate::templates::Templates>,
    /// Fires after every committed change, for the dashboard's live stream.
    pub changes: tokio::sync::broadcast::Sender<()>,
    pub limiters: Arc<HashMap<SourceKind, DefaultDirectRateLimiter>>,
    /// Tripped when a background task died: not ready, and `serve` exits.
    pub fatal: crate::supervise::Fatal,
    /// Set when a stop begins: long-lived responses (the live stream) end.
    pub closing: tokio::sync::watch::Sender<bool>,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let role = |role: Role| from_fn_with_state((state.clone(), role), auth::require);
    let read = Router::new()
        .route("/api/v1/incidents", get(incidents::list))
        .route("/api/v1/incidents/{id}", get(incidents::show))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/changes", get(changes::list))
        .route("/api/v1/oncall", get(oncall::oncall))
        .route("/api/v1/silences", get(silences::list))
        .route("/api/v1/runbooks", get(runbooks::list))
        .route("/api/v1/kpi", get(kpi::kpi))
        .route("/api/v1/noise", get(noise::noise))
        .route("/api/v1/reports/monthly", get(reports::monthly))
        .route_layer(role(Role::Viewer));
    let admin = Router::new()
        .route("/-/reload", post(health::reload))
        .route_layer(role(Role::Admin));
    let max_body = state.config.load().max_body_bytes;
    // The routes that take an Idempotency-Key read its body's digest first.
    let keyed = Router::new()
        .route("/api/v1/incidents/{id}/ack", post(incidents::acknowledge))
        .route("/api/v1/incidents/{id}/resolve", post(incidents::resolve))
        .route("/api/v1/incidents/{id}/notes", post(incidents::add_note))
        .route("/api/v1/incidents/{id}/escalate", post(incidents::escalate))
        .route("/api/v1/incidents/{id}/hold", post(incidents::hold))
        .route("/api/v1/incidents/{id}/unhold", post(incidents::unhold))
        .route("/api/v1/silences", post(silences::create))
        .route("/api/v1/runbooks/{name}/run", post(runbooks::run))
        .route("/api/v1/drills/{name}/run", post(drills::run))
        .route_layer(from_fn_with_state(max_body, idempotency::digest_body));
    let act = Router::new()
        .route(
            "/api/v1/incidents/{id}/runbooks/{name}/approve",
            post(runbooks::approve),
        )
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(silences::expire),
        )
        .merge(keyed)
        .route_layer(role(Role::Responder));
    // Ingest enforces server.max_body_bytes itself, with the drain of spec §10; every
    // other body is capped at the same size by axum.
    let ingest = Router::new()
        .route(
            "/api/v1/ingest/{source}",
            post(ingest::ingest).put(ingest::ingest),
        )
        .route("/v2/enqueue", post(ingest::enqueue))
        .layer(DefaultBodyLimit::disable());
    let links = Router::new()
        .route(
            "/ack/{token}",
            get(acknowledge::ack_page).post(acknowledge::acknowledge),
        )
        .route(
            "/csat/{token}",
            get(acknowledge::csat_page).post(acknowledge::csat_answer),
        )
        .route(
            "/approve/{token}",
            get(approve::show).post(approve::approve),
        )
        .layer(axum::middleware::map_response(link_page::html_errors));
    Router::new()
        .merge(links)
        .route("/api/v1/sms/inbound", post(acknowledge::sms_inbound))
        .route("/api/v1/chat/slack", post(chat::slack))
        .route("/api/v1/chat/telegram", post(chat::telegram))
        .route("/api/v1/chat/mattermost", post(chat::mattermost))
        .route("/api/v1/voice/twilio", post(voice::twilio))
        .route("/api/v1/heartbeat/{name}", post(heartbeat::check_in))
        .route("/v2/change/enqueue", post(changes::enqueue))
        .route("/api/v1/changes", post(changes::create))
        .route(
            "/api/v1/tickets/{platform}/webhook",
            post(tickets::webhook),
        )
        .merge(
            Router::new()
                .route("/", get(dashboard::page))
                .route("/dashboard/panel", get(dashboard::panel))
                .route("/api/v1/stream", get(dashboard::stream))
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    dashboard::access,
                ))
                // What is open, and who is on call: not for a shared cache or the
                // browser's back button after the session ends.
                .route_layer(security_header(header::CACHE_CONTROL, "no-store")),
        )
        .merge(console::router())
        .route("/api/v1/openapi.json", get(health::openapi))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(read)
        .merge(act)
        .merge(admin)
        .layer(DefaultBodyLimit::max(max_body))
        // For browsers: no page may be framed by another site (clickjacking a
        // console button), no type is guessed from content, and no address, which
        // for `/ack/…` links holds a token, is sent on as a referrer. Not on ingest,
        // which no browser reads and where four more headers cost ~10% of the rate.
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(
            header::CONTENT_SECURITY_POLICY,
            "frame-ancestors 'none'",
        ))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::REFERRER_POLICY, "no-referrer"))
        .merge(ingest)
        .fallback(|| async { ApiError::not_found("no such route; see the README for the API") })
        .layer(axum::middleware::map_response(error::json_errors))
        // Every request gets an x-request-id (kept when the client sent one), logged
        // with its span and returned in the response.
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %redacted_path(request.uri().path()), request_id = %id)
        }))
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(tower_http::request_id::MakeRequestUuid))
        .with_state(state)
}

fn security_header(
    name: axum::http::HeaderName,
    value: &'static str,
) -> tower_http::set_header::SetResponseHeaderLayer<axum::http::HeaderValue> {
    tower_http::set_header::SetResponseHeaderLayer::if_not_present(
        name,
        axum::http::HeaderValue::from_static(value),
    )
}

/// A request path as logs may show it: the single-use tokens of `/ack/…`,
/// `/csat/…` and `/approve/…` links act for whoever holds them, so they are cut.
/// (Query strings, where `?token=` travels, are never logged.)
pub fn redacted_path(path: &str) -> std::borrow::Cow<'_, str> {
    let mut segments = path.split('/');
    let secret_follows = |segment: &str| matches!(segment, "ack" | "csat" | "approve");
    if !path.split('/').any(secret_follows) {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = Vec::new();
    while let Some(segment) = segments.next() {
        out.push(segment);
        if secret_follows(segment) && segments.next().is_some() {
            out.push("…");
        }
    }
    std::borrow::Cow::Owned(out.join("/"))
}

/// One page of a newest-first list: fetch `limit + 1` rows, return `limit`, and use
/// the last id as the cursor when there was more.
pub struct Page<T> {
    items: Vec<T>,
    next: Option<i64>,
}

impl<T> Page<T> {
    /// Cuts a `limit + 1` fetch into a page.
    pub fn of(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(&id)
        } else {
            None
        };
        Self { items, next }
    }

    /// `{"items": [...], "next": cursor-or-null}`.
    pub fn to_json(&self, item: impl Fn(&T) -> Value) -> Value {
        serde_json::json!({
            "items": self.items.iter().map(item).collect::<Vec<_>>(),
            "next": self.next.map(|id| id.to_string()),
        })
    }
}

/// A time in a query string (`?from=`, `?since=`), RFC 3339. An offset's `+` sent
/// unencoded arrives as a space; the refusal says so, since the text it echoes looks
/// right to whoever typed it.
pub fn query_time(name: &str, text: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let parse = |text: &str| {
        chrono::DateTime::parse_from_rfc3339(text).map(|at| at.with_timezone(&chrono::Utc))
    };
    parse(text).map_err(|_| {
        let hint = if text.contains(' ') && parse(&text.replace(' ', "+")).is_ok() {
            "; a + in a query string arrives as a space: write it %2B (…%2B01:00)"
        } else {
            ""
        };
        ApiError::bad_request(
            "invalid query",
            format!("{name}: {text:?} is not an RFC 3339 time{hint}"),
        )
    })
}

/// Reads `?limit=` (default 100, at most 1000) and `?cursor=`.
pub fn page(limit: Option<&str>, cursor: Option<&str>) -> Result<(i64, Option<i64>), ApiError> {
    let limit = match limit {
        None => 100,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid query",
                    format!("limit: {text:?} is not a number from 1 to 1000"),
                )
            })?,
    };
    let before = match cursor.filter(|c| !c.is_empty()) {
        None => None,
        // A "next" is an id, so positive: 0 or less is no cursor we gave out.
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid query",
                        format!("cursor: {text:?} is not a cursor from a previous page's \"next\""),
                    )
                })?,
        ),
    };
    Ok((limit, before))
}

/// A comma-separated filter whose values must come from `allowed`.
pub fn list_filter(
    text: Option<&str>,
    name: &str,
    allowed: &[&str],
) -> Result<Vec<String>, ApiError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(|value| {
            if allowed.contains(&value) {
                Ok(value.to_string())
            } else {
                Err(ApiError::bad_request(
                    "invalid query",
                    format!("{name}: {value:?} is not one of {}", allowed.join(", ")),
                ))
            }
        })
        .collect()
}

/// `?priority=P1,P2`.
pub fn priority_filter(text: Option<&str>) -> Result<Vec<Priority>, ApiError> {
    list_filter(text, "priority", &["P1", "P2", "P3", "P4"])?
        .iter()
        .map(|p| {
            p.parse()
                .map_err(|_| ApiError::bad_request("invalid query", "priority"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::redacted_path;

    #[test]
    fn link_tokens_never_reach_the_logs() {
        assert_eq!(redacted_path("/ack/eyJhbGciOi.secret"), "/ack/…");
        assert_eq!(redacted_path("/csat/abc_DEF-123"), "/csat/…");
        assert_eq!(redacted_path("/approve/xyz"), "/approve/…");
        assert_eq!(
            redacted_path("/api/v1/incidents/12/ack"),
            "/api/v1/incidents/12/ack"
        );
        assert_eq!(
            redacted_path("/api/v1/ingest/generic"),
            "/api/v1/ingest/generic"
        );
    }
}
