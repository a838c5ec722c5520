//! SMS replies that acknowledge or resolve: only from a phone that was paged, and with
//! Twilio only when signed over the public URL.

use crate::harness::{Harness, generic};
use crate::paging::{ALICE_PHONE, Paging, config, status_of, timeline};
use crate::sms_gateway::SmsGateway;
use crate::smtp_sink::SmtpSink;
use serde_json::{Value, json};

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
