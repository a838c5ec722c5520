//! Native HTTPS with the real binary: a certificate made in the test, the README's
//! ingest over https, plain http refused, a new certificate on SIGHUP that a request
//! already in flight does not notice, and `check-config` on bad files.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BINARY: &str = env!("CARGO_BIN_EXE_tocsin");
const CERT: &str = "config/tls/cert.pem";
const KEY: &str = "config/tls/key.pem";
const ALERT: &str =
    r#"{"resource":"web-1","check":"http","severity":"critical","summary":"web-1 is down"}"#;

/// A self-signed certificate for 127.0.0.1, written where the config points.
fn install_certificate(dir: &Path) -> CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::create_dir_all(dir.join("config/tls")).unwrap();
    std::fs::write(dir.join(CERT), made.cert.pem()).unwrap();
    std::fs::write(dir.join(KEY), made.signing_key.serialize_pem()).unwrap();
    made.cert.der().clone()
}

/// The shipped config with HTTPS turned on.
fn https_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    let config = tocsin::config::DEFAULT_CONFIG
        .replacen(
            "[server]\n",
            &format!("[server]\ntls_cert = \"{CERT}\"\ntls_key = \"{KEY}\"\n"),
            1,
        )
        .replacen(
            "public_url = \"${TOCSIN_PUBLIC_URL:-http://",
            "public_url = \"${TOCSIN_PUBLIC_URL:-https://",
            1,
        );
    assert!(
        config.contains("tls_cert = ") && config.contains("https://127.0.0.1:8080"),
        "the shipped [server] section changed"
    );
    std::fs::write(dir.path().join("config/tocsin.toml"), config).unwrap();
    dir
}

/// The daemon, killed if the test fails half-way so it does not outlive it.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, port: u16) -> Daemon {
    Daemon(
        Command::new(BINARY)
            .arg("serve")
            .current_dir(dir)
            .env("TOCSIN_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("TOCSIN_ADMIN_TOKEN")
            .env_remove("TOCSIN_INGEST_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("tocsin.log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn signal(daemon: &Daemon, signal: Signal) {
    kill(Pid::from_raw(i32::try_from(daemon.0.id()).unwrap()), signal).unwrap();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that trusts `cert` and nothing else.
fn trusting(cert: &CertificateDer<'static>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_der(cert).unwrap()])
        .build()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, url: &str, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = client.get(format!("{url}/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tocsin did not become ready at {url}:\n{}",
            log(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("tocsin.log")).unwrap_or_default()
}

/// An ingest POST over a TLS connection of its own, in flight: the server has
/// read its head and asked for the body (100 Continue), and half the body is sent;
/// `finish` sends the rest and reads the answer.
struct HalfSent {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    rest: &'static [u8],
}

impl HalfSent {
    async fn start(port: u16, trusted: &CertificateDer<'static>) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(trusted.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        let head = format!(
            "POST /api/v1/ingest/generic HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer dev-ingest-token\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
            ALERT.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
        let mut interim = Vec::new();
        while !interim.ends_with(b"\r\n\r\n") {
            interim.push(stream.read_u8().await.unwrap());
        }
        assert!(
            interim.starts_with(b"HTTP/1.1 100"),
            "{}",
            String::from_utf8_lossy(&interim)
        );
        let (first, rest) = ALERT.as_bytes().split_at(ALERT.len() / 2);
        stream.write_all(first).await.unwrap();
        stream.flush().await.unwrap();
        Self { stream, rest }
    }

    async fn finish(mut self) -> String {
        self.stream.write_all(self.rest).await.unwrap();
        self.stream.flush().await.unwrap();
        let mut answer = String::new();
        if let Err(error) = self.stream.read_to_string(&mut answer).await {
            panic!("{error} after {answer:?}");
        }
        answer
    }
}

#[tokio::test]
async fn https_serves_the_readme_ingest_and_swaps_its_certificate_on_sighup() {
    let dir = https_project();
    let old = install_certificate(dir.path());
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let mut daemon = serve(dir.path(), port);
    let old_client = trusting(&old);
    wait_ready(&old_client, &url, dir.path()).await;

    let started = Instant::now();
    let fresh_client = trusting(&old);
    assert_eq!(
        fresh_client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let handshake = started.elapsed();
    let ingest = old_client
        .post(format!("{url}/api/v1/ingest/generic"))
        .bearer_auth("dev-ingest-token")
        .header("content-type", "application/json")
        .body(ALERT)
        .send()
        .await
        .unwrap();
    assert_eq!(ingest.status(), 202);

    // HTTPS only: a plain request to the same port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain http answered: {plain:?}");

    // A request in flight across the reload, on a connection made with the old one.
    let in_flight = HalfSent::start(port, &old).await;
    let new = install_certificate(dir.path());
    let new_client = trusting(&new);
    signal(&daemon, Signal::SIGHUP);
    let hangup = Instant::now();
    while new_client
        .get(format!("{url}/readyz"))
        .send()
        .await
        .is_err()
    {
        assert!(
            hangup.elapsed() < Duration::from_secs(10),
            "the new certificate was never served:\n{}",
            log(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reload = hangup.elapsed();
    let answer = in_flight.finish().await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    // New handshakes get the new certificate; a keep-alive connection made before
    // the reload goes on (the old client could not complete a new handshake).
    let refused = trusting(&old).get(format!("{url}/readyz")).send().await;
    assert!(refused.is_err(), "a new handshake got the old certificate");
    let kept = old_client
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), 200);

    // A bad pair on the next SIGHUP is refused and the running certificate stays.
    std::fs::write(dir.path().join(KEY), "not a key").unwrap();
    signal(&daemon, Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log(dir.path()).contains("TLS certificate refused") {
        assert!(Instant::now() < deadline, "{}", log(dir.path()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(log(dir.path()).contains(KEY), "{}", log(dir.path()));
    let still = trusting(&new).get(format!("{url}/readyz")).send().await;
    assert_eq!(still.unwrap().status(), 200);

    // SIGTERM lets a request in flight finish, then the process exits 0.
    let in_flight = HalfSent::start(port, &new).await;
    signal(&daemon, Signal::SIGTERM);
    // Long enough for the listener to close: no new connection is accepted.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answer = in_flight.finish().await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(
        !log(dir.path()).contains("serves HTTPS only, but the links"),
        "{}",
        log(dir.path())
    );
    assert!(
        !log(dir.path()).contains('\u{1b}'),
        "no colour codes in a log that is not a terminal: {}",
        log(dir.path())
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}:\n{}", log(dir.path()));
    eprintln!(
        "HTTPS: a fresh connection's handshake and /readyz in {handshake:?}; SIGHUP to the new certificate served in {reload:?}"
    );
}

fn check_config(dir: &Path) -> (Option<i32>, String) {
    let output = Command::new(BINARY)
        .args(["check-config", "--config", "config/tocsin.toml"])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text.into_owned())
}

#[test]
fn check_config_refuses_a_key_of_another_certificate() {
    let dir = https_project();
    install_certificate(dir.path());
    let key = std::fs::read(dir.path().join(KEY)).unwrap();
    install_certificate(dir.path());
    std::fs::write(dir.path().join(KEY), key).unwrap();
    let (code, text) = check_config(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("server.tls_key: the private key in config/tls/key.pem does not match"),
        "{text}"
    );
}

#[test]
fn check_config_refuses_an_unreadable_certificate() {
    let dir = https_project();
    install_certificate(dir.path());
    std::fs::remove_file(dir.path().join(CERT)).unwrap();
    let (code, text) = check_config(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("server.tls_cert: cannot read config/tls/cert.pem"),
        "{text}"
    );
}
