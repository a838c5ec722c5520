//! The console's rows: sessions under the digest of their id, and on-call overrides.

use super::{Backend, Columns, On, Sql, SqlStore};
use crate::clock::to_millis;
use crate::store::StoreError;
use crate::store::console::{ConsoleStore, OverrideRow, SessionRow};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl<B: Backend> ConsoleStore for SqlStore<B> {
    async fn create_session(
        &self,
        id_hash: &str,
        row: &SessionRow,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Sign-ins sweep the sessions that ran out, so the table stays small.
        let sweep =
            Sql::new("DELETE FROM console_sessions WHERE expires_at <= ?").arg(to_millis(now));
        self.db.execute(On::Writer, sweep).await?;
        let sql = Sql::new("INSERT INTO console_sessions (id_hash, token_hash, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .arg(id_hash)
            .arg(&row.token_hash)
            .arg(&row.csrf)
            .arg(to_millis(now))
            .arg(to_millis(row.expires_at));
        self.db.execute(On::Writer, sql).await?;
        Ok(())
    }

    async fn session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRow>, StoreError> {
        let sql = Sql::new("SELECT token_hash, csrf, expires_at FROM console_sessions WHERE id_hash = ? AND expires_at > ?")
            .arg(id_hash)
            .arg(to_millis(now));
        self.db
            .fetch_optional(On::Readers, sql)
            .await?
            .map(|row| {
                Ok(SessionRow {
                    token_hash: row.text("token_hash")?,
                    csrf: row.text("csrf")?,
                    expires_at: row.time("expires_at")?,
                })
            })
            .transpose()
    }

    async fn end_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = Sql::new("DELETE FROM console_sessions WHERE id_hash = ? OR expires_at <= ?")
            .arg(id_hash)
            .arg(to_millis(now));
        self.db.execute(On::Writer, sql).await?;
        Ok(())
    }

    async fn add_override(&self, row: &OverrideRow, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let sql = Sql::new("INSERT INTO oncall_overrides (schedule, user_id, starts_at, ends_at, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id")
            .arg(&row.schedule)
            .arg(&row.user_id)
            .arg(to_millis(row.starts_at))
            .arg(to_millis(row.ends_at))
            .arg(&row.created_by)
            .arg(to_millis(now));
        self.fetch_one(On::Writer, sql).await?.first_int()
    }

    async fn overrides(&self, now: DateTime<Utc>) -> Result<Vec<OverrideRow>, StoreError> {
        let sql = Sql::new("SELECT id, schedule, user_id, starts_at, ends_at, created_by FROM oncall_overrides WHERE ends_at > ? ORDER BY id")
            .arg(to_millis(now));
        self.fetch_map(On::Readers, sql, |row| {
            Ok(OverrideRow {
                id: row.int("id")?,
                schedule: row.text("schedule")?,
                user_id: row.text("user_id")?,
                starts_at: row.time("starts_at")?,
                ends_at: row.time("ends_at")?,
                created_by: row.text("created_by")?,
            })
        })
        .await
    }
}
