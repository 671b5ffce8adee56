-- xray_pg 0.1.0 -> 0.2.0: the SQL surface (typed views, configuration
-- tables, triage, tenant isolation, notifications, dump support).
--
-- This file is both the upgrade script and the 0.2.0 part of the install
-- script: xray_pg/src/lib.rs appends it to the frozen 0.1.0 DDL, so a fresh
-- 0.2.0 install and an upgraded 0.1.0 install run the same statements and end
-- up identical (tests/tests/sql_surface_upgrade.rs checks it). Never edit it
-- after 0.2.0 ships; later changes go into xray_pg--0.2.0--<next>.sql.
--
-- Every statement must work on an empty 0.1.0 schema (fresh install) and on
-- one holding data (upgrade). C functions added here are declared here, with
-- `sql = false` on the Rust side.
\echo Use "ALTER EXTENSION xray_pg UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Roles. They are cluster-wide, so CREATE EXTENSION in a second database (or
-- in two databases at once) must find them existing and carry on.
------------------------------------------------------------------------------
DO $roles$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT * FROM (VALUES ('xray_reader', NULL::text),
                              ('xray_ingest', 'xray_reader'),
                              ('xray_admin',  'xray_ingest')) AS v(role_name, member_of)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r.role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by CREATE EXTENSION in another database
            END;
        END IF;
        IF r.member_of IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_auth_members m
             WHERE m.roleid = r.member_of::regrole AND m.member = r.role_name::regrole)
        THEN
            BEGIN
                EXECUTE format('GRANT %I TO %I', r.member_of, r.role_name);
            EXCEPTION WHEN unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$roles$;

------------------------------------------------------------------------------
-- Small helpers.
------------------------------------------------------------------------------
-- 0.1.0 named only exposure_events in the message; the function now guards
-- scan_results and triage_log too.
CREATE OR REPLACE FUNCTION xray.refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'Rows here are history. Triage an exposure with xray.triage() instead of editing them.';
END
$$;

CREATE FUNCTION xray.json_array(value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN jsonb_typeof(value) = 'array' THEN value ELSE '[]'::jsonb END $$;
COMMENT ON FUNCTION xray.json_array(jsonb) IS 'The value if it is a JSON array, else []: lets views expand optional payload arrays';

CREATE FUNCTION xray.severity_rank(severity text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT array_position(ARRAY['info', 'low', 'medium', 'high', 'critical'], severity) $$;
COMMENT ON FUNCTION xray.severity_rank(text) IS 'info=1, low=2, medium=3, high=4, critical=5; for ORDER BY';

------------------------------------------------------------------------------
-- Configuration tables. The engine reads them through xray.engine_config()
-- once per scan. Shipped rows have is_default = true: they cannot be deleted
-- (disable or edit them instead), and an INSERT of a shipped key replaces the
-- shipped row, which is how pg_restore brings back edited defaults on top of
-- the rows CREATE EXTENSION seeds.
------------------------------------------------------------------------------
CREATE FUNCTION xray.config_row_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
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
$$;

CREATE TABLE xray.risk_buckets (
    risk_bucket      text    PRIMARY KEY CHECK (risk_bucket IN ('RB1','RB2','RB3','RB4','RB5','RB6','RB7')),
    name             text    NOT NULL CHECK (btrim(name) <> ''),
    default_severity text    NOT NULL CHECK (default_severity IN ('info', 'low', 'medium', 'high', 'critical')),
    description      text,
    is_default       boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE xray.risk_buckets IS 'Risk bucket names and default severities, used by the views';
INSERT INTO xray.risk_buckets (risk_bucket, name, default_severity, description, is_default) VALUES
    ('RB1', 'Exposed Remote Admin',                'high',   'SSH, RDP, VNC or WinRM reachable from the internet', true),
    ('RB2', 'Exposed Web Panels',                  'high',   'A nuclei template of the panel allowlist matched', true),
    ('RB3', 'Weak Encryption',                     'medium', 'TLS 1.0/1.1 enabled, or weak cipher classes', true),
    ('RB4', 'Certificate Issues',                  'medium', 'Expired, near expiry, self-signed or hostname mismatch', true),
    ('RB5', 'Risky HTTP Security Headers',         'low',    'Required security headers missing (advisory)', true),
    ('RB6', 'Unresponsive / Unknown Edge Service', 'low',    'An open baseline port that no probe could classify', true),
    ('RB7', 'DNS Email Spoofing Risk',             'medium', 'SPF, DMARC or DKIM missing or weak', true);

CREATE TABLE xray.admin_ports (
    port           integer PRIMARY KEY CHECK (port BETWEEN 1 AND 65535),
    service_family text    NOT NULL CHECK (service_family ~ '^[a-z0-9_-]+$'),
    enabled        boolean NOT NULL DEFAULT true,
    is_default     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE xray.admin_ports IS 'RB1: an open TCP port listed and enabled here is an exposed remote-admin service; the family goes into the fingerprint (svc:<family>)';
INSERT INTO xray.admin_ports (port, service_family, is_default) VALUES
    (22, 'ssh', true), (2222, 'ssh', true), (3389, 'rdp', true), (5900, 'vnc', true),
    (5901, 'vnc', true), (5985, 'winrm', true), (5986, 'winrm', true);

CREATE TABLE xray.panel_templates (
    match_kind  text    NOT NULL CHECK (match_kind IN ('template_id', 'tag', 'path_fragment')),
    pattern     text    NOT NULL CHECK (pattern <> ''),
    enabled     boolean NOT NULL DEFAULT true,
    description text,
    is_default  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (match_kind, pattern)
);
COMMENT ON TABLE xray.panel_templates IS 'RB2 allowlist: a nuclei finding is an exposed panel if its template_id equals, one of its tags equals (case-insensitive), or its template_path contains an enabled pattern';
INSERT INTO xray.panel_templates (match_kind, pattern, description, is_default) VALUES
    ('tag', 'panel', 'nuclei templates tagged panel', true),
    ('path_fragment', 'exposed-panels/', 'nuclei-templates http/exposed-panels/', true);

CREATE TABLE xray.scan_profiles (
    profile     text      PRIMARY KEY CHECK (profile ~ '^[a-z0-9_-]+$'),
    ports       integer[] NOT NULL CHECK (array_position(ports, NULL) IS NULL
                                          AND 1 <= ALL (ports) AND 65535 >= ALL (ports)),
    description text,
    is_default  boolean   NOT NULL DEFAULT false
);
COMMENT ON TABLE xray.scan_profiles IS 'Port allowlist per scan profile: which ports a 1.0/1.1 payload (no coverage block) port-scanned; baseline also gates RB6';
INSERT INTO xray.scan_profiles (profile, ports, description, is_default)
SELECT p.profile, '{21,22,23,25,53,80,110,143,443,445,465,587,993,995,1433,1521,2222,3306,3389,5432,5900,5901,5985,5986,6379,8000,8008,8080,8443,8888,9200,9443,27017}', p.description, true
  FROM (VALUES ('baseline', 'Scheduled baseline scan; also the RB6 allowlist and the fallback for unknown profiles'),
               ('verify', 'Verification scan'),
               ('fast_recheck', 'Fast re-check')) AS p(profile, description);

CREATE TABLE xray.settings (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    near_expiry_days integer NOT NULL CHECK (near_expiry_days BETWEEN 0 AND 3650),
    is_default       boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE xray.settings IS 'Engine settings (exactly one row)';
COMMENT ON COLUMN xray.settings.near_expiry_days IS 'RB4: a certificate expiring within this many days of the scan''s finished_at is near expiry';
INSERT INTO xray.settings (near_expiry_days, is_default) VALUES (30, true);

CREATE TRIGGER risk_buckets_guard BEFORE INSERT OR UPDATE OR DELETE ON xray.risk_buckets
    FOR EACH ROW EXECUTE FUNCTION xray.config_row_guard('risk_bucket');
CREATE TRIGGER admin_ports_guard BEFORE INSERT OR UPDATE OR DELETE ON xray.admin_ports
    FOR EACH ROW EXECUTE FUNCTION xray.config_row_guard('port');
CREATE TRIGGER panel_templates_guard BEFORE INSERT OR UPDATE OR DELETE ON xray.panel_templates
    FOR EACH ROW EXECUTE FUNCTION xray.config_row_guard('match_kind', 'pattern');
CREATE TRIGGER scan_profiles_guard BEFORE INSERT OR UPDATE OR DELETE ON xray.scan_profiles
    FOR EACH ROW EXECUTE FUNCTION xray.config_row_guard('profile');
CREATE TRIGGER settings_guard BEFORE INSERT OR UPDATE OR DELETE ON xray.settings
    FOR EACH ROW EXECUTE FUNCTION xray.config_row_guard('singleton');

-- The whole engine configuration as one value, so the ingest trigger reads
-- it with a single statement per scan. Also the `config` argument of
-- xray_normalize(payload, config).
CREATE FUNCTION xray.engine_config() RETURNS jsonb
LANGUAGE sql STABLE AS $$
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

------------------------------------------------------------------------------
-- Tenants. A session selects its tenant with xray.set_tenant(); it may only
-- select tenants granted (xray.tenant_access) to its login role or a role that
-- login role is a member of. Superusers and BYPASSRLS roles may ingest for
-- any tenant and are not filtered.
------------------------------------------------------------------------------
CREATE TABLE xray.tenant_access (
    role_name  name        NOT NULL,
    tenant_id  uuid        NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    granted_by name        NOT NULL DEFAULT session_user,
    PRIMARY KEY (role_name, tenant_id)
);
COMMENT ON TABLE xray.tenant_access IS 'Which roles may select which tenant (xray.set_tenant); membership in role_name counts';

CREATE FUNCTION xray.session_bypasses_rls() RETURNS boolean
LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
SELECT coalesce((SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = session_user), false)
$$;
COMMENT ON FUNCTION xray.session_bypasses_rls() IS 'The session''s login role is a superuser or has BYPASSRLS';

-- session_user, not current_user: the ingest trigger and xray.triage() run as
-- the extension owner, and must still judge the caller's access.
CREATE FUNCTION xray.tenant_allowed(tenant uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT xray.session_bypasses_rls() OR EXISTS (
    SELECT 1
      FROM xray.tenant_access a
      JOIN pg_catalog.pg_roles r ON r.rolname = a.role_name
     WHERE a.tenant_id = tenant_allowed.tenant
       AND pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))
$$;
COMMENT ON FUNCTION xray.tenant_allowed(uuid) IS 'The session''s login role may select this tenant';

CREATE FUNCTION xray.current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
SELECT s.t
  FROM (SELECT nullif(pg_catalog.current_setting('xray.tenant_id', true), '')::uuid AS t) s
 WHERE xray.tenant_allowed(s.t)
$$;
COMMENT ON FUNCTION xray.current_tenant() IS 'The session''s tenant (setting xray.tenant_id) if the session may use it, else NULL; the row-level security policies compare tenant_id with it';

CREATE FUNCTION xray.set_tenant(tenant uuid, is_local boolean DEFAULT false) RETURNS uuid
LANGUAGE plpgsql AS $$
BEGIN
    IF tenant IS NOT NULL AND NOT xray.tenant_allowed(tenant) THEN
        RAISE EXCEPTION 'tenant % is not granted to role %', tenant, session_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'An xray_admin grants it: INSERT INTO xray.tenant_access (role_name, tenant_id) VALUES (...).';
    END IF;
    PERFORM pg_catalog.set_config('xray.tenant_id', coalesce(tenant::text, ''), is_local);
    RETURN tenant;
END
$$;
COMMENT ON FUNCTION xray.set_tenant(uuid, boolean) IS 'Select the session''s tenant (is_local: for the current transaction only); NULL clears it';

------------------------------------------------------------------------------
-- Inventory: assets and endpoints seen by applied scans.
------------------------------------------------------------------------------
ALTER TABLE xray.scan_results
    ADD COLUMN asset_count    integer NOT NULL DEFAULT 0,
    ADD COLUMN endpoint_count integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN xray.scan_results.asset_count IS 'Entries in asset_results';
COMMENT ON COLUMN xray.scan_results.endpoint_count IS 'Endpoints over all asset_results';

CREATE TABLE xray.assets (
    tenant_id      uuid        NOT NULL,
    asset_id       uuid        NOT NULL,
    asset_type     text        NOT NULL,
    asset_value    text,
    canonical_host text,
    tags           text[]      NOT NULL DEFAULT '{}',
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    last_scan_id   uuid        NOT NULL,
    PRIMARY KEY (tenant_id, asset_id)
);
COMMENT ON TABLE xray.assets IS 'Every asset an applied scan reported, as of its newest scan';

CREATE TABLE xray.endpoints (
    tenant_id      uuid        NOT NULL,
    asset_id       uuid        NOT NULL,
    endpoint_id    text        NOT NULL,
    ip             inet,
    observed_host  text        NOT NULL,
    domain_context text,
    open_tcp_ports integer[]   NOT NULL DEFAULT '{}',
    tls_ports      integer[]   NOT NULL DEFAULT '{}',
    http_urls      text[]      NOT NULL DEFAULT '{}',
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    last_scan_id   uuid        NOT NULL,
    PRIMARY KEY (tenant_id, asset_id, endpoint_id)
);
COMMENT ON TABLE xray.endpoints IS 'Every endpoint an applied scan reported, with what its newest scan saw';
COMMENT ON COLUMN xray.endpoints.tls_ports IS 'Ports where a TLS handshake completed';
COMMENT ON COLUMN xray.endpoints.http_urls IS 'URLs that answered with an HTTP status';

-- The endpoints of a payload with the engine's canonical host and endpoint id
-- (xray_core normalize::endpoint_views), for the inventory and proof_of_fix.
CREATE FUNCTION xray.payload_endpoints(payload jsonb)
RETURNS TABLE (asset_id uuid, endpoint_id text, ip inet, observed_host text, domain_context text, endpoint jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT (ar -> 'asset' ->> 'asset_id')::uuid,
       coalesce(ep ->> 'endpoint_id',
                CASE WHEN ep ->> 'ip' IS NOT NULL AND ep ->> 'domain_context' IS NOT NULL
                     THEN 'ip:' || (ep ->> 'ip') || '|domain:' || lower(rtrim(btrim(ep ->> 'domain_context'), '.'))
                     WHEN ep ->> 'ip' IS NOT NULL THEN 'ip:' || (ep ->> 'ip')
                     ELSE 'host:' || h.host END),
       (ep ->> 'ip')::inet,
       h.host,
       ep ->> 'domain_context',
       ep
  FROM jsonb_array_elements(xray.json_array(payload -> 'asset_results')) AS ar,
       jsonb_array_elements(xray.json_array(ar -> 'endpoints')) AS ep,
       LATERAL (SELECT lower(rtrim(btrim(coalesce(
                    ep ->> 'observed_host',
                    CASE WHEN ar -> 'asset' ->> 'asset_type' = 'domain'
                         THEN coalesce(ar -> 'asset' ->> 'canonical_host', ar -> 'asset' ->> 'asset_value') END,
                    ep ->> 'ip',
                    ar -> 'asset' ->> 'canonical_host',
                    ar -> 'asset' ->> 'asset_value',
                    '')), '.')) AS host) AS h
$$;
COMMENT ON FUNCTION xray.payload_endpoints(jsonb) IS 'Endpoints of a scan payload with canonical observed_host and endpoint_id, as the engine derives them';

-- Called by the ingest trigger for every applied scan (and once per stored
-- scan by the 0.1.0 -> 0.2.0 upgrade). Applied scans of an asset arrive in
-- time order (older ones are stale), so the newest scan's view wins.
CREATE FUNCTION xray.record_inventory(tenant uuid, scan uuid, seen_at timestamptz, payload jsonb)
RETURNS void LANGUAGE sql AS $$
INSERT INTO xray.assets AS a
    (tenant_id, asset_id, asset_type, asset_value, canonical_host, tags, first_seen, last_seen, last_scan_id)
SELECT DISTINCT ON ((ar -> 'asset' ->> 'asset_id')::uuid)
       tenant, (ar -> 'asset' ->> 'asset_id')::uuid, ar -> 'asset' ->> 'asset_type', ar -> 'asset' ->> 'asset_value',
       ar -> 'asset' ->> 'canonical_host',
       ARRAY(SELECT jsonb_array_elements_text(xray.json_array(ar -> 'asset' -> 'tags'))),
       seen_at, seen_at, scan
  FROM jsonb_array_elements(xray.json_array(payload -> 'asset_results')) AS ar
 ORDER BY (ar -> 'asset' ->> 'asset_id')::uuid
ON CONFLICT (tenant_id, asset_id) DO UPDATE SET
    asset_type     = EXCLUDED.asset_type,
    asset_value    = EXCLUDED.asset_value,
    canonical_host = EXCLUDED.canonical_host,
    tags           = EXCLUDED.tags,
    last_seen      = EXCLUDED.last_seen,
    last_scan_id   = EXCLUDED.last_scan_id
 WHERE a.last_seen <= EXCLUDED.last_seen;

INSERT INTO xray.endpoints AS p
    (tenant_id, asset_id, endpoint_id, ip, observed_host, domain_context, open_tcp_ports, tls_ports, http_urls,
     first_seen, last_seen, last_scan_id)
SELECT DISTINCT ON (e.asset_id, e.endpoint_id)
       tenant, e.asset_id, e.endpoint_id, e.ip, e.observed_host, e.domain_context,
       ARRAY(SELECT DISTINCT (t ->> 'port')::integer
               FROM jsonb_array_elements(xray.json_array(e.endpoint -> 'ports' -> 'tcp')) AS t
              WHERE t ->> 'state' = 'open' ORDER BY 1),
       ARRAY(SELECT DISTINCT (t ->> 'port')::integer
               FROM jsonb_array_elements(xray.json_array(e.endpoint -> 'tls')) AS t
              WHERE jsonb_array_length(xray.json_array(t -> 'tls_versions')) > 0
                 OR jsonb_typeof(t -> 'certificate') = 'object'
              ORDER BY 1),
       ARRAY(SELECT DISTINCT h ->> 'url'
               FROM jsonb_array_elements(xray.json_array(e.endpoint -> 'http')) AS h
              WHERE jsonb_typeof(h -> 'status_code') = 'number' ORDER BY 1),
       seen_at, seen_at, scan
  FROM xray.payload_endpoints(payload) AS e
 ORDER BY e.asset_id, e.endpoint_id
ON CONFLICT (tenant_id, asset_id, endpoint_id) DO UPDATE SET
    ip             = EXCLUDED.ip,
    observed_host  = EXCLUDED.observed_host,
    domain_context = EXCLUDED.domain_context,
    open_tcp_ports = EXCLUDED.open_tcp_ports,
    tls_ports      = EXCLUDED.tls_ports,
    http_urls      = EXCLUDED.http_urls,
    last_seen      = EXCLUDED.last_seen,
    last_scan_id   = EXCLUDED.last_scan_id
 WHERE p.last_seen <= EXCLUDED.last_seen;
$$;
COMMENT ON FUNCTION xray.record_inventory(uuid, uuid, timestamptz, jsonb) IS 'Upserts xray.assets and xray.endpoints from an applied scan (called by the ingest trigger)';

------------------------------------------------------------------------------
-- Triage: a person marks an exposure suppressed or false_positive (or undoes
-- it). Triaged exposures are still tracked by every scan but emit no events.
------------------------------------------------------------------------------
CREATE TABLE xray.triage_log (
    triage_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    identity_key text        NOT NULL,
    from_status  text        NOT NULL,
    to_status    text        NOT NULL,
    reason       text        NOT NULL CHECK (btrim(reason) <> ''),
    actor        text        NOT NULL CHECK (btrim(actor) <> ''),
    db_user      name        NOT NULL DEFAULT session_user,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX triage_log_identity ON xray.triage_log (tenant_id, identity_key, triage_id);
COMMENT ON TABLE xray.triage_log IS 'Append-only audit of xray.triage(): who changed which exposure''s status, from what, to what, and why';
COMMENT ON COLUMN xray.triage_log.actor IS 'The person as named by the caller (default: the login role)';
COMMENT ON COLUMN xray.triage_log.db_user IS 'The login role of the session that called xray.triage()';
CREATE TRIGGER triage_log_immutable
    BEFORE UPDATE OR DELETE ON xray.triage_log
    FOR EACH ROW EXECUTE FUNCTION xray.refuse_event_change();
CREATE TRIGGER triage_log_no_truncate
    BEFORE TRUNCATE ON xray.triage_log
    FOR EACH STATEMENT EXECUTE FUNCTION xray.refuse_event_change();

-- SECURITY DEFINER so that status changes only happen here, audited: no
-- reader, loader or admin role may UPDATE xray.exposures directly.
CREATE FUNCTION xray.triage(identity_key text, status text, reason text, actor text DEFAULT NULL)
RETURNS xray.triage_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    session_tenant uuid := xray.current_tenant();
    exposure_tenant uuid;
    current_status text;
    target text;
    entry xray.triage_log;
BEGIN
    IF triage.status IS NULL OR triage.status NOT IN ('suppressed', 'false_positive', 'open') THEN
        RAISE EXCEPTION 'status: must be suppressed, false_positive or open (undo a triage), got %',
                        coalesce(quote_literal(triage.status), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF triage.reason IS NULL OR btrim(triage.reason) = '' THEN
        RAISE EXCEPTION 'reason: a triage needs a reason' USING ERRCODE = 'not_null_violation';
    END IF;
    IF session_tenant IS NULL AND NOT xray.session_bypasses_rls() THEN
        RAISE EXCEPTION 'no tenant selected for this session'
            USING ERRCODE = 'insufficient_privilege', HINT = 'SELECT xray.set_tenant(''<tenant uuid>'') first.';
    END IF;

    SELECT x.tenant_id INTO exposure_tenant
      FROM xray.exposures x
     WHERE x.identity_key = triage.identity_key
       AND (session_tenant IS NULL OR x.tenant_id = session_tenant);
    IF exposure_tenant IS NULL THEN
        RAISE EXCEPTION 'identity_key: no exposure % in this tenant', coalesce(triage.identity_key, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    -- Same lock as the ingest trigger (ingest.rs lock_tenant): a scan that
    -- loaded the old status must not overwrite the triage when it writes.
    PERFORM pg_advisory_xact_lock(hashtextextended(exposure_tenant::text, 7419));

    SELECT x.status INTO current_status
      FROM xray.exposures x
     WHERE x.tenant_id = exposure_tenant AND x.identity_key = triage.identity_key
       FOR UPDATE;
    IF triage.status = 'open' THEN
        IF current_status NOT IN ('suppressed', 'false_positive') THEN
            RAISE EXCEPTION 'exposure % is %, not triaged: nothing to undo', triage.identity_key, current_status
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        -- Undo restores the lifecycle status it had when it was triaged.
        SELECT coalesce((SELECT l.from_status
                           FROM xray.triage_log l
                          WHERE l.tenant_id = exposure_tenant AND l.identity_key = triage.identity_key
                            AND l.from_status IN ('open', 'fixed')
                          ORDER BY l.triage_id DESC
                          LIMIT 1), 'open')
          INTO target;
    ELSE
        target := triage.status;
    END IF;

    UPDATE xray.exposures x SET status = target
     WHERE x.tenant_id = exposure_tenant AND x.identity_key = triage.identity_key;
    INSERT INTO xray.triage_log (tenant_id, identity_key, from_status, to_status, reason, actor)
    VALUES (exposure_tenant, triage.identity_key, current_status, target, triage.reason,
            coalesce(nullif(btrim(triage.actor), ''), session_user))
    RETURNING * INTO entry;
    RETURN entry;
END
$$;
COMMENT ON FUNCTION xray.triage(text, text, text, text) IS 'Mark an exposure of the session''s tenant suppressed or false_positive, or undo that with status => ''open''; audited in xray.triage_log';

------------------------------------------------------------------------------
-- C functions of this release (Rust side: sql = false).
------------------------------------------------------------------------------
-- Now reads the configuration tables, so it is STABLE, no longer IMMUTABLE.
CREATE OR REPLACE FUNCTION xray_normalize(payload jsonb)
RETURNS TABLE (identity_key text, risk_bucket text, asset_id uuid, observed_host text, observed_ip inet,
               proto text, port integer, fingerprint text, detail text, material_hash text, evidence jsonb)
STRICT STABLE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'xray_normalize_configured_wrapper';
COMMENT ON FUNCTION xray_normalize(jsonb) IS 'The deduplicated normalised exposures of a payload under the configuration tables; writes nothing';

CREATE FUNCTION xray_normalize(payload jsonb, config jsonb)
RETURNS TABLE (identity_key text, risk_bucket text, asset_id uuid, observed_host text, observed_ip inet,
               proto text, port integer, fingerprint text, detail text, material_hash text, evidence jsonb)
STRICT IMMUTABLE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'xray_normalize_with_config_wrapper';
COMMENT ON FUNCTION xray_normalize(jsonb, jsonb) IS 'Normalise under an explicit configuration (the shape of xray.engine_config(); absent keys take the shipped defaults)';

CREATE OR REPLACE FUNCTION xray_diff_scan(payload jsonb)
RETURNS TABLE (event_type text, identity_key text, risk_bucket text, asset_id uuid, observed_host text,
               proto text, port integer, fingerprint text, detail text, prev_material_hash text,
               material_hash text, reopened boolean, evidence jsonb)
STRICT STABLE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'xray_diff_scan_configured_wrapper';
COMMENT ON FUNCTION xray_diff_scan(jsonb) IS 'Dry run: the events this payload would produce now (under the configuration tables); writes nothing';

-- The trigger function keeps its name, so the existing trigger keeps working.
-- SECURITY DEFINER: the loader may only INSERT payloads; the events, state
-- and inventory rows derived from them are written with the owner's rights.
CREATE OR REPLACE FUNCTION xray_ingest_scan_result() RETURNS trigger
LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'xray_ingest_trigger_wrapper';
COMMENT ON FUNCTION xray_ingest_scan_result() IS 'BEFORE INSERT trigger of xray.scan_results: validate, diff, write events/state/inventory, NOTIFY xray_events';

------------------------------------------------------------------------------
-- Typed views for people and BI tools. security_invoker, so the caller's
-- row-level security applies.
------------------------------------------------------------------------------
CREATE VIEW xray.open_exposures WITH (security_invoker = true) AS
SELECT x.tenant_id,
       x.identity_key,
       x.asset_id,
       a.asset_value,
       x.observed_host,
       x.observed_ip,
       x.risk_bucket,
       b.name                                          AS bucket_name,
       b.default_severity                              AS severity,
       xray.severity_rank(b.default_severity)          AS severity_rank,
       x.proto,
       x.port,
       x.fingerprint,
       x.detail,
       x.first_seen,
       o.open_since,
       x.last_seen,
       now() - o.open_since                            AS age,
       floor(extract(epoch FROM now() - o.open_since) / 86400)::integer AS age_days,
       x.last_change_type,
       x.reopen_count,
       x.last_scan_id
  FROM xray.exposures x
  JOIN xray.risk_buckets b ON b.risk_bucket = x.risk_bucket
  LEFT JOIN xray.assets a ON a.tenant_id = x.tenant_id AND a.asset_id = x.asset_id
  CROSS JOIN LATERAL (
        SELECT coalesce(max(e.observed_at), x.first_seen) AS open_since
          FROM xray.exposure_events e
         WHERE e.tenant_id = x.tenant_id AND e.identity_key = x.identity_key AND e.event_type = 'NEW') o
 WHERE x.status = 'open';
COMMENT ON VIEW xray.open_exposures IS 'Open exposures with severity and age (since the NEW event that opened them)';

CREATE VIEW xray.exposure_timeline WITH (security_invoker = true) AS
SELECT e.event_id,
       e.tenant_id,
       e.scan_id,
       e.event_type,
       e.observed_at,
       e.created_at                                    AS recorded_at,
       e.identity_key,
       e.risk_bucket,
       b.name                                          AS bucket_name,
       b.default_severity                              AS severity,
       xray.severity_rank(b.default_severity)          AS severity_rank,
       e.asset_id,
       a.asset_value,
       e.observed_host,
       e.observed_ip,
       e.proto,
       e.port,
       e.fingerprint,
       e.detail,
       e.reopened,
       e.prev_material_hash,
       e.material_hash,
       o.opened_at,
       e.observed_at - o.opened_at                     AS time_to_fix,
       x.status                                        AS current_status,
       x.first_seen,
       x.last_seen,
       s.scan_kind,
       s.scan_profile
  FROM xray.exposure_events e
  JOIN xray.risk_buckets b ON b.risk_bucket = e.risk_bucket
  LEFT JOIN xray.exposures x ON x.tenant_id = e.tenant_id AND x.identity_key = e.identity_key
  LEFT JOIN xray.scan_results s ON s.scan_id = e.scan_id
  LEFT JOIN xray.assets a ON a.tenant_id = e.tenant_id AND a.asset_id = e.asset_id
  LEFT JOIN LATERAL (
        SELECT max(n.observed_at) AS opened_at
          FROM xray.exposure_events n
         WHERE e.event_type = 'FIXED'
           AND n.tenant_id = e.tenant_id AND n.identity_key = e.identity_key
           AND n.event_type = 'NEW' AND n.event_id < e.event_id) o ON true;
COMMENT ON VIEW xray.exposure_timeline IS 'Every event with bucket, severity, scan and the exposure''s current state; FIXED rows carry time_to_fix';
COMMENT ON COLUMN xray.exposure_timeline.time_to_fix IS 'FIXED only: observed_at minus the NEW event that opened the exposure';

CREATE VIEW xray.scan_summary WITH (security_invoker = true) AS
SELECT s.scan_id,
       s.tenant_id,
       s.scan_kind,
       s.scan_profile,
       s.schema_version,
       s.status,
       s.started_at,
       s.finished_at,
       s.finished_at - s.started_at                    AS duration,
       extract(epoch FROM s.finished_at - s.started_at)::double precision AS duration_seconds,
       s.ingested_at,
       s.asset_count,
       s.endpoint_count,
       s.exposure_count,
       s.new_count,
       s.changed_count,
       s.fixed_count,
       s.new_count + s.changed_count + s.fixed_count   AS event_count,
       s.held_open_count,
       s.error_count
  FROM xray.scan_results s;
COMMENT ON VIEW xray.scan_summary IS 'One row per submitted scan: status, duration, sizes, event counts by type, errors';

CREATE VIEW xray.scan_bucket_counts WITH (security_invoker = true) AS
SELECT e.scan_id,
       e.tenant_id,
       e.risk_bucket,
       b.name                                          AS bucket_name,
       b.default_severity                              AS severity,
       count(*) FILTER (WHERE e.event_type = 'NEW')     AS new_count,
       count(*) FILTER (WHERE e.event_type = 'CHANGED') AS changed_count,
       count(*) FILTER (WHERE e.event_type = 'FIXED')   AS fixed_count,
       count(*)                                        AS event_count
  FROM xray.exposure_events e
  JOIN xray.risk_buckets b ON b.risk_bucket = e.risk_bucket
 GROUP BY e.scan_id, e.tenant_id, e.risk_bucket, b.name, b.default_severity;
COMMENT ON VIEW xray.scan_bucket_counts IS 'Events per scan and risk bucket, by event type (buckets without events have no row)';

CREATE VIEW xray.assets_seen WITH (security_invoker = true) AS
SELECT a.tenant_id,
       a.asset_id,
       a.asset_type,
       a.asset_value,
       a.canonical_host,
       a.tags,
       a.first_seen,
       a.last_seen,
       a.last_scan_id,
       (SELECT count(*) FROM xray.endpoints p
         WHERE p.tenant_id = a.tenant_id AND p.asset_id = a.asset_id) AS endpoint_count,
       coalesce(o.open_exposures, 0)                   AS open_exposures,
       o.highest_open_severity
  FROM xray.assets a
  LEFT JOIN LATERAL (
        SELECT count(*) AS open_exposures,
               (array_agg(b.default_severity ORDER BY xray.severity_rank(b.default_severity) DESC))[1]
                   AS highest_open_severity
          FROM xray.exposures x
          JOIN xray.risk_buckets b ON b.risk_bucket = x.risk_bucket
         WHERE x.tenant_id = a.tenant_id AND x.asset_id = a.asset_id AND x.status = 'open') o ON true;
COMMENT ON VIEW xray.assets_seen IS 'Assets reported by applied scans, with endpoint and open-exposure counts';

CREATE VIEW xray.endpoints_seen WITH (security_invoker = true) AS
SELECT p.tenant_id,
       p.asset_id,
       a.asset_value,
       p.endpoint_id,
       p.ip,
       p.observed_host,
       p.domain_context,
       p.open_tcp_ports,
       cardinality(p.open_tcp_ports)                   AS open_port_count,
       p.tls_ports,
       p.http_urls,
       p.first_seen,
       p.last_seen,
       p.last_scan_id
  FROM xray.endpoints p
  LEFT JOIN xray.assets a ON a.tenant_id = p.tenant_id AND a.asset_id = p.asset_id;
COMMENT ON VIEW xray.endpoints_seen IS 'Endpoints reported by applied scans, with the open ports, TLS ports and answering URLs of their newest scan';

-- One row per FIXED event and endpoint the fixing scan checked (usually one):
-- the evidence when last open beside what that scan covered and saw.
CREATE VIEW xray.proof_of_fix WITH (security_invoker = true) AS
SELECT e.event_id,
       e.tenant_id,
       e.scan_id                                       AS fixed_by_scan_id,
       e.observed_at                                   AS fixed_at,
       e.identity_key,
       e.risk_bucket,
       b.name                                          AS bucket_name,
       b.default_severity                              AS severity,
       e.asset_id,
       e.observed_host,
       e.proto,
       e.port,
       e.fingerprint,
       e.detail                                        AS last_open_detail,
       e.prev_material_hash                            AS last_open_material_hash,
       e.evidence -> 'last_open'                       AS last_open_evidence,
       e.evidence #>> '{proof,basis}'                  AS proof_basis,
       c.ordinality::integer                           AS check_no,
       c.value ->> 'endpoint_id'                       AS endpoint_id,
       (c.value ->> 'ip')::inet                        AS endpoint_ip,
       c.value ->> 'result'                            AS check_result,
       CASE WHEN e.risk_bucket IN ('RB1', 'RB6') THEN 'tcp/' || e.port
            WHEN e.risk_bucket IN ('RB3', 'RB4') THEN 'tls/' || e.port
            WHEN e.risk_bucket = 'RB7' THEN 'dns:' || split_part(substring(e.fingerprint FROM 'record:(.*)$'), '|', 1)
            ELSE substring(e.fingerprint FROM 'url:(.*)$') END AS checked_target,
       CASE WHEN jsonb_typeof(ep.endpoint -> 'coverage') = 'object'
            THEN ARRAY(SELECT jsonb_array_elements_text(xray.json_array(ep.endpoint #> '{coverage,tools}')))
            ELSE ARRAY(SELECT tv.key
                         FROM jsonb_each(CASE WHEN jsonb_typeof(s.payload -> 'tool_versions') = 'object'
                                              THEN s.payload -> 'tool_versions' ELSE '{}' END) AS tv
                        WHERE jsonb_typeof(tv.value) = 'string'
                        ORDER BY tv.key) END                AS tools_run,
       CASE WHEN jsonb_typeof(ep.endpoint -> 'coverage') = 'object'
            THEN ARRAY(SELECT v::integer FROM jsonb_array_elements_text(
                           xray.json_array(ep.endpoint #> '{coverage,tcp_ports}')) AS v) END AS tcp_ports_covered,
       CASE WHEN jsonb_typeof(ep.endpoint -> 'coverage') = 'object'
            THEN ARRAY(SELECT jsonb_array_elements_text(xray.json_array(ep.endpoint #> '{coverage,http_urls}'))
                       UNION
                       SELECT jsonb_array_elements_text(xray.json_array(ep.endpoint #> '{coverage,nuclei_urls}'))) END
                                                       AS urls_covered,
       ARRAY(SELECT DISTINCT (t ->> 'port')::integer
               FROM jsonb_array_elements(xray.json_array(ep.endpoint #> '{ports,tcp}')) AS t
              WHERE t ->> 'state' = 'open' ORDER BY 1)  AS open_tcp_ports_seen,
       CASE WHEN e.risk_bucket <> 'RB7' AND ep.endpoint IS NOT NULL
            THEN coalesce((SELECT t ->> 'state'
                             FROM jsonb_array_elements(xray.json_array(ep.endpoint #> '{ports,tcp}')) AS t
                            WHERE (t ->> 'port')::integer = e.port
                            LIMIT 1), 'not reported') END AS port_state_seen,
       CASE WHEN e.risk_bucket IN ('RB3', 'RB4')
            THEN ARRAY(SELECT DISTINCT v
                         FROM jsonb_array_elements(xray.json_array(ep.endpoint -> 'tls')) AS t,
                              jsonb_array_elements_text(xray.json_array(t -> 'tls_versions')) AS v
                        WHERE (t ->> 'port')::integer = e.port ORDER BY 1) END AS tls_versions_seen,
       CASE WHEN e.risk_bucket = 'RB7'
            THEN ep.endpoint #>> ARRAY['dns_email',
                                       split_part(substring(e.fingerprint FROM 'record:(.*)$'), '|', 1),
                                       'assessment'] END AS dns_assessment_seen
  FROM xray.exposure_events e
  JOIN xray.risk_buckets b ON b.risk_bucket = e.risk_bucket
  LEFT JOIN xray.scan_results s ON s.scan_id = e.scan_id
  LEFT JOIN LATERAL jsonb_array_elements(xray.json_array(e.evidence #> '{proof,endpoints}'))
            WITH ORDINALITY AS c(value, ordinality) ON true
  LEFT JOIN LATERAL (
        SELECT pe.endpoint
          FROM xray.payload_endpoints(s.payload) pe
         WHERE pe.asset_id = e.asset_id AND pe.endpoint_id = c.value ->> 'endpoint_id'
         LIMIT 1) ep ON true
 WHERE e.event_type = 'FIXED';
COMMENT ON VIEW xray.proof_of_fix IS 'Proof-of-fix packets: per FIXED event and checked endpoint, the last open evidence beside what the fixing scan covered (tools, ports, URLs) and saw';
COMMENT ON COLUMN xray.proof_of_fix.tcp_ports_covered IS 'From the 1.2 coverage block; NULL when coverage was inferred (1.0/1.1 payloads use the scan profile''s ports)';
COMMENT ON COLUMN xray.proof_of_fix.port_state_seen IS 'State of the exposure''s port on this endpoint in the fixing scan; not reported = the port scan did not list it open';

------------------------------------------------------------------------------
-- Row-level security: every tenant table shows only the session's tenant.
-- Writes go through the ingest trigger and xray.triage() (owner's rights);
-- the only direct write is a loader's INSERT of a payload for its tenant.
------------------------------------------------------------------------------
DO $rls$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['scan_results', 'exposures', 'exposure_events', 'asset_scans',
                             'assets', 'endpoints', 'triage_log']
    LOOP
        EXECUTE format('ALTER TABLE xray.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE xray.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_read ON xray.%I FOR SELECT USING (tenant_id = (SELECT xray.current_tenant()))', t);
    END LOOP;
END
$rls$;
CREATE POLICY tenant_ingest ON xray.scan_results FOR INSERT TO xray_ingest
    WITH CHECK (tenant_id = (SELECT xray.current_tenant()));

ALTER TABLE xray.tenant_access ENABLE ROW LEVEL SECURITY;
ALTER TABLE xray.tenant_access FORCE ROW LEVEL SECURITY;
CREATE POLICY own_grants ON xray.tenant_access FOR SELECT
    USING (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                    WHERE r.rolname = tenant_access.role_name
                      AND pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER')));
CREATE POLICY admin_all ON xray.tenant_access FOR ALL TO xray_admin USING (true) WITH CHECK (true);

------------------------------------------------------------------------------
-- Privileges.
------------------------------------------------------------------------------
GRANT USAGE ON SCHEMA xray TO xray_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA xray TO xray_reader;
GRANT INSERT (payload) ON xray.scan_results TO xray_ingest;
GRANT INSERT, UPDATE, DELETE ON xray.risk_buckets, xray.admin_ports, xray.panel_templates, xray.scan_profiles,
                                xray.tenant_access TO xray_admin;
GRANT UPDATE ON xray.settings TO xray_admin;
REVOKE EXECUTE ON FUNCTION xray.triage(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION xray.triage(text, text, text, text) TO xray_admin;
REVOKE EXECUTE ON FUNCTION xray.record_inventory(uuid, uuid, timestamptz, jsonb) FROM PUBLIC;

------------------------------------------------------------------------------
-- pg_dump: extension tables are only dumped when registered. All rows, also
-- of the configuration tables (edited shipped rows replace the seeds on
-- restore, see xray.config_row_guard), and the identity sequences.
------------------------------------------------------------------------------
-- One call per statement: each call rewrites the pg_extension row.
DO $dump$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['xray.scan_results', 'xray.exposures', 'xray.exposure_events', 'xray.asset_scans',
                             'xray.assets', 'xray.endpoints', 'xray.triage_log', 'xray.tenant_access',
                             'xray.risk_buckets', 'xray.admin_ports', 'xray.panel_templates', 'xray.scan_profiles',
                             'xray.settings',
                             pg_catalog.pg_get_serial_sequence('xray.exposure_events', 'event_id'),
                             pg_catalog.pg_get_serial_sequence('xray.triage_log', 'triage_id')]
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
    END LOOP;
END
$dump$;

------------------------------------------------------------------------------
-- Data written by 0.1.0 (nothing to do on a fresh install).
------------------------------------------------------------------------------
ALTER TABLE xray.scan_results DISABLE TRIGGER scan_results_immutable;
UPDATE xray.scan_results
   SET asset_count    = jsonb_array_length(xray.json_array(payload -> 'asset_results')),
       endpoint_count = (SELECT count(*) FROM xray.payload_endpoints(payload));
ALTER TABLE xray.scan_results ENABLE TRIGGER scan_results_immutable;

DO $backfill$
DECLARE
    s record;
BEGIN
    FOR s IN
        SELECT tenant_id, scan_id, coalesce(finished_at, started_at) AS seen_at, payload
          FROM xray.scan_results
         WHERE status = 'applied'
         ORDER BY coalesce(finished_at, started_at), ingested_at, scan_id
    LOOP
        PERFORM xray.record_inventory(s.tenant_id, s.scan_id, s.seen_at, s.payload);
    END LOOP;
END
$backfill$;
