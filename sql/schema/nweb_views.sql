-- Views over bundles and scanprint rows: the bundles with their attestation,
-- the latest state per port, open ports and port changes.

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

GRANT SELECT ON TABLE nweb.v_bundles TO xray_reader;

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

CREATE VIEW nweb.v_port_latest AS
 SELECT DISTINCT ON (s.ip, s.proto, s.port) s.ip,
    s.proto,
    s.port,
    s.state,
    s.service,
    s.product,
    s.version,
    s.ts AS seen_at,
    s.vantage,
    s.bundle_cid
   FROM nweb.scanprint s
  ORDER BY s.ip, s.proto, s.port, s.ts DESC, s.bundle_cid;

COMMENT ON VIEW nweb.v_port_latest IS 'The newest verified observation of every (ip, proto, port)';

GRANT SELECT ON TABLE nweb.v_port_latest TO xray_reader;

CREATE VIEW nweb.v_open_ports AS
 SELECT p.ip,
    p.proto,
    p.port,
    p.state,
    p.service,
    p.product,
    p.version,
    p.seen_at,
    p.vantage,
    p.bundle_cid
   FROM nweb.v_port_latest p
  WHERE (p.state = 'open'::text);

COMMENT ON VIEW nweb.v_open_ports IS 'Who has port X open now: SELECT ip FROM nweb.v_open_ports WHERE port = 3389';

GRANT SELECT ON TABLE nweb.v_open_ports TO xray_reader;

CREATE VIEW nweb.v_port_changes AS
 SELECT x.ip,
    x.proto,
    x.port,
    x.seen_at,
    x.state,
    x.previous_state,
    x.service,
    x.previous_service,
    x.product,
    x.version,
    x.vantage,
    x.bundle_cid
   FROM ( SELECT s.ip,
            s.proto,
            s.port,
            s.ts AS seen_at,
            s.state,
            lag(s.state) OVER w AS previous_state,
            s.service,
            lag(s.service) OVER w AS previous_service,
            s.product,
            s.version,
            s.vantage,
            s.bundle_cid
           FROM nweb.scanprint s
          WINDOW w AS (PARTITION BY s.ip, s.proto, s.port ORDER BY s.ts, s.bundle_cid, s.line_no)) x
  WHERE ((x.previous_state IS DISTINCT FROM x.state) OR (x.previous_service IS DISTINCT FROM x.service));

COMMENT ON VIEW nweb.v_port_changes IS 'What changed on this IP: every first sighting and every change of state or service per (ip, proto, port), oldest first';

GRANT SELECT ON TABLE nweb.v_port_changes TO xray_reader;

