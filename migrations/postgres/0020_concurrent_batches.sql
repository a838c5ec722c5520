-- Replicas write their batches concurrently (issue 18): no write turn counted in an
-- epoch, and ids no longer MAX(id) + 1 of a view. Each replica reserves ids in blocks
-- of 1,000 (store::sql::ID_BLOCK) from these sequences; a block is never handed twice.
CREATE SEQUENCE alert_id_blocks INCREMENT BY 1000;
SELECT setval('alert_id_blocks', (SELECT COALESCE(MAX(id), 0) + 1 FROM alerts), false);
CREATE SEQUENCE incident_id_blocks INCREMENT BY 1000;
SELECT setval('incident_id_blocks', (SELECT COALESCE(MAX(id), 0) + 1 FROM incidents), false);
CREATE SEQUENCE silence_id_blocks INCREMENT BY 1000;
SELECT setval('silence_id_blocks', (SELECT COALESCE(MAX(id), 0) + 1 FROM silences), false);
CREATE SEQUENCE run_id_blocks INCREMENT BY 1000;
SELECT setval('run_id_blocks', (SELECT COALESCE(MAX(id), 0) + 1 FROM runbook_runs), false);
-- A batch reads the open incidents of the groups it touches; the timer pass reads
-- the flapping alerts (with those of open incidents and heartbeats, each indexed).
CREATE INDEX alerts_flapping ON alerts (id) WHERE flapping AND status = 'firing';
CREATE INDEX incidents_open_by_group ON incidents (group_key) WHERE status <> 'resolved';
DROP TABLE write_turns;
