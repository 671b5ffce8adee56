-- 0.5.0 -> 0.6.0: the schema is now written once in sql/schema/ and the C
-- functions are declared by pgrx; no change in behaviour. What a 0.5.0
-- database needs to be, object by object, a fresh 0.6.0 install:
\echo Use "ALTER EXTENSION xray_pg UPDATE TO '0.6.0'" to load this file. \quit

-- xray.payload_endpoints is served by the engine's endpoint identity instead
-- of a copy of it in SQL (which trimmed and lowercased differently).
CREATE OR REPLACE FUNCTION xray.payload_endpoints(payload jsonb)
RETURNS TABLE (asset_id uuid, endpoint_id text, ip inet, observed_host text, domain_context text, endpoint jsonb)
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'xray_payload_endpoints_wrapper';
