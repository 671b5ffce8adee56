-- Loading bundles: store, verify and ingest a bundle (or a CAR from a
-- gateway), mark one unavailable, and bridge a verified bundle into an xray
-- scan payload.

CREATE FUNCTION nweb.first_submission(cid text) RETURNS TABLE(submitter text, attested_merkle_root text, submitted_at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $_$
    SELECT a.attester,
           CASE WHEN lower(a.payload ->> 'merkleRoot') ~ '^0x[0-9a-f]{64}$' THEN lower(a.payload ->> 'merkleRoot') END,
           a.block_time
      FROM nweb.attestations AS a
     WHERE a.kind = 'ScanSubmission' AND a.cid = first_submission.cid
     ORDER BY a.block_time, a.attestation_id
     LIMIT 1;
$_$;

COMMENT ON FUNCTION nweb.first_submission(cid text) IS 'Attester, attested merkleRoot and time of the first ScanSubmission naming this (canonical) CID';

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

CREATE FUNCTION nweb.cost_kind_mismatch(cid text, cost_kind text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    -- On chain nmap-top1k and nmap-full are the same datasetType: only the bundle's
    -- scan says which one was paid for (docs/design.md D44).
    SELECT format('COST_KIND_MISMATCH: the SubmissionRouter charged the ScanSubmission as %s (%s units), the bundle is %s (%s units)',
                  k.cost_kind, k.cost, coalesce(cost_kind_mismatch.cost_kind, 'none'),
                  coalesce(@extschema@.nweb_submission_cost(cost_kind_mismatch.cost_kind)::text, 'no'))
      FROM (SELECT a.chain_id, a.uid
              FROM nweb.attestations AS a
             WHERE a.kind = 'ScanSubmission' AND a.cid = cost_kind_mismatch.cid
             ORDER BY a.block_time, a.attestation_id
             LIMIT 1) AS a
      JOIN nweb.submission_kinds AS k ON k.chain_id = a.chain_id AND k.uid = a.uid
     WHERE k.cost_kind IS DISTINCT FROM cost_kind_mismatch.cost_kind;
$$;

COMMENT ON FUNCTION nweb.cost_kind_mismatch(cid text, cost_kind text) IS 'Why the Kind the SubmissionRouter charged the first ScanSubmission of this CID is not this bundle cost kind, or NULL when it is, when there is no submission yet, or when its SubmissionRecorded is not indexed (chain.submission_router not set). The other claims of the submission are checked by nweb_attested_mismatch and nweb_bundle_verdict';

CREATE FUNCTION nweb.recheck_bundle(p_cid text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    b        nweb.bundles;
    sub      record;
    mismatch text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('nweb.bundle:' || p_cid, 0));
    SELECT * INTO sub FROM nweb.first_submission(p_cid);
    UPDATE nweb.bundles AS x
       SET submitter = sub.submitter, attested_merkle_root = sub.attested_merkle_root
     WHERE x.cid = p_cid
       AND (x.submitter IS DISTINCT FROM sub.submitter OR x.attested_merkle_root IS DISTINCT FROM sub.attested_merkle_root);
    SELECT * INTO b FROM nweb.bundles AS x WHERE x.cid = p_cid;
    -- Checked before its submission was seen: the two must agree.
    IF b.status = 'verified' THEN
        mismatch := CASE WHEN b.attested_merkle_root IS NOT NULL AND b.attested_merkle_root IS DISTINCT FROM b.merkle_root
                         THEN format('the manifest''s merkleRoot %s differs from the attested %s',
                                     b.merkle_root, b.attested_merkle_root)
                         ELSE coalesce(@extschema@.nweb_attested_mismatch(nweb.first_submission_payload(p_cid), b.manifest_sha256,
                                                                           b.dataset_type, b.tool, b.vantage,
                                                                           extract(epoch FROM b.scan_started_at)::bigint,
                                                                           extract(epoch FROM b.scan_finished_at)::bigint),
                                       nweb.cost_kind_mismatch(b.cid, b.cost_kind)) END;
        IF mismatch IS NOT NULL THEN
            DELETE FROM nweb.scanprint AS s WHERE s.bundle_cid = b.cid;
            UPDATE nweb.bundles AS x
               SET status = 'invalid', reason = 'CID_HASH_MISMATCH', verified_at = NULL, checked_at = now(),
                   reason_detail = mismatch
             WHERE x.cid = b.cid;
        END IF;
    END IF;
END
$$;

COMMENT ON FUNCTION nweb.recheck_bundle(p_cid text) IS 'Internal: a ScanSubmission or SubmissionRecorded of this CID was indexed; fill in the bundle''s submitter and attested root, and invalidate a verified bundle that the first submission does not describe (root, manifestSha256, datasetType, tool, vantage, times, cost kind charged)';

REVOKE ALL ON FUNCTION nweb.recheck_bundle(p_cid text) FROM PUBLIC;

CREATE FUNCTION nweb.store_bundle(p_cid text, p_manifest text, p_scanprint text, p_files jsonb, p_manifest_sha256 text, p_bundle_bytes bigint, p_unreadable text) RETURNS nweb.bundles
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_cid    text := @extschema@.nweb_cid_canonical(p_cid);
    v_json   jsonb := CASE WHEN p_manifest IS NOT NULL THEN @extschema@.nweb_json_or_null(p_manifest) END;
    b        nweb.bundles;
    sub      record;
    attested jsonb;
    v        jsonb;
    m        jsonb;
    mismatch text;
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
    attested := nweb.first_submission_payload(v_cid);
    -- Every claim of the submission, not only its root: a bundle that is not what was
    -- attested (and paid for) is a verified mismatch with what was committed on chain.
    -- A manifest given as jsonb (ingest_bundle) lost its bytes, so their hash is not
    -- checked: it would accuse a bundle of our re-spelling.
    v := @extschema@.nweb_bundle_verdict(p_manifest, p_scanprint, p_files, sub.attested_merkle_root, p_unreadable,
                                         CASE WHEN p_manifest_sha256 IS NULL THEN attested - 'manifestSha256' ELSE attested END);
    m := v -> 'manifest';
    -- The SubmissionRouter's charge is the one claim the payload cannot carry: on
    -- chain nmap-top1k and nmap-full are one datasetType (docs/design.md D44).
    IF v ->> 'status' = 'verified' THEN
        mismatch := nweb.cost_kind_mismatch(v_cid, v ->> 'cost_kind');
        IF mismatch IS NOT NULL THEN
            v := v || jsonb_build_object('status', 'invalid', 'reason', 'CID_HASH_MISMATCH', 'reason_detail', mismatch);
        END IF;
    END IF;
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

REVOKE ALL ON FUNCTION nweb.store_bundle(p_cid text, p_manifest text, p_scanprint text, p_files jsonb, p_manifest_sha256 text, p_bundle_bytes bigint, p_unreadable text) FROM PUBLIC;

CREATE FUNCTION nweb.ingest_bundle(cid text, manifest jsonb, scanprint text, artifacts jsonb) RETURNS nweb.bundles
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT * FROM nweb.store_bundle(ingest_bundle.cid, ingest_bundle.manifest::text, ingest_bundle.scanprint,
                                    ingest_bundle.artifacts, NULL, NULL, NULL);
$$;

COMMENT ON FUNCTION nweb.ingest_bundle(cid text, manifest jsonb, scanprint text, artifacts jsonb) IS 'Verify a fetched bundle and load it, in the caller''s transaction: manifest (nweb.bundle.v1, required fields), Merkle root against manifest.scanprint.merkleRoot (and the attested root), artifact SHA-256s; then the typed scanprint rows, or the bundle is marked invalid with its reason and nothing is loaded. artifacts: {"<path>": "<sha256 hex of the bytes>"} for every file the bundle holds. Idempotent per CID';

REVOKE ALL ON FUNCTION nweb.ingest_bundle(cid text, manifest jsonb, scanprint text, artifacts jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION nweb.ingest_bundle(cid text, manifest jsonb, scanprint text, artifacts jsonb) TO xray_ingest;

CREATE FUNCTION nweb.ingest_car(car bytea, cid text DEFAULT NULL::text) RETURNS nweb.bundles
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT s.*
      FROM @extschema@.nweb_car_bundle(ingest_car.car, ingest_car.cid) AS c,
           nweb.store_bundle(c.cid, c.manifest, c.scanprint, c.file_sha256, c.manifest_sha256,
                             c.bundle_bytes, c.unreadable) AS s;
$$;

COMMENT ON FUNCTION nweb.ingest_car(car bytea, cid text) IS 'nweb.ingest_bundle for a CAR fetched from a trustless gateway (design D7): every block is verified against its CID and the bundle''s own CID is the root asked for (cid) or the CAR''s single root. A corrupt or truncated CAR is an ERROR naming the CID (22P03) and records nothing: it says the gateway failed, not the bundle';

REVOKE ALL ON FUNCTION nweb.ingest_car(car bytea, cid text) FROM PUBLIC;
GRANT ALL ON FUNCTION nweb.ingest_car(car bytea, cid text) TO xray_ingest;

CREATE FUNCTION nweb.mark_unavailable(cid text, detail text DEFAULT NULL::text) RETURNS nweb.bundles
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

COMMENT ON FUNCTION nweb.mark_unavailable(cid text, detail text) IS 'Record that a bundle could not be fetched (CID_UNAVAILABLE). A final verdict is left as it is';

REVOKE ALL ON FUNCTION nweb.mark_unavailable(cid text, detail text) FROM PUBLIC;
GRANT ALL ON FUNCTION nweb.mark_unavailable(cid text, detail text) TO xray_ingest;

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

CREATE FUNCTION nweb.bridge_payload(bundle_cid text, tenant_id uuid, assets jsonb) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    b      nweb.bundles;
    v_rows jsonb;
BEGIN
    SELECT * INTO b FROM nweb.bundles AS x WHERE x.cid = @extschema@.nweb_cid_canonical(bridge_payload.bundle_cid);
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM nweb.first_submission(@extschema@.nweb_cid_canonical(bridge_payload.bundle_cid))) THEN
            RAISE EXCEPTION 'bundle % is pending, not verified; only verified data reaches xray', bundle_cid
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RAISE EXCEPTION 'bundle % is not known', bundle_cid USING ERRCODE = 'no_data_found';
    END IF;
    IF b.status <> 'verified' THEN
        RAISE EXCEPTION 'bundle % is %, not verified; only verified data reaches xray', b.cid, b.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF jsonb_typeof(assets) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'assets: expected a JSON array of {asset_id, asset_type, asset_value}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'ip', host(s.ip), 'port', s.port, 'proto', s.proto, 'state', s.state,
               'ts', extract(epoch FROM s.ts)::bigint, 'service', s.service, 'product', s.product,
               'version', s.version, 'tool', s.tool)), '[]'::jsonb)
      INTO v_rows
      FROM nweb.scanprint AS s
     WHERE s.bundle_cid = b.cid
       AND s.ip <<= ANY (SELECT (a ->> 'asset_value')::inet FROM jsonb_array_elements(assets) AS a);
    RETURN @extschema@.nweb_bridge_payload(
        tenant_id,
        jsonb_build_object('cid', b.cid, 'merkle_root', b.merkle_root, 'tool', b.tool, 'tool_version', b.tool_version,
                           'vantage', b.vantage,
                           'started_at', extract(epoch FROM b.scan_started_at)::bigint,
                           'finished_at', extract(epoch FROM b.scan_finished_at)::bigint),
        assets, v_rows);
END
$$;

COMMENT ON FUNCTION nweb.bridge_payload(bundle_cid text, tenant_id uuid, assets jsonb) IS 'An xray scan payload (schema 1.2, scan_kind scheduled, the bundle''s tool) for the rows of a verified bundle inside the tenant''s assets ([{asset_id, asset_type ip|cidr, asset_value}]), or NULL if none. Its coverage lists only ports the scanprint saw open or closed, so absence never causes a false FIXED; the scan_id is derived from tenant and CID, so bridging twice is a duplicate. INSERT it into xray.scan_results';

