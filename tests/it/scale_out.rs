//! Three replicas on one PostgreSQL database, written to the way a round-robin
//! balancer spreads traffic (`TOCSIN_TEST_PG_URL`; skipped, with a message, without
//! it): for 20 s, alerts of a dozen groups, the same alert sent to all three at the
//! same instant, and acknowledgements, interleaved at random. Afterwards the database
//! must hold one incident per group key, each person paged once per step, and every
//! accepted alert counted exactly once. And a replica's live stream follows another's
//! commits.

use crate::harness::{Harness, INGEST_TOKEN, RESPONDER, generic};
use crate::smtp_sink::SmtpSink;
use chrono::TimeDelta;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const GROUPS: u64 = 12;
const CHECKS: u64 = 4;
const LOAD: Duration = Duration::from_secs(20);
const WORKERS: u64 = 6;

fn config(smtp: &SmtpSink) -> String {
    format!(
        r#"
[email]
host = "127.0.0.1"
port = {port}
from = "tocsin@example.com"

[[users]]
id = "alice"
email = "alice@example.com"

[[users]]
id = "bob"
email = "bob@example.com"

[[users]]
id = "carol"
email = "carol@example.com"

[[escalation_policies]]
name = "default"
tiers = [
  {{ level = "L1", targets = ["user:alice", "user:bob"] }},
  {{ level = "L2", targets = ["user:carol"], after = "10m" }},
]

[[rules]]
name = "per host"
match = ['severity="critical"']
group_by = ["resource"]
"#,
        port = smtp.port
    )
}

/// xorshift64: random enough to interleave, and no dependency for it.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// What the load did, counted as it was answered.
#[derive(Default)]
struct Tally {
    /// Firing alerts answered 202.
    accepted: AtomicU64,
    /// Answered 503 (nothing happened; a client retries).
    unavailable: AtomicU64,
    acknowledged: AtomicU64,
}

#[derive(Clone)]
struct Replica {
    url: String,
    client: reqwest::Client,
}

impl Replica {
    async fn fire(&self, group: u64, check: u64, tally: &Tally) {
        let body = json!({
            "resource": format!("host-{group}"),
            "check": format!("check-{check}"),
            "severity": "critical",
            "summary": "scale-out load",
        });
        let status = self
            .client
            .post(format!("{}/api/v1/ingest/generic", self.url))
            .bearer_auth(INGEST_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        match status {
            202 => tally.accepted.fetch_add(1, Ordering::SeqCst),
            503 => tally.unavailable.fetch_add(1, Ordering::SeqCst),
            other => panic!("ingest answered {other}"),
        };
    }

    /// Acknowledges one open incident, chosen by `dice`, if there is any.
    async fn acknowledge_one(&self, lister: &Replica, dice: u64, tally: &Tally) {
        let listed: serde_json::Value = lister
            .client
            .get(format!("{}/api/v1/incidents?status=triggered", lister.url))
            .bearer_auth(RESPONDER)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Only the even hosts' incidents: the odd ones stay unacknowledged for L2.
        let incidents: Vec<&serde_json::Value> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|incident| {
                incident["resource"]
                    .as_str()
                    .and_then(|resource| resource.strip_prefix("host-"))
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n % 2 == 0)
            })
            .collect();
        if incidents.is_empty() {
            return;
        }
        let index = usize::try_from(dice).unwrap() % incidents.len();
        let id = incidents[index]["id"].as_i64().unwrap();
        let status = self
            .client
            .post(format!("{}/api/v1/incidents/{id}/ack", self.url))
            .bearer_auth(RESPONDER)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        match status {
            200 => tally.acknowledged.fetch_add(1, Ordering::SeqCst),
            503 => tally.unavailable.fetch_add(1, Ordering::SeqCst),
            other => panic!("acknowledging incident {id} answered {other}"),
        };
    }
}

async fn worker(replicas: Arc<[Replica; 3]>, tally: Arc<Tally>, seed: u64, until: Instant) {
    let mut dice = Dice(seed);
    while Instant::now() < until {
        let replica = &replicas[usize::try_from(dice.roll(3)).unwrap()];
        let (group, check) = (dice.roll(GROUPS), dice.roll(CHECKS));
        match dice.roll(10) {
            // The same alert at the same instant on every replica.
            0 => {
                tokio::join!(
                    replicas[0].fire(group, check, &tally),
                    replicas[1].fire(group, check, &tally),
                    replicas[2].fire(group, check, &tally),
                );
            }
            1 | 2 => {
                let lister = &replicas[usize::try_from(dice.roll(3)).unwrap()];
                replica
                    .acknowledge_one(lister, dice.roll(1 << 20), &tally)
                    .await;
            }
            _ => replica.fire(group, check, &tally).await,
        }
    }
}

/// A count from the replicas' database.
async fn count(db: &sqlx::PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_under_interleaved_alerts_repeats_and_acks_keep_one_incident_per_group_and_one_page_per_step()
 {
    let Ok(url) = std::env::var("TOCSIN_TEST_PG_URL") else {
        eprintln!("skipped: set TOCSIN_TEST_PG_URL (postgres://…) to run the scale-out test");
        return;
    };
    let smtp = SmtpSink::start().await;
    let a = Harness::start_on(&crate::harness::pg_schema(&url).await, &config(&smtp)).await;
    let b = a.replica().await;
    let c = a.replica().await;
    let replicas: Arc<[Replica; 3]> = Arc::new([&a, &b, &c].map(|h| Replica {
        url: h.url.clone(),
        client: h.client.clone(),
    }));
    let tally = Arc::new(Tally::default());
    let until = Instant::now() + LOAD;
    let mut workers = JoinSet::new();
    for seed in 1..=WORKERS {
        workers.spawn(worker(
            replicas.clone(),
            tally.clone(),
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            until,
        ));
    }
    workers.join_all().await;
    let accepted = tally.accepted.load(Ordering::SeqCst);
    eprintln!(
        "{accepted} alerts accepted, {} acknowledgements, {} answered 503",
        tally.acknowledged.load(Ordering::SeqCst),
        tally.unavailable.load(Ordering::SeqCst)
    );
    assert!(accepted > 100, "the load hardly ran: {accepted}");
    assert!(
        tally.acknowledged.load(Ordering::SeqCst) > 0,
        "nothing was acknowledged"
    );

    let db = sqlx::PgPool::connect(a.storage_url()).await.unwrap();
    // Every accepted alert once: one row per identity, its count the 202s it got.
    let identities = count(
        &db,
        "SELECT COUNT(DISTINCT (source, dedup_key)) FROM alerts",
    )
    .await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM alerts").await, identities);
    assert_eq!(
        count(&db, "SELECT COALESCE(SUM(count), 0)::BIGINT FROM alerts").await,
        i64::try_from(accepted).unwrap()
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM alerts WHERE status <> 'firing' OR incident_id IS NULL"
        )
        .await,
        0
    );
    // One incident per group key, and every alert in its group's.
    let groups = count(&db, "SELECT COUNT(DISTINCT resource) FROM alerts").await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM incidents").await, groups);
    assert_eq!(
        count(&db, "SELECT COUNT(DISTINCT group_key) FROM incidents").await,
        groups
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM alerts a JOIN incidents i ON i.id = a.incident_id WHERE i.group_key NOT LIKE '%resource=' || a.resource || '%'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM incidents WHERE alert_count <> (SELECT COUNT(*) FROM alerts a WHERE a.incident_id = incidents.id)").await,
        0,
        "an incident's alert count is the alerts that joined it"
    );
    // L1 paged once per incident and person.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM notifications WHERE kind = 'page'"
        )
        .await,
        2 * groups
    );
    assert_eq!(
        count(&db, "SELECT COUNT(DISTINCT (incident_id, user_id)) FROM notifications WHERE kind = 'page' AND step = 'L1#0' AND user_id IN ('alice', 'bob')").await,
        2 * groups
    );

    // Past L2's delay every replica runs its timers at once: an unacknowledged
    // incident pages carol once, an acknowledged one nobody.
    a.clock.advance(TimeDelta::minutes(11));
    for _ in 0..3 {
        tokio::join!(a.tick(), b.tick(), c.tick());
    }
    let unacknowledged = count(
        &db,
        "SELECT COUNT(*) FROM incidents WHERE status = 'triggered'",
    )
    .await;
    assert_eq!(
        unacknowledged
            + count(
                &db,
                "SELECT COUNT(*) FROM incidents WHERE status = 'acknowledged'"
            )
            .await,
        groups
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM notifications WHERE kind = 'page' AND user_id = 'carol'"
        )
        .await,
        unacknowledged
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM notifications n JOIN incidents i ON i.id = n.incident_id WHERE n.user_id = 'carol' AND n.kind = 'page' AND i.status <> 'triggered'").await,
        0
    );
    // And each page that went out went out once (one acknowledged before its L1
    // page was sent cancelled it).
    for user in ["alice", "bob", "carol"] {
        let sent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE kind = 'page' AND user_id = $1 AND status = 'sent'",
        )
        .bind(user)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(
            i64::try_from(smtp.to(&format!("{user}@example.com")).len()).unwrap(),
            sent,
            "{user}"
        );
    }
    assert_eq!(unacknowledged, groups / 2, "the odd hosts' incidents");
    assert!(!smtp.to("carol@example.com").is_empty(), "L2 was paged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicas_live_stream_tells_of_another_replicas_commit() {
    let Ok(url) = std::env::var("TOCSIN_TEST_PG_URL") else {
        eprintln!("skipped: set TOCSIN_TEST_PG_URL (postgres://…) to run the scale-out test");
        return;
    };
    let a = Harness::start_on(&crate::harness::pg_schema(&url).await, "").await;
    let b = a.replica().await;
    let mut stream = b
        .client
        .get(format!("{}/api/v1/stream", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // b starts listening as it starts, not as its stream opens: a commits until b's
    // stream tells (the first commits may come before b listens).
    let told = tokio::time::timeout(Duration::from_secs(5), async {
        let mut seen = String::new();
        let mut commits = tokio::time::interval(Duration::from_millis(500));
        for resource in 0.. {
            tokio::select! {
                _ = commits.tick() => {
                    a.ingest_ok("generic", &generic(&format!("db-{resource}"), "postgres", "warning"))
                        .await;
                }
                chunk = stream.chunk() => {
                    seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
                    if seen.contains("event: change") {
                        return;
                    }
                }
            }
        }
    })
    .await;
    assert!(told.is_ok(), "b's stream never told of a's commit");
}
