-- 0.7.0 -> 0.8.0: what a 0.7.0 database needs to be, object by object, a fresh 0.8.0
-- install (nweb under attack, the rest: docs/design.md D42-).
\echo Use "ALTER EXTENSION xray_pg UPDATE TO '0.8.0'" to load this file. \quit

-- Attested claims checked in the database (D43)
-- The verdict takes the ScanSubmission's payload and checks its manifestSha256,
-- datasetType, tool, vantage and times (a new symbol: the 0.7.0 one checked the root
-- only); store_bundle passes the first submission's, so the database and the loader
-- reach the same verdict on the same bundle.
DROP FUNCTION nweb_bundle_verdict(text, text, jsonb, text, text);
CREATE FUNCTION nweb_bundle_verdict(manifest text, scanprint text, artifacts jsonb,
                                    attested_merkle_root text DEFAULT NULL, unreadable text DEFAULT NULL,
                                    attested jsonb DEFAULT NULL) RETURNS jsonb
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'nweb_bundle_verdict_0_8_wrapper';

COMMENT ON FUNCTION @extschema@.nweb_bundle_verdict(manifest text, scanprint text, artifacts jsonb, attested_merkle_root text, unreadable text, attested jsonb) IS 'Pure verdict on a bundle: {status verified|invalid, reason, reason_detail, manifest{...}, computed_merkle_root, scanprint_lines, cost_kind, cost_units}. artifacts maps every file path of the bundle to the SHA-256 hex of its bytes; attested is the ScanSubmission payload, whose manifestSha256, datasetType, tool, vantage, startedAt and finishedAt must match (CID_HASH_MISMATCH naming the field)';

CREATE FUNCTION nweb.first_submission_payload(cid text) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $_$
    SELECT a.payload
      FROM nweb.attestations AS a
     WHERE a.kind = 'ScanSubmission' AND a.cid = first_submission_payload.cid
     ORDER BY a.block_time, a.attestation_id
     LIMIT 1;
$_$;

COMMENT ON FUNCTION nweb.first_submission_payload(cid text) IS 'Payload of the first ScanSubmission naming this (canonical) CID: the claims its bundle is checked against (docs/design.md D43)';

CREATE OR REPLACE FUNCTION nweb.submission_mismatch(cid text, dataset_type text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT format('COST_KIND_MISMATCH: the ScanSubmission attests datasetType %s (cost kind %s), the manifest''s datasetType is %s (cost kind %s)',
                  coalesce(quote_literal(a.payload ->> 'datasetType'), 'NULL'),
                  coalesce(@extschema@.nweb_cost_kind(a.payload ->> 'datasetType'), 'none'),
                  coalesce(quote_literal(submission_mismatch.dataset_type), 'NULL'),
                  coalesce(@extschema@.nweb_cost_kind(submission_mismatch.dataset_type), 'none'))
      FROM (SELECT nweb.first_submission_payload(submission_mismatch.cid) AS payload) AS a
     WHERE a.payload ? 'datasetType'
       AND (a.payload ->> 'datasetType') IS DISTINCT FROM submission_mismatch.dataset_type;
$$;

CREATE OR REPLACE FUNCTION nweb.store_bundle(p_cid text, p_manifest text, p_scanprint text, p_files jsonb, p_manifest_sha256 text, p_bundle_bytes bigint, p_unreadable text) RETURNS nweb.bundles
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_cid  text := @extschema@.nweb_cid_canonical(p_cid);
    v_json jsonb := CASE WHEN p_manifest IS NOT NULL THEN @extschema@.nweb_json_or_null(p_manifest) END;
    b      nweb.bundles;
    sub    record;
    v      jsonb;
    m      jsonb;
BEGIN
    IF v_cid IS NULL THEN
        RAISE EXCEPTION 'cid: % is not a CID', coalesce(quote_literal(p_cid), 'NULL')
            USING ERRCODE = 'invalid_text_representation';
    END IF;
    -- One verifier per bundle at a time; a second waits and then finds the verdict.
    PERFORM pg_advisory_xact_lock(hashtextextended('nweb.bundle:' || v_cid, 0));
    SELECT * INTO b FROM nweb.bundles AS x WHERE x.cid = v_cid;
    IF FOUND AND (b.status = 'verified' OR b.reason IN ('CID_HASH_MISMATCH', 'FORMAT_INVALID')) THEN
        IF b.status = 'verified' AND v_json IS DISTINCT FROM b.manifest THEN
            RAISE EXCEPTION 'bundle %: already verified with a different manifest', v_cid
                USING ERRCODE = 'unique_violation',
                      HINT = 'A CID names exactly one content, so one of the two submissions is not that content.';
        END IF;
        RETURN b;
    END IF;

    SELECT * INTO sub FROM nweb.first_submission(v_cid);
    -- Every claim of the submission, not only its root: a bundle that is not what was
    -- attested (and paid for) is a verified mismatch with what was committed on chain.
    -- A manifest given as jsonb (ingest_bundle) lost its bytes, so their hash is not
    -- checked: it would accuse a bundle of our re-spelling.
    v := @extschema@.nweb_bundle_verdict(p_manifest, p_scanprint, p_files, sub.attested_merkle_root, p_unreadable,
                                         CASE WHEN p_manifest_sha256 IS NULL
                                              THEN nweb.first_submission_payload(v_cid) - 'manifestSha256'
                                              ELSE nweb.first_submission_payload(v_cid) END);
    m := v -> 'manifest';
    INSERT INTO nweb.bundles AS x
           (cid, status, reason, reason_detail, manifest, manifest_sha256, merkle_root, computed_merkle_root,
            attested_merkle_root, submitter,
            namespace, dataset_type, tool, tool_version, vantage, target_spec_cid, cost_kind, cost_units,
            scan_started_at, scan_finished_at, scanprint_lines, scanprint_bytes, bundle_bytes, checked_at, verified_at)
    VALUES (v_cid, v ->> 'status', v ->> 'reason', v ->> 'reason_detail', v_json, p_manifest_sha256,
            m ->> 'merkle_root', v ->> 'computed_merkle_root', sub.attested_merkle_root, sub.submitter,
            m ->> 'namespace', m ->> 'dataset_type', m ->> 'tool', m ->> 'tool_version', m ->> 'vantage',
            m ->> 'target_spec_cid', v ->> 'cost_kind', (v ->> 'cost_units')::integer,
            to_timestamp((m ->> 'started_at')::bigint), to_timestamp((m ->> 'finished_at')::bigint),
            (v ->> 'scanprint_lines')::integer, octet_length(p_scanprint), p_bundle_bytes, now(),
            CASE WHEN v ->> 'status' = 'verified' THEN now() END)
    ON CONFLICT (cid) DO UPDATE SET
        status = EXCLUDED.status, reason = EXCLUDED.reason, reason_detail = EXCLUDED.reason_detail,
        manifest = EXCLUDED.manifest, manifest_sha256 = EXCLUDED.manifest_sha256,
        merkle_root = EXCLUDED.merkle_root, computed_merkle_root = EXCLUDED.computed_merkle_root,
        attested_merkle_root = EXCLUDED.attested_merkle_root, submitter = EXCLUDED.submitter,
        namespace = EXCLUDED.namespace, dataset_type = EXCLUDED.dataset_type, tool = EXCLUDED.tool,
        tool_version = EXCLUDED.tool_version, vantage = EXCLUDED.vantage, target_spec_cid = EXCLUDED.target_spec_cid,
        cost_kind = EXCLUDED.cost_kind, cost_units = EXCLUDED.cost_units,
        scan_started_at = EXCLUDED.scan_started_at, scan_finished_at = EXCLUDED.scan_finished_at,
        scanprint_lines = EXCLUDED.scanprint_lines, scanprint_bytes = EXCLUDED.scanprint_bytes,
        bundle_bytes = EXCLUDED.bundle_bytes, checked_at = EXCLUDED.checked_at, verified_at = EXCLUDED.verified_at
    RETURNING * INTO b;

    IF b.status = 'verified' THEN
        INSERT INTO nweb.scanprint (ip, bundle_cid, line_no, ts, port, proto, state, service, product, version,
                                    banner_sha256, cert_fpr, tls_ja3, latency_ms, tool, tool_version, options, vantage)
        SELECT r.ip, v_cid, r.line_no, r.ts, r.port, r.proto, r.state, r.service, r.product, r.version,
               r.banner_sha256, r.cert_fpr, r.tls_ja3, r.latency_ms, r.tool, r.tool_version, r.options, r.vantage
          FROM @extschema@.nweb_scanprint_rows(p_scanprint) AS r;
    END IF;
    RETURN b;
END
$$;

COMMENT ON FUNCTION nweb.store_bundle(p_cid text, p_manifest text, p_scanprint text, p_files jsonb, p_manifest_sha256 text, p_bundle_bytes bigint, p_unreadable text) IS 'Internal: record a verdict (checked against every claim of the first ScanSubmission: root, manifestSha256, datasetType, tool, vantage, times, when there is one) and load the rows of a verified bundle; use nweb.ingest_bundle or nweb.ingest_car';

-- Local limits are ours (D42)
-- A check our own limit stopped was recorded as available (the only way past the
-- reason constraint) and its bundle as CID_UNAVAILABLE: both read as the submitter's
-- fault. Checks get an outcome (local_limit: not available, no reason); bundles a
-- status that is no verdict (deferred), which any later verdict replaces. Bundles
-- the loader refused for a contradicted claim (recorded as CID_UNAVAILABLE while the
-- database checked no claims, D43) are the verified mismatch they are.
ALTER TABLE nweb.availability_checks DROP CONSTRAINT availability_checks_reason;
ALTER TABLE nweb.availability_checks ADD COLUMN outcome text;
UPDATE nweb.availability_checks
   SET outcome = CASE WHEN reason IS NULL AND reason_detail LIKE 'LOCAL\_LIMIT: %' THEN 'local_limit'
                      WHEN reason IS NULL THEN 'available'
                      WHEN reason = 'CID_UNAVAILABLE' THEN 'unavailable'
                      ELSE 'invalid' END,
       available = available AND NOT (reason IS NULL AND coalesce(reason_detail LIKE 'LOCAL\_LIMIT: %', false));
ALTER TABLE nweb.availability_checks ALTER COLUMN outcome SET NOT NULL;
ALTER TABLE nweb.availability_checks ADD CONSTRAINT availability_checks_outcome CHECK (
CASE outcome
    WHEN 'available'::text THEN (available AND (reason IS NULL))
    WHEN 'invalid'::text THEN (reason IS NOT NULL AND reason <> 'CID_UNAVAILABLE'::text)
    WHEN 'unavailable'::text THEN ((NOT available) AND (reason IS NOT DISTINCT FROM 'CID_UNAVAILABLE'::text))
    WHEN 'local_limit'::text THEN ((NOT available) AND (reason IS NULL))
    ELSE false
END);
COMMENT ON COLUMN nweb.availability_checks.reason IS 'CID_UNAVAILABLE when no source served it intact; FORMAT_INVALID or CID_HASH_MISMATCH when it was fetched and its verdict is invalid; NULL when available or when our limit stopped the check';

COMMENT ON COLUMN nweb.availability_checks.outcome IS 'available, invalid (fetched, verdict invalid), unavailable (no source served it intact) or local_limit (one of our own limits stopped every source that answered: available false, no reason, the limit in reason_detail; says nothing about the submitter, docs/design.md D42)';

ALTER TABLE nweb.bundles DROP CONSTRAINT bundles_status_check;
ALTER TABLE nweb.bundles ADD CONSTRAINT bundles_status_check CHECK ((status = ANY (ARRAY['verified'::text, 'invalid'::text, 'deferred'::text])));
UPDATE nweb.bundles SET status = 'deferred', reason = NULL
 WHERE reason = 'CID_UNAVAILABLE' AND reason_detail LIKE 'LOCAL\_LIMIT: %';
UPDATE nweb.bundles SET reason = 'CID_HASH_MISMATCH', reason_detail = substr(reason_detail, length('REFUSED: CID_HASH_MISMATCH: ') + 1)
 WHERE reason = 'CID_UNAVAILABLE' AND reason_detail LIKE 'REFUSED: CID\_HASH\_MISMATCH: %';
COMMENT ON TABLE nweb.bundles IS 'One row per checked bundle CID: verified, invalid with a reason code, or deferred (our limit stopped the check). Written by nweb.ingest_bundle, nweb.ingest_car, nweb.mark_unavailable and nweb.mark_local_limit. CIDs that are attested but not checked yet show as pending in nweb.v_bundles';

COMMENT ON COLUMN nweb.bundles.status IS 'verified or invalid; deferred when one of our own limits (size cap, decoder bounds, our timeout) stopped the check: no reason, the limit in reason_detail, no verdict on the submitter, and any later verdict replaces it (docs/design.md D42); a CID attested but not checked yet has no row here and is pending in nweb.v_bundles';

CREATE OR REPLACE FUNCTION nweb.mark_unavailable(cid text, detail text DEFAULT NULL::text) RETURNS nweb.bundles
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_cid text := @extschema@.nweb_cid_canonical(mark_unavailable.cid);
    b     nweb.bundles;
BEGIN
    IF v_cid IS NULL THEN
        RAISE EXCEPTION 'cid: % is not a CID', coalesce(quote_literal(mark_unavailable.cid), 'NULL')
            USING ERRCODE = 'invalid_text_representation';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('nweb.bundle:' || v_cid, 0));
    INSERT INTO nweb.bundles AS x (cid, status, reason, reason_detail, checked_at, submitter, attested_merkle_root)
    SELECT v_cid, 'invalid', 'CID_UNAVAILABLE', coalesce(mark_unavailable.detail, 'could not be fetched'), now(),
           s.submitter, s.attested_merkle_root
      FROM (SELECT 1) AS one LEFT JOIN nweb.first_submission(v_cid) AS s ON true
    ON CONFLICT (cid) DO UPDATE
       SET status = 'invalid', reason = 'CID_UNAVAILABLE', reason_detail = EXCLUDED.reason_detail,
           checked_at = EXCLUDED.checked_at
     WHERE x.reason = 'CID_UNAVAILABLE' OR x.status = 'deferred';
    SELECT * INTO b FROM nweb.bundles AS x WHERE x.cid = v_cid;
    RETURN b;
END
$$;

CREATE FUNCTION nweb.mark_local_limit(cid text, detail text) RETURNS nweb.bundles
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_cid text := @extschema@.nweb_cid_canonical(mark_local_limit.cid);
    b     nweb.bundles;
BEGIN
    IF v_cid IS NULL THEN
        RAISE EXCEPTION 'cid: % is not a CID', coalesce(quote_literal(mark_local_limit.cid), 'NULL')
            USING ERRCODE = 'invalid_text_representation';
    END IF;
    IF mark_local_limit.detail IS NULL OR mark_local_limit.detail = '' THEN
        RAISE EXCEPTION 'detail: say which of our limits stopped the check'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('nweb.bundle:' || v_cid, 0));
    -- Our limit is no verdict: it replaces only what a fetch may overturn (an earlier
    -- limit, or CID_UNAVAILABLE, which the sources that answered this time contradict).
    INSERT INTO nweb.bundles AS x (cid, status, reason, reason_detail, checked_at, submitter, attested_merkle_root)
    SELECT v_cid, 'deferred', NULL, mark_local_limit.detail, now(), s.submitter, s.attested_merkle_root
      FROM (SELECT 1) AS one LEFT JOIN nweb.first_submission(v_cid) AS s ON true
    ON CONFLICT (cid) DO UPDATE
       SET status = 'deferred', reason = NULL, reason_detail = EXCLUDED.reason_detail,
           checked_at = EXCLUDED.checked_at
     WHERE x.reason = 'CID_UNAVAILABLE' OR x.status = 'deferred';
    SELECT * INTO b FROM nweb.bundles AS x WHERE x.cid = v_cid;
    RETURN b;
END
$$;

COMMENT ON FUNCTION nweb.mark_local_limit(cid text, detail text) IS 'Record that one of our own limits (size cap, decoder bounds, our timeout) stopped the check of a bundle: status deferred, no reason, detail saying which (docs/design.md D42). Not the submitter''s fault: it replaces only CID_UNAVAILABLE or an earlier deferral, and any later verdict replaces it';

REVOKE ALL ON FUNCTION nweb.mark_local_limit(cid text, detail text) FROM PUBLIC;
GRANT ALL ON FUNCTION nweb.mark_local_limit(cid text, detail text) TO xray_ingest;
