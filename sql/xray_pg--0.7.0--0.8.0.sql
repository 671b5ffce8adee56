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
