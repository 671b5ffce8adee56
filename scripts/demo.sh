#!/usr/bin/env bash
# The main job on a real example: a fresh database `xray_demo`, the extension,
# every diff-contract scenario of fixtures/scenarios played as a sequence of
# scan payloads (one tenant per scenario), then the events and the open exposures.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS xray_demo WITH (FORCE)" -c "CREATE DATABASE xray_demo"
"${PSQL[@]}" -d xray_demo -c "CREATE EXTENSION xray_pg" \
  -c "CREATE TABLE demo_tenants (tenant_id uuid PRIMARY KEY, scenario text NOT NULL)"
for f in fixtures/scenarios/*.json; do
  name=$(basename "$f" .json)
  "${PSQL[@]}" -d xray_demo -v scenario="$(cat "$f")" -v name="$name" <<'SQL'
CREATE TEMP TABLE demo_input AS SELECT :'name'::text AS name, :'scenario'::jsonb AS doc,
       md5(:'name')::uuid AS tenant_id;
INSERT INTO demo_tenants SELECT tenant_id, name FROM demo_input;
DO $$
DECLARE
    step record;
BEGIN
    FOR step IN
        SELECT e.value->'payload' AS payload, i.tenant_id
          FROM demo_input i, jsonb_array_elements(i.doc->'steps') WITH ORDINALITY AS e
         ORDER BY e.ordinality
    LOOP
        -- Each scenario runs as its own tenant so they do not see each other.
        PERFORM xray.ingest_scan(jsonb_set(step.payload, '{scan,tenant_id}', to_jsonb(step.tenant_id::text)));
    END LOOP;
END
$$;
SQL
done
"${PSQL[@]}" -d xray_demo -P pager=off <<'SQL'
\echo '== Events (immutable history) =='
SELECT t.scenario, e.event_id, e.event_type, e.risk_bucket, e.observed_host, e.port, e.detail, e.reopened,
       e.observed_at
  FROM xray.exposure_events e JOIN demo_tenants t USING (tenant_id)
 ORDER BY e.event_id;
\echo '== Open exposures =='
SELECT t.scenario, x.risk_bucket, x.observed_host, x.port, x.detail, x.first_seen, x.last_seen
  FROM xray.exposures x JOIN demo_tenants t USING (tenant_id)
 WHERE x.status = 'open'
 ORDER BY t.scenario, x.risk_bucket, x.port;
SQL
