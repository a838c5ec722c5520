//! One conformance suite for the store, the way quickwit tests its metastore: every
//! store function is exercised by plain async test functions over a `dyn Store`, and
//! `conformance!` instantiates each of them once per backend. SQLite runs in a fresh
//! file per test; PostgreSQL in a fresh schema per test at `TOCSIN_TEST_PG_URL`, and
//! prints "skipped" without it. Where the backends differ by design (one process
//! owns a SQLite file; replicas share PostgreSQL), the test says which does what.

use crate::harness::pg_schema;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use std::sync::Arc;
use tocsin::alert::{AlertStatus, Priority, Severity};
use tocsin::change::{Change, ChangeQuery};
use tocsin::incident::{Incident, IncidentStatus, Message, Opening, TimelineEntry, TimelineKind};
use tocsin::oncall::Channel;
use tocsin::silence::Silence;
use tocsin::store::channels::ChatMessage;
use tocsin::store::console::{OverrideRow, SessionRow};
use tocsin::store::paging::{
    Delivery, Escalation, EscalationState, Notification, NotificationKind, Settlement,
};
use tocsin::store::runs::RunRecord;
use tocsin::store::tickets::{Ticket, TicketOp, TicketOpKind};
use tocsin::store::{
    AlertQuery, AlertRecord, AlertUpdate, AlertVolume, CLAIM_LEASE, Claims, DueClaim, IdTable,
    IncidentQuery, IncidentStore, Prune, Store, StoreError, WriteBatch,
};
use tocsin::ticket::Platform;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty store; its directory lives as long as it.
struct Fresh {
    store: Arc<dyn Store>,
    backend: Backend,
    url: String,
    _dir: tempfile::TempDir,
}

async fn fresh(backend: Backend) -> Option<Fresh> {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("tocsin.db").display()),
        Backend::Postgres => {
            let Ok(url) = std::env::var("TOCSIN_TEST_PG_URL") else {
                eprintln!(
                    "skipped: set TOCSIN_TEST_PG_URL (postgres://…) to run the store conformance suite on PostgreSQL"
                );
                return None;
            };
            pg_schema(&url).await
        }
    };
    let store = tocsin::store::open(&url).await.unwrap();
    Some(Fresh {
        store,
        backend,
        url,
        _dir: dir,
    })
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let fresh = super::fresh(super::Backend::Sqlite).await.unwrap();
                    super::$test(&*fresh.store, fresh.backend).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(fresh) = super::fresh(super::Backend::Postgres).await {
                        super::$test(&*fresh.store, fresh.backend).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    a_batch_is_what_the_writer_loads_and_the_api_reads,
    alert_changes_are_merged_and_counted_in_the_volume,
    escalation_timers_come_due_and_end,
    messages_are_claimed_renewed_finished_and_counted_as_pages,
    a_batch_hands_its_due_messages_claimed_and_keeps_cancelled_pages_back,
    runs_are_listed_lost_and_interrupted_as_the_backend_allows,
    ticket_calls_reach_each_ticket_in_order_and_tickets_are_found,
    single_use_keys_answers_and_settings_are_kept_until_pruned,
    changes_and_satisfaction_answers_are_recorded_and_queried,
    chat_messages_are_stale_until_shown_and_a_later_channel_is_brought_forward,
    console_sessions_expire_and_end_and_overrides_outlive_a_reopen,
    replicas_read_again_the_rows_a_batch_touches_and_draw_ids_in_blocks,
    flap_histories_are_kept_read_and_forgotten,
    inhibitor_keys_are_held_read_by_key_and_released,
    the_last_timer_pass_is_marked_and_read_back,
    many_alerts_and_timers_change_in_one_batch,
    the_facts_pages_show_are_read_for_many_incidents_at_once,
);

/// Needs the database itself, to make it refuse a timeline line: not in
/// `conformance!`, whose tests see only the store.
mod a_settlement_writes_its_row_and_its_timeline_line_together_or_neither {
    #[tokio::test]
    async fn sqlite() {
        let fresh = super::fresh(super::Backend::Sqlite).await.unwrap();
        super::a_settlement_writes_its_row_and_its_timeline_line_together_or_neither(&fresh).await;
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(fresh) = super::fresh(super::Backend::Postgres).await {
            super::a_settlement_writes_its_row_and_its_timeline_line_together_or_neither(&fresh)
                .await;
        }
    }
}

/// PostgreSQL only: its planner's statistics are kept by the store itself.
#[tokio::test]
async fn a_table_filling_from_empty_is_analyzed_within_seconds_from_a_small_sample() {
    let Some(fresh) = fresh(Backend::Postgres).await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&fresh.url).await.unwrap();
    // Autovacuum would analyze from the default sample if it woke in these seconds.
    sqlx::query("ALTER TABLE alerts SET (autovacuum_enabled = false)")
        .execute(&pool)
        .await
        .unwrap();
    let mut batch = WriteBatch::default();
    for id in 1..=1_500 {
        batch.insert_alert(alert(id, None));
    }
    commit(&*fresh.store, &batch).await;
    // The histogram of distinct keys has one bound per unit of the sample's target
    // (and one more): 101 at PostgreSQL's default, 11 at the store's.
    let bounds = "SELECT array_length(string_to_array(trim(both '{}' from histogram_bounds::text), ','), 1) \
                  FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'alerts' AND attname = 'dedup_key'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let found = loop {
        let found: Option<i32> = sqlx::query_scalar(bounds)
            .fetch_optional(&pool)
            .await
            .unwrap()
            .flatten();
        if found.is_some() || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(found, Some(11), "analyzed from the store's small sample");
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-29T03:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn incident(id: i64) -> Incident {
    Incident {
        id,
        title: "disk on web-1".into(),
        priority: Priority::P2,
        status: IncidentStatus::Triggered,
        created_at: t0(),
        acknowledged_at: None,
        resolved_at: None,
        alert_count: 1,
        escalation_level: "L1".into(),
        response_due: t0() + TimeDelta::minutes(15),
        resolve_due: t0() + TimeDelta::hours(4),
        flapping: false,
        on_hold: false,
        source: "generic".into(),
        resource: "web-1".into(),
        check: "disk".into(),
        summary: "disk full".into(),
        group_key: Some("web-1".into()),
        rule: None,
        escalation_policy: Some("default".into()),
        last_alert_at: t0(),
        sla_flags: 0,
        hold_since: None,
        remediated: false,
        escalated: false,
        drill: false,
        links: Vec::new(),
    }
}

fn alert(id: i64, incident_id: Option<i64>) -> AlertRecord {
    AlertRecord {
        id,
        source: "generic".into(),
        dedup_key: format!("web-1/disk/{id}"),
        resource: "web-1".into(),
        check: "disk".into(),
        severity: Severity::Error,
        priority: Priority::P2,
        status: AlertStatus::Firing,
        summary: "disk full".into(),
        details: json!({ "used": "99%" }),
        labels: [("team".to_string(), "ops".to_string())].into(),
        links: vec!["https://wiki.example/disk".into()],
        count: 1,
        first_seen: t0(),
        last_seen: t0(),
        occurred_at: Some(t0()),
        resolved_at: None,
        incident_id,
        silenced: false,
        inhibited: false,
        flapping: false,
    }
}

fn message(
    incident_id: i64,
    channel: Channel,
    kind: NotificationKind,
    due_at: DateTime<Utc>,
) -> Notification {
    Notification {
        id: 0,
        incident_id,
        user_id: "alice".into(),
        channel,
        address: match channel {
            Channel::Sms => "+33600000001".into(),
            _ => "alice@example.com".into(),
        },
        kind,
        step: "L1#1".into(),
        attempts: 0,
        due_at,
        deadline: due_at + TimeDelta::hours(1),
    }
}

fn run(id: i64, status: &str) -> RunRecord {
    RunRecord {
        id,
        runbook: "restart".into(),
        incident_id: Some(1),
        trigger: "auto".into(),
        actor: "tocsin".into(),
        target: "web-1".into(),
        params: [("service".to_string(), "nginx".to_string())].into(),
        status: status.into(),
        exit_code: None,
        output: String::new(),
        started_at: t0(),
        finished_at: None,
        recovery_due: None,
        approval_due: (status == "pending_approval").then(|| t0() + TimeDelta::minutes(30)),
    }
}

fn ticket_op(kind: TicketOpKind, step: &str) -> TicketOp {
    TicketOp {
        id: 0,
        incident_id: 1,
        platform: Platform::Zendesk,
        kind,
        step: step.into(),
        body: format!("{step} body"),
        attempts: 0,
        due_at: t0(),
        deadline: t0() + TimeDelta::hours(1),
        queued_at: t0(),
    }
}

/// Records an attempt's outcome without a timeline line, as a cancelled page is.
pub async fn finish(
    store: &dyn Store,
    id: i64,
    claim: &str,
    delivery: &Delivery,
    at: DateTime<Utc>,
) {
    let settlement = Settlement {
        id,
        claim: claim.into(),
        delivery: delivery.clone(),
        at,
        timeline: None,
    };
    store
        .settle_notifications(std::slice::from_ref(&settlement))
        .await
        .unwrap();
}

/// Commits `batch` in a turn, as the writer does.
async fn commit(store: &dyn Store, batch: &WriteBatch) {
    store.begin_turn().await.unwrap();
    store.commit(batch).await.unwrap();
}

/// A committed incident #1, for the rows that belong to one.
async fn with_incident(store: &dyn Store) {
    let mut batch = WriteBatch::default();
    batch.upsert_incident(&incident(1));
    commit(store, &batch).await;
}

async fn a_batch_is_what_the_writer_loads_and_the_api_reads(store: &dyn Store, _: Backend) {
    store.ping().await.unwrap();
    let empty = store.load_open_state().await.unwrap();
    assert_eq!(
        (
            empty.next_alert_id,
            empty.next_incident_id,
            empty.next_run_id
        ),
        (1, 1, 1)
    );
    assert_eq!(
        store.begin_turn().await.unwrap(),
        store.shared(),
        "one writer's view stays exact; replicas' views are read again"
    );
    store.end_turn().await;

    let silence = Silence::new(
        1,
        vec!["resource=\"db-01\"".into()],
        t0(),
        t0() + TimeDelta::hours(1),
        "ops".into(),
        "patching".into(),
        t0(),
    )
    .unwrap();
    let entry = TimelineEntry {
        incident_id: 1,
        at: t0(),
        kind: TimelineKind::Opened(Opening {
            alert: "disk:web-1".into(),
            rule: Some("disks".into()),
        }),
        actor: "generic".into(),
        message: "opened by disk on web-1".into(),
    };
    let mut batch = WriteBatch::default();
    batch.upsert_incident(&incident(1));
    batch.insert_alert(alert(1, Some(1)));
    batch.insert_alert(alert(2, None));
    batch.record(entry.clone());
    batch.upsert_silence(&silence);
    batch.beat("nightly-backup", t0());
    batch.upsert_run(run(1, "awaiting_recovery"));
    commit(store, &batch).await;

    let state = store.load_open_state().await.unwrap();
    assert_eq!(state.alerts.len(), 2);
    assert_eq!(state.incidents, vec![(incident(1), 1)], "one firing alert");
    assert_eq!(
        (
            state.next_alert_id,
            state.next_incident_id,
            state.next_run_id
        ),
        (3, 2, 2)
    );
    assert_eq!((state.silences.len(), state.next_silence_id), (1, 2));
    assert_eq!(state.heartbeats.get("nightly-backup"), Some(&t0()));
    assert_eq!(state.awaiting_recovery, vec![run(1, "awaiting_recovery")]);

    assert_eq!(store.incident(1).await.unwrap(), Some(incident(1)));
    assert_eq!(store.incident(2).await.unwrap(), None);
    let query = IncidentQuery {
        statuses: vec!["triggered".into()],
        priorities: vec![Priority::P2],
        limit: 10,
        ..IncidentQuery::default()
    };
    assert_eq!(store.incidents(&query).await.unwrap(), vec![incident(1)]);
    let resolved = IncidentQuery {
        statuses: vec!["resolved".into()],
        limit: 10,
        ..IncidentQuery::default()
    };
    assert!(store.incidents(&resolved).await.unwrap().is_empty());
    assert_eq!(store.alert(1).await.unwrap(), Some(alert(1, Some(1))));
    let of_incident = AlertQuery {
        statuses: vec!["firing".into()],
        incident_id: Some(1),
        limit: 10,
        ..AlertQuery::default()
    };
    assert_eq!(
        store.alerts(&of_incident).await.unwrap(),
        vec![alert(1, Some(1))]
    );
    let newest_first = AlertQuery {
        source: Some("generic".into()),
        resource: Some("web-1".into()),
        limit: 10,
        ..AlertQuery::default()
    };
    let ids: Vec<i64> = store
        .alerts(&newest_first)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, vec![2, 1]);
    assert_eq!(store.timeline(1).await.unwrap(), vec![entry.clone()]);
    let delivery = TimelineEntry {
        kind: TimelineKind::Notified(Message {
            channel: "email".into(),
            user: "alice".into(),
            step: "L1".into(),
            notification: Some(4),
        }),
        message: "paged alice by email".into(),
        ..entry.clone()
    };
    store
        .append_timeline(std::slice::from_ref(&delivery))
        .await
        .unwrap();
    assert_eq!(store.timeline(1).await.unwrap(), vec![entry, delivery]);
    let silences = store.silences(10, None).await.unwrap();
    let listed: Vec<(i64, &[String], String)> = silences
        .iter()
        .map(|s| (s.id, s.matchers.as_slice(), s.comment.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![(1, silence.matchers.as_slice(), "patching".to_string())]
    );
    assert_eq!(
        (silences[0].starts_at, silences[0].ends_at),
        (silence.starts_at, silence.ends_at)
    );
    assert!(store.silences(10, Some(1)).await.unwrap().is_empty());
}

async fn alert_changes_are_merged_and_counted_in_the_volume(store: &dyn Store, _: Backend) {
    let mut batch = WriteBatch::default();
    batch.insert_alert(alert(1, None));
    let repeat = AlertUpdate {
        count: 3,
        last_seen: t0() + TimeDelta::minutes(1),
        status: AlertStatus::Firing,
        resolved_at: None,
        incident_id: None,
        silenced: false,
        inhibited: false,
        flapping: true,
    };
    batch.update_alert(1, repeat);
    commit(store, &batch).await;
    assert_eq!(
        store.alert(1).await.unwrap().unwrap().count,
        3,
        "merged into the insert"
    );

    let mut batch = WriteBatch::default();
    batch.update_alert(
        1,
        AlertUpdate {
            status: AlertStatus::Resolved,
            resolved_at: Some(t0() + TimeDelta::minutes(2)),
            ..repeat
        },
    );
    commit(store, &batch).await;
    let stored = store.alert(1).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.resolved_at),
        (AlertStatus::Resolved, Some(t0() + TimeDelta::minutes(2)))
    );
    let resolved = AlertQuery {
        statuses: vec!["resolved".into()],
        limit: 10,
        ..AlertQuery::default()
    };
    assert_eq!(store.alerts(&resolved).await.unwrap().len(), 1);
    assert!(store.load_open_state().await.unwrap().alerts.is_empty());
    let volume = store
        .alert_volume(t0(), t0() + TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(
        volume,
        vec![AlertVolume {
            source: "generic".into(),
            check: "disk".into(),
            alerts: 1,
            notifications: 3,
            flapping: 1,
            flapping_seconds: 120,
        }]
    );
    assert!(
        store
            .alert_volume(t0() + TimeDelta::hours(1), t0() + TimeDelta::hours(2))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn escalation_timers_come_due_and_end(store: &dyn Store, _: Backend) {
    let timer = Escalation {
        incident_id: 1,
        policy: "default".into(),
        tier: 1,
        cycle: 0,
        steps: 1,
        due_at: Some(t0() + TimeDelta::minutes(10)),
        state: EscalationState::Tiers,
        last_step: Some("L1#1".into()),
    };
    let mut batch = WriteBatch::default();
    batch.upsert_incident(&incident(1));
    batch.set_escalation(timer.clone());
    commit(store, &batch).await;
    assert_eq!(timers(store).await, vec![timer.clone()]);
    // A replica reads the timers of the open incidents its batch names.
    assert_eq!(
        store.load_slice(&[1]).await.unwrap().escalations,
        vec![timer.clone()]
    );
    assert!(store.load_slice(&[2]).await.unwrap().escalations.is_empty());
    assert_eq!(
        store
            .overdue_escalations(t0() + TimeDelta::minutes(10))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .overdue_escalations(t0() + TimeDelta::minutes(11))
            .await
            .unwrap(),
        1
    );
    let mut batch = WriteBatch::default();
    batch.end_escalation(1);
    commit(store, &batch).await;
    assert!(timers(store).await.is_empty());
}

/// Every escalation timer the store keeps, by incident.
async fn timers(store: &dyn Store) -> Vec<Escalation> {
    let mut timers = store.load_open_state().await.unwrap().escalations;
    timers.sort_by_key(|timer| timer.incident_id);
    timers
}

async fn messages_are_claimed_renewed_finished_and_counted_as_pages(
    store: &dyn Store,
    backend: Backend,
) {
    with_incident(store).await;
    let page = message(1, Channel::Email, NotificationKind::Page, t0());
    let later = message(
        1,
        Channel::Sms,
        NotificationKind::Page,
        t0() + TimeDelta::minutes(5),
    );
    let mut batch = WriteBatch::default();
    batch.queue(page.clone());
    batch.queue(later.clone());
    commit(store, &batch).await;
    assert_eq!(
        store.sms_paged_incident("alice", None).await.unwrap(),
        Some(1),
        "queued counts"
    );
    assert_eq!(
        store.sms_paged_incident("alice", Some(2)).await.unwrap(),
        None
    );
    assert_eq!(store.sms_paged_incident("bob", None).await.unwrap(), None);

    let claimed = store
        .claim_notifications(t0(), CLAIM_LEASE, 10, "c1")
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "only the one due: {claimed:?}");
    let id = claimed[0].id;
    assert_eq!(
        Notification {
            id: 0,
            ..claimed[0].clone()
        },
        Notification {
            due_at: t0() + CLAIM_LEASE,
            ..page.clone()
        },
        "a claimed row is due when its lease ends"
    );
    assert!(
        store
            .claim_notifications(t0(), CLAIM_LEASE, 10, "c2")
            .await
            .unwrap()
            .is_empty(),
        "held"
    );
    assert_eq!(
        store.claimed_notifications("c1", t0()).await.unwrap().len(),
        1
    );
    assert!(
        store
            .claimed_notifications("c2", t0())
            .await
            .unwrap()
            .is_empty()
    );
    let past_lease = t0() + TimeDelta::seconds(30);
    assert!(
        store
            .claimed_notifications("c1", past_lease)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .renew_claims(
            Claims::Notifications,
            "c2",
            &[id],
            t0() + TimeDelta::minutes(1),
        )
        .await
        .unwrap();
    assert!(
        store
            .claimed_notifications("c1", past_lease)
            .await
            .unwrap()
            .is_empty(),
        "only its claimer renews"
    );
    store
        .renew_claims(
            Claims::Notifications,
            "c1",
            &[id],
            t0() + TimeDelta::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .claimed_notifications("c1", past_lease)
            .await
            .unwrap()
            .len(),
        1
    );

    finish(store, id, "c2", &Delivery::Sent, t0()).await;
    assert!(
        store.delivered_pages(1).await.unwrap().is_empty(),
        "only its claimer finishes"
    );
    finish(store, id, "c1", &Delivery::Sent, t0()).await;
    assert_eq!(
        store.delivered_pages(1).await.unwrap(),
        vec![(
            "alice".to_string(),
            "email".to_string(),
            "alice@example.com".to_string()
        )]
    );
    assert_eq!(
        store
            .sent_pages(t0(), t0() + TimeDelta::hours(1))
            .await
            .unwrap(),
        vec![("alice".to_string(), t0())]
    );
    assert!(
        store
            .sent_pages(t0() + TimeDelta::hours(1), t0() + TimeDelta::hours(2))
            .await
            .unwrap()
            .is_empty()
    );

    let notice = message(1, Channel::Email, NotificationKind::Resolved, t0());
    store
        .queue_notifications(&[page, notice.clone()])
        .await
        .unwrap();
    let queued = store
        .claim_notifications(t0(), CLAIM_LEASE, 10, "c3")
        .await
        .unwrap();
    assert_eq!(queued.len(), 1, "the page again is a duplicate: {queued:?}");
    assert_eq!(queued[0].kind, NotificationKind::Resolved);
    let retry = Delivery::Retry {
        at: t0() + TimeDelta::minutes(1),
        error: "relay busy".into(),
    };
    finish(store, queued[0].id, "c3", &retry, t0()).await;
    assert!(
        store
            .claim_notifications(t0(), CLAIM_LEASE, 10, "c4")
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_notifications(t0() + TimeDelta::minutes(1), CLAIM_LEASE, 10, "c4")
        .await
        .unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));

    // A process that dies holding a claim: at start SQLite's owner takes it back at
    // once; on PostgreSQL it may be another replica's, left to its lease.
    let released = store
        .release_claims(t0() + TimeDelta::minutes(1))
        .await
        .unwrap();
    let retaken = store
        .claim_notifications(t0() + TimeDelta::minutes(1), CLAIM_LEASE, 10, "c5")
        .await
        .unwrap();
    match backend {
        Backend::Sqlite => assert_eq!((released, retaken.len()), (1, 1)),
        Backend::Postgres => assert_eq!((released, retaken.len()), (0, 0)),
    }
    let failed = Delivery::Failed {
        error: "bounced".into(),
    };
    let holder = if backend == Backend::Sqlite {
        "c5"
    } else {
        "c4"
    };
    finish(store, again[0].id, holder, &failed, t0()).await;
    assert!(
        store
            .claim_notifications(t0() + TimeDelta::hours(1), CLAIM_LEASE, 10, "c6")
            .await
            .unwrap()
            .iter()
            .all(|n| n.kind != NotificationKind::Resolved)
    );
}

async fn a_batch_hands_its_due_messages_claimed_and_keeps_cancelled_pages_back(
    store: &dyn Store,
    _: Backend,
) {
    let mut batch = WriteBatch::default();
    batch.upsert_incident(&incident(1));
    batch.upsert_incident(&incident(2));
    batch.claim_due(DueClaim {
        token: "writer".into(),
        now: t0(),
        until: t0() + CLAIM_LEASE,
    });
    batch.queue(message(1, Channel::Email, NotificationKind::Page, t0()));
    batch.queue(message(2, Channel::Email, NotificationKind::Page, t0()));
    batch.cancel_pages(2);
    assert_eq!(batch.handed_claim(), Some("writer"));
    commit(store, &batch).await;
    let handed = store.claimed_notifications("writer", t0()).await.unwrap();
    assert_eq!(
        handed.iter().map(|n| n.incident_id).collect::<Vec<_>>(),
        vec![1]
    );
    assert!(
        store
            .claim_notifications(t0(), CLAIM_LEASE, 10, "other")
            .await
            .unwrap()
            .is_empty(),
        "the cancelled page is not claimable"
    );
    finish(store, handed[0].id, "writer", &Delivery::Cancelled, t0()).await;
    assert!(store.delivered_pages(1).await.unwrap().is_empty());
}

async fn runs_are_listed_lost_and_interrupted_as_the_backend_allows(
    store: &dyn Store,
    backend: Backend,
) {
    let mut batch = WriteBatch::default();
    batch.upsert_incident(&incident(1));
    batch.upsert_run(run(1, "running"));
    batch.upsert_run(run(2, "pending_approval"));
    commit(store, &batch).await;
    let ids = |runs: Vec<RunRecord>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.recent_runs(t0() + TimeDelta::days(1)).await.unwrap()),
        vec![1, 2],
        "running and waiting, however old"
    );
    assert_eq!(
        store.runbook_runs("restart", 10).await.unwrap(),
        vec![run(2, "pending_approval"), run(1, "running")]
    );
    assert!(store.runbook_runs("other", 10).await.unwrap().is_empty());
    assert_eq!(
        store.pending_approvals(1).await.unwrap(),
        vec![run(2, "pending_approval")]
    );
    assert!(store.pending_approvals(2).await.unwrap().is_empty());

    // Past its lease, a running run's process died: on PostgreSQL any replica sees it;
    // SQLite's one process marks its own runs interrupted at start instead.
    let lost = store.lost_runs(t0() + TimeDelta::minutes(1)).await.unwrap();
    store.interrupt_orphaned_runs().await.unwrap();
    let first = store
        .runbook_runs("restart", 10)
        .await
        .unwrap()
        .pop()
        .unwrap();
    match backend {
        Backend::Sqlite => assert_eq!((lost.len(), first.status.as_str()), (0, "interrupted")),
        Backend::Postgres => assert_eq!((ids(lost), first.status.as_str()), (vec![1], "running")),
    }
    store
        .renew_claims(Claims::Runs, "", &[1], t0() + TimeDelta::hours(1))
        .await
        .unwrap();

    let mut batch = WriteBatch::default();
    batch.upsert_run(RunRecord {
        exit_code: Some(0),
        output: "restarted".into(),
        finished_at: Some(t0() + TimeDelta::minutes(2)),
        ..run(2, "succeeded")
    });
    commit(store, &batch).await;
    assert!(store.pending_approvals(1).await.unwrap().is_empty());
    let mut batch = WriteBatch::default();
    batch.upsert_run(run(2, "pending_approval"));
    commit(store, &batch).await;
    assert_eq!(
        store.runbook_runs("restart", 1).await.unwrap()[0].status,
        "succeeded",
        "a finished run stays finished"
    );
}

async fn ticket_calls_reach_each_ticket_in_order_and_tickets_are_found(
    store: &dyn Store,
    _: Backend,
) {
    let mut batch = WriteBatch::default();
    batch.upsert_incident(&incident(1));
    batch.queue_ticket(ticket_op(TicketOpKind::Create, "create"));
    batch.queue_ticket(ticket_op(TicketOpKind::Note, "note-1"));
    batch.queue_ticket(ticket_op(TicketOpKind::Create, "create"));
    commit(store, &batch).await;
    let first = store
        .claim_ticket_ops(t0(), CLAIM_LEASE, 10, "d1")
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|op| op.kind).collect::<Vec<_>>(),
        vec![TicketOpKind::Create],
        "one per ticket, a duplicate create dropped"
    );
    assert!(
        store
            .claim_ticket_ops(t0(), CLAIM_LEASE, 10, "d2")
            .await
            .unwrap()
            .is_empty(),
        "the note waits for its ticket"
    );
    store
        .renew_claims(
            Claims::TicketOps,
            "d1",
            &[first[0].id],
            t0() + TimeDelta::minutes(1),
        )
        .await
        .unwrap();
    store
        .finish_ticket_op(first[0].id, "d2", &Delivery::Sent, t0())
        .await
        .unwrap();
    assert!(
        store
            .claim_ticket_ops(t0() + TimeDelta::seconds(30), CLAIM_LEASE, 10, "d2")
            .await
            .unwrap()
            .is_empty(),
        "renewed, and not finished by another"
    );
    store
        .finish_ticket_op(first[0].id, "d1", &Delivery::Sent, t0())
        .await
        .unwrap();
    let next = store
        .claim_ticket_ops(t0(), CLAIM_LEASE, 10, "d3")
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(
        TicketOp {
            id: 0,
            ..next[0].clone()
        },
        TicketOp {
            due_at: t0() + CLAIM_LEASE,
            attempts: 1,
            ..ticket_op(TicketOpKind::Note, "note-1")
        }
    );
    // A claim whose process died is taken again after its lease, and the attempt it
    // started counts: a create retried so is looked up first.
    let again = store
        .claim_ticket_ops(t0() + CLAIM_LEASE, CLAIM_LEASE, 10, "d4")
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|op| (op.id, op.attempts))
            .collect::<Vec<_>>(),
        [(next[0].id, 2)]
    );

    let ticket = Ticket {
        incident_id: 1,
        platform: Platform::Zendesk,
        id: "123".into(),
        reference: "ref-123".into(),
        url: "https://acme.zendesk.example/agent/tickets/123".into(),
    };
    store.save_ticket(&ticket, t0()).await.unwrap();
    store.save_ticket(&ticket, t0()).await.unwrap();
    assert_eq!(store.tickets(&[1, 2]).await.unwrap(), vec![ticket]);
    assert!(store.tickets(&[]).await.unwrap().is_empty());
    assert_eq!(
        store
            .ticket_incident(Platform::Zendesk, "ref-123")
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store
            .ticket_incident(Platform::Zendesk, "123")
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store.ticket_incident(Platform::Jira, "123").await.unwrap(),
        None
    );
    assert!(
        store
            .note_assignee(Platform::Zendesk, "123", "bob")
            .await
            .unwrap()
    );
    assert!(
        !store
            .note_assignee(Platform::Zendesk, "ref-123", "bob")
            .await
            .unwrap(),
        "unchanged"
    );
}

async fn single_use_keys_answers_and_settings_are_kept_until_pruned(store: &dyn Store, _: Backend) {
    let mut batch = WriteBatch::default();
    batch.spend("nonce-1", t0());
    batch.remember("idem-1", "{\"id\":1}".into(), t0());
    commit(store, &batch).await;
    assert!(store.is_spent("nonce-1").await.unwrap());
    assert!(!store.is_spent("nonce-2").await.unwrap());
    assert_eq!(
        store
            .remembered_answer("idem-1", t0() - TimeDelta::hours(24))
            .await
            .unwrap()
            .as_deref(),
        Some("{\"id\":1}")
    );
    assert_eq!(
        store
            .remembered_answer("idem-1", t0() + TimeDelta::seconds(1))
            .await
            .unwrap(),
        None,
        "too old"
    );
    assert_eq!(store.setting("link_key", "first").await.unwrap(), "first");
    assert_eq!(
        store.setting("link_key", "second").await.unwrap(),
        "first",
        "created once"
    );

    let mut batch = WriteBatch::default();
    batch.prune(Prune {
        answers_before: t0() + TimeDelta::seconds(1),
        silences_ended_before: t0(),
        keys_used_before: t0() + TimeDelta::seconds(1),
        timestamped_signatures_used_before: t0(),
        changes_before: t0(),
    });
    commit(store, &batch).await;
    assert!(!store.is_spent("nonce-1").await.unwrap());
    assert_eq!(
        store
            .remembered_answer("idem-1", t0() - TimeDelta::hours(24))
            .await
            .unwrap(),
        None
    );
}

async fn changes_and_satisfaction_answers_are_recorded_and_queried(store: &dyn Store, _: Backend) {
    let change = |resource: Option<&str>, minutes: i64| Change {
        id: 0,
        source: "github-actions".into(),
        summary: "deploy".into(),
        resource: resource.map(String::from),
        at: t0() + TimeDelta::minutes(minutes),
        links: Vec::new(),
        details: json!({ "sha": "abc" }),
    };
    let web = store
        .record_change(&change(Some("web-1"), 1), t0())
        .await
        .unwrap();
    let any = store.record_change(&change(None, 2), t0()).await.unwrap();
    let db = store
        .record_change(&change(Some("db-1"), 3), t0())
        .await
        .unwrap();
    let query = |resource: Option<&str>| ChangeQuery {
        since: t0(),
        until: t0() + TimeDelta::hours(1),
        resource: resource.map(String::from),
        before_id: None,
        limit: 10,
    };
    let ids = |changes: Vec<Change>| changes.iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.changes(&query(Some("web-1"))).await.unwrap()),
        vec![any, web]
    );
    assert_eq!(
        ids(store.changes(&query(None)).await.unwrap()),
        vec![db, any, web]
    );
    assert_eq!(
        store.changes(&query(Some("web-1"))).await.unwrap()[1],
        Change {
            id: web,
            ..change(Some("web-1"), 1)
        }
    );

    with_incident(store).await;
    assert!(!store.csat_answered(1, "alice@example.com").await.unwrap());
    assert!(
        store
            .record_csat(1, "alice@example.com", 5, t0())
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_csat(1, "alice@example.com", 1, t0())
            .await
            .unwrap(),
        "the first answer counts"
    );
    assert!(store.csat_answered(1, "alice@example.com").await.unwrap());
    assert_eq!(
        store
            .csat_scores(t0(), t0() + TimeDelta::hours(1))
            .await
            .unwrap(),
        vec![5]
    );
    assert!(
        store
            .csat_scores(t0() + TimeDelta::hours(1), t0() + TimeDelta::hours(2))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn chat_messages_are_stale_until_shown_and_a_later_channel_is_brought_forward(
    store: &dyn Store,
    _: Backend,
) {
    with_incident(store).await;
    let posted = ChatMessage {
        incident_id: 1,
        provider: "slack".into(),
        chat: "D024BE91L".into(),
        message: "1503435956.000247".into(),
    };
    store
        .save_chat_message(&posted, IncidentStatus::Triggered)
        .await
        .unwrap();
    store
        .save_chat_message(&posted, IncidentStatus::Triggered)
        .await
        .unwrap();
    assert!(
        store.stale_chat_messages(10).await.unwrap().is_empty(),
        "a message showing the incident as it is needs no update"
    );
    let mut acknowledged = incident(1);
    acknowledged.status = IncidentStatus::Acknowledged;
    let mut batch = WriteBatch::default();
    batch.upsert_incident(&acknowledged);
    commit(store, &batch).await;
    assert_eq!(
        store.stale_chat_messages(10).await.unwrap(),
        vec![(posted.clone(), IncidentStatus::Acknowledged)],
        "saved twice, listed once"
    );
    store
        .chat_message_shown(&posted, IncidentStatus::Acknowledged)
        .await
        .unwrap();
    assert!(store.stale_chat_messages(10).await.unwrap().is_empty());

    // A rule's later channel (`after = "5m"`) is made due when the first one failed.
    let later = message(
        1,
        Channel::Sms,
        NotificationKind::Page,
        t0() + TimeDelta::minutes(5),
    );
    let mut batch = WriteBatch::default();
    batch.queue(later.clone());
    commit(store, &batch).await;
    let none_yet = store
        .claim_notifications(t0(), CLAIM_LEASE, 10, "c1")
        .await
        .unwrap();
    assert!(none_yet.is_empty(), "{none_yet:?}");
    store
        .bring_forward(&Notification {
            due_at: t0(),
            ..later.clone()
        })
        .await
        .unwrap();
    let claimed = store
        .claim_notifications(t0(), CLAIM_LEASE, 10, "c1")
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "brought forward: {claimed:?}");
    assert_eq!(claimed[0].channel, Channel::Sms);
}

async fn console_sessions_expire_and_end_and_overrides_outlive_a_reopen(
    store: &dyn Store,
    _: Backend,
) {
    let row = SessionRow {
        token_hash: "token-digest".into(),
        csrf: "csrf-token".into(),
        expires_at: t0() + TimeDelta::hours(12),
    };
    store.create_session("id-1", &row, t0()).await.unwrap();
    store.create_session("id-2", &row, t0()).await.unwrap();
    assert_eq!(
        store.session("id-1", t0()).await.unwrap(),
        Some(row.clone())
    );
    assert_eq!(store.session("id-3", t0()).await.unwrap(), None);
    assert_eq!(
        store
            .session("id-1", t0() + TimeDelta::hours(12))
            .await
            .unwrap(),
        None,
        "expired at its expiry"
    );
    store.end_session("id-1", t0()).await.unwrap();
    assert_eq!(
        store.session("id-1", t0()).await.unwrap(),
        None,
        "logged out"
    );
    assert_eq!(
        store.session("id-2", t0()).await.unwrap(),
        Some(row.clone()),
        "another session stays"
    );

    let shift = OverrideRow {
        id: 0,
        schedule: "primary".into(),
        user_id: "bob".into(),
        starts_at: t0(),
        ends_at: t0() + TimeDelta::hours(8),
        created_by: "oncall".into(),
    };
    let first = store.add_override(&shift, t0()).await.unwrap();
    let second = store
        .add_override(
            &OverrideRow {
                user_id: "carol".into(),
                ..shift.clone()
            },
            t0(),
        )
        .await
        .unwrap();
    assert!(second > first);
    let listed = store.overrides(t0()).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|row| (row.id, row.user_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(first, "bob"), (second, "carol")],
        "oldest first"
    );
    assert_eq!(
        OverrideRow {
            id: 0,
            ..listed[0].clone()
        },
        shift
    );
    assert!(
        store
            .overrides(t0() + TimeDelta::hours(8))
            .await
            .unwrap()
            .is_empty(),
        "ended overrides are not listed"
    );
}

async fn replicas_read_again_the_rows_a_batch_touches_and_draw_ids_in_blocks(
    store: &dyn Store,
    backend: Backend,
) {
    assert_eq!(store.shared(), backend == Backend::Postgres);
    if !store.shared() {
        // One writer: its view is exact, nothing is locked or read again.
        return;
    }
    let mut batch = WriteBatch::default();
    let mut grouped = incident(1);
    grouped.group_key = Some("per host/web-1".into());
    batch.upsert_incident(&grouped);
    batch.insert_alert(alert(1, Some(1)));
    batch.insert_alert(alert(2, None));
    commit(store, &batch).await;
    let key = |id: i64| tocsin::dedup::DedupKey {
        source: "generic".into(),
        key: format!("web-1/disk/{id}"),
    };

    store.begin_keyed(&[3, -1, 2, 3]).await.unwrap();
    let touched = store
        .read_touched(&[key(2), key(9)], &["per host/web-1".into(), "none".into()])
        .await
        .unwrap();
    assert_eq!(
        touched
            .alerts
            .iter()
            .map(|(k, a)| (k.clone(), a.id))
            .collect::<Vec<_>>(),
        vec![(key(2), 2)]
    );
    assert_eq!(touched.incidents, vec![1], "the group's open incident");
    let touched = store.read_touched(&[key(1)], &[]).await.unwrap();
    assert_eq!(
        (touched.alerts.len(), touched.incidents),
        (1, vec![1]),
        "the alert's incident"
    );
    let slice = store.load_slice(&[1, 7]).await.unwrap();
    assert_eq!(
        slice
            .incidents
            .iter()
            .map(|(i, firing)| (i.id, *firing))
            .collect::<Vec<_>>(),
        vec![(1, 1)]
    );
    assert_eq!(slice.alerts.len(), 1);
    assert_eq!(slice.alerts[0].1.id, 1);
    store.end_turn().await;

    let kept = store.load_open_incidents("heartbeat").await.unwrap();
    assert_eq!(kept.incidents.len(), 1);
    assert_eq!(
        kept.alerts.iter().map(|(_, a)| a.id).collect::<Vec<_>>(),
        vec![1],
        "an alert of no incident is read by the batches that touch it"
    );

    let first = store.reserve_ids(IdTable::Alerts, 1500).await.unwrap();
    let second = store.reserve_ids(IdTable::Alerts, 1).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(
        first.iter().all(|block| block.end - block.start == 1000),
        "{first:?}"
    );
    let all: Vec<_> = first.iter().chain(&second).collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert!(
                a.end <= b.start || b.end <= a.start,
                "{a:?} and {b:?} overlap"
            );
        }
    }
}

async fn flap_histories_are_kept_read_and_forgotten(store: &dyn Store, _backend: Backend) {
    let policy = tocsin::flapping::Policy {
        changes: 3,
        window: TimeDelta::minutes(10),
    };
    let key = |name: &str| tocsin::dedup::DedupKey {
        source: "generic".into(),
        key: name.into(),
    };
    let mut flapping = tocsin::flapping::Flap::default();
    for minute in 0..3 {
        flapping.change(t0() + TimeDelta::minutes(minute), policy);
    }
    flapping.incident_id = Some(7);
    let mut calm = tocsin::flapping::Flap::default();
    calm.change(t0(), policy);
    let mut batch = WriteBatch::default();
    batch.keep_flap(&key("db-01/postgres"), &flapping);
    batch.keep_flap(&key("db-02/postgres"), &calm);
    commit(store, &batch).await;

    let as_kept = |flaps: Vec<(tocsin::dedup::DedupKey, tocsin::flapping::Flap)>| {
        let mut flaps: Vec<_> = flaps
            .into_iter()
            .map(|(key, flap)| {
                let changes: Vec<_> = flap.changes().collect();
                (key.key, changes, flap.flapping, flap.incident_id)
            })
            .collect();
        flaps.sort();
        flaps
    };
    let minutes = |count: i64| -> Vec<DateTime<Utc>> {
        (0..count).map(|m| t0() + TimeDelta::minutes(m)).collect()
    };
    assert_eq!(
        as_kept(store.load_open_state().await.unwrap().flaps),
        vec![
            ("db-01/postgres".to_string(), minutes(3), true, Some(7)),
            ("db-02/postgres".to_string(), minutes(1), false, None),
        ]
    );

    // A later change overwrites the row; forgetting deletes it.
    calm.change(t0() + TimeDelta::minutes(1), policy);
    let mut batch = WriteBatch::default();
    batch.keep_flap(&key("db-02/postgres"), &calm);
    batch.forget_flap(&key("db-01/postgres"));
    commit(store, &batch).await;
    assert_eq!(
        as_kept(store.load_open_state().await.unwrap().flaps),
        vec![("db-02/postgres".to_string(), minutes(2), false, None)]
    );
    if store.shared() {
        store.begin_keyed(&[]).await.unwrap();
        let touched = store
            .read_touched(&[key("db-01/postgres"), key("db-02/postgres")], &[])
            .await
            .unwrap();
        store.end_turn().await;
        assert_eq!(
            as_kept(touched.flaps),
            vec![("db-02/postgres".to_string(), minutes(2), false, None)],
            "a batch reads the histories of the identities it touches"
        );
        assert_eq!(touched.silences_version, Some(0));
        let silence = Silence::new(
            1,
            vec!["resource=\"db-01\"".into()],
            t0(),
            t0() + TimeDelta::hours(1),
            "alice".into(),
            "patching".into(),
            t0(),
        )
        .unwrap();
        let mut batch = WriteBatch::default();
        batch.upsert_silence(&silence);
        commit(store, &batch).await;
        store.begin_keyed(&[]).await.unwrap();
        let touched = store
            .read_touched(&[key("db-01/postgres")], &[])
            .await
            .unwrap();
        store.end_turn().await;
        assert_eq!(
            touched.silences_version,
            Some(1),
            "a batch learns with its alerts that the silences changed"
        );
        let active = store.active_silences(t0()).await.unwrap();
        assert_eq!(
            active.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![silence.id]
        );
        assert!(
            store
                .active_silences(t0() + TimeDelta::hours(2))
                .await
                .unwrap()
                .is_empty()
        );
    }
}

/// PostgreSQL writes a batch's alert changes and timers many rows per statement;
/// every row still gets its own values.
async fn many_alerts_and_timers_change_in_one_batch(store: &dyn Store, _: Backend) {
    with_incident(store).await;
    let mut batch = WriteBatch::default();
    for id in 1..=3 {
        batch.insert_alert(alert(id, None));
    }
    commit(store, &batch).await;

    let firing = AlertUpdate {
        count: 5,
        last_seen: t0() + TimeDelta::minutes(1),
        status: AlertStatus::Firing,
        resolved_at: None,
        incident_id: Some(1),
        silenced: false,
        inhibited: true,
        flapping: false,
    };
    let resolved = AlertUpdate {
        count: 2,
        status: AlertStatus::Resolved,
        resolved_at: Some(t0() + TimeDelta::minutes(2)),
        incident_id: None,
        inhibited: false,
        flapping: true,
        ..firing
    };
    let mut batch = WriteBatch::default();
    batch.update_alert(1, firing);
    batch.update_alert(3, resolved);
    commit(store, &batch).await;
    let read = |record: AlertRecord| {
        (
            record.count,
            record.status,
            record.resolved_at,
            record.incident_id,
            record.inhibited,
            record.flapping,
        )
    };
    assert_eq!(
        read(store.alert(1).await.unwrap().unwrap()),
        (5, AlertStatus::Firing, None, Some(1), true, false)
    );
    assert_eq!(
        read(store.alert(2).await.unwrap().unwrap()),
        (1, AlertStatus::Firing, None, None, false, false),
        "untouched"
    );
    assert_eq!(
        read(store.alert(3).await.unwrap().unwrap()),
        (
            2,
            AlertStatus::Resolved,
            Some(t0() + TimeDelta::minutes(2)),
            None,
            false,
            true
        )
    );

    let timer = |incident_id: i64, tier: i64| Escalation {
        incident_id,
        policy: "default".into(),
        tier,
        cycle: 0,
        steps: tier,
        due_at: Some(t0() + TimeDelta::minutes(10 * tier)),
        state: EscalationState::Tiers,
        last_step: None,
    };
    let mut batch = WriteBatch::default();
    for id in 2..=3 {
        batch.upsert_incident(&incident(id));
    }
    for id in 1..=3 {
        batch.set_escalation(timer(id, 1));
    }
    commit(store, &batch).await;
    let mut batch = WriteBatch::default();
    batch.set_escalation(timer(1, 2));
    batch.end_escalation(2);
    batch.end_escalation(3);
    commit(store, &batch).await;
    assert_eq!(timers(store).await, vec![timer(1, 2)]);
}

/// A store in which a batch resolving incident #1 commits right after the
/// timeline's first read, as one may between any two reads of the API.
struct ResolvedBetweenReads {
    inner: Arc<dyn Store>,
    resolved: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl IncidentStore for ResolvedBetweenReads {
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        self.inner.incident(id).await
    }
    async fn timeline(&self, incident_id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        let timeline = self.inner.timeline(incident_id).await?;
        if !self
            .resolved
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let mut resolved = incident(1);
            resolved.status = IncidentStatus::Resolved;
            resolved.resolved_at = Some(t0() + TimeDelta::minutes(5));
            let mut batch = WriteBatch::default();
            batch.upsert_incident(&resolved);
            batch.record(TimelineEntry {
                incident_id: 1,
                at: t0() + TimeDelta::minutes(5),
                kind: TimelineKind::Resolved,
                actor: "alice".into(),
                message: "fixed".into(),
            });
            commit(&*self.inner, &batch).await;
        }
        Ok(timeline)
    }
    async fn incidents(&self, _: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        unimplemented!("not read by this test")
    }
    async fn append_timeline(&self, _: &[TimelineEntry]) -> Result<(), StoreError> {
        unimplemented!("not read by this test")
    }
    async fn record_change(&self, _: &Change, _: DateTime<Utc>) -> Result<i64, StoreError> {
        unimplemented!("not read by this test")
    }
    async fn changes(&self, _: &ChangeQuery) -> Result<Vec<Change>, StoreError> {
        unimplemented!("not read by this test")
    }
    async fn csat_answered(&self, _: i64, _: &str) -> Result<bool, StoreError> {
        unimplemented!("not read by this test")
    }
    async fn record_csat(
        &self,
        _: i64,
        _: &str,
        _: i64,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        unimplemented!("not read by this test")
    }
    async fn csat_scores(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        unimplemented!("not read by this test")
    }
}

/// The API shows an incident with the timeline of the same moment: never
/// "resolved" beside a history that does not say so.
#[tokio::test]
async fn an_incident_is_read_with_the_timeline_of_its_moment() {
    let fresh = fresh(Backend::Sqlite).await.unwrap();
    with_incident(&*fresh.store).await;
    let store = ResolvedBetweenReads {
        inner: fresh.store.clone(),
        resolved: Default::default(),
    };
    let (incident, timeline) = store.incident_with_timeline(1).await.unwrap().unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert!(
        timeline
            .iter()
            .any(|entry| entry.kind == TimelineKind::Resolved),
        "{timeline:?}"
    );
}

/// Makes the database refuse a timeline line saying `refused`, as a full disk or a
/// lost connection would refuse a write.
async fn refuse_lines(fresh: &Fresh) {
    match fresh.backend {
        Backend::Sqlite => {
            let db = sqlx::SqlitePool::connect(&fresh.url).await.unwrap();
            sqlx::query(
                "CREATE TRIGGER refuse_line BEFORE INSERT ON timeline WHEN NEW.message = 'refused' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .execute(&db)
            .await
            .unwrap();
            db.close().await;
        }
        Backend::Postgres => {
            let db = sqlx::PgPool::connect(&fresh.url).await.unwrap();
            sqlx::query(
                "CREATE FUNCTION refuse_line() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
            )
            .execute(&db)
            .await
            .unwrap();
            sqlx::query(
                "CREATE TRIGGER refuse_line BEFORE INSERT ON timeline FOR EACH ROW \
                 WHEN (NEW.message = 'refused') EXECUTE FUNCTION refuse_line()",
            )
            .execute(&db)
            .await
            .unwrap();
            db.close().await;
        }
    }
}

async fn a_settlement_writes_its_row_and_its_timeline_line_together_or_neither(fresh: &Fresh) {
    let store = &*fresh.store;
    with_incident(store).await;
    let mut batch = WriteBatch::default();
    batch.queue(message(1, Channel::Email, NotificationKind::Page, t0()));
    batch.queue(message(1, Channel::Sms, NotificationKind::Page, t0()));
    commit(store, &batch).await;
    let claimed = store
        .claim_notifications(t0(), CLAIM_LEASE, 10, "c1")
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let sent = |row: &Notification, said: &str| Settlement {
        id: row.id,
        claim: "c1".into(),
        delivery: Delivery::Sent,
        at: t0(),
        timeline: Some(TimelineEntry {
            incident_id: 1,
            at: t0(),
            kind: TimelineKind::Notified(Message {
                channel: row.channel.as_str().into(),
                user: row.user_id.clone(),
                step: row.step.clone(),
                notification: Some(row.id),
            }),
            actor: "tocsin".into(),
            message: said.into(),
        }),
    };
    refuse_lines(fresh).await;
    let lines = store.timeline(1).await.unwrap().len();

    for refused in [
        vec![sent(&claimed[0], "refused")],
        vec![
            sent(&claimed[0], "email sent"),
            sent(&claimed[1], "refused"),
        ],
    ] {
        assert!(store.settle_notifications(&refused).await.is_err());
        assert!(
            store.delivered_pages(1).await.unwrap().is_empty(),
            "no row is recorded as sent without its line"
        );
        assert_eq!(store.timeline(1).await.unwrap().len(), lines, "nor a line");
        assert_eq!(
            store.claimed_notifications("c1", t0()).await.unwrap().len(),
            2,
            "both still held by their claim, to be settled again"
        );
    }

    store
        .settle_notifications(&[
            sent(&claimed[0], "email sent"),
            sent(&claimed[1], "sms sent"),
        ])
        .await
        .unwrap();
    assert_eq!(store.delivered_pages(1).await.unwrap().len(), 2);
    let said: Vec<String> = store
        .timeline(1)
        .await
        .unwrap()
        .into_iter()
        .skip(lines)
        .map(|entry| entry.message)
        .collect();
    assert_eq!(said, ["email sent", "sms sent"]);
}

async fn the_facts_pages_show_are_read_for_many_incidents_at_once(store: &dyn Store, _: Backend) {
    let mut batch = WriteBatch::default();
    batch.upsert_incident(&incident(1));
    batch.upsert_incident(&incident(2));
    for id in 1..=25 {
        batch.insert_alert(alert(id, Some(1)));
    }
    batch.insert_alert(alert(26, Some(2)));
    batch.insert_alert(alert(27, None));
    batch.upsert_run(run(1, "pending_approval"));
    batch.upsert_run(run(2, "running"));
    commit(store, &batch).await;
    let ticket = Ticket {
        incident_id: 2,
        platform: Platform::Zendesk,
        id: "123".into(),
        reference: "ref-123".into(),
        url: "https://acme.zendesk.example/agent/tickets/123".into(),
    };
    store.save_ticket(&ticket, t0()).await.unwrap();

    let facts = store.page_facts(&[1, 2, 3], 20).await.unwrap();
    let mut incidents: Vec<i64> = facts.incidents.iter().map(|i| i.id).collect();
    incidents.sort_unstable();
    assert_eq!(incidents, [1, 2], "#3 does not exist");
    let mut alerts: Vec<(Option<i64>, i64)> = facts
        .alerts
        .iter()
        .map(|alert| (alert.incident_id, alert.id))
        .collect();
    alerts.sort_unstable();
    let newest: Vec<(Option<i64>, i64)> = (6..=25)
        .map(|id| (Some(1), id))
        .chain([(Some(2), 26)])
        .collect();
    assert_eq!(alerts, newest, "each incident's 20 newest");
    assert_eq!(facts.tickets, vec![ticket]);
    let waiting: Vec<i64> = facts.approvals.iter().map(|run| run.id).collect();
    assert_eq!(waiting, [1], "only the run waiting for approval");
    let none = store.page_facts(&[], 20).await.unwrap();
    assert!(none.incidents.is_empty() && none.alerts.is_empty());
}

async fn the_last_timer_pass_is_marked_and_read_back(store: &dyn Store, _backend: Backend) {
    assert_eq!(
        store.timers_passed_at().await.unwrap(),
        DateTime::<Utc>::UNIX_EPOCH,
        "never passed: any tick passes"
    );
    let at = t0() + TimeDelta::milliseconds(1_250);
    store.mark_timers_passed(at).await.unwrap();
    assert_eq!(store.timers_passed_at().await.unwrap(), at);
    store.mark_timers_passed(t0()).await.unwrap();
    assert_eq!(
        store.timers_passed_at().await.unwrap(),
        t0(),
        "the last mark wins, even an earlier time (another replica's slower clock)"
    );
}

async fn inhibitor_keys_are_held_read_by_key_and_released(store: &dyn Store, _backend: Backend) {
    let mut batch = WriteBatch::default();
    batch.hold_inhibitor("host:web-1".into(), "nagios\u{1f}web-1");
    batch.hold_inhibitor("host:web-2".into(), "nagios\u{1f}web-2");
    batch.hold_inhibitor("dc:paris".into(), "nagios\u{1f}web-2");
    commit(store, &batch).await;
    // Held twice (a repeat of the firing) is one row.
    let mut batch = WriteBatch::default();
    batch.hold_inhibitor("host:web-1".into(), "nagios\u{1f}web-1");
    commit(store, &batch).await;
    let sorted = |mut rows: Vec<(String, String)>| {
        rows.sort();
        rows
    };
    let by_key = store
        .inhibitors(Some(&["host:web-1".to_string(), "dc:paris".to_string()]))
        .await
        .unwrap();
    assert_eq!(
        sorted(by_key),
        [
            ("dc:paris".to_string(), "nagios\u{1f}web-2".to_string()),
            ("host:web-1".to_string(), "nagios\u{1f}web-1".to_string()),
        ]
    );
    // web-2 resolves, and fires again holding only one of its keys, in one batch.
    let mut batch = WriteBatch::default();
    batch.release_inhibitors("nagios\u{1f}web-2");
    batch.hold_inhibitor("host:web-2".into(), "nagios\u{1f}web-2");
    commit(store, &batch).await;
    assert_eq!(
        sorted(store.inhibitors(None).await.unwrap()),
        [
            ("host:web-1".to_string(), "nagios\u{1f}web-1".to_string()),
            ("host:web-2".to_string(), "nagios\u{1f}web-2".to_string()),
        ]
    );
}
