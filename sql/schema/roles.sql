-- Bootstrap of the install: the roles and the two schemas.
--
-- xray_reader reads everything of its tenant; xray_ingest also submits scan
-- payloads and nweb bundles; xray_admin also edits configuration and triages.
-- Roles are cluster-wide, so CREATE EXTENSION in a second database (or in two
-- databases at once) must find them existing and carry on.
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

CREATE SCHEMA nweb;

COMMENT ON SCHEMA nweb IS 'nweb: verified public scan bundles (IPFS), their scanprint rows, chain attestations, challenges, stakes and the MVP rules';

GRANT USAGE ON SCHEMA nweb TO xray_reader;
GRANT USAGE ON SCHEMA nweb TO xray_ingest;

CREATE SCHEMA xray;

COMMENT ON SCHEMA xray IS 'Watchtower XRAY: scan results, exposures and their immutable events';

GRANT USAGE ON SCHEMA xray TO xray_reader;

