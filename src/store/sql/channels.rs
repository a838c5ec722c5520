//! The channels' rows: chat messages kept for `chat.update`, and a later channel's
//! row brought forward when an earlier one failed.

use super::{Backend, Columns, On, Sql, SqlStore};
use crate::clock::to_millis;
use crate::incident::IncidentStatus;
use crate::store::StoreError;
use crate::store::channels::{ChannelStore, ChatMessage};
use crate::store::paging::Notification;
use async_trait::async_trait;

#[async_trait]
impl<B: Backend> ChannelStore for SqlStore<B> {
    async fn save_chat_message(
        &self,
        message: &ChatMessage,
        shown: IncidentStatus,
    ) -> Result<(), StoreError> {
        let sql = Sql::new("INSERT INTO chat_messages (incident_id, provider, chat, message, shown) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .arg(message.incident_id)
            .arg(&message.provider)
            .arg(&message.chat)
            .arg(&message.message)
            .arg(shown.as_str());
        self.db.execute(On::Writer, sql).await?;
        Ok(())
    }

    async fn stale_chat_messages(
        &self,
        limit: i64,
    ) -> Result<Vec<(ChatMessage, IncidentStatus)>, StoreError> {
        let sql = Sql::new("SELECT m.incident_id, m.provider, m.chat, m.message, i.status FROM chat_messages m JOIN incidents i ON i.id = m.incident_id WHERE m.shown <> 'resolved' AND i.status <> m.shown LIMIT ?")
            .arg(limit);
        self.fetch_map(On::Readers, sql, |row| {
            Ok((
                ChatMessage {
                    incident_id: row.int("incident_id")?,
                    provider: row.text("provider")?,
                    chat: row.text("chat")?,
                    message: row.text("message")?,
                },
                row.word("status")?,
            ))
        })
        .await
    }

    async fn chat_message_shown(
        &self,
        message: &ChatMessage,
        shown: IncidentStatus,
    ) -> Result<(), StoreError> {
        let sql = Sql::new(
            "UPDATE chat_messages SET shown = ? WHERE provider = ? AND chat = ? AND message = ?",
        )
        .arg(shown.as_str())
        .arg(&message.provider)
        .arg(&message.chat)
        .arg(&message.message);
        self.db.execute(On::Writer, sql).await?;
        Ok(())
    }

    async fn bring_forward(&self, fallback: &Notification) -> Result<(), StoreError> {
        let due = to_millis(fallback.due_at);
        let sql = Sql::new("UPDATE notifications SET due_at = ? WHERE incident_id = ? AND user_id = ? AND channel = ? AND kind = ? AND step = ? AND status = 'pending' AND due_at > ?")
            .arg(due)
            .arg(fallback.incident_id)
            .arg(&fallback.user_id)
            .arg(fallback.channel.as_str())
            .arg(fallback.kind.as_str())
            .arg(&fallback.step)
            .arg(due);
        self.db.execute(On::Writer, sql).await?;
        Ok(())
    }
}
