-- Satisfaction answers from the link in stakeholders' resolution emails: the first
-- answer of each address for an incident counts.
CREATE TABLE csat (
    incident_id INTEGER NOT NULL,
    address     TEXT    NOT NULL,
    score       INTEGER NOT NULL,
    answered_at INTEGER NOT NULL,
    PRIMARY KEY (incident_id, address)
);
