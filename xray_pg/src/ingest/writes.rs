//! The set-based writes of an applied scan: events, state, the scanned
//! assets and the inventory; one statement each.

use super::*;

// Row lists travel as one array parameter per column, unnested in the select
// list. A single JSON document would have to be parsed whole by the planner,
// which folds the parameter into a constant: a second payload-sized parse tree
// and its copies, the largest cost of a first scan. Evidence goes as text per
// row and becomes jsonb row by row. unnest() in the select list streams the
// rows (ProjectSet); in FROM it would first copy them all into a tuplestore,
// which spills to disk beyond work_mem.

pub(super) const INSERT_EVENTS: &str = "
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

pub(super) fn event_columns(events: &[Event]) -> Vec<DatumWithOid<'static>> {
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

pub(super) const UPSERT_EXPOSURES: &str = "
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

pub(super) fn upsert_columns(upserts: &[StateUpsert]) -> Vec<DatumWithOid<'static>> {
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

pub(super) const TOUCH_EXPOSURES: &str = "
UPDATE xray.exposures SET last_seen = $3::timestamptz, last_scan_id = $2::uuid
 WHERE tenant_id = $1::uuid AND identity_key = ANY($4)";

pub(super) const FIX_EXPOSURES: &str = "
UPDATE xray.exposures
   SET status = 'fixed', last_change_type = 'FIXED', fixed_at = $3::timestamptz,
       fixed_scan_id = $2::uuid, last_scan_id = $2::uuid
 WHERE tenant_id = $1::uuid AND identity_key = ANY($4)";

pub(super) const MARK_ASSETS_SCANNED: &str = "
INSERT INTO xray.asset_scans AS s (tenant_id, asset_id, last_scan_id, last_observed_at)
SELECT $1::uuid, a::uuid, $2::uuid, $3::timestamptz FROM unnest($4::text[]) AS a
ON CONFLICT (tenant_id, asset_id) DO UPDATE
   SET last_scan_id = EXCLUDED.last_scan_id, last_observed_at = EXCLUDED.last_observed_at
 WHERE s.last_observed_at <= EXCLUDED.last_observed_at";

pub(super) fn apply(client: &mut SpiClient<'_>, a: &ScanArgs, outcome: &DiffOutcome) {
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

pub(super) fn keys(keys: &[String]) -> DatumWithOid<'static> {
    TextColumn::of(keys.iter().map(|k| Some(k.as_str()))).into_param()
}

pub(super) fn lock_tenant(client: &SpiClient<'_>, tenant: &str) {
    // Transaction-scoped: scans of one tenant apply one after another (design
    // D5). xray.triage() takes the same key, so keep the two in step.
    spi(
        "locking tenant",
        client.select("SELECT pg_advisory_xact_lock(hashtextextended($1, 7419))", None, &[tenant.to_string().into()]),
    );
}

pub(super) const UPSERT_ASSETS: &str = "
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

pub(super) const UPSERT_ENDPOINTS: &str = "
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
pub(super) fn record_inventory(client: &mut SpiClient<'_>, a: &ScanArgs, payload: &ScanPayload) {
    let assets = xray_engine::inventory::assets(payload);
    let text = |f: &dyn Fn(&Asset) -> Option<&str>| TextColumn::of(assets.iter().map(|x| f(x))).into_param();
    let columns = vec![
        TextColumn::display(assets.iter().map(|x| x.asset_id)).into_param(),
        text(&|x| Some(&x.asset_type)),
        text(&|x| x.asset_value.as_deref()),
        text(&|x| x.canonical_host.as_deref()),
        TextColumn::display(assets.iter().map(|x| ArrayLiteral(&x.tags))).into_param(),
    ];
    spi("recording assets", client.update(UPSERT_ASSETS, None, &a.with(columns)));

    let endpoints = xray_engine::inventory::endpoints(payload);
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
