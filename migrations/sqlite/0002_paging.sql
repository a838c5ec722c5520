-- Paging: durable escalation timers, the notification outbox, used acknowledgement
-- links, and settings that must survive restarts (the link-signing key).

CREATE TABLE escalations (
    incident_id INTEGER PRIMARY KEY,
    policy      TEXT    NOT NULL,
    -- The next tier to page (index into the policy's tiers), which repeat this is,
    -- and how many tier steps were paged so far (names each step uniquely).
    tier        INTEGER NOT NULL,
    cycle       INTEGER NOT NULL,
    steps       INTEGER NOT NULL,
    -- When the next step is due; NULL once the policy has run out.
    due_at      INTEGER,
    -- 'tiers' while paging tiers; 'ack_timeout' while acknowledged with a timeout.
    state       TEXT    NOT NULL,
    -- The last step that paged someone, e.g. 'L2#1'.
    last_step   TEXT
);
CREATE INDEX escalations_due ON escalations (due_at) WHERE due_at IS NOT NULL;

CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    user_id     TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    address     TEXT    NOT NULL,
    -- 'page' or 'resolved'
    kind        TEXT    NOT NULL,
    -- The step that caused it, e.g. 'L2#1': with the columns above it makes
    -- a page unique, so one event never pages anyone twice.
    step        TEXT    NOT NULL,
    -- 'pending', 'sending', 'sent', 'failed' or 'cancelled'
    status      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_at      INTEGER NOT NULL,
    deadline    INTEGER NOT NULL,
    last_error  TEXT,
    sent_at     INTEGER,
    created_at  INTEGER NOT NULL,
    UNIQUE (incident_id, user_id, channel, kind, step)
);
CREATE INDEX notifications_due ON notifications (due_at) WHERE status = 'pending';
CREATE INDEX notifications_by_incident ON notifications (incident_id);

CREATE TABLE ack_links_used (
    nonce   TEXT PRIMARY KEY,
    used_at INTEGER NOT NULL
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
