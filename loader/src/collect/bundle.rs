//! The output of `collect`: the nweb bundle of one scan, and its load into the database
//! (nweb.ingest_car, or nweb.ingest_bundle on a database without it).

use anyhow::{anyhow, bail, Result};
use nweb::bundle::write::{self, Bundle, BundleMeta};
use nweb::bundle::SCANPRINT_PATH;
use serde_json::{json, Value};

use super::scanner::ScanOutput;
use super::settings::Settings;
use crate::db;

/// The bundle of one scan, built and verified by the nweb crate.
/// `shots`: the screenshots, (bundle path, PNG), listed in `artifacts` like the raw output.
pub(crate) fn build_bundle(s: &Settings, scan: ScanOutput, shots: &[(String, Vec<u8>)]) -> Result<Bundle> {
    let meta = BundleMeta {
        tool: s.tool.name(),
        raw_path: s.tool.raw_path(),
        namespace: &s.namespace,
        vantage: &s.vantage,
        notes: s.notes.as_deref(),
        tool_version: &scan.tool_version,
        started_at: scan.started_at,
        finished_at: scan.finished_at,
        target_spec_cid: s.target_spec_cid.as_deref(),
        profile: s.profile,
        extra: shots,
    };
    Ok(write::build_bundle(&meta, scan.raw, &scan.conversion.lines)?)
}

/// Which nweb ingest function the database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IngestVia {
    Car,
    Bundle,
}

pub(crate) async fn ingest_function(client: &tokio_postgres::Client) -> Result<IngestVia> {
    let row = client
        .query_one(
            "SELECT to_regprocedure('nweb.ingest_car(bytea,text)') IS NOT NULL,
                    to_regprocedure('nweb.ingest_bundle(text,jsonb,text,jsonb)') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| anyhow!("database check failed: {}", db::pg_error(&e)))?;
    match (row.get::<_, bool>(0), row.get::<_, bool>(1)) {
        (true, _) => Ok(IngestVia::Car),
        (false, true) => Ok(IngestVia::Bundle),
        _ => bail!(
            "the database has neither nweb.ingest_car nor nweb.ingest_bundle; install xray_pg 0.2.0 (CREATE EXTENSION xray_pg or ALTER EXTENSION xray_pg UPDATE)"
        ),
    }
}

/// The verdict the database recorded: (status, reason, reason_detail).
pub(crate) async fn ingest(
    client: &tokio_postgres::Client,
    via: IngestVia,
    b: &Bundle,
) -> Result<(String, Option<String>, Option<String>)> {
    let cid = b.cid_string();
    let row = match via {
        IngestVia::Car => {
            client
                .query_one(
                    "SELECT status, reason, reason_detail FROM nweb.ingest_car($1, $2)",
                    &[&b.car, &cid],
                )
                .await
        }
        IngestVia::Bundle => {
            let scanprint = b
                .files
                .iter()
                .find(|(p, _)| p == SCANPRINT_PATH)
                .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default();
            let artifacts: serde_json::Map<String, Value> = b
                .files
                .iter()
                .map(|(p, bytes)| (p.clone(), json!(nweb::bundle::sha256_hex(bytes))))
                .collect();
            client
                .query_one(
                    "SELECT status, reason, reason_detail FROM nweb.ingest_bundle($1, $2, $3, $4)",
                    &[&cid, &b.manifest, &scanprint, &Value::Object(artifacts)],
                )
                .await
        }
    }
    .map_err(|e| anyhow!("ingest of bundle {cid} failed: {}", db::pg_error(&e)))?;
    Ok((row.get(0), row.get(1), row.get(2)))
}
