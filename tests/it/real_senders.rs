//! Real senders, started by `../shared/harness/`: Prometheus Alertmanager 0.25 and
//! Nagios Core 4 post their own notifications to the real `tocsin` binary. Skipped
//! (with a message) where the harness or the Debian packages are missing; `.ci/run`
//! installs them so CI runs it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "harness-ingest-token";
const ADMIN: &str = "harness-admin-token";

fn harness() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/harness");
    let tools = ["/usr/bin/prometheus-alertmanager", "/usr/sbin/nagios4"];
    if !dir.join("alertmanager.sh").exists() || tools.iter().any(|tool| !Path::new(tool).exists()) {
        return None;
    }
    Some(dir)
}

fn script(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) {
    let output = Command::new("bash")
        .arg(dir.join(name))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    what: &str,
    found: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let items: Value = client
            .get(format!("{url}/api/v1/incidents"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = items["items"].as_array().cloned().unwrap_or_default();
        if found(&items) {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "waited 20 s for {what}; incidents: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn status_of(items: &[Value], resource: &str, check: &str) -> Option<String> {
    items
        .iter()
        .find(|i| i["resource"] == resource && i["check"] == check)
        .and_then(|i| i["status"].as_str().map(str::to_string))
}

#[tokio::test]
async fn real_alertmanager_and_nagios_open_and_close_incidents() {
    let Some(dir) = harness() else {
        eprintln!(
            "skipped: ../shared/harness or the prometheus-alertmanager / nagios4-core packages are missing (.ci/run installs them)"
        );
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[api]\ntokens = [ {{ name = \"ops\", token = \"{ADMIN}\", role = \"admin\" }} ]\n[sources.alertmanager]\ntoken = \"{TOKEN}\"\n[sources.nagios]\ntoken = \"{TOKEN}\"\n"
    );
    std::fs::write(work.path().join("tocsin.toml"), config).unwrap();
    let _tocsin = crate::harness::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .args(["serve", "--config", "tocsin.toml"])
            .current_dir(work.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = crate::harness::client();
    let ready = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("{url}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < ready, "tocsin did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Alertmanager: firing opens a P1, resolved closes it.
    let am_target = format!("{url}/api/v1/ingest/alertmanager");
    script(
        &dir,
        "alertmanager.sh",
        &["start", &am_target],
        &[("TOKEN", TOKEN)],
    );
    script(
        &dir,
        "alertmanager.sh",
        &["fire", "HighLatency", "critical", "web01:9100"],
        &[],
    );
    let items = wait_for(&client, &url, "the Alertmanager incident", |items| {
        status_of(items, "web01", "HighLatency").is_some()
    })
    .await;
    let incident = items.iter().find(|i| i["check"] == "HighLatency").unwrap();
    assert_eq!(
        (incident["priority"].as_str(), incident["source"].as_str()),
        (Some("P1"), Some("alertmanager"))
    );
    script(
        &dir,
        "alertmanager.sh",
        &["fire", "HighLatency", "critical", "web01:9100", "resolve"],
        &[],
    );
    wait_for(&client, &url, "the Alertmanager resolve", |items| {
        status_of(items, "web01", "HighLatency").as_deref() == Some("resolved")
    })
    .await;
    script(&dir, "alertmanager.sh", &["stop"], &[]);

    // Nagios: PROBLEM opens, RECOVERY closes.
    let nagios_target = format!("{url}/api/v1/ingest/nagios");
    script(
        &dir,
        "nagios.sh",
        &["start", &nagios_target],
        &[("TOKEN", TOKEN), ("FORMAT", "form")],
    );
    script(
        &dir,
        "nagios.sh",
        &["set", "CRITICAL", "HTTP 503 from web01"],
        &[],
    );
    script(&dir, "nagios.sh", &["force"], &[]);
    let items = wait_for(&client, &url, "the Nagios incident", |items| {
        status_of(items, "web01", "harness-check").is_some()
    })
    .await;
    let incident = items
        .iter()
        .find(|i| i["check"] == "harness-check")
        .unwrap();
    assert_eq!(
        (incident["priority"].as_str(), incident["source"].as_str()),
        (Some("P1"), Some("nagios"))
    );
    script(&dir, "nagios.sh", &["set", "OK"], &[]);
    script(&dir, "nagios.sh", &["force"], &[]);
    wait_for(&client, &url, "the Nagios recovery", |items| {
        status_of(items, "web01", "harness-check").as_deref() == Some("resolved")
    })
    .await;
    script(&dir, "nagios.sh", &["stop"], &[]);
}
