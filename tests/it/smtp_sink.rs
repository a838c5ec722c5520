//! A real SMTP server for tests: speaks enough SMTP for lettre (EHLO, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT), keeps every message it accepts, and can be switched
//! "down", answering 421 so clients treat it as a temporary failure. It counts the
//! connections it accepted and can hang up on every open one, as a relay does with
//! idle clients.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    /// The Subject header.
    pub fn subject(&self) -> String {
        self.data
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_string()
    }

    /// The body with quoted-printable soft breaks and `=3D` undone.
    pub fn text(&self) -> String {
        self.data.replace("=\r\n", "").replace("=3D", "=")
    }
}

/// The running sink.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    pub down: Arc<AtomicBool>,
    pub connections: Arc<AtomicUsize>,
    hang_up: Arc<tokio::sync::Notify>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Self {
            port: listener.local_addr().unwrap().port(),
            mails: Arc::default(),
            down: Arc::default(),
            connections: Arc::default(),
            hang_up: Arc::default(),
        };
        let serving = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                serving.connections.fetch_add(1, Ordering::SeqCst);
                let session = serving.clone();
                tokio::spawn(async move { session.serve(stream).await });
            }
        });
        sink
    }

    /// Closes every connection open now, without a word.
    pub fn hang_up_all(&self) {
        self.hang_up.notify_waiters();
    }

    /// Messages sent to `address`.
    pub fn to(&self, address: &str) -> Vec<Mail> {
        self.mails
            .lock()
            .unwrap()
            .iter()
            .filter(|mail| mail.to.iter().any(|to| to.contains(address)))
            .cloned()
            .collect()
    }

    async fn serve(&self, stream: tokio::net::TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let refuse = |down: &AtomicBool| down.load(Ordering::SeqCst);
        if refuse(&self.down) {
            let _ = write.write_all(b"421 sink is down\r\n").await;
            return;
        }
        let _ = write.write_all(b"220 sink ready\r\n").await;
        let mut to = Vec::new();
        loop {
            let line = tokio::select! {
                line = lines.next_line() => line,
                _ = self.hang_up.notified() => return,
            };
            let Ok(Some(line)) = line else { return };
            if refuse(&self.down) {
                let _ = write.write_all(b"421 sink is down\r\n").await;
                return;
            }
            let command = line.to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") {
                b"250-sink\r\n250 8BITMIME\r\n"
            } else if command.starts_with("RCPT TO:") {
                to.push(line[8..].trim().to_string());
                b"250 ok\r\n"
            } else if command.starts_with("DATA") {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut data = String::new();
                while let Ok(Some(body)) = lines.next_line().await {
                    if body == "." {
                        break;
                    }
                    data.push_str(&body);
                    data.push_str("\r\n");
                }
                self.mails.lock().unwrap().push(Mail {
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 queued\r\n"
            } else if command.starts_with("QUIT") {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"250 ok\r\n"
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}
