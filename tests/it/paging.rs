//! Paging end to end: tiers on time, acks, retries and fallbacks, restarts and claims,
//! against a real SMTP server, a real HTTP SMS gateway and a moved clock.

use crate::harness::{Harness, RESPONDER, generic};
use crate::sms_gateway::SmsGateway;
use crate::smtp_sink::SmtpSink;
use chrono::TimeDelta;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// Tocsin with a real SMTP server and a real HTTP SMS gateway behind it.
pub(crate) struct Paging {
    pub(crate) tocsin: Harness,
    pub(crate) smtp: SmtpSink,
    pub(crate) sms: SmsGateway,
}

pub(crate) const ALICE_PHONE: &str = "+33600000001";
pub(crate) const CAROL_PHONE: &str = "+33600000003";

/// Email, Twilio SMS, three users and a three-tier policy; `extra` is appended.
pub(crate) fn config(smtp: &SmtpSink, sms: &SmsGateway, extra: &str) -> String {
    format!(
        r#"
[email]
transport = "smtp"
host = "127.0.0.1"
port = {port}
from = "tocsin@example.com"

[sms]
provider = "twilio"
base_url = "{sms_url}"
account_sid = "AC123"
auth_token = "twilio-token"
from = "+15550000000"
inbound_token = "sms-inbound-token"

[[users]]
id = "alice"
name = "Alice Martin"
email = "alice@example.com"
phone = "{ALICE_PHONE}"
notify = [ {{ channel = "email", after = "0s" }}, {{ channel = "sms", after = "0s", min_priority = "P2" }} ]

[[users]]
id = "carol"
email = "carol@example.com"
phone = "{CAROL_PHONE}"

[[users]]
id = "dave"
email = "dave@example.com"

[[schedules]]
name = "primary"
time_zone = "Europe/Paris"
rotation = {{ every = "1w", handoff = "Mon 09:00", users = ["alice"] }}

[[escalation_policies]]
name = "default"
tiers = [
  {{ level = "L1", targets = ["schedule:primary"], after = "0s" }},
  {{ level = "L2", targets = ["user:carol"], after = "10m" }},
  {{ level = "L3", targets = ["user:dave"], after = "20m" }},
]
{extra}
"#,
        port = smtp.port,
        sms_url = sms.url,
    )
}

impl Paging {
    pub(crate) async fn start(extra: &str) -> Self {
        let smtp = SmtpSink::start().await;
        let sms = SmsGateway::start().await;
        let tocsin = Harness::start(&config(&smtp, &sms, extra)).await;
        Self { tocsin, smtp, sms }
    }

    pub(crate) async fn p1(&self, resource: &str) -> i64 {
        let reply = self
            .tocsin
            .ingest_ok("generic", &generic(resource, "postgres", "critical"))
            .await;
        reply["alerts"][0]["incident_id"].as_i64().unwrap()
    }

    /// `times` P2 incidents on web-1 that the sender resolves 2 minutes in, 22 minutes
    /// apart (too slow to count as flapping).
    pub(crate) async fn self_healing_disk(&self, times: usize) {
        let resolved = json!({ "resource": "web-1", "check": "disk-flap", "status": "resolved", "summary": "recovered" });
        for _ in 0..times {
            self.tocsin
                .ingest_ok("generic", &generic("web-1", "disk-flap", "error"))
                .await;
            self.tocsin.tick().await;
            self.advance_minutes(2).await;
            self.tocsin
                .ingest_ok("generic", resolved.to_string().as_bytes())
                .await;
            self.advance_minutes(20).await;
        }
    }

    pub(crate) async fn advance_minutes(&self, minutes: i64) {
        self.tocsin.clock.advance(TimeDelta::minutes(minutes));
        self.tocsin.tick().await;
    }

    pub(crate) fn pages(&self, user: &str) -> usize {
        self.smtp
            .to(&format!("{user}@example.com"))
            .iter()
            .filter(|m| !m.subject().starts_with("[RESOLVED]"))
            .count()
    }
}

pub(crate) async fn status_of(tocsin: &Harness, id: i64) -> Value {
    tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"].clone()
}

pub(crate) async fn timeline(tocsin: &Harness, id: i64) -> Vec<(String, String)> {
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A cron that fires once, `seconds` from now on the wall clock (the cron jobs run on
/// real time, in UTC).
pub(crate) fn cron_in(seconds: i64) -> String {
    let at = chrono::Utc::now() + TimeDelta::seconds(seconds);
    format!(
        "{} {} {} * * *",
        at.format("%-S"),
        at.format("%-M"),
        at.format("%-H")
    )
}

#[tokio::test]
async fn tiers_page_on_time_once_each_and_an_ack_stops_the_rest() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    assert_eq!(paging.pages("alice"), 1, "L1 by email at once");
    assert_eq!(
        paging.sms.to(ALICE_PHONE).len(),
        1,
        "and by SMS, P1 meets min_priority P2"
    );
    assert_eq!(paging.pages("carol"), 0);

    paging.advance_minutes(9).await;
    assert_eq!(paging.pages("carol"), 0, "L2 waits its 10 minutes");
    paging.advance_minutes(1).await;
    assert_eq!(paging.pages("carol"), 1, "L2 at minute 10");
    assert_eq!(
        paging.sms.to(CAROL_PHONE).len(),
        1,
        "carol has no rules: every channel she has"
    );
    let incident = paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["escalation_level"], "L2");

    paging.advance_minutes(2).await;
    let (status, _) = paging
        .tocsin
        .post_as(RESPONDER, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(status, 200);
    for _ in 0..4 {
        paging.advance_minutes(10).await;
    }
    assert_eq!(paging.pages("dave"), 0, "the ack at minute 12 stopped L3");
    assert_eq!(
        (paging.pages("alice"), paging.pages("carol")),
        (1, 1),
        "nobody paged twice"
    );
    assert_eq!(
        paging
            .tocsin
            .metric(r#"tocsin_escalations_total{level="L2"}"#)
            .await,
        1.0
    );
    assert_eq!(
        paging
            .tocsin
            .metric(r#"tocsin_notifications_total{channel="email",outcome="sent"}"#)
            .await,
        2.0
    );

    let page = &paging.smtp.to("alice@example.com")[0];
    assert_eq!(page.subject(), "[P1] #1 db-01: postgres failing on db-01");
    // What receiving servers check before they accept a message (RFC 5322 3.6).
    for header in ["Message-ID: <", "Date: ", "From: "] {
        assert!(
            page.data.lines().any(|line| line.starts_with(header)),
            "{header}: {}",
            page.data
        );
    }
    let kinds: Vec<String> = timeline(&paging.tocsin, id)
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    assert!(
        kinds.contains(&"escalated".to_string()) && kinds.contains(&"notified".to_string()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn without_an_ack_l3_is_paged_thirty_minutes_in_and_resolving_tells_everyone() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    paging.advance_minutes(10).await;
    paging.advance_minutes(19).await;
    assert_eq!(paging.pages("dave"), 0);
    paging.advance_minutes(1).await;
    assert_eq!(paging.pages("dave"), 1, "L3 at minute 30");
    paging.advance_minutes(60).await;
    assert_eq!(paging.pages("dave"), 1, "repeat = 0: the policy runs once");

    let (status, _) = paging
        .tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    paging.tocsin.tick().await;
    for user in ["alice", "carol", "dave"] {
        let notices: Vec<_> = paging
            .smtp
            .to(&format!("{user}@example.com"))
            .into_iter()
            .filter(|m| m.subject().starts_with("[RESOLVED] #1"))
            .collect();
        assert_eq!(notices.len(), 1, "{user} is told once");
    }
    assert!(
        paging
            .sms
            .to(ALICE_PHONE)
            .iter()
            .any(|sms| sms.body.starts_with("[RESOLVED] #1"))
    );
}

#[tokio::test]
async fn with_smtp_down_for_five_minutes_the_page_arrives_when_it_returns_once() {
    let paging = Paging::start("").await;
    paging.smtp.down.store(true, Ordering::SeqCst);
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    for _ in 0..5 {
        paging.advance_minutes(1).await;
    }
    assert_eq!(paging.pages("alice"), 0);
    let retries = timeline(&paging.tocsin, id)
        .await
        .iter()
        .filter(|(kind, _)| kind == "notification_retry")
        .count();
    assert!(retries >= 5, "every attempt is on the timeline: {retries}");
    paging.smtp.down.store(false, Ordering::SeqCst);
    paging.advance_minutes(1).await;
    paging.advance_minutes(1).await;
    assert_eq!(
        paging.pages("alice"),
        1,
        "delivered once when the server is back"
    );
    assert!(
        paging
            .tocsin
            .metric(r#"tocsin_notifications_total{channel="email",outcome="retry"}"#)
            .await
            >= 5.0
    );
}

#[tokio::test]
async fn a_failing_sms_gateway_falls_back_to_email_after_three_attempts() {
    let paging = Paging::start("").await;
    paging.sms.failing.store(true, Ordering::SeqCst);
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    for _ in 0..3 {
        paging.advance_minutes(1).await;
    }
    let lines = timeline(&paging.tocsin, id).await;
    assert!(
        lines
            .iter()
            .any(|(kind, message)| kind == "notification_fallback"
                && message.starts_with("sms L1 page to alice")
                && message.ends_with("also trying email")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_restart_between_l1_and_l2_still_pages_l2_on_time_once() {
    let paging = Paging::start("").await;
    paging.p1("db-01").await;
    paging.tocsin.tick().await;
    assert_eq!(paging.pages("alice"), 1);
    paging.tocsin.clock.advance(TimeDelta::minutes(5));
    let Paging { tocsin, smtp, sms } = paging;
    let tocsin = tocsin.restart().await;
    let paging = Paging { tocsin, smtp, sms };
    paging.advance_minutes(4).await;
    assert_eq!(paging.pages("carol"), 0);
    paging.advance_minutes(1).await;
    assert_eq!(
        paging.pages("carol"),
        1,
        "L2 at minute 10 after the restart"
    );
    paging.advance_minutes(1).await;
    assert_eq!(
        (paging.pages("alice"), paging.pages("carol")),
        (1, 1),
        "nothing re-sent after the restart"
    );
}

#[tokio::test]
async fn clock_jumps_neither_page_twice_nor_burst_through_the_tiers() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    assert_eq!(paging.pages("alice"), 1);
    // The host clock steps back an hour (an NTP correction): nothing is due again.
    paging.advance_minutes(-60).await;
    paging.advance_minutes(5).await;
    assert_eq!((paging.pages("alice"), paging.pages("carol")), (1, 0));
    // Then it leaps two hours ahead: the overdue L2 pages once, and L3 still gets its
    // own 20 minutes after that, not a burst of every tier at once.
    paging.advance_minutes(120).await;
    paging.advance_minutes(1).await;
    assert_eq!(
        (
            paging.pages("alice"),
            paging.pages("carol"),
            paging.pages("dave")
        ),
        (1, 1, 0)
    );
    paging.advance_minutes(20).await;
    assert_eq!(
        (
            paging.pages("alice"),
            paging.pages("carol"),
            paging.pages("dave")
        ),
        (1, 1, 1)
    );
    let kinds: Vec<String> = timeline(&paging.tocsin, id)
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "escalated").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "sla_breach").count(),
        2,
        "response and resolution, once each: {kinds:?}"
    );
}

#[tokio::test]
async fn an_alert_storm_on_one_incident_pages_each_person_once() {
    let paging = Paging::start("[[rules]]\nname = \"per host\"\nmatch = ['resource=\"db-01\"']\ngroup_by = [\"resource\"]\n").await;
    for chunk in 0..20 {
        let alerts: Vec<Value> = (0..500)
            .map(|i| json!({ "resource": "db-01", "check": format!("check-{chunk}-{i}"), "severity": "critical", "summary": "storm" }))
            .collect();
        paging
            .tocsin
            .ingest_ok(
                "generic",
                serde_json::to_string(&alerts).unwrap().as_bytes(),
            )
            .await;
    }
    paging.tocsin.tick().await;
    let incidents = paging.tocsin.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["alert_count"], 10_000);
    assert_eq!(paging.pages("alice"), 1);
    assert_eq!(paging.sms.to(ALICE_PHONE).len(), 1);
}

#[tokio::test]
async fn escalate_jumps_a_tier_and_oncall_shows_who_is_on_call() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let (status, incident) = paging
        .tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/escalate"),
            json!({"note": "need a DBA"}),
        )
        .await;
    assert_eq!(status, 200, "{incident}");
    assert_eq!(incident["escalation_level"], "L2");
    paging.tocsin.tick().await;
    assert_eq!(paging.pages("carol"), 1);
    paging.advance_minutes(10).await;
    assert_eq!(
        paging.pages("carol"),
        1,
        "the jumped tier is not paged again"
    );

    let oncall = paging.tocsin.get("/api/v1/oncall").await;
    assert_eq!(oncall["schedules"][0]["now"]["user"], "alice");
    assert_eq!(oncall["schedules"][0]["time_zone"], "Europe/Paris");
    assert_eq!(oncall["policies"][0]["tiers"][1]["users"][0], "carol");
}

#[tokio::test]
async fn without_anybody_on_call_a_tier_is_skipped_and_the_timeline_says_so() {
    let smtp = SmtpSink::start().await;
    let sms = SmsGateway::start().await;
    let extra = "[[escalation_policies]]\nname = \"empty first\"\ntiers = [ { level = \"L1\", targets = [\"schedule:ghosts\"] }, { level = \"L2\", targets = [\"user:dave\"] } ]\n[[schedules]]\nname = \"ghosts\"\nrotation = { every = \"1d\", handoff = \"09:00\", users = [\"nobody\"] }\n[[users]]\nid = \"nobody\"\n[[rules]]\nname = \"r\"\nmatch = ['resource=\"x\"']\nescalation_policy = \"empty first\"\n";
    let tocsin = Harness::start(&config(&smtp, &sms, extra)).await;
    let reply = tocsin
        .ingest_ok("generic", &generic("x", "c", "critical"))
        .await;
    tocsin.tick().await;
    let id = reply["alerts"][0]["incident_id"].as_i64().unwrap();
    let lines = timeline(&tocsin, id).await;
    assert!(
        lines
            .iter()
            .any(|(kind, message)| kind == "escalation_skipped" && message.starts_with("L1")),
        "{lines:?}"
    );
    assert_eq!(
        smtp.to("dave@example.com").len(),
        1,
        "L2 paged at once instead"
    );
}

#[tokio::test]
async fn an_acknowledged_incident_not_resolved_within_ack_timeout_pages_again() {
    let smtp = SmtpSink::start().await;
    let sms = SmsGateway::start().await;
    let extra = "[[escalation_policies]]\nname = \"patient\"\nack_timeout = \"1h\"\ntiers = [ { level = \"L1\", targets = [\"user:dave\"] } ]\n[[rules]]\nname = \"r\"\nmatch = ['resource=\"x\"']\nescalation_policy = \"patient\"\n";
    let tocsin = Harness::start(&config(&smtp, &sms, extra)).await;
    let reply = tocsin
        .ingest_ok("generic", &generic("x", "c", "critical"))
        .await;
    let id = reply["alerts"][0]["incident_id"].as_i64().unwrap();
    tocsin.tick().await;
    assert_eq!(smtp.to("dave@example.com").len(), 1);
    let (status, _) = tocsin
        .post_as(RESPONDER, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(status, 200);
    tocsin.clock.advance(TimeDelta::minutes(59));
    tocsin.tick().await;
    assert_eq!(
        tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "acknowledged"
    );
    tocsin.clock.advance(TimeDelta::minutes(1));
    tocsin.tick().await;
    assert_eq!(
        tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "triggered"
    );
    assert_eq!(
        smtp.to("dave@example.com").len(),
        2,
        "paged again after the ack timeout"
    );
    assert!(
        timeline(&tocsin, id)
            .await
            .iter()
            .any(|(kind, _)| kind == "retriggered")
    );
}

#[tokio::test]
async fn a_second_sms_provider_takes_over_and_chat_webhooks_get_json() {
    let smtp = SmtpSink::start().await;
    let sms = SmsGateway::start().await;
    let text = config(&smtp, &sms, "");
    let (before, rest) = text.split_once("[sms]\n").unwrap();
    let (_, after) = rest.split_once("inbound_token").unwrap();
    let providers = format!(
        "[sms]\nproviders = [ {{ provider = \"twilio\", base_url = \"{0}\", account_sid = \"AC123\", auth_token = \"t\", from = \"+1555\" }}, {{ provider = \"webhook\", url = \"{0}/hook\" }} ]\ninbound_token",
        sms.url
    );
    let text = format!("{before}{providers}{after}").replace(
        "id = \"dave\"\nemail = \"dave@example.com\"",
        &format!("id = \"dave\"\nwebhook = \"{}/hook\"", sms.url),
    );
    let tocsin = Harness::start(&text).await;
    sms.failing.store(true, Ordering::SeqCst);
    let id = tocsin
        .ingest_ok("generic", &generic("db-01", "pg", "critical"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    tocsin.tick().await;
    let hooks = sms.hooks.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["to"], ALICE_PHONE);
    assert!(
        timeline(&tocsin, id)
            .await
            .iter()
            .any(|(_, message)| message.contains("sent via webhook"))
    );
    for minutes in [10, 20] {
        tocsin.clock.advance(TimeDelta::minutes(minutes));
        tocsin.tick().await;
    }
    let hooks = sms.hooks.lock().unwrap().clone();
    let chat: Vec<_> = hooks
        .iter()
        .filter(|hook| hook["event"] == "page")
        .collect();
    assert_eq!(
        chat.len(),
        1,
        "dave's L3 page went to his chat webhook: {hooks:?}"
    );
    assert_eq!(chat[0]["incident"]["id"], id);
    assert!(chat[0]["ack_url"].as_str().unwrap().contains("/ack/"));
    // The webhook URL is a credential: the timeline names the user, not the URL.
    let incident = tocsin
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .to_string();
    assert!(incident.contains("to user:dave via webhook"), "{incident}");
    assert!(!incident.contains("/hook"), "{incident}");
}

#[tokio::test]
async fn a_stuck_engine_shows_in_the_overdue_gauge() {
    let paging = Paging::start("").await;
    paging.p1("db-01").await;
    paging.tocsin.tick().await;
    paging.tocsin.store.failing.store(true, Ordering::SeqCst);
    paging.advance_minutes(11).await;
    assert_eq!(
        paging.tocsin.metric("tocsin_escalations_overdue").await,
        1.0
    );
    paging.tocsin.store.failing.store(false, Ordering::SeqCst);
    paging.tocsin.tick().await;
    assert_eq!(
        paging.tocsin.metric("tocsin_escalations_overdue").await,
        0.0
    );
    assert_eq!(
        paging.pages("carol"),
        1,
        "L2 went out once the store was back"
    );
}

#[tokio::test]
async fn a_priority_upgrade_brings_in_the_channels_the_new_priority_allows() {
    let paging = Paging::start(
        "[incidents]\nauto_open = [\"P1\", \"P2\", \"P3\"]\n[[rules]]\nname = \"per host\"\nmatch = ['resource=\"db-01\"']\ngroup_by = [\"resource\"]\n",
    )
    .await;
    paging
        .tocsin
        .ingest_ok("generic", &generic("db-01", "latency", "warning"))
        .await;
    paging.tocsin.tick().await;
    assert_eq!(
        (paging.pages("alice"), paging.sms.to(ALICE_PHONE).len()),
        (1, 0),
        "a P3 is not worth an SMS to alice"
    );
    paging
        .tocsin
        .ingest_ok("generic", &generic("db-01", "postgres", "critical"))
        .await;
    paging.tocsin.tick().await;
    let incident = paging.tocsin.incidents().await[0].clone();
    assert_eq!(incident["priority"], "P1");
    assert_eq!(
        (paging.pages("alice"), paging.sms.to(ALICE_PHONE).len()),
        (1, 1),
        "the SMS follows the upgrade, the email is not repeated"
    );
}

#[tokio::test]
async fn a_claim_taken_over_after_its_lease_cannot_be_finished_by_its_first_owner() {
    use tocsin::clock::Clock;
    use tocsin::store::paging::Delivery;
    use tocsin::store::prelude::*;
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    let store = paging.tocsin.store.clone();
    let clock = paging.tocsin.clock.clone();
    // The writer queued the L1 pages already claimed for its own outbox: still
    // leased, nobody else gets them.
    let none = store
        .claim_notifications(clock.now(), tocsin::store::CLAIM_LEASE, 64, "second")
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    // The first owner stalls past its lease; another takes the rows over.
    clock.advance(TimeDelta::seconds(6));
    let second = store
        .claim_notifications(clock.now(), tocsin::store::CLAIM_LEASE, 64, "second")
        .await
        .unwrap();
    assert_eq!(second.len(), 2, "alice's email and SMS");
    let row = second[0].id;
    let failed = Delivery::Failed {
        error: "late".into(),
    };
    crate::store_conformance::finish(&*store, row, "first", &failed, clock.now()).await;
    crate::store_conformance::finish(&*store, row, "second", &Delivery::Sent, clock.now()).await;
    let delivered = store.delivered_pages(id).await.unwrap();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
}

#[tokio::test]
async fn a_handed_page_whose_lease_ran_out_is_left_to_whoever_took_it_over() {
    use tocsin::clock::Clock;
    use tocsin::store::prelude::*;
    let paging = Paging::start("").await;
    paging.p1("db-01").await;
    // This process stalls past the lease its writer wrote the pages under; another
    // process takes them over before this one's outbox runs.
    let clock = paging.tocsin.clock.clone();
    clock.advance(TimeDelta::seconds(6));
    let other = paging
        .tocsin
        .store
        .claim_notifications(clock.now(), tocsin::store::CLAIM_LEASE, 64, "other")
        .await
        .unwrap();
    assert_eq!(other.len(), 2);
    paging.tocsin.tick().await;
    assert!(
        paging.smtp.to("alice@example.com").is_empty(),
        "sent by the process that holds them, not here"
    );
    assert!(paging.sms.to(ALICE_PHONE).is_empty());
}

/// The database goes away while a page is sent: the page went out, its outcome
/// could not be recorded, and its lease runs out. When the claim path brings it back,
/// it is recorded as sent, not sent again (review: a 15 s database freeze sent 22
/// pages twice).
#[tokio::test]
async fn a_page_sent_while_the_store_was_down_is_recorded_not_sent_again() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging
        .tocsin
        .store
        .failing_settlements
        .store(true, Ordering::SeqCst);
    paging.tocsin.tick().await;
    assert_eq!(paging.pages("alice"), 1);
    assert_eq!(paging.sms.to(ALICE_PHONE).len(), 1);
    paging
        .tocsin
        .store
        .failing_settlements
        .store(false, Ordering::SeqCst);
    paging.tocsin.clock.advance(TimeDelta::seconds(10));
    paging.tocsin.tick().await;
    paging.tocsin.clock.advance(TimeDelta::seconds(10));
    paging.tocsin.tick().await;
    assert_eq!(paging.pages("alice"), 1, "the email was not sent again");
    assert_eq!(paging.sms.to(ALICE_PHONE).len(), 1, "nor the SMS");
    let sent = timeline(&paging.tocsin, id)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "notified")
        .count();
    assert_eq!(sent, 2, "both recorded as sent once the store came back");
}

#[tokio::test]
async fn a_page_acknowledged_before_it_went_out_is_not_sent() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    let (status, _) = paging
        .tocsin
        .post_as(RESPONDER, &format!("/api/v1/incidents/{id}/ack"), json!({}))
        .await;
    assert_eq!(status, 200);
    paging.tocsin.tick().await;
    assert!(paging.smtp.to("alice@example.com").is_empty());
    assert!(paging.sms.to(ALICE_PHONE).is_empty());
    // And nothing is left to go out later.
    paging.tocsin.clock.advance(TimeDelta::minutes(1));
    paging.tocsin.tick().await;
    assert!(paging.smtp.to("alice@example.com").is_empty());
}
