//! SLA clocks and KPIs with a moved clock.

use crate::harness::{Harness, RESPONDER, generic};
use chrono::TimeDelta;
use serde_json::{Value, json};

async fn open_p1(tocsin: &Harness, resource: &str) -> i64 {
    tocsin
        .ingest_ok("generic", &generic(resource, "http", "critical"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap()
}

fn breaches(incident: &Value) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "sla_breach")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_unacknowledged_p1_breaches_once_and_a_prompt_one_never() {
    let tocsin = Harness::start("").await;
    let late = open_p1(&tocsin, "web-1").await;
    let prompt = open_p1(&tocsin, "web-2").await;
    tocsin.clock.advance(TimeDelta::minutes(10));
    tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{prompt}/ack"),
            json!({}),
        )
        .await;
    tocsin.clock.advance(TimeDelta::minutes(2));
    tocsin.tick().await;
    let warned = tocsin.get(&format!("/api/v1/incidents/{late}")).await;
    assert!(
        warned["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "sla_warning"),
        "80 % of the budget used"
    );
    tocsin.clock.advance(TimeDelta::minutes(4));
    tocsin.tick().await;
    tocsin.tick().await;
    let late_incident = tocsin.get(&format!("/api/v1/incidents/{late}")).await;
    assert_eq!(
        breaches(&late_incident).len(),
        1,
        "one response breach, recorded once"
    );
    assert!(breaches(&late_incident)[0].starts_with("response SLA breached"));
    assert_eq!(late_incident["sla_breached"], true);
    tocsin.clock.advance(TimeDelta::minutes(34));
    tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{prompt}/resolve"),
            json!({}),
        )
        .await;
    let prompt_incident = tocsin.get(&format!("/api/v1/incidents/{prompt}")).await;
    assert!(
        breaches(&prompt_incident).is_empty(),
        "acknowledged at 10 min, resolved at 50: no breach"
    );
    assert_eq!(prompt_incident["sla_breached"], false);
    assert_eq!(
        tocsin
            .metric(r#"tocsin_sla_breaches_total{kind="response",priority="P1"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_hold_pauses_the_clock() {
    let tocsin = Harness::start("").await;
    let id = open_p1(&tocsin, "web-1").await;
    tocsin.clock.advance(TimeDelta::minutes(5));
    let (status, held) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/hold"),
            json!({"note": "waiting on the client"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(held["on_hold"], true);
    tocsin.clock.advance(TimeDelta::minutes(20));
    tocsin.tick().await;
    assert!(
        breaches(&tocsin.get(&format!("/api/v1/incidents/{id}")).await).is_empty(),
        "no breach while on hold"
    );
    let (_, resumed) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/unhold"),
            json!({}),
        )
        .await;
    assert_eq!(
        resumed["response_due"], "2026-11-29T03:35:00.000Z",
        "15 min budget + 20 min held"
    );
    tocsin.clock.advance(TimeDelta::minutes(11));
    tocsin.tick().await;
    assert_eq!(
        breaches(&tocsin.get(&format!("/api/v1/incidents/{id}")).await).len(),
        1
    );
}

#[tokio::test]
async fn kpis_equal_the_figures_computed_by_hand_for_fifty_incidents() {
    let tocsin = Harness::start("").await;
    let start = "2026-11-29T00:00:00Z";
    let mut ack_seconds = Vec::new();
    let mut resolve_seconds = Vec::new();
    let (mut response_met, mut response_breached) = (0, 0);
    let (mut resolve_met, mut resolve_breached) = (0, 0);
    // Fifty P1s, one a minute; the i-th is acknowledged after i minutes and, for even
    // i, resolved after 2i minutes. Their clocks are checked once all are handled.
    let mut ids = Vec::new();
    for i in 0..50_i64 {
        ids.push((i, open_p1(&tocsin, &format!("web-{i}")).await));
        tocsin.clock.advance(TimeDelta::minutes(1));
    }
    // Acknowledge and resolve at the right minutes: walk the clock minute by minute.
    let base = 0_i64; // incident i was created at minute i
    let mut events: Vec<(i64, i64, &str)> = Vec::new();
    for (i, id) in &ids {
        events.push((base + i + i, *id, "ack"));
        if i % 2 == 0 {
            events.push((base + i + 2 * i, *id, "resolve"));
        }
    }
    events.sort();
    let mut minute = 50;
    for (at, id, action) in &events {
        let at = (*at).max(minute);
        tocsin.clock.advance(TimeDelta::minutes(at - minute));
        minute = at;
        tocsin
            .post_as(
                RESPONDER,
                &format!("/api/v1/incidents/{id}/{action}"),
                json!({}),
            )
            .await;
    }
    // By hand, from what really happened (some actions were delayed to minute 50).
    for (i, id) in &ids {
        let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
        let created = crate::harness::time(&incident["created_at"]);
        let acked = crate::harness::time(&incident["acknowledged_at"]);
        ack_seconds.push((acked - created).num_seconds() as f64);
        if acked - created <= TimeDelta::minutes(15) {
            response_met += 1
        } else {
            response_breached += 1
        }
        if i % 2 == 0 {
            let resolved = crate::harness::time(&incident["resolved_at"]);
            resolve_seconds.push((resolved - created).num_seconds() as f64);
            if resolved - created <= TimeDelta::hours(1) {
                resolve_met += 1
            } else {
                resolve_breached += 1
            }
        } else if tocsin_now(&tocsin).await - created > TimeDelta::hours(1) {
            resolve_breached += 1;
        }
    }
    let kpi = tocsin.get(&format!("/api/v1/kpi?from={start}")).await;
    let p1 = &kpi["priorities"]["P1"];
    assert_eq!(p1["incidents"], 50);
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    assert!((p1["mtta_seconds"].as_f64().unwrap() - mean(&ack_seconds)).abs() < 1e-6);
    assert!((p1["mttr_seconds"].as_f64().unwrap() - mean(&resolve_seconds)).abs() < 1e-6);
    assert_eq!(
        (
            p1["sla_response_met"].as_i64(),
            p1["sla_response_breached"].as_i64()
        ),
        (Some(response_met), Some(response_breached))
    );
    assert_eq!(
        (
            p1["sla_resolve_met"].as_i64(),
            p1["sla_resolve_breached"].as_i64()
        ),
        (Some(resolve_met), Some(resolve_breached))
    );
    let compliance = response_met as f64 / (response_met + response_breached) as f64;
    assert!((p1["sla_response_compliance"].as_f64().unwrap() - compliance).abs() < 1e-9);
    assert_eq!(kpi["overall"]["incidents"], 50);
    assert_eq!(kpi["backlog"]["open"], 25);
    assert_eq!(kpi["priorities"]["P3"]["mtta_seconds"], Value::Null);
}

async fn tocsin_now(tocsin: &Harness) -> chrono::DateTime<chrono::Utc> {
    crate::harness::time(&tocsin.get("/api/v1/kpi").await["to"])
}

#[tokio::test]
async fn the_weekly_report_arrives_by_email_when_its_cron_fires_with_the_kpi_figures() {
    let smtp = crate::smtp_sink::SmtpSink::start().await;
    let tocsin = Harness::start(&format!(
        "[email]\ntransport = \"smtp\"\nport = {}\n[reports.weekly]\ncron = \"* * * * * *\"\nto = [\"manager@example.com\"]\n",
        smtp.port
    ))
    .await;
    let first = open_p1(&tocsin, "web-1").await;
    open_p1(&tocsin, "web-2").await;
    tocsin.clock.advance(TimeDelta::minutes(12));
    tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{first}/ack"),
            json!({}),
        )
        .await;
    tocsin.clock.advance(TimeDelta::minutes(30));
    let kpi = tocsin.get("/api/v1/kpi").await;
    // The cron fires every second in real time; the outbox is ticked by hand.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mail = loop {
        tocsin.tick().await;
        if let Some(mail) = smtp.to("manager@example.com").into_iter().next() {
            break mail;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report within 10 s: {}",
            tocsin
                .metric(r#"tocsin_notifications_total{channel="email",outcome="failed"}"#)
                .await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        mail.subject(),
        "[Tocsin] Weekly report 2026-11-22 to 2026-11-29"
    );
    let body = mail.text();
    assert_eq!(kpi["overall"]["incidents"], 2);
    assert!(body.contains("2 incidents"), "{body}");
    assert_eq!(kpi["overall"]["mtta_seconds"], 720.0);
    assert!(
        body.contains("12 min"),
        "MTTA as the KPI endpoint computes it"
    );
    assert_eq!(kpi["overall"]["sla_response_compliance"], 1.0 / 2.0);
    assert!(
        body.contains("50 %"),
        "response compliance: one met, one breached"
    );
    assert!(
        body.contains("web-2"),
        "the breached incident is among the worst"
    );
}

#[tokio::test]
async fn stakeholders_hear_of_the_incident_and_answer_csat_once() {
    let smtp = crate::smtp_sink::SmtpSink::start().await;
    let tocsin = Harness::start(&format!(
        "[email]\ntransport = \"smtp\"\nport = {}\n[[rules]]\nname = \"acme\"\nmatch = ['resource=~\"acme-.*\"']\nstakeholders = [\"it@acme.example\"]\n",
        smtp.port
    ))
    .await;
    let id = open_p1(&tocsin, "acme-web").await;
    tocsin.tick().await;
    let opened = smtp.to("it@acme.example");
    assert_eq!(opened.len(), 1);
    assert_eq!(
        opened[0].subject(),
        format!("#{id} http on acme-web: we are on it")
    );
    tocsin.clock.advance(TimeDelta::minutes(20));
    tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({}),
        )
        .await;
    tocsin.tick().await;
    let resolved = smtp.to("it@acme.example");
    assert_eq!(resolved.len(), 2);
    let body = resolved[1].text();
    let start = body
        .find(&format!("{}/csat/", tocsin.url))
        .expect("a satisfaction link");
    let five: String = body[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .replace("score=1", "score=5");
    let link = five.split("?score").next().unwrap().to_string();
    let client = &tocsin.client;
    let csat = || async { tocsin.get("/api/v1/kpi").await["overall"]["csat_answers"].clone() };

    // What a mail scanner does: fetch every link of the email.
    for score in 1..=5 {
        let page = client
            .get(format!("{link}?score={score}"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains(&format!("incident #{id}")), "{html}");
        assert_eq!(html.matches("<button").count(), 5, "{html}");
        assert!(html.contains("name=\"score\" value=\"3\""), "{html}");
    }
    assert_eq!(csat().await, 0, "showing the choice records nothing");
    let as_ack = link.replace("/csat/", "/ack/");
    assert_eq!(client.get(&as_ack).send().await.unwrap().status(), 403);
    assert_eq!(
        client.post(&as_ack).send().await.unwrap().status(),
        403,
        "a satisfaction link acknowledges nothing"
    );

    let first = client
        .post(format!("{link}?score=1"))
        .form(&[("score", "5")])
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert!(
        first.text().await.unwrap().contains("(5/5)"),
        "the button pressed counts"
    );
    let second = client
        .post(&link)
        .form(&[("score", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 410, "answered twice counts once");
    assert!(second.text().await.unwrap().contains("first answer"));
    assert_eq!(
        client
            .get(format!("{link}?score=2"))
            .send()
            .await
            .unwrap()
            .status(),
        410
    );
    let mut forged = link.clone().into_bytes();
    let last = forged.len() - 3;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        client
            .get(format!("{forged}?score=5"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        client
            .post(&forged)
            .form(&[("score", "5")])
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let kpi = tocsin.get("/api/v1/kpi").await;
    assert_eq!(
        (
            kpi["overall"]["csat"].as_f64(),
            kpi["overall"]["csat_answers"].as_i64()
        ),
        (Some(1.0), Some(1))
    );
    tocsin.clock.advance(TimeDelta::days(31));
    for response in [
        client.get(format!("{link}?score=5")).send().await.unwrap(),
        client
            .post(&link)
            .form(&[("score", "5")])
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 410);
        assert!(response.text().await.unwrap().contains("Link expired"));
    }
}
