//! `xray_pg`: the Watchtower extension. Thin glue over the pure crates (`xray_engine`, `nweb`): SQL entry
//! points, the ingest trigger and the set-based SPI reads and writes.

mod columns;
mod errors;
mod functions;
mod ingest;
mod jsonb;
mod nweb;

::pgrx::pg_module_magic!();

// The install script is the 0.1.0 script followed by every upgrade script in
// order, so a fresh install and an upgraded one are the same by construction:
// - sql/xray_schema.sql, sql/xray_ingest.sql and the Rust functions declared
//   with generated SQL are the 0.1.0 base and must not change (the shipped
//   script is kept in sql/archive/ for the upgrade test);
// - each sql/xray_pg--A--B.sql is included after its predecessor. C functions
//   it adds are `sql = false` in Rust and declared in that script.
pgrx::extension_sql_file!("../../sql/xray_schema.sql", name = "xray_schema", bootstrap);

pgrx::extension_sql_file!(
    "../../sql/xray_ingest.sql",
    name = "xray_ingest",
    requires = ["xray_schema", ingest::xray_ingest_scan_result]
);

pgrx::extension_sql_file!(
    "../../sql/xray_pg--0.1.0--0.2.0.sql",
    name = "xray_pg_0_2_0",
    // Also carries nweb (docs/nweb.md), whose C functions are declared in it.
    requires = [
        "xray_ingest",
        functions::xray_identity_key,
        functions::xray_material_hash,
        functions::xray_normalize,
        ingest::xray_diff_scan
    ]
);

pgrx::extension_sql_file!(
    "../../sql/xray_pg--0.2.0--0.3.0.sql",
    name = "xray_pg_0_3_0",
    // The chain indexer's checkpoints, block window and rollback, and the slasher's probes.
    requires = ["xray_pg_0_2_0"]
);

pgrx::extension_sql_file!(
    "../../sql/xray_pg--0.3.0--0.4.0.sql",
    name = "xray_pg_0_4_0",
    // Ingest speed: lz4 payloads, inventory written by the trigger itself.
    requires = ["xray_pg_0_3_0"]
);

pgrx::extension_sql_file!(
    "../../sql/xray_pg--0.4.0--0.5.0.sql",
    name = "xray_pg_0_5_0",
    // The engine on real-world input (docs/design.md D9-D12): per-asset staleness, warnings, RB6 re-key, targeted profiles
    // without port coverage; the trigger and dry run point at the 0.5.0 symbols.
    requires = ["xray_pg_0_4_0"]
);

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
