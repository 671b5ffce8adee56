-- xray_pg 0.3.0 -> 0.4.0: a faster ingest trigger (BENCHMARKS.md).
--
-- - xray.scan_results.payload is compressed with lz4 instead of pglz. The
--   payload is the largest value the ingest writes; lz4 stores it faster and,
--   on scanner output, smaller. Rows already stored keep their compression
--   until they are rewritten; both read the same.
-- - The ingest trigger now records assets and endpoints from the payload it
--   has already decoded, with one statement per table, instead of calling
--   xray.record_inventory(), which walked the payload again in SQL. The
--   function has no other caller and is dropped.

ALTER TABLE xray.scan_results ALTER COLUMN payload SET COMPRESSION lz4;

DROP FUNCTION xray.record_inventory(uuid, uuid, timestamptz, jsonb);

------------------------------------------------------------------------------
-- nweb: StakeRegistry events (xray-loader tail)
------------------------------------------------------------------------------
-- `xray-loader tail` follows the StakeRegistry next to the Attestor (docs/nweb-chain.md).
-- Its Staked, Unstaked and Slashed logs are kept one row per log, and nweb.stakes.stake
-- is derived from them rather than updated in place, because a reorg must be able to
-- take an event back: after nweb.chain_rollback deletes the reverted rows, the stake is
-- derived again from what is left.
--
-- - Staked and Unstaked carry the address's total after the event; that total is taken
--   as it is. Slashed carries no total (contracts/src/StakeRegistry.sol), so a slash
--   lowers the last total by its amount. The registry changes a stake only in these
--   three functions, each emitting its event, so this is exact when the registry is
--   indexed from its deployment. A slash with no total before it means the history
--   is incomplete: an ERROR rather than a guess, whatever follows it, so that where
--   the indexer stops does not depend on how its batches fall.
-- - Amounts are GST (exact numeric, 18 decimals), as nweb.stakes.stake; the loader
--   converts from wei.
-- - nweb.stakes keeps its other columns (reputation): only stake and updated_at are
--   written here, and rows are never deleted.
-- Every statement creates something new or replaces nweb.chain_rollback with a
-- function of the same signature, so it runs the same on a fresh install and on a
-- database with data.

CREATE TABLE nweb.stake_events (
    chain_id     bigint      NOT NULL CHECK (chain_id > 0),
    tx_hash      text        NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    log_index    integer     NOT NULL CHECK (log_index >= 0),
    block_number bigint      NOT NULL CHECK (block_number >= 0),
    block_hash   text        NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    block_time   timestamptz NOT NULL,
    registry     text        NOT NULL CHECK (registry ~ '^0x[0-9a-f]{40}$'),
    kind         text        NOT NULL CHECK (kind IN ('Staked', 'Unstaked', 'Slashed')),
    address      text        NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    amount       numeric     NOT NULL CHECK (amount >= 0),
    total        numeric     CHECK (total >= 0),
    challenger   text        CHECK (challenger ~ '^0x[0-9a-f]{40}$'),
    bounty       numeric     CHECK (bounty >= 0),
    burned       numeric     CHECK (burned >= 0),
    inserted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, tx_hash, log_index),
    -- The fields each event has, so that the derivation can rely on them.
    CONSTRAINT stake_events_fields CHECK (
        CASE kind
            WHEN 'Slashed' THEN total IS NULL AND challenger IS NOT NULL AND bounty IS NOT NULL AND burned IS NOT NULL
            ELSE total IS NOT NULL AND challenger IS NULL AND bounty IS NULL AND burned IS NULL
        END)
);
CREATE INDEX stake_events_history ON nweb.stake_events (address, chain_id, registry, block_number, log_index);
CREATE INDEX stake_events_block ON nweb.stake_events (chain_id, block_number);
COMMENT ON TABLE nweb.stake_events IS 'StakeRegistry logs (Staked, Unstaked, Slashed), one row per log, written by xray-loader tail in the transaction of its checkpoint with ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING; deleted by nweb.chain_rollback. nweb.stakes.stake is derived from them (nweb.refresh_stakes)';
COMMENT ON COLUMN nweb.stake_events.registry IS 'The StakeRegistry that emitted the log (lowercase 0x hex)';
COMMENT ON COLUMN nweb.stake_events.address IS 'The staker (`who`)';
COMMENT ON COLUMN nweb.stake_events.amount IS 'GST (exact decimal, not wei): staked, unstaked, or slashed in total (bounty + burned)';
COMMENT ON COLUMN nweb.stake_events.total IS 'Staked, Unstaked: the address''s stake in this registry after the event, as emitted (GST). NULL for Slashed, which emits none';
COMMENT ON COLUMN nweb.stake_events.challenger IS 'Slashed: who receives the bounty';

CREATE FUNCTION nweb.stakes_by_registry(addresses text[] DEFAULT NULL)
RETURNS TABLE (chain_id bigint, registry text, address text, stake numeric, last_block bigint, unanchored_slash numeric)
LANGUAGE sql STABLE AS $$
    SELECT k.chain_id, k.registry, k.address,
           CASE WHEN un.amount = 0 THEN coalesce(an.total, 0) - sl.amount END,
           greatest(an.block_number, sl.last_block),
           nullif(un.amount, 0)
      FROM (SELECT DISTINCT e.chain_id, e.registry, e.address
              FROM nweb.stake_events AS e
             WHERE stakes_by_registry.addresses IS NULL
                OR e.address IN (SELECT lower(a) FROM unnest(stakes_by_registry.addresses) AS a)) AS k
      LEFT JOIN LATERAL (
            SELECT e.total, e.block_number, e.log_index
              FROM nweb.stake_events AS e
             WHERE e.address = k.address AND e.chain_id = k.chain_id AND e.registry = k.registry
               AND e.total IS NOT NULL
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
               AND e.total IS NOT NULL
             ORDER BY e.block_number, e.log_index
             LIMIT 1) AS fst ON true
     CROSS JOIN LATERAL (
            SELECT coalesce(sum(e.amount), 0) AS amount
              FROM nweb.stake_events AS e
             WHERE e.address = k.address AND e.chain_id = k.chain_id AND e.registry = k.registry
               AND e.kind = 'Slashed'
               AND (fst.block_number IS NULL OR (e.block_number, e.log_index) < (fst.block_number, fst.log_index))) AS un;
$$;
COMMENT ON FUNCTION nweb.stakes_by_registry(text[]) IS 'Stake per (chain, registry, address) from nweb.stake_events (all addresses when NULL): the total of the last Staked or Unstaked, minus the amounts slashed after it. stake is NULL, and unanchored_slash the GST slashed, when a slash of more than 0 has no Staked or Unstaked before it (the registry was not indexed from its deployment)';

CREATE FUNCTION nweb.refresh_stakes(addresses text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
     WHERE s.stake IS NULL OR s.stake < 0
     ORDER BY s.chain_id, s.registry, s.address
     LIMIT 1;
    IF FOUND THEN
        IF bad.stake IS NULL THEN
            RAISE EXCEPTION 'nweb.stake_events: % was slashed % GST by StakeRegistry % on chain % without a Staked or Unstaked of it indexed before; its stake cannot be derived',
                bad.address, bad.unanchored_slash, bad.registry, bad.chain_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Index the StakeRegistry from its deployment: chain.start_block at or before it, and a new checkpoint (DELETE its row of nweb.chain_checkpoints).';
        END IF;
        RAISE EXCEPTION 'nweb.stake_events: % has more slashed than staked (% GST) in StakeRegistry % on chain %',
            bad.address, bad.stake, bad.registry, bad.chain_id
            USING ERRCODE = 'check_violation';
    END IF;
    -- An address whose events are all gone (rolled back) keeps its row with stake 0:
    -- the row may hold its reputation.
    WITH s AS (
        SELECT s.address, sum(s.stake) AS stake
          FROM nweb.stakes_by_registry(v_addrs) AS s
         GROUP BY s.address
    )
    INSERT INTO nweb.stakes AS st (address, stake)
    SELECT x.address, coalesce(s.stake, 0)
      FROM unnest(v_addrs) AS x(address)
      LEFT JOIN s ON s.address = x.address
     WHERE s.address IS NOT NULL OR EXISTS (SELECT 1 FROM nweb.stakes AS o WHERE o.address = x.address)
    ON CONFLICT (address) DO UPDATE
       SET stake = EXCLUDED.stake, updated_at = now()
     WHERE st.stake IS DISTINCT FROM EXCLUDED.stake;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION nweb.refresh_stakes(text[]) IS 'Set nweb.stakes.stake of these addresses to the sum over chains and registries of nweb.stakes_by_registry (0 when no event is left), in the caller''s transaction; returns the number of rows changed. ERROR when a slash has no Staked or Unstaked before it. Called by xray-loader tail after each batch and by nweb.chain_rollback';

CREATE OR REPLACE FUNCTION nweb.chain_rollback(chain_id bigint, first_reverted_block bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n       bigint;
    v_addrs text[];
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
COMMENT ON FUNCTION nweb.chain_rollback(bigint, bigint) IS 'A reorg reverted first_reverted_block and everything after it on this chain: delete those attestations (their challenges follow) and stake events (the stakes of their addresses are derived again), their block hashes, and move every checkpoint of the chain back before it. Returns the number of attestations deleted. Runs in the caller''s transaction';
COMMENT ON TABLE nweb.chain_checkpoints IS 'Per (chain_id, contract): every log of the contract up to last_block is in nweb.attestations (Attestor) or nweb.stake_events (StakeRegistry). Written in the same transaction as those rows; lowered by nweb.chain_rollback';

REVOKE EXECUTE ON FUNCTION nweb.refresh_stakes(text[]) FROM PUBLIC;
DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'xray_reader') THEN
        GRANT SELECT ON nweb.stake_events TO xray_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'xray_ingest') THEN
        GRANT INSERT ON nweb.stake_events TO xray_ingest;
        GRANT EXECUTE ON FUNCTION nweb.refresh_stakes(text[]) TO xray_ingest;
    END IF;
END
$grants$;

SELECT pg_catalog.pg_extension_config_dump('nweb.stake_events'::regclass, '');
