-- 0.8.0 -> 0.9.0: what a 0.8.0 database needs to be, object by object, a fresh 0.9.0
-- install (nweb under attack, the rest: docs/design.md D44-).
\echo Use "ALTER EXTENSION xray_pg UPDATE TO '0.9.0'" to load this file. \quit

-- Submission kinds (D44)
-- SubmissionRouter's SubmissionRecorded indexed (chain.submission_router): the cost kind
-- paid for is checked against the bundle's, in both orders, by one recheck.

CREATE FUNCTION nweb.submission_kind_applied() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_cid text;
BEGIN
    -- The ScanSubmission and its SubmissionRecorded are logs of one transaction but of
    -- two contracts, indexed under two checkpoints: whichever comes second checks the
    -- bundle (docs/design.md D44).
    SELECT a.cid INTO v_cid
      FROM nweb.attestations AS a
     WHERE a.kind = 'ScanSubmission' AND a.chain_id = NEW.chain_id AND a.uid = NEW.uid AND a.cid IS NOT NULL
     LIMIT 1;
    IF v_cid IS NOT NULL THEN
        PERFORM nweb.recheck_bundle(v_cid);
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION nweb.submission_kind_applied() IS 'AFTER INSERT on nweb.submission_kinds: checks the bundle of the ScanSubmission it prices, when that is indexed already (nweb.recheck_bundle)';

CREATE TABLE nweb.submission_kinds (
    chain_id bigint NOT NULL,
    tx_hash text NOT NULL,
    log_index integer NOT NULL,
    block_number bigint NOT NULL,
    block_hash text NOT NULL,
    block_time timestamp with time zone NOT NULL,
    router text NOT NULL,
    uid text NOT NULL,
    submitter text NOT NULL,
    cost_kind text NOT NULL,
    cost integer NOT NULL,
    inserted_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT submission_kinds_block_hash_check CHECK ((block_hash ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT submission_kinds_block_number_check CHECK ((block_number >= 0)),
    CONSTRAINT submission_kinds_chain_id_check CHECK ((chain_id > 0)),
    CONSTRAINT submission_kinds_cost_check CHECK ((cost >= 0)),
    CONSTRAINT submission_kinds_cost_kind_check CHECK ((cost_kind = ANY (ARRAY['masscan-quick'::text, 'nmap-top1k'::text, 'nmap-full'::text, 'diff/enrich'::text]))),
    CONSTRAINT submission_kinds_log_index_check CHECK ((log_index >= 0)),
    CONSTRAINT submission_kinds_router_check CHECK ((router ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT submission_kinds_submitter_check CHECK ((submitter ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT submission_kinds_tx_hash_check CHECK ((tx_hash ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT submission_kinds_uid_check CHECK ((uid ~ '^0x[0-9a-f]{64}$'::text))
);

ALTER TABLE ONLY nweb.submission_kinds
    ADD CONSTRAINT submission_kinds_pkey PRIMARY KEY (chain_id, tx_hash, log_index);

CREATE INDEX submission_kinds_block ON nweb.submission_kinds USING btree (chain_id, block_number);

CREATE INDEX submission_kinds_uid ON nweb.submission_kinds USING btree (chain_id, uid);

CREATE TRIGGER submission_kinds_apply AFTER INSERT ON nweb.submission_kinds FOR EACH ROW EXECUTE FUNCTION nweb.submission_kind_applied();

COMMENT ON TABLE nweb.submission_kinds IS 'SubmissionRouter logs (SubmissionRecorded): the cost kind each ScanSubmission (by uid) paid for, written by xray-loader tail in the transaction of its checkpoint with ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING; deleted by nweb.chain_rollback. A verified bundle of another cost kind is invalid (COST_KIND_MISMATCH, nweb.cost_kind_mismatch)';

COMMENT ON COLUMN nweb.submission_kinds.uid IS 'The ScanSubmission attestation''s UID (nweb.attestations.uid)';

COMMENT ON COLUMN nweb.submission_kinds.cost_kind IS 'The Kind paid for, spelled as nweb.bundles.cost_kind (masscan-quick, nmap-top1k, nmap-full, diff/enrich)';

COMMENT ON COLUMN nweb.submission_kinds.cost IS 'Quota units charged';

GRANT SELECT ON TABLE nweb.submission_kinds TO xray_reader;
GRANT INSERT ON TABLE nweb.submission_kinds TO xray_ingest;

SELECT pg_catalog.pg_extension_config_dump('nweb.submission_kinds', '');

-- The datasetType check of submission_mismatch is one of the attested claims, which
-- nweb_attested_mismatch checks for a bundle loaded before its submission (D43): what
-- is left is the SubmissionRouter's charge.
DROP FUNCTION nweb.submission_mismatch(text, text);

CREATE FUNCTION nweb_attested_mismatch(attested jsonb, manifest_sha256 text, dataset_type text, tool text,
                                       vantage text, started_at bigint, finished_at bigint) RETURNS text
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'nweb_attested_mismatch_wrapper';

COMMENT ON FUNCTION @extschema@.nweb_attested_mismatch(attested jsonb, manifest_sha256 text, dataset_type text, tool text, vantage text, started_at bigint, finished_at bigint) IS 'The first claim of a ScanSubmission payload (manifestSha256, datasetType, tool, vantage, startedAt, finishedAt) that these facts of a bundle contradict, as the detail nweb_bundle_verdict gives (attestation.tool "masscan" differs from manifest.tool "nmap"), or NULL; manifestSha256 is not compared when manifest_sha256 is NULL. nweb.recheck_bundle holds a bundle checked before its submission to it';

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

CREATE OR REPLACE FUNCTION nweb.attestation_applied() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    p    jsonb := NEW.payload;
    what text := format('%s attestation %s/%s', NEW.kind, NEW.tx_hash, NEW.log_index);
BEGIN
    -- Only UPDATEs of bundles and inserts of derived (undumped) challenges, so that
    -- replaying attestations during a restore cannot collide with restored rows.
    IF NEW.kind = 'ScanSubmission' THEN
        IF NEW.cid IS NULL THEN
            -- A variant spelling is not canonicalised: the slasher and the contracts
            -- know a CID by its exact text (docs/design.md D41).
            IF @extschema@.nweb_cid_canonical(p ->> 'cid') IS NOT NULL THEN
                RAISE WARNING '%: payload.cid % is not the canonical spelling % (CIDv1 base32 lower-case); it submits nothing',
                    what, p ->> 'cid', @extschema@.nweb_cid_canonical(p ->> 'cid');
            ELSE
                RAISE WARNING '%: payload.cid % is not a CID; nothing to fetch', what, coalesce(p ->> 'cid', 'NULL');
            END IF;
            RETURN NULL;
        END IF;
        PERFORM nweb.recheck_bundle(NEW.cid);
    ELSIF NEW.kind = 'Challenge' THEN
        IF NEW.uid IS NULL OR coalesce(p ->> 'cid', '') = ''
           OR coalesce(p ->> 'reasonCode', '') NOT IN ('CID_UNAVAILABLE', 'CID_HASH_MISMATCH', 'FORMAT_INVALID') THEN
            RAISE WARNING '%: needs uid, payload.cid and a reasonCode of CID_UNAVAILABLE, CID_HASH_MISMATCH or FORMAT_INVALID; ignored', what;
            RETURN NULL;
        END IF;
        INSERT INTO nweb.challenges (challenge_id, attestation_id, cid, job_id, reason_code, evidence_cid, challenger, filed_at)
        VALUES (NEW.uid, NEW.attestation_id, coalesce(NEW.cid, p ->> 'cid'), p ->> 'jobId', p ->> 'reasonCode',
                p ->> 'evidenceCid', NEW.attester, NEW.block_time)
        ON CONFLICT (challenge_id) DO NOTHING;
    ELSIF NEW.kind = 'Resolution' THEN
        IF lower(p ->> 'challengeId') !~ '^0x[0-9a-f]{64}$' OR jsonb_typeof(p -> 'slash') IS DISTINCT FROM 'boolean' THEN
            RAISE WARNING '%: needs payload.challengeId (bytes32 hex) and a boolean slash; it resolves nothing', what;
        END IF;
    END IF;
    RETURN NULL;
END
$_$;

-- store_bundle: the cost kind paid checked after the attested claims (D43), with the
-- first submission's payload read once.
CREATE OR REPLACE FUNCTION nweb.store_bundle(p_cid text, p_manifest text, p_scanprint text, p_files jsonb, p_manifest_sha256 text, p_bundle_bytes bigint, p_unreadable text) RETURNS nweb.bundles
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

CREATE OR REPLACE FUNCTION nweb.chain_rollback(chain_id bigint, first_reverted_block bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    n       bigint;
    v_addrs text[];
    v_cids  text[];
BEGIN
    IF chain_rollback.first_reverted_block IS NULL OR chain_rollback.first_reverted_block < 0 THEN
        RAISE EXCEPTION 'first_reverted_block: expected a block number >= 0, got %', coalesce(chain_rollback.first_reverted_block::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('nweb.chain:' || chain_rollback.chain_id, 0));
    -- Challenges derived from these attestations go with them (ON DELETE CASCADE).
    WITH d AS (
        DELETE FROM nweb.attestations AS a
         WHERE a.chain_id = chain_rollback.chain_id AND a.block_number >= chain_rollback.first_reverted_block
        RETURNING a.kind, a.cid
    )
    SELECT count(*), array_agg(DISTINCT d.cid) FILTER (WHERE d.kind = 'ScanSubmission' AND d.cid IS NOT NULL)
      INTO n, v_cids FROM d;
    -- A bundle that only the reverted submissions attested was loaded for a fork that
    -- no longer exists: it and its scanprint rows (ON DELETE CASCADE) go too. One that
    -- a remaining submission, on any chain, still attests stays.
    IF v_cids IS NOT NULL THEN
        DELETE FROM nweb.bundles AS b
         WHERE b.cid = ANY (v_cids)
           AND NOT EXISTS (SELECT 1 FROM nweb.attestations AS a WHERE a.kind = 'ScanSubmission' AND a.cid = b.cid);
    END IF;
    DELETE FROM nweb.submission_kinds AS k
     WHERE k.chain_id = chain_rollback.chain_id AND k.block_number >= chain_rollback.first_reverted_block;
    DELETE FROM nweb.chain_log_rejects AS r
     WHERE r.chain_id = chain_rollback.chain_id AND r.block_number >= chain_rollback.first_reverted_block;
    -- Reverted stake events, and the stakes of their addresses derived again without them.
    WITH d AS (
        DELETE FROM nweb.stake_events AS e
         WHERE e.chain_id = chain_rollback.chain_id AND e.block_number >= chain_rollback.first_reverted_block
        RETURNING e.address
    )
    SELECT array_agg(DISTINCT d.address) INTO v_addrs FROM d;
    IF v_addrs IS NOT NULL THEN
        PERFORM nweb.refresh_stakes(v_addrs);
    END IF;
    DELETE FROM nweb.chain_blocks AS b
     WHERE b.chain_id = chain_rollback.chain_id AND b.block_number >= chain_rollback.first_reverted_block;
    -- Every contract indexed on this chain lost the same blocks.
    UPDATE nweb.chain_checkpoints AS c
       SET last_block = greatest(chain_rollback.first_reverted_block - 1, c.start_block - 1),
           last_block_hash = (SELECT b.block_hash FROM nweb.chain_blocks AS b
                               WHERE b.chain_id = c.chain_id
                                 AND b.block_number = chain_rollback.first_reverted_block - 1
                                 AND chain_rollback.first_reverted_block - 1 >= c.start_block),
           updated_at = now()
     WHERE c.chain_id = chain_rollback.chain_id AND c.last_block >= chain_rollback.first_reverted_block;
    RETURN n;
END
$$;

COMMENT ON FUNCTION nweb.chain_rollback(chain_id bigint, first_reverted_block bigint) IS 'A reorg reverted first_reverted_block and everything after it on this chain: delete those attestations (their challenges follow), the bundles (with their scanprint rows) that only they attested, the submission kinds, the stake events (the stakes of their addresses are derived again), the rejected logs, their block hashes, and move every checkpoint of the chain back before it. Returns the number of attestations deleted. Runs in the caller''s transaction';

CREATE OR REPLACE VIEW nweb.v_bundles AS
 SELECT b.cid,
    b.status,
    b.reason,
    b.reason_detail,
    b.namespace,
    b.dataset_type,
    b.tool,
    b.tool_version,
    b.vantage,
    b.cost_kind,
    b.cost_units,
    b.submitter,
    b.merkle_root,
    b.attested_merkle_root,
    b.scan_started_at,
    b.scan_finished_at,
    b.scanprint_lines,
    b.scanprint_bytes,
    b.bundle_bytes,
    b.first_seen_at,
    b.checked_at,
    b.verified_at,
    ( SELECT k.cost_kind
           FROM (( SELECT a.chain_id,
                    a.uid
                   FROM nweb.attestations a
                  WHERE ((a.kind = 'ScanSubmission'::text) AND (a.cid = b.cid))
                  ORDER BY a.block_time, a.attestation_id
                 LIMIT 1) f
             JOIN nweb.submission_kinds k ON (((k.chain_id = f.chain_id) AND (k.uid = f.uid))))) AS paid_cost_kind
   FROM nweb.bundles b
UNION ALL
 SELECT s.cid,
    'pending'::text AS status,
    NULL::text AS reason,
    NULL::text AS reason_detail,
    NULL::text AS namespace,
    (s.payload ->> 'datasetType'::text) AS dataset_type,
    NULL::text AS tool,
    NULL::text AS tool_version,
    NULL::text AS vantage,
    @extschema@.nweb_cost_kind((s.payload ->> 'datasetType'::text)) AS cost_kind,
    NULL::integer AS cost_units,
    s.attester AS submitter,
    NULL::text AS merkle_root,
    lower((s.payload ->> 'merkleRoot'::text)) AS attested_merkle_root,
    NULL::timestamp with time zone AS scan_started_at,
    NULL::timestamp with time zone AS scan_finished_at,
    NULL::integer AS scanprint_lines,
    NULL::bigint AS scanprint_bytes,
    NULL::bigint AS bundle_bytes,
    s.block_time AS first_seen_at,
    NULL::timestamp with time zone AS checked_at,
    NULL::timestamp with time zone AS verified_at,
    k.cost_kind AS paid_cost_kind
   FROM (( SELECT DISTINCT ON (a.cid) a.cid,
            a.attester,
            a.payload,
            a.block_time,
            a.chain_id,
            a.uid
           FROM nweb.attestations a
          WHERE ((a.kind = 'ScanSubmission'::text) AND (a.cid IS NOT NULL))
          ORDER BY a.cid, a.block_time, a.attestation_id) s
     LEFT JOIN nweb.submission_kinds k ON (((k.chain_id = s.chain_id) AND (k.uid = s.uid))))
  WHERE (NOT (EXISTS ( SELECT 1
           FROM nweb.bundles b
          WHERE (b.cid = s.cid))));

COMMENT ON VIEW nweb.v_bundles IS 'Every bundle without its manifest document: checked ones from nweb.bundles, and attested CIDs not checked yet as pending (what the indexer should fetch). paid_cost_kind: the Kind the SubmissionRouter charged the first ScanSubmission (NULL until its SubmissionRecorded is indexed); a verified bundle of another cost_kind is invalid with COST_KIND_MISMATCH';

CREATE OR REPLACE VIEW nweb.v_submissions AS
 SELECT a.attestation_id,
    a.chain_id,
    a.tx_hash,
    a.log_index,
    a.block_number,
    a.attester AS submitter,
    a.cid,
    a.block_time AS submitted_at,
    @extschema@.nweb_grace_ends_at(a.block_time) AS grace_ends_at,
    COALESCE(b.status, 'pending'::text) AS status,
    COALESCE(b.cost_kind, @extschema@.nweb_cost_kind((a.payload ->> 'datasetType'::text))) AS cost_kind,
    COALESCE(b.cost_units, @extschema@.nweb_submission_cost(@extschema@.nweb_cost_kind((a.payload ->> 'datasetType'::text)))) AS cost_units,
    b.vantage,
    k.cost_kind AS paid_cost_kind,
    k.cost AS paid_units
   FROM ((nweb.attestations a
     LEFT JOIN nweb.bundles b ON ((b.cid = a.cid)))
     LEFT JOIN nweb.submission_kinds k ON (((k.chain_id = a.chain_id) AND (k.uid = a.uid))))
  WHERE (a.kind = 'ScanSubmission'::text);

COMMENT ON VIEW nweb.v_submissions IS 'ScanSubmissions with their bundle''s verdict and price (the attested datasetType until the bundle is verified), and the Kind and units the SubmissionRouter charged (paid_cost_kind, paid_units; NULL until its SubmissionRecorded is indexed)';

-- Unbonding stake (D45)
-- Unbonding, UnbondingSlashed and Withdrawn indexed: nweb.stakes shows active and
-- unbonding GST and what slashes took; nweb.v_slashes one row per slash.

ALTER TABLE nweb.stake_events ADD COLUMN release_at timestamp with time zone;
ALTER TABLE nweb.stake_events DROP CONSTRAINT stake_events_fields;
ALTER TABLE nweb.stake_events ADD CONSTRAINT stake_events_fields CHECK (
CASE
    WHEN (kind = ANY (ARRAY['Slashed'::text, 'UnbondingSlashed'::text])) THEN ((total IS NULL) AND (challenger IS NOT NULL) AND (bounty IS NOT NULL) AND (burned IS NOT NULL) AND (release_at IS NULL))
    WHEN (kind = 'Withdrawn'::text) THEN ((total IS NULL) AND (challenger IS NULL) AND (bounty IS NULL) AND (burned IS NULL) AND (release_at IS NULL))
    ELSE ((total IS NOT NULL) AND (challenger IS NULL) AND (bounty IS NULL) AND (burned IS NULL) AND ((release_at IS NOT NULL) = (kind = 'Unbonding'::text)))
END);
ALTER TABLE nweb.stake_events DROP CONSTRAINT stake_events_kind_check;
ALTER TABLE nweb.stake_events ADD CONSTRAINT stake_events_kind_check CHECK ((kind = ANY (ARRAY['Staked'::text, 'Unstaked'::text, 'Slashed'::text, 'Unbonding'::text, 'UnbondingSlashed'::text, 'Withdrawn'::text])));

COMMENT ON TABLE nweb.stake_events IS 'StakeRegistry logs (Staked, Unstaked, Slashed, Unbonding, UnbondingSlashed, Withdrawn), one row per log, written by xray-loader tail in the transaction of its checkpoint with ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING; deleted by nweb.chain_rollback. nweb.stakes is derived from them (nweb.refresh_stakes)';

COMMENT ON COLUMN nweb.stake_events.amount IS 'GST (exact decimal, not wei): staked, unstaked, started unbonding, withdrawn, or slashed (bounty + burned; Slashed: the part taken from the active stake, UnbondingSlashed: the part taken from the unbonding GST, both logs of one slash)';

COMMENT ON COLUMN nweb.stake_events.total IS 'Staked, Unstaked: the address''s active stake in this registry after the event; Unbonding: its unbonding GST after the event (totalUnbonding); as emitted (GST). NULL for the others, which emit none';

COMMENT ON COLUMN nweb.stake_events.challenger IS 'Slashed, UnbondingSlashed: who receives the bounty';

COMMENT ON COLUMN nweb.stake_events.release_at IS 'Unbonding: when all the unbonding GST can be withdrawn (each unstake restarts the clock)';

ALTER TABLE nweb.stakes ADD COLUMN unbonding numeric DEFAULT 0 NOT NULL;
ALTER TABLE nweb.stakes ADD COLUMN unbonding_release_at timestamp with time zone;
ALTER TABLE nweb.stakes ADD COLUMN slashed numeric DEFAULT 0 NOT NULL;
ALTER TABLE nweb.stakes ADD CONSTRAINT stakes_unbonding_check CHECK ((unbonding >= (0)::numeric));
ALTER TABLE nweb.stakes ADD CONSTRAINT stakes_slashed_check CHECK ((slashed >= (0)::numeric));

COMMENT ON TABLE nweb.stakes IS 'Staked GST per address (from StakeRegistry): active, unbonding and slashed, and its reputation (nweb.refresh_reputation)';

COMMENT ON COLUMN nweb.stakes.stake IS 'Active GST, exact decimal (not wei): what buys quota';

COMMENT ON COLUMN nweb.stakes.unbonding IS 'Unstaked GST not withdrawn yet: no quota, still slashable';

COMMENT ON COLUMN nweb.stakes.unbonding_release_at IS 'When the unbonding GST can be withdrawn (the latest over registries); NULL when nothing unbonds';

COMMENT ON COLUMN nweb.stakes.slashed IS 'GST slashed so far, from the active stake and from unbonding GST';

DROP FUNCTION nweb.stakes_by_registry(text[]);

CREATE FUNCTION nweb.stakes_by_registry(addresses text[] DEFAULT NULL::text[]) RETURNS TABLE(chain_id bigint, registry text, address text, stake numeric, last_block bigint, unanchored_slash numeric, unbonding numeric, unbonding_release_at timestamp with time zone, slashed numeric)
    LANGUAGE sql STABLE
    AS $$
    SELECT k.chain_id, k.registry, k.address,
           CASE WHEN un.amount = 0 THEN coalesce(an.total, 0) - sl.amount END,
           greatest(an.block_number, sl.last_block, ub.block_number, ubx.last_block),
           nullif(un.amount, 0),
           CASE WHEN ub.total IS NULL OR ubx.withdrawn THEN 0 ELSE ub.total - ubx.slashed END,
           CASE WHEN ub.total IS NOT NULL AND NOT ubx.withdrawn AND ub.total > ubx.slashed THEN ub.release_at END,
           tot.slashed
      FROM (SELECT DISTINCT e.chain_id, e.registry, e.address
              FROM nweb.stake_events AS e
             WHERE stakes_by_registry.addresses IS NULL
                OR e.address IN (SELECT lower(a) FROM unnest(stakes_by_registry.addresses) AS a)) AS k
      LEFT JOIN LATERAL (
            SELECT e.total, e.block_number, e.log_index
              FROM nweb.stake_events AS e
             WHERE e.address = k.address AND e.chain_id = k.chain_id AND e.registry = k.registry
               AND e.kind IN ('Staked', 'Unstaked')
             ORDER BY e.block_number DESC, e.log_index DESC
             LIMIT 1) AS an ON true
     CROSS JOIN LATERAL (
            SELECT coalesce(sum(e.amount), 0) AS amount, max(e.block_number) AS last_block
              FROM nweb.stake_events AS e
             WHERE e.address = k.address AND e.chain_id = k.chain_id AND e.registry = k.registry
               AND e.kind = 'Slashed'
               AND (an.block_number IS NULL OR (e.block_number, e.log_index) > (an.block_number, an.log_index))) AS sl
      LEFT JOIN LATERAL (
            SELECT e.block_number, e.log_index
              FROM nweb.stake_events AS e
             WHERE e.address = k.address AND e.chain_id = k.chain_id AND e.registry = k.registry
               AND e.kind IN ('Staked', 'Unstaked')
             ORDER BY e.block_number, e.log_index
             LIMIT 1) AS fst ON true
     CROSS JOIN LATERAL (
            SELECT coalesce(sum(e.amount), 0) AS amount
              FROM nweb.stake_events AS e
             WHERE e.address = k.address AND e.chain_id = k.chain_id AND e.registry = k.registry
               AND e.kind = 'Slashed'
               AND (fst.block_number IS NULL OR (e.block_number, e.log_index) < (fst.block_number, fst.log_index))) AS un
      -- Unbonding GST: the totalUnbonding of the last Unbonding, less what was slashed
      -- from it since, and nothing once a Withdrawn (which pays out all of it) follows.
      LEFT JOIN LATERAL (
            SELECT e.total, e.release_at, e.block_number, e.log_index
              FROM nweb.stake_events AS e
             WHERE e.address = k.address AND e.chain_id = k.chain_id AND e.registry = k.registry
               AND e.kind = 'Unbonding'
             ORDER BY e.block_number DESC, e.log_index DESC
             LIMIT 1) AS ub ON true
     CROSS JOIN LATERAL (
            SELECT coalesce(sum(e.amount) FILTER (WHERE e.kind = 'UnbondingSlashed'), 0) AS slashed,
                   coalesce(bool_or(e.kind = 'Withdrawn'), false) AS withdrawn,
                   max(e.block_number) AS last_block
              FROM nweb.stake_events AS e
             WHERE e.address = k.address AND e.chain_id = k.chain_id AND e.registry = k.registry
               AND e.kind IN ('UnbondingSlashed', 'Withdrawn')
               AND (e.block_number, e.log_index) > (ub.block_number, ub.log_index)) AS ubx
     CROSS JOIN LATERAL (
            SELECT coalesce(sum(e.amount), 0) AS slashed
              FROM nweb.stake_events AS e
             WHERE e.address = k.address AND e.chain_id = k.chain_id AND e.registry = k.registry
               AND e.kind IN ('Slashed', 'UnbondingSlashed')) AS tot;
$$;

COMMENT ON FUNCTION nweb.stakes_by_registry(addresses text[]) IS 'Stake per (chain, registry, address) from nweb.stake_events (all addresses when NULL): the total of the last Staked or Unstaked, minus the amounts slashed after it. stake is NULL, and unanchored_slash the GST slashed, when a slash of more than 0 has no Staked or Unstaked before it (the registry was not indexed from its deployment). unbonding: the totalUnbonding of the last Unbonding minus the UnbondingSlashed after it, 0 after a Withdrawn; unbonding_release_at its release time while any unbonds; slashed: every Slashed and UnbondingSlashed amount';

CREATE OR REPLACE FUNCTION nweb.refresh_stakes(addresses text[]) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_addrs text[];
    a       text;
    bad     record;
    n       integer;
BEGIN
    SELECT coalesce(array_agg(DISTINCT lower(x) ORDER BY lower(x)), '{}') INTO v_addrs
      FROM unnest(refresh_stakes.addresses) AS x
     WHERE x IS NOT NULL;
    -- A stake sums over chains and registries, and each chain has its own writer: one
    -- refresh per address at a time, taken in one order so two cannot deadlock. Later
    -- statements take a new snapshot, so they see what the other one committed.
    FOREACH a IN ARRAY v_addrs LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('nweb.stake:' || a, 0));
    END LOOP;
    SELECT * INTO bad FROM nweb.stakes_by_registry(v_addrs) AS s
     WHERE s.stake IS NULL OR s.stake < 0 OR s.unbonding < 0
     ORDER BY s.chain_id, s.registry, s.address
     LIMIT 1;
    IF FOUND THEN
        IF bad.stake IS NULL THEN
            RAISE EXCEPTION 'nweb.stake_events: % was slashed % GST by StakeRegistry % on chain % without a Staked or Unstaked of it indexed before; its stake cannot be derived',
                bad.address, bad.unanchored_slash, bad.registry, bad.chain_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Index the StakeRegistry from its deployment: chain.start_block at or before it, and a new checkpoint (DELETE its row of nweb.chain_checkpoints).';
        END IF;
        IF bad.stake >= 0 THEN
            RAISE EXCEPTION 'nweb.stake_events: % has more slashed from unbonding GST than unbonding (% GST) in StakeRegistry % on chain %',
                bad.address, bad.unbonding, bad.registry, bad.chain_id
                USING ERRCODE = 'check_violation';
        END IF;
        RAISE EXCEPTION 'nweb.stake_events: % has more slashed than staked (% GST) in StakeRegistry % on chain %',
            bad.address, bad.stake, bad.registry, bad.chain_id
            USING ERRCODE = 'check_violation';
    END IF;
    -- An address whose events are all gone (rolled back) keeps its row with stake 0:
    -- the row may hold its reputation.
    WITH s AS (
        SELECT s.address, sum(s.stake) AS stake, sum(s.unbonding) AS unbonding,
               max(s.unbonding_release_at) AS unbonding_release_at, sum(s.slashed) AS slashed
          FROM nweb.stakes_by_registry(v_addrs) AS s
         GROUP BY s.address
    )
    INSERT INTO nweb.stakes AS st (address, stake, unbonding, unbonding_release_at, slashed)
    SELECT x.address, coalesce(s.stake, 0), coalesce(s.unbonding, 0), s.unbonding_release_at, coalesce(s.slashed, 0)
      FROM unnest(v_addrs) AS x(address)
      LEFT JOIN s ON s.address = x.address
     WHERE s.address IS NOT NULL OR EXISTS (SELECT 1 FROM nweb.stakes AS o WHERE o.address = x.address)
    ON CONFLICT (address) DO UPDATE
       SET stake = EXCLUDED.stake, unbonding = EXCLUDED.unbonding,
           unbonding_release_at = EXCLUDED.unbonding_release_at, slashed = EXCLUDED.slashed, updated_at = now()
     WHERE (st.stake, st.unbonding, st.unbonding_release_at, st.slashed)
           IS DISTINCT FROM (EXCLUDED.stake, EXCLUDED.unbonding, EXCLUDED.unbonding_release_at, EXCLUDED.slashed);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

COMMENT ON FUNCTION nweb.refresh_stakes(addresses text[]) IS 'Set nweb.stakes.stake, unbonding, unbonding_release_at and slashed of these addresses to the sums (latest release time) over chains and registries of nweb.stakes_by_registry (0 when no event is left), in the caller''s transaction; returns the number of rows changed. ERROR when a slash has no Staked or Unstaked before it. Called by xray-loader tail after each batch and by nweb.chain_rollback';

CREATE VIEW nweb.v_slashes AS
 SELECT s.chain_id,
    s.registry,
    s.tx_hash,
    s.log_index,
    s.block_number,
    s.block_time,
    s.address,
    s.challenger,
    s.amount AS from_active,
    COALESCE(u.amount, (0)::numeric) AS from_unbonding,
    (s.amount + COALESCE(u.amount, (0)::numeric)) AS amount,
    (s.bounty + COALESCE(u.bounty, (0)::numeric)) AS bounty,
    (s.burned + COALESCE(u.burned, (0)::numeric)) AS burned
   FROM (nweb.stake_events s
     LEFT JOIN LATERAL ( SELECT e.amount,
            e.bounty,
            e.burned
           FROM nweb.stake_events e
          WHERE ((e.kind = 'UnbondingSlashed'::text) AND (e.chain_id = s.chain_id) AND (e.tx_hash = s.tx_hash) AND (e.registry = s.registry) AND (e.address = s.address) AND (e.log_index < s.log_index) AND (NOT (EXISTS ( SELECT 1
                   FROM nweb.stake_events x
                  WHERE ((x.kind = 'Slashed'::text) AND (x.chain_id = s.chain_id) AND (x.tx_hash = s.tx_hash) AND (x.registry = s.registry) AND (x.address = s.address) AND (x.log_index > e.log_index) AND (x.log_index < s.log_index))))))
          ORDER BY e.log_index DESC
         LIMIT 1) u ON (true))
  WHERE (s.kind = 'Slashed'::text);

COMMENT ON VIEW nweb.v_slashes IS 'One row per executed slash: the StakeRegistry takes 10 % of active and unbonding GST, unbonding first, and logs the two parts apart (UnbondingSlashed, then Slashed, in one transaction); amount, bounty and burned are the totals';

GRANT SELECT ON TABLE nweb.v_slashes TO xray_reader;
