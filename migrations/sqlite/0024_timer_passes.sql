-- When a replica last passed over the timers (escalations, SLA, heartbeats, drills),
-- in epoch milliseconds. A pass takes the whole write turn, so one pass a period
-- serves every replica: a replica skips its own tick while another's is recent.
-- A hint, not a record: losing it costs one extra pass.
CREATE TABLE timer_passes (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    passed_at BIGINT  NOT NULL
);
INSERT INTO timer_passes (id, passed_at) VALUES (1, 0);
