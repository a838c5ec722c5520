//! Paging drills: run by their cron or by hand, timed outside the SLA, failed and
//! reported after their window.

use crate::harness::RESPONDER;
use crate::paging::{ALICE_PHONE, Paging, cron_in, timeline};
use serde_json::{Value, json};

/// A `[[drills]]` entry on the default policy with a 10-minute window.
fn drill(cron: &str) -> String {
    format!(
        "[[drills]]\nname = \"chain\"\ncron = \"{cron}\"\nescalation_policy = \"default\"\npriority = \"P1\"\nack_window = \"10m\"\n"
    )
}

#[tokio::test]
async fn a_drill_from_its_cron_pages_marked_drill_and_its_ack_is_timed_outside_the_sla() {
    // The cron names a wall-clock second: far enough ahead for a start on a loaded
    // PostgreSQL (its schema and migrations) to be done before it.
    let paging = Paging::start(&drill(&cron_in(6))).await;
    let mut drills = Vec::new();
    for _ in 0..200 {
        drills = paging.tocsin.incidents().await;
        if !drills.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(drills.len(), 1, "the cron started one drill");
    let id = drills[0]["id"].as_i64().unwrap();
    paging.tocsin.tick().await;
    let mails = paging.smtp.to("alice@example.com");
    assert_eq!(mails.len(), 1, "L1 paged once by email");
    assert!(
        mails[0].subject().contains("DRILL"),
        "{}",
        mails[0].subject()
    );
    let sms = paging.sms.to(ALICE_PHONE);
    assert_eq!(sms.len(), 1, "and once by SMS");
    assert!(sms[0].body.contains("DRILL"), "{}", sms[0].body);

    paging.advance_minutes(3).await;
    let (status, _) = paging
        .tocsin
        .post_as(RESPONDER, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(status, 200);
    let incident = paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(
        incident["status"], "resolved",
        "an acknowledged drill is over"
    );
    paging.advance_minutes(30).await;
    assert_eq!(paging.pages("carol"), 0, "the ack stopped the escalation");

    let kpi = paging.tocsin.get("/api/v1/kpi").await;
    assert_eq!(
        kpi["overall"]["incidents"], 0,
        "drills stay out of the SLA KPIs: {kpi}"
    );
    assert_eq!(kpi["overall"]["mtta_seconds"], Value::Null);
    assert_eq!(kpi["drills"]["count"], 1);
    assert_eq!(kpi["drills"]["passed"], 1);
    assert_eq!(kpi["drills"]["mtta_seconds"], 180.0);
    assert_eq!(kpi["drills"]["runs"][0]["outcome"], "passed");
    assert_eq!(kpi["drills"]["runs"][0]["undelivered_channels"], json!([]));
    assert_eq!(
        paging
            .tocsin
            .metric(r#"tocsin_incident_ack_seconds_count{priority="P1"}"#)
            .await,
        0.0,
        "nor in the MTTA histogram"
    );
}

#[tokio::test]
async fn an_unacknowledged_drill_fails_after_its_window_and_is_reported_once() {
    // Never fires on its own during the test: started by hand.
    let paging = Paging::start(&drill("0 0 3 1 1 *")).await;
    // Alice's number is dead: the drill is how anyone finds out.
    paging
        .sms
        .rejected
        .lock()
        .unwrap()
        .push(ALICE_PHONE.to_string());
    let (status, reply) = paging
        .tocsin
        .post_as(RESPONDER, "/api/v1/drills/chain/run", json!({}))
        .await;
    assert_eq!(status, 201, "{reply}");
    let id = reply["incident_id"].as_i64().unwrap();
    let (status, reply) = paging
        .tocsin
        .post_as(RESPONDER, "/api/v1/drills/chain/run", json!({}))
        .await;
    assert_eq!(status, 409, "one run at a time: {reply}");
    let (status, _) = paging
        .tocsin
        .post_as(RESPONDER, "/api/v1/drills/nope/run", json!({}))
        .await;
    assert_eq!(status, 404);

    paging.tocsin.tick().await;
    paging.advance_minutes(9).await;
    let incident = paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["status"], "triggered");
    paging.advance_minutes(2).await;
    paging.tocsin.tick().await;
    let incident = paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["status"], "resolved", "the failed drill ended");
    let kinds: Vec<String> = timeline(&paging.tocsin, id)
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(
        kinds.iter().filter(|kind| *kind == "drill_failed").count(),
        1,
        "{kinds:?}"
    );
    for _ in 0..4 {
        paging.advance_minutes(30).await;
    }
    let reports: Vec<_> = paging
        .smtp
        .to("dave@example.com")
        .into_iter()
        .filter(|mail| mail.subject().starts_with("[DRILL FAILED]"))
        .collect();
    assert_eq!(reports.len(), 1, "the last tier hears it once");
    assert!(reports[0].text().contains("was not acknowledged"));
    assert_eq!(
        paging.pages("dave"),
        1,
        "the report, and no L3 page after the end"
    );
    let kpi = paging.tocsin.get("/api/v1/kpi").await;
    assert_eq!(kpi["drills"]["failed"], 1);
    assert_eq!(kpi["drills"]["passed"], 0);
    assert_eq!(kpi["drills"]["undelivered"], 1);
    assert_eq!(
        kpi["drills"]["runs"][0]["undelivered_channels"],
        json!(["sms"])
    );
    assert_eq!(kpi["overall"]["incidents"], 0);
}

#[tokio::test]
async fn a_drill_on_a_schedule_pages_who_is_on_call_there_and_reports_to_them() {
    let paging = Paging::start(
        "[[drills]]\nname = \"rota\"\ncron = \"0 0 3 1 1 *\"\nschedule = \"primary\"\nack_window = \"5m\"\n",
    )
    .await;
    let (status, reply) = paging
        .tocsin
        .post_as(RESPONDER, "/api/v1/drills/rota/run", json!({}))
        .await;
    assert_eq!(status, 201, "{reply}");
    paging.tocsin.tick().await;
    assert_eq!(paging.pages("alice"), 1, "alice is on call on primary");
    paging.advance_minutes(6).await;
    paging.advance_minutes(30).await;
    assert_eq!(paging.pages("carol"), 0, "the schedule is the only tier");
    let reports: Vec<_> = paging
        .smtp
        .to("alice@example.com")
        .into_iter()
        .filter(|mail| mail.subject().starts_with("[DRILL FAILED]"))
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "the failure goes to the schedule's on-call"
    );
}

#[tokio::test]
async fn a_drill_running_across_a_restart_still_fails_once_and_stays_a_drill() {
    let paging = Paging::start(&drill("0 0 3 1 1 *")).await;
    let (status, reply) = paging
        .tocsin
        .post_as(RESPONDER, "/api/v1/drills/chain/run", json!({}))
        .await;
    assert_eq!(status, 201, "{reply}");
    paging.tocsin.tick().await;
    let Paging { tocsin, smtp, sms } = paging;
    let tocsin = tocsin.restart().await;
    let paging = Paging { tocsin, smtp, sms };
    let (status, _) = paging
        .tocsin
        .post_as(RESPONDER, "/api/v1/drills/chain/run", json!({}))
        .await;
    assert_eq!(
        status, 409,
        "the restarted daemon knows the drill still runs"
    );
    paging.advance_minutes(11).await;
    paging.advance_minutes(1).await;
    let reports = paging
        .smtp
        .to("dave@example.com")
        .into_iter()
        .filter(|mail| mail.subject().starts_with("[DRILL FAILED]"))
        .count();
    assert_eq!(reports, 1);
    assert_eq!(
        paging.pages("alice"),
        1,
        "not paged again after the restart"
    );
    let kpi = paging.tocsin.get("/api/v1/kpi").await;
    assert_eq!(
        (
            kpi["drills"]["failed"].as_i64(),
            kpi["overall"]["incidents"].as_i64()
        ),
        (Some(1), Some(0))
    );
}
