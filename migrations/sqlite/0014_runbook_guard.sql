-- The runbook guard (cooldown, hourly cap, concurrency, breaker) is computed from the
-- recent runs, read by start time; a run an approval waits for keeps its deadline.
-- New statuses: pending_approval, approval_expired.

ALTER TABLE runbook_runs ADD COLUMN approval_due INTEGER;
CREATE INDEX runbook_runs_by_start ON runbook_runs (started_at);
