//! `xray_pg`: the Watchtower extension. Thin glue over `xray_core`: SQL entry
//! points, the ingest trigger and the set-based SPI reads and writes.


mod errors;
mod functions;
mod ingest;

::pgrx::pg_module_magic!();

pgrx::extension_sql_file!("../../sql/xray_schema.sql", name = "xray_schema", bootstrap);

pgrx::extension_sql_file!(
    "../../sql/xray_ingest.sql",
    name = "xray_ingest",
    requires = ["xray_schema", ingest::xray_ingest_scan_result],
    finalize
);

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
