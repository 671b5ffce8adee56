-- 0.6.0 -> 0.7.0: a hostile peer and a lagging RPC (docs/design.md D41). What a 0.6.0
-- database needs to be, object by object, a fresh 0.7.0 install.
\echo Use "ALTER EXTENSION xray_pg UPDATE TO '0.7.0'" to load this file. \quit

-- One spelling of a CID: nweb_cid_canonical now turns a CIDv0 into its CIDv1 too
-- (0.6.0 left it in base58, a second spelling of the same content).
CREATE OR REPLACE FUNCTION nweb_cid_canonical(cid text) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'nweb_cid_canonical_0_7_wrapper';

COMMENT ON FUNCTION @extschema@.nweb_cid_canonical(cid text) IS 'Canonical text of a CID (CIDv1: lowercase base32), NULL if the text is not a CID';

-- nweb.attestations.cid holds only the canonical spelling; a variant is no longer
-- canonicalised into someone else's CID. A generated column's expression cannot be
-- altered in PostgreSQL 15, so the column is made again, and the views that read it
-- with it. Challenges keep the CID they were filed with.
DROP VIEW nweb.v_submissions;
DROP VIEW nweb.v_bundles;
ALTER TABLE nweb.attestations DROP COLUMN cid;
ALTER TABLE nweb.attestations ADD COLUMN cid text GENERATED ALWAYS AS (
CASE
    WHEN (@extschema@.nweb_cid_canonical((payload ->> 'cid'::text)) = (payload ->> 'cid'::text)) THEN (payload ->> 'cid'::text)
    ELSE NULL::text
END) STORED;

CREATE INDEX attestations_kind_cid ON nweb.attestations USING btree (kind, cid);

COMMENT ON COLUMN nweb.attestations.cid IS 'payload.cid when it is the canonical spelling (CIDv1 base32 lower-case, as the contracts require); NULL when absent, not a CID, or a variant spelling (which is not canonicalised: the chain knows a CID by its exact text)';

CREATE VIEW nweb.v_bundles AS
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
    b.verified_at
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
    NULL::timestamp with time zone AS verified_at
   FROM ( SELECT DISTINCT ON (a.cid) a.cid,
            a.attester,
            a.payload,
            a.block_time
           FROM nweb.attestations a
          WHERE ((a.kind = 'ScanSubmission'::text) AND (a.cid IS NOT NULL))
          ORDER BY a.cid, a.block_time, a.attestation_id) s
  WHERE (NOT (EXISTS ( SELECT 1
           FROM nweb.bundles b
          WHERE (b.cid = s.cid))));

COMMENT ON VIEW nweb.v_bundles IS 'Every bundle without its manifest document: checked ones from nweb.bundles, and attested CIDs not checked yet as pending (what the indexer should fetch)';

GRANT SELECT ON TABLE nweb.v_bundles TO xray_reader;

CREATE VIEW nweb.v_submissions AS
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
    b.vantage
   FROM (nweb.attestations a
     LEFT JOIN nweb.bundles b ON ((b.cid = a.cid)))
  WHERE (a.kind = 'ScanSubmission'::text);

COMMENT ON VIEW nweb.v_submissions IS 'ScanSubmissions with their bundle''s verdict and price (the attested datasetType until the bundle is verified)';

GRANT SELECT ON TABLE nweb.v_submissions TO xray_reader;

-- Logs the indexer did not index are recorded instead of skipped.
CREATE TABLE nweb.chain_log_rejects (
    chain_id bigint NOT NULL,
    contract text NOT NULL,
    block_number bigint NOT NULL,
    block_hash text NOT NULL,
    tx_hash text NOT NULL,
    log_index integer NOT NULL,
    topic0 text,
    error text NOT NULL,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT chain_log_rejects_block_hash_check CHECK ((block_hash ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT chain_log_rejects_block_number_check CHECK ((block_number >= 0)),
    CONSTRAINT chain_log_rejects_chain_id_check CHECK ((chain_id > 0)),
    CONSTRAINT chain_log_rejects_contract_check CHECK ((contract ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT chain_log_rejects_error_check CHECK ((error <> ''::text)),
    CONSTRAINT chain_log_rejects_log_index_check CHECK ((log_index >= 0)),
    CONSTRAINT chain_log_rejects_topic0_check CHECK ((topic0 ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT chain_log_rejects_tx_hash_check CHECK ((tx_hash ~ '^0x[0-9a-f]{64}$'::text))
);

ALTER TABLE ONLY nweb.chain_log_rejects
    ADD CONSTRAINT chain_log_rejects_pkey PRIMARY KEY (chain_id, tx_hash, log_index);

CREATE INDEX chain_log_rejects_block ON nweb.chain_log_rejects USING btree (chain_id, block_number);

COMMENT ON TABLE nweb.chain_log_rejects IS 'Logs of a followed contract that xray-loader tail did not index: they do not decode, or name a CID in a variant spelling. Written in the transaction of the batch and its checkpoint (so the checkpoint never passes a log that is neither indexed nor here); deleted by nweb.chain_rollback';

COMMENT ON COLUMN nweb.chain_log_rejects.topic0 IS 'The event signature hash, NULL for a log without topics';

COMMENT ON COLUMN nweb.chain_log_rejects.error IS 'Why the log was not indexed (the decoder''s error, or the CID spelling problem)';

GRANT SELECT ON TABLE nweb.chain_log_rejects TO xray_reader;
GRANT INSERT,DELETE ON TABLE nweb.chain_log_rejects TO xray_ingest;

SELECT pg_catalog.pg_extension_config_dump('nweb.chain_log_rejects', '');

-- A bundle is checked against its submission's datasetType (the price).
CREATE FUNCTION nweb.submission_mismatch(cid text, dataset_type text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT format('COST_KIND_MISMATCH: the ScanSubmission attests datasetType %s (cost kind %s), the manifest''s datasetType is %s (cost kind %s)',
                  coalesce(quote_literal(a.payload ->> 'datasetType'), 'NULL'),
                  coalesce(@extschema@.nweb_cost_kind(a.payload ->> 'datasetType'), 'none'),
                  coalesce(quote_literal(submission_mismatch.dataset_type), 'NULL'),
                  coalesce(@extschema@.nweb_cost_kind(submission_mismatch.dataset_type), 'none'))
      FROM (SELECT a.payload
              FROM nweb.attestations AS a
             WHERE a.kind = 'ScanSubmission' AND a.cid = submission_mismatch.cid
             ORDER BY a.block_time, a.attestation_id
             LIMIT 1) AS a
     WHERE a.payload ? 'datasetType'
       AND (a.payload ->> 'datasetType') IS DISTINCT FROM submission_mismatch.dataset_type;
$$;

COMMENT ON FUNCTION nweb.submission_mismatch(cid text, dataset_type text) IS 'Why the first ScanSubmission of this CID does not describe a bundle of this manifest datasetType (the on-chain price follows the attested datasetType, the reputation the bundle), or NULL when it does, when there is none yet, or when its payload has no datasetType at all (a row not written by the indexer, which always sets it)';

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
    v := @extschema@.nweb_bundle_verdict(p_manifest, p_scanprint, p_files, sub.attested_merkle_root, p_unreadable);
    m := v -> 'manifest';
    -- A bundle that is not what its submission paid for is a verified mismatch with
    -- what was committed on chain, not a format error.
    IF v ->> 'status' = 'verified' THEN
        mismatch := nweb.submission_mismatch(v_cid, m ->> 'dataset_type');
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

-- A verified bundle loaded before its attestation is checked the same way.
CREATE OR REPLACE FUNCTION nweb.attestation_applied() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    p    jsonb := NEW.payload;
    b    nweb.bundles;
    sub  record;
    what text := format('%s attestation %s/%s', NEW.kind, NEW.tx_hash, NEW.log_index);
    mismatch text;
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
        PERFORM pg_advisory_xact_lock(hashtextextended('nweb.bundle:' || NEW.cid, 0));
        SELECT * INTO sub FROM nweb.first_submission(NEW.cid);
        UPDATE nweb.bundles AS x
           SET submitter = sub.submitter, attested_merkle_root = sub.attested_merkle_root
         WHERE x.cid = NEW.cid
           AND (x.submitter IS DISTINCT FROM sub.submitter OR x.attested_merkle_root IS DISTINCT FROM sub.attested_merkle_root)
        RETURNING * INTO b;
        -- Checked before its attestation was seen: the two must agree.
        IF b.status = 'verified' THEN
            mismatch := CASE WHEN b.attested_merkle_root IS NOT NULL AND b.attested_merkle_root IS DISTINCT FROM b.merkle_root
                             THEN format('the manifest''s merkleRoot %s differs from the attested %s',
                                         b.merkle_root, b.attested_merkle_root)
                             ELSE nweb.submission_mismatch(b.cid, b.dataset_type) END;
            IF mismatch IS NOT NULL THEN
                DELETE FROM nweb.scanprint AS s WHERE s.bundle_cid = b.cid;
                UPDATE nweb.bundles AS x
                   SET status = 'invalid', reason = 'CID_HASH_MISMATCH', verified_at = NULL, checked_at = now(),
                       reason_detail = mismatch
                 WHERE x.cid = b.cid;
            END IF;
        END IF;
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

-- A rollback also removes the bundles only the reverted submissions attested,
-- and the rejected logs.
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

COMMENT ON FUNCTION nweb.chain_rollback(chain_id bigint, first_reverted_block bigint) IS 'A reorg reverted first_reverted_block and everything after it on this chain: delete those attestations (their challenges follow), the bundles (with their scanprint rows) that only they attested, the stake events (the stakes of their addresses are derived again), the rejected logs, their block hashes, and move every checkpoint of the chain back before it. Returns the number of attestations deleted. Runs in the caller''s transaction';

-- An executed slash is 'slashed', no longer 'slashable'.
CREATE OR REPLACE FUNCTION nweb.challenge_states(as_of timestamp with time zone DEFAULT now()) RETURNS TABLE(challenge_id text, cid text, reason_code text, challenger text, subject text, filed_at timestamp with time zone, grace_ends_at timestamp with time zone, resolved_at timestamp with time zone, state text, subject_stake numeric, slash_amount numeric, challenger_bounty numeric, burned numeric)
    LANGUAGE sql STABLE
    AS $$
    SELECT c.challenge_id, c.cid, c.reason_code, c.challenger, sub.submitter, c.filed_at, c.grace_ends_at,
           r.resolved_at, s.state, st.stake,
           CASE WHEN s.state = 'slashable' THEN sp.slashed END,
           CASE WHEN s.state = 'slashable' THEN sp.to_challenger END,
           CASE WHEN s.state = 'slashable' THEN sp.burned END
      FROM nweb.challenges AS c
      LEFT JOIN LATERAL nweb.first_submission(c.cid) AS sub ON true
      LEFT JOIN LATERAL (
            SELECT min(a.block_time) AS resolved_at
              FROM nweb.attestations AS a
             WHERE a.kind = 'Resolution'
               AND lower(a.payload ->> 'challengeId') = c.challenge_id
               AND a.attester = sub.submitter
               AND a.payload -> 'slash' = 'false'::jsonb
               AND a.block_time <= challenge_states.as_of) AS r ON true
      -- The SlashRouter attests a Resolution with slash=true when slash() ran: the
      -- slash is executed and cannot be executed again.
      LEFT JOIN LATERAL (
            SELECT min(a.block_time) AS slashed_at
              FROM nweb.attestations AS a
             WHERE a.kind = 'Resolution'
               AND lower(a.payload ->> 'challengeId') = c.challenge_id
               AND a.payload -> 'slash' = 'true'::jsonb
               AND a.block_time <= challenge_states.as_of) AS x ON true
      CROSS JOIN LATERAL (
            SELECT CASE WHEN y.state = 'slashable' AND x.slashed_at IS NOT NULL THEN 'slashed' ELSE y.state END AS state
              FROM (SELECT @extschema@.nweb_challenge_state(c.grace_ends_at, r.resolved_at, challenge_states.as_of) AS state) AS y) AS s
      LEFT JOIN nweb.stakes AS st ON st.address = sub.submitter
      LEFT JOIN LATERAL @extschema@.nweb_slash_split(coalesce(st.stake, 0)) AS sp ON true
     WHERE c.filed_at <= challenge_states.as_of;
$$;

COMMENT ON FUNCTION nweb.challenge_states(as_of timestamp with time zone) IS 'Every challenge filed by as_of: in_grace, resolved (a Resolution with slash=false from the challenged submitter, the attester of the CID''s first ScanSubmission, within [filed_at, grace_ends_at]), slashable (grace over, no valid Resolution; 10 % of the subject''s stake, half to the challenger, half burned) or slashed (slashable, and a Resolution with slash=true of it was attested by as_of: the slash was executed; no amounts)';

COMMENT ON VIEW nweb.v_slashable_challenges IS 'Challenges whose grace ended without a valid Resolution and whose slash has not been executed yet: slashable now, with the amounts';

-- A vantage only the submitter vouches for counts as common.
CREATE OR REPLACE FUNCTION nweb.reputation_at(as_of timestamp with time zone DEFAULT now()) RETURNS TABLE(address text, reputation double precision, rep_factor numeric, submissions bigint)
    LANGUAGE sql STABLE
    AS $$
    WITH failed AS (
        SELECT DISTINCT c.cid FROM nweb.challenge_states(reputation_at.as_of) AS c WHERE c.state <> 'resolved'
    ), counted AS (
        SELECT DISTINCT ON (s.submitter, s.cid)
               s.submitter, s.cid, s.cost_units, s.grace_ends_at
          FROM nweb.v_submissions AS s
         WHERE s.status = 'verified'
           AND s.grace_ends_at < reputation_at.as_of
           AND s.cid NOT IN (SELECT f.cid FROM failed AS f)
         ORDER BY s.submitter, s.cid, s.submitted_at
    )
    -- Every vantage is the submitter's word (attestation and manifest alike), so it
    -- counts as common, share 1 (nweb::rules::UNVERIFIABLE_VANTAGE_SHARE): a made-up
    -- label per submission must not be rare every time (docs/design.md D41).
    SELECT c.submitter,
           sum(@extschema@.nweb_reputation_points(c.cost_units, 1.0,
                   extract(epoch FROM reputation_at.as_of - c.grace_ends_at)::double precision)),
           @extschema@.nweb_rep_factor(sum(@extschema@.nweb_reputation_points(c.cost_units, 1.0,
                   extract(epoch FROM reputation_at.as_of - c.grace_ends_at)::double precision))),
           count(*)
      FROM counted AS c
     GROUP BY c.submitter;
$$;

COMMENT ON FUNCTION nweb.reputation_at(as_of timestamp with time zone) IS 'Reputation = sum over the address''s verified submissions whose 72 h grace ended before as_of and that have no challenge in grace or slashable, of cost_units * 2/(1 + vantage_share) * 2^(-(as_of - grace end)/30 days). cost_units weighs dataset complexity (masscan 1, nmap top-1000 2, full 5, diff/enrich 1); every vantage counts as common (vantage_share 1), as nothing but the submitter vouches for it; the 30-day half-life prefers recent work. repFactor = floor6(rep / (rep + 10))';

-- The Analyst UI (xray-loader serve) searches scanprint by service and by
-- product prefix; without these a filter on a value few rows have scans the
-- table (1.3-1.6 s on a million rows, against 4-6 ms with them).
CREATE INDEX scanprint_service ON nweb.scanprint USING btree (lower(service));

CREATE INDEX scanprint_product_prefix ON nweb.scanprint USING btree (lower(product) text_pattern_ops);

COMMENT ON INDEX nweb.scanprint_service IS 'The Analyst UI''s search by service (case-insensitive)';

COMMENT ON INDEX nweb.scanprint_product_prefix IS 'The Analyst UI''s search by product prefix (case-insensitive)';
