//! From nweb to xray: verified scanprint rows that touch a tenant's assets become an
//! xray scan-result payload (schema 1.2), so public scan data raises the same RB1
//! exposures and events as the tenant's own scans.
//!
//! The payload must never cause a false FIXED (docs/design.md D3, D32). A bundle says nothing about
//! ports it does not list, so each endpoint's `coverage.tcp_ports` holds only the ports
//! the scanprint reports as `open` or `closed`. A port seen `filtered` (or
//! `open|filtered`) is reported as observed but not covered: from one vantage a
//! firewall may hide a port that is open from elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::NwebError;

/// An asset of the tenant: one address or one CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BridgeAsset {
    pub asset_id: Uuid,
    /// `ip` or `cidr`, as in the xray contract.
    pub asset_type: String,
    /// `203.0.113.10` or `203.0.113.0/24`.
    pub asset_value: String,
}

/// The bundle the rows come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BridgeBundle {
    pub cid: String,
    pub merkle_root: String,
    pub tool: String,
    pub tool_version: Option<String>,
    pub vantage: String,
    /// Unix seconds.
    pub started_at: i64,
    pub finished_at: i64,
}

/// A verified scanprint row, the columns the bridge reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BridgeRow {
    pub ip: String,
    pub port: u16,
    pub proto: String,
    pub state: String,
    /// Unix seconds.
    pub ts: i64,
    pub service: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub tool: String,
}

/// An address range, for containment tests without a network crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(asset: &BridgeAsset) -> Result<Net, NwebError> {
        let field = format!("assets[{}].asset_value", asset.asset_id);
        let bad = |p: &str| NwebError::field(&field, format!("{:?} {p}", asset.asset_value));
        match asset.asset_type.as_str() {
            "ip" => {
                let addr: IpAddr = asset
                    .asset_value
                    .trim()
                    .parse()
                    .map_err(|_| bad("is not an IP address"))?;
                Ok(Net {
                    addr,
                    prefix: if addr.is_ipv4() { 32 } else { 128 },
                })
            }
            "cidr" => {
                let (a, p) = asset
                    .asset_value
                    .trim()
                    .split_once('/')
                    .ok_or_else(|| bad("is not a CIDR block"))?;
                let addr: IpAddr = a.parse().map_err(|_| bad("is not a CIDR block"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let prefix: u8 = p
                    .parse()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| bad("has a bad prefix length"))?;
                Ok(Net { addr, prefix })
            }
            other => Err(NwebError::field(
                format!("assets[{}].asset_type", asset.asset_id),
                format!("{other:?}: only ip and cidr assets can be matched to scanprint rows"),
            )),
        }
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        let bits = |a: &IpAddr| -> (u128, u32) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(*v)), 32),
                IpAddr::V6(v) => (u128::from(*v), 128),
            }
        };
        let ((net, width), (host, host_width)) = (bits(&self.addr), bits(ip));
        if width != host_width {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift >= width || (net >> shift) == (host >> shift)
    }
}

/// Unix seconds as the contract's UTC timestamp (`...Z`, docs/contract.md §P-12).
fn iso(unix: i64) -> Result<String, NwebError> {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .ok_or_else(|| NwebError::field("time", format!("{unix} is out of range")))
}

/// The contract's port states; everything else a scanner says is "unknown".
fn contract_state(state: &str) -> &'static str {
    match state {
        "open" => "open",
        "closed" => "closed",
        "filtered" => "filtered",
        _ => "unknown",
    }
}

/// Same tenant and bundle, same scan: re-bridging a bundle is a duplicate, not a new
/// scan (docs/design.md D5). A name-based UUID (version 8, from SHA-256) keeps it stable.
pub fn bridge_scan_id(tenant: &Uuid, bundle_cid: &str) -> Uuid {
    let digest = Sha256::digest(format!("nweb-bridge\0{tenant}\0{bundle_cid}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

/// The xray payload for the rows of one verified bundle that fall inside the tenant's
/// assets, or `None` when no row touches any of them (nothing to say, and an empty
/// scan must not mark assets as freshly scanned).
pub fn bridge_payload(
    tenant: &Uuid,
    bundle: &BridgeBundle,
    assets: &[BridgeAsset],
    rows: &[BridgeRow],
) -> Result<Option<Value>, NwebError> {
    let nets: Vec<(&BridgeAsset, Net)> = assets
        .iter()
        .map(|a| Net::parse(a).map(|n| (a, n)))
        .collect::<Result<_, _>>()?;

    // Latest row per (asset, ip, proto, port); ties broken by state so the result does
    // not depend on row order.
    type Key = (Uuid, IpAddr, String, u16);
    let mut latest: BTreeMap<Key, &BridgeRow> = BTreeMap::new();
    for row in rows {
        let ip: IpAddr = row.ip.parse().map_err(|_| {
            NwebError::field("rows.ip", format!("{:?} is not an IP address", row.ip))
        })?;
        for (asset, net) in &nets {
            if !net.contains(&ip) {
                continue;
            }
            let key = (asset.asset_id, ip, row.proto.to_ascii_lowercase(), row.port);
            let newer = latest
                .get(&key)
                .is_none_or(|cur| (row.ts, &row.state) > (cur.ts, &cur.state));
            if newer {
                latest.insert(key, row);
            }
        }
    }
    if latest.is_empty() {
        return Ok(None);
    }

    let mut by_endpoint: BTreeMap<(Uuid, IpAddr), Vec<&BridgeRow>> = BTreeMap::new();
    for ((asset, ip, _, _), row) in &latest {
        by_endpoint.entry((*asset, *ip)).or_default().push(row);
    }
    let mut asset_results = Vec::new();
    for (asset, _) in &nets {
        let endpoints: Vec<Value> = by_endpoint
            .iter()
            .filter(|((a, _), _)| *a == asset.asset_id)
            .map(|((_, ip), rows)| endpoint(ip, rows))
            .collect();
        if endpoints.is_empty() {
            continue;
        }
        let value = asset.asset_value.trim();
        asset_results.push(json!({
            "asset": {
                "asset_id": asset.asset_id,
                "asset_type": asset.asset_type,
                "asset_value": value,
                "tags": ["nweb"],
                "canonical_host": if asset.asset_type == "ip" { json!(value) } else { Value::Null },
            },
            "endpoints": endpoints,
        }));
    }
    let requested: BTreeSet<Uuid> = latest.keys().map(|k| k.0).collect();
    let tools: BTreeSet<&str> = latest.values().map(|r| r.tool.as_str()).collect();
    let mut tool_versions = serde_json::Map::new();
    for t in &tools {
        let v = (*t == bundle.tool)
            .then(|| bundle.tool_version.clone())
            .flatten();
        tool_versions.insert((*t).to_owned(), json!(v));
    }
    Ok(Some(json!({
        "schema_version": "1.2",
        "scan": {
            "scan_id": bridge_scan_id(tenant, &bundle.cid),
            "tenant_id": tenant,
            "scan_kind": "scheduled",
            "scan_profile": "nweb",
            "triggered_by_user_id": null,
            "requested_asset_ids": requested,
            "started_at": iso(bundle.started_at)?,
            "finished_at": iso(bundle.finished_at)?,
            "worker": {
                "worker_id": format!("nweb:{}", bundle.vantage),
                "worker_version": env!("CARGO_PKG_VERSION"),
                "host": null,
                "ip": null,
            },
        },
        "tool_versions": tool_versions,
        "asset_results": asset_results,
        "errors": [],
        "nweb": {
            "bundle_cid": bundle.cid,
            "merkle_root": bundle.merkle_root,
            "vantage": bundle.vantage,
        },
    })))
}

fn endpoint(ip: &IpAddr, rows: &[&BridgeRow]) -> Value {
    let observation = |r: &BridgeRow| {
        json!({
            "tool": r.tool,
            "protocol": r.proto.to_ascii_lowercase(),
            "port": r.port,
            "state": contract_state(&r.state),
            "reason": format!("nweb:{}", r.state),
        })
    };
    let is = |r: &&&BridgeRow, proto: &str| r.proto.eq_ignore_ascii_case(proto);
    let tcp: Vec<Value> = rows
        .iter()
        .filter(|r| is(r, "tcp"))
        .map(|r| observation(r))
        .collect();
    let udp: Vec<Value> = rows
        .iter()
        .filter(|r| is(r, "udp"))
        .map(|r| observation(r))
        .collect();
    let covered: BTreeSet<u16> = rows
        .iter()
        .filter(|r| is(r, "tcp") && matches!(r.state.as_str(), "open" | "closed"))
        .map(|r| r.port)
        .collect();
    let tools: BTreeSet<&str> = rows.iter().map(|r| r.tool.as_str()).collect();
    let nmap: Vec<Value> = rows
        .iter()
        .filter(|r| r.tool == "nmap" && r.state == "open")
        .filter(|r| r.service.is_some() || r.product.is_some() || r.version.is_some())
        .map(|r| {
            json!({
                "tool": "nmap",
                "target": ip.to_string(),
                "port": r.port,
                "protocol": r.proto.to_ascii_lowercase(),
                "state": r.state,
                "service": r.service,
                "product": r.product,
                "version": r.version,
            })
        })
        .collect();
    json!({
        "endpoint_id": format!("ip:{ip}"),
        "ip": ip.to_string(),
        "domain_context": null,
        "observed_host": ip.to_string(),
        "ports": {"tcp": tcp, "udp": udp},
        "http": [],
        "tls": [],
        "findings": {"nuclei": [], "nmap": nmap},
        "errors": [],
        "coverage": {
            "tools": tools,
            "tcp_ports": covered,
            "tls_ports": [],
            "http_urls": [],
            "nuclei_urls": [],
            "dns_checks": [],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use xray_engine::diff::{diff_scan, ExposureStatus, PriorState};
    use xray_engine::{EngineConfig, EventType, ScanPayload};

    const TENANT: &str = "11111111-1111-1111-1111-111111111111";
    const ASSET: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const NET_ASSET: &str = "aaaaaaaa-0000-4000-8000-000000000002";

    fn tenant() -> Uuid {
        TENANT.parse().unwrap()
    }

    fn bundle(cid: &str, t: i64) -> BridgeBundle {
        BridgeBundle {
            cid: cid.into(),
            merkle_root: format!("0x{}", "00".repeat(32)),
            tool: "nmap".into(),
            tool_version: Some("7.95".into()),
            vantage: "AS1234/us-west-2".into(),
            started_at: t,
            finished_at: t + 60,
        }
    }

    fn row(ip: &str, port: u16, state: &str, ts: i64) -> BridgeRow {
        BridgeRow {
            ip: ip.into(),
            port,
            proto: "tcp".into(),
            state: state.into(),
            ts,
            service: (state == "open").then(|| "ssh".into()),
            product: None,
            version: None,
            tool: "nmap".into(),
        }
    }

    fn ip_asset() -> BridgeAsset {
        BridgeAsset {
            asset_id: ASSET.parse().unwrap(),
            asset_type: "ip".into(),
            asset_value: "203.0.113.10".into(),
        }
    }

    fn payload(b: &BridgeBundle, rows: &[BridgeRow]) -> ScanPayload {
        let v = bridge_payload(&tenant(), b, &[ip_asset()], rows)
            .unwrap()
            .expect("rows touch the asset");
        ScanPayload::from_value(&v).unwrap()
    }

    /// Feeds the outcome of a diff back as the prior state, as the database does.
    fn apply(prior: &mut Vec<PriorState>, p: &ScanPayload) -> Vec<(EventType, u16)> {
        let out = diff_scan(p, prior, &EngineConfig::default());
        for u in &out.upserts {
            prior.retain(|x| x.identity_key != u.exposure.identity_key);
            prior.push(PriorState::from_upsert(u));
        }
        for k in &out.fixed {
            prior
                .iter_mut()
                .filter(|x| &x.identity_key == k)
                .for_each(|x| x.status = ExposureStatus::Fixed);
        }
        out.events.iter().map(|e| (e.event_type, e.port)).collect()
    }

    #[test]
    fn payload_is_a_valid_1_2_scan_with_truthful_tool_and_coverage() {
        let b = bundle("bafyone", 1_700_000_000);
        let rows = [
            row("203.0.113.10", 22, "open", 1_700_000_010),
            row("203.0.113.10", 443, "closed", 1_700_000_011),
            row("203.0.113.10", 8080, "filtered", 1_700_000_012),
            row("203.0.113.10", 53, "open|filtered", 1_700_000_013),
            row("198.51.100.7", 22, "open", 1_700_000_014),
        ];
        let v = bridge_payload(&tenant(), &b, &[ip_asset()], &rows)
            .unwrap()
            .unwrap();
        assert_eq!(v["schema_version"], "1.2");
        assert_eq!(v["scan"]["scan_kind"], "scheduled");
        assert_eq!(v["scan"]["started_at"], "2023-11-14T22:13:20Z");
        assert_eq!(v["scan"]["finished_at"], "2023-11-14T22:14:20Z");
        assert_eq!(v["tool_versions"], json!({"nmap": "7.95"}));
        let ep = &v["asset_results"][0]["endpoints"][0];
        assert_eq!(ep["ip"], "203.0.113.10");
        assert_eq!(ep["coverage"]["tools"], json!(["nmap"]));
        assert_eq!(
            ep["coverage"]["tcp_ports"],
            json!([22, 443]),
            "only open and closed ports are covered"
        );
        let states: Vec<(u64, &str)> = ep["ports"]["tcp"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["port"].as_u64().unwrap(), p["state"].as_str().unwrap()))
            .collect();
        assert_eq!(
            states,
            [
                (22, "open"),
                (53, "unknown"),
                (443, "closed"),
                (8080, "filtered")
            ]
        );
        assert_eq!(ep["findings"]["nmap"][0]["service"], "ssh");
        // 198.51.100.7 is not the tenant's.
        assert_eq!(v["asset_results"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["asset_results"][0]["endpoints"].as_array().unwrap().len(),
            1
        );
        assert!(ScanPayload::from_value(&v).is_ok());
        // Deterministic scan id per tenant and bundle.
        assert_eq!(
            v["scan"]["scan_id"],
            json!(bridge_scan_id(&tenant(), "bafyone"))
        );
        assert_ne!(
            bridge_scan_id(&tenant(), "bafyone"),
            bridge_scan_id(&tenant(), "bafytwo")
        );
        assert_eq!(bridge_scan_id(&tenant(), "bafyone").get_version_num(), 8);
    }

    #[test]
    fn masscan_bundles_say_masscan() {
        let mut b = bundle("bafym", 1_700_000_000);
        b.tool = "masscan".into();
        b.tool_version = None;
        let mut r = row("203.0.113.10", 3389, "open", 1_700_000_001);
        r.tool = "masscan".into();
        let v = bridge_payload(&tenant(), &b, &[ip_asset()], &[r])
            .unwrap()
            .unwrap();
        assert_eq!(v["tool_versions"], json!({"masscan": null}));
        let ep = &v["asset_results"][0]["endpoints"][0];
        assert_eq!(ep["coverage"]["tools"], json!(["masscan"]));
        assert_eq!(ep["ports"]["tcp"][0]["tool"], "masscan");
        assert_eq!(ep["findings"]["nmap"], json!([]));
    }

    #[test]
    fn no_false_fixed_from_a_port_the_bundle_does_not_mention() {
        let mut prior = Vec::new();
        let first = payload(
            &bundle("bafy1", 1_700_000_000),
            &[
                row("203.0.113.10", 22, "open", 1_700_000_010),
                row("203.0.113.10", 443, "open", 1_700_000_010),
            ],
        );
        assert_eq!(apply(&mut prior, &first), [(EventType::New, 22)]);

        // Later bundle: only 443 listed. 22 was not scanned, so it stays open.
        let second = payload(
            &bundle("bafy2", 1_700_100_000),
            &[row("203.0.113.10", 443, "open", 1_700_100_010)],
        );
        assert_eq!(apply(&mut prior, &second), []);
        // Filtered is not proof of closed either.
        let third = payload(
            &bundle("bafy3", 1_700_200_000),
            &[row("203.0.113.10", 22, "filtered", 1_700_200_010)],
        );
        assert_eq!(apply(&mut prior, &third), []);
        // Closed is.
        let fourth = payload(
            &bundle("bafy4", 1_700_300_000),
            &[row("203.0.113.10", 22, "closed", 1_700_300_010)],
        );
        assert_eq!(apply(&mut prior, &fourth), [(EventType::Fixed, 22)]);
    }

    #[test]
    fn latest_row_per_port_wins_whatever_the_order() {
        let b = bundle("bafyx", 1_700_000_000);
        let a = row("203.0.113.10", 22, "open", 10);
        let c = row("203.0.113.10", 22, "closed", 20);
        let one = bridge_payload(&tenant(), &b, &[ip_asset()], &[a.clone(), c.clone()]).unwrap();
        let two = bridge_payload(&tenant(), &b, &[ip_asset()], &[c, a]).unwrap();
        assert_eq!(one, two);
        assert_eq!(
            one.unwrap()["asset_results"][0]["endpoints"][0]["ports"]["tcp"][0]["state"],
            "closed"
        );
    }

    #[test]
    fn cidr_assets_collect_every_address_inside() {
        let net = BridgeAsset {
            asset_id: NET_ASSET.parse().unwrap(),
            asset_type: "cidr".into(),
            asset_value: "203.0.113.0/28".into(),
        };
        let rows = [
            row("203.0.113.10", 22, "open", 1),
            row("203.0.113.15", 22, "open", 1),
            row("203.0.113.16", 22, "open", 1),
            row("2001:db8::1", 22, "open", 1),
        ];
        let v = bridge_payload(
            &tenant(),
            &bundle("bafyc", 1_700_000_000),
            &[ip_asset(), net],
            &rows,
        )
        .unwrap()
        .unwrap();
        let results = v["asset_results"].as_array().unwrap();
        assert_eq!(
            results.len(),
            2,
            "the /32 and the /28 both match 203.0.113.10"
        );
        let ips = |i: usize| -> Vec<&str> {
            results[i]["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["ip"].as_str().unwrap())
                .collect()
        };
        assert_eq!(ips(0), ["203.0.113.10"]);
        assert_eq!(ips(1), ["203.0.113.10", "203.0.113.15"]);
        assert_eq!(results[1]["asset"]["canonical_host"], Value::Null);
        let ids = v["scan"]["requested_asset_ids"].as_array().unwrap();
        assert_eq!(ids.len(), 2);
        assert!(ScanPayload::from_value(&v).is_ok());
    }

    #[test]
    fn nothing_to_bridge_is_none_and_bad_assets_are_errors() {
        let rows = [row("198.51.100.7", 22, "open", 1)];
        assert_eq!(
            bridge_payload(&tenant(), &bundle("b", 1), &[ip_asset()], &rows).unwrap(),
            None
        );
        let bad = |t: &str, v: &str| BridgeAsset {
            asset_id: ASSET.parse().unwrap(),
            asset_type: t.into(),
            asset_value: v.into(),
        };
        assert!(bridge_payload(&tenant(), &bundle("b", 1), &[bad("ip", "nope")], &rows).is_err());
        assert!(bridge_payload(
            &tenant(),
            &bundle("b", 1),
            &[bad("cidr", "10.0.0.0/33")],
            &rows
        )
        .is_err());
        assert!(bridge_payload(
            &tenant(),
            &bundle("b", 1),
            &[bad("domain", "example.com")],
            &rows
        )
        .is_err());
    }

    #[test]
    fn containment() {
        let n = |t: &str, v: &str| {
            Net::parse(&BridgeAsset {
                asset_id: Uuid::nil(),
                asset_type: t.into(),
                asset_value: v.into(),
            })
            .unwrap()
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(n("cidr", "0.0.0.0/0").contains(&ip("8.8.8.8")));
        assert!(!n("cidr", "0.0.0.0/0").contains(&ip("::1")));
        assert!(n("cidr", "10.0.0.0/8").contains(&ip("10.255.0.1")));
        assert!(!n("cidr", "10.0.0.0/8").contains(&ip("11.0.0.1")));
        assert!(n("cidr", "2001:db8::/32").contains(&ip("2001:db8:ffff::1")));
        assert!(n("ip", "2001:db8::1").contains(&ip("2001:DB8:0::1")));
        assert!(!n("ip", "192.0.2.1").contains(&ip("192.0.2.2")));
    }
}
