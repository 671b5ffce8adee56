//! The ingest pipeline inside PostgreSQL: `INSERT INTO xray.scan_results
//! (payload)` fires a BEFORE trigger that validates the payload, checks the
//! session's tenant, serialises the tenant, recognises duplicates and stale
//! scans, loads the prior state with one statement, diffs in `xray_core`, and
//! writes events, state and inventory with one set-based statement each, then
//! queues a NOTIFY — all in the caller's transaction.
//!
//! The library serves every schema generation: the 0.1.0 SQL (built-in
//! configuration, no tenants) and the 0.2.0-0.4.0 SQL (per-scan staleness, no
//! warnings column) keep calling their symbols until `ALTER EXTENSION xray_pg
//! UPDATE` points the functions at the 0.5.0 ones. Every generation runs the
//! engine of this library (identities included).

use std::sync::OnceLock;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use serde_json::{json, Value};
use xray_core::diff::{DiffOutcome, Event, ExposureStatus, PriorState, StateUpsert};
use xray_core::contract::{Asset, Id};
use xray_core::inventory::EndpointRow;
use xray_core::{EngineConfig, EventType, ScanPayload};

use crate::columns::{column, ArrayLiteral, TextColumn};
use crate::errors::{raise, raise_contract};
use crate::functions::pg_uuid;
use crate::jsonb::RawJsonb;

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

/// What a payload does to the current state.
pub(crate) enum Plan {
    /// The scan_id was already ingested; nothing is written.
    Duplicate,
    /// Every asset in scope already has a newer applied scan (0.5.0, design
    /// D11), or any of them has (0.1.0-0.4.0, design D5): nothing changes.
    /// `skipped` is the whole scope.
    Stale { skipped: Vec<Id> },
    /// The diff of the assets the scan is the newest for. `skipped` are the
    /// others (0.5.0 only; empty when nothing was skipped), `args` the
    /// parameters of the assets it applies to.
    Apply { outcome: DiffOutcome, skipped: Vec<Id>, applied: Option<(ScanPayload, ScanArgs)> },
}

/// How stale scans are recognised.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Staleness {
    /// 0.1.0-0.4.0: a scan older than the newest applied scan of any of its
    /// assets is stale as a whole.
    PerScan,
    /// 0.5.0 (design D11): the scan applies to the assets it is the newest
    /// for and skips the others.
    PerAsset,
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

/// Decides duplicate / stale / apply and computes the diff. Reads only, so
/// `xray_diff_scan()` can show exactly what an insert would do. `raw` is the
/// payload as submitted (None for a dry run).
fn plan(
    client: &SpiClient<'_>,
    payload: &ScanPayload,
    raw: Option<RawJsonb>,
    a: &ScanArgs,
    config: &EngineConfig,
    staleness: Staleness,
) -> Plan {
    let existing = spi(
        "duplicate check",
        client.select(
            "SELECT payload = $2::jsonb FROM xray.scan_results WHERE scan_id = $1::uuid",
            Some(1),
            &[a.scan.clone().into(), raw.map_or_else(DatumWithOid::null::<RawJsonb>, DatumWithOid::from)],
        ),
    );
    if let Some(row) = existing.into_iter().next() {
        let same: Option<bool> = spi("duplicate check", row.get(1));
        if raw.is_some() && same != Some(true) {
            raise(
                "23505",
                format!("scan.scan_id: scan {} was already ingested with a different payload", a.scan),
            );
        }
        return Plan::Duplicate;
    }

    // Assets in scope whose newest applied scan is newer than this one.
    let newer = spi(
        "stale check",
        client.select(
            "SELECT asset_id::text FROM xray.asset_scans
              WHERE tenant_id = $1::uuid AND asset_id = ANY($2::uuid[]) AND last_observed_at > $3::timestamptz",
            None,
            &[a.tenant.clone().into(), a.scope.clone().into(), a.observed_at.clone().into()],
        ),
    );
    let mut skipped = Vec::with_capacity(newer.len());
    for row in newer {
        let id: Option<String> = spi("stale check", row.get(1));
        let id = id.and_then(|t| t.parse().ok()).unwrap_or_else(|| raise("XX000", "corrupt asset_scans.asset_id"));
        skipped.push(Id(id));
    }
    skipped.sort();
    if skipped.is_empty() {
        let outcome = diff(client, payload, a, config);
        return Plan::Apply { outcome, skipped, applied: None };
    }
    if staleness == Staleness::PerScan || skipped.len() == a.scope.len() {
        return Plan::Stale { skipped: payload.scope_asset_ids() };
    }
    let reduced = payload.without_assets(&skipped.iter().copied().collect());
    let reduced_args = ScanArgs::new(&reduced);
    let outcome = diff(client, &reduced, &reduced_args, config);
    Plan::Apply { outcome, skipped, applied: Some((reduced, reduced_args)) }
}

/// Loads the prior state of the scan's scope (one statement) and diffs.
fn diff(client: &SpiClient<'_>, payload: &ScanPayload, a: &ScanArgs, config: &EngineConfig) -> DiffOutcome {
    let current = xray_core::normalize(payload, config);
    let current_keys = TextColumn::of(current.iter().map(|e| Some(e.identity_key.as_str()))).into_param();
    let rows = spi(
        "loading prior state",
        client.select(
            "SELECT identity_key, asset_id::text, observed_host, risk_bucket, proto, port,
                    fingerprint, status, material_hash, reopen_count,
                    CASE WHEN risk_bucket = 'RB4' THEN evidence -> 'cert_anchors' END::text
               FROM xray.exposures
              WHERE tenant_id = $1::uuid AND asset_id = ANY($2::uuid[])
                AND (status <> 'fixed' OR identity_key = ANY($3))",
            None,
            &[a.tenant.clone().into(), a.scope.clone().into(), current_keys],
        ),
    );
    let mut prior = Vec::with_capacity(rows.len());
    for row in rows {
        let text = |i: usize| -> String { spi("reading prior state", row.get::<String>(i)).unwrap_or_default() };
        let int = |i: usize| -> i32 { spi("reading prior state", row.get::<i32>(i)).unwrap_or_default() };
        prior.push(PriorState {
            identity_key: text(1),
            asset_id: xray_core::contract::Id(text(2).parse().unwrap_or_else(|_| raise("XX000", "corrupt asset_id"))),
            observed_host: text(3),
            risk_bucket: text(4).parse().unwrap_or_else(|e| raise("XX000", format!("corrupt row: {e}"))),
            proto: text(5),
            port: u16::try_from(int(6)).unwrap_or(0),
            fingerprint: text(7),
            status: text(8).parse::<ExposureStatus>().unwrap_or_else(|e| raise("XX000", e)),
            material_hash: text(9),
            reopen_count: int(10),
            cert_anchors: spi("reading prior state", row.get::<String>(11))
                .and_then(|t| serde_json::from_str::<Vec<String>>(&t).ok())
                .unwrap_or_default(),
        });
    }
    xray_core::diff_normalized(payload, current, &prior, config)
}

// Row lists travel as one array parameter per column, unnested in the select
// list. A single JSON document would have to be parsed whole by the planner,
// which folds the parameter into a constant: a second payload-sized parse tree
// and its copies, the largest cost of a first scan. Evidence goes as text per
// row and becomes jsonb row by row. unnest() in the select list streams the
// rows (ProjectSet); in FROM it would first copy them all into a tuplestore,
// which spills to disk beyond work_mem.

const INSERT_EVENTS: &str = "
INSERT INTO xray.exposure_events
    (scan_id, tenant_id, identity_key, event_type, risk_bucket, asset_id, observed_host, observed_ip,
     proto, port, fingerprint, detail, prev_material_hash, material_hash, evidence, reopened, observed_at)
SELECT $2::uuid, $1::uuid, r.identity_key, r.event_type, r.risk_bucket, r.asset_id::uuid, r.observed_host,
       COALESCE(r.observed_ip::inet, x.observed_ip), r.proto, r.port, r.fingerprint, COALESCE(r.detail, x.detail),
       r.prev_material_hash, r.material_hash,
       CASE WHEN r.event_type = 'FIXED'
            THEN jsonb_build_object('last_open', x.evidence) || r.evidence::jsonb
            ELSE r.evidence::jsonb END,
       r.reopened, $3::timestamptz
  FROM (SELECT unnest($4::text[]) AS identity_key,
               unnest($5::text[]) AS event_type,
               unnest($6::text[]) AS risk_bucket,
               unnest($7::text[]) AS asset_id,
               unnest($8::text[]) AS observed_host,
               unnest($9::text[]) AS observed_ip,
               unnest($10::text[]) AS proto,
               unnest($11::int[]) AS port,
               unnest($12::text[]) AS fingerprint,
               unnest($13::text[]) AS detail,
               unnest($14::text[]) AS prev_material_hash,
               unnest($15::text[]) AS material_hash,
               unnest($16::text[]) AS evidence,
               unnest($17::bool[]) AS reopened) r
  -- Only a FIXED event reads the row it closes; LATERAL with OFFSET 0 keeps
  -- the probe behind that test and makes the plan a nested loop over the
  -- arrays, so event ids follow the engine's order without a sort.
  LEFT JOIN LATERAL (SELECT x.observed_ip, x.detail, x.evidence FROM xray.exposures x
                      WHERE r.event_type = 'FIXED' AND x.tenant_id = $1::uuid AND x.identity_key = r.identity_key
                     OFFSET 0) x ON true";

fn event_columns(events: &[Event]) -> Vec<DatumWithOid<'static>> {
    let text = |f: &dyn Fn(&Event) -> Option<&str>| TextColumn::of(events.iter().map(f)).into_param();
    vec![
        text(&|e| Some(&e.identity_key)),
        text(&|e| Some(e.event_type.as_str())),
        text(&|e| Some(e.risk_bucket.as_str())),
        TextColumn::display(events.iter().map(|e| e.asset_id)).into_param(),
        text(&|e| Some(&e.observed_host)),
        text(&|e| e.observed_ip.as_deref()),
        text(&|e| Some(&e.proto)),
        column(events.iter().map(|e| i32::from(e.port))),
        text(&|e| Some(&e.fingerprint)),
        text(&|e| e.detail.as_deref()),
        text(&|e| e.prev_material_hash.as_deref()),
        text(&|e| e.material_hash.as_deref()),
        TextColumn::json(events.iter().map(|e| &e.evidence)).into_param(),
        column(events.iter().map(|e| e.reopened)),
    ]
}

const UPSERT_EXPOSURES: &str = "
INSERT INTO xray.exposures AS x
    (tenant_id, identity_key, asset_id, observed_host, observed_ip, risk_bucket, proto, port, fingerprint,
     detail, status, first_seen, last_seen, last_scan_id, material_hash, evidence, last_change_type, reopen_count,
     fingerprint_version)
SELECT $1::uuid, r.identity_key, r.asset_id::uuid, r.observed_host, r.observed_ip::inet, r.risk_bucket, r.proto,
       r.port, r.fingerprint, r.detail, r.status, $3::timestamptz, $3::timestamptz, $2::uuid,
       r.material_hash, r.evidence::jsonb, r.last_change_type, r.reopen_count, r.fingerprint_version
  FROM (SELECT unnest($4::text[]) AS identity_key,
               unnest($5::text[]) AS asset_id,
               unnest($6::text[]) AS observed_host,
               unnest($7::text[]) AS observed_ip,
               unnest($8::text[]) AS risk_bucket,
               unnest($9::text[]) AS proto,
               unnest($10::int[]) AS port,
               unnest($11::text[]) AS fingerprint,
               unnest($12::text[]) AS detail,
               unnest($13::text[]) AS status,
               unnest($14::text[]) AS material_hash,
               unnest($15::text[]) AS evidence,
               unnest($16::text[]) AS last_change_type,
               unnest($17::int[]) AS reopen_count,
               unnest($18::int[]) AS fingerprint_version) r
-- fingerprint_version is part of identity_key (fpv:), so it never changes on conflict.
ON CONFLICT (tenant_id, identity_key) DO UPDATE SET
    observed_ip      = EXCLUDED.observed_ip,
    detail           = EXCLUDED.detail,
    status           = EXCLUDED.status,
    last_seen        = EXCLUDED.last_seen,
    last_scan_id     = EXCLUDED.last_scan_id,
    material_hash    = EXCLUDED.material_hash,
    evidence         = EXCLUDED.evidence,
    last_change_type = COALESCE(EXCLUDED.last_change_type, x.last_change_type),
    reopen_count     = EXCLUDED.reopen_count,
    fixed_at         = CASE WHEN EXCLUDED.status = 'open' THEN NULL ELSE x.fixed_at END,
    fixed_scan_id    = CASE WHEN EXCLUDED.status = 'open' THEN NULL ELSE x.fixed_scan_id END";

fn upsert_columns(upserts: &[StateUpsert]) -> Vec<DatumWithOid<'static>> {
    let text = |f: &dyn Fn(&StateUpsert) -> Option<&str>| TextColumn::of(upserts.iter().map(f)).into_param();
    vec![
        text(&|u| Some(&u.exposure.identity_key)),
        TextColumn::display(upserts.iter().map(|u| u.exposure.asset_id)).into_param(),
        text(&|u| Some(&u.exposure.observed_host)),
        text(&|u| u.exposure.observed_ip.as_deref()),
        text(&|u| Some(u.exposure.risk_bucket.as_str())),
        text(&|u| Some(&u.exposure.proto)),
        column(upserts.iter().map(|u| i32::from(u.exposure.port))),
        text(&|u| Some(&u.exposure.fingerprint)),
        text(&|u| Some(&u.exposure.detail)),
        text(&|u| Some(u.status.as_str())),
        text(&|u| Some(&u.exposure.material_hash)),
        TextColumn::json(upserts.iter().map(|u| &u.exposure.evidence)).into_param(),
        text(&|u| u.last_change_type.map(EventType::as_str)),
        column(upserts.iter().map(|u| u.reopen_count)),
        column(upserts.iter().map(|u| i32::try_from(u.exposure.risk_bucket.fingerprint_version()).unwrap_or(i32::MAX))),
    ]
}

const TOUCH_EXPOSURES: &str = "
UPDATE xray.exposures SET last_seen = $3::timestamptz, last_scan_id = $2::uuid
 WHERE tenant_id = $1::uuid AND identity_key = ANY($4)";

const FIX_EXPOSURES: &str = "
UPDATE xray.exposures
   SET status = 'fixed', last_change_type = 'FIXED', fixed_at = $3::timestamptz,
       fixed_scan_id = $2::uuid, last_scan_id = $2::uuid
 WHERE tenant_id = $1::uuid AND identity_key = ANY($4)";

const MARK_ASSETS_SCANNED: &str = "
INSERT INTO xray.asset_scans AS s (tenant_id, asset_id, last_scan_id, last_observed_at)
SELECT $1::uuid, a::uuid, $2::uuid, $3::timestamptz FROM unnest($4::text[]) AS a
ON CONFLICT (tenant_id, asset_id) DO UPDATE
   SET last_scan_id = EXCLUDED.last_scan_id, last_observed_at = EXCLUDED.last_observed_at
 WHERE s.last_observed_at <= EXCLUDED.last_observed_at";

fn apply(client: &mut SpiClient<'_>, a: &ScanArgs, outcome: &DiffOutcome) {
    // Events first: FIXED evidence joins the still-open row for `last_open`.
    if !outcome.events.is_empty() {
        spi("writing events", client.update(INSERT_EVENTS, None, &a.with(event_columns(&outcome.events))));
    }
    if !outcome.upserts.is_empty() {
        spi("writing exposures", client.update(UPSERT_EXPOSURES, None, &a.with(upsert_columns(&outcome.upserts))));
    }
    if !outcome.touched.is_empty() {
        spi("touching exposures", client.update(TOUCH_EXPOSURES, None, &a.with(vec![keys(&outcome.touched)])));
    }
    if !outcome.fixed.is_empty() {
        spi("fixing exposures", client.update(FIX_EXPOSURES, None, &a.with(vec![keys(&outcome.fixed)])));
    }
    spi("recording asset scans", client.update(MARK_ASSETS_SCANNED, None, &a.with(vec![a.scope.clone().into()])));
}

fn keys(keys: &[String]) -> DatumWithOid<'static> {
    TextColumn::of(keys.iter().map(|k| Some(k.as_str()))).into_param()
}

fn lock_tenant(client: &SpiClient<'_>, tenant: &str) {
    // Transaction-scoped: scans of one tenant apply one after another (design
    // D5). xray.triage() takes the same key, so keep the two in step.
    spi(
        "locking tenant",
        client.select("SELECT pg_advisory_xact_lock(hashtextextended($1, 7419))", None, &[tenant.to_string().into()]),
    );
}

fn pg_ts(t: xray_core::contract::Timestamp) -> TimestampWithTimeZone {
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

/// The symbol the 0.1.0 SQL (archived) declares the trigger function with,
/// kept so that a 0.1.0 schema keeps ingesting (with 0.1.0 behaviour) on this
/// library until it is updated. 0.2.0 points the same SQL function at
/// [`xray_ingest_trigger`].
#[pg_trigger(sql = false)]
fn xray_ingest_scan_result<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
    ingest(trigger, Schema::V0_1)
}

/// BEFORE INSERT trigger on `xray.scan_results` of the 0.2.0-0.4.0 SQL
/// (declared SECURITY DEFINER in sql/xray_pg--0.1.0--0.2.0.sql): per-scan
/// staleness, no warnings column. Kept for those schemas until they are updated.
#[pg_trigger(sql = false)]
fn xray_ingest_trigger<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
    ingest(trigger, Schema::V0_2)
}

/// SQL `xray_ingest_scan_result()`, the BEFORE INSERT trigger on
/// `xray.scan_results` (since 0.5.0). It runs with the owner's rights, so a
/// loader needs only INSERT (payload); `#[pg_trigger]` cannot say SECURITY
/// DEFINER, hence the declaration written out here.
#[pg_trigger(sql = r#"
CREATE FUNCTION xray_ingest_scan_result() RETURNS trigger
LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'xray_ingest_trigger_0_5_wrapper';
"#)]
fn xray_ingest_trigger_0_5<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
    ingest(trigger, Schema::V0_5)
}

/// Event counts of an applied scan, for the row and the notification.
struct Counts {
    exposures: i32,
    new: i32,
    changed: i32,
    fixed: i32,
    held_open: i32,
}

impl Counts {
    fn of(o: &DiffOutcome) -> Self {
        let n = |t: EventType| count(o.events.iter().filter(|e| e.event_type == t).count());
        Counts {
            exposures: count(o.current_count),
            new: n(EventType::New),
            changed: n(EventType::Changed),
            fixed: n(EventType::Fixed),
            held_open: count(o.held_open.len()),
        }
    }
}

/// What the trigger did with a scan that was not a duplicate.
struct Done {
    /// None: stale, nothing applied.
    counts: Option<Counts>,
    /// Assets in scope skipped because a newer scan of them was applied.
    skipped: Vec<Id>,
}

impl Done {
    fn status(&self) -> &'static str {
        match (&self.counts, self.skipped.is_empty()) {
            (None, _) => "stale",
            (Some(_), true) => "applied",
            (Some(_), false) => "partial",
        }
    }
}

fn ingest<'a>(
    trigger: &'a PgTrigger<'a>,
    schema: Schema,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::datum::TryFromDatumError> {
    let Some(new) = trigger.new() else {
        raise("39P01", "xray_ingest_scan_result must be a BEFORE INSERT row trigger");
    };
    if schema >= Schema::V0_2 && is_restored_row(&new)? {
        return Ok(Some(new));
    }
    let raw: Option<RawJsonb> = new.get_by_name("payload")?;
    let Some(raw) = raw else {
        raise("23502", "payload: required column is null");
    };
    let payload = raw.parse();
    let args = ScanArgs::new(&payload);

    // The INSERT needs a transaction id anyway. Taking it now makes pgrx run
    // every SPI statement read-write, and a read-write statement takes a fresh
    // snapshot under READ COMMITTED: after waiting for the tenant lock we must
    // see what the scan that held it committed.
    unsafe {
        pg_sys::GetCurrentTransactionId();
    }
    let done = Spi::connect_mut(|client| {
        let loaded;
        let config = match schema {
            Schema::V0_1 => default_config(),
            Schema::V0_2 | Schema::V0_5 => {
                loaded = authorize_and_load_config(client, &args.tenant);
                &loaded
            }
        };
        lock_tenant(client, &args.tenant);
        match plan(client, &payload, Some(raw), &args, config, schema.staleness()) {
            Plan::Duplicate => None,
            Plan::Stale { skipped } => Some(Done { counts: None, skipped }),
            Plan::Apply { outcome, skipped, applied } => {
                // A partial scan writes only for the assets it applies to.
                let (payload, args) = applied.as_ref().map_or((&payload, &args), |(p, a)| (p, a));
                apply(client, args, &outcome);
                let counts = Counts::of(&outcome);
                let done = Done { counts: Some(counts), skipped };
                if schema >= Schema::V0_2 {
                    record_inventory(client, args, payload);
                    notify(client, args, &done, schema);
                }
                Some(done)
            }
        }
    });
    let Some(done) = done else {
        pgrx::notice!("scan {} was already ingested; nothing written", args.scan);
        return Ok(None);
    };

    let s = &payload.scan;
    let mut row = RowFill::new(trigger, new);
    row.set("scan_id", pg_uuid(s.scan_id.0));
    row.set("tenant_id", pg_uuid(s.tenant_id.0));
    row.set("schema_version", payload.schema_version.as_str());
    row.set("scan_kind", s.scan_kind.as_deref());
    row.set("scan_profile", s.scan_profile.as_deref());
    row.set("started_at", pg_ts(s.started_at));
    row.set("finished_at", s.finished_at.map(pg_ts));
    let endpoints = payload.asset_results.iter().map(|a| a.endpoints.len()).sum::<usize>();
    let errors = payload.errors.len()
        + payload.asset_results.iter().flat_map(|a| &a.endpoints).map(|e| e.errors.len()).sum::<usize>();
    row.set("error_count", count(errors));
    if schema >= Schema::V0_2 {
        row.set("asset_count", count(payload.asset_results.len()));
        row.set("endpoint_count", count(endpoints));
    }
    row.set("status", done.status());
    if let Some(c) = &done.counts {
        row.set("exposure_count", c.exposures);
        row.set("new_count", c.new);
        row.set("changed_count", c.changed);
        row.set("fixed_count", c.fixed);
        row.set("held_open_count", c.held_open);
    }
    if schema >= Schema::V0_5 {
        row.set("stale_asset_ids", done.skipped.iter().map(|a| pg_uuid(a.0)).collect::<Vec<_>>());
        let warnings = serde_json::to_value(&payload.warnings)
            .unwrap_or_else(|e| raise("XX000", format!("serialising the warnings: {e}")));
        row.set("warnings", JsonB(warnings));
    }
    Ok(Some(row.into_row()))
}

/// The columns the trigger computes, written into the new row with one
/// `heap_modify_tuple`. pgrx's `set_by_name` copies the whole row, payload
/// included, for every column it sets.
struct RowFill<'a> {
    trigger: &'a PgTrigger<'a>,
    row: PgHeapTuple<'a, AllocatedByPostgres>,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
    replace: Vec<bool>,
}

impl<'a> RowFill<'a> {
    fn new(trigger: &'a PgTrigger<'a>, row: PgHeapTuple<'a, AllocatedByPostgres>) -> Self {
        let n = row.len();
        RowFill { trigger, row, values: vec![pg_sys::Datum::from(0); n], nulls: vec![false; n], replace: vec![false; n] }
    }

    fn set<T: IntoDatum>(&mut self, column: &str, value: T) {
        let Some((attno, att)) = self.row.get_attribute_by_name(column) else {
            raise("42703", format!("xray.scan_results: column {column} is missing"));
        };
        if !T::is_compatible_with(att.type_oid().value()) {
            raise("42804", format!("xray.scan_results.{column}: unexpected column type"));
        }
        let i = attno.get() - 1;
        let datum = value.into_datum();
        self.nulls[i] = datum.is_none();
        self.values[i] = datum.unwrap_or(pg_sys::Datum::from(0));
        self.replace[i] = true;
    }

    fn into_row(mut self) -> PgHeapTuple<'a, AllocatedByPostgres> {
        // SAFETY: tg_relation and tg_trigtuple are the row being inserted and
        // its relation, valid for the whole trigger call; the three arrays
        // have one entry per attribute of that relation's descriptor.
        unsafe {
            let data = self.trigger.trigger_data();
            let tupdesc = (*data.tg_relation).rd_att;
            let tuple = pg_sys::heap_modify_tuple(
                data.tg_trigtuple,
                tupdesc,
                self.values.as_mut_ptr(),
                self.nulls.as_mut_ptr(),
                self.replace.as_mut_ptr(),
            );
            drop(self.row);
            PgHeapTuple::from_heap_tuple(pgrx::PgTupleDesc::from_pg_unchecked(tupdesc), tuple)
        }
    }
}

/// A row that already carries the columns the trigger fills is a scan being
/// reloaded (pg_restore, or a COPY of a dump): it was diffed when it was first
/// ingested, and its events and state are reloaded with the other tables, so
/// it is stored as it is. Only the table owner can write those columns; a
/// loader is granted INSERT (payload) alone.
fn is_restored_row(new: &PgHeapTuple<'_, AllocatedByPostgres>) -> Result<bool, pgrx::datum::TryFromDatumError> {
    let status: Option<String> = new.get_by_name("status")?;
    if status.is_none() {
        return Ok(false);
    }
    let scan_id: Option<pgrx::Uuid> = new.get_by_name("scan_id")?;
    let tenant_id: Option<pgrx::Uuid> = new.get_by_name("tenant_id")?;
    let payload: Option<JsonB> = new.get_by_name("payload")?;
    let from_payload = |key: &str| -> Option<uuid::Uuid> {
        payload.as_ref()?.0.get("scan")?.get(key)?.as_str()?.parse().ok()
    };
    let as_uuid = |u: Option<pgrx::Uuid>| u.map(|u| uuid::Uuid::from_bytes(*u.as_bytes()));
    if as_uuid(scan_id).is_none()
        || as_uuid(scan_id) != from_payload("scan_id")
        || as_uuid(tenant_id) != from_payload("tenant_id")
    {
        raise(
            "22023",
            "scan_results: a row that carries a status is stored as restored data, \
             so its scan_id and tenant_id must match its payload; insert only the payload to ingest a scan",
        );
    }
    Ok(true)
}

/// The session may ingest for the payload's tenant: its selected tenant
/// (xray.set_tenant) is that tenant, or its login role bypasses row-level
/// security. The row-level security policy checks the same again on the final
/// row; checking first gives a clear error before any work. The configuration
/// comes with the same statement, so a scan costs one round trip for both.
fn authorize_and_load_config(client: &SpiClient<'_>, tenant: &str) -> EngineConfig {
    let row = spi(
        "checking the tenant",
        client
            .select(
                "SELECT xray.session_bypasses_rls() OR xray.current_tenant() IS NOT DISTINCT FROM $1::uuid,
                        xray.current_tenant()::text,
                        xray.engine_config()",
                Some(1),
                &[tenant.to_string().into()],
            )
            .and_then(|t| t.first().get_three::<bool, String, JsonB>()),
    );
    match row {
        (Some(true), _, Some(JsonB(config))) => EngineConfig::from_json(&config).unwrap_or_else(|e| raise("22023", e)),
        (_, None, _) => raise(
            "42501",
            format!(
                "scan.tenant_id: no tenant selected for this session; run SELECT xray.set_tenant('{tenant}') first"
            ),
        ),
        (_, Some(session_tenant), _) => raise(
            "42501",
            format!("scan.tenant_id: the payload is for tenant {tenant} but this session's tenant is {session_tenant}"),
        ),
    }
}

const UPSERT_ASSETS: &str = "
INSERT INTO xray.assets AS a
    (tenant_id, asset_id, asset_type, asset_value, canonical_host, tags, first_seen, last_seen, last_scan_id)
SELECT $1::uuid, r.asset_id::uuid, r.asset_type, r.asset_value, r.canonical_host, r.tags::text[],
       $3::timestamptz, $3::timestamptz, $2::uuid
  FROM (SELECT unnest($4::text[]) AS asset_id,
               unnest($5::text[]) AS asset_type,
               unnest($6::text[]) AS asset_value,
               unnest($7::text[]) AS canonical_host,
               unnest($8::text[]) AS tags) r
ON CONFLICT (tenant_id, asset_id) DO UPDATE SET
    asset_type     = EXCLUDED.asset_type,
    asset_value    = EXCLUDED.asset_value,
    canonical_host = EXCLUDED.canonical_host,
    tags           = EXCLUDED.tags,
    last_seen      = EXCLUDED.last_seen,
    last_scan_id   = EXCLUDED.last_scan_id
 WHERE a.last_seen <= EXCLUDED.last_seen";

const UPSERT_ENDPOINTS: &str = "
INSERT INTO xray.endpoints AS p
    (tenant_id, asset_id, endpoint_id, ip, observed_host, domain_context, open_tcp_ports, tls_ports, http_urls,
     first_seen, last_seen, last_scan_id)
SELECT $1::uuid, r.asset_id::uuid, r.endpoint_id, r.ip::inet, r.observed_host, r.domain_context,
       r.open_tcp_ports::int[], r.tls_ports::int[], r.http_urls::text[], $3::timestamptz, $3::timestamptz, $2::uuid
  FROM (SELECT unnest($4::text[]) AS asset_id,
               unnest($5::text[]) AS endpoint_id,
               unnest($6::text[]) AS ip,
               unnest($7::text[]) AS observed_host,
               unnest($8::text[]) AS domain_context,
               unnest($9::text[]) AS open_tcp_ports,
               unnest($10::text[]) AS tls_ports,
               unnest($11::text[]) AS http_urls) r
ON CONFLICT (tenant_id, asset_id, endpoint_id) DO UPDATE SET
    ip             = EXCLUDED.ip,
    observed_host  = EXCLUDED.observed_host,
    domain_context = EXCLUDED.domain_context,
    open_tcp_ports = EXCLUDED.open_tcp_ports,
    tls_ports      = EXCLUDED.tls_ports,
    http_urls      = EXCLUDED.http_urls,
    last_seen      = EXCLUDED.last_seen,
    last_scan_id   = EXCLUDED.last_scan_id
 WHERE p.last_seen <= EXCLUDED.last_seen";

/// Upserts `xray.assets` and `xray.endpoints` from an applied scan. Applied
/// scans of an asset arrive in time order (older ones are stale), so the
/// newest scan's view wins.
fn record_inventory(client: &mut SpiClient<'_>, a: &ScanArgs, payload: &ScanPayload) {
    let assets = xray_core::inventory::assets(payload);
    let text = |f: &dyn Fn(&Asset) -> Option<&str>| TextColumn::of(assets.iter().map(|x| f(x))).into_param();
    let columns = vec![
        TextColumn::display(assets.iter().map(|x| x.asset_id)).into_param(),
        text(&|x| Some(&x.asset_type)),
        text(&|x| x.asset_value.as_deref()),
        text(&|x| x.canonical_host.as_deref()),
        TextColumn::display(assets.iter().map(|x| ArrayLiteral(&x.tags))).into_param(),
    ];
    spi("recording assets", client.update(UPSERT_ASSETS, None, &a.with(columns)));

    let endpoints = xray_core::inventory::endpoints(payload);
    if endpoints.is_empty() {
        return;
    }
    let text = |f: &dyn for<'r> Fn(&'r EndpointRow<'_>) -> Option<&'r str>| {
        TextColumn::of(endpoints.iter().map(f)).into_param()
    };
    let columns = vec![
        TextColumn::display(endpoints.iter().map(|e| e.asset_id)).into_param(),
        text(&|e| Some(&e.endpoint_id)),
        text(&|e| e.ip),
        text(&|e| Some(&e.observed_host)),
        text(&|e| e.domain_context),
        TextColumn::display(endpoints.iter().map(|e| ArrayLiteral(&e.open_tcp_ports))).into_param(),
        TextColumn::display(endpoints.iter().map(|e| ArrayLiteral(&e.tls_ports))).into_param(),
        TextColumn::display(endpoints.iter().map(|e| ArrayLiteral(&e.http_urls))).into_param(),
    ];
    spi("recording endpoints", client.update(UPSERT_ENDPOINTS, None, &a.with(columns)));
}

/// Queues the `xray_events` notification; PostgreSQL delivers it at commit
/// and drops it on rollback. Every listener in the database sees it, so it
/// carries ids and counts, never evidence.
fn notify(client: &mut SpiClient<'_>, a: &ScanArgs, done: &Done, schema: Schema) {
    let Some(c) = &done.counts else { return };
    let mut message = json!({
        "scan_id": a.scan,
        "tenant_id": a.tenant,
        "status": done.status(),
        "new": c.new,
        "changed": c.changed,
        "fixed": c.fixed,
        "held_open": c.held_open,
    });
    if schema >= Schema::V0_5 {
        message["stale_asset_ids"] = json!(done.skipped.iter().map(ToString::to_string).collect::<Vec<_>>());
    }
    spi(
        "notifying xray_events",
        client.update("SELECT pg_notify('xray_events', $1)", None, &[message.to_string().into()]),
    );
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

type DiffRow = (
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
fn dry_run(payload: &JsonB, schema: Schema) -> Vec<DiffRow> {
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
