-- The nweb rules as SQL: challenge states and slashing, reputation, quota and
-- whether an address may submit. The arithmetic is in Rust (nweb::rules,
-- declared as nweb_* functions); these functions and views apply it to the tables.

CREATE FUNCTION nweb.challenge_states(as_of timestamp with time zone DEFAULT now()) RETURNS TABLE(challenge_id text, cid text, reason_code text, challenger text, subject text, filed_at timestamp with time zone, grace_ends_at timestamp with time zone, resolved_at timestamp with time zone, state text, subject_stake numeric, slash_amount numeric, challenger_bounty numeric, burned numeric)
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

CREATE FUNCTION nweb.reputation_at(as_of timestamp with time zone DEFAULT now()) RETURNS TABLE(address text, reputation double precision, rep_factor numeric, submissions bigint)
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

CREATE FUNCTION nweb.refresh_reputation(as_of timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

COMMENT ON FUNCTION nweb.refresh_reputation(as_of timestamp with time zone) IS 'Store nweb.reputation_at(as_of) in nweb.stakes.reputation for every address; returns the number of rows written';

REVOKE ALL ON FUNCTION nweb.refresh_reputation(as_of timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION nweb.refresh_reputation(as_of timestamp with time zone) TO xray_ingest;

CREATE FUNCTION nweb.quota_at(as_of timestamp with time zone DEFAULT now()) RETURNS TABLE(address text, stake numeric, reputation double precision, rep_factor numeric, quota_units bigint, used_units bigint, remaining_units bigint, may_submit boolean)
    LANGUAGE sql STABLE
    AS $$
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

COMMENT ON FUNCTION nweb.quota_at(as_of timestamp with time zone) IS 'Quota per address: floor(sqrt(stake) * (1 + repFactor)) units (0 below 100 GST) per rolling 24 h window ending at as_of, minus the cost of submissions in the window (invalid bundles excepted)';

CREATE FUNCTION nweb.can_submit(address text, kind text, as_of timestamp with time zone DEFAULT now()) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce((SELECT q.may_submit AND q.remaining_units >= @extschema@.nweb_submission_cost(can_submit.kind)
                       FROM nweb.quota_at(can_submit.as_of) AS q
                      WHERE q.address = lower(can_submit.address)), false);
$$;

COMMENT ON FUNCTION nweb.can_submit(address text, kind text, as_of timestamp with time zone) IS 'Whether the address holds at least 100 GST and has quota left for one submission of this kind';

CREATE VIEW nweb.v_challenges AS
 SELECT challenge_states.challenge_id,
    challenge_states.cid,
    challenge_states.reason_code,
    challenge_states.challenger,
    challenge_states.subject,
    challenge_states.filed_at,
    challenge_states.grace_ends_at,
    challenge_states.resolved_at,
    challenge_states.state,
    challenge_states.subject_stake,
    challenge_states.slash_amount,
    challenge_states.challenger_bounty,
    challenge_states.burned
   FROM nweb.challenge_states(now()) challenge_states(challenge_id, cid, reason_code, challenger, subject, filed_at, grace_ends_at, resolved_at, state, subject_stake, slash_amount, challenger_bounty, burned);

COMMENT ON VIEW nweb.v_challenges IS 'nweb.challenge_states as of now';

GRANT SELECT ON TABLE nweb.v_challenges TO xray_reader;

CREATE VIEW nweb.v_slashable_challenges AS
 SELECT c.challenge_id,
    c.cid,
    c.reason_code,
    c.challenger,
    c.subject,
    c.filed_at,
    c.grace_ends_at,
    c.resolved_at,
    c.state,
    c.subject_stake,
    c.slash_amount,
    c.challenger_bounty,
    c.burned
   FROM nweb.challenge_states(now()) c(challenge_id, cid, reason_code, challenger, subject, filed_at, grace_ends_at, resolved_at, state, subject_stake, slash_amount, challenger_bounty, burned)
  WHERE ((c.state = 'slashable'::text) AND (c.subject IS NOT NULL));

COMMENT ON VIEW nweb.v_slashable_challenges IS 'Challenges whose grace ended without a valid Resolution and whose slash has not been executed yet: slashable now, with the amounts';

GRANT SELECT ON TABLE nweb.v_slashable_challenges TO xray_reader;

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
    b.vantage,
    k.cost_kind AS paid_cost_kind,
    k.cost AS paid_units
   FROM ((nweb.attestations a
     LEFT JOIN nweb.bundles b ON ((b.cid = a.cid)))
     LEFT JOIN nweb.submission_kinds k ON (((k.chain_id = a.chain_id) AND (k.uid = a.uid))))
  WHERE (a.kind = 'ScanSubmission'::text);

COMMENT ON VIEW nweb.v_submissions IS 'ScanSubmissions with their bundle''s verdict and price (the attested datasetType until the bundle is verified), and the Kind and units the SubmissionRouter charged (paid_cost_kind, paid_units; NULL until its SubmissionRecorded is indexed)';

GRANT SELECT ON TABLE nweb.v_submissions TO xray_reader;

CREATE VIEW nweb.v_reputation AS
 SELECT reputation_at.address,
    reputation_at.reputation,
    reputation_at.rep_factor,
    reputation_at.submissions
   FROM nweb.reputation_at(now()) reputation_at(address, reputation, rep_factor, submissions);

COMMENT ON VIEW nweb.v_reputation IS 'nweb.reputation_at as of now';

GRANT SELECT ON TABLE nweb.v_reputation TO xray_reader;

CREATE VIEW nweb.v_quota AS
 SELECT quota_at.address,
    quota_at.stake,
    quota_at.reputation,
    quota_at.rep_factor,
    quota_at.quota_units,
    quota_at.used_units,
    quota_at.remaining_units,
    quota_at.may_submit
   FROM nweb.quota_at(now()) quota_at(address, stake, reputation, rep_factor, quota_units, used_units, remaining_units, may_submit);

COMMENT ON VIEW nweb.v_quota IS 'nweb.quota_at as of now';

GRANT SELECT ON TABLE nweb.v_quota TO xray_reader;

