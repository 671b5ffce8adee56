//! xray-loader: runs the scanners on in-scope targets, builds scan-result
//! payloads and feeds them to PostgreSQL (`xray.ingest_scan`).
//!
//! Made for cron: stdout carries only the requested output, logs go to
//! stderr, and any failure exits non-zero with one `xray-loader: <message>`
//! line on stderr.
//!
//! Each subcommand's story is in `commands/<name>.rs`; this file holds only the CLI,
//! logging, signals and dispatch.

mod chain;
mod collect;
mod commands;
mod config;
mod db;
mod dispatch;
mod dns;
mod fsutil;
mod ipfs;
mod lock;
mod output;
mod scan;
mod scope;
mod serve;
mod slasher;
mod symptoms;
mod toolchain;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::commands::{check, events, example_config, ingest, pin, tail};
use crate::output::fail;

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate scan payload files and insert each through xray.ingest_scan, one transaction per file.
    ///
    /// Prints `<file>\t<scan_id>\t<status>\tnew=N changed=N fixed=N` per file.
    Ingest(ingest::IngestArgs),
    /// List exposure events (NEW / CHANGED / FIXED) ordered by event_id.
    ///
    /// The table prints nothing when there are no events, so cron sends no mail.
    Events(events::EventsArgs),
    /// Scan the configured assets and ingest the payload (or write it with --out / --dry-run).
    ///
    /// Prints `<scan_id>\t<status>\tnew=N changed=N fixed=N` after ingesting.
    /// `xray-loader example-config` prints a commented configuration file.
    Scan(commands::scan::ScanArgs),
    /// Scan in-scope targets with nmap (or masscan) and write an nweb bundle directory and its CAR.
    ///
    /// Prints the bundle's CID and Merkle root, one per line (or JSON with --format json).
    Collect(commands::collect::CollectArgs),
    /// nweb dispatcher: publish target specs and the deny list (/getwork) for `collect --from`.
    ///
    /// Prints its base URL once listening; serves until stopped.
    Dispatch(commands::dispatch::DispatchArgs),
    /// nweb indexer: load Attestor events into nweb.attestations and fetch, verify and load their bundles.
    ///
    /// Follows the chain until stopped; with --once catches up and exits.
    Tail(tail::TailArgs),
    /// nweb slasher: probe bundle CIDs across the gateways, record nweb.availability_checks, file Challenges.
    ///
    /// Prints `<cid>\t<available|unavailable|invalid>\t<reason>\tok=N/M` per CID.
    Check(check::CheckArgs),
    /// nweb hoarder: keep the owner's bundles pinned (Kubo) and exported as CARs; add bundle directories.
    ///
    /// Prints `<cid>\t<added|kept|missing>\t<detail>` per bundle.
    Pin(pin::PinArgs),
    /// nweb: submit a bundle directory through the SubmissionRouter (signed with the encrypted keystore).
    ///
    /// Prints `<uid>\t<cid>\t<kind>\t<status>\ttx=<hash>` (or JSON with --format json).
    Submit(commands::submit::SubmitArgs),
    /// nweb: answer a challenge within grace with a Resolution (optionally submitting a new bundle first).
    ///
    /// Prints `<challengeId>\tresolved\tnewCid=<cid>\ttx=<hash>`.
    Resolve(commands::resolve::ResolveArgs),
    /// nweb: slash challenges whose grace ended without a Resolution (--challenge ID or --all-due).
    ///
    /// Prints `<challengeId>\tslashed\tamount=<GST>\tsubject=..\tchallenger=..\ttx=..` per challenge.
    Slash(commands::slash::SlashArgs),
    /// nweb node: the local JSON API (127.0.0.1:7777) and the Analyst UI (127.0.0.1:3000) over the database.
    ///
    /// Prints `api\thttp://ADDR` and `ui\thttp://ADDR`, then serves until stopped.
    Serve(commands::serve::ServeArgs),
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
                fail("a subcommand is required: ingest, events, scan, collect, dispatch, tail, check, pin or example-config (see --help)");
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
    let db_url = cli.database_url;
    match cli.command {
        Command::Ingest(args) => ingest::run(args, db_url).await,
        Command::Events(args) => events::run(args, db_url).await,
        Command::Scan(args) => commands::scan::run(args, db_url).await,
        Command::Collect(args) => commands::collect::run(args, db_url).await,
        Command::Dispatch(args) => commands::dispatch::run(args).await,
        Command::Tail(args) => tail::run(args, db_url).await,
        Command::Check(args) => check::run(args, db_url).await,
        Command::Pin(args) => pin::run(args, db_url).await,
        Command::Submit(args) => commands::submit::run(args).await,
        Command::Resolve(args) => commands::resolve::run(args).await,
        Command::Slash(args) => commands::slash::run(args).await,
        Command::Serve(args) => commands::serve::run(args, db_url).await,
        Command::ExampleNwebConfig => Ok(example_config::run_nweb()),
        Command::ExampleConfig => Ok(example_config::run_scan()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(c.command, Command::Scan(commands::scan::ScanArgs { dry_run: true, .. })));
        assert!(Cli::try_parse_from(["xray-loader", "scan", "--assets", "a.toml", "--dry-run", "--out", "x"]).is_err());
    }
}
