-- pg_dump: the tables of an extension are dumped only when registered here.
-- All rows, also of the configuration tables (edited shipped rows replace the
-- seeds on restore, see xray.config_row_guard in xray_config.sql), and the
-- identity sequences. One call per statement: each call rewrites the
-- pg_extension row.
SELECT pg_catalog.pg_extension_config_dump('xray.scan_results', '');
SELECT pg_catalog.pg_extension_config_dump('xray.exposures', '');
SELECT pg_catalog.pg_extension_config_dump('xray.exposure_events', '');
SELECT pg_catalog.pg_extension_config_dump('xray.asset_scans', '');
SELECT pg_catalog.pg_extension_config_dump('xray.assets', '');
SELECT pg_catalog.pg_extension_config_dump('xray.endpoints', '');
SELECT pg_catalog.pg_extension_config_dump('xray.triage_log', '');
SELECT pg_catalog.pg_extension_config_dump('xray.tenant_access', '');
SELECT pg_catalog.pg_extension_config_dump('xray.risk_buckets', '');
SELECT pg_catalog.pg_extension_config_dump('xray.admin_ports', '');
SELECT pg_catalog.pg_extension_config_dump('xray.panel_templates', '');
SELECT pg_catalog.pg_extension_config_dump('xray.scan_profiles', '');
SELECT pg_catalog.pg_extension_config_dump('xray.settings', '');
SELECT pg_catalog.pg_extension_config_dump('xray.exposure_events_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('xray.triage_log_triage_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.bundles', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.scanprint', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.attestations', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.stakes', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.attestations_attestation_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.chain_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.chain_blocks', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.availability_checks', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.availability_checks_check_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.stake_events', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.chain_log_rejects', '');
SELECT pg_catalog.pg_extension_config_dump('xray.identity_rekeys', '');
SELECT pg_catalog.pg_extension_config_dump('nweb.submission_kinds', '');
