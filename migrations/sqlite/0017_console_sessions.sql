-- Sessions of the responder console (/ui). Only a SHA-256 of the session id is kept,
-- so a copy of the database opens no session; the API token is kept as a digest too,
-- so a token removed or rotated in [api] tokens ends its sessions.
CREATE TABLE console_sessions (
    id_hash    TEXT    PRIMARY KEY,
    token_hash TEXT    NOT NULL,
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
