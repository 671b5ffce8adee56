//! The ingest pipeline inside PostgreSQL: `INSERT INTO xray.scan_results
//! (payload)` fires a BEFORE trigger that validates the payload, serialises the
//! tenant, recognises duplicates and stale scans, loads the prior state with
//! one statement, diffs in `xray_core`, and writes events and state with one
//! set-based statement each — all in the caller's transaction.

use std::sync::OnceLock;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use serde::Serialize;
use serde_json::Value;
use xray_core::diff::{DiffOutcome, Event, ExposureStatus, PriorState, StateUpsert};
use xray_core::{EngineConfig, ScanPayload};

use crate::errors::{raise, raise_contract};
use crate::functions::pg_uuid;

pub(crate) fn config() -> &'static EngineConfig {
    static CONFIG: OnceLock<EngineConfig> = OnceLock::new();
    CONFIG.get_or_init(EngineConfig::default)
}

pub(crate) fn parse_payload(v: &Value) -> ScanPayload {
    ScanPayload::from_value(v).unwrap_or_else(|e| raise_contract(&e))
}

/// What a payload does to the current state.
pub(crate) enum Plan {
    /// The scan_id was already ingested; nothing is written.
    Duplicate,
    /// An asset in scope already has a newer applied scan (design D5).
    Stale,
    Apply(DiffOutcome),
}

/// Scalar parameters shared by the statements of one scan.
struct ScanArgs {
    tenant: String,
    scan: String,
    observed_at: String,
    scope: Vec<String>,
}

impl ScanArgs {
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
/// `xray_diff_scan()` can show exactly what an insert would do.
fn plan(client: &SpiClient<'_>, payload: &ScanPayload, raw: Option<&Value>, a: &ScanArgs) -> Plan {
    let existing = spi(
        "duplicate check",
        client.select(
            "SELECT payload = $2::jsonb FROM xray.scan_results WHERE scan_id = $1::uuid",
            Some(1),
            &[a.scan.clone().into(), raw.map(|v| v.to_string()).into()],
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

    let newer = spi(
        "stale check",
        client.select(
            "SELECT 1 FROM xray.asset_scans
              WHERE tenant_id = $1::uuid AND asset_id = ANY($2::uuid[]) AND last_observed_at > $3::timestamptz
              LIMIT 1",
            Some(1),
            &[a.tenant.clone().into(), a.scope.clone().into(), a.observed_at.clone().into()],
        ),
    );
    if !newer.is_empty() {
        return Plan::Stale;
    }

    let current = xray_core::normalize(payload, config());
    let current_keys: Vec<String> = current.iter().map(|e| e.identity_key.clone()).collect();
    let rows = spi(
        "loading prior state",
        client.select(
            "SELECT identity_key, asset_id::text, observed_host, risk_bucket, proto, port,
                    fingerprint, status, material_hash, reopen_count
               FROM xray.exposures
              WHERE tenant_id = $1::uuid AND asset_id = ANY($2::uuid[])
                AND (status <> 'fixed' OR identity_key = ANY($3))",
            None,
            &[a.tenant.clone().into(), a.scope.clone().into(), current_keys.into()],
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
        });
    }
    Plan::Apply(xray_core::diff_normalized(payload, current, &prior, config()))
}

#[derive(Serialize)]
struct EventRow<'a> {
    ord: usize,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Serialize)]
struct UpsertRow<'a> {
    identity_key: &'a str,
    asset_id: String,
    observed_host: &'a str,
    observed_ip: Option<&'a str>,
    risk_bucket: &'static str,
    proto: &'a str,
    port: u16,
    fingerprint: &'a str,
    detail: &'a str,
    status: &'static str,
    material_hash: &'a str,
    evidence: &'a Value,
    last_change_type: Option<&'static str>,
    reopen_count: i32,
}

impl<'a> From<&'a StateUpsert> for UpsertRow<'a> {
    fn from(u: &'a StateUpsert) -> Self {
        let e = &u.exposure;
        UpsertRow {
            identity_key: &e.identity_key,
            asset_id: e.asset_id.to_string(),
            observed_host: &e.observed_host,
            observed_ip: e.observed_ip.as_deref(),
            risk_bucket: e.risk_bucket.as_str(),
            proto: &e.proto,
            port: e.port,
            fingerprint: &e.fingerprint,
            detail: &e.detail,
            status: u.status.as_str(),
            material_hash: &e.material_hash,
            evidence: &e.evidence,
            last_change_type: u.last_change_type.map(|t| t.as_str()),
            reopen_count: u.reopen_count,
        }
    }
}

const INSERT_EVENTS: &str = "
INSERT INTO xray.exposure_events
    (scan_id, tenant_id, identity_key, event_type, risk_bucket, asset_id, observed_host, observed_ip,
     proto, port, fingerprint, detail, prev_material_hash, material_hash, evidence, reopened, observed_at)
SELECT $2::uuid, $1::uuid, r.identity_key, r.event_type, r.risk_bucket, r.asset_id, r.observed_host,
       r.observed_ip::inet, r.proto, r.port, r.fingerprint, COALESCE(r.detail, x.detail),
       r.prev_material_hash, r.material_hash,
       CASE WHEN r.event_type = 'FIXED'
            THEN jsonb_build_object('last_open', x.evidence) || r.evidence
            ELSE r.evidence END,
       r.reopened, $3::timestamptz
  FROM jsonb_to_recordset($4::jsonb) AS r(
         ord int, identity_key text, event_type text, risk_bucket text, asset_id uuid, observed_host text,
         observed_ip text, proto text, port int, fingerprint text, detail text, prev_material_hash text,
         material_hash text, evidence jsonb, reopened boolean)
  LEFT JOIN xray.exposures x ON x.tenant_id = $1::uuid AND x.identity_key = r.identity_key
 ORDER BY r.ord";

const UPSERT_EXPOSURES: &str = "
INSERT INTO xray.exposures AS x
    (tenant_id, identity_key, asset_id, observed_host, observed_ip, risk_bucket, proto, port, fingerprint,
     detail, status, first_seen, last_seen, last_scan_id, material_hash, evidence, last_change_type, reopen_count)
SELECT $1::uuid, r.identity_key, r.asset_id, r.observed_host, r.observed_ip::inet, r.risk_bucket, r.proto,
       r.port, r.fingerprint, r.detail, r.status, $3::timestamptz, $3::timestamptz, $2::uuid,
       r.material_hash, r.evidence, r.last_change_type, r.reopen_count
  FROM jsonb_to_recordset($4::jsonb) AS r(
         identity_key text, asset_id uuid, observed_host text, observed_ip text, risk_bucket text, proto text,
         port int, fingerprint text, detail text, status text, material_hash text, evidence jsonb,
         last_change_type text, reopen_count int)
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
    let base = |extra: DatumWithOid<'static>| -> Vec<DatumWithOid<'static>> {
        vec![a.tenant.clone().into(), a.scan.clone().into(), a.observed_at.clone().into(), extra]
    };
    // Events first: FIXED evidence joins the still-open row for `last_open`.
    if !outcome.events.is_empty() {
        let rows: Vec<EventRow<'_>> =
            outcome.events.iter().enumerate().map(|(ord, event)| EventRow { ord, event }).collect();
        spi("writing events", client.update(INSERT_EVENTS, None, &base(json_text(&rows).into())));
    }
    if !outcome.upserts.is_empty() {
        let rows: Vec<UpsertRow<'_>> = outcome.upserts.iter().map(UpsertRow::from).collect();
        spi("writing exposures", client.update(UPSERT_EXPOSURES, None, &base(json_text(&rows).into())));
    }
    if !outcome.touched.is_empty() {
        spi("touching exposures", client.update(TOUCH_EXPOSURES, None, &base(outcome.touched.clone().into())));
    }
    if !outcome.fixed.is_empty() {
        spi("fixing exposures", client.update(FIX_EXPOSURES, None, &base(outcome.fixed.clone().into())));
    }
    spi("recording asset scans", client.update(MARK_ASSETS_SCANNED, None, &base(a.scope.clone().into())));
}

/// Row lists travel as one JSON text parameter to `jsonb_to_recordset`.
fn json_text<T: Serialize>(rows: &T) -> String {
    serde_json::to_string(rows).unwrap_or_else(|e| raise("XX000", format!("serialising rows: {e}")))
}

fn lock_tenant(client: &SpiClient<'_>, tenant: &str) {
    // Transaction-scoped: scans of one tenant apply one after another (design D5).
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

/// BEFORE INSERT trigger on `xray.scan_results`.
#[pg_trigger]
fn xray_ingest_scan_result<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
    let Some(new) = trigger.new() else {
        raise("39P01", "xray_ingest_scan_result must be a BEFORE INSERT row trigger");
    };
    let mut new = new.into_owned();
    let raw: Option<JsonB> = new.get_by_name("payload").unwrap_or(None);
    let Some(JsonB(raw)) = raw else {
        raise("23502", "payload: required column is null");
    };
    let payload = parse_payload(&raw);
    let args = ScanArgs::new(&payload);

    // The INSERT needs a transaction id anyway. Taking it now makes pgrx run
    // every SPI statement read-write, and a read-write statement takes a fresh
    // snapshot under READ COMMITTED: after waiting for the tenant lock we must
    // see what the scan that held it committed.
    unsafe {
        pg_sys::GetCurrentTransactionId();
    }
    let outcome = Spi::connect_mut(|client| {
        lock_tenant(client, &args.tenant);
        match plan(client, &payload, Some(&raw), &args) {
            Plan::Duplicate => None,
            Plan::Stale => Some(None),
            Plan::Apply(outcome) => {
                apply(client, &args, &outcome);
                Some(Some(outcome))
            }
        }
    });
    let Some(outcome) = outcome else {
        pgrx::notice!("scan {} was already ingested; nothing written", args.scan);
        return Ok(None);
    };

    let s = &payload.scan;
    new.set_by_name("scan_id", pg_uuid(s.scan_id.0))?;
    new.set_by_name("tenant_id", pg_uuid(s.tenant_id.0))?;
    new.set_by_name("schema_version", payload.schema_version.clone())?;
    new.set_by_name("scan_kind", s.scan_kind.clone())?;
    new.set_by_name("scan_profile", s.scan_profile.clone())?;
    new.set_by_name("started_at", pg_ts(s.started_at))?;
    new.set_by_name("finished_at", s.finished_at.map(pg_ts))?;
    let errors = payload.errors.len()
        + payload
            .asset_results
            .iter()
            .flat_map(|a| &a.endpoints)
            .map(|e| e.errors.len())
            .sum::<usize>();
    new.set_by_name("error_count", count(errors))?;
    match outcome {
        None => new.set_by_name("status", "stale".to_string())?,
        Some(o) => {
            let n = |t: xray_core::EventType| count(o.events.iter().filter(|e| e.event_type == t).count());
            new.set_by_name("status", "applied".to_string())?;
            new.set_by_name("exposure_count", count(o.current_count))?;
            new.set_by_name("new_count", n(xray_core::EventType::New))?;
            new.set_by_name("changed_count", n(xray_core::EventType::Changed))?;
            new.set_by_name("fixed_count", n(xray_core::EventType::Fixed))?;
            new.set_by_name("held_open_count", count(o.held_open.len()))?;
        }
    }
    Ok(Some(new))
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Dry run: the events this payload would produce against the current state.
/// Writes nothing. A duplicate or stale scan yields no rows.
#[pg_extern(stable, strict)]
#[allow(clippy::type_complexity)]
fn xray_diff_scan(
    payload: JsonB,
) -> TableIterator<
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
> {
    let parsed = parse_payload(&payload.0);
    let args = ScanArgs::new(&parsed);
    let events = Spi::connect(|client| match plan(client, &parsed, None, &args) {
        Plan::Apply(o) => o.events,
        Plan::Duplicate | Plan::Stale => Vec::new(),
    });
    TableIterator::new(events.into_iter().map(|e| {
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
    }))
}

