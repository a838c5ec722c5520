//! The PostgreSQL backend, for several replicas on one database: a pool of
//! connections shared by the writer, the outbox, the ticket desk and the API; a batch
//! is one transaction; claims lock their rows with `FOR UPDATE SKIP LOCKED`; and the
//! unique index on firing alerts (kept here, dropped for SQLite) makes one firing
//! alert per identity a fact of the store. A lost server makes every call fail fast
//! (3 s to get a connection), so ingest answers 503 and `/readyz` says false until it
//! is back; the pool reconnects by itself.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres};
use std::str::FromStr as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Connections per replica: the writer, the outbox and desk rounds, API reads.
const POOL_SIZE: u32 = 16;
/// How long a call waits for a connection before it fails (and ingest answers 503).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

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

/// Replicas claim due rows concurrently: each takes rows nobody else holds.
const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";
/// Several replicas share the database: what one finds half-done may be another's.
const ONE_PROCESS: bool = false;
/// The advisory lock replicas take turns on (any constant shared by all of them).
const TURN_LOCK: i64 = 0x0070_726f_6373_696e;

/// A batch as separate statements: PostgreSQL takes one statement per bound query.
#[derive(Default)]
struct Statements(Vec<sqlx::QueryBuilder<Postgres>>);

impl Statements {
    /// A fresh statement.
    fn next(&mut self) -> &mut sqlx::QueryBuilder<Postgres> {
        let index = self.0.len();
        self.0.push(sqlx::QueryBuilder::new(""));
        &mut self.0[index]
    }
}

/// A PostgreSQL database shared by every replica.
#[derive(Debug)]
pub struct PostgresStore {
    writer: PgPool,
    readers: PgPool,
    /// The open transaction of this replica's turn, from `take_turn` to the commit.
    turn: tokio::sync::Mutex<Option<sqlx::Transaction<'static, Postgres>>>,
    /// The write epoch this replica's in-memory view reflects.
    seen_epoch: AtomicI64,
}

impl PostgresStore {
    /// Connects and brings the schema up to date (replicas starting together take
    /// turns: the migrator holds an advisory lock).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        // A replica that stops mid-turn (a panic, a hung host) must not hold the write
        // lock for ever: PostgreSQL ends a transaction idle for 30 s.
        let options = PgConnectOptions::from_str(url)?
            .options([("idle_in_transaction_session_timeout", "30s")]);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            writer: pool.clone(),
            readers: pool,
            turn: tokio::sync::Mutex::new(None),
            seen_epoch: AtomicI64::new(-1),
        })
    }

    /// Waits for the turn: a transaction holding the advisory lock, released by its
    /// commit or rollback — or by PostgreSQL when the replica's connection dies.
    /// Returns whether another replica committed since this one's view was made.
    async fn take_turn(&self) -> Result<bool, StoreError> {
        let mut transaction = self.writer.begin().await?;
        // The epoch must be read after the lock is granted, not from an older snapshot;
        // and a replica waits at most 10 s for the turn before answering 503.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *transaction)
            .await?;
        sqlx::query("SET LOCAL lock_timeout = '10s'")
            .execute(&mut *transaction)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(TURN_LOCK)
            .execute(&mut *transaction)
            .await?;
        let epoch: i64 = sqlx::query_scalar("SELECT epoch FROM write_turns WHERE id = 1")
            .fetch_one(&mut *transaction)
            .await?;
        *self.turn.lock().await = Some(transaction);
        Ok(epoch != self.seen_epoch.load(Ordering::SeqCst))
    }

    async fn give_up_turn(&self) {
        if let Some(transaction) = self.turn.lock().await.take()
            && let Err(error) = transaction.rollback().await
        {
            tracing::warn!(%error, "giving up the write turn failed; the connection drop ends it");
        }
    }

    /// Records which epoch a freshly loaded view reflects. Read before the rows, so
    /// a write landing in between makes the view look older, never newer.
    async fn note_loaded(&self) -> Result<(), StoreError> {
        let epoch: i64 = sqlx::query_scalar("SELECT epoch FROM write_turns WHERE id = 1")
            .fetch_one(&self.readers)
            .await?;
        self.seen_epoch.store(epoch, Ordering::SeqCst);
        Ok(())
    }

    /// Runs a batch in the turn's transaction (or a new one) and counts the turn.
    async fn execute(&self, statements: Statements) -> Result<(), StoreError> {
        let held = self.turn.lock().await.take();
        let mut transaction = match held {
            Some(transaction) => transaction,
            None => self.writer.begin().await?,
        };
        for mut statement in statements.0 {
            statement
                .build()
                .persistent(false)
                .execute(&mut *transaction)
                .await?;
        }
        let epoch: i64 = sqlx::query_scalar(
            "UPDATE write_turns SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch",
        )
        .fetch_one(&mut *transaction)
        .await?;
        transaction.commit().await?;
        self.seen_epoch.store(epoch, Ordering::SeqCst);
        Ok(())
    }
}

super::sql::sql_store!(PostgresStore, Postgres, PgRow);

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            super::q("UPDATE t SET a = ? WHERE b = ? AND c IN (?)").0,
            "UPDATE t SET a = $1 WHERE b = $2 AND c IN ($3)"
        );
    }
}
super::console::console_sql!(PostgresStore);
