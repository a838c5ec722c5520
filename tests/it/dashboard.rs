//! The dashboard in a real headless Chromium driven through chromedriver's WebDriver
//! API: a new P1 appears without a reload. Skipped (with a message) where Debian's
//! `chromium` and `chromium-driver` are missing; `.ci/run` installs them.

use crate::harness::{Harness, generic};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Driver {
    process: std::process::Child,
    url: String,
    client: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Driver {
    async fn start() -> Option<Self> {
        if !Path::new("/usr/bin/chromedriver").exists() || !Path::new("/usr/bin/chromium").exists()
        {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let driver = Self {
            process,
            url: format!("http://127.0.0.1:{port}"),
            client: crate::harness::client(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while driver
            .client
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(driver)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    async fn session(&self) -> String {
        let capabilities = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--window-size=1200,900"]
        }}}});
        let reply = self
            .call(reqwest::Method::POST, "/session", Some(capabilities))
            .await;
        reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_string()
    }

    async fn script(&self, session: &str, script: &str) -> Value {
        let reply = self
            .call(
                reqwest::Method::POST,
                &format!("/session/{session}/execute/sync"),
                Some(json!({ "script": script, "args": [] })),
            )
            .await;
        reply["value"].clone()
    }
}

#[tokio::test]
async fn a_new_p1_appears_on_the_dashboard_within_two_seconds_without_a_reload() {
    let Some(driver) = Driver::start().await else {
        eprintln!(
            "skipped: chromium and chromium-driver are not installed (.ci/run installs them)"
        );
        return;
    };
    let tocsin = Harness::start("").await;
    let session = driver.session().await;
    driver
        .call(
            reqwest::Method::POST,
            &format!("/session/{session}/url"),
            Some(json!({ "url": format!("{}/", tocsin.url) })),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while driver
        .script(&session, "return document.body.getAttribute('data-live')")
        .await
        != "connected"
    {
        assert!(Instant::now() < deadline, "the live stream never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        driver
            .script(
                &session,
                "return document.body.innerText.includes('Nothing open')"
            )
            .await,
        true
    );
    // Marks the page so a reload would be noticed.
    driver
        .script(&session, "window.notReloaded = true; return true")
        .await;

    tocsin
        .ingest_ok("generic", &generic("db-primary", "replication", "critical"))
        .await;
    let posted = Instant::now();
    loop {
        if driver
            .script(
                &session,
                "return document.body.innerText.includes('replication on db-primary')",
            )
            .await
            == true
        {
            break;
        }
        assert!(
            posted.elapsed() < Duration::from_secs(2),
            "the P1 did not appear within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        driver
            .script(&session, "return window.notReloaded === true")
            .await,
        true,
        "no reload happened"
    );
    assert_eq!(
        driver
            .script(
                &session,
                "return document.querySelector('.badge.P1') !== null"
            )
            .await,
        true
    );

    let shot = driver
        .call(
            reqwest::Method::GET,
            &format!("/session/{session}/screenshot"),
            None,
        )
        .await;
    let png = base64_decode(shot["value"].as_str().unwrap());
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("dashboard.png"), &png).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    driver
        .call(
            reqwest::Method::DELETE,
            &format!("/session/{session}"),
            None,
        )
        .await;
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}
