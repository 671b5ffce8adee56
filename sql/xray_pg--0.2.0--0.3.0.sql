-- xray_pg 0.2.0 -> 0.3.0: the chain indexer's bookkeeping (docs/design.md D8) and the slasher's
-- availability probes, for `xray-loader tail` and `xray-loader check`.
--
-- - nweb.chain_checkpoints: the last block whose logs are all in nweb.attestations, per
--   (chain, contract). The loader updates it in the same transaction as the rows, so a
--   crash anywhere loses nothing and duplicates nothing.
-- - nweb.chain_blocks: block hashes of the unfinalised window. A block hash commits to
--   its ancestors, so the checkpoint's hash detects any reorg below it; the window finds
--   the fork point.
-- - nweb.chain_rollback: removes what a reorg reverted, in the caller's transaction.
-- - nweb.availability_checks: one row per probe of a CID across the configured sources
--   (the AvailabilityCheck schema's fields, plus each source's outcome).
-- Plain tables, no triggers: the loader talks to them with plain SQL.

------------------------------------------------------------------------------
-- Chain indexer state (docs/design.md D8).
------------------------------------------------------------------------------
CREATE TABLE nweb.chain_checkpoints (
    chain_id        bigint      NOT NULL CHECK (chain_id > 0),
    contract        text        NOT NULL CHECK (contract ~ '^0x[0-9a-f]{40}$'),
    start_block     bigint      NOT NULL CHECK (start_block >= 0),
    last_block      bigint      NOT NULL,
    last_block_hash text        CHECK (last_block_hash ~ '^0x[0-9a-f]{64}$'),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, contract),
    CONSTRAINT chain_checkpoints_order CHECK (last_block >= start_block - 1)
);
COMMENT ON TABLE nweb.chain_checkpoints IS 'Per (chain_id, contract): every log of the contract up to last_block is in nweb.attestations. Written in the same transaction as those rows; lowered by nweb.chain_rollback';
COMMENT ON COLUMN nweb.chain_checkpoints.last_block IS 'Last block fully indexed; start_block - 1 before the first batch';
COMMENT ON COLUMN nweb.chain_checkpoints.last_block_hash IS 'Hash of last_block when indexed; a different canonical hash means a reorg. NULL before the first batch, or after a rollback to a block whose hash was not kept';

CREATE TABLE nweb.chain_blocks (
    chain_id     bigint NOT NULL CHECK (chain_id > 0),
    block_number bigint NOT NULL CHECK (block_number >= 0),
    block_hash   text   NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    parent_hash  text   CHECK (parent_hash ~ '^0x[0-9a-f]{64}$'),
    block_time   timestamptz,
    PRIMARY KEY (chain_id, block_number)
);
COMMENT ON TABLE nweb.chain_blocks IS 'Hashes of indexed blocks in the unfinalised window (batch ends and blocks with logs), per chain; older rows are pruned. The newest stored block whose hash is still canonical is the fork point of a reorg';

CREATE FUNCTION nweb.chain_rollback(chain_id bigint, first_reverted_block bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n bigint;
BEGIN
    IF chain_rollback.first_reverted_block IS NULL OR chain_rollback.first_reverted_block < 0 THEN
        RAISE EXCEPTION 'first_reverted_block: expected a block number >= 0, got %', coalesce(chain_rollback.first_reverted_block::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('nweb.chain:' || chain_rollback.chain_id, 0));
    -- Challenges derived from these attestations go with them (ON DELETE CASCADE).
    DELETE FROM nweb.attestations AS a
     WHERE a.chain_id = chain_rollback.chain_id AND a.block_number >= chain_rollback.first_reverted_block;
    GET DIAGNOSTICS n = ROW_COUNT;
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
COMMENT ON FUNCTION nweb.chain_rollback(bigint, bigint) IS 'A reorg reverted first_reverted_block and everything after it on this chain: delete those attestations (their challenges follow), their block hashes, and move every checkpoint of the chain back before it. Returns the number of attestations deleted. Runs in the caller''s transaction';

------------------------------------------------------------------------------
-- The slasher's probes.
------------------------------------------------------------------------------
CREATE TABLE nweb.availability_checks (
    check_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cid           text        NOT NULL CHECK (cid ~ '^[A-Za-z0-9]+$'),
    available     boolean     NOT NULL,
    attempts      smallint    NOT NULL CHECK (attempts BETWEEN 0 AND 255),
    gateways_ok   smallint    NOT NULL CHECK (gateways_ok BETWEEN 0 AND 255),
    fetch_digest  text        NOT NULL CHECK (fetch_digest ~ '^0x[0-9a-f]{64}$'),
    checked_at    timestamptz NOT NULL,
    reason        text        CHECK (reason IN ('CID_UNAVAILABLE', 'CID_HASH_MISMATCH', 'FORMAT_INVALID')),
    reason_detail text,
    probes        jsonb       NOT NULL CHECK (jsonb_typeof(probes) = 'array'),
    checker       text        CHECK (checker ~ '^0x[0-9a-f]{40}$'),
    attestation_tx text       CHECK (attestation_tx ~ '^0x[0-9a-f]{64}$'),
    challenge_tx  text        CHECK (challenge_tx ~ '^0x[0-9a-f]{64}$'),
    CONSTRAINT availability_checks_reason CHECK (available OR reason IS NOT NULL)
);
CREATE INDEX availability_checks_cid ON nweb.availability_checks (cid, checked_at DESC);
COMMENT ON TABLE nweb.availability_checks IS 'One row per probe of a bundle CID by xray-loader check: the AvailabilityCheck schema (available, attempts, gatewaysOk, fetchDigest, checkedAt), the reason when it is unavailable or invalid, every source''s outcome, and the transactions of the attestation and Challenge filed for it';
COMMENT ON COLUMN nweb.availability_checks.available IS 'True when at least one source served the whole DAG with every block matching its CID';
COMMENT ON COLUMN nweb.availability_checks.attempts IS 'Sources tried (gateways, Kubo, the local CAR directory)';
COMMENT ON COLUMN nweb.availability_checks.gateways_ok IS 'Sources that served a complete, verified CAR';
COMMENT ON COLUMN nweb.availability_checks.fetch_digest IS 'SHA-256 of the binary CIDs of the verified blocks, sorted: the same for every source that served the whole DAG; zero when nothing was verified';
COMMENT ON COLUMN nweb.availability_checks.reason IS 'CID_UNAVAILABLE when no source served it intact; FORMAT_INVALID or CID_HASH_MISMATCH when it was fetched and its verdict is invalid';
COMMENT ON COLUMN nweb.availability_checks.probes IS '[{source, liveness, cached, car, status, bytes, ms, error}] per source';

------------------------------------------------------------------------------
-- Privileges and pg_dump.
------------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION nweb.chain_rollback(bigint, bigint) FROM PUBLIC;
DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'xray_reader') THEN
        GRANT SELECT ON nweb.chain_checkpoints, nweb.chain_blocks, nweb.availability_checks TO xray_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'xray_ingest') THEN
        GRANT INSERT, UPDATE, DELETE ON nweb.chain_checkpoints, nweb.chain_blocks TO xray_ingest;
        GRANT INSERT ON nweb.availability_checks TO xray_ingest;
        GRANT EXECUTE ON FUNCTION nweb.chain_rollback(bigint, bigint) TO xray_ingest;
    END IF;
END
$grants$;

DO $dump$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['nweb.chain_checkpoints', 'nweb.chain_blocks', 'nweb.availability_checks',
                             pg_catalog.pg_get_serial_sequence('nweb.availability_checks', 'check_id')]
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
    END LOOP;
END
$dump$;
