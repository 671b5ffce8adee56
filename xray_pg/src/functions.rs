//! SQL functions: identity, material hash and normalisation.

use pgrx::prelude::*;
use pgrx::JsonB;
use xray_engine::identity::{material_hash, IdentityParts};
use xray_engine::{normalize, EngineConfig, RiskBucket};

use crate::errors::raise;
use crate::ingest::{default_config, load_config, parse_payload};

fn bucket(text: &str) -> RiskBucket {
    text.parse().unwrap_or_else(|e: xray_engine::identity::UnknownBucket| raise("22023", e.to_string()))
}

/// The identity_key of docs/contract.md §I-4: sha256 hex of the canonical
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
    let host = xray_engine::canon::canonical_host(observed_host);
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

/// SQL `xray.canonical_host(host)` since 0.5.0: a host or IP as the engine
/// writes it (trimmed, lowercase, no trailing dot; IPs in RFC 5952 form), so
/// SQL that derives hosts and endpoint ids from a stored payload
/// (`xray.payload_endpoints`) agrees with the engine.
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn xray_canonical_host(host: &str) -> String {
    xray_engine::canon::canonical_host(host)
}

/// sha256 of the bucket's material fields taken from `material` (other keys
/// are ignored), so `xray_material_hash(risk_bucket, evidence)` re-derives a
/// stored exposure's `material_hash`.
#[pg_extern(immutable, strict, parallel_safe)]
fn xray_material_hash(risk_bucket: &str, material: JsonB) -> String {
    material_hash(bucket(risk_bucket), &material.0)
}

type NormalizedRow = (
    String,
    String,
    pgrx::Uuid,
    String,
    Option<pgrx::Inet>,
    String,
    i32,
    String,
    String,
    String,
    JsonB,
);

fn normalized_rows(payload: &JsonB, config: &EngineConfig) -> Vec<NormalizedRow> {
    let payload = parse_payload(&payload.0);
    normalize(&payload, config)
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
        .collect()
}

/// `xray_normalize(payload)` of the 0.1.0 SQL: the shipped configuration,
/// no database access.
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
    TableIterator::new(normalized_rows(&payload, default_config()))
}

/// SQL `xray_normalize(payload)` since 0.2.0: under the configuration tables,
/// which makes it STABLE rather than IMMUTABLE.
#[pg_extern(stable, strict, sql = false)]
#[allow(clippy::type_complexity)]
fn xray_normalize_configured(
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
    let config = Spi::connect(load_config);
    TableIterator::new(normalized_rows(&payload, &config))
}

/// SQL `xray_normalize(payload, config)` since 0.2.0: the configuration is an
/// argument (the shape of `xray.engine_config()`), so it stays IMMUTABLE.
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
#[allow(clippy::type_complexity)]
fn xray_normalize_with_config(
    payload: JsonB,
    config: JsonB,
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
    let config = EngineConfig::from_json(&config.0).unwrap_or_else(|e| raise("22023", e));
    TableIterator::new(normalized_rows(&payload, &config))
}

pub(crate) fn pg_uuid(u: uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*u.as_bytes())
}
