//! Deciding what a scan does: duplicate, stale (per scan or per asset) or
//! applied, and the diff against the prior state of its scope. Reads only.

use super::*;

/// What a payload does to the current state.
pub(crate) enum Plan {
    /// The scan_id was already ingested; nothing is written.
    Duplicate,
    /// Every asset in scope already has a newer applied scan (0.5.0, design
    /// D11), or any of them has (0.1.0-0.4.0, docs/design.md D5): nothing changes.
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
    /// 0.5.0 (docs/design.md D11): the scan applies to the assets it is the newest
    /// for and skips the others.
    PerAsset,
}

/// Decides duplicate / stale / apply and computes the diff. Reads only, so
/// `xray_diff_scan()` can show exactly what an insert would do. `raw` is the
/// payload as submitted (None for a dry run).
pub(super) fn plan(
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
pub(super) fn diff(client: &SpiClient<'_>, payload: &ScanPayload, a: &ScanArgs, config: &EngineConfig) -> DiffOutcome {
    let current = xray_engine::normalize(payload, config);
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
            asset_id: xray_engine::contract::Id(text(2).parse().unwrap_or_else(|_| raise("XX000", "corrupt asset_id"))),
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
    xray_engine::diff_normalized(payload, current, &prior, config)
}
