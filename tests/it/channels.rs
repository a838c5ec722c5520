//! The chat and push channels end to end: pages go to local servers speaking Slack's,
//! Telegram's and ntfy's documented APIs (asserted field by field), and the buttons
//! come back signed as each provider signs them.

use crate::chat_providers::{ChatProviders, SLACK_CHANNEL, SLACK_TS, Seen};
use crate::harness::{Harness, RESPONDER, generic};
use chrono::TimeDelta;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::atomic::Ordering;
use tocsin::clock::Clock;

const SIGNING_SECRET: &str = "slack-signing-secret";
const TELEGRAM_SECRET: &str = "telegram-webhook-secret";
const ALICE_SLACK: &str = "U0ALICE";
const ALICE_TELEGRAM: i64 = 111_222_333;

fn config(providers_url: &str, channel: &str) -> String {
    format!(
        r#"
[slack]
bot_token = "xoxb-test-token"
signing_secret = "{SIGNING_SECRET}"
api_url = "{providers_url}/api"

[telegram]
bot_token = "123456:telegram-token"
webhook_secret = "{TELEGRAM_SECRET}"
api_url = "{providers_url}"

[ntfy]
base_url = "{providers_url}/ntfy"
token = "tk_ntfy_token"

[voice]
base_url = "{providers_url}"
account_sid = "AC123"
auth_token = "twilio-voice-token"
from = "+15550000000"

[[users]]
id = "alice"
phone = "+33600000001"
slack = "{ALICE_SLACK}"
telegram = "{ALICE_TELEGRAM}"
ntfy_topic = "alice-pager"
teams_webhook = "{providers_url}/teams/workflows/a1b2?sig=teams-secret-sig"
mattermost_webhook = "{providers_url}/mattermost/hooks/mm-secret-key"
notify = [ {{ channel = "{channel}", after = "0s" }} ]

[[users]]
id = "bob"

[[escalation_policies]]
name = "default"
tiers = [ {{ level = "L1", targets = ["user:alice"], after = "0s" }} ]
"#
    )
}

async fn start(channel: &str) -> (Harness, ChatProviders) {
    let providers = ChatProviders::start().await;
    let tocsin = Harness::start(&config(&providers.url, channel)).await;
    (tocsin, providers)
}

/// Opens a P1 incident on db-01 and runs the outbox once.
async fn p1(tocsin: &Harness) -> i64 {
    let reply = tocsin
        .ingest_ok("generic", &generic("db-01", "postgres", "critical"))
        .await;
    tocsin.tick().await;
    reply["alerts"][0]["incident_id"].as_i64().unwrap()
}

async fn advance_minutes(tocsin: &Harness, minutes: i64) {
    tocsin.clock.advance(TimeDelta::minutes(minutes));
    tocsin.tick().await;
}

async fn status(tocsin: &Harness, id: i64) -> String {
    tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn timeline_messages(tocsin: &Harness, id: i64) -> Vec<String> {
    tocsin.get(&format!("/api/v1/incidents/{id}")).await["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["message"].as_str().unwrap().to_string())
        .collect()
}

/// A Slack interactivity request, signed as Slack signs it at `timestamp`.
async fn slack_click(
    tocsin: &Harness,
    user: &str,
    action: &str,
    id: i64,
    timestamp: i64,
    secret: &str,
) -> reqwest::Response {
    let payload = json!({
        "type": "block_actions",
        "user": { "id": user, "username": "alice" },
        "trigger_id": format!("trigger-{user}-{action}-{timestamp}"),
        "container": { "type": "message", "channel_id": SLACK_CHANNEL, "message_ts": SLACK_TS },
        "actions": [ { "action_id": action, "block_id": "b", "value": id.to_string(), "type": "button", "action_ts": "1764385260.1" } ],
    });
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    let signature = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    tocsin
        .client
        .post(format!("{}/api/v1/chat/slack", tocsin.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header("x-slack-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn buttons(request: &Seen) -> Vec<(String, String)> {
    request.json()["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|block| block["type"] == "actions")
        .flat_map(|block| block["elements"].as_array().unwrap().clone())
        .map(|button| {
            (
                button["action_id"].as_str().unwrap().to_string(),
                button["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_signed_slack_click_acknowledges_and_the_message_follows_every_act() {
    let (tocsin, slack) = start("slack").await;
    let id = p1(&tocsin).await;
    let posts = slack.to("/api/chat.postMessage");
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.header("authorization"), "Bearer xoxb-test-token");
    assert!(post.header("content-type").starts_with("application/json"));
    let body = post.json();
    assert_eq!(body["channel"], ALICE_SLACK);
    assert_eq!(
        body["text"],
        format!("[P1] #{id} db-01: postgres failing on db-01")
    );
    assert_eq!(body["blocks"][0]["type"], "section");
    let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        section.starts_with(&format!("*[P1] #{id} db-01*\npostgres failing on db-01\n")),
        "{section}"
    );
    assert!(
        section.contains("respond by 2026-11-29T03:15:00.000Z"),
        "{section}"
    );
    assert!(
        section.ends_with(&format!(
            "<{}/ui/incidents/{id}|open in the console>",
            tocsin.url
        )),
        "{section}"
    );
    assert_eq!(
        buttons(post),
        [
            ("ack".to_string(), id.to_string()),
            ("resolve".to_string(), id.to_string())
        ]
    );

    let now = tocsin.clock.now().timestamp();
    let response = slack_click(&tocsin, ALICE_SLACK, "ack", id, now, SIGNING_SECRET).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["text"],
        format!("Incident #{id} acknowledged by alice")
    );
    assert_eq!(status(&tocsin, id).await, "acknowledged");
    assert!(
        timeline_messages(&tocsin, id)
            .await
            .iter()
            .any(|message| message.contains("alice (slack)")),
    );

    tocsin.tick().await;
    let updates = slack.to("/api/chat.update");
    assert_eq!(updates.len(), 1, "one chat.update after the click");
    let update = updates[0].json();
    assert_eq!(updates[0].header("authorization"), "Bearer xoxb-test-token");
    assert_eq!(
        (update["channel"].as_str(), update["ts"].as_str()),
        (Some(SLACK_CHANNEL), Some(SLACK_TS))
    );
    assert!(
        update["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "Status: *acknowledged* · respond by 2026-11-29T03:15:00.000Z · resolve by 2026-11-29T04:00:00.000Z · <{}/ui/incidents/{id}|open in the console>",
                tocsin.url
            ))
    );
    assert_eq!(
        buttons(&updates[0]),
        [("resolve".to_string(), id.to_string())]
    );

    // An act from another path (the API) is shown too, and once.
    let (code, _) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(code, 200);
    tocsin.tick().await;
    tocsin.tick().await;
    let updates = slack.to("/api/chat.update");
    assert_eq!(updates.len(), 2);
    assert!(
        buttons(&updates[1]).is_empty(),
        "a resolved incident has no buttons"
    );
    assert!(
        updates[1].json()["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("Status: *resolved*")
    );

    // Neither the bot token nor the member id is on the timeline or in the API.
    let incident = tocsin
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .to_string();
    assert!(
        !incident.contains("xoxb") && !incident.contains(ALICE_SLACK),
        "{incident}"
    );
    assert!(
        incident.contains("L1 page to user:alice via slack sent"),
        "{incident}"
    );
}

#[tokio::test]
async fn a_forged_old_or_unmapped_slack_click_changes_nothing() {
    let (tocsin, _slack) = start("slack").await;
    let id = p1(&tocsin).await;
    let now = tocsin.clock.now().timestamp();
    let forged = slack_click(&tocsin, ALICE_SLACK, "ack", id, now, "not-the-secret").await;
    assert_eq!(forged.status(), 401);
    let error: Value = forged.json().await.unwrap();
    assert_eq!(error["error"], "bad signature");
    let old = slack_click(
        &tocsin,
        ALICE_SLACK,
        "ack",
        id,
        now - 6 * 60,
        SIGNING_SECRET,
    )
    .await;
    assert_eq!(old.status(), 401);
    let error: Value = old.json().await.unwrap();
    assert!(
        error["detail"].as_str().unwrap().contains("5 minutes"),
        "{error}"
    );
    let stranger = slack_click(&tocsin, "U0STRANGER", "ack", id, now, SIGNING_SECRET).await;
    assert_eq!(stranger.status(), 403);
    let error: Value = stranger.json().await.unwrap();
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("add slack = \"U0STRANGER\" to the person's [[users]] entry"),
        "{error}"
    );
    assert_eq!(status(&tocsin, id).await, "triggered");
}

/// A provider (or a proxy before it) whose error page repeats the URL and token it
/// was sent: the timeline keeps its words, not the credentials.
#[tokio::test]
async fn a_providers_error_page_repeating_its_credentials_leaves_them_off_the_timeline() {
    for (channel, secrets) in [
        ("teams", &["teams-secret-sig"][..]),
        ("ntfy", &["alice-pager", "tk_ntfy_token"][..]),
        ("mattermost", &["mm-secret-key"][..]),
        ("slack", &["xoxb-test-token"][..]),
    ] {
        let (tocsin, providers) = start(channel).await;
        providers.failing.store(true, Ordering::SeqCst);
        let id = p1(&tocsin).await;
        let timeline = timeline_messages(&tocsin, id).await.join("\n");
        assert!(timeline.contains("down for maintenance"), "{timeline}");
        for secret in secrets {
            assert!(!timeline.contains(secret), "{channel}: {timeline}");
        }
    }
}

#[tokio::test]
async fn a_slack_outage_delays_the_page_without_losing_or_repeating_it() {
    let (tocsin, slack) = start("slack").await;
    slack.failing.store(true, Ordering::SeqCst);
    let id = p1(&tocsin).await;
    advance_minutes(&tocsin, 1).await;
    assert!(slack.to("/api/chat.postMessage").is_empty());
    assert!(timeline_messages(&tocsin, id).await.iter().any(|message| {
        message.starts_with("L1 page to user:alice via slack attempt 1 failed: Slack answered 500")
    }),);
    slack.failing.store(false, Ordering::SeqCst);
    for _ in 0..5 {
        advance_minutes(&tocsin, 1).await;
    }
    assert_eq!(
        slack.to("/api/chat.postMessage").len(),
        1,
        "delivered once when Slack is back"
    );
}

#[tokio::test]
async fn a_telegram_button_acts_only_with_the_webhook_secret() {
    let (tocsin, telegram) = start("telegram").await;
    let id = p1(&tocsin).await;
    let sent = telegram.to("/bot123456:telegram-token/sendMessage");
    assert_eq!(sent.len(), 1);
    let body = sent[0].json();
    assert_eq!(body["chat_id"], ALICE_TELEGRAM.to_string());
    assert_eq!(
        body["text"],
        format!("[P1] #{id} db-01: postgres failing on db-01")
    );
    assert_eq!(
        body["reply_markup"]["inline_keyboard"][0],
        json!([
            { "text": "Acknowledge", "callback_data": format!("ack:{id}") },
            { "text": "Resolve", "callback_data": format!("resolve:{id}") },
        ])
    );
    assert_eq!(
        body["reply_markup"]["inline_keyboard"][1],
        json!([{ "text": "Open in the console", "url": format!("{}/ui/incidents/{id}", tocsin.url) }])
    );
    let update = |from: i64, query: &str| {
        json!({
            "update_id": 10000,
            "callback_query": {
                "id": query,
                "from": { "id": from, "is_bot": false, "first_name": "Alice" },
                "chat_instance": "-1",
                "data": format!("ack:{id}"),
            }
        })
    };
    let url = format!("{}/api/v1/chat/telegram", tocsin.url);
    let unsigned = tocsin
        .client
        .post(&url)
        .json(&update(ALICE_TELEGRAM, "q1"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let wrong = tocsin
        .client
        .post(&url)
        .header("x-telegram-bot-api-secret-token", "guess")
        .json(&update(ALICE_TELEGRAM, "q1"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let stranger: Value = tocsin
        .client
        .post(&url)
        .header("x-telegram-bot-api-secret-token", TELEGRAM_SECRET)
        .json(&update(999, "q2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stranger["method"], "answerCallbackQuery");
    assert!(
        stranger["text"]
            .as_str()
            .unwrap()
            .contains("belongs to no Tocsin user"),
        "{stranger}"
    );
    assert_eq!(status(&tocsin, id).await, "triggered");

    let answer = tocsin
        .client
        .post(&url)
        .header("x-telegram-bot-api-secret-token", TELEGRAM_SECRET)
        .json(&update(ALICE_TELEGRAM, "q3"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(
        answer,
        json!({ "method": "answerCallbackQuery", "callback_query_id": "q3", "text": format!("Incident #{id} acknowledged by alice") })
    );
    assert_eq!(status(&tocsin, id).await, "acknowledged");

    // Telegram delivers any callback_data a client sends: a forged button for an
    // incident that never paged alice there acts on nothing.
    let other = tocsin
        .ingest_ok("generic", &generic("web-07", "nginx", "critical"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    assert_ne!(other, id);
    let mut forged = update(ALICE_TELEGRAM, "q4");
    forged["callback_query"]["data"] = json!(format!("resolve:{other}"));
    let refused: Value = tocsin
        .client
        .post(&url)
        .header("x-telegram-bot-api-secret-token", TELEGRAM_SECRET)
        .json(&forged)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        refused["text"],
        format!(
            "incident #{other} did not page alice by telegram; act on it from the console or the API"
        ),
        "{refused}"
    );
    assert_eq!(status(&tocsin, other).await, "triggered");
}

#[tokio::test]
async fn an_ntfy_push_carries_priority_and_an_acknowledge_action_that_acts() {
    let (tocsin, ntfy) = start("ntfy").await;
    let id = p1(&tocsin).await;
    let pushed = ntfy.to("/ntfy/alice-pager");
    assert_eq!(pushed.len(), 1);
    let push = &pushed[0];
    assert_eq!(
        push.text(),
        format!("[P1] #{id} db-01: postgres failing on db-01")
    );
    assert_eq!(
        push.header("title"),
        format!("[P1] #{id} db-01: postgres failing on db-01")
    );
    assert_eq!(push.header("priority"), "5");
    assert_eq!(push.header("authorization"), "Bearer tk_ntfy_token");
    let actions = push.header("actions");
    let (ack, console) = actions
        .split_once("; ")
        .unwrap_or_else(|| panic!("two actions: {actions}"));
    assert_eq!(
        console,
        format!(
            "view, Open in the console, {}/ui/incidents/{id}",
            tocsin.url
        )
    );
    let ack_url = ack
        .strip_prefix("http, Acknowledge, ")
        .and_then(|rest| rest.strip_suffix(", method=POST, clear=true"))
        .unwrap_or_else(|| panic!("{actions}"));
    assert!(ack_url.contains("/ack/"), "{ack_url}");
    // The action as the ntfy app runs it: a POST to the link.
    let path = &ack_url[ack_url.find("/ack/").unwrap()..];
    let acted = tocsin
        .client
        .post(format!("{}{path}", tocsin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(acted.status(), 200);
    assert_eq!(status(&tocsin, id).await, "acknowledged");
    let incident = tocsin
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .to_string();
    assert!(
        !incident.contains("tk_ntfy_token") && !incident.contains("alice-pager"),
        "{incident}"
    );
}

#[tokio::test]
async fn an_ntfy_server_refusing_connections_delays_the_push_without_losing_or_repeating_it() {
    // A port nobody listens on until the server "comes back" on it.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tocsin = Harness::start(&config(&format!("http://{address}"), "ntfy")).await;
    let id = p1(&tocsin).await;
    advance_minutes(&tocsin, 1).await;
    assert!(timeline_messages(&tocsin, id).await.iter().any(|message| {
        message.starts_with("L1 page to user:alice via ntfy attempt 1 failed: cannot reach ntfy")
    }),);
    let ntfy = ChatProviders::start_at(address).await;
    for _ in 0..5 {
        advance_minutes(&tocsin, 1).await;
    }
    assert_eq!(
        ntfy.to("/ntfy/alice-pager").len(),
        1,
        "pushed once when the server is back"
    );
}

#[tokio::test]
async fn check_config_names_the_missing_channel_section_and_key() {
    let text = crate::harness::base_config(
        "sqlite://x.db",
        "[[users]]\nid = \"alice\"\nslack = \"U1\"\n[[users]]\nid = \"bob\"\nphone = \"+15550001\"\nteams_webhook = \"not-a-url\"\nnotify = [ { channel = \"telegram\" }, { channel = \"voice\" } ]\n",
    );
    let errors = tocsin::config::Config::parse(&text, "tocsin.toml")
        .unwrap_err()
        .to_string();
    assert!(errors.contains("users[0].slack"), "{errors}");
    assert!(errors.contains("which has no [slack] section"), "{errors}");
    assert!(errors.contains("users[1].notify[0].channel"), "{errors}");
    assert!(
        errors.contains("set telegram in this [[users]] entry"),
        "{errors}"
    );
    assert!(
        errors.contains("users[1].teams_webhook: is not an http(s) URL"),
        "{errors}"
    );
    assert!(
        errors.contains("users[1].notify[1].channel: voice calls need a [voice] section"),
        "{errors}"
    );
}

#[tokio::test]
async fn a_teams_card_opens_the_ack_page_and_keeps_its_webhook_secret() {
    let (tocsin, teams) = start("teams").await;
    let id = p1(&tocsin).await;
    let posts = teams.to("/teams/workflows/a1b2");
    assert_eq!(posts.len(), 1);
    let body = posts[0].json();
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(
        (card["type"].as_str(), card["version"].as_str()),
        (Some("AdaptiveCard"), Some("1.4"))
    );
    // Markdown the sender wrote is shown, not rendered.
    assert_eq!(
        card["body"][0]["text"],
        format!("\\[P1\\] \\#{id} db-01: postgres failing on db-01")
    );
    assert_eq!(
        card["body"][1]["facts"][1],
        json!({ "title": "Respond by", "value": "2026-11-29T03:15:00.000Z" })
    );
    let ack = &card["actions"][0];
    assert_eq!(
        (ack["type"].as_str(), ack["title"].as_str()),
        (Some("Action.OpenUrl"), Some("Acknowledge"))
    );
    assert_eq!(
        card["actions"][1],
        json!({ "type": "Action.OpenUrl", "title": "Open in the console", "url": format!("{}/ui/incidents/{id}", tocsin.url) })
    );
    let ack_url = ack["url"].as_str().unwrap();
    let path = &ack_url[ack_url.find("/ack/").unwrap()..];
    // The button opens the confirmation page; its POST acknowledges.
    let page = tocsin
        .client
        .get(format!("{}{path}", tocsin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(status(&tocsin, id).await, "triggered");
    let acted = tocsin
        .client
        .post(format!("{}{path}", tocsin.url))
        .send()
        .await
        .unwrap();
    assert_eq!(acted.status(), 200);
    assert_eq!(status(&tocsin, id).await, "acknowledged");
    let incident = tocsin
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .to_string();
    assert!(!incident.contains("teams-secret-sig"), "{incident}");
    assert!(
        incident.contains("L1 page to user:alice via teams sent"),
        "{incident}"
    );
}

#[tokio::test]
async fn a_mattermost_button_acts_once_and_only_with_its_own_hmac() {
    let (tocsin, mattermost) = start("mattermost").await;
    let id = p1(&tocsin).await;
    let posts = mattermost.to("/mattermost/hooks/mm-secret-key");
    assert_eq!(posts.len(), 1);
    let body = posts[0].json();
    assert_eq!(
        body["text"],
        format!("\\[P1\\] \\#{id} db-01: postgres failing on db-01")
    );
    assert_eq!(
        body["attachments"][0]["title_link"],
        format!("{}/ui/incidents/{id}", tocsin.url)
    );
    let actions = body["attachments"][0]["actions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(actions.len(), 2);
    assert_eq!(
        (actions[0]["id"].as_str(), actions[0]["name"].as_str()),
        (Some("ack"), Some("Acknowledge"))
    );
    assert_eq!(
        (actions[1]["id"].as_str(), actions[1]["name"].as_str()),
        (Some("resolve"), Some("Resolve"))
    );
    let integration = &actions[0]["integration"];
    assert_eq!(
        integration["url"],
        format!("{}/api/v1/chat/mattermost", tocsin.url)
    );
    let token = integration["context"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let click = |token: String| {
        let tocsin = &tocsin;
        async move {
            tocsin
                .client
                .post(format!("{}/api/v1/chat/mattermost", tocsin.url))
                .json(&json!({ "user_id": "mm-user-1", "user_name": "alice", "channel_id": "c1", "post_id": "p1", "context": { "token": token } }))
                .send()
                .await
                .unwrap()
        }
    };
    // One character changed: the HMAC no longer holds.
    let mut forged = token.clone();
    forged.replace_range(5..6, if &token[5..6] == "A" { "B" } else { "A" });
    assert_eq!(click(forged).await.status(), 401);
    assert_eq!(status(&tocsin, id).await, "triggered");
    let done = click(token.clone()).await;
    assert_eq!(done.status(), 200);
    let answer: Value = done.json().await.unwrap();
    assert_eq!(
        answer["ephemeral_text"],
        format!("Incident #{id} acknowledged by alice")
    );
    assert_eq!(status(&tocsin, id).await, "acknowledged");
    assert_eq!(click(token).await.status(), 410, "a button acts once");
    let incident = tocsin
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .to_string();
    assert!(!incident.contains("mm-secret-key"), "{incident}");
}

#[tokio::test]
async fn send_test_alert_reaches_a_person_on_every_channel() {
    let providers = ChatProviders::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tocsin.toml");
    let storage = format!("sqlite://{}", dir.path().join("tocsin.db").display());
    let text = crate::harness::base_config(&storage, &config(&providers.url, "slack"));
    std::fs::write(&path, text).unwrap();
    let expected = [
        ("slack", "/api/chat.postMessage"),
        ("telegram", "/bot123456:telegram-token/sendMessage"),
        ("ntfy", "/ntfy/alice-pager"),
        ("teams", "/teams/workflows/a1b2"),
        ("mattermost", "/mattermost/hooks/mm-secret-key"),
        ("voice", "/2010-04-01/Accounts/AC123/Calls.json"),
    ];
    for (channel, request_path) in expected {
        let path = path.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
                .args([
                    "send-test-alert",
                    "--to",
                    "alice",
                    "--channel",
                    channel,
                    "--config",
                ])
                .arg(&path)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let printed = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{channel}: {printed}");
        assert_eq!(
            printed.trim(),
            format!("test message sent to alice via {channel}")
        );
        assert_eq!(providers.to(request_path).len(), 1, "{channel}");
    }
    let slack = &providers.to("/api/chat.postMessage")[0];
    assert!(slack.json()["text"].as_str().unwrap().starts_with("[TEST]"));
    assert!(
        buttons(slack).is_empty(),
        "a test message has nothing to click"
    );
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args([
            "send-test-alert",
            "--to",
            "bob",
            "--channel",
            "slack",
            "--config",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("set slack in their [[users]] entry")
    );
}
