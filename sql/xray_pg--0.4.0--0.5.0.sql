-- xray_pg 0.4.0 -> 0.5.0: the engine on real-world input (docs/design.md D9-D11), SQL side.
--
-- - Staleness is per asset (docs/design.md D11). A scan applies to the assets for
--   which it is the newest scan and skips the others. xray.scan_results gets
--   the status `partial` (some assets skipped) and the column
--   stale_asset_ids; `stale` now means every asset in scope was skipped.
--   xray.asset_scans only moves for the assets a scan applied to.
-- - Warnings: observations the engine kept but could not use, per scan, in
--   xray.scan_results.warnings and xray.scan_summary (docs/design.md D10).
-- - RB6 fingerprint version 2 (docs/design.md D9): one identity per open port, the
--   symptom is material. Stored RB6 exposures are re-keyed here, and the
--   re-keys are recorded in the new table xray.identity_rekeys, through which
--   the views and xray.triage() follow an exposure's history.
-- - The shipped `verify` and `fast_recheck` profiles have no profile-wide
--   port coverage.
-- - The ingest trigger and xray_diff_scan(jsonb) point at the 0.5.0 symbols;
--   the 0.2.0 ones keep serving 0.2.0-0.4.0 schemas until they are updated.
--
-- Like every upgrade script this is also part of the install script (see
-- xray_pg/src/lib.rs): each statement runs on an empty schema and on one with
-- data. Never edit it after 0.5.0 ships.
\echo Use "ALTER EXTENSION xray_pg UPDATE TO '0.5.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Per-asset staleness and warnings on xray.scan_results.
------------------------------------------------------------------------------
ALTER TABLE xray.scan_results
    ADD COLUMN stale_asset_ids uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN warnings        jsonb  NOT NULL DEFAULT '[]';
COMMENT ON COLUMN xray.scan_results.status IS 'applied: state and events updated for every asset in scope; partial: applied to some assets, skipped for stale_asset_ids; stale: every asset in scope skipped, stored only';
COMMENT ON COLUMN xray.scan_results.stale_asset_ids IS 'Assets in scope skipped because a newer scan of them was already applied (sorted); empty when applied';
COMMENT ON COLUMN xray.scan_results.warnings IS 'Observations the engine kept in the payload but could not use: [{"path": field path, "problem": …}]';

-- Stale scans stored before 0.5.0 were stale as a whole: they skipped every
-- asset in their scope (requested_asset_ids, else the assets with results).
ALTER TABLE xray.scan_results DISABLE TRIGGER scan_results_immutable;
UPDATE xray.scan_results s
   SET stale_asset_ids = ARRAY(
           SELECT DISTINCT a.id::uuid
             FROM (SELECT jsonb_array_elements_text(xray.json_array(s.payload #> '{scan,requested_asset_ids}')) AS id
                   UNION ALL
                   SELECT r -> 'asset' ->> 'asset_id'
                     FROM jsonb_array_elements(xray.json_array(s.payload -> 'asset_results')) AS r
                    WHERE jsonb_array_length(xray.json_array(s.payload #> '{scan,requested_asset_ids}')) = 0) AS a
            WHERE a.id IS NOT NULL
            ORDER BY 1)
 WHERE s.status = 'stale';
ALTER TABLE xray.scan_results ENABLE TRIGGER scan_results_immutable;

ALTER TABLE xray.scan_results DROP CONSTRAINT scan_results_status_check;
ALTER TABLE xray.scan_results ADD CONSTRAINT scan_results_status_check
    CHECK (status IN ('applied', 'partial', 'stale'));
-- A stale row may carry no ids only when it was restored from a dump older
-- than 0.5.0, which has no such column.
ALTER TABLE xray.scan_results ADD CONSTRAINT scan_results_stale_asset_ids_check
    CHECK (CASE status WHEN 'applied' THEN cardinality(stale_asset_ids) = 0
                       WHEN 'partial' THEN cardinality(stale_asset_ids) > 0
                       ELSE true END);
ALTER TABLE xray.scan_results ADD CONSTRAINT scan_results_warnings_check
    CHECK (jsonb_typeof(warnings) = 'array');

COMMENT ON TABLE xray.asset_scans IS 'Newest applied scan per asset; a scan older than this for an asset skips that asset (stale_asset_ids)';

-- Result columns are added at the end; the function must be recreated for that.
DROP FUNCTION xray.ingest_scan(jsonb);
CREATE FUNCTION xray.ingest_scan(payload jsonb)
RETURNS TABLE (scan_id uuid, status text, new_count integer, changed_count integer,
               fixed_count integer, held_open_count integer, stale_asset_ids uuid[], warning_count integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r xray.scan_results;
BEGIN
    INSERT INTO xray.scan_results AS s (payload) VALUES (ingest_scan.payload) RETURNING s.* INTO r;
    IF r.scan_id IS NOT NULL THEN
        RETURN QUERY SELECT r.scan_id, r.status, r.new_count, r.changed_count, r.fixed_count, r.held_open_count,
                            r.stale_asset_ids, jsonb_array_length(r.warnings);
    ELSE
        RETURN QUERY
            SELECT s.scan_id, 'duplicate'::text, s.new_count, s.changed_count, s.fixed_count, s.held_open_count,
                   s.stale_asset_ids, jsonb_array_length(s.warnings)
              FROM xray.scan_results s
             WHERE s.scan_id = (ingest_scan.payload -> 'scan' ->> 'scan_id')::uuid;
    END IF;
END
$$;
COMMENT ON FUNCTION xray.ingest_scan(jsonb) IS 'Insert one scan-result payload; returns applied / partial / stale / duplicate with event counts, the assets skipped as stale and the number of warnings';

CREATE OR REPLACE VIEW xray.scan_summary WITH (security_invoker = true) AS
SELECT s.scan_id,
       s.tenant_id,
       s.scan_kind,
       s.scan_profile,
       s.schema_version,
       s.status,
       s.started_at,
       s.finished_at,
       s.finished_at - s.started_at                    AS duration,
       extract(epoch FROM s.finished_at - s.started_at)::double precision AS duration_seconds,
       s.ingested_at,
       s.asset_count,
       s.endpoint_count,
       s.exposure_count,
       s.new_count,
       s.changed_count,
       s.fixed_count,
       s.new_count + s.changed_count + s.fixed_count   AS event_count,
       s.held_open_count,
       s.error_count,
       s.stale_asset_ids,
       cardinality(s.stale_asset_ids)                  AS stale_asset_count,
       jsonb_array_length(s.warnings)                  AS warning_count,
       ARRAY(SELECT (w.value ->> 'path') || ': ' || (w.value ->> 'problem')
               FROM jsonb_array_elements(s.warnings) WITH ORDINALITY AS w(value, n)
              ORDER BY w.n)                             AS warnings
  FROM xray.scan_results s;
COMMENT ON VIEW xray.scan_summary IS 'One row per submitted scan: status, duration, sizes, event counts by type, errors, assets skipped as stale, warnings';
COMMENT ON COLUMN xray.scan_summary.warnings IS 'One "path: problem" text per warning, in payload order; the structured list is xray.scan_results.warnings';

------------------------------------------------------------------------------
-- Identity rule changes of 0.5.0: re-key the stored state.
------------------------------------------------------------------------------
-- Hosts and IPs as the engine writes them (RFC 5952 for IPv6, docs/design.md D10).
CREATE FUNCTION xray.canonical_host(host text) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'xray_canonical_host_wrapper';
COMMENT ON FUNCTION xray.canonical_host(text) IS 'A host or IP address as the engine writes it: trimmed, lowercase, without trailing dot; IP addresses in RFC 5952 form';

-- Two identity rules changed:
-- - RB6 (docs/design.md D9): 0.4.0 keyed it by `symptom:<symptom>` (fingerprint
--   version 1); 0.5.0 keys it by the port alone (`svc:unknown`, fingerprint
--   version 2) and treats the symptom as material, so a rescan that sees the
--   same symptom emits nothing and a changed symptom is one CHANGED.
-- - IPv6 hosts (docs/design.md D10): 0.4.0 only lowercased them, so
--   `2001:db8:0:0:0:0:0:10`, `2001:db8::10` and `[2001:db8::10]` were three
--   identities; 0.5.0 writes RFC 5952 (`2001:db8::10`).
-- The events keep the identity they were written with (they are immutable
-- history); this table maps each re-keyed or dropped identity to the one
-- that carries its state now.
CREATE TABLE xray.identity_rekeys (
    tenant_id        uuid        NOT NULL,
    old_identity_key text        NOT NULL,
    identity_key     text        NOT NULL,
    risk_bucket      text        NOT NULL,
    kept             boolean     NOT NULL,
    old_status       text        NOT NULL,
    old_state        jsonb       NOT NULL,
    rekeyed_in       text        NOT NULL,
    rekeyed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, old_identity_key)
);
CREATE INDEX identity_rekeys_current ON xray.identity_rekeys (tenant_id, identity_key);
COMMENT ON TABLE xray.identity_rekeys IS 'Identities re-keyed by an extension update (identity rule change): events keep old_identity_key, the state row is now identity_key';
COMMENT ON COLUMN xray.identity_rekeys.kept IS 'true: this row of xray.exposures was kept and re-keyed; false: it collapsed into another row with the same new identity and was removed from the state (old_state keeps it)';
COMMENT ON COLUMN xray.identity_rekeys.old_state IS 'The xray.exposures row as it was before the update';
COMMENT ON COLUMN xray.identity_rekeys.rekeyed_in IS 'The update and the rule that re-keyed it, e.g. 0.4.0->0.5.0 RB6 fingerprint version 2';

-- The identity string of xray_core::identity, spelled out so that this
-- script keeps meaning what it means today whatever library runs it later
-- (the host rule is RFC 5952, which xray.canonical_host applies to IPs and
-- which does not move). Only observed_host, fingerprint, fingerprint_version
-- and identity_key change. Rows that get the same new identity collapse into
-- one; the kept row is: open first, then triaged (suppressed,
-- false_positive), then fixed; then the latest last_seen; then the smallest
-- identity_key. A row already at the new identity (ingested by the 0.5.0
-- library before this update ran) takes part like any other.
CREATE FUNCTION xray.rekey_0_5_host(observed_host text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN observed_host LIKE '%:%' THEN xray.canonical_host(observed_host) ELSE observed_host END
$$;
WITH candidates AS (
    SELECT x.*,
           xray.rekey_0_5_host(x.observed_host)                                  AS new_host,
           CASE WHEN x.risk_bucket = 'RB6' THEN 'svc:unknown' ELSE x.fingerprint END AS new_fingerprint,
           CASE WHEN x.risk_bucket = 'RB6' THEN 2 ELSE 1 END                      AS new_fpv
      FROM xray.exposures x
     WHERE x.risk_bucket = 'RB6' OR x.observed_host LIKE '%:%'
), keyed AS (
    SELECT c.*,
           encode(sha256(convert_to(format('v1|tenant:%s|asset:%s|host:%s|bucket:%s|proto:%s|port:%s|fpv:%s|fp:%s',
                                           c.tenant_id, c.asset_id, c.new_host, c.risk_bucket, c.proto, c.port,
                                           c.new_fpv, c.new_fingerprint), 'UTF8')), 'hex') AS new_identity_key
      FROM candidates c
), ranked AS (
    SELECT k.*,
           row_number() OVER (PARTITION BY k.tenant_id, k.new_identity_key
                              ORDER BY CASE k.status WHEN 'open' THEN 0 WHEN 'fixed' THEN 2 ELSE 1 END,
                                       k.last_seen DESC, k.identity_key) AS rank
      FROM keyed k
)
INSERT INTO xray.identity_rekeys (tenant_id, old_identity_key, identity_key, risk_bucket, kept, old_status, old_state, rekeyed_in)
SELECT r.tenant_id, r.identity_key, r.new_identity_key, r.risk_bucket, r.rank = 1, r.status,
       to_jsonb(r) - ARRAY['new_host', 'new_fingerprint', 'new_fpv', 'new_identity_key', 'rank'],
       '0.4.0->0.5.0 ' || concat_ws(', ',
           CASE WHEN r.risk_bucket = 'RB6' AND (r.fingerprint <> r.new_fingerprint OR r.fingerprint_version <> 2)
                THEN 'RB6 fingerprint version 2' END,
           CASE WHEN r.observed_host <> r.new_host THEN 'IPv6 host in RFC 5952 form' END,
           CASE WHEN r.rank > 1 THEN 'merged' END)
  FROM ranked r
 WHERE r.rank > 1 OR r.identity_key <> r.new_identity_key;

DELETE FROM xray.exposures x
 USING xray.identity_rekeys k
 WHERE k.tenant_id = x.tenant_id AND k.old_identity_key = x.identity_key AND NOT k.kept;
UPDATE xray.exposures x
   SET identity_key = k.identity_key,
       observed_host = xray.rekey_0_5_host(x.observed_host),
       fingerprint = CASE WHEN x.risk_bucket = 'RB6' THEN 'svc:unknown' ELSE x.fingerprint END,
       fingerprint_version = CASE WHEN x.risk_bucket = 'RB6' THEN 2 ELSE x.fingerprint_version END
  FROM xray.identity_rekeys k
 WHERE k.tenant_id = x.tenant_id AND k.old_identity_key = x.identity_key AND k.kept;
UPDATE xray.exposures
   SET fingerprint = 'svc:unknown', fingerprint_version = 2
 WHERE risk_bucket = 'RB6' AND (fingerprint <> 'svc:unknown' OR fingerprint_version <> 2);
DROP FUNCTION xray.rekey_0_5_host(text);

ALTER TABLE xray.identity_rekeys ENABLE ROW LEVEL SECURITY;
ALTER TABLE xray.identity_rekeys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON xray.identity_rekeys FOR SELECT USING (tenant_id = (SELECT xray.current_tenant()));
DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'xray_reader') THEN
        GRANT SELECT ON xray.identity_rekeys TO xray_reader;
    END IF;
END
$grants$;
SELECT pg_catalog.pg_extension_config_dump('xray.identity_rekeys'::regclass, '');

-- The views follow an exposure through its re-keys: open_since and
-- time_to_fix find the NEW written under the old identity of a kept row, and
-- an event's current_status is that of the row that carries its identity now.
CREATE OR REPLACE VIEW xray.open_exposures WITH (security_invoker = true) AS
SELECT x.tenant_id,
       x.identity_key,
       x.asset_id,
       a.asset_value,
       x.observed_host,
       x.observed_ip,
       x.risk_bucket,
       b.name                                          AS bucket_name,
       b.default_severity                              AS severity,
       xray.severity_rank(b.default_severity)          AS severity_rank,
       x.proto,
       x.port,
       x.fingerprint,
       x.detail,
       x.first_seen,
       o.open_since,
       x.last_seen,
       now() - o.open_since                            AS age,
       floor(extract(epoch FROM now() - o.open_since) / 86400)::integer AS age_days,
       x.last_change_type,
       x.reopen_count,
       x.last_scan_id
  FROM xray.exposures x
  JOIN xray.risk_buckets b ON b.risk_bucket = x.risk_bucket
  LEFT JOIN xray.assets a ON a.tenant_id = x.tenant_id AND a.asset_id = x.asset_id
  CROSS JOIN LATERAL (
        SELECT coalesce(max(e.observed_at), x.first_seen) AS open_since
          FROM xray.exposure_events e
         WHERE e.tenant_id = x.tenant_id AND e.event_type = 'NEW'
           AND e.identity_key = ANY (ARRAY[x.identity_key] ||
                                     ARRAY(SELECT k.old_identity_key FROM xray.identity_rekeys k
                                            WHERE k.tenant_id = x.tenant_id AND k.identity_key = x.identity_key
                                              AND k.kept))) o
 WHERE x.status = 'open';

CREATE OR REPLACE VIEW xray.exposure_timeline WITH (security_invoker = true) AS
SELECT e.event_id,
       e.tenant_id,
       e.scan_id,
       e.event_type,
       e.observed_at,
       e.created_at                                    AS recorded_at,
       e.identity_key,
       e.risk_bucket,
       b.name                                          AS bucket_name,
       b.default_severity                              AS severity,
       xray.severity_rank(b.default_severity)          AS severity_rank,
       e.asset_id,
       a.asset_value,
       e.observed_host,
       e.observed_ip,
       e.proto,
       e.port,
       e.fingerprint,
       e.detail,
       e.reopened,
       e.prev_material_hash,
       e.material_hash,
       o.opened_at,
       e.observed_at - o.opened_at                     AS time_to_fix,
       x.status                                        AS current_status,
       x.first_seen,
       x.last_seen,
       s.scan_kind,
       s.scan_profile
  FROM xray.exposure_events e
  JOIN xray.risk_buckets b ON b.risk_bucket = e.risk_bucket
  LEFT JOIN xray.identity_rekeys k ON k.tenant_id = e.tenant_id AND k.old_identity_key = e.identity_key
  LEFT JOIN xray.exposures x ON x.tenant_id = e.tenant_id AND x.identity_key = coalesce(k.identity_key, e.identity_key)
  LEFT JOIN xray.scan_results s ON s.scan_id = e.scan_id
  LEFT JOIN xray.assets a ON a.tenant_id = e.tenant_id AND a.asset_id = e.asset_id
  LEFT JOIN LATERAL (
        SELECT max(n.observed_at) AS opened_at
          FROM xray.exposure_events n
         WHERE e.event_type = 'FIXED'
           AND n.tenant_id = e.tenant_id
           AND n.identity_key = ANY (ARRAY[e.identity_key] ||
                                     ARRAY(SELECT k2.old_identity_key FROM xray.identity_rekeys k2
                                            WHERE k2.tenant_id = e.tenant_id AND k2.identity_key = e.identity_key
                                              AND k2.kept))
           AND n.event_type = 'NEW' AND n.event_id < e.event_id) o ON true;
COMMENT ON COLUMN xray.exposure_timeline.current_status IS 'Status of the exposure now, found through xray.identity_rekeys for events written under an identity that was re-keyed';

-- Undo of a triage finds the status before the triage also in the log of the
-- kept row's old identity.
CREATE OR REPLACE FUNCTION xray.triage(identity_key text, status text, reason text, actor text DEFAULT NULL)
RETURNS xray.triage_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    session_tenant uuid := xray.current_tenant();
    exposure_tenant uuid;
    current_status text;
    target text;
    entry xray.triage_log;
BEGIN
    IF triage.status IS NULL OR triage.status NOT IN ('suppressed', 'false_positive', 'open') THEN
        RAISE EXCEPTION 'status: must be suppressed, false_positive or open (undo a triage), got %',
                        coalesce(quote_literal(triage.status), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF triage.reason IS NULL OR btrim(triage.reason) = '' THEN
        RAISE EXCEPTION 'reason: a triage needs a reason' USING ERRCODE = 'not_null_violation';
    END IF;
    IF session_tenant IS NULL AND NOT xray.session_bypasses_rls() THEN
        RAISE EXCEPTION 'no tenant selected for this session'
            USING ERRCODE = 'insufficient_privilege', HINT = 'SELECT xray.set_tenant(''<tenant uuid>'') first.';
    END IF;

    SELECT x.tenant_id INTO exposure_tenant
      FROM xray.exposures x
     WHERE x.identity_key = triage.identity_key
       AND (session_tenant IS NULL OR x.tenant_id = session_tenant);
    IF exposure_tenant IS NULL THEN
        RAISE EXCEPTION 'identity_key: no exposure % in this tenant', coalesce(triage.identity_key, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    -- Same lock as the ingest trigger (ingest.rs lock_tenant): a scan that
    -- loaded the old status must not overwrite the triage when it writes.
    PERFORM pg_advisory_xact_lock(hashtextextended(exposure_tenant::text, 7419));

    SELECT x.status INTO current_status
      FROM xray.exposures x
     WHERE x.tenant_id = exposure_tenant AND x.identity_key = triage.identity_key
       FOR UPDATE;
    IF triage.status = 'open' THEN
        IF current_status NOT IN ('suppressed', 'false_positive') THEN
            RAISE EXCEPTION 'exposure % is %, not triaged: nothing to undo', triage.identity_key, current_status
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        -- Undo restores the lifecycle status it had when it was triaged,
        -- also when it was triaged under an identity re-keyed since.
        SELECT coalesce((SELECT l.from_status
                           FROM xray.triage_log l
                          WHERE l.tenant_id = exposure_tenant
                            AND l.identity_key = ANY (ARRAY[triage.identity_key] ||
                                                      ARRAY(SELECT k.old_identity_key FROM xray.identity_rekeys k
                                                             WHERE k.tenant_id = exposure_tenant
                                                               AND k.identity_key = triage.identity_key AND k.kept))
                            AND l.from_status IN ('open', 'fixed')
                          ORDER BY l.triage_id DESC
                          LIMIT 1), 'open')
          INTO target;
    ELSE
        target := triage.status;
    END IF;

    UPDATE xray.exposures x SET status = target
     WHERE x.tenant_id = exposure_tenant AND x.identity_key = triage.identity_key;
    INSERT INTO xray.triage_log (tenant_id, identity_key, from_status, to_status, reason, actor)
    VALUES (exposure_tenant, triage.identity_key, current_status, target, triage.reason,
            coalesce(nullif(btrim(triage.actor), ''), session_user))
    RETURNING * INTO entry;
    RETURN entry;
END
$$;

COMMENT ON COLUMN xray.exposures.fingerprint_version IS 'Version of the bucket''s fingerprint rules in identity_key (fpv:); RB6 is 2 since 0.5.0, every other bucket 1';

------------------------------------------------------------------------------
-- Scan profiles: a targeted re-check has no profile-wide port coverage.
------------------------------------------------------------------------------
-- For 1.0/1.1 payloads (no coverage block) the profile's ports are the ports
-- the scan is taken to have port-scanned. `verify` and `fast_recheck` probe
-- chosen targets, so they prove nothing profile-wide: only the ports such a
-- payload reports with a state count. Rows an admin has edited keep their
-- values.
UPDATE xray.scan_profiles p
   SET ports = '{}',
       description = CASE WHEN p.description IS NOT DISTINCT FROM v.shipped THEN v.description ELSE p.description END
  FROM (VALUES ('verify', 'Verification scan',
                'Verification scan of chosen targets: no profile-wide port coverage, only ports reported with a state count'),
               ('fast_recheck', 'Fast re-check',
                'Fast re-check of chosen targets: no profile-wide port coverage, only ports reported with a state count'))
       AS v(profile, shipped, description)
 WHERE p.profile = v.profile AND p.is_default
   AND p.ports = '{21,22,23,25,53,80,110,143,443,445,465,587,993,995,1433,1521,2222,3306,3389,5432,5900,5901,5985,5986,6379,8000,8008,8080,8443,8888,9200,9443,27017}'::integer[];
UPDATE xray.scan_profiles
   SET description = 'Scheduled baseline scan; also the RB6 allowlist'
 WHERE profile = 'baseline' AND is_default
   AND description = 'Scheduled baseline scan; also the RB6 allowlist and the fallback for unknown profiles';
COMMENT ON TABLE xray.scan_profiles IS 'Port allowlist per scan profile: which ports a 1.0/1.1 payload (no coverage block) port-scanned; an empty list or a profile not listed here means no profile-wide coverage; baseline also gates RB6';

------------------------------------------------------------------------------
-- C functions of this release (Rust side: sql = false).
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION xray_diff_scan(payload jsonb)
RETURNS TABLE (event_type text, identity_key text, risk_bucket text, asset_id uuid, observed_host text,
               proto text, port integer, fingerprint text, detail text, prev_material_hash text,
               material_hash text, reopened boolean, evidence jsonb)
STRICT STABLE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'xray_diff_scan_0_5_wrapper';
COMMENT ON FUNCTION xray_diff_scan(jsonb) IS 'Dry run: the events this payload would produce now (under the configuration tables, skipping assets that have a newer scan); writes nothing';

CREATE OR REPLACE FUNCTION xray_ingest_scan_result() RETURNS trigger
LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'xray_ingest_trigger_0_5_wrapper';
COMMENT ON FUNCTION xray_ingest_scan_result() IS 'BEFORE INSERT trigger of xray.scan_results: validate, skip stale assets, diff, write events/state/inventory/warnings, NOTIFY xray_events';

-- The engine writes endpoint ids and hosts with canonical IPs since 0.5.0;
-- proof_of_fix finds a FIXED event's endpoints in the payload through this.
CREATE OR REPLACE FUNCTION xray.payload_endpoints(payload jsonb)
RETURNS TABLE (asset_id uuid, endpoint_id text, ip inet, observed_host text, domain_context text, endpoint jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT (ar -> 'asset' ->> 'asset_id')::uuid,
       coalesce(ep ->> 'endpoint_id',
                CASE WHEN ep ->> 'ip' IS NOT NULL AND ep ->> 'domain_context' IS NOT NULL
                     THEN 'ip:' || xray.canonical_host(ep ->> 'ip') || '|domain:' || xray.canonical_host(ep ->> 'domain_context')
                     WHEN ep ->> 'ip' IS NOT NULL THEN 'ip:' || xray.canonical_host(ep ->> 'ip')
                     ELSE 'host:' || h.host END),
       (ep ->> 'ip')::inet,
       h.host,
       ep ->> 'domain_context',
       ep
  FROM jsonb_array_elements(xray.json_array(payload -> 'asset_results')) AS ar,
       jsonb_array_elements(xray.json_array(ar -> 'endpoints')) AS ep,
       LATERAL (SELECT xray.canonical_host(coalesce(
                    ep ->> 'observed_host',
                    CASE WHEN ar -> 'asset' ->> 'asset_type' = 'domain'
                         THEN coalesce(ar -> 'asset' ->> 'canonical_host', ar -> 'asset' ->> 'asset_value') END,
                    ep ->> 'ip',
                    ar -> 'asset' ->> 'canonical_host',
                    ar -> 'asset' ->> 'asset_value',
                    '')) AS host) AS h
$$;
