//! Rows of the responder console: sessions (only digests of their ids are stored) and
//! on-call overrides written from it. The SQL is in `sql/console.rs`.

use super::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use crate::oncall::stored::OverrideRow;

/// A console session as stored: the digest of the API token it was opened with (so a
/// token removed from the configuration ends it) and its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// What the console keeps besides incidents. Sessions are written straight to the
/// store (they are not incidents, so the one-writer rule does not apply); every replica
/// sees them, so a session works behind any of them.
#[async_trait]
pub trait ConsoleStore: Send + Sync + 'static {
    /// Stores a session under the digest of its id, and drops the expired ones.
    async fn create_session(
        &self,
        id_hash: &str,
        row: &SessionRow,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The session whose id has this digest, if it has not expired at `now`.
    async fn session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRow>, StoreError>;
    /// Ends one session, and drops every expired one with it.
    async fn end_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Writes an override; returns its id.
    async fn add_override(&self, row: &OverrideRow, now: DateTime<Utc>) -> Result<i64, StoreError>;
    /// Overrides that have not ended at `now`, oldest first.
    async fn overrides(&self, now: DateTime<Utc>) -> Result<Vec<OverrideRow>, StoreError>;
}

/// The overrides not ended at `now`, read without opening the store: `tocsin oncall`
/// runs beside a `serve` that holds the SQLite file's lock, and migrates nothing. A
/// database not created yet has none.
pub async fn read_overrides(url: &str, now: DateTime<Utc>) -> Result<Vec<OverrideRow>, StoreError> {
    const SELECT: &str = "SELECT id, schedule, user_id, starts_at, ends_at, created_by FROM oncall_overrides WHERE ends_at > $1 ORDER BY id";
    let rows: Vec<(i64, String, String, i64, i64, String)> = if url.starts_with("sqlite:") {
        let path = super::sqlite::database_path(url);
        if !path.exists() {
            return Ok(Vec::new());
        }
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let rows = sqlx::query_as(SELECT)
            .bind(crate::clock::to_millis(now))
            .fetch_all(&pool)
            .await?;
        pool.close().await;
        rows
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await?;
        let rows = sqlx::query_as(SELECT)
            .bind(crate::clock::to_millis(now))
            .fetch_all(&pool)
            .await?;
        pool.close().await;
        rows
    };
    Ok(rows
        .into_iter()
        .map(
            |(id, schedule, user_id, starts_at, ends_at, created_by)| OverrideRow {
                id,
                schedule,
                user_id,
                starts_at: crate::clock::from_millis(starts_at),
                ends_at: crate::clock::from_millis(ends_at),
                created_by,
            },
        )
        .collect())
}
