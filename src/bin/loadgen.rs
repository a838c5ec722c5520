//! `loadgen`: drives a running Tocsin over HTTP and reports throughput and latency
//! percentiles (BENCHMARKS.md uses it beside wrk).
//!
//! - `loadgen ingest`: concurrent senders posting alerts for a duration, at full speed
//!   or a target rate, distinct or with a share of duplicates, as the generic or the
//!   Alertmanager sender.
//! - `loadgen page`: one P1 at a time, timed from the POST to the page email's arrival
//!   at a real SMTP server that writes each message to a directory named by its
//!   arrival time in milliseconds (`../shared/harness/smtp-sink.sh`, aiosmtpd).

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinSet;

#[derive(Parser)]
#[command(about = "Load and latency measurements against a running Tocsin")]
struct Cli {
    /// Tocsin's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// The ingest token of the sender.
    #[arg(long, default_value = "dev-ingest-token", global = true)]
    token: String,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Concurrent ingest for a duration.
    Ingest {
        #[arg(long, value_enum, default_value = "generic")]
        sender: Sender,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Requests per second over all senders; 0 is as fast as answers come.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Share of requests (0 to 1) that repeat one alert instead of a new one.
        #[arg(long, default_value_t = 0.0)]
        duplicates: f64,
        /// Severity of the alerts (warning: P3, no incident; critical: P1, paged).
        #[arg(long, default_value = "warning")]
        severity: String,
    },
    /// Alert → page email latency, one P1 at a time.
    Page {
        /// Where the SMTP sink writes `<arrival ms>-….eml` files (emptied as they
        /// are read).
        #[arg(long)]
        maildir: PathBuf,
        #[arg(long, default_value_t = 300)]
        count: usize,
        /// Pause between alerts, in milliseconds.
        #[arg(long, default_value_t = 20)]
        pause_ms: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Sender {
    Generic,
    Alertmanager,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest shares the daemon's rustls build, with ring as its one provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .context("cannot build the HTTP client")?;
    match cli.mode {
        Mode::Ingest {
            sender,
            concurrency,
            seconds,
            rate,
            duplicates,
            severity,
        } => {
            if !(0.0..=1.0).contains(&duplicates) {
                bail!("--duplicates is a share from 0 to 1, such as 0.5");
            }
            let load = Load {
                client,
                url: cli.url,
                token: cli.token,
                sender,
                severity,
                duplicates,
                run: format!("{:x}", now_ms()),
            };
            ingest(Arc::new(load), concurrency.max(1), seconds, rate).await
        }
        Mode::Page {
            maildir,
            count,
            pause_ms,
        } => page(&client, &cli.url, &cli.token, &maildir, count, pause_ms).await,
    }
}

struct Load {
    client: reqwest::Client,
    url: String,
    token: String,
    sender: Sender,
    severity: String,
    duplicates: f64,
    /// Keeps this run's alerts apart from earlier runs' on the same database.
    run: String,
}

impl Load {
    /// The `n`th request of `worker`: a repeat of one alert for the duplicate share
    /// (spread evenly, so runs are reproducible), otherwise an alert never sent before.
    fn body(&self, worker: usize, n: u64) -> (String, String) {
        let spread = |k: u64| (k as f64 * self.duplicates).floor();
        let resource = if spread(n + 1) > spread(n) {
            format!("dup-{}", self.run)
        } else {
            format!("host-{}-{worker}-{n}", self.run)
        };
        match self.sender {
            Sender::Generic => (
                "generic".into(),
                json!({ "resource": resource, "check": "loadgen", "severity": self.severity, "summary": "load test" })
                    .to_string(),
            ),
            Sender::Alertmanager => (
                "alertmanager".into(),
                json!({
                    "version": "4", "status": "firing", "receiver": "tocsin", "groupKey": "{}:{}",
                    "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://loadgen",
                    "alerts": [{
                        "status": "firing",
                        "labels": { "alertname": "loadgen", "instance": resource, "severity": self.severity },
                        "annotations": { "summary": "load test" },
                        "startsAt": "2026-11-29T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://loadgen", "fingerprint": resource,
                    }]
                })
                .to_string(),
            ),
        }
    }

    /// Posts one request; returns the status (0: no answer) and the time it took.
    async fn post(&self, worker: usize, n: u64) -> (u16, Duration) {
        let (route, body) = self.body(worker, n);
        let start = Instant::now();
        let status = self
            .client
            .post(format!("{}/api/v1/ingest/{route}", self.url))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_or(0, |reply| reply.status().as_u16());
        (status, start.elapsed())
    }
}

async fn ingest(
    load: Arc<Load>,
    concurrency: usize,
    seconds: u64,
    rate: u64,
) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for worker in 0..concurrency {
        let load = Arc::clone(&load);
        workers.spawn(async move {
            // Each worker paces itself to its share of the rate.
            let mut pace = (rate > 0).then(|| {
                tokio::time::interval(Duration::from_secs_f64(concurrency as f64 / rate as f64))
            });
            let mut results = Vec::new();
            let mut n = 0;
            while Instant::now() < until {
                if let Some(pace) = pace.as_mut() {
                    pace.tick().await;
                }
                results.push(load.post(worker, n).await);
                n += 1;
            }
            results
        });
    }
    let results: Vec<(u16, Duration)> = workers.join_all().await.into_iter().flatten().collect();
    let elapsed = started.elapsed().as_secs_f64();
    let mut by_status = std::collections::BTreeMap::new();
    for (status, _) in &results {
        *by_status.entry(*status).or_insert(0u64) += 1;
    }
    let accepted = by_status.get(&202).copied().unwrap_or(0);
    println!(
        "requests {}  in {elapsed:.1} s  ({:.0}/s)  accepted 202: {accepted} ({:.0}/s)",
        results.len(),
        results.len() as f64 / elapsed,
        accepted as f64 / elapsed
    );
    println!("answers by status (0: no answer): {by_status:?}");
    let mut latencies: Vec<Duration> = results.iter().map(|(_, took)| *took).collect();
    print_percentiles("latency", &mut latencies);
    Ok(())
}

async fn page(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    maildir: &Path,
    count: usize,
    pause_ms: u64,
) -> anyhow::Result<()> {
    let mut answered = Vec::with_capacity(count);
    let mut paged = Vec::with_capacity(count);
    for i in 0..count {
        take_arrivals(maildir)?;
        let body = json!({ "resource": format!("lat-{}-{i}", now_ms()), "check": "latency", "severity": "critical", "summary": "page latency probe" });
        let sent_ms = now_ms();
        let start = Instant::now();
        let reply = client
            .post(format!("{url}/api/v1/ingest/generic"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .context("Tocsin did not answer")?;
        if reply.status() != 202 {
            bail!("alert {i}: Tocsin answered {}", reply.status());
        }
        answered.push(start.elapsed());
        let deadline = Instant::now() + Duration::from_secs(5);
        let arrived = loop {
            if let Some(&last) = take_arrivals(maildir)?.last() {
                break last;
            }
            if Instant::now() > deadline {
                bail!(
                    "alert {i}: no page in {} within 5 s; is Tocsin's [email] pointed at the sink?",
                    maildir.display()
                );
            }
            // The sink stamps the arrival itself: polling slower costs no precision,
            // and spares the two cores the server under test runs on.
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        paged.push(Duration::from_millis(arrived.saturating_sub(sent_ms)));
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    }
    print_percentiles("202 answered", &mut answered);
    print_percentiles("page accepted by SMTP", &mut paged);
    Ok(())
}

/// Arrival times (ms since the epoch) of the messages in the sink's directory,
/// sorted; their files are removed, so the directory stays small however long the
/// run. A `.tmp` file is a message still being written, left to the sink.
fn take_arrivals(maildir: &Path) -> anyhow::Result<Vec<u64>> {
    let mut times = Vec::new();
    for entry in std::fs::read_dir(maildir)
        .with_context(|| format!("cannot read {}", maildir.display()))?
        .filter_map(|entry| entry.ok())
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            continue;
        }
        if let Some(ms) = name
            .strip_suffix(".eml")
            .and_then(|stem| stem.split('-').next())
            .and_then(|ms| ms.parse().ok())
        {
            times.push(ms);
        }
        std::fs::remove_file(entry.path())
            .with_context(|| format!("cannot remove {}", entry.path().display()))?;
    }
    times.sort_unstable();
    Ok(times)
}

fn print_percentiles(name: &str, values: &mut [Duration]) {
    if values.is_empty() {
        println!("{name}: no samples");
        return;
    }
    values.sort_unstable();
    let at = |p: f64| {
        let index = ((p / 100.0) * values.len() as f64) as usize;
        values[index.min(values.len() - 1)].as_secs_f64() * 1000.0
    };
    println!(
        "{name}: p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} samples)",
        at(50.0),
        at(90.0),
        at(99.0),
        at(100.0),
        values.len()
    );
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
