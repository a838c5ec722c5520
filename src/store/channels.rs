//! Rows of the chat, push and voice channels: the messages posted with an incident's
//! buttons, so that an act from any path (link, SMS, API, a click) updates them; and
//! a user's later channel brought forward when an earlier one failed.

use super::StoreError;
use crate::incident::IncidentStatus;
use async_trait::async_trait;

/// A posted chat message about an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub incident_id: i64,
    /// `slack`.
    pub provider: String,
    /// The conversation (Slack channel id).
    pub chat: String,
    /// The message within it (Slack `ts`).
    pub message: String,
}

/// The channels' rows, part of every [`super::Store`].
#[async_trait]
pub trait ChannelStore {
    /// Remembers a message posted while the incident was `shown`.
    async fn save_chat_message(
        &self,
        message: &ChatMessage,
        shown: IncidentStatus,
    ) -> Result<(), StoreError>;
    /// Messages whose incident's status changed since they were posted or updated,
    /// with that status.
    async fn stale_chat_messages(
        &self,
        limit: i64,
    ) -> Result<Vec<(ChatMessage, IncidentStatus)>, StoreError>;
    /// Records that `message` now shows `shown`.
    async fn chat_message_shown(
        &self,
        message: &ChatMessage,
        shown: IncidentStatus,
    ) -> Result<(), StoreError>;
    /// Makes `fallback`'s row, when it is queued for later (a rule's `after`), due at
    /// its `due_at` instead: the channel a failing one falls back to is tried now.
    async fn bring_forward(
        &self,
        fallback: &crate::store::paging::Notification,
    ) -> Result<(), StoreError>;
}

/// Implements [`ChannelStore`] for `$store`, inside a backend module (its `q`, pools).
macro_rules! channel_store {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::channels::ChannelStore for $store {
            async fn save_chat_message(
                &self,
                message: &$crate::store::channels::ChatMessage,
                shown: $crate::incident::IncidentStatus,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(q("INSERT INTO chat_messages (incident_id, provider, chat, message, shown) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"))
                    .bind(message.incident_id)
                    .bind(message.provider.clone())
                    .bind(message.chat.clone())
                    .bind(message.message.clone())
                    .bind(shown.as_str())
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn stale_chat_messages(
                &self,
                limit: i64,
            ) -> Result<
                Vec<($crate::store::channels::ChatMessage, $crate::incident::IncidentStatus)>,
                $crate::store::StoreError,
            > {
                use sqlx::Row;
                sqlx::query(q("SELECT m.incident_id, m.provider, m.chat, m.message, i.status FROM chat_messages m JOIN incidents i ON i.id = m.incident_id WHERE m.shown <> 'resolved' AND i.status <> m.shown LIMIT ?"))
                    .bind(limit)
                    .fetch_all(&self.readers)
                    .await?
                    .iter()
                    .map(|row| {
                        let status: String = row.try_get("status")?;
                        let status = status.parse().map_err(|()| {
                            $crate::store::StoreError::Corrupt(format!(
                                "unknown incident status {status:?}"
                            ))
                        })?;
                        Ok((
                            $crate::store::channels::ChatMessage {
                                incident_id: row.try_get("incident_id")?,
                                provider: row.try_get("provider")?,
                                chat: row.try_get("chat")?,
                                message: row.try_get("message")?,
                            },
                            status,
                        ))
                    })
                    .collect()
            }

            async fn chat_message_shown(
                &self,
                message: &$crate::store::channels::ChatMessage,
                shown: $crate::incident::IncidentStatus,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(q("UPDATE chat_messages SET shown = ? WHERE provider = ? AND chat = ? AND message = ?"))
                    .bind(shown.as_str())
                    .bind(message.provider.clone())
                    .bind(message.chat.clone())
                    .bind(message.message.clone())
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }

            async fn bring_forward(
                &self,
                fallback: &$crate::store::paging::Notification,
            ) -> Result<(), $crate::store::StoreError> {
                let due = $crate::clock::to_millis(fallback.due_at);
                sqlx::query(q("UPDATE notifications SET due_at = ? WHERE incident_id = ? AND user_id = ? AND channel = ? AND kind = ? AND step = ? AND status = 'pending' AND due_at > ?"))
                    .bind(due)
                    .bind(fallback.incident_id)
                    .bind(fallback.user_id.clone())
                    .bind(fallback.channel.as_str())
                    .bind(fallback.kind.as_str())
                    .bind(fallback.step.clone())
                    .bind(due)
                    .execute(&self.writer)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use channel_store;
