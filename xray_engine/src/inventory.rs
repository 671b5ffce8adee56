//! What an applied scan says exists: its assets and endpoints, in the shape
//! of the inventory tables (`xray.assets`, `xray.endpoints`).
//!
//! The endpoint's canonical host and id are the engine's own
//! ([`crate::normalize`]), so an endpoint row and the exposures found on it
//! always agree on both.

use crate::contract::{Asset, Id, ScanPayload};
use crate::normalize::endpoint_views;

/// One row of `xray.endpoints`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRow<'a> {
    pub asset_id: Id,
    pub endpoint_id: String,
    pub ip: Option<&'a str>,
    pub observed_host: String,
    pub domain_context: Option<&'a str>,
    /// TCP ports reported open, ascending, each once.
    pub open_tcp_ports: Vec<u16>,
    /// Ports where a TLS handshake completed, ascending, each once.
    pub tls_ports: Vec<u16>,
    /// URLs that answered with an HTTP status, ascending, each once.
    pub http_urls: Vec<&'a str>,
}

/// The payload's assets, ordered by id; an asset listed twice is kept once
/// (its first listing), as a row can only be written once per statement.
pub fn assets(payload: &ScanPayload) -> Vec<&Asset> {
    let mut out: Vec<&Asset> = payload.asset_results.iter().map(|ar| &ar.asset).collect();
    // Stable sort, so the first listing of a repeated id comes first.
    out.sort_by_key(|a| a.asset_id);
    out.dedup_by_key(|a| a.asset_id);
    out
}

/// The payload's endpoints, ordered by (asset, endpoint id); an endpoint
/// listed twice is kept once (its first listing).
pub fn endpoints(payload: &ScanPayload) -> Vec<EndpointRow<'_>> {
    let mut out: Vec<EndpointRow<'_>> = endpoint_views(payload)
        .into_iter()
        .map(|v| {
            let ep = v.ep;
            let mut open_tcp_ports: Vec<u16> =
                ep.ports.tcp.iter().filter(|p| p.state == "open").map(|p| p.port).collect();
            let mut tls_ports: Vec<u16> = ep
                .tls
                .iter()
                .filter(|t| t.handshake_on(t.port))
                .map(|t| t.port)
                .collect();
            let mut http_urls: Vec<&str> =
                ep.http.iter().filter(|h| h.status_code.is_some()).map(|h| h.url.as_str()).collect();
            for v in [&mut open_tcp_ports, &mut tls_ports] {
                v.sort_unstable();
                v.dedup();
            }
            http_urls.sort_unstable();
            http_urls.dedup();
            EndpointRow {
                asset_id: v.asset_id,
                endpoint_id: v.endpoint_id,
                ip: ep.ip.as_deref(),
                observed_host: v.observed_host,
                domain_context: ep.domain_context.as_deref(),
                open_tcp_ports,
                tls_ports,
                http_urls,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.asset_id, &a.endpoint_id).cmp(&(b.asset_id, &b.endpoint_id)));
    out.dedup_by(|b, a| a.asset_id == b.asset_id && a.endpoint_id == b.endpoint_id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload() -> ScanPayload {
        ScanPayload::from_value(&json!({
            "schema_version": "1.2",
            "scan": {"scan_id": "5ca10000-0000-4000-8000-000000000001", "tenant_id": "11111111-1111-1111-1111-111111111111",
                     "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:10:00Z"},
            "asset_results": [
                {"asset": {"asset_id": "bbbbbbbb-0000-4000-8000-000000000002", "asset_type": "domain",
                           "asset_value": "Example.COM.", "tags": ["prod", "a \"quoted\", tag"]},
                 "endpoints": [
                    {"ip": "203.0.113.20", "domain_context": "Example.COM.",
                     "ports": {"tcp": [{"port": 443, "state": "open"}, {"port": 80, "state": "open"},
                                       {"port": 443, "state": "open"}, {"port": 8443, "state": "closed"}]},
                     "tls": [{"port": 443, "tls_versions": ["tls12"]}, {"port": 8443, "tls_versions": []}],
                     "http": [{"url": "https://example.com/", "status_code": 200},
                              {"url": "http://example.com/", "status_code": 301},
                              {"url": "http://example.com:8080/"}]},
                    {"observed_host": "WWW.Example.com"}
                 ]},
                {"asset": {"asset_id": "aaaaaaaa-0000-4000-8000-000000000001", "asset_type": "ip",
                           "asset_value": "198.51.100.7"},
                 "endpoints": [{"ip": "198.51.100.7", "ports": {"tcp": [{"port": 22, "state": "open"}]}},
                               {"ip": "198.51.100.7", "ports": {"tcp": [{"port": 25, "state": "open"}]}}]},
                {"asset": {"asset_id": "bbbbbbbb-0000-4000-8000-000000000002", "asset_type": "domain",
                           "asset_value": "listed-twice.example"},
                 "endpoints": []}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn assets_are_ordered_by_id_and_a_repeated_one_keeps_its_first_listing() {
        let p = payload();
        let a = assets(&p);
        let ids: Vec<String> = a.iter().map(|a| a.asset_id.to_string()).collect();
        assert_eq!(ids, ["aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"]);
        assert_eq!(a[1].asset_value.as_deref(), Some("Example.COM."));
        assert_eq!(a[1].tags, ["prod", "a \"quoted\", tag"]);
    }

    #[test]
    fn endpoints_carry_the_engines_host_and_id_and_what_answered() {
        let p = payload();
        let e = endpoints(&p);
        let ids: Vec<(String, &str)> = e.iter().map(|r| (r.asset_id.to_string(), r.endpoint_id.as_str())).collect();
        assert_eq!(
            ids,
            [
                ("aaaaaaaa-0000-4000-8000-000000000001".to_string(), "ip:198.51.100.7"),
                ("bbbbbbbb-0000-4000-8000-000000000002".to_string(), "host:www.example.com"),
                ("bbbbbbbb-0000-4000-8000-000000000002".to_string(), "ip:203.0.113.20|domain:example.com"),
            ]
        );
        // The IP asset listed one endpoint id twice: the first listing wins.
        assert_eq!(e[0].open_tcp_ports, [22]);
        let web = &e[2];
        assert_eq!(web.observed_host, "example.com");
        assert_eq!(web.domain_context, Some("Example.COM."));
        assert_eq!(web.open_tcp_ports, [80, 443], "closed ports and repeats are left out");
        assert_eq!(web.tls_ports, [443], "a port without a completed handshake is left out");
        assert_eq!(web.http_urls, ["http://example.com/", "https://example.com/"], "only URLs that answered");
        assert!(e[1].open_tcp_ports.is_empty() && e[1].ip.is_none());
    }
}
