//! Rows of the responder console: sessions (only digests of their ids are stored) and
//! on-call overrides written from it. [`console_sql!`] implements [`ConsoleStore`]
//! inside each backend's module, with the SQL written once for both.

use super::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A console session as stored: the digest of the API token it was opened with (so a
/// token removed from the configuration ends it) and its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// A stored on-call override: `user_id` takes `schedule` from `starts_at` to `ends_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRow {
    pub id: i64,
    pub schedule: String,
    pub user_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
}

/// What the console keeps besides incidents. Sessions are written straight to the
/// store (they are not incidents, so the one-writer rule does not apply); every replica
/// sees them, so a session works behind any of them.
#[async_trait]
pub trait ConsoleStore: Send + Sync {
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

/// Implements [`ConsoleStore`] for `$store`, inside a backend module that provides `q`
/// and the `writer` and `readers` pools.
macro_rules! console_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::console::ConsoleStore for $store {
            async fn create_session(
                &self,
                id_hash: &str,
                row: &$crate::store::console::SessionRow,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                // Sign-ins sweep the sessions that ran out, so the table stays small.
                sqlx::query(q("DELETE FROM console_sessions WHERE expires_at <= ?"))
                    .bind($crate::clock::to_millis(now))
                    .execute(&self.writer)
                    .await?;
                sqlx::query(q("INSERT INTO console_sessions (id_hash, token_hash, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"))
                    .bind(id_hash)
                    .bind(&row.token_hash)
                    .bind(&row.csrf)
                    .bind($crate::clock::to_millis(now))
                    .bind($crate::clock::to_millis(row.expires_at))
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn session(
                &self,
                id_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<$crate::store::console::SessionRow>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(q("SELECT token_hash, csrf, expires_at FROM console_sessions WHERE id_hash = ? AND expires_at > ?"))
                    .bind(id_hash)
                    .bind($crate::clock::to_millis(now))
                    .fetch_optional(&self.readers)
                    .await?;
                row.map(|row| {
                    Ok($crate::store::console::SessionRow {
                        token_hash: row.try_get("token_hash")?,
                        csrf: row.try_get("csrf")?,
                        expires_at: $crate::clock::from_millis(row.try_get("expires_at")?),
                    })
                })
                .transpose()
            }

            async fn end_session(
                &self,
                id_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(q("DELETE FROM console_sessions WHERE id_hash = ? OR expires_at <= ?"))
                    .bind(id_hash)
                    .bind($crate::clock::to_millis(now))
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn add_override(
                &self,
                row: &$crate::store::console::OverrideRow,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<i64, $crate::store::StoreError> {
                Ok(sqlx::query_scalar(q("INSERT INTO oncall_overrides (schedule, user_id, starts_at, ends_at, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id"))
                    .bind(&row.schedule)
                    .bind(&row.user_id)
                    .bind($crate::clock::to_millis(row.starts_at))
                    .bind($crate::clock::to_millis(row.ends_at))
                    .bind(&row.created_by)
                    .bind($crate::clock::to_millis(now))
                    .fetch_one(&self.writer)
                    .await?)
            }

            async fn overrides(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::store::console::OverrideRow>, $crate::store::StoreError> {
                use sqlx::Row as _;
                sqlx::query(q("SELECT id, schedule, user_id, starts_at, ends_at, created_by FROM oncall_overrides WHERE ends_at > ? ORDER BY id"))
                    .bind($crate::clock::to_millis(now))
                    .fetch_all(&self.readers)
                    .await?
                    .iter()
                    .map(|row| {
                        Ok($crate::store::console::OverrideRow {
                            id: row.try_get("id")?,
                            schedule: row.try_get("schedule")?,
                            user_id: row.try_get("user_id")?,
                            starts_at: $crate::clock::from_millis(row.try_get("starts_at")?),
                            ends_at: $crate::clock::from_millis(row.try_get("ends_at")?),
                            created_by: row.try_get("created_by")?,
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use console_sql;
