//! Pure SQL functions: identity, material hash and normalisation.

use pgrx::prelude::*;
use pgrx::JsonB;
use xray_core::identity::{material_hash, IdentityParts};
use xray_core::{normalize, RiskBucket};

use crate::errors::raise;
use crate::ingest::{config, parse_payload};

fn bucket(text: &str) -> RiskBucket {
    text.parse().unwrap_or_else(|e: xray_core::identity::UnknownBucket| raise("22023", e.to_string()))
}

/// The identity_key of exposure-identity.md: sha256 hex of the canonical
/// identity string. The host is canonicalised as the engine does.
#[pg_extern(immutable, strict, parallel_safe)]
fn xray_identity_key(
    tenant_id: pgrx::Uuid,
    asset_id: pgrx::Uuid,
    observed_host: &str,
    risk_bucket: &str,
    proto: &str,
    port: i32,
    fingerprint: &str,
) -> String {
    if !(0..=65535).contains(&port) {
        raise("22023", format!("port: {port} is outside 0..65535"));
    }
    let tenant = tenant_id.to_string();
    let asset = asset_id.to_string();
    let host = xray_core::canon::canonical_host(observed_host);
    IdentityParts {
        tenant_id: &tenant,
        asset_id: &asset,
        observed_host: &host,
        risk_bucket: bucket(risk_bucket).as_str(),
        proto,
        port: i64::from(port),
        fingerprint,
    }
    .identity_key()
}

/// sha256 of the bucket's material fields taken from `material` (other keys
/// are ignored), so `xray_material_hash(risk_bucket, evidence)` re-derives a
/// stored exposure's `material_hash`.
#[pg_extern(immutable, strict, parallel_safe)]
fn xray_material_hash(risk_bucket: &str, material: JsonB) -> String {
    material_hash(bucket(risk_bucket), &material.0)
}

/// The deduplicated normalised exposures of a payload (no database access).
#[pg_extern(immutable, strict, parallel_safe)]
#[allow(clippy::type_complexity)]
fn xray_normalize(
    payload: JsonB,
) -> TableIterator<
    'static,
    (
        name!(identity_key, String),
        name!(risk_bucket, String),
        name!(asset_id, pgrx::Uuid),
        name!(observed_host, String),
        name!(observed_ip, Option<pgrx::Inet>),
        name!(proto, String),
        name!(port, i32),
        name!(fingerprint, String),
        name!(detail, String),
        name!(material_hash, String),
        name!(evidence, JsonB),
    ),
> {
    let payload = parse_payload(&payload.0);
    let rows: Vec<_> = normalize(&payload, config())
        .into_iter()
        .map(|e| {
            (
                e.identity_key,
                e.risk_bucket.as_str().to_string(),
                pg_uuid(e.asset_id.0),
                e.observed_host,
                e.observed_ip.map(pgrx::Inet),
                e.proto,
                i32::from(e.port),
                e.fingerprint,
                e.detail,
                e.material_hash,
                JsonB(e.evidence),
            )
        })
        .collect();
    TableIterator::new(rows)
}

pub(crate) fn pg_uuid(u: uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*u.as_bytes())
}
