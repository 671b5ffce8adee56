//! Scan scope: only configured assets are scanned, the deny list always wins,
//! and CIDRs are expanded only within `max_targets`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use anyhow::{bail, Result};
use ipnet::IpNet;

use crate::config::{parse_cidr, parse_domain, Asset, AssetTarget, Config, DenyRule};

/// An asset as it will be scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedAsset {
    pub asset: Asset,
    /// Addresses to scan (IP and CIDR assets). Domain assets get theirs from DNS.
    pub ips: Vec<IpAddr>,
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub assets: Vec<PlannedAsset>,
    /// Assets left out entirely, with the reason (for the log).
    pub skipped: Vec<String>,
}

impl Plan {
    /// Addresses plus unresolved domains, each counted once.
    pub fn target_count(&self) -> u64 {
        let ips: BTreeSet<IpAddr> = self.assets.iter().flat_map(|a| a.ips.iter().copied()).collect();
        ips.len() as u64 + self.assets.iter().filter(|a| a.domain.is_some()).count() as u64
    }
}

pub fn ip_denied(deny: &[DenyRule], ip: IpAddr) -> bool {
    deny.iter().any(|d| match d {
        DenyRule::Ip(x) => *x == ip,
        DenyRule::Cidr(n) => n.contains(&ip),
        DenyRule::Domain(_) => false,
    })
}

/// A denied domain also denies its subdomains.
pub fn domain_denied(deny: &[DenyRule], domain: &str) -> bool {
    deny.iter().any(|d| match d {
        DenyRule::Domain(x) => domain == x || domain.strip_suffix(x.as_str()).is_some_and(|p| p.ends_with('.')),
        _ => false,
    })
}

/// Number of addresses `hosts()` yields, without enumerating them.
pub fn cidr_size(net: &IpNet) -> u128 {
    let bits = u32::from(net.max_prefix_len() - net.prefix_len());
    let all = if bits >= 128 { u128::MAX } else { 1u128 << bits };
    match net {
        // IPv4 hosts() leaves out network and broadcast below /31.
        IpNet::V4(_) if bits >= 2 => all - 2,
        _ => all,
    }
}

fn expand(net: &IpNet, what: &str, deny: &[DenyRule], max_targets: u64) -> Result<Vec<IpAddr>> {
    let size = cidr_size(net);
    if size > u128::from(max_targets) {
        bail!(
            "{what} {net} expands to {size} addresses, more than max_targets = {max_targets}; split the CIDR or raise max_targets"
        );
    }
    Ok(net.hosts().filter(|ip| !ip_denied(deny, *ip)).collect())
}

/// The assets to scan. With `targets`, only those targets are scanned and
/// each must lie inside a configured asset; otherwise every asset is.
pub fn plan(config: &Config, targets: &[String]) -> Result<Plan> {
    let deny = &config.deny;
    let mut plan = Plan::default();
    if targets.is_empty() {
        for (i, asset) in config.assets.iter().enumerate() {
            let what = format!("assets[{i}]");
            let planned = match &asset.target {
                AssetTarget::Ip(ip) if ip_denied(deny, *ip) => None,
                AssetTarget::Ip(ip) => Some(PlannedAsset {
                    asset: asset.clone(),
                    ips: vec![*ip],
                    domain: None,
                }),
                AssetTarget::Cidr(net) => {
                    let ips = expand(net, &what, deny, config.max_targets)?;
                    (!ips.is_empty()).then(|| PlannedAsset {
                        asset: asset.clone(),
                        ips,
                        domain: None,
                    })
                }
                AssetTarget::Domain(d) if domain_denied(deny, d) => None,
                AssetTarget::Domain(d) => Some(PlannedAsset {
                    asset: asset.clone(),
                    ips: Vec::new(),
                    domain: Some(d.clone()),
                }),
            };
            match planned {
                Some(p) => plan.assets.push(p),
                None => plan.skipped.push(format!(
                    "{what} {} {} is on the deny list",
                    asset.target.kind(),
                    asset.target.value()
                )),
            }
        }
    } else {
        for t in targets {
            select_target(config, t, &mut plan)?;
        }
    }
    if plan.assets.is_empty() {
        bail!("nothing to scan: every selected asset is on the deny list");
    }
    let n = plan.target_count();
    if n > config.max_targets {
        bail!("{n} targets selected, more than max_targets = {}", config.max_targets);
    }
    Ok(plan)
}

fn push_ips(plan: &mut Plan, asset: &Asset, ips: Vec<IpAddr>) {
    match plan.assets.iter_mut().find(|p| p.asset.id == asset.id) {
        Some(p) => {
            p.ips.extend(ips);
            p.ips.sort();
            p.ips.dedup();
        }
        None => plan.assets.push(PlannedAsset {
            asset: asset.clone(),
            ips,
            domain: None,
        }),
    }
}

fn select_target(config: &Config, t: &str, plan: &mut Plan) -> Result<()> {
    let deny = &config.deny;
    let t = t.trim();
    let outside = || {
        anyhow::anyhow!(
            "target {t} is outside the configured scope (not inside any asset in {})",
            config.path.display()
        )
    };
    if let Ok(ip) = t.parse::<IpAddr>() {
        if ip_denied(deny, ip) {
            bail!("target {t} is on the deny list");
        }
        // The most specific asset: an IP asset, else the narrowest CIDR.
        let asset = config
            .assets
            .iter()
            .filter_map(|a| match &a.target {
                AssetTarget::Ip(x) if *x == ip => Some((u8::MAX, a)),
                AssetTarget::Cidr(n) if n.contains(&ip) => Some((n.prefix_len(), a)),
                _ => None,
            })
            .max_by_key(|(prefix, _)| *prefix)
            .map(|(_, a)| a)
            .ok_or_else(outside)?;
        push_ips(plan, asset, vec![ip]);
        return Ok(());
    }
    if t.contains('/') {
        let net = parse_cidr(t)?;
        let asset = config
            .assets
            .iter()
            .filter(|a| matches!(&a.target, AssetTarget::Cidr(n) if n.contains(&net)))
            .max_by_key(|a| match &a.target {
                AssetTarget::Cidr(n) => n.prefix_len(),
                _ => 0,
            })
            .ok_or_else(outside)?;
        let ips = expand(&net, "target", deny, config.max_targets)?;
        if ips.is_empty() {
            bail!("target {t} is on the deny list");
        }
        push_ips(plan, asset, ips);
        return Ok(());
    }
    let domain = parse_domain(t).map_err(|_| anyhow::anyhow!("target {t:?} is not an IP, CIDR or domain"))?;
    if domain_denied(deny, &domain) {
        bail!("target {t} is on the deny list");
    }
    let asset = config
        .assets
        .iter()
        .find(|a| matches!(&a.target, AssetTarget::Domain(d) if *d == domain))
        .ok_or_else(outside)?;
    if !plan.assets.iter().any(|p| p.asset.id == asset.id) {
        plan.assets.push(PlannedAsset {
            asset: asset.clone(),
            ips: Vec::new(),
            domain: Some(domain),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            r#"
tenant_id = "11111111-1111-1111-1111-111111111111"
max_targets = 300
{extra}
[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000001"
type = "ip"
value = "192.0.2.10"
[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000002"
type = "cidr"
value = "198.51.100.0/24"
[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000003"
type = "domain"
value = "example.com"
[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000004"
type = "cidr"
value = "192.0.2.0/28"
"#
        );
        Config::parse(&text, Path::new("assets.toml")).unwrap()
    }

    fn err(c: &Config, targets: &[&str]) -> String {
        let t: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
        format!("{:#}", plan(c, &t).unwrap_err())
    }

    #[test]
    fn all_assets_with_cidr_expansion() {
        let p = plan(&config(""), &[]).unwrap();
        assert_eq!(p.assets.len(), 4);
        assert_eq!(p.assets[1].ips.len(), 254);
        assert_eq!(p.assets[1].ips[0], "198.51.100.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.assets[2].domain.as_deref(), Some("example.com"));
        assert_eq!(p.assets[3].ips.len(), 14);
        // 192.0.2.10 is in both the IP asset and the /28; counted once.
        assert_eq!(p.target_count(), 1 + 254 + 1 + 14 - 1);
    }

    #[test]
    fn deny_always_wins() {
        let c = config(r#"deny = ["198.51.100.128/25", "192.0.2.10", "www.example.com", "example.com"]"#);
        let p = plan(&c, &[]).unwrap();
        let ids: Vec<u128> = p.assets.iter().map(|a| a.asset.id.as_u128() & 0xff).collect();
        assert_eq!(ids, vec![2, 4], "denied IP and domain assets are skipped");
        assert_eq!(p.assets[0].ips.len(), 127);
        assert!(p.assets[0].ips.iter().all(|ip| !ip_denied(&c.deny, *ip)));
        assert!(!p.assets[1].ips.contains(&"192.0.2.10".parse().unwrap()));
        assert_eq!(p.skipped.len(), 2);
        assert_eq!(err(&c, &["192.0.2.10"]), "target 192.0.2.10 is on the deny list");
        assert_eq!(err(&c, &["example.com"]), "target example.com is on the deny list");
    }

    #[test]
    fn subdomains_of_a_denied_domain_are_denied() {
        let deny = vec![DenyRule::Domain("corp.example.com".into())];
        assert!(domain_denied(&deny, "corp.example.com"));
        assert!(domain_denied(&deny, "vpn.corp.example.com"));
        assert!(!domain_denied(&deny, "notcorp.example.com"));
        assert!(!domain_denied(&deny, "example.com"));
    }

    #[test]
    fn targets_must_be_inside_an_asset() {
        let c = config("");
        assert_eq!(
            err(&c, &["203.0.113.5"]),
            "target 203.0.113.5 is outside the configured scope (not inside any asset in assets.toml)"
        );
        assert!(err(&c, &["www.example.com"]).contains("outside the configured scope"));
        assert!(err(&c, &["198.51.0.0/16"]).contains("outside the configured scope"));
        assert_eq!(
            err(&c, &["not a target"]),
            "target \"not a target\" is not an IP, CIDR or domain"
        );

        let p = plan(
            &c,
            &["198.51.100.7".into(), "198.51.100.9".into(), "example.com".into()],
        )
        .unwrap();
        assert_eq!(p.assets.len(), 2);
        assert_eq!(
            p.assets[0].ips,
            vec![
                "198.51.100.7".parse::<IpAddr>().unwrap(),
                "198.51.100.9".parse().unwrap()
            ]
        );
        // An address in two assets belongs to the most specific one.
        let p = plan(&c, &["192.0.2.10".into()]).unwrap();
        assert_eq!(p.assets[0].asset.id.as_u128() & 0xff, 1);
        let p = plan(&c, &["192.0.2.5".into()]).unwrap();
        assert_eq!(p.assets[0].asset.id.as_u128() & 0xff, 4);
        let p = plan(&c, &["198.51.100.0/30".into()]).unwrap();
        assert_eq!(p.assets[0].ips.len(), 2);
    }

    #[test]
    fn cidr_expansion_is_limited_by_max_targets() {
        let c = config("").clone();
        let mut small = c.clone();
        small.max_targets = 100;
        assert_eq!(
            err(&small, &[]),
            "assets[1] 198.51.100.0/24 expands to 254 addresses, more than max_targets = 100; split the CIDR or raise max_targets"
        );
        small.max_targets = 260;
        assert_eq!(err(&small, &[]), "269 targets selected, more than max_targets = 260");
        let huge: IpNet = "2001:db8::/32".parse().unwrap();
        assert_eq!(cidr_size(&huge), 1u128 << 96);
        assert_eq!(cidr_size(&"10.0.0.0/8".parse().unwrap()), (1 << 24) - 2);
        assert_eq!(cidr_size(&"10.0.0.0/31".parse().unwrap()), 2);
        assert_eq!(cidr_size(&"10.0.0.1/32".parse().unwrap()), 1);
        assert_eq!(cidr_size(&"::/0".parse().unwrap()), u128::MAX);
    }
}
