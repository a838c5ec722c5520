//! The responder console at `/ui`: a responder and a viewer in real headless Chromium
//! (sign in, open the newest P1, note, acknowledge, live update, expiry), and over
//! plain HTTP the refusals a browser never shows (CSRF, role), silences, and the
//! basics a Lighthouse audit checks (size, no external request, labelled fields).

use crate::harness::{ADMIN, BOB, Harness, RESPONDER, VIEWER, generic};
use crate::webdriver::{Browser, Driver};
use chrono::TimeDelta;
use serde_json::Value;
use std::time::Duration;
use tocsin::clock::Clock;

/// A console session opened over HTTP, as the login form would.
struct Signed {
    client: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

fn no_redirects() -> reqwest::Client {
    let _ = crate::harness::client();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn csrf_in(html: &str) -> String {
    let pattern = regex::Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap();
    pattern
        .captures(html)
        .unwrap_or_else(|| panic!("no CSRF field in {html}"))[1]
        .to_string()
}

fn cookie_pair(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

impl Signed {
    async fn login(tocsin: &Harness, token: &str) -> Self {
        let client = no_redirects();
        let form = client
            .get(format!("{}/ui/login", tocsin.url))
            .send()
            .await
            .unwrap();
        let login_cookie = cookie_pair(&form, "tocsin_login");
        let login_csrf = csrf_in(&form.text().await.unwrap());
        let signed = client
            .post(format!("{}/ui/login", tocsin.url))
            .header("cookie", &login_cookie)
            .form(&[("token", token), ("csrf", &login_csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status(), 303);
        let set = signed.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
            "{set}"
        );
        assert!(!set.contains(token), "the cookie never holds the token");
        let cookie = cookie_pair(&signed, "tocsin_session");
        let mut me = Self {
            client,
            base: tocsin.url.clone(),
            cookie,
            csrf: String::new(),
        };
        let (status, html) = me.get("/ui/incidents").await;
        assert_eq!(status, 200, "{html}");
        me.csrf = csrf_in(&html);
        me
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(fields)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

async fn sign_in(browser: &Browser<'_>, base: &str, token: &str) {
    browser.open(&format!("{base}/ui/incidents")).await;
    assert!(
        browser.location().await.contains("/ui/login"),
        "a stranger is sent to sign in"
    );
    browser.type_into("#token", token).await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for(
            "return location.pathname === '/ui/incidents'",
            Duration::from_secs(5),
            "signing in did not lead to the incident list",
        )
        .await;
}

#[tokio::test]
async fn a_responder_notes_and_acknowledges_the_newest_p1_and_a_viewer_sees_it_live() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let tocsin = Harness::start("").await;
    tocsin
        .ingest_ok("generic", &generic("db-primary", "replication", "critical"))
        .await;
    tocsin
        .ingest_ok("generic", &generic("web-3", "disk", "error"))
        .await;
    let newest = tocsin
        .ingest_ok(
            "generic",
            br#"{"resource": "api-gateway", "check": "latency", "severity": "critical", "summary": "p99 latency 2.4 s over 5 min", "labels": {"env": "prod", "team": "edge", "region": "eu-west-1"}}"#,
        )
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    tocsin
        .ingest_ok("generic", &generic("cache-2", "memory", "error"))
        .await;

    let responder = driver.browser().await;
    sign_in(&responder, &tocsin.url, RESPONDER).await;
    responder.screenshot("console-incidents.png").await;
    responder.click("#f-priority option[value=P1]").await;
    responder
        .click("form[role=search] button[type=submit]")
        .await;
    responder
        .wait_for(
            "return location.search.includes('priority=P1')",
            Duration::from_secs(5),
            "the priority filter did not apply",
        )
        .await;
    responder.click("tbody tr:first-child td a").await;
    responder
        .wait_for(
            &format!("return location.pathname === '/ui/incidents/{newest}'"),
            Duration::from_secs(5),
            "the first P1 of the list is not the newest",
        )
        .await;
    let page = responder.text().await;
    assert!(
        page.contains("latency on api-gateway") && page.contains("env=prod"),
        "the page shows the alert and its labels: {page}"
    );

    let viewer = driver.browser().await;
    sign_in(&viewer, &tocsin.url, VIEWER).await;
    viewer
        .open(&format!("{}/ui/incidents/{newest}", tocsin.url))
        .await;
    viewer
        .wait_for(
            "return document.body.getAttribute('data-live') === 'connected'",
            Duration::from_secs(10),
            "the viewer's page never connected to the live stream",
        )
        .await;
    assert!(!viewer.has("#actions").await, "a viewer sees no actions");
    assert!(!viewer.has("button[value=ack]").await);
    assert_eq!(
        viewer
            .script("return document.querySelectorAll('main button, main textarea').length")
            .await,
        0,
        "no button but Sign out"
    );
    viewer
        .script("window.notReloaded = true; return true")
        .await;

    responder
        .type_into("#note", "failing over to the standby")
        .await;
    responder.click("button[value=note]").await;
    responder
        .wait_for(
            "return document.querySelector('li[data-kind=note]') !== null",
            Duration::from_secs(5),
            "the note is not on the timeline",
        )
        .await;
    responder.click("button[value=ack]").await;
    responder
        .wait_for(
            "return document.querySelector('li[data-kind=acknowledged]') !== null",
            Duration::from_secs(5),
            "the acknowledgement is not on the timeline",
        )
        .await;
    let timeline = responder
        .script("return document.getElementById('timeline').innerText")
        .await;
    let timeline = timeline.as_str().unwrap();
    assert!(
        timeline.contains("failing over to the standby") && timeline.contains("oncall"),
        "{timeline}"
    );
    assert!(
        !responder.has("button[value=ack]").await,
        "acknowledged once"
    );
    assert_eq!(
        responder
            .script("return document.getElementById('status').innerText")
            .await,
        "acknowledged"
    );
    responder.screenshot("console-incident.png").await;

    viewer
        .wait_for(
            "return document.querySelector('li[data-kind=acknowledged]') !== null",
            Duration::from_secs(5),
            "the viewer did not see the acknowledgement live",
        )
        .await;
    assert_eq!(
        viewer.script("return window.notReloaded === true").await,
        true,
        "the viewer's page updated in place"
    );
    assert!(viewer.text().await.contains("failing over to the standby"));

    let incident = tocsin.get(&format!("/api/v1/incidents/{newest}")).await;
    assert_eq!(incident["status"], "acknowledged");
    let acted: Vec<&Value> = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| ["note", "acknowledged"].contains(&entry["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(acted.len(), 2, "{incident}");
    assert!(
        acted.iter().all(|entry| entry["actor"] == "oncall"),
        "{incident}"
    );

    tocsin
        .clock
        .advance(TimeDelta::hours(12) + TimeDelta::minutes(1));
    responder
        .open(&format!("{}/ui/incidents/{newest}", tocsin.url))
        .await;
    assert!(
        responder.location().await.contains("/ui/login"),
        "an expired session goes back to the login page"
    );
    assert!(responder.has("#token").await);
    responder.close().await;
    viewer.close().await;
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_or_role_is_refused_403() {
    let tocsin = Harness::start("").await;
    let id = tocsin
        .ingest_ok("generic", &generic("db-primary", "replication", "critical"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    let responder = Signed::login(&tocsin, RESPONDER).await;
    let path = format!("/ui/incidents/{id}");
    let (status, page) = responder.post(&path, &[("action", "ack")]).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("reload the page"), "the page says what to do");
    let (status, _) = responder
        .post(&path, &[("action", "ack"), ("csrf", "guessed")])
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "triggered"
    );

    let viewer = Signed::login(&tocsin, VIEWER).await;
    let (status, page) = viewer
        .post(&path, &[("action", "ack"), ("csrf", &viewer.csrf)])
        .await;
    assert_eq!(status, 403, "the server checks the role again: {page}");
    assert_eq!(
        tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "triggered"
    );

    let (status, _) = responder
        .post(&path, &[("action", "ack"), ("csrf", &responder.csrf)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        tocsin.get(&format!("/api/v1/incidents/{id}")).await["status"],
        "acknowledged"
    );

    // The login form has its own token: a cross-site POST signs nobody in.
    let (status, _) = {
        let response = no_redirects()
            .post(format!("{}/ui/login", tocsin.url))
            .form(&[("token", RESPONDER)])
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 403);

    // Signing out ends the session in the store, and a dashboard session the same
    // browser holds.
    let out = responder
        .client
        .post(format!("{}/ui/logout", tocsin.url))
        .header(
            "cookie",
            format!("{}; tocsin_dashboard=left-open", responder.cookie),
        )
        .form(&[("csrf", &responder.csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let cleared: Vec<&str> = out
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for name in ["tocsin_session=;", "tocsin_dashboard=;"] {
        assert!(
            cleared
                .iter()
                .any(|c| c.starts_with(name) && c.contains("Max-Age=0")),
            "{cleared:?}"
        );
    }
    let (status, _) = responder.get(&path).await;
    assert_eq!(status, 303, "signed out, the page sends to the login");
}

#[tokio::test]
async fn a_session_survives_a_restart_and_ends_with_its_ttl() {
    let tocsin = Harness::start("[console]\nsession_ttl = \"1h\"\n").await;
    let signed = Signed::login(&tocsin, RESPONDER).await;
    let tocsin = tocsin.restart().await;
    let signed = Signed {
        base: tocsin.url.clone(),
        ..signed
    };
    let (status, _) = signed.get("/ui/incidents").await;
    assert_eq!(status, 200, "the session is in the database");
    tocsin.clock.advance(TimeDelta::minutes(61));
    let (status, _) = signed.get("/ui/incidents").await;
    assert_eq!(status, 303, "past session_ttl the console asks to sign in");
}

#[tokio::test]
async fn a_silence_is_made_from_an_alert_listed_and_expired() {
    let tocsin = Harness::start("").await;
    let alert = tocsin
        .ingest_ok(
            "generic",
            br#"{"resource": "db-7", "check": "backup", "severity": "warning", "summary": "backup late", "labels": {"env": "prod", "a b": "x", "": "y"}}"#,
        )
        .await["alerts"][0]["id"]
        .as_i64()
        .unwrap();
    let responder = Signed::login(&tocsin, RESPONDER).await;
    let (status, form) = responder
        .get(&format!("/ui/silences/new?alert={alert}"))
        .await;
    assert_eq!(status, 200);
    // As the browser shows the textarea (Handlebars escapes `=` and `"`).
    let shown = form.replace("&#x3D;", "=").replace("&quot;", "\"");
    assert!(
        shown.contains("resource=\"db-7\"") && shown.contains("labels.env=\"prod\""),
        "the matchers are filled from the alert: {form}"
    );
    assert!(
        !shown.contains("labels.a b") && !shown.contains("labels.=\""),
        "no matcher a silence would refuse: {form}"
    );
    let (status, _) = responder
        .post(
            "/ui/silences",
            &[
                ("csrf", &responder.csrf),
                ("matchers", "resource=\"db-7\"\nlabels.env=\"prod\""),
                ("duration", "4h"),
                ("comment", "restoring backups"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let silences = tocsin.get("/api/v1/silences").await;
    let silence = &silences["items"][0];
    assert_eq!(silence["created_by"], "oncall");
    assert_eq!(silence["state"], "active");
    assert_eq!(
        crate::harness::time(&silence["ends_at"]) - tocsin.clock.now(),
        TimeDelta::hours(4)
    );
    let (_, list) = responder.get("/ui/silences").await;
    assert!(list.contains("restoring backups"));
    let id = silence["id"].as_i64().unwrap();
    let (status, _) = responder
        .post(
            &format!("/ui/silences/{id}/expire"),
            &[("csrf", &responder.csrf)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        tocsin.get("/api/v1/silences").await["items"][0]["state"],
        "expired"
    );
}

#[tokio::test]
async fn console_pages_are_small_self_contained_and_every_field_is_labelled() {
    let tocsin = Harness::start("").await;
    let reply = tocsin
        .ingest_ok("generic", &generic("db-primary", "replication", "critical"))
        .await;
    let id = reply["alerts"][0]["incident_id"].as_i64().unwrap();
    let alert = reply["alerts"][0]["id"].as_i64().unwrap();
    let responder = Signed::login(&tocsin, RESPONDER).await;
    let (_, login) = no_redirects()
        .get(format!("{}/ui/login", tocsin.url))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    let login = login.text().await.unwrap();
    let mut pages = vec![("/ui/login".to_string(), login)];
    for path in [
        "/ui/incidents".to_string(),
        "/ui/incidents?status=triggered&priority=P1&source=generic&q=replication".to_string(),
        format!("/ui/incidents/{id}"),
        "/ui/oncall".to_string(),
        "/ui/silences".to_string(),
        format!("/ui/silences/new?alert={alert}"),
    ] {
        let (status, html) = responder.get(&path).await;
        assert_eq!(status, 200, "{path}: {html}");
        pages.push((path, html));
    }
    let reference = regex::Regex::new(r#"\b(src|href|action)="([^"]*)""#).unwrap();
    let field = regex::Regex::new(r#"<(input|select|textarea)\b([^>]*)>"#).unwrap();
    let id_of = regex::Regex::new(r#"\bid="([^"]+)""#).unwrap();
    for (path, html) in &pages {
        assert!(html.len() < 100 * 1024, "{path} is {} bytes", html.len());
        for found in reference.captures_iter(html) {
            let target = &found[2];
            assert!(
                target.starts_with('/') && !target.starts_with("//")
                    || target.starts_with('?')
                    || target.starts_with('#'),
                "{path}: {} points elsewhere: {target}",
                &found[1]
            );
        }
        for found in field.captures_iter(html) {
            let attributes = &found[2];
            if attributes.contains(r#"type="hidden""#) {
                continue;
            }
            let id = id_of
                .captures(attributes)
                .unwrap_or_else(|| panic!("{path}: a field without an id: {}", &found[0]))[1]
                .to_string();
            assert!(
                html.contains(&format!(r#"<label for="{id}""#)),
                "{path}: field {id} has no label"
            );
        }
        if html.contains("method=\"post\"") {
            assert_eq!(
                html.matches("method=\"post\"").count(),
                html.matches("name=\"csrf\"").count(),
                "{path}: every form that posts carries the CSRF token"
            );
        }
    }
    let (_, list) = &pages[2];
    assert!(
        list.contains("replication on db-primary"),
        "the filters find it"
    );
}

#[tokio::test]
async fn an_override_taken_in_the_console_names_who_is_on_call_and_gets_the_next_page() {
    let smtp = crate::smtp_sink::SmtpSink::start().await;
    let tocsin = Harness::start(&format!(
        r#"
[email]
transport = "smtp"
host = "127.0.0.1"
port = {}
from = "tocsin@example.com"

[[users]]
id = "alice"
name = "Alice Martin"
email = "alice@example.com"

[[users]]
id = "bob"
name = "Bob Stone"
email = "bob@example.com"

[[schedules]]
name = "primary"
time_zone = "Europe/Paris"
rotation = {{ every = "1w", handoff = "Mon 09:00", users = ["alice"] }}

[[escalation_policies]]
name = "default"
tiers = [ {{ level = "L1", targets = ["schedule:primary"], after = "0s" }} ]
"#,
        smtp.port
    ))
    .await;
    assert_eq!(
        tocsin.get("/api/v1/oncall").await["schedules"][0]["now"]["user"],
        "alice"
    );
    let responder = Signed::login(&tocsin, BOB).await;
    let (status, page) = responder.get("/ui/oncall").await;
    assert_eq!(status, 200);
    assert!(page.contains("Alice Martin") && page.contains("Take this shift"));
    let (status, page) = responder
        .post(
            "/ui/oncall",
            &[
                ("csrf", &responder.csrf),
                ("schedule", "primary"),
                ("user", "bob"),
                ("length", "4h"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{page}");
    let oncall = tocsin.get("/api/v1/oncall").await;
    assert_eq!(oncall["schedules"][0]["now"]["user"], "bob", "{oncall}");
    assert_eq!(oncall["policies"][0]["tiers"][0]["users"][0], "bob");

    tocsin
        .ingest_ok("generic", &generic("db-primary", "replication", "critical"))
        .await;
    tocsin.tick().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while smtp.to("bob@example.com").is_empty() {
        assert!(std::time::Instant::now() < deadline, "bob was never paged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(smtp.to("alice@example.com").is_empty(), "alice handed over");

    // The page carries the console link beside the ack link, and the page the ack
    // link lands on offers it after acting.
    let mail = smtp.to("bob@example.com")[0].text();
    let console_link = format!("{}/ui/incidents/1", tocsin.url);
    assert!(
        mail.contains(&format!("Console:     {console_link}")),
        "{mail}"
    );
    let start = mail.find(&format!("{}/ack/", tocsin.url)).unwrap();
    let ack: String = mail[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect();
    let acted = tocsin.client.post(&ack).send().await.unwrap();
    assert_eq!(acted.status(), 200);
    let acted = acted.text().await.unwrap();
    assert!(
        acted.contains(&format!("href=\"{console_link}\"")),
        "{acted}"
    );

    // The override is a row: a restart keeps it, and it ends when it said.
    let tocsin = tocsin.restart().await;
    assert_eq!(
        tocsin.get("/api/v1/oncall").await["schedules"][0]["now"]["user"],
        "bob"
    );
    // `tocsin oncall` reads the override from the database, beside the running serve.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tocsin.toml");
    std::fs::write(
        &path,
        format!(
            "[storage]\nurl = \"{}\"\n[[users]]\nid = \"alice\"\nname = \"Alice Martin\"\n[[users]]\nid = \"bob\"\nname = \"Bob Stone\"\n[[schedules]]\nname = \"primary\"\ntime_zone = \"Europe/Paris\"\nrotation = {{ every = \"1w\", handoff = \"Mon 09:00\", users = [\"alice\"] }}\n",
            tocsin.storage_url()
        ),
    )
    .unwrap();
    // The command reads the wall clock, past the test clock's 4-hour override: this
    // checks that it reads the rows (no warning), not who is on call.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(["oncall", "--json", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("warning"),
        "{stderr}"
    );
    tocsin.clock.advance(TimeDelta::hours(4));
    assert_eq!(
        tocsin.get("/api/v1/oncall").await["schedules"][0]["now"]["user"],
        "alice"
    );
}

#[tokio::test]
async fn the_list_filters_by_source_and_text_and_pages_newest_first() {
    let tocsin = Harness::start("").await;
    for n in 1..=27 {
        tocsin
            .ingest_ok("generic", &generic(&format!("web-{n}"), "http", "critical"))
            .await;
    }
    let viewer = Signed::login(&tocsin, VIEWER).await;
    let rows = |html: &str| -> Vec<String> {
        let row = regex::Regex::new(r#"<td><a href="/ui/incidents/(\d+)">#"#).unwrap();
        row.captures_iter(html).map(|c| c[1].to_string()).collect()
    };
    let (_, first) = viewer.get("/ui/incidents").await;
    let ids = rows(&first);
    assert_eq!(ids.len(), 25);
    assert_eq!(ids[0], "27", "newest first");
    let next = regex::Regex::new(r#"href="(/ui/incidents\?[^"]+)" rel="next""#)
        .unwrap()
        .captures(&first)
        .expect("a link to older incidents")[1]
        .replace("&amp;", "&")
        .replace("&#x3D;", "=");
    let (_, second) = viewer.get(&next).await;
    assert_eq!(rows(&second), ["2", "1"]);
    assert!(!second.contains("rel=\"next\""));

    let (_, found) = viewer.get("/ui/incidents?q=WEB-13").await;
    assert_eq!(rows(&found), ["13"], "text matches title, any case");
    let (_, none) = viewer.get("/ui/incidents?source=nagios").await;
    assert!(rows(&none).is_empty() && none.contains("No incident matches"));
    let (status, bad) = viewer.get("/ui/incidents?priority=P9").await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad.contains("priority"), "the page names the bad filter");
}

#[tokio::test]
async fn an_override_taken_on_one_replica_is_followed_by_the_others() {
    let Ok(url) = std::env::var("TOCSIN_TEST_PG_URL") else {
        eprintln!("skipped: set TOCSIN_TEST_PG_URL (postgres://…) to run the replica tests");
        return;
    };
    let config = "[[users]]\nid = \"alice\"\n[[users]]\nid = \"bob\"\n[[schedules]]\nname = \"primary\"\nrotation = { every = \"1w\", handoff = \"Mon 09:00\", users = [\"alice\"] }\n";
    let a = Harness::start_on(&crate::harness::pg_schema(&url).await, config).await;
    let b = a.replica().await;
    let on_b = || async { b.get("/api/v1/oncall").await["schedules"][0]["now"]["user"].clone() };
    assert_eq!(on_b().await, "alice");
    let responder = Signed::login(&a, BOB).await;
    let (status, _) = responder
        .post(
            "/ui/oncall",
            &[
                ("csrf", &responder.csrf),
                ("schedule", "primary"),
                ("user", "bob"),
                ("length", "1d"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    // The session works on the other replica too: it is a row, not memory.
    let (status, _) = Signed {
        base: b.url.clone(),
        ..responder
    }
    .get("/ui/oncall")
    .await;
    assert_eq!(status, 200);
    b.tick().await;
    assert_eq!(
        on_b().await,
        "bob",
        "the other replica's next round reads it"
    );
}

#[tokio::test]
async fn a_responder_approves_a_waiting_runbook_from_the_incident_page_and_sees_its_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fix.toml"),
        "match = ['check=\"broken\"']\ncommand = [\"/bin/sh\", \"-c\", \"echo line one; echo line two\"]\napproval = \"responder\"\n",
    )
    .unwrap();
    let tocsin = Harness::start(&format!(
        "[runbooks]\ndir = \"{}\"\nenabled = [\"fix\"]\n",
        dir.path().display()
    ))
    .await;
    let id = tocsin
        .ingest_ok("generic", &generic("web-1", "broken", "critical"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    let viewer = Signed::login(&tocsin, VIEWER).await;
    let (_, seen) = viewer.get(&format!("/ui/incidents/{id}")).await;
    assert!(seen.contains("runbook_pending_approval") && !seen.contains("Approve fix"));
    let responder = Signed::login(&tocsin, RESPONDER).await;
    let path = format!("/ui/incidents/{id}");
    let (_, page) = responder.get(&path).await;
    assert!(
        page.contains("Approve fix") && page.contains("Run fix"),
        "{page}"
    );
    let (status, _) = viewer
        .post(
            &format!("{path}/runbooks/fix"),
            &[("csrf", &viewer.csrf), ("do", "approve")],
        )
        .await;
    assert_eq!(status, 403, "a viewer cannot approve");
    let (status, page) = responder
        .post(
            &format!("{path}/runbooks/fix"),
            &[("csrf", &responder.csrf), ("do", "approve")],
        )
        .await;
    assert_eq!(status, 303, "{page}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = responder.get(&path).await;
        if page.contains("runbook_success") {
            assert!(
                page.contains("line one\nline two"),
                "the output keeps its lines: {page}"
            );
            assert!(!page.contains("Approve fix"), "approved once");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never finished: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn behind_https_the_session_cookie_is_secure() {
    let tocsin = Harness::start_tuned("", |config| {
        config.public_url = "https://tocsin.example.com".into();
    })
    .await;
    let client = no_redirects();
    let form = client
        .get(format!("{}/ui/login", tocsin.url))
        .send()
        .await
        .unwrap();
    let login_cookie = cookie_pair(&form, "tocsin_login");
    let csrf = csrf_in(&form.text().await.unwrap());
    let signed = client
        .post(format!("{}/ui/login", tocsin.url))
        .header("cookie", &login_cookie)
        .form(&[("token", RESPONDER), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("tocsin_session="))
        .unwrap();
    assert!(session.contains("; Secure"), "{session}");
}

#[tokio::test]
async fn a_responder_takes_shifts_for_themselves_and_only_an_admin_assigns_others() {
    let config = "[[users]]\nid = \"alice\"\nname = \"Alice Martin\"\n[[users]]\nid = \"bob\"\nname = \"Bob Stone\"\n[[schedules]]\nname = \"primary\"\nrotation = { every = \"1w\", handoff = \"Mon 09:00\", users = [\"alice\"] }\n";
    let tocsin = Harness::start(config).await;
    let on_call =
        || async { tocsin.get("/api/v1/oncall").await["schedules"][0]["now"]["user"].clone() };
    // A team's shared token is nobody in particular: it may not hand a shift to anyone.
    let team = Signed::login(&tocsin, RESPONDER).await;
    let (_, page) = team.get("/ui/oncall").await;
    assert!(!page.contains("Take this shift"), "no form offered");
    assert!(page.contains("ask an admin"), "{page}");
    let (status, page) = take_shift(&team, "bob").await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("for themselves only"), "{page}");

    // Bob may take it himself, and may not give it to Alice.
    let bob = Signed::login(&tocsin, BOB).await;
    let (_, page) = bob.get("/ui/oncall").await;
    assert!(
        page.contains(r#"<option value="bob""#) && !page.contains(r#"<option value="alice""#),
        "only himself offered: {page}"
    );
    let (status, _) = take_shift(&bob, "alice").await;
    assert_eq!(status, 403);
    assert_eq!(on_call().await, "alice", "nothing changed");
    let (status, _) = take_shift(&bob, "bob").await;
    assert_eq!(status, 303);
    assert_eq!(on_call().await, "bob");

    // An admin assigns anyone.
    let admin = Signed::login(&tocsin, ADMIN).await;
    let (status, _) = take_shift(&admin, "alice").await;
    assert_eq!(status, 303);
    assert_eq!(on_call().await, "alice");
}

/// Posts the override form: `user` takes the primary schedule for 4h.
async fn take_shift(session: &Signed, user: &str) -> (u16, String) {
    session
        .post(
            "/ui/oncall",
            &[
                ("csrf", &session.csrf),
                ("schedule", "primary"),
                ("user", user),
                ("length", "4h"),
            ],
        )
        .await
}

/// What a browser asked for that no page answers: a person gets a page saying so, not
/// the API's JSON, and a mangled email link is refused like a forged one.
#[tokio::test]
async fn addresses_no_page_answers_get_a_page_saying_so_not_json() {
    let tocsin = Harness::start("").await;
    let responder = Signed::login(&tocsin, RESPONDER).await;
    let page = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_string());
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let body = response.text().await.unwrap();
        assert!(kind.starts_with("text/html"), "{status} {kind}: {body}");
        assert!(body.contains("<html"), "{body}");
        (status, allow, body)
    };
    for path in ["/ui/incidents/%ff", "/ui/incidents/abc", "/ui/nothing-here"] {
        let (status, _, body) = page(
            responder
                .client
                .get(format!("{}{path}", tocsin.url))
                .header("cookie", &responder.cookie)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.contains("/ui/incidents"), "says where to go: {body}");
    }
    let (status, allow, body) = page(
        responder
            .client
            .put(format!("{}/ui/incidents", tocsin.url))
            .header("cookie", &responder.cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, allow.as_deref()),
        (405, Some("GET,HEAD")),
        "{body}"
    );
    assert!(
        !body.contains("openapi"),
        "a person is not sent to the API's document: {body}"
    );
    for link in ["/ack/%ff", "/approve/%ff%fe", "/csat/%c3"] {
        let (status, _, body) = page(
            tocsin
                .client
                .get(format!("{}{link}", tocsin.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 403, "{link}: {body}");
        assert!(body.contains("not one Tocsin issued"), "{body}");
    }
    let (status, allow, _) = page(
        tocsin
            .client
            .delete(format!("{}/ack/some-token", tocsin.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, allow.as_deref()), (405, Some("GET,HEAD,POST")));

    let api = tocsin
        .client
        .get(format!("{}/api/v1/incidents/abc", tocsin.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    let refusal: Value = api.json().await.unwrap();
    assert!(
        refusal["detail"].is_string(),
        "the API stays JSON: {refusal}"
    );
}

/// A sign-in link whose `next` no `Location` can carry, or that climbs out of the
/// console, still signs in, and lands on the incident list.
#[tokio::test]
async fn a_crafted_next_cannot_break_or_redirect_a_sign_in() {
    let tocsin = Harness::start("").await;
    let client = no_redirects();
    for next in ["/ui/\nx", "/ui/../api/v1/kpi", "/ui/%2e%2e/api/v1/kpi"] {
        let form = client
            .get(format!(
                "{}/ui/login?next={}",
                tocsin.url,
                percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
            ))
            .send()
            .await
            .unwrap();
        let login_cookie = cookie_pair(&form, "tocsin_login");
        let csrf = csrf_in(&form.text().await.unwrap());
        let signed = client
            .post(format!("{}/ui/login", tocsin.url))
            .header("cookie", &login_cookie)
            .form(&[("token", RESPONDER), ("csrf", &csrf), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status(), 303, "{next:?}");
        assert_eq!(signed.headers()["location"], "/ui/incidents", "{next:?}");
        cookie_pair(&signed, "tocsin_session");
    }
}
