-- Silences (maintenance windows) and heartbeats (dead-man's switches).

CREATE TABLE silences (
    id         INTEGER PRIMARY KEY,
    matchers   TEXT    NOT NULL,   -- JSON array of matcher strings, rule syntax
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    comment    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE heartbeats (
    name       TEXT    PRIMARY KEY,
    last_seen  INTEGER NOT NULL
);
