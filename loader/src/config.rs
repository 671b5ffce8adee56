//! The `scan --assets FILE` configuration (TOML).
//!
//! Everything is validated up front so that a cron run with a typo fails in
//! a second with one line naming the field, not after an hour of scanning.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ipnet::IpNet;
use serde::Deserialize;
use uuid::Uuid;
use xray_engine::EngineConfig;

/// Example file, printed by `xray-loader scan --help` and kept in sync with
/// `fixtures/loader/assets.example.toml`.
pub const EXAMPLE: &str = include_str!("../../fixtures/loader/assets.example.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database_url: Option<String>,
    tenant_id: String,
    #[serde(default = "default_profile")]
    scan_profile: String,
    #[serde(default = "default_kind")]
    scan_kind: String,
    #[serde(default)]
    toolchain: ToolchainChoice,
    #[serde(default = "default_max_targets")]
    max_targets: u64,
    #[serde(default = "default_max_ports")]
    max_ports_per_host: usize,
    /// Overrides the port list the engine configuration gives the profile.
    ports: Option<Vec<u16>>,
    dns_resolver: Option<String>,
    #[serde(default)]
    dkim_selectors: Vec<String>,
    #[serde(default)]
    scan_ipv6: bool,
    worker_id: Option<String>,
    /// Where scans run from, for nweb bundles (`collect`), e.g. `AS64500/eu-west-1`.
    vantage: Option<String>,
    lock_dir: Option<PathBuf>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    timeouts: Timeouts,
    #[serde(default)]
    tools: ToolPaths,
    #[serde(default)]
    assets: Vec<RawAsset>,
}

fn default_profile() -> String {
    xray_engine::config::BASELINE_PROFILE.to_string()
}
fn default_kind() -> String {
    "scheduled".into()
}
fn default_max_targets() -> u64 {
    256
}
fn default_max_ports() -> usize {
    1000
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolchainChoice {
    /// ProjectDiscovery when its binaries are found, else nmap.
    #[default]
    Auto,
    #[serde(alias = "pd")]
    Projectdiscovery,
    Nmap,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Packets (naabu) or requests (httpx, nuclei) per second, per tool run.
    pub rate: u32,
    /// Worker threads inside each tool.
    pub concurrency: u32,
    /// Tool processes at the same time: nmap runs one per endpoint, the
    /// ProjectDiscovery stages one per name (see docs/toolchain.md).
    pub parallel_endpoints: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rate: 150,
            concurrency: 25,
            parallel_endpoints: 2,
        }
    }
}

/// Seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub naabu: u64,
    pub httpx: u64,
    pub tlsx: u64,
    pub nuclei: u64,
    pub nmap: u64,
    pub dns: u64,
    /// No endpoint is started after this many seconds.
    pub scan: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            naabu: 600,
            httpx: 600,
            tlsx: 300,
            nuclei: 1800,
            nmap: 1800,
            dns: 10,
            scan: 4 * 3600,
        }
    }
}

impl Timeouts {
    pub fn of(&self, tool: &str) -> Duration {
        let s = match tool {
            "naabu" => self.naabu,
            "httpx" => self.httpx,
            "tlsx" => self.tlsx,
            "nuclei" => self.nuclei,
            "nmap" => self.nmap,
            _ => self.dns,
        };
        Duration::from_secs(s)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolPaths {
    pub naabu: Option<PathBuf>,
    pub httpx: Option<PathBuf>,
    pub tlsx: Option<PathBuf>,
    pub nuclei: Option<PathBuf>,
    pub nmap: Option<PathBuf>,
    /// nuclei `-t` entries (templates or directories).
    pub nuclei_templates: Vec<String>,
    /// nuclei `-tags`.
    pub nuclei_tags: Vec<String>,
    /// tlsx `-ce` (cipher enumeration, many handshakes per port).
    pub tls_cipher_enum: Option<bool>,
    /// Extra arguments per tool, appended last.
    pub extra_args: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsset {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    value: String,
    #[serde(default)]
    tags: Vec<String>,
}

/// A configured asset, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub id: Uuid,
    pub target: AssetTarget,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetTarget {
    Ip(IpAddr),
    Cidr(IpNet),
    /// Lower case, no trailing dot.
    Domain(String),
}

impl AssetTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            AssetTarget::Ip(_) => "ip",
            AssetTarget::Cidr(_) => "cidr",
            AssetTarget::Domain(_) => "domain",
        }
    }

    pub fn value(&self) -> String {
        match self {
            AssetTarget::Ip(ip) => ip.to_string(),
            AssetTarget::Cidr(net) => net.to_string(),
            AssetTarget::Domain(d) => d.clone(),
        }
    }
}

/// One deny-list entry. Deny always wins over the asset list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyRule {
    Ip(IpAddr),
    Cidr(IpNet),
    /// Denies the domain and all its subdomains.
    Domain(String),
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub database_url: Option<String>,
    pub tenant_id: Uuid,
    pub scan_profile: String,
    pub scan_kind: String,
    pub toolchain: ToolchainChoice,
    pub max_targets: u64,
    pub max_ports_per_host: usize,
    /// `ports` of the file, sorted. `None`: the run's engine configuration
    /// decides, see [`Config::rules`].
    pub ports: Option<Vec<u16>>,
    pub dns_resolver: Option<SocketAddr>,
    pub dkim_selectors: Vec<String>,
    pub scan_ipv6: bool,
    pub worker_id: Option<String>,
    /// nweb `vantage` for `collect` (`--vantage` wins).
    pub vantage: Option<String>,
    pub lock_dir: Option<PathBuf>,
    pub deny: Vec<DenyRule>,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub tools: ToolPaths,
    pub assets: Vec<Asset>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
        Config::parse(&text, path).with_context(|| format!("config {}", path.display()))
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!(toml_error(text, &e)))?;
        let tenant_id = parse_uuid(&raw.tenant_id).with_context(|| "tenant_id".to_string())?;
        // `rules` checks the profile: a database may define profiles the
        // shipped configuration does not know.
        if !matches!(raw.scan_kind.as_str(), "scheduled" | "on_demand" | "verify") {
            bail!(
                "scan_kind: must be scheduled, on_demand or verify, got {:?}",
                raw.scan_kind
            );
        }
        if raw.max_targets == 0 {
            bail!("max_targets: must be at least 1");
        }
        let ports = raw
            .ports
            .clone()
            .map(|mut ports| {
                if ports.contains(&0) {
                    bail!("ports: 0 is not a TCP port");
                }
                ports.sort_unstable();
                ports.dedup();
                if ports.is_empty() {
                    bail!("ports: the port list is empty");
                }
                if ports.len() > raw.max_ports_per_host {
                    bail!(
                        "ports: {} ports is more than max_ports_per_host = {}",
                        ports.len(),
                        raw.max_ports_per_host
                    );
                }
                Ok(ports)
            })
            .transpose()?;
        let dns_resolver = raw
            .dns_resolver
            .as_deref()
            .map(|s| parse_resolver(s).with_context(|| "dns_resolver".to_string()))
            .transpose()?;
        for (name, v) in [
            ("naabu", raw.timeouts.naabu),
            ("httpx", raw.timeouts.httpx),
            ("tlsx", raw.timeouts.tlsx),
            ("nuclei", raw.timeouts.nuclei),
            ("nmap", raw.timeouts.nmap),
            ("dns", raw.timeouts.dns),
            ("scan", raw.timeouts.scan),
        ] {
            if v == 0 {
                bail!("timeouts.{name}: must be at least 1 second");
            }
        }
        if raw.limits.rate == 0 || raw.limits.concurrency == 0 || raw.limits.parallel_endpoints == 0 {
            bail!("limits: rate, concurrency and parallel_endpoints must be at least 1");
        }
        for sel in &raw.dkim_selectors {
            if sel.is_empty() || !sel.split('.').all(valid_label) {
                bail!("dkim_selectors: {sel:?} is not a valid DNS label");
            }
        }
        for tool in raw.tools.extra_args.keys() {
            if !matches!(tool.as_str(), "naabu" | "httpx" | "tlsx" | "nuclei" | "nmap") {
                bail!("tools.extra_args: unknown tool {tool:?}");
            }
        }
        let deny = raw
            .deny
            .iter()
            .enumerate()
            .map(|(i, d)| parse_deny(d).with_context(|| format!("deny[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        if raw.assets.is_empty() {
            bail!("assets: no assets configured; add [[assets]] entries");
        }
        let mut assets: Vec<Asset> = Vec::new();
        for (i, a) in raw.assets.iter().enumerate() {
            let asset = parse_asset(a).with_context(|| format!("assets[{i}]"))?;
            if assets.iter().any(|x| x.id == asset.id) {
                bail!("assets[{i}].id: duplicate asset id {}", asset.id);
            }
            assets.push(asset);
        }
        Ok(Config {
            path: path.to_path_buf(),
            database_url: raw.database_url,
            tenant_id,
            scan_profile: raw.scan_profile,
            scan_kind: raw.scan_kind,
            toolchain: raw.toolchain,
            max_targets: raw.max_targets,
            max_ports_per_host: raw.max_ports_per_host,
            ports,
            dns_resolver,
            dkim_selectors: raw.dkim_selectors,
            scan_ipv6: raw.scan_ipv6,
            worker_id: raw.worker_id,
            vantage: raw.vantage,
            lock_dir: raw.lock_dir,
            deny,
            limits: raw.limits,
            timeouts: raw.timeouts,
            tools: raw.tools,
            assets,
        })
    }
}

/// Where the engine configuration of a run came from; the run's log line
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineSource {
    /// `xray.engine_config()` of the database the run ingests into: the
    /// rules its ingest trigger will judge the payload by.
    Database,
    /// `EngineConfig::default()`, for runs that read no database
    /// (`scan --dry-run`, `scan --out`, `collect`).
    Default,
}

impl fmt::Display for EngineSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineSource::Database => "database",
            EngineSource::Default => "default",
        })
    }
}

/// What one scan run probes, and the engine rules its symptoms follow.
#[derive(Debug, Clone)]
pub struct ScanRules {
    /// Sorted, without duplicates.
    pub ports: Vec<u16>,
    /// `file` (the configuration's `ports`) or `profile`.
    pub ports_from: &'static str,
    pub engine: EngineConfig,
    pub source: EngineSource,
}

impl Config {
    /// Resolves the run's ports against `engine`. Explicit `ports` in the
    /// file win. Otherwise the profile's ports plus every enabled admin port:
    /// an admin port the loader never probes could never be reported as RB1,
    /// nor proven fixed.
    pub fn rules(&self, engine: EngineConfig, source: EngineSource) -> Result<ScanRules> {
        if !engine.profile_ports.contains_key(&self.scan_profile) {
            let known: Vec<&str> = engine.profile_ports.keys().map(String::as_str).collect();
            let whose = match source {
                EngineSource::Database => "known in the database's xray.scan_profiles",
                EngineSource::Default => "known without a database, as shipped",
            };
            bail!(
                "scan_profile: unknown profile {:?} ({whose}: {})",
                self.scan_profile,
                known.join(", ")
            );
        }
        let (ports, ports_from) = match &self.ports {
            Some(ports) => (ports.clone(), "file"),
            None => {
                let mut ports = engine.ports_for_profile(Some(&self.scan_profile)).to_vec();
                ports.extend(engine.admin_ports.keys());
                ports.sort_unstable();
                ports.dedup();
                if ports.is_empty() {
                    bail!(
                        "scan_profile: profile {:?} has no ports and no admin port is enabled ({source} engine configuration); set ports",
                        self.scan_profile
                    );
                }
                if ports.len() > self.max_ports_per_host {
                    bail!(
                        "max_ports_per_host: profile {:?} with the enabled admin ports ({source} engine configuration) is {} ports, more than max_ports_per_host = {}",
                        self.scan_profile,
                        ports.len(),
                        self.max_ports_per_host
                    );
                }
                (ports, "profile")
            }
        };
        Ok(ScanRules {
            ports,
            ports_from,
            engine,
            source,
        })
    }
}

/// toml's messages carry a multi-line source excerpt; keep the message and
/// turn the byte span into a line number.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg,
    }
}

fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s.trim()).map_err(|_| anyhow::anyhow!("invalid UUID {s:?}"))
}

fn parse_resolver(s: &str) -> Result<SocketAddr> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    bail!("{s:?} is not an ip or ip:port")
}

fn parse_asset(a: &RawAsset) -> Result<Asset> {
    let id = parse_uuid(&a.id).context("id")?;
    let value = a.value.trim();
    let target = match a.kind.as_str() {
        "ip" => AssetTarget::Ip(
            value
                .parse()
                .map_err(|_| anyhow::anyhow!("value: {value:?} is not an IP address"))?,
        ),
        "cidr" => AssetTarget::Cidr(parse_cidr(value).context("value")?),
        "domain" => AssetTarget::Domain(parse_domain(value).context("value")?),
        other => bail!("type: must be ip, domain or cidr, got {other:?}"),
    };
    Ok(Asset {
        id,
        target,
        tags: a.tags.clone(),
    })
}

pub fn parse_cidr(s: &str) -> Result<IpNet> {
    let net: IpNet = s
        .parse()
        .map_err(|_| anyhow::anyhow!("{s:?} is not a CIDR like 192.0.2.0/24"))?;
    if net.trunc() != net {
        bail!("{s:?} has host bits set; did you mean {}?", net.trunc());
    }
    Ok(net)
}

/// Lower case, without trailing dot; letters, digits and hyphens only.
pub fn parse_domain(s: &str) -> Result<String> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    if d.len() > 253 || labels.len() < 2 || !labels.iter().all(|l| valid_label(l)) || d.parse::<IpAddr>().is_ok() {
        bail!("{s:?} is not a domain name");
    }
    Ok(d)
}

fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse_deny(s: &str) -> Result<DenyRule> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(DenyRule::Ip(ip));
    }
    if s.contains('/') {
        // A deny entry with host bits set is still meant as that network.
        let net: IpNet = s
            .parse()
            .map_err(|_| anyhow::anyhow!("{s:?} is not an IP, CIDR or domain"))?;
        return Ok(DenyRule::Cidr(net.trunc()));
    }
    parse_domain(s)
        .map(DenyRule::Domain)
        .map_err(|_| anyhow::anyhow!("{s:?} is not an IP, CIDR or domain"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
tenant_id = "11111111-1111-1111-1111-111111111111"
[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000001"
type = "ip"
value = "192.0.2.10"
"#;

    fn err(text: &str) -> String {
        format!("{:#}", Config::parse(text, Path::new("t.toml")).unwrap_err())
    }

    fn default_rules(c: &Config) -> Result<ScanRules> {
        c.rules(EngineConfig::default(), EngineSource::Default)
    }

    /// An engine configuration as a DBA might leave the tables.
    fn database_engine() -> EngineConfig {
        EngineConfig::from_json(&serde_json::json!({
            "admin_ports": {"22": "ssh", "2375": "docker"},
            "profile_ports": {"baseline": [443, 80, 22], "lab": [9200, 8443]},
        }))
        .unwrap()
    }

    #[test]
    fn minimal_config_gets_baseline_defaults() {
        let c = Config::parse(MINIMAL, Path::new("t.toml")).unwrap();
        assert_eq!(c.scan_profile, "baseline");
        assert_eq!(c.ports, None);
        let rules = default_rules(&c).unwrap();
        // Every shipped admin port is a baseline port, so nothing is added.
        assert_eq!(rules.ports, EngineConfig::default().baseline_ports().to_vec());
        assert_eq!((rules.ports_from, rules.source), ("profile", EngineSource::Default));
        assert_eq!(c.max_targets, 256);
        assert_eq!(c.toolchain, ToolchainChoice::Auto);
        assert_eq!(c.assets[0].target, AssetTarget::Ip("192.0.2.10".parse().unwrap()));
    }

    #[test]
    fn the_example_file_is_valid() {
        let c = Config::parse(EXAMPLE, Path::new("example.toml")).unwrap();
        assert!(c.assets.len() >= 3);
        assert!(!c.deny.is_empty());
    }

    #[test]
    fn errors_name_the_field_on_one_line() {
        let cases = [
            (
                MINIMAL.replace("11111111-1111-1111-1111-111111111111", "tenant-1"),
                "tenant_id: invalid UUID \"tenant-1\"",
            ),
            (
                MINIMAL.replace("\"ip\"", "\"host\""),
                "assets[0]: type: must be ip, domain or cidr, got \"host\"",
            ),
            (
                MINIMAL.replace("192.0.2.10", "192.0.2.300"),
                "assets[0]: value: \"192.0.2.300\" is not an IP address",
            ),
            (
                MINIMAL
                    .replace("\"ip\"", "\"cidr\"")
                    .replace("192.0.2.10", "192.0.2.10/24"),
                "assets[0]: value: \"192.0.2.10/24\" has host bits set; did you mean 192.0.2.0/24?",
            ),
            (
                MINIMAL
                    .replace("\"ip\"", "\"domain\"")
                    .replace("192.0.2.10", "exa mple.com"),
                "assets[0]: value: \"exa mple.com\" is not a domain name",
            ),
            (format!("max_targets = 0\n{MINIMAL}"), "max_targets: must be at least 1"),
            (
                format!("deny = [\"10.0.0.0/33\"]\n{MINIMAL}"),
                "deny[0]: \"10.0.0.0/33\" is not an IP, CIDR or domain",
            ),
            (format!("ports = [443, 0]\n{MINIMAL}"), "ports: 0 is not a TCP port"),
            (format!("ports = []\n{MINIMAL}"), "ports: the port list is empty"),
            (
                format!("max_ports_per_host = 1\nports = [22, 443]\n{MINIMAL}"),
                "ports: 2 ports is more than max_ports_per_host = 1",
            ),
            (
                format!("dns_resolver = \"dns.google\"\n{MINIMAL}"),
                "dns_resolver: \"dns.google\" is not an ip or ip:port",
            ),
            (
                "tenant_id = \"11111111-1111-1111-1111-111111111111\"\n".to_string(),
                "assets: no assets configured; add [[assets]] entries",
            ),
        ];
        for (text, want) in cases {
            let got = err(&text);
            assert_eq!(got, want);
            assert!(!got.contains('\n'));
        }
    }

    #[test]
    fn the_profile_and_admin_ports_come_from_the_engine_configuration() {
        let c = Config::parse(&format!("scan_profile = \"lab\"\n{MINIMAL}"), Path::new("t.toml")).unwrap();
        let rules = c.rules(database_engine(), EngineSource::Database).unwrap();
        assert_eq!(rules.ports, vec![22, 2375, 8443, 9200]);
        assert_eq!((rules.ports_from, rules.source), ("profile", EngineSource::Database));
        assert_eq!(rules.engine, database_engine(), "symptoms follow the same rules");

        let c = Config::parse(MINIMAL, Path::new("t.toml")).unwrap();
        assert_eq!(
            c.rules(database_engine(), EngineSource::Database).unwrap().ports,
            vec![22, 80, 443, 2375]
        );
    }

    #[test]
    fn explicit_ports_win_over_any_engine_configuration() {
        let c = Config::parse(&format!("ports = [8443, 22, 8443]\n{MINIMAL}"), Path::new("t.toml")).unwrap();
        for (engine, source) in [
            (database_engine(), EngineSource::Database),
            (EngineConfig::default(), EngineSource::Default),
        ] {
            let rules = c.rules(engine, source).unwrap();
            assert_eq!((rules.ports, rules.ports_from), (vec![22, 8443], "file"), "{source}");
        }
    }

    #[test]
    fn rule_errors_name_the_field_and_the_configuration() {
        let lab = Config::parse(&format!("scan_profile = \"lab\"\n{MINIMAL}"), Path::new("t.toml")).unwrap();
        assert_eq!(
            format!("{:#}", default_rules(&lab).unwrap_err()),
            "scan_profile: unknown profile \"lab\" (known without a database, as shipped: baseline, fast_recheck, verify)"
        );
        let deep = Config::parse(&format!("scan_profile = \"deep\"\n{MINIMAL}"), Path::new("t.toml")).unwrap();
        assert_eq!(
            format!("{:#}", deep.rules(database_engine(), EngineSource::Database).unwrap_err()),
            "scan_profile: unknown profile \"deep\" (known in the database's xray.scan_profiles: baseline, lab)"
        );
        let small = Config::parse(
            &format!("scan_profile = \"lab\"\nmax_ports_per_host = 3\n{MINIMAL}"),
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(
            format!("{:#}", small.rules(database_engine(), EngineSource::Database).unwrap_err()),
            "max_ports_per_host: profile \"lab\" with the enabled admin ports (database engine configuration) is 4 ports, more than max_ports_per_host = 3"
        );
        let mut empty = database_engine();
        empty.admin_ports.clear();
        empty.profile_ports.insert("lab".into(), Vec::new());
        assert_eq!(
            format!("{:#}", lab.rules(empty, EngineSource::Database).unwrap_err()),
            "scan_profile: profile \"lab\" has no ports and no admin port is enabled (database engine configuration); set ports"
        );
    }

    #[test]
    fn toml_syntax_and_unknown_keys_report_a_line() {
        let got = err(&format!("{MINIMAL}\ntenent = 1\n"));
        assert!(
            got.starts_with("line 8: unknown field `tenent`, expected one of `id`, `type`, `value`, `tags`"),
            "{got}"
        );
        let got = err("tenant_id = \n");
        assert!(got.starts_with("line 1: "), "{got}");
        assert!(!got.contains('\n'));
        let got = err(&format!("{MINIMAL}\n[[assets]]\nid = \"aaaaaaaa-0000-4000-8000-000000000001\"\ntype = \"ip\"\nvalue = \"192.0.2.11\"\n"));
        assert_eq!(
            got,
            "assets[1].id: duplicate asset id aaaaaaaa-0000-4000-8000-000000000001"
        );
    }

    #[test]
    fn deny_entries_are_classified() {
        assert_eq!(
            parse_deny("192.0.2.1").unwrap(),
            DenyRule::Ip("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            parse_deny("10.1.2.3/8").unwrap(),
            DenyRule::Cidr("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            parse_deny("Corp.Example.com.").unwrap(),
            DenyRule::Domain("corp.example.com".into())
        );
        assert_eq!(parse_resolver("192.0.2.53").unwrap(), "192.0.2.53:53".parse().unwrap());
        assert_eq!(
            parse_resolver("[2001:db8::53]:5353").unwrap(),
            "[2001:db8::53]:5353".parse().unwrap()
        );
    }
}
