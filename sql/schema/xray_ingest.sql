-- Entry points that write: xray.ingest_scan() (INSERT a payload and report
-- what it did) and xray.triage(). The trigger that does the work,
-- xray_ingest_scan_result(), is declared from Rust (xray_pg/src/ingest.rs)
-- and attached to xray.scan_results in xray_tables.sql.

CREATE FUNCTION xray.ingest_scan(payload jsonb) RETURNS TABLE(scan_id uuid, status text, new_count integer, changed_count integer, fixed_count integer, held_open_count integer, stale_asset_ids uuid[], warning_count integer)
    LANGUAGE plpgsql
    AS $$
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

COMMENT ON FUNCTION xray.ingest_scan(payload jsonb) IS 'Insert one scan-result payload; returns applied / partial / stale / duplicate with event counts, the assets skipped as stale and the number of warnings';

CREATE FUNCTION xray.triage(identity_key text, status text, reason text, actor text DEFAULT NULL::text) RETURNS xray.triage_log
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION xray.triage(identity_key text, status text, reason text, actor text) IS 'Mark an exposure of the session''s tenant suppressed or false_positive, or undo that with status => ''open''; audited in xray.triage_log';

REVOKE ALL ON FUNCTION xray.triage(identity_key text, status text, reason text, actor text) FROM PUBLIC;
GRANT ALL ON FUNCTION xray.triage(identity_key text, status text, reason text, actor text) TO xray_admin;

CREATE FUNCTION xray.json_array(value jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(value) = 'array' THEN value ELSE '[]'::jsonb END $$;

COMMENT ON FUNCTION xray.json_array(value jsonb) IS 'The value if it is a JSON array, else []: lets views expand optional payload arrays';

