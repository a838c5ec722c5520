//! Every sender over HTTP with its real payloads, silences, flapping and heartbeats.

use crate::harness::{ADMIN, Harness, INGEST_TOKEN, RESPONDER, VIEWER, fixture, generic};
use chrono::TimeDelta;
use serde_json::{Value, json};
use tocsin::clock::Clock;

const SOURCES: &str = "[sources.nagios]\ntoken = \"ingest-secret-token\"\n[sources.prtg]\ntoken = \"ingest-secret-token\"\n[sources.datadog]\ntoken = \"ingest-secret-token\"\n[sources.grafana]\ntoken = \"ingest-secret-token\"\n";

async fn post(tocsin: &Harness, source: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = tocsin
        .client
        .post(format!(
            "{}/api/v1/ingest/{source}?token={INGEST_TOKEN}",
            tocsin.url
        ))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn alert(tocsin: &Harness, id: &Value) -> Value {
    tocsin
        .alerts()
        .await
        .into_iter()
        .find(|a| &a["id"] == id)
        .unwrap()
}

#[tokio::test]
async fn every_sender_fixture_gives_the_expected_alert() {
    let tocsin = Harness::start(SOURCES).await;
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    // (source, fixture, content type, resource, check, priority, status)
    let cases = [
        (
            "nagios",
            "nagios-service-problem.form",
            form,
            "db-01.prod.example.net",
            "PostgreSQL Replication Lag",
            "P1",
            "firing",
        ),
        (
            "nagios",
            "nagios-host-down-prefixed.form",
            form,
            "edge-rtr-02",
            "host",
            "P1",
            "firing",
        ),
        (
            "nagios",
            "icinga2-service-problem.form",
            form,
            "web-01.prod.example.net",
            "https",
            "P1",
            "firing",
        ),
        (
            "prtg",
            "prtg-down.form",
            form,
            "core-sw-01 (10.1.0.2)",
            "Ping",
            "P1",
            "firing",
        ),
        (
            "datadog",
            "datadog-triggered.json",
            json,
            "db-01.prod.example.net",
            "PostgreSQL replication lag is high",
            "P2",
            "firing",
        ),
        (
            "datadog",
            "datadog-warn-no-priority.json",
            json,
            "db-02.prod.example.net",
            "PostgreSQL replication lag is high",
            "P3",
            "firing",
        ),
        (
            "grafana",
            "grafana-firing.json",
            json,
            "web-01.prod.example.net",
            "HighCPUUsage",
            "P3",
            "firing",
        ),
    ];
    for (source, name, content_type, resource, check, priority, status) in cases {
        let (code, reply) = post(&tocsin, source, content_type, fixture(name)).await;
        assert_eq!(code, 202, "{name}: {reply}");
        let stored = alert(&tocsin, &reply["alerts"][0]["id"]).await;
        assert_eq!(stored["source"], source, "{name}");
        assert_eq!(stored["resource"], resource, "{name}");
        assert_eq!(stored["check"], check, "{name}");
        assert_eq!(stored["priority"], priority, "{name}");
        assert_eq!(stored["status"], status, "{name}");
    }
    // The recoveries resolve what the problems opened.
    for (source, name, content_type) in [
        ("nagios", "icinga2-statechange-ok.json", json),
        ("prtg", "prtg-up.json", json),
        ("datadog", "datadog-recovered.json", json),
        ("grafana", "grafana-resolved.json", json),
    ] {
        let (code, reply) = post(&tocsin, source, content_type, fixture(name)).await;
        assert_eq!(code, 202, "{name}: {reply}");
        assert_eq!(
            alert(&tocsin, &reply["alerts"][0]["id"]).await["status"],
            "resolved",
            "{name}"
        );
    }
    // PRTG's star priority is kept as a label and changes nothing by itself.
    let prtg = tocsin.get("/api/v1/alerts?source=prtg").await["items"][0].clone();
    assert_eq!(prtg["labels"]["prtg_priority"], "5");
    // Malformed variants get a 400 that names the field.
    for (source, body, field) in [
        (
            "nagios",
            b"SERVICEDESC=x&SERVICESTATE=CRITICAL".to_vec(),
            "HOSTNAME",
        ),
        ("prtg", b"sensor=Ping&status=Down".to_vec(), "device"),
        (
            "datadog",
            br#"{"alert_transition":"Exploded","alert_title":"x"}"#.to_vec(),
            "alert_transition",
        ),
        (
            "grafana",
            br#"{"version":"1","alerts":[{"status":"pending","labels":{}}]}"#.to_vec(),
            "alerts[0].status",
        ),
    ] {
        let content_type = if source == "grafana" { json } else { form };
        let (code, error) = post(&tocsin, source, content_type, body).await;
        assert_eq!(code, 400, "{source}");
        assert!(
            error["detail"].as_str().unwrap().contains(field),
            "{source}: {error}"
        );
    }
}

#[tokio::test]
async fn nagios_recovery_acknowledgement_and_downtime_walk_the_incident() {
    let tocsin = Harness::start(SOURCES).await;
    let form = "application/x-www-form-urlencoded";
    let (_, reply) = post(
        &tocsin,
        "nagios",
        form,
        fixture("nagios-service-problem.form"),
    )
    .await;
    let incident_id = reply["alerts"][0]["incident_id"].as_i64().unwrap();
    post(
        &tocsin,
        "nagios",
        form,
        fixture("nagios-service-acknowledgement.form"),
    )
    .await;
    let acknowledged = tocsin
        .get(&format!("/api/v1/incidents/{incident_id}"))
        .await;
    assert_eq!(acknowledged["status"], "acknowledged");
    // Who acknowledged in Nagios, and why, as Nagios said it.
    assert!(
        acknowledged["timeline"].as_array().unwrap().iter().any(|entry| {
            entry["message"]
                == "acknowledged by the sender (nagios): jdoe: Looking into it - replica IO saturated"
        }),
        "{acknowledged}"
    );
    let (code, reply) = post(
        &tocsin,
        "nagios",
        form,
        fixture("nagios-service-downtimestart.form"),
    )
    .await;
    assert_eq!(code, 202, "{reply}");
    let silences = tocsin.get("/api/v1/silences").await;
    assert_eq!(
        silences["items"][0]["state"], "active",
        "{silences} {reply}"
    );
    assert_eq!(silences["items"][0]["created_by"], "nagios");
    post(
        &tocsin,
        "nagios",
        "application/json",
        fixture("nagios-service-recovery.json"),
    )
    .await;
    let incident = tocsin
        .get(&format!("/api/v1/incidents/{incident_id}"))
        .await;
    assert_eq!(incident["status"], "resolved");
    // While the downtime lasts, the same problem is kept but opens nothing.
    let (_, again) = post(
        &tocsin,
        "nagios",
        form,
        fixture("nagios-service-problem.form"),
    )
    .await;
    assert_eq!(again["alerts"][0]["incident_id"], Value::Null);
    assert_eq!(
        alert(&tocsin, &again["alerts"][0]["id"]).await["silenced"],
        true
    );
    let end = String::from_utf8(fixture("nagios-service-downtimestart.form"))
        .unwrap()
        .replace("DOWNTIMESTART", "DOWNTIMEEND");
    post(&tocsin, "nagios", form, end.into_bytes()).await;
    assert_eq!(
        tocsin.get("/api/v1/silences").await["items"][0]["state"],
        "expired"
    );
}

#[tokio::test]
async fn a_silence_stops_an_incident_and_after_it_expires_the_alert_opens_one() {
    let tocsin = Harness::start("").await;
    let (status, created) = tocsin
        .post_as(
            RESPONDER,
            "/api/v1/silences",
            json!({ "matchers": ["resource=\"db-01\"", "check=~\"post.*\""], "ends_at": "2026-11-29T04:00:00Z", "comment": "patching" }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    // Named for someone else, the silence still says which token made it; one with
    // no end in sight is refused.
    let (status, _) = tocsin
        .post_as(
            RESPONDER,
            "/api/v1/silences",
            json!({ "matchers": ["resource=\"web-9\""], "ends_at": "2026-11-29T04:00:00Z", "created_by": "ops (admin)" }),
        )
        .await;
    assert_eq!(status, 201);
    let (status, refused) = tocsin
        .post_as(
            RESPONDER,
            "/api/v1/silences",
            json!({ "matchers": ["resource=\"web-9\""], "ends_at": "9999-12-31T23:59:59Z" }),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("10 years"),
        "{refused}"
    );
    let reply = tocsin
        .ingest_ok("generic", &generic("db-01", "postgres", "critical"))
        .await;
    assert_eq!(
        reply["alerts"][0]["incident_id"],
        Value::Null,
        "silenced: no incident"
    );
    let other = tocsin
        .ingest_ok("generic", &generic("db-02", "postgres", "critical"))
        .await;
    assert!(
        other["alerts"][0]["incident_id"].is_i64(),
        "another resource is not silenced"
    );
    let silenced = tocsin.get("/api/v1/alerts?status=silenced").await;
    assert_eq!(silenced["items"].as_array().unwrap().len(), 1);
    let listed = tocsin.get("/api/v1/silences").await;
    let made: Vec<(Option<&str>, Option<&str>)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["created_by"].as_str(), s["comment"].as_str()))
        .collect();
    assert!(
        made.contains(&(Some("oncall"), Some("patching"))),
        "{made:?}"
    );
    assert!(
        made.iter()
            .any(|(by, _)| *by == Some("ops (admin) (via oncall)")),
        "{made:?}"
    );

    tocsin.clock.advance(TimeDelta::hours(1));
    let after = tocsin
        .ingest_ok("generic", &generic("db-01", "postgres", "critical"))
        .await;
    let incident_id = after["alerts"][0]["incident_id"]
        .as_i64()
        .expect("the silence expired: the alert opens its incident");
    assert_eq!(
        after["alerts"][0]["id"], reply["alerts"][0]["id"],
        "same alert, now loud"
    );
    assert_eq!(
        tocsin
            .get(&format!("/api/v1/incidents/{incident_id}"))
            .await["priority"],
        "P1"
    );

    // Expiring by hand, and bad silences.
    let (_, second) = tocsin
        .post_as(
            RESPONDER,
            "/api/v1/silences",
            json!({ "matchers": ["resource=\"x\""], "ends_at": "2027-01-01T00:00:00Z" }),
        )
        .await;
    let response = tocsin
        .client
        .delete(format!("{}/api/v1/silences/{}", tocsin.url, second["id"]))
        .bearer_auth(RESPONDER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["state"], "expired");
    let (status, error) = tocsin
        .post_as(
            RESPONDER,
            "/api/v1/silences",
            json!({ "matchers": ["bogus"], "ends_at": "2027-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(status, 400);
    assert!(error["detail"].as_str().unwrap().contains("matchers[0]"));
    let (status, _) = tocsin
        .post_as(
            RESPONDER,
            "/api/v1/silences",
            json!({ "matchers": ["resource=\"x\""], "ends_at": "2020-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(status, 400, "a silence that already ended");
    let (status, _) = tocsin
        .post_as(
            crate::harness::VIEWER,
            "/api/v1/silences",
            json!({ "matchers": ["resource=\"x\""], "ends_at": "2027-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(status, 403);
}

/// Flapping after 3 changes in 10 minutes; alice is paged by email.
fn flapping_config(smtp: &crate::smtp_sink::SmtpSink) -> String {
    format!(
        "[flapping]\nchanges = 3\nwindow = \"10m\"\n[email]\ntransport = \"smtp\"\nport = {}\n[[users]]\nid = \"alice\"\nemail = \"alice@example.com\"\n[[escalation_policies]]\nname = \"default\"\ntiers = [ {{ level = \"L1\", targets = [\"user:alice\"] }} ]\n",
        smtp.port
    )
}

fn pages_to_alice(smtp: &crate::smtp_sink::SmtpSink) -> usize {
    smtp.to("alice@example.com")
        .into_iter()
        .filter(|m| !m.subject().starts_with("[RESOLVED]"))
        .count()
}

const DB_01_RESOLVED: &[u8] =
    br#"{"resource":"db-01","check":"postgres","status":"resolved","summary":"ok"}"#;

#[tokio::test]
async fn an_alert_toggled_ten_times_in_a_minute_is_flapping_and_pages_once() {
    let smtp = crate::smtp_sink::SmtpSink::start().await;
    let tocsin = Harness::start(&flapping_config(&smtp)).await;
    let firing = generic("db-01", "postgres", "critical");
    let resolved = DB_01_RESOLVED.to_vec();
    for toggle in 0..10 {
        let body = if toggle % 2 == 0 { &firing } else { &resolved };
        tocsin.ingest_ok("generic", body).await;
        tocsin.clock.advance(TimeDelta::seconds(6));
        tocsin.tick().await;
    }
    assert_eq!(pages_to_alice(&smtp), 1, "paged once for ten toggles");
    let incidents = tocsin.incidents().await;
    assert_eq!(incidents.len(), 1, "flapping opens no further incident");
    assert_eq!(incidents[0]["flapping"], true);
    let alerts = tocsin.alerts().await;
    assert!(alerts.iter().any(|a| a["flapping"] == true));
    let detail = tocsin
        .get(&format!("/api/v1/incidents/{}", incidents[0]["id"]))
        .await;
    assert!(
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "flapping")
    );

    // It settles firing: the problem is real, so it opens an incident and pages.
    tocsin.ingest_ok("generic", &firing).await;
    tocsin.clock.advance(TimeDelta::minutes(11));
    tocsin.tick().await;
    tocsin.tick().await;
    let incidents = tocsin.incidents().await;
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert_eq!(incidents[0]["flapping"], false);
}

/// The history is the store's: a restart between the changes forgets none of them.
#[tokio::test]
async fn an_alert_that_flaps_across_a_restart_is_still_caught() {
    let smtp = crate::smtp_sink::SmtpSink::start().await;
    let tocsin = Harness::start(&flapping_config(&smtp)).await;
    let firing = generic("db-01", "postgres", "critical");
    tocsin.ingest_ok("generic", &firing).await;
    tocsin.tick().await;
    tocsin.clock.advance(TimeDelta::seconds(6));
    tocsin.ingest_ok("generic", DB_01_RESOLVED).await;
    tocsin.clock.advance(TimeDelta::seconds(6));
    tocsin.tick().await;
    let tocsin = tocsin.restart().await;
    let third = tocsin.ingest_ok("generic", &firing).await;
    tocsin.tick().await;
    assert_eq!(
        third["alerts"][0]["incident_id"],
        Value::Null,
        "the third change in 10 minutes is flapping: {third}"
    );
    assert_eq!(pages_to_alice(&smtp), 1, "paged for the first firing only");
    let incidents = tocsin.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["flapping"], true);
}

#[tokio::test]
async fn a_missed_heartbeat_opens_a_p1_and_the_next_check_in_resolves_it() {
    let tocsin = Harness::start(
        "[[heartbeats]]\nname = \"backup-cron\"\ninterval = \"10m\"\ngrace = \"1m\"\n\
         [[heartbeats]]\nname = \"own\"\ninterval = \"10m\"\ntoken = \"own-heartbeat-token\"\n",
    )
    .await;
    let beat = |token: &'static str| {
        tocsin
            .client
            .post(format!("{}/api/v1/heartbeat/backup-cron", tocsin.url))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(beat("wrong-token").await.unwrap().status(), 401);
    assert_eq!(beat(INGEST_TOKEN).await.unwrap().status(), 200);
    tocsin.clock.advance(TimeDelta::minutes(11));
    tocsin.tick().await;
    assert!(
        tocsin.incidents().await.is_empty(),
        "not yet past interval + grace"
    );
    tocsin.clock.advance(TimeDelta::seconds(1));
    tocsin.tick().await;
    let incidents = tocsin.incidents().await;
    assert_eq!(
        incidents.len(),
        1,
        "the deadline passed: a P1 at the next tick"
    );
    assert_eq!(incidents[0]["priority"], "P1");
    assert!(
        incidents[0]["summary"]
            .as_str()
            .unwrap()
            .contains("monitoring is silent")
    );
    tocsin.clock.advance(TimeDelta::minutes(5));
    tocsin.tick().await;
    assert_eq!(
        tocsin.incidents().await.len(),
        1,
        "one incident while it stays silent"
    );
    assert_eq!(beat(INGEST_TOKEN).await.unwrap().status(), 200);
    assert_eq!(tocsin.incidents().await[0]["status"], "resolved");
    let unknown = tocsin
        .client
        .post(format!("{}/api/v1/heartbeat/nope", tocsin.url))
        .bearer_auth(INGEST_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // The caller is checked first: no name is confirmed or denied to a stranger, and
    // a viewer's token is known but not enough.
    let stranger = tocsin
        .client
        .post(format!("{}/api/v1/heartbeat/nope", tocsin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    assert_eq!(beat(VIEWER).await.unwrap().status(), 403);
    // A heartbeat with a token of its own takes only that one: any other is 401,
    // an admin's too (not "your role is viewer").
    let own = |token: &'static str| {
        tocsin
            .client
            .post(format!("{}/api/v1/heartbeat/own", tocsin.url))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(own(ADMIN).await.unwrap().status(), 401);
    assert_eq!(own("own-heartbeat-token").await.unwrap().status(), 200);
}

#[tokio::test]
async fn signed_sources_refuse_unsigned_forged_and_replayed_bodies() {
    let tocsin = Harness::start(
        "[sources.generic]\nhmac_secret = \"generic-secret\"\n[sources.grafana]\nhmac_secret = \"grafana-secret\"\n",
    )
    .await;
    let body = generic("web-1", "http", "critical");
    let send = |path: &'static str, headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let mut request = tocsin
            .client
            .post(format!("{}{path}", tocsin.url))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let now = tocsin.clock.now().timestamp().to_string();
    let signed = tocsin::webhook_auth::sign("generic-secret", Some(&now), &body);
    let ok = send(
        "/api/v1/ingest/generic",
        vec![
            ("X-Tocsin-Signature", format!("sha256={signed}")),
            ("X-Tocsin-Timestamp", now.clone()),
        ],
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 202);
    let unsigned = send("/api/v1/ingest/generic", vec![], body.clone())
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let tampered = send(
        "/api/v1/ingest/generic",
        vec![
            ("X-Tocsin-Signature", format!("sha256={signed}")),
            ("X-Tocsin-Timestamp", now.clone()),
        ],
        generic("web-2", "http", "critical"),
    )
    .await
    .unwrap();
    assert_eq!(tampered.status(), 401);
    let old = (tocsin.clock.now().timestamp() - 600).to_string();
    let replayed = tocsin::webhook_auth::sign("generic-secret", Some(&old), &body);
    let response = send(
        "/api/v1/ingest/generic",
        vec![
            ("X-Tocsin-Signature", replayed),
            ("X-Tocsin-Timestamp", old),
        ],
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .contains("replay")
    );

    let grafana = fixture("grafana-firing.json");
    let signature = tocsin::webhook_auth::sign("grafana-secret", None, &grafana);
    let response = send(
        "/api/v1/ingest/grafana",
        vec![("X-Grafana-Alert-Signature", signature)],
        grafana.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        tocsin
            .metric(r#"tocsin_alerts_rejected_total{reason="bad_signature",source="generic"}"#)
            .await,
        3.0
    );
}

#[tokio::test]
async fn a_down_host_inhibits_its_services_and_they_open_once_it_is_back() {
    let tocsin = Harness::start(&format!(
        "{SOURCES}[[inhibit]]\nsource_match = ['source=\"nagios\"', 'check=\"host\"']\ntarget_match = ['source=\"nagios\"', 'check!=\"host\"']\nequal = [\"resource\"]\n"
    ))
    .await;
    let form = "application/x-www-form-urlencoded";
    let host_down =
        b"NOTIFICATIONTYPE=PROBLEM&HOSTNAME=web-01&HOSTSTATE=DOWN&HOSTOUTPUT=unreachable".to_vec();
    let service = b"NOTIFICATIONTYPE=PROBLEM&HOSTNAME=web-01&SERVICEDESC=https&SERVICESTATE=CRITICAL&SERVICEOUTPUT=timeout".to_vec();
    let other_host =
        b"NOTIFICATIONTYPE=PROBLEM&HOSTNAME=web-02&SERVICEDESC=https&SERVICESTATE=CRITICAL"
            .to_vec();
    let (_, host) = post(&tocsin, "nagios", form, host_down).await;
    assert!(
        host["alerts"][0]["incident_id"].is_i64(),
        "the host itself pages"
    );
    let (_, inhibited) = post(&tocsin, "nagios", form, service.clone()).await;
    assert_eq!(
        inhibited["alerts"][0]["incident_id"],
        Value::Null,
        "its service is inhibited"
    );
    let stored = alert(&tocsin, &inhibited["alerts"][0]["id"]).await;
    assert_eq!(
        (stored["inhibited"].as_bool(), stored["status"].as_str()),
        (Some(true), Some("firing"))
    );
    assert_eq!(
        tocsin.get("/api/v1/alerts?status=inhibited").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (_, elsewhere) = post(&tocsin, "nagios", form, other_host).await;
    assert!(
        elsewhere["alerts"][0]["incident_id"].is_i64(),
        "another host's service is not inhibited"
    );

    post(
        &tocsin,
        "nagios",
        form,
        b"NOTIFICATIONTYPE=RECOVERY&HOSTNAME=web-01&HOSTSTATE=UP".to_vec(),
    )
    .await;
    let (_, after) = post(&tocsin, "nagios", form, service).await;
    assert!(
        after["alerts"][0]["incident_id"].is_i64(),
        "the host is back: the still-failing service opens its incident"
    );
}

#[tokio::test]
async fn a_recurring_maintenance_window_keeps_matching_alerts_quiet_inside_its_span() {
    // The harness clock starts on Sunday 2026-11-29 03:00 UTC (04:00 in Paris).
    let tocsin = Harness::start(
        "[[maintenance]]\nname = \"sunday patching\"\nmatch = ['labels.env=\"staging\"']\ntime_zone = \"Europe/Paris\"\ndays = [\"Sun\"]\nstart = \"03:00\"\nend = \"05:00\"\n",
    )
    .await;
    let staging = br#"{"resource":"stg-1","check":"disk","severity":"critical","summary":"disk","labels":{"env":"staging"}}"#;
    let reply = tocsin.ingest_ok("generic", staging).await;
    assert_eq!(
        reply["alerts"][0]["incident_id"],
        Value::Null,
        "inside the window"
    );
    let prod = tocsin.ingest_ok("generic", br#"{"resource":"prd-1","check":"disk","severity":"critical","summary":"disk","labels":{"env":"prod"}}"#).await;
    assert!(prod["alerts"][0]["incident_id"].is_i64());
    tocsin.clock.advance(TimeDelta::hours(1));
    let later = tocsin.ingest_ok("generic", staging).await;
    assert!(
        later["alerts"][0]["incident_id"].is_i64(),
        "05:00 Paris: the window is over"
    );
}
