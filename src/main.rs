//! The `tocsin` command: parses the command line, sets up logging, and hands over to
//! the library. Startup errors become a message and exit code 1.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tocsin::clock::{Clock, SystemClock};
use tocsin::config::{Config, DEFAULT_CONFIG};

#[derive(Parser)]
#[command(
    name = "tocsin",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TOCSIN_GIT_COMMIT"), ")"),
    about = "Turns monitoring alerts into handled incidents"
)]
struct Cli {
    /// Print the documented default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Serve {
        #[arg(long, default_value = "config/tocsin.toml")]
        config: PathBuf,
    },
    /// Validate the configuration and report every error; exit 1 when there is any.
    CheckConfig {
        #[arg(long, default_value = "config/tocsin.toml")]
        config: PathBuf,
    },
    /// What the rules would do with these payload files; nothing is stored or sent.
    Simulate {
        #[arg(long, default_value = "config/tocsin.toml")]
        config: PathBuf,
        /// The sender (alertmanager, grafana, nagios, prtg, datadog, pagerduty,
        /// generic); detected from each file's shape when omitted.
        #[arg(long)]
        source: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Runbooks on a running daemon.
    Runbook {
        #[command(subcommand)]
        action: RunbookAction,
        #[command(flatten)]
        daemon: Daemon,
    },
    /// Paging drills on a running daemon.
    Drill {
        #[command(subcommand)]
        action: DrillAction,
        #[command(flatten)]
        daemon: Daemon,
    },
    /// KPIs of a running daemon: MTTA, MTTR, SLA compliance, FCR, per priority.
    Report {
        /// Start (RFC 3339); default: 7 days before --to.
        #[arg(long)]
        from: Option<String>,
        /// End (RFC 3339); default: now.
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        #[command(flatten)]
        daemon: Daemon,
    },
    /// The alert queue of a running daemon.
    Alerts {
        /// Comma-separated: firing, resolved, silenced, inhibited.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        daemon: Daemon,
    },
    /// Silences (maintenance windows) on a running daemon.
    Silences {
        #[command(subcommand)]
        action: SilencesAction,
        #[command(flatten)]
        daemon: Daemon,
        #[arg(long, global = true)]
        json: bool,
    },
    /// Send a test alert through the whole chain (ingest token in TOCSIN_INGEST_TOKEN),
    /// or with --to and --channel a test message straight to one person on one channel.
    SendTestAlert {
        /// A [[users]] id: send a test message to this person instead of an alert.
        #[arg(long, requires = "channel")]
        to: Option<String>,
        /// email, sms, webhook, slack, telegram, ntfy, teams, mattermost or voice.
        #[arg(long, requires = "to")]
        channel: Option<String>,
        /// The configuration whose credentials --to/--channel use.
        #[arg(long, default_value = "config/tocsin.toml")]
        config: PathBuf,
        /// P1..P4: the severity sent (critical, error, warning, info).
        #[arg(long, default_value = "P1")]
        priority: String,
        #[arg(long, env = "TOCSIN_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(
            long,
            env = "TOCSIN_INGEST_TOKEN",
            hide_env_values = true,
            default_value = "dev-ingest-token"
        )]
        token: String,
    },
    /// Shell completions: bash, zsh, fish, elvish or powershell.
    Completions { shell: clap_complete::Shell },
    /// Who is on call now and next, per schedule.
    Oncall {
        #[arg(long, default_value = "config/tocsin.toml")]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List, show, acknowledge or resolve incidents on a running daemon.
    Incidents {
        #[command(subcommand)]
        action: IncidentsAction,
        #[command(flatten)]
        daemon: Daemon,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SilencesAction {
    /// Silence the alerts matching every --match until --until (RFC 3339) or for --for.
    Add {
        #[arg(long = "match", required = true)]
        matchers: Vec<String>,
        /// End, RFC 3339.
        #[arg(long, conflicts_with = "duration")]
        until: Option<String>,
        /// Length from now, such as 2h.
        #[arg(long = "for")]
        duration: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
    List,
    Expire {
        id: i64,
    },
}

/// Where the running daemon is, and the API token to call it with.
#[derive(Args)]
struct Daemon {
    /// The daemon's base URL.
    #[arg(
        long,
        global = true,
        env = "TOCSIN_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// An API token (responder role to act).
    #[arg(
        long,
        global = true,
        env = "TOCSIN_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    token: String,
}

#[derive(Subcommand)]
enum DrillAction {
    /// Start a `[[drills]]` drill now: its policy is paged for real, marked DRILL.
    Run { name: String },
}

#[derive(Subcommand)]
enum RunbookAction {
    /// Start a runbook by hand on a running daemon.
    Run {
        name: String,
        /// A parameter as NAME=VALUE; repeat for each.
        #[arg(long = "param")]
        params: Vec<String>,
        /// The incident the run belongs to (its timeline gets the output).
        #[arg(long)]
        incident: Option<i64>,
    },
}

#[derive(Subcommand)]
enum IncidentsAction {
    /// Incidents, newest first.
    List {
        /// Comma-separated statuses: triggered, acknowledged, resolved.
        #[arg(long)]
        status: Option<String>,
    },
    /// One incident with its timeline.
    Show { id: i64 },
    /// Acknowledge: stops the escalation.
    Ack {
        id: i64,
        #[arg(long)]
        note: Option<String>,
    },
    /// Resolve: tells everyone who was paged.
    Resolve {
        id: i64,
        #[arg(long)]
        note: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_default_config {
        return write_out(DEFAULT_CONFIG);
    }
    init_logging(cli.log_format);
    match cli.command {
        None => {
            eprintln!("tocsin: no command given; try `tocsin serve` or `tocsin --help`");
            ExitCode::from(2)
        }
        Some(Command::CheckConfig { config }) => match tocsin::reload::load(&config) {
            Ok(loaded) => match tocsin::templates::Templates::load(&loaded.templates_dir) {
                Ok(_) => write_out(&format!(
                    "{}: OK ({} runbooks)\n",
                    config.display(),
                    loaded.runbooks.len()
                )),
                Err(error) => {
                    eprintln!("{}: {error}", config.display());
                    ExitCode::FAILURE
                }
            },
            Err(errors) => {
                eprint!("{errors}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Simulate {
            config,
            source,
            json,
            files,
        }) => match tocsin::reload::load(&config) {
            Ok(config) => finish(simulate(&config, source.as_deref(), json, &files)),
            Err(errors) => {
                eprint!("{errors}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Oncall { config, json }) => match tocsin::reload::load(&config) {
            Ok(config) => finish(tocsin::cli::oncall(&config, SystemClock.now(), json)),
            Err(errors) => {
                eprint!("{errors}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "tocsin",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Some(Command::Alerts {
            status,
            json,
            daemon,
        }) => client(daemon, |remote| async move {
            remote.alerts(status.as_deref(), json).await
        }),
        Some(Command::Silences {
            action,
            daemon,
            json,
        }) => client(daemon, |remote| async move {
            match action {
                SilencesAction::List => remote.silences(json).await,
                SilencesAction::Expire { id } => remote.expire_silence(id).await,
                SilencesAction::Add {
                    matchers,
                    until,
                    duration,
                    comment,
                } => {
                    let ends_at = match (until, duration) {
                        (Some(until), _) => until,
                        (None, Some(duration)) => {
                            let length = tocsin::clock::parse_duration(&duration)
                                .map_err(|why| anyhow::anyhow!("--for: {why}"))?;
                            tocsin::clock::rfc3339(SystemClock.now() + length)
                        }
                        (None, None) => anyhow::bail!("give --until TIME or --for DURATION"),
                    };
                    remote.add_silence(matchers, ends_at, comment).await
                }
            }
        }),
        Some(Command::SendTestAlert {
            to: Some(to),
            channel: Some(channel),
            config,
            ..
        }) => send_test(&config, &to, &channel),
        Some(Command::SendTestAlert {
            priority,
            url: daemon_url,
            token: ingest_token,
            ..
        }) => {
            let severity = match priority.as_str() {
                "P1" => "critical",
                "P2" => "error",
                "P3" => "warning",
                "P4" => "info",
                other => {
                    eprintln!("tocsin: --priority {other:?}: use P1, P2, P3 or P4");
                    return ExitCode::from(2);
                }
            };
            let daemon = Daemon {
                url: daemon_url,
                token: ingest_token,
            };
            client(daemon, |remote| async move {
                remote.send_test_alert(severity).await
            })
        }
        Some(Command::Report {
            from,
            to,
            json,
            csv,
            daemon,
        }) => {
            let format = if json {
                tocsin::cli::ReportFormat::Json
            } else if csv {
                tocsin::cli::ReportFormat::Csv
            } else {
                tocsin::cli::ReportFormat::Table
            };
            client(daemon, |remote| async move {
                remote.report(from.as_deref(), to.as_deref(), format).await
            })
        }
        Some(Command::Drill { action, daemon }) => {
            let DrillAction::Run { name } = action;
            client(
                daemon,
                |remote| async move { remote.run_drill(&name).await },
            )
        }
        Some(Command::Runbook { action, daemon }) => {
            let RunbookAction::Run {
                name,
                params,
                incident,
            } = action;
            client(daemon, |remote| async move {
                remote.run_runbook(&name, &params, incident).await
            })
        }
        Some(Command::Incidents {
            action,
            daemon,
            json,
        }) => client(daemon, |remote| async move {
            match action {
                IncidentsAction::List { status } => remote.list(status.as_deref(), json).await,
                IncidentsAction::Show { id } => remote.show(id, json).await,
                IncidentsAction::Ack { id, note } => remote.act(id, "ack", note).await,
                IncidentsAction::Resolve { id, note } => remote.act(id, "resolve", note).await,
            }
        }),
        Some(Command::Serve { config }) => {
            let path = config;
            let config = match tocsin::reload::load(&path) {
                Ok(config) => config,
                Err(errors) => {
                    eprint!("{errors}");
                    return ExitCode::FAILURE;
                }
            };
            tocsin::server::raise_open_files_limit();
            match run(config, path) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("tocsin: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn simulate(
    config: &Config,
    source: Option<&str>,
    json: bool,
    files: &[PathBuf],
) -> anyhow::Result<String> {
    let source = source
        .map(|name| {
            name.parse::<tocsin::ingest::SourceKind>()
                .map_err(|error| anyhow::anyhow!("unknown sender: {error}"))
        })
        .transpose()?;
    let now = SystemClock.now();
    let mut reports = Vec::new();
    for file in files {
        let body = std::fs::read(file)
            .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", file.display()))?;
        reports.push(tocsin::simulate::simulate(
            config,
            &file.display().to_string(),
            &body,
            source,
            now,
        ));
    }
    if json {
        return Ok(serde_json::to_string_pretty(&reports)?);
    }
    Ok(reports
        .iter()
        .map(tocsin::simulate::render)
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Runs one call against a daemon and prints its outcome.
fn client<F, Fut>(Daemon { url, token }: Daemon, call: F) -> ExitCode
where
    F: FnOnce(tocsin::cli::Remote) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    if token.is_empty() {
        eprintln!("tocsin: set TOCSIN_TOKEN (or --token) to an API token");
        return ExitCode::from(2);
    }
    let remote = tocsin::cli::Remote { url, token };
    let outcome = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(call(remote)));
    finish(outcome)
}

/// `send-test-alert --to --channel`: the message goes out from here, not the daemon.
fn send_test(config: &std::path::Path, to: &str, channel: &str) -> ExitCode {
    let Ok(channel) = channel.parse::<tocsin::oncall::Channel>() else {
        eprintln!(
            "tocsin: --channel {channel:?}: use email, sms, webhook, slack, telegram, ntfy, teams, mattermost or voice"
        );
        return ExitCode::from(2);
    };
    let config = match tocsin::reload::load(config) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime
                .block_on(tocsin::notify::test_send::send_test(&config, to, channel))
                .map_err(|error| anyhow::anyhow!("the test message was not sent: {error}"))
        });
    finish(outcome)
}

fn finish(outcome: anyhow::Result<String>) -> ExitCode {
    match outcome {
        Ok(text) => write_out(&format!("{text}\n")),
        Err(error) => {
            eprintln!("tocsin: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes a command's output. A reader that stopped reading (`| head`) is not an
/// error of the command's: `println!` panicked on the broken pipe (exit 101).
fn write_out(text: &str) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tocsin: cannot write the output: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config, path: PathBuf) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(tocsin::app::serve(config, path, Arc::new(SystemClock)))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_cron_scheduler=warn"));
    // Colours only for a person at a terminal: in a file or the journal the escape
    // codes are noise around every field.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
