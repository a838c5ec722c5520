//! From payload to incident: the must-show scenarios of the core issue.

use crate::harness::{Harness, fixture, generic, time, timeline_kinds};
use chrono::TimeDelta;
use serde_json::Value;

#[tokio::test]
async fn critical_alertmanager_alert_opens_a_p1_incident_due_in_15_minutes() {
    let tocsin = Harness::start("").await;
    let reply = tocsin
        .ingest_ok("alertmanager", &fixture("alertmanager-firing.json"))
        .await;
    let accepted = reply["alerts"].as_array().unwrap();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0]["dedup_key"], "3f2a9c1d7b4e8a60");

    let incident_id = accepted[0]["incident_id"].as_i64().unwrap();
    let incident = tocsin
        .get(&format!("/api/v1/incidents/{incident_id}"))
        .await;
    assert_eq!(incident["priority"], "P1");
    assert_eq!(incident["status"], "triggered");
    assert_eq!(
        incident["title"],
        "PostgresReplicationLagHigh on db-01.prod.example.net"
    );
    assert_eq!(
        time(&incident["response_due"]) - time(&incident["created_at"]),
        TimeDelta::minutes(15)
    );
    assert_eq!(
        time(&incident["resolve_due"]) - time(&incident["created_at"]),
        TimeDelta::hours(1)
    );
    assert_eq!(
        incident["created_at"], "2026-11-29T03:00:00.000Z",
        "SLA starts at creation, not at startsAt"
    );
    assert_eq!(incident["alerts"][0]["labels"]["team"], "dba");
    assert_eq!(incident["timeline"][0]["kind"], "opened");
}

#[tokio::test]
async fn a_thousand_repeats_give_one_incident_and_one_alert_counted_1000_times() {
    let tocsin = Harness::start("").await;
    let body = serde_json::json!({
        "version": "4", "status": "firing", "receiver": "tocsin", "externalURL": "http://am:9093",
        "alerts": [{ "status": "firing", "fingerprint": "00ff00ff00ff00ff",
            "labels": { "alertname": "DiskFull", "instance": "web-1:9100", "severity": "critical" },
            "annotations": { "summary": "disk full" }, "startsAt": "2026-11-29T02:59:00Z" }]
    })
    .to_string()
    .into_bytes();
    // Concurrent senders so repeats share group commits, as in a real storm.
    let mut tasks = Vec::new();
    for worker in 0..20 {
        let url = tocsin.url.clone();
        let client = tocsin.client.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let status = client
                    .post(format!("{url}/api/v1/ingest/alertmanager"))
                    .bearer_auth(crate::harness::INGEST_TOKEN)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, 202, "worker {worker}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let incidents = tocsin.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["alert_count"], 1);
    let alerts = tocsin.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["count"], 1000);
    assert_eq!(
        tocsin
            .metric(r#"tocsin_alerts_deduplicated_total{source="alertmanager"}"#)
            .await,
        999.0
    );
    assert_eq!(
        tocsin
            .metric(r#"tocsin_alerts_received_total{source="alertmanager"}"#)
            .await,
        1000.0
    );
    assert_eq!(
        tocsin
            .metric(r#"tocsin_incidents_opened_total{priority="P1"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn the_resolved_payload_resolves_alerts_and_incident_and_says_so() {
    let tocsin = Harness::start("").await;
    tocsin
        .ingest_ok("alertmanager", &fixture("alertmanager-firing.json"))
        .await;
    tocsin.clock.advance(TimeDelta::minutes(7));
    let reply = tocsin
        .ingest_ok("alertmanager", &fixture("alertmanager-resolved.json"))
        .await;
    let incident_id = reply["alerts"][0]["incident_id"].as_i64().unwrap();
    let incident = tocsin
        .get(&format!("/api/v1/incidents/{incident_id}"))
        .await;
    assert_eq!(incident["status"], "resolved");
    assert_eq!(incident["resolved_at"], "2026-11-29T03:07:00.000Z");
    assert_eq!(incident["alerts"][0]["status"], "resolved");
    let kinds = timeline_kinds(&incident);
    assert_eq!(kinds, ["opened", "paging", "alert_resolved", "resolved"]);
    let last = incident["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"], "tocsin");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("every alert resolved")
    );
    assert_eq!(
        tocsin
            .metric(r#"tocsin_incidents_open{priority="P1"}"#)
            .await,
        0.0
    );
    assert_eq!(
        tocsin
            .metric(r#"tocsin_incident_resolve_seconds_count{priority="P1"}"#)
            .await,
        2.0
    );

    // Firing again after the resolve is a new episode: a new alert and a new incident.
    let again = tocsin
        .ingest_ok("alertmanager", &fixture("alertmanager-firing.json"))
        .await;
    assert_ne!(
        again["alerts"][0]["incident_id"].as_i64().unwrap(),
        incident_id
    );
    assert_eq!(tocsin.alerts().await.len(), 4);
}

#[tokio::test]
async fn an_incident_waits_for_all_its_alerts_before_resolving_itself() {
    let tocsin = Harness::start("[[rules]]\nname = \"per host\"\nmatch = ['severity=\"critical\"']\ngroup_by = [\"resource\"]\n").await;
    tocsin
        .ingest_ok(
            "generic",
            br#"{"resource":"db-1","check":"cpu","severity":"critical","summary":"cpu"}"#,
        )
        .await;
    tocsin
        .ingest_ok(
            "generic",
            br#"{"resource":"db-1","check":"disk","severity":"critical","summary":"disk"}"#,
        )
        .await;
    tocsin
        .ingest_ok(
            "generic",
            br#"{"resource":"db-1","check":"cpu","status":"resolved","summary":"cpu ok"}"#,
        )
        .await;
    assert_eq!(tocsin.incidents().await[0]["status"], "triggered");
    tocsin
        .ingest_ok(
            "generic",
            br#"{"resource":"db-1","check":"disk","status":"resolved","summary":"disk ok"}"#,
        )
        .await;
    assert_eq!(tocsin.incidents().await[0]["status"], "resolved");
}

#[tokio::test]
async fn ten_alerts_for_one_resource_under_group_by_give_one_incident() {
    let tocsin = Harness::start(
        "[[rules]]\nname = \"group hosts\"\nmatch = ['resource=~\"web-.*\"']\npriority = \"P2\"\ngroup_by = [\"resource\"]\n",
    )
    .await;
    let mut incident_ids = Vec::new();
    for check in 0..10 {
        let reply = tocsin
            .ingest_ok(
                "generic",
                &generic("web-1", &format!("check-{check}"), "warning"),
            )
            .await;
        incident_ids.push(reply["alerts"][0]["incident_id"].as_i64().unwrap());
    }
    incident_ids.dedup();
    assert_eq!(incident_ids.len(), 1);
    let incidents = tocsin.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["alert_count"], 10);
    assert_eq!(incidents[0]["priority"], "P2");

    // Another resource is another group; the same resource after the window is a new incident.
    let other = tocsin
        .ingest_ok("generic", &generic("web-2", "check-0", "warning"))
        .await;
    assert_ne!(
        other["alerts"][0]["incident_id"].as_i64().unwrap(),
        incident_ids[0]
    );
    tocsin.clock.advance(TimeDelta::minutes(6));
    let late = tocsin
        .ingest_ok("generic", &generic("web-1", "check-late", "warning"))
        .await;
    assert_ne!(
        late["alerts"][0]["incident_id"].as_i64().unwrap(),
        incident_ids[0]
    );
    assert_eq!(tocsin.incidents().await.len(), 3);
}

#[tokio::test]
async fn without_group_by_each_alert_opens_its_own_incident() {
    let tocsin = Harness::start("").await;
    for check in 0..3 {
        tocsin
            .ingest_ok(
                "generic",
                &generic("web-1", &format!("c{check}"), "critical"),
            )
            .await;
    }
    assert_eq!(tocsin.incidents().await.len(), 3);
}

#[tokio::test]
async fn a_warning_opens_no_incident_but_is_in_the_alert_queue() {
    let tocsin = Harness::start("").await;
    let reply = tocsin
        .ingest_ok("generic", &generic("web-1", "latency", "warning"))
        .await;
    assert_eq!(reply["alerts"][0]["incident_id"], Value::Null);
    assert!(tocsin.incidents().await.is_empty());
    let alerts = tocsin.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["priority"], "P3");
    assert_eq!(alerts[0]["status"], "firing");
    assert_eq!(alerts[0]["incident_id"], Value::Null);
    let filtered = tocsin
        .get("/api/v1/alerts?priority=P3&status=firing&source=generic&resource=web-1")
        .await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let none = tocsin.get("/api/v1/alerts?priority=P1").await;
    assert!(none["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn pagerduty_trigger_acknowledge_resolve_walk_one_incident() {
    let tocsin = Harness::start("").await;
    let post = |name: &'static str| {
        let url = format!("{}/v2/enqueue", tocsin.url);
        let client = tocsin.client.clone();
        async move {
            // Authenticated by the body's routing_key alone, as PagerDuty senders do.
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .body(fixture(name))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
            response.json::<Value>().await.unwrap()
        }
    };
    let reply = post("pagerduty-trigger.json").await;
    assert_eq!(reply["status"], "success");
    assert_eq!(reply["message"], "Event processed");
    assert_eq!(
        reply["dedup_key"],
        "db-01.prod.example.net/postgres-replication-lag"
    );
    let incident = tocsin.incidents().await[0].clone();
    assert_eq!(
        (incident["status"].as_str(), incident["priority"].as_str()),
        (Some("triggered"), Some("P1"))
    );

    tocsin.clock.advance(TimeDelta::minutes(3));
    post("pagerduty-acknowledge.json").await;
    let incident = tocsin.incidents().await[0].clone();
    assert_eq!(incident["status"], "acknowledged");
    assert_eq!(incident["acknowledged_at"], "2026-11-29T03:03:00.000Z");

    tocsin.clock.advance(TimeDelta::minutes(10));
    post("pagerduty-resolve.json").await;
    let incident = tocsin
        .get(&format!("/api/v1/incidents/{}", incident["id"]))
        .await;
    assert_eq!(incident["status"], "resolved");
    assert_eq!(incident["sla_breached"], false);
    assert_eq!(tocsin.incidents().await.len(), 1);

    // A follow-up for a closed key changes nothing and is still accepted, as PagerDuty does.
    post("pagerduty-resolve.json").await;
    assert_eq!(tocsin.incidents().await.len(), 1);
}

#[tokio::test]
async fn pagerduty_trigger_without_dedup_key_returns_the_generated_one() {
    let tocsin = Harness::start("").await;
    let forged = String::from_utf8(fixture("pagerduty-trigger-no-dedup.json"))
        .unwrap()
        .replace("e93facc0", "00000000");
    let response = tocsin
        .client
        .post(format!("{}/v2/enqueue", tocsin.url))
        .header("content-type", "application/json")
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "a routing_key that matches no source token"
    );
    assert!(tocsin.alerts().await.is_empty());
    let response = tocsin
        .client
        .post(format!(
            "{}/api/v1/ingest/pagerduty?token=e93facc04764012d7bfb002500d5d1a6",
            tocsin.url
        ))
        .header("content-type", "application/json")
        .body(fixture("pagerduty-trigger-no-dedup.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let reply: Value = response.json().await.unwrap();
    let key = reply["dedup_key"].as_str().unwrap();
    assert_eq!(tocsin.alerts().await[0]["dedup_key"], key);
    assert_eq!(tocsin.incidents().await[0]["priority"], "P2");
}

#[tokio::test]
async fn generic_arrays_and_unicode_round_trip() {
    let tocsin = Harness::start("").await;
    let reply = tocsin
        .ingest_ok("generic", br#"[{"resource":"a","check":"x","severity":"info","summary":"s"},{"host":"b","service":"y","severity":"page","title":"t"}]"#)
        .await;
    assert_eq!(reply["alerts"].as_array().unwrap().len(), 2);
    tocsin
        .ingest_ok("generic", &fixture("unicode-valid.json"))
        .await;
    let alert = tocsin.alerts().await[0].clone();
    assert_eq!(alert["dedup_key"], "ünïcødé/チェック/🔥");
    assert_eq!(
        alert["summary"],
        "Zürich DC: Störung — 東京 replica 遅延 🔥🚨"
    );
    assert!(
        alert["details"]["message"]
            .as_str()
            .unwrap()
            .contains('\u{0}')
    );
    assert_eq!(alert["labels"]["emoji_key_🔑"], "value");
}

#[tokio::test]
async fn label_maps_within_the_limit_and_control_characters_are_accepted() {
    let tocsin = Harness::start("").await;
    let labels: serde_json::Map<String, Value> = (0..64)
        .map(|i| (format!("l{i}"), Value::from(format!("v\u{7}\t{i}"))))
        .collect();
    let body = serde_json::json!({ "resource": "", "check": "c\u{1b}[31m", "severity": "info", "summary": "x", "labels": labels });
    let response = tocsin.ingest("generic", body.to_string().as_bytes()).await;
    assert_eq!(response.status(), 400, "an empty resource is refused");
    let body = serde_json::json!({ "resource": "r", "check": "c\u{1b}[31m", "severity": "info", "summary": "x", "labels": labels });
    tocsin
        .ingest_ok("generic", body.to_string().as_bytes())
        .await;
    let alert = tocsin.alerts().await[0].clone();
    assert_eq!(alert["check"], "c\u{1b}[31m");
    assert_eq!(alert["labels"].as_object().unwrap().len(), 64);
}
