//! Voice paging end to end: calls placed through a local server speaking Twilio's
//! Calls API, and Twilio's signed callbacks coming back with the digit or the call's
//! outcome.

use crate::chat_providers::ChatProviders;
use crate::harness::{Harness, generic};
use base64::Engine;
use chrono::TimeDelta;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::sync::atomic::Ordering;

const AUTH_TOKEN: &str = "twilio-voice-token";
const ALICE_PHONE: &str = "+33600000001";

fn config(providers_url: &str) -> String {
    format!(
        r#"
[voice]
provider = "twilio"
base_url = "{providers_url}"
account_sid = "AC123"
auth_token = "{AUTH_TOKEN}"
from = "+15550000000"

[ntfy]
base_url = "{providers_url}/ntfy"

[[users]]
id = "alice"
phone = "{ALICE_PHONE}"
ntfy_topic = "alice-pager"
notify = [ {{ channel = "voice", after = "0s" }}, {{ channel = "ntfy", after = "30m" }} ]

[[users]]
id = "carol"
ntfy_topic = "carol-pager"

[[escalation_policies]]
name = "default"
tiers = [
  {{ level = "L1", targets = ["user:alice"], after = "0s" }},
  {{ level = "L2", targets = ["user:carol"], after = "10m" }},
]
"#
    )
}

async fn p1(tocsin: &Harness) -> i64 {
    let reply = tocsin
        .ingest_ok("generic", &generic("db-01", "postgres", "critical"))
        .await;
    tocsin.tick().await;
    reply["alerts"][0]["incident_id"].as_i64().unwrap()
}

/// Posts `params` to `url` (a callback URL Tocsin gave Twilio, on this instance)
/// signed as Twilio signs: base64 HMAC-SHA1 of the URL and the sorted parameters.
async fn twilio_callback(
    tocsin: &Harness,
    url: &str,
    params: &[(&str, &str)],
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = tocsin.client.post(url).form(params);
    if let Some(token) = token {
        let mut sorted = params.to_vec();
        sorted.sort();
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(url.as_bytes());
        for (name, value) in sorted {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        request = request.header("x-twilio-signature", signature);
    }
    request.send().await.unwrap()
}

async fn status(tocsin: &Harness, id: i64) -> String {
    tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Tocsin's public URL is the configured one; the test instance listens elsewhere.
fn on_instance(tocsin: &Harness, url: &str) -> String {
    let path = &url[url.find("/api/v1/voice/twilio").unwrap()..];
    format!("{}{path}", tocsin.url)
}

#[tokio::test]
async fn a_call_says_the_page_twice_and_digit_1_acknowledges_only_when_signed() {
    let twilio = ChatProviders::start().await;
    let tocsin = Harness::start(&config(&twilio.url)).await;
    let id = p1(&tocsin).await;
    let calls = twilio.to("/2010-04-01/Accounts/AC123/Calls.json");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert!(call.header("authorization").starts_with("Basic "));
    let form = call.form();
    assert_eq!(form["To"], ALICE_PHONE);
    assert_eq!(form["From"], "+15550000000");
    assert_eq!(form["StatusCallbackMethod"], "POST");
    let twiml = &form["Twiml"];
    let page = "Priority P1. Resource db-01. postgres failing on db-01.";
    assert_eq!(twiml.matches(page).count(), 2, "{twiml}");
    assert!(
        twiml.starts_with("<Response><Gather numDigits=\"1\""),
        "{twiml}"
    );
    assert!(
        twiml.contains("Press 1 to acknowledge, or 9 to escalate."),
        "{twiml}"
    );
    let action = twiml
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    assert!(
        action.contains(&format!(
            "/api/v1/voice/twilio?incident={id}&user=alice&step=L1%230"
        )),
        "{action}"
    );
    assert_eq!(form["StatusCallback"], format!("{action}&event=status"));

    // The public URL in the test config is tocsin's own, so the URL Twilio signs is
    // the one posted to.
    let url = on_instance(&tocsin, &action);
    let digit = [
        ("CallSid", "CA0123"),
        ("Digits", "1"),
        ("From", "+15550000000"),
        ("To", ALICE_PHONE),
    ];
    let unsigned = twilio_callback(&tocsin, &url, &digit, None).await;
    assert_eq!(unsigned.status(), 401);
    let forged = twilio_callback(&tocsin, &url, &digit, Some("wrong-token")).await;
    assert_eq!(forged.status(), 401);
    assert_eq!(status(&tocsin, id).await, "triggered");

    let answered = twilio_callback(&tocsin, &url, &digit, Some(AUTH_TOKEN)).await;
    assert_eq!(answered.status(), 200);
    assert_eq!(answered.headers()["content-type"], "text/xml");
    assert_eq!(
        answered.text().await.unwrap(),
        format!("<Response><Say>Incident {id} acknowledged. Goodbye.</Say><Hangup/></Response>")
    );
    assert_eq!(status(&tocsin, id).await, "acknowledged");
    let incident = tocsin
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .to_string();
    assert!(incident.contains("alice (voice)"), "{incident}");
    assert!(!incident.contains(AUTH_TOKEN), "{incident}");
}

#[tokio::test]
async fn an_unanswered_call_falls_through_to_the_next_channel_once() {
    let providers = ChatProviders::start().await;
    let tocsin = Harness::start(&config(&providers.url)).await;
    let id = p1(&tocsin).await;
    let form = providers.to("/2010-04-01/Accounts/AC123/Calls.json")[0].form();
    let url = on_instance(&tocsin, &form["StatusCallback"]);
    let ended = [("CallSid", "CA0123"), ("CallStatus", "no-answer")];
    for _ in 0..2 {
        let response = twilio_callback(&tocsin, &url, &ended, Some(AUTH_TOKEN)).await;
        assert_eq!(response.status(), 200);
    }
    tocsin.tick().await;
    tocsin.clock.advance(TimeDelta::minutes(1));
    tocsin.tick().await;
    let pushes = providers.to("/ntfy/alice-pager");
    assert_eq!(
        pushes.len(),
        1,
        "the next channel at once, not after its 30 minutes, and once"
    );
    tocsin.clock.advance(TimeDelta::minutes(31));
    tocsin.tick().await;
    assert_eq!(
        providers.to("/ntfy/alice-pager").len(),
        1,
        "its rule's own time sends nothing more"
    );
    let timeline = tocsin
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .to_string();
    assert!(
        timeline.contains("L1 page to user:alice via voice failed: the call was not answered (no-answer); also trying ntfy"),
        "{timeline}"
    );
    assert_eq!(
        timeline.matches("the call was not answered").count(),
        1,
        "Twilio's repeated callback is recorded once: {timeline}"
    );
    assert_eq!(
        tocsin
            .metric("tocsin_notifications_total{channel=\"voice\",outcome=\"failed\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_voice_provider_outage_delays_the_call_without_losing_or_repeating_it() {
    let twilio = ChatProviders::start().await;
    twilio.failing.store(true, Ordering::SeqCst);
    let tocsin = Harness::start(&config(&twilio.url)).await;
    let id = p1(&tocsin).await;
    tocsin.clock.advance(TimeDelta::seconds(30));
    tocsin.tick().await;
    assert!(
        twilio
            .to("/2010-04-01/Accounts/AC123/Calls.json")
            .is_empty()
    );
    twilio.failing.store(false, Ordering::SeqCst);
    for _ in 0..4 {
        tocsin.clock.advance(TimeDelta::seconds(30));
        tocsin.tick().await;
    }
    assert_eq!(
        twilio.to("/2010-04-01/Accounts/AC123/Calls.json").len(),
        1,
        "called once when Twilio is back"
    );
    let timeline = tocsin
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .to_string();
    assert!(
        timeline.contains("L1 page to user:alice via voice attempt 1 failed: Twilio answered 500"),
        "{timeline}"
    );
}

#[tokio::test]
async fn nine_escalates_and_a_call_heard_without_a_key_brings_in_the_next_channel() {
    let providers = ChatProviders::start().await;
    let tocsin = Harness::start(&config(&providers.url)).await;
    let id = p1(&tocsin).await;
    let form = providers.to("/2010-04-01/Accounts/AC123/Calls.json")[0].form();
    let action = form["StatusCallback"]
        .trim_end_matches("&event=status")
        .to_string();
    let url = on_instance(&tocsin, &action);

    let silent = [("CallSid", "CA0001"), ("Digits", "")];
    let answer = twilio_callback(&tocsin, &url, &silent, Some(AUTH_TOKEN)).await;
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("Nothing was pressed"));
    tocsin.tick().await;
    assert_eq!(
        providers.to("/ntfy/alice-pager").len(),
        1,
        "no key is no answer"
    );
    assert_eq!(status(&tocsin, id).await, "triggered");

    let nine = [("CallSid", "CA0002"), ("Digits", "9")];
    let answer = twilio_callback(&tocsin, &url, &nine, Some(AUTH_TOKEN)).await;
    assert_eq!(
        answer.text().await.unwrap(),
        format!(
            "<Response><Say>Incident {id} escalated to the next tier. Goodbye.</Say><Hangup/></Response>"
        )
    );
    tocsin.tick().await;
    assert_eq!(
        providers.to("/ntfy/carol-pager").len(),
        1,
        "L2 paged now, not at minute 10"
    );
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["status"], "triggered");
    assert!(incident.to_string().contains("alice (voice)"), "{incident}");
    // The same signed request again changes nothing more.
    let again = twilio_callback(&tocsin, &url, &nine, Some(AUTH_TOKEN)).await;
    assert!(again.text().await.unwrap().contains("already answered"));
}
