-- The messages a writer handed over under one claim, found by it: the outbox reads
-- each handed claim's rows, and by the lease index alone that read walked every
-- message in flight (thousands while a storm's pages wait to be sent) for each one.
CREATE INDEX notifications_by_claim ON notifications (claim) WHERE status = 'sending';
