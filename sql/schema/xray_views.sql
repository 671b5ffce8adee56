-- Read-only views over the XRAY tables for dashboards and DBAs. They are
-- security_invoker, so the caller's tenant (row-level security) applies.

CREATE VIEW xray.assets_seen WITH (security_invoker='true') AS
 SELECT a.tenant_id,
    a.asset_id,
    a.asset_type,
    a.asset_value,
    a.canonical_host,
    a.tags,
    a.first_seen,
    a.last_seen,
    a.last_scan_id,
    ( SELECT count(*) AS count
           FROM xray.endpoints p
          WHERE ((p.tenant_id = a.tenant_id) AND (p.asset_id = a.asset_id))) AS endpoint_count,
    COALESCE(o.open_exposures, (0)::bigint) AS open_exposures,
    o.highest_open_severity
   FROM (xray.assets a
     LEFT JOIN LATERAL ( SELECT count(*) AS open_exposures,
            (array_agg(b.default_severity ORDER BY (xray.severity_rank(b.default_severity)) DESC))[1] AS highest_open_severity
           FROM (xray.exposures x
             JOIN xray.risk_buckets b ON ((b.risk_bucket = x.risk_bucket)))
          WHERE ((x.tenant_id = a.tenant_id) AND (x.asset_id = a.asset_id) AND (x.status = 'open'::text))) o ON (true));

COMMENT ON VIEW xray.assets_seen IS 'Assets reported by applied scans, with endpoint and open-exposure counts';

GRANT SELECT ON TABLE xray.assets_seen TO xray_reader;

CREATE VIEW xray.endpoints_seen WITH (security_invoker='true') AS
 SELECT p.tenant_id,
    p.asset_id,
    a.asset_value,
    p.endpoint_id,
    p.ip,
    p.observed_host,
    p.domain_context,
    p.open_tcp_ports,
    cardinality(p.open_tcp_ports) AS open_port_count,
    p.tls_ports,
    p.http_urls,
    p.first_seen,
    p.last_seen,
    p.last_scan_id
   FROM (xray.endpoints p
     LEFT JOIN xray.assets a ON (((a.tenant_id = p.tenant_id) AND (a.asset_id = p.asset_id))));

COMMENT ON VIEW xray.endpoints_seen IS 'Endpoints reported by applied scans, with the open ports, TLS ports and answering URLs of their newest scan';

GRANT SELECT ON TABLE xray.endpoints_seen TO xray_reader;

CREATE VIEW xray.exposure_timeline WITH (security_invoker='true') AS
 SELECT e.event_id,
    e.tenant_id,
    e.scan_id,
    e.event_type,
    e.observed_at,
    e.created_at AS recorded_at,
    e.identity_key,
    e.risk_bucket,
    b.name AS bucket_name,
    b.default_severity AS severity,
    xray.severity_rank(b.default_severity) AS severity_rank,
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
    (e.observed_at - o.opened_at) AS time_to_fix,
    x.status AS current_status,
    x.first_seen,
    x.last_seen,
    s.scan_kind,
    s.scan_profile
   FROM ((((((xray.exposure_events e
     JOIN xray.risk_buckets b ON ((b.risk_bucket = e.risk_bucket)))
     LEFT JOIN xray.identity_rekeys k ON (((k.tenant_id = e.tenant_id) AND (k.old_identity_key = e.identity_key))))
     LEFT JOIN xray.exposures x ON (((x.tenant_id = e.tenant_id) AND (x.identity_key = COALESCE(k.identity_key, e.identity_key)))))
     LEFT JOIN xray.scan_results s ON ((s.scan_id = e.scan_id)))
     LEFT JOIN xray.assets a ON (((a.tenant_id = e.tenant_id) AND (a.asset_id = e.asset_id))))
     LEFT JOIN LATERAL ( SELECT max(n.observed_at) AS opened_at
           FROM xray.exposure_events n
          WHERE ((e.event_type = 'FIXED'::text) AND (n.tenant_id = e.tenant_id) AND (n.identity_key = ANY ((ARRAY[e.identity_key] || ARRAY( SELECT k2.old_identity_key
                   FROM xray.identity_rekeys k2
                  WHERE ((k2.tenant_id = e.tenant_id) AND (k2.identity_key = e.identity_key) AND k2.kept))))) AND (n.event_type = 'NEW'::text) AND (n.event_id < e.event_id))) o ON (true));

COMMENT ON VIEW xray.exposure_timeline IS 'Every event with bucket, severity, scan and the exposure''s current state; FIXED rows carry time_to_fix';

COMMENT ON COLUMN xray.exposure_timeline.time_to_fix IS 'FIXED only: observed_at minus the NEW event that opened the exposure';

COMMENT ON COLUMN xray.exposure_timeline.current_status IS 'Status of the exposure now, found through xray.identity_rekeys for events written under an identity that was re-keyed';

GRANT SELECT ON TABLE xray.exposure_timeline TO xray_reader;

CREATE VIEW xray.open_exposures WITH (security_invoker='true') AS
 SELECT x.tenant_id,
    x.identity_key,
    x.asset_id,
    a.asset_value,
    x.observed_host,
    x.observed_ip,
    x.risk_bucket,
    b.name AS bucket_name,
    b.default_severity AS severity,
    xray.severity_rank(b.default_severity) AS severity_rank,
    x.proto,
    x.port,
    x.fingerprint,
    x.detail,
    x.first_seen,
    o.open_since,
    x.last_seen,
    (now() - o.open_since) AS age,
    (floor((EXTRACT(epoch FROM (now() - o.open_since)) / (86400)::numeric)))::integer AS age_days,
    x.last_change_type,
    x.reopen_count,
    x.last_scan_id
   FROM (((xray.exposures x
     JOIN xray.risk_buckets b ON ((b.risk_bucket = x.risk_bucket)))
     LEFT JOIN xray.assets a ON (((a.tenant_id = x.tenant_id) AND (a.asset_id = x.asset_id))))
     CROSS JOIN LATERAL ( SELECT COALESCE(max(e.observed_at), x.first_seen) AS open_since
           FROM xray.exposure_events e
          WHERE ((e.tenant_id = x.tenant_id) AND (e.event_type = 'NEW'::text) AND (e.identity_key = ANY ((ARRAY[x.identity_key] || ARRAY( SELECT k.old_identity_key
                   FROM xray.identity_rekeys k
                  WHERE ((k.tenant_id = x.tenant_id) AND (k.identity_key = x.identity_key) AND k.kept))))))) o)
  WHERE (x.status = 'open'::text);

COMMENT ON VIEW xray.open_exposures IS 'Open exposures with severity and age (since the NEW event that opened them)';

GRANT SELECT ON TABLE xray.open_exposures TO xray_reader;

CREATE VIEW xray.proof_of_fix WITH (security_invoker='true') AS
 SELECT e.event_id,
    e.tenant_id,
    e.scan_id AS fixed_by_scan_id,
    e.observed_at AS fixed_at,
    e.identity_key,
    e.risk_bucket,
    b.name AS bucket_name,
    b.default_severity AS severity,
    e.asset_id,
    e.observed_host,
    e.proto,
    e.port,
    e.fingerprint,
    e.detail AS last_open_detail,
    e.prev_material_hash AS last_open_material_hash,
    (e.evidence -> 'last_open'::text) AS last_open_evidence,
    (e.evidence #>> '{proof,basis}'::text[]) AS proof_basis,
    (c.ordinality)::integer AS check_no,
    (c.value ->> 'endpoint_id'::text) AS endpoint_id,
    ((c.value ->> 'ip'::text))::inet AS endpoint_ip,
    (c.value ->> 'result'::text) AS check_result,
        CASE
            WHEN (e.risk_bucket = ANY (ARRAY['RB1'::text, 'RB6'::text])) THEN ('tcp/'::text || e.port)
            WHEN (e.risk_bucket = ANY (ARRAY['RB3'::text, 'RB4'::text])) THEN ('tls/'::text || e.port)
            WHEN (e.risk_bucket = 'RB7'::text) THEN ('dns:'::text || split_part("substring"(e.fingerprint, 'record:(.*)$'::text), '|'::text, 1))
            ELSE "substring"(e.fingerprint, 'url:(.*)$'::text)
        END AS checked_target,
        CASE
            WHEN (jsonb_typeof((ep.endpoint -> 'coverage'::text)) = 'object'::text) THEN ARRAY( SELECT jsonb_array_elements_text(xray.json_array((ep.endpoint #> '{coverage,tools}'::text[]))) AS jsonb_array_elements_text)
            ELSE ARRAY( SELECT tv.key
               FROM jsonb_each(
                    CASE
                        WHEN (jsonb_typeof((s.payload -> 'tool_versions'::text)) = 'object'::text) THEN (s.payload -> 'tool_versions'::text)
                        ELSE '{}'::jsonb
                    END) tv(key, value)
              WHERE (jsonb_typeof(tv.value) = 'string'::text)
              ORDER BY tv.key)
        END AS tools_run,
        CASE
            WHEN (jsonb_typeof((ep.endpoint -> 'coverage'::text)) = 'object'::text) THEN ARRAY( SELECT (v.value)::integer AS v
               FROM jsonb_array_elements_text(xray.json_array((ep.endpoint #> '{coverage,tcp_ports}'::text[]))) v(value))
            ELSE NULL::integer[]
        END AS tcp_ports_covered,
        CASE
            WHEN (jsonb_typeof((ep.endpoint -> 'coverage'::text)) = 'object'::text) THEN ARRAY( SELECT jsonb_array_elements_text(xray.json_array((ep.endpoint #> '{coverage,http_urls}'::text[]))) AS jsonb_array_elements_text
            UNION
             SELECT jsonb_array_elements_text(xray.json_array((ep.endpoint #> '{coverage,nuclei_urls}'::text[]))) AS jsonb_array_elements_text)
            ELSE NULL::text[]
        END AS urls_covered,
    ARRAY( SELECT DISTINCT ((t.value ->> 'port'::text))::integer AS int4
           FROM jsonb_array_elements(xray.json_array((ep.endpoint #> '{ports,tcp}'::text[]))) t(value)
          WHERE ((t.value ->> 'state'::text) = 'open'::text)
          ORDER BY ((t.value ->> 'port'::text))::integer) AS open_tcp_ports_seen,
        CASE
            WHEN ((e.risk_bucket <> 'RB7'::text) AND (ep.endpoint IS NOT NULL)) THEN COALESCE(( SELECT (t.value ->> 'state'::text)
               FROM jsonb_array_elements(xray.json_array((ep.endpoint #> '{ports,tcp}'::text[]))) t(value)
              WHERE (((t.value ->> 'port'::text))::integer = e.port)
             LIMIT 1), 'not reported'::text)
            ELSE NULL::text
        END AS port_state_seen,
        CASE
            WHEN (e.risk_bucket = ANY (ARRAY['RB3'::text, 'RB4'::text])) THEN ARRAY( SELECT DISTINCT v.value AS v
               FROM jsonb_array_elements(xray.json_array((ep.endpoint -> 'tls'::text))) t(value),
                LATERAL jsonb_array_elements_text(xray.json_array((t.value -> 'tls_versions'::text))) v(value)
              WHERE (((t.value ->> 'port'::text))::integer = e.port)
              ORDER BY v.value)
            ELSE NULL::text[]
        END AS tls_versions_seen,
        CASE
            WHEN (e.risk_bucket = 'RB7'::text) THEN (ep.endpoint #>> ARRAY['dns_email'::text, split_part("substring"(e.fingerprint, 'record:(.*)$'::text), '|'::text, 1), 'assessment'::text])
            ELSE NULL::text
        END AS dns_assessment_seen
   FROM ((((xray.exposure_events e
     JOIN xray.risk_buckets b ON ((b.risk_bucket = e.risk_bucket)))
     LEFT JOIN xray.scan_results s ON ((s.scan_id = e.scan_id)))
     LEFT JOIN LATERAL jsonb_array_elements(xray.json_array((e.evidence #> '{proof,endpoints}'::text[]))) WITH ORDINALITY c(value, ordinality) ON (true))
     LEFT JOIN LATERAL ( SELECT pe.endpoint
           FROM xray.payload_endpoints(s.payload) pe(asset_id, endpoint_id, ip, observed_host, domain_context, endpoint)
          WHERE ((pe.asset_id = e.asset_id) AND (pe.endpoint_id = (c.value ->> 'endpoint_id'::text)))
         LIMIT 1) ep ON (true))
  WHERE (e.event_type = 'FIXED'::text);

COMMENT ON VIEW xray.proof_of_fix IS 'Proof-of-fix packets: per FIXED event and checked endpoint, the last open evidence beside what the fixing scan covered (tools, ports, URLs) and saw';

COMMENT ON COLUMN xray.proof_of_fix.tcp_ports_covered IS 'From the 1.2 coverage block; NULL when coverage was inferred (1.0/1.1 payloads use the scan profile''s ports)';

COMMENT ON COLUMN xray.proof_of_fix.port_state_seen IS 'State of the exposure''s port on this endpoint in the fixing scan; not reported = the port scan did not list it open';

GRANT SELECT ON TABLE xray.proof_of_fix TO xray_reader;

CREATE VIEW xray.scan_bucket_counts WITH (security_invoker='true') AS
 SELECT e.scan_id,
    e.tenant_id,
    e.risk_bucket,
    b.name AS bucket_name,
    b.default_severity AS severity,
    count(*) FILTER (WHERE (e.event_type = 'NEW'::text)) AS new_count,
    count(*) FILTER (WHERE (e.event_type = 'CHANGED'::text)) AS changed_count,
    count(*) FILTER (WHERE (e.event_type = 'FIXED'::text)) AS fixed_count,
    count(*) AS event_count
   FROM (xray.exposure_events e
     JOIN xray.risk_buckets b ON ((b.risk_bucket = e.risk_bucket)))
  GROUP BY e.scan_id, e.tenant_id, e.risk_bucket, b.name, b.default_severity;

COMMENT ON VIEW xray.scan_bucket_counts IS 'Events per scan and risk bucket, by event type (buckets without events have no row)';

GRANT SELECT ON TABLE xray.scan_bucket_counts TO xray_reader;

CREATE VIEW xray.scan_summary WITH (security_invoker='true') AS
 SELECT s.scan_id,
    s.tenant_id,
    s.scan_kind,
    s.scan_profile,
    s.schema_version,
    s.status,
    s.started_at,
    s.finished_at,
    (s.finished_at - s.started_at) AS duration,
    (EXTRACT(epoch FROM (s.finished_at - s.started_at)))::double precision AS duration_seconds,
    s.ingested_at,
    s.asset_count,
    s.endpoint_count,
    s.exposure_count,
    s.new_count,
    s.changed_count,
    s.fixed_count,
    ((s.new_count + s.changed_count) + s.fixed_count) AS event_count,
    s.held_open_count,
    s.error_count,
    s.stale_asset_ids,
    cardinality(s.stale_asset_ids) AS stale_asset_count,
    jsonb_array_length(s.warnings) AS warning_count,
    ARRAY( SELECT (((w.value ->> 'path'::text) || ': '::text) || (w.value ->> 'problem'::text))
           FROM jsonb_array_elements(s.warnings) WITH ORDINALITY w(value, n)
          ORDER BY w.n) AS warnings
   FROM xray.scan_results s;

COMMENT ON VIEW xray.scan_summary IS 'One row per submitted scan: status, duration, sizes, event counts by type, errors, assets skipped as stale, warnings';

COMMENT ON COLUMN xray.scan_summary.warnings IS 'One "path: problem" text per warning, in payload order; the structured list is xray.scan_results.warnings';

GRANT SELECT ON TABLE xray.scan_summary TO xray_reader;

