-- The XRAY tables: submitted scans, the current state of every exposure, its
-- immutable events, the inventory and the re-key and triage logs. Each table
-- is followed by its constraints, indexes, triggers, row-level security
-- policy, comments and grants. Only the ingest trigger (xray_pg/src/ingest.rs)
-- and xray.triage() (xray_ingest.sql) write them; a loader INSERTs a payload
-- and nothing else.

CREATE FUNCTION xray.refuse_event_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'Rows here are history. Triage an exposure with xray.triage() instead of editing them.';
END
$$;

CREATE TABLE xray.scan_results (
    scan_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    schema_version text NOT NULL,
    scan_kind text,
    scan_profile text,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    status text NOT NULL,
    exposure_count integer DEFAULT 0 NOT NULL,
    new_count integer DEFAULT 0 NOT NULL,
    changed_count integer DEFAULT 0 NOT NULL,
    fixed_count integer DEFAULT 0 NOT NULL,
    held_open_count integer DEFAULT 0 NOT NULL,
    error_count integer DEFAULT 0 NOT NULL,
    ingested_at timestamp with time zone DEFAULT now() NOT NULL,
    payload jsonb NOT NULL,
    asset_count integer DEFAULT 0 NOT NULL,
    endpoint_count integer DEFAULT 0 NOT NULL,
    stale_asset_ids uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    warnings jsonb DEFAULT '[]'::jsonb NOT NULL,
    CONSTRAINT scan_results_stale_asset_ids_check CHECK (
CASE status
    WHEN 'applied'::text THEN (cardinality(stale_asset_ids) = 0)
    WHEN 'partial'::text THEN (cardinality(stale_asset_ids) > 0)
    ELSE true
END),
    CONSTRAINT scan_results_status_check CHECK ((status = ANY (ARRAY['applied'::text, 'partial'::text, 'stale'::text]))),
    CONSTRAINT scan_results_warnings_check CHECK ((jsonb_typeof(warnings) = 'array'::text))
);
ALTER TABLE ONLY xray.scan_results ALTER COLUMN payload SET COMPRESSION lz4;

ALTER TABLE ONLY xray.scan_results FORCE ROW LEVEL SECURITY;

ALTER TABLE ONLY xray.scan_results
    ADD CONSTRAINT scan_results_pkey PRIMARY KEY (scan_id);

CREATE INDEX scan_results_tenant_time ON xray.scan_results USING btree (tenant_id, started_at);

CREATE TRIGGER scan_results_immutable BEFORE UPDATE ON xray.scan_results FOR EACH ROW EXECUTE FUNCTION xray.refuse_event_change();

CREATE TRIGGER scan_results_ingest BEFORE INSERT ON xray.scan_results FOR EACH ROW EXECUTE FUNCTION @extschema@.xray_ingest_scan_result();

ALTER TABLE xray.scan_results ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_ingest ON xray.scan_results FOR INSERT TO xray_ingest WITH CHECK ((tenant_id = ( SELECT xray.current_tenant() AS current_tenant)));

CREATE POLICY tenant_read ON xray.scan_results FOR SELECT USING ((tenant_id = ( SELECT xray.current_tenant() AS current_tenant)));

COMMENT ON TABLE xray.scan_results IS 'Submitted scan-result payloads; INSERT (payload) runs the exposure diff in the same transaction';

COMMENT ON COLUMN xray.scan_results.status IS 'applied: state and events updated for every asset in scope; partial: applied to some assets, skipped for stale_asset_ids; stale: every asset in scope skipped, stored only';

COMMENT ON COLUMN xray.scan_results.held_open_count IS 'Exposures absent from this scan but kept open because the scan did not prove the check ran';

COMMENT ON COLUMN xray.scan_results.asset_count IS 'Entries in asset_results';

COMMENT ON COLUMN xray.scan_results.endpoint_count IS 'Endpoints over all asset_results';

COMMENT ON COLUMN xray.scan_results.stale_asset_ids IS 'Assets in scope skipped because a newer scan of them was already applied (sorted); empty when applied';

COMMENT ON COLUMN xray.scan_results.warnings IS 'Observations the engine kept in the payload but could not use: [{"path": field path, "problem": …}]';

GRANT SELECT ON TABLE xray.scan_results TO xray_reader;

GRANT INSERT(payload) ON TABLE xray.scan_results TO xray_ingest;

CREATE TABLE xray.exposures (
    tenant_id uuid NOT NULL,
    identity_key text NOT NULL,
    asset_id uuid NOT NULL,
    observed_host text NOT NULL,
    observed_ip inet,
    risk_bucket text NOT NULL,
    proto text NOT NULL,
    port integer NOT NULL,
    fingerprint text NOT NULL,
    detail text,
    identity_version integer DEFAULT 1 NOT NULL,
    fingerprint_version integer DEFAULT 1 NOT NULL,
    status text NOT NULL,
    first_seen timestamp with time zone NOT NULL,
    last_seen timestamp with time zone NOT NULL,
    last_scan_id uuid NOT NULL,
    material_hash text NOT NULL,
    evidence jsonb NOT NULL,
    last_change_type text,
    reopen_count integer DEFAULT 0 NOT NULL,
    fixed_at timestamp with time zone,
    fixed_scan_id uuid,
    CONSTRAINT exposures_last_change_type_check CHECK ((last_change_type = ANY (ARRAY['NEW'::text, 'CHANGED'::text, 'FIXED'::text]))),
    CONSTRAINT exposures_port_check CHECK (((port >= 0) AND (port <= 65535))),
    CONSTRAINT exposures_risk_bucket_check CHECK ((risk_bucket = ANY (ARRAY['RB1'::text, 'RB2'::text, 'RB3'::text, 'RB4'::text, 'RB5'::text, 'RB6'::text, 'RB7'::text]))),
    CONSTRAINT exposures_status_check CHECK ((status = ANY (ARRAY['open'::text, 'fixed'::text, 'suppressed'::text, 'false_positive'::text])))
);

ALTER TABLE ONLY xray.exposures FORCE ROW LEVEL SECURITY;

ALTER TABLE ONLY xray.exposures
    ADD CONSTRAINT exposures_pkey PRIMARY KEY (tenant_id, identity_key);

CREATE INDEX exposures_scope ON xray.exposures USING btree (tenant_id, asset_id, status);

ALTER TABLE xray.exposures ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_read ON xray.exposures FOR SELECT USING ((tenant_id = ( SELECT xray.current_tenant() AS current_tenant)));

COMMENT ON TABLE xray.exposures IS 'Current state of every exposure identity (one row per tenant_id, identity_key)';

COMMENT ON COLUMN xray.exposures.detail IS 'Fingerprint plus material parts, e.g. issue:expired|cert:spki:..., for reading';

COMMENT ON COLUMN xray.exposures.fingerprint_version IS 'Version of the bucket''s fingerprint rules in identity_key (fpv:); RB6 is 2 since 0.5.0, every other bucket 1';

COMMENT ON COLUMN xray.exposures.evidence IS 'Evidence of the last NEW or CHANGED event';

GRANT SELECT ON TABLE xray.exposures TO xray_reader;

CREATE TABLE xray.exposure_events (
    event_id bigint NOT NULL,
    scan_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    identity_key text NOT NULL,
    event_type text NOT NULL,
    risk_bucket text NOT NULL,
    asset_id uuid NOT NULL,
    observed_host text NOT NULL,
    observed_ip inet,
    proto text NOT NULL,
    port integer NOT NULL,
    fingerprint text NOT NULL,
    detail text,
    prev_material_hash text,
    material_hash text,
    evidence jsonb NOT NULL,
    reopened boolean DEFAULT false NOT NULL,
    observed_at timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT exposure_events_event_type_check CHECK ((event_type = ANY (ARRAY['NEW'::text, 'CHANGED'::text, 'FIXED'::text])))
);

ALTER TABLE ONLY xray.exposure_events FORCE ROW LEVEL SECURITY;

ALTER TABLE xray.exposure_events ALTER COLUMN event_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME xray.exposure_events_event_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE ONLY xray.exposure_events
    ADD CONSTRAINT exposure_events_pkey PRIMARY KEY (event_id);

CREATE INDEX exposure_events_identity ON xray.exposure_events USING btree (tenant_id, identity_key);

CREATE INDEX exposure_events_scan ON xray.exposure_events USING btree (scan_id);

CREATE INDEX exposure_events_tenant_time ON xray.exposure_events USING btree (tenant_id, created_at);

CREATE TRIGGER exposure_events_immutable BEFORE DELETE OR UPDATE ON xray.exposure_events FOR EACH ROW EXECUTE FUNCTION xray.refuse_event_change();

CREATE TRIGGER exposure_events_no_truncate BEFORE TRUNCATE ON xray.exposure_events FOR EACH STATEMENT EXECUTE FUNCTION xray.refuse_event_change();

ALTER TABLE xray.exposure_events ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_read ON xray.exposure_events FOR SELECT USING ((tenant_id = ( SELECT xray.current_tenant() AS current_tenant)));

COMMENT ON TABLE xray.exposure_events IS 'Immutable NEW / CHANGED / FIXED events; UPDATE, DELETE and TRUNCATE are refused';

COMMENT ON COLUMN xray.exposure_events.evidence IS 'NEW/CHANGED: current evidence. FIXED: {"last_open": evidence when last open, "proof": what the fixing scan covered}';

COMMENT ON COLUMN xray.exposure_events.observed_at IS 'The scan''s time (finished_at, else started_at), not the wall clock';

GRANT SELECT ON TABLE xray.exposure_events TO xray_reader;

CREATE TABLE xray.asset_scans (
    tenant_id uuid NOT NULL,
    asset_id uuid NOT NULL,
    last_scan_id uuid NOT NULL,
    last_observed_at timestamp with time zone NOT NULL
);

ALTER TABLE ONLY xray.asset_scans FORCE ROW LEVEL SECURITY;

ALTER TABLE ONLY xray.asset_scans
    ADD CONSTRAINT asset_scans_pkey PRIMARY KEY (tenant_id, asset_id);

ALTER TABLE xray.asset_scans ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_read ON xray.asset_scans FOR SELECT USING ((tenant_id = ( SELECT xray.current_tenant() AS current_tenant)));

COMMENT ON TABLE xray.asset_scans IS 'Newest applied scan per asset; a scan older than this for an asset skips that asset (stale_asset_ids)';

GRANT SELECT ON TABLE xray.asset_scans TO xray_reader;

CREATE TABLE xray.assets (
    tenant_id uuid NOT NULL,
    asset_id uuid NOT NULL,
    asset_type text NOT NULL,
    asset_value text,
    canonical_host text,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    first_seen timestamp with time zone NOT NULL,
    last_seen timestamp with time zone NOT NULL,
    last_scan_id uuid NOT NULL
);

ALTER TABLE ONLY xray.assets FORCE ROW LEVEL SECURITY;

ALTER TABLE ONLY xray.assets
    ADD CONSTRAINT assets_pkey PRIMARY KEY (tenant_id, asset_id);

ALTER TABLE xray.assets ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_read ON xray.assets FOR SELECT USING ((tenant_id = ( SELECT xray.current_tenant() AS current_tenant)));

COMMENT ON TABLE xray.assets IS 'Every asset an applied scan reported, as of its newest scan';

GRANT SELECT ON TABLE xray.assets TO xray_reader;

CREATE TABLE xray.endpoints (
    tenant_id uuid NOT NULL,
    asset_id uuid NOT NULL,
    endpoint_id text NOT NULL,
    ip inet,
    observed_host text NOT NULL,
    domain_context text,
    open_tcp_ports integer[] DEFAULT '{}'::integer[] NOT NULL,
    tls_ports integer[] DEFAULT '{}'::integer[] NOT NULL,
    http_urls text[] DEFAULT '{}'::text[] NOT NULL,
    first_seen timestamp with time zone NOT NULL,
    last_seen timestamp with time zone NOT NULL,
    last_scan_id uuid NOT NULL
);

ALTER TABLE ONLY xray.endpoints FORCE ROW LEVEL SECURITY;

ALTER TABLE ONLY xray.endpoints
    ADD CONSTRAINT endpoints_pkey PRIMARY KEY (tenant_id, asset_id, endpoint_id);

ALTER TABLE xray.endpoints ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_read ON xray.endpoints FOR SELECT USING ((tenant_id = ( SELECT xray.current_tenant() AS current_tenant)));

COMMENT ON TABLE xray.endpoints IS 'Every endpoint an applied scan reported, with what its newest scan saw';

COMMENT ON COLUMN xray.endpoints.tls_ports IS 'Ports where a TLS handshake completed';

COMMENT ON COLUMN xray.endpoints.http_urls IS 'URLs that answered with an HTTP status';

GRANT SELECT ON TABLE xray.endpoints TO xray_reader;

CREATE TABLE xray.identity_rekeys (
    tenant_id uuid NOT NULL,
    old_identity_key text NOT NULL,
    identity_key text NOT NULL,
    risk_bucket text NOT NULL,
    kept boolean NOT NULL,
    old_status text NOT NULL,
    old_state jsonb NOT NULL,
    rekeyed_in text NOT NULL,
    rekeyed_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY xray.identity_rekeys FORCE ROW LEVEL SECURITY;

ALTER TABLE ONLY xray.identity_rekeys
    ADD CONSTRAINT identity_rekeys_pkey PRIMARY KEY (tenant_id, old_identity_key);

CREATE INDEX identity_rekeys_current ON xray.identity_rekeys USING btree (tenant_id, identity_key);

ALTER TABLE xray.identity_rekeys ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_read ON xray.identity_rekeys FOR SELECT USING ((tenant_id = ( SELECT xray.current_tenant() AS current_tenant)));

COMMENT ON TABLE xray.identity_rekeys IS 'Identities re-keyed by an extension update (identity rule change): events keep old_identity_key, the state row is now identity_key';

COMMENT ON COLUMN xray.identity_rekeys.kept IS 'true: this row of xray.exposures was kept and re-keyed; false: it collapsed into another row with the same new identity and was removed from the state (old_state keeps it)';

COMMENT ON COLUMN xray.identity_rekeys.old_state IS 'The xray.exposures row as it was before the update';

COMMENT ON COLUMN xray.identity_rekeys.rekeyed_in IS 'The update and the rule that re-keyed it, e.g. 0.4.0->0.5.0 RB6 fingerprint version 2';

GRANT SELECT ON TABLE xray.identity_rekeys TO xray_reader;

CREATE TABLE xray.triage_log (
    triage_id bigint NOT NULL,
    tenant_id uuid NOT NULL,
    identity_key text NOT NULL,
    from_status text NOT NULL,
    to_status text NOT NULL,
    reason text NOT NULL,
    actor text NOT NULL,
    db_user name DEFAULT SESSION_USER NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT triage_log_actor_check CHECK ((btrim(actor) <> ''::text)),
    CONSTRAINT triage_log_reason_check CHECK ((btrim(reason) <> ''::text))
);

ALTER TABLE ONLY xray.triage_log FORCE ROW LEVEL SECURITY;

ALTER TABLE xray.triage_log ALTER COLUMN triage_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME xray.triage_log_triage_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE ONLY xray.triage_log
    ADD CONSTRAINT triage_log_pkey PRIMARY KEY (triage_id);

CREATE INDEX triage_log_identity ON xray.triage_log USING btree (tenant_id, identity_key, triage_id);

CREATE TRIGGER triage_log_immutable BEFORE DELETE OR UPDATE ON xray.triage_log FOR EACH ROW EXECUTE FUNCTION xray.refuse_event_change();

CREATE TRIGGER triage_log_no_truncate BEFORE TRUNCATE ON xray.triage_log FOR EACH STATEMENT EXECUTE FUNCTION xray.refuse_event_change();

ALTER TABLE xray.triage_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_read ON xray.triage_log FOR SELECT USING ((tenant_id = ( SELECT xray.current_tenant() AS current_tenant)));

COMMENT ON TABLE xray.triage_log IS 'Append-only audit of xray.triage(): who changed which exposure''s status, from what, to what, and why';

COMMENT ON COLUMN xray.triage_log.actor IS 'The person as named by the caller (default: the login role)';

COMMENT ON COLUMN xray.triage_log.db_user IS 'The login role of the session that called xray.triage()';

GRANT SELECT ON TABLE xray.triage_log TO xray_reader;

