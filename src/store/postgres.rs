//! The PostgreSQL backend, for several replicas on one database: a pool of
//! connections shared by the writer, the outbox, the ticket desk and the API; a batch
//! is one transaction holding the turn lock shared and an advisory lock per key it
//! touches, or, for the timer pass and rare commands, the turn alone; claims lock
//! their rows with `FOR UPDATE SKIP LOCKED`; ids come in blocks from sequences; and
//! the unique index on firing alerts (kept here, dropped for SQLite) makes one firing
//! alert per identity a fact of the store. A lost server makes every call fail fast
//! (3 s to get a connection), so ingest answers 503 and `/readyz` says false until it
//! is back; the pool reconnects by itself.

use super::sql::{Backend, On, Sql, arguments};
use super::{IdTable, StoreError};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres};
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Connections per replica: the writer, the outbox and desk rounds, API reads.
const POOL_SIZE: u32 = 16;
/// How long a call waits for a connection before it fails (and ingest answers 503).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A statement as sqlx runs it on PostgreSQL.
fn query(sql: Sql) -> Result<sqlx::query::Query<'static, Postgres, PgArguments>, StoreError> {
    let (text, args, persistent) = sql.into_parts();
    let args = arguments(args).map_err(sqlx::Error::Encode)?;
    Ok(sqlx::query_with(q(&text), args).persistent(persistent))
}

/// Numbers the `?` placeholders the shared SQL is written with: `$1`, `$2`, …
fn q(sql: &str) -> AssertSqlSafe<String> {
    let mut numbered = String::with_capacity(sql.len() + 16);
    let mut next = 0;
    for c in sql.chars() {
        if c == '?' {
            next += 1;
            numbered.push('$');
            numbered.push_str(&next.to_string());
        } else {
            numbered.push(c);
        }
    }
    AssertSqlSafe(numbered)
}

/// The advisory lock of the write turn (any constant shared by all replicas): keyed
/// batches hold it shared, the timer pass and rare commands exclusively.
const TURN_LOCK: i64 = 0x0070_726f_6373_696e;

/// The channel replicas announce their commits on.
const COMMITS: &str = "tocsin_commits";
/// Commits closer together than this share one announcement.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(200);

/// A PostgreSQL database shared by every replica.
#[derive(Debug)]
pub struct PostgresStore {
    writer: PgPool,
    readers: PgPool,
    /// The open transaction of this replica's batch, from its locks to the commit.
    turn: tokio::sync::Mutex<Option<sqlx::Transaction<'static, Postgres>>>,
    /// A notification of this replica's commits is on its way.
    announcing: Arc<AtomicBool>,
    /// Names this replica's announcements.
    replica: String,
    /// Keeps the planner's statistics current (see [`keep_statistics`]).
    statistics: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.statistics.abort();
    }
}

/// The tables a batch reads by key, whose statistics must follow their growth.
const KEYED_TABLES: &str = "'alerts', 'incidents', 'notifications', 'escalations', 'runbook_runs'";
/// How often their statistics are looked at.
const STATISTICS_EVERY: Duration = Duration::from_secs(2);

/// Only one replica refreshes the statistics at a time; the others' refresh would
/// repeat its work.
const STATISTICS_LOCK: i64 = TURN_LOCK + 1;
/// The sample of a refresh: 300 rows per unit, so 3,000 rows instead of the default
/// 30,000. It tells the planner how large the table is and how selective its keys
/// are, which is all a batch's reads need, and costs ~25 ms on 94,000 alerts instead
/// of 260–340 ms (BENCHMARKS.md).
const STATISTICS_TARGET: u32 = 10;

/// Analyzes a keyed table as soon as it changed by a tenth since its last analysis.
/// A batch finds its alerts through the unique index on (source, dedup_key); with
/// statistics from when the table was small, PostgreSQL searches that index on
/// `source` alone and filters every firing alert of the source, per batch — on a
/// table filling from empty (a new install, an alert storm) one replica fell from
/// 7,900 to 1,700 alerts/s within seconds. Autovacuum would get there, but only
/// after its one-minute nap; this looks every two seconds.
async fn keep_statistics(pool: PgPool) {
    loop {
        tokio::time::sleep(STATISTICS_EVERY).await;
        if let Err(error) = refresh_statistics(&pool).await {
            tracing::debug!(%error, "cannot refresh the tables' statistics; autovacuum will");
        }
    }
}

/// One refresh of the keyed tables that changed enough, by one replica at a time,
/// with a small sample.
async fn refresh_statistics(pool: &PgPool) -> Result<(), sqlx::Error> {
    let stale = format!(
        "SELECT relname::text FROM pg_stat_user_tables WHERE schemaname = current_schema() \
         AND relname IN ({KEYED_TABLES}) AND n_mod_since_analyze > 1000 + n_live_tup / 10"
    );
    let mut transaction = pool.begin().await?;
    let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(STATISTICS_LOCK)
        .fetch_one(&mut *transaction)
        .await?;
    if !ours {
        return Ok(());
    }
    // Read under the lock: a refresh another replica just made is seen.
    let tables: Vec<String> = sqlx::query_scalar(AssertSqlSafe(stale))
        .fetch_all(&mut *transaction)
        .await?;
    if tables.is_empty() {
        return Ok(());
    }
    let target = format!("SET LOCAL default_statistics_target = {STATISTICS_TARGET}");
    sqlx::query(AssertSqlSafe(target))
        .execute(&mut *transaction)
        .await?;
    for table in tables {
        // `table` is one of KEYED_TABLES, as pg_stat_user_tables names it.
        let analyze = AssertSqlSafe(format!("ANALYZE {table}"));
        sqlx::query(analyze).execute(&mut *transaction).await?;
    }
    transaction.commit().await
}

impl PostgresStore {
    /// Brings the schema up to date (replicas starting together take turns: the
    /// migrator holds an advisory lock), then connects the pool.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        // A replica that stops mid-batch (a panic, a hung host) must not hold its locks
        // for ever: PostgreSQL ends a transaction idle for 30 s. A batch waits at most
        // 10 s for a lock before answering 503.
        let options = PgConnectOptions::from_str(url)?
            .options([("idle_in_transaction_session_timeout", "30s")]);
        // The migrator waits for another replica's migration as long as it takes.
        let migrator = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&migrator)
            .await?;
        migrator.close().await;
        let options = options.options([("lock_timeout", "10s")]);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Self {
            statistics: tokio::spawn(keep_statistics(pool.clone())),
            writer: pool.clone(),
            readers: pool,
            turn: tokio::sync::Mutex::new(None),
            announcing: Arc::default(),
            replica: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    fn pool(&self, on: On) -> &PgPool {
        match on {
            On::Writer => &self.writer,
            On::Readers => &self.readers,
        }
    }
}

impl Backend for PostgresStore {
    type Row = PgRow;
    /// Replicas claim due rows concurrently: each takes rows nobody else holds.
    const CLAIM_LOCK: &'static str = " FOR UPDATE SKIP LOCKED";
    /// Several replicas share the database: what one finds half-done may be another's.
    const ONE_PROCESS: bool = false;
    const ROUND_TRIPS: bool = true;

    async fn fetch_all(&self, on: On, sql: Sql) -> Result<Vec<PgRow>, StoreError> {
        Ok(query(sql)?.fetch_all(self.pool(on)).await?)
    }

    async fn fetch_optional(&self, on: On, sql: Sql) -> Result<Option<PgRow>, StoreError> {
        Ok(query(sql)?.fetch_optional(self.pool(on)).await?)
    }

    async fn execute(&self, on: On, sql: Sql) -> Result<u64, StoreError> {
        Ok(query(sql)?.execute(self.pool(on)).await?.rows_affected())
    }

    /// Waits for the whole turn: a transaction holding the advisory lock exclusively,
    /// once every keyed batch has committed; released by its commit or rollback — or
    /// by PostgreSQL when the replica's connection dies. Other replicas write between
    /// two turns, so the writer's view is always to be read again.
    async fn take_turn(&self) -> Result<bool, StoreError> {
        self.open_batch(format!("BEGIN; SELECT pg_advisory_xact_lock({TURN_LOCK})"))
            .await?;
        Ok(true)
    }

    async fn give_up_turn(&self) {
        if let Some(transaction) = self.turn.lock().await.take()
            && let Err(error) = transaction.rollback().await
        {
            tracing::warn!(%error, "giving up the write turn failed; the connection drop ends it");
        }
    }

    /// One round trip: the transaction, the turn shared and the keys.
    async fn begin_keyed(&self, keys: &[i64]) -> Result<(), StoreError> {
        let mut begin = format!("BEGIN; SELECT pg_advisory_xact_lock_shared({TURN_LOCK})");
        if !keys.is_empty() {
            begin.push_str("; ");
            begin.push_str(&lock_each(keys));
        }
        self.open_batch(begin).await
    }

    /// One statement for all the keys: `unnest` yields them in the order given.
    async fn lock_keys(&self, keys: &[i64]) -> Result<(), StoreError> {
        let mut held = self.turn.lock().await;
        let transaction = held.as_mut().ok_or_else(|| {
            StoreError::Open("keys can only be locked inside a batch's transaction".into())
        })?;
        sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k")
            .bind(keys)
            .execute(&mut **transaction)
            .await?;
        Ok(())
    }

    async fn relay_commits(
        &self,
        to: &tokio::sync::broadcast::Sender<()>,
    ) -> Result<(), StoreError> {
        let mut listener = PgListener::connect_with(&self.writer).await?;
        listener.listen(COMMITS).await?;
        loop {
            let notification = listener.recv().await?;
            // Its own commits this replica has told already; nobody watching is fine.
            if notification.payload() != self.replica {
                let _ = to.send(());
            }
        }
    }

    async fn id_block(&self, table: IdTable) -> Result<i64, StoreError> {
        let sequence = match table {
            IdTable::Alerts => "SELECT nextval('alert_id_blocks')",
            IdTable::Incidents => "SELECT nextval('incident_id_blocks')",
            IdTable::Silences => "SELECT nextval('silence_id_blocks')",
            IdTable::Runs => "SELECT nextval('run_id_blocks')",
        };
        Ok(sqlx::query_scalar(sequence).fetch_one(&self.writer).await?)
    }

    /// Runs a batch in its transaction (or a new one), one statement at a time
    /// (PostgreSQL takes one statement per bound query).
    async fn execute_batch(&self, statements: Vec<Sql>) -> Result<(), StoreError> {
        let held = self.turn.lock().await.take();
        let mut transaction = match held {
            Some(transaction) => transaction,
            None => self.writer.begin().await?,
        };
        for statement in statements {
            query(statement)?.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        self.announce();
        Ok(())
    }

    /// A transaction on a writer connection of its own: the turn's, which a batch may
    /// hold at the same time, is the pipeline's alone.
    async fn execute_together(&self, statements: Vec<Sql>) -> Result<(), StoreError> {
        let mut transaction = self.writer.begin().await?;
        for statement in statements {
            query(statement)?.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

impl PostgresStore {
    /// Tells other replicas' dashboards that something changed, once for every
    /// commit of the next [`ANNOUNCE_EVERY`]: outside the batch, since a `NOTIFY`
    /// in it would serialize every replica's commits on PostgreSQL's notify lock.
    fn announce(&self) {
        if self.announcing.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = self.writer.clone();
        let announcing = self.announcing.clone();
        let replica = self.replica.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ANNOUNCE_EVERY).await;
            announcing.store(false, Ordering::Release);
            if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(COMMITS)
                .bind(replica)
                .execute(&pool)
                .await
            {
                tracing::debug!(%error, "other replicas' dashboards were not told of a commit");
            }
        });
    }

    /// Begins the transaction of a batch with `begin`, which takes the turn lock and
    /// the batch's first locks in the same round trip (a simple query of several
    /// statements: nothing a client sent is in it). What the batch reads after its
    /// locks (on any connection, PostgreSQL's default READ COMMITTED) is what was
    /// committed before they were granted.
    async fn open_batch(&self, begin: String) -> Result<(), StoreError> {
        let transaction = self.writer.begin_with(AssertSqlSafe(begin)).await?;
        *self.turn.lock().await = Some(transaction);
        Ok(())
    }
}

/// The statement locking `keys`, in the order given, with the keys written out.
fn lock_each(keys: &[i64]) -> String {
    let listed: Vec<String> = keys.iter().map(i64::to_string).collect();
    format!(
        "SELECT pg_advisory_xact_lock(k) FROM unnest('{{{}}}'::bigint[]) AS k",
        listed.join(",")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_locked_in_the_order_given_and_written_out() {
        assert_eq!(
            super::lock_each(&[-3, 2, 9]),
            "SELECT pg_advisory_xact_lock(k) FROM unnest('{-3,2,9}'::bigint[]) AS k"
        );
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            super::q("UPDATE t SET a = ? WHERE b = ? AND c IN (?)").0,
            "UPDATE t SET a = $1 WHERE b = $2 AND c IN ($3)"
        );
    }
}
