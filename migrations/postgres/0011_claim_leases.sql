-- Claims are leases: a row being sent is 'sending' with due_at the end of its lease,
-- claimable again once the lease ran out (its replica died). The claim query takes
-- both states, so the due index covers both.

DROP INDEX notifications_due;
CREATE INDEX notifications_claimable ON notifications (due_at) WHERE status IN ('pending', 'sending');

-- Replicas take turns changing alerts and incidents: the turn is a transaction-level
-- advisory lock, and the epoch counts committed turns, so a replica whose in-memory
-- view is older than the last turn reloads it before deciding anything.
CREATE TABLE write_turns (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT  NOT NULL
);
INSERT INTO write_turns (id, epoch) VALUES (1, 0);
