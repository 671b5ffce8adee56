//! nweb on chain: the contracts' ABI (`sol!`), JSON-RPC reads, the indexer behind
//! `xray-loader tail` (Attestor and StakeRegistry; the command is `commands/tail.rs`), and the
//! transactions of the slasher.

pub mod abi;
pub mod config;
pub mod indexer;
pub mod rpc;
pub mod store;
pub mod writer;

use anyhow::{anyhow, Result};
use nweb::bundle::{self, AttestedClaims};
use nweb::Cid;
use tokio_postgres::Client;

use crate::db::pg_error;
use crate::ipfs::{Fetched, Sources, VerifiedCar};
use config::IpfsConfig;

/// Opens the detail of a bundle left unloaded because its attestation's claims differ
/// from it (recorded through nweb.mark_unavailable until the database checks claims).
pub const REFUSED_PREFIX: &str = "REFUSED: CID_HASH_MISMATCH: ";

/// The claims of the first ScanSubmission of `cid`, the one a challenge names.
pub(crate) async fn attested_claims(db: &Client, cid: &str) -> Result<AttestedClaims> {
    let row = db
        .query_opt(
            "SELECT a.payload FROM nweb.attestations AS a
              WHERE a.kind = 'ScanSubmission' AND a.cid = $1 ORDER BY a.block_time, a.attestation_id LIMIT 1",
            &[&cid],
        )
        .await
        .map_err(|e| anyhow!("reading the submission: {}", pg_error(&e)))?;
    Ok(row
        .map(|r| AttestedClaims::from_submission_json(&r.get::<_, serde_json::Value>(0)))
        .unwrap_or_default())
}

/// What the bundle contradicts of the attestation, when its manifest can be read at all
/// (a manifest that cannot is the database's FORMAT_INVALID).
pub(crate) fn claims_contradicted(car: &VerifiedCar, claims: &AttestedClaims) -> Option<String> {
    let files = car.files.as_ref()?;
    let text = files
        .iter()
        .find(|(p, _)| p == bundle::MANIFEST_PATH)
        .and_then(|(_, b)| std::str::from_utf8(b).ok())?;
    let m = bundle::parse_manifest(text).ok()?;
    claims.mismatch(text, &m)
}

/// Records a fetch in nweb.bundles unless it says nothing about the bundle: the rows of
/// a bundle whose attestation lies are never loaded, and our own limit is no verdict.
/// Both go through nweb.mark_unavailable, the only verdict a later fetch may overturn.
pub(crate) async fn record_bundle(
    db: &Client,
    cid: &str,
    fetched: &Fetched,
    claims: &AttestedClaims,
) -> Result<store::Verdict> {
    if let Some(limit) = fetched.limit_detail() {
        return store::mark_unavailable(db, cid, &limit).await;
    }
    if let Some(lie) = fetched.car.as_ref().and_then(|c| claims_contradicted(c, claims)) {
        return store::mark_unavailable(db, cid, &format!("{REFUSED_PREFIX}{lie}")).await;
    }
    store::record_fetch(db, cid, fetched).await
}

/// Bundle verdicts of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleCounts {
    pub verified: u64,
    pub invalid: u64,
    pub unavailable: u64,
    pub failed: u64,
}

impl BundleCounts {
    pub fn total(&self) -> u64 {
        self.verified + self.invalid + self.unavailable + self.failed
    }
}

/// Fetches, verifies and records the bundles attested on this chain that are pending
/// (or unavailable long enough ago to try again). A failure of one bundle is logged and
/// counted; it does not stop the others.
pub async fn load_bundles(db: &Client, chain_id: u64, ipfs: &IpfsConfig, sources: &Sources) -> Result<BundleCounts> {
    let mut n = BundleCounts::default();
    let cids = store::pending_bundles(db, chain_id, ipfs.retry_unavailable.as_secs(), ipfs.max_bundles_per_run).await?;
    for cid_text in cids {
        let Ok(cid) = cid_text.parse::<Cid>() else {
            continue;
        };
        let fetched = sources.fetch(&cid).await;
        let recorded = match attested_claims(db, &cid_text).await {
            Ok(claims) => record_bundle(db, &cid_text, &fetched, &claims).await,
            Err(e) => Err(e),
        };
        match recorded {
            Ok(v) => {
                tracing::info!(cid = %cid_text, status = %v.status, reason = ?v.reason, detail = ?v.reason_detail, "bundle");
                let refused = v.reason_detail.as_deref().is_some_and(|d| d.starts_with(REFUSED_PREFIX));
                match (v.status.as_str(), v.reason.as_deref()) {
                    ("verified", _) => n.verified += 1,
                    _ if refused => n.invalid += 1,
                    (_, Some("CID_UNAVAILABLE")) => n.unavailable += 1,
                    _ => n.invalid += 1,
                }
                if let Some(car) = &fetched.car {
                    if let Err(e) = sources.keep(car) {
                        tracing::warn!(cid = %cid_text, error = %format!("{e:#}"), "cannot keep the CAR");
                    }
                    if ipfs.pin_on_index && v.status == "verified" {
                        if let Some(k) = &sources.kubo {
                            if let Err(e) = k.dag_import(car.bytes.clone()).await {
                                tracing::warn!(cid = %cid_text, error = %format!("{e:#}"), "cannot pin in Kubo");
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(cid = %cid_text, error = %format!("{e:#}"), "bundle not recorded");
                n.failed += 1;
            }
        }
    }
    Ok(n)
}
