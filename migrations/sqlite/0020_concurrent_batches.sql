-- PostgreSQL's 0020 adds id sequences for concurrent replicas; SQLite has one writer,
-- whose ids stay MAX(id) + 1. Both read the open incidents of a group by this index.
CREATE INDEX incidents_open_by_group ON incidents (group_key) WHERE status <> 'resolved';
