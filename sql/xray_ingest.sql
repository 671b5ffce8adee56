-- Frozen: part of the 0.1.0 base that every install replays (see lib.rs);
-- changes go into a new sql/xray_pg--A--B.sql.
-- The ingest trigger and the convenience entry point for loaders.
CREATE TRIGGER scan_results_ingest
    BEFORE INSERT ON xray.scan_results
    FOR EACH ROW EXECUTE FUNCTION xray_ingest_scan_result();

CREATE TRIGGER scan_results_immutable
    BEFORE UPDATE ON xray.scan_results
    FOR EACH ROW EXECUTE FUNCTION xray.refuse_event_change();

-- Inserts one payload and reports what it did. A resubmitted scan_id gives
-- the original counts with status 'duplicate' and writes nothing.
CREATE FUNCTION xray.ingest_scan(payload jsonb)
RETURNS TABLE (scan_id uuid, status text, new_count integer, changed_count integer,
               fixed_count integer, held_open_count integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r xray.scan_results;
BEGIN
    INSERT INTO xray.scan_results AS s (payload) VALUES (ingest_scan.payload) RETURNING s.* INTO r;
    IF r.scan_id IS NOT NULL THEN
        RETURN QUERY SELECT r.scan_id, r.status, r.new_count, r.changed_count, r.fixed_count, r.held_open_count;
    ELSE
        RETURN QUERY
            SELECT s.scan_id, 'duplicate'::text, s.new_count, s.changed_count, s.fixed_count, s.held_open_count
              FROM xray.scan_results s
             WHERE s.scan_id = (ingest_scan.payload -> 'scan' ->> 'scan_id')::uuid;
    END IF;
END
$$;
COMMENT ON FUNCTION xray.ingest_scan(jsonb) IS 'Insert one scan-result payload; returns applied / stale / duplicate with event counts';
