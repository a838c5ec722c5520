-- SLA bookkeeping: warnings and breaches already recorded (bit flags: 1 response
-- breached, 2 resolve breached, 4 response warned, 8 resolve warned), the start of
-- a hold (the clock is paused while it lasts), and how the incident went.
ALTER TABLE incidents ADD COLUMN sla_flags BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN hold_since BIGINT ;
ALTER TABLE incidents ADD COLUMN remediated BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE incidents ADD COLUMN escalated BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX incidents_by_created ON incidents (created_at);
