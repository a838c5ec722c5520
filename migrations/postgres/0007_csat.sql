-- Satisfaction answers from the link in stakeholders' resolution emails: the first
-- answer of each address for an incident counts.
CREATE TABLE csat (
    incident_id BIGINT NOT NULL,
    address     TEXT    NOT NULL,
    score       BIGINT NOT NULL,
    answered_at BIGINT NOT NULL,
    PRIMARY KEY (incident_id, address)
);
