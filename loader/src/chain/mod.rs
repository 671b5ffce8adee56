//! nweb on chain: the contracts' ABI (`sol!`), JSON-RPC reads, the indexer behind
//! `xray-loader tail` (Attestor and StakeRegistry; the command is `commands/tail.rs`), and the
//! transactions of the slasher.

pub mod abi;
pub mod config;
pub mod indexer;
pub mod rpc;
pub mod store;
pub mod writer;

use anyhow::Result;
use nweb::Cid;
use tokio_postgres::Client;

use crate::ipfs::{Fetched, Sources};
use config::IpfsConfig;

/// Records a fetch in nweb.bundles. The database judges the content, every attested
/// claim included (docs/design.md D43); our own limit is no verdict: the bundle is
/// deferred, which any later verdict replaces (D42).
pub(crate) async fn record_bundle(db: &Client, cid: &str, fetched: &Fetched) -> Result<store::Verdict> {
    if let Some(limit) = fetched.limit_detail() {
        return store::mark_local_limit(db, cid, &limit).await;
    }
    store::record_fetch(db, cid, fetched).await
}

/// Bundle verdicts of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleCounts {
    pub verified: u64,
    pub invalid: u64,
    pub unavailable: u64,
    pub deferred: u64,
    pub failed: u64,
}

impl BundleCounts {
    pub fn total(&self) -> u64 {
        self.verified + self.invalid + self.unavailable + self.deferred + self.failed
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
        match record_bundle(db, &cid_text, &fetched).await {
            Ok(v) => {
                tracing::info!(cid = %cid_text, status = %v.status, reason = ?v.reason, detail = ?v.reason_detail, "bundle");
                match (v.status.as_str(), v.reason.as_deref()) {
                    ("verified", _) => n.verified += 1,
                    ("deferred", _) => n.deferred += 1,
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
