//! `xray-loader check`: the nweb slasher (docs/nweb.md §6.2). Probes bundle CIDs across
//! the gateways, records nweb.availability_checks and files Challenges.
//!
//! 1. The nweb configuration is loaded; without a gateway or Kubo there is nothing to
//!    probe with (exit 1). `--cid` values are checked as CIDs before anything else.
//! 2. With a keystore and without `--no-challenge`, a chain writer is opened.
//! 3. The CIDs: the `--cid` ones, else the attested CIDs not checked for
//!    `slasher.recheck_secs` (at most `--limit` / `slasher.max_cids_per_run`).
//! 4. Each CID is checked (`slasher::check_one`: liveness probe, cache check and a verified
//!    CAR fetch per gateway, the content judged by nweb.ingest_car, one row in
//!    nweb.availability_checks, a Challenge only on evidence: a verified mismatch at once,
//!    CID_UNAVAILABLE after `slasher.unavailable_gateways` gateways over
//!    `slasher.unavailable_for_secs`, our own limits never; docs/design.md D40).
//! 5. Stdout gets `<cid>\t<available|unavailable|invalid|limit>\t<reason>\tok=N/M` per CID
//!    (reason `LOCAL_LIMIT` for our limit), with the challenge's transaction or why none
//!    was filed. Exit 1 when a CID or a challenge failed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use nweb::Cid;

use crate::chain::config::NwebConfig;
use crate::chain::writer::{self, Writer};
use crate::db;
use crate::ipfs::Sources;
use crate::output::fail;
use crate::slasher::{check_one, cids_to_check, ChallengeOutcome, EvidenceRule};

/// `xray-loader check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// nweb configuration (TOML with [ipfs], and [chain] and [slasher] to file challenges).
    #[arg(long)]
    pub config: PathBuf,
    /// Check this CID (repeatable); default: attested CIDs not checked for slasher.recheck_secs.
    #[arg(long = "cid", value_name = "CID")]
    pub cids: Vec<String>,
    /// Record only; file no challenge even with a keystore.
    #[arg(long)]
    pub no_challenge: bool,
    /// At most this many CIDs (default slasher.max_cids_per_run).
    #[arg(long)]
    pub limit: Option<u32>,
}

pub async fn run(args: CheckArgs, cli_db: Option<String>) -> Result<ExitCode> {
    let cfg = NwebConfig::load(&args.config)?;
    let url = db::database_url(cli_db, cfg.database_url.as_deref());
    let sources = Sources::new(&cfg.ipfs)?;
    if !sources.has_network() {
        bail!("nothing to probe with: configure ipfs.gateways or ipfs.kubo_api");
    }
    // Explicit CIDs are checked before anything else happens.
    let mut explicit = Vec::new();
    for c in &args.cids {
        let cid: Cid = c.trim().parse().map_err(|e| anyhow!("--cid {c:?} is not a CID: {e}"))?;
        explicit.push(cid.to_string());
    }
    let writer = if !args.no_challenge {
        match writer::open_keystore(&cfg.slasher)? {
            Some(signer) => Some(Writer::new(crate::chain::rpc::checked_chain(cfg.chain()?).await?, signer)?),
            None => None,
        }
    } else {
        None
    };
    let db = db::connect(&url).await?;
    let cids = if explicit.is_empty() {
        cids_to_check(
            &db,
            cfg.slasher.recheck.as_secs(),
            args.limit.unwrap_or(cfg.slasher.max_cids_per_run),
        )
        .await?
    } else {
        explicit
    };
    let rule = EvidenceRule {
        gateways: cfg.slasher.unavailable_gateways,
        over: cfg.slasher.unavailable_for,
    };
    if writer.is_some() && (cfg.ipfs.gateways.len() as u32) < rule.gateways {
        tracing::warn!(
            gateways = cfg.ipfs.gateways.len(),
            needed = rule.gateways,
            "fewer ipfs.gateways than slasher.unavailable_gateways: no CID_UNAVAILABLE challenge can be filed"
        );
    }
    let mut failed = false;
    let mut stdout = std::io::stdout().lock();
    for cid_text in cids {
        match check_one(&db, &sources, writer.as_ref(), rule, &cid_text).await {
            Ok((f, chal)) => {
                let mut line = format!(
                    "{}\t{}\t{}\tok={}/{}",
                    f.cid,
                    f.state(),
                    f.reason.as_deref().unwrap_or(if f.limit { "LOCAL_LIMIT" } else { "-" }),
                    f.ok,
                    f.attempts
                );
                match chal {
                    ChallengeOutcome::Filed(tx) => line.push_str(&format!("\tchallenged {tx}")),
                    ChallengeOutcome::Skipped(why) => line.push_str(&format!("\tnot challenged: {why}")),
                    ChallengeOutcome::Failed(e) => {
                        fail(format!("{}: challenge failed: {e:#}", f.cid));
                        failed = true;
                    }
                    ChallengeOutcome::None => {}
                }
                writeln!(stdout, "{line}").context("cannot write to stdout")?;
                stdout.flush().ok();
            }
            Err(e) => {
                fail(format!("{cid_text}: {e:#}"));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
