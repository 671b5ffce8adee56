//! Steps 1–3 of docs/contract.md §D-6.2: observations → candidate exposures (RB1–RB7
//! per docs/contract.md §P-7) → identity and material hash → one exposure per identity.


use serde::Serialize;
use serde_json::{json, Value};

use crate::canon::canonical_host;
use crate::config::EngineConfig;
use crate::contract::{Endpoint, Id, ScanPayload};
use crate::buckets::{
    rb1_admin_port, rb2_panel, rb3_weak_tls, rb4_certificate, rb5_headers, rb6_unknown_service, rb7_email, Candidate,
};
use crate::identity::{material_hash, IdentityParts, RiskBucket};

/// A normalised exposure (docs/contract.md §D-2.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exposure {
    pub identity_key: String,
    pub tenant_id: Id,
    pub asset_id: Id,
    pub observed_host: String,
    pub observed_ip: Option<String>,
    pub risk_bucket: RiskBucket,
    pub proto: String,
    pub port: u16,
    pub fingerprint: String,
    /// Fingerprint plus the material parts (docs/design.md D1), for people reading rows.
    pub detail: String,
    pub material_hash: String,
    pub evidence: Value,
    pub endpoint_id: String,
}

/// Everything about one endpoint that normalisation and authority share.
pub(crate) struct EndpointView<'a> {
    pub asset_id: Id,
    pub endpoint_id: String,
    pub observed_host: String,
    pub ep: &'a Endpoint,
}

/// Endpoints of the payload with their canonical host and stable id.
pub(crate) fn endpoint_views(payload: &ScanPayload) -> Vec<EndpointView<'_>> {
    let mut out = Vec::new();
    for ar in &payload.asset_results {
        let asset_is_domain = ar.asset.asset_type == "domain";
        for ep in &ar.endpoints {
            let host = ep
                .observed_host
                .clone()
                .or_else(|| {
                    if asset_is_domain {
                        ar.asset.canonical_host.clone().or_else(|| ar.asset.asset_value.clone())
                    } else {
                        None
                    }
                })
                .or_else(|| ep.canonical_ip())
                .or_else(|| ar.asset.canonical_host.clone())
                .or_else(|| ar.asset.asset_value.clone())
                .unwrap_or_default();
            let observed_host = canonical_host(&host);
            let endpoint_id = ep.endpoint_id.clone().unwrap_or_else(|| match (&ep.canonical_ip(), &ep.domain_context) {
                (Some(ip), Some(d)) => format!("ip:{ip}|domain:{}", canonical_host(d)),
                (Some(ip), None) => format!("ip:{ip}"),
                (None, _) => format!("host:{observed_host}"),
            });
            out.push(EndpointView { asset_id: ar.asset.asset_id, endpoint_id, observed_host, ep });
        }
    }
    out
}

/// Normalises and dedupes a payload. Output is sorted by identity_key.
pub fn normalize(payload: &ScanPayload, config: &EngineConfig) -> Vec<Exposure> {
    let mut candidates = Vec::new();
    for view in endpoint_views(payload) {
        candidates_for_endpoint(payload, config, &view, &mut candidates);
    }
    rb5_headers::union_missing_headers(&mut candidates);
    dedupe(candidates)
}

fn candidates_for_endpoint(
    payload: &ScanPayload,
    config: &EngineConfig,
    view: &EndpointView<'_>,
    out: &mut Vec<Exposure>,
) {
    let ep = view.ep;
    let mut found: Vec<Candidate> = Vec::new();
    rb1_admin_port::candidates(config, ep, &mut found);
    rb2_panel::candidates(config, ep, &mut found);
    for t in &ep.tls {
        rb3_weak_tls::candidates(t, &mut found);
        rb4_certificate::candidates(payload, config, ep, t, &mut found);
    }
    rb5_headers::candidates(ep, &mut found);
    rb6_unknown_service::candidates(config, ep, &mut found);

    let ids = IdText { tenant: payload.scan.tenant_id.to_string(), asset: view.asset_id.to_string() };
    let mut exposures: Vec<Exposure> = found
        .into_iter()
        .map(|c| finish(payload, view, &ids, &view.observed_host, c))
        .collect();

    // RB7 is about the domain, not the endpoint IP.
    if let Some((domain, rb7)) = rb7_email::candidates(ep) {
        for c in rb7 {
            let mut x = finish(payload, view, &ids, &domain, c);
            x.observed_ip = None;
            exposures.push(x);
        }
    }
    out.extend(exposures);
}

/// Tenant and asset id as text, formatted once per endpoint.
struct IdText {
    tenant: String,
    asset: String,
}

fn finish(payload: &ScanPayload, view: &EndpointView<'_>, ids: &IdText, host: &str, c: Candidate) -> Exposure {
    let bucket = c.bucket.as_str();
    let identity_key = IdentityParts {
        tenant_id: &ids.tenant,
        asset_id: &ids.asset,
        observed_host: host,
        risk_bucket: bucket,
        proto: &c.proto,
        port: i64::from(c.port),
        fingerprint: &c.fingerprint,
    }
    .identity_key();
    let mut evidence = c.evidence;
    evidence.insert("detail".into(), json!(c.detail));
    evidence.insert("endpoint_id".into(), json!(view.endpoint_id));
    evidence.insert("ip".into(), json!(view.ep.canonical_ip()));
    let evidence = Value::Object(evidence);
    Exposure {
        identity_key,
        tenant_id: payload.scan.tenant_id,
        asset_id: view.asset_id,
        observed_host: host.to_string(),
        observed_ip: view.ep.canonical_ip(),
        risk_bucket: c.bucket,
        proto: c.proto,
        port: c.port,
        fingerprint: c.fingerprint,
        detail: c.detail,
        material_hash: material_hash(c.bucket, &evidence),
        evidence,
        endpoint_id: view.endpoint_id.clone(),
    }
}

/// Completeness rank of docs/contract.md §D-5.2: http+tls, then nuclei raw, then a cert anchor.
fn completeness(e: &Exposure) -> (bool, bool, bool) {
    let ev = &e.evidence;
    (
        ev.get("http").is_some() && ev.get("tls").is_some(),
        ev.get("nuclei_raw").is_some(),
        ev.get("cert_anchor").is_some_and(|a| !a.is_null()),
    )
}

/// One exposure per identity_key (docs/contract.md §D-5). The winner does not
/// depend on input order: most complete first, then the contract's tie order,
/// then the evidence itself so that even full ties are decided.
pub fn dedupe(mut candidates: Vec<Exposure>) -> Vec<Exposure> {
    // Sorting (stable) and keeping the best of each run of equal keys gives
    // the same result as a map from key to best, without copying the keys.
    candidates.sort_by(|a, b| a.identity_key.cmp(&b.identity_key));
    let mut out: Vec<Exposure> = Vec::with_capacity(candidates.len());
    for c in candidates {
        match out.last_mut() {
            Some(cur) if cur.identity_key == c.identity_key => {
                if better(&c, cur) {
                    *cur = c;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn better(a: &Exposure, b: &Exposure) -> bool {
    let rank = |e: &Exposure| completeness(e);
    if rank(a) != rank(b) {
        return rank(a) > rank(b);
    }
    let key = |e: &Exposure| {
        (e.risk_bucket, e.observed_host.clone(), e.port, e.fingerprint.clone(), e.endpoint_id.clone())
    };
    match key(a).cmp(&key(b)) {
        std::cmp::Ordering::Equal => (&a.material_hash, a.evidence.to_string()) < (&b.material_hash, b.evidence.to_string()),
        o => o.is_lt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(endpoint: Value, finished: &str) -> ScanPayload {
        ScanPayload::from_value(&json!({
            "schema_version": "1.1",
            "scan": {"scan_id": "5ca10000-0000-4000-8000-000000000001", "tenant_id": "11111111-1111-1111-1111-111111111111",
                     "started_at": "2026-01-01T00:00:00Z", "finished_at": finished},
            "asset_results": [{"asset": {"asset_id": "aaaaaaaa-0000-4000-8000-000000000002", "asset_type": "domain",
                                         "asset_value": "example.com"},
                               "endpoints": [endpoint]}]
        }))
        .unwrap()
    }

    fn cert_endpoint(not_after: &str, sans: &[&str]) -> Value {
        json!({"ip": "203.0.113.20", "domain_context": "Example.COM.", "ports": {"tcp": [{"port": 443, "state": "open"}]},
               "tls": [{"port": 443, "tls_versions": ["tls12"], "certificate": {
                   "not_after": not_after, "sans": sans, "is_self_signed": false, "spki_sha256": "AB"}}]})
    }

    fn fingerprints(xs: &[Exposure]) -> Vec<String> {
        let mut v: Vec<String> = xs.iter().map(|x| format!("{}:{}", x.risk_bucket, x.detail)).collect();
        v.sort();
        v
    }

    #[test]
    fn near_expiry_boundary_is_inclusive_at_thirty_days_and_expired_is_strict() {
        let c = EngineConfig::default();
        let at = |finished: &str| fingerprints(&normalize(&payload(cert_endpoint("2026-01-31T00:00:00Z", &["example.com"]), finished), &c));
        assert_eq!(at("2026-01-01T00:00:00Z"), vec!["RB4:issue:near_expiry|cert:spki:ab"]);
        assert!(at("2025-12-31T23:59:59Z").is_empty(), "30 days and 1 second left is fine");
        assert_eq!(at("2026-01-31T00:00:00Z"), vec!["RB4:issue:near_expiry|cert:spki:ab"], "0 days left is near expiry");
        assert_eq!(at("2026-01-31T00:00:01Z"), vec!["RB4:issue:expired|cert:spki:ab"]);
    }

    #[test]
    fn hostname_mismatch_honours_single_label_wildcards() {
        let c = EngineConfig::default();
        let run = |sans: &[&str]| fingerprints(&normalize(&payload(cert_endpoint("2027-01-01T00:00:00Z", sans), "2026-01-01T00:00:00Z"), &c));
        assert!(run(&["example.com"]).is_empty());
        assert_eq!(run(&["*.example.com"]), vec!["RB4:issue:hostname_mismatch|cert:spki:ab"]);
        assert_eq!(run(&["www.example.com"]), vec!["RB4:issue:hostname_mismatch|cert:spki:ab"]);
    }

    #[test]
    fn rb6_needs_an_open_baseline_port_without_a_classified_service() {
        let c = EngineConfig::default();
        let ep = |port: u16, open: bool, http: bool| {
            let mut e = json!({"ip": "203.0.113.20",
                "ports": {"tcp": [{"port": port, "state": if open {"open"} else {"closed"}}]},
                "errors": [{"scope": "endpoint", "tool": "httpx", "details": {"port": port, "symptom": "http_timeout"}}]});
            if http {
                e["http"] = json!([{"url": format!("http://example.com:{port}/"), "status_code": 200,
                    "headers": {"content-security-policy": "x", "x-frame-options": "x", "x-content-type-options": "x"}}]);
            }
            e
        };
        let run = |e: Value| fingerprints(&normalize(&payload(e, "2026-01-01T00:00:00Z"), &c));
        assert_eq!(run(ep(8080, true, false)), vec!["RB6:symptom:http_timeout|port:8080"]);
        assert!(run(ep(8080, false, false)).is_empty(), "port not open");
        assert!(run(ep(8080, true, true)).is_empty(), "service answered");
        assert!(run(ep(12345, true, false)).is_empty(), "not a baseline port");
    }

    #[test]
    fn rb2_only_for_allowlisted_templates() {
        let mut c = EngineConfig::default();
        let finding = |id: &str, path: &str, tags: Value| json!({"ip": "203.0.113.20", "findings": {"nuclei": [
            {"template_id": id, "template_path": path, "matched_at": "HTTP://Example.com:80/admin/?next=1", "metadata": {"tags": tags}}]}});
        let run = |e: Value, c: &EngineConfig| fingerprints(&normalize(&payload(e, "2026-01-01T00:00:00Z"), c));
        assert_eq!(run(finding("x-panel", "http/exposed-panels/x.yaml", json!([])), &c),
                   vec!["RB2:tpl:x-panel|url:http://example.com/admin/"]);
        assert_eq!(run(finding("y", "http/misc/y.yaml", json!(["Panel"])), &c).len(), 1);
        assert!(run(finding("z", "http/cves/z.yaml", json!(["cve"])), &c).is_empty());
        c.panel_template_ids.push("z".into());
        assert_eq!(run(finding("z", "http/cves/z.yaml", json!(["cve"])), &c).len(), 1);
    }

    #[test]
    fn dedupe_prefers_the_most_complete_evidence_in_any_order() {
        let c = EngineConfig::default();
        // The same RB5 identity seen twice: once bare, once with the embedded TLS block.
        let http = |tls: bool| {
            let mut h = json!({"url": "https://example.com/", "status_code": 200, "headers": {"server": "x"}});
            if tls {
                h["tls"] = json!({"jarm": "abc"});
            }
            h
        };
        for order in [[false, true], [true, false]] {
            let e = json!({"ip": "203.0.113.20", "http": [http(order[0]), http(order[1])]});
            let out = normalize(&payload(e, "2026-01-01T00:00:00Z"), &c);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].evidence["tls"]["jarm"], json!("abc"));
        }
    }
}
