//! nweb on chain: the contracts' ABI (`sol!`), JSON-RPC reads, the indexer behind
//! `xray-loader tail` (Attestor and StakeRegistry), and the transactions of the slasher.

pub mod abi;
pub mod config;
pub mod indexer;
pub mod rpc;
pub mod store;
pub mod writer;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use tokio_postgres::Client;
use nweb::Cid;

use crate::db;
use crate::ipfs::Sources;
use config::{IpfsConfig, NwebConfig};
use indexer::Indexer;

/// `xray-loader tail`.
#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// nweb configuration (TOML with [chain] and [ipfs]); `xray-loader example-nweb-config` prints one.
    #[arg(long)]
    pub config: PathBuf,
    /// Catch up to the confirmed head, load pending bundles and exit; prints one summary line when something changed.
    #[arg(long)]
    pub once: bool,
    /// Index the chain only (attestations, stakes); bundles stay pending.
    #[arg(long)]
    pub no_bundles: bool,
    /// First roll back everything from this block on (after a reorg deeper than chain.reorg_window).
    #[arg(long, value_name = "BLOCK")]
    pub rewind_to: Option<u64>,
}

/// The database: --database-url / $DATABASE_URL, else the configuration's, else the default.
pub fn database_url(cli: Option<String>, cfg: &NwebConfig) -> String {
    cli.or_else(|| cfg.database_url.clone())
        .unwrap_or_else(|| db::DEFAULT_DATABASE_URL.to_string())
}

pub async fn run_tail(args: TailArgs, cli_db: Option<String>) -> Result<ExitCode> {
    let cfg = NwebConfig::load(&args.config)?;
    let url = database_url(cli_db, &cfg);
    let opts = TailOptions {
        once: args.once,
        bundles: !args.no_bundles,
        rewind_to: args.rewind_to,
    };
    tail(&cfg, &url, &opts).await
}

#[derive(Debug, Clone, Default)]
pub struct TailOptions {
    /// Catch up to the confirmed head, load pending bundles, and exit.
    pub once: bool,
    /// Fetch and verify the bundles of new ScanSubmissions.
    pub bundles: bool,
    /// Roll back everything from this block first.
    pub rewind_to: Option<u64>,
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
    fn total(&self) -> u64 {
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
        match store::record_fetch(db, &cid_text, &fetched).await {
            Ok(v) => {
                tracing::info!(cid = %cid_text, status = %v.status, reason = ?v.reason, detail = ?v.reason_detail, "bundle");
                match (v.status.as_str(), v.reason.as_deref()) {
                    ("verified", _) => n.verified += 1,
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

/// The one line `tail --once` prints; the stake part only when the registry is followed.
fn summary(chain: &config::ChainConfig, p: &indexer::Progress, b: &BundleCounts) -> String {
    let stakes = if chain.stake_registry.is_some() {
        format!(
            " {} stake events added, {} reverted;",
            p.stake_events_added, p.stake_events_reverted
        )
    } else {
        String::new()
    };
    format!(
        "chain {} block {}: {} attestations added, {} reverted;{stakes} bundles: {} verified, {} invalid, {} unavailable, {} failed",
        chain.chain_id, p.last_block, p.added, p.reverted, b.verified, b.invalid, b.unavailable, b.failed
    )
}

pub async fn tail(cfg: &NwebConfig, db_url: &str, opts: &TailOptions) -> Result<ExitCode> {
    let chain = cfg.chain()?;
    let mut client = db::connect(db_url).await?;
    tracing::info!(db = %db::describe(db_url), "database");
    let mut ix = Indexer::open(chain, &client).await?;
    let sources = Sources::new(&cfg.ipfs)?;
    let bundles = opts.bundles && !sources.is_empty();
    if opts.bundles && sources.is_empty() {
        tracing::warn!("no IPFS source configured (ipfs.gateways, ipfs.kubo_api, ipfs.car_dir): bundles stay pending");
    }
    if let Some(b) = opts.rewind_to {
        let r = ix.rewind(&mut client, b).await?;
        tracing::warn!(block = b, attestations = r.attestations, stake_events = r.stake_events, "rewound");
    }
    loop {
        let pass = async {
            let p = ix.catch_up(&mut client).await?;
            let b = if bundles {
                load_bundles(&client, chain.chain_id, &cfg.ipfs, &sources).await?
            } else {
                BundleCounts::default()
            };
            anyhow::Ok((p, b))
        }
        .await;
        match pass {
            Ok((p, b)) => {
                if p.changed() + b.total() > 0 {
                    tracing::info!(
                        added = p.added,
                        reverted = p.reverted,
                        stake_events_added = p.stake_events_added,
                        stake_events_reverted = p.stake_events_reverted,
                        block = p.last_block,
                        ?b,
                        "pass"
                    );
                }
                if opts.once {
                    // Quiet when nothing happened, so cron sends no mail.
                    if p.changed() + b.total() > 0 {
                        println!("{}", summary(chain, &p, &b));
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Err(e) if opts.once => return Err(e),
            // Following: an outage is logged and waited out.
            Err(e) => tracing::error!(error = %format!("{e:#}"), "pass failed; retrying"),
        }
        tokio::time::sleep(chain.poll_interval).await;
    }
}
