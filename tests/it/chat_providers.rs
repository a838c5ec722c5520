//! A real HTTP server standing in for Slack's Web API (`/api/chat.postMessage`,
//! `/api/chat.update`), Telegram's Bot API (`/bot<token>/sendMessage`), an ntfy
//! server (`/ntfy/<topic>`), Teams and Mattermost webhooks (`/teams/…`,
//! `/mattermost/…`) and Twilio's Calls API (`/2010-04-01/Accounts/<sid>/Calls.json`): records every request as it arrived and answers as each
//! documents, or 500 while `failing`.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One request as the provider saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|value| value.to_str().unwrap())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The form fields of a form body.
    pub fn form(&self) -> std::collections::HashMap<String, String> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
}

/// Where Slack says a posted message landed.
pub const SLACK_CHANNEL: &str = "D0ALICE01";
pub const SLACK_TS: &str = "1764385200.000100";

#[derive(Clone, Default)]
pub struct ChatProviders {
    pub url: String,
    /// Requests answered 2xx, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub failing: Arc<AtomicBool>,
}

impl ChatProviders {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener)
    }

    /// Starts on `address`, for a provider that comes back after refusing
    /// connections.
    pub async fn start_at(address: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        Self::serve(listener)
    }

    fn serve(listener: tokio::net::TcpListener) -> Self {
        let providers = Self {
            url: format!("http://{}", listener.local_addr().unwrap()),
            ..Self::default()
        };
        let state = providers.clone();
        let router =
            axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { state.answer(uri, headers, body) }
            });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        providers
    }

    fn answer(&self, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        if self.failing.load(Ordering::SeqCst) {
            // As a proxy's error page does: it repeats what it was sent.
            let authorization = headers
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            let page = format!("down for maintenance; request {uri} authorization={authorization}");
            return (StatusCode::INTERNAL_SERVER_ERROR, page).into_response();
        }
        let path = uri.path().to_string();
        let answer = if path == "/api/chat.postMessage" {
            axum::Json(
                json!({ "ok": true, "channel": SLACK_CHANNEL, "ts": SLACK_TS, "message": {} }),
            )
            .into_response()
        } else if path == "/api/chat.update" {
            axum::Json(json!({ "ok": true, "channel": SLACK_CHANNEL, "ts": SLACK_TS }))
                .into_response()
        } else if path.ends_with("/sendMessage") {
            axum::Json(json!({ "ok": true, "result": { "message_id": 7 } })).into_response()
        } else if path.ends_with("/Calls.json") {
            let call = json!({ "sid": "CA0123456789abcdef0123456789abcdef", "status": "queued" });
            (StatusCode::CREATED, axum::Json(call)).into_response()
        } else if path.starts_with("/teams/") {
            // Power Automate's Workflows trigger accepts and runs the flow later.
            StatusCode::ACCEPTED.into_response()
        } else if path.starts_with("/mattermost/") {
            "ok".into_response()
        } else if path.starts_with("/ntfy/") {
            axum::Json(json!({ "id": "sPs71M8A2T", "event": "message" })).into_response()
        } else {
            return StatusCode::NOT_FOUND.into_response();
        };
        self.seen.lock().unwrap().push(Seen {
            path,
            headers,
            body,
        });
        answer
    }

    /// The requests made to `path`.
    pub fn to(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|seen| seen.path == path)
            .cloned()
            .collect()
    }
}
