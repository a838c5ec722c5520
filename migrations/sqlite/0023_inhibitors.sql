-- Who inhibits whom, for replicas: one row per key a firing alert holds as the
-- source of an `[[inhibit]]` rule (the rule's source matchers and `equal` fields with
-- the alert's values of them, as one text) and the alert (`source`/`dedup_key`
-- joined). A batch locks and reads the keys of its alerts instead of taking the
-- whole write turn to read every firing alert. Written with the alert's firing and
-- resolution; each process reconciles it with the firing alerts when it starts,
-- since the rules live in the configuration.
CREATE TABLE inhibitors (
    key    TEXT NOT NULL,
    holder TEXT NOT NULL,
    PRIMARY KEY (key, holder)
);
CREATE INDEX inhibitors_holder ON inhibitors (holder);
