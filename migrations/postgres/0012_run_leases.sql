-- A running runbook run holds a lease its replica renews while the child runs; a run
-- whose lease ran out lost its replica, and another one records it as failed and
-- applies its on_failure.

ALTER TABLE runbook_runs ADD COLUMN lease_until BIGINT;
CREATE INDEX runbook_runs_running ON runbook_runs (lease_until) WHERE status = 'running';
