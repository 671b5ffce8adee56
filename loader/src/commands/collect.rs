//! `xray-loader collect`: scan in-scope targets with nmap (or masscan) and build an
//! nweb bundle (docs/nweb.md §3).
//!
//! The bundle is a directory
//!
//! ```text
//! <out>/manifest.json                  nweb.bundle.v1
//! <out>/scanprint/scanprint.v0.jsonl   scanprint v0, JCS lines, sorted (docs/design.md D6)
//! <out>/raw/nmap.xml                   or raw/masscan.json
//! <out>/assets/screenshots/{ip}/{ts}/{http|https}-{port}.png   web services found
//! ```
//!
//! plus a CARv1 of it (`<out>.car` or `--car`) whose root is the CID Kubo gives the
//! directory with `ipfs add --cid-version=1 --raw-leaves` (docs/design.md D7). Stdout carries
//! the CID and the Merkle root and nothing else; `--ingest` loads the CAR through
//! `nweb.ingest_car` (or `nweb.ingest_bundle` on a database without it).
//!
//! Scope is the scan's: only targets inside the configured assets, the deny list always
//! wins, and domains are resolved here so that the scanner is only ever handed
//! addresses that were checked against the deny list (nmap runs with `-n`).
//!
//! With `--from <dispatcher URL>` the targets, ports, profile and rate come from a target
//! spec (`collect::work`): its bytes must hash to its CID, its targets must lie inside the
//! configured assets (a spec narrows the scope, never widens it), the dispatcher's deny
//! list is added to the configuration's, and the manifest records `targetSpecCid`.
//!
//! Nothing is written unless the scan finished: a timed-out or failed scanner leaves no
//! bundle, because a bundle that looks complete but is not would be attested as such.
//!
//! Step by step:
//!
//! 1. The scan configuration is loaded; with `--from`, the work is taken and the
//!    dispatcher's deny list added; the targets are planned (scope first: an
//!    out-of-scope or denied target is refused before anything else).
//! 2. The settings are resolved (`collect::settings`): ports, vantage, namespace,
//!    timeout, the scanner binary, a new or empty `--out`, a CAR path that does not exist.
//! 3. With `--ingest`, the database is connected and its ingest function found now, not
//!    after the scan.
//! 4. The tenant lock is taken and the addresses chosen: the plan's IPs plus its domains'
//!    resolved addresses, each checked against the deny list.
//! 5. The scanner runs (`collect::scanner::run_scan`) into a staging directory beside `--out`.
//! 6. Unless `--no-screenshots`, each open HTTP(S) service on a selected address is
//!    captured with headless Chromium (`collect::screenshot`); a failed capture is skipped.
//! 7. The bundle is built (`collect::bundle::build_bundle`), its files written and fsynced,
//!    the directory moved into place whole, then the CAR written atomically.
//! 8. With `--ingest`, the CAR is loaded; anything but `verified` exits 1.
//! 9. Stdout gets the CID and the Merkle root (or one JSON object with `--format json`).

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use crate::collect::bundle::{build_bundle, ingest, ingest_function};
use crate::collect::scanner::{run_scan, Tool};
use crate::collect::screenshot::{capture_all, web_services};
use crate::collect::work::take_work;
use crate::collect::settings::{resolve_settings, target_addresses};
use crate::config::Config;
use crate::toolchain::runner::ProcessRunner;
use crate::{db, fsutil, lock, scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Two lines: the CID, then the Merkle root.
    Text,
    /// One JSON object: cid, merkleRoot, bundle, car, lines, tool, targetSpecCid, screenshots, ingested.
    Json,
}

/// `xray-loader collect`.
#[derive(Debug, clap::Args)]
pub struct CollectArgs {
    /// TOML configuration with assets, deny list, ports and tool paths (as for `scan`).
    #[arg(long)]
    pub assets: PathBuf,
    /// Scan only these targets (IP, CIDR or domain); each must lie inside a configured
    /// asset. Default: every configured asset.
    #[arg(long = "target")]
    pub targets: Vec<String>,
    /// The bundle directory to create; it must not exist or be empty.
    #[arg(long)]
    pub out: PathBuf,
    /// Where to write the CAR. Default: `<out>.car` next to the directory.
    #[arg(long)]
    pub car: Option<PathBuf>,
    /// The scanner.
    #[arg(long, value_enum, default_value_t = Tool::Nmap)]
    pub tool: Tool,
    /// Ports to scan, e.g. 22,80,443 (default: the config's ports or its profile's).
    #[arg(long, value_delimiter = ',')]
    pub ports: Vec<u16>,
    /// Where the scan runs from, e.g. AS64500/eu-west-1 (default: `vantage` in the config).
    #[arg(long)]
    pub vantage: Option<String>,
    /// Manifest namespace (default: nweb.io for nmap, masspull.org for masscan).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Free-form `notes` for the manifest.
    #[arg(long)]
    pub notes: Option<String>,
    /// Kill the scanner after this many seconds (default: timeouts.nmap of the config).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Scanner binary (default: tools.nmap of the config for nmap, else PATH).
    #[arg(long)]
    pub tool_path: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also load the bundle into the database (nweb.ingest_car, else nweb.ingest_bundle).
    #[arg(long)]
    pub ingest: bool,
    /// Take the work from this dispatcher (`xray-loader dispatch`): its target spec gives
    /// targets, ports, profile and rate, inside the configured assets only.
    #[arg(long, conflicts_with_all = ["targets", "ports", "tool"])]
    pub from: Option<String>,
    /// With --from: the CID of the spec to take (default: the first offered).
    #[arg(long, requires = "from")]
    pub spec: Option<String>,
    /// Seconds to wait for each dispatcher request.
    #[arg(long, default_value_t = 30, requires = "from")]
    pub from_timeout: u64,
    /// Do not capture the web services found (captures are on by default).
    #[arg(long)]
    pub no_screenshots: bool,
    /// Kill a capture's browser after this many seconds.
    #[arg(long, default_value_t = 15)]
    pub screenshot_timeout: u64,
    /// Leave out a screenshot larger than this many bytes.
    #[arg(long, default_value_t = 2 << 20)]
    pub screenshot_max_bytes: u64,
    /// Chromium binary (default: /usr/bin/chromium, else chromium on PATH).
    #[arg(long)]
    pub chromium: Option<PathBuf>,
}

pub async fn run(args: CollectArgs, cli_db: Option<String>) -> Result<ExitCode> {
    let mut config = Config::load(&args.assets)?;
    let work = match &args.from {
        Some(from) => {
            if args.from_timeout == 0 {
                bail!("--from-timeout must be at least 1 second");
            }
            let w = take_work(from, args.spec.as_deref(), Duration::from_secs(args.from_timeout)).await?;
            config.deny.extend(w.deny_rules());
            Some(w)
        }
        None => None,
    };
    let targets: Vec<String> = match &work {
        // A spec's targets are checked as `--target`s are: each inside a configured asset.
        // An address on either deny list is dropped here rather than failing the spec.
        Some(w) => {
            let kept: Vec<String> = w
                .spec
                .targets
                .iter()
                .filter(|t| match t {
                    nweb::target_spec::Target::Ip(ip) if scope::ip_denied(&config.deny, *ip) => {
                        tracing::warn!(target = %t, "target spec address is on a deny list; not scanned");
                        false
                    }
                    _ => true,
                })
                .map(ToString::to_string)
                .collect();
            if kept.is_empty() {
                bail!("target spec {}: every target is on a deny list; nothing to scan", w.cid);
            }
            kept
        }
        None => args.targets.clone(),
    };
    // Scope first: an out-of-scope or denied target is refused before anything else.
    let plan = match &work {
        Some(w) => scope::plan(&config, &targets)
            .map_err(|e| anyhow!("target spec {} asks for more than this collector may scan: {e}; refused", w.cid))?,
        None => scope::plan(&config, &targets)?,
    };
    for s in &plan.skipped {
        tracing::warn!("{s}; skipped");
    }
    let settings = resolve_settings(&args, &config, work.as_ref())?;

    let db = if args.ingest {
        let url = db::database_url(cli_db, config.database_url.as_deref());
        // Fail in a second, not after the scan.
        let client = db::connect(&url).await?;
        let via = ingest_function(&client).await?;
        tracing::info!(db = %db::describe(&url), ?via, "database reachable");
        Some((client, via))
    } else {
        None
    };

    let lock = lock::acquire(config.lock_dir.as_deref(), config.tenant_id)?;
    tracing::debug!(lock = %lock.path.display(), "tenant lock taken");
    let ips = target_addresses(&config, &plan).await?;

    let staging = fsutil::Staging::new(&settings.out)?;
    let scan = run_scan(&ProcessRunner, &settings, &config, &ips, staging.path()).await?;
    // masscan's scratch file is now in memory; the bundle holds only its own files.
    let _ = std::fs::remove_file(staging.path().join("masscan.json"));
    let shots = match &settings.screenshots {
        // Only the addresses handed to the scanner: scope and both deny lists passed.
        Some(shot) => {
            let allowed: BTreeSet<IpAddr> = ips.iter().copied().collect();
            capture_all(shot, &web_services(&scan.conversion.lines, &allowed)).await
        }
        None => Vec::new(),
    };
    drop(lock);

    let bundle = build_bundle(&settings, scan, &shots)?;
    staging.write_files(&bundle.files)?;
    staging.commit(&settings.out)?;
    if let Some(dir) = settings.car.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fsutil::write_atomically(&settings.car, &bundle.car)?;
    let cid = bundle.cid_string();
    tracing::info!(
        %cid,
        merkle_root = %bundle.merkle_root,
        lines = bundle.lines,
        bundle = %settings.out.display(),
        car = %settings.car.display(),
        "bundle written"
    );

    let mut ingested: Option<String> = None;
    if let Some((client, via)) = &db {
        let (status, reason, detail) = ingest(client, *via, &bundle).await?;
        if status != "verified" {
            bail!(
                "bundle {cid} was recorded as {status}: {} {} (the bundle stays in {})",
                reason.unwrap_or_default(),
                detail.unwrap_or_default(),
                settings.out.display()
            );
        }
        tracing::info!(%cid, ?via, "bundle ingested and verified");
        ingested = Some(status);
    }

    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Text => {
            writeln!(stdout, "{cid}")?;
            writeln!(stdout, "{}", bundle.merkle_root)?;
        }
        Format::Json => {
            let out = json!({
                "cid": cid,
                "merkleRoot": bundle.merkle_root,
                "bundle": settings.out.display().to_string(),
                "car": settings.car.display().to_string(),
                "lines": bundle.lines,
                "tool": settings.tool.name(),
                "toolVersion": bundle.manifest["toolVersion"],
                "targetSpecCid": settings.target_spec_cid,
                "screenshots": shots.len(),
                "ingested": ingested,
            });
            writeln!(stdout, "{out}")?;
        }
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
