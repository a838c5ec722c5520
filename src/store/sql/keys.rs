//! Single-use keys, kept `Idempotency-Key` answers and persistent settings.

use super::{Backend, Columns, On, Sql, SqlStore};
use crate::clock::to_millis;
use crate::store::{KeyStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl<B: Backend> KeyStore for SqlStore<B> {
    async fn is_spent(&self, key: &str) -> Result<bool, StoreError> {
        let sql = Sql::new("SELECT 1 FROM ack_links_used WHERE nonce = ?").arg(key);
        Ok(self.db.fetch_optional(On::Writer, sql).await?.is_some())
    }

    async fn spend_key(&self, key: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let sql = Sql::new(
            "INSERT INTO ack_links_used (nonce, used_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING",
        )
        .arg(key)
        .arg(to_millis(at));
        Ok(self.db.execute(On::Writer, sql).await? == 1)
    }

    async fn remembered_answer(
        &self,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let sql = Sql::new("SELECT answer FROM idempotency_keys WHERE key = ? AND created_at >= ?")
            .arg(key)
            .arg(to_millis(since));
        self.db
            .fetch_optional(On::Writer, sql)
            .await?
            .map(|row| row.first_text())
            .transpose()
    }

    async fn setting(&self, name: &str, initial: &str) -> Result<String, StoreError> {
        let sql =
            Sql::new("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .arg(name)
                .arg(initial);
        self.db.execute(On::Writer, sql).await?;
        let sql = Sql::new("SELECT value FROM settings WHERE name = ?").arg(name);
        self.fetch_one(On::Writer, sql).await?.first_text()
    }
}
