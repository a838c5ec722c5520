-- Each claim carries a token of the process that took it: only that process renews
-- or finishes the row, so a claim that ran out and was taken over cannot be finished
-- (or pushed back to pending) by its first owner as well.

ALTER TABLE notifications ADD COLUMN claim TEXT;
ALTER TABLE ticket_ops ADD COLUMN claim TEXT;
