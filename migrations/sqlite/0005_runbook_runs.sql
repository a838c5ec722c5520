-- Every runbook run, automatic or manual, with its (redacted) parameters, exit
-- code and bounded, redacted output.
CREATE TABLE runbook_runs (
    id           INTEGER PRIMARY KEY,
    runbook      TEXT    NOT NULL,
    incident_id  INTEGER,
    trigger      TEXT    NOT NULL,   -- 'auto' or 'manual'
    actor        TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    params       TEXT    NOT NULL,   -- JSON, secrets replaced by [REDACTED]
    -- running, success, failed, timeout, awaiting_recovery, recovered,
    -- recovery_missed, interrupted
    status       TEXT    NOT NULL,
    exit_code    INTEGER,
    output       TEXT    NOT NULL DEFAULT '',
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    recovery_due INTEGER
);
CREATE INDEX runbook_runs_by_runbook ON runbook_runs (runbook, id);
