-- Composing a page lists the runs waiting for approval on its incident
-- (`pending_approvals`); without this index that read scanned every run ever kept,
-- once per page.
CREATE INDEX runbook_runs_by_incident ON runbook_runs (incident_id, id) WHERE status = 'pending_approval';
