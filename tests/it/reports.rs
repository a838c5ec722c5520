//! The reports sent by mail: the noise analysis and the monthly review.

use crate::harness::{Harness, RESPONDER, generic};
use crate::paging::{Paging, cron_in};
use chrono::TimeDelta;
use serde_json::json;

#[tokio::test]
async fn the_noise_report_puts_the_self_healing_alert_first_and_counts_night_pages() {
    let paging = Paging::start("").await;
    paging.self_healing_disk(4).await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    paging.advance_minutes(3).await;
    for action in ["ack", "resolve"] {
        let (status, _) = paging
            .tocsin
            .post_as(
                RESPONDER,
                &format!("/api/v1/incidents/{id}/{action}"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
    }
    for _ in 0..10 {
        paging
            .tocsin
            .ingest_ok("generic", &generic("web-2", "cert-expiry", "info"))
            .await;
    }

    // A link that goes up and down every 30 seconds (P3: no incident, no page).
    let link_up =
        json!({ "resource": "sw-1", "check": "link-flap", "status": "resolved", "summary": "up" });
    for _ in 0..4 {
        paging
            .tocsin
            .ingest_ok("generic", &generic("sw-1", "link-flap", "warning"))
            .await;
        paging.tocsin.clock.advance(TimeDelta::seconds(30));
        paging
            .tocsin
            .ingest_ok("generic", link_up.to_string().as_bytes())
            .await;
        paging.tocsin.clock.advance(TimeDelta::seconds(30));
    }

    let noise = paging.tocsin.get("/api/v1/noise").await;
    let top = &noise["top"][0];
    assert_eq!(
        (&top["source"], &top["check"]),
        (&json!("generic"), &json!("disk-flap")),
        "{noise}"
    );
    assert_eq!(top["alerts"], 4);
    assert_eq!(top["incidents"], 4);
    assert_eq!(top["self_healed"], 4);
    assert!(
        top["suggestion"]
            .as_str()
            .unwrap()
            .starts_with("4 of 4 incidents cleared on their own within 10 min"),
        "{top}"
    );
    let checks = noise["checks"].as_array().unwrap();
    let find = |check: &str| checks.iter().find(|c| c["check"] == check).unwrap().clone();
    assert_eq!(
        find("postgres")["self_healed"],
        0,
        "a person acknowledged it"
    );
    let cert = find("cert-expiry");
    assert_eq!(
        (
            cert["alerts"].as_i64(),
            cert["notifications"].as_i64(),
            cert["incidents"].as_i64()
        ),
        (Some(1), Some(10), Some(0))
    );
    assert!(
        cert["suggestion"]
            .as_str()
            .unwrap()
            .contains("silence window"),
        "{cert}"
    );
    let link = find("link-flap");
    assert!(link["flapping"].as_i64().unwrap() >= 1, "{link}");
    assert!(link["flapping_seconds"].as_i64().unwrap() >= 30, "{link}");
    assert!(
        link["suggestion"].as_str().unwrap().starts_with("it flaps"),
        "{link}"
    );

    // Five incidents, each paged alice by email and SMS, all in the small hours of the
    // schedule's time zone (04:00-06:00 in Paris).
    let pages = &noise["pages"];
    assert_eq!(pages["total"], 10, "{pages}");
    assert_eq!(pages["time_zone"], "Europe/Paris");
    assert_eq!(
        pages["per_person"],
        json!([{ "user": "alice", "pages": 10, "night_pages": 10 }])
    );

    let (status, _, body) = fetch(&paging.tocsin, "/api/v1/noise?self_heal_minutes=abc").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("\"error\"") && body.contains("whole number"),
        "{body}"
    );
    let refused = crate::harness::client()
        .get(format!(
            "{}/api/v1/noise?self_heal_minutes=0",
            paging.tocsin.url
        ))
        .bearer_auth(RESPONDER)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body = refused.text().await.unwrap();
    assert!(body.contains("self_heal_minutes"), "{body}");
    let refused = crate::harness::client()
        .get(format!(
            "{}/api/v1/noise?time_zone=Mars/Olympus",
            paging.tocsin.url
        ))
        .bearer_auth(RESPONDER)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body = refused.text().await.unwrap();
    assert!(body.contains("IANA"), "{body}");
}

/// GET with the responder token; status, content type and body text.
async fn fetch(tocsin: &Harness, path: &str) -> (u16, String, String) {
    let response = crate::harness::client()
        .get(format!("{}{path}", tocsin.url))
        .bearer_auth(RESPONDER)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

#[tokio::test]
async fn the_monthly_review_has_the_kpi_figures_of_its_month_and_names_the_noisiest_alert() {
    let paging = Paging::start(&format!(
        "[reports.monthly]\ncron = \"{}\"\nto = [\"sm@example.com\"]\n",
        cron_in(6)
    ))
    .await;
    paging.self_healing_disk(3).await;
    // A P1 acknowledged late (response SLA missed), and a P2 handled in time.
    for (resource, severity, ack_after, resolve_after) in
        [("db-01", "critical", 20, 30), ("api-1", "error", 5, 120)]
    {
        let reply = paging
            .tocsin
            .ingest_ok("generic", &generic(resource, "latency", severity))
            .await;
        let id = reply["alerts"][0]["incident_id"].as_i64().unwrap();
        paging.tocsin.tick().await;
        paging.advance_minutes(ack_after).await;
        let path = format!("/api/v1/incidents/{id}/ack");
        assert_eq!(
            paging.tocsin.post_as(RESPONDER, &path, json!({})).await.0,
            200
        );
        paging.advance_minutes(resolve_after - ack_after).await;
        let path = format!("/api/v1/incidents/{id}/resolve");
        assert_eq!(
            paging.tocsin.post_as(RESPONDER, &path, json!({})).await.0,
            200
        );
    }

    let kpi = paging
        .tocsin
        .get("/api/v1/kpi?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z")
        .await;
    assert_eq!(kpi["overall"]["incidents"], 5);
    let (status, kind, text) = fetch(
        &paging.tocsin,
        "/api/v1/reports/monthly?month=2026-11&format=csv",
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (200, "text/csv; charset=utf-8"),
        "{text}"
    );
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|record| record.unwrap().iter().map(str::to_string).collect())
        .collect();
    let mut compared = 0;
    for row in rows.iter().filter(|row| row[0] == "sla") {
        let figures = if row[1] == "overall" {
            &kpi["overall"]
        } else {
            &kpi["priorities"][&row[1]]
        };
        let expected = &figures[&row[2]];
        match expected.as_f64() {
            Some(number) => assert_eq!(row[3].parse::<f64>().unwrap(), number, "{row:?}"),
            None => assert!(
                expected.is_null() && row[3].is_empty(),
                "{row:?} vs {expected}"
            ),
        }
        compared += 1;
    }
    assert!(
        compared >= 5 * 15,
        "every figure of every priority: {compared}"
    );
    let noisiest = rows.iter().find(|row| row[0] == "noise").unwrap();
    assert_eq!(noisiest[1], "1 generic/disk-flap", "{noisiest:?}");
    let p1_mtta = rows
        .iter()
        .find(|row| row[0] == "sla" && row[1] == "P1" && row[2] == "mtta_seconds")
        .unwrap();
    assert_eq!(p1_mtta[3], "1200.0");

    let (status, kind, html) = fetch(&paging.tocsin, "/api/v1/reports/monthly?month=2026-11").await;
    assert_eq!((status, kind.as_str()), (200, "text/html; charset=utf-8"));
    assert!(
        html.contains("Monthly review: 2026-11") && html.contains("disk-flap"),
        "{html}"
    );
    assert!(html.contains("alice: 10 pages"), "pages per person: {html}");
    let (status, _, html) = fetch(&paging.tocsin, "/api/v1/reports/monthly").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Monthly review: 2026-10"),
        "the last complete month by default"
    );
    let (status, _, body) = fetch(&paging.tocsin, "/api/v1/reports/monthly?month=2026-13").await;
    assert_eq!(status, 400);
    assert!(body.contains("YYYY-MM"), "{body}");

    // The cron queues last month's review (the test clock is in November). Its
    // wall-clock second is far enough ahead for a start on a loaded PostgreSQL.
    let mut mails = Vec::new();
    for _ in 0..200 {
        paging.tocsin.tick().await;
        mails = paging.smtp.to("sm@example.com");
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(mails.len(), 1, "the cron sent the review once");
    assert_eq!(mails[0].subject(), "[Tocsin] Monthly review 2026-10");
}
