-- Configuration tables the engine reads on every ingest (xray.engine_config()),
-- with their shipped rows. xray.config_row_guard keeps the shipped rows
-- recognisable (is_default) so an admin's edits survive dump and restore.

CREATE FUNCTION xray.config_row_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $_$
DECLARE
    key_match text;
    replaced  boolean;
BEGIN
    -- TG_ARGV holds the key columns of the table.
    SELECT string_agg(format('t.%1$I = ($1).%1$I', k), ' AND ') INTO key_match FROM unnest(TG_ARGV) AS k;
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('DELETE FROM %I.%I t WHERE t.is_default AND %s RETURNING true',
                       TG_TABLE_SCHEMA, TG_TABLE_NAME, key_match)
           INTO replaced USING NEW;
        IF replaced THEN
            NEW.is_default := true;
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.is_default AND EXISTS (
            SELECT 1 FROM unnest(TG_ARGV) AS k WHERE to_jsonb(OLD) -> k IS DISTINCT FROM to_jsonb(NEW) -> k)
        THEN
            RAISE EXCEPTION '%.%: the key of a shipped row cannot change', TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Insert a new row instead, and disable or edit the shipped one.';
        END IF;
        NEW.is_default := OLD.is_default;
        RETURN NEW;
    ELSE
        -- Depth 1 is a user's DELETE; the INSERT branch above deletes at depth 2.
        IF OLD.is_default AND pg_trigger_depth() = 1 THEN
            RAISE EXCEPTION '%.%: shipped rows cannot be deleted', TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Set enabled = false (admin_ports, panel_templates) or change its values.';
        END IF;
        RETURN OLD;
    END IF;
END
$_$;

CREATE TABLE xray.risk_buckets (
    risk_bucket text NOT NULL,
    name text NOT NULL,
    default_severity text NOT NULL,
    description text,
    is_default boolean DEFAULT false NOT NULL,
    CONSTRAINT risk_buckets_default_severity_check CHECK ((default_severity = ANY (ARRAY['info'::text, 'low'::text, 'medium'::text, 'high'::text, 'critical'::text]))),
    CONSTRAINT risk_buckets_name_check CHECK ((btrim(name) <> ''::text)),
    CONSTRAINT risk_buckets_risk_bucket_check CHECK ((risk_bucket = ANY (ARRAY['RB1'::text, 'RB2'::text, 'RB3'::text, 'RB4'::text, 'RB5'::text, 'RB6'::text, 'RB7'::text])))
);

INSERT INTO xray.risk_buckets (risk_bucket, name, default_severity, description, is_default) VALUES ('RB1', 'Exposed Remote Admin', 'high', 'SSH, RDP, VNC or WinRM reachable from the internet', true);
INSERT INTO xray.risk_buckets (risk_bucket, name, default_severity, description, is_default) VALUES ('RB2', 'Exposed Web Panels', 'high', 'A nuclei template of the panel allowlist matched', true);
INSERT INTO xray.risk_buckets (risk_bucket, name, default_severity, description, is_default) VALUES ('RB3', 'Weak Encryption', 'medium', 'TLS 1.0/1.1 enabled, or weak cipher classes', true);
INSERT INTO xray.risk_buckets (risk_bucket, name, default_severity, description, is_default) VALUES ('RB4', 'Certificate Issues', 'medium', 'Expired, near expiry, self-signed or hostname mismatch', true);
INSERT INTO xray.risk_buckets (risk_bucket, name, default_severity, description, is_default) VALUES ('RB5', 'Risky HTTP Security Headers', 'low', 'Required security headers missing (advisory)', true);
INSERT INTO xray.risk_buckets (risk_bucket, name, default_severity, description, is_default) VALUES ('RB6', 'Unresponsive / Unknown Edge Service', 'low', 'An open baseline port that no probe could classify', true);
INSERT INTO xray.risk_buckets (risk_bucket, name, default_severity, description, is_default) VALUES ('RB7', 'DNS Email Spoofing Risk', 'medium', 'SPF, DMARC or DKIM missing or weak', true);

ALTER TABLE ONLY xray.risk_buckets
    ADD CONSTRAINT risk_buckets_pkey PRIMARY KEY (risk_bucket);

CREATE TRIGGER risk_buckets_guard BEFORE INSERT OR DELETE OR UPDATE ON xray.risk_buckets FOR EACH ROW EXECUTE FUNCTION xray.config_row_guard('risk_bucket');

COMMENT ON TABLE xray.risk_buckets IS 'Risk bucket names and default severities, used by the views';

GRANT SELECT ON TABLE xray.risk_buckets TO xray_reader;
GRANT INSERT,DELETE,UPDATE ON TABLE xray.risk_buckets TO xray_admin;

CREATE TABLE xray.admin_ports (
    port integer NOT NULL,
    service_family text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    is_default boolean DEFAULT false NOT NULL,
    CONSTRAINT admin_ports_port_check CHECK (((port >= 1) AND (port <= 65535))),
    CONSTRAINT admin_ports_service_family_check CHECK ((service_family ~ '^[a-z0-9_-]+$'::text))
);

INSERT INTO xray.admin_ports (port, service_family, enabled, is_default) VALUES (22, 'ssh', true, true);
INSERT INTO xray.admin_ports (port, service_family, enabled, is_default) VALUES (2222, 'ssh', true, true);
INSERT INTO xray.admin_ports (port, service_family, enabled, is_default) VALUES (3389, 'rdp', true, true);
INSERT INTO xray.admin_ports (port, service_family, enabled, is_default) VALUES (5900, 'vnc', true, true);
INSERT INTO xray.admin_ports (port, service_family, enabled, is_default) VALUES (5901, 'vnc', true, true);
INSERT INTO xray.admin_ports (port, service_family, enabled, is_default) VALUES (5985, 'winrm', true, true);
INSERT INTO xray.admin_ports (port, service_family, enabled, is_default) VALUES (5986, 'winrm', true, true);

ALTER TABLE ONLY xray.admin_ports
    ADD CONSTRAINT admin_ports_pkey PRIMARY KEY (port);

CREATE TRIGGER admin_ports_guard BEFORE INSERT OR DELETE OR UPDATE ON xray.admin_ports FOR EACH ROW EXECUTE FUNCTION xray.config_row_guard('port');

COMMENT ON TABLE xray.admin_ports IS 'RB1: an open TCP port listed and enabled here is an exposed remote-admin service; the family goes into the fingerprint (svc:<family>)';

GRANT SELECT ON TABLE xray.admin_ports TO xray_reader;
GRANT INSERT,DELETE,UPDATE ON TABLE xray.admin_ports TO xray_admin;

CREATE TABLE xray.panel_templates (
    match_kind text NOT NULL,
    pattern text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    description text,
    is_default boolean DEFAULT false NOT NULL,
    CONSTRAINT panel_templates_match_kind_check CHECK ((match_kind = ANY (ARRAY['template_id'::text, 'tag'::text, 'path_fragment'::text]))),
    CONSTRAINT panel_templates_pattern_check CHECK ((pattern <> ''::text))
);

INSERT INTO xray.panel_templates (match_kind, pattern, enabled, description, is_default) VALUES ('tag', 'panel', true, 'nuclei templates tagged panel', true);
INSERT INTO xray.panel_templates (match_kind, pattern, enabled, description, is_default) VALUES ('path_fragment', 'exposed-panels/', true, 'nuclei-templates http/exposed-panels/', true);

ALTER TABLE ONLY xray.panel_templates
    ADD CONSTRAINT panel_templates_pkey PRIMARY KEY (match_kind, pattern);

CREATE TRIGGER panel_templates_guard BEFORE INSERT OR DELETE OR UPDATE ON xray.panel_templates FOR EACH ROW EXECUTE FUNCTION xray.config_row_guard('match_kind', 'pattern');

COMMENT ON TABLE xray.panel_templates IS 'RB2 allowlist: a nuclei finding is an exposed panel if its template_id equals, one of its tags equals (case-insensitive), or its template_path contains an enabled pattern';

GRANT SELECT ON TABLE xray.panel_templates TO xray_reader;
GRANT INSERT,DELETE,UPDATE ON TABLE xray.panel_templates TO xray_admin;

CREATE TABLE xray.scan_profiles (
    profile text NOT NULL,
    ports integer[] NOT NULL,
    description text,
    is_default boolean DEFAULT false NOT NULL,
    CONSTRAINT scan_profiles_ports_check CHECK (((array_position(ports, NULL::integer) IS NULL) AND (1 <= ALL (ports)) AND (65535 >= ALL (ports)))),
    CONSTRAINT scan_profiles_profile_check CHECK ((profile ~ '^[a-z0-9_-]+$'::text))
);

INSERT INTO xray.scan_profiles (profile, ports, description, is_default) VALUES ('verify', '{}', 'Verification scan of chosen targets: no profile-wide port coverage, only ports reported with a state count', true);
INSERT INTO xray.scan_profiles (profile, ports, description, is_default) VALUES ('fast_recheck', '{}', 'Fast re-check of chosen targets: no profile-wide port coverage, only ports reported with a state count', true);
INSERT INTO xray.scan_profiles (profile, ports, description, is_default) VALUES ('baseline', '{21,22,23,25,53,80,110,143,443,445,465,587,993,995,1433,1521,2222,3306,3389,5432,5900,5901,5985,5986,6379,8000,8008,8080,8443,8888,9200,9443,27017}', 'Scheduled baseline scan; also the RB6 allowlist', true);

ALTER TABLE ONLY xray.scan_profiles
    ADD CONSTRAINT scan_profiles_pkey PRIMARY KEY (profile);

CREATE TRIGGER scan_profiles_guard BEFORE INSERT OR DELETE OR UPDATE ON xray.scan_profiles FOR EACH ROW EXECUTE FUNCTION xray.config_row_guard('profile');

COMMENT ON TABLE xray.scan_profiles IS 'Port allowlist per scan profile: which ports a 1.0/1.1 payload (no coverage block) port-scanned; an empty list or a profile not listed here means no profile-wide coverage; baseline also gates RB6';

GRANT SELECT ON TABLE xray.scan_profiles TO xray_reader;
GRANT INSERT,DELETE,UPDATE ON TABLE xray.scan_profiles TO xray_admin;

CREATE TABLE xray.settings (
    singleton boolean DEFAULT true NOT NULL,
    near_expiry_days integer NOT NULL,
    is_default boolean DEFAULT false NOT NULL,
    CONSTRAINT settings_near_expiry_days_check CHECK (((near_expiry_days >= 0) AND (near_expiry_days <= 3650))),
    CONSTRAINT settings_singleton_check CHECK (singleton)
);

INSERT INTO xray.settings (singleton, near_expiry_days, is_default) VALUES (true, 30, true);

ALTER TABLE ONLY xray.settings
    ADD CONSTRAINT settings_pkey PRIMARY KEY (singleton);

CREATE TRIGGER settings_guard BEFORE INSERT OR DELETE OR UPDATE ON xray.settings FOR EACH ROW EXECUTE FUNCTION xray.config_row_guard('singleton');

COMMENT ON TABLE xray.settings IS 'Engine settings (exactly one row)';

COMMENT ON COLUMN xray.settings.near_expiry_days IS 'RB4: a certificate expiring within this many days of the scan''s finished_at is near expiry';

GRANT SELECT ON TABLE xray.settings TO xray_reader;
GRANT UPDATE ON TABLE xray.settings TO xray_admin;

CREATE FUNCTION xray.engine_config() RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
SELECT jsonb_build_object(
    'admin_ports',
        (SELECT coalesce(jsonb_object_agg(port::text, service_family), '{}') FROM xray.admin_ports WHERE enabled),
    'panel_template_ids',
        (SELECT coalesce(jsonb_agg(pattern ORDER BY pattern), '[]') FROM xray.panel_templates
          WHERE enabled AND match_kind = 'template_id'),
    'panel_tags',
        (SELECT coalesce(jsonb_agg(pattern ORDER BY pattern), '[]') FROM xray.panel_templates
          WHERE enabled AND match_kind = 'tag'),
    'panel_path_fragments',
        (SELECT coalesce(jsonb_agg(pattern ORDER BY pattern), '[]') FROM xray.panel_templates
          WHERE enabled AND match_kind = 'path_fragment'),
    'profile_ports',
        (SELECT coalesce(jsonb_object_agg(profile, to_jsonb(ports)), '{}') FROM xray.scan_profiles),
    'near_expiry_days',
        (SELECT near_expiry_days FROM xray.settings))
$$;

COMMENT ON FUNCTION xray.engine_config() IS 'The engine configuration built from the configuration tables, as read by the ingest trigger';

CREATE FUNCTION xray.severity_rank(severity text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT array_position(ARRAY['info', 'low', 'medium', 'high', 'critical'], severity) $$;

COMMENT ON FUNCTION xray.severity_rank(severity text) IS 'info=1, low=2, medium=3, high=4, critical=5; for ORDER BY';

