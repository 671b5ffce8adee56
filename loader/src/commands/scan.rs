//! `xray-loader scan`: scan the configured assets and ingest the payload (or write it
//! with `--out`, or print it with `--dry-run`).
//!
//! 1. The TOML configuration is loaded and the targets planned against it: every
//!    `--target` must lie inside a configured asset, and the deny list always wins.
//! 2. The toolchain is chosen (`toolchain = auto` takes ProjectDiscovery when all four of
//!    its tools are found, else nmap).
//! 3. The tenant lock is taken, so two runs for one tenant never interleave.
//! 4. Unless the payload only goes to a file or stdout, the database is connected before
//!    the scan (a bad connection fails in a second) and its engine configuration read.
//! 5. The scan runs (`crate::scan::run`): DNS, the tools, symptoms, the payload.
//! 6. Output: `--dry-run` prints the payload, `--out` writes it atomically, else it is
//!    ingested and stdout gets `<scan_id>\t<status>\tnew=N changed=N fixed=N`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use xray_engine::EngineConfig;

use crate::config::{Config, EngineSource, ToolchainChoice};
use crate::toolchain::nmap::{resolve_nmap, NmapSettings, NmapToolchain};
use crate::toolchain::pd::{PdPaths, PdSettings, PdToolchain};
use crate::toolchain::runner::ProcessRunner;
use crate::toolchain::AnyToolchain;
use crate::{db, dns, fsutil, lock, scan, scope};

/// `xray-loader scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// TOML configuration with tenant, assets, deny list, limits and tool paths.
    #[arg(long)]
    pub assets: PathBuf,
    /// Scan only these targets (IP, CIDR or domain); each must lie inside a configured asset.
    #[arg(long = "target")]
    pub targets: Vec<String>,
    /// Write the payload to this file instead of ingesting it.
    #[arg(long, conflicts_with = "dry_run")]
    pub out: Option<PathBuf>,
    /// Print the payload on stdout; touches no database.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: ScanArgs, cli_db: Option<String>) -> Result<ExitCode> {
    let (assets, targets, out, dry_run) = (args.assets.as_path(), &args.targets, args.out.as_deref(), args.dry_run);
    let config = Config::load(assets)?;
    let plan = scope::plan(&config, targets).with_context(|| format!("config {}", assets.display()))?;
    for s in &plan.skipped {
        tracing::warn!("{s}; skipped");
    }
    let db_url = (!dry_run && out.is_none()).then(|| db::database_url(cli_db, config.database_url.as_deref()));

    let chain = toolchain(&config)?;
    tracing::info!(toolchain = toolchain_name(&chain), "toolchain selected");

    let lock = lock::acquire(config.lock_dir.as_deref(), config.tenant_id)?;
    tracing::debug!(lock = %lock.path.display(), "tenant lock taken");
    // Read once, before the scan: a bad connection fails in a second, not
    // after an hour, and the ports and symptoms follow the rules the
    // database will judge this payload by.
    let (engine, source) = match &db_url {
        Some(url) => {
            let client = db::connect(url).await?;
            let engine = db::engine_config(&client).await?;
            tracing::info!(db = %db::describe(url), "database reachable");
            (engine, EngineSource::Database)
        }
        None => (EngineConfig::default(), EngineSource::Default),
    };
    let rules = config
        .rules(engine, source)
        .with_context(|| format!("config {}", assets.display()))?;
    let resolver = if plan.assets.iter().any(|a| a.domain.is_some()) {
        dns::MaybeDns(Some(dns::HickoryDns::new(
            config.dns_resolver,
            Duration::from_secs(config.timeouts.dns),
        )?))
    } else {
        dns::MaybeDns(None)
    };

    let progress = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(0);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} endpoints scanned [{elapsed}]")
        {
            pb.set_style(style);
        }
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    });
    let payload = scan::run(&config, &rules, &plan, Arc::new(chain), Arc::new(resolver), progress).await?;
    // The lock is held until the payload is out, so two runs never interleave ingests.
    let _lock = lock;

    if dry_run {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &payload)?;
        writeln!(stdout)?;
        stdout.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = out {
        // A cron job reading the file never sees half a payload.
        let text = serde_json::to_string_pretty(&payload)? + "\n";
        fsutil::write_atomically(path, text.as_bytes())?;
        tracing::info!(path = %path.display(), "payload written");
        return Ok(ExitCode::SUCCESS);
    }
    let url = db_url.unwrap_or_else(|| db::DEFAULT_DATABASE_URL.into());
    let mut client = db::connect(&url).await?;
    let outcome = db::ingest(&mut client, &payload).await.context("ingest")?;
    let line = outcome.line("");
    println!("{}", line.trim_start_matches('\t'));
    Ok(ExitCode::SUCCESS)
}

fn nmap_toolchain(config: &Config) -> Result<AnyToolchain<ProcessRunner>> {
    let nmap = resolve_nmap(&config.tools)?;
    Ok(AnyToolchain::Nmap(NmapToolchain::new(
        ProcessRunner,
        nmap,
        NmapSettings::from_config(config),
    )?))
}

/// The configured toolchain; `auto` takes ProjectDiscovery when all four of
/// its tools are found, else nmap.
fn toolchain(config: &Config) -> Result<AnyToolchain<ProcessRunner>> {
    let pd = |paths| -> Result<AnyToolchain<ProcessRunner>> {
        Ok(AnyToolchain::Pd(PdToolchain::new(ProcessRunner, paths, PdSettings::from_config(config))?))
    };
    match config.toolchain {
        ToolchainChoice::Nmap => nmap_toolchain(config),
        ToolchainChoice::Projectdiscovery => pd(PdPaths::resolve(&config.tools)?),
        ToolchainChoice::Auto => match PdPaths::resolve(&config.tools) {
            Ok(paths) => pd(paths),
            Err(pd_err) => {
                nmap_toolchain(config).map_err(|nmap_err| anyhow!("no toolchain available: {pd_err}; {nmap_err:#}"))
            }
        },
    }
}

fn toolchain_name(c: &AnyToolchain<ProcessRunner>) -> &'static str {
    use crate::toolchain::Toolchain;
    c.name()
}
