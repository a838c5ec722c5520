//! Rows of the chat, push and voice channels: the messages posted with an incident's
//! buttons, so that an act from any path (link, SMS, API, a click) updates them; and
//! a user's later channel brought forward when an earlier one failed. The SQL is in
//! `sql/channels.rs`.

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
pub trait ChannelStore: Send + Sync + 'static {
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
