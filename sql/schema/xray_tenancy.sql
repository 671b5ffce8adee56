-- Tenancy. A session selects its tenant with xray.set_tenant(); the
-- row-level security policies of every tenant table (beside each table in
-- xray_tables.sql) compare tenant_id with xray.current_tenant(), which is NULL
-- unless xray.tenant_access lets the session's login role use that tenant.

CREATE TABLE xray.tenant_access (
    role_name name NOT NULL,
    tenant_id uuid NOT NULL,
    granted_at timestamp with time zone DEFAULT now() NOT NULL,
    granted_by name DEFAULT SESSION_USER NOT NULL
);

ALTER TABLE ONLY xray.tenant_access FORCE ROW LEVEL SECURITY;

ALTER TABLE ONLY xray.tenant_access
    ADD CONSTRAINT tenant_access_pkey PRIMARY KEY (role_name, tenant_id);

ALTER TABLE xray.tenant_access ENABLE ROW LEVEL SECURITY;

CREATE POLICY admin_all ON xray.tenant_access TO xray_admin USING (true) WITH CHECK (true);

CREATE POLICY own_grants ON xray.tenant_access FOR SELECT USING ((EXISTS ( SELECT 1
   FROM pg_roles r
  WHERE ((r.rolname = tenant_access.role_name) AND pg_has_role(SESSION_USER, r.oid, 'MEMBER'::text)))));

COMMENT ON TABLE xray.tenant_access IS 'Which roles may select which tenant (xray.set_tenant); membership in role_name counts';

GRANT SELECT ON TABLE xray.tenant_access TO xray_reader;
GRANT INSERT,DELETE,UPDATE ON TABLE xray.tenant_access TO xray_admin;

--
-- PostgreSQL database dump complete
--

CREATE FUNCTION xray.current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL RESTRICTED
    AS $$
SELECT s.t
  FROM (SELECT nullif(pg_catalog.current_setting('xray.tenant_id', true), '')::uuid AS t) s
 WHERE xray.tenant_allowed(s.t)
$$;

COMMENT ON FUNCTION xray.current_tenant() IS 'The session''s tenant (setting xray.tenant_id) if the session may use it, else NULL; the row-level security policies compare tenant_id with it';

CREATE FUNCTION xray.set_tenant(tenant uuid, is_local boolean DEFAULT false) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
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

COMMENT ON FUNCTION xray.set_tenant(tenant uuid, is_local boolean) IS 'Select the session''s tenant (is_local: for the current transaction only); NULL clears it';

CREATE FUNCTION xray.tenant_allowed(tenant uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
SELECT xray.session_bypasses_rls() OR EXISTS (
    SELECT 1
      FROM xray.tenant_access a
      JOIN pg_catalog.pg_roles r ON r.rolname = a.role_name
     WHERE a.tenant_id = tenant_allowed.tenant
       AND pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))
$$;

COMMENT ON FUNCTION xray.tenant_allowed(tenant uuid) IS 'The session''s login role may select this tenant';

CREATE FUNCTION xray.session_bypasses_rls() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL RESTRICTED
    AS $$
SELECT coalesce((SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = session_user), false)
$$;

COMMENT ON FUNCTION xray.session_bypasses_rls() IS 'The session''s login role is a superuser or has BYPASSRLS';

