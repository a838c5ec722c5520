//! The helpdesk integration end to end: tickets on four platforms (a local server that
//! checks each documented request), internal notes, solving, an outage, and the
//! platforms' webhooks coming back; knowledge-base and remote-access links on the
//! incident, in the page and in the ticket.

use crate::harness::{Harness, RESPONDER, timeline_kinds};
use crate::helpdesk::Helpdesk;
use crate::smtp_sink::SmtpSink;
use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const PLATFORMS: [&str; 4] = ["zendesk", "freshdesk", "servicenow", "jira"];

struct Desk {
    tocsin: Harness,
    smtp: SmtpSink,
    helpdesk: Helpdesk,
}

impl Desk {
    async fn start(extra: &str) -> Self {
        let smtp = SmtpSink::start().await;
        let helpdesk = Helpdesk::start().await;
        let config = format!(
            r#"
[email]
host = "127.0.0.1"
port = {port}
from = "tocsin@example.com"

[[users]]
id = "alice"
email = "alice@example.com"

[[users]]
id = "carol"
email = "carol@example.com"

[[escalation_policies]]
name = "default"
tiers = [
  {{ level = "L1", targets = ["user:alice"] }},
  {{ level = "L2", targets = ["user:carol"], after = "10m" }},
]

[[rules]]
name = "databases"
match = ['check="postgres"']
priority = "P1"
kb = ["https://acme.atlassian.net/wiki/spaces/OPS/pages/{{{{check}}}}-failover"]

[[remote_access]]
name = "AnyDesk"
match = ['labels.anydesk_id=~".+"']
url = "anydesk:{{{{labels.anydesk_id}}}}"

[[remote_access]]
name = "SSH"
url = "ssh://{{{{resource}}}}"
{tickets}
{extra}
"#,
            port = smtp.port,
            tickets = helpdesk.config(""),
        );
        let tocsin = Harness::start(&config).await;
        Self {
            tocsin,
            smtp,
            helpdesk,
        }
    }

    /// A P1 from a Windows database server with an AnyDesk id.
    async fn p1(&self, resource: &str) -> i64 {
        let body = json!({
            "resource": resource, "check": "postgres", "severity": "critical",
            "summary": "replication stopped", "labels": { "anydesk_id": "123456789" }
        });
        self.tocsin
            .ingest_ok("generic", body.to_string().as_bytes())
            .await["alerts"][0]["incident_id"]
            .as_i64()
            .unwrap()
    }

    async fn incident(&self, id: i64) -> Value {
        self.tocsin.get(&format!("/api/v1/incidents/{id}")).await
    }

    /// (method, path) of every accepted call to `platform`.
    fn calls(&self, platform: &str) -> Vec<(Method, String)> {
        self.helpdesk
            .calls_to(platform)
            .into_iter()
            .map(|call| (call.method, call.path))
            .collect()
    }

    fn creates(&self, platform: &str) -> usize {
        self.helpdesk
            .calls_to(platform)
            .iter()
            .filter(|call| call.method == Method::POST && is_create(&call.path))
            .count()
    }

    async fn advance(&self, seconds: i64) {
        self.tocsin.clock.advance(TimeDelta::seconds(seconds));
        self.tocsin.tick().await;
    }
}

fn is_create(path: &str) -> bool {
    matches!(
        path,
        "/api/v2/tickets.json"
            | "/api/v2/tickets"
            | "/api/now/table/incident"
            | "/rest/api/2/issue"
    )
}

#[tokio::test]
async fn a_p1_opens_one_ticket_per_platform_with_its_documented_request_and_links() {
    let desk = Desk::start("").await;
    let id = desk.p1("db-01").await;
    desk.tocsin.tick().await;
    assert_eq!(desk.helpdesk.violations(), Vec::<String>::new());

    let body = |platform: &str| desk.helpdesk.calls_to(platform)[0].body.clone();
    assert_eq!(body("zendesk")["ticket"]["priority"], "urgent");
    assert_eq!(body("zendesk")["ticket"]["group_id"], 360001);
    assert_eq!(
        body("zendesk")["ticket"]["external_id"],
        format!("tocsin-{id}")
    );
    assert_eq!(
        body("zendesk")["ticket"]["tags"],
        json!(["monitoring", "tocsin", "p1"])
    );
    assert_eq!(body("freshdesk")["priority"], 4);
    assert_eq!(body("freshdesk")["email"], "monitoring@acme.example");
    assert_eq!(
        (
            body("servicenow")["impact"].clone(),
            body("servicenow")["urgency"].clone()
        ),
        (json!("1"), json!("1"))
    );
    assert_eq!(body("servicenow")["assignment_group"], "Service Desk");
    assert_eq!(body("jira")["fields"]["priority"]["name"], "Highest");
    assert_eq!(body("jira")["fields"]["project"]["key"], "OPS");
    let subject = body("zendesk")["ticket"]["subject"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(subject, format!("[P1] #{id} db-01: replication stopped"));
    let description = body("jira")["fields"]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        description.contains(
            "Confluence: https://acme.atlassian.net/wiki/spaces/OPS/pages/postgres-failover"
        ),
        "{description}"
    );
    assert!(
        description.contains("AnyDesk: anydesk:123456789"),
        "{description}"
    );
    assert!(description.contains("SSH: ssh://db-01"), "{description}");

    // The incident names each ticket; the page carries the links.
    let incident = desk.incident(id).await;
    let tickets: Vec<(String, String)> = incident["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["platform"].as_str().unwrap().to_string(),
                t["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(tickets.len(), 4, "{incident}");
    let servicenow = incident["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["platform"] == "servicenow")
        .unwrap()
        .clone();
    assert!(
        servicenow["id"].as_str().unwrap().starts_with("INC00"),
        "{servicenow}"
    );
    assert!(
        servicenow["url"]
            .as_str()
            .unwrap()
            .contains("incident.do?sys_id=")
    );
    let jira = incident["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["platform"] == "jira")
        .unwrap()
        .clone();
    assert_eq!(
        jira["url"],
        format!(
            "{}/jira/browse/{}",
            desk.helpdesk.url,
            jira["id"].as_str().unwrap()
        )
    );
    assert_eq!(
        incident["links"],
        json!([
            { "kind": "kb", "title": "Confluence", "url": "https://acme.atlassian.net/wiki/spaces/OPS/pages/postgres-failover" },
            { "kind": "remote", "title": "AnyDesk", "url": "anydesk:123456789" },
            { "kind": "remote", "title": "SSH", "url": "ssh://db-01" },
        ])
    );
    let page = desk.smtp.to("alice@example.com");
    assert_eq!(page.len(), 1);
    assert!(
        page[0].text().contains("AnyDesk: anydesk:123456789"),
        "{}",
        page[0].text()
    );
    assert!(
        page[0]
            .text()
            .contains("Confluence: https://acme.atlassian.net")
    );
    let dashboard = desk
        .tocsin
        .client
        .get(format!("{}/dashboard/panel", desk.tocsin.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dashboard.contains("href=\"anydesk:123456789\""),
        "{dashboard}"
    );
    assert!(dashboard.contains(&format!("jira {}", jira["id"].as_str().unwrap())));

    // The same alert again, and a P3: no second ticket, none for the P3.
    desk.p1("db-01").await;
    desk.tocsin
        .ingest_ok(
            "generic",
            &crate::harness::generic("web-9", "disk", "warning"),
        )
        .await;
    desk.advance(60).await;
    for platform in PLATFORMS {
        assert_eq!(
            desk.creates(platform),
            1,
            "{platform}: {:?}",
            desk.calls(platform)
        );
    }
}

#[tokio::test]
async fn escalation_runbook_output_and_ack_become_internal_notes_and_resolving_solves() {
    let runbooks = tempfile::tempdir().unwrap();
    std::fs::write(
        runbooks.path().join("check-replication.toml"),
        "command = [\"/bin/sh\", \"-c\", \"echo replica lag 0s\"]\nmatch = ['check=\"postgres\"']\n",
    )
    .unwrap();
    let extra = format!(
        "[runbooks]\ndir = \"{}\"\nenabled = [\"check-replication\"]\n",
        runbooks.path().display()
    );
    let desk = Desk::start(&extra).await;
    let id = desk.p1("db-02").await;
    desk.tocsin.tick().await;
    // The runbook is a real child process: wait for its result on the timeline.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !desk.incident(id).await["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "runbook_success")
    {
        assert!(Instant::now() < deadline, "the runbook never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    desk.advance(10 * 60).await; // L2 is paged
    let (status, _) = desk
        .tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/ack"),
            json!({ "note": "failing over" }),
        )
        .await;
    assert_eq!(status, 200);
    desk.tocsin.tick().await;
    let (status, _) = desk
        .tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({ "note": "replica promoted" }),
        )
        .await;
    assert_eq!(status, 200);
    desk.tocsin.tick().await;
    assert_eq!(desk.helpdesk.violations(), Vec::<String>::new());

    let zendesk: Vec<String> = desk
        .helpdesk
        .calls_to("zendesk")
        .iter()
        .skip(1)
        .filter_map(|call| {
            call.body["ticket"]["comment"]["body"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let noted = |needle: &str| zendesk.iter().any(|note| note.contains(needle));
    assert!(noted("L1 paged: alice"), "{zendesk:#?}");
    assert!(noted("replica lag 0s"), "{zendesk:#?}");
    assert!(noted("L2 paged: carol"), "{zendesk:#?}");
    assert!(
        noted("acknowledged by oncall: failing over"),
        "{zendesk:#?}"
    );
    let calls = desk.helpdesk.calls_to("zendesk");
    assert_eq!(
        calls.last().unwrap().body,
        json!({ "ticket": { "status": "solved" } })
    );
    let resolution = calls[calls.len() - 2].body["ticket"]["comment"]["body"].clone();
    assert!(
        resolution
            .as_str()
            .unwrap()
            .contains("resolved by oncall: replica promoted"),
        "{resolution}"
    );

    // Every platform: the ticket first, notes after, the solve last.
    let freshdesk = desk.calls("freshdesk");
    assert_eq!(freshdesk.first().unwrap().1, "/api/v2/tickets");
    assert_eq!(freshdesk.last().unwrap().0, Method::PUT);
    assert!(
        freshdesk
            .iter()
            .filter(|(_, path)| path.ends_with("/notes"))
            .count()
            >= 5
    );
    let servicenow = desk.helpdesk.calls_to("servicenow");
    assert_eq!(servicenow.last().unwrap().body["state"], "6");
    assert!(
        servicenow.last().unwrap().body["close_notes"]
            .as_str()
            .unwrap()
            .contains("replica promoted")
    );
    assert_eq!(
        servicenow.last().unwrap().body["close_code"],
        "Solved (Permanently)"
    );
    assert!(servicenow.iter().any(|c| {
        c.body["work_notes"]
            .as_str()
            .is_some_and(|n| n.contains("L2 paged"))
    }));
    let jira = desk.calls("jira");
    let n = jira.len();
    assert!(
        jira[n - 2].1.ends_with("/transitions") && jira[n - 2].0 == Method::GET,
        "{jira:?}"
    );
    assert!(
        jira[n - 1].1.ends_with("/transitions") && jira[n - 1].0 == Method::POST,
        "{jira:?}"
    );
    let timeline = timeline_kinds(&desk.incident(id).await);
    assert_eq!(
        timeline.iter().filter(|k| *k == "ticket_solved").count(),
        4,
        "{timeline:?}"
    );
}

#[tokio::test]
async fn a_helpdesk_outage_delays_the_ticket_never_the_page_and_survives_a_restart() {
    let desk = Desk::start("").await;
    desk.helpdesk.failing.store(true, Ordering::SeqCst);
    let id = desk.p1("db-03").await;
    desk.tocsin.tick().await;
    // The page went out at once, while every ticket call was refused.
    assert_eq!(desk.smtp.to("alice@example.com").len(), 1);
    assert!(desk.helpdesk.refused.load(Ordering::SeqCst) >= 4);
    for _ in 0..12 {
        desk.advance(10).await; // two minutes of 500s
    }
    let refused = desk.helpdesk.refused.load(Ordering::SeqCst);
    assert!(
        refused >= 4 * 4,
        "only {refused} calls were tried during the outage"
    );
    assert_eq!(desk.incident(id).await["tickets"], json!([]));
    assert!(
        desk.incident(id).await["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "ticket_retry" && e["message"].as_str().unwrap().contains("500"))
    );

    // The queued calls are rows: a restart in the middle of the outage loses none.
    let Desk {
        tocsin,
        smtp,
        helpdesk,
    } = desk;
    let desk = Desk {
        tocsin: tocsin.restart().await,
        smtp,
        helpdesk,
    };
    desk.helpdesk.failing.store(false, Ordering::SeqCst);
    desk.advance(60).await;
    // A retried create searches first. Freshdesk's search may miss a ticket for 5
    // minutes, so until then its create waits for a ticket a lost attempt opened.
    assert_eq!(desk.creates("freshdesk"), 0);
    for _ in 0..2 {
        desk.advance(60).await;
    }
    for platform in PLATFORMS {
        assert_eq!(desk.creates(platform), 1, "{platform}");
    }
    assert_eq!(
        desk.incident(id).await["tickets"].as_array().unwrap().len(),
        4
    );
    // The L1 note queued behind the create during the outage follows it, in order.
    for platform in PLATFORMS {
        // A retried create searches first: writes are in order.
        let calls: Vec<_> = desk
            .helpdesk
            .calls_to(platform)
            .into_iter()
            .filter(|call| call.method != Method::GET)
            .collect();
        assert!(
            is_create(&calls[0].path),
            "{platform}: {:?}",
            desk.calls(platform)
        );
        assert!(
            calls[1].body.to_string().contains("L1 paged: alice"),
            "{platform}: {}",
            calls[1].body
        );
    }
    desk.advance(120).await;
    for platform in PLATFORMS {
        assert_eq!(desk.creates(platform), 1, "{platform} got a second ticket");
    }
    assert_eq!(desk.smtp.to("alice@example.com").len(), 1, "paged twice");
    assert_eq!(desk.helpdesk.violations(), Vec::<String>::new());
}

/// Posts a webhook to Tocsin.
async fn webhook(
    tocsin: &Harness,
    platform: &str,
    body: &Value,
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut request = tocsin
        .client
        .post(format!("{}/api/v1/tickets/{platform}/webhook", tocsin.url))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn ticket_id(incident: &Value, platform: &str) -> String {
    incident["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["platform"] == platform)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_solved_webhook_from_the_platform_resolves_the_incident() {
    let desk = Desk::start("").await;
    let id = desk.p1("db-04").await;
    desk.tocsin.tick().await;
    let zendesk_ticket = ticket_id(&desk.incident(id).await, "zendesk");
    let solved = json!({
        "type": "zen:event-type:ticket.status_changed",
        "detail": { "id": zendesk_ticket, "status": "SOLVED", "priority": "URGENT" },
        "event": { "current": "SOLVED", "previous": "OPEN" }
    });
    let stamp = "2026-11-29T03:05:00Z".to_string();
    let signature = tocsin::ticket::zendesk::sign(
        "zendesk-webhook-secret",
        &stamp,
        solved.to_string().as_bytes(),
    );
    let forged =
        tocsin::ticket::zendesk::sign("not-the-secret", &stamp, solved.to_string().as_bytes());

    let (status, reply) = webhook(
        &desk.tocsin,
        "zendesk",
        &solved,
        &[
            ("x-zendesk-webhook-signature", forged),
            ("x-zendesk-webhook-signature-timestamp", stamp.clone()),
        ],
    )
    .await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(desk.incident(id).await["status"], "triggered");

    let (status, reply) = webhook(
        &desk.tocsin,
        "zendesk",
        &solved,
        &[
            ("x-zendesk-webhook-signature", signature),
            ("x-zendesk-webhook-signature-timestamp", stamp),
        ],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["applied"], json!(["resolved"]));
    let incident = desk.incident(id).await;
    assert_eq!(incident["status"], "resolved");
    let resolved = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "resolved")
        .unwrap()
        .clone();
    assert_eq!(resolved["actor"], "zendesk");
    desk.tocsin.tick().await;
    // The other platforms' tickets are solved; Zendesk's own is not solved again.
    assert!(
        desk.helpdesk
            .calls_to("zendesk")
            .iter()
            .all(|call| call.body["ticket"]["status"] != "solved"),
        "Tocsin echoed Zendesk's own solve back to it"
    );
    assert_eq!(
        desk.helpdesk.calls_to("freshdesk").last().unwrap().body["status"],
        4
    );

    // Jira: a signed issue_updated into a "done" status resolves another incident;
    // a Freshdesk priority change to Urgent raises a P2 to P1; strangers are refused.
    let other = desk.p1("db-05").await;
    desk.tocsin.tick().await;
    let key = ticket_id(&desk.incident(other).await, "jira");
    let done = json!({
        "webhookEvent": "jira:issue_updated",
        "issue": { "key": key, "fields": { "status": { "name": "Resolved", "statusCategory": { "key": "done" } } } },
        "changelog": { "items": [ { "field": "status", "toString": "Resolved" } ] }
    });
    let hub = format!(
        "sha256={}",
        tocsin::webhook_auth::sign("jira-webhook-secret", None, done.to_string().as_bytes())
    );
    let (status, reply) = webhook(&desk.tocsin, "jira", &done, &[("x-hub-signature", hub)]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(desk.incident(other).await["status"], "resolved");

    let p2 = desk
        .tocsin
        .ingest_ok(
            "generic",
            &crate::harness::generic("app-7", "http", "error"),
        )
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    desk.tocsin.tick().await;
    let freshdesk_ticket = ticket_id(&desk.incident(p2).await, "freshdesk");
    let urgent = json!({ "freshdesk_webhook": { "ticket_id": freshdesk_ticket, "ticket_status": "Open", "ticket_priority": "Urgent" } });
    let (status, _) = webhook(
        &desk.tocsin,
        "freshdesk",
        &urgent,
        &[("authorization", "Bearer wrong-secret".into())],
    )
    .await;
    assert_eq!(status, 401);
    let (status, reply) = webhook(
        &desk.tocsin,
        "freshdesk",
        &urgent,
        &[("authorization", "Bearer freshdesk-webhook-secret".into())],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(desk.incident(p2).await["priority"], "P1");
    // The raise reaches the other platforms' tickets, not Freshdesk's own.
    desk.tocsin.tick().await;
    let zendesk = desk.helpdesk.calls_to("zendesk");
    assert!(
        zendesk
            .iter()
            .any(|c| c.body == json!({ "ticket": { "priority": "urgent" } })),
        "{:?}",
        desk.calls("zendesk")
    );
    assert!(
        desk.helpdesk
            .calls_to("freshdesk")
            .iter()
            .all(|c| c.method != Method::PUT || c.body.get("priority").is_none()),
        "Freshdesk heard back its own priority change"
    );

    // ServiceNow sends the whole record each time: the same priority and assignee
    // twice note the assignee once and change nothing else.
    let number = ticket_id(&desk.incident(p2).await, "servicenow");
    let record = json!({ "number": number, "state": "2", "priority": "1", "assigned_to": "Beth" });
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "servicenow:servicenow-webhook-secret"
        )
    );
    for expected in [json!(["noted assignee"]), json!([])] {
        let (status, reply) = webhook(
            &desk.tocsin,
            "servicenow",
            &record,
            &[("authorization", basic.clone())],
        )
        .await;
        assert_eq!(
            (status, reply["applied"].clone()),
            (200, expected),
            "{reply}"
        );
    }
    let notes = desk.incident(p2).await["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "note")
        .count();
    assert_eq!(notes, 1);

    let stranger =
        json!({ "freshdesk_webhook": { "ticket_id": 999999, "ticket_status": "Resolved" } });
    let (status, reply) = webhook(
        &desk.tocsin,
        "freshdesk",
        &stranger,
        &[("authorization", "Bearer freshdesk-webhook-secret".into())],
    )
    .await;
    assert_eq!(
        (status, reply["incident_id"].clone()),
        (200, Value::Null),
        "{reply}"
    );
    assert_eq!(desk.helpdesk.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_before_it_is_retried() {
    let desk = Desk::start("").await;
    desk.helpdesk.losing.store(true, Ordering::SeqCst);
    let id = desk.p1("db-05").await;
    desk.tocsin.tick().await;
    for platform in PLATFORMS {
        assert_eq!(desk.creates(platform), 1, "{platform} was asked once");
    }
    assert_eq!(
        desk.incident(id).await["tickets"],
        json!([]),
        "no answer came back"
    );
    desk.helpdesk.losing.store(false, Ordering::SeqCst);
    // Freshdesk's and Jira's searches lag behind their creates: not found is not
    // taken for "never created" until that lag has passed.
    desk.helpdesk.unindexed.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        desk.advance(10).await;
    }
    let incident = desk.incident(id).await;
    let mut open: Vec<&str> = incident["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ticket| ticket["platform"].as_str())
        .collect();
    open.sort_unstable();
    assert_eq!(open, ["servicenow", "zendesk"], "{incident}");
    assert!(
        incident
            .to_string()
            .contains("searched again before another is opened")
    );
    desk.helpdesk.unindexed.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        desk.advance(30).await;
    }
    // Every platform is searched by the id Tocsin gave the ticket, and keeps one.
    for platform in PLATFORMS {
        assert_eq!(
            desk.creates(platform),
            1,
            "{platform}: {:?}",
            desk.calls(platform)
        );
        assert!(
            desk.calls(platform)
                .iter()
                .any(|(method, _)| *method == Method::GET),
            "{platform} was searched first"
        );
    }
    let incident = desk.incident(id).await;
    let tickets = incident["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 4, "{incident}");
    let zendesk = tickets.iter().find(|t| t["platform"] == "zendesk").unwrap();
    assert!(zendesk["url"].as_str().unwrap().contains("/agent/tickets/"));
    assert!(incident.to_string().contains("answer was lost"));
    assert!(
        desk.helpdesk.violations().is_empty(),
        "{:?}",
        desk.helpdesk.violations()
    );
}
