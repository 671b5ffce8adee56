//! The BEFORE INSERT trigger on `xray.scan_results`, one entry point per
//! schema generation, and the steps of one ingest, ending with its NOTIFY.

use super::*;

/// The symbol the 0.1.0 SQL (archived) declares the trigger function with,
/// kept so that a 0.1.0 schema keeps ingesting (with 0.1.0 behaviour) on this
/// library until it is updated. 0.2.0 points the same SQL function at
/// [`xray_ingest_trigger`].
#[pg_trigger(sql = false)]
pub(super) fn xray_ingest_scan_result<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
    ingest(trigger, Schema::V0_1)
}

/// The symbol of the trigger function in the 0.2.0-0.4.0 SQL (archived
/// 0.3.0 and 0.4.0 install scripts): per-scan staleness, no warnings column.
/// Kept for those schemas until they are updated.
#[pg_trigger(sql = false)]
pub(super) fn xray_ingest_trigger<'a>(
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
pub(super) fn xray_ingest_trigger_0_5<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
    ingest(trigger, Schema::V0_5)
}

/// Event counts of an applied scan, for the row and the notification.
pub(super) struct Counts {
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
pub(super) struct Done {
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

pub(super) fn ingest<'a>(
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

/// The session may ingest for the payload's tenant: its selected tenant
/// (xray.set_tenant) is that tenant, or its login role bypasses row-level
/// security. The row-level security policy checks the same again on the final
/// row; checking first gives a clear error before any work. The configuration
/// comes with the same statement, so a scan costs one round trip for both.
pub(super) fn authorize_and_load_config(client: &SpiClient<'_>, tenant: &str) -> EngineConfig {
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
