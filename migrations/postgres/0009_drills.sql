-- Paging drills: synthetic incidents that test the paging chain. They are kept out
-- of the SLA KPIs and reported on their own.
ALTER TABLE incidents ADD COLUMN drill BOOLEAN NOT NULL DEFAULT FALSE;
