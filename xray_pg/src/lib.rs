//! `xray_pg`: the Watchtower extension. Thin glue over the pure crates (`xray_engine`, `nweb`): SQL entry
//! points, the ingest trigger and the set-based SPI reads and writes.

mod columns;
mod errors;
mod functions;
mod ingest;
mod jsonb;
mod nweb;

::pgrx::pg_module_magic!();

// A fresh install is today's schema, written once in sql/schema/ (one file
// per concern, see docs/sql.md), with the C functions declared by pgrx from
// the Rust below. Upgrades are sql/xray_pg--A--B.sql, each holding only the
// change from the release before; tests/tests/sql_surface_upgrade.rs checks
// that every archived release updated is object by object this install.
//
// The library also serves the archived releases (sql/archive/) until they
// are updated: the symbols their SQL names stay here as `sql = false`
// functions.
pgrx::extension_sql_file!("../../sql/schema/roles.sql", name = "roles", bootstrap);

// The comments of the functions pgrx declares; every file after this one can
// use any of them.
pgrx::extension_sql_file!(
    "../../sql/schema/rust_functions.sql",
    name = "rust_functions",
    requires = [
        functions::xray_identity_key,
        functions::xray::xray_canonical_host,
        functions::xray_material_hash,
        functions::xray_normalize_configured,
        functions::xray_normalize_with_config,
        functions::xray::xray_payload_endpoints,
        ingest::trigger::xray_ingest_trigger_0_5,
        ingest::dry_run::xray_diff_scan_0_5,
        nweb::nweb_merkle_root_jsonl,
        nweb::nweb_merkle_root_leaves,
        nweb::nweb_merkle_proof,
        nweb::nweb_merkle_verify,
        nweb::nweb_scanprint_from_nmap,
        nweb::nweb_unixfs_cid,
        nweb::nweb_unixfs_file_cid,
        nweb::nweb_car_export,
        nweb::nweb_car_files,
        nweb::nweb_car_bundle,
        nweb::nweb_cid_canonical_0_7,
        nweb::nweb_json_or_null,
        nweb::nweb_bundle_verdict,
        nweb::nweb_scanprint_rows,
        nweb::nweb_quota_units,
        nweb::nweb_submission_cost,
        nweb::nweb_cost_kind,
        nweb::nweb_slash_split,
        nweb::nweb_grace_ends_at,
        nweb::nweb_challenge_state,
        nweb::nweb_quota_window_start,
        nweb::nweb_reputation_points,
        nweb::nweb_rep_factor,
        nweb::nweb_bridge_payload
    ]
);

pgrx::extension_sql_file!("../../sql/schema/xray_tenancy.sql", name = "xray_tenancy", requires = ["rust_functions"]);
pgrx::extension_sql_file!("../../sql/schema/xray_tables.sql", name = "xray_tables", requires = ["xray_tenancy"]);
pgrx::extension_sql_file!("../../sql/schema/xray_config.sql", name = "xray_config", requires = ["xray_tables"]);
pgrx::extension_sql_file!("../../sql/schema/xray_ingest.sql", name = "xray_ingest", requires = ["xray_config"]);
pgrx::extension_sql_file!("../../sql/schema/xray_views.sql", name = "xray_views", requires = ["xray_ingest"]);
pgrx::extension_sql_file!("../../sql/schema/nweb_tables.sql", name = "nweb_tables", requires = ["xray_views"]);
pgrx::extension_sql_file!("../../sql/schema/nweb_chain.sql", name = "nweb_chain", requires = ["nweb_tables"]);
pgrx::extension_sql_file!("../../sql/schema/nweb_views.sql", name = "nweb_views", requires = ["nweb_chain"]);
pgrx::extension_sql_file!("../../sql/schema/nweb_rules.sql", name = "nweb_rules", requires = ["nweb_views"]);
pgrx::extension_sql_file!("../../sql/schema/nweb_ingest.sql", name = "nweb_ingest", requires = ["nweb_rules"]);
pgrx::extension_sql_file!("../../sql/schema/dump.sql", name = "dump", finalize);
