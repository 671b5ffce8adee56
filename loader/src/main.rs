//! xray-loader: runs the scanners on in-scope targets, builds scan-result
//! payloads and feeds them to PostgreSQL (`xray.ingest_scan`).
//!
//! Made for cron: stdout carries only the requested output, logs go to
//! stderr, and any failure exits non-zero with one `xray-loader: <message>`
//! line on stderr.

mod chain;
mod collect;
mod config;
mod db;
mod dns;
mod ipfs;
mod lock;
mod scan;
mod scope;
mod slasher;
mod symptoms;
mod toolchain;

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;
use uuid::Uuid;
use xray_engine::{EngineConfig, ScanPayload};

use crate::config::{Config, EngineSource, ToolchainChoice};
use crate::toolchain::nmap::{resolve_nmap, NmapSettings, NmapToolchain};
use crate::toolchain::pd::{PdPaths, PdSettings, PdToolchain};
use crate::toolchain::runner::ProcessRunner;
use crate::toolchain::AnyToolchain;

#[derive(Debug, Parser)]
#[command(
    name = "xray-loader",
    version,
    about = "Watchtower loader: scan in-scope assets, ingest scan payloads, report exposure events."
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Compact, global = true)]
    log_format: LogFormat,
    /// Log filter (error, warn, info, debug, or a tracing filter). Default: $XRAY_LOG, else warn.
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// PostgreSQL connection string (URL or key=value). Default: host=/var/run/postgresql dbname=postgres.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Compact,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate scan payload files and insert each through xray.ingest_scan, one transaction per file.
    ///
    /// Prints `<file>\t<scan_id>\t<status>\tnew=N changed=N fixed=N` per file.
    Ingest {
        /// Payload files; `-` reads standard input.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// List exposure events (NEW / CHANGED / FIXED) ordered by event_id.
    ///
    /// The table prints nothing when there are no events, so cron sends no mail.
    Events {
        /// Only events created at or after this time (RFC 3339, e.g. 2026-02-05T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Scan the configured assets and ingest the payload (or write it with --out / --dry-run).
    ///
    /// Prints `<scan_id>\t<status>\tnew=N changed=N fixed=N` after ingesting.
    /// `xray-loader example-config` prints a commented configuration file.
    Scan {
        /// TOML configuration with tenant, assets, deny list, limits and tool paths.
        #[arg(long)]
        assets: PathBuf,
        /// Scan only these targets (IP, CIDR or domain); each must lie inside a configured asset.
        #[arg(long = "target")]
        targets: Vec<String>,
        /// Write the payload to this file instead of ingesting it.
        #[arg(long, conflicts_with = "dry_run")]
        out: Option<PathBuf>,
        /// Print the payload on stdout; touches no database.
        #[arg(long)]
        dry_run: bool,
    },
    /// Scan in-scope targets with nmap (or masscan) and write an nweb bundle directory and its CAR.
    ///
    /// Prints the bundle's CID and Merkle root, one per line (or JSON with --format json).
    Collect(collect::CollectArgs),
    /// nweb indexer: load Attestor events into nweb.attestations and fetch, verify and load their bundles.
    ///
    /// Follows the chain until stopped; with --once catches up and exits.
    Tail(chain::TailArgs),
    /// nweb slasher: probe bundle CIDs across the gateways, record nweb.availability_checks, file Challenges.
    ///
    /// Prints `<cid>\t<available|unavailable|invalid>\t<reason>\tok=N/M` per CID.
    Check(slasher::CheckArgs),
    /// nweb hoarder: keep the owner's bundles pinned (Kubo) and exported as CARs; add bundle directories.
    ///
    /// Prints `<cid>\t<added|kept|missing>\t<detail>` per bundle.
    Pin(ipfs::hoarder::PinArgs),
    /// Print an example nweb configuration (for tail, check and pin).
    ExampleNwebConfig,
    /// Print an example scan configuration.
    ExampleConfig,
}

fn init_logging(format: LogFormat, level: Option<&str>) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let spec = level
        .map(str::to_string)
        .or_else(|| std::env::var("XRAY_LOG").ok())
        .unwrap_or_else(|| "warn".into());
    let filter = EnvFilter::try_new(&spec).map_err(|e| anyhow!("invalid log level {spec:?}: {e}"))?;
    // alloy's HTTP transport puts the RPC URL, which may hold an API key, into its debug spans.
    let filter = filter.add_directive("alloy_transport_http=info".parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Compact => builder.compact().try_init(),
    };
    result.map_err(|e| anyhow!("cannot initialise logging: {e}"))
}

/// Messages are printed on one line whatever the error chain looks like.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn fail(msg: impl std::fmt::Display) {
    eprintln!("xray-loader: {}", one_line(&msg.to_string()));
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                fail("a subcommand is required: ingest, events, scan, collect, tail, check, pin or example-config (see --help)");
                return ExitCode::from(2);
            }
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            fail(format!("{first} (see --help)"));
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(cli.log_format, cli.log_level.as_deref()) {
        fail(e);
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            fail(format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = run(cli) => r,
            s = shutdown_signal() => Err(anyhow!("interrupted by {s}; running tools were killed")),
        }
    });
    // Dropping the runtime drops unfinished tasks, which kills their tools.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(code) => code,
        Err(e) => {
            fail(format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let db_url = cli.database_url.clone();
    match cli.command {
        Command::Ingest { files } => ingest(db_url.as_deref().unwrap_or(db::DEFAULT_DATABASE_URL), &files).await,
        Command::Events { since, tenant, format } => {
            events(
                db_url.as_deref().unwrap_or(db::DEFAULT_DATABASE_URL),
                since.as_deref(),
                tenant.as_deref(),
                format,
            )
            .await
        }
        Command::Scan {
            assets,
            targets,
            out,
            dry_run,
        } => scan(db_url, &assets, &targets, out.as_deref(), dry_run).await,
        Command::Collect(args) => collect::run(args, db_url).await,
        Command::Tail(args) => chain::run_tail(args, db_url).await,
        Command::Check(args) => slasher::run_check(args, db_url).await,
        Command::Pin(args) => ipfs::hoarder::run_pin(args, db_url).await,
        Command::ExampleNwebConfig => {
            print!("{}", chain::config::EXAMPLE);
            Ok(ExitCode::SUCCESS)
        }
        Command::ExampleConfig => {
            print!("{}", config::EXAMPLE);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_input(file: &str) -> Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).map_err(|e| anyhow!("cannot read: {e}"))
    }
}

/// Parses and validates a payload file; the error names the field.
fn load_payload(file: &str) -> Result<Value> {
    let text = read_input(file)?;
    let value: Value = serde_json::from_str(&text).map_err(|e| anyhow!("invalid payload: malformed JSON: {e}"))?;
    ScanPayload::from_value(&value).map_err(|e| anyhow!("invalid payload: {e}"))?;
    Ok(value)
}

async fn ingest(url: &str, files: &[String]) -> Result<ExitCode> {
    let mut failed = false;
    let mut valid = Vec::new();
    for f in files {
        match load_payload(f) {
            Ok(v) => valid.push((f, v)),
            Err(e) => {
                fail(format!("{f}: {e:#}"));
                failed = true;
            }
        }
    }
    if valid.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    tracing::info!(db = %db::describe(url), files = valid.len(), "ingesting");
    let mut client = match db::connect(url).await {
        Ok(c) => c,
        Err(e) => {
            for (f, _) in &valid {
                fail(format!("{f}: {e:#}"));
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut stdout = std::io::stdout().lock();
    for (f, payload) in valid {
        match db::ingest(&mut client, &payload).await {
            Ok(outcome) => {
                writeln!(stdout, "{}", outcome.line(f)).context("cannot write to stdout")?;
                stdout.flush().ok();
            }
            Err(e) => {
                fail(format!("{f}: {e:#}"));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn events(url: &str, since: Option<&str>, tenant: Option<&str>, format: OutputFormat) -> Result<ExitCode> {
    let since: Option<DateTime<Utc>> = since
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| anyhow!("--since {s:?} is not an RFC 3339 time like 2026-02-05T00:00:00Z"))
        })
        .transpose()?;
    let tenant: Option<Uuid> = tenant
        .map(|t| Uuid::parse_str(t).map_err(|_| anyhow!("--tenant {t:?} is not a UUID")))
        .transpose()?;
    let client = db::connect(url).await?;
    let rows = db::events(&client, since, tenant).await?;
    let mut stdout = std::io::stdout().lock();
    match format {
        OutputFormat::Table => write!(stdout, "{}", db::events_table(&rows, tenant.is_none()))?,
        OutputFormat::Json => {
            for r in &rows {
                writeln!(stdout, "{}", r.to_json())?;
            }
        }
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn scan(
    cli_db: Option<String>,
    assets: &Path,
    targets: &[String],
    out: Option<&Path>,
    dry_run: bool,
) -> Result<ExitCode> {
    let config = Config::load(assets)?;
    let plan = scope::plan(&config, targets).with_context(|| format!("config {}", assets.display()))?;
    for s in &plan.skipped {
        tracing::warn!("{s}; skipped");
    }
    let db_url = (!dry_run && out.is_none()).then(|| {
        cli_db
            .or_else(|| config.database_url.clone())
            .unwrap_or_else(|| db::DEFAULT_DATABASE_URL.into())
    });

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
        write_atomically(path, &payload)?;
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

/// A cron job reading the file never sees half a payload.
fn write_atomically(path: &Path, payload: &Value) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let text = serde_json::to_string_pretty(payload)?;
    std::fs::write(&tmp, text + "\n").with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\n  b\r\n\nc"), "a b c");
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let c = Cli::try_parse_from([
            "xray-loader",
            "scan",
            "--assets",
            "a.toml",
            "--target",
            "192.0.2.1",
            "--dry-run",
        ])
        .unwrap();
        assert!(matches!(c.command, Command::Scan { dry_run: true, .. }));
        assert!(Cli::try_parse_from(["xray-loader", "scan", "--assets", "a.toml", "--dry-run", "--out", "x"]).is_err());
    }
}
