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

/// Declares a function returning the columns of `xray_normalize`, once for
/// all its versions, so the SQL result types cannot drift apart.
macro_rules! normalize_fn {
    ($(#[$attr:meta])* fn $name:ident($($args:tt)*) $body:block) => {
        $(#[$attr])*
        #[allow(clippy::type_complexity)]
        fn $name($($args)*) -> TableIterator<
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
        > $body
    };
}

normalize_fn! {
    /// The symbol of `xray_normalize(payload)` in the 0.1.0 SQL (archived):
    /// the shipped configuration, no database access.
    #[pg_extern(immutable, strict, parallel_safe, sql = false)]
    fn xray_normalize(payload: JsonB) {
        TableIterator::new(normalized_rows(&payload, default_config()))
    }
}

normalize_fn! {
    /// SQL `xray_normalize(payload)`: under the configuration tables, which
    /// makes it STABLE rather than IMMUTABLE.
    #[pg_extern(stable, strict, name = "xray_normalize")]
    fn xray_normalize_configured(payload: JsonB) {
        let config = Spi::connect(load_config);
        TableIterator::new(normalized_rows(&payload, &config))
    }
}

normalize_fn! {
    /// SQL `xray_normalize(payload, config)`: the configuration is an argument
    /// (the shape of `xray.engine_config()`), so it stays IMMUTABLE.
    #[pg_extern(immutable, strict, parallel_safe, name = "xray_normalize")]
    fn xray_normalize_with_config(payload: JsonB, config: JsonB) {
        let config = EngineConfig::from_json(&config.0).unwrap_or_else(|e| raise("22023", e));
        TableIterator::new(normalized_rows(&payload, &config))
    }
}

pub(crate) fn pg_uuid(u: uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*u.as_bytes())
}

/// Functions in schema `xray` (created by sql/schema/roles.sql; pgrx's
/// `CREATE SCHEMA IF NOT EXISTS` finds it).
#[pg_schema]
mod xray {
    use pgrx::prelude::*;
    use pgrx::JsonB;

    use super::pg_uuid;
    use crate::ingest::parse_payload;

    /// SQL `xray.canonical_host(host)`: a host or IP as the engine writes it
    /// (trimmed, lowercase, no trailing dot; IPs in RFC 5952 form), for SQL that
    /// compares hosts with stored ones.
    #[pg_extern(immutable, strict, parallel_safe, name = "canonical_host")]
    fn xray_canonical_host(host: &str) -> String {
        xray_engine::canon::canonical_host(host)
    }
    
    /// SQL `xray.payload_endpoints(payload)`: every endpoint of a scan payload
    /// with the asset, endpoint id and canonical host the engine gives it, beside
    /// the endpoint's JSON as submitted. `xray.proof_of_fix` joins FIXED events to
    /// their endpoints through this, so the id must be the engine's own: each
    /// endpoint is passed through `xray_engine::inventory::endpoints` on its own
    /// (rather than spelling the rules again here or in SQL).
    #[pg_extern(immutable, parallel_safe, name = "payload_endpoints")]
    #[allow(clippy::type_complexity)]
    fn xray_payload_endpoints(
        payload: Option<JsonB>,
    ) -> TableIterator<
        'static,
        (
            name!(asset_id, Option<pgrx::Uuid>),
            name!(endpoint_id, Option<String>),
            name!(ip, Option<pgrx::Inet>),
            name!(observed_host, Option<String>),
            name!(domain_context, Option<String>),
            name!(endpoint, Option<JsonB>),
        ),
    > {
        let Some(JsonB(raw)) = payload else {
            return TableIterator::empty();
        };
        let parsed = parse_payload(&raw);
        let raw_assets = raw.get("asset_results").and_then(serde_json::Value::as_array);
        let header = xray_engine::ScanPayload { asset_results: Vec::new(), ..parsed.clone() };
        let mut rows = Vec::new();
        for (i, ar) in parsed.asset_results.iter().enumerate() {
            let raw_endpoints = raw_assets.and_then(|a| a.get(i)?.get("endpoints")?.as_array());
            let bare = xray_engine::contract::AssetResult { endpoints: Vec::new(), ..ar.clone() };
            for (j, ep) in ar.endpoints.iter().enumerate() {
                let asset = xray_engine::contract::AssetResult { endpoints: vec![ep.clone()], ..bare.clone() };
                let one = xray_engine::ScanPayload { asset_results: vec![asset], ..header.clone() };
                let Some(row) = xray_engine::inventory::endpoints(&one).into_iter().next() else { continue };
                rows.push((
                    Some(pg_uuid(row.asset_id.0)),
                    Some(row.endpoint_id),
                    ep.ip.clone().map(pgrx::Inet),
                    Some(row.observed_host),
                    ep.domain_context.clone(),
                    raw_endpoints.and_then(|e| e.get(j)).cloned().map(JsonB),
                ));
            }
        }
        TableIterator::new(rows)
    }
}
