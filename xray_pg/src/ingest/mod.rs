//! The ingest pipeline inside PostgreSQL: `INSERT INTO xray.scan_results
//! (payload)` fires a BEFORE trigger that validates the payload, checks the
//! session's tenant, serialises the tenant, recognises duplicates and stale
//! scans, loads the prior state with one statement, diffs in `xray_engine`, and
//! writes events, state and inventory with one set-based statement each, then
//! queues a NOTIFY — all in the caller's transaction.
//!
//! The story of one INSERT is [`trigger`]; below it [`plan`] decides what the
//! scan does and diffs, [`writes`] runs the set-based statements, [`rows`]
//! fills the new row, and [`dry_run`] is `xray_diff_scan()`, the same plan
//! without the writes.
//!
//! The library serves every schema generation: the 0.1.0 SQL (built-in
//! configuration, no tenants) and the 0.2.0-0.4.0 SQL (per-scan staleness, no
//! warnings column), archived in sql/archive/, keep calling their symbols until
//! `ALTER EXTENSION xray_pg UPDATE` points the functions at the current ones.
//! Every generation runs the engine of this library (identities included).

use std::sync::OnceLock;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use serde_json::{json, Value};
use xray_engine::diff::{DiffOutcome, Event, ExposureStatus, PriorState, StateUpsert};
use xray_engine::contract::{Asset, Id};
use xray_engine::inventory::EndpointRow;
use xray_engine::{EngineConfig, EventType, ScanPayload};

use crate::columns::{column, ArrayLiteral, TextColumn};
use crate::errors::{raise, raise_contract};
use crate::functions::pg_uuid;
use crate::jsonb::RawJsonb;

mod dry_run;
mod plan;
mod rows;
mod trigger;
mod writes;

use plan::*;
use rows::*;
use writes::*;

/// The shipped configuration: what the 0.1.0 entry points use, and what the
/// configuration tables are seeded with.
pub(crate) fn default_config() -> &'static EngineConfig {
    static CONFIG: OnceLock<EngineConfig> = OnceLock::new();
    CONFIG.get_or_init(EngineConfig::default)
}

/// Reads the configuration tables (one statement).
pub(crate) fn load_config(client: &SpiClient<'_>) -> EngineConfig {
    let value = spi(
        "loading the configuration",
        client.select("SELECT xray.engine_config()", Some(1), &[]).and_then(|t| t.first().get_one::<JsonB>()),
    );
    let value = value.map(|j| j.0).unwrap_or(Value::Null);
    EngineConfig::from_json(&value).unwrap_or_else(|e| raise("22023", e))
}

pub(crate) fn parse_payload(v: &Value) -> ScanPayload {
    ScanPayload::from_value(v).unwrap_or_else(|e| raise_contract(&e))
}

/// Scalar parameters shared by the statements of one scan.
pub(crate) struct ScanArgs {
    tenant: String,
    scan: String,
    observed_at: String,
    scope: Vec<String>,
}

impl ScanArgs {
    /// `$1` tenant, `$2` scan, `$3` observed_at, then `extra`: the parameters
    /// of every write statement.
    fn with(&self, extra: Vec<DatumWithOid<'static>>) -> Vec<DatumWithOid<'static>> {
        let mut args = vec![self.tenant.clone().into(), self.scan.clone().into(), self.observed_at.clone().into()];
        args.extend(extra);
        args
    }

    fn new(p: &ScanPayload) -> Self {
        ScanArgs {
            tenant: p.scan.tenant_id.to_string(),
            scan: p.scan.scan_id.to_string(),
            observed_at: p.observed_at().to_string(),
            scope: p.scope_asset_ids().iter().map(|a| a.to_string()).collect(),
        }
    }
}

fn spi<T>(what: &str, r: Result<T, pgrx::spi::SpiError>) -> T {
    r.unwrap_or_else(|e| raise("XX000", format!("xray_pg: {what} failed: {e}")))
}

fn pg_ts(t: xray_engine::contract::Timestamp) -> TimestampWithTimeZone {
    const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;
    TimestampWithTimeZone::try_from(t.0.timestamp_micros() - PG_EPOCH_OFFSET_MICROS)
        .unwrap_or_else(|_| raise("22008", format!("timestamp {t} is out of range")))
}

/// Which extension SQL a trigger entry point serves.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Schema {
    /// 0.1.0: built-in configuration, no tenants, no inventory, no NOTIFY.
    V0_1,
    /// 0.2.0-0.4.0: configuration tables, tenant check, inventory, NOTIFY.
    V0_2,
    /// 0.5.0: per-asset staleness (status `partial`, `stale_asset_ids`) and
    /// the payload's warnings.
    V0_5,
}

impl Schema {
    fn staleness(self) -> Staleness {
        if self >= Schema::V0_5 {
            Staleness::PerAsset
        } else {
            Staleness::PerScan
        }
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
