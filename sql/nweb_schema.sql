-- nweb inside the database (schema `nweb`): verified public scan bundles, their
-- typed scanprint rows, chain attestations, challenges, stakes, the MVP rules and
-- the bridge to xray. See the architecture spec and design D6, D7 and "Scale-out".
--
-- This file is self-contained: it declares its own C functions (xray_pg/src/nweb.rs,
-- `sql = false` there), so the same statements can run inside CREATE EXTENSION or
-- be added to an upgrade script. Every statement creates something new.
--
-- Conventions:
-- - Pure functions (Merkle, UnixFS/CAR, verdicts, rule arithmetic) are C functions in
--   the extension schema, IMMUTABLE and callable unqualified.
-- - Functions that write are plpgsql in schema nweb, SECURITY DEFINER with a fixed
--   search_path, and qualify everything, because the loader runs them with few rights.
-- - Addresses and hashes are stored as lowercase 0x-hex text; the loader lowercases.
-- - Scale-out: nweb.scanprint is keyed and indexed to be distributed by `ip` on
--   Citus; the other tables are small and can be reference tables.

CREATE SCHEMA nweb;
COMMENT ON SCHEMA nweb IS 'nweb: verified public scan bundles (IPFS), their scanprint rows, chain attestations, challenges, stakes and the MVP rules';

------------------------------------------------------------------------------
-- C functions (Rust: xray_pg/src/nweb.rs, xray_core/src/nweb/).
------------------------------------------------------------------------------
CREATE FUNCTION nweb_merkle_root(jsonl text) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_merkle_root_jsonl_wrapper';
COMMENT ON FUNCTION nweb_merkle_root(text) IS 'RFC 6962 Merkle root (0x + 64 hex) of a scanprint file: every non-blank line must be a JSON object and is hashed in RFC 8785 (JCS) form (design D6). A bad line is an ERROR naming it: 22P02 malformed JSON, 22023 not an object';

CREATE FUNCTION nweb_merkle_root(leaves bytea[]) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_merkle_root_leaves_wrapper';
COMMENT ON FUNCTION nweb_merkle_root(bytea[]) IS 'RFC 6962 Merkle root of raw leaves (SHA-256, 0x00/0x01 prefixes; empty tree = SHA-256 of nothing), for the Certificate Transparency test vectors';

CREATE FUNCTION nweb_merkle_proof(jsonl text, line integer) RETURNS jsonb
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_merkle_proof_wrapper';
COMMENT ON FUNCTION nweb_merkle_proof(text, integer) IS 'Inclusion proof for the scanprint line with this 1-based file line number: {leaf_index, tree_size, path[], line, leaf (canonical text), root}';

CREATE FUNCTION nweb_merkle_verify(root text, line text, proof jsonb) RETURNS boolean
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_merkle_verify_wrapper';
COMMENT ON FUNCTION nweb_merkle_verify(text, text, jsonb) IS 'True when the scanprint line (any JSON formatting) is the proof''s leaf under root; the challenger''s check for one line';

CREATE FUNCTION nweb_scanprint_from_nmap(xml text, vantage text) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_scanprint_from_nmap_wrapper';
COMMENT ON FUNCTION nweb_scanprint_from_nmap(text, text) IS 'scanprint v0 JSONL (sorted, JCS) from nmap -oX output; unreadable records become WARNINGs';

CREATE FUNCTION nweb_unixfs_cid(paths text[], contents bytea[]) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_unixfs_cid_wrapper';
COMMENT ON FUNCTION nweb_unixfs_cid(text[], bytea[]) IS 'CIDv1 of the directory that ipfs add --cid-version=1 --raw-leaves --wrap-with-directory makes of these files (design D7: 256 KiB raw leaves, balanced, 174 links, sha2-256)';

CREATE FUNCTION nweb_unixfs_file_cid(content bytea) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_unixfs_file_cid_wrapper';
COMMENT ON FUNCTION nweb_unixfs_file_cid(bytea) IS 'CIDv1 of one file as ipfs add --cid-version=1 --raw-leaves computes it';

CREATE FUNCTION nweb_car_export(paths text[], contents bytea[]) RETURNS bytea
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_car_export_wrapper';
COMMENT ON FUNCTION nweb_car_export(text[], bytea[]) IS 'CARv1 of the wrapped directory of these files: header with the root, then each block once, depth-first';

CREATE FUNCTION nweb_car_files(car bytea, expected_root text DEFAULT NULL)
RETURNS TABLE (path text, size bigint, sha256 text, content bytea)
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_car_files_wrapper';
COMMENT ON FUNCTION nweb_car_files(bytea, text) IS 'Files of a bundle CAR. Every block is hashed against its CID and every block under the root is required; a corrupt, missing or truncated block is an ERROR (22P03) naming its CID';

CREATE FUNCTION nweb_car_bundle(car bytea, expected_root text DEFAULT NULL)
RETURNS TABLE (cid text, manifest text, manifest_sha256 text, scanprint text, file_sha256 jsonb,
               bundle_bytes bigint, unreadable text)
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_car_bundle_wrapper';
COMMENT ON FUNCTION nweb_car_bundle(bytea, text) IS 'A verified bundle CAR split for nweb.ingest_car: root CID, manifest and scanprint text, SHA-256 of every file';

CREATE FUNCTION nweb_cid_canonical(cid text) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_cid_canonical_wrapper';
COMMENT ON FUNCTION nweb_cid_canonical(text) IS 'Canonical text of a CID (CIDv1: lowercase base32), NULL if the text is not a CID';

CREATE FUNCTION nweb_json_or_null(text text) RETURNS jsonb
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_json_or_null_wrapper';
COMMENT ON FUNCTION nweb_json_or_null(text) IS 'The text as jsonb when it is one JSON document without duplicate keys or NUL, else NULL';

CREATE FUNCTION nweb_bundle_verdict(manifest text, scanprint text, artifacts jsonb,
                                    attested_merkle_root text DEFAULT NULL, unreadable text DEFAULT NULL)
RETURNS jsonb
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_bundle_verdict_wrapper';
COMMENT ON FUNCTION nweb_bundle_verdict(text, text, jsonb, text, text) IS 'Pure verdict on a bundle: {status verified|invalid, reason, reason_detail, manifest{...}, computed_merkle_root, scanprint_lines, cost_kind, cost_units}. artifacts maps every file path of the bundle to the SHA-256 hex of its bytes';

CREATE FUNCTION nweb_scanprint_rows(jsonl text)
RETURNS TABLE (line_no integer, ts timestamptz, ip inet, port integer, proto text, state text,
               service text, product text, version text, banner_sha256 text, cert_fpr text, tls_ja3 text,
               latency_ms integer, tool text, tool_version text, options text, vantage text)
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_scanprint_rows_wrapper';
COMMENT ON FUNCTION nweb_scanprint_rows(text) IS 'One typed row per scanprint line, read lazily; a bad line is an ERROR naming it';

CREATE FUNCTION nweb_quota_units(stake numeric, rep_factor numeric) RETURNS bigint
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_quota_units_wrapper';
COMMENT ON FUNCTION nweb_quota_units(numeric, numeric) IS 'quotaUnits = floor(sqrt(stake) * (1 + repFactor)), computed exactly; 0 below the minimum stake of 100 GST';

CREATE FUNCTION nweb_submission_cost(kind text) RETURNS integer
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_submission_cost_wrapper';
COMMENT ON FUNCTION nweb_submission_cost(text) IS 'Quota units per submission: masscan-quick 1, nmap-top1k 2, nmap-full 5, diff/enrich (or diff, enrich) 1';

CREATE FUNCTION nweb_cost_kind(dataset_type text, options text DEFAULT NULL) RETURNS text
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_cost_kind_wrapper';
COMMENT ON FUNCTION nweb_cost_kind(text, text) IS 'Pricing class of a bundle: masscan -> masscan-quick; diff, enrich -> diff/enrich; nmap -> nmap-full when the options scan all 65535 ports (-p-, -p 1-65535) or more than the top 1000, else nmap-top1k';

CREATE FUNCTION nweb_slash_split(stake numeric) RETURNS TABLE (slashed numeric, to_challenger numeric, burned numeric)
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_slash_split_wrapper';
COMMENT ON FUNCTION nweb_slash_split(numeric) IS 'Slash 10 % of the stake: 50 % to the challenger, the rest burned; exact decimal arithmetic, the parts always add up';

CREATE FUNCTION nweb_grace_ends_at(filed_at timestamptz) RETURNS timestamptz
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_grace_ends_at_wrapper';
COMMENT ON FUNCTION nweb_grace_ends_at(timestamptz) IS 'filed_at + 72 h, the end of a grace period';

CREATE FUNCTION nweb_challenge_state(grace_ends_at timestamptz, first_resolution_at timestamptz, as_of timestamptz)
RETURNS text
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_challenge_state_wrapper';
COMMENT ON FUNCTION nweb_challenge_state(timestamptz, timestamptz, timestamptz) IS 'in_grace | resolved | slashable. Grace is the closed interval [filed_at, grace_ends_at]: a Resolution at grace_ends_at counts, one after it does not, and slashing starts strictly after grace_ends_at';

CREATE FUNCTION nweb_quota_window_start(as_of timestamptz) RETURNS timestamptz
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_quota_window_start_wrapper';
COMMENT ON FUNCTION nweb_quota_window_start(timestamptz) IS 'Start of the rolling 24 h quota window ending at as_of (the spec leaves the period open; a day is our choice)';

CREATE FUNCTION nweb_reputation_points(cost_units integer, vantage_share double precision, age_seconds double precision)
RETURNS double precision
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_reputation_points_wrapper';
COMMENT ON FUNCTION nweb_reputation_points(integer, double precision, double precision) IS 'Reputation of one submission: cost_units * 2/(1 + vantage_share) * 2^(-age/30 days); age counts from the end of the submission''s grace period, and is 0 before it';

CREATE FUNCTION nweb_rep_factor(reputation double precision) RETURNS numeric
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_rep_factor_wrapper';
COMMENT ON FUNCTION nweb_rep_factor(double precision) IS 'repFactor = floor to 6 decimals of reputation / (reputation + 10), in [0, 1): 10 points give half the maximum quota bonus';

CREATE FUNCTION nweb_bridge_payload(tenant_id uuid, bundle jsonb, assets jsonb, rows jsonb) RETURNS jsonb
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_bridge_payload_wrapper';
COMMENT ON FUNCTION nweb_bridge_payload(uuid, jsonb, jsonb, jsonb) IS 'Pure part of nweb.bridge_payload: an xray 1.2 scan payload from bundle metadata, assets and scanprint rows';

------------------------------------------------------------------------------
-- Tables.
------------------------------------------------------------------------------
CREATE TABLE nweb.bundles (
    cid                  text        PRIMARY KEY CHECK (cid ~ '^[A-Za-z0-9]+$'),
    status               text        NOT NULL CHECK (status IN ('verified', 'invalid')),
    reason               text        CHECK (reason IN ('CID_UNAVAILABLE', 'CID_HASH_MISMATCH', 'FORMAT_INVALID')),
    reason_detail        text,
    manifest             jsonb,
    manifest_sha256      text        CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
    merkle_root          text        CHECK (merkle_root ~ '^0x[0-9a-f]{64}$'),
    computed_merkle_root text        CHECK (computed_merkle_root ~ '^0x[0-9a-f]{64}$'),
    attested_merkle_root text        CHECK (attested_merkle_root ~ '^0x[0-9a-f]{64}$'),
    submitter            text        CHECK (submitter ~ '^0x[0-9a-f]{40}$'),
    namespace            text,
    dataset_type         text,
    tool                 text,
    tool_version         text,
    vantage              text,
    target_spec_cid      text,
    cost_kind            text        CHECK (cost_kind IN ('masscan-quick', 'nmap-top1k', 'nmap-full', 'diff/enrich')),
    cost_units           integer     CHECK (cost_units > 0),
    scan_started_at      timestamptz,
    scan_finished_at     timestamptz,
    scanprint_lines      integer     CHECK (scanprint_lines >= 0),
    scanprint_bytes      bigint      CHECK (scanprint_bytes >= 0),
    bundle_bytes         bigint      CHECK (bundle_bytes >= 0),
    first_seen_at        timestamptz NOT NULL DEFAULT now(),
    checked_at           timestamptz,
    verified_at          timestamptz,
    CONSTRAINT bundles_reason_iff_invalid CHECK ((status = 'invalid') = (reason IS NOT NULL)),
    CONSTRAINT bundles_verified_has_manifest CHECK (status <> 'verified' OR (manifest IS NOT NULL AND merkle_root IS NOT NULL))
);
CREATE INDEX bundles_status ON nweb.bundles (status, first_seen_at);
CREATE INDEX bundles_submitter ON nweb.bundles (submitter);
COMMENT ON TABLE nweb.bundles IS 'One row per checked bundle CID: verified, or invalid with a reason code. Written by nweb.ingest_bundle, nweb.ingest_car and nweb.mark_unavailable. CIDs that are attested but not checked yet show as pending in nweb.v_bundles';
COMMENT ON COLUMN nweb.bundles.status IS 'verified or invalid; a CID attested but not checked yet has no row here and is pending in nweb.v_bundles';
COMMENT ON COLUMN nweb.bundles.reason IS 'FORMAT_INVALID: manifest or scanprint breaks the format, or a listed file is absent. CID_HASH_MISMATCH: Merkle root, attested root or an artifact SHA-256 differs from what was committed. CID_UNAVAILABLE: could not be fetched (the only reason a later ingest may overturn)';
COMMENT ON COLUMN nweb.bundles.merkle_root IS 'manifest.scanprint.merkleRoot; for a verified bundle equal to computed_merkle_root (and to attested_merkle_root when known)';
COMMENT ON COLUMN nweb.bundles.submitter IS 'Attester of the first ScanSubmission naming this CID (known when checked, or filled in when the attestation arrives later)';
COMMENT ON COLUMN nweb.bundles.cost_kind IS 'Pricing class: the manifest''s profile, else derived from datasetType and the scan options (nweb_cost_kind)';

CREATE TABLE nweb.scanprint (
    ip            inet        NOT NULL,
    bundle_cid    text        NOT NULL REFERENCES nweb.bundles (cid) ON DELETE CASCADE,
    line_no       integer     NOT NULL CHECK (line_no > 0),
    ts            timestamptz NOT NULL,
    port          integer     NOT NULL CHECK (port BETWEEN 0 AND 65535),
    proto         text        NOT NULL,
    state         text        NOT NULL,
    service       text,
    product       text,
    version       text,
    banner_sha256 text,
    cert_fpr      text,
    tls_ja3       text,
    latency_ms    integer     CHECK (latency_ms >= 0),
    tool          text        NOT NULL,
    tool_version  text,
    options       text,
    vantage       text        NOT NULL,
    -- The distribution column leads every unique key (Citus).
    PRIMARY KEY (ip, bundle_cid, line_no)
);
CREATE INDEX scanprint_port_state ON nweb.scanprint (port, state) INCLUDE (ip, ts);
CREATE INDEX scanprint_ip_ts ON nweb.scanprint (ip, ts);
CREATE INDEX scanprint_bundle ON nweb.scanprint (bundle_cid);
COMMENT ON TABLE nweb.scanprint IS 'Typed scanprint v0 lines of verified bundles only. Loaded in one statement with the verdict; removed with the bundle or when it turns out invalid. Distributable by ip';
COMMENT ON INDEX nweb.scanprint_port_state IS 'Who has port X open';
COMMENT ON INDEX nweb.scanprint_ip_ts IS 'What changed on this IP';

CREATE TABLE nweb.attestations (
    attestation_id bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('ScanSubmission', 'AvailabilityCheck', 'Challenge', 'Resolution')),
    chain_id       bigint      NOT NULL,
    tx_hash        text        NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    log_index      integer     NOT NULL CHECK (log_index >= 0),
    block_number   bigint      NOT NULL CHECK (block_number >= 0),
    block_hash     text        NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    block_time     timestamptz NOT NULL,
    uid            text        CHECK (uid ~ '^0x[0-9a-f]{64}$'),
    attester       text        NOT NULL CHECK (attester ~ '^0x[0-9a-f]{40}$'),
    payload        jsonb       NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    cid            text        GENERATED ALWAYS AS (@extschema@.nweb_cid_canonical(payload ->> 'cid')) STORED,
    inserted_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT attestations_log_unique UNIQUE (chain_id, tx_hash, log_index)
);
CREATE INDEX attestations_kind_cid ON nweb.attestations (kind, cid);
CREATE INDEX attestations_block ON nweb.attestations (chain_id, block_number);
CREATE INDEX attestations_resolution ON nweb.attestations (lower(payload ->> 'challengeId')) WHERE kind = 'Resolution';
COMMENT ON TABLE nweb.attestations IS 'Decoded Attestor events, one per log. Insert with ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING; delete rows at or above a reorged block (challenges follow). A malformed payload is stored but has no effect (WARNING), so chain data never wedges the loader';
COMMENT ON COLUMN nweb.attestations.payload IS 'The schema''s fields by their spec names, e.g. ScanSubmission {cid, merkleRoot, datasetType, ...}, Challenge {cid, jobId, reasonCode, evidenceCid}, Resolution {challengeId, slash, newCid}';
COMMENT ON COLUMN nweb.attestations.uid IS 'Attestation UID; a Challenge''s uid is the challengeId its Resolution names';
COMMENT ON COLUMN nweb.attestations.cid IS 'payload.cid in canonical form, NULL when absent or not a CID';

CREATE TABLE nweb.challenges (
    challenge_id   text        PRIMARY KEY CHECK (challenge_id ~ '^0x[0-9a-f]{64}$'),
    attestation_id bigint      UNIQUE REFERENCES nweb.attestations (attestation_id) ON DELETE CASCADE,
    cid            text        NOT NULL,
    job_id         text,
    reason_code    text        NOT NULL CHECK (reason_code IN ('CID_UNAVAILABLE', 'CID_HASH_MISMATCH', 'FORMAT_INVALID')),
    evidence_cid   text,
    challenger     text        NOT NULL CHECK (challenger ~ '^0x[0-9a-f]{40}$'),
    filed_at       timestamptz NOT NULL,
    grace_ends_at  timestamptz NOT NULL GENERATED ALWAYS AS (@extschema@.nweb_grace_ends_at(filed_at)) STORED
);
CREATE INDEX challenges_cid ON nweb.challenges (cid);
COMMENT ON TABLE nweb.challenges IS 'Challenges against bundles, derived from Challenge attestations by their trigger: removed with them on a reorg, rebuilt from them on restore (so not dumped). State, resolution and slash amounts: nweb.challenge_states(as_of)';
COMMENT ON COLUMN nweb.challenges.grace_ends_at IS 'filed_at (block time) + 72 h';

CREATE TABLE nweb.stakes (
    address          text             PRIMARY KEY CHECK (address ~ '^0x[0-9a-f]{40}$'),
    stake            numeric          NOT NULL DEFAULT 0 CHECK (stake >= 0),
    reputation       double precision NOT NULL DEFAULT 0 CHECK (reputation >= 0),
    reputation_as_of timestamptz,
    updated_at       timestamptz      NOT NULL DEFAULT now()
);
COMMENT ON TABLE nweb.stakes IS 'Staked GST per address (from StakeRegistry) and its reputation (nweb.refresh_reputation)';
COMMENT ON COLUMN nweb.stakes.stake IS 'GST, exact decimal (not wei)';

------------------------------------------------------------------------------
-- Ingest: verification in one transaction.
------------------------------------------------------------------------------
-- The first ScanSubmission of a CID: who is answerable for it and what root was
-- promised. Read from the attestations, never copied into other tables by a
-- trigger, so a restore (which replays attestation inserts) cannot collide.
CREATE FUNCTION nweb.first_submission(cid text)
RETURNS TABLE (submitter text, attested_merkle_root text, submitted_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT a.attester,
           CASE WHEN lower(a.payload ->> 'merkleRoot') ~ '^0x[0-9a-f]{64}$' THEN lower(a.payload ->> 'merkleRoot') END,
           a.block_time
      FROM nweb.attestations AS a
     WHERE a.kind = 'ScanSubmission' AND a.cid = first_submission.cid
     ORDER BY a.block_time, a.attestation_id
     LIMIT 1;
$$;
COMMENT ON FUNCTION nweb.first_submission(text) IS 'Attester, attested merkleRoot and time of the first ScanSubmission naming this (canonical) CID';

-- Records a verdict and, for a verified bundle, its scanprint rows with one
-- set-based statement. A final verdict (verified, CID_HASH_MISMATCH,
-- FORMAT_INVALID) is kept: the same CID again returns it and writes nothing. Only
-- new and CID_UNAVAILABLE bundles are (re)verified.
CREATE FUNCTION nweb.store_bundle(p_cid text, p_manifest text, p_scanprint text, p_files jsonb,
                                  p_manifest_sha256 text, p_bundle_bytes bigint, p_unreadable text)
RETURNS nweb.bundles
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
    v := @extschema@.nweb_bundle_verdict(p_manifest, p_scanprint, p_files, sub.attested_merkle_root, p_unreadable);
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
COMMENT ON FUNCTION nweb.store_bundle(text, text, text, jsonb, text, bigint, text) IS 'Internal: record a verdict (checked against the first ScanSubmission''s root, when there is one) and load the rows of a verified bundle; use nweb.ingest_bundle or nweb.ingest_car';

CREATE FUNCTION nweb.ingest_bundle(cid text, manifest jsonb, scanprint text, artifacts jsonb)
RETURNS nweb.bundles
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM nweb.store_bundle(ingest_bundle.cid, ingest_bundle.manifest::text, ingest_bundle.scanprint,
                                    ingest_bundle.artifacts, NULL, NULL, NULL);
$$;
COMMENT ON FUNCTION nweb.ingest_bundle(text, jsonb, text, jsonb) IS 'Verify a fetched bundle and load it, in the caller''s transaction: manifest (nweb.bundle.v1, required fields), Merkle root against manifest.scanprint.merkleRoot (and the attested root), artifact SHA-256s; then the typed scanprint rows, or the bundle is marked invalid with its reason and nothing is loaded. artifacts: {"<path>": "<sha256 hex of the bytes>"} for every file the bundle holds. Idempotent per CID';

CREATE FUNCTION nweb.ingest_car(car bytea, cid text DEFAULT NULL)
RETURNS nweb.bundles
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.*
      FROM @extschema@.nweb_car_bundle(ingest_car.car, ingest_car.cid) AS c,
           nweb.store_bundle(c.cid, c.manifest, c.scanprint, c.file_sha256, c.manifest_sha256,
                             c.bundle_bytes, c.unreadable) AS s;
$$;
COMMENT ON FUNCTION nweb.ingest_car(bytea, text) IS 'nweb.ingest_bundle for a CAR fetched from a trustless gateway (design D7): every block is verified against its CID and the bundle''s own CID is the root asked for (cid) or the CAR''s single root. A corrupt or truncated CAR is an ERROR naming the CID (22P03) and records nothing: it says the gateway failed, not the bundle';

CREATE FUNCTION nweb.mark_unavailable(cid text, detail text DEFAULT NULL)
RETURNS nweb.bundles
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
     WHERE x.reason = 'CID_UNAVAILABLE';
    SELECT * INTO b FROM nweb.bundles AS x WHERE x.cid = v_cid;
    RETURN b;
END
$$;
COMMENT ON FUNCTION nweb.mark_unavailable(text, text) IS 'Record that a bundle could not be fetched (CID_UNAVAILABLE). A final verdict is left as it is';

------------------------------------------------------------------------------
-- Attestations drive bundles and challenges.
------------------------------------------------------------------------------
CREATE FUNCTION nweb.attestation_applied() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p    jsonb := NEW.payload;
    b    nweb.bundles;
    sub  record;
    what text := format('%s attestation %s/%s', NEW.kind, NEW.tx_hash, NEW.log_index);
BEGIN
    -- Only UPDATEs of bundles and inserts of derived (undumped) challenges, so that
    -- replaying attestations during a restore cannot collide with restored rows.
    IF NEW.kind = 'ScanSubmission' THEN
        IF NEW.cid IS NULL THEN
            RAISE WARNING '%: payload.cid % is not a CID; nothing to fetch', what, coalesce(p ->> 'cid', 'NULL');
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
        IF b.status = 'verified' AND b.attested_merkle_root IS NOT NULL
           AND b.attested_merkle_root IS DISTINCT FROM b.merkle_root THEN
            DELETE FROM nweb.scanprint AS s WHERE s.bundle_cid = b.cid;
            UPDATE nweb.bundles AS x
               SET status = 'invalid', reason = 'CID_HASH_MISMATCH', verified_at = NULL, checked_at = now(),
                   reason_detail = format('the manifest''s merkleRoot %s differs from the attested %s',
                                          b.merkle_root, b.attested_merkle_root)
             WHERE x.cid = b.cid;
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
$$;
CREATE TRIGGER attestations_apply
    AFTER INSERT ON nweb.attestations
    FOR EACH ROW EXECUTE FUNCTION nweb.attestation_applied();
COMMENT ON FUNCTION nweb.attestation_applied() IS 'AFTER INSERT on nweb.attestations: a ScanSubmission fills in the submitter of a bundle checked before it (and invalidates it when the attested root disagrees), a Challenge becomes a row of nweb.challenges';

------------------------------------------------------------------------------
-- Rules: challenges, reputation, quota (arithmetic in xray_core/src/nweb/rules.rs).
------------------------------------------------------------------------------
CREATE FUNCTION nweb.challenge_states(as_of timestamptz DEFAULT now())
RETURNS TABLE (challenge_id text, cid text, reason_code text, challenger text, subject text,
               filed_at timestamptz, grace_ends_at timestamptz, resolved_at timestamptz, state text,
               subject_stake numeric, slash_amount numeric, challenger_bounty numeric, burned numeric)
LANGUAGE sql STABLE AS $$
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
      CROSS JOIN LATERAL (SELECT @extschema@.nweb_challenge_state(c.grace_ends_at, r.resolved_at, challenge_states.as_of) AS state) AS s
      LEFT JOIN nweb.stakes AS st ON st.address = sub.submitter
      LEFT JOIN LATERAL @extschema@.nweb_slash_split(coalesce(st.stake, 0)) AS sp ON true
     WHERE c.filed_at <= challenge_states.as_of;
$$;
COMMENT ON FUNCTION nweb.challenge_states(timestamptz) IS 'Every challenge filed by as_of: in_grace, resolved (a Resolution with slash=false from the challenged submitter, the attester of the CID''s first ScanSubmission, within [filed_at, grace_ends_at]) or slashable (grace over, no valid Resolution; 10 % of the subject''s stake, half to the challenger, half burned)';

CREATE VIEW nweb.v_challenges AS
SELECT * FROM nweb.challenge_states(now());
COMMENT ON VIEW nweb.v_challenges IS 'nweb.challenge_states as of now';

CREATE VIEW nweb.v_slashable_challenges AS
SELECT * FROM nweb.challenge_states(now()) AS c WHERE c.state = 'slashable' AND c.subject IS NOT NULL;
COMMENT ON VIEW nweb.v_slashable_challenges IS 'Challenges whose grace ended without a valid Resolution: slashable now, with the amounts';

CREATE VIEW nweb.v_submissions AS
SELECT a.attestation_id, a.chain_id, a.tx_hash, a.log_index, a.block_number,
       a.attester                                    AS submitter,
       a.cid,
       a.block_time                                  AS submitted_at,
       @extschema@.nweb_grace_ends_at(a.block_time)  AS grace_ends_at,
       coalesce(b.status, 'pending')::text           AS status,
       coalesce(b.cost_kind, @extschema@.nweb_cost_kind(a.payload ->> 'datasetType'))::text AS cost_kind,
       coalesce(b.cost_units,
                @extschema@.nweb_submission_cost(@extschema@.nweb_cost_kind(a.payload ->> 'datasetType')))::integer AS cost_units,
       b.vantage
  FROM nweb.attestations AS a
  LEFT JOIN nweb.bundles AS b ON b.cid = a.cid
 WHERE a.kind = 'ScanSubmission';
COMMENT ON VIEW nweb.v_submissions IS 'ScanSubmissions with their bundle''s verdict and price (the attested datasetType until the bundle is verified)';

CREATE FUNCTION nweb.reputation_at(as_of timestamptz DEFAULT now())
RETURNS TABLE (address text, reputation double precision, rep_factor numeric, submissions bigint)
LANGUAGE sql STABLE AS $$
    WITH failed AS (
        SELECT DISTINCT c.cid FROM nweb.challenge_states(reputation_at.as_of) AS c WHERE c.state <> 'resolved'
    ), counted AS (
        SELECT DISTINCT ON (s.submitter, s.cid)
               s.submitter, s.cid, s.cost_units, coalesce(s.vantage, '') AS vantage, s.grace_ends_at
          FROM nweb.v_submissions AS s
         WHERE s.status = 'verified'
           AND s.grace_ends_at < reputation_at.as_of
           AND s.cid NOT IN (SELECT f.cid FROM failed AS f)
         ORDER BY s.submitter, s.cid, s.submitted_at
    ), shares AS (
        SELECT c.vantage, count(*)::double precision / sum(count(*)) OVER () AS share
          FROM counted AS c GROUP BY c.vantage
    )
    SELECT c.submitter,
           sum(@extschema@.nweb_reputation_points(c.cost_units, sh.share,
                   extract(epoch FROM reputation_at.as_of - c.grace_ends_at)::double precision)),
           @extschema@.nweb_rep_factor(sum(@extschema@.nweb_reputation_points(c.cost_units, sh.share,
                   extract(epoch FROM reputation_at.as_of - c.grace_ends_at)::double precision))),
           count(*)
      FROM counted AS c JOIN shares AS sh ON sh.vantage = c.vantage
     GROUP BY c.submitter;
$$;
COMMENT ON FUNCTION nweb.reputation_at(timestamptz) IS 'Reputation = sum over the address''s verified submissions whose 72 h grace ended before as_of and that have no challenge in grace or slashable, of cost_units * 2/(1 + vantage_share) * 2^(-(as_of - grace end)/30 days). cost_units weighs dataset complexity (masscan 1, nmap top-1000 2, full 5, diff/enrich 1); vantage_share is the fraction of all counted submissions made from the same vantage (rare vantages count up to 2x); the 30-day half-life prefers recent work. repFactor = floor6(rep / (rep + 10))';

CREATE VIEW nweb.v_reputation AS
SELECT * FROM nweb.reputation_at(now());
COMMENT ON VIEW nweb.v_reputation IS 'nweb.reputation_at as of now';

CREATE FUNCTION nweb.refresh_reputation(as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    WITH r AS (
        SELECT st.address, coalesce(rep.reputation, 0) AS reputation
          FROM nweb.stakes AS st
          LEFT JOIN nweb.reputation_at(refresh_reputation.as_of) AS rep ON rep.address = st.address
        UNION ALL
        SELECT rep.address, rep.reputation
          FROM nweb.reputation_at(refresh_reputation.as_of) AS rep
         WHERE NOT EXISTS (SELECT 1 FROM nweb.stakes AS st WHERE st.address = rep.address)
    )
    INSERT INTO nweb.stakes AS st (address, reputation, reputation_as_of)
    SELECT r.address, r.reputation, refresh_reputation.as_of FROM r
    ON CONFLICT (address) DO UPDATE
       SET reputation = EXCLUDED.reputation, reputation_as_of = EXCLUDED.reputation_as_of, updated_at = now();
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION nweb.refresh_reputation(timestamptz) IS 'Store nweb.reputation_at(as_of) in nweb.stakes.reputation for every address; returns the number of rows written';

CREATE FUNCTION nweb.quota_at(as_of timestamptz DEFAULT now())
RETURNS TABLE (address text, stake numeric, reputation double precision, rep_factor numeric,
               quota_units bigint, used_units bigint, remaining_units bigint, may_submit boolean)
LANGUAGE sql STABLE AS $$
    SELECT st.address, st.stake, st.reputation, f.rep_factor, q.quota_units,
           coalesce(u.used, 0)::bigint,
           greatest(q.quota_units - coalesce(u.used, 0), 0)::bigint,
           q.quota_units > 0
      FROM nweb.stakes AS st
     CROSS JOIN LATERAL (SELECT @extschema@.nweb_rep_factor(st.reputation) AS rep_factor) AS f
     CROSS JOIN LATERAL (SELECT @extschema@.nweb_quota_units(st.stake, f.rep_factor) AS quota_units) AS q
      LEFT JOIN LATERAL (
            SELECT sum(s.cost_units) AS used
              FROM nweb.v_submissions AS s
             WHERE s.submitter = st.address
               AND s.submitted_at > @extschema@.nweb_quota_window_start(quota_at.as_of)
               AND s.submitted_at <= quota_at.as_of
               AND s.status IS DISTINCT FROM 'invalid') AS u ON true;
$$;
COMMENT ON FUNCTION nweb.quota_at(timestamptz) IS 'Quota per address: floor(sqrt(stake) * (1 + repFactor)) units (0 below 100 GST) per rolling 24 h window ending at as_of, minus the cost of submissions in the window (invalid bundles excepted)';

CREATE VIEW nweb.v_quota AS
SELECT * FROM nweb.quota_at(now());
COMMENT ON VIEW nweb.v_quota IS 'nweb.quota_at as of now';

CREATE FUNCTION nweb.can_submit(address text, kind text, as_of timestamptz DEFAULT now())
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT q.may_submit AND q.remaining_units >= @extschema@.nweb_submission_cost(can_submit.kind)
                       FROM nweb.quota_at(can_submit.as_of) AS q
                      WHERE q.address = lower(can_submit.address)), false);
$$;
COMMENT ON FUNCTION nweb.can_submit(text, text, timestamptz) IS 'Whether the address holds at least 100 GST and has quota left for one submission of this kind';

------------------------------------------------------------------------------
-- Bridge to xray.
------------------------------------------------------------------------------
CREATE FUNCTION nweb.bridge_payload(bundle_cid text, tenant_id uuid, assets jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
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
COMMENT ON FUNCTION nweb.bridge_payload(text, uuid, jsonb) IS 'An xray scan payload (schema 1.2, scan_kind scheduled, the bundle''s tool) for the rows of a verified bundle inside the tenant''s assets ([{asset_id, asset_type ip|cidr, asset_value}]), or NULL if none. Its coverage lists only ports the scanprint saw open or closed, so absence never causes a false FIXED; the scan_id is derived from tenant and CID, so bridging twice is a duplicate. INSERT it into xray.scan_results';

------------------------------------------------------------------------------
-- Views for people and BI tools (explicit types).
------------------------------------------------------------------------------
CREATE VIEW nweb.v_bundles AS
SELECT b.cid::text, b.status::text, b.reason::text, b.reason_detail::text,
       b.namespace::text, b.dataset_type::text, b.tool::text, b.tool_version::text, b.vantage::text,
       b.cost_kind::text, b.cost_units::integer, b.submitter::text,
       b.merkle_root::text, b.attested_merkle_root::text, b.scan_started_at::timestamptz, b.scan_finished_at::timestamptz,
       b.scanprint_lines::integer, b.scanprint_bytes::bigint, b.bundle_bytes::bigint,
       b.first_seen_at::timestamptz, b.checked_at::timestamptz, b.verified_at::timestamptz
  FROM nweb.bundles AS b
UNION ALL
SELECT s.cid::text, 'pending'::text, NULL::text, NULL::text,
       NULL::text, s.payload ->> 'datasetType', NULL::text, NULL::text, NULL::text,
       @extschema@.nweb_cost_kind(s.payload ->> 'datasetType'), NULL::integer, s.attester::text,
       NULL::text, lower(s.payload ->> 'merkleRoot'), NULL::timestamptz, NULL::timestamptz,
       NULL::integer, NULL::bigint, NULL::bigint,
       s.block_time::timestamptz, NULL::timestamptz, NULL::timestamptz
  FROM (SELECT DISTINCT ON (a.cid) a.cid, a.attester, a.payload, a.block_time
          FROM nweb.attestations AS a
         WHERE a.kind = 'ScanSubmission' AND a.cid IS NOT NULL
         ORDER BY a.cid, a.block_time, a.attestation_id) AS s
 WHERE NOT EXISTS (SELECT 1 FROM nweb.bundles AS b WHERE b.cid = s.cid);
COMMENT ON VIEW nweb.v_bundles IS 'Every bundle without its manifest document: checked ones from nweb.bundles, and attested CIDs not checked yet as pending (what the indexer should fetch)';

CREATE VIEW nweb.v_port_latest AS
SELECT DISTINCT ON (s.ip, s.proto, s.port)
       s.ip::inet, s.proto::text, s.port::integer, s.state::text, s.service::text, s.product::text,
       s.version::text, s.ts::timestamptz AS seen_at, s.vantage::text, s.bundle_cid::text
  FROM nweb.scanprint AS s
 ORDER BY s.ip, s.proto, s.port, s.ts DESC, s.bundle_cid;
COMMENT ON VIEW nweb.v_port_latest IS 'The newest verified observation of every (ip, proto, port)';

CREATE VIEW nweb.v_open_ports AS
SELECT * FROM nweb.v_port_latest AS p WHERE p.state = 'open';
COMMENT ON VIEW nweb.v_open_ports IS 'Who has port X open now: SELECT ip FROM nweb.v_open_ports WHERE port = 3389';

CREATE VIEW nweb.v_port_changes AS
SELECT x.ip, x.proto, x.port, x.seen_at, x.state, x.previous_state, x.service, x.previous_service,
       x.product, x.version, x.vantage, x.bundle_cid
  FROM (SELECT s.ip::inet, s.proto::text, s.port::integer, s.ts::timestamptz AS seen_at, s.state::text,
               lag(s.state) OVER w AS previous_state, s.service::text, lag(s.service) OVER w AS previous_service,
               s.product::text, s.version::text, s.vantage::text, s.bundle_cid::text
          FROM nweb.scanprint AS s
        WINDOW w AS (PARTITION BY s.ip, s.proto, s.port ORDER BY s.ts, s.bundle_cid, s.line_no)) AS x
 WHERE x.previous_state IS DISTINCT FROM x.state OR x.previous_service IS DISTINCT FROM x.service;
COMMENT ON VIEW nweb.v_port_changes IS 'What changed on this IP: every first sighting and every change of state or service per (ip, proto, port), oldest first';

------------------------------------------------------------------------------
-- Privileges (for the roles of this release, where they exist).
------------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION nweb.store_bundle(text, text, text, jsonb, text, bigint, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nweb.ingest_bundle(text, jsonb, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nweb.ingest_car(bytea, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nweb.mark_unavailable(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nweb.refresh_reputation(timestamptz) FROM PUBLIC;
DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'xray_reader') THEN
        GRANT USAGE ON SCHEMA nweb TO xray_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA nweb TO xray_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'xray_ingest') THEN
        GRANT USAGE ON SCHEMA nweb TO xray_ingest;
        GRANT INSERT, DELETE ON nweb.attestations TO xray_ingest;
        GRANT INSERT, UPDATE ON nweb.stakes TO xray_ingest;
        GRANT EXECUTE ON FUNCTION nweb.ingest_bundle(text, jsonb, text, jsonb), nweb.ingest_car(bytea, text),
                                  nweb.mark_unavailable(text, text), nweb.refresh_reputation(timestamptz)
              TO xray_ingest;
    END IF;
END
$grants$;

------------------------------------------------------------------------------
-- pg_dump: extension tables are dumped only when registered.
------------------------------------------------------------------------------
DO $dump$
DECLARE
    t text;
BEGIN
    -- nweb.challenges is left out on purpose: restoring nweb.attestations rebuilds it.
    FOREACH t IN ARRAY ARRAY['nweb.bundles', 'nweb.scanprint', 'nweb.attestations', 'nweb.stakes',
                             pg_catalog.pg_get_serial_sequence('nweb.attestations', 'attestation_id')]
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
    END LOOP;
END
$dump$;
