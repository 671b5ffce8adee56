//! `xray-loader pin`: the hoarder. Keeps its owner's bundles alive and exports CARs.
//!
//! - `--add DIR`: a bundle directory is added (Kubo `add` with the docs/design.md D7 flags, the root
//!   checked against the nweb crate's CID) and/or written as `<cid>.car` to the CAR directory.
//! - The owner's bundles (every CID whose ScanSubmissions the owner attested, from
//!   nweb.v_submissions): pinned in Kubo when Kubo is configured (imported from a
//!   verified CAR when Kubo does not have it), and present as a verified `<cid>.car` in
//!   the CAR directory (`ipfs.car_dir`, or `--export DIR`). Without Kubo, the CAR
//!   directory is the store.
//!
//! One line per bundle on stdout: `<cid>\t<state>\t<detail>`. Exit 1 when a bundle is
//! missing, so cron mails about it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy::primitives::Address;
use anyhow::{anyhow, bail, Context, Result};
use nweb::{car, unixfs, Cid};

use super::{verify_car, write_car_file, Sources};
use crate::chain::abi::addr;
use crate::chain::config::NwebConfig;
use crate::db::{self, pg_error};

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

pub async fn run_pin(args: PinArgs, cli_db: Option<String>) -> Result<ExitCode> {
    let cfg = NwebConfig::load(&args.config)?;
    let url = crate::chain::database_url(cli_db, &cfg);
    let owner = args
        .owner
        .as_deref()
        .map(|o| crate::chain::config::parse_address("--owner", o))
        .transpose()?;
    let opts = PinOptions {
        owner,
        add: args.add,
        export: args.export,
    };
    pin(&cfg, Some(&url), &opts).await
}

#[derive(Debug, Clone, Default)]
pub struct PinOptions {
    pub owner: Option<Address>,
    pub add: Vec<PathBuf>,
    pub export: Option<PathBuf>,
}

/// Every regular file under `dir`, with its `/`-joined relative path, sorted.
pub fn read_bundle_dir(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let t = e.file_type()?;
            if t.is_dir() {
                walk(base, &p, out)?;
            } else if t.is_file() {
                let rel = p
                    .strip_prefix(base)
                    .map_err(|_| anyhow!("{} is outside {}", p.display(), base.display()))?;
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| {
                        c.as_os_str()
                            .to_str()
                            .map(str::to_string)
                            .ok_or_else(|| anyhow!("{}: file names must be UTF-8", p.display()))
                    })
                    .collect::<Result<_>>()?;
                out.push((
                    rel.join("/"),
                    std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?,
                ));
            } else {
                bail!("{}: only regular files and directories can be in a bundle", p.display());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    if out.is_empty() {
        bail!("{}: no files", dir.display());
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

pub async fn pin(cfg: &NwebConfig, db_url: Option<&str>, opts: &PinOptions) -> Result<ExitCode> {
    let sources = Sources::new(&cfg.ipfs)?;
    let export = opts.export.clone().or_else(|| cfg.ipfs.car_dir.clone());
    if sources.kubo.is_none() && export.is_none() {
        bail!("nowhere to keep bundles: configure ipfs.kubo_api or ipfs.car_dir, or give --export DIR");
    }
    let owner = opts.owner.or(cfg.owner);
    if opts.add.is_empty() && owner.is_none() {
        bail!("whose bundles? give --owner ADDRESS or set hoarder.owner (or --add DIR)");
    }
    if let Some(k) = &sources.kubo {
        let v = k.version().await?;
        tracing::info!(kubo = %k.shown(), version = %v, "kubo reachable");
    }
    let mut stdout = std::io::stdout().lock();
    let mut missing = false;

    for dir in &opts.add {
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
        let url = db_url.ok_or_else(|| anyhow!("no database"))?;
        let client = db::connect(url).await?;
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
                    writeln!(stdout, "{cid}\tmissing\t{}", crate::one_line(&format!("{e:#}")))?;
                }
            }
            stdout.flush().ok();
        }
    }
    Ok(if missing { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Makes sure one bundle is pinned (Kubo) and exported (CAR directory).
async fn keep_one(sources: &Sources, export: Option<&Path>, cid: &Cid) -> Result<String> {
    let mut done = Vec::new();
    let mut car: Option<super::VerifiedCar> = None;
    // An exported CAR that verifies is kept as it is.
    if let Some(d) = export {
        let path = d.join(format!("{cid}.car"));
        if let Ok(bytes) = std::fs::read(&path) {
            match verify_car(&bytes, cid, sources.max_bytes) {
                Ok(v) => car = Some(v),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "exported CAR is damaged; replacing it");
                    std::fs::remove_file(&path).ok();
                }
            }
        }
    }
    if let Some(k) = &sources.kubo {
        if k.is_pinned(cid).await? {
            done.push("pinned".to_string());
        } else {
            // From a CAR we hold; else Kubo may find it on the network; else the gateways.
            let from_network = car.is_none() && k.pin_add(cid).await.is_ok() && k.is_pinned(cid).await.unwrap_or(false);
            if !from_network {
                if car.is_none() {
                    car = Some(fetch(sources, cid).await?);
                }
                let v = car.as_ref().expect("fetched above");
                k.dag_import(v.bytes.clone()).await?;
                if !k.is_pinned(cid).await? {
                    bail!("kubo dag/import did not pin {cid}");
                }
            }
            done.push("pinned now".to_string());
        }
    }
    if let Some(d) = export {
        let path = d.join(format!("{cid}.car"));
        if path.exists() {
            done.push(format!("CAR {}", path.display()));
        } else {
            if car.is_none() {
                car = Some(fetch(sources, cid).await?);
            }
            let p = write_car_file(d, car.as_ref().expect("fetched above"))?;
            done.push(format!("CAR {} written", p.display()));
        }
    }
    Ok(done.join("; "))
}

async fn fetch(sources: &Sources, cid: &Cid) -> Result<super::VerifiedCar> {
    let f = sources.fetch(cid).await;
    match f.car {
        Some(v) if v.content_error.is_none() => Ok(v),
        Some(v) => bail!("not a bundle directory: {}", v.content_error.unwrap_or_default()),
        None => bail!("{}", f.failure_detail()),
    }
}
