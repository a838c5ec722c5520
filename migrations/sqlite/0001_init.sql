-- Timestamps are milliseconds since the Unix epoch (UTC), bound by the application:
-- SQL never reads the clock, so tests can move time.

CREATE TABLE incidents (
    id                INTEGER PRIMARY KEY,
    title             TEXT    NOT NULL,
    priority          TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    acknowledged_at   INTEGER,
    resolved_at       INTEGER,
    alert_count       INTEGER NOT NULL,
    escalation_level  TEXT    NOT NULL,
    response_due      INTEGER NOT NULL,
    resolve_due       INTEGER NOT NULL,
    flapping          INTEGER NOT NULL DEFAULT 0,
    on_hold           INTEGER NOT NULL DEFAULT 0,
    source            TEXT    NOT NULL,
    resource          TEXT    NOT NULL,
    check_name        TEXT    NOT NULL,
    summary           TEXT    NOT NULL,
    group_key         TEXT,
    rule              TEXT,
    escalation_policy TEXT,
    last_alert_at     INTEGER NOT NULL
);
CREATE INDEX incidents_open ON incidents (status) WHERE status <> 'resolved';

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    dedup_key   TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    check_name  TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    priority    TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    details     TEXT    NOT NULL,
    labels      TEXT    NOT NULL,
    links       TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    occurred_at INTEGER,
    resolved_at INTEGER,
    incident_id INTEGER,
    silenced    INTEGER NOT NULL DEFAULT 0,
    flapping    INTEGER NOT NULL DEFAULT 0
);
-- Invariant: at most one firing alert per identity; the in-memory index mirrors it.
CREATE UNIQUE INDEX alerts_one_firing_per_key ON alerts (source, dedup_key) WHERE status = 'firing';
CREATE INDEX alerts_by_key ON alerts (source, dedup_key, id);
CREATE INDEX alerts_by_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL;

CREATE TABLE timeline (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    data        TEXT    NOT NULL
);
CREATE INDEX timeline_by_incident ON timeline (incident_id, id);
