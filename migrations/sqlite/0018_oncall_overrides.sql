-- "I take this shift until …": overrides of a schedule written from the console.
CREATE TABLE oncall_overrides (
    id         INTEGER PRIMARY KEY,
    schedule   TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX oncall_overrides_ends ON oncall_overrides (ends_at);
