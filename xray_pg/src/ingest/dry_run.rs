//! `xray_diff_scan()`: what an insert of this payload would do now, without
//! writing anything.

use super::*;

pub(super) type DiffRow = (
    String,
    String,
    String,
    pgrx::Uuid,
    String,
    String,
    i32,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    JsonB,
);

/// The events `payload` would produce now; a duplicate or stale scan yields
/// none, a partial one (0.5.0) those of the assets it would apply to.
pub(super) fn dry_run(payload: &JsonB, schema: Schema) -> Vec<DiffRow> {
    let parsed = parse_payload(&payload.0);
    let args = ScanArgs::new(&parsed);
    let events = Spi::connect(|client| {
        let loaded;
        let config = if schema >= Schema::V0_2 {
            loaded = load_config(client);
            &loaded
        } else {
            default_config()
        };
        match plan(client, &parsed, None, &args, config, schema.staleness()) {
            Plan::Apply { outcome, .. } => outcome.events,
            Plan::Duplicate | Plan::Stale { .. } => Vec::new(),
        }
    });
    events
        .into_iter()
        .map(|e| {
            (
                e.event_type.as_str().to_string(),
                e.identity_key,
                e.risk_bucket.as_str().to_string(),
                pg_uuid(e.asset_id.0),
                e.observed_host,
                e.proto,
                i32::from(e.port),
                e.fingerprint,
                e.detail,
                e.prev_material_hash,
                e.material_hash,
                e.reopened,
                JsonB(e.evidence),
            )
        })
        .collect()
}

/// Declares a function returning the columns of `xray_diff_scan`, once for
/// all its versions, so the SQL result types cannot drift apart.
macro_rules! diff_scan_fn {
    ($(#[$attr:meta])* fn $name:ident($($args:tt)*) $body:block) => {
        $(#[$attr])*
        #[allow(clippy::type_complexity)]
        fn $name($($args)*) -> TableIterator<
            'static,
            (
                name!(event_type, String),
                name!(identity_key, String),
                name!(risk_bucket, String),
                name!(asset_id, pgrx::Uuid),
                name!(observed_host, String),
                name!(proto, String),
                name!(port, i32),
                name!(fingerprint, String),
                name!(detail, Option<String>),
                name!(prev_material_hash, Option<String>),
                name!(material_hash, Option<String>),
                name!(reopened, bool),
                name!(evidence, JsonB),
            ),
        > $body
    };
}

diff_scan_fn! {
    /// The symbol of `xray_diff_scan(payload)` in the 0.1.0 SQL (archived):
    /// built-in configuration. Writes nothing.
    #[pg_extern(stable, strict, sql = false)]
    fn xray_diff_scan(payload: JsonB) {
        TableIterator::new(dry_run(&payload, Schema::V0_1))
    }
}

diff_scan_fn! {
    /// The symbol of `xray_diff_scan(payload)` in the 0.2.0-0.4.0 SQL
    /// (archived): under the configuration tables, as the caller sees the
    /// tables (row-level security applies), with per-scan staleness.
    #[pg_extern(stable, strict, sql = false)]
    fn xray_diff_scan_configured(payload: JsonB) {
        TableIterator::new(dry_run(&payload, Schema::V0_2))
    }
}

diff_scan_fn! {
    /// SQL `xray_diff_scan(payload)`: the events this payload would produce
    /// now under the configuration tables, as the caller sees them, with
    /// per-asset staleness like the trigger: the events of the assets the scan
    /// is the newest for. Writes nothing.
    #[pg_extern(stable, strict, name = "xray_diff_scan")]
    fn xray_diff_scan_0_5(payload: JsonB) {
        TableIterator::new(dry_run(&payload, Schema::V0_5))
    }
}
