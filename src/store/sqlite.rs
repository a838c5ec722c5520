//! The embedded SQLite backend: WAL, `synchronous=FULL`, one write connection on a
//! thread of its own (`sqlite_writer.rs`; every write and every read that must see
//! the latest commit) and a small pool of sqlx readers for the API. An OS lock on
//! `<db>.lock` keeps a second instance off the same file and dies with the process.

use super::StoreError;
use super::sql::{Backend, Columns, On, Sql, arguments};
use super::sqlite_writer::{Writer, WrittenRow};
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
    writer: Writer,
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
        // sqlx's migrator brings the schema up to date on a connection of its own,
        // closed before the writer thread opens the file.
        let migrator = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&migrator).await?;
        migrator.close().await;
        let writer = Writer::start(&path)?;
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

/// A row from either side: the readers' pool or the writer thread.
pub(super) enum Row {
    Read(SqliteRow),
    Written(WrittenRow),
}

impl Columns for Row {
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        match self {
            Self::Read(row) => row.int(column),
            Self::Written(row) => row.int(column),
        }
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        match self {
            Self::Read(row) => row.opt_int(column),
            Self::Written(row) => row.opt_int(column),
        }
    }
    fn opt_int32(&self, column: &str) -> Result<Option<i32>, StoreError> {
        match self {
            Self::Read(row) => row.opt_int32(column),
            Self::Written(row) => row.opt_int32(column),
        }
    }
    fn text(&self, column: &str) -> Result<String, StoreError> {
        match self {
            Self::Read(row) => row.text(column),
            Self::Written(row) => row.text(column),
        }
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self {
            Self::Read(row) => row.opt_text(column),
            Self::Written(row) => row.opt_text(column),
        }
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        match self {
            Self::Read(row) => row.flag(column),
            Self::Written(row) => row.flag(column),
        }
    }
    fn first_int(&self) -> Result<i64, StoreError> {
        match self {
            Self::Read(row) => row.first_int(),
            Self::Written(row) => row.first_int(),
        }
    }
    fn first_text(&self) -> Result<String, StoreError> {
        match self {
            Self::Read(row) => row.first_text(),
            Self::Written(row) => row.first_text(),
        }
    }
}

impl Backend for SqliteStore {
    type Row = Row;
    /// SQLite has one writer at a time: a claim needs no row lock.
    const CLAIM_LOCK: &'static str = "";
    /// One process owns the file (the lock above), so what it finds half-done at start
    /// is its own: runs marked running were cut short, claims can be released at once.
    const ONE_PROCESS: bool = true;
    const ROUND_TRIPS: bool = false;

    async fn fetch_all(&self, on: On, sql: Sql) -> Result<Vec<Row>, StoreError> {
        Ok(match on {
            On::Writer => self
                .writer
                .fetch(sql)
                .await?
                .into_iter()
                .map(Row::Written)
                .collect(),
            On::Readers => query(sql)?
                .fetch_all(&self.readers)
                .await?
                .into_iter()
                .map(Row::Read)
                .collect(),
        })
    }

    async fn fetch_optional(&self, on: On, sql: Sql) -> Result<Option<Row>, StoreError> {
        Ok(match on {
            On::Writer => self
                .writer
                .fetch(sql)
                .await?
                .into_iter()
                .next()
                .map(Row::Written),
            On::Readers => query(sql)?
                .fetch_optional(&self.readers)
                .await?
                .map(Row::Read),
        })
    }

    async fn execute(&self, on: On, sql: Sql) -> Result<u64, StoreError> {
        match on {
            On::Writer => self.writer.execute(sql).await,
            On::Readers => Ok(query(sql)?.execute(&self.readers).await?.rows_affected()),
        }
    }

    /// A whole batch in one transaction on the writer thread, which commits it with
    /// whatever else is waiting for it.
    async fn execute_batch(&self, statements: Vec<Sql>) -> Result<(), StoreError> {
        self.writer.batch(statements).await
    }

    /// One request to the writer thread: one savepoint in its group commit, which it
    /// waits a little to share with the pipeline's next batch.
    async fn execute_together(&self, statements: Vec<Sql>) -> Result<(), StoreError> {
        self.writer.patient_batch(statements).await
    }

    /// One process, so the turn is always its own and its view always fresh.
    async fn take_turn(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn give_up_turn(&self) {}

    async fn begin_keyed(&self, _keys: &[i64]) -> Result<(), StoreError> {
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
