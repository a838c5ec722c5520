//! A real HTTP server standing in for Twilio's Messages API: records every message
//! it accepts and can be made to fail with 503.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One accepted SMS.
#[derive(Debug, Clone)]
pub struct Sms {
    pub to: String,
    pub body: String,
}

#[derive(Clone, Default)]
pub struct SmsGateway {
    pub url: String,
    pub messages: Arc<Mutex<Vec<Sms>>>,
    pub failing: Arc<AtomicBool>,
    /// Numbers refused as Twilio refuses an unreachable one (400, error 21211).
    pub rejected: Arc<Mutex<Vec<String>>>,
    /// JSON bodies posted to `/hook` (the generic SMS webhook and chat webhooks).
    pub hooks: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl SmsGateway {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = Self {
            url: format!("http://{}", listener.local_addr().unwrap()),
            ..Self::default()
        };
        let router = axum::Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(receive))
            .route("/hook", post(hook))
            .with_state(gateway.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        gateway
    }

    /// Messages sent to `phone`.
    pub fn to(&self, phone: &str) -> Vec<Sms> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|sms| sms.to == phone)
            .cloned()
            .collect()
    }
}

async fn hook(
    State(gateway): State<SmsGateway>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> StatusCode {
    gateway.hooks.lock().unwrap().push(body);
    StatusCode::OK
}

async fn receive(
    State(gateway): State<SmsGateway>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> StatusCode {
    if gateway.failing.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    // Twilio authenticates with Basic auth: the account SID and its token.
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("Basic "));
    if sid != "AC123" || !authorized {
        return StatusCode::UNAUTHORIZED;
    }
    let to = form.get("To").cloned().unwrap_or_default();
    if gateway.rejected.lock().unwrap().contains(&to) {
        return StatusCode::BAD_REQUEST;
    }
    gateway.messages.lock().unwrap().push(Sms {
        to: form.get("To").cloned().unwrap_or_default(),
        body: form.get("Body").cloned().unwrap_or_default(),
    });
    StatusCode::CREATED
}
