-- The engine's pure functions as SQL: canonical hosts, identity keys,
-- material hashes, endpoints of a payload, and their refusals.
SELECT xray.canonical_host(h) AS canonical, h AS given
  FROM (VALUES (' Example.COM. '), ('[2001:DB8:0::10]'), ('2001:db8:0:0:0:0:0:10'), ('WWW.Bücher.Example'),
               ('::ffff:192.0.2.1'), ('192.0.2.1')) AS v(h);
SELECT xray_identity_key('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002',
                         ' Host.Example. ', 'RB1', 'tcp', 22, 'svc:ssh')
     = xray_identity_key('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002',
                         'host.example', 'RB1', 'tcp', 22, 'svc:ssh') AS same_identity;
SELECT xray_identity_key('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002',
                         'host.example', 'RB9', 'tcp', 22, 'svc:ssh');
SELECT xray_identity_key('aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002',
                         'host.example', 'RB1', 'tcp', 70000, 'svc:ssh');
SELECT xray_material_hash('RB1', '{"service": "ssh", "other": 1}') = xray_material_hash('RB1', '{"service": "ssh"}')
       AS other_keys_ignored;
\set scenario `cat ../../fixtures/scenarios/17-ipv6-spelling-variants.json`
SELECT asset_id, endpoint_id, ip, observed_host, domain_context
  FROM xray.payload_endpoints(:'scenario'::jsonb -> 'steps' -> 0 -> 'payload');
SELECT count(*) FROM xray.payload_endpoints(NULL);
SELECT * FROM xray.payload_endpoints('{"schema_version": "1.2"}');
-- Configured normalisation under an explicit configuration.
SELECT risk_bucket, port, fingerprint
  FROM xray_normalize(:'scenario'::jsonb -> 'steps' -> 0 -> 'payload', xray.engine_config()) ORDER BY 1, 2, 3;
SELECT * FROM xray_normalize(:'scenario'::jsonb -> 'steps' -> 0 -> 'payload', '{"near_expiry_days": "soon"}');
