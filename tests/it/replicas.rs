//! Several replicas on one PostgreSQL database (`TOCSIN_TEST_PG_URL`; skipped, with a
//! message, without it): the same alert on every replica opens one incident and pages
//! each person once; a replica that dies holding claimed pages is taken over; a lost
//! database answers 503, never a 202 it does not keep, and is recovered from.

use crate::harness::{Harness, INGEST_TOKEN, RESPONDER, generic, pg_schema, timeline_kinds};
use crate::pg_proxy::PgProxy;
use crate::smtp_sink::SmtpSink;
use chrono::TimeDelta;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tocsin::clock::Clock;
use tocsin::store::CLAIM_LEASE;
use tocsin::store::prelude::*;
use tokio::task::JoinSet;

fn pg_url() -> Option<String> {
    let url = std::env::var("TOCSIN_TEST_PG_URL").ok();
    if url.is_none() {
        eprintln!("skipped: set TOCSIN_TEST_PG_URL (postgres://…) to run the replica tests");
    }
    url
}

fn config(smtp: &SmtpSink) -> String {
    format!(
        r#"
[email]
host = "127.0.0.1"
port = {port}
from = "tocsin@example.com"

[[users]]
id = "alice"
email = "alice@example.com"

[[users]]
id = "bob"
email = "bob@example.com"

[[users]]
id = "carol"
email = "carol@example.com"

[[escalation_policies]]
name = "default"
tiers = [
  {{ level = "L1", targets = ["user:alice", "user:bob"] }},
  {{ level = "L2", targets = ["user:carol"], after = "10m" }},
]
"#,
        port = smtp.port
    )
}

/// Posts a generic alert to a replica; returns the status.
async fn post(client: reqwest::Client, url: String, body: Vec<u8>) -> u16 {
    client
        .post(format!("{url}/api/v1/ingest/generic"))
        .bearer_auth(INGEST_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_or(0, |response| response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_given_the_same_alert_300_times_open_one_incident_and_page_once() {
    let Some(url) = pg_url() else { return };
    let smtp = SmtpSink::start().await;
    let a = Harness::start_on(&pg_schema(&url).await, &config(&smtp)).await;
    let b = a.replica().await;
    let c = a.replica().await;
    let body = generic("db-01", "postgres", "critical");
    let mut posts = JoinSet::new();
    for replica in [&a, &b, &c] {
        for _ in 0..100 {
            posts.spawn(post(
                replica.client.clone(),
                replica.url.clone(),
                body.clone(),
            ));
        }
    }
    let statuses = posts.join_all().await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    for _ in 0..2 {
        tokio::join!(a.tick(), b.tick(), c.tick());
    }

    for replica in [&a, &b, &c] {
        let incidents = replica.incidents().await;
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        let alerts = replica.alerts().await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["count"], 300);
    }
    assert_eq!(smtp.to("alice@example.com").len(), 1);
    assert_eq!(smtp.to("bob@example.com").len(), 1);
    assert_eq!(smtp.to("carol@example.com").len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_holding_the_l1_pages_is_taken_over_and_l2_paged_once() {
    let Some(url) = pg_url() else { return };
    let smtp = SmtpSink::start().await;
    let a = Harness::start_on(&pg_schema(&url).await, &config(&smtp)).await;
    let b = a.replica().await;
    let c = a.replica().await;
    let id = a
        .ingest_ok("generic", &generic("db-02", "postgres", "critical"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    // A's writer wrote the two L1 pages claimed for its own outbox, and A dies
    // before sending them.
    let claimable = b
        .store
        .claim_notifications(a.clock.now(), CLAIM_LEASE, 64, "probe")
        .await
        .unwrap();
    assert!(claimable.is_empty(), "{claimable:?}");
    let clock = a.clock.clone();
    a.kill();

    tokio::join!(b.tick(), c.tick());
    assert_eq!(
        smtp.to("alice@example.com").len(),
        0,
        "taken while A's claim held"
    );
    clock.advance(TimeDelta::seconds(5));
    tokio::join!(b.tick(), c.tick());
    assert_eq!(smtp.to("alice@example.com").len(), 1);
    assert_eq!(smtp.to("bob@example.com").len(), 1);

    clock.advance(TimeDelta::minutes(10));
    tokio::join!(b.tick(), c.tick());
    tokio::join!(b.tick(), c.tick());
    assert_eq!(smtp.to("carol@example.com").len(), 1);
    assert_eq!(smtp.to("alice@example.com").len(), 1);
    let incident = c.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["escalation_level"], "L2");
    let l2: Vec<_> = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "escalated" && e["message"].as_str().unwrap().starts_with("L2"))
        .collect();
    assert_eq!(l2.len(), 1, "{incident}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_under_load_answers_503_keeps_every_202_and_recovers() {
    let Some(url) = pg_url() else { return };
    let parsed = reqwest::Url::parse(&url).unwrap();
    let upstream = format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    );
    let proxy = PgProxy::start(upstream.clone()).await;
    let direct = pg_schema(&url).await;
    let through_proxy = direct.replacen(&upstream, &proxy.addr, 1);
    let tocsin = Harness::start_on(&through_proxy, "").await;

    let stop = Arc::new(AtomicBool::new(false));
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let refusals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut load = JoinSet::new();
    for worker in 0..4 {
        let (client, url, stop, taken, refusals) = (
            tocsin.client.clone(),
            tocsin.url.clone(),
            stop.clone(),
            taken.clone(),
            refusals.clone(),
        );
        load.spawn(async move {
            let mut answers = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let resource = format!("host-{worker}-{n}");
                let status = post(
                    client.clone(),
                    url.clone(),
                    generic(&resource, "disk", "warning"),
                )
                .await;
                match status {
                    202 => taken.fetch_add(1, Ordering::SeqCst),
                    503 => refusals.fetch_add(1, Ordering::SeqCst),
                    _ => 0,
                };
                answers.push((resource, status));
                n += 1;
            }
            answers
        });
    }
    // Cut the database once the load is well under way.
    let deadline = Instant::now() + Duration::from_secs(15);
    while taken.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.cut();
    let ready = |tocsin: &Harness| {
        let (client, url) = (tocsin.client.clone(), tocsin.url.clone());
        async move {
            client
                .get(format!("{url}/readyz"))
                .send()
                .await
                .map_or(0, |r| r.status().as_u16())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while ready(&tocsin).await != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz never said the store is gone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Keep it away until the load has met it (a busy machine may take a while to get
    // a request through to the writer), so the refusals are tested, not their timing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while refusals.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "nothing was refused while the database was away"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready(&tocsin).await != 200 {
        assert!(Instant::now() < deadline, "/readyz never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = post(
        tocsin.client.clone(),
        tocsin.url.clone(),
        generic("after", "disk", "warning"),
    )
    .await;
    assert_eq!(recovered, 202, "ingest did not recover by itself");
    stop.store(true, Ordering::SeqCst);
    let answers: Vec<(String, u16)> = load.join_all().await.into_iter().flatten().collect();

    let accepted: Vec<&String> = answers
        .iter()
        .filter(|(_, s)| *s == 202)
        .map(|(r, _)| r)
        .collect();
    let refused = answers.iter().filter(|(_, s)| *s == 503).count();
    let other: Vec<&(String, u16)> = answers
        .iter()
        .filter(|(_, s)| *s != 202 && *s != 503)
        .collect();
    assert!(
        other.is_empty(),
        "answers other than 202 and 503: {other:?}"
    );
    assert!(
        refused > 0,
        "nothing was refused while the database was away"
    );
    assert!(
        accepted.len() >= 20,
        "only {} alerts were accepted",
        accepted.len()
    );
    let pool = sqlx::PgPool::connect(&direct).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT resource FROM alerts")
        .fetch_all(&pool)
        .await
        .unwrap();
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    let lost: Vec<&&String> = accepted.iter().filter(|r| !stored.contains(**r)).collect();
    assert!(lost.is_empty(), "answered 202 but not stored: {lost:?}");
    eprintln!(
        "database outage: {} alerts answered 202 (all stored), {refused} answered 503",
        accepted.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_replica_died_fails_on_another_and_escalates_once() {
    let Some(url) = pg_url() else { return };
    let smtp = SmtpSink::start().await;
    let runbooks = tempfile::tempdir().unwrap();
    std::fs::write(
        runbooks.path().join("slow-fix.toml"),
        "command = [\"/bin/sh\", \"-c\", \"sleep 3\"]\nmatch = ['check=\"slowfix\"']\n",
    )
    .unwrap();
    let extra = format!(
        "{}\n[runbooks]\ndir = \"{}\"\nenabled = [\"slow-fix\"]\n",
        config(&smtp),
        runbooks.path().display()
    );
    let a = Harness::start_on(&pg_schema(&url).await, &extra).await;
    let b = a.replica().await;
    let id = a
        .ingest_ok("generic", &generic("app-1", "slowfix", "critical"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    // A started the run with the incident, then dies while it runs.
    let clock = a.clock.clone();
    a.kill();
    b.tick().await;
    let runs = b.get("/api/v1/runbooks").await;
    assert_eq!(
        runs["items"][0]["last_runs"][0]["status"], "running",
        "{runs}"
    );

    clock.advance(TimeDelta::seconds(6));
    b.tick().await;
    b.tick().await;
    let runs = b.get("/api/v1/runbooks").await;
    let run = &runs["items"][0]["last_runs"][0];
    assert_eq!(run["status"], "failed", "{runs}");
    assert!(
        run["output"].as_str().unwrap().contains("interrupted"),
        "{run}"
    );
    let incident = b.get(&format!("/api/v1/incidents/{id}")).await;
    let kinds = timeline_kinds(&incident);
    assert_eq!(
        kinds.iter().filter(|k| **k == "runbook_failure").count(),
        1,
        "{kinds:?}"
    );
    // on_failure = escalate: L2 is paged now, once.
    assert_eq!(smtp.to("carol@example.com").len(), 1, "{kinds:?}");
    b.tick().await;
    assert_eq!(smtp.to("carol@example.com").len(), 1);
}

async fn opened(tocsin: &Harness, resource: &str) -> i64 {
    let body = generic(resource, "broken", "critical");
    tocsin.ingest_ok("generic", &body).await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap()
}

fn refusal(incident: serde_json::Value) -> Option<String> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "runbook_refused")
        .map(|e| e["message"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_cooldown_and_hourly_cap_hold_across_replicas_together() {
    let Some(url) = pg_url() else { return };
    let runbooks = tempfile::tempdir().unwrap();
    std::fs::write(
        runbooks.path().join("fix.toml"),
        "command = [\"/bin/sh\", \"-c\", \"echo fixed\"]\nmatch = ['check=\"broken\"']\n\
         cooldown = \"10m\"\nmax_runs_per_hour = 2\nconcurrency = 5\n\
         [params.host]\nfrom = \"{{resource}}\"\npattern = \"[a-z0-9-]+\"\n",
    )
    .unwrap();
    let extra = format!(
        "[runbooks]\ndir = \"{}\"\nenabled = [\"fix\"]\n",
        runbooks.path().display()
    );
    let a = Harness::start_on(&pg_schema(&url).await, &extra).await;
    let b = a.replica().await;
    let first = opened(&a, "web-1").await;
    assert_eq!(
        refusal(a.get(&format!("/api/v1/incidents/{first}")).await),
        None
    );
    // The same target on the other replica: in cooldown there too.
    let resolved = serde_json::json!({ "resource": "web-1", "check": "broken", "status": "resolved", "summary": "ok" });
    b.ingest_ok("generic", resolved.to_string().as_bytes())
        .await;
    let again = opened(&b, "web-1").await;
    let why = refusal(b.get(&format!("/api/v1/incidents/{again}")).await);
    assert!(
        why.as_ref().is_some_and(|w| w.contains("cooldown")),
        "{why:?}"
    );
    // One cap for both: the second run on b, the third refused on a.
    let second = opened(&b, "web-2").await;
    assert_eq!(
        refusal(b.get(&format!("/api/v1/incidents/{second}")).await),
        None
    );
    let third = opened(&a, "web-3").await;
    let why = refusal(a.get(&format!("/api/v1/incidents/{third}")).await);
    assert!(
        why.as_ref()
            .is_some_and(|w| w.contains("max_runs_per_hour")),
        "{why:?}"
    );
}

const DB_01_RESOLVED: &[u8] =
    br#"{"resource":"db-01","check":"postgres","status":"resolved","summary":"ok"}"#;

/// Two replicas on a fresh schema, flapping after 3 changes in 10 minutes.
async fn flapping_replicas(url: &str) -> (SmtpSink, Harness, Harness) {
    let smtp = SmtpSink::start().await;
    let extra = format!(
        "[flapping]\nchanges = 3\nwindow = \"10m\"\n{}",
        config(&smtp)
    );
    let a = Harness::start_on(&pg_schema(url).await, &extra).await;
    let b = a.replica().await;
    (smtp, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_is_caught_and_settled_across_replicas() {
    let Some(url) = pg_url() else { return };
    let (smtp, a, b) = flapping_replicas(&url).await;
    let firing = generic("db-01", "postgres", "critical");
    let resolved = DB_01_RESOLVED.to_vec();
    for toggle in 0..10 {
        let body = if toggle % 2 == 0 { &firing } else { &resolved };
        a.ingest_ok("generic", body).await;
        // B writes in between, so A reloads its view before every one of its turns.
        b.ingest_ok(
            "generic",
            &generic(&format!("web-{toggle}"), "disk", "warning"),
        )
        .await;
        a.clock.advance(TimeDelta::seconds(6));
        tokio::join!(a.tick(), b.tick());
    }
    a.ingest_ok("generic", &firing).await;
    let pages = |smtp: &SmtpSink| {
        smtp.to("alice@example.com")
            .into_iter()
            .filter(|m| !m.subject().starts_with("[RESOLVED]"))
            .count()
    };
    assert_eq!(pages(&smtp), 1, "paged once for ten toggles");
    let db_incidents = |incidents: Vec<serde_json::Value>| {
        incidents
            .into_iter()
            .filter(|i| i["resource"] == "db-01")
            .count()
    };
    assert_eq!(db_incidents(b.incidents().await), 1);

    // A dies; B, which never saw the toggles itself, settles the alert once it has
    // been quiet for a window: still firing, so it opens an incident and pages.
    let clock = a.clock.clone();
    a.kill();
    clock.advance(TimeDelta::minutes(11));
    b.tick().await;
    b.tick().await;
    assert_eq!(db_incidents(b.incidents().await), 2);
    assert_eq!(pages(&smtp), 2);
}

/// Behind round-robin every replica sees a share of an alert's changes; the history
/// is the database's, so the third change is caught whichever replica gets it (each
/// replica used to count its own share, and a flapping check paged on every one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_is_counted_over_every_replicas_changes() {
    let Some(url) = pg_url() else { return };
    let (smtp, a, b) = flapping_replicas(&url).await;
    let firing = generic("db-01", "postgres", "critical");
    let resolved = DB_01_RESOLVED.to_vec();
    for toggle in 0..10 {
        let (replica, body) = if toggle % 2 == 0 {
            (&a, &firing)
        } else {
            (&b, &resolved)
        };
        replica.ingest_ok("generic", body).await;
        if toggle == 0 {
            // Sends the first page; the changes after it meet no timer pass, so each
            // batch reads the history it needs itself.
            a.tick().await;
        }
        a.clock.advance(TimeDelta::seconds(6));
    }
    tokio::join!(a.tick(), b.tick());
    let pages = smtp
        .to("alice@example.com")
        .into_iter()
        .filter(|m| !m.subject().starts_with("[RESOLVED]"))
        .count();
    assert_eq!(pages, 1, "paged once for ten toggles over two replicas");
    let incidents = b.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["flapping"], true, "{incidents:?}");
}

/// A silence made on one replica holds for the alerts the next request brings to
/// another, not only after that replica's next timer pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_made_on_one_replica_holds_on_another_at_once() {
    let Some(url) = pg_url() else { return };
    let smtp = SmtpSink::start().await;
    let a = Harness::start_on(&pg_schema(&url).await, &config(&smtp)).await;
    let b = a.replica().await;
    let (status, created) = b
        .post_as(
            RESPONDER,
            "/api/v1/silences",
            serde_json::json!({ "matchers": ["resource=\"db-01\""], "ends_at": "2026-11-29T04:00:00Z", "comment": "patching" }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let reply = a
        .ingest_ok("generic", &generic("db-01", "postgres", "critical"))
        .await;
    assert_eq!(
        reply["alerts"][0]["incident_id"],
        serde_json::Value::Null,
        "silenced on B, so no incident on A: {reply}"
    );
    tokio::join!(a.tick(), b.tick());
    assert!(smtp.to("alice@example.com").is_empty(), "nobody is paged");
}

/// An alert that starts flapping marks the incident it belonged to, which its replica
/// remembers: resolved meanwhile by a human on another replica, it stays resolved (the
/// mark used to write the replica's old copy over it, reopening it unpaged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_mark_never_reopens_an_incident_another_replica_resolved() {
    let Some(url) = pg_url() else { return };
    let smtp = SmtpSink::start().await;
    let extra = format!(
        "[flapping]\nchanges = 3\nwindow = \"10m\"\n\n[[rules]]\nname = \"per host\"\nmatch = ['severity=\"critical\"']\ngroup_by = [\"resource\"]\n{}",
        config(&smtp)
    );
    let a = Harness::start_on(&pg_schema(&url).await, &extra).await;
    let b = a.replica().await;
    let id = a
        .ingest_ok("generic", &generic("db-01", "postgres", "critical"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    // A second alert keeps the incident open while the first one toggles.
    a.ingest_ok("generic", &generic("db-01", "disk", "critical"))
        .await;
    let resolved =
        br#"{"resource":"db-01","check":"postgres","status":"resolved","summary":"ok"}"#.to_vec();
    a.ingest_ok("generic", &resolved).await;
    let (status, reply) = b
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/resolve"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    // The third change on A: the alert starts flapping and A marks the incident.
    a.ingest_ok("generic", &generic("db-01", "postgres", "critical"))
        .await;
    let incident = b.get(&format!("/api/v1/incidents/{id}")).await;
    assert!(
        timeline_kinds(&incident).contains(&"flapping".to_string()),
        "the alert flaps on its third change: {incident}"
    );
    assert_eq!(incident["status"], "resolved", "{incident}");
}

/// The same `Idempotency-Key` sent to two replicas at once acts once: both batches
/// wait on the incident's lock, and the second reads the first's answer before it
/// decides, so both get the first answer and nobody is escalated twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_on_two_replicas_at_once_escalates_once() {
    let Some(url) = pg_url() else { return };
    let smtp = SmtpSink::start().await;
    let a = Harness::start_on(&pg_schema(&url).await, &config(&smtp)).await;
    let b = a.replica().await;
    let id = opened(&a, "db-01").await;
    let escalate = |replica: &Harness| {
        let request = replica
            .client
            .post(format!("{}/api/v1/incidents/{id}/escalate", replica.url))
            .bearer_auth(RESPONDER)
            .header("idempotency-key", "retry-1")
            .json(&serde_json::json!({}));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let ((status_a, on_a), (status_b, on_b)) = tokio::join!(escalate(&a), escalate(&b));
    assert_eq!((status_a, status_b), (200, 200), "{on_a} {on_b}");
    assert_eq!(on_a["escalation_level"], "L2");
    assert_eq!(
        on_b["escalation_level"], "L2",
        "the first answer, not a second act"
    );
    let incident = a.get(&format!("/api/v1/incidents/{id}")).await;
    let asked = timeline_kinds(&incident)
        .iter()
        .filter(|kind| *kind == "escalation_requested")
        .count();
    assert_eq!(asked, 1, "{incident}");
}

/// Inhibition is shared and keyed: a host down on one replica inhibits its services'
/// alerts arriving on another, without any batch taking the whole write turn to read
/// every firing alert; once the host is back, the next repeat on the other opens
/// its incident. A replica started meanwhile knows the host's hold from the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_down_on_one_replica_inhibits_its_services_on_another() {
    let Some(url) = pg_url() else { return };
    let smtp = SmtpSink::start().await;
    let extra = format!(
        "{}[[inhibit]]\nsource_match = ['check=\"host\"']\ntarget_match = ['check!=\"host\"']\nequal = [\"resource\"]\n",
        config(&smtp)
    );
    let a = Harness::start_on(&pg_schema(&url).await, &extra).await;
    let b = a.replica().await;
    let host = a
        .ingest_ok("generic", &generic("web-01", "host", "critical"))
        .await;
    assert!(host["alerts"][0]["incident_id"].is_i64(), "{host}");
    let service = b
        .ingest_ok("generic", &generic("web-01", "http", "critical"))
        .await;
    assert_eq!(
        service["alerts"][0]["incident_id"],
        serde_json::Value::Null,
        "inhibited by the host alert A holds: {service}"
    );
    let elsewhere = b
        .ingest_ok("generic", &generic("web-02", "http", "critical"))
        .await;
    assert!(
        elsewhere["alerts"][0]["incident_id"].is_i64(),
        "another host's"
    );
    let c = a.replica().await;
    let late = c
        .ingest_ok("generic", &generic("web-01", "disk", "critical"))
        .await;
    assert_eq!(
        late["alerts"][0]["incident_id"],
        serde_json::Value::Null,
        "a replica started since reads the hold too: {late}"
    );

    let back = serde_json::json!({ "resource": "web-01", "check": "host", "status": "resolved", "summary": "up" });
    a.ingest_ok("generic", back.to_string().as_bytes()).await;
    let after = b
        .ingest_ok("generic", &generic("web-01", "http", "critical"))
        .await;
    assert!(
        after["alerts"][0]["incident_id"].is_i64(),
        "the host is back: its service pages now: {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_timer_pass_a_period_serves_every_replica_and_a_due_step_pages_once() {
    let Some(url) = pg_url() else { return };
    let smtp = SmtpSink::start().await;
    let a = Harness::start_on(&pg_schema(&url).await, &config(&smtp)).await;
    let b = a.replica().await;
    a.ingest_ok("generic", &generic("db-03", "postgres", "critical"))
        .await;
    let clock = a.clock.clone();
    // L2 is due 10 minutes after the incident opened. Both views are older than a
    // replica keeps one, so both pass; A's pass is the last.
    clock.advance(TimeDelta::minutes(10) - TimeDelta::milliseconds(100));
    b.tick().await;
    clock.advance(TimeDelta::milliseconds(50));
    a.tick().await;
    assert_eq!(smtp.to("carol@example.com").len(), 0, "not due yet");

    // Due now, but A passed 200 ms ago: B leaves the timers to A's next tick.
    clock.advance(TimeDelta::milliseconds(200));
    b.tick().await;
    assert_eq!(
        smtp.to("carol@example.com").len(),
        0,
        "B skipped its pass within A's period"
    );
    // A period after A's pass without another (A died, or ticks later), B passes.
    clock.advance(TimeDelta::milliseconds(100));
    b.tick().await;
    assert_eq!(smtp.to("carol@example.com").len(), 1);
    a.tick().await;
    clock.advance(TimeDelta::seconds(1));
    tokio::join!(a.tick(), b.tick());
    assert_eq!(smtp.to("carol@example.com").len(), 1, "paged once");
    assert_eq!(smtp.to("alice@example.com").len(), 1);
}
