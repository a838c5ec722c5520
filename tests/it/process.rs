//! The real binary: the README's quick start, durability across SIGKILL, and the
//! one-instance guard on a SQLite file.

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_tocsin");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tocsin serve` with the shipped default configuration, run from `dir` as the
/// README says, on `port`.
fn serve(dir: &Path, port: u16) -> Child {
    Command::new(BINARY)
        .arg("serve")
        .current_dir(dir)
        .env("TOCSIN_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("TOCSIN_ADMIN_TOKEN")
        .env_remove("TOCSIN_INGEST_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = client.get(format!("{url}/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tocsin did not become ready at {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn project_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/tocsin.toml"),
        tocsin::config::DEFAULT_CONFIG,
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn an_alert_answered_202_survives_sigkill_and_a_second_instance_is_refused() {
    let dir = project_dir();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let client = crate::harness::client();
    let mut first = serve(dir.path(), port);
    wait_ready(&client, &url).await;

    // The README's first alert.
    let response = client
        .post(format!("{url}/api/v1/ingest/generic"))
        .bearer_auth("dev-ingest-token")
        .header("content-type", "application/json")
        .body(r#"{"resource":"web-1","check":"http","severity":"critical","summary":"web-1 is down"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let reply: Value = response.json().await.unwrap();
    let incident_id = reply["alerts"][0]["incident_id"].as_i64().unwrap();

    // A second daemon on the same database refuses to start and says why.
    let second = Command::new(BINARY)
        .arg("serve")
        .current_dir(dir.path())
        .env("TOCSIN_LISTEN", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains("another tocsin is already serving"),
        "{message}"
    );

    first.kill().unwrap(); // SIGKILL: no chance to flush anything
    first.wait().unwrap();

    let mut restarted = serve(dir.path(), port);
    wait_ready(&client, &url).await;
    let incident: Value = client
        .get(format!("{url}/api/v1/incidents/{incident_id}"))
        .bearer_auth("dev-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(incident["status"], "triggered");
    assert_eq!(incident["alerts"][0]["summary"], "web-1 is down");

    // The restarted daemon still knows the alert is open: a repeat is deduplicated.
    let repeat: Value = client
        .post(format!("{url}/api/v1/ingest/generic"))
        .bearer_auth("dev-ingest-token")
        .header("content-type", "application/json")
        .body(r#"{"resource":"web-1","check":"http","severity":"critical","summary":"web-1 is down"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        repeat["alerts"][0]["incident_id"].as_i64(),
        Some(incident_id)
    );
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

#[test]
fn oncall_prints_who_is_on_call_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tocsin.toml");
    std::fs::write(
        &path,
        "[[users]]\nid = \"alice\"\nname = \"Alice Martin\"\n[[schedules]]\nname = \"primary\"\ntime_zone = \"Europe/Paris\"\nrotation = { every = \"1w\", handoff = \"Mon 09:00\", users = [\"alice\"] }\n",
    )
    .unwrap();
    let output = Command::new(BINARY)
        .args(["oncall", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("primary") && text.contains("Alice Martin") && text.contains("Europe/Paris"),
        "{text}"
    );
}

#[test]
fn check_config_reports_every_error_with_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[incidents]\ngroup_window = \"5 minutes\"\n\n[[escalation_policies]]\nname = \"p\"\ntiers = [ { level = \"L1\", targets = [\"user:ghost\"] } ]\n",
    )
    .unwrap();
    let output = Command::new(BINARY)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(
        report.contains("line 2: incidents.group_window"),
        "{report}"
    );
    assert!(
        report
            .contains("line 6: escalation_policies[0].tiers[0].targets[0]: unknown user \"ghost\""),
        "{report}"
    );

    let good = Command::new(BINARY)
        .args(["check-config", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tocsin.toml"))
        .output()
        .unwrap();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
}
