//! The ProjectDiscovery chain: naabu finds open ports, httpx and tlsx probe
//! them, nuclei runs on the HTTP roots that answered.
//!
//! Targets go to every tool on stdin and the tools print JSON on stdout; the
//! parsers in `xray_core::tools` read it. Requires naabu 2.x, httpx >= 1.3
//! (`-irh`), tlsx >= 1.0 (`-tps`) and nuclei 3.x (`-jsonl`, `-or`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use xray_core::canon::canonical_url_root;
use xray_core::contract::ErrorEntry;
use xray_core::tools::{parse_httpx, parse_naabu, parse_nuclei, parse_tlsx};

use super::runner::{find_on_path, is_executable, parse_version, CommandRunner, Invocation};
use super::{EndpointResult, EndpointTarget, Observed, Toolchain};
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
}

fn same_ip(s: Option<&str>, ip: IpAddr) -> Option<bool> {
    s.map(|s| s.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|x| x == ip))
}

impl<R: CommandRunner> PdToolchain<R> {
    pub fn new(runner: R, paths: PdPaths, settings: PdSettings) -> Self {
        PdToolchain {
            runner,
            paths,
            settings,
        }
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
        }
    }

    fn naabu(&self, t: &EndpointTarget) -> Invocation {
        let ports: Vec<String> = t.ports.iter().map(u16::to_string).collect();
        let args = vec![
            "-json".into(),
            "-silent".into(),
            "-no-color".into(),
            "-p".into(),
            ports.join(","),
            "-rate".into(),
            self.settings.rate.to_string(),
            "-c".into(),
            self.settings.concurrency.to_string(),
        ];
        // The address, never the name: naabu would resolve it again, possibly
        // to an address outside the scope check.
        self.invocation("naabu", args, format!("{}\n", t.ip))
    }

    fn httpx(&self, t: &EndpointTarget, open: &[u16]) -> Invocation {
        let args = [
            "-json",
            "-silent",
            "-no-color",
            "-irh",
            "-title",
            "-status-code",
            "-tech-detect",
            "-rl",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            self.settings.rate.to_string(),
            "-t".into(),
            self.settings.concurrency.to_string(),
        ])
        .collect();
        self.invocation("httpx", args, lines(open.iter().map(|p| t.host_port(*p))))
    }

    fn tlsx(&self, t: &EndpointTarget, open: &[u16]) -> Invocation {
        let mut args: Vec<String> = ["-json", "-silent", "-no-color", "-tps", "-ve"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if self.settings.cipher_enum {
            args.push("-ce".into());
        }
        args.extend(["-c".into(), self.settings.concurrency.to_string()]);
        if let Some(d) = &t.domain {
            args.extend(["-sni".into(), d.clone()]);
        }
        self.invocation("tlsx", args, lines(open.iter().map(|p| t.host_port(*p))))
    }

    fn nuclei(&self, urls: &[String]) -> Invocation {
        let mut args: Vec<String> = ["-jsonl", "-silent", "-no-color", "-duc", "-ni", "-or"]
            .iter()
            .map(|s| s.to_string())
            .collect();
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
        self.invocation("nuclei", args, lines(urls.iter().cloned()))
    }
}

fn lines(items: impl Iterator<Item = String>) -> String {
    items.map(|l| l + "\n").collect()
}

/// Tool errors are per endpoint; a parse error says the tool's word on this
/// endpoint cannot be trusted (design D3), so it travels with the endpoint.
fn only_parse_errors(errors: Vec<ErrorEntry>) -> impl Iterator<Item = ErrorEntry> {
    errors.into_iter().filter(|e| e.kind.as_deref() == Some("parse_error"))
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

    async fn scan_endpoint(&self, t: &EndpointTarget) -> EndpointResult {
        let mut res = EndpointResult::default();
        let mut ran: BTreeSet<&str> = BTreeSet::new();
        let host = t.host();

        let inv = self.naabu(t);
        let run = self.runner.run(&inv).await;
        match run.error(&inv) {
            Some(e) => res.errors.push(e),
            None => {
                ran.insert("naabu");
                res.coverage.tcp_ports = t.ports.clone();
            }
        }
        let parsed = parse_naabu(&run.stdout);
        res.errors.extend(only_parse_errors(parsed.errors));
        let mut seen = BTreeSet::new();
        for hit in parsed.items {
            if same_ip(hit.ip.as_deref(), t.ip) == Some(false) {
                tracing::debug!(ip = ?hit.ip, endpoint = %t.ip, "naabu result for another address ignored");
                continue;
            }
            let o = hit.observation;
            if seen.insert((o.protocol.clone(), o.port)) {
                if o.protocol.as_deref() == Some("udp") {
                    res.udp.push(o);
                } else {
                    res.tcp.push(o);
                }
            }
        }
        res.tcp.sort_by_key(|o| o.port);
        let open: Vec<u16> = res.tcp.iter().map(|o| o.port).collect();
        if open.is_empty() {
            res.coverage.tools = ran.iter().map(|s| s.to_string()).collect();
            return res;
        }

        let (hinv, tinv) = (self.httpx(t, &open), self.tlsx(t, &open));
        let (hrun, trun) = tokio::join!(self.runner.run(&hinv), self.runner.run(&tinv));

        match hrun.error(&hinv) {
            Some(e) => res.errors.push(e),
            None => {
                ran.insert("httpx");
                for p in &open {
                    let hp = t.host_port(*p);
                    for scheme in ["http", "https"] {
                        res.coverage
                            .http_urls
                            .extend(canonical_url_root(&format!("{scheme}://{hp}")));
                    }
                }
            }
        }
        let parsed = parse_httpx(&hrun.stdout);
        // Failed probes are the normal answer of a port that does not speak HTTP.
        res.errors.extend(only_parse_errors(parsed.errors));
        for h in parsed.items {
            if same_ip(h.observation.ip.as_deref(), t.ip) == Some(false) {
                tracing::debug!(ip = ?h.observation.ip, endpoint = %t.ip, url = %h.observation.url, "httpx answer from another address ignored");
                continue;
            }
            res.http.push(Observed {
                obs: h.observation,
                extra: h.extra,
            });
        }

        match trun.error(&tinv) {
            Some(e) => res.errors.push(e),
            None => {
                ran.insert("tlsx");
                res.coverage.tls_ports = open.clone();
            }
        }
        let parsed = parse_tlsx(&trun.stdout);
        // Handshake failures carry a symptom; the scan decides which to report.
        res.errors.extend(parsed.errors);
        for tr in parsed.items {
            if same_ip(tr.observation.ip.as_deref(), t.ip) == Some(false) {
                continue;
            }
            let mut o = Observed::new(tr.observation);
            o.extra.insert("raw".into(), serde_json::json!({ "tlsx_json": tr.raw }));
            res.tls.push(o);
        }

        let mut roots: Vec<String> = res.http.iter().filter_map(|h| canonical_url_root(&h.obs.url)).collect();
        roots.sort();
        roots.dedup();
        if !roots.is_empty() {
            let ninv = self.nuclei(&roots);
            let nrun = self.runner.run(&ninv).await;
            match nrun.error(&ninv) {
                Some(e) => res.errors.push(e),
                None => {
                    ran.insert("nuclei");
                    res.coverage.nuclei_urls = roots.clone();
                }
            }
            let parsed = parse_nuclei(&nrun.stdout);
            res.errors.extend(only_parse_errors(parsed.errors));
            for f in parsed.items {
                let ip_match = same_ip(f.ip.as_deref(), t.ip);
                if ip_match == Some(false) && f.host.as_deref() != Some(host.as_str()) {
                    continue;
                }
                res.nuclei.push(f);
            }
        }
        res.coverage.tools = ran.iter().map(|s| s.to_string()).collect();
        res
    }
}

#[cfg(test)]
pub mod testing {
    //! A runner that answers with recorded tool output instead of running tools.
    use std::sync::Mutex;

    use super::super::runner::{Outcome, RunResult};
    use super::*;

    #[derive(Default)]
    pub struct FixtureRunner {
        pub stdout: BTreeMap<&'static str, String>,
        pub outcome: BTreeMap<&'static str, Outcome>,
        pub calls: Mutex<Vec<Invocation>>,
    }

    impl FixtureRunner {
        pub fn fixture(path: &str) -> String {
            let p = format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
        }

        /// naabu, httpx, tlsx and nuclei outputs for 127.0.0.1 (see fixtures/loader/README.md).
        pub fn localhost() -> FixtureRunner {
            let mut r = FixtureRunner::default();
            r.stdout
                .insert("naabu", Self::fixture("loader/naabu_127.0.0.1.synthetic.jsonl"));
            r.stdout.insert(
                "httpx",
                Self::fixture("tool-output/httpx/nemo_go_test_md_httpx_2024-06-27.jsonl"),
            );
            r.stdout.insert(
                "tlsx",
                Self::fixture("tool-output/tlsx/httpx_embedded_tls_object_selfsigned_2024-06-27.RESERIALIZED.json")
                    + &Self::fixture("loader/tlsx_probe_failures_127.0.0.1.synthetic.jsonl"),
            );
            r.stdout.insert(
                "nuclei",
                Self::fixture("tool-output/nuclei/prismatic_api-findings.jsonl"),
            );
            r
        }
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
            RunResult {
                outcome: self.outcome.get(inv.tool).cloned().unwrap_or(Outcome::Exited(Some(0))),
                stdout: self.stdout.get(inv.tool).cloned().unwrap_or_default(),
                stderr: String::new(),
            }
        }
    }

    pub fn settings() -> PdSettings {
        PdSettings {
            rate: 100,
            concurrency: 5,
            timeouts: Timeouts::default(),
            nuclei_templates: vec!["http/exposed-panels/".into()],
            nuclei_tags: vec![],
            cipher_enum: true,
            extra_args: BTreeMap::from([("naabu".to_string(), vec!["-Pn".to_string()])]),
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
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::runner::Outcome;
    use super::testing::*;
    use super::*;

    fn localhost_target() -> EndpointTarget {
        EndpointTarget {
            ip: "127.0.0.1".parse().unwrap(),
            domain: None,
            ports: vec![22, 80, 443, 8443, 9200],
        }
    }

    #[tokio::test]
    async fn recorded_outputs_become_one_endpoint_result() {
        let chain = PdToolchain::new(FixtureRunner::localhost(), paths(), settings());
        let r = chain.scan_endpoint(&localhost_target()).await;
        let open: Vec<u16> = r.tcp.iter().map(|o| o.port).collect();
        assert_eq!(open, vec![22, 80, 443, 8443, 9200]);
        let http: Vec<(&str, Option<u16>)> = r.http.iter().map(|h| (h.obs.url.as_str(), h.obs.status_code)).collect();
        assert_eq!(
            http,
            vec![
                ("http://127.0.0.1:9200", Some(200)),
                ("http://127.0.0.1:80", Some(200)),
                ("https://127.0.0.1:443", Some(200))
            ]
        );
        assert_eq!(r.http[2].extra["response_time_ms"], json!(1413));
        assert_eq!(r.tls.len(), 1);
        assert_eq!(r.tls[0].obs.port, 443);
        assert_eq!(r.tls[0].extra["raw"]["tlsx_json"]["self_signed"], json!(true));
        assert_eq!(r.nuclei.len(), 1);
        assert_eq!(r.nuclei[0].template_id, "swagger-api");
        let symptoms: Vec<(u16, &str)> = r
            .errors
            .iter()
            .filter_map(|e| Some((e.symptom_port()?, e.symptom()?)))
            .collect();
        assert_eq!(
            symptoms,
            vec![
                (22, "tls_handshake_fail"),
                (80, "tls_handshake_fail"),
                (8443, "tls_handshake_fail"),
                (9200, "tls_handshake_fail")
            ]
        );
        assert_eq!(r.errors.len(), 4, "no tool failed: {:?}", r.errors);
        assert_eq!(r.coverage.tools, vec!["httpx", "naabu", "nuclei", "tlsx"]);
        assert_eq!(r.coverage.tcp_ports, vec![22, 80, 443, 8443, 9200]);
        assert_eq!(r.coverage.tls_ports, vec![22, 80, 443, 8443, 9200]);
        assert!(r.coverage.http_urls.contains(&"https://127.0.0.1/".to_string()));
        assert!(r.coverage.http_urls.contains(&"http://127.0.0.1:8443/".to_string()));
        assert_eq!(r.coverage.http_urls.len(), 10);
        assert_eq!(
            r.coverage.nuclei_urls,
            vec!["http://127.0.0.1/", "http://127.0.0.1:9200/", "https://127.0.0.1/"]
        );
    }

    #[tokio::test]
    async fn tools_get_targets_on_stdin_and_the_configured_flags() {
        let chain = PdToolchain::new(FixtureRunner::localhost(), paths(), settings());
        let _ = chain.scan_endpoint(&localhost_target()).await;
        let calls = chain.runner.calls.lock().unwrap().clone();
        let tools: Vec<&str> = calls.iter().map(|c| c.tool).collect();
        assert_eq!(tools, vec!["naabu", "httpx", "tlsx", "nuclei"]);
        assert_eq!(calls[0].stdin, "127.0.0.1\n");
        assert!(calls[0].args.join(" ").contains("-p 22,80,443,8443,9200"));
        assert_eq!(
            calls[0].args.last().map(String::as_str),
            Some("-Pn"),
            "extra args come last"
        );
        assert_eq!(
            calls[1].stdin,
            "127.0.0.1:22\n127.0.0.1:80\n127.0.0.1:443\n127.0.0.1:8443\n127.0.0.1:9200\n"
        );
        assert!(calls[1].args.contains(&"-irh".to_string()));
        assert!(calls[2].args.contains(&"-ce".to_string()) && calls[2].args.contains(&"-tps".to_string()));
        assert_eq!(
            calls[3].stdin,
            "http://127.0.0.1/\nhttp://127.0.0.1:9200/\nhttps://127.0.0.1/\n"
        );
        assert!(calls[3].args.join(" ").contains("-t http/exposed-panels/"));
        assert!(calls[3].args.contains(&"-ni".to_string()));
    }

    #[tokio::test]
    async fn a_domain_endpoint_probes_by_name_and_scans_the_address() {
        let chain = PdToolchain::new(FixtureRunner::localhost(), paths(), settings());
        let t = EndpointTarget {
            ip: "127.0.0.1".parse().unwrap(),
            domain: Some("localhost.example".into()),
            ports: vec![443],
        };
        let _ = chain.scan_endpoint(&t).await;
        let calls = chain.runner.calls.lock().unwrap().clone();
        assert_eq!(calls[0].stdin, "127.0.0.1\n");
        assert!(calls[1].stdin.contains("localhost.example:443\n"));
        assert!(calls[2].args.join(" ").contains("-sni localhost.example"));
    }

    #[tokio::test]
    async fn a_timed_out_tool_is_an_error_and_not_coverage() {
        let mut runner = FixtureRunner::localhost();
        runner.outcome.insert("tlsx", Outcome::TimedOut);
        runner.outcome.insert("nuclei", Outcome::Exited(Some(1)));
        let chain = PdToolchain::new(runner, paths(), settings());
        let r = chain.scan_endpoint(&localhost_target()).await;
        assert_eq!(r.coverage.tools, vec!["httpx", "naabu"]);
        assert!(r.coverage.tls_ports.is_empty() && r.coverage.nuclei_urls.is_empty());
        let kinds: Vec<(&str, &str)> = r
            .errors
            .iter()
            .filter(|e| e.symptom().is_none())
            .map(|e| (e.tool.as_deref().unwrap_or(""), e.kind.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(kinds, vec![("tlsx", "timeout"), ("nuclei", "tool_exit")]);
        // What the tools printed before failing is kept.
        assert_eq!(r.tls.len(), 1);
        assert_eq!(r.nuclei.len(), 1);
    }

    #[tokio::test]
    async fn no_open_ports_stops_after_naabu() {
        let mut runner = FixtureRunner::localhost();
        runner.stdout.insert("naabu", String::new());
        let chain = PdToolchain::new(runner, paths(), settings());
        let r = chain.scan_endpoint(&localhost_target()).await;
        assert!(r.tcp.is_empty() && r.http.is_empty());
        assert_eq!(r.coverage.tools, vec!["naabu"]);
        assert_eq!(chain.runner.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn garbage_in_tool_output_is_a_parse_error_on_the_endpoint() {
        let mut runner = FixtureRunner::localhost();
        let naabu = FixtureRunner::fixture("loader/naabu_127.0.0.1.synthetic.jsonl");
        runner.stdout.insert(
            "naabu",
            format!("{{\"ip\":\"127.0.0.1\",\"port\":\n{naabu}{{\"ip\":\"192.0.2.1\",\"port\":3389}}\n"),
        );
        let chain = PdToolchain::new(runner, paths(), settings());
        let r = chain.scan_endpoint(&localhost_target()).await;
        assert_eq!(r.tcp.len(), 5, "other addresses ignored, good lines kept");
        let parse: Vec<&str> = r
            .errors
            .iter()
            .filter(|e| e.kind.as_deref() == Some("parse_error"))
            .filter_map(|e| e.message.as_deref())
            .collect();
        assert_eq!(parse.len(), 1);
        assert!(parse[0].starts_with("line 1: invalid JSON"), "{parse:?}");
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
    }
}
