//! Operating Tocsin: configuration errors, reloads, signals, metrics format and the
//! API description — against the real binary where a process is involved.

use crate::harness::{Harness, generic};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_tocsin");

struct Daemon {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Daemon {
    async fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let daemon = Self {
            child: Self::spawn(dir.path(), port, config),
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        daemon.wait_ready().await;
        daemon
    }

    fn spawn(dir: &Path, port: u16, config: &str) -> Child {
        std::fs::write(dir.join("tocsin.toml"), Self::with_listen(config, port)).unwrap();
        Command::new(BINARY)
            .args(["serve", "--config", "tocsin.toml"])
            .current_dir(dir)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn with_listen(config: &str, port: u16) -> String {
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[api]\ntokens = [ {{ name = \"ops\", token = \"ops-admin-token\", role = \"admin\" }} ]\n[sources.generic]\ntoken = \"ops-ingest-token\"\n{config}"
        )
    }

    fn rewrite(&self, config: &str) {
        let port: u16 = self.url.rsplit(':').next().unwrap().parse().unwrap();
        std::fs::write(
            self.dir.path().join("tocsin.toml"),
            Self::with_listen(config, port),
        )
        .unwrap();
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    async fn wait_ready(&self) {
        let client = crate::harness::client();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client
            .get(format!("{}/readyz", self.url))
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "tocsin did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn post(&self, client: &reqwest::Client, body: Vec<u8>) -> Option<Value> {
        let response = client
            .post(format!("{}/api/v1/ingest/generic", self.url))
            .bearer_auth("ops-ingest-token")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .ok()?;
        (response.status() == 202).then_some(())?;
        response.json().await.ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const FIVE_MISTAKES: &str = r#"[incidents]
group_window = "5 minutes"

[[users]]
id = "alice"
notify = [ { channel = "pager", after = "0s" } ]

[[escalation_policies]]
name = "default"
tiers = [ { level = "L1", targets = ["user:ghost"] } ]

[[rules]]
name = "db"
match = ['check=~"(postgres"']
priority = "P7"
"#;

#[test]
fn five_mistakes_give_five_errors_and_serve_refuses_with_the_same_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), FIVE_MISTAKES).unwrap();
    let check = Command::new(BINARY)
        .args(["check-config", "--config", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let report = String::from_utf8_lossy(&check.stderr).to_string();
    let errors: Vec<&str> = report
        .lines()
        .filter(|line| line.starts_with("  bad.toml:"))
        .collect();
    assert_eq!(errors.len(), 5, "{report}");
    for expected in [
        "line 2: incidents.group_window: duration \"5 minutes\"",
        "users[0].notify[0].channel: unknown channel \"pager\"",
        "escalation_policies[0].tiers[0].targets[0]: unknown user \"ghost\"",
        "rules[0].match[0]",
        "line 15: rules[0].priority: unknown priority \"P7\"",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in\n{report}"
        );
    }
    let serve = Command::new(BINARY)
        .args(["serve", "--config", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&serve.stderr),
        report,
        "serve refuses with the same messages"
    );
}

#[tokio::test]
async fn sighup_keeps_a_running_config_over_a_broken_one_and_takes_a_good_one() {
    let daemon = Daemon::start("").await;
    let client = crate::harness::client();
    let mut accepted = 0;
    let reply = daemon
        .post(&client, generic("web-1", "disk-0", "warning"))
        .await
        .unwrap();
    accepted += 1;
    assert_eq!(
        reply["alerts"][0]["incident_id"],
        Value::Null,
        "a warning is P3: no incident"
    );

    daemon.rewrite("[[rules]]\nname = \"broken\nmatch = [");
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = daemon
        .post(&client, generic("web-1", "disk-1", "warning"))
        .await
        .expect("alerts still flow");
    accepted += 1;
    assert_eq!(
        still["alerts"][0]["incident_id"],
        Value::Null,
        "the old rules still apply"
    );

    daemon.rewrite("[[rules]]\nname = \"disks are urgent\"\nmatch = ['check=~\"disk-.*\"']\npriority = \"P1\"\n");
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut n = 2;
    loop {
        let reply = daemon
            .post(&client, generic("web-1", &format!("disk-{n}"), "warning"))
            .await
            .expect("no alert lost during the reload");
        accepted += 1;
        n += 1;
        if reply["alerts"][0]["incident_id"].is_i64() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new rule did not take effect within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alerts: Value = client
        .get(format!("{}/api/v1/alerts?limit=1000", daemon.url))
        .bearer_auth("ops-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alerts["items"].as_array().unwrap().len(), accepted);
    // The same through the admin endpoint, which says what is wrong.
    daemon.rewrite("[incidents]\ngroup_window = \"soon\"\n");
    let refused = client
        .post(format!("{}/-/reload", daemon.url))
        .bearer_auth("ops-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("incidents.group_window")
    );
}

#[tokio::test]
async fn sigterm_under_load_loses_no_accepted_alert_and_exits_within_ten_seconds() {
    let mut daemon = Daemon::start("").await;
    let client = crate::harness::client();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (client, url, stop) = (client.clone(), daemon.url.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let body = generic(&format!("host-{worker}"), &format!("check-{n}"), "warning");
                n += 1;
                let Ok(response) = client
                    .post(format!("{url}/api/v1/ingest/generic"))
                    .bearer_auth("ops-ingest-token")
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                else {
                    break;
                };
                if response.status() == 202
                    && let Ok(reply) = response.json::<Value>().await
                {
                    ids.push(reply["alerts"][0]["id"].as_i64().unwrap());
                }
            }
            ids
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut accepted = BTreeSet::new();
    for worker in workers {
        accepted.extend(worker.await.unwrap());
    }
    assert!(accepted.len() > 20, "the load was real: {}", accepted.len());
    let port: u16 = daemon.url.rsplit(':').next().unwrap().parse().unwrap();
    daemon.child = Daemon::spawn(daemon.dir.path(), port, "");
    daemon.wait_ready().await;
    let mut stored = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let page: Value = client
            .get(format!("{}/api/v1/alerts?limit=1000{cursor}", daemon.url))
            .bearer_auth("ops-admin-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stored.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_i64().unwrap()),
        );
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let lost: Vec<_> = accepted.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} alerts answered 202 are missing: {lost:?}",
        lost.len()
    );
}

/// `(method, path)` of every route in src/api/mod.rs.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/mod.rs"))
            .unwrap();
    let compact: String = source.split_whitespace().collect();
    let mut routes = BTreeSet::new();
    for part in compact.split(".route(\"").skip(1) {
        let (path, rest) = part.split_once('"').unwrap();
        let call = rest
            .split(")).")
            .next()
            .unwrap_or(rest)
            .split(")).route")
            .next()
            .unwrap_or(rest);
        for method in ["get", "post", "put", "delete"] {
            if call.contains(&format!("{method}(")) {
                routes.insert((method.to_string(), path.to_string()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_the_router_serves() {
    let tocsin = Harness::start("").await;
    let document: Value = tocsin
        .client
        .get(format!("{}/api/v1/openapi.json", tocsin.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], "3.0.3");
    let mut documented = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            assert!(
                operation["responses"].is_object(),
                "{method} {path} has responses"
            );
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(
        documented,
        routes_in_source(),
        "docs/openapi.json and the router differ"
    );
    // Each documented route is served: the router's fallback never answers it.
    for (method, path) in &documented {
        let concrete = path
            .replace("{id}", "1")
            .replace("{source}", "generic")
            .replace("{name}", "x")
            .replace("{token}", "x");
        let request = tocsin.client.request(
            method.to_uppercase().parse().unwrap(),
            format!("{}{concrete}", tocsin.url),
        );
        let exchange = async { request.send().await.ok()?.text().await.ok() };
        // The event stream stays open: a timeout means it is served.
        let Ok(Some(text)) = tokio::time::timeout(Duration::from_secs(2), exchange).await else {
            continue;
        };
        assert!(
            !text.contains("no such route"),
            "{method} {path} fell through to the fallback"
        );
    }
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let Ok(promtool) = which("promtool") else {
        eprintln!(
            "skipped: promtool (Debian package prometheus) is not installed (.ci/run installs it)"
        );
        return;
    };
    let tocsin = Harness::start("").await;
    tocsin
        .ingest_ok("generic", &generic("web-1", "http", "critical"))
        .await;
    let metrics = tocsin
        .client
        .get(format!("{}/metrics", tocsin.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let build = metrics
        .lines()
        .find(|line| line.starts_with("tocsin_build_info{"))
        .unwrap_or_default();
    assert!(
        build.contains("version=") && build.contains("commit="),
        "{build}"
    );
    assert!(metrics.contains("tocsin_process_resident_memory_bytes"));
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.exists())
        .ok_or(())
}

/// Runs a client command of the binary against `daemon`; its exit status and output.
fn cli(daemon: &Daemon, args: &[&str]) -> (bool, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env("TOCSIN_URL", &daemon.url)
        .env("TOCSIN_TOKEN", "ops-admin-token")
        .env("TOCSIN_INGEST_TOKEN", "ops-ingest-token")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test]
async fn the_client_commands_drive_a_running_daemon() {
    let daemon = Daemon::start(
        "[[users]]\nid = \"ann\"\nemail = \"ann@example.com\"\n\
         [[escalation_policies]]\nname = \"default\"\n\
         tiers = [ { level = \"L1\", targets = [\"user:ann\"], after = \"0s\" } ]\n\
         [[drills]]\nname = \"chain\"\ncron = \"0 0 3 1 1 *\"\nescalation_policy = \"default\"\n",
    )
    .await;
    let (ok, text) = cli(&daemon, &["send-test-alert", "--priority", "P1"]);
    assert!(ok && text.contains("opened incident #1"), "{text}");
    let (ok, text) = cli(&daemon, &["incidents", "list"]);
    assert!(
        ok && text.contains("P1") && text.contains("triggered"),
        "{text}"
    );
    let (ok, text) = cli(&daemon, &["incidents", "ack", "1", "--note", "looking"]);
    assert!(ok, "{text}");
    let (ok, text) = cli(&daemon, &["incidents", "show", "1"]);
    assert!(
        ok && text.contains("acknowledged") && text.contains("looking"),
        "{text}"
    );

    let (ok, text) = cli(&daemon, &["drill", "run", "chain"]);
    assert!(
        ok && text.contains("drill chain started as incident 2"),
        "{text}"
    );
    let (ok, text) = cli(&daemon, &["drill", "run", "chain"]);
    assert!(
        !ok && text.contains("still running"),
        "one at a time: {text}"
    );
    let (ok, text) = cli(&daemon, &["drill", "run", "nope"]);
    assert!(
        !ok && text.contains("[[drills]]"),
        "says what to add: {text}"
    );
    let (ok, text) = cli(&daemon, &["incidents", "ack", "2"]);
    assert!(ok, "{text}");

    let (ok, text) = cli(&daemon, &["report", "--json"]);
    assert!(ok, "{text}");
    let kpi: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        kpi["overall"]["incidents"], 1,
        "the drill is not an incident: {kpi}"
    );
    assert_eq!(kpi["drills"]["passed"], 1);
}

/// The role each route's `require` layer asks for, from src/api/mod.rs: the routes of
/// `let read`, `let act` (with `let keyed`, merged into it) and `let admin` up to
/// their first `route_layer(…)`.
fn roles_in_source() -> BTreeMap<(String, String), &'static str> {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/mod.rs"))
            .unwrap();
    let compact: String = source.split_whitespace().collect();
    let mut roles = BTreeMap::new();
    for (group, role) in [
        ("letread=", "viewer"),
        ("letact=", "responder"),
        ("letkeyed=", "responder"),
        ("letadmin=", "admin"),
    ] {
        let block = compact.split(group).nth(1).unwrap();
        let block = block.split(".route_layer(").next().unwrap();
        for part in block.split(".route(\"").skip(1) {
            let (path, call) = part.split_once('"').unwrap();
            for method in ["get", "post", "put", "delete"] {
                if call.contains(&format!("{method}(")) {
                    roles.insert((method.to_string(), path.to_string()), role);
                }
            }
        }
    }
    roles
}

/// Issue 19: the document lists what each route can answer, so a client (or a tester
/// that reads it) meets no undocumented status. The rules follow the middleware and
/// extractors every route of a kind goes through.
#[test]
fn the_openapi_document_lists_the_statuses_and_scheme_of_every_operation() {
    let document: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
    let roles = roles_in_source();
    let mut problems = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            let responses = operation["responses"].as_object().unwrap();
            let mut needs: Vec<(&str, &str)> = Vec::new();
            let Some(security) = operation["security"].as_array() else {
                problems.push(format!("{name}: no security of its own"));
                continue;
            };
            let bearer_only = security.len() == 1 && security[0].get("bearer").is_some();
            let role = roles.get(&(method.clone(), path.clone())).copied();
            if bearer_only != role.is_some() {
                problems.push(format!(
                    "{name}: security {security:?}, but the router's role check is {role:?}"
                ));
            }
            if operation["x-tocsin-role"].as_str() != role {
                problems.push(format!("{name}: x-tocsin-role is not {role:?}"));
            }
            if let Some(role) = role {
                needs.push(("401", "require() refuses a missing or wrong token"));
                if role == "viewer" {
                    if responses.contains_key("403") {
                        problems.push(format!("{name}: 403, but every token is a viewer"));
                    }
                } else {
                    needs.push(("403", "require() refuses a lower role"));
                }
            }
            let writes = method != "get" && path != "/-/reload";
            if writes {
                needs.push(("503", "a write the store cannot take"));
            }
            if operation.get("requestBody").is_some() {
                needs.push(("400", "a body it cannot read"));
                needs.push(("413", "past max_body_bytes"));
            }
            let idempotent = operation["parameters"]
                .as_array()
                .is_some_and(|parameters| {
                    parameters.iter().any(|p| {
                        p["$ref"]
                            .as_str()
                            .is_some_and(|r| r.ends_with("IdempotencyKey"))
                    })
                });
            if idempotent {
                needs.push(("400", "an Idempotency-Key it cannot take"));
            }
            if path.contains("{id}") {
                needs.push(("404", "an id that does not exist"));
            }
            if path.starts_with("/api/v1/ingest/") || path == "/v2/enqueue" {
                for (code, why) in [
                    ("401", "the source's token"),
                    ("404", "a source not enabled"),
                    ("413", "past max_body_bytes"),
                    ("415", "a content type it cannot read"),
                    ("429", "the source's rate_limit"),
                ] {
                    needs.push((code, why));
                }
                let retry_after = &document["components"]["responses"]["TooManyRequests"]["headers"]
                    ["Retry-After"]["required"];
                if responses["429"]["$ref"] != "#/components/responses/TooManyRequests"
                    || retry_after != true
                {
                    problems.push(format!("{name}: 429 without its Retry-After header"));
                }
            }
            for (code, why) in needs {
                if !responses.contains_key(code) {
                    problems.push(format!("{name}: no {code} ({why})"));
                }
            }
            // The JSON API's refusals are {"error","detail"}; only the link pages
            // (/ack, /csat, /approve) answer HTML to a person's browser.
            if path.starts_with("/api/") || path.starts_with("/v2/") || path.starts_with("/-/") {
                for (code, response) in responses {
                    let json_error = response["$ref"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("#/components/responses/"))
                        || response["content"].get("application/json").is_some();
                    if code.as_str() >= "400" && !json_error {
                        problems.push(format!("{name}: {code} is not documented as JSON"));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/openapi.json:\n{}",
        problems.join("\n")
    );
}
