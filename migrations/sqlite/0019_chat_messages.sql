-- Chat messages that carry an incident's buttons (Slack), kept so the message can be
-- updated after any act on the incident; `shown` is the status the message shows.
CREATE TABLE chat_messages (
    incident_id BIGINT NOT NULL,
    provider    TEXT   NOT NULL,
    chat        TEXT   NOT NULL,
    message     TEXT   NOT NULL,
    shown       TEXT   NOT NULL,
    PRIMARY KEY (provider, chat, message)
);
CREATE INDEX chat_messages_stale ON chat_messages (incident_id) WHERE shown <> 'resolved';
