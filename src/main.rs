//! The `tocsin` command: parses the command line, sets up logging, and hands over to
//! the library. Startup errors become a message and exit code 1.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tocsin::clock::SystemClock;
use tocsin::config::{Config, DEFAULT_CONFIG};

#[derive(Parser)]
#[command(
    name = "tocsin",
    version,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_default_config {
        print!("{DEFAULT_CONFIG}");
        return ExitCode::SUCCESS;
    }
    init_logging(cli.log_format);
    match cli.command {
        None => {
            eprintln!("tocsin: no command given; try `tocsin serve` or `tocsin --help`");
            ExitCode::from(2)
        }
        Some(Command::CheckConfig { config }) => match Config::load(&config) {
            Ok(_) => {
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprint!("{errors}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Serve { config }) => {
            let config = match Config::load(&config) {
                Ok(config) => config,
                Err(errors) => {
                    eprint!("{errors}");
                    return ExitCode::FAILURE;
                }
            };
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("tocsin: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(tocsin::app::serve(config, Arc::new(SystemClock)))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
