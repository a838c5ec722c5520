-- Every runbook run, automatic or manual, with its (redacted) parameters, exit
-- code and bounded, redacted output.
CREATE TABLE runbook_runs (
    id           BIGINT PRIMARY KEY,
    runbook      TEXT    NOT NULL,
    incident_id  BIGINT,
    trigger      TEXT    NOT NULL,   -- 'auto' or 'manual'
    actor        TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    params       TEXT    NOT NULL,   -- JSON, secrets replaced by [REDACTED]
    -- running, success, failed, timeout, awaiting_recovery, recovered,
    -- recovery_missed, interrupted
    status       TEXT    NOT NULL,
    exit_code    INTEGER,
    output       TEXT    NOT NULL DEFAULT '',
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    recovery_due BIGINT 
);
CREATE INDEX runbook_runs_by_runbook ON runbook_runs (runbook, id);
