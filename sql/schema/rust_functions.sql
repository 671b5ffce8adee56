-- Comments of the C functions pgrx declares from the Rust source
-- (xray_pg/src/functions.rs, ingest.rs, nweb.rs); COMMENT ON cannot be said
-- in Rust, so they are here, one per function.

COMMENT ON FUNCTION @extschema@.nweb_attested_mismatch(attested jsonb, manifest_sha256 text, dataset_type text, tool text, vantage text, started_at bigint, finished_at bigint) IS 'The first claim of a ScanSubmission payload (manifestSha256, datasetType, tool, vantage, startedAt, finishedAt) that these facts of a bundle contradict, as the detail nweb_bundle_verdict gives (attestation.tool "masscan" differs from manifest.tool "nmap"), or NULL; manifestSha256 is not compared when manifest_sha256 is NULL. nweb.recheck_bundle holds a bundle checked before its submission to it';

COMMENT ON FUNCTION @extschema@.nweb_bridge_payload(tenant_id uuid, bundle jsonb, assets jsonb, rows jsonb) IS 'Pure part of nweb.bridge_payload: an xray 1.2 scan payload from bundle metadata, assets and scanprint rows';

COMMENT ON FUNCTION @extschema@.nweb_bundle_verdict(manifest text, scanprint text, artifacts jsonb, attested_merkle_root text, unreadable text, attested jsonb) IS 'Pure verdict on a bundle: {status verified|invalid, reason, reason_detail, manifest{...}, computed_merkle_root, scanprint_lines, cost_kind, cost_units}. artifacts maps every file path of the bundle to the SHA-256 hex of its bytes; attested is the ScanSubmission payload, whose manifestSha256, datasetType, tool, vantage, startedAt and finishedAt must match (CID_HASH_MISMATCH naming the field)';

COMMENT ON FUNCTION @extschema@.nweb_car_bundle(car bytea, expected_root text) IS 'A verified bundle CAR split for nweb.ingest_car: root CID, manifest and scanprint text, SHA-256 of every file';

COMMENT ON FUNCTION @extschema@.nweb_car_export(paths text[], contents bytea[]) IS 'CARv1 of the wrapped directory of these files: header with the root, then each block once, depth-first';

COMMENT ON FUNCTION @extschema@.nweb_car_files(car bytea, expected_root text) IS 'Files of a bundle CAR. Every block is hashed against its CID and every block under the root is required; a corrupt, missing or truncated block is an ERROR (22P03) naming its CID';

COMMENT ON FUNCTION @extschema@.nweb_challenge_state(grace_ends_at timestamp with time zone, first_resolution_at timestamp with time zone, as_of timestamp with time zone) IS 'in_grace | resolved | slashable. Grace is the closed interval [filed_at, grace_ends_at]: a Resolution at grace_ends_at counts, one after it does not, and slashing starts strictly after grace_ends_at';

COMMENT ON FUNCTION @extschema@.nweb_cid_canonical(cid text) IS 'Canonical text of a CID (CIDv1: lowercase base32), NULL if the text is not a CID';

COMMENT ON FUNCTION @extschema@.nweb_cost_kind(dataset_type text, options text) IS 'Pricing class of a bundle: masscan -> masscan-quick; diff, enrich -> diff/enrich; nmap -> nmap-full when the options scan all 65535 ports (-p-, -p 1-65535) or more than the top 1000, else nmap-top1k';

COMMENT ON FUNCTION @extschema@.nweb_grace_ends_at(filed_at timestamp with time zone) IS 'filed_at + 72 h, the end of a grace period';

COMMENT ON FUNCTION @extschema@.nweb_json_or_null(text text) IS 'The text as jsonb when it is one JSON document without duplicate keys or NUL, else NULL';

COMMENT ON FUNCTION @extschema@.nweb_merkle_proof(jsonl text, line integer) IS 'Inclusion proof for the scanprint line with this 1-based file line number: {leaf_index, tree_size, path[], line, leaf (canonical text), root}';

COMMENT ON FUNCTION @extschema@.nweb_merkle_root(leaves bytea[]) IS 'RFC 6962 Merkle root of raw leaves (SHA-256, 0x00/0x01 prefixes; empty tree = SHA-256 of nothing), for the Certificate Transparency test vectors';

COMMENT ON FUNCTION @extschema@.nweb_merkle_root(jsonl text) IS 'RFC 6962 Merkle root (0x + 64 hex) of a scanprint file: every non-blank line must be a JSON object and is hashed in RFC 8785 (JCS) form (design D6). A bad line is an ERROR naming it: 22P02 malformed JSON, 22023 not an object';

COMMENT ON FUNCTION @extschema@.nweb_merkle_verify(root text, line text, proof jsonb) IS 'True when the scanprint line (any JSON formatting) is the proof''s leaf under root; the challenger''s check for one line';

COMMENT ON FUNCTION @extschema@.nweb_quota_units(stake numeric, rep_factor numeric) IS 'quotaUnits = floor(sqrt(stake) * (1 + repFactor)), computed exactly; 0 below the minimum stake of 100 GST';

COMMENT ON FUNCTION @extschema@.nweb_quota_window_start(as_of timestamp with time zone) IS 'Start of the rolling 24 h quota window ending at as_of (the spec leaves the period open; a day is our choice)';

COMMENT ON FUNCTION @extschema@.nweb_rep_factor(reputation double precision) IS 'repFactor = floor to 6 decimals of reputation / (reputation + 10), in [0, 1): 10 points give half the maximum quota bonus';

COMMENT ON FUNCTION @extschema@.nweb_reputation_points(cost_units integer, vantage_share double precision, age_seconds double precision) IS 'Reputation of one submission: cost_units * 2/(1 + vantage_share) * 2^(-age/30 days); age counts from the end of the submission''s grace period, and is 0 before it';

COMMENT ON FUNCTION @extschema@.nweb_scanprint_from_nmap(xml text, vantage text) IS 'scanprint v0 JSONL (sorted, JCS) from nmap -oX output; unreadable records become WARNINGs';

COMMENT ON FUNCTION @extschema@.nweb_scanprint_rows(jsonl text) IS 'One typed row per scanprint line, read lazily; a bad line is an ERROR naming it';

COMMENT ON FUNCTION @extschema@.nweb_slash_split(stake numeric) IS 'Slash 10 % of the stake: 50 % to the challenger, the rest burned; exact decimal arithmetic, the parts always add up';

COMMENT ON FUNCTION @extschema@.nweb_submission_cost(kind text) IS 'Quota units per submission: masscan-quick 1, nmap-top1k 2, nmap-full 5, diff/enrich (or diff, enrich) 1';

COMMENT ON FUNCTION @extschema@.nweb_unixfs_cid(paths text[], contents bytea[]) IS 'CIDv1 of the directory that ipfs add --cid-version=1 --raw-leaves --wrap-with-directory makes of these files (design D7: 256 KiB raw leaves, balanced, 174 links, sha2-256)';

COMMENT ON FUNCTION @extschema@.nweb_unixfs_file_cid(content bytea) IS 'CIDv1 of one file as ipfs add --cid-version=1 --raw-leaves computes it';

COMMENT ON FUNCTION @extschema@.xray_diff_scan(payload jsonb) IS 'Dry run: the events this payload would produce now (under the configuration tables, skipping assets that have a newer scan); writes nothing';

COMMENT ON FUNCTION @extschema@.xray_ingest_scan_result() IS 'BEFORE INSERT trigger of xray.scan_results: validate, skip stale assets, diff, write events/state/inventory/warnings, NOTIFY xray_events';

COMMENT ON FUNCTION @extschema@.xray_normalize(payload jsonb) IS 'The deduplicated normalised exposures of a payload under the configuration tables; writes nothing';

COMMENT ON FUNCTION @extschema@.xray_normalize(payload jsonb, config jsonb) IS 'Normalise under an explicit configuration (the shape of xray.engine_config(); absent keys take the shipped defaults)';

COMMENT ON FUNCTION xray.canonical_host(host text) IS 'A host or IP address as the engine writes it: trimmed, lowercase, without trailing dot; IP addresses in RFC 5952 form';

COMMENT ON FUNCTION xray.payload_endpoints(payload jsonb) IS 'Endpoints of a scan payload with canonical observed_host and endpoint_id, as the engine derives them';

