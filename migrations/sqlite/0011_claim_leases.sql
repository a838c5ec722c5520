-- Claims are leases: a row being sent is 'sending' with due_at the end of its lease,
-- claimable again once the lease ran out (its sender died). The claim query takes
-- both states, so the due index covers both.

DROP INDEX notifications_due;
CREATE INDEX notifications_claimable ON notifications (due_at) WHERE status IN ('pending', 'sending');
