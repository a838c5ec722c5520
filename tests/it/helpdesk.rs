//! A real HTTP server standing in for Zendesk, Freshdesk, ServiceNow and Jira Service
//! Management, each under its own prefix (`/zendesk`, …). It checks every call
//! against the platform's documented method, path, Basic-auth credentials and JSON
//! shape, answers as the platform does, and records what it accepted. Anything off
//! the documented shape is answered 400 and kept in `violations`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// The credentials the test config gives each platform.
pub const ZENDESK_AUTH: (&str, &str) = ("agent@acme.example/token", "zd-token-1");
pub const FRESHDESK_AUTH: (&str, &str) = ("fd-api-key", "X");
pub const SERVICENOW_AUTH: (&str, &str) = ("tocsin.integration", "sn-password");
pub const JIRA_AUTH: (&str, &str) = ("ops@acme.example", "jira-token-1");

/// One accepted call.
#[derive(Debug, Clone)]
pub struct Call {
    pub platform: String,
    pub method: Method,
    /// Without the platform prefix.
    pub path: String,
    pub body: Value,
}

#[derive(Clone, Default)]
pub struct Helpdesk {
    pub url: String,
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub violations: Arc<Mutex<Vec<String>>>,
    /// Answer every call 500 while set.
    pub failing: Arc<AtomicBool>,
    /// Calls answered 500.
    pub refused: Arc<AtomicI64>,
    /// While set, a create is carried out but its answer is lost (504), as when a
    /// proxy times out after the platform committed.
    pub losing: Arc<AtomicBool>,
    /// While set, Freshdesk's and Jira's searches do not see tickets yet, as their
    /// search indexes lag behind a create.
    pub unindexed: Arc<AtomicBool>,
    /// Created tickets by `platform/external id`, with the platform's answer.
    created: Arc<Mutex<Vec<(String, Value)>>>,
    next_id: Arc<AtomicI64>,
    /// The ticket references each platform handed out, as `platform/reference`:
    /// a call to any other ticket is a violation.
    issued: Arc<Mutex<Vec<String>>>,
}

impl Helpdesk {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let desk = Self {
            url: format!("http://{}", listener.local_addr().unwrap()),
            next_id: Arc::new(AtomicI64::new(1000)),
            ..Self::default()
        };
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(desk.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        desk
    }

    /// The `[[tickets]]` tables for every platform, pointed at this server.
    pub fn config(&self, extra_keys: &str) -> String {
        format!(
            r#"
[[tickets]]
platform = "zendesk"
base_url = "{url}/zendesk"
user = "agent@acme.example"
token = "zd-token-1"
group = "360001"
requester = "monitoring@acme.example"
tags = ["monitoring"]
webhook_secret = "zendesk-webhook-secret"
{extra_keys}

[[tickets]]
platform = "freshdesk"
base_url = "{url}/freshdesk"
token = "fd-api-key"
group = "42"
requester = "monitoring@acme.example"
webhook_secret = "freshdesk-webhook-secret"
{extra_keys}

[[tickets]]
platform = "servicenow"
base_url = "{url}/servicenow"
user = "tocsin.integration"
token = "sn-password"
group = "Service Desk"
webhook_secret = "servicenow-webhook-secret"
{extra_keys}

[[tickets]]
platform = "jira"
base_url = "{url}/jira"
user = "ops@acme.example"
token = "jira-token-1"
project = "OPS"
issue_type = "[System] Incident"
webhook_secret = "jira-webhook-secret"
{extra_keys}
"#,
            url = self.url
        )
    }

    /// Accepted calls to one platform.
    pub fn calls_to(&self, platform: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|call| call.platform == platform)
            .cloned()
            .collect()
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }
}

async fn handle(
    State(desk): State<Helpdesk>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let full = uri.path().to_string();
    let Some((platform, path)) = full
        .strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .map(|(platform, path)| (platform.to_string(), format!("/{path}")))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if desk.failing.load(Ordering::SeqCst) {
        desk.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::INTERNAL_SERVER_ERROR, "maintenance").into_response();
    }
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(error) => {
                return violation(
                    &desk,
                    format!("{platform} {full}: body is not JSON: {error}"),
                );
            }
        }
    };
    let expected = match platform.as_str() {
        "zendesk" => ZENDESK_AUTH,
        "freshdesk" => FRESHDESK_AUTH,
        "servicenow" => SERVICENOW_AUTH,
        "jira" => JIRA_AUTH,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if basic(&headers) != Some(format!("{}:{}", expected.0, expected.1)) {
        return violation(
            &desk,
            format!("{platform} {full}: wrong or missing Basic auth"),
        );
    }
    if method != Method::GET
        && headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json")
    {
        return violation(
            &desk,
            format!("{platform} {full}: content-type is not application/json"),
        );
    }
    if method == Method::GET
        && let Some(found) = lookup(&desk, &platform, &path, uri.query().unwrap_or(""))
    {
        desk.calls.lock().unwrap().push(Call {
            platform,
            method,
            path,
            body: Value::Null,
        });
        return (StatusCode::OK, axum::Json(found)).into_response();
    }
    let id = desk.next_id.fetch_add(1, Ordering::SeqCst);
    if let Some(reference) = reference_in(&path)
        && !desk
            .issued
            .lock()
            .unwrap()
            .contains(&format!("{platform}/{reference}"))
    {
        return violation(
            &desk,
            format!("{platform} {method} {path}: no ticket {reference} was created"),
        );
    }
    let answer = match platform.as_str() {
        "zendesk" => zendesk(&method, &path, &body, id),
        "freshdesk" => freshdesk(&method, &path, &body, id),
        "servicenow" => servicenow(&method, &path, &body, id),
        _ => jira(&method, &path, &body, id),
    };
    match answer {
        Ok((status, reply)) => {
            for pointer in ["/ticket/id", "/id", "/result/sys_id", "/key"] {
                if status == StatusCode::CREATED
                    && let Some(value) = reply.pointer(pointer)
                {
                    let reference = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_string);
                    desk.issued
                        .lock()
                        .unwrap()
                        .push(format!("{platform}/{reference}"));
                }
            }
            if status == StatusCode::CREATED
                && let Some(external) = marker_of(&body)
            {
                desk.created
                    .lock()
                    .unwrap()
                    .push((format!("{platform}/{external}"), reply.clone()));
            }
            let lost = status == StatusCode::CREATED && desk.losing.load(Ordering::SeqCst);
            desk.calls.lock().unwrap().push(Call {
                platform,
                method,
                path,
                body,
            });
            if lost {
                return (StatusCode::GATEWAY_TIMEOUT, "upstream timed out").into_response();
            }
            (status, axum::Json(reply)).into_response()
        }
        Err(why) => violation(&desk, format!("{platform} {method} {path}: {why}")),
    }
}

/// The id Tocsin gave a ticket it creates: Zendesk's `external_id`, ServiceNow's
/// `correlation_id`, a `tocsin-<n>` tag (Freshdesk) or label (Jira).
fn marker_of(body: &Value) -> Option<&str> {
    let marker = |tag: &&Value| {
        tag.as_str().is_some_and(|tag| {
            tag.strip_prefix("tocsin-")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    body.pointer("/ticket/external_id")
        .or_else(|| body.pointer("/correlation_id"))
        .or_else(|| body["tags"].as_array()?.iter().find(marker))
        .or_else(|| {
            body.pointer("/fields/labels")?
                .as_array()?
                .iter()
                .find(marker)
        })
        .and_then(Value::as_str)
}

/// The documented searches by the id Tocsin gave a ticket: Zendesk's
/// `GET /api/v2/tickets.json?external_id=`, ServiceNow's
/// `GET /api/now/table/incident?sysparm_query=correlation_id=…`, Freshdesk's
/// `GET /api/v2/search/tickets?query="tag:'…'"` and Jira Cloud's
/// `GET /rest/api/2/search/jql?jql=project = "OPS" AND labels = "…"`.
fn lookup(desk: &Helpdesk, platform: &str, path: &str, query: &str) -> Option<Value> {
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let (external, wrap): (String, fn(Vec<Value>) -> Value) = match (platform, path) {
        ("zendesk", "/api/v2/tickets.json") => (
            param("external_id")?,
            |found| json!({ "tickets": found.iter().map(|reply| reply["ticket"].clone()).collect::<Vec<_>>() }),
        ),
        ("servicenow", "/api/now/table/incident") => (
            param("sysparm_query")?
                .strip_prefix("correlation_id=")?
                .to_string(),
            |found| json!({ "result": found.iter().map(|reply| reply["result"].clone()).collect::<Vec<_>>() }),
        ),
        ("freshdesk", "/api/v2/search/tickets") => (
            param("query")?
                .strip_prefix("\"tag:'")?
                .strip_suffix("'\"")?
                .to_string(),
            |found| json!({ "results": found, "total": found.len() }),
        ),
        ("jira", "/rest/api/2/search/jql") => (
            param("jql")?
                .strip_prefix("project = \"OPS\" AND labels = \"")?
                .strip_suffix('"')?
                .to_string(),
            |found| json!({ "issues": found.iter().map(|reply| json!({ "id": reply["id"], "key": reply["key"] })).collect::<Vec<_>>(), "isLast": true }),
        ),
        _ => return None,
    };
    let key = format!("{platform}/{external}");
    let indexed =
        !(desk.unindexed.load(Ordering::SeqCst) && matches!(platform, "freshdesk" | "jira"));
    let found = desk
        .created
        .lock()
        .unwrap()
        .iter()
        .filter(|(created, _)| indexed && *created == key)
        .map(|(_, reply)| reply.clone())
        .collect();
    Some(wrap(found))
}

/// The ticket a call addresses: the path segment after the collection.
fn reference_in(path: &str) -> Option<String> {
    let rest = [
        "/api/v2/tickets/",
        "/api/now/table/incident/",
        "/rest/servicedeskapi/request/",
        "/rest/api/2/issue/",
    ]
    .iter()
    .find_map(|prefix| path.strip_prefix(prefix))?;
    let segment = rest.split('/').next()?;
    Some(segment.trim_end_matches(".json").to_string())
}

fn violation(desk: &Helpdesk, why: String) -> Response {
    desk.violations.lock().unwrap().push(why.clone());
    (StatusCode::BAD_REQUEST, why).into_response()
}

fn basic(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?,
    )
    .ok()
}

type Answer = Result<(StatusCode, Value), String>;

fn need(body: &Value, pointer: &str, allowed: &[&str]) -> Result<(), String> {
    let value = body
        .pointer(pointer)
        .ok_or_else(|| format!("{pointer} is missing"))?;
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.is_empty() {
        return Err(format!("{pointer} is empty"));
    }
    if !allowed.is_empty() && !allowed.contains(&text.as_str()) {
        return Err(format!("{pointer} = {text} is not one of {allowed:?}"));
    }
    Ok(())
}

/// Zendesk Tickets API.
fn zendesk(method: &Method, path: &str, body: &Value, id: i64) -> Answer {
    if method == Method::POST && path == "/api/v2/tickets.json" {
        need(body, "/ticket/subject", &[])?;
        need(body, "/ticket/comment/body", &[])?;
        need(
            body,
            "/ticket/priority",
            &["urgent", "high", "normal", "low"],
        )?;
        if !body.pointer("/ticket/tags").is_some_and(Value::is_array) {
            return Err("ticket.tags must be an array".into());
        }
        return Ok((
            StatusCode::CREATED,
            json!({ "ticket": { "id": id, "status": "new" } }),
        ));
    }
    if method == Method::PUT && path.starts_with("/api/v2/tickets/") && path.ends_with(".json") {
        if body.pointer("/ticket/comment").is_some() {
            need(body, "/ticket/comment/body", &[])?;
            if body.pointer("/ticket/comment/public") != Some(&json!(false)) {
                return Err("notes must be private comments (public: false)".into());
            }
        } else if body.pointer("/ticket/status").is_some() {
            need(body, "/ticket/status", &["solved"])?;
        } else {
            need(
                body,
                "/ticket/priority",
                &["urgent", "high", "normal", "low"],
            )?;
        }
        return Ok((StatusCode::OK, json!({ "ticket": { "id": path } })));
    }
    Err("not a documented Tickets API call".into())
}

/// Freshdesk Tickets API v2.
fn freshdesk(method: &Method, path: &str, body: &Value, id: i64) -> Answer {
    if method == Method::POST && path == "/api/v2/tickets" {
        need(body, "/subject", &[])?;
        need(body, "/description", &[])?;
        need(body, "/email", &[])?;
        need(body, "/priority", &["1", "2", "3", "4"])?;
        need(body, "/status", &["2", "3", "4", "5"])?;
        return Ok((StatusCode::CREATED, json!({ "id": id, "status": 2 })));
    }
    if method == Method::POST && path.starts_with("/api/v2/tickets/") && path.ends_with("/notes") {
        need(body, "/body", &[])?;
        if body["private"] != json!(true) {
            return Err("notes must be private".into());
        }
        return Ok((StatusCode::CREATED, json!({ "id": id })));
    }
    if method == Method::PUT && path.starts_with("/api/v2/tickets/") {
        if body.get("status").is_some() {
            need(body, "/status", &["4", "5"])?;
        } else {
            need(body, "/priority", &["1", "2", "3", "4"])?;
        }
        return Ok((StatusCode::OK, json!({ "status": 4 })));
    }
    Err("not a documented Tickets API v2 call".into())
}

/// ServiceNow Table API, incident table.
fn servicenow(method: &Method, path: &str, body: &Value, id: i64) -> Answer {
    if method == Method::POST && path == "/api/now/table/incident" {
        need(body, "/short_description", &[])?;
        need(body, "/impact", &["1", "2", "3"])?;
        need(body, "/urgency", &["1", "2", "3"])?;
        return Ok((
            StatusCode::CREATED,
            json!({ "result": { "sys_id": format!("9d385017c611228701d22104cc95c{id}"), "number": format!("INC00{id}") } }),
        ));
    }
    if method == Method::PATCH && path.starts_with("/api/now/table/incident/") {
        if body.get("state").is_some() {
            need(body, "/state", &["6", "7"])?;
            need(body, "/close_code", &[])?;
            need(body, "/close_notes", &[])?;
        } else if body.get("impact").is_some() {
            need(body, "/impact", &["1", "2", "3"])?;
            need(body, "/urgency", &["1", "2", "3"])?;
        } else {
            need(body, "/work_notes", &[])?;
        }
        return Ok((StatusCode::OK, json!({ "result": {} })));
    }
    Err("not a documented Table API call".into())
}

/// Jira platform and Service Management APIs.
fn jira(method: &Method, path: &str, body: &Value, id: i64) -> Answer {
    if method == Method::POST && path == "/rest/api/2/issue" {
        need(body, "/fields/project/key", &[])?;
        need(body, "/fields/summary", &[])?;
        need(body, "/fields/issuetype/name", &[])?;
        need(
            body,
            "/fields/priority/name",
            &["Highest", "High", "Medium", "Low", "Lowest"],
        )?;
        return Ok((
            StatusCode::CREATED,
            json!({ "id": id.to_string(), "key": format!("OPS-{id}"), "self": "…" }),
        ));
    }
    if method == Method::POST
        && path.starts_with("/rest/servicedeskapi/request/")
        && path.ends_with("/comment")
    {
        need(body, "/body", &[])?;
        if body["public"] != json!(false) {
            return Err("internal comments are public: false".into());
        }
        return Ok((StatusCode::CREATED, json!({ "id": id.to_string() })));
    }
    if method == Method::PUT && path.starts_with("/rest/api/2/issue/") {
        need(
            body,
            "/fields/priority/name",
            &["Highest", "High", "Medium", "Low", "Lowest"],
        )?;
        return Ok((StatusCode::NO_CONTENT, Value::Null));
    }
    if path.starts_with("/rest/api/2/issue/") && path.ends_with("/transitions") {
        if method == Method::GET {
            return Ok((
                StatusCode::OK,
                json!({ "transitions": [
                    { "id": "11", "name": "Start progress", "to": { "statusCategory": { "key": "indeterminate" } } },
                    { "id": "31", "name": "Resolve", "to": { "statusCategory": { "key": "done" } } } ] }),
            ));
        }
        need(body, "/transition/id", &["31"])?;
        return Ok((StatusCode::NO_CONTENT, Value::Null));
    }
    Err("not a documented Jira call".into())
}

/// A desk whose webhooks are not set up answers a stranger exactly as a desk that is
/// not configured: which desks exist is not told.
#[tokio::test]
async fn a_desk_without_a_webhook_secret_tells_a_stranger_nothing_more() {
    let tocsin = crate::harness::Harness::start(
        "[[tickets]]\nplatform = \"zendesk\"\nbase_url = \"http://127.0.0.1:9/zendesk\"\nuser = \"agent@acme.example\"\ntoken = \"zd-token-1\"\n",
    )
    .await;
    let mut answers = Vec::new();
    for platform in ["zendesk", "jira"] {
        let answer = tocsin
            .client
            .post(format!("{}/api/v1/tickets/{platform}/webhook", tocsin.url))
            .header("content-type", "application/json")
            .body(r#"{"ticket_id": "1"}"#)
            .send()
            .await
            .unwrap();
        answers.push((answer.status().as_u16(), answer.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, 401, "{answers:?}");
    assert_eq!(answers[0], answers[1], "configured or not, the same answer");
}
