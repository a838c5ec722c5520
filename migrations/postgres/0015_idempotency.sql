-- Answers to requests made with an Idempotency-Key, kept 24 h so a repeat returns
-- the first answer instead of acting again (SPEC §11).
CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    answer     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX silences_ends_at ON silences (ends_at);
