//! Runs one runbook as a child process: argv (no shell), a cleared environment with
//! only `TOCSIN_PARAM_*`, `TOCSIN_INCIDENT_ID`, `TOCSIN_PRIORITY`, `PATH`, the
//! manifest's `pass_env` and `env`, its own process group killed at the timeout, and
//! stdout and stderr read together up to a bound with secrets redacted, never past
//! the timeout.

use super::{Params, Runbook};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Bytes of each of stdout and stderr kept.
const OUTPUT_LIMIT: usize = 16 * 1024;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub success: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Captured output, bounded, secrets replaced by `[REDACTED]`.
    pub output: String,
    /// A secret the runbook asked Tocsin to deliver (address, secret), read from
    /// `TOCSIN_SECRET_FILE`; it is never stored or logged.
    pub delivery: Option<(String, String)>,
}

/// Runs `runbook` with `params`.
pub async fn run(
    runbook: &Runbook,
    params: &Params,
    incident_id: Option<i64>,
    priority: &str,
    secret_domains: &[String],
) -> RunOutcome {
    let failed = |output: String| RunOutcome {
        success: false,
        exit_code: None,
        timed_out: false,
        output,
        delivery: None,
    };
    let Some(program) = runbook.command.first() else {
        return failed("the manifest has no command".into());
    };
    // The child starts in the runbooks directory, so a path relative to it must not
    // be resolved a second time from there (`runbooks/./x.sh` under `runbooks/`).
    let program = if program.contains('/') {
        match std::path::absolute(runbook.dir.join(program)) {
            Ok(path) => path.display().to_string(),
            Err(error) => return failed(format!("cannot resolve {program}: {error}")),
        }
    } else {
        program.clone()
    };
    let secret_file =
        std::env::temp_dir().join(format!("tocsin-secret-{}", uuid::Uuid::new_v4().simple()));
    if let Err(error) = create_private(&secret_file) {
        return failed(format!("cannot create the secret hand-over file: {error}"));
    }
    let mut command = Command::new(&program);
    command
        .args(&runbook.command[1..])
        .current_dir(&runbook.dir)
        .env_clear()
        .env("PATH", &runbook.path)
        .env(
            "TOCSIN_INCIDENT_ID",
            incident_id.map(|id| id.to_string()).unwrap_or_default(),
        )
        .env("TOCSIN_PRIORITY", priority)
        .env("TOCSIN_SECRET_FILE", &secret_file)
        .env("TOCSIN_SECRET_DOMAINS", secret_domains.join(","))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (name, value) in &params.values {
        command.env(Runbook::variable(name), value);
    }
    for name in &runbook.pass_env {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
    // The manifest's own settings win over the daemon's: they are the more specific.
    command.envs(&runbook.env);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let _ = std::fs::remove_file(&secret_file);
            return failed(format!("cannot start {program}: {error}"));
        }
    };
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let limit = runbook.timeout.to_std().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + limit;
    let (stdout_pipe, stderr_pipe) = (child.stdout.take(), child.stderr.take());
    let (mut stdout, mut stderr) = (Captured::default(), Captured::default());
    // Both pipes at once (a child blocked on a full stderr pipe never closes stdout),
    // and never past the deadline: a process that left the group (setsid) may hold
    // them open for ever, and killing the group cannot reach it.
    let reading = async {
        let both = async { tokio::join!(stdout.read(stdout_pipe), stderr.read(stderr_pipe)) };
        tokio::time::timeout_at(deadline, both).await.is_err()
    };
    let ((status, timed_out), held_open) = tokio::join!(wait(&mut child, group, deadline), reading);
    let delivery = read_delivery(&secret_file);
    let _ = std::fs::remove_file(&secret_file);
    let output = combined(&stdout, &stderr, timed_out, held_open, limit.as_secs());
    let mut secrets: Vec<&str> = params
        .secret
        .iter()
        .filter_map(|name| params.values.get(name).map(String::as_str))
        .collect();
    if let Some((_, secret)) = &delivery {
        secrets.push(secret);
    }
    let output = redact(&output, &secrets);
    let exit_code = status.and_then(|status| status.code());
    let timed_out = timed_out || held_open;
    RunOutcome {
        success: !timed_out && exit_code == Some(0),
        exit_code,
        timed_out,
        output,
        delivery,
    }
}

/// stdout, then stderr, then why the run was cut short if it was.
fn combined(
    stdout: &Captured,
    stderr: &Captured,
    timed_out: bool,
    held_open: bool,
    limit: u64,
) -> String {
    let mut output = stdout.text();
    let stderr = stderr.text();
    if !stderr.is_empty() {
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str("stderr: ");
        output.push_str(&stderr);
    }
    if timed_out {
        output.push_str(&format!(
            "\nkilled with its process group after the {limit}s timeout"
        ));
    } else if held_open {
        output.push_str(&format!(
            "\nstopped reading after the {limit}s timeout: a process it started outside its \
             process group (setsid, a daemon) still held its output open; stop that process by hand"
        ));
    }
    output
}

fn kill_group(group: Option<Pid>) {
    if let Some(group) = group {
        // The group may already be gone; that is the outcome we want.
        let _ = killpg(group, Signal::SIGKILL);
    }
}

fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(|_| ())
}

/// `address\nsecret` written by the runbook, if it wrote both.
fn read_delivery(path: &std::path::Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let address = lines.next()?.trim().to_string();
    let secret = lines.next()?.trim_end_matches(['\r', '\n']).to_string();
    (!address.is_empty() && !secret.is_empty()).then_some((address, secret))
}

/// Waits for the child until `deadline`, then kills its group; in both cases whatever
/// it left behind in its group goes too. Returns its status and whether it timed out.
async fn wait(
    child: &mut tokio::process::Child,
    group: Option<Pid>,
    deadline: tokio::time::Instant,
) -> (Option<std::process::ExitStatus>, bool) {
    let ended = match tokio::time::timeout_at(deadline, child.wait()).await {
        Ok(status) => (status.ok(), false),
        Err(_) => {
            kill_group(group);
            (child.wait().await.ok(), true)
        }
    };
    kill_group(group);
    ended
}

/// One pipe's output, bounded; kept when reading stops at the deadline.
#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: usize,
}

impl Captured {
    async fn read<R: AsyncRead + Unpin>(&mut self, stream: Option<R>) {
        let Some(mut stream) = stream else {
            return;
        };
        let mut buffer = [0_u8; 4096];
        // Keep reading past the limit so the child never blocks on a full pipe.
        while let Ok(read) = stream.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            let room = OUTPUT_LIMIT.saturating_sub(self.kept.len()).min(read);
            self.kept.extend_from_slice(&buffer[..room]);
            self.dropped += read - room;
        }
    }

    fn text(&self) -> String {
        // A NUL (syslog after an unclean stop) cannot be stored in PostgreSQL text.
        let mut text = String::from_utf8_lossy(&self.kept).replace('\0', "\u{FFFD}");
        if self.dropped > 0 {
            text.push_str(&format!("\n[{} more bytes not kept]", self.dropped));
        }
        text
    }
}

fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_string(), |text, secret| {
            text.replace(secret, "[REDACTED]")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, body: &str, extra: &str) -> Runbook {
        let path = dir.join("r.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        super::super::parse(
            "r",
            dir,
            &format!("command = [\"./r.sh\"]\n{extra}\n[params.name]\nfrom = \"{{{{resource}}}}\"\npattern = \"^[a-z0-9-]+$\"\n[params.token]\nfrom = \"x\"\npattern = \".+\"\nsecret = true\n"),
        )
        .unwrap()
    }

    fn params() -> Params {
        let values: BTreeMap<String, String> = [
            ("name".to_string(), "web-1".to_string()),
            ("token".to_string(), "hunter2".to_string()),
        ]
        .into();
        Params {
            values,
            secret: vec!["token".into()],
        }
    }

    #[tokio::test]
    async fn parameters_arrive_as_variables_and_secrets_never_leave() {
        let dir = tempfile::tempdir().unwrap();
        let runbook = script(
            dir.path(),
            "echo \"name=$TOCSIN_PARAM_NAME token=$TOCSIN_PARAM_TOKEN incident=$TOCSIN_INCIDENT_ID home=${HOME:-unset}\"; echo oops >&2; exit 3",
            "",
        );
        let outcome = run(&runbook, &params(), Some(7), "P1", &[]).await;
        assert_eq!((outcome.success, outcome.exit_code), (false, Some(3)));
        assert!(
            outcome
                .output
                .contains("name=web-1 token=[REDACTED] incident=7 home=unset"),
            "{}",
            outcome.output
        );
        assert!(outcome.output.contains("stderr: oops"));
        assert!(!outcome.output.contains("hunter2"));
    }

    #[tokio::test]
    async fn a_hanging_runbook_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let runbook = script(
            dir.path(),
            &format!("sleep 300 & echo $! > {}\nwait", marker.display()),
            "timeout = \"1s\"",
        );
        let outcome = run(&runbook, &params(), None, "P3", &[]).await;
        assert!(outcome.timed_out && !outcome.success);
        assert!(outcome.output.contains("killed with its process group"));
        let child: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild `sleep` died with the group (a zombie waiting for its new
        // parent to reap it is dead too).
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let alive = state
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'));
        assert!(!alive, "sleep {child} survived: {state}");
    }

    #[tokio::test]
    async fn output_is_bounded_and_a_secret_can_be_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let runbook = script(
            dir.path(),
            "head -c 100000 /dev/zero | tr '\\0' 'a'; printf 'bob@example.com\\nS3cret-Pass\\n' > \"$TOCSIN_SECRET_FILE\"; echo S3cret-Pass",
            "",
        );
        let outcome = run(&runbook, &params(), None, "P3", &[]).await;
        assert!(outcome.success);
        assert!(outcome.output.contains("more bytes not kept"));
        assert!(outcome.output.len() < 20_000);
        assert_eq!(
            outcome.delivery,
            Some(("bob@example.com".into(), "S3cret-Pass".into()))
        );
        assert!(
            !outcome.output.contains("S3cret-Pass"),
            "the handed-over secret is redacted from the output"
        );
    }
}
