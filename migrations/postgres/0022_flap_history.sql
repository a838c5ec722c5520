-- Flap detection's memory of an alert identity: its state changes inside the
-- flapping window (a JSON array of epoch milliseconds, oldest first), whether it
-- flaps, and the incident it belonged to when it started. Kept here rather than in
-- one process's memory, so every replica counts every change (behind round-robin
-- each saw only its share and a flapping check paged once per replica) and a
-- restart forgets nothing. Only identities that resolved within the window have a
-- row; the timer pass deletes a row once its history is idle.
CREATE TABLE flap_history (
    source      TEXT    NOT NULL,
    dedup_key   TEXT    NOT NULL,
    changes     TEXT    NOT NULL,
    flapping    BOOLEAN NOT NULL DEFAULT FALSE,
    incident_id BIGINT,
    PRIMARY KEY (source, dedup_key)
);

-- Counts changes to silences. Silences change only in the whole write turn, so a
-- replica's batch reads this one number with its alerts and reads the silences
-- again only when it moved, instead of every batch.
CREATE TABLE silence_changes (
    version BIGINT NOT NULL
);
INSERT INTO silence_changes (version) VALUES (0);
