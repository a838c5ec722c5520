//! Issue 16's promises over the real router: a 503 means nothing happened, a request
//! is applied whole or not at all, and a retried action acts once.

use crate::harness::*;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Three tiers of one user each, ten minutes apart; no channel is configured, so
/// escalation moves without sending anything.
const POLICY: &str = r#"
[[users]]
id = "alice"
email = "alice@example.com"
[[users]]
id = "carol"
email = "carol@example.com"
[[users]]
id = "dave"
email = "dave@example.com"
[[escalation_policies]]
name = "default"
tiers = [
  { level = "L1", targets = ["user:alice"], after = "0s" },
  { level = "L2", targets = ["user:carol"], after = "10m" },
  { level = "L3", targets = ["user:dave"], after = "20m" },
]
"#;

async fn p1(tocsin: &Harness, resource: &str) -> i64 {
    let reply = tocsin
        .ingest_ok("generic", &generic(resource, "http", "critical"))
        .await;
    reply["alerts"][0]["incident_id"].as_i64().unwrap()
}

async fn post_keyed(tocsin: &Harness, path: &str, key: &str, body: Value) -> (u16, Value) {
    let response = tocsin
        .client
        .post(format!("{}{path}", tocsin.url))
        .bearer_auth(RESPONDER)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// How many times the timeline says `level` was paged.
fn tier_pages(incident: &Value, level: &str) -> usize {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| {
            entry["kind"] == "escalated" && entry["message"].as_str().unwrap().starts_with(level)
        })
        .count()
}

/// Waits (wall time, bounded) until `count` commits are held at the store.
async fn commits_held(tocsin: &Harness, count: usize) {
    for _ in 0..500 {
        if tocsin.store.waiting.load(Ordering::SeqCst) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no commit reached the store");
}

#[tokio::test]
async fn an_action_that_waits_past_the_write_timeout_answers_503_and_never_happens() {
    let tocsin = Harness::start_tuned(POLICY, |config| {
        config.write_timeout = Duration::from_millis(300);
    })
    .await;
    let id = p1(&tocsin, "db-01").await;
    let escalate = format!("/api/v1/incidents/{id}/escalate");

    // The write lock is held: a batch (an alert) is stuck in its commit, so the
    // escalation waits in the queue past the write timeout.
    let held = tocsin.store.hold.lock().await;
    let url = tocsin.url.clone();
    let stuck = tokio::spawn(async move {
        client()
            .post(format!("{url}/api/v1/ingest/generic"))
            .bearer_auth(INGEST_TOKEN)
            .header("content-type", "application/json")
            .body(generic("web-01", "http", "warning"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    commits_held(&tocsin, 1).await;
    let (status, body) = tocsin.post_as(RESPONDER, &escalate, json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was applied")
    );
    drop(held);
    assert_eq!(
        stuck.await.unwrap(),
        202,
        "a request whose batch had started gets its batch's outcome, however late"
    );

    tocsin.tick().await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(
        incident["escalation_level"], "L1",
        "the 503'd escalation never happened"
    );
    assert_eq!(tier_pages(&incident, "L2"), 0);
    let (status, incident) = tocsin.post_as(RESPONDER, &escalate, json!({})).await;
    assert_eq!(status, 200, "{incident}");
    assert_eq!(
        incident["escalation_level"], "L2",
        "the retry skips no tier"
    );
}

/// Alertmanager's webhook with one alert per `(name, status)`.
fn alertmanager(alerts: &[(&str, &str)]) -> Vec<u8> {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(name, status)| {
            json!({
                "status": status,
                "labels": {"alertname": name, "instance": format!("{name}:9100"), "severity": "critical"},
                "annotations": {"summary": format!("{name} is down")},
                "startsAt": "2026-11-29T02:59:00Z",
                "fingerprint": format!("fp-{name}"),
            })
        })
        .collect();
    serde_json::to_vec(
        &json!({"version": "4", "status": "firing", "receiver": "tocsin", "alerts": alerts}),
    )
    .unwrap()
}

#[tokio::test]
async fn a_request_that_fails_at_its_third_alert_applies_none_of_them() {
    let tocsin = Harness::start("").await;
    tocsin
        .ingest_ok("alertmanager", &alertmanager(&[("a", "firing")]))
        .await;
    assert_eq!(tocsin.incidents().await.len(), 1);

    // The third alert resolves the open incident, whose resolve reads who was paged:
    // that read fails after the first two alerts were already decided.
    tocsin
        .store
        .failing_page_reads
        .store(true, Ordering::SeqCst);
    let body = alertmanager(&[("b", "firing"), ("c", "firing"), ("a", "resolved")]);
    let response = tocsin.ingest("alertmanager", &body).await;
    assert_eq!(response.status(), 503);
    let alerts = tocsin.alerts().await;
    assert_eq!(
        alerts.len(),
        1,
        "no alert of the refused request exists: {alerts:?}"
    );
    let incidents = tocsin.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["status"], "triggered");

    // The sender's retry applies all three.
    tocsin
        .store
        .failing_page_reads
        .store(false, Ordering::SeqCst);
    tocsin.ingest_ok("alertmanager", &body).await;
    assert_eq!(tocsin.alerts().await.len(), 3);
    let incidents = tocsin.incidents().await;
    assert_eq!(incidents.len(), 3);
    let first = incidents
        .iter()
        .find(|i| i["summary"] == "a is down")
        .unwrap();
    assert_eq!(first["status"], "resolved");
}

#[tokio::test]
async fn a_repeated_idempotency_key_gets_the_first_answer_and_acts_once() {
    let tocsin = Harness::start(POLICY).await;
    let id = p1(&tocsin, "db-01").await;
    let escalate = format!("/api/v1/incidents/{id}/escalate");
    let (status, first) = post_keyed(&tocsin, &escalate, "retry-1", json!({})).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["escalation_level"], "L2");
    let (status, again) = post_keyed(&tocsin, &escalate, "retry-1", json!({})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["escalation_level"], "L2",
        "the repeat did not escalate again"
    );
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(tier_pages(&incident, "L2"), 1);

    // A new key acts again; the same key on another route is another request.
    let (_, next) = post_keyed(&tocsin, &escalate, "retry-2", json!({})).await;
    assert_eq!(next["escalation_level"], "L3");
    let silence = json!({"matchers": ["resource=\"db-01\""], "ends_at": "2026-11-30T00:00:00Z"});
    let (status, one) = post_keyed(&tocsin, "/api/v1/silences", "retry-1", silence.clone()).await;
    assert_eq!(status, 201, "{one}");
    let (status, two) = post_keyed(&tocsin, "/api/v1/silences", "retry-1", silence).await;
    assert_eq!(status, 201, "{two}");
    assert_eq!(one["id"], two["id"], "one silence, answered twice");
    let listed = tocsin.get("/api/v1/silences").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    let oversized = "k".repeat(256);
    let (status, body) = post_keyed(&tocsin, &escalate, &oversized, json!({})).await;
    assert_eq!(status, 400, "{body}");
}
