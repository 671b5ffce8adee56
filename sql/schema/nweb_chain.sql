-- nweb on chain: indexed attestations (ScanSubmission, Challenge, Resolution),
-- the challenges they file, stakes and stake events, and the chain indexer's
-- checkpoints and block window with its reorg rollback.

CREATE FUNCTION nweb.attestation_applied() RETURNS trigger
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

COMMENT ON FUNCTION nweb.attestation_applied() IS 'AFTER INSERT on nweb.attestations: a ScanSubmission fills in the submitter of a bundle checked before it (and invalidates it when the attested root disagrees), a Challenge becomes a row of nweb.challenges';

CREATE TABLE nweb.chain_checkpoints (
    chain_id bigint NOT NULL,
    contract text NOT NULL,
    start_block bigint NOT NULL,
    last_block bigint NOT NULL,
    last_block_hash text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT chain_checkpoints_chain_id_check CHECK ((chain_id > 0)),
    CONSTRAINT chain_checkpoints_contract_check CHECK ((contract ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT chain_checkpoints_last_block_hash_check CHECK ((last_block_hash ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT chain_checkpoints_order CHECK ((last_block >= (start_block - 1))),
    CONSTRAINT chain_checkpoints_start_block_check CHECK ((start_block >= 0))
);

ALTER TABLE ONLY nweb.chain_checkpoints
    ADD CONSTRAINT chain_checkpoints_pkey PRIMARY KEY (chain_id, contract);

COMMENT ON TABLE nweb.chain_checkpoints IS 'Per (chain_id, contract): every log of the contract up to last_block is in nweb.attestations (Attestor) or nweb.stake_events (StakeRegistry). Written in the same transaction as those rows; lowered by nweb.chain_rollback';

COMMENT ON COLUMN nweb.chain_checkpoints.last_block IS 'Last block fully indexed; start_block - 1 before the first batch';

COMMENT ON COLUMN nweb.chain_checkpoints.last_block_hash IS 'Hash of last_block when indexed; a different canonical hash means a reorg. NULL before the first batch, or after a rollback to a block whose hash was not kept';

GRANT SELECT ON TABLE nweb.chain_checkpoints TO xray_reader;
GRANT INSERT,DELETE,UPDATE ON TABLE nweb.chain_checkpoints TO xray_ingest;

CREATE TABLE nweb.chain_blocks (
    chain_id bigint NOT NULL,
    block_number bigint NOT NULL,
    block_hash text NOT NULL,
    parent_hash text,
    block_time timestamp with time zone,
    CONSTRAINT chain_blocks_block_hash_check CHECK ((block_hash ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT chain_blocks_block_number_check CHECK ((block_number >= 0)),
    CONSTRAINT chain_blocks_chain_id_check CHECK ((chain_id > 0)),
    CONSTRAINT chain_blocks_parent_hash_check CHECK ((parent_hash ~ '^0x[0-9a-f]{64}$'::text))
);

ALTER TABLE ONLY nweb.chain_blocks
    ADD CONSTRAINT chain_blocks_pkey PRIMARY KEY (chain_id, block_number);

COMMENT ON TABLE nweb.chain_blocks IS 'Hashes of indexed blocks in the unfinalised window (batch ends and blocks with logs), per chain; older rows are pruned. The newest stored block whose hash is still canonical is the fork point of a reorg';

GRANT SELECT ON TABLE nweb.chain_blocks TO xray_reader;
GRANT INSERT,DELETE,UPDATE ON TABLE nweb.chain_blocks TO xray_ingest;

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

CREATE TABLE nweb.attestations (
    attestation_id bigint NOT NULL,
    kind text NOT NULL,
    chain_id bigint NOT NULL,
    tx_hash text NOT NULL,
    log_index integer NOT NULL,
    block_number bigint NOT NULL,
    block_hash text NOT NULL,
    block_time timestamp with time zone NOT NULL,
    uid text,
    attester text NOT NULL,
    payload jsonb NOT NULL,
    cid text GENERATED ALWAYS AS (
CASE
    WHEN (@extschema@.nweb_cid_canonical((payload ->> 'cid'::text)) = (payload ->> 'cid'::text)) THEN (payload ->> 'cid'::text)
    ELSE NULL::text
END) STORED,
    inserted_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT attestations_attester_check CHECK ((attester ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT attestations_block_hash_check CHECK ((block_hash ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT attestations_block_number_check CHECK ((block_number >= 0)),
    CONSTRAINT attestations_kind_check CHECK ((kind = ANY (ARRAY['ScanSubmission'::text, 'AvailabilityCheck'::text, 'Challenge'::text, 'Resolution'::text]))),
    CONSTRAINT attestations_log_index_check CHECK ((log_index >= 0)),
    CONSTRAINT attestations_payload_check CHECK ((jsonb_typeof(payload) = 'object'::text)),
    CONSTRAINT attestations_tx_hash_check CHECK ((tx_hash ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT attestations_uid_check CHECK ((uid ~ '^0x[0-9a-f]{64}$'::text))
);

ALTER TABLE nweb.attestations ALTER COLUMN attestation_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME nweb.attestations_attestation_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE ONLY nweb.attestations
    ADD CONSTRAINT attestations_log_unique UNIQUE (chain_id, tx_hash, log_index);

ALTER TABLE ONLY nweb.attestations
    ADD CONSTRAINT attestations_pkey PRIMARY KEY (attestation_id);

CREATE INDEX attestations_block ON nweb.attestations USING btree (chain_id, block_number);

CREATE INDEX attestations_kind_cid ON nweb.attestations USING btree (kind, cid);

CREATE INDEX attestations_resolution ON nweb.attestations USING btree (lower((payload ->> 'challengeId'::text))) WHERE (kind = 'Resolution'::text);

CREATE TRIGGER attestations_apply AFTER INSERT ON nweb.attestations FOR EACH ROW EXECUTE FUNCTION nweb.attestation_applied();

COMMENT ON TABLE nweb.attestations IS 'Decoded Attestor events, one per log. Insert with ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING; delete rows at or above a reorged block (challenges follow). A malformed payload is stored but has no effect (WARNING), so chain data never wedges the loader';

COMMENT ON COLUMN nweb.attestations.uid IS 'Attestation UID; a Challenge''s uid is the challengeId its Resolution names';

COMMENT ON COLUMN nweb.attestations.payload IS 'The schema''s fields by their spec names, e.g. ScanSubmission {cid, merkleRoot, datasetType, ...}, Challenge {cid, jobId, reasonCode, evidenceCid}, Resolution {challengeId, slash, newCid}';

COMMENT ON COLUMN nweb.attestations.cid IS 'payload.cid when it is the canonical spelling (CIDv1 base32 lower-case, as the contracts require); NULL when absent, not a CID, or a variant spelling (which is not canonicalised: the chain knows a CID by its exact text)';

GRANT SELECT ON TABLE nweb.attestations TO xray_reader;
GRANT INSERT,DELETE ON TABLE nweb.attestations TO xray_ingest;

CREATE TABLE nweb.challenges (
    challenge_id text NOT NULL,
    attestation_id bigint,
    cid text NOT NULL,
    job_id text,
    reason_code text NOT NULL,
    evidence_cid text,
    challenger text NOT NULL,
    filed_at timestamp with time zone NOT NULL,
    grace_ends_at timestamp with time zone GENERATED ALWAYS AS (@extschema@.nweb_grace_ends_at(filed_at)) STORED NOT NULL,
    CONSTRAINT challenges_challenge_id_check CHECK ((challenge_id ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT challenges_challenger_check CHECK ((challenger ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT challenges_reason_code_check CHECK ((reason_code = ANY (ARRAY['CID_UNAVAILABLE'::text, 'CID_HASH_MISMATCH'::text, 'FORMAT_INVALID'::text])))
);

ALTER TABLE ONLY nweb.challenges
    ADD CONSTRAINT challenges_attestation_id_key UNIQUE (attestation_id);

ALTER TABLE ONLY nweb.challenges
    ADD CONSTRAINT challenges_pkey PRIMARY KEY (challenge_id);

ALTER TABLE ONLY nweb.challenges
    ADD CONSTRAINT challenges_attestation_id_fkey FOREIGN KEY (attestation_id) REFERENCES nweb.attestations(attestation_id) ON DELETE CASCADE;

CREATE INDEX challenges_cid ON nweb.challenges USING btree (cid);

COMMENT ON TABLE nweb.challenges IS 'Challenges against bundles, derived from Challenge attestations by their trigger: removed with them on a reorg, rebuilt from them on restore (so not dumped). State, resolution and slash amounts: nweb.challenge_states(as_of)';

COMMENT ON COLUMN nweb.challenges.grace_ends_at IS 'filed_at (block time) + 72 h';

GRANT SELECT ON TABLE nweb.challenges TO xray_reader;

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

CREATE TABLE nweb.stake_events (
    chain_id bigint NOT NULL,
    tx_hash text NOT NULL,
    log_index integer NOT NULL,
    block_number bigint NOT NULL,
    block_hash text NOT NULL,
    block_time timestamp with time zone NOT NULL,
    registry text NOT NULL,
    kind text NOT NULL,
    address text NOT NULL,
    amount numeric NOT NULL,
    total numeric,
    challenger text,
    bounty numeric,
    burned numeric,
    inserted_at timestamp with time zone DEFAULT now() NOT NULL,
    release_at timestamp with time zone,
    CONSTRAINT stake_events_address_check CHECK ((address ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT stake_events_amount_check CHECK ((amount >= (0)::numeric)),
    CONSTRAINT stake_events_block_hash_check CHECK ((block_hash ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT stake_events_block_number_check CHECK ((block_number >= 0)),
    CONSTRAINT stake_events_bounty_check CHECK ((bounty >= (0)::numeric)),
    CONSTRAINT stake_events_burned_check CHECK ((burned >= (0)::numeric)),
    CONSTRAINT stake_events_chain_id_check CHECK ((chain_id > 0)),
    CONSTRAINT stake_events_challenger_check CHECK ((challenger ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT stake_events_fields CHECK (
CASE
    WHEN (kind = ANY (ARRAY['Slashed'::text, 'UnbondingSlashed'::text])) THEN ((total IS NULL) AND (challenger IS NOT NULL) AND (bounty IS NOT NULL) AND (burned IS NOT NULL) AND (release_at IS NULL))
    WHEN (kind = 'Withdrawn'::text) THEN ((total IS NULL) AND (challenger IS NULL) AND (bounty IS NULL) AND (burned IS NULL) AND (release_at IS NULL))
    ELSE ((total IS NOT NULL) AND (challenger IS NULL) AND (bounty IS NULL) AND (burned IS NULL) AND ((release_at IS NOT NULL) = (kind = 'Unbonding'::text)))
END),
    CONSTRAINT stake_events_kind_check CHECK ((kind = ANY (ARRAY['Staked'::text, 'Unstaked'::text, 'Slashed'::text, 'Unbonding'::text, 'UnbondingSlashed'::text, 'Withdrawn'::text]))),
    CONSTRAINT stake_events_log_index_check CHECK ((log_index >= 0)),
    CONSTRAINT stake_events_registry_check CHECK ((registry ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT stake_events_total_check CHECK ((total >= (0)::numeric)),
    CONSTRAINT stake_events_tx_hash_check CHECK ((tx_hash ~ '^0x[0-9a-f]{64}$'::text))
);

ALTER TABLE ONLY nweb.stake_events
    ADD CONSTRAINT stake_events_pkey PRIMARY KEY (chain_id, tx_hash, log_index);

CREATE INDEX stake_events_block ON nweb.stake_events USING btree (chain_id, block_number);

CREATE INDEX stake_events_history ON nweb.stake_events USING btree (address, chain_id, registry, block_number, log_index);

COMMENT ON TABLE nweb.stake_events IS 'StakeRegistry logs (Staked, Unstaked, Slashed, Unbonding, UnbondingSlashed, Withdrawn), one row per log, written by xray-loader tail in the transaction of its checkpoint with ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING; deleted by nweb.chain_rollback. nweb.stakes is derived from them (nweb.refresh_stakes)';

COMMENT ON COLUMN nweb.stake_events.registry IS 'The StakeRegistry that emitted the log (lowercase 0x hex)';

COMMENT ON COLUMN nweb.stake_events.address IS 'The staker (`who`)';

COMMENT ON COLUMN nweb.stake_events.amount IS 'GST (exact decimal, not wei): staked, unstaked, started unbonding, withdrawn, or slashed (bounty + burned; Slashed: the part taken from the active stake, UnbondingSlashed: the part taken from the unbonding GST, both logs of one slash)';

COMMENT ON COLUMN nweb.stake_events.total IS 'Staked, Unstaked: the address''s active stake in this registry after the event; Unbonding: its unbonding GST after the event (totalUnbonding); as emitted (GST). NULL for the others, which emit none';

COMMENT ON COLUMN nweb.stake_events.challenger IS 'Slashed, UnbondingSlashed: who receives the bounty';

COMMENT ON COLUMN nweb.stake_events.release_at IS 'Unbonding: when all the unbonding GST can be withdrawn (each unstake restarts the clock)';

GRANT SELECT ON TABLE nweb.stake_events TO xray_reader;
GRANT INSERT ON TABLE nweb.stake_events TO xray_ingest;

CREATE TABLE nweb.stakes (
    address text NOT NULL,
    stake numeric DEFAULT 0 NOT NULL,
    reputation double precision DEFAULT 0 NOT NULL,
    reputation_as_of timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    unbonding numeric DEFAULT 0 NOT NULL,
    unbonding_release_at timestamp with time zone,
    slashed numeric DEFAULT 0 NOT NULL,
    CONSTRAINT stakes_address_check CHECK ((address ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT stakes_reputation_check CHECK ((reputation >= (0)::double precision)),
    CONSTRAINT stakes_stake_check CHECK ((stake >= (0)::numeric)),
    CONSTRAINT stakes_unbonding_check CHECK ((unbonding >= (0)::numeric)),
    CONSTRAINT stakes_slashed_check CHECK ((slashed >= (0)::numeric))
);

ALTER TABLE ONLY nweb.stakes
    ADD CONSTRAINT stakes_pkey PRIMARY KEY (address);

COMMENT ON TABLE nweb.stakes IS 'Staked GST per address (from StakeRegistry): active, unbonding and slashed, and its reputation (nweb.refresh_reputation)';

COMMENT ON COLUMN nweb.stakes.stake IS 'Active GST, exact decimal (not wei): what buys quota';

COMMENT ON COLUMN nweb.stakes.unbonding IS 'Unstaked GST not withdrawn yet: no quota, still slashable';

COMMENT ON COLUMN nweb.stakes.unbonding_release_at IS 'When the unbonding GST can be withdrawn (the latest over registries); NULL when nothing unbonds';

COMMENT ON COLUMN nweb.stakes.slashed IS 'GST slashed so far, from the active stake and from unbonding GST';

GRANT SELECT ON TABLE nweb.stakes TO xray_reader;
GRANT INSERT,UPDATE ON TABLE nweb.stakes TO xray_ingest;

CREATE FUNCTION nweb.chain_rollback(chain_id bigint, first_reverted_block bigint) RETURNS bigint
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

REVOKE ALL ON FUNCTION nweb.chain_rollback(chain_id bigint, first_reverted_block bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION nweb.chain_rollback(chain_id bigint, first_reverted_block bigint) TO xray_ingest;

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

CREATE FUNCTION nweb.refresh_stakes(addresses text[]) RETURNS integer
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

REVOKE ALL ON FUNCTION nweb.refresh_stakes(addresses text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION nweb.refresh_stakes(addresses text[]) TO xray_ingest;

