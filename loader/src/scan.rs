//! `xray-loader scan`: scope → DNS → the toolchain over all endpoints → symptoms and
//! coverage → a schema 1.2 payload (docs/contract.md §P-3, docs/design.md D3/D4).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use indicatif::ProgressBar;
use serde_json::{json, Value};
use uuid::Uuid;
use xray_engine::contract::{DnsEmail, ErrorEntry};
use xray_engine::ScanPayload;

use crate::config::{Config, ScanRules};
use crate::dns::{email_posture, Dns};
use crate::scope::{ip_denied, Plan};
use crate::symptoms::apply_symptoms;
use crate::toolchain::{now, EndpointResult, EndpointTarget, RunLimits, Scanned, Toolchain};

pub const SCHEMA_VERSION: &str = "1.2";
const ALL_TOOLS: [&str; 5] = ["naabu", "httpx", "tlsx", "nuclei", "nmap"];

fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// What an endpoint of the payload is made from.
#[derive(Debug, Clone)]
enum Slot {
    Scan {
        ip: IpAddr,
        domain: Option<String>,
    },
    /// A domain with no usable address: still carries its DNS email posture,
    /// with an explicit error instead of an IP (docs/contract.md §P-12).
    DomainOnly {
        domain: String,
        reason: String,
    },
}

struct AssetWork {
    index: usize,
    resolution: Option<Value>,
    slots: Vec<Slot>,
    email: Option<(DnsEmail, Vec<String>)>,
}

type Key = (IpAddr, Option<String>);

fn asset_error(asset_id: Uuid, kind: &str, message: String) -> ErrorEntry {
    ErrorEntry {
        scope: Some("asset".into()),
        tool: Some("dns".into()),
        message: Some(message),
        kind: Some(kind.into()),
        details: Some(json!({"asset_id": asset_id.to_string()})),
    }
}

/// Runs the scan and returns the validated payload.
pub async fn run<T, D>(
    config: &Config,
    rules: &ScanRules,
    plan: &Plan,
    chain: Arc<T>,
    dns: Arc<D>,
    progress: Option<ProgressBar>,
) -> Result<Value>
where
    T: Toolchain + 'static,
    D: Dns + 'static,
{
    let started_at = now();
    let clock = Instant::now();
    let scan_id = Uuid::new_v4();
    tracing::info!(
        %scan_id,
        toolchain = chain.name(),
        assets = plan.assets.len(),
        engine_config = %rules.source,
        ports = rules.ports.len(),
        ports_from = rules.ports_from,
        "scan started"
    );

    let mut tool_versions: BTreeMap<String, Option<String>> = ALL_TOOLS.iter().map(|t| (t.to_string(), None)).collect();
    tool_versions.extend(chain.tool_versions().await);

    let mut top_errors: Vec<ErrorEntry> = Vec::new();
    let mut works = Vec::new();
    for (index, pa) in plan.assets.iter().enumerate() {
        let Some(domain) = &pa.domain else {
            let slots = pa.ips.iter().map(|ip| Slot::Scan { ip: *ip, domain: None }).collect();
            works.push(AssetWork {
                index,
                resolution: None,
                slots,
                email: None,
            });
            continue;
        };
        let resolved = dns.addresses(domain, config.scan_ipv6).await;
        let resolution = json!({
            "resolved_at": now(),
            "dns": {"a": resolved.a, "aaaa": resolved.aaaa, "cname_chain": resolved.cname_chain, "errors": resolved.errors},
        });
        if !resolved.errors.is_empty() {
            // A partial answer could hide an address whose exposures would
            // then look fixed: the asset proves nothing this time.
            top_errors.push(asset_error(pa.asset.id, "dns_error", resolved.errors.join("; ")));
        }
        let mut ips: Vec<IpAddr> = resolved.a.clone();
        if config.scan_ipv6 {
            ips.extend(resolved.aaaa.iter().copied());
        }
        let (kept, denied): (Vec<IpAddr>, Vec<IpAddr>) = ips.iter().partition(|ip| !ip_denied(&config.deny, **ip));
        for ip in &denied {
            tracing::warn!(%domain, %ip, "resolved address is on the deny list; not scanned");
        }
        let slots = if kept.is_empty() {
            let reason = if !denied.is_empty() {
                format!("every address of {domain} is on the deny list")
            } else if !resolved.errors.is_empty() {
                format!("{domain} could not be resolved")
            } else {
                format!(
                    "{domain} has no A{} records",
                    if config.scan_ipv6 { "/AAAA" } else { "" }
                )
            };
            vec![Slot::DomainOnly {
                domain: domain.clone(),
                reason,
            }]
        } else {
            kept.into_iter()
                .map(|ip| Slot::Scan {
                    ip,
                    domain: Some(domain.clone()),
                })
                .collect()
        };
        let email = email_posture(&*dns, domain, &config.dkim_selectors).await;
        works.push(AssetWork {
            index,
            resolution: Some(resolution),
            slots,
            email: Some(email),
        });
    }

    let mut jobs: BTreeSet<Key> = BTreeSet::new();
    for w in &works {
        for s in &w.slots {
            if let Slot::Scan { ip, domain } = s {
                jobs.insert((*ip, domain.clone()));
            }
        }
    }
    let addresses: BTreeSet<IpAddr> = jobs.iter().map(|(ip, _)| *ip).collect();
    if addresses.len() as u64 > config.max_targets {
        bail!(
            "{} addresses to scan after DNS resolution, more than max_targets = {}",
            addresses.len(),
            config.max_targets
        );
    }

    if let Some(pb) = &progress {
        pb.set_length(jobs.len() as u64);
    }
    let targets: Vec<EndpointTarget> = jobs
        .iter()
        .map(|(ip, domain)| EndpointTarget {
            ip: *ip,
            domain: domain.clone(),
            ports: rules.ports.clone(),
        })
        .collect();
    let limits = RunLimits {
        parallel: config.limits.parallel_endpoints,
        deadline: clock + Duration::from_secs(config.timeouts.scan),
        progress: progress.clone(),
    };
    let scanned = chain.scan(&targets, &limits).await;
    if scanned.len() != targets.len() {
        bail!("internal error: {} results for {} endpoints", scanned.len(), targets.len());
    }
    let mut done: BTreeMap<Key, Scanned> = BTreeMap::new();
    let mut late: BTreeSet<Key> = BTreeSet::new();
    for (key, s) in jobs.into_iter().zip(scanned) {
        match s {
            Some(d) => {
                tracing::info!(ip = %key.0, open = d.result.tcp.len(), errors = d.result.errors.len(), "endpoint scanned");
                done.insert(key, d);
            }
            None => {
                late.insert(key);
            }
        }
    }
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }

    let mut asset_results = Vec::new();
    let mut summary = Summary::default();
    for w in works {
        let pa = &plan.assets[w.index];
        let mut endpoints = Vec::new();
        for (i, slot) in w.slots.iter().enumerate() {
            let (ip, domain, mut result, timings) = match slot {
                Slot::Scan { ip, domain } => {
                    let key = (*ip, domain.clone());
                    match done.get(&key) {
                        Some(d) => (
                            Some(*ip),
                            domain.clone(),
                            d.result.clone(),
                            Some(json!({"started_at": d.started, "finished_at": d.finished})),
                        ),
                        None => {
                            let mut r = EndpointResult::default();
                            let what = if late.contains(&key) {
                                "the scan deadline passed before this endpoint was scanned"
                            } else {
                                "this endpoint was not scanned"
                            };
                            r.errors.push(ErrorEntry {
                                scope: Some("endpoint".into()),
                                tool: None,
                                message: Some(what.into()),
                                kind: Some("timeout".into()),
                                details: Some(json!({"timeout_seconds": config.timeouts.scan})),
                            });
                            (Some(*ip), domain.clone(), r, None)
                        }
                    }
                }
                Slot::DomainOnly { domain, reason } => {
                    let mut r = EndpointResult::default();
                    r.errors.push(ErrorEntry {
                        scope: Some("endpoint".into()),
                        tool: Some("dns".into()),
                        message: Some(reason.clone()),
                        kind: Some("dns_error".into()),
                        details: None,
                    });
                    (None, Some(domain.clone()), r, None)
                }
            };
            apply_symptoms(&mut result, &rules.engine);
            let email = if i == 0 { w.email.as_ref() } else { None };
            if let Some((_, checks)) = email {
                result.coverage.dns_checks = checks.clone();
                if !checks.is_empty() {
                    result.coverage.tools.push("dns".into());
                }
            }
            normalise_coverage(&mut result.coverage);
            summary.add(&result);
            endpoints.push(endpoint_json(
                ip,
                domain.as_deref(),
                &result,
                email.map(|e| &e.0),
                timings,
            ));
        }
        let mut asset = json!({
            "asset": {
                "asset_id": pa.asset.id.to_string(),
                "asset_type": pa.asset.target.kind(),
                "asset_value": pa.asset.target.value(),
                "tags": pa.asset.tags,
                "canonical_host": pa.asset.target.value(),
            },
            "endpoints": endpoints,
        });
        if let Some(r) = w.resolution {
            asset["resolution"] = r;
        }
        asset_results.push(asset);
    }

    let finished_at = now();
    summary.errors += top_errors.len();
    let payload = json!({
        "schema_version": SCHEMA_VERSION,
        "scan": {
            "scan_id": scan_id.to_string(),
            "tenant_id": config.tenant_id.to_string(),
            "scan_kind": config.scan_kind,
            "scan_profile": config.scan_profile,
            "triggered_by_user_id": null,
            "requested_asset_ids": plan.assets.iter().map(|a| a.asset.id.to_string()).collect::<Vec<_>>(),
            "started_at": started_at,
            "finished_at": finished_at,
            "worker": {
                "worker_id": config.worker_id.clone().or_else(hostname).unwrap_or_else(|| "xray-loader".into()),
                "worker_version": concat!("xray-loader/", env!("CARGO_PKG_VERSION")),
                "host": hostname(),
                "ip": null,
                "toolchain": chain.name(),
            },
        },
        "tool_versions": tool_versions,
        "limits": {
            "max_targets": config.max_targets,
            "max_ports_per_host": config.max_ports_per_host,
            "timeout_seconds": config.timeouts.scan,
        },
        "asset_results": asset_results,
        "summary": {
            "targets_total": plan.target_count(),
            "endpoints_total": summary.endpoints,
            "ports_open_total": summary.ports_open,
            "http_services_total": summary.http,
            "tls_services_total": summary.tls,
            "nuclei_findings_total": summary.nuclei,
            "errors_total": summary.errors,
            "duration_ms": clock.elapsed().as_millis() as u64,
        },
        "artifacts": [],
        "errors": top_errors,
    });
    ScanPayload::from_value(&payload).map_err(|e| anyhow!("internal error: the built payload is invalid: {e}"))?;
    tracing::info!(%scan_id, endpoints = summary.endpoints, errors = summary.errors, "scan finished");
    Ok(payload)
}

/// Sorted, without duplicates: the same scan always gives the same payload.
fn normalise_coverage(c: &mut xray_engine::contract::Coverage) {
    for list in [&mut c.tools, &mut c.http_urls, &mut c.nuclei_urls, &mut c.dns_checks] {
        list.sort();
        list.dedup();
    }
    for list in [&mut c.tcp_ports, &mut c.tls_ports] {
        list.sort_unstable();
        list.dedup();
    }
}

#[derive(Default)]
struct Summary {
    endpoints: usize,
    ports_open: usize,
    http: usize,
    tls: usize,
    nuclei: usize,
    errors: usize,
}

impl Summary {
    fn add(&mut self, r: &EndpointResult) {
        self.endpoints += 1;
        self.ports_open += r.tcp.iter().chain(&r.udp).filter(|p| p.state == "open").count();
        self.http += r.http.len();
        self.tls += r.tls.len();
        self.nuclei += r.nuclei.len();
        self.errors += r.errors.len();
    }
}

fn endpoint_json(
    ip: Option<IpAddr>,
    domain: Option<&str>,
    r: &EndpointResult,
    email: Option<&DnsEmail>,
    timings: Option<Value>,
) -> Value {
    let endpoint_id = match (ip, domain) {
        (Some(ip), Some(d)) => format!("ip:{ip}|domain:{d}"),
        (Some(ip), None) => format!("ip:{ip}"),
        (None, Some(d)) => format!("domain:{d}"),
        (None, None) => "unknown".into(),
    };
    let observed_host = domain.map(str::to_string).or_else(|| ip.map(|i| i.to_string()));
    let mut ep = json!({
        "endpoint_id": endpoint_id,
        "ip": ip.map(|i| i.to_string()),
        "domain_context": domain,
        "observed_host": observed_host,
        "ports": {"tcp": r.tcp, "udp": r.udp},
        "http": r.http.iter().map(|h| h.to_value()).collect::<Vec<_>>(),
        "tls": r.tls.iter().map(|t| t.to_value()).collect::<Vec<_>>(),
        "findings": {"nuclei": r.nuclei, "nmap": r.nmap.iter().map(|n| n.to_value()).collect::<Vec<_>>()},
        "errors": r.errors,
        "coverage": r.coverage,
    });
    if let Some(e) = email {
        ep["dns_email"] = json!(e);
    }
    if let Some(t) = timings {
        ep["timings"] = t;
    }
    ep
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use xray_engine::EngineConfig;

    use super::*;
    use crate::config::EngineSource;
    use crate::dns::fake::FakeDns;
    use crate::dns::Resolved;
    use xray_parsers::email::Txt;
    use crate::scope;
    use crate::toolchain::pd::testing::{paths, settings, FixtureRunner, DEMO_DOMAIN};
    use crate::toolchain::pd::PdToolchain;

    fn config(extra: &str) -> Config {
        let text = format!(
            r#"
tenant_id = "11111111-1111-1111-1111-111111111111"
ports = [2222, 9200, 18443]
dkim_selectors = ["google"]
{extra}
[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000001"
type = "ip"
value = "127.0.0.1"
tags = ["lab"]
[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000002"
type = "domain"
value = "watchtower.test"
[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000003"
type = "domain"
value = "mail-only.example.org"
"#
        );
        Config::parse(&text, Path::new("t.toml")).unwrap()
    }

    fn dns() -> FakeDns {
        let mut d = FakeDns::default();
        d.addrs.insert(
            DEMO_DOMAIN.into(),
            Resolved {
                a: vec![
                    "127.0.0.1".parse().unwrap(),
                    "127.0.0.2".parse().unwrap(),
                    "192.0.2.66".parse().unwrap(),
                ],
                ..Default::default()
            },
        );
        d.txt.insert(
            DEMO_DOMAIN.into(),
            Txt::Records(vec!["v=spf1 include:_spf.example.net ~all".into()]),
        );
        d.txt.insert(
            "_dmarc.watchtower.test".into(),
            Txt::Records(vec!["v=DMARC1; p=none".into()]),
        );
        d.txt.insert(
            "mail-only.example.org".into(),
            Txt::Records(vec!["v=spf1 mx -all".into()]),
        );
        d
    }

    fn rules(c: &Config) -> ScanRules {
        c.rules(EngineConfig::default(), EngineSource::Default).unwrap()
    }

    async fn payload(c: &Config) -> Value {
        let plan = scope::plan(c, &[]).unwrap();
        let chain = Arc::new(PdToolchain::new(FixtureRunner::demo(), paths(), settings()).unwrap());
        run(c, &rules(c), &plan, chain, Arc::new(dns()), None).await.unwrap()
    }

    #[tokio::test]
    async fn recorded_tool_output_becomes_a_valid_1_2_payload() {
        let c = config(r#"deny = ["192.0.2.66"]"#);
        let v = payload(&c).await;
        let p = ScanPayload::from_value(&v).unwrap();
        assert_eq!(p.schema_version, "1.2");
        assert_eq!(p.scan.tenant_id.to_string(), "11111111-1111-1111-1111-111111111111");
        assert_eq!(p.scan.requested_asset_ids.len(), 3);
        assert!(p.scan.finished_at.unwrap() >= p.scan.started_at);
        assert_eq!(v["tool_versions"]["naabu"], json!("9.9.9"));
        assert_eq!(v["tool_versions"]["nmap"], Value::Null);

        let ip_ep = &p.asset_results[0].endpoints[0];
        assert_eq!(ip_ep.endpoint_id.as_deref(), Some("ip:127.0.0.1"));
        assert_eq!(ip_ep.observed_host.as_deref(), Some("127.0.0.1"));
        let cov = ip_ep.coverage.as_ref().unwrap();
        assert_eq!(cov.tools, vec!["httpx", "naabu", "nuclei", "tlsx"]);
        assert_eq!(cov.tcp_ports, vec![2222, 9200, 18443]);
        assert_eq!(cov.tls_ports, vec![2222, 9200, 18443]);
        assert!(cov.dns_checks.is_empty());
        assert_eq!(ip_ep.http.len(), 1);
        assert_eq!(ip_ep.tls.len(), 1);
        assert_eq!(ip_ep.findings.nuclei[0].template_id, "watchtower-admin-panel");
        let symptoms: Vec<(u16, &str)> = ip_ep
            .errors
            .iter()
            .filter_map(|e| Some((e.symptom_port()?, e.symptom()?)))
            .collect();
        assert_eq!(symptoms, vec![(9200, "tcp_open_no_banner")], "ssh on 2222 is RB1, not an RB6 symptom");
        assert_eq!(ip_ep.errors.len(), 1);
        // Fields the typed structs do not model survive in the JSON.
        let ep_json = &v["asset_results"][0]["endpoints"][0];
        assert!(ep_json["http"][0]["response_time_ms"].is_u64());
        assert_eq!(ep_json["tls"][0]["raw"]["tlsx_json"]["self_signed"], json!(true));
        assert!(ep_json["timings"]["started_at"].as_str().unwrap().ends_with('Z'));

        // Both allowed addresses of the domain are scanned, the denied one is not.
        let dom = &p.asset_results[1];
        let ids: Vec<&str> = dom.endpoints.iter().filter_map(|e| e.endpoint_id.as_deref()).collect();
        assert_eq!(ids, vec!["ip:127.0.0.1|domain:watchtower.test", "ip:127.0.0.2|domain:watchtower.test"]);
        for ep in &dom.endpoints {
            assert_eq!(ep.observed_host.as_deref(), Some("watchtower.test"));
            assert_eq!(ep.http[0].url, "https://watchtower.test:18443/");
            assert_eq!(ep.tls.len(), 1, "{:?}", ep.endpoint_id);
        }
        let ep = &dom.endpoints[0];
        let email = ep.dns_email.as_ref().unwrap();
        assert_eq!(email.spf.as_ref().unwrap().assessment.as_deref(), Some("weak"));
        assert_eq!(email.dmarc.as_ref().unwrap().policy.as_deref(), Some("none"));
        assert_eq!(email.dkim.as_ref().unwrap().assessment.as_deref(), Some("missing"));
        let cov = ep.coverage.as_ref().unwrap();
        assert_eq!(cov.dns_checks, vec!["dkim", "dmarc", "spf"]);
        assert!(cov.tools.contains(&"dns".to_string()));
        assert_eq!(
            v["asset_results"][1]["resolution"]["dns"]["a"],
            json!(["127.0.0.1", "127.0.0.2", "192.0.2.66"])
        );

        // No address: one endpoint with an explicit error and the email posture.
        let mail = &p.asset_results[2].endpoints[0];
        assert_eq!(mail.endpoint_id.as_deref(), Some("domain:mail-only.example.org"));
        assert_eq!(mail.ip, None);
        assert_eq!(
            mail.errors[0].message.as_deref(),
            Some("mail-only.example.org has no A records")
        );
        assert_eq!(
            mail.dns_email
                .as_ref()
                .unwrap()
                .spf
                .as_ref()
                .unwrap()
                .assessment
                .as_deref(),
            Some("pass")
        );
        assert_eq!(mail.coverage.as_ref().unwrap().tools, vec!["dns"]);

        assert_eq!(v["summary"]["endpoints_total"], json!(4));
        assert_eq!(v["summary"]["ports_open_total"], json!(9));
        assert!(v["errors"].as_array().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_engine_reads_the_payload_as_intended() {
        let v = payload(&config(r#"deny = ["192.0.2.66"]"#)).await;
        let p = ScanPayload::from_value(&v).unwrap();
        let exposures = xray_engine::normalize(&p, &EngineConfig::default());
        for host in ["127.0.0.1", DEMO_DOMAIN] {
            let mut got: Vec<String> = exposures
                .iter()
                .filter(|x| x.observed_host == host)
                .map(|x| format!("{:?}:{}:{}", x.risk_bucket, x.port, x.fingerprint))
                .collect();
            got.sort();
            got.dedup();
            let url = format!("https://{host}:18443/");
            let mut want = vec![
                "Rb1:2222:svc:ssh".to_string(),
                format!("Rb2:18443:tpl:watchtower-admin-panel|url:{url}admin/"),
                "Rb3:18443:tls:old_versions".to_string(),
                "Rb4:18443:issue:self_signed".to_string(),
                format!("Rb5:18443:url:{url}"),
                "Rb6:9200:svc:unknown".to_string(),
            ];
            if host == DEMO_DOMAIN {
                want.extend(["Rb7:0:record:dkim".to_string(), "Rb7:0:record:dmarc".into(), "Rb7:0:record:spf".into()]);
            }
            want.sort();
            // No hostname mismatch: the certificate names the domain and 127.0.0.1.
            assert_eq!(got, want, "{host}");
        }
    }

    #[tokio::test]
    async fn dns_failure_is_an_asset_error() {
        let c = config("");
        let plan = scope::plan(&c, &["watchtower.test".to_string()]).unwrap();
        let mut d = dns();
        d.addrs.insert(
            "watchtower.test".into(),
            Resolved {
                errors: vec!["A lookup of watchtower.test failed: timed out".into()],
                ..Default::default()
            },
        );
        let chain = Arc::new(PdToolchain::new(FixtureRunner::demo(), paths(), settings()).unwrap());
        let v = run(&c, &rules(&c), &plan, chain, Arc::new(d), None).await.unwrap();
        let p = ScanPayload::from_value(&v).unwrap();
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].scope.as_deref(), Some("asset"));
        assert_eq!(p.errors[0].asset_id(), Some("aaaaaaaa-0000-4000-8000-000000000002"));
        assert_eq!(
            p.asset_results[0].endpoints[0].errors[0].message.as_deref(),
            Some("watchtower.test could not be resolved")
        );
    }

    #[tokio::test]
    async fn too_many_resolved_addresses_is_refused() {
        let mut c = config("");
        c.max_targets = 2;
        let plan = scope::plan(&c, &["watchtower.test".to_string(), "127.0.0.1".to_string()]).unwrap();
        let mut d = dns();
        d.addrs.insert(
            "watchtower.test".into(),
            Resolved {
                a: vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()],
                ..Default::default()
            },
        );
        let chain = Arc::new(PdToolchain::new(FixtureRunner::demo(), paths(), settings()).unwrap());
        let err = run(&c, &rules(&c), &plan, chain, Arc::new(d), None).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "3 addresses to scan after DNS resolution, more than max_targets = 2"
        );
    }
}
