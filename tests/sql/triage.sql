-- A triage round trip: suppress an open exposure, undo it, and the refusals.
\set scenario `cat ../../fixtures/scenarios/01-rb1-new-ssh.json`
SELECT status, new_count, changed_count, fixed_count, held_open_count
  FROM xray.ingest_scan(:'scenario'::jsonb -> 'steps' -> 0 -> 'payload');
SELECT risk_bucket, observed_host, proto, port, fingerprint, status FROM xray.exposures;
SELECT identity_key AS key FROM xray.exposures \gset
SELECT from_status, to_status FROM xray.triage(:'key', 'suppressed', 'lab box, accepted risk', 'gina');
SELECT status FROM xray.exposures;
SELECT from_status, to_status FROM xray.triage(:'key', 'open', 'undo', 'gina');
SELECT from_status, to_status, reason, actor FROM xray.triage_log ORDER BY triage_id;
-- Refused: unknown status, no reason, unknown identity.
SELECT * FROM xray.triage(:'key', 'closed', 'why not', 'gina');
SELECT * FROM xray.triage(:'key', 'suppressed', '  ', 'gina');
SELECT * FROM xray.triage('no-such-key', 'suppressed', 'reason', 'gina');
-- Resubmitting the scan is a duplicate and writes nothing.
SELECT status, new_count FROM xray.ingest_scan(:'scenario'::jsonb -> 'steps' -> 0 -> 'payload');
SELECT count(*) AS events FROM xray.exposure_events;
