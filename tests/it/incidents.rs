//! The incidents API: actions, roles, paging and the timeline.

use crate::harness::{ADMIN, Harness, RESPONDER, VIEWER, generic};
use chrono::TimeDelta;
use serde_json::{Value, json};

async fn one_incident(tocsin: &Harness) -> i64 {
    let reply = tocsin
        .ingest_ok("generic", &generic("db-1", "postgres", "critical"))
        .await;
    reply["alerts"][0]["incident_id"].as_i64().unwrap()
}

#[tokio::test]
async fn responders_acknowledge_and_resolve_and_the_timeline_names_them() {
    let tocsin = Harness::start("").await;
    let id = one_incident(&tocsin).await;
    tocsin.clock.advance(TimeDelta::minutes(4));
    let (status, incident) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/ack"),
            json!({"note": "looking"}),
        )
        .await;
    assert_eq!(status, 200, "{incident}");
    assert_eq!(incident["status"], "acknowledged");
    assert_eq!(incident["acknowledged_at"], "2026-11-29T03:04:00.000Z");

    let (status, _) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/notes"),
            json!({"text": "restarted postgres"}),
        )
        .await;
    assert_eq!(status, 200);
    // A misspelt field is refused rather than acted on without its note, and a note
    // is a line, not a log.
    for (path, body, says) in [
        ("ack", json!({"notes": "typo"}), "unknown field `notes`"),
        (
            "notes",
            json!({"text": "x".repeat(4097)}),
            "over 4096 characters",
        ),
    ] {
        let (status, refusal) = tocsin
            .post_as(RESPONDER, &format!("/api/v1/incidents/{id}/{path}"), body)
            .await;
        assert_eq!(status, 400, "{refusal}");
        assert!(
            refusal["detail"].as_str().unwrap().contains(says),
            "{refusal}"
        );
    }
    tocsin.clock.advance(TimeDelta::minutes(30));
    let response = tocsin
        .client
        .post(format!("{}/api/v1/incidents/{id}/resolve", tocsin.url))
        .bearer_auth(RESPONDER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "no body is a valid body");
    let detail = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(detail["status"], "resolved");
    assert_eq!(detail["sla_breached"], false);
    assert_eq!(
        detail["alerts"][0]["status"], "resolved",
        "resolving the incident resolves its alerts"
    );
    let timeline: Vec<(String, String, String)> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
                e["message"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        timeline[2],
        (
            "acknowledged".into(),
            "oncall".into(),
            "acknowledged by oncall: looking".into()
        )
    );
    assert_eq!(
        timeline[3],
        ("note".into(), "oncall".into(), "restarted postgres".into())
    );
    assert_eq!(timeline[4].0, "resolved");

    let (status, error) = tocsin
        .post_as(RESPONDER, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(status, 409);
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("already resolved")
    );
    assert_eq!(
        tocsin
            .metric(r#"tocsin_incident_ack_seconds_sum{priority="P1"}"#)
            .await,
        240.0
    );
    // A repeat of the alert after a manual resolve opens a new incident.
    let again = one_incident(&tocsin).await;
    assert_ne!(again, id);
}

#[tokio::test]
async fn a_late_acknowledgement_breaches_the_sla() {
    let tocsin = Harness::start("").await;
    let id = one_incident(&tocsin).await;
    tocsin.clock.advance(TimeDelta::minutes(16));
    let (_, incident) = tocsin
        .post_as(ADMIN, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(incident["sla_breached"], true);
}

#[tokio::test]
async fn roles_are_enforced_before_anything_is_looked_up() {
    let tocsin = Harness::start("").await;
    let id = one_incident(&tocsin).await;
    let (status, _) = tocsin
        .post_as(VIEWER, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = tocsin
        .post_as(VIEWER, "/api/v1/incidents/999999/ack", json!({}))
        .await;
    assert_eq!(status, 403, "no hint whether the id exists");
    let (status, _) = tocsin
        .post_as(
            "not-a-token",
            &format!("/api/v1/incidents/{id}/ack"),
            json!({}),
        )
        .await;
    assert_eq!(status, 401);
    let anonymous = tocsin
        .client
        .get(format!("{}/api/v1/incidents", tocsin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let viewer = tocsin
        .client
        .get(format!("{}/api/v1/incidents", tocsin.url))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(viewer.status(), 200);
    let (status, _) = tocsin
        .post_as(RESPONDER, "/api/v1/incidents/999999/ack", json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/notes"),
            json!({}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(tocsin.incidents().await[0]["status"], "triggered");
}

#[tokio::test]
async fn lists_page_newest_first_with_a_cursor() {
    let tocsin = Harness::start("").await;
    for i in 0..5 {
        tocsin
            .ingest_ok("generic", &generic(&format!("web-{i}"), "http", "critical"))
            .await;
    }
    let first = tocsin.get("/api/v1/incidents?limit=2").await;
    let ids = |page: &Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), [5, 4]);
    let second = tocsin
        .get(&format!(
            "/api/v1/incidents?limit=2&cursor={}",
            first["next"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ids(&second), [3, 2]);
    let third = tocsin
        .get(&format!(
            "/api/v1/incidents?limit=2&cursor={}",
            second["next"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ids(&third), [1]);
    assert_eq!(third["next"], Value::Null);
    let resolved = tocsin
        .get("/api/v1/incidents?status=resolved,acknowledged")
        .await;
    assert!(resolved["items"].as_array().unwrap().is_empty());
    let bad = tocsin
        .client
        .get(format!("{}/api/v1/incidents?limit=5000", tocsin.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    for query in ["status=open", "cursor=-1", "cursor=0", "cursor=abc"] {
        let bad = tocsin
            .client
            .get(format!("{}/api/v1/incidents?{query}", tocsin.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400, "{query}");
    }
}
