-- Silences (maintenance windows) and heartbeats (dead-man's switches).

CREATE TABLE silences (
    id         BIGINT PRIMARY KEY,
    matchers   TEXT    NOT NULL,   -- JSON array of matcher strings, rule syntax
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    created_by TEXT    NOT NULL,
    comment    TEXT    NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE heartbeats (
    name       TEXT    PRIMARY KEY,
    last_seen  BIGINT NOT NULL
);
