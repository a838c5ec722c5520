//! The embedded SQLite backend: WAL, `synchronous=FULL`, one writer connection (the
//! group-commit writer is its only user) and a small pool of readers. An OS lock on
//! `<db>.lock` keeps a second instance off the same file and dies with the process.

use super::StoreError;
use super::sql::{Backend, On, Sql, arguments};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Sqlite, SqlitePool};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A statement as sqlx runs it on SQLite, which takes the `?` placeholders as written.
fn query(sql: Sql) -> Result<sqlx::query::Query<'static, Sqlite, SqliteArguments>, StoreError> {
    let (text, args, persistent) = sql.into_parts();
    let args = arguments(args).map_err(sqlx::Error::Encode)?;
    Ok(sqlx::query_with(AssertSqlSafe(text), args).persistent(persistent))
}

/// A SQLite database file owned by this process.
#[derive(Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    /// Held for the life of the store: the one-instance guard.
    _lock: File,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let path = database_path(url);
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| {
                StoreError::Open(format!(
                    "cannot create the directory {}: {error}",
                    dir.display()
                ))
            })?;
        }
        let lock = lock(&path)?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            writer,
            readers,
            _lock: lock,
        })
    }
}

pub(super) fn database_path(url: &str) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

fn lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let file = File::create(&lock_path).map_err(|error| {
        StoreError::Open(format!(
            "cannot create the lock file {}: {error}",
            lock_path.display()
        ))
    })?;
    file.try_lock().map_err(|_| {
        StoreError::Open(format!(
            "another tocsin is already serving {} (it holds {}); stop it first, or point [storage] url at another file",
            path.display(),
            lock_path.display()
        ))
    })?;
    Ok(file)
}

impl SqliteStore {
    fn pool(&self, on: On) -> &SqlitePool {
        match on {
            On::Writer => &self.writer,
            On::Readers => &self.readers,
        }
    }
}

impl Backend for SqliteStore {
    type Row = SqliteRow;
    /// SQLite has one writer at a time: a claim needs no row lock.
    const CLAIM_LOCK: &'static str = "";
    /// One process owns the file (the lock above), so what it finds half-done at start
    /// is its own: runs marked running were cut short, claims can be released at once.
    const ONE_PROCESS: bool = true;

    async fn fetch_all(&self, on: On, sql: Sql) -> Result<Vec<SqliteRow>, StoreError> {
        Ok(query(sql)?.fetch_all(self.pool(on)).await?)
    }

    async fn fetch_optional(&self, on: On, sql: Sql) -> Result<Option<SqliteRow>, StoreError> {
        Ok(query(sql)?.fetch_optional(self.pool(on)).await?)
    }

    async fn execute(&self, on: On, sql: Sql) -> Result<u64, StoreError> {
        Ok(query(sql)?.execute(self.pool(on)).await?.rows_affected())
    }

    /// A whole batch, BEGIN to COMMIT, as one multi-statement query: one trip to
    /// SQLite's worker thread instead of one per statement, which under load costs
    /// more than the fsync itself.
    async fn execute_batch(&self, statements: Vec<Sql>) -> Result<(), StoreError> {
        let mut batch = Sql::once("BEGIN IMMEDIATE;");
        for statement in statements {
            batch.append(statement);
        }
        batch.push("COMMIT;");
        let mut connection = self.writer.acquire().await?;
        let outcome = query(batch)?.execute(&mut *connection).await;
        if let Err(error) = outcome {
            // A statement failed before COMMIT: the transaction is still open.
            if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut *connection).await {
                tracing::warn!(%rollback, "rollback after a failed batch failed");
            }
            return Err(error.into());
        }
        Ok(())
    }

    /// One process, so the turn is always its own and its view always fresh.
    async fn take_turn(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn give_up_turn(&self) {}

    async fn begin_keyed(&self) -> Result<(), StoreError> {
        Err(one_writer())
    }

    async fn lock_keys(&self, _keys: &[i64]) -> Result<(), StoreError> {
        Err(one_writer())
    }

    /// No other writer commits.
    async fn relay_commits(
        &self,
        _to: &tokio::sync::broadcast::Sender<()>,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn id_block(&self, _table: super::IdTable) -> Result<i64, StoreError> {
        Err(one_writer())
    }
}

/// Why SQLite refuses the calls of concurrent writers (its one writer never makes them).
fn one_writer() -> StoreError {
    StoreError::Open(
        "SQLite has a single writer; writing from several replicas needs a postgres:// storage url"
            .into(),
    )
}
