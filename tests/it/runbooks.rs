//! Runbooks with real child processes: the shipped scripts, run against stand-in
//! `systemctl` and `chpasswd` commands placed first on the runbook's PATH.

use crate::harness::{Harness, RESPONDER, timeline_kinds};
use crate::sms_gateway::SmsGateway;
use crate::smtp_sink::SmtpSink;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A copy of the shipped runbooks whose PATH starts with a directory of stand-ins;
/// restart-service may restart nginx and redis, and reset-password reads the
/// directory file `directory`.
struct Bench {
    _dir: tempfile::TempDir,
    runbooks: PathBuf,
    standins: PathBuf,
    directory: PathBuf,
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
                    .replace("allowed = []", "allowed = [\"nginx\", \"redis\"]")
            } else {
                text
            };
            let text = if name == "reset-password.toml" {
                format!(
                    "{text}\n[env]\nTOCSIN_PASSWORD_DIRECTORY = \"{}\"\n",
                    dir.path().join("directory").display()
                )
            } else {
                text
            };
            std::fs::write(runbooks.join(&name), text).unwrap();
            std::fs::set_permissions(runbooks.join(&name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let bench = Self {
            directory: dir.path().join("directory"),
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

    /// restart-service and reset-password enabled.
    fn config(&self, extra: &str) -> String {
        self.config_enabling(&["restart-service", "reset-password"], extra)
    }

    fn config_enabling(&self, enabled: &[&str], extra: &str) -> String {
        format!(
            "[runbooks]\ndir = \"{}\"\nenabled = {enabled:?}\n{extra}",
            self.runbooks.display()
        )
    }

    /// Accounts as `id` reports them, a directory file, and a `chpasswd` and `chage`
    /// that only log; returns the log of `chpasswd`'s input.
    fn accounts(&self) -> PathBuf {
        self.standin(
            "id",
            "case \"$3\" in\n\
             jdoe) uid=1001; groups=\"jdoe users\" ;;\n\
             stray) uid=1003; groups=\"stray users\" ;;\n\
             mallory) uid=1002; groups=\"mallory sudo\" ;;\n\
             root) uid=0; groups=root ;;\n\
             *) echo \"id: $3: no such user\" >&2; exit 1 ;;\n\
             esac\n\
             case \"$1\" in -u) echo $uid ;; -Gn) echo $groups ;; esac",
        );
        std::fs::write(
            &self.directory,
            "jdoe jdoe@example.com\nstray stray@elsewhere.example\nmallory mallory@example.com\nroot root@example.com\n",
        )
        .unwrap();
        let changed = self.standins.join("chpasswd.input");
        self.standin("chpasswd", &format!("cat >> {}", changed.display()));
        self.standin("chage", "exit 0");
        changed
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
    // Both, not the level alone: the API reads the timeline before the incident, so
    // the escalation's commit may land between the two reads and show L2 beside the
    // timeline before it (this failed 4 times in 6 on main).
    let incident = incident_when(&tocsin, id, "the failed run to escalate", |i| {
        i["escalation_level"] == "L2"
            && timeline_kinds(i).contains(&"escalated_by_runbook".to_string())
    })
    .await;
    assert_eq!(incident["status"], "triggered");
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

/// alice at example.com makes it a secret domain; L2 pages 30 minutes in.
const PAGING: &str = "[[users]]\nid = \"alice\"\nemail = \"alice@example.com\"\n[[users]]\nid = \"carol\"\nemail = \"carol@example.com\"\n[[escalation_policies]]\nname = \"default\"\ntiers = [ { level = \"L1\", targets = [\"user:alice\"] }, { level = \"L2\", targets = [\"user:carol\"], after = \"30m\" } ]\n";

fn locked(user: &str) -> Vec<u8> {
    json!({ "resource": format!("ad-{user}"), "check": "account locked", "severity": "error", "summary": format!("{user} is locked out"), "labels": { "user": user, "email": "evil@attacker.example" } })
        .to_string()
        .into_bytes()
}

fn entry_of(incident: &Value, kind: &str) -> Value {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} on the timeline: {incident}"))
        .clone()
}

#[tokio::test]
async fn an_alert_cannot_choose_where_a_password_goes_nor_whose_it_resets() {
    let bench = Bench::new();
    let changed = bench.accounts();
    let smtp = SmtpSink::start().await;
    let extra = format!(
        "[email]\ntransport = \"smtp\"\nport = {}\n{PAGING}",
        smtp.port
    );
    let tocsin = Harness::start(&bench.config(&extra)).await;
    let id = incident_of(&tocsin, &locked("jdoe")).await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    let pending = entry_of(&incident, "runbook_pending_approval");
    assert!(
        pending["message"].as_str().unwrap().contains(&format!(
            "/api/v1/incidents/{id}/runbooks/reset-password/approve"
        )),
        "{pending}"
    );
    assert_eq!(
        pending["data"]["params"],
        json!({ "user": "jdoe" }),
        "no email parameter"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !changed.exists(),
        "nothing changes before a responder approves"
    );

    let approve = format!("/api/v1/incidents/{id}/runbooks/reset-password/approve");
    let (status, reply) = tocsin
        .post_as(crate::harness::VIEWER, &approve, json!({}))
        .await;
    assert_eq!(status, 403, "{reply}");
    let unknown = format!("/api/v1/incidents/{id}/runbooks/nope/approve");
    let (status, reply) = tocsin.post_as(RESPONDER, &unknown, json!({})).await;
    assert_eq!(status, 404, "a runbook that does not exist: {reply}");
    let (status, reply) = tocsin.post_as(RESPONDER, &approve, json!({})).await;
    assert_eq!(status, 202, "{reply}");
    assert!(reply["run_id"].is_i64());
    let incident = incident_when(&tocsin, id, "the reset", |i| i["status"] == "resolved").await;
    let kinds = timeline_kinds(&incident);
    for kind in [
        "runbook_approved",
        "runbook_started",
        "runbook_success",
        "auto_remediated",
    ] {
        assert!(kinds.contains(&kind.to_string()), "{kind}: {kinds:?}");
    }
    assert_eq!(entry_of(&incident, "runbook_approved")["actor"], "oncall");
    let set = std::fs::read_to_string(&changed).unwrap();
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
    assert_eq!(mail.len(), 1, "the address in the directory gets it");
    assert!(mail[0].text().contains(&password));
    let everything = [
        incident.to_string(),
        tocsin.get("/api/v1/runbooks").await.to_string(),
        tocsin.get("/api/v1/alerts").await.to_string(),
    ];
    for text in everything {
        assert!(
            !text.contains(&password),
            "the password leaked into an API response"
        );
    }
    let (status, _) = tocsin.post_as(RESPONDER, &approve, json!({})).await;
    assert_eq!(status, 409, "approved once");

    // Privileged accounts and accounts the directory does not know change nothing.
    for (user, why) in [
        ("root", "system account (uid 0)"),
        ("mallory", "protected group sudo"),
        ("ghost", "unknown to the local directory"),
    ] {
        let id = tocsin.ingest_ok("generic", &locked(user)).await["alerts"][0]["incident_id"]
            .as_i64()
            .unwrap();
        let approve = format!("/api/v1/incidents/{id}/runbooks/reset-password/approve");
        let (status, reply) = tocsin.post_as(RESPONDER, &approve, json!({})).await;
        assert_eq!(status, 202, "{reply}");
        let incident = incident_when(&tocsin, id, "the refusal", |i| {
            timeline_kinds(i).contains(&"runbook_failure".to_string())
        })
        .await;
        let failure = entry_of(&incident, "runbook_failure")["message"].to_string();
        assert!(failure.contains(why), "{user}: {failure}");
        assert_eq!(incident["escalation_level"], "L2", "escalated at once");
    }
    assert_eq!(
        std::fs::read_to_string(&changed).unwrap(),
        set,
        "no other password changed"
    );

    // A directory address outside the secret domains never receives the secret.
    let id = tocsin.ingest_ok("generic", &locked("stray")).await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    let approve = format!("/api/v1/incidents/{id}/runbooks/reset-password/approve");
    tocsin.post_as(RESPONDER, &approve, json!({})).await;
    let incident = incident_when(&tocsin, id, "the refused delivery", |i| {
        timeline_kinds(i).contains(&"runbook_failure".to_string())
    })
    .await;
    let failure = entry_of(&incident, "runbook_failure")["message"].to_string();
    assert!(failure.contains("secret_domains"), "{failure}");
    assert_eq!(
        std::fs::read_to_string(&changed).unwrap(),
        set,
        "refused before the password changed: nobody is left locked out"
    );
    assert!(smtp.to("stray@elsewhere.example").is_empty());
    assert!(
        smtp.to("evil@attacker.example").is_empty(),
        "never the alert's address"
    );
}

/// Pages by email and SMS (a webhook gateway) to alice, whose replies come as JSON.
fn paged_by_mail_and_sms(smtp: &SmtpSink, sms: &SmsGateway) -> String {
    format!(
        "[email]\ntransport = \"smtp\"\nport = {}\n[sms]\nprovider = \"webhook\"\nurl = \"{}/hook\"\ninbound_token = \"sms-inbound-token\"\n\
         [[users]]\nid = \"alice\"\nemail = \"alice@example.com\"\nphone = \"+33600000001\"\n\
         notify = [ {{ channel = \"email\", after = \"0s\" }}, {{ channel = \"sms\", after = \"0s\" }} ]\n\
         [[escalation_policies]]\nname = \"default\"\ntiers = [ {{ level = \"L1\", targets = [\"user:alice\"] }} ]\n",
        smtp.port, sms.url
    )
}

#[tokio::test]
async fn the_page_carries_an_approve_link_a_get_never_uses_and_sms_approve_works() {
    let bench = Bench::new();
    let changed = bench.accounts();
    let smtp = SmtpSink::start().await;
    let sms = SmsGateway::start().await;
    let tocsin = Harness::start(&bench.config(&paged_by_mail_and_sms(&smtp, &sms))).await;
    let id = incident_of(&tocsin, &locked("jdoe")).await;
    tocsin.tick().await;
    let mail = smtp.to("alice@example.com")[0].text();
    let start = mail
        .find("Approve runbook reset-password (user=jdoe): ")
        .unwrap_or_else(|| panic!("an approve link in the page: {mail}"));
    let url: String = mail[start..].split_whitespace().nth(4).unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}/approve/", tocsin.url)),
        "{url}"
    );
    let text = sms.hooks.lock().unwrap()[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&format!("APPROVE {id}")), "{text}");
    assert!(
        text.contains("reset-password (user=jdoe)"),
        "the SMS says whose password it would reset: {text}"
    );

    // A mail scanner fetching the link approves nothing.
    let shown = tocsin.client.get(&url).send().await.unwrap();
    assert_eq!(shown.status(), 200);
    let html = shown.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\">") && html.contains("reset-password"),
        "{html}"
    );
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert!(!timeline_kinds(&incident).contains(&"runbook_approved".to_string()));
    let forged = tocsin.client.post(format!("{url}x")).send().await.unwrap();
    assert_eq!(forged.status(), 403);

    let approved = tocsin.client.post(&url).send().await.unwrap();
    assert_eq!(approved.status(), 200, "{}", approved.text().await.unwrap());
    let incident = incident_when(&tocsin, id, "the reset", |i| i["status"] == "resolved").await;
    assert_eq!(
        entry_of(&incident, "runbook_approved")["actor"],
        "alice (email link)"
    );
    assert!(
        std::fs::read_to_string(&changed)
            .unwrap()
            .starts_with("jdoe:")
    );
    let again = tocsin.client.post(&url).send().await.unwrap();
    assert_eq!(again.status(), 410, "approved once");

    // By SMS: APPROVE <id> from the paged phone.
    let id = incident_of(&tocsin, &locked("stray")).await;
    let reply = |body: String| {
        tocsin
            .client
            .post(format!(
                "{}/api/v1/sms/inbound?token=sms-inbound-token",
                tocsin.url
            ))
            .json(&json!({ "from": "+33600000001", "body": body }))
            .send()
    };
    let answer = reply(format!("APPROVE {id}")).await.unwrap();
    assert_eq!(answer.status(), 200);
    let said = answer.text().await.unwrap();
    assert!(
        said.contains("approved reset-password on user=stray"),
        "{said}"
    );
    let incident = incident_when(&tocsin, id, "the run", has("runbook_failure")).await;
    assert_eq!(
        entry_of(&incident, "runbook_approved")["actor"],
        "alice (sms)"
    );
    let answer = reply(format!("APPROVE {id}")).await.unwrap();
    assert_eq!(answer.status(), 409, "nothing waits any more");
}

/// A proposal ends with its incident: resolved, it says once that the run will not
/// happen, and no later expiry writes on the resolved incident.
#[tokio::test]
async fn a_waiting_proposal_ends_when_its_incident_resolves() {
    let bench = Bench::new();
    let changed = bench.accounts();
    let tocsin = Harness::start(&bench.config(PAGING)).await;
    let id = incident_of(&tocsin, &locked("jdoe")).await;
    let (status, reply) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/resolve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    let withdrawn = entry_of(&incident, "runbook_approval_expired");
    assert!(
        withdrawn["message"]
            .as_str()
            .unwrap()
            .contains("before the incident resolved"),
        "{withdrawn}"
    );
    tocsin.clock.advance(chrono::TimeDelta::minutes(16));
    tocsin.tick().await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(
        timeline_kinds(&incident)
            .iter()
            .filter(|kind| *kind == "runbook_approval_expired")
            .count(),
        1,
        "{incident}"
    );
    let (status, _) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/runbooks/reset-password/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!changed.exists(), "it never ran");
}

#[tokio::test]
async fn an_unapproved_run_expires_and_paging_goes_on() {
    let bench = Bench::new();
    let changed = bench.accounts();
    let tocsin = Harness::start(&bench.config(PAGING)).await;
    let id = incident_of(&tocsin, &locked("jdoe")).await;
    tocsin.clock.advance(chrono::TimeDelta::minutes(14));
    tocsin.tick().await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert!(!timeline_kinds(&incident).contains(&"runbook_approval_expired".to_string()));
    tocsin.clock.advance(chrono::TimeDelta::minutes(2));
    tocsin.tick().await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    let expired = entry_of(&incident, "runbook_approval_expired");
    assert!(
        expired["message"].as_str().unwrap().contains("did not run"),
        "{expired}"
    );
    let (status, reply) = tocsin
        .post_as(
            RESPONDER,
            &format!("/api/v1/incidents/{id}/runbooks/reset-password/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    assert!(
        reply["detail"].as_str().unwrap().contains("expired"),
        "{reply}"
    );
    assert_eq!(incident["escalation_level"], "L1");
    tocsin.clock.advance(chrono::TimeDelta::minutes(15));
    tocsin.tick().await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(
        incident["escalation_level"], "L2",
        "normal escalation went on"
    );
    assert_eq!(incident["status"], "triggered");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!changed.exists(), "it never ran");
    let runs = tocsin.get("/api/v1/runbooks").await;
    let reset = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "reset-password")
        .unwrap()
        .clone();
    assert_eq!(reset["last_runs"][0]["status"], "approval_expired");
    assert_eq!(reset["approval"], "responder");
}

#[tokio::test]
async fn runbooks_not_enabled_never_run_on_their_own_and_only_an_admin_runs_one_by_hand() {
    let bench = Bench::new();
    let calls = bench.systemctl(0);
    let tocsin = Harness::start(&bench.config_enabling(&[], "")).await;
    let id = tocsin
        .ingest_ok("generic", &down_alert("localhost", "nginx"))
        .await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert!(
        !timeline_kinds(&incident)
            .iter()
            .any(|k| k.starts_with("runbook_")),
        "{incident}"
    );
    assert!(!calls.exists(), "systemctl never ran");
    let run = "/api/v1/runbooks/restart-service/run";
    let params = json!({ "params": { "service": "nginx", "host": "localhost" } });
    let (status, reply) = tocsin.post_as(RESPONDER, run, params.clone()).await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply["detail"]
            .as_str()
            .unwrap()
            .contains("[runbooks] enabled"),
        "{reply}"
    );
    let (status, reply) = tocsin.post_as(crate::harness::ADMIN, run, params).await;
    assert_eq!(status, 202, "{reply}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !calls.exists() {
        assert!(Instant::now() < deadline, "the admin's run never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And a service outside params.service.allowed is refused before anything runs.
    let body = json!({ "params": { "service": "sshd", "host": "localhost" } });
    let (status, reply) = tocsin.post_as(crate::harness::ADMIN, run, body).await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["detail"].as_str().unwrap().contains("allowed"),
        "{reply}"
    );
}

/// A runbook directory with one manifest `fix.toml` (matching check "broken", its
/// target the label `target`) and nothing else.
fn one_runbook(dir: &Path, manifest: &str) -> String {
    std::fs::write(
        dir.join("fix.toml"),
        format!("match = ['check=\"broken\"']\n{manifest}\n[params.target]\nfrom = \"{{{{labels.target}}}}\"\npattern = \"[a-z0-9-]+\"\n"),
    )
    .unwrap();
    format!(
        "[runbooks]\ndir = \"{}\"\nenabled = [\"fix\"]\n",
        dir.display()
    )
}

fn broken(resource: &str, target: &str) -> Vec<u8> {
    json!({ "resource": resource, "check": "broken", "severity": "critical", "summary": "s", "labels": { "target": target } })
        .to_string()
        .into_bytes()
}

async fn incident_of(tocsin: &Harness, body: &[u8]) -> i64 {
    tocsin.ingest_ok("generic", body).await["alerts"][0]["incident_id"]
        .as_i64()
        .unwrap()
}

fn has(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |incident| timeline_kinds(incident).contains(&kind.to_string())
}

#[tokio::test]
async fn a_failed_commit_leaves_the_runbook_free_for_the_next_incident() {
    let dir = tempfile::tempdir().unwrap();
    let config = one_runbook(
        dir.path(),
        "command = [\"/bin/sh\", \"-c\", \"echo fixed\"]\nconcurrency = 1",
    );
    let tocsin = Harness::start(&config).await;
    tocsin.store.failing_commits.store(1, Ordering::SeqCst);
    let refused = tocsin.ingest("generic", &broken("web-1", "a")).await;
    assert_eq!(refused.status(), 503);
    let id = incident_of(&tocsin, &broken("web-2", "b")).await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    assert!(
        !timeline_kinds(&incident).contains(&"runbook_refused".to_string()),
        "the failed batch's run holds no slot: {incident}"
    );
    incident_when(&tocsin, id, "the run", has("runbook_success")).await;
    // Nor does it hold a cooldown on its target: it never happened.
    let again = incident_of(&tocsin, &broken("web-1", "a")).await;
    incident_when(&tocsin, again, "the run", has("runbook_success")).await;
}

#[tokio::test]
async fn a_run_whose_outcome_commit_fails_still_resolves_its_incident() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let config = one_runbook(
        dir.path(),
        &format!(
            "command = [\"/bin/sh\", \"-c\", \"while [ ! -e {} ]; do sleep 0.05; done; echo fixed\"]\non_success = \"resolve\"",
            go.display()
        ),
    );
    let tocsin = Harness::start(&config).await;
    let id = incident_of(&tocsin, &broken("web-1", "a")).await;
    tocsin.store.failing_commits.store(1, Ordering::SeqCst);
    std::fs::write(&go, "").unwrap();
    let incident = incident_when(&tocsin, id, "the outcome, recorded on a retry", |i| {
        i["status"] == "resolved"
    })
    .await;
    assert_eq!(
        tocsin.store.failing_commits.load(Ordering::SeqCst),
        0,
        "a commit failed"
    );
    let kinds = timeline_kinds(&incident);
    assert!(kinds.contains(&"auto_remediated".to_string()), "{kinds:?}");
    let tocsin = tocsin.restart().await;
    let incident = tocsin.get(&format!("/api/v1/incidents/{id}")).await;
    let kinds = timeline_kinds(&incident);
    assert!(
        !kinds.contains(&"runbook_interrupted".to_string()),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"runbook_failure".to_string()), "{kinds:?}");
    let runs = tocsin.get("/api/v1/runbooks").await;
    assert_eq!(
        runs["items"][0]["last_runs"][0]["status"], "success",
        "{runs}"
    );
}

#[tokio::test]
async fn cooldown_and_breaker_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Fails on target "bad", works elsewhere; 10 min between runs on one target.
    let config = one_runbook(
        dir.path(),
        "command = [\"/bin/sh\", \"-c\", \"[ \\\"$TOCSIN_PARAM_TARGET\\\" != bad ]\"]\ncooldown = \"10m\"\nbreaker_failures = 2\non_failure = \"none\"",
    );
    let tocsin = Harness::start(&config).await;
    for minute in [0, 11] {
        tocsin.clock.advance(chrono::TimeDelta::minutes(minute));
        let bad = incident_of(&tocsin, &broken(&format!("db-{minute}"), "bad")).await;
        incident_when(&tocsin, bad, "the failure", has("runbook_failure")).await;
    }
    let good = incident_of(&tocsin, &broken("web-1", "good")).await;
    incident_when(&tocsin, good, "the run", has("runbook_success")).await;
    let tocsin = tocsin.restart().await;
    tocsin.clock.advance(chrono::TimeDelta::minutes(1));
    let cooling = incident_of(&tocsin, &broken("web-2", "good")).await;
    let refused = entry_of(
        &tocsin.get(&format!("/api/v1/incidents/{cooling}")).await,
        "runbook_refused",
    );
    assert!(
        refused["message"].as_str().unwrap().contains("cooldown"),
        "{refused}"
    );
    tocsin.clock.advance(chrono::TimeDelta::minutes(10));
    let tripped = incident_of(&tocsin, &broken("db-22", "bad")).await;
    let refused = entry_of(
        &tocsin.get(&format!("/api/v1/incidents/{tripped}")).await,
        "runbook_refused",
    );
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("circuit breaker"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_runbook_writing_100_kib_to_stderr_succeeds_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let config = one_runbook(
        dir.path(),
        "command = [\"/bin/sh\", \"-c\", \"head -c 102400 /dev/zero | tr '\\\\0' e >&2; echo done\"]\ntimeout = \"20s\"",
    );
    let tocsin = Harness::start(&config).await;
    let started = Instant::now();
    let id = incident_of(&tocsin, &broken("web-1", "a")).await;
    let incident = incident_when(&tocsin, id, "the run", |i| {
        timeline_kinds(i)
            .iter()
            .any(|k| k == "runbook_success" || k == "runbook_timeout" || k == "runbook_failure")
    })
    .await;
    let took = started.elapsed();
    eprintln!("100 KiB on stderr: the run ended after {took:?}");
    entry_of(&incident, "runbook_success");
    let runs = tocsin.get("/api/v1/runbooks").await;
    let output = runs["items"][0]["last_runs"][0]["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(output.contains("more bytes not kept"), "{output}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} of its 20 s timeout"
    );
}

#[tokio::test]
async fn a_runbook_whose_grandchild_left_its_group_ends_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("sleep.pid");
    let config = one_runbook(
        dir.path(),
        &format!(
            // Ends once the grandchild runs in its own session, past the group's reach.
            "command = [\"/bin/sh\", \"-c\", \"setsid sh -c 'echo $$ > {pid}; exec sleep 1000' & while [ ! -s {pid} ]; do sleep 0.05; done; echo started\"]\ntimeout = \"2s\"",
            pid = pid.display()
        ),
    );
    let tocsin = Harness::start(&config).await;
    let started = Instant::now();
    let id = incident_of(&tocsin, &broken("web-1", "a")).await;
    let incident = incident_when(&tocsin, id, "the run to end", has("runbook_timeout")).await;
    let took = started.elapsed();
    eprintln!("setsid sleep 1000 holding stdout: the run ended after {took:?}");
    if let Ok(pid) = std::fs::read_to_string(&pid) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    let message = entry_of(&incident, "runbook_timeout")["message"].to_string();
    assert!(
        message.contains("started") && message.contains("outside its process group"),
        "{message}"
    );
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
    // An incident that does not exist is said first, not the parameters.
    let (status, error) = tocsin
        .post_as(
            RESPONDER,
            "/api/v1/runbooks/restart-service/run",
            json!({ "incident_id": 999_999 }),
        )
        .await;
    assert_eq!(status, 404, "{error}");
    assert!(
        error["detail"].as_str().unwrap().contains("999999"),
        "{error}"
    );
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
    let extra = format!(
        "[runbooks]\ndir = \"{}\"\nenabled = [\"slow-fix\"]\n",
        dir.path().display()
    );
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

/// The shipped `reset-password.sh` on its LDAP backend, with stand-ins for
/// `ldapsearch` (a directory whose groups live outside the people OU, as in FreeIPA
/// or Active Directory) and `ldappasswd` (records the DN it was asked to change).
#[test]
fn reset_password_on_ldap_finds_admins_wherever_their_groups_live() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let stand_in = |name: &str, script: &str| {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}")).unwrap();
        let mut mode = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
        std::fs::set_permissions(&path, mode).unwrap();
    };
    stand_in(
        "ldapsearch",
        r#"case "$*" in
  *"(uid=boss)"*) printf 'dn: uid=boss,ou=people,dc=x\nmail: boss@example.com\nuidNumber: 5000\ngidNumber: 5000\n' ;;
  *"(uid=carl)"*) printf 'dn: uid=carl,ou=people,dc=x\nmail: carl@example.com\nuidNumber: 5001\ngidNumber: 100\n' ;;
  *"(uid=twin)"*) printf 'dn: uid=twin,ou=a,dc=x\nuidNumber: 5003\n\ndn: uid=twin,ou=b,dc=x\nuidNumber: 5004\n' ;;
  *"(uid=flaky)"*) printf 'dn: uid=flaky,ou=people,dc=x\nmail: f@example.com\nuidNumber: 5002\n' ;;
  *"member=uid=flaky"*) echo "Can't contact LDAP server" >&2; exit 255 ;;
  *"ou=groups"*"member=uid=boss,ou=people,dc=x"*) printf 'dn: cn=admins,ou=groups,dc=x\ncn: admin\n' ;;
  *"ou=groups"*"member=uid=carl,ou=people,dc=x"*) printf 'dn: cn=staff,ou=groups,dc=x\ncn: staff\n' ;;
esac
"#,
    );
    let changed = dir.path().join("changed");
    stand_in(
        "ldappasswd",
        &format!(
            "for a in \"$@\"; do last=\"$a\"; done\necho \"$last\" >> {}\n",
            changed.display()
        ),
    );
    let password_file = dir.path().join("bind-password");
    std::fs::write(&password_file, "x").unwrap();
    let run = |user: &str| {
        let secret = dir.path().join(format!("secret-{user}"));
        let output = std::process::Command::new("sh")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/runbooks/reset-password.sh"
            ))
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("TOCSIN_PARAM_USER", user)
            .env("TOCSIN_PASSWORD_BACKEND", "ldap")
            .env("TOCSIN_LDAP_URI", "ldap://directory.example")
            .env("TOCSIN_LDAP_BIND_DN", "cn=tocsin,dc=x")
            .env("TOCSIN_LDAP_BIND_PASSWORD_FILE", &password_file)
            .env("TOCSIN_LDAP_BASE", "ou=people,dc=x")
            .env("TOCSIN_LDAP_GROUP_BASE", "ou=groups,dc=x")
            .env("TOCSIN_SECRET_FILE", &secret)
            .env("TOCSIN_SECRET_DOMAINS", "example.com")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr).to_string();
        (
            output.status.code(),
            said,
            std::fs::read_to_string(secret).ok(),
        )
    };
    let (code, said, secret) = run("boss");
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains("protected group admin"), "{said}");
    assert!(secret.is_none());
    let (code, said, _) = run("twin");
    assert_eq!(code, Some(3));
    assert!(said.contains("2 LDAP entries"), "{said}");
    let (code, said, _) = run("flaky");
    assert_eq!(code, Some(3), "a failed group search is no 'no groups'");
    assert!(said.contains("group search"), "{said}");
    assert!(!changed.exists(), "no password changed so far");

    let (code, said, secret) = run("carl");
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(
        std::fs::read_to_string(&changed).unwrap().trim(),
        "uid=carl,ou=people,dc=x",
        "the DN of the one entry found, not one built from the alert"
    );
    assert!(secret.unwrap().starts_with("carl@example.com\n"));
}
