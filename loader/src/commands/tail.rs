//! `xray-loader tail`: the nweb indexer. Loads Attestor (and StakeRegistry) events into
//! nweb.attestations, then fetches, verifies and loads the bundles they attest.
//!
//! 1. The nweb configuration is loaded; the database is --database-url / $DATABASE_URL,
//!    else the configuration's, else the default.
//! 2. The database is connected and the indexer opened on the configured chain
//!    (`chain::indexer::Indexer::open` checks the chain id and the contracts).
//! 3. The IPFS sources are set up (gateways, Kubo, CAR directory); with none, or with
//!    `--no-bundles`, bundles stay pending.
//! 4. `--rewind-to BLOCK` first rolls back everything from that block on.
//! 5. Each pass: catch up to the confirmed head (`Indexer::catch_up`: logs in batches,
//!    reorgs rolled back), then load the pending bundles (`chain::load_bundles`).
//! 6. `--once`: after one pass, print one summary line when something changed (nothing
//!    otherwise, so cron sends no mail) and exit 0; a failed pass exits 1. Following: a
//!    failed pass is logged and retried after `chain.poll_interval`, until stopped.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::chain::config::{self, NwebConfig};
use crate::chain::indexer::{self, Indexer};
use crate::chain::{load_bundles, BundleCounts};
use crate::db;
use crate::ipfs::Sources;

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

pub async fn run(args: TailArgs, cli_db: Option<String>) -> Result<ExitCode> {
    let cfg = NwebConfig::load(&args.config)?;
    let url = db::database_url(cli_db, cfg.database_url.as_deref());
    let chain = cfg.chain()?;
    let mut client = db::connect(&url).await?;
    tracing::info!(db = %db::describe(&url), "database");
    let mut ix = Indexer::open(chain, &client).await?;
    let sources = Sources::new(&cfg.ipfs)?;
    let bundles = !args.no_bundles && !sources.is_empty();
    if !args.no_bundles && sources.is_empty() {
        tracing::warn!("no IPFS source configured (ipfs.gateways, ipfs.kubo_api, ipfs.car_dir): bundles stay pending");
    }
    if let Some(b) = args.rewind_to {
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
                if args.once {
                    // Quiet when nothing happened, so cron sends no mail.
                    if p.changed() + b.total() > 0 {
                        println!("{}", summary(chain, &p, &b));
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Err(e) if args.once => return Err(e),
            // Following: an outage is logged and waited out.
            Err(e) => tracing::error!(error = %format!("{e:#}"), "pass failed; retrying"),
        }
        tokio::time::sleep(chain.poll_interval).await;
    }
}

/// The one line `tail --once` prints; the stake and submission parts only when their
/// contracts are followed.
fn summary(chain: &config::ChainConfig, p: &indexer::Progress, b: &BundleCounts) -> String {
    let stakes = if chain.stake_registry.is_some() {
        format!(
            " {} stake events added, {} reverted;",
            p.stake_events_added, p.stake_events_reverted
        )
    } else {
        String::new()
    };
    let submissions = if chain.submission_router.is_some() {
        format!(" {} submission kinds added;", p.submissions_added)
    } else {
        String::new()
    };
    format!(
        "chain {} block {}: {} attestations added, {} reverted;{stakes}{submissions} bundles: {} verified, {} invalid, {} unavailable, {} deferred, {} failed",
        chain.chain_id, p.last_block, p.added, p.reverted, b.verified, b.invalid, b.unavailable, b.deferred, b.failed
    )
}
