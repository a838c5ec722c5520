//! Runbooks with real child processes: the shipped scripts, run against stand-in
//! `systemctl` and `chpasswd` commands placed first on the runbook's PATH.

use crate::harness::{Harness, RESPONDER, timeline_kinds};
use crate::smtp_sink::SmtpSink;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A copy of the shipped runbooks whose PATH starts with a directory of stand-ins.
struct Bench {
    _dir: tempfile::TempDir,
    runbooks: PathBuf,
    standins: PathBuf,
}

impl Bench {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let runbooks = dir.path().join("runbooks");
        let standins = dir.path().join("bin");
        std::fs::create_dir_all(&runbooks).unwrap();
        std::fs::create_dir_all(&standins).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
        for entry in std::fs::read_dir(&shipped).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let text = if path.extension().is_some_and(|e| e == "toml") {
                format!("path = \"{}:/usr/bin:/bin\"\n{text}", standins.display())
            } else {
                text
            };
            std::fs::write(runbooks.join(&name), text).unwrap();
            std::fs::set_permissions(runbooks.join(&name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let bench = Self {
            _dir: dir,
            runbooks,
            standins,
        };
        // `sleep` returns at once so restart-service does not wait for the service to settle.
        bench.standin("sleep", "exit 0");
        bench
    }

    fn standin(&self, name: &str, body: &str) {
        let path = self.standins.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A `systemctl` that logs its arguments and exits with `code`.
    fn systemctl(&self, code: i32) -> PathBuf {
        let log = self.standins.join("systemctl.log");
        self.standin(
            "systemctl",
            &format!(
                "echo \"$@\" >> {}\necho \"systemctl $*\"\nexit {code}",
                log.display()
            ),
        );
        log
    }

    fn config(&self, extra: &str) -> String {
        format!("[runbooks]\ndir = \"{}\"\n{extra}", self.runbooks.display())
    }
}

fn down_alert(resource: &str, service: &str) -> Vec<u8> {
    json!({ "resource": resource, "check": format!("{service} down"), "severity": "critical", "summary": "service stopped", "labels": { "service": service } })
        .to_string()
        .into_bytes()
}

async fn incident_when(
    tocsin: &Harness,
    id: i64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
        if done(&incident) {
            return incident;
        }
        assert!(
            Instant::now() < deadline,
            "waited 15 s for {what}: {incident}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn restart_service_fixes_a_stopped_service_and_resolves_the_incident() {
    let bench = Bench::new();
    let calls = bench.systemctl(0);
    let tocsin = Harness::start(&bench.config("")).await;
    let reply = tocsin
        .ingest_ok("generic", &down_alert("localhost", "nginx"))
        .await;
    let id = reply["alerts"][0]["incident_id"].as_i64().unwrap();
    let incident = incident_when(&tocsin, id, "the runbook to resolve the incident", |i| {
        i["status"] == "resolved"
    })
    .await;
    let timeline = timeline_kinds(&incident);
    assert!(
        timeline.contains(&"runbook_started".to_string())
            && timeline.contains(&"auto_remediated".to_string()),
        "{timeline:?}"
    );
    let output = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "runbook_success")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(output.contains("nginx is active again"), "{output}");
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "restart -- nginx\nis-active --quiet -- nginx\n"
    );
    assert_eq!(
        tocsin
            .metric(r#"tocsin_runbook_runs_total{outcome="success",runbook="restart-service"}"#)
            .await,
        1.0
    );
    let runbooks = tocsin.get("/api/v1/runbooks").await;
    let restart = runbooks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "restart-service")
        .unwrap()
        .clone();
    assert_eq!(restart["last_runs"][0]["status"], "success");
    assert_eq!(restart["last_runs"][0]["exit_code"], 0);
    let kpi = tocsin.get("/api/v1/kpi").await;
    assert_eq!(
        kpi["overall"]["auto_remediation_rate"], 1.0,
        "counted as automated remediation"
    );
    assert_eq!(kpi["overall"]["fcr_rate"], 1.0);
}

#[tokio::test]
async fn a_failing_runbook_escalates_at_once() {
    let bench = Bench::new();
    bench.systemctl(1);
    let extra = "[[users]]\nid = \"alice\"\nemail = \"alice@example.com\"\n[[users]]\nid = \"carol\"\nemail = \"carol@example.com\"\n[[escalation_policies]]\nname = \"default\"\ntiers = [ { level = \"L1\", targets = [\"user:alice\"] }, { level = \"L2\", targets = [\"user:carol\"], after = \"30m\" } ]\n";
    let tocsin = Harness::start(&bench.config(extra)).await;
    let id = tocsin
        .ingest_ok("generic", &down_alert("localhost", "nginx"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    let incident = incident_when(&tocsin, id, "the failed run to escalate", |i| {
        i["escalation_level"] == "L2"
    })
    .await;
    assert_eq!(incident["status"], "triggered");
    assert!(timeline_kinds(&incident).contains(&"escalated_by_runbook".to_string()));
    assert_eq!(
        tocsin.get("/api/v1/kpi").await["overall"]["escalation_rate"],
        1.0
    );
    assert_eq!(
        tocsin
            .metric(r#"tocsin_runbook_runs_total{outcome="failure",runbook="restart-service"}"#)
            .await,
        1.0
    );
}

#[tokio::test]
async fn injection_attempts_never_run_and_say_why() {
    let bench = Bench::new();
    let calls = bench.systemctl(0);
    let tocsin = Harness::start(&bench.config("")).await;
    let hostile_values = [
        "nginx; rm -rf /",
        "$(reboot)",
        "nginx\nreboot",
        "`id`",
        "a|b",
        &"x".repeat(1_000),
    ];
    for (i, hostile) in hostile_values.iter().enumerate() {
        let body = json!({ "resource": format!("web-{i}"), "check": "svc down", "severity": "critical", "summary": "s", "labels": { "service": hostile } });
        let id = tocsin
            .ingest_ok("generic", body.to_string().as_bytes())
            .await["alerts"][0]["incident_id"]
            .as_i64()
            .unwrap();
        let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
        let refused = incident["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "runbook_refused")
            .unwrap_or_else(|| panic!("a refusal on the timeline: {incident}"));
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("parameter service"),
            "{refused}"
        );
    }
    // The resource is a parameter too.
    let body = json!({ "resource": "web-1;reboot", "check": "svc down", "severity": "critical", "summary": "s", "labels": { "service": "nginx" } });
    tocsin
        .ingest_ok("generic", body.to_string().as_bytes())
        .await;
    let (status, error) = tocsin
        .post_as(
            RESPONDER,
            "/api/v1/runbooks/restart-service/run",
            json!({ "params": { "service": "$(reboot)", "host": "localhost" } }),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("parameter service")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!calls.exists(), "systemctl never ran");
    assert_eq!(
        tocsin
            .metric(r#"tocsin_runbook_runs_total{outcome="refused",runbook="restart-service"}"#)
            .await,
        7.0
    );
}

#[tokio::test]
async fn cooldown_and_the_hourly_cap_hold_under_an_alert_storm() {
    let bench = Bench::new();
    let calls = bench.systemctl(0);
    let tocsin = Harness::start(&bench.config("")).await;
    // The same service on one host, again and again (each resolved by its run), then
    // the storm spreads to twenty hosts.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = tocsin
            .ingest_ok("generic", &down_alert("localhost", "nginx"))
            .await["alerts"][0]["incident_id"]
            .as_i64()
            .unwrap();
        ids.push(id);
        incident_when(&tocsin, id, "the run", |i| {
            timeline_kinds(i)
                .iter()
                .any(|k| k == "runbook_refused" || k == "auto_remediated")
        })
        .await;
    }
    for host in 0..20 {
        tocsin
            .ingest_ok(
                "generic",
                &down_alert(&format!("web-{host}.example.net"), "nginx"),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarts = std::fs::read_to_string(&calls)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("restart"))
        .count();
    assert_eq!(
        restarts, 1,
        "the local service once; the cooldown refused the repeats and remote hosts go through ssh"
    );
    let runs = tocsin.get("/api/v1/runbooks").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "restart-service")
        .unwrap()["last_runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(runs, 3, "max_runs_per_hour = 3, whatever the storm");
    let first = tocsin.get(&format!("/api/v1/incidents/{}", ids[1])).await;
    let refused = first["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "runbook_refused")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        refused.contains("cooldown"),
        "the same target again within 10 minutes: {refused}"
    );
    assert!(
        tocsin
            .metric(r#"tocsin_runbook_runs_total{outcome="refused",runbook="restart-service"}"#)
            .await
            >= 19.0
    );
}

#[tokio::test]
async fn reset_password_emails_the_new_password_which_appears_nowhere_else() {
    let bench = Bench::new();
    let shadow = bench.standins.join("chpasswd.input");
    bench.standin("chpasswd", &format!("cat > {}", shadow.display()));
    bench.standin("chage", "exit 0");
    let smtp = SmtpSink::start().await;
    let tocsin = Harness::start(&bench.config(&format!(
        "[email]\ntransport = \"smtp\"\nport = {}\n",
        smtp.port
    )))
    .await;
    let body = json!({ "resource": "ad-01", "check": "account locked", "severity": "error", "summary": "jdoe is locked out", "labels": { "user": "jdoe", "email": "jdoe@example.com" } });
    let id = tocsin
        .ingest_ok("generic", body.to_string().as_bytes())
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    let incident = incident_when(&tocsin, id, "the reset", |i| i["status"] == "resolved").await;
    let set = std::fs::read_to_string(&shadow).unwrap();
    let password = set
        .trim()
        .strip_prefix("jdoe:")
        .expect("chpasswd got user:password")
        .to_string();
    assert!(
        password.len() >= 20,
        "a strong password: {}",
        password.len()
    );
    let mail = smtp.to("jdoe@example.com");
    assert_eq!(mail.len(), 1);
    assert!(mail[0].text().contains(&password), "the email carries it");
    let everything = [
        incident.to_string(),
        tocsin.get("/api/v1/runbooks").await.to_string(),
        tocsin.get("/api/v1/alerts").await.to_string(),
        tocsin.get("/api/v1/incidents?limit=10").await.to_string(),
    ];
    for text in everything {
        assert!(
            !text.contains(&password),
            "the password leaked into an API response"
        );
    }
    assert!(timeline_kinds(&incident).contains(&"auto_remediated".to_string()));
}

#[tokio::test]
async fn runbooks_can_be_run_by_hand_and_bad_requests_are_refused() {
    let bench = Bench::new();
    let calls = bench.systemctl(0);
    let tocsin = Harness::start(&bench.config("")).await;
    let (status, reply) = tocsin
        .post_as(
            RESPONDER,
            "/api/v1/runbooks/restart-service/run",
            json!({ "params": { "service": "nginx", "host": "localhost" } }),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    assert!(reply["run_id"].is_i64());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !calls.exists() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = tocsin
        .post_as(RESPONDER, "/api/v1/runbooks/nope/run", json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, error) = tocsin
        .post_as(
            RESPONDER,
            "/api/v1/runbooks/restart-service/run",
            json!({ "params": { "service": "nginx" } }),
        )
        .await;
    assert_eq!(status, 400);
    assert!(error["detail"].as_str().unwrap().contains("parameter host"));
    let (status, _) = tocsin
        .post_as(
            crate::harness::VIEWER,
            "/api/v1/runbooks/restart-service/run",
            json!({}),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn wait_for_recovery_resolves_with_the_senders_recovery_or_escalates_when_none_comes() {
    let bench = Bench::new();
    bench.systemctl(0);
    // A copy of restart-service that waits for the sender instead of resolving.
    let manifest = std::fs::read_to_string(bench.runbooks.join("restart-service.toml"))
        .unwrap()
        .replace(
            "on_success = \"resolve\"",
            "on_success = \"wait_for_recovery\"",
        )
        .replace("cooldown = \"10m\"", "cooldown = \"0s\"");
    std::fs::write(bench.runbooks.join("restart-service.toml"), manifest).unwrap();
    let extra = "[[users]]\nid = \"alice\"\nemail = \"alice@example.com\"\n[[users]]\nid = \"carol\"\nemail = \"carol@example.com\"\n[[escalation_policies]]\nname = \"default\"\ntiers = [ { level = \"L1\", targets = [\"user:alice\"] }, { level = \"L2\", targets = [\"user:carol\"], after = \"30m\" } ]\n";
    let tocsin = Harness::start(&bench.config(extra)).await;
    let recovered = tocsin
        .ingest_ok("generic", &down_alert("localhost", "nginx"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    incident_when(&tocsin, recovered, "the run to wait", |i| {
        timeline_kinds(i).contains(&"runbook_waiting".to_string())
    })
    .await;
    assert_eq!(
        tocsin.get(&format!("/api/v1/incidents/{recovered}")).await["status"],
        "triggered",
        "not resolved by the run itself"
    );
    let recovery = json!({ "resource": "localhost", "check": "nginx down", "status": "resolved", "summary": "ok" });
    tocsin
        .ingest_ok("generic", recovery.to_string().as_bytes())
        .await;
    tocsin.tick().await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{recovered}")).await;
    assert_eq!(incident["status"], "resolved");
    assert!(timeline_kinds(&incident).contains(&"auto_remediated".to_string()));

    let silent = tocsin
        .ingest_ok("generic", &down_alert("localhost", "redis"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    incident_when(&tocsin, silent, "the run to wait", |i| {
        timeline_kinds(i).contains(&"runbook_waiting".to_string())
    })
    .await;
    tocsin.clock.advance(chrono::TimeDelta::minutes(6));
    tocsin.tick().await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{silent}")).await;
    assert_eq!(
        incident["escalation_level"], "L2",
        "no recovery within recovery_timeout: escalated at once"
    );
    let runs = tocsin.get("/api/v1/runbooks").await;
    let statuses: Vec<String> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "restart-service")
        .unwrap()["last_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["recovery_missed", "recovered"]);
}

#[tokio::test]
async fn a_run_cut_short_by_a_stop_is_recorded_interrupted_and_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slow-fix.toml"),
        "command = [\"/bin/sh\", \"-c\", \"sleep 5\"]\nmatch = ['check=\"slowfix\"']\n",
    )
    .unwrap();
    let extra = format!("[runbooks]\ndir = \"{}\"\n", dir.path().display());
    let tocsin = Harness::start(&extra).await;
    let id = tocsin
        .ingest_ok(
            "generic",
            &crate::harness::generic("app-1", "slowfix", "critical"),
        )
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    let tocsin = tocsin.restart().await;
    // Long past the run's lease: nothing may take it for lost and fail it.
    tocsin.clock.advance(chrono::TimeDelta::seconds(30));
    tocsin.tick().await;
    let runs = tocsin.get("/api/v1/runbooks").await;
    assert_eq!(
        runs["items"][0]["last_runs"][0]["status"], "interrupted",
        "{runs}"
    );
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    let kinds = timeline_kinds(&incident);
    assert!(
        kinds.contains(&"runbook_interrupted".to_string()),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"runbook_failure".to_string()), "{kinds:?}");
}
