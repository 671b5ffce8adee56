//! `xray-loader pin`: the nweb hoarder. Keeps its owner's bundles pinned (Kubo) and
//! exported as CARs, and adds bundle directories.
//!
//! 1. The nweb configuration is loaded; there must be somewhere to keep bundles (Kubo,
//!    `ipfs.car_dir` or `--export DIR`) and someone whose bundles to keep (`--owner`,
//!    `hoarder.owner`, or only `--add`). Kubo, when configured, must answer.
//! 2. Each `--add DIR`: the directory is read (`ipfs::hoarder::read_bundle_dir`), its
//!    UnixFS DAG built with Kubo's flags (docs/design.md D7), added to Kubo (root checked)
//!    and/or written as a verified `<cid>.car`; stdout gets `<cid>\tadded\t<detail>`.
//! 3. The owner's bundles (nweb.v_submissions): each one pinned and exported
//!    (`ipfs::hoarder::keep_one`, fetching a verified CAR when needed); stdout gets
//!    `<cid>\tkept\t<detail>` or `<cid>\tmissing\t<why>`.
//! 4. Exit 1 when a bundle is missing, so cron mails about it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use nweb::{car, unixfs, Cid};

use crate::chain::abi::addr;
use crate::chain::config::NwebConfig;
use crate::db::{self, pg_error};
use crate::ipfs::hoarder::{keep_one, read_bundle_dir};
use crate::ipfs::{verify_car, write_car_file, Sources};
use crate::output::one_line;

/// `xray-loader pin`.
#[derive(Debug, clap::Args)]
pub struct PinArgs {
    /// nweb configuration (TOML with [ipfs] and [hoarder]).
    #[arg(long)]
    pub config: PathBuf,
    /// Keep this address's bundles (default hoarder.owner).
    #[arg(long)]
    pub owner: Option<String>,
    /// Add this bundle directory (repeatable): to Kubo, and as <cid>.car to the CAR directory.
    #[arg(long, value_name = "DIR")]
    pub add: Vec<PathBuf>,
    /// Write CARs here instead of ipfs.car_dir.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
}

pub async fn run(args: PinArgs, cli_db: Option<String>) -> Result<ExitCode> {
    let cfg = NwebConfig::load(&args.config)?;
    let url = db::database_url(cli_db, cfg.database_url.as_deref());
    let owner = args
        .owner
        .as_deref()
        .map(|o| crate::chain::config::parse_address("--owner", o))
        .transpose()?;
    let sources = Sources::new(&cfg.ipfs)?;
    let export = args.export.clone().or_else(|| cfg.ipfs.car_dir.clone());
    if sources.kubo.is_none() && export.is_none() {
        bail!("nowhere to keep bundles: configure ipfs.kubo_api or ipfs.car_dir, or give --export DIR");
    }
    let owner = owner.or(cfg.owner);
    if args.add.is_empty() && owner.is_none() {
        bail!("whose bundles? give --owner ADDRESS or set hoarder.owner (or --add DIR)");
    }
    if let Some(k) = &sources.kubo {
        let v = k.version().await?;
        tracing::info!(kubo = %k.shown(), version = %v, "kubo reachable");
    }
    let mut stdout = std::io::stdout().lock();
    let mut missing = false;

    for dir in &args.add {
        let files = read_bundle_dir(dir)?;
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
        let dag = unixfs::import_directory(&refs, unixfs::ImportParams::KUBO)
            .map_err(|e| anyhow!("{}: {e}", dir.display()))?;
        let mut done = Vec::new();
        if let Some(k) = &sources.kubo {
            let got = k.add_bundle(&files).await?;
            debug_assert_eq!(got, dag.root);
            done.push("added to kubo and pinned".to_string());
        }
        if let Some(d) = &export {
            let bytes = car::write_car(&dag.root, &dag.blocks).map_err(|e| anyhow!("{e}"))?;
            let v = verify_car(&bytes, &dag.root, u64::MAX).map_err(|e| anyhow!("{e}"))?;
            let p = write_car_file(d, &v)?;
            done.push(format!("CAR {}", p.display()));
        }
        writeln!(stdout, "{}\tadded\t{}", dag.root, done.join("; "))?;
    }

    if let Some(owner) = owner {
        let client = db::connect(&url).await?;
        let rows = client
            .query(
                "SELECT DISTINCT s.cid FROM nweb.v_submissions AS s WHERE s.submitter = $1 AND s.cid IS NOT NULL ORDER BY 1",
                &[&addr(&owner)],
            )
            .await
            .map_err(|e| anyhow!("reading the owner's submissions: {}", pg_error(&e)))?;
        tracing::info!(owner = %addr(&owner), bundles = rows.len(), "hoarding");
        for r in rows {
            let cid_text: String = r.get(0);
            let Ok(cid) = cid_text.parse::<Cid>() else {
                continue;
            };
            match keep_one(&sources, export.as_deref(), &cid).await {
                Ok(detail) => writeln!(stdout, "{cid}\tkept\t{detail}")?,
                Err(e) => {
                    missing = true;
                    writeln!(stdout, "{cid}\tmissing\t{}", one_line(&format!("{e:#}")))?;
                }
            }
            stdout.flush().ok();
        }
    }
    Ok(if missing { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
