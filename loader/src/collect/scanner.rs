//! The scanner run of `collect`: which tool, its command line, its run under a timeout,
//! and its output converted to scanprint lines.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use nweb::bundle::{MASSCAN_JSON_PATH, NMAP_XML_PATH};
use nweb::scanprint::{self, Conversion, ScanprintContext};

use super::settings::Settings;
use crate::config::Config;
use crate::toolchain::runner::{self, CommandRunner, Invocation, Outcome, RunResult};

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
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Nmap => "nmap",
            Tool::Masscan => "masscan",
        }
    }

    /// The namespaces of docs/nweb.md §3: nmap data is nweb.io, masscan data masspull.org.
    pub(crate) fn default_namespace(self) -> &'static str {
        match self {
            Tool::Nmap => "nweb.io",
            Tool::Masscan => "masspull.org",
        }
    }

    pub(crate) fn raw_path(self) -> &'static str {
        match self {
            Tool::Nmap => NMAP_XML_PATH,
            Tool::Masscan => MASSCAN_JSON_PATH,
        }
    }
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
/// `max_rate`: a target spec's packets per second.
pub fn nmap_args(ports: &[u16], ips: &[IpAddr], max_rate: Option<u32>) -> Vec<String> {
    let mut args: Vec<String> = ["-sV", "-Pn", "-n", "--script", "ssl-cert", "-p"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(port_spec(ports));
    if let Some(r) = max_rate {
        args.extend(["--max-rate".to_string(), r.to_string()]);
    }
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What one scanner run gave.
pub(crate) struct ScanOutput {
    pub(crate) raw: Vec<u8>,
    pub(crate) conversion: Conversion,
    pub(crate) tool_version: String,
    pub(crate) started_at: u64,
    pub(crate) finished_at: u64,
}

pub(crate) async fn run_scan<R: CommandRunner>(
    runner: &R,
    s: &Settings,
    config: &Config,
    ips: &[IpAddr],
    scratch: &Path,
) -> Result<ScanOutput> {
    let version = tool_version(runner, s).await?;
    let masscan_file = scratch.join("masscan.json");
    // A spec's rate can only lower the collector's own.
    let masscan_rate = s.max_rate.map_or(config.limits.rate, |r| r.min(config.limits.rate));
    let args = match s.tool {
        Tool::Nmap => nmap_args(&s.ports, ips, s.max_rate),
        Tool::Masscan => masscan_args(&s.ports, masscan_rate, ips, &masscan_file),
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
            ctx.options = Some(format!("-p {} --rate {masscan_rate}", port_spec(&s.ports)));
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
            nmap_args(&[22, 443], &ips, None).join(" "),
            "-sV -Pn -n --script ssl-cert -p 22,443 -oX - 192.0.2.1"
        );
        let v6: Vec<IpAddr> = vec!["2001:db8::1".parse().unwrap()];
        assert!(nmap_args(&[22], &v6, None).contains(&"-6".to_string()));
        assert_eq!(
            masscan_args(&[80], 100, &ips, Path::new("/tmp/m.json")).join(" "),
            "-p 80 --rate 100 -oJ /tmp/m.json 192.0.2.1"
        );
    }
}
