//! Paging end to end: a real SMTP server, a real HTTP SMS gateway, a moved clock.

use crate::harness::{Harness, RESPONDER, generic};
use crate::sms_gateway::SmsGateway;
use crate::smtp_sink::SmtpSink;
use chrono::TimeDelta;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

struct Paging {
    tocsin: Harness,
    smtp: SmtpSink,
    sms: SmsGateway,
}

const ALICE_PHONE: &str = "+33600000001";
const CAROL_PHONE: &str = "+33600000003";

fn config(smtp: &SmtpSink, sms: &SmsGateway, extra: &str) -> String {
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
    async fn start(extra: &str) -> Self {
        let smtp = SmtpSink::start().await;
        let sms = SmsGateway::start().await;
        let tocsin = Harness::start(&config(&smtp, &sms, extra)).await;
        Self { tocsin, smtp, sms }
    }

    async fn p1(&self, resource: &str) -> i64 {
        let reply = self
            .tocsin
            .ingest_ok("generic", &generic(resource, "postgres", "critical"))
            .await;
        reply["alerts"][0]["incident_id"].as_i64().unwrap()
    }

    /// `times` P2 incidents on web-1 that the sender resolves 2 minutes in, 22 minutes
    /// apart (too slow to count as flapping).
    async fn self_healing_disk(&self, times: usize) {
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

    async fn advance_minutes(&self, minutes: i64) {
        self.tocsin.clock.advance(TimeDelta::minutes(minutes));
        self.tocsin.tick().await;
    }

    fn pages(&self, user: &str) -> usize {
        self.smtp
            .to(&format!("{user}@example.com"))
            .iter()
            .filter(|m| !m.subject().starts_with("[RESOLVED]"))
            .count()
    }
}

async fn status_of(tocsin: &Harness, id: i64) -> Value {
    tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"].clone()
}

async fn timeline(tocsin: &Harness, id: i64) -> Vec<(String, String)> {
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

    let subject = paging.smtp.to("alice@example.com")[0].subject();
    assert_eq!(subject, "[P1] #1 db-01: postgres failing on db-01");
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

/// The acknowledge link of alice's page email.
fn ack_link(paging: &Paging) -> String {
    let mail = paging.smtp.to("alice@example.com")[0].text();
    let start = mail
        .find(&format!("{}/ack/", paging.tocsin.url))
        .expect("an acknowledge link");
    mail[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect()
}

#[tokio::test]
async fn opening_the_email_link_shows_the_incident_and_only_its_button_acknowledges() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let link = ack_link(&paging);
    let token = link.rsplit('/').next().unwrap().to_string();
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    let client = &paging.tocsin.client;
    let status = |id: i64| status_of(&paging.tocsin, id);

    // What a mail scanner does: fetch the link, twice.
    for _ in 0..2 {
        let page = client.get(&link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["cache-control"], "no-store");
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!("#{id} [P1] postgres on db-01")),
            "the page names the incident: {html}"
        );
        assert_eq!(html.matches("<button").count(), 1, "{html}");
        assert!(html.contains("<form method=\"post\">") && !html.contains("<script"));
    }
    assert_eq!(status(id).await, "triggered", "a GET changes nothing");
    assert!(
        !timeline(&paging.tocsin, id)
            .await
            .iter()
            .any(|(kind, _)| kind == "acknowledged")
    );

    let pressed = client.post(&link).send().await.unwrap();
    assert_eq!(pressed.status(), 200);
    assert!(
        pressed
            .text()
            .await
            .unwrap()
            .contains("acknowledged by alice")
    );
    assert_eq!(status(id).await, "acknowledged");
    assert!(timeline(&paging.tocsin, id).await.iter().any(
        |(kind, message)| kind == "acknowledged" && message.contains("alice (email link)")
    ));
    assert_eq!(
        client.post(&link).send().await.unwrap().status(),
        410,
        "a used link acts no more"
    );
    assert_eq!(
        client.get(&link).send().await.unwrap().status(),
        410,
        "and shows no button either"
    );
    assert_eq!(
        paging.sms.to(ALICE_PHONE).len(),
        1,
        "an acknowledgement pages nobody"
    );
}

#[tokio::test]
async fn a_forged_ack_link_is_refused_on_get_and_post_and_changes_nothing() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let link = ack_link(&paging);
    let mut forged = link.clone().into_bytes();
    let last = forged.len() - 5;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let client = &paging.tocsin.client;
    for response in [
        client.get(&forged).send().await.unwrap(),
        client.post(&forged).send().await.unwrap(),
        client
            .post(format!("{}/ack/not-a-token", paging.tocsin.url))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 403);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("not one Tocsin issued")
        );
    }
    assert_eq!(
        paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "triggered"
    );
    assert_eq!(
        client.post(&link).send().await.unwrap().status(),
        200,
        "the real link still works"
    );
}

#[tokio::test]
async fn an_ack_that_could_not_be_stored_leaves_the_link_usable() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let link = ack_link(&paging);
    let client = &paging.tocsin.client;
    paging.tocsin.store.failing.store(true, Ordering::SeqCst);
    let failed = client.post(&link).send().await.unwrap();
    assert_eq!(failed.status(), 503);
    assert!(failed.text().await.unwrap().contains("Nothing was changed"));
    paging.tocsin.store.failing.store(false, Ordering::SeqCst);
    assert_eq!(status_of(&paging.tocsin, id).await, "triggered");
    assert_eq!(
        client.post(&link).send().await.unwrap().status(),
        200,
        "the link is spent in the ack's own commit, not before it"
    );
    assert_eq!(status_of(&paging.tocsin, id).await, "acknowledged");
}

#[tokio::test]
async fn an_expired_link_is_gone() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let link = ack_link(&paging);
    paging.tocsin.clock.advance(TimeDelta::hours(25));
    let client = &paging.tocsin.client;
    assert_eq!(client.get(&link).send().await.unwrap().status(), 410);
    assert_eq!(client.post(&link).send().await.unwrap().status(), 410);
    assert_eq!(
        paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "triggered"
    );
}

/// Twilio's `X-Twilio-Signature`, computed here from its documented recipe rather
/// than with Tocsin's code: base64(HMAC-SHA1(auth token, URL + each parameter's
/// name and value, sorted by name)).
fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac =
        <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL the test's Twilio number posts replies to: `server.public_url` + path + query.
const INBOUND: &str = "/api/v1/sms/inbound?token=sms-inbound-token";

impl Paging {
    /// An SMS reply as Twilio delivers it: a form with its usual fields, signed.
    async fn sms_reply(&self, from: &str, text: &str) -> reqwest::Response {
        let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
        self.sms_reply_as(&sid, from, text).await
    }

    /// The same with a given `MessageSid`, as a replay would carry.
    async fn sms_reply_as(&self, sid: &str, from: &str, text: &str) -> reqwest::Response {
        let params = [
            ("MessageSid", sid),
            ("AccountSid", "AC123"),
            ("From", from),
            ("To", "+15550000000"),
            ("Body", text),
        ];
        let url = format!("{}{INBOUND}", self.tocsin.url);
        self.tocsin
            .client
            .post(&url)
            .header(
                "X-Twilio-Signature",
                twilio_signature("twilio-token", &url, &params),
            )
            .form(&params)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn an_sms_reply_from_the_on_call_phone_acknowledges_and_a_stranger_cannot() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let sms = &paging.sms.to(ALICE_PHONE)[0];
    assert!(sms.body.chars().count() <= 160);
    assert!(
        sms.body.contains(&format!("Reply ACK {id}")),
        "{}",
        sms.body
    );
    let stranger = paging.sms_reply("+19998887777", &format!("ACK {id}")).await;
    assert_eq!(stranger.status(), 403);
    assert_eq!(
        paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "triggered"
    );
    let reply = paging
        .sms_reply("+33 6 00 00 00 01", &format!("ack {id}"))
        .await;
    assert_eq!(reply.status(), 200);
    let incident = paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["status"], "acknowledged");
    assert!(
        timeline(&paging.tocsin, id)
            .await
            .iter()
            .any(|(_, message)| message.contains("alice (sms)"))
    );
    let resolve = paging.sms_reply(ALICE_PHONE, "R").await;
    assert_eq!(
        resolve.status(),
        200,
        "a bare R resolves the incident last paged to this phone"
    );
    assert_eq!(
        paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "resolved"
    );
}

const BOB_PHONE: &str = "+33600000002";

#[tokio::test]
async fn an_sms_from_bob_acts_only_on_incidents_that_paged_bob() {
    let paging = Paging::start(&format!(
        r#"
[[users]]
id = "bob"
phone = "{BOB_PHONE}"

[[escalation_policies]]
name = "bob"
tiers = [ {{ level = "L1", targets = ["user:bob"], after = "0s" }} ]

[[rules]]
name = "bob's databases"
match = ['resource="bob-db"']
escalation_policy = "bob"
"#
    ))
    .await;
    let bobs = paging.p1("bob-db").await;
    let alices = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    assert_eq!(
        paging.sms.to(BOB_PHONE).len(),
        1,
        "bob is paged for his own"
    );
    let status = |id: i64| status_of(&paging.tocsin, id);

    for text in [format!("ACK {alices}"), format!("RES {alices}")] {
        let refused = paging.sms_reply(BOB_PHONE, &text).await;
        assert_eq!(refused.status(), 403, "{text}");
        let body: Value = refused.json().await.unwrap();
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("incident #{alices} did not page this phone")),
            "{body}"
        );
    }
    assert_eq!(status(alices).await, "triggered", "alice's is untouched");
    assert_eq!(
        paging.sms_reply(BOB_PHONE, "ACK 999").await.status(),
        403,
        "nor can bob reach an incident that does not exist"
    );

    let ack = paging.sms_reply(BOB_PHONE, &format!("ACK {bobs}")).await;
    assert_eq!(ack.status(), 200);
    assert_eq!(status(bobs).await, "acknowledged");
    let bare = paging.sms_reply(BOB_PHONE, "R").await;
    assert_eq!(bare.status(), 200, "a bare R means the last page bob got");
    assert_eq!(status(bobs).await, "resolved");
    assert_eq!(status(alices).await, "triggered");
}

#[tokio::test]
async fn with_twilio_only_replies_twilio_signed_over_the_public_url_act() {
    let paging = Paging::start("").await;
    let id = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let url = format!("{}{INBOUND}", paging.tocsin.url);
    let params = [("From", ALICE_PHONE), ("Body", "ACK")];
    let post = |signature: Option<String>, url: String| {
        let mut request = paging.tocsin.client.post(url).form(&params);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        request.send()
    };
    let wrong = [
        (None, "missing"),
        (
            Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=".to_string()),
            "another request's",
        ),
        (
            Some(twilio_signature("not-the-token", &url, &params)),
            "another account's",
        ),
        (
            Some(twilio_signature(
                "twilio-token",
                &format!("{}/api/v1/sms/inbound", paging.tocsin.url),
                &params,
            )),
            "without the query",
        ),
        (
            Some(twilio_signature(
                "twilio-token",
                &url,
                &[("From", ALICE_PHONE), ("Body", "RES")],
            )),
            "another body's",
        ),
    ];
    for (signature, what) in wrong {
        let response = post(signature, url.clone()).await.unwrap();
        assert_eq!(response.status(), 401, "{what} signature");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("X-Twilio-Signature"),
            "{body}"
        );
    }
    assert_eq!(
        paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "triggered"
    );
    let json = paging
        .tocsin
        .client
        .post(&url)
        .json(&json!({ "from": ALICE_PHONE, "body": "ACK" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json.status(),
        401,
        "an unsigned JSON reply is no way around it"
    );

    let signed = post(
        Some(twilio_signature("twilio-token", &url, &params)),
        url.clone(),
    )
    .await
    .unwrap();
    assert_eq!(signed.status(), 200);
    assert_eq!(
        paging.tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "acknowledged"
    );
    let unauthenticated = paging
        .tocsin
        .client
        .post(format!("{}/api/v1/sms/inbound", paging.tocsin.url))
        .header(
            "X-Twilio-Signature",
            twilio_signature(
                "twilio-token",
                &format!("{}/api/v1/sms/inbound", paging.tocsin.url),
                &params,
            ),
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(
        unauthenticated.status(),
        401,
        "a signature does not stand in for the inbound_token when one is set"
    );
}

#[tokio::test]
async fn a_signed_reply_replayed_acts_once() {
    let paging = Paging::start("").await;
    let first = paging.p1("db-01").await;
    paging.tocsin.tick().await;
    let sid = "SM00000000000000000000000000000001";
    assert_eq!(
        paging.sms_reply_as(sid, ALICE_PHONE, "R").await.status(),
        200
    );
    assert_eq!(status_of(&paging.tocsin, first).await, "resolved");
    let second = paging.p1("db-02").await;
    paging.tocsin.tick().await;
    let replayed = paging.sms_reply_as(sid, ALICE_PHONE, "R").await;
    assert_eq!(replayed.status(), 410);
    assert_eq!(
        status_of(&paging.tocsin, second).await,
        "triggered",
        "the captured R does not resolve what paged the phone since"
    );
    assert_eq!(paging.sms_reply(ALICE_PHONE, "R").await.status(), 200);
    assert_eq!(status_of(&paging.tocsin, second).await, "resolved");
}

#[tokio::test]
async fn a_gateway_without_signatures_replies_with_its_inbound_token() {
    let smtp = SmtpSink::start().await;
    let sms = SmsGateway::start().await;
    let text = config(&smtp, &sms, "").replace(
        "provider = \"twilio\"",
        &format!("provider = \"webhook\"\nurl = \"{}/hook\"", sms.url),
    );
    let text = text
        .lines()
        .filter(|line| {
            !["base_url", "account_sid", "auth_token"]
                .iter()
                .any(|key| line.starts_with(key))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let tocsin = Harness::start(&text).await;
    let id = tocsin
        .ingest_ok("generic", &generic("db-01", "pg", "critical"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    tocsin.tick().await;
    let reply = |token: &'static str| {
        tocsin
            .client
            .post(format!("{}/api/v1/sms/inbound?token={token}", tocsin.url))
            .json(&json!({ "from": ALICE_PHONE, "body": format!("ACK {id}") }))
            .send()
    };
    assert_eq!(reply("wrong").await.unwrap().status(), 401);
    assert_eq!(reply("sms-inbound-token").await.unwrap().status(), 200);
    assert_eq!(
        tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "acknowledged"
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

/// A `[[drills]]` entry on the default policy with a 10-minute window.
fn drill(cron: &str) -> String {
    format!(
        "[[drills]]\nname = \"chain\"\ncron = \"{cron}\"\nescalation_policy = \"default\"\npriority = \"P1\"\nack_window = \"10m\"\n"
    )
}

/// A cron that fires once, `seconds` from now on the wall clock (the cron jobs run on
/// real time, in UTC).
fn cron_in(seconds: i64) -> String {
    let at = chrono::Utc::now() + TimeDelta::seconds(seconds);
    format!(
        "{} {} {} * * *",
        at.format("%-S"),
        at.format("%-M"),
        at.format("%-H")
    )
}

#[tokio::test]
async fn a_drill_from_its_cron_pages_marked_drill_and_its_ack_is_timed_outside_the_sla() {
    let paging = Paging::start(&drill(&cron_in(2))).await;
    let mut drills = Vec::new();
    for _ in 0..100 {
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
        cron_in(2)
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

    // The cron queues last month's review (the test clock is in November).
    let mut mails = Vec::new();
    for _ in 0..100 {
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
    store
        .finish_notification(row, "first", &failed, clock.now())
        .await
        .unwrap();
    store
        .finish_notification(row, "second", &Delivery::Sent, clock.now())
        .await
        .unwrap();
    let delivered = store.delivered_pages(id).await.unwrap();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
}

#[tokio::test]
async fn pages_reuse_one_relay_connection_and_survive_the_relay_hanging_up() {
    let paging = Paging::start("").await;
    paging.p1("db-01").await;
    paging.tocsin.tick().await;
    paging.p1("db-02").await;
    paging.tocsin.tick().await;
    assert_eq!(paging.smtp.to("alice@example.com").len(), 2);
    assert_eq!(
        paging.smtp.connections.load(Ordering::SeqCst),
        1,
        "the second page goes over the first page's connection"
    );
    // The relay drops its idle clients: the next page finds the kept connection dead
    // (its NOOP fails) and goes over a new one, once.
    paging.smtp.hang_up_all();
    paging.p1("db-03").await;
    paging.tocsin.tick().await;
    let pages = paging.smtp.to("alice@example.com");
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(paging.smtp.connections.load(Ordering::SeqCst), 2);
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
