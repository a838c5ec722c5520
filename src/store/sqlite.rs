//! The embedded SQLite backend: WAL, `synchronous=FULL`, one writer connection (the
//! group-commit writer is its only user) and a small pool of readers. An OS lock on
//! `<db>.lock` keeps a second instance off the same file and dies with the process.

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// SQLite takes the `?` placeholders as written.
fn q(sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql.to_string())
}

/// SQLite has one writer at a time: a claim needs no row lock.
const CLAIM_LOCK: &str = "";
/// One process owns the file (the lock below), so what it finds half-done at start
/// is its own: runs marked running were cut short, claims can be released at once.
const ONE_PROCESS: bool = true;

/// A whole batch, BEGIN to COMMIT, as one multi-statement query: one trip to SQLite's
/// worker thread instead of one per statement, which under load costs more than the
/// fsync itself.
struct Statements(sqlx::QueryBuilder<Sqlite>);

impl Default for Statements {
    fn default() -> Self {
        Self(sqlx::QueryBuilder::new("BEGIN IMMEDIATE;"))
    }
}

impl Statements {
    /// Where the next statement goes (each ends with `;`).
    fn next(&mut self) -> &mut sqlx::QueryBuilder<Sqlite> {
        &mut self.0
    }
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
    /// One process, so the turn is always its own and its view always fresh.
    async fn take_turn(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn give_up_turn(&self) {}

    async fn note_loaded(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Runs a batch in one transaction.
    async fn execute(&self, mut statements: Statements) -> Result<(), StoreError> {
        statements.0.push("COMMIT;");
        let mut connection = self.writer.acquire().await?;
        let outcome = statements
            .0
            .build()
            .persistent(false)
            .execute(&mut *connection)
            .await;
        if let Err(error) = outcome {
            // A statement failed before COMMIT: the transaction is still open.
            if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut *connection).await {
                tracing::warn!(%rollback, "rollback after a failed batch failed");
            }
            return Err(error.into());
        }
        Ok(())
    }
}

super::sql::sql_store!(SqliteStore, Sqlite, SqliteRow);
super::console::console_sql!(SqliteStore);
