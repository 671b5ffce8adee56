//! The nmap chain: one `nmap -sV` run per endpoint with the scripts
//! `ssl-cert`, `ssl-enum-ciphers`, `http-headers`, `http-title` and our
//! `xray-http-status` (`loader/nse/xray-http-status.nse`: the status line of
//! the request `http-headers` makes, which `http-headers` does not print).
//!
//! nmap writes XML on stdout (`-oX -`); `xray_parsers::nmap` maps it onto
//! the docs/contract.md §P-6 shapes with `tool: "nmap"`. Flags:
//! - `-n`: no reverse DNS, so nmap contacts nothing but the target;
//! - `-Pn`: no host discovery (a host that drops pings is still scanned);
//! - `-sT`: connect scan, the same with or without root;
//! - `--max-rate` = `limits.rate` packets per second;
//! - `--script-timeout` = a third of `timeouts.nmap` (at least 30 s), so one
//!   hung script loses its own result, not the whole run;
//! - `--script-args tls.servername=D,http.host=D` for a domain endpoint (SNI
//!   and Host header), the address otherwise;
//! - `tools.extra_args.nmap` (e.g. `["--version-intensity", "2"]`) before
//!   the target, which is always the address and comes last.
//!
//! Coverage (docs/design.md D3) is declared only for a run that exited 0, whose XML
//! says it finished (`exit="success"`) and reports the endpoint's address,
//! without parse errors: `tools = ["nmap"]`, `tcp_ports` = every port passed
//! with `-p`, `tls_ports` = ports where `ssl-cert` and `ssl-enum-ciphers`
//! both printed, `http_urls` = URL roots where `http-headers` printed. A
//! failed run keeps what it printed as observations, with a tool error, and
//! proves nothing absent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use xray_engine::contract::ErrorEntry;
use xray_parsers::nmap::{parse_nmap, HTTP_HEADERS, HTTP_TITLE, SSL_CERT, SSL_ENUM_CIPHERS};

use futures::StreamExt;

use super::runner::{find_on_path, is_executable, parse_version, CommandRunner, Invocation, PrivateDir};
use super::{now, EndpointResult, EndpointTarget, Observed, RunLimits, Scanned, Toolchain};
use crate::config::{Config, ToolPaths};

/// The status-line script, shipped inside the binary.
pub const HTTP_STATUS_NSE: &str = include_str!("../../nse/xray-http-status.nse");

/// The nmap binary: `tools.nmap`, else `nmap` on PATH.
pub fn resolve_nmap(tools: &ToolPaths) -> Result<PathBuf> {
    match &tools.nmap {
        Some(p) if is_executable(p) => Ok(p.clone()),
        Some(p) => bail!("nmap not found: {} is not an executable file", p.display()),
        None => {
            find_on_path("nmap").ok_or_else(|| anyhow!("nmap not found: not on PATH; install nmap or set tools.nmap"))
        }
    }
}

#[derive(Debug, Clone)]
pub struct NmapSettings {
    pub rate: u32,
    pub timeout: Duration,
    pub extra_args: Vec<String>,
}

impl NmapSettings {
    pub fn from_config(c: &Config) -> NmapSettings {
        NmapSettings {
            rate: c.limits.rate,
            timeout: c.timeouts.of("nmap"),
            extra_args: c.tools.extra_args.get("nmap").cloned().unwrap_or_default(),
        }
    }
}

pub struct NmapToolchain<R> {
    runner: R,
    nmap: PathBuf,
    /// `--script` entry of the status script: a path, or a name in tests.
    status_script: String,
    /// Holds the status script for as long as the chain lives.
    _scripts: Option<PrivateDir>,
    settings: NmapSettings,
}

impl<R: CommandRunner> NmapToolchain<R> {
    /// Writes the NSE script to a private temporary directory.
    pub fn new(runner: R, nmap: PathBuf, settings: NmapSettings) -> Result<Self> {
        let dir = PrivateDir::create("xray-loader-nse").context("nmap toolchain")?;
        let script = dir.write("xray-http-status.nse", HTTP_STATUS_NSE)?;
        Ok(NmapToolchain {
            runner,
            nmap,
            status_script: script.display().to_string(),
            _scripts: Some(dir),
            settings,
        })
    }

    #[cfg(test)]
    fn without_script_dir(runner: R, nmap: PathBuf, settings: NmapSettings) -> Self {
        NmapToolchain {
            runner,
            nmap,
            status_script: xray_parsers::nmap::HTTP_STATUS.into(),
            _scripts: None,
            settings,
        }
    }

    pub fn invocation(&self, t: &EndpointTarget) -> Invocation {
        let ports: Vec<String> = t.ports.iter().map(u16::to_string).collect();
        let scripts = [
            SSL_CERT,
            SSL_ENUM_CIPHERS,
            HTTP_HEADERS,
            HTTP_TITLE,
            self.status_script.as_str(),
        ]
        .join(",");
        let script_timeout = (self.settings.timeout.as_secs() / 3).max(30);
        let mut args: Vec<String> = ["-oX", "-", "-n", "-Pn", "-sT", "-sV", "--noninteractive", "--script"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend([
            scripts,
            "-p".into(),
            ports.join(","),
            "--max-rate".into(),
            self.settings.rate.to_string(),
            "--script-timeout".into(),
            format!("{script_timeout}s"),
        ]);
        if let Some(d) = &t.domain {
            args.extend(["--script-args".into(), format!("tls.servername={d},http.host={d}")]);
        }
        if t.ip.is_ipv6() {
            args.push("-6".into());
        }
        args.extend(self.settings.extra_args.iter().cloned());
        // The address, never the name: nmap would resolve it again, possibly
        // to an address outside the scope check.
        args.push(t.ip.to_string());
        Invocation {
            tool: "nmap",
            program: self.nmap.clone(),
            args,
            stdin: String::new(),
            timeout: self.settings.timeout,
            cwd: None,
        }
    }
}

fn nmap_error(kind: &str, message: String, details: serde_json::Value) -> ErrorEntry {
    ErrorEntry {
        scope: Some("tool".into()),
        tool: Some("nmap".into()),
        message: Some(message),
        kind: Some(kind.into()),
        details: Some(details),
    }
}

impl<R: CommandRunner> Toolchain for NmapToolchain<R> {
    fn name(&self) -> &'static str {
        "nmap"
    }

    async fn tool_versions(&self) -> BTreeMap<String, Option<String>> {
        let inv = Invocation {
            tool: "nmap",
            program: self.nmap.clone(),
            args: vec!["--version".into()],
            stdin: String::new(),
            timeout: Duration::from_secs(15),
            cwd: None,
        };
        let run = self.runner.run(&inv).await;
        let v = parse_version(&format!("{}\n{}", run.stdout, run.stderr));
        if v.is_none() {
            tracing::warn!(tool = "nmap", "could not read the tool version");
        }
        BTreeMap::from([("nmap".to_string(), v)])
    }

    /// nmap takes its SNI and Host per run, so each endpoint gets its own.
    async fn scan(&self, targets: &[EndpointTarget], limits: &RunLimits) -> Vec<Option<Scanned>> {
        // Indices, not references: a closure over `&EndpointTarget` is not
        // general enough for a `Send` future.
        futures::stream::iter(0..targets.len())
            .map(|i| async move {
                let t = &targets[i];
                if std::time::Instant::now() >= limits.deadline {
                    return None;
                }
                let started = now();
                tracing::info!(ip = %t.ip, domain = ?t.domain, "endpoint scan started");
                let result = self.scan_endpoint(t).await;
                if let Some(pb) = &limits.progress {
                    pb.inc(1);
                }
                Some(Scanned {
                    result,
                    started,
                    finished: now(),
                })
            })
            .buffered(limits.parallel)
            .collect()
            .await
    }
}

impl<R: CommandRunner> NmapToolchain<R> {
    async fn scan_endpoint(&self, t: &EndpointTarget) -> EndpointResult {
        let mut res = EndpointResult::default();
        let inv = self.invocation(t);
        let run = self.runner.run(&inv).await;
        let mut trusted = match run.error(&inv) {
            Some(e) => {
                res.errors.push(e);
                false
            }
            None => true,
        };
        if run.stdout.trim().is_empty() {
            if trusted {
                res.errors.push(nmap_error(
                    "parse_error",
                    "nmap exited 0 but printed no XML".into(),
                    json!({"stderr": super::runner::tail(&run.stderr, super::runner::STDERR_EXCERPT)}),
                ));
            }
            return res;
        }
        let parsed = parse_nmap(&run.stdout, t.ip, t.domain.as_deref());
        if !parsed.errors.is_empty() {
            // The tool's word on this endpoint cannot be trusted (docs/design.md D3).
            trusted = false;
            res.errors.extend(parsed.errors.iter().cloned());
        }
        if trusted && !parsed.completed() {
            trusted = false;
            let f = parsed.finished.as_ref();
            res.errors.push(match f.and_then(|f| f.exit.as_deref()) {
                Some(exit) => nmap_error(
                    "tool_exit",
                    format!(
                        "nmap finished with exit=\"{exit}\": {}",
                        f.and_then(|f| f.errormsg.as_deref()).unwrap_or("no message")
                    ),
                    json!({"exit_code": 0, "stderr": null}),
                ),
                None => nmap_error(
                    "parse_error",
                    "nmap exited 0 but its XML does not say the run finished".into(),
                    json!({"exit_code": 0}),
                ),
            });
        }
        if trusted && !parsed.host_reported {
            trusted = false;
            res.errors.push(nmap_error(
                "parse_error",
                format!("nmap reported no port results for {}", t.ip),
                json!({"exit_code": 0}),
            ));
        }
        res.tcp = parsed.tcp;
        res.udp = parsed.udp;
        res.nmap = parsed
            .findings
            .into_iter()
            .map(|r| Observed {
                obs: r.observation,
                extra: r.extra,
            })
            .collect();
        res.http = parsed
            .http
            .into_iter()
            .map(|r| Observed {
                obs: r.observation,
                extra: r.extra,
            })
            .collect();
        res.tls = parsed
            .tls
            .into_iter()
            .map(|r| Observed {
                obs: r.observation,
                extra: r.extra,
            })
            .collect();
        if trusted {
            res.coverage.tools = vec!["nmap".into()];
            res.coverage.tcp_ports = t.ports.clone();
            res.coverage.tls_ports = parsed.tls_ports;
            res.coverage.http_urls = parsed.http_urls;
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::pd::testing::FixtureRunner;
    use super::super::runner::Outcome;
    use super::*;

    fn settings() -> NmapSettings {
        NmapSettings {
            rate: 100,
            timeout: Duration::from_secs(600),
            extra_args: vec!["--version-intensity".into(), "2".into()],
        }
    }

    pub fn recorded() -> String {
        FixtureRunner::fixture("loader/nmap7.93_127.0.0.1_demo-services.xml")
    }

    fn runner(xml: String) -> FixtureRunner {
        let mut r = FixtureRunner::default();
        r.set("nmap", "", xml);
        r
    }

    fn target(domain: Option<&str>) -> EndpointTarget {
        EndpointTarget {
            ip: "127.0.0.1".parse().unwrap(),
            domain: domain.map(String::from),
            ports: vec![2222, 9200, 18443],
        }
    }

    fn chain(xml: String) -> NmapToolchain<FixtureRunner> {
        NmapToolchain::without_script_dir(runner(xml), "nmap".into(), settings())
    }

    #[tokio::test]
    async fn recorded_run_becomes_one_endpoint_result() {
        let c = chain(recorded());
        let r = c.scan_endpoint(&target(None)).await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let open: Vec<(u16, &str)> = r.tcp.iter().map(|o| (o.port, o.state.as_str())).collect();
        assert_eq!(open, vec![(2222, "open"), (9200, "open"), (18443, "open")]);
        assert!(r.tcp.iter().all(|p| p.tool.as_deref() == Some("nmap")));
        let services: Vec<(u16, Option<&str>, &serde_json::Value)> = r
            .nmap
            .iter()
            .map(|n| (n.obs.port, n.obs.service.as_deref(), &n.extra["service_method"]))
            .collect();
        assert_eq!(
            services,
            vec![
                (2222, Some("ssh"), &json!("probed")),
                (9200, Some("wap-wsp"), &json!("table")),
                (18443, Some("ssl/http"), &json!("probed"))
            ]
        );

        let tls = &r.tls[0].obs;
        assert_eq!((tls.port, tls.tool.as_deref()), (18443, Some("nmap")));
        assert_eq!(tls.tls_versions, vec!["TLS1.0", "TLS1.2"]);
        let cert = tls.certificate.as_ref().unwrap();
        assert_eq!(cert.subject_cn.as_deref(), Some("watchtower.test"));
        assert_eq!(cert.is_self_signed, Some(true));
        assert_eq!(cert.sans, vec!["watchtower.test", "127.0.0.1"]);
        assert!(cert.not_after.unwrap().to_string().ends_with('Z'));
        assert_eq!(cert.cert_sha256.as_deref().map(str::len), Some(64));
        assert_eq!(cert.spki_sha256.as_deref().map(str::len), Some(64));
        let cc = tls.cipher_classes.as_ref().unwrap();
        assert!(cc.insecure.is_empty(), "{cc:?}");

        let http = &r.http[0];
        assert_eq!(http.obs.url, "https://127.0.0.1:18443/");
        assert_eq!(http.obs.status_code, Some(200));
        assert_eq!(http.obs.title.as_deref(), Some("Watchtower demo"));
        let headers = http.obs.headers.as_ref().unwrap();
        assert!(headers.contains_key("server") && !headers.contains_key("x-frame-options"));
        assert_eq!(http.extra["request_type"], json!("HEAD"));

        assert_eq!(r.coverage.tools, vec!["nmap"]);
        assert_eq!(r.coverage.tcp_ports, vec![2222, 9200, 18443]);
        assert_eq!(r.coverage.tls_ports, vec![18443]);
        assert_eq!(r.coverage.http_urls, vec!["https://127.0.0.1:18443/"]);
    }

    #[tokio::test]
    async fn the_command_line() {
        let c = chain(recorded());
        let i = c.invocation(&target(Some("watchtower.test")));
        assert_eq!(
            i.args.join(" "),
            "-oX - -n -Pn -sT -sV --noninteractive --script ssl-cert,ssl-enum-ciphers,http-headers,http-title,xray-http-status \
             -p 2222,9200,18443 --max-rate 100 --script-timeout 200s \
             --script-args tls.servername=watchtower.test,http.host=watchtower.test --version-intensity 2 127.0.0.1"
        );
        assert_eq!(i.timeout, Duration::from_secs(600));
        let v6 = EndpointTarget {
            ip: "2001:db8::1".parse().unwrap(),
            domain: None,
            ports: vec![22],
        };
        let i = c.invocation(&v6);
        assert!(i.args.ends_with(&[
            "-6".into(),
            "--version-intensity".into(),
            "2".into(),
            "2001:db8::1".into()
        ]));
        assert!(!i.args.contains(&"--script-args".to_string()));
    }

    #[tokio::test]
    async fn the_script_dir_holds_the_status_script_and_is_removed() {
        let c = NmapToolchain::new(runner(String::new()), "nmap".into(), settings()).unwrap();
        let dir = c._scripts.as_ref().unwrap().path.clone();
        let script = std::fs::read_to_string(dir.join("xray-http-status.nse")).unwrap();
        assert!(script.contains("portrule = shortport.http"));
        assert!(c.invocation(&target(None)).args[8].ends_with("/xray-http-status.nse"));
        drop(c);
        assert!(!dir.exists());
    }

    #[tokio::test]
    async fn versions() {
        let v = chain(recorded()).tool_versions().await;
        assert_eq!(v["nmap"].as_deref(), Some("9.9.9"));
    }

    #[tokio::test]
    async fn a_failed_run_proves_nothing_but_keeps_what_it_saw() {
        for outcome in [Outcome::Exited(Some(1)), Outcome::TimedOut] {
            let mut r = runner(recorded());
            r.outcome.insert("nmap", outcome.clone());
            let c = NmapToolchain::without_script_dir(r, "nmap".into(), settings());
            let res = c.scan_endpoint(&target(None)).await;
            assert_eq!(res.errors.len(), 1, "{outcome:?}: {:?}", res.errors);
            assert_eq!(res.errors[0].tool.as_deref(), Some("nmap"));
            assert!(res.coverage.tools.is_empty() && res.coverage.tcp_ports.is_empty());
            assert!(res.coverage.tls_ports.is_empty() && res.coverage.http_urls.is_empty());
            assert_eq!(res.tcp.len(), 3, "observations are kept");
        }
    }

    #[tokio::test]
    async fn exit_0_is_not_enough() {
        let xml = recorded();
        // Cut before the run statistics: nmap was interrupted but exited 0.
        let cut = xml[..xml.find("<runstats>").unwrap()].to_string();
        let res = chain(cut).scan_endpoint(&target(None)).await;
        assert!(res.coverage.tools.is_empty());
        assert_eq!(
            res.errors[0].message.as_deref(),
            Some("nmap exited 0 but its XML does not say the run finished")
        );

        let other = xml.replace("addr=\"127.0.0.1\"", "addr=\"127.0.0.2\"");
        let res = chain(other).scan_endpoint(&target(None)).await;
        assert!(res.coverage.tools.is_empty() && res.tcp.is_empty());
        assert_eq!(
            res.errors[0].message.as_deref(),
            Some("nmap reported no port results for 127.0.0.1")
        );

        let res = chain(String::new()).scan_endpoint(&target(None)).await;
        assert_eq!(
            res.errors[0].message.as_deref(),
            Some("nmap exited 0 but printed no XML")
        );

        let broken = xml.replace("</ports>", "</prots>");
        let res = chain(broken).scan_endpoint(&target(None)).await;
        assert!(res.coverage.tools.is_empty());
        assert!(res.errors.iter().any(|e| e.kind.as_deref() == Some("parse_error")));
    }

    #[test]
    fn missing_nmap_is_named() {
        let tools = ToolPaths {
            nmap: Some("/nonexistent/nmap".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve_nmap(&tools).unwrap_err().to_string(),
            "nmap not found: /nonexistent/nmap is not an executable file"
        );
    }
}
