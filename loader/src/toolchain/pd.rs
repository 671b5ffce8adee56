//! The ProjectDiscovery chain: naabu finds open ports, httpx and tlsx probe
//! them, nuclei runs on the HTTP roots that answered. Each stage runs once
//! over every endpoint of the scan, as the tools are built to be used, and
//! the answers are mapped back to endpoints by the address they came from.
//!
//! Targets go to every tool on stdin and the tools print JSON on stdout; the
//! parsers in `xray_parsers` read it. The flags, and why each is there
//! (tested with naabu 2.6.1, httpx 1.10.0, tlsx 1.2.2, nuclei 3.11.1; see
//! docs/toolchain.md):
//! - every tool: `-duc` (no update check), `-silent -no-color`, JSON out,
//!   and a private working directory (httpx 1.9+ looks for a page-classifier
//!   `model.json` there and would download one from the internet otherwise;
//!   an empty one makes it skip the classifier);
//! - naabu: the addresses, never names; `-Pn` (no host discovery, so "no
//!   open port" means the ports were probed), `-s c` (connect scan, the same
//!   with or without root), `-iv 4,6` (naabu skips IPv6 addresses silently
//!   unless told), `-p` the scan's ports, `-rate`, `-c`;
//! - httpx and tlsx connect to `ip:port`, never to a name they would resolve
//!   again (to any address of it); a domain endpoint's name goes along as SNI
//!   (`-sni`) and Host (httpx's `name,ip:port` input). SNI is a flag per run,
//!   so endpoints are run in groups, one per name, and all bare addresses in
//!   one group;
//! - httpx `-nf`: both schemes on every port. Without it httpx tries one
//!   scheme and the other only after an error, so a TLS port that answers
//!   plain HTTP with 400 is never fetched over HTTPS. `coverage.http_urls` are
//!   the roots that answered, nothing assumed;
//! - tlsx `-tps` (failed handshakes printed), `-ve` (versions), `-ce`
//!   (ciphers, `tools.tls_cipher_enum`), `-cert` (the PEM, from which the
//!   certificate is judged, as for nmap);
//! - nuclei on `scheme://ip:port/` with `-sni` and `-H Host:` for a domain,
//!   `-ni` (no interactsh), `-or`, `-nmhe` (no skipping of hosts after
//!   errors) and `-ms` (a record for every template run, matched or not): a
//!   URL without any record was not scanned and is reported as a nuclei
//!   failure of its endpoint, so its missing findings prove nothing.
//!
//! Answers are kept only for the address and port they were asked for; the
//! payload writes a domain endpoint's URLs with its name (the identities then
//! equal the nmap chain's) and keeps the address in `ip`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use futures::StreamExt;
use serde_json::json;
use xray_engine::canon::canonical_url_root;
use xray_engine::contract::{ErrorEntry, PortObservation};
use xray_parsers::{nuclei_hits, parse_httpx, parse_naabu, parse_nuclei, parse_tlsx};

use super::runner::{
    find_on_path, is_executable, parse_version, CommandRunner, Invocation, PrivateDir, RunResult,
};
use super::{now, EndpointResult, EndpointTarget, Observed, RunLimits, Scanned, Toolchain};
use crate::config::{Config, Timeouts, ToolPaths};

pub const TOOLS: [&str; 4] = ["naabu", "httpx", "tlsx", "nuclei"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdPaths {
    pub naabu: PathBuf,
    pub httpx: PathBuf,
    pub tlsx: PathBuf,
    pub nuclei: PathBuf,
}

impl PdPaths {
    /// Configured paths, else PATH. Names every tool that is missing.
    pub fn resolve(tools: &ToolPaths) -> Result<PdPaths> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (name, configured) in [
            ("naabu", &tools.naabu),
            ("httpx", &tools.httpx),
            ("tlsx", &tools.tlsx),
            ("nuclei", &tools.nuclei),
        ] {
            match configured {
                Some(p) if is_executable(p) => found.push(p.clone()),
                Some(p) => missing.push(format!("{name} ({} is not an executable file)", p.display())),
                None => match find_on_path(name) {
                    Some(p) => found.push(p),
                    None => missing.push(format!("{name} (not on PATH; set tools.{name})")),
                },
            }
        }
        if !missing.is_empty() {
            bail!("ProjectDiscovery tools not found: {}", missing.join(", "));
        }
        let [naabu, httpx, tlsx, nuclei]: [PathBuf; 4] =
            found.try_into().map_err(|_| anyhow::anyhow!("internal: tool list"))?;
        Ok(PdPaths {
            naabu,
            httpx,
            tlsx,
            nuclei,
        })
    }

    fn of(&self, tool: &str) -> &PathBuf {
        match tool {
            "naabu" => &self.naabu,
            "httpx" => &self.httpx,
            "tlsx" => &self.tlsx,
            _ => &self.nuclei,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PdSettings {
    pub rate: u32,
    pub concurrency: u32,
    pub timeouts: Timeouts,
    pub nuclei_templates: Vec<String>,
    pub nuclei_tags: Vec<String>,
    pub cipher_enum: bool,
    pub extra_args: BTreeMap<String, Vec<String>>,
}

impl PdSettings {
    pub fn from_config(c: &Config) -> PdSettings {
        PdSettings {
            rate: c.limits.rate,
            concurrency: c.limits.concurrency,
            timeouts: c.timeouts.clone(),
            nuclei_templates: c.tools.nuclei_templates.clone(),
            nuclei_tags: c.tools.nuclei_tags.clone(),
            cipher_enum: c.tools.tls_cipher_enum.unwrap_or(true),
            extra_args: c.tools.extra_args.clone(),
        }
    }
}

pub struct PdToolchain<R> {
    runner: R,
    paths: PdPaths,
    settings: PdSettings,
    /// The tools' working directory.
    work: PrivateDir,
}

fn same_ip(s: Option<&str>, ip: IpAddr) -> bool {
    s.is_some_and(|s| s.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|x| x == ip))
}

fn lines(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().map(|l| l + "\n").collect()
}

/// `url` with its host replaced by `host` (the endpoint's, as URLs write it).
fn with_host(url: &str, host: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    u.set_host(Some(host)).ok()?;
    Some(u.to_string())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A parse error says the tool's word cannot be trusted for the endpoints of
/// that run (docs/design.md D3, D19), so it travels with each of them.
fn parse_errors(errors: &[ErrorEntry]) -> impl Iterator<Item = &ErrorEntry> {
    errors.iter().filter(|e| e.kind.as_deref() == Some("parse_error"))
}

/// Endpoints with the same SNI/Host name (`None`: bare addresses), by index.
fn by_name<'a>(targets: &'a [EndpointTarget], idx: impl Iterator<Item = usize>) -> BTreeMap<Option<&'a str>, Vec<usize>> {
    let mut groups: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for i in idx {
        groups.entry(targets[i].domain.as_deref()).or_default().push(i);
    }
    groups
}

/// The ports naabu found open on target `i`.
fn open_ports(res: &EndpointResult) -> Vec<u16> {
    res.tcp.iter().filter(|o| o.state == "open").map(|o| o.port).collect()
}

impl<R: CommandRunner> PdToolchain<R> {
    pub fn new(runner: R, paths: PdPaths, settings: PdSettings) -> Result<Self> {
        let work = PrivateDir::create("xray-loader-pd")?;
        work.write("model.json", "")?;
        Ok(PdToolchain {
            runner,
            paths,
            settings,
            work,
        })
    }

    fn invocation(&self, tool: &'static str, mut args: Vec<String>, stdin: String) -> Invocation {
        if let Some(extra) = self.settings.extra_args.get(tool) {
            args.extend(extra.iter().cloned());
        }
        Invocation {
            tool,
            program: self.paths.of(tool).clone(),
            args,
            stdin,
            timeout: self.settings.timeouts.of(tool),
            cwd: Some(self.work.path.clone()),
        }
    }

    fn naabu(&self, ports: &[u16], ips: &BTreeSet<IpAddr>) -> Invocation {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let mut args = strings(&["-json", "-silent", "-no-color", "-duc", "-Pn", "-s", "c", "-iv", "4,6", "-p"]);
        args.extend([
            ports.join(","),
            "-rate".into(),
            self.settings.rate.to_string(),
            "-c".into(),
            self.settings.concurrency.to_string(),
        ]);
        self.invocation("naabu", args, lines(ips.iter().map(IpAddr::to_string)))
    }

    fn httpx(&self, name: Option<&str>, inputs: &[String]) -> Invocation {
        let mut args = strings(&[
            "-json", "-silent", "-no-color", "-duc", "-nf", "-irh", "-title", "-status-code", "-tech-detect",
        ]);
        args.extend([
            "-rl".into(),
            self.settings.rate.to_string(),
            "-t".into(),
            self.settings.concurrency.to_string(),
        ]);
        if let Some(d) = name {
            args.extend(["-sni".into(), d.to_string()]);
        }
        self.invocation("httpx", args, lines(inputs.iter().cloned()))
    }

    fn tlsx(&self, name: Option<&str>, inputs: &[String]) -> Invocation {
        let mut args = strings(&["-json", "-silent", "-no-color", "-duc", "-tps", "-ve", "-cert"]);
        if self.settings.cipher_enum {
            args.push("-ce".into());
        }
        args.extend(["-c".into(), self.settings.concurrency.to_string()]);
        if let Some(d) = name {
            args.extend(["-sni".into(), d.to_string()]);
        }
        self.invocation("tlsx", args, lines(inputs.iter().cloned()))
    }

    fn nuclei(&self, name: Option<&str>, urls: &[String]) -> Invocation {
        let mut args = strings(&["-jsonl", "-silent", "-no-color", "-duc", "-ni", "-or", "-nmhe", "-ms"]);
        args.extend([
            "-rl".into(),
            self.settings.rate.to_string(),
            "-c".into(),
            self.settings.concurrency.to_string(),
        ]);
        for t in &self.settings.nuclei_templates {
            args.extend(["-t".into(), t.clone()]);
        }
        if !self.settings.nuclei_tags.is_empty() {
            args.extend(["-tags".into(), self.settings.nuclei_tags.join(",")]);
        }
        if let Some(d) = name {
            args.extend(["-sni".into(), d.to_string(), "-H".into(), format!("Host: {d}")]);
        }
        self.invocation("nuclei", args, lines(urls.iter().cloned()))
    }

    /// Runs the invocations, at most `parallel` at a time, in order.
    async fn run_all(&self, invs: &[Invocation], parallel: usize) -> Vec<RunResult> {
        // Indices, not references: a closure over `&Invocation` is not
        // general enough for a `Send` future.
        futures::stream::iter(0..invs.len())
            .map(|i| self.runner.run(&invs[i]))
            .buffered(parallel.max(1))
            .collect()
            .await
    }

    /// naabu, one run per port list (in practice one per scan).
    async fn port_scan(&self, targets: &[EndpointTarget], res: &mut [EndpointResult], limits: &RunLimits) {
        let mut groups: BTreeMap<&[u16], Vec<usize>> = BTreeMap::new();
        for (i, t) in targets.iter().enumerate() {
            groups.entry(t.ports.as_slice()).or_default().push(i);
        }
        let groups: Vec<(&[u16], Vec<usize>)> = groups.into_iter().collect();
        let invs: Vec<Invocation> = groups
            .iter()
            .map(|(ports, idx)| self.naabu(ports, &idx.iter().map(|i| targets[*i].ip).collect()))
            .collect();
        let runs = self.run_all(&invs, limits.parallel).await;
        for (((ports, idx), inv), run) in groups.iter().zip(&invs).zip(&runs) {
            let failed = run.error(inv);
            let parsed = parse_naabu(&run.stdout);
            let mut by_ip: BTreeMap<IpAddr, Vec<PortObservation>> = BTreeMap::new();
            for hit in parsed.items {
                match hit.ip.as_deref().and_then(|s| s.trim_matches(['[', ']']).parse::<IpAddr>().ok()) {
                    Some(ip) => by_ip.entry(ip).or_default().push(hit.observation),
                    None => tracing::debug!(ip = ?hit.ip, "naabu result without a usable address ignored"),
                }
            }
            for &i in idx {
                let r = &mut res[i];
                match &failed {
                    Some(e) => r.errors.push(e.clone()),
                    None => {
                        r.coverage.tools.push("naabu".into());
                        r.coverage.tcp_ports = ports.to_vec();
                    }
                }
                r.errors.extend(parse_errors(&parsed.errors).cloned());
                let mut seen = BTreeSet::new();
                for o in by_ip.get(&targets[i].ip).into_iter().flatten() {
                    if seen.insert((o.protocol.clone(), o.port)) {
                        if o.protocol.as_deref() == Some("udp") {
                            r.udp.push(o.clone());
                        } else {
                            r.tcp.push(o.clone());
                        }
                    }
                }
                r.tcp.sort_by_key(|o| o.port);
            }
        }
    }

    /// httpx and tlsx on every open port, one pair of runs per name.
    async fn probe(&self, targets: &[EndpointTarget], res: &mut [EndpointResult], limits: &RunLimits) {
        let with_open = (0..targets.len()).filter(|i| !open_ports(&res[*i]).is_empty());
        let groups: Vec<(Option<&str>, Vec<usize>)> = by_name(targets, with_open).into_iter().collect();
        let mut invs = Vec::new();
        // Per group: httpx input line → (target, port).
        let mut inputs: Vec<BTreeMap<String, (usize, u16)>> = Vec::new();
        for (name, idx) in &groups {
            let mut httpx_in = BTreeMap::new();
            let mut tlsx_in = Vec::new();
            for &i in idx {
                for p in open_ports(&res[i]) {
                    let ip_port = targets[i].ip_port(p);
                    let line = match name {
                        Some(d) => format!("{d},{ip_port}"),
                        None => ip_port.clone(),
                    };
                    httpx_in.insert(line, (i, p));
                    tlsx_in.push(ip_port);
                }
            }
            invs.push(self.httpx(*name, &httpx_in.keys().cloned().collect::<Vec<_>>()));
            invs.push(self.tlsx(*name, &tlsx_in));
            inputs.push(httpx_in);
        }
        let runs = self.run_all(&invs, limits.parallel).await;
        for (g, (name, idx)) in groups.iter().enumerate() {
            let (hinv, hrun) = (&invs[2 * g], &runs[2 * g]);
            let (tinv, trun) = (&invs[2 * g + 1], &runs[2 * g + 1]);
            let find = |ip: Option<&str>, port: u16| {
                idx.iter()
                    .copied()
                    .find(|&i| same_ip(ip, targets[i].ip) && open_ports(&res[i]).contains(&port))
            };

            let tfailed = trun.error(tinv);
            let parsed = parse_tlsx(&trun.stdout);
            let mut tls_for: Vec<(usize, Observed<xray_engine::contract::TlsObservation>)> = Vec::new();
            let mut tls_errors: Vec<(usize, ErrorEntry)> = Vec::new();
            for tr in parsed.items {
                // tlsx sends the address as SNI when given none.
                let sni_ok = match name {
                    Some(d) => tr.observation.sni.as_deref() == Some(*d),
                    None => tr.observation.sni.as_deref().is_none_or(|s| s.parse::<IpAddr>().is_ok()),
                };
                if !sni_ok {
                    tracing::debug!(sni = ?tr.observation.sni, "tlsx answer for another name ignored");
                    continue;
                }
                let ip = tr.observation.ip.clone().or_else(|| tr.observation.host.clone());
                let Some(i) = find(ip.as_deref(), tr.observation.port) else {
                    tracing::debug!(?ip, port = tr.observation.port, "tlsx answer for an address not asked for ignored");
                    continue;
                };
                let mut o = Observed::new(tr.observation);
                o.obs.host = Some(targets[i].host());
                o.obs.ip = Some(targets[i].ip.to_string());
                o.extra.insert("raw".into(), json!({ "tlsx_json": tr.raw }));
                tls_for.push((i, o));
            }
            for e in parsed.errors {
                let d = e.details.as_ref();
                let host = d.and_then(|d| d.get("host")).and_then(|h| h.as_str()).map(String::from);
                let port = e.symptom_port();
                match port.and_then(|p| find(host.as_deref(), p)) {
                    Some(i) => tls_errors.push((i, e)),
                    // A parse error is about the run, not one address.
                    None if e.kind.as_deref() == Some("parse_error") => {
                        for &i in idx {
                            tls_errors.push((i, e.clone()));
                        }
                    }
                    None => {}
                }
            }

            let hfailed = hrun.error(hinv);
            let parsed = parse_httpx(&hrun.stdout);
            let mut http_for: Vec<(usize, Observed<xray_engine::contract::HttpObservation>)> = Vec::new();
            for h in parsed.items {
                // httpx echoes the input line, which names the endpoint and port.
                let input = h.input.as_deref().unwrap_or_default();
                let Some(&(i, port)) = inputs[g].get(input) else {
                    tracing::debug!(input, "httpx answer for an input not given ignored");
                    continue;
                };
                let addr = std::net::SocketAddr::new(targets[i].ip, port);
                let mut o = h.observation;
                // A TLS server's protocol error page for plain HTTP is no site.
                let tls_port = tls_for.iter().any(|(j, t)| *j == i && t.obs.handshake_on(addr.port()));
                if o.scheme.as_deref() == Some("http") && o.status_code == Some(400) && tls_port {
                    continue;
                }
                if let Some(u) = with_host(&o.url, &targets[i].url_host()) {
                    o.url = u;
                }
                o.host = Some(targets[i].host());
                o.ip = Some(targets[i].ip.to_string());
                o.port = Some(addr.port());
                http_for.push((i, Observed { obs: o, extra: h.extra }));
            }

            for &i in idx {
                let r = &mut res[i];
                match &tfailed {
                    Some(e) => r.errors.push(e.clone()),
                    None => {
                        r.coverage.tools.push("tlsx".into());
                        r.coverage.tls_ports = open_ports(r);
                    }
                }
                match &hfailed {
                    Some(e) => r.errors.push(e.clone()),
                    None => r.coverage.tools.push("httpx".into()),
                }
                r.errors.extend(parse_errors(&parsed.errors).cloned());
            }
            for (i, e) in tls_errors {
                res[i].errors.push(e);
            }
            for (i, o) in tls_for {
                res[i].tls.push(o);
            }
            for (i, o) in http_for {
                if hfailed.is_none() {
                    res[i].coverage.http_urls.extend(canonical_url_root(&o.obs.url));
                }
                res[i].http.push(o);
            }
        }
    }

    /// nuclei on the roots that answered HTTP, one run per name.
    async fn vuln_scan(&self, targets: &[EndpointTarget], res: &mut [EndpointResult], limits: &RunLimits) {
        // (target, URL nuclei is given, the same URL as the payload writes it)
        let mut urls: Vec<(usize, String, String)> = Vec::new();
        for (i, r) in res.iter().enumerate() {
            let mut seen = BTreeSet::new();
            for h in &r.http {
                let (Some(scheme), Some(port)) = (h.obs.scheme.as_deref(), h.obs.port) else { continue };
                if h.obs.status_code.is_none() || !seen.insert((scheme.to_string(), port)) {
                    continue;
                }
                let pinned = format!("{scheme}://{}/", targets[i].ip_port(port));
                let written = format!("{scheme}://{}/", targets[i].host_port(port));
                urls.push((i, pinned, canonical_url_root(&written).unwrap_or(written)));
            }
        }
        let groups: Vec<(Option<&str>, Vec<usize>)> =
            by_name(targets, urls.iter().map(|u| u.0).collect::<BTreeSet<_>>().into_iter())
                .into_iter()
                .collect();
        let invs: Vec<Invocation> = groups
            .iter()
            .map(|(name, idx)| {
                let given: Vec<String> = urls.iter().filter(|u| idx.contains(&u.0)).map(|u| u.1.clone()).collect();
                self.nuclei(*name, &given)
            })
            .collect();
        let runs = self.run_all(&invs, limits.parallel).await;
        for (((_, idx), inv), run) in groups.iter().zip(&invs).zip(&runs) {
            let failed = run.error(inv);
            let parsed = parse_nuclei(&run.stdout);
            let hits = nuclei_hits(&run.stdout);
            for &i in idx {
                let r = &mut res[i];
                match &failed {
                    Some(e) => r.errors.push(e.clone()),
                    None => r.coverage.tools.push("nuclei".into()),
                }
                r.errors.extend(parse_errors(&parsed.errors).cloned());
            }
            for f in parsed.items {
                let i = idx.iter().copied().find(|&i| {
                    same_ip(f.ip.as_deref(), targets[i].ip)
                        && urls.iter().any(|u| u.0 == i && url_port(&u.1) == f.port)
                });
                let Some(i) = i else {
                    tracing::debug!(ip = ?f.ip, url = %f.matched_at, "nuclei finding for an address not asked for ignored");
                    continue;
                };
                let mut f = f;
                if let Some(u) = with_host(&f.matched_at, &targets[i].url_host()) {
                    f.matched_at = u;
                }
                f.host = Some(targets[i].host());
                res[i].nuclei.push(f);
            }
            if failed.is_some() {
                continue;
            }
            for (i, pinned, written) in urls.iter().filter(|u| idx.contains(&u.0)) {
                let ran = hits
                    .iter()
                    .any(|h| same_ip(h.ip.as_deref(), targets[*i].ip) && h.port == url_port(pinned));
                if ran {
                    res[*i].coverage.nuclei_urls.push(written.clone());
                } else {
                    res[*i].errors.push(ErrorEntry {
                        scope: Some("tool".into()),
                        tool: Some("nuclei".into()),
                        message: Some(format!("nuclei ran no template on {pinned} (skipped after errors, or no template applies)")),
                        kind: Some("tool_exit".into()),
                        details: Some(json!({"url": written, "exit_code": 0})),
                    });
                }
            }
        }
    }
}

fn url_port(url: &str) -> Option<u16> {
    url::Url::parse(url).ok()?.port_or_known_default()
}

impl<R: CommandRunner> Toolchain for PdToolchain<R> {
    fn name(&self) -> &'static str {
        "projectdiscovery"
    }

    async fn tool_versions(&self) -> BTreeMap<String, Option<String>> {
        let mut out = BTreeMap::new();
        for tool in TOOLS {
            let inv = Invocation {
                tool,
                program: self.paths.of(tool).clone(),
                args: vec!["-version".into()],
                stdin: String::new(),
                timeout: Duration::from_secs(15),
                cwd: Some(self.work.path.clone()),
            };
            let run = self.runner.run(&inv).await;
            let v = parse_version(&format!("{}\n{}", run.stderr, run.stdout));
            if v.is_none() {
                tracing::warn!(tool, "could not read the tool version");
            }
            out.insert(tool.to_string(), v);
        }
        out
    }

    async fn scan(&self, targets: &[EndpointTarget], limits: &RunLimits) -> Vec<Option<Scanned>> {
        if std::time::Instant::now() >= limits.deadline {
            return vec![None; targets.len()];
        }
        let started = now();
        tracing::info!(endpoints = targets.len(), "projectdiscovery scan started");
        let mut res = vec![EndpointResult::default(); targets.len()];
        self.port_scan(targets, &mut res, limits).await;
        self.probe(targets, &mut res, limits).await;
        self.vuln_scan(targets, &mut res, limits).await;
        let finished = now();
        if let Some(pb) = &limits.progress {
            pb.inc(targets.len() as u64);
        }
        res.into_iter()
            .map(|mut result| {
                result.coverage.tools.sort();
                result.coverage.tools.dedup();
                Some(Scanned {
                    result,
                    started,
                    finished,
                })
            })
            .collect()
    }
}

#[cfg(test)]
pub mod testing {
    //! A runner that answers with recorded tool output instead of running tools.
    use std::sync::Mutex;

    use super::super::runner::{Outcome, RunResult};
    use super::*;

    /// Recorded stdout per tool and per SNI name of the run (`""`: none).
    #[derive(Default)]
    pub struct FixtureRunner {
        pub stdout: BTreeMap<(&'static str, String), String>,
        pub outcome: BTreeMap<&'static str, Outcome>,
        pub calls: Mutex<Vec<Invocation>>,
    }

    pub fn sni_of(inv: &Invocation) -> String {
        inv.args
            .iter()
            .position(|a| a == "-sni")
            .and_then(|i| inv.args.get(i + 1))
            .cloned()
            .unwrap_or_default()
    }

    impl FixtureRunner {
        pub fn fixture(path: &str) -> String {
            let p = format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
        }

        pub fn set(&mut self, tool: &'static str, sni: &str, stdout: String) {
            self.stdout.insert((tool, sni.to_string()), stdout);
        }

        /// The pinned tools' outputs for the demo services on 127.0.0.1 and
        /// watchtower.test (127.0.0.1 and 127.0.0.2), see
        /// fixtures/tool-output/README.md.
        pub fn demo() -> FixtureRunner {
            let mut r = FixtureRunner::default();
            let f = |p: &str| Self::fixture(&format!("tool-output/{p}"));
            r.set("naabu", "", f("naabu/v2.6.1_demo-services.jsonl"));
            for (name, file) in [("", "127.0.0.1"), (DEMO_DOMAIN, DEMO_DOMAIN)] {
                r.set("httpx", name, f(&format!("httpx/v1.10.0_demo-services_{file}.jsonl")));
                r.set("tlsx", name, f(&format!("tlsx/v1.2.2_demo-services_{file}.jsonl")));
                r.set("nuclei", name, f(&format!("nuclei/v3.11.1_demo-services_{file}.jsonl")));
            }
            r
        }
    }

    pub const DEMO_DOMAIN: &str = "watchtower.test";

    /// The endpoints of the demo: 127.0.0.1 as an IP asset, and the domain
    /// on both of its addresses.
    pub fn demo_targets() -> Vec<EndpointTarget> {
        let ports = vec![2222, 9200, 18443];
        vec![
            EndpointTarget {
                ip: "127.0.0.1".parse().unwrap(),
                domain: None,
                ports: ports.clone(),
            },
            EndpointTarget {
                ip: "127.0.0.1".parse().unwrap(),
                domain: Some(DEMO_DOMAIN.into()),
                ports: ports.clone(),
            },
            EndpointTarget {
                ip: "127.0.0.2".parse().unwrap(),
                domain: Some(DEMO_DOMAIN.into()),
                ports,
            },
        ]
    }

    impl CommandRunner for FixtureRunner {
        async fn run(&self, inv: &Invocation) -> RunResult {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(inv.clone());
            }
            if inv.args == ["-version"] {
                return RunResult {
                    outcome: Outcome::Exited(Some(0)),
                    stdout: String::new(),
                    stderr: "[INF] Current Version: v9.9.9\n".into(),
                };
            }
            if inv.args == ["--version"] {
                return RunResult {
                    outcome: Outcome::Exited(Some(0)),
                    stdout: "Nmap version 9.9.9 ( https://nmap.org )\n".into(),
                    stderr: String::new(),
                };
            }
            let key = (inv.tool, if inv.tool == "nmap" { String::new() } else { sni_of(inv) });
            RunResult {
                outcome: self.outcome.get(inv.tool).cloned().unwrap_or(Outcome::Exited(Some(0))),
                stdout: self.stdout.get(&key).cloned().unwrap_or_default(),
                stderr: String::new(),
            }
        }
    }

    pub fn settings() -> PdSettings {
        PdSettings {
            rate: 100,
            concurrency: 5,
            timeouts: Timeouts::default(),
            nuclei_templates: vec!["templates/nuclei".into()],
            nuclei_tags: vec![],
            cipher_enum: true,
            extra_args: BTreeMap::from([("naabu".to_string(), vec!["-retries".to_string(), "1".to_string()])]),
        }
    }

    pub fn paths() -> PdPaths {
        PdPaths {
            naabu: "naabu".into(),
            httpx: "httpx".into(),
            tlsx: "tlsx".into(),
            nuclei: "nuclei".into(),
        }
    }

    pub fn limits() -> RunLimits {
        RunLimits {
            parallel: 2,
            deadline: std::time::Instant::now() + Duration::from_secs(3600),
            progress: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::runner::Outcome;
    use super::testing::*;
    use super::*;

    async fn demo_scan(runner: FixtureRunner) -> (Vec<EndpointResult>, Vec<Invocation>) {
        let chain = PdToolchain::new(runner, paths(), settings()).unwrap();
        let out = chain.scan(&demo_targets(), &limits()).await;
        let calls = chain.runner.calls.lock().unwrap().clone();
        assert!(
            calls.iter().all(|c| c.cwd.as_ref().is_some_and(|d| d.join("model.json").is_file())),
            "every tool runs in the directory with the empty classifier model"
        );
        (out.into_iter().map(|s| s.unwrap().result).collect(), calls)
    }

    fn symptoms(r: &EndpointResult) -> Vec<(u16, &str)> {
        r.errors.iter().filter_map(|e| Some((e.symptom_port()?, e.symptom()?))).collect()
    }

    #[tokio::test]
    async fn each_stage_runs_once_per_name_over_pinned_addresses() {
        let (_, calls) = demo_scan(FixtureRunner::demo()).await;
        let tools: Vec<(&str, String)> = calls.iter().map(|c| (c.tool, sni_of(c))).collect();
        let d = DEMO_DOMAIN.to_string();
        assert_eq!(
            tools,
            vec![
                ("naabu", String::new()),
                ("httpx", String::new()),
                ("tlsx", String::new()),
                ("httpx", d.clone()),
                ("tlsx", d.clone()),
                ("nuclei", String::new()),
                ("nuclei", d.clone()),
            ]
        );
        let naabu = &calls[0];
        assert_eq!(naabu.stdin, "127.0.0.1\n127.0.0.2\n", "each address once, never a name");
        assert_eq!(
            naabu.args.join(" "),
            "-json -silent -no-color -duc -Pn -s c -iv 4,6 -p 2222,9200,18443 -rate 100 -c 5 -retries 1",
            "extra args come last"
        );
        assert_eq!(calls[1].stdin, "127.0.0.1:18443\n127.0.0.1:2222\n127.0.0.1:9200\n");
        assert_eq!(
            calls[3].stdin,
            "watchtower.test,127.0.0.1:18443\nwatchtower.test,127.0.0.1:2222\nwatchtower.test,127.0.0.1:9200\n\
             watchtower.test,127.0.0.2:18443\nwatchtower.test,127.0.0.2:2222\nwatchtower.test,127.0.0.2:9200\n"
        );
        for c in [&calls[1], &calls[3]] {
            assert!(c.args.contains(&"-nf".to_string()) && c.args.contains(&"-irh".to_string()));
        }
        assert_eq!(
            calls[4].stdin,
            "127.0.0.1:2222\n127.0.0.1:9200\n127.0.0.1:18443\n127.0.0.2:2222\n127.0.0.2:9200\n127.0.0.2:18443\n"
        );
        for a in ["-tps", "-ve", "-ce", "-cert", "-duc"] {
            assert!(calls[4].args.contains(&a.to_string()), "tlsx {a}");
        }
        assert_eq!(calls[5].stdin, "https://127.0.0.1:18443/\n");
        assert_eq!(calls[6].stdin, "https://127.0.0.1:18443/\nhttps://127.0.0.2:18443/\n");
        let nuclei = calls[6].args.join(" ");
        assert!(
            nuclei.starts_with("-jsonl -silent -no-color -duc -ni -or -nmhe -ms -rl 100 -c 5 -t templates/nuclei"),
            "{nuclei}"
        );
        assert!(nuclei.ends_with("-sni watchtower.test -H Host: watchtower.test"), "{nuclei}");
    }

    #[tokio::test]
    async fn recorded_outputs_become_one_result_per_endpoint() {
        let (r, _) = demo_scan(FixtureRunner::demo()).await;
        for (n, ep) in r.iter().enumerate() {
            let open: Vec<u16> = ep.tcp.iter().map(|o| o.port).collect();
            assert_eq!(open, vec![2222, 9200, 18443], "endpoint {n}");
            assert_eq!(ep.coverage.tools, vec!["httpx", "naabu", "nuclei", "tlsx"], "endpoint {n}");
            assert_eq!(ep.coverage.tcp_ports, vec![2222, 9200, 18443]);
            assert_eq!(ep.coverage.tls_ports, vec![2222, 9200, 18443]);
            // The handshake failures of 2222 and 9200 are symptom candidates.
            let mut s = symptoms(ep);
            s.sort();
            assert_eq!(s, vec![(2222, "tls_handshake_fail"), (9200, "tls_handshake_fail")], "endpoint {n}");
            assert_eq!(ep.errors.len(), 2, "no tool failed on endpoint {n}: {:?}", ep.errors);
            assert_eq!(ep.tls.len(), 1);
            let tls = &ep.tls[0].obs;
            assert_eq!(tls.port, 18443);
            assert_eq!(tls.tls_versions, vec!["TLS1.0", "TLS1.2"]);
            let cert = tls.certificate.as_ref().unwrap();
            assert_eq!(cert.sans, vec!["watchtower.test", "127.0.0.1"], "IP SANs kept");
            assert_eq!(cert.is_self_signed, Some(true));
            assert_eq!(cert.spki_sha256.as_deref().map(str::len), Some(64));
            assert!(ep.tls[0].extra["raw"]["tlsx_json"].get("certificate").is_none(), "PEM not kept");
            // Plain HTTP on the TLS port answers 400: a protocol error, no site.
            let http: Vec<(&str, Option<u16>)> = ep.http.iter().map(|h| (h.obs.url.as_str(), h.obs.status_code)).collect();
            let host = if n == 0 { "127.0.0.1" } else { DEMO_DOMAIN };
            assert_eq!(http, vec![(format!("https://{host}:18443/").as_str(), Some(200))], "endpoint {n}");
            assert_eq!(ep.coverage.http_urls, vec![format!("https://{host}:18443/")]);
            assert_eq!(ep.coverage.nuclei_urls, vec![format!("https://{host}:18443/")]);
            let ip = if n == 2 { "127.0.0.2" } else { "127.0.0.1" };
            assert_eq!(ep.http[0].obs.ip.as_deref(), Some(ip));
            let ids: Vec<&str> = ep.nuclei.iter().map(|f| f.template_id.as_str()).collect();
            assert_eq!(ids, vec!["watchtower-admin-panel"], "endpoint {n}");
            assert_eq!(ep.nuclei[0].matched_at, format!("https://{host}:18443/admin/"));
            assert_eq!(ep.nuclei[0].ip.as_deref(), Some(ip), "kept on the address nuclei hit");
        }
    }

    #[tokio::test]
    async fn a_failed_tool_is_an_error_and_not_coverage() {
        let mut runner = FixtureRunner::demo();
        runner.outcome.insert("tlsx", Outcome::TimedOut);
        runner.outcome.insert("nuclei", Outcome::Exited(Some(1)));
        let (r, _) = demo_scan(runner).await;
        for ep in &r {
            assert_eq!(ep.coverage.tools, vec!["httpx", "naabu"]);
            assert!(ep.coverage.tls_ports.is_empty() && ep.coverage.nuclei_urls.is_empty());
            let kinds: Vec<(&str, &str)> = ep
                .errors
                .iter()
                .filter(|e| e.symptom().is_none())
                .map(|e| (e.tool.as_deref().unwrap_or(""), e.kind.as_deref().unwrap_or("")))
                .collect();
            assert_eq!(kinds, vec![("tlsx", "timeout"), ("nuclei", "tool_exit")]);
            // What the tools printed before failing is kept.
            assert_eq!(ep.tls.len(), 1);
            assert_eq!(ep.nuclei.len(), 1);
        }
    }

    #[tokio::test]
    async fn a_url_nuclei_did_not_scan_is_a_nuclei_failure_of_its_endpoint() {
        let mut runner = FixtureRunner::demo();
        // As if nuclei had skipped 127.0.0.2 after errors: no record for it.
        let text = FixtureRunner::fixture(&format!("tool-output/nuclei/v3.11.1_demo-services_{DEMO_DOMAIN}.jsonl"));
        let kept: String = text.lines().filter(|l| !l.contains("127.0.0.2")).map(|l| format!("{l}\n")).collect();
        runner.set("nuclei", DEMO_DOMAIN, kept);
        let (r, _) = demo_scan(runner).await;
        assert_eq!(r[1].coverage.nuclei_urls, vec!["https://watchtower.test:18443/"]);
        let skipped = &r[2];
        assert!(skipped.coverage.nuclei_urls.is_empty() && skipped.nuclei.is_empty());
        let e: Vec<&str> = skipped
            .errors
            .iter()
            .filter(|e| e.tool.as_deref() == Some("nuclei"))
            .filter_map(|e| e.message.as_deref())
            .collect();
        assert_eq!(
            e,
            vec!["nuclei ran no template on https://127.0.0.2:18443/ (skipped after errors, or no template applies)"]
        );
    }

    #[tokio::test]
    async fn answers_for_addresses_or_names_not_asked_for_are_dropped() {
        let mut runner = FixtureRunner::demo();
        // The bare-address runs print the domain group's answers too.
        for tool in ["httpx", "tlsx", "nuclei"] {
            let dom = runner.stdout[&(tool, DEMO_DOMAIN.to_string())].clone();
            runner.stdout.get_mut(&(tool, String::new())).unwrap().push_str(&dom);
        }
        let (r, _) = demo_scan(runner).await;
        assert_eq!(r[0].http.len(), 1, "{:?}", r[0].http);
        assert_eq!(r[0].tls.len(), 1);
        // nuclei cannot tell the groups apart by its output; the address can.
        assert!(r[0].nuclei.iter().all(|f| f.ip.as_deref() == Some("127.0.0.1")));
    }

    #[tokio::test]
    async fn no_open_ports_stops_after_naabu() {
        let mut runner = FixtureRunner::demo();
        runner.set("naabu", "", String::new());
        let (r, calls) = demo_scan(runner).await;
        assert!(r.iter().all(|ep| ep.tcp.is_empty() && ep.http.is_empty()));
        assert!(r.iter().all(|ep| ep.coverage.tools == vec!["naabu"]));
        assert_eq!(calls.len(), 1);
    }

    #[tokio::test]
    async fn garbage_in_tool_output_is_a_parse_error_on_the_endpoints_of_the_run() {
        let mut runner = FixtureRunner::demo();
        let naabu = FixtureRunner::fixture("tool-output/naabu/v2.6.1_demo-services.jsonl");
        runner.set(
            "naabu",
            "",
            format!("{{\"ip\":\"127.0.0.1\",\"port\":\n{naabu}{{\"ip\":\"192.0.2.1\",\"port\":3389}}\n"),
        );
        let (r, _) = demo_scan(runner).await;
        for ep in &r {
            assert_eq!(ep.tcp.len(), 3, "other addresses ignored, good lines kept");
            let parse: Vec<&str> = ep
                .errors
                .iter()
                .filter(|e| e.kind.as_deref() == Some("parse_error"))
                .filter_map(|e| e.message.as_deref())
                .collect();
            assert_eq!(parse.len(), 1);
            assert!(parse[0].starts_with("line 1: invalid JSON"), "{parse:?}");
        }
    }

    #[tokio::test]
    async fn a_passed_deadline_scans_nothing() {
        let chain = PdToolchain::new(FixtureRunner::demo(), paths(), settings()).unwrap();
        let mut l = limits();
        l.deadline = std::time::Instant::now();
        let out = chain.scan(&demo_targets(), &l).await;
        assert!(out.iter().all(Option::is_none));
        assert!(chain.runner.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn missing_tools_are_named() {
        let tools = ToolPaths {
            naabu: Some("/nonexistent/naabu".into()),
            ..Default::default()
        };
        let err = PdPaths::resolve(&tools).unwrap_err().to_string();
        assert!(
            err.starts_with("ProjectDiscovery tools not found: naabu (/nonexistent/naabu is not an executable file)"),
            "{err}"
        );
        let _ = json!(null);
    }
}
