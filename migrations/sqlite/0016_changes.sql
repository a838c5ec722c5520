-- Change events (deploys, config pushes), shown on incidents that open shortly after.
CREATE TABLE changes (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    resource    TEXT,
    at          INTEGER NOT NULL,
    links       TEXT    NOT NULL,   -- JSON array of {"href", "text"}
    details     TEXT    NOT NULL,   -- JSON
    received_at INTEGER NOT NULL
);
CREATE INDEX changes_at ON changes (at);
