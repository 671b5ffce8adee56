-- History is append-only: events and scans refuse change.
\set scenario `cat ../../fixtures/scenarios/01-rb1-new-ssh.json`
SELECT status FROM xray.ingest_scan(:'scenario'::jsonb -> 'steps' -> 0 -> 'payload');
UPDATE xray.exposure_events SET detail = 'edited';
DELETE FROM xray.exposure_events;
TRUNCATE xray.exposure_events;
UPDATE xray.scan_results SET status = 'stale';
SELECT event_type, risk_bucket, port, fingerprint FROM xray.exposure_events;
-- Configuration rows are guarded too.
DELETE FROM xray.settings;
UPDATE xray.risk_buckets SET default_severity = 'urgent' WHERE risk_bucket = 'RB1';
INSERT INTO xray.risk_buckets (risk_bucket, name, default_severity, description) VALUES ('RB8', 'x', 'low', 'x');
