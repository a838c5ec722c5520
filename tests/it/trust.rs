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
    // 300 ms is short for a loaded machine: like a sender, retry what was refused 503
    // ("nothing was applied, retry shortly").
    let mut response = tocsin
        .ingest("generic", &generic("db-01", "http", "critical"))
        .await;
    for _ in 0..20 {
        if response.status() != 503 {
            break;
        }
        response = tocsin
            .ingest("generic", &generic("db-01", "http", "critical"))
            .await;
    }
    assert_eq!(response.status(), 202);
    let reply: Value = response.json().await.unwrap();
    let id = reply["alerts"][0]["incident_id"].as_i64().unwrap();
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
    // The client's retry; a 503 under load is never applied, so it retries again.
    let (mut status, mut incident) = tocsin.post_as(RESPONDER, &escalate, json!({})).await;
    for _ in 0..20 {
        if status != 503 {
            break;
        }
        (status, incident) = tocsin.post_as(RESPONDER, &escalate, json!({})).await;
    }
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
async fn a_request_whose_batch_cannot_read_who_was_paged_applies_none_of_its_alerts() {
    let tocsin = Harness::start("").await;
    tocsin
        .ingest_ok("alertmanager", &alertmanager(&[("a", "firing")]))
        .await;
    assert_eq!(tocsin.incidents().await.len(), 1);

    // The third alert resolves the open incident; who was paged is read once the
    // batch's decisions are made, and that read fails after all three were decided.
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
    // The same incident spelt another way (a proxy's rewrite) is the same request.
    for spelt in [format!("0{id}"), format!("+{id}"), format!("%3{id}")] {
        let path = format!("/api/v1/incidents/{spelt}/escalate");
        let (status, again) = post_keyed(&tocsin, &path, "retry-1", json!({})).await;
        assert_eq!(status, 200, "{spelt}: {again}");
        assert_eq!(again["escalation_level"], "L2", "{spelt} escalated again");
    }
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(tier_pages(&incident, "L2"), 1);

    // A new key acts again; the same key on another route is another request.
    let (_, next) = post_keyed(&tocsin, &escalate, "retry-2", json!({})).await;
    assert_eq!(next["escalation_level"], "L3");
    let silence = json!({"matchers": ["resource=\"db-01\""], "ends_at": "2026-11-30T00:00:00Z"});
    let (status, one) = post_keyed(&tocsin, "/api/v1/silences", "retry-1", silence.clone()).await;
    assert_eq!(status, 201, "{one}");
    let silence_again = silence.clone();
    let (status, two) = post_keyed(&tocsin, "/api/v1/silences", "retry-1", silence).await;
    assert_eq!(status, 201, "{two}");
    assert_eq!(one["id"], two["id"], "one silence, answered twice");
    let listed = tocsin.get("/api/v1/silences").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Retried after the silence ended: still the first answer, not a 404.
    let expired = tocsin
        .client
        .delete(format!("{}/api/v1/silences/{}", tocsin.url, one["id"]))
        .bearer_auth(RESPONDER)
        .send()
        .await
        .unwrap();
    assert!(expired.status().is_success(), "{}", expired.status());
    let (status, three) = post_keyed(&tocsin, "/api/v1/silences", "retry-1", silence_again).await;
    assert_eq!(status, 201, "{three}");
    assert_eq!(three["id"], one["id"]);

    // The same key with another body is a client's mistake, not a retry: told so,
    // not answered as the first (which would drop this silence without a word).
    let other = json!({"matchers": ["resource=\"db-02\""], "ends_at": "2026-11-30T00:00:00Z"});
    let (status, reused) = post_keyed(&tocsin, "/api/v1/silences", "retry-1", other).await;
    assert_eq!(status, 422, "{reused}");
    assert!(
        reused["detail"]
            .as_str()
            .unwrap()
            .contains("key of its own"),
        "{reused}"
    );
    let notes = format!("/api/v1/incidents/{id}/notes");
    let (status, _) = post_keyed(&tocsin, &notes, "note-1", json!({"text": "first"})).await;
    assert_eq!(status, 200);
    let (status, _) = post_keyed(&tocsin, &notes, "note-1", json!({"text": "second"})).await;
    assert_eq!(status, 422);
    let listed = tocsin.get("/api/v1/silences").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // A keyed body is read within the same limit as any other.
    let huge = json!({"text": "x".repeat(2 * 1024 * 1024)});
    let (status, body) = post_keyed(&tocsin, &notes, "note-2", huge).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("max_body_bytes"),
        "{body}"
    );

    let oversized = "k".repeat(256);
    let (status, body) = post_keyed(&tocsin, &escalate, &oversized, json!({})).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_panic_in_the_writer_makes_readyz_answer_503() {
    let tocsin = Harness::start("").await;
    let ready = tocsin.client.get(format!("{}/readyz", tocsin.url));
    assert_eq!(ready.send().await.unwrap().status(), 200);
    tocsin.store.panicking.store(true, Ordering::SeqCst);
    let response = tocsin
        .ingest("generic", &generic("web-01", "http", "critical"))
        .await;
    assert_eq!(response.status(), 503, "the writer died with the request");
    let response = tocsin
        .client
        .get(format!("{}/readyz", tocsin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("writer task panicked"),
        "{body}"
    );
}

#[tokio::test]
async fn a_private_dashboard_needs_a_token_and_keeps_a_session_not_the_token_in_its_cookie() {
    let tocsin = Harness::start("[dashboard]\npublic = false\n").await;
    let client = reqwest::Client::new();
    for path in ["/", "/dashboard/panel", "/api/v1/stream"] {
        let response = client
            .get(format!("{}{path}", tocsin.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("/ui/login"));
    }
    let wrong = client
        .get(format!("{}/?token=guess", tocsin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let page = client
        .get(format!("{}/?token={VIEWER}", tocsin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(VIEWER),
        "the cookie names a stored session, never the token: {cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let panel = client
        .get(format!("{}/dashboard/panel", tocsin.url))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(
        panel.status(),
        200,
        "the page's own requests carry the cookie"
    );
    let bearer = client
        .get(format!("{}/", tocsin.url))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);

    // A link carrying someone's token shows the dashboard, and signs nobody into
    // the console as that token (a page opened from it would act as them).
    let console = client
        .get(format!("{}/ui/incidents", tocsin.url))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert!(
        console.url().path().starts_with("/ui/login"),
        "the dashboard's session is not a console session: {}",
        console.url()
    );
    // The page's panel and stream take the token too, but store no session each.
    let panel = client
        .get(format!("{}/dashboard/panel?token={VIEWER}", tocsin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(panel.status(), 200);
    assert!(panel.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn oversized_identities_names_and_labels_are_refused_naming_the_field() {
    let tocsin = Harness::start("").await;
    let refused = |body: Value| {
        let tocsin = &tocsin;
        async move {
            let response = tocsin.ingest("generic", body.to_string().as_bytes()).await;
            assert_eq!(response.status(), 400, "{body}");
            let reply: Value = response.json().await.unwrap();
            reply["detail"].as_str().unwrap().to_string()
        }
    };
    let base = json!({"resource": "r", "check": "c", "severity": "critical", "summary": "s"});
    let mut long_key = base.clone();
    long_key["dedup_key"] = json!("k".repeat(256));
    assert!(refused(long_key).await.contains("dedup_key"));
    let mut many = base.clone();
    many["labels"] = (0..65)
        .map(|i| (format!("l{i}"), json!("v")))
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert!(refused(many).await.contains("labels"));
    let mut long_name = base.clone();
    long_name["labels"] = json!({ "n".repeat(129): "v" });
    assert!(refused(long_name).await.contains("labels.nnn"));
    let mut long_value = base.clone();
    long_value["labels"] = json!({ "team": "v".repeat(1025) });
    assert!(refused(long_value).await.contains("labels.team"));
    for field in ["resource", "check"] {
        let mut long = base.clone();
        long[field] = json!("h".repeat(1025));
        assert!(refused(long).await.starts_with(field));
    }
    assert!(tocsin.alerts().await.is_empty(), "nothing refused is kept");

    let mut long_summary = base.clone();
    long_summary["summary"] = json!("é".repeat(2000));
    long_summary["links"] = json!([
        "javascript:alert(1)",
        "https://grafana.example.net/d/x",
        "JaVaScRiPt:x",
        format!("https://example.net/{}", "a".repeat(2048))
    ]);
    tocsin
        .ingest_ok("generic", long_summary.to_string().as_bytes())
        .await;
    let alert = tocsin.alerts().await[0].clone();
    let summary = alert["summary"].as_str().unwrap();
    assert_eq!(summary.chars().count(), 1024);
    assert!(summary.ends_with('…'));
    assert_eq!(alert["links"], json!(["https://grafana.example.net/d/x"]));
}

#[tokio::test]
async fn only_authenticated_requests_count_toward_a_rate_limit() {
    let tocsin = Harness::start(&format!(
        "[sources.generic]\ntoken = \"{INGEST_TOKEN}\"\nrate_limit = \"1/s\"\n"
    ))
    .await;
    for _ in 0..20 {
        let response = tocsin
            .client
            .post(format!("{}/api/v1/ingest/generic", tocsin.url))
            .bearer_auth("not-the-token")
            .header("content-type", "application/json")
            .body(generic("r", "c", "critical"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let response = tocsin
        .ingest("generic", &generic("r", "c", "critical"))
        .await;
    assert_eq!(
        response.status(),
        202,
        "strangers did not use up the sender's rate"
    );
}

fn signed(secret: &str, stamp: i64, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{stamp}:").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn a_signed_webhook_is_accepted_once_and_its_replays_are_refused() {
    let tocsin = Harness::start(&format!(
        "[sources.generic]\ntoken = \"{INGEST_TOKEN}\"\nhmac_secret = \"generic-secret\"\n"
    ))
    .await;
    let stamp = start_time().timestamp();
    let send = |body: Vec<u8>, stamp: i64| {
        let tocsin = &tocsin;
        async move {
            tocsin
                .client
                .post(format!("{}/api/v1/ingest/generic", tocsin.url))
                .bearer_auth(INGEST_TOKEN)
                .header("content-type", "application/json")
                .header("x-tocsin-timestamp", stamp.to_string())
                .header(
                    "x-tocsin-signature",
                    format!("sha256={}", signed("generic-secret", stamp, &body)),
                )
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let firing = generic("db-01", "replication", "critical");
    let resolved = serde_json::to_vec(&json!({"resource": "db-01", "check": "replication", "severity": "critical", "summary": "ok", "status": "resolved"})).unwrap();
    assert_eq!(send(firing.clone(), stamp).await.status(), 202);
    assert_eq!(send(resolved.clone(), stamp).await.status(), 202);
    // Replaying the firing/resolved pair would make the alert flap and stop paging.
    for _ in 0..10 {
        for body in [&firing, &resolved] {
            let response = send(body.clone(), stamp).await;
            assert_eq!(response.status(), 401);
            let reply: Value = response.json().await.unwrap();
            assert_eq!(reply["error"], "replayed signature");
        }
    }
    let alerts = tocsin.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["count"], 1);
    assert_eq!(alerts[0]["status"], "resolved");
    // The sender's own next request, signed anew, goes through.
    assert_eq!(send(firing, stamp + 1).await.status(), 202);
}

#[tokio::test]
async fn nagios_downtimes_reuse_their_silence_and_ended_silences_are_deleted_after_retention() {
    let tocsin = Harness::start("[sources.nagios]\ntoken = \"ingest-secret-token\"\n").await;
    let downtime = fixture("nagios-service-downtimestart.form");
    for _ in 0..5 {
        let response = tocsin
            .client
            .post(format!("{}/api/v1/ingest/nagios", tocsin.url))
            .bearer_auth(INGEST_TOKEN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(downtime.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        tocsin.clock.advance(chrono::TimeDelta::hours(1));
    }
    let listed = tocsin.get("/api/v1/silences").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    // A hand-made silence, expired, goes once it is older than the retention (7d).
    let silence = json!({"matchers": ["resource=\"web-01\""], "ends_at": "2026-12-30T00:00:00Z"});
    let (status, made) = tocsin.post_as(RESPONDER, "/api/v1/silences", silence).await;
    assert_eq!(status, 201, "{made}");
    let page = tocsin.get("/api/v1/silences?limit=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next"].is_string(), "a paged list: {page}");
    let nagios_id = listed["items"][0]["id"].as_i64().unwrap();
    let response = tocsin
        .client
        .delete(format!("{}/api/v1/silences/{nagios_id}", tocsin.url))
        .bearer_auth(RESPONDER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tocsin.clock.advance(chrono::TimeDelta::days(6));
    tocsin.tick().await;
    assert_eq!(
        tocsin.get("/api/v1/silences").await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    tocsin.clock.advance(chrono::TimeDelta::days(2));
    tocsin.tick().await;
    let left = tocsin.get("/api/v1/silences").await;
    let ids: Vec<i64> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![made["id"].as_i64().unwrap()], "{left}");
}

#[tokio::test]
async fn a_sender_acknowledges_only_incidents_made_of_its_own_alerts() {
    let tocsin = Harness::start(
        "[[rules]]\nname = \"per host\"\nmatch = ['severity=\"critical\"']\ngroup_by = [\"resource\"]\n",
    )
    .await;
    let pagerduty = |path: &str| {
        let body = fixture(path);
        let tocsin = &tocsin;
        async move {
            let response = tocsin
                .client
                .post(format!("{}/v2/enqueue", tocsin.url))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
        }
    };
    pagerduty("pagerduty-trigger.json").await;
    // Another sender's alert on the same host joins the incident.
    let joined = tocsin
        .ingest_ok(
            "generic",
            &generic("db-01.prod.example.net", "disk", "critical"),
        )
        .await;
    let id = joined["alerts"][0]["incident_id"].as_i64().unwrap();
    assert_eq!(tocsin.incidents().await.len(), 1);

    pagerduty("pagerduty-acknowledge.json").await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(
        incident["status"], "triggered",
        "the generic alert still pages"
    );
    assert!(timeline_kinds(&incident).contains(&"alert_acknowledged".to_string()));

    // An incident made of PagerDuty's alerts alone is PagerDuty's to acknowledge.
    let mut tocsin = tocsin.restart().await;
    let (status, _) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    tocsin = tocsin.restart().await;
    let trigger = fixture("pagerduty-trigger.json");
    let ack = fixture("pagerduty-acknowledge.json");
    for body in [trigger, ack] {
        let response = tocsin
            .client
            .post(format!("{}/v2/enqueue", tocsin.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    let own = tocsin
        .incidents()
        .await
        .into_iter()
        .find(|incident| incident["id"] != id)
        .unwrap();
    assert_eq!(own["status"], "acknowledged");
}

#[tokio::test]
async fn a_nul_character_is_refused_at_the_door_and_fails_nobody_elses_batch() {
    let tocsin = Harness::start("[sources.nagios]\ntoken = \"ingest-secret-token\"\n").await;
    let json = br#"{"resource":"r","check":"c","severity":"critical","summary":"x\u0000y"}"#;
    let response = tocsin.ingest("generic", json).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("NUL"), "{body}");
    let form = "NOTIFICATIONTYPE=PROBLEM&HOSTNAME=db-01%00&SERVICEDESC=pg&SERVICESTATE=CRITICAL&SERVICEOUTPUT=x";
    let response = tocsin
        .client
        .post(format!("{}/api/v1/ingest/nagios", tocsin.url))
        .bearer_auth(INGEST_TOKEN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let id = p1(&tocsin, "db-01").await;
    let (status, _) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/notes"),
            json!({"text": "a\u{0}b"}),
        )
        .await;
    assert_eq!(
        status, 400,
        "a note too: on PostgreSQL it would fail the batch"
    );
    assert_eq!(tocsin.alerts().await.len(), 1);
}

#[tokio::test]
async fn unsigned_requests_do_not_use_up_a_signed_senders_rate() {
    // A source proven by its signature alone: no token.
    let tocsin = Harness::start(
        "[sources.generic]\nhmac_secret = \"generic-secret\"\nrate_limit = \"1/s\"\n",
    )
    .await;
    let body = generic("db-01", "replication", "critical");
    for _ in 0..20 {
        let response = tocsin
            .client
            .post(format!("{}/api/v1/ingest/generic", tocsin.url))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let stamp = start_time().timestamp();
    let response = tocsin
        .client
        .post(format!("{}/api/v1/ingest/generic", tocsin.url))
        .header("content-type", "application/json")
        .header("x-tocsin-timestamp", stamp.to_string())
        .header("x-tocsin-signature", signed("generic-secret", stamp, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

/// Every answer tells browsers not to frame it, sniff it or pass its address on
/// (an ack link's address holds its token); the dashboard is not kept in caches.
#[tokio::test]
async fn pages_cannot_be_framed_sniffed_or_referred_and_the_dashboard_is_not_cached() {
    let tocsin = Harness::start("").await;
    for path in [
        "/",
        "/ui/login",
        "/ack/some-token",
        "/healthz",
        "/api/v1/incidents",
    ] {
        let response = tocsin
            .client
            .get(format!("{}{path}", tocsin.url))
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        for (name, value) in [
            ("x-frame-options", "DENY"),
            ("content-security-policy", "frame-ancestors 'none'"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
        ] {
            assert_eq!(
                headers.get(name).and_then(|v| v.to_str().ok()),
                Some(value),
                "{path} {name}"
            );
        }
    }
    let dashboard = tocsin
        .client
        .get(format!("{}/dashboard/panel", tocsin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.headers()["cache-control"], "no-store");
}
