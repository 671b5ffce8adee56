//! What `collect` decides before it scans, so that a mistake fails in a second: the
//! settings from the flags and the configuration, and the addresses to hand the scanner.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use xray_engine::EngineConfig;

use super::scanner::Tool;
use super::screenshot::{find_chromium, ShotSettings};
use super::work::Work;
use crate::commands::collect::CollectArgs;
use crate::config::{Config, EngineSource};
use crate::dns::{self, Dns};
use crate::scope::{self, ip_denied};
use crate::toolchain::runner;

/// Everything decided before the scan, so that a mistake fails in a second.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) tool: Tool,
    pub(crate) program: PathBuf,
    pub(crate) ports: Vec<u16>,
    pub(crate) vantage: String,
    pub(crate) namespace: String,
    pub(crate) notes: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) out: PathBuf,
    pub(crate) car: PathBuf,
    /// The spec's packets per second (`--max-rate` for nmap, a cap on masscan's rate).
    pub(crate) max_rate: Option<u32>,
    /// `None` with `--no-screenshots` or without a Chromium.
    pub(crate) screenshots: Option<ShotSettings>,
    pub(crate) target_spec_cid: Option<String>,
    pub(crate) profile: Option<&'static str>,
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

pub(crate) fn resolve_settings(args: &CollectArgs, config: &Config, work: Option<&Work>) -> Result<Settings> {
    // A spec chooses the tool by its profile and brings its own ports.
    let tool = match work.map(|w| w.spec.profile.tool) {
        Some(nweb::target_spec::ProfileTool::Nmap) => Tool::Nmap,
        Some(nweb::target_spec::ProfileTool::Masscan) => Tool::Masscan,
        None => args.tool,
    };
    // nweb bundles are public data judged by no tenant's engine, so the
    // shipped configuration gives the profile's ports, not a database's.
    let rules = config
        .rules(EngineConfig::default(), EngineSource::Default)
        .with_context(|| format!("config {}", config.path.display()))?;
    let ports = if let Some(w) = work {
        if w.spec.ports.len() > config.max_ports_per_host {
            bail!(
                "target spec {}: {} ports is more than max_ports_per_host = {} of {}",
                w.cid,
                w.spec.ports.len(),
                config.max_ports_per_host,
                config.path.display()
            );
        }
        w.spec.ports.clone()
    } else if args.ports.is_empty() {
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
        args.namespace.as_deref().unwrap_or(tool.default_namespace()),
    )?;
    let notes = args.notes.as_deref().map(|n| check_label("notes", n)).transpose()?;
    let timeout = match args.timeout {
        Some(0) => bail!("--timeout must be at least 1 second"),
        Some(s) => Duration::from_secs(s),
        None => config.timeouts.of("nmap"),
    };
    let configured = match tool {
        Tool::Nmap => config.tools.nmap.clone(),
        Tool::Masscan => None,
    };
    let program = match args.tool_path.clone().or(configured) {
        Some(p) if runner::is_executable(&p) => p,
        Some(p) => bail!("{} {} is not an executable file", tool.name(), p.display()),
        None => runner::find_on_path(tool.name()).ok_or_else(|| {
            anyhow!(
                "{} is not installed (not on PATH); install the Debian package {} or pass --tool-path",
                tool.name(),
                tool.name()
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
    let screenshots = if args.no_screenshots {
        None
    } else {
        if args.screenshot_timeout == 0 {
            bail!("--screenshot-timeout must be at least 1 second");
        }
        match find_chromium(args.chromium.as_deref()) {
            Some(p) if runner::is_executable(&p) => Some(ShotSettings {
                chromium: p,
                timeout: Duration::from_secs(args.screenshot_timeout),
                max_bytes: args.screenshot_max_bytes,
            }),
            Some(p) => bail!("--chromium {} is not an executable file", p.display()),
            None => {
                tracing::warn!("no chromium found (install the Debian package chromium or pass --chromium); no screenshots");
                None
            }
        }
    };
    Ok(Settings {
        tool,
        program,
        ports,
        vantage,
        namespace,
        notes,
        timeout,
        out,
        car,
        max_rate: work.map(|w| w.spec.packets_per_second),
        screenshots,
        target_spec_cid: work.map(|w| w.cid.clone()),
        profile: work.map(|w| w.spec.profile.name),
    })
}

/// The addresses to hand the scanner: the plan's IPs plus the resolved addresses of its
/// domains, minus everything on the deny list.
pub(crate) async fn target_addresses(config: &Config, plan: &scope::Plan) -> Result<Vec<IpAddr>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
