//! Starts Tocsin in-process on a free port with a temporary database and a manual
//! clock, and offers the few HTTP calls the tests make.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tocsin::app::{App, Background};
use tocsin::clock::ManualClock;
use tocsin::config::Config;
use tocsin::incident::{Incident, TimelineEntry};
use tocsin::store::channels::ChannelStore;
use tocsin::store::console::ConsoleStore;
use tocsin::store::paging::{Notification, PageFacts, Paged, Settlement};
use tocsin::store::{
    AlertStore, ChangeQuery, Forward, IncidentQuery, IncidentStore, KeyStore, LeaseStore,
    OpenState, OutboxStore, PageHistory, RunStore, SharedWrites, Store, StoreError, TicketStore,
    WriteBatch, WriteStore,
};

pub const INGEST_TOKEN: &str = "ingest-secret-token";
pub const ADMIN: &str = "admin-secret-token";
pub const VIEWER: &str = "viewer-secret-token";
pub const RESPONDER: &str = "responder-secret-token";
/// A responder's token named after the `[[users]]` id `bob`: a person, not a team.
pub const BOB: &str = "bob-secret-token";

/// The configuration every test starts from; `extra` is appended, and replaces the
/// default table of any source it configures itself.
pub fn base_config(storage_url: &str, extra: &str) -> String {
    let mut sources = String::new();
    for (name, token) in [
        ("alertmanager", INGEST_TOKEN),
        ("pagerduty", "e93facc04764012d7bfb002500d5d1a6"),
        ("generic", INGEST_TOKEN),
    ] {
        if !extra.contains(&format!("[sources.{name}]")) {
            sources.push_str(&format!("[sources.{name}]\ntoken = \"{token}\"\n"));
        }
    }
    format!(
        r#"
[storage]
url = "{storage_url}"
[api]
tokens = [
  {{ name = "ops", token = "{ADMIN}", role = "admin" }},
  {{ name = "watcher", token = "{VIEWER}", role = "viewer" }},
  {{ name = "oncall", token = "{RESPONDER}", role = "responder" }},
  {{ name = "bob", token = "{BOB}", role = "responder" }},
]
{sources}
{extra}
"#
    )
}

/// The text of the fault `FaultyStore` injects: a client must never see it.
pub const DRIVER_TEXT: &str = "disk I/O error at page 4711 of main.db";

/// A failure shaped as sqlx reports one, carrying `DRIVER_TEXT`.
fn driver_fault() -> StoreError {
    StoreError::Database(sqlx::Error::Io(std::io::Error::other(DRIVER_TEXT)))
}

/// A store whose commits can be made to fail, to test the 503 path against a real
/// store underneath: it changes the writer's calls and the read of who was paged,
/// and forwards every other concern untouched.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    pub failing: AtomicBool,
    /// Makes incident listings fail as the database driver would.
    pub failing_reads: AtomicBool,
    /// Makes the read of who was paged fail (it happens mid-batch, on a resolve).
    pub failing_page_reads: AtomicBool,
    /// Held by a test, it keeps every commit waiting, as a held write lock does.
    pub hold: tokio::sync::Mutex<()>,
    /// Commits waiting on `hold` now.
    pub waiting: std::sync::atomic::AtomicUsize,
    /// Makes the next commit panic, as a bug in the writer would.
    pub panicking: AtomicBool,
    /// Commits still to fail, with everything else working (the turn is taken).
    pub failing_commits: AtomicUsize,
    /// Makes the outbox's settlements fail, as a database gone while it sends.
    pub failing_settlements: AtomicBool,
}

#[async_trait]
impl WriteStore for FaultyStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn load_open_state(&self) -> Result<OpenState, StoreError> {
        self.inner.load_open_state().await
    }
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let held = self.hold.lock().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        drop(held);
        assert!(
            !self.panicking.load(Ordering::SeqCst),
            "injected panic in the writer"
        );
        let one_of_the_failing = self
            .failing_commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if self.failing.load(Ordering::SeqCst) || one_of_the_failing {
            self.inner.end_turn().await;
            return Err(driver_fault());
        }
        self.inner.commit(batch).await
    }
    async fn begin_turn(&self) -> Result<bool, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Open("injected fault".into()));
        }
        self.inner.begin_turn().await
    }
    async fn end_turn(&self) {
        self.inner.end_turn().await
    }
}

#[async_trait]
impl PageHistory for FaultyStore {
    async fn delivered_pages_of(&self, incidents: &[i64]) -> Result<Vec<Paged>, StoreError> {
        if self.failing_page_reads.load(Ordering::SeqCst) {
            return Err(StoreError::Open("injected fault: read failed".into()));
        }
        self.inner.delivered_pages_of(incidents).await
    }
    async fn sms_paged_incident(
        &self,
        user_id: &str,
        only: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        self.inner.sms_paged_incident(user_id, only).await
    }
    async fn sent_pages(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.inner.sent_pages(from, to).await
    }
}

impl Forward<dyn AlertStore> for FaultyStore {
    fn to(&self) -> &dyn AlertStore {
        &*self.inner
    }
}
#[async_trait]
impl IncidentStore for FaultyStore {
    async fn incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        if self.failing_reads.load(Ordering::SeqCst) {
            return Err(driver_fault());
        }
        self.inner.incidents(query).await
    }
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        self.inner.incident(id).await
    }
    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        self.inner.timeline(incident_id).await
    }
    async fn append_timeline(&self, entries: &[TimelineEntry]) -> Result<(), StoreError> {
        self.inner.append_timeline(entries).await
    }
    async fn record_change(
        &self,
        change: &tocsin::change::Change,
        received_at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.inner.record_change(change, received_at).await
    }
    async fn changes(
        &self,
        query: &ChangeQuery,
    ) -> Result<Vec<tocsin::change::Change>, StoreError> {
        self.inner.changes(query).await
    }
    async fn csat_answered(&self, incident_id: i64, address: &str) -> Result<bool, StoreError> {
        self.inner.csat_answered(incident_id, address).await
    }
    async fn record_csat(
        &self,
        incident_id: i64,
        address: &str,
        score: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner
            .record_csat(incident_id, address, score, at)
            .await
    }
    async fn csat_scores(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.inner.csat_scores(from, to).await
    }
}
impl Forward<dyn SharedWrites> for FaultyStore {
    fn to(&self) -> &dyn SharedWrites {
        &*self.inner
    }
}
impl Forward<dyn ChannelStore> for FaultyStore {
    fn to(&self) -> &dyn ChannelStore {
        &*self.inner
    }
}
#[async_trait]
impl OutboxStore for FaultyStore {
    async fn overdue_escalations(&self, before: DateTime<Utc>) -> Result<i64, StoreError> {
        self.inner.overdue_escalations(before).await
    }
    async fn claimed_notifications(
        &self,
        claim: &str,
        held_past: DateTime<Utc>,
    ) -> Result<Vec<Notification>, StoreError> {
        self.inner.claimed_notifications(claim, held_past).await
    }
    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease: chrono::TimeDelta,
        limit: i64,
        claim: &str,
    ) -> Result<Vec<Notification>, StoreError> {
        self.inner
            .claim_notifications(now, lease, limit, claim)
            .await
    }
    async fn settle_notifications(&self, settlements: &[Settlement]) -> Result<(), StoreError> {
        if self.failing_settlements.load(Ordering::SeqCst) {
            return Err(driver_fault());
        }
        self.inner.settle_notifications(settlements).await
    }
    async fn page_facts(
        &self,
        incident_ids: &[i64],
        alerts_each: i64,
    ) -> Result<PageFacts, StoreError> {
        self.inner.page_facts(incident_ids, alerts_each).await
    }
    async fn queue_notifications(&self, notifications: &[Notification]) -> Result<(), StoreError> {
        self.inner.queue_notifications(notifications).await
    }
}
impl Forward<dyn LeaseStore> for FaultyStore {
    fn to(&self) -> &dyn LeaseStore {
        &*self.inner
    }
}
impl Forward<dyn RunStore> for FaultyStore {
    fn to(&self) -> &dyn RunStore {
        &*self.inner
    }
}
impl Forward<dyn TicketStore> for FaultyStore {
    fn to(&self) -> &dyn TicketStore {
        &*self.inner
    }
}
impl Forward<dyn KeyStore> for FaultyStore {
    fn to(&self) -> &dyn KeyStore {
        &*self.inner
    }
}

impl Forward<dyn ConsoleStore> for FaultyStore {
    fn to(&self) -> &dyn ConsoleStore {
        &*self.inner
    }
}

/// A running in-process Tocsin.
pub struct Harness {
    pub url: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub store: Arc<FaultyStore>,
    app: Option<App>,
    server: tokio::task::JoinHandle<()>,
    extra: String,
    dir: tempfile::TempDir,
    storage_url: String,
    tune: fn(&mut Config),
}

/// Where a test's data lives: a SQLite file in its directory, or, when
/// `TOCSIN_TEST_BACKEND=postgres`, a fresh schema of its own in the database at
/// `TOCSIN_TEST_PG_URL`, so the same suite runs against both backends.
async fn storage_for(dir: &std::path::Path) -> String {
    if std::env::var("TOCSIN_TEST_BACKEND").as_deref() != Ok("postgres") {
        return format!("sqlite://{}", dir.join("tocsin.db").display());
    }
    let url = std::env::var("TOCSIN_TEST_PG_URL")
        .expect("TOCSIN_TEST_BACKEND=postgres needs TOCSIN_TEST_PG_URL");
    pg_schema(&url).await
}

/// A new, empty schema in the PostgreSQL database at `url`; returns the URL that
/// works in it.
pub async fn pg_schema(url: &str) -> String {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options[search_path]={schema}")
}

pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-29T03:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

impl Harness {
    /// Starts with the base configuration plus `extra`.
    pub async fn start(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(start_time()));
        let storage_url = storage_for(dir.path()).await;
        Self::start_in(dir, storage_url, extra, clock, |_| {}).await
    }

    /// Starts with the base configuration plus `extra`, then changes what the TOML
    /// of a test cannot (the base owns `[storage]`).
    pub async fn start_tuned(extra: &str, tune: fn(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(start_time()));
        let storage_url = storage_for(dir.path()).await;
        Self::start_in(dir, storage_url, extra, clock, tune).await
    }

    /// Starts on the database at `storage_url`.
    pub async fn start_on(storage_url: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(start_time()));
        Self::start_in(dir, storage_url.to_string(), extra, clock, |_| {}).await
    }

    /// Another replica: the same database, configuration and clock, its own port.
    pub async fn replica(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(
            dir,
            self.storage_url.clone(),
            &self.extra,
            self.clock.clone(),
            self.tune,
        )
        .await
    }

    /// Kills this instance as SIGKILL would: its server and tasks stop mid-way, it
    /// commits and gives back nothing, its database connections drop.
    pub fn kill(mut self) {
        self.server.abort();
        if let Some(app) = self.app.take() {
            app.abort();
        }
    }

    async fn start_in(
        dir: tempfile::TempDir,
        storage_url: String,
        extra: &str,
        clock: Arc<ManualClock>,
        tune: fn(&mut Config),
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Without a [runbooks] table of its own, a test gets an empty runbook
        // directory, so the shipped runbooks never run in tests about other things.
        let runbooks = if extra.contains("[runbooks]") {
            String::new()
        } else {
            let empty = dir.path().join("no-runbooks");
            std::fs::create_dir_all(&empty).unwrap();
            format!("[runbooks]\ndir = \"{}\"\n", empty.display())
        };
        let text = format!(
            "[server]\npublic_url = \"{url}\"\n{runbooks}{}",
            base_config(&storage_url, extra)
        );
        let mut config =
            tocsin::reload::load_text(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"));
        tune(&mut config);
        let inner = tocsin::store::open(&config.storage_url).await.unwrap();
        let store = Arc::new(FaultyStore {
            inner,
            failing: AtomicBool::new(false),
            failing_reads: AtomicBool::new(false),
            failing_page_reads: AtomicBool::new(false),
            hold: tokio::sync::Mutex::new(()),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            panicking: AtomicBool::new(false),
            failing_commits: AtomicUsize::new(0),
            failing_settlements: AtomicBool::new(false),
        });
        let app = App::start_with_store(config, clock.clone(), store.clone(), Background::Manual)
            .await
            .unwrap();
        let router = app.router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url,
            client: crate::harness::client(),
            clock,
            store,
            app: Some(app),
            server,
            extra: extra.to_string(),
            dir,
            storage_url,
            tune,
        }
    }

    /// Stops this instance and starts a new one on the same database, clock and
    /// configuration: the new one knows only what the store holds.
    pub async fn restart(mut self) -> Self {
        self.server.abort();
        let _ = (&mut self.server).await;
        if let Some(app) = self.app.take() {
            app.finish().await;
        }
        let Harness {
            dir,
            extra,
            clock,
            store,
            storage_url,
            tune,
            ..
        } = self;
        drop(store);
        Self::start_in(dir, storage_url, &extra, clock, tune).await
    }

    /// The `[storage] url` this instance runs on.
    pub fn storage_url(&self) -> &str {
        &self.storage_url
    }

    /// One round of due escalations and deliveries at the clock's time.
    pub async fn tick(&self) {
        self.app.as_ref().unwrap().ticker.tick().await;
    }

    /// Posts a JSON body to an ingest route with the ingest token.
    pub async fn ingest(&self, source: &str, body: &[u8]) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/ingest/{source}", self.url))
            .bearer_auth(INGEST_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Posts and expects 202, returning the reply.
    pub async fn ingest_ok(&self, source: &str, body: &[u8]) -> Value {
        let response = self.ingest(source, body).await;
        let status = response.status();
        let reply: Value = response.json().await.unwrap();
        assert_eq!(status, 202, "{reply}");
        reply
    }

    /// GET with the admin token, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status != 200 {
            panic!(
                "GET {path}: {status} {}",
                response.text().await.unwrap_or_default()
            );
        }
        response.json().await.unwrap()
    }

    /// POST with a token and a JSON body; returns status and body.
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// All incidents (up to 1000), newest first.
    pub async fn incidents(&self) -> Vec<Value> {
        self.get("/api/v1/incidents?limit=1000").await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// All alerts (up to 1000), newest first.
    pub async fn alerts(&self) -> Vec<Value> {
        self.get("/api/v1/alerts?limit=1000").await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The value of one metric line, such as `tocsin_alerts_deduplicated_total{source="generic"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| {
                line.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }
}

/// A fixture body from `tests/fixtures`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A generic alert body.
/// The kinds of an incident's timeline entries, oldest first.
pub fn timeline_kinds(incident: &Value) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

pub fn generic(resource: &str, check: &str, severity: &str) -> Vec<u8> {
    serde_json::json!({ "resource": resource, "check": check, "severity": severity, "summary": format!("{check} failing on {resource}") })
        .to_string()
        .into_bytes()
}

/// Reads an RFC 3339 field.
pub fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// An HTTP client for tests; installs the ring provider rustls needs first.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A daemon that is stopped however the test ends, so a failed assertion leaves no
/// process behind (one left running keeps the test run's output pipe open).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
