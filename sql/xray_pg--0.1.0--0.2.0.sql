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

-- ---------------------------------------------------------------------------
-- nweb (docs/nweb.md), new in 0.2.0.
-- ---------------------------------------------------------------------------
-- nweb inside the database (schema `nweb`): verified public scan bundles, their
-- typed scanprint rows, chain attestations, challenges, stakes, the MVP rules and
-- the bridge to xray. See docs/nweb.md and docs/design.md D6, D7 and "Platform".
--
-- This file is self-contained: it declares its own C functions (xray_pg/src/nweb.rs,
-- `sql = false` there), so the same statements can run inside CREATE EXTENSION or
-- be added to an upgrade script. Every statement creates something new.
--
-- Conventions:
-- - Pure functions (Merkle, UnixFS/CAR, verdicts, rule arithmetic) are C functions in
--   the extension schema, IMMUTABLE and callable unqualified.
-- - Functions that write are plpgsql in schema nweb, SECURITY DEFINER with a fixed
--   search_path, and qualify everything, because the loader runs them with few rights.
-- - Addresses and hashes are stored as lowercase 0x-hex text; the loader lowercases.
-- - Scale-out: nweb.scanprint is keyed and indexed to be distributed by `ip` on
--   Citus; the other tables are small and can be reference tables.

CREATE SCHEMA nweb;
COMMENT ON SCHEMA nweb IS 'nweb: verified public scan bundles (IPFS), their scanprint rows, chain attestations, challenges, stakes and the MVP rules';

------------------------------------------------------------------------------
-- C functions (Rust: xray_pg/src/nweb.rs, xray_core/src/nweb/).
------------------------------------------------------------------------------
CREATE FUNCTION nweb_merkle_root(jsonl text) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_merkle_root_jsonl_wrapper';
COMMENT ON FUNCTION nweb_merkle_root(text) IS 'RFC 6962 Merkle root (0x + 64 hex) of a scanprint file: every non-blank line must be a JSON object and is hashed in RFC 8785 (JCS) form (design D6). A bad line is an ERROR naming it: 22P02 malformed JSON, 22023 not an object';

CREATE FUNCTION nweb_merkle_root(leaves bytea[]) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_merkle_root_leaves_wrapper';
COMMENT ON FUNCTION nweb_merkle_root(bytea[]) IS 'RFC 6962 Merkle root of raw leaves (SHA-256, 0x00/0x01 prefixes; empty tree = SHA-256 of nothing), for the Certificate Transparency test vectors';

CREATE FUNCTION nweb_merkle_proof(jsonl text, line integer) RETURNS jsonb
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_merkle_proof_wrapper';
COMMENT ON FUNCTION nweb_merkle_proof(text, integer) IS 'Inclusion proof for the scanprint line with this 1-based file line number: {leaf_index, tree_size, path[], line, leaf (canonical text), root}';

CREATE FUNCTION nweb_merkle_verify(root text, line text, proof jsonb) RETURNS boolean
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_merkle_verify_wrapper';
COMMENT ON FUNCTION nweb_merkle_verify(text, text, jsonb) IS 'True when the scanprint line (any JSON formatting) is the proof''s leaf under root; the challenger''s check for one line';

CREATE FUNCTION nweb_scanprint_from_nmap(xml text, vantage text) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_scanprint_from_nmap_wrapper';
COMMENT ON FUNCTION nweb_scanprint_from_nmap(text, text) IS 'scanprint v0 JSONL (sorted, JCS) from nmap -oX output; unreadable records become WARNINGs';

CREATE FUNCTION nweb_unixfs_cid(paths text[], contents bytea[]) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_unixfs_cid_wrapper';
COMMENT ON FUNCTION nweb_unixfs_cid(text[], bytea[]) IS 'CIDv1 of the directory that ipfs add --cid-version=1 --raw-leaves --wrap-with-directory makes of these files (design D7: 256 KiB raw leaves, balanced, 174 links, sha2-256)';

CREATE FUNCTION nweb_unixfs_file_cid(content bytea) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_unixfs_file_cid_wrapper';
COMMENT ON FUNCTION nweb_unixfs_file_cid(bytea) IS 'CIDv1 of one file as ipfs add --cid-version=1 --raw-leaves computes it';

CREATE FUNCTION nweb_car_export(paths text[], contents bytea[]) RETURNS bytea
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_car_export_wrapper';
COMMENT ON FUNCTION nweb_car_export(text[], bytea[]) IS 'CARv1 of the wrapped directory of these files: header with the root, then each block once, depth-first';

CREATE FUNCTION nweb_car_files(car bytea, expected_root text DEFAULT NULL)
RETURNS TABLE (path text, size bigint, sha256 text, content bytea)
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_car_files_wrapper';
COMMENT ON FUNCTION nweb_car_files(bytea, text) IS 'Files of a bundle CAR. Every block is hashed against its CID and every block under the root is required; a corrupt, missing or truncated block is an ERROR (22P03) naming its CID';

CREATE FUNCTION nweb_car_bundle(car bytea, expected_root text DEFAULT NULL)
RETURNS TABLE (cid text, manifest text, manifest_sha256 text, scanprint text, file_sha256 jsonb,
               bundle_bytes bigint, unreadable text)
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_car_bundle_wrapper';
COMMENT ON FUNCTION nweb_car_bundle(bytea, text) IS 'A verified bundle CAR split for nweb.ingest_car: root CID, manifest and scanprint text, SHA-256 of every file';

CREATE FUNCTION nweb_cid_canonical(cid text) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_cid_canonical_wrapper';
COMMENT ON FUNCTION nweb_cid_canonical(text) IS 'Canonical text of a CID (CIDv1: lowercase base32), NULL if the text is not a CID';

CREATE FUNCTION nweb_json_or_null(text text) RETURNS jsonb
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_json_or_null_wrapper';
COMMENT ON FUNCTION nweb_json_or_null(text) IS 'The text as jsonb when it is one JSON document without duplicate keys or NUL, else NULL';

CREATE FUNCTION nweb_bundle_verdict(manifest text, scanprint text, artifacts jsonb,
                                    attested_merkle_root text DEFAULT NULL, unreadable text DEFAULT NULL)
RETURNS jsonb
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_bundle_verdict_wrapper';
COMMENT ON FUNCTION nweb_bundle_verdict(text, text, jsonb, text, text) IS 'Pure verdict on a bundle: {status verified|invalid, reason, reason_detail, manifest{...}, computed_merkle_root, scanprint_lines, cost_kind, cost_units}. artifacts maps every file path of the bundle to the SHA-256 hex of its bytes';

CREATE FUNCTION nweb_scanprint_rows(jsonl text)
RETURNS TABLE (line_no integer, ts timestamptz, ip inet, port integer, proto text, state text,
               service text, product text, version text, banner_sha256 text, cert_fpr text, tls_ja3 text,
               latency_ms integer, tool text, tool_version text, options text, vantage text)
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_scanprint_rows_wrapper';
COMMENT ON FUNCTION nweb_scanprint_rows(text) IS 'One typed row per scanprint line, read lazily; a bad line is an ERROR naming it';

CREATE FUNCTION nweb_quota_units(stake numeric, rep_factor numeric) RETURNS bigint
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_quota_units_wrapper';
COMMENT ON FUNCTION nweb_quota_units(numeric, numeric) IS 'quotaUnits = floor(sqrt(stake) * (1 + repFactor)), computed exactly; 0 below the minimum stake of 100 GST';

CREATE FUNCTION nweb_submission_cost(kind text) RETURNS integer
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_submission_cost_wrapper';
COMMENT ON FUNCTION nweb_submission_cost(text) IS 'Quota units per submission: masscan-quick 1, nmap-top1k 2, nmap-full 5, diff/enrich (or diff, enrich) 1';

CREATE FUNCTION nweb_cost_kind(dataset_type text, options text DEFAULT NULL) RETURNS text
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_cost_kind_wrapper';
COMMENT ON FUNCTION nweb_cost_kind(text, text) IS 'Pricing class of a bundle: masscan -> masscan-quick; diff, enrich -> diff/enrich; nmap -> nmap-full when the options scan all 65535 ports (-p-, -p 1-65535) or more than the top 1000, else nmap-top1k';

CREATE FUNCTION nweb_slash_split(stake numeric) RETURNS TABLE (slashed numeric, to_challenger numeric, burned numeric)
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_slash_split_wrapper';
COMMENT ON FUNCTION nweb_slash_split(numeric) IS 'Slash 10 % of the stake: 50 % to the challenger, the rest burned; exact decimal arithmetic, the parts always add up';

CREATE FUNCTION nweb_grace_ends_at(filed_at timestamptz) RETURNS timestamptz
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_grace_ends_at_wrapper';
COMMENT ON FUNCTION nweb_grace_ends_at(timestamptz) IS 'filed_at + 72 h, the end of a grace period';

CREATE FUNCTION nweb_challenge_state(grace_ends_at timestamptz, first_resolution_at timestamptz, as_of timestamptz)
RETURNS text
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_challenge_state_wrapper';
COMMENT ON FUNCTION nweb_challenge_state(timestamptz, timestamptz, timestamptz) IS 'in_grace | resolved | slashable. Grace is the closed interval [filed_at, grace_ends_at]: a Resolution at grace_ends_at counts, one after it does not, and slashing starts strictly after grace_ends_at';

CREATE FUNCTION nweb_quota_window_start(as_of timestamptz) RETURNS timestamptz
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_quota_window_start_wrapper';
COMMENT ON FUNCTION nweb_quota_window_start(timestamptz) IS 'Start of the rolling 24 h quota window ending at as_of (the spec leaves the period open; a day is our choice)';

CREATE FUNCTION nweb_reputation_points(cost_units integer, vantage_share double precision, age_seconds double precision)
RETURNS double precision
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_reputation_points_wrapper';
COMMENT ON FUNCTION nweb_reputation_points(integer, double precision, double precision) IS 'Reputation of one submission: cost_units * 2/(1 + vantage_share) * 2^(-age/30 days); age counts from the end of the submission''s grace period, and is 0 before it';

CREATE FUNCTION nweb_rep_factor(reputation double precision) RETURNS numeric
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_rep_factor_wrapper';
COMMENT ON FUNCTION nweb_rep_factor(double precision) IS 'repFactor = floor to 6 decimals of reputation / (reputation + 10), in [0, 1): 10 points give half the maximum quota bonus';

CREATE FUNCTION nweb_bridge_payload(tenant_id uuid, bundle jsonb, assets jsonb, rows jsonb) RETURNS jsonb
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'nweb_bridge_payload_wrapper';
COMMENT ON FUNCTION nweb_bridge_payload(uuid, jsonb, jsonb, jsonb) IS 'Pure part of nweb.bridge_payload: an xray 1.2 scan payload from bundle metadata, assets and scanprint rows';

------------------------------------------------------------------------------
-- Tables.
------------------------------------------------------------------------------
CREATE TABLE nweb.bundles (
    cid                  text        PRIMARY KEY CHECK (cid ~ '^[A-Za-z0-9]+$'),
    status               text        NOT NULL CHECK (status IN ('verified', 'invalid')),
    reason               text        CHECK (reason IN ('CID_UNAVAILABLE', 'CID_HASH_MISMATCH', 'FORMAT_INVALID')),
    reason_detail        text,
    manifest             jsonb,
    manifest_sha256      text        CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
    merkle_root          text        CHECK (merkle_root ~ '^0x[0-9a-f]{64}$'),
    computed_merkle_root text        CHECK (computed_merkle_root ~ '^0x[0-9a-f]{64}$'),
    attested_merkle_root text        CHECK (attested_merkle_root ~ '^0x[0-9a-f]{64}$'),
    submitter            text        CHECK (submitter ~ '^0x[0-9a-f]{40}$'),
    namespace            text,
    dataset_type         text,
    tool                 text,
    tool_version         text,
    vantage              text,
    target_spec_cid      text,
    cost_kind            text        CHECK (cost_kind IN ('masscan-quick', 'nmap-top1k', 'nmap-full', 'diff/enrich')),
    cost_units           integer     CHECK (cost_units > 0),
    scan_started_at      timestamptz,
    scan_finished_at     timestamptz,
    scanprint_lines      integer     CHECK (scanprint_lines >= 0),
    scanprint_bytes      bigint      CHECK (scanprint_bytes >= 0),
    bundle_bytes         bigint      CHECK (bundle_bytes >= 0),
    first_seen_at        timestamptz NOT NULL DEFAULT now(),
    checked_at           timestamptz,
    verified_at          timestamptz,
    CONSTRAINT bundles_reason_iff_invalid CHECK ((status = 'invalid') = (reason IS NOT NULL)),
    CONSTRAINT bundles_verified_has_manifest CHECK (status <> 'verified' OR (manifest IS NOT NULL AND merkle_root IS NOT NULL))
);
CREATE INDEX bundles_status ON nweb.bundles (status, first_seen_at);
CREATE INDEX bundles_submitter ON nweb.bundles (submitter);
COMMENT ON TABLE nweb.bundles IS 'One row per checked bundle CID: verified, or invalid with a reason code. Written by nweb.ingest_bundle, nweb.ingest_car and nweb.mark_unavailable. CIDs that are attested but not checked yet show as pending in nweb.v_bundles';
COMMENT ON COLUMN nweb.bundles.status IS 'verified or invalid; a CID attested but not checked yet has no row here and is pending in nweb.v_bundles';
COMMENT ON COLUMN nweb.bundles.reason IS 'FORMAT_INVALID: manifest or scanprint breaks the format, or a listed file is absent. CID_HASH_MISMATCH: Merkle root, attested root or an artifact SHA-256 differs from what was committed. CID_UNAVAILABLE: could not be fetched (the only reason a later ingest may overturn)';
COMMENT ON COLUMN nweb.bundles.merkle_root IS 'manifest.scanprint.merkleRoot; for a verified bundle equal to computed_merkle_root (and to attested_merkle_root when known)';
COMMENT ON COLUMN nweb.bundles.submitter IS 'Attester of the first ScanSubmission naming this CID (known when checked, or filled in when the attestation arrives later)';
COMMENT ON COLUMN nweb.bundles.cost_kind IS 'Pricing class: the manifest''s profile, else derived from datasetType and the scan options (nweb_cost_kind)';

CREATE TABLE nweb.scanprint (
    ip            inet        NOT NULL,
    bundle_cid    text        NOT NULL REFERENCES nweb.bundles (cid) ON DELETE CASCADE,
    line_no       integer     NOT NULL CHECK (line_no > 0),
    ts            timestamptz NOT NULL,
    port          integer     NOT NULL CHECK (port BETWEEN 0 AND 65535),
    proto         text        NOT NULL,
    state         text        NOT NULL,
    service       text,
    product       text,
    version       text,
    banner_sha256 text,
    cert_fpr      text,
    tls_ja3       text,
    latency_ms    integer     CHECK (latency_ms >= 0),
    tool          text        NOT NULL,
    tool_version  text,
    options       text,
    vantage       text        NOT NULL,
    -- The distribution column leads every unique key (Citus).
    PRIMARY KEY (ip, bundle_cid, line_no)
);
CREATE INDEX scanprint_port_state ON nweb.scanprint (port, state) INCLUDE (ip, ts);
CREATE INDEX scanprint_ip_ts ON nweb.scanprint (ip, ts);
CREATE INDEX scanprint_bundle ON nweb.scanprint (bundle_cid);
COMMENT ON TABLE nweb.scanprint IS 'Typed scanprint v0 lines of verified bundles only. Loaded in one statement with the verdict; removed with the bundle or when it turns out invalid. Distributable by ip';
COMMENT ON INDEX nweb.scanprint_port_state IS 'Who has port X open';
COMMENT ON INDEX nweb.scanprint_ip_ts IS 'What changed on this IP';

CREATE TABLE nweb.attestations (
    attestation_id bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('ScanSubmission', 'AvailabilityCheck', 'Challenge', 'Resolution')),
    chain_id       bigint      NOT NULL,
    tx_hash        text        NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    log_index      integer     NOT NULL CHECK (log_index >= 0),
    block_number   bigint      NOT NULL CHECK (block_number >= 0),
    block_hash     text        NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    block_time     timestamptz NOT NULL,
    uid            text        CHECK (uid ~ '^0x[0-9a-f]{64}$'),
    attester       text        NOT NULL CHECK (attester ~ '^0x[0-9a-f]{40}$'),
    payload        jsonb       NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    cid            text        GENERATED ALWAYS AS (@extschema@.nweb_cid_canonical(payload ->> 'cid')) STORED,
    inserted_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT attestations_log_unique UNIQUE (chain_id, tx_hash, log_index)
);
CREATE INDEX attestations_kind_cid ON nweb.attestations (kind, cid);
CREATE INDEX attestations_block ON nweb.attestations (chain_id, block_number);
CREATE INDEX attestations_resolution ON nweb.attestations (lower(payload ->> 'challengeId')) WHERE kind = 'Resolution';
COMMENT ON TABLE nweb.attestations IS 'Decoded Attestor events, one per log. Insert with ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING; delete rows at or above a reorged block (challenges follow). A malformed payload is stored but has no effect (WARNING), so chain data never wedges the loader';
COMMENT ON COLUMN nweb.attestations.payload IS 'The schema''s fields by their spec names, e.g. ScanSubmission {cid, merkleRoot, datasetType, ...}, Challenge {cid, jobId, reasonCode, evidenceCid}, Resolution {challengeId, slash, newCid}';
COMMENT ON COLUMN nweb.attestations.uid IS 'Attestation UID; a Challenge''s uid is the challengeId its Resolution names';
COMMENT ON COLUMN nweb.attestations.cid IS 'payload.cid in canonical form, NULL when absent or not a CID';

CREATE TABLE nweb.challenges (
    challenge_id   text        PRIMARY KEY CHECK (challenge_id ~ '^0x[0-9a-f]{64}$'),
    attestation_id bigint      UNIQUE REFERENCES nweb.attestations (attestation_id) ON DELETE CASCADE,
    cid            text        NOT NULL,
    job_id         text,
    reason_code    text        NOT NULL CHECK (reason_code IN ('CID_UNAVAILABLE', 'CID_HASH_MISMATCH', 'FORMAT_INVALID')),
    evidence_cid   text,
    challenger     text        NOT NULL CHECK (challenger ~ '^0x[0-9a-f]{40}$'),
    filed_at       timestamptz NOT NULL,
    grace_ends_at  timestamptz NOT NULL GENERATED ALWAYS AS (@extschema@.nweb_grace_ends_at(filed_at)) STORED
);
CREATE INDEX challenges_cid ON nweb.challenges (cid);
COMMENT ON TABLE nweb.challenges IS 'Challenges against bundles, derived from Challenge attestations by their trigger: removed with them on a reorg, rebuilt from them on restore (so not dumped). State, resolution and slash amounts: nweb.challenge_states(as_of)';
COMMENT ON COLUMN nweb.challenges.grace_ends_at IS 'filed_at (block time) + 72 h';

CREATE TABLE nweb.stakes (
    address          text             PRIMARY KEY CHECK (address ~ '^0x[0-9a-f]{40}$'),
    stake            numeric          NOT NULL DEFAULT 0 CHECK (stake >= 0),
    reputation       double precision NOT NULL DEFAULT 0 CHECK (reputation >= 0),
    reputation_as_of timestamptz,
    updated_at       timestamptz      NOT NULL DEFAULT now()
);
COMMENT ON TABLE nweb.stakes IS 'Staked GST per address (from StakeRegistry) and its reputation (nweb.refresh_reputation)';
COMMENT ON COLUMN nweb.stakes.stake IS 'GST, exact decimal (not wei)';

------------------------------------------------------------------------------
-- Ingest: verification in one transaction.
------------------------------------------------------------------------------
-- The first ScanSubmission of a CID: who is answerable for it and what root was
-- promised. Read from the attestations, never copied into other tables by a
-- trigger, so a restore (which replays attestation inserts) cannot collide.
CREATE FUNCTION nweb.first_submission(cid text)
RETURNS TABLE (submitter text, attested_merkle_root text, submitted_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT a.attester,
           CASE WHEN lower(a.payload ->> 'merkleRoot') ~ '^0x[0-9a-f]{64}$' THEN lower(a.payload ->> 'merkleRoot') END,
           a.block_time
      FROM nweb.attestations AS a
     WHERE a.kind = 'ScanSubmission' AND a.cid = first_submission.cid
     ORDER BY a.block_time, a.attestation_id
     LIMIT 1;
$$;
COMMENT ON FUNCTION nweb.first_submission(text) IS 'Attester, attested merkleRoot and time of the first ScanSubmission naming this (canonical) CID';

-- Records a verdict and, for a verified bundle, its scanprint rows with one
-- set-based statement. A final verdict (verified, CID_HASH_MISMATCH,
-- FORMAT_INVALID) is kept: the same CID again returns it and writes nothing. Only
-- new and CID_UNAVAILABLE bundles are (re)verified.
CREATE FUNCTION nweb.store_bundle(p_cid text, p_manifest text, p_scanprint text, p_files jsonb,
                                  p_manifest_sha256 text, p_bundle_bytes bigint, p_unreadable text)
RETURNS nweb.bundles
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_cid  text := @extschema@.nweb_cid_canonical(p_cid);
    v_json jsonb := CASE WHEN p_manifest IS NOT NULL THEN @extschema@.nweb_json_or_null(p_manifest) END;
    b      nweb.bundles;
    sub    record;
    v      jsonb;
    m      jsonb;
BEGIN
    IF v_cid IS NULL THEN
        RAISE EXCEPTION 'cid: % is not a CID', coalesce(quote_literal(p_cid), 'NULL')
            USING ERRCODE = 'invalid_text_representation';
    END IF;
    -- One verifier per bundle at a time; a second waits and then finds the verdict.
    PERFORM pg_advisory_xact_lock(hashtextextended('nweb.bundle:' || v_cid, 0));
    SELECT * INTO b FROM nweb.bundles AS x WHERE x.cid = v_cid;
    IF FOUND AND (b.status = 'verified' OR b.reason IN ('CID_HASH_MISMATCH', 'FORMAT_INVALID')) THEN
        IF b.status = 'verified' AND v_json IS DISTINCT FROM b.manifest THEN
            RAISE EXCEPTION 'bundle %: already verified with a different manifest', v_cid
                USING ERRCODE = 'unique_violation',
                      HINT = 'A CID names exactly one content, so one of the two submissions is not that content.';
        END IF;
        RETURN b;
    END IF;

    SELECT * INTO sub FROM nweb.first_submission(v_cid);
    v := @extschema@.nweb_bundle_verdict(p_manifest, p_scanprint, p_files, sub.attested_merkle_root, p_unreadable);
    m := v -> 'manifest';
    INSERT INTO nweb.bundles AS x
           (cid, status, reason, reason_detail, manifest, manifest_sha256, merkle_root, computed_merkle_root,
            attested_merkle_root, submitter,
            namespace, dataset_type, tool, tool_version, vantage, target_spec_cid, cost_kind, cost_units,
            scan_started_at, scan_finished_at, scanprint_lines, scanprint_bytes, bundle_bytes, checked_at, verified_at)
    VALUES (v_cid, v ->> 'status', v ->> 'reason', v ->> 'reason_detail', v_json, p_manifest_sha256,
            m ->> 'merkle_root', v ->> 'computed_merkle_root', sub.attested_merkle_root, sub.submitter,
            m ->> 'namespace', m ->> 'dataset_type', m ->> 'tool', m ->> 'tool_version', m ->> 'vantage',
            m ->> 'target_spec_cid', v ->> 'cost_kind', (v ->> 'cost_units')::integer,
            to_timestamp((m ->> 'started_at')::bigint), to_timestamp((m ->> 'finished_at')::bigint),
            (v ->> 'scanprint_lines')::integer, octet_length(p_scanprint), p_bundle_bytes, now(),
            CASE WHEN v ->> 'status' = 'verified' THEN now() END)
    ON CONFLICT (cid) DO UPDATE SET
        status = EXCLUDED.status, reason = EXCLUDED.reason, reason_detail = EXCLUDED.reason_detail,
        manifest = EXCLUDED.manifest, manifest_sha256 = EXCLUDED.manifest_sha256,
        merkle_root = EXCLUDED.merkle_root, computed_merkle_root = EXCLUDED.computed_merkle_root,
        attested_merkle_root = EXCLUDED.attested_merkle_root, submitter = EXCLUDED.submitter,
        namespace = EXCLUDED.namespace, dataset_type = EXCLUDED.dataset_type, tool = EXCLUDED.tool,
        tool_version = EXCLUDED.tool_version, vantage = EXCLUDED.vantage, target_spec_cid = EXCLUDED.target_spec_cid,
        cost_kind = EXCLUDED.cost_kind, cost_units = EXCLUDED.cost_units,
        scan_started_at = EXCLUDED.scan_started_at, scan_finished_at = EXCLUDED.scan_finished_at,
        scanprint_lines = EXCLUDED.scanprint_lines, scanprint_bytes = EXCLUDED.scanprint_bytes,
        bundle_bytes = EXCLUDED.bundle_bytes, checked_at = EXCLUDED.checked_at, verified_at = EXCLUDED.verified_at
    RETURNING * INTO b;

    IF b.status = 'verified' THEN
        INSERT INTO nweb.scanprint (ip, bundle_cid, line_no, ts, port, proto, state, service, product, version,
                                    banner_sha256, cert_fpr, tls_ja3, latency_ms, tool, tool_version, options, vantage)
        SELECT r.ip, v_cid, r.line_no, r.ts, r.port, r.proto, r.state, r.service, r.product, r.version,
               r.banner_sha256, r.cert_fpr, r.tls_ja3, r.latency_ms, r.tool, r.tool_version, r.options, r.vantage
          FROM @extschema@.nweb_scanprint_rows(p_scanprint) AS r;
    END IF;
    RETURN b;
END
$$;
COMMENT ON FUNCTION nweb.store_bundle(text, text, text, jsonb, text, bigint, text) IS 'Internal: record a verdict (checked against the first ScanSubmission''s root, when there is one) and load the rows of a verified bundle; use nweb.ingest_bundle or nweb.ingest_car';

CREATE FUNCTION nweb.ingest_bundle(cid text, manifest jsonb, scanprint text, artifacts jsonb)
RETURNS nweb.bundles
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM nweb.store_bundle(ingest_bundle.cid, ingest_bundle.manifest::text, ingest_bundle.scanprint,
                                    ingest_bundle.artifacts, NULL, NULL, NULL);
$$;
COMMENT ON FUNCTION nweb.ingest_bundle(text, jsonb, text, jsonb) IS 'Verify a fetched bundle and load it, in the caller''s transaction: manifest (nweb.bundle.v1, required fields), Merkle root against manifest.scanprint.merkleRoot (and the attested root), artifact SHA-256s; then the typed scanprint rows, or the bundle is marked invalid with its reason and nothing is loaded. artifacts: {"<path>": "<sha256 hex of the bytes>"} for every file the bundle holds. Idempotent per CID';

CREATE FUNCTION nweb.ingest_car(car bytea, cid text DEFAULT NULL)
RETURNS nweb.bundles
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.*
      FROM @extschema@.nweb_car_bundle(ingest_car.car, ingest_car.cid) AS c,
           nweb.store_bundle(c.cid, c.manifest, c.scanprint, c.file_sha256, c.manifest_sha256,
                             c.bundle_bytes, c.unreadable) AS s;
$$;
COMMENT ON FUNCTION nweb.ingest_car(bytea, text) IS 'nweb.ingest_bundle for a CAR fetched from a trustless gateway (design D7): every block is verified against its CID and the bundle''s own CID is the root asked for (cid) or the CAR''s single root. A corrupt or truncated CAR is an ERROR naming the CID (22P03) and records nothing: it says the gateway failed, not the bundle';

CREATE FUNCTION nweb.mark_unavailable(cid text, detail text DEFAULT NULL)
RETURNS nweb.bundles
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_cid text := @extschema@.nweb_cid_canonical(mark_unavailable.cid);
    b     nweb.bundles;
BEGIN
    IF v_cid IS NULL THEN
        RAISE EXCEPTION 'cid: % is not a CID', coalesce(quote_literal(mark_unavailable.cid), 'NULL')
            USING ERRCODE = 'invalid_text_representation';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('nweb.bundle:' || v_cid, 0));
    INSERT INTO nweb.bundles AS x (cid, status, reason, reason_detail, checked_at, submitter, attested_merkle_root)
    SELECT v_cid, 'invalid', 'CID_UNAVAILABLE', coalesce(mark_unavailable.detail, 'could not be fetched'), now(),
           s.submitter, s.attested_merkle_root
      FROM (SELECT 1) AS one LEFT JOIN nweb.first_submission(v_cid) AS s ON true
    ON CONFLICT (cid) DO UPDATE
       SET status = 'invalid', reason = 'CID_UNAVAILABLE', reason_detail = EXCLUDED.reason_detail,
           checked_at = EXCLUDED.checked_at
     WHERE x.reason = 'CID_UNAVAILABLE';
    SELECT * INTO b FROM nweb.bundles AS x WHERE x.cid = v_cid;
    RETURN b;
END
$$;
COMMENT ON FUNCTION nweb.mark_unavailable(text, text) IS 'Record that a bundle could not be fetched (CID_UNAVAILABLE). A final verdict is left as it is';

------------------------------------------------------------------------------
-- Attestations drive bundles and challenges.
------------------------------------------------------------------------------
CREATE FUNCTION nweb.attestation_applied() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p    jsonb := NEW.payload;
    b    nweb.bundles;
    sub  record;
    what text := format('%s attestation %s/%s', NEW.kind, NEW.tx_hash, NEW.log_index);
BEGIN
    -- Only UPDATEs of bundles and inserts of derived (undumped) challenges, so that
    -- replaying attestations during a restore cannot collide with restored rows.
    IF NEW.kind = 'ScanSubmission' THEN
        IF NEW.cid IS NULL THEN
            RAISE WARNING '%: payload.cid % is not a CID; nothing to fetch', what, coalesce(p ->> 'cid', 'NULL');
            RETURN NULL;
        END IF;
        PERFORM pg_advisory_xact_lock(hashtextextended('nweb.bundle:' || NEW.cid, 0));
        SELECT * INTO sub FROM nweb.first_submission(NEW.cid);
        UPDATE nweb.bundles AS x
           SET submitter = sub.submitter, attested_merkle_root = sub.attested_merkle_root
         WHERE x.cid = NEW.cid
           AND (x.submitter IS DISTINCT FROM sub.submitter OR x.attested_merkle_root IS DISTINCT FROM sub.attested_merkle_root)
        RETURNING * INTO b;
        -- Checked before its attestation was seen: the two must agree.
        IF b.status = 'verified' AND b.attested_merkle_root IS NOT NULL
           AND b.attested_merkle_root IS DISTINCT FROM b.merkle_root THEN
            DELETE FROM nweb.scanprint AS s WHERE s.bundle_cid = b.cid;
            UPDATE nweb.bundles AS x
               SET status = 'invalid', reason = 'CID_HASH_MISMATCH', verified_at = NULL, checked_at = now(),
                   reason_detail = format('the manifest''s merkleRoot %s differs from the attested %s',
                                          b.merkle_root, b.attested_merkle_root)
             WHERE x.cid = b.cid;
        END IF;
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
$$;
CREATE TRIGGER attestations_apply
    AFTER INSERT ON nweb.attestations
    FOR EACH ROW EXECUTE FUNCTION nweb.attestation_applied();
COMMENT ON FUNCTION nweb.attestation_applied() IS 'AFTER INSERT on nweb.attestations: a ScanSubmission fills in the submitter of a bundle checked before it (and invalidates it when the attested root disagrees), a Challenge becomes a row of nweb.challenges';

------------------------------------------------------------------------------
-- Rules: challenges, reputation, quota (arithmetic in xray_core/src/nweb/rules.rs).
------------------------------------------------------------------------------
CREATE FUNCTION nweb.challenge_states(as_of timestamptz DEFAULT now())
RETURNS TABLE (challenge_id text, cid text, reason_code text, challenger text, subject text,
               filed_at timestamptz, grace_ends_at timestamptz, resolved_at timestamptz, state text,
               subject_stake numeric, slash_amount numeric, challenger_bounty numeric, burned numeric)
LANGUAGE sql STABLE AS $$
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
      CROSS JOIN LATERAL (SELECT @extschema@.nweb_challenge_state(c.grace_ends_at, r.resolved_at, challenge_states.as_of) AS state) AS s
      LEFT JOIN nweb.stakes AS st ON st.address = sub.submitter
      LEFT JOIN LATERAL @extschema@.nweb_slash_split(coalesce(st.stake, 0)) AS sp ON true
     WHERE c.filed_at <= challenge_states.as_of;
$$;
COMMENT ON FUNCTION nweb.challenge_states(timestamptz) IS 'Every challenge filed by as_of: in_grace, resolved (a Resolution with slash=false from the challenged submitter, the attester of the CID''s first ScanSubmission, within [filed_at, grace_ends_at]) or slashable (grace over, no valid Resolution; 10 % of the subject''s stake, half to the challenger, half burned)';

CREATE VIEW nweb.v_challenges AS
SELECT * FROM nweb.challenge_states(now());
COMMENT ON VIEW nweb.v_challenges IS 'nweb.challenge_states as of now';

CREATE VIEW nweb.v_slashable_challenges AS
SELECT * FROM nweb.challenge_states(now()) AS c WHERE c.state = 'slashable' AND c.subject IS NOT NULL;
COMMENT ON VIEW nweb.v_slashable_challenges IS 'Challenges whose grace ended without a valid Resolution: slashable now, with the amounts';

CREATE VIEW nweb.v_submissions AS
SELECT a.attestation_id, a.chain_id, a.tx_hash, a.log_index, a.block_number,
       a.attester                                    AS submitter,
       a.cid,
       a.block_time                                  AS submitted_at,
       @extschema@.nweb_grace_ends_at(a.block_time)  AS grace_ends_at,
       coalesce(b.status, 'pending')::text           AS status,
       coalesce(b.cost_kind, @extschema@.nweb_cost_kind(a.payload ->> 'datasetType'))::text AS cost_kind,
       coalesce(b.cost_units,
                @extschema@.nweb_submission_cost(@extschema@.nweb_cost_kind(a.payload ->> 'datasetType')))::integer AS cost_units,
       b.vantage
  FROM nweb.attestations AS a
  LEFT JOIN nweb.bundles AS b ON b.cid = a.cid
 WHERE a.kind = 'ScanSubmission';
COMMENT ON VIEW nweb.v_submissions IS 'ScanSubmissions with their bundle''s verdict and price (the attested datasetType until the bundle is verified)';

CREATE FUNCTION nweb.reputation_at(as_of timestamptz DEFAULT now())
RETURNS TABLE (address text, reputation double precision, rep_factor numeric, submissions bigint)
LANGUAGE sql STABLE AS $$
    WITH failed AS (
        SELECT DISTINCT c.cid FROM nweb.challenge_states(reputation_at.as_of) AS c WHERE c.state <> 'resolved'
    ), counted AS (
        SELECT DISTINCT ON (s.submitter, s.cid)
               s.submitter, s.cid, s.cost_units, coalesce(s.vantage, '') AS vantage, s.grace_ends_at
          FROM nweb.v_submissions AS s
         WHERE s.status = 'verified'
           AND s.grace_ends_at < reputation_at.as_of
           AND s.cid NOT IN (SELECT f.cid FROM failed AS f)
         ORDER BY s.submitter, s.cid, s.submitted_at
    ), shares AS (
        SELECT c.vantage, count(*)::double precision / sum(count(*)) OVER () AS share
          FROM counted AS c GROUP BY c.vantage
    )
    SELECT c.submitter,
           sum(@extschema@.nweb_reputation_points(c.cost_units, sh.share,
                   extract(epoch FROM reputation_at.as_of - c.grace_ends_at)::double precision)),
           @extschema@.nweb_rep_factor(sum(@extschema@.nweb_reputation_points(c.cost_units, sh.share,
                   extract(epoch FROM reputation_at.as_of - c.grace_ends_at)::double precision))),
           count(*)
      FROM counted AS c JOIN shares AS sh ON sh.vantage = c.vantage
     GROUP BY c.submitter;
$$;
COMMENT ON FUNCTION nweb.reputation_at(timestamptz) IS 'Reputation = sum over the address''s verified submissions whose 72 h grace ended before as_of and that have no challenge in grace or slashable, of cost_units * 2/(1 + vantage_share) * 2^(-(as_of - grace end)/30 days). cost_units weighs dataset complexity (masscan 1, nmap top-1000 2, full 5, diff/enrich 1); vantage_share is the fraction of all counted submissions made from the same vantage (rare vantages count up to 2x); the 30-day half-life prefers recent work. repFactor = floor6(rep / (rep + 10))';

CREATE VIEW nweb.v_reputation AS
SELECT * FROM nweb.reputation_at(now());
COMMENT ON VIEW nweb.v_reputation IS 'nweb.reputation_at as of now';

CREATE FUNCTION nweb.refresh_reputation(as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
COMMENT ON FUNCTION nweb.refresh_reputation(timestamptz) IS 'Store nweb.reputation_at(as_of) in nweb.stakes.reputation for every address; returns the number of rows written';

CREATE FUNCTION nweb.quota_at(as_of timestamptz DEFAULT now())
RETURNS TABLE (address text, stake numeric, reputation double precision, rep_factor numeric,
               quota_units bigint, used_units bigint, remaining_units bigint, may_submit boolean)
LANGUAGE sql STABLE AS $$
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
COMMENT ON FUNCTION nweb.quota_at(timestamptz) IS 'Quota per address: floor(sqrt(stake) * (1 + repFactor)) units (0 below 100 GST) per rolling 24 h window ending at as_of, minus the cost of submissions in the window (invalid bundles excepted)';

CREATE VIEW nweb.v_quota AS
SELECT * FROM nweb.quota_at(now());
COMMENT ON VIEW nweb.v_quota IS 'nweb.quota_at as of now';

CREATE FUNCTION nweb.can_submit(address text, kind text, as_of timestamptz DEFAULT now())
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT q.may_submit AND q.remaining_units >= @extschema@.nweb_submission_cost(can_submit.kind)
                       FROM nweb.quota_at(can_submit.as_of) AS q
                      WHERE q.address = lower(can_submit.address)), false);
$$;
COMMENT ON FUNCTION nweb.can_submit(text, text, timestamptz) IS 'Whether the address holds at least 100 GST and has quota left for one submission of this kind';

------------------------------------------------------------------------------
-- Bridge to xray.
------------------------------------------------------------------------------
CREATE FUNCTION nweb.bridge_payload(bundle_cid text, tenant_id uuid, assets jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    b      nweb.bundles;
    v_rows jsonb;
BEGIN
    SELECT * INTO b FROM nweb.bundles AS x WHERE x.cid = @extschema@.nweb_cid_canonical(bridge_payload.bundle_cid);
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM nweb.first_submission(@extschema@.nweb_cid_canonical(bridge_payload.bundle_cid))) THEN
            RAISE EXCEPTION 'bundle % is pending, not verified; only verified data reaches xray', bundle_cid
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RAISE EXCEPTION 'bundle % is not known', bundle_cid USING ERRCODE = 'no_data_found';
    END IF;
    IF b.status <> 'verified' THEN
        RAISE EXCEPTION 'bundle % is %, not verified; only verified data reaches xray', b.cid, b.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF jsonb_typeof(assets) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'assets: expected a JSON array of {asset_id, asset_type, asset_value}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'ip', host(s.ip), 'port', s.port, 'proto', s.proto, 'state', s.state,
               'ts', extract(epoch FROM s.ts)::bigint, 'service', s.service, 'product', s.product,
               'version', s.version, 'tool', s.tool)), '[]'::jsonb)
      INTO v_rows
      FROM nweb.scanprint AS s
     WHERE s.bundle_cid = b.cid
       AND s.ip <<= ANY (SELECT (a ->> 'asset_value')::inet FROM jsonb_array_elements(assets) AS a);
    RETURN @extschema@.nweb_bridge_payload(
        tenant_id,
        jsonb_build_object('cid', b.cid, 'merkle_root', b.merkle_root, 'tool', b.tool, 'tool_version', b.tool_version,
                           'vantage', b.vantage,
                           'started_at', extract(epoch FROM b.scan_started_at)::bigint,
                           'finished_at', extract(epoch FROM b.scan_finished_at)::bigint),
        assets, v_rows);
END
$$;
COMMENT ON FUNCTION nweb.bridge_payload(text, uuid, jsonb) IS 'An xray scan payload (schema 1.2, scan_kind scheduled, the bundle''s tool) for the rows of a verified bundle inside the tenant''s assets ([{asset_id, asset_type ip|cidr, asset_value}]), or NULL if none. Its coverage lists only ports the scanprint saw open or closed, so absence never causes a false FIXED; the scan_id is derived from tenant and CID, so bridging twice is a duplicate. INSERT it into xray.scan_results';

------------------------------------------------------------------------------
-- Views for people and BI tools (explicit types).
------------------------------------------------------------------------------
CREATE VIEW nweb.v_bundles AS
SELECT b.cid::text, b.status::text, b.reason::text, b.reason_detail::text,
       b.namespace::text, b.dataset_type::text, b.tool::text, b.tool_version::text, b.vantage::text,
       b.cost_kind::text, b.cost_units::integer, b.submitter::text,
       b.merkle_root::text, b.attested_merkle_root::text, b.scan_started_at::timestamptz, b.scan_finished_at::timestamptz,
       b.scanprint_lines::integer, b.scanprint_bytes::bigint, b.bundle_bytes::bigint,
       b.first_seen_at::timestamptz, b.checked_at::timestamptz, b.verified_at::timestamptz
  FROM nweb.bundles AS b
UNION ALL
SELECT s.cid::text, 'pending'::text, NULL::text, NULL::text,
       NULL::text, s.payload ->> 'datasetType', NULL::text, NULL::text, NULL::text,
       @extschema@.nweb_cost_kind(s.payload ->> 'datasetType'), NULL::integer, s.attester::text,
       NULL::text, lower(s.payload ->> 'merkleRoot'), NULL::timestamptz, NULL::timestamptz,
       NULL::integer, NULL::bigint, NULL::bigint,
       s.block_time::timestamptz, NULL::timestamptz, NULL::timestamptz
  FROM (SELECT DISTINCT ON (a.cid) a.cid, a.attester, a.payload, a.block_time
          FROM nweb.attestations AS a
         WHERE a.kind = 'ScanSubmission' AND a.cid IS NOT NULL
         ORDER BY a.cid, a.block_time, a.attestation_id) AS s
 WHERE NOT EXISTS (SELECT 1 FROM nweb.bundles AS b WHERE b.cid = s.cid);
COMMENT ON VIEW nweb.v_bundles IS 'Every bundle without its manifest document: checked ones from nweb.bundles, and attested CIDs not checked yet as pending (what the indexer should fetch)';

CREATE VIEW nweb.v_port_latest AS
SELECT DISTINCT ON (s.ip, s.proto, s.port)
       s.ip::inet, s.proto::text, s.port::integer, s.state::text, s.service::text, s.product::text,
       s.version::text, s.ts::timestamptz AS seen_at, s.vantage::text, s.bundle_cid::text
  FROM nweb.scanprint AS s
 ORDER BY s.ip, s.proto, s.port, s.ts DESC, s.bundle_cid;
COMMENT ON VIEW nweb.v_port_latest IS 'The newest verified observation of every (ip, proto, port)';

CREATE VIEW nweb.v_open_ports AS
SELECT * FROM nweb.v_port_latest AS p WHERE p.state = 'open';
COMMENT ON VIEW nweb.v_open_ports IS 'Who has port X open now: SELECT ip FROM nweb.v_open_ports WHERE port = 3389';

CREATE VIEW nweb.v_port_changes AS
SELECT x.ip, x.proto, x.port, x.seen_at, x.state, x.previous_state, x.service, x.previous_service,
       x.product, x.version, x.vantage, x.bundle_cid
  FROM (SELECT s.ip::inet, s.proto::text, s.port::integer, s.ts::timestamptz AS seen_at, s.state::text,
               lag(s.state) OVER w AS previous_state, s.service::text, lag(s.service) OVER w AS previous_service,
               s.product::text, s.version::text, s.vantage::text, s.bundle_cid::text
          FROM nweb.scanprint AS s
        WINDOW w AS (PARTITION BY s.ip, s.proto, s.port ORDER BY s.ts, s.bundle_cid, s.line_no)) AS x
 WHERE x.previous_state IS DISTINCT FROM x.state OR x.previous_service IS DISTINCT FROM x.service;
COMMENT ON VIEW nweb.v_port_changes IS 'What changed on this IP: every first sighting and every change of state or service per (ip, proto, port), oldest first';

------------------------------------------------------------------------------
-- Privileges (for the roles of this release, where they exist).
------------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION nweb.store_bundle(text, text, text, jsonb, text, bigint, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nweb.ingest_bundle(text, jsonb, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nweb.ingest_car(bytea, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nweb.mark_unavailable(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION nweb.refresh_reputation(timestamptz) FROM PUBLIC;
DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'xray_reader') THEN
        GRANT USAGE ON SCHEMA nweb TO xray_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA nweb TO xray_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'xray_ingest') THEN
        GRANT USAGE ON SCHEMA nweb TO xray_ingest;
        GRANT INSERT, DELETE ON nweb.attestations TO xray_ingest;
        GRANT INSERT, UPDATE ON nweb.stakes TO xray_ingest;
        GRANT EXECUTE ON FUNCTION nweb.ingest_bundle(text, jsonb, text, jsonb), nweb.ingest_car(bytea, text),
                                  nweb.mark_unavailable(text, text), nweb.refresh_reputation(timestamptz)
              TO xray_ingest;
    END IF;
END
$grants$;

------------------------------------------------------------------------------
-- pg_dump: extension tables are dumped only when registered.
------------------------------------------------------------------------------
DO $dump$
DECLARE
    t text;
BEGIN
    -- nweb.challenges is left out on purpose: restoring nweb.attestations rebuilds it.
    FOREACH t IN ARRAY ARRAY['nweb.bundles', 'nweb.scanprint', 'nweb.attestations', 'nweb.stakes',
                             pg_catalog.pg_get_serial_sequence('nweb.attestations', 'attestation_id')]
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t::regclass, '');
    END LOOP;
END
$dump$;
