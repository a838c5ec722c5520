//! Change events: PagerDuty's documented change event and Tocsin's own, and the
//! recent changes an incident shows.

use crate::harness::*;
use serde_json::{Value, json};

/// The example body of PagerDuty's "Send Change Event" documentation, with the
/// routing key of the test's PagerDuty source.
fn pagerduty_change(source: &str, timestamp: &str) -> Value {
    json!({
        "routing_key": "e93facc04764012d7bfb002500d5d1a6",
        "payload": {
            "summary": "Build Success: Increase snapshot create timeout to 30 seconds",
            "timestamp": timestamp,
            "source": source,
            "custom_details": {"build_state": "passed", "build_number": "2", "run_time": "1236s"}
        },
        "links": [{"href": "https://acme.pagerduty.dev/build/2", "text": "View more details in Acme!"}]
    })
}

async fn post(tocsin: &Harness, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = tocsin
        .client
        .post(format!("{}{path}", tocsin.url))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_incident_lists_the_deploy_of_its_resource_and_not_another_ones() {
    let smtp = crate::smtp_sink::SmtpSink::start().await;
    let tocsin = Harness::start(&format!(
        "[email]\ntransport = \"smtp\"\nport = {}\nfrom = \"tocsin@example.com\"\n\
         [[users]]\nid = \"alice\"\nemail = \"alice@example.com\"\n\
         [[escalation_policies]]\nname = \"default\"\ntiers = [ {{ level = \"L1\", targets = [\"user:alice\"] }} ]\n",
        smtp.port
    ))
    .await;
    // PagerDuty's client posts change events with the routing key only.
    let deploy = pagerduty_change("api-3", "2026-11-29T02:50:00.000+0000");
    let (status, answer) = post(&tocsin, "/v2/change/enqueue", None, &deploy).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer,
        json!({"status": "success", "message": "Change event processed"})
    );
    let other = json!({"summary": "deploy db schema v7", "source": "github-actions", "resource": "db-1", "timestamp": "2026-11-29T02:55:00Z"});
    let (status, made) = post(&tocsin, "/api/v1/changes", Some(INGEST_TOKEN), &other).await;
    assert_eq!(status, 201, "{made}");
    let old = json!({"summary": "deploy api v1", "source": "github-actions", "resource": "api-3", "timestamp": "2026-11-28T20:00:00Z"});
    assert_eq!(
        post(&tocsin, "/api/v1/changes", Some(RESPONDER), &old)
            .await
            .0,
        201
    );

    let reply = tocsin
        .ingest_ok("generic", &generic("api-3", "http", "critical"))
        .await;
    let id = reply["alerts"][0]["incident_id"].as_i64().unwrap();
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    let recent = incident["recent_changes"].as_array().unwrap();
    assert_eq!(
        recent.len(),
        1,
        "only the deploy of api-3 10 minutes earlier: {recent:?}"
    );
    assert_eq!(recent[0]["resource"], "api-3");
    assert_eq!(recent[0]["at"], "2026-11-29T02:50:00.000Z");
    assert_eq!(
        recent[0]["links"][0]["href"],
        "https://acme.pagerduty.dev/build/2"
    );

    // The page says what changed, too.
    tocsin.tick().await;
    let pages = smtp.to("alice@example.com");
    assert_eq!(pages.len(), 1);
    let text = pages[0].text();
    assert!(text.contains("What changed shortly before"), "{text}");
    assert!(
        text.contains("Build Success: Increase snapshot create timeout"),
        "{text}"
    );
    assert!(!text.contains("db schema"), "{text}");

    let listed = tocsin.get("/api/v1/changes").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    // A page at a time, newest first by when they happened, each change once: the
    // back-dated one (sent last) comes last.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = tocsin
            .get(&format!("/api/v1/changes?limit=1{cursor}"))
            .await;
        paged.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["summary"].clone()),
        );
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(
        paged,
        vec![
            json!("deploy db schema v7"),
            deploy["payload"]["summary"].clone(),
            json!("deploy api v1")
        ],
    );
    // A time far ahead, or Go's zero time, is a sender's mistake, not a change.
    for (timestamp, says) in [
        ("2036-01-01T00:00:00Z", "ahead"),
        ("0001-01-01T00:00:00Z", "year 1"),
    ] {
        let future = json!({"summary": "deploy", "source": "ci", "timestamp": timestamp});
        let (status, answer) = post(&tocsin, "/api/v1/changes", Some(INGEST_TOKEN), &future).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(says),
            "{answer}"
        );
    }
    // The dashboard shows what changed lately, too.
    let panel = tocsin
        .client
        .get(format!("{}/dashboard/panel", tocsin.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        panel.contains("Recent changes") && panel.contains("deploy db schema v7"),
        "{panel}"
    );

    let listed = tocsin.get("/api/v1/changes?resource=db-1").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn change_events_need_a_token_and_a_valid_body() {
    let tocsin = Harness::start("").await;
    let mut wrong = pagerduty_change("api-3", "2026-11-29T02:50:00Z");
    wrong["routing_key"] = json!("not-the-key");
    assert_eq!(
        post(&tocsin, "/v2/change/enqueue", None, &wrong).await.0,
        401
    );
    // Proven by its routing key, a sender hears what is wrong with its body.
    let mut broken = pagerduty_change("api-3", "2026-11-29T02:50:00Z");
    broken["links"] = json!([1]);
    let (status, answer) = post(&tocsin, "/v2/change/enqueue", None, &broken).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("links"),
        "{answer}"
    );
    broken["routing_key"] = json!("not-the-key");
    assert_eq!(
        post(&tocsin, "/v2/change/enqueue", None, &broken).await.0,
        401
    );
    let change = json!({"summary": "deploy", "source": "ci"});
    assert_eq!(post(&tocsin, "/api/v1/changes", None, &change).await.0, 401);
    for path in ["/api/v1/changes", "/v2/change/enqueue"] {
        let typed = tocsin
            .client
            .post(format!("{}{path}", tocsin.url))
            .bearer_auth(RESPONDER)
            .header("content-type", "text/plain")
            .body(pagerduty_change("api-3", "2026-11-29T02:50:00Z").to_string())
            .send()
            .await
            .unwrap();
        // The PagerDuty route's sender is proven by the body's routing key.
        assert_eq!(typed.status().as_u16(), 415, "{path}");
    }
    assert_eq!(
        post(&tocsin, "/api/v1/changes", Some(VIEWER), &change)
            .await
            .0,
        403
    );
    let (status, body) = post(
        &tocsin,
        "/api/v1/changes",
        Some(INGEST_TOKEN),
        &json!({"summary": "deploy"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("source"),
        "{body}"
    );
    // A change of everything shows on every page: a sender's token may not say so.
    let everything = json!({"summary": "rotate all certificates", "source": "ci"});
    let (status, _) = post(&tocsin, "/api/v1/changes", Some(INGEST_TOKEN), &everything).await;
    assert_eq!(status, 403);
    assert!(
        tocsin.get("/api/v1/changes").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (status, _) = post(&tocsin, "/api/v1/changes", Some(RESPONDER), &everything).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_senders_change_events_share_its_rate_limit_and_a_persons_do_not() {
    let tocsin = Harness::start(&format!(
        "[sources.generic]\ntoken = \"{INGEST_TOKEN}\"\nrate_limit = \"1/s\"\n\
         [sources.pagerduty]\ntoken = \"e93facc04764012d7bfb002500d5d1a6\"\nrate_limit = \"1/s\"\n"
    ))
    .await;
    let change = json!({"summary": "deploy api v2", "source": "ci", "resource": "api-3"});
    let (status, _) = post(&tocsin, "/api/v1/changes", Some(INGEST_TOKEN), &change).await;
    assert_eq!(status, 201);
    let response = tocsin
        .client
        .post(format!("{}/api/v1/changes", tocsin.url))
        .bearer_auth(INGEST_TOKEN)
        .header("content-type", "application/json")
        .body(change.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        429,
        "a sender cannot flood the change table"
    );
    assert_eq!(response.headers()["retry-after"], "1");
    let refused: Value = response.json().await.unwrap();
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("[sources.generic] rate_limit"),
        "{refused}"
    );
    for _ in 0..3 {
        let (status, _) = post(&tocsin, "/api/v1/changes", Some(RESPONDER), &change).await;
        assert_eq!(status, 201, "a person's changes are not a sender's");
    }

    let deploy = pagerduty_change("api-3", "2026-11-29T02:50:00.000+0000");
    assert_eq!(
        post(&tocsin, "/v2/change/enqueue", None, &deploy).await.0,
        202
    );
    assert_eq!(
        post(&tocsin, "/v2/change/enqueue", None, &deploy).await.0,
        429
    );
    let listed = tocsin.get("/api/v1/changes").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 5, "{listed}");
}
