-- Alerts suppressed by an [[inhibit]] rule (a firing source alert with the same
-- `equal` fields), kept and listed like silenced ones.
ALTER TABLE alerts ADD COLUMN inhibited BOOLEAN NOT NULL DEFAULT FALSE;
