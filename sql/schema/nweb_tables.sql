-- nweb: verified public scan bundles and their scanprint rows, and the
-- availability checks of bundles that could not be fetched.

CREATE TABLE nweb.bundles (
    cid text NOT NULL,
    status text NOT NULL,
    reason text,
    reason_detail text,
    manifest jsonb,
    manifest_sha256 text,
    merkle_root text,
    computed_merkle_root text,
    attested_merkle_root text,
    submitter text,
    namespace text,
    dataset_type text,
    tool text,
    tool_version text,
    vantage text,
    target_spec_cid text,
    cost_kind text,
    cost_units integer,
    scan_started_at timestamp with time zone,
    scan_finished_at timestamp with time zone,
    scanprint_lines integer,
    scanprint_bytes bigint,
    bundle_bytes bigint,
    first_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    checked_at timestamp with time zone,
    verified_at timestamp with time zone,
    CONSTRAINT bundles_attested_merkle_root_check CHECK ((attested_merkle_root ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT bundles_bundle_bytes_check CHECK ((bundle_bytes >= 0)),
    CONSTRAINT bundles_cid_check CHECK ((cid ~ '^[A-Za-z0-9]+$'::text)),
    CONSTRAINT bundles_computed_merkle_root_check CHECK ((computed_merkle_root ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT bundles_cost_kind_check CHECK ((cost_kind = ANY (ARRAY['masscan-quick'::text, 'nmap-top1k'::text, 'nmap-full'::text, 'diff/enrich'::text]))),
    CONSTRAINT bundles_cost_units_check CHECK ((cost_units > 0)),
    CONSTRAINT bundles_manifest_sha256_check CHECK ((manifest_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT bundles_merkle_root_check CHECK ((merkle_root ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT bundles_reason_check CHECK ((reason = ANY (ARRAY['CID_UNAVAILABLE'::text, 'CID_HASH_MISMATCH'::text, 'FORMAT_INVALID'::text]))),
    CONSTRAINT bundles_reason_iff_invalid CHECK (((status = 'invalid'::text) = (reason IS NOT NULL))),
    CONSTRAINT bundles_scanprint_bytes_check CHECK ((scanprint_bytes >= 0)),
    CONSTRAINT bundles_scanprint_lines_check CHECK ((scanprint_lines >= 0)),
    CONSTRAINT bundles_status_check CHECK ((status = ANY (ARRAY['verified'::text, 'invalid'::text, 'deferred'::text]))),
    CONSTRAINT bundles_submitter_check CHECK ((submitter ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT bundles_verified_has_manifest CHECK (((status <> 'verified'::text) OR ((manifest IS NOT NULL) AND (merkle_root IS NOT NULL))))
);

ALTER TABLE ONLY nweb.bundles
    ADD CONSTRAINT bundles_pkey PRIMARY KEY (cid);

CREATE INDEX bundles_status ON nweb.bundles USING btree (status, first_seen_at);

CREATE INDEX bundles_submitter ON nweb.bundles USING btree (submitter);

COMMENT ON TABLE nweb.bundles IS 'One row per checked bundle CID: verified, invalid with a reason code, or deferred (our limit stopped the check). Written by nweb.ingest_bundle, nweb.ingest_car, nweb.mark_unavailable and nweb.mark_local_limit. CIDs that are attested but not checked yet show as pending in nweb.v_bundles';

COMMENT ON COLUMN nweb.bundles.status IS 'verified or invalid; deferred when one of our own limits (size cap, decoder bounds, our timeout) stopped the check: no reason, the limit in reason_detail, no verdict on the submitter, and any later verdict replaces it (docs/design.md D42); a CID attested but not checked yet has no row here and is pending in nweb.v_bundles';

COMMENT ON COLUMN nweb.bundles.reason IS 'FORMAT_INVALID: manifest or scanprint breaks the format, or a listed file is absent. CID_HASH_MISMATCH: Merkle root, attested root or an artifact SHA-256 differs from what was committed. CID_UNAVAILABLE: could not be fetched (the only reason a later ingest may overturn)';

COMMENT ON COLUMN nweb.bundles.merkle_root IS 'manifest.scanprint.merkleRoot; for a verified bundle equal to computed_merkle_root (and to attested_merkle_root when known)';

COMMENT ON COLUMN nweb.bundles.submitter IS 'Attester of the first ScanSubmission naming this CID (known when checked, or filled in when the attestation arrives later)';

COMMENT ON COLUMN nweb.bundles.cost_kind IS 'Pricing class: the manifest''s profile, else derived from datasetType and the scan options (nweb_cost_kind)';

GRANT SELECT ON TABLE nweb.bundles TO xray_reader;

CREATE TABLE nweb.scanprint (
    ip inet NOT NULL,
    bundle_cid text NOT NULL,
    line_no integer NOT NULL,
    ts timestamp with time zone NOT NULL,
    port integer NOT NULL,
    proto text NOT NULL,
    state text NOT NULL,
    service text,
    product text,
    version text,
    banner_sha256 text,
    cert_fpr text,
    tls_ja3 text,
    latency_ms integer,
    tool text NOT NULL,
    tool_version text,
    options text,
    vantage text NOT NULL,
    CONSTRAINT scanprint_latency_ms_check CHECK ((latency_ms >= 0)),
    CONSTRAINT scanprint_line_no_check CHECK ((line_no > 0)),
    CONSTRAINT scanprint_port_check CHECK (((port >= 0) AND (port <= 65535)))
);

ALTER TABLE ONLY nweb.scanprint
    ADD CONSTRAINT scanprint_pkey PRIMARY KEY (ip, bundle_cid, line_no);

ALTER TABLE ONLY nweb.scanprint
    ADD CONSTRAINT scanprint_bundle_cid_fkey FOREIGN KEY (bundle_cid) REFERENCES nweb.bundles(cid) ON DELETE CASCADE;

CREATE INDEX scanprint_bundle ON nweb.scanprint USING btree (bundle_cid);

CREATE INDEX scanprint_ip_ts ON nweb.scanprint USING btree (ip, ts);

CREATE INDEX scanprint_port_state ON nweb.scanprint USING btree (port, state) INCLUDE (ip, ts);

CREATE INDEX scanprint_service ON nweb.scanprint USING btree (lower(service));

CREATE INDEX scanprint_product_prefix ON nweb.scanprint USING btree (lower(product) text_pattern_ops);

COMMENT ON TABLE nweb.scanprint IS 'Typed scanprint v0 lines of verified bundles only. Loaded in one statement with the verdict; removed with the bundle or when it turns out invalid. Distributable by ip';

COMMENT ON INDEX nweb.scanprint_ip_ts IS 'What changed on this IP';

COMMENT ON INDEX nweb.scanprint_port_state IS 'Who has port X open';

COMMENT ON INDEX nweb.scanprint_service IS 'The Analyst UI''s search by service (case-insensitive)';

COMMENT ON INDEX nweb.scanprint_product_prefix IS 'The Analyst UI''s search by product prefix (case-insensitive)';

GRANT SELECT ON TABLE nweb.scanprint TO xray_reader;

CREATE TABLE nweb.availability_checks (
    check_id bigint NOT NULL,
    cid text NOT NULL,
    available boolean NOT NULL,
    attempts smallint NOT NULL,
    gateways_ok smallint NOT NULL,
    fetch_digest text NOT NULL,
    checked_at timestamp with time zone NOT NULL,
    reason text,
    reason_detail text,
    probes jsonb NOT NULL,
    checker text,
    attestation_tx text,
    challenge_tx text,
    outcome text NOT NULL,
    CONSTRAINT availability_checks_attempts_check CHECK (((attempts >= 0) AND (attempts <= 255))),
    CONSTRAINT availability_checks_attestation_tx_check CHECK ((attestation_tx ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT availability_checks_challenge_tx_check CHECK ((challenge_tx ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT availability_checks_checker_check CHECK ((checker ~ '^0x[0-9a-f]{40}$'::text)),
    CONSTRAINT availability_checks_cid_check CHECK ((cid ~ '^[A-Za-z0-9]+$'::text)),
    CONSTRAINT availability_checks_fetch_digest_check CHECK ((fetch_digest ~ '^0x[0-9a-f]{64}$'::text)),
    CONSTRAINT availability_checks_gateways_ok_check CHECK (((gateways_ok >= 0) AND (gateways_ok <= 255))),
    CONSTRAINT availability_checks_outcome CHECK (
CASE outcome
    WHEN 'available'::text THEN (available AND (reason IS NULL))
    WHEN 'invalid'::text THEN (reason IS NOT NULL AND reason <> 'CID_UNAVAILABLE'::text)
    WHEN 'unavailable'::text THEN ((NOT available) AND (reason IS NOT DISTINCT FROM 'CID_UNAVAILABLE'::text))
    WHEN 'local_limit'::text THEN ((NOT available) AND (reason IS NULL))
    ELSE false
END),
    CONSTRAINT availability_checks_probes_check CHECK ((jsonb_typeof(probes) = 'array'::text)),
    CONSTRAINT availability_checks_reason_check CHECK ((reason = ANY (ARRAY['CID_UNAVAILABLE'::text, 'CID_HASH_MISMATCH'::text, 'FORMAT_INVALID'::text])))
);

ALTER TABLE nweb.availability_checks ALTER COLUMN check_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME nweb.availability_checks_check_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE ONLY nweb.availability_checks
    ADD CONSTRAINT availability_checks_pkey PRIMARY KEY (check_id);

CREATE INDEX availability_checks_cid ON nweb.availability_checks USING btree (cid, checked_at DESC);

COMMENT ON TABLE nweb.availability_checks IS 'One row per probe of a bundle CID by xray-loader check: the AvailabilityCheck schema (available, attempts, gatewaysOk, fetchDigest, checkedAt), the reason when it is unavailable or invalid, every source''s outcome, and the transactions of the attestation and Challenge filed for it';

COMMENT ON COLUMN nweb.availability_checks.available IS 'True when at least one source served the whole DAG with every block matching its CID';

COMMENT ON COLUMN nweb.availability_checks.attempts IS 'Sources tried (gateways, Kubo, the local CAR directory)';

COMMENT ON COLUMN nweb.availability_checks.gateways_ok IS 'Sources that served a complete, verified CAR';

COMMENT ON COLUMN nweb.availability_checks.fetch_digest IS 'SHA-256 of the binary CIDs of the verified blocks, sorted: the same for every source that served the whole DAG; zero when nothing was verified';

COMMENT ON COLUMN nweb.availability_checks.reason IS 'CID_UNAVAILABLE when no source served it intact; FORMAT_INVALID or CID_HASH_MISMATCH when it was fetched and its verdict is invalid; NULL when available or when our limit stopped the check';

COMMENT ON COLUMN nweb.availability_checks.outcome IS 'available, invalid (fetched, verdict invalid), unavailable (no source served it intact) or local_limit (one of our own limits stopped every source that answered: available false, no reason, the limit in reason_detail; says nothing about the submitter, docs/design.md D42)';

COMMENT ON COLUMN nweb.availability_checks.probes IS '[{source, liveness, cached, car, status, bytes, ms, error}] per source';

GRANT SELECT ON TABLE nweb.availability_checks TO xray_reader;
GRANT INSERT ON TABLE nweb.availability_checks TO xray_ingest;

