//! `xray-loader collect`: scan in-scope targets with nmap (or masscan) and build an
//! nweb bundle (docs/nweb.md §3).
//!
//! The bundle is a directory
//!
//! ```text
//! <out>/manifest.json                  nweb.bundle.v1
//! <out>/scanprint/scanprint.v0.jsonl   scanprint v0, JCS lines, sorted (docs/design.md D6)
//! <out>/raw/nmap.xml                   or raw/masscan.json
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
//! Nothing is written unless the scan finished: a timed-out or failed scanner leaves no
//! bundle, because a bundle that looks complete but is not would be attested as such.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use nweb::bundle::write::{self, Bundle, BundleMeta};
use nweb::bundle::{MASSCAN_JSON_PATH, NMAP_XML_PATH, SCANPRINT_PATH};
use nweb::scanprint::{self, Conversion, ScanprintContext};
use xray_engine::EngineConfig;

use crate::config::{Config, EngineSource};
use crate::db;
use crate::dns::{self, Dns};
use crate::lock;
use crate::scope::{self, ip_denied};
use crate::toolchain::runner::{self, CommandRunner, Invocation, Outcome, ProcessRunner, RunResult};

/// `--version` must answer quickly; it also proves the binary runs before a long scan.
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    /// `nmap -sV --script ssl-cert -oX -` (dataset type nmap, namespace nweb.io).
    Nmap,
    /// `masscan -oJ` (dataset type masscan, namespace masspull.org).
    Masscan,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Nmap => "nmap",
            Tool::Masscan => "masscan",
        }
    }

    /// The namespaces of docs/nweb.md §3: nmap data is nweb.io, masscan data masspull.org.
    fn default_namespace(self) -> &'static str {
        match self {
            Tool::Nmap => "nweb.io",
            Tool::Masscan => "masspull.org",
        }
    }

    fn raw_path(self) -> &'static str {
        match self {
            Tool::Nmap => NMAP_XML_PATH,
            Tool::Masscan => MASSCAN_JSON_PATH,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Two lines: the CID, then the Merkle root.
    Text,
    /// One JSON object: cid, merkleRoot, bundle, car, lines, tool, ingested.
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
}

/// Everything decided before the scan, so that a mistake fails in a second.
#[derive(Debug, Clone)]
struct Settings {
    tool: Tool,
    program: PathBuf,
    ports: Vec<u16>,
    vantage: String,
    namespace: String,
    notes: Option<String>,
    timeout: Duration,
    out: PathBuf,
    car: PathBuf,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn check_label(what: &str, s: &str) -> Result<String> {
    let s = s.trim();
    if s.is_empty() {
        bail!("{what} must not be empty");
    }
    if s.chars().any(char::is_control) {
        bail!("{what} {s:?} contains a control character");
    }
    Ok(s.to_string())
}

/// `<out>.car`, next to the bundle directory.
pub fn default_car_path(out: &Path) -> Result<PathBuf> {
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out {} does not name a directory to create", out.display()))?;
    let mut car = name.to_os_string();
    car.push(".car");
    Ok(out.with_file_name(car))
}

/// nmap's port syntax with runs collapsed: `22,80,8000-8010`.
pub fn port_spec(ports: &[u16]) -> String {
    let mut sorted = ports.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// nmap's command line. `-n`: no DNS from nmap, it gets checked addresses only.
/// `-Pn`: every in-scope address is probed, also one that drops pings.
pub fn nmap_args(ports: &[u16], ips: &[IpAddr]) -> Vec<String> {
    let mut args: Vec<String> = ["-sV", "-Pn", "-n", "--script", "ssl-cert", "-p"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(port_spec(ports));
    if ips.iter().any(IpAddr::is_ipv6) {
        args.push("-6".into());
    }
    args.extend(["-oX".to_string(), "-".to_string()]);
    args.extend(ips.iter().map(IpAddr::to_string));
    args
}

/// masscan's command line; it writes its JSON to `out_file`.
pub fn masscan_args(ports: &[u16], rate: u32, ips: &[IpAddr], out_file: &Path) -> Vec<String> {
    let mut args = vec![
        "-p".to_string(),
        port_spec(ports),
        "--rate".to_string(),
        rate.to_string(),
        "-oJ".to_string(),
        out_file.display().to_string(),
    ];
    args.extend(ips.iter().map(IpAddr::to_string));
    args
}

fn resolve_settings(args: &CollectArgs, config: &Config) -> Result<Settings> {
    // nweb bundles are public data judged by no tenant's engine, so the
    // shipped configuration gives the profile's ports, not a database's.
    let rules = config
        .rules(EngineConfig::default(), EngineSource::Default)
        .with_context(|| format!("config {}", config.path.display()))?;
    let ports = if args.ports.is_empty() {
        rules.ports
    } else {
        let mut p = args.ports.clone();
        if p.contains(&0) {
            bail!("--ports: 0 is not a TCP port");
        }
        p.sort_unstable();
        p.dedup();
        if p.len() > config.max_ports_per_host {
            bail!(
                "--ports: {} ports is more than max_ports_per_host = {}",
                p.len(),
                config.max_ports_per_host
            );
        }
        p
    };
    let vantage = match args.vantage.as_deref().or(config.vantage.as_deref()) {
        Some(v) => check_label("vantage", v)?,
        None => bail!(
            "no vantage: pass --vantage (e.g. AS64500/eu-west-1) or set vantage in {}",
            config.path.display()
        ),
    };
    let namespace = check_label(
        "namespace",
        args.namespace.as_deref().unwrap_or(args.tool.default_namespace()),
    )?;
    let notes = args.notes.as_deref().map(|n| check_label("notes", n)).transpose()?;
    let timeout = match args.timeout {
        Some(0) => bail!("--timeout must be at least 1 second"),
        Some(s) => Duration::from_secs(s),
        None => config.timeouts.of("nmap"),
    };
    let configured = match args.tool {
        Tool::Nmap => config.tools.nmap.clone(),
        Tool::Masscan => None,
    };
    let program = match args.tool_path.clone().or(configured) {
        Some(p) if runner::is_executable(&p) => p,
        Some(p) => bail!("{} {} is not an executable file", args.tool.name(), p.display()),
        None => runner::find_on_path(args.tool.name()).ok_or_else(|| {
            anyhow!(
                "{} is not installed (not on PATH); install the Debian package {} or pass --tool-path",
                args.tool.name(),
                args.tool.name()
            )
        })?,
    };
    let out = args.out.clone();
    if out.file_name().is_none() {
        bail!("--out {} does not name a directory to create", out.display());
    }
    match std::fs::read_dir(&out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "--out {} exists and is not empty; choose a new directory",
                    out.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("--out {}: {e}", out.display()),
    }
    let car = match &args.car {
        Some(c) => c.clone(),
        None => default_car_path(&out)?,
    };
    if car.exists() {
        bail!("CAR file {} exists; remove it or pass another --car", car.display());
    }
    Ok(Settings {
        tool: args.tool,
        program,
        ports,
        vantage,
        namespace,
        notes,
        timeout,
        out,
        car,
    })
}

/// The addresses to hand the scanner: the plan's IPs plus the resolved addresses of its
/// domains, minus everything on the deny list.
async fn target_addresses(config: &Config, plan: &scope::Plan) -> Result<Vec<IpAddr>> {
    let mut ips: BTreeSet<IpAddr> = plan.assets.iter().flat_map(|a| a.ips.iter().copied()).collect();
    let domains: Vec<&str> = plan.assets.iter().filter_map(|a| a.domain.as_deref()).collect();
    if !domains.is_empty() {
        let resolver = dns::HickoryDns::new(config.dns_resolver, config.timeouts.of("dns"))?;
        for d in domains {
            let r = resolver.addresses(d, config.scan_ipv6).await;
            for e in &r.errors {
                tracing::warn!(domain = d, error = %e, "DNS lookup failed");
            }
            let mut found = r.a.clone();
            if config.scan_ipv6 {
                found.extend(r.aaaa.iter().copied());
            }
            if found.is_empty() {
                tracing::warn!(domain = d, "no addresses; not scanned");
            }
            for ip in found {
                if ip_denied(&config.deny, ip) {
                    tracing::warn!(domain = d, %ip, "resolved address is on the deny list; not scanned");
                } else {
                    ips.insert(ip);
                }
            }
        }
    }
    if ips.is_empty() {
        bail!("nothing to scan: no in-scope address is left after DNS and the deny list");
    }
    if ips.len() as u64 > config.max_targets {
        bail!(
            "{} addresses selected, more than max_targets = {}",
            ips.len(),
            config.max_targets
        );
    }
    // Every address goes through the deny list once more, whatever produced it.
    if let Some(ip) = ips.iter().find(|ip| ip_denied(&config.deny, **ip)) {
        bail!("internal error: denied address {ip} selected");
    }
    let v6 = ips.iter().filter(|ip| ip.is_ipv6()).count();
    if v6 > 0 && v6 < ips.len() {
        bail!("the targets mix IPv4 and IPv6 addresses; nmap scans one family per run, so collect them in two bundles (--target)");
    }
    Ok(ips.into_iter().collect())
}

fn failure(tool: &str, inv: &Invocation, r: &RunResult) -> Option<String> {
    let stderr = runner::tail(r.stderr.trim(), 300);
    let stderr = stderr.trim();
    let why = if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    };
    match &r.outcome {
        Outcome::Exited(Some(0)) => None,
        Outcome::Exited(Some(c)) => Some(format!("{tool} exited with status {c}{why}")),
        Outcome::Exited(None) => Some(format!("{tool} was killed by a signal{why}")),
        Outcome::TimedOut => Some(format!(
            "{tool} timed out after {}s and was killed (raise timeouts.nmap or --timeout)",
            inv.timeout.as_secs()
        )),
        Outcome::SpawnFailed(e) => Some(format!("could not start {tool} ({}): {e}", inv.program.display())),
    }
}

async fn tool_version<R: CommandRunner>(runner: &R, s: &Settings) -> Result<Option<String>> {
    let inv = Invocation {
        tool: s.tool.name(),
        program: s.program.clone(),
        args: vec!["--version".into()],
        stdin: String::new(),
        timeout: VERSION_TIMEOUT,
        cwd: None,
    };
    let r = runner.run(&inv).await;
    if let Some(f) = failure(s.tool.name(), &inv, &r) {
        bail!("{f}");
    }
    Ok(runner::parse_version(&format!("{}\n{}", r.stdout, r.stderr)))
}

/// What one scanner run gave.
struct ScanOutput {
    raw: Vec<u8>,
    conversion: Conversion,
    tool_version: String,
    started_at: u64,
    finished_at: u64,
}

async fn run_scan<R: CommandRunner>(
    runner: &R,
    s: &Settings,
    config: &Config,
    ips: &[IpAddr],
    scratch: &Path,
) -> Result<ScanOutput> {
    let version = tool_version(runner, s).await?;
    let masscan_file = scratch.join("masscan.json");
    let args = match s.tool {
        Tool::Nmap => nmap_args(&s.ports, ips),
        Tool::Masscan => masscan_args(&s.ports, config.limits.rate, ips, &masscan_file),
    };
    let inv = Invocation {
        tool: s.tool.name(),
        program: s.program.clone(),
        args,
        stdin: String::new(),
        timeout: s.timeout,
        cwd: None,
    };
    tracing::info!(
        tool = s.tool.name(),
        targets = ips.len(),
        ports = s.ports.len(),
        "scanning"
    );
    let started_at = unix_now();
    let r = runner.run(&inv).await;
    let finished_at = unix_now().max(started_at);
    if let Some(f) = failure(s.tool.name(), &inv, &r) {
        bail!("{f}; no bundle written");
    }
    let mut ctx = ScanprintContext {
        vantage: s.vantage.clone(),
        options: None,
        tool_version: version.clone(),
    };
    let (raw, conversion, tool_version) = match s.tool {
        Tool::Nmap => {
            let conv = scanprint::from_nmap_xml(&r.stdout, &ctx).map_err(|e| {
                anyhow!(
                    "nmap output is not nmap XML ({e}); stderr: {}",
                    runner::tail(r.stderr.trim(), 300)
                )
            })?;
            // The version nmap wrote into its XML is the one the lines carry.
            let v = conv
                .lines
                .first()
                .and_then(|l| l.tool_version.clone())
                .or(version)
                .unwrap_or_else(|| "unknown".into());
            (r.stdout.into_bytes(), conv, v)
        }
        Tool::Masscan => {
            let text = std::fs::read_to_string(&masscan_file)
                .with_context(|| format!("masscan wrote no output file {}", masscan_file.display()))?;
            ctx.options = Some(format!("-p {} --rate {}", port_spec(&s.ports), config.limits.rate));
            let conv = scanprint::from_masscan(&text, &ctx);
            (text.into_bytes(), conv, version.unwrap_or_else(|| "unknown".into()))
        }
    };
    for e in conversion.errors.iter().take(20) {
        tracing::warn!(tool = s.tool.name(), "{e}; record skipped");
    }
    if conversion.errors.len() > 20 {
        tracing::warn!("{} more unreadable records", conversion.errors.len() - 20);
    }
    Ok(ScanOutput {
        raw,
        conversion,
        tool_version,
        started_at,
        finished_at,
    })
}

/// The bundle of one scan, built and verified by the nweb crate.
fn build_bundle(s: &Settings, scan: ScanOutput) -> Result<Bundle> {
    let meta = BundleMeta {
        tool: s.tool.name(),
        raw_path: s.tool.raw_path(),
        namespace: &s.namespace,
        vantage: &s.vantage,
        notes: s.notes.as_deref(),
        tool_version: &scan.tool_version,
        started_at: scan.started_at,
        finished_at: scan.finished_at,
    };
    Ok(write::build_bundle(&meta, scan.raw, &scan.conversion.lines)?)
}

/// A directory that is removed unless [`Staging::commit`] moved it into place.
struct Staging {
    path: PathBuf,
    done: bool,
}

impl Staging {
    fn new(out: &Path) -> Result<Staging> {
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Staging { path, done: false })
    }

    fn write_files(&self, files: &[(String, Vec<u8>)]) -> Result<()> {
        for (rel, bytes) in files {
            let p = self.path.join(rel);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        }
        Ok(())
    }

    fn commit(mut self, out: &Path) -> Result<()> {
        // An empty directory named by --out (checked before the scan) is replaced.
        if out.is_dir() {
            std::fs::remove_dir(out)
                .with_context(|| format!("--out {} is no longer empty; bundle left unwritten", out.display()))?;
        }
        std::fs::rename(&self.path, out)
            .with_context(|| format!("cannot move {} to {}", self.path.display(), out.display()))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot move {} to {}", tmp.display(), path.display())
    })
}

/// Which nweb ingest function the database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IngestVia {
    Car,
    Bundle,
}

async fn ingest_function(client: &tokio_postgres::Client) -> Result<IngestVia> {
    let row = client
        .query_one(
            "SELECT to_regprocedure('nweb.ingest_car(bytea,text)') IS NOT NULL,
                    to_regprocedure('nweb.ingest_bundle(text,jsonb,text,jsonb)') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| anyhow!("database check failed: {}", db::pg_error(&e)))?;
    match (row.get::<_, bool>(0), row.get::<_, bool>(1)) {
        (true, _) => Ok(IngestVia::Car),
        (false, true) => Ok(IngestVia::Bundle),
        _ => bail!(
            "the database has neither nweb.ingest_car nor nweb.ingest_bundle; install xray_pg 0.2.0 (CREATE EXTENSION xray_pg or ALTER EXTENSION xray_pg UPDATE)"
        ),
    }
}

/// The verdict the database recorded: (status, reason, reason_detail).
async fn ingest(
    client: &tokio_postgres::Client,
    via: IngestVia,
    b: &Bundle,
) -> Result<(String, Option<String>, Option<String>)> {
    let cid = b.cid_string();
    let row = match via {
        IngestVia::Car => {
            client
                .query_one(
                    "SELECT status, reason, reason_detail FROM nweb.ingest_car($1, $2)",
                    &[&b.car, &cid],
                )
                .await
        }
        IngestVia::Bundle => {
            let scanprint = b
                .files
                .iter()
                .find(|(p, _)| p == SCANPRINT_PATH)
                .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default();
            let artifacts: serde_json::Map<String, Value> = b
                .files
                .iter()
                .map(|(p, bytes)| (p.clone(), json!(nweb::bundle::sha256_hex(bytes))))
                .collect();
            client
                .query_one(
                    "SELECT status, reason, reason_detail FROM nweb.ingest_bundle($1, $2, $3, $4)",
                    &[&cid, &b.manifest, &scanprint, &Value::Object(artifacts)],
                )
                .await
        }
    }
    .map_err(|e| anyhow!("ingest of bundle {cid} failed: {}", db::pg_error(&e)))?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

pub async fn run(args: CollectArgs, cli_db: Option<String>) -> Result<ExitCode> {
    let config = Config::load(&args.assets)?;
    // Scope first: an out-of-scope or denied target is refused before anything else.
    let plan = scope::plan(&config, &args.targets)?;
    for s in &plan.skipped {
        tracing::warn!("{s}; skipped");
    }
    let settings = resolve_settings(&args, &config)?;

    let db = if args.ingest {
        let url = cli_db
            .or_else(|| config.database_url.clone())
            .unwrap_or_else(|| db::DEFAULT_DATABASE_URL.into());
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

    let staging = Staging::new(&settings.out)?;
    let scan = run_scan(&ProcessRunner, &settings, &config, &ips, &staging.path).await?;
    drop(lock);
    // masscan's scratch file is now in memory; the bundle holds only its own files.
    let _ = std::fs::remove_file(staging.path.join("masscan.json"));

    let bundle = build_bundle(&settings, scan)?;
    staging.write_files(&bundle.files)?;
    staging.commit(&settings.out)?;
    write_file_atomically(&settings.car, &bundle.car)?;
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
                "ingested": ingested,
            });
            writeln!(stdout, "{out}")?;
        }
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_collapse_runs() {
        assert_eq!(port_spec(&[443, 22, 80, 81, 82, 22, 8443]), "22,80-82,443,8443");
        assert_eq!(port_spec(&[1]), "1");
        assert_eq!(port_spec(&[65534, 65535]), "65534-65535");
    }

    #[test]
    fn nmap_gets_addresses_only_and_xml_on_stdout() {
        let ips: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap()];
        assert_eq!(
            nmap_args(&[22, 443], &ips).join(" "),
            "-sV -Pn -n --script ssl-cert -p 22,443 -oX - 192.0.2.1"
        );
        let v6: Vec<IpAddr> = vec!["2001:db8::1".parse().unwrap()];
        assert!(nmap_args(&[22], &v6).contains(&"-6".to_string()));
        assert_eq!(
            masscan_args(&[80], 100, &ips, Path::new("/tmp/m.json")).join(" "),
            "-p 80 --rate 100 -oJ /tmp/m.json 192.0.2.1"
        );
    }

    #[test]
    fn car_path_defaults_next_to_the_directory() {
        assert_eq!(
            default_car_path(Path::new("/x/b1")).unwrap(),
            PathBuf::from("/x/b1.car")
        );
        assert_eq!(default_car_path(Path::new("b1/")).unwrap(), PathBuf::from("b1.car"));
        assert!(default_car_path(Path::new("/")).is_err());
    }
}
