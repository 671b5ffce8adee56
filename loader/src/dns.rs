//! DNS: address resolution of domain assets and the email-posture lookups,
//! behind a trait so that scans can be tested without a network.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, Result};
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use serde_json::json;
use xray_engine::contract::DnsEmail;

use xray_parsers::email::{assess_dkim, assess_dmarc, assess_spf, org_domain, spf_records, spf_redirect, Txt};

/// Addresses of a name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub a: Vec<IpAddr>,
    pub aaaa: Vec<IpAddr>,
    pub cname_chain: Vec<String>,
    /// Lookup failures (not "no such record").
    pub errors: Vec<String>,
}

pub trait Dns: Send + Sync {
    fn txt(&self, name: &str) -> impl Future<Output = Txt> + Send;
    fn addresses(&self, name: &str, ipv6: bool) -> impl Future<Output = Resolved> + Send;
}

pub struct HickoryDns {
    resolver: TokioResolver,
}

impl HickoryDns {
    /// A resolver against `server` (ip:port), or the system configuration.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<HickoryDns> {
        let mut builder = match server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| anyhow!("cannot read the system resolver configuration: {e}"))?,
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 2;
        let resolver = builder.build().map_err(|e| anyhow!("cannot build DNS resolver: {e}"))?;
        Ok(HickoryDns { resolver })
    }
}

fn fqdn(name: &str) -> String {
    // A trailing dot keeps the search list out of it.
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn no_records(e: &NetError) -> bool {
    e.is_no_records_found() || e.is_nx_domain()
}

impl Dns for HickoryDns {
    async fn txt(&self, name: &str) -> Txt {
        match self.resolver.txt_lookup(fqdn(name)).await {
            Ok(lookup) => {
                let records: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        // One TXT record may be split into several strings; they concatenate.
                        RData::TXT(t) => Some(
                            t.txt_data
                                .iter()
                                .map(|s| String::from_utf8_lossy(s))
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                if records.is_empty() {
                    Txt::None
                } else {
                    Txt::Records(records)
                }
            }
            Err(e) if no_records(&e) => Txt::None,
            Err(e) => Txt::Error(e.to_string()),
        }
    }

    async fn addresses(&self, name: &str, ipv6: bool) -> Resolved {
        let mut out = Resolved::default();
        let mut kinds = vec![RecordType::A];
        if ipv6 {
            kinds.push(RecordType::AAAA);
        }
        for kind in kinds {
            let result = match kind {
                RecordType::A => self.resolver.ipv4_lookup(fqdn(name)).await,
                _ => self.resolver.ipv6_lookup(fqdn(name)).await,
            };
            match result {
                Ok(lookup) => {
                    for r in lookup.answers() {
                        match &r.data {
                            RData::A(a) => out.a.push(IpAddr::V4(a.0)),
                            RData::AAAA(a) => out.aaaa.push(IpAddr::V6(a.0)),
                            RData::CNAME(c) => {
                                let t = c.0.to_ascii().trim_end_matches('.').to_ascii_lowercase();
                                if !out.cname_chain.contains(&t) {
                                    out.cname_chain.push(t);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) if no_records(&e) => {}
                Err(e) => out.errors.push(format!("{kind} lookup of {name} failed: {e}")),
            }
        }
        out.a.sort();
        out.a.dedup();
        out.aaaa.sort();
        out.aaaa.dedup();
        out
    }
}

/// A resolver only when the scan has domain assets: an IP-only scan must not
/// fail on a host without `/etc/resolv.conf`.
pub struct MaybeDns(pub Option<HickoryDns>);

impl Dns for MaybeDns {
    async fn txt(&self, name: &str) -> Txt {
        match &self.0 {
            Some(d) => d.txt(name).await,
            None => Txt::Error("DNS is not configured for this scan".into()),
        }
    }

    async fn addresses(&self, name: &str, ipv6: bool) -> Resolved {
        match &self.0 {
            Some(d) => d.addresses(name, ipv6).await,
            None => Resolved {
                errors: vec!["DNS is not configured for this scan".into()],
                ..Default::default()
            },
        }
    }
}

/// The email posture of a domain (docs/contract.md §P-9) and the checks that gave a
/// definite answer, for `coverage.dns_checks`.
pub async fn email_posture<D: Dns>(dns: &D, domain: &str, selectors: &[String]) -> (DnsEmail, Vec<String>) {
    let mut errors = Vec::new();

    let spf_txt = dns.txt(domain).await;
    let redirect = match &spf_txt {
        Txt::Records(r) => match spf_records(r).first().and_then(|rec| spf_redirect(rec)) {
            Some(target) => Some(dns.txt(&target).await),
            None => None,
        },
        _ => None,
    };
    if let Txt::Error(e) = &spf_txt {
        errors.push(json!({"record": "spf", "name": domain, "message": e}));
    }
    if let Some(Txt::Error(e)) = &redirect {
        errors.push(json!({"record": "spf", "name": "redirect", "message": e}));
    }
    let spf = assess_spf(&spf_txt, redirect.as_ref());

    let own = format!("_dmarc.{domain}");
    let mut dmarc_txt = dns.txt(&own).await;
    let mut inherited = None;
    if dmarc_txt == Txt::None
        || matches!(&dmarc_txt, Txt::Records(r) if !r.iter().any(|x| x.to_ascii_lowercase().contains("v=dmarc1")))
    {
        if let Some(org) = org_domain(domain) {
            let org_txt = dns.txt(&format!("_dmarc.{org}")).await;
            if matches!(&org_txt, Txt::Records(_)) {
                inherited = Some(org);
                dmarc_txt = org_txt;
            } else if let Txt::Error(_) = org_txt {
                dmarc_txt = org_txt;
            }
        }
    }
    if let Txt::Error(e) = &dmarc_txt {
        errors.push(json!({"record": "dmarc", "name": own, "message": e}));
    }
    let dmarc = assess_dmarc(&dmarc_txt, inherited.as_deref());

    let mut dkim_results = Vec::new();
    for sel in selectors {
        let name = format!("{sel}._domainkey.{domain}");
        let txt = dns.txt(&name).await;
        if let Txt::Error(e) = &txt {
            errors.push(json!({"record": "dkim", "name": name, "message": e}));
        }
        dkim_results.push((sel.clone(), txt));
    }
    let dkim = assess_dkim(&dkim_results);

    let mut checks = Vec::new();
    if spf.assessment.as_deref() != Some("error") {
        checks.push("spf".to_string());
    }
    if dmarc.assessment.as_deref() != Some("error") {
        checks.push("dmarc".to_string());
    }
    if !matches!(dkim.assessment.as_deref(), Some("unknown") | None) {
        checks.push("dkim".to_string());
    }
    let posture = DnsEmail {
        domain: Some(domain.to_string()),
        spf: Some(spf),
        dmarc: Some(dmarc),
        dkim: Some(dkim),
        errors,
    };
    (posture, checks)
}

#[cfg(test)]
pub mod fake {
    //! An in-memory resolver for tests.
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Default)]
    pub struct FakeDns {
        pub txt: BTreeMap<String, Txt>,
        pub addrs: BTreeMap<String, Resolved>,
    }

    impl Dns for FakeDns {
        async fn txt(&self, name: &str) -> Txt {
            self.txt.get(name).cloned().unwrap_or(Txt::None)
        }

        async fn addresses(&self, name: &str, _ipv6: bool) -> Resolved {
            self.addrs.get(name).cloned().unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeDns;
    use super::*;

    fn recs(r: &[&str]) -> Txt {
        Txt::Records(r.iter().map(|s| s.to_string()).collect())
    }

    #[tokio::test]
    async fn posture_of_a_well_configured_domain() {
        let mut dns = FakeDns::default();
        dns.txt
            .insert("example.com".into(), recs(&["v=spf1 redirect=_spf.example.com"]));
        dns.txt
            .insert("_spf.example.com".into(), recs(&["v=spf1 ip4:192.0.2.0/24 -all"]));
        dns.txt.insert(
            "_dmarc.example.com".into(),
            recs(&["v=DMARC1; p=reject; rua=mailto:d@example.com"]),
        );
        dns.txt
            .insert("s1._domainkey.example.com".into(), recs(&["v=DKIM1; p=MIGf"]));
        let (p, checks) = email_posture(&dns, "example.com", &["s1".into()]).await;
        assert_eq!(p.spf.unwrap().assessment.as_deref(), Some("pass"));
        assert_eq!(p.dmarc.unwrap().assessment.as_deref(), Some("pass"));
        assert_eq!(p.dkim.unwrap().assessment.as_deref(), Some("ok"));
        assert!(p.errors.is_empty());
        assert_eq!(checks, vec!["spf", "dmarc", "dkim"]);
    }

    #[tokio::test]
    async fn subdomain_inherits_dmarc_and_errors_are_kept() {
        let mut dns = FakeDns::default();
        dns.txt.insert("_dmarc.example.com".into(), recs(&["v=DMARC1; p=none"]));
        dns.txt.insert("www.example.com".into(), Txt::Error("SERVFAIL".into()));
        let (p, checks) = email_posture(&dns, "www.example.com", &[]).await;
        let dmarc = p.dmarc.unwrap();
        assert_eq!(dmarc.policy.as_deref(), Some("none"));
        assert_eq!(dmarc.issues[0], "inherited_from:example.com");
        assert_eq!(p.spf.unwrap().assessment.as_deref(), Some("error"));
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0]["record"], json!("spf"));
        assert_eq!(checks, vec!["dmarc"], "spf failed, no dkim selectors");
    }
}
