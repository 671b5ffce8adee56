-- Bad payloads are refused with a SQLSTATE and a message naming the field,
-- and nothing is written.
\set scenario `cat ../../fixtures/scenarios/01-rb1-new-ssh.json`
CREATE TEMP TABLE good AS SELECT (:'scenario'::jsonb -> 'steps' -> 0 -> 'payload') AS p;
INSERT INTO xray.scan_results (payload) VALUES ('[1, 2, 3]');
INSERT INTO xray.scan_results (payload) VALUES ('"scan"');
INSERT INTO xray.scan_results (payload) SELECT p - 'schema_version' FROM good;
INSERT INTO xray.scan_results (payload) SELECT jsonb_set(p, '{schema_version}', '"2.0"') FROM good;
INSERT INTO xray.scan_results (payload) SELECT jsonb_set(p, '{schema_version}', '1.1') FROM good;
INSERT INTO xray.scan_results (payload) SELECT p #- '{scan,scan_id}' FROM good;
INSERT INTO xray.scan_results (payload) SELECT jsonb_set(p, '{scan,tenant_id}', '"not-a-uuid"') FROM good;
INSERT INTO xray.scan_results (payload) SELECT jsonb_set(p, '{scan,started_at}', '"2026-02-05T10:00:00+01:00"') FROM good;
INSERT INTO xray.scan_results (payload) SELECT jsonb_set(p, '{asset_results,0,endpoints}', '{"a": 1}') FROM good;
INSERT INTO xray.scan_results (payload) SELECT jsonb_set(p, '{asset_results,0,endpoints,0,ip}', '"300.1.2.3"') FROM good;
SELECT * FROM xray.ingest_scan('{}');
SELECT count(*) AS scans, (SELECT count(*) FROM xray.exposures) AS exposures,
       (SELECT count(*) FROM xray.exposure_events) AS events FROM xray.scan_results;
-- The dry run validates the same way.
SELECT * FROM xray_diff_scan('[]');
SELECT * FROM xray_normalize('{"schema_version": "1.1"}');
