//! The real binary: the README's quick start, durability across SIGKILL, and the
//! one-instance guard on a SQLite file.

use crate::harness::KillOnDrop;
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
    // The shipped config has no schedule: who a page reaches first instead.
    let shipped = project_dir();
    let output = Command::new(BINARY)
        .arg("oncall")
        .current_dir(shipped.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("policy default: oncall-l1 paged first (L1)"),
        "{text}"
    );
}

/// `tocsin check-config` on a file holding `text`: its exit code and what it printed.
fn check_config(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tocsin.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(BINARY)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    (output.status.code(), printed.into_owned())
}

#[test]
fn check_config_reports_every_error_with_line_and_exits_1() {
    let (code, report) = check_config(
        "[incidents]\ngroup_window = \"5 minutes\"\n\n[[escalation_policies]]\nname = \"p\"\ntiers = [ { level = \"L1\", targets = [\"user:ghost\"] } ]\n",
    );
    assert_eq!(code, Some(1));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_alert_that_was_answered_202() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = project_dir();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let client = crate::harness::client();
    let mut daemon = serve(dir.path(), port);
    wait_ready(&client, &url).await;

    let stop = Arc::new(AtomicBool::new(false));
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut posters = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, url, stop, taken) = (client.clone(), url.clone(), stop.clone(), taken.clone());
        posters.spawn(async move {
            let mut accepted = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let resource = format!("load-{worker}-{n}");
                let answer = client
                    .post(format!("{url}/api/v1/ingest/generic"))
                    .bearer_auth("dev-ingest-token")
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"resource":"{resource}","check":"disk","severity":"warning","summary":"load"}}"#))
                    .send()
                    .await;
                match answer {
                    Ok(reply) if reply.status() == 202 => {
                        taken.fetch_add(1, Ordering::SeqCst);
                        accepted.push(resource);
                    }
                    Ok(_) => {}
                    // The daemon is gone: stop this worker.
                    Err(_) => break,
                }
                n += 1;
            }
            accepted
        });
    }
    // Kill once the load is well under way.
    let deadline = Instant::now() + Duration::from_secs(20);
    while taken.load(Ordering::SeqCst) < 100 {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    daemon.kill().unwrap(); // SIGKILL mid-load: no chance to flush anything
    daemon.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    let accepted: Vec<String> = posters.join_all().await.into_iter().flatten().collect();
    assert!(
        accepted.len() > 50,
        "only {} alerts got in before the kill",
        accepted.len()
    );

    let mut restarted = serve(dir.path(), port);
    wait_ready(&client, &url).await;
    let stored = stored_resources(&client, &url).await;
    let lost: Vec<&String> = accepted.iter().filter(|r| !stored.contains(*r)).collect();
    assert!(
        lost.is_empty(),
        "{} answered 202 but lost: {lost:?}",
        lost.len()
    );
    eprintln!(
        "SIGKILL under load: {} alerts answered 202, all {} found after the restart",
        accepted.len(),
        accepted.len()
    );
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

/// A small tmpfs mounted over a temporary directory, unmounted when dropped; `None`
/// (with a message) where mounting is not allowed.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs here (needs root); .ci/run runs as root");
            return None;
        }
        Some(Self { dir })
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn post_big(client: &reqwest::Client, url: &str, resource: &str) -> u16 {
    let summary = "x".repeat(16 * 1024);
    client
        .post(format!("{url}/api/v1/ingest/generic"))
        .bearer_auth("dev-ingest-token")
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"resource":"{resource}","check":"disk","severity":"warning","summary":"{summary}"}}"#
        ))
        .send()
        .await
        .map_or(0, |reply| reply.status().as_u16())
}

#[tokio::test]
async fn a_full_disk_answers_503_and_recovers_without_a_restart() {
    let Some(disk) = SmallDisk::mount("6m") else {
        return;
    };
    std::fs::create_dir(disk.dir.path().join("config")).unwrap();
    std::fs::write(
        disk.dir.path().join("config/tocsin.toml"),
        tocsin::config::DEFAULT_CONFIG,
    )
    .unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let client = crate::harness::client();
    let mut daemon = serve(disk.dir.path(), port);
    wait_ready(&client, &url).await;

    // Fill the disk: every answer is 202 (stored) or 503 (refused, retry later).
    let mut accepted = Vec::new();
    let mut refused = 0;
    for n in 0..2000 {
        let resource = format!("full-{n}");
        match post_big(&client, &url, &resource).await {
            202 => accepted.push(resource),
            503 => {
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
            other => panic!("alert {n}: answered {other}, not 202 or 503"),
        }
    }
    assert_eq!(
        refused,
        3,
        "the disk never filled ({} alerts stored)",
        accepted.len()
    );

    // More room: the next alert is taken, without a restart.
    disk.remount("size=64m");
    assert_eq!(post_big(&client, &url, "after-full").await, 202);
    accepted.push("after-full".into());

    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let mut restarted = serve(disk.dir.path(), port);
    wait_ready(&client, &url).await;
    let stored = stored_resources(&client, &url).await;
    let lost: Vec<&String> = accepted.iter().filter(|r| !stored.contains(*r)).collect();
    assert!(lost.is_empty(), "answered 202 but lost: {lost:?}");
    eprintln!(
        "disk full after {} alerts (then 503), taken again once the disk grew",
        accepted.len() - 1
    );
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

/// The resource of every stored alert, through the API's pages.
async fn stored_resources(
    client: &reqwest::Client,
    url: &str,
) -> std::collections::HashSet<String> {
    let mut stored = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let page: Value = client
            .get(format!("{url}/api/v1/alerts?limit=1000{cursor}"))
            .bearer_auth("dev-admin-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for alert in page["items"].as_array().unwrap() {
            stored.insert(alert["resource"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return stored,
        }
    }
}

#[test]
fn serve_beyond_loopback_with_a_development_token_exits_1_naming_the_variable() {
    let dir = project_dir();
    let output = Command::new(BINARY)
        .arg("serve")
        .current_dir(dir.path())
        .env("TOCSIN_LISTEN", format!("0.0.0.0:{}", free_port()))
        .env("TOCSIN_INGEST_TOKEN", "a-real-ingest-secret")
        .env_remove("TOCSIN_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TOCSIN_ADMIN_TOKEN"), "{stderr}");
    assert!(
        !stderr.contains("TOCSIN_INGEST_TOKEN"),
        "that one was set: {stderr}"
    );
    assert!(
        !dir.path().join("data/tocsin.db").exists(),
        "refused before opening anything"
    );
}

#[test]
fn check_config_refuses_a_duration_over_ten_years() {
    let (code, text) = check_config("[sla.P1]\nrespond = \"14000000w\"\nresolve = \"1h\"\n");
    assert_eq!(code, Some(1));
    assert!(
        text.contains("sla.P1.respond") && text.contains("over 10 years"),
        "{text}"
    );
}

/// The README's quick-start block: the shell lines after "Send a first alert".
fn readme_quick_start() -> String {
    let readme = include_str!("../../README.md");
    let after = readme
        .split_once("Send a first alert")
        .map(|(_, rest)| rest)
        .unwrap();
    let block = after.split_once("```sh\n").unwrap().1;
    block.split_once("```").unwrap().0.to_string()
}

/// Copies the shipped runbooks beside the config, as a clone of the repository has.
fn copy_runbooks(dir: &Path) {
    let target = dir.join("runbooks");
    std::fs::create_dir(&target).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks")).unwrap() {
        let path = entry.unwrap().path();
        let copy = target.join(path.file_name().unwrap());
        std::fs::copy(&path, &copy).unwrap();
    }
}

#[tokio::test]
async fn the_readme_quick_start_shows_an_incident_its_diagnostics_and_the_page() {
    if Command::new("curl").arg("--version").output().is_err() {
        println!("skipped: curl is not installed");
        return;
    }
    let dir = project_dir();
    copy_runbooks(dir.path());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let client = crate::harness::client();
    let _tocsin = KillOnDrop(serve(dir.path(), port));
    wait_ready(&client, &url).await;

    // Verbatim, but for the port of this test.
    let script = readme_quick_start().replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let run = Command::new("sh")
        .args(["-ec", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(printed.contains("\"incident_id\":1"), "{printed}");

    // The diagnostics run ends on its own time (a real child process); wait for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let incident = loop {
        let incident: Value = client
            .get(format!("{url}/api/v1/incidents/1"))
            .bearer_auth("dev-admin-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kinds: Vec<&str> = incident["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|entry| entry["kind"].as_str())
            .collect();
        if kinds.contains(&"runbook_success") || Instant::now() > deadline {
            break incident;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let timeline = incident["timeline"].to_string();
    assert!(timeline.contains("L1 paged: oncall-l1"), "{timeline}");
    assert!(
        timeline.contains("runbook_success") && timeline.contains("== load"),
        "{timeline}"
    );
    assert_eq!(
        incident["status"], "acknowledged",
        "the last curl acknowledged it"
    );

    let pages: Vec<String> = std::fs::read_dir(dir.path().join("data/outbox"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert!(
        pages
            .iter()
            .any(|page| page.contains("oncall-l1@example.com") && page.contains("[P1] #1")),
        "{pages:?}"
    );
    let nagios: Value = client
        .get(format!("{url}/api/v1/alerts?source=nagios"))
        .bearer_auth("dev-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nagios["items"][0]["resource"], "db-01", "{nagios}");
    // With no schedule, the dashboard says who a page reaches first.
    let panel = client
        .get(format!("{url}/dashboard/panel"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        panel.contains("oncall-l1") && panel.contains("paged first"),
        "{panel}"
    );
}

#[tokio::test]
async fn a_stop_does_not_wait_for_an_open_dashboard_stream() {
    let dir = project_dir();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let client = crate::harness::client();
    let mut tocsin = KillOnDrop(serve(dir.path(), port));
    wait_ready(&client, &url).await;
    // A dashboard left open somewhere: its live stream never ends by itself.
    let stream = client
        .get(format!("{url}/api/v1/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let stopped_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(tocsin.0.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = tocsin.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 20 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(15),
        "{:?}",
        stopped_at.elapsed()
    );
    drop(stream);
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let output = Command::new(BINARY).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        Ok(head) if head.status.success() => {
            let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
            assert!(
                version.contains(&format!("commit {head}")),
                "{version} vs {head}"
            );
        }
        _ => println!("skipped the commit check: not a git checkout"),
    }
}

/// What a slow or stalled client gets from `server.client_timeout` (1 s here): a
/// connection that sends nothing, or whose request headers never end, is closed,
/// a body not whole within it (stalled, or trickling a byte at a time) is 408, and a body declared past `max_body_bytes` is 413 after the
/// bounded drain without waiting for bytes that never come (spec §10).
#[tokio::test]
async fn a_stalled_client_is_answered_or_closed_instead_of_held() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = project_dir();
    let file = dir.path().join("config/tocsin.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("client_timeout = \"75s\""),
        "the shipped default"
    );
    std::fs::write(
        &file,
        text.replace("client_timeout = \"75s\"", "client_timeout = \"1s\""),
    )
    .unwrap();
    let port = free_port();
    let mut daemon = serve(dir.path(), port);
    let client = crate::harness::client();
    wait_ready(&client, &format!("http://127.0.0.1:{port}")).await;

    // Everything the server says before closing, or None if it held on for 20 s.
    let exchange = |request: &'static [u8]| async move {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), async {
            let _ = stream.read_to_end(&mut answer).await;
        })
        .await
        .ok()
        .map(|()| String::from_utf8_lossy(&answer).into_owned())
    };
    let silent = exchange(b"");
    // Shorter than HTTP/2's 24-byte preface, and complete: answered, then closed.
    let short = exchange(b"GET / HTTP/1.0\r\n\r\n");
    let unfinished_headers = exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    let stalled_body = exchange(
        b"POST /api/v1/ingest/generic HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-ingest-token\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"resource\":",
    );
    let declared_huge = exchange(
        b"POST /api/v1/ingest/generic HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-ingest-token\r\nContent-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n",
    );
    let stalled_api_body = exchange(
        b"POST /api/v1/silences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-admin-token\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"matchers\":",
    );
    let asks_first = exchange(
        b"POST /api/v1/ingest/generic HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-ingest-token\r\nContent-Type: application/json\r\nContent-Length: 2000000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    );
    // Never silent for the whole second, never done: a space every 300 ms of 100.
    let trickled = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (mut reader, mut writer) = stream.into_split();
        writer.write_all(b"POST /api/v1/ingest/generic HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-ingest-token\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n").await.unwrap();
        let trickle = tokio::spawn(async move {
            for _ in 0..100 {
                if writer.write_all(b" ").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(20), async {
            while !String::from_utf8_lossy(&answer).contains("client_timeout") {
                match reader.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await;
        let answered_while_trickling = !trickle.is_finished();
        trickle.abort();
        (
            String::from_utf8_lossy(&answer).into_owned(),
            answered_while_trickling,
        )
    };
    let (
        silent,
        short,
        unfinished_headers,
        stalled_body,
        declared_huge,
        asks_first,
        stalled_api_body,
        (trickled, answered_while_trickling),
    ) = tokio::join!(
        silent,
        short,
        unfinished_headers,
        stalled_body,
        declared_huge,
        asks_first,
        stalled_api_body,
        trickled
    );

    // The daemon still serves, and nothing was stored from either body.
    let alerts: Value = client
        .get(format!("http://127.0.0.1:{port}/api/v1/alerts"))
        .bearer_auth("dev-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    daemon.kill().unwrap();
    let _ = daemon.wait();

    assert_eq!(
        silent.as_deref(),
        Some(""),
        "a client that sends nothing is closed"
    );
    let short = short.expect("a short request is answered");
    assert!(short.starts_with("HTTP/1.0 200"), "{short}");
    let closed = unfinished_headers.expect("a connection without its headers is closed");
    assert!(!closed.contains("200 OK"), "{closed}");
    let stalled = stalled_body.expect("a stalled body is answered");
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
    assert!(stalled.contains("server.client_timeout"), "{stalled}");
    let stalled = stalled_api_body.expect("a stalled API body is answered");
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
    assert!(stalled.contains("server.client_timeout"), "{stalled}");
    assert!(trickled.starts_with("HTTP/1.1 408"), "{trickled}");
    assert!(
        answered_while_trickling,
        "cut off by the deadline, not by the body's end"
    );
    let huge = declared_huge.expect("a body declared too large is answered");
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    assert!(huge.contains("max_body_bytes"), "{huge}");
    // Not invited to send what would be refused.
    let asks_first = asks_first.expect("a 100-continue client is answered");
    assert!(asks_first.starts_with("HTTP/1.1 413"), "{asks_first}");
    assert_eq!(
        alerts["items"].as_array().map(Vec::len),
        Some(0),
        "{alerts}"
    );
}

/// Started the way systemd starts a service, with a low soft limit on open files
/// (64 here, 1,024 there), it still serves more connections at once than that.
#[tokio::test]
async fn more_connections_than_the_soft_open_files_limit_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const HELD: usize = 120;
    let hard = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .to_string();
            line.split_whitespace().nth(4).map(str::to_string)
        })
        .unwrap_or_default();
    if hard != "unlimited" && hard.parse::<usize>().unwrap_or(0) < 1024 {
        println!("skipped: the hard limit on open files ({hard}) leaves no room to raise");
        return;
    }
    let dir = project_dir();
    let port = free_port();
    let mut daemon = KillOnDrop(
        Command::new("/bin/sh")
            .args(["-c", "ulimit -S -n 64 && exec \"$0\" serve", BINARY])
            .current_dir(dir.path())
            .env("TOCSIN_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = crate::harness::client();
    wait_ready(&client, &format!("http://127.0.0.1:{port}")).await;
    let mut held = Vec::new();
    for n in 0..HELD {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer)).await;
        let answer = match read {
            Ok(Ok(length)) => String::from_utf8_lossy(&answer[..length]).into_owned(),
            _ => String::new(),
        };
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "connection {n} of {HELD} held open at once was not served: {answer:?}"
        );
        held.push(stream);
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.0.id())).unwrap();
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .unwrap_or_default()
        .to_string();
    assert!(
        soft.parse::<u64>()
            .is_ok_and(|soft| soft > 64 && soft <= 65_536),
        "raised, at most 65,536: {limits}"
    );
    drop(held);
    daemon.0.kill().unwrap();
}

/// `tocsin … | head -1`: a reader that stops reading is not the command's failure
/// (it panicked on the broken pipe, exit 101 with a backtrace).
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = project_dir();
    for args in [&["--print-default-config"][..], &["check-config"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(BINARY)
            .args(args)
            .current_dir(dir.path())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Each `send-test-alert` walks the chain anew: a second one is a new incident, not
/// a repeat of the first that pages nobody.
#[tokio::test]
async fn each_test_alert_opens_an_incident_of_its_own() {
    let dir = project_dir();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let client = crate::harness::client();
    let _tocsin = KillOnDrop(serve(dir.path(), port));
    wait_ready(&client, &url).await;
    let mut printed = Vec::new();
    for _ in 0..2 {
        let output = Command::new(BINARY)
            .args(["send-test-alert", "--url", &url])
            .env("TOCSIN_TOKEN", "dev-admin-token")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        printed.push(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    assert!(printed[0].contains("opened incident #1"), "{printed:?}");
    assert!(printed[1].contains("opened incident #2"), "{printed:?}");
}
