-- Helpdesk integration: the tickets opened for incidents, the durable queue of calls
-- to the ticketing platforms, and the links (knowledge base, remote access) rendered
-- when an incident opened.

ALTER TABLE incidents ADD COLUMN links TEXT NOT NULL DEFAULT '[]';

CREATE TABLE tickets (
    incident_id INTEGER NOT NULL,
    platform    TEXT    NOT NULL,
    -- What people see and search for: 123, INC0010001, OPS-7.
    ticket_id   TEXT    NOT NULL,
    -- What the platform's API addresses: the same, or ServiceNow's sys_id.
    reference   TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    -- The assignee a platform's webhook last named, so only a change is noted.
    assignee    TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (incident_id, platform)
);
CREATE INDEX tickets_by_ticket_id ON tickets (platform, ticket_id);
CREATE INDEX tickets_by_reference ON tickets (platform, reference);

CREATE TABLE ticket_ops (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    platform    TEXT    NOT NULL,
    -- 'create', 'note', 'priority' or 'solve'
    kind        TEXT    NOT NULL,
    -- What caused it ('create', 'solve', or the timeline entry of a note): with the
    -- columns above it makes an operation unique, so an incident gets one ticket.
    step        TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    -- 'pending', 'sending' (due_at is then the end of the claim's lease), 'done' or 'failed'
    status      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_at      INTEGER NOT NULL,
    deadline    INTEGER NOT NULL,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (incident_id, platform, kind, step)
);
CREATE INDEX ticket_ops_due ON ticket_ops (due_at) WHERE status IN ('pending', 'sending');
CREATE INDEX ticket_ops_by_ticket ON ticket_ops (incident_id, platform) WHERE status IN ('pending', 'sending');
