//! Steps 1–3 of docs/contract.md §D-6.2: observations → candidate exposures (RB1–RB7
//! per docs/contract.md §P-7) → identity and material hash → one exposure per identity.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::canon::{
    canonical_host, canonical_url, canonical_url_root, cert_name_matches, redact_userinfo, tls_version, url_scheme_port,
};
use crate::config::EngineConfig;
use crate::contract::{Endpoint, Id, PortState, ScanPayload, TlsObservation};
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
    union_missing_headers(&mut candidates);
    dedupe(candidates)
}

/// RB5 is judged per URL root, so a header missing under any path the scan
/// fetched is missing for the root (docs/design.md D10). Without the union the
/// exposure would flap with whichever paths a scan happened to fetch.
fn union_missing_headers(candidates: &mut [Exposure]) {
    let mut union: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in candidates.iter().filter(|c| c.risk_bucket == RiskBucket::Rb5) {
        let set = union.entry(c.identity_key.as_str()).or_default();
        for h in c.evidence["missing_headers"].as_array().into_iter().flatten() {
            set.extend(h.as_str().map(str::to_string));
        }
    }
    let union: BTreeMap<String, Vec<String>> =
        union.into_iter().map(|(k, v)| (k.to_string(), v.into_iter().collect())).collect();
    for c in candidates.iter_mut().filter(|c| c.risk_bucket == RiskBucket::Rb5) {
        let Some(missing) = union.get(&c.identity_key) else { continue };
        if c.evidence["missing_headers"] == json!(missing) {
            continue;
        }
        let root = c.fingerprint.strip_prefix("url:").unwrap_or_default();
        c.detail = format!("missing:{}|url:{root}", missing.join(","));
        c.evidence["missing_headers"] = json!(missing);
        c.evidence["detail"] = json!(c.detail);
        c.material_hash = material_hash(c.risk_bucket, &c.evidence);
    }
}

struct Candidate {
    bucket: RiskBucket,
    proto: String,
    port: u16,
    fingerprint: String,
    detail: String,
    evidence: Map<String, Value>,
}

fn candidates_for_endpoint(
    payload: &ScanPayload,
    config: &EngineConfig,
    view: &EndpointView<'_>,
    out: &mut Vec<Exposure>,
) {
    let ep = view.ep;
    let mut found: Vec<Candidate> = Vec::new();
    let is_open = |p: &&crate::contract::PortObservation| !p.unusable() && p.port_state() == PortState::Open;
    let open_tcp: BTreeSet<u16> = ep.ports.tcp.iter().filter(is_open).map(|p| p.port).collect();

    // RB1: an open remote-admin port.
    for p in ep.ports.tcp.iter().filter(is_open) {
        let Some(family) = config.admin_ports.get(&p.port) else { continue };
        let mut ev = Map::new();
        ev.insert("port".into(), json!(p.port));
        ev.insert("service_family".into(), json!(family));
        ev.insert("tool".into(), json!(p.tool.as_deref().unwrap_or("naabu")));
        ev.insert("port_observation".into(), to_value(p));
        if let Some(n) = ep.findings.nmap.iter().find(|n| n.port == p.port) {
            ev.insert("nmap".into(), to_value(n));
        }
        found.push(Candidate {
            bucket: RiskBucket::Rb1,
            proto: "tcp".into(),
            port: p.port,
            fingerprint: format!("svc:{family}"),
            detail: format!("svc:{family}|port:{}", p.port),
            evidence: ev,
        });
    }

    // RB2: a nuclei match on an allowlisted panel template.
    for f in &ep.findings.nuclei {
        let tags = f.metadata.as_ref().map(|m| m.tags.as_slice()).unwrap_or(&[]);
        if !config.is_panel_template(&f.template_id, f.template_path.as_deref(), tags) {
            continue;
        }
        let Some(url) = canonical_url(&f.matched_at) else { continue };
        let Some((scheme, port)) = url_scheme_port(&url) else { continue };
        let mut ev = Map::new();
        ev.insert("template_id".into(), json!(f.template_id));
        ev.insert("canonical_url".into(), json!(url));
        ev.insert("matched_at".into(), json!(redact_userinfo(&f.matched_at)));
        ev.insert("extracted_results".into(), json!(f.extracted_results));
        ev.insert("severity".into(), json!(f.severity));
        ev.insert("name".into(), json!(f.metadata.as_ref().and_then(|m| m.name.clone())));
        ev.insert("tool".into(), json!(f.tool.as_deref().unwrap_or("nuclei")));
        if let Some(raw) = &f.raw {
            ev.insert("nuclei_raw".into(), redacted(raw));
        }
        found.push(Candidate {
            bucket: RiskBucket::Rb2,
            proto: scheme,
            port,
            fingerprint: format!("tpl:{}|url:{url}", f.template_id),
            detail: format!("tpl:{}|url:{url}", f.template_id),
            evidence: ev,
        });
    }

    for t in &ep.tls {
        rb3_candidates(t, &mut found);
        rb4_candidates(payload, config, view, t, &mut found);
    }

    // RB5: missing security headers on an HTTP service that answered.
    for h in &ep.http {
        let (Some(headers), Some(_status)) = (&h.headers, h.status_code) else { continue };
        let Some(root) = canonical_url_root(&h.url) else { continue };
        let Some((url_scheme, port)) = url_scheme_port(&h.url) else { continue };
        let scheme = h.scheme.clone().map(|s| s.to_ascii_lowercase()).unwrap_or(url_scheme);
        let present: BTreeSet<String> =
            headers.keys().map(|k| k.to_ascii_lowercase().replace('_', "-")).collect();
        let required: &[&str] = if scheme == "https" {
            &["content-security-policy", "strict-transport-security", "x-content-type-options", "x-frame-options"]
        } else {
            &["content-security-policy", "x-content-type-options", "x-frame-options"]
        };
        let missing: Vec<&str> = required.iter().copied().filter(|r| !present.contains(*r)).collect();
        if missing.is_empty() {
            continue;
        }
        let mut ev = Map::new();
        ev.insert("missing_headers".into(), json!(missing));
        ev.insert("url_root".into(), json!(root));
        ev.insert("url".into(), json!(redact_userinfo(&h.url)));
        ev.insert("status_code".into(), json!(h.status_code));
        ev.insert("tool".into(), json!(h.tool.as_deref().unwrap_or("httpx")));
        ev.insert("http".into(), json!({"title": h.title, "status_code": h.status_code, "headers": headers}));
        if let Some(tls) = &h.tls {
            ev.insert("tls".into(), tls.clone());
        }
        found.push(Candidate {
            bucket: RiskBucket::Rb5,
            proto: scheme,
            port,
            fingerprint: format!("url:{root}"),
            detail: format!("missing:{}|url:{root}", missing.join(",")),
            evidence: ev,
        });
    }

    // RB6: the worker reported a symptom on an open baseline port that no
    // HTTP or TLS probe could classify (docs/contract.md §P-7.6, docs/design.md D4).
    for e in &ep.errors {
        let (Some(symptom), Some(port)) = (e.symptom(), e.symptom_port()) else { continue };
        if !open_tcp.contains(&port)
            || !config.baseline_ports().contains(&port)
            || ep.service_identified(port)
        {
            continue;
        }
        let mut ev = Map::new();
        ev.insert("symptom".into(), json!(symptom));
        ev.insert("port".into(), json!(port));
        ev.insert("tool".into(), json!(e.tool));
        ev.insert("message".into(), json!(e.message));
        found.push(Candidate {
            bucket: RiskBucket::Rb6,
            proto: "tcp".into(),
            port,
            fingerprint: crate::identity::RB6_FINGERPRINT.into(),
            detail: format!("symptom:{symptom}|port:{port}"),
            evidence: ev,
        });
    }

    let ids = IdText { tenant: payload.scan.tenant_id.to_string(), asset: view.asset_id.to_string() };
    let mut exposures: Vec<Exposure> = found
        .into_iter()
        .map(|c| finish(payload, view, &ids, &view.observed_host, c))
        .collect();

    // RB7 is about the domain, not the endpoint IP.
    if let Some(dns) = &ep.dns_email {
        if let Some(domain) = dns.domain.as_deref().map(canonical_host) {
            let mut rb7 = Vec::new();
            if let Some(spf) = &dns.spf {
                if matches!(spf.assessment.as_deref(), Some("missing" | "weak")) {
                    rb7.push(rb7_candidate(
                        "spf",
                        json!({"spf_all_mechanism": spf.raw.as_deref().and_then(spf_all_mechanism),
                               "assessment": spf.assessment, "raw": spf.raw, "issues": spf.issues}),
                    ));
                }
            }
            if let Some(d) = &dmarc_weak(dns) {
                rb7.push(rb7_candidate("dmarc", d.clone()));
            }
            if let Some(dkim) = &dns.dkim {
                if matches!(dkim.assessment.as_deref(), Some("missing" | "partial")) {
                    let mut present = dkim.present_selectors.clone();
                    present.sort();
                    present.dedup();
                    rb7.push(rb7_candidate(
                        "dkim",
                        json!({"dkim_present_selectors": present, "checked_selectors": dkim.checked_selectors,
                               "assessment": dkim.assessment, "issues": dkim.issues}),
                    ));
                }
            }
            for c in rb7 {
                let mut x = finish(payload, view, &ids, &domain, c);
                x.observed_ip = None;
                exposures.push(x);
            }
        }
    }
    out.extend(exposures);
}

fn dmarc_weak(dns: &crate::contract::DnsEmail) -> Option<Value> {
    let d = dns.dmarc.as_ref()?;
    let policy = d.policy.as_deref().map(str::to_ascii_lowercase);
    let weak = matches!(d.assessment.as_deref(), Some("missing" | "weak"))
        || (d.assessment.as_deref() != Some("error") && policy.as_deref() == Some("none"));
    weak.then(|| {
        json!({"dmarc_policy": policy, "assessment": d.assessment, "raw": d.raw, "issues": d.issues})
    })
}

fn rb7_candidate(record: &str, extra: Value) -> Candidate {
    let mut ev = Map::new();
    ev.insert("record".into(), json!(record));
    if let Value::Object(m) = extra {
        ev.extend(m);
    }
    ev.insert("tool".into(), json!("dns"));
    let detail = match record {
        "spf" => format!("record:spf|all:{}", ev["spf_all_mechanism"].as_str().unwrap_or("none")),
        "dmarc" => format!("record:dmarc|p:{}", ev["dmarc_policy"].as_str().unwrap_or("none")),
        _ => format!("record:dkim|present:{}", ev["dkim_present_selectors"].as_array().map(|a| a.len()).unwrap_or(0)),
    };
    Candidate {
        bucket: RiskBucket::Rb7,
        proto: "dns".into(),
        port: 0,
        fingerprint: format!("record:{record}"),
        detail,
        evidence: ev,
    }
}

/// The `all` mechanism of an SPF record (`-all`, `~all`, `?all`, `+all`).
fn spf_all_mechanism(raw: &str) -> Option<String> {
    raw.split_whitespace()
        .map(str::to_ascii_lowercase)
        .find(|t| matches!(t.as_str(), "all" | "-all" | "~all" | "?all" | "+all"))
        .map(|t| if t == "all" { "+all".to_string() } else { t })
}

/// `v` with the userinfo of every URL in it removed (credentials are never stored).
fn redacted(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains('@') => Value::String(redact_userinfo(s)),
        Value::Array(a) => Value::Array(a.iter().map(redacted).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), redacted(x))).collect()),
        other => other.clone(),
    }
}

fn rb3_candidates(t: &TlsObservation, found: &mut Vec<Candidate>) {
    let old: BTreeSet<String> = t
        .tls_versions
        .iter()
        .map(|v| tls_version(v).map_or_else(|| v.clone(), |(_, label)| label.to_string()))
        .filter(|v| matches!(v.as_str(), "TLS1.0" | "TLS1.1" | "SSL2.0" | "SSL3.0"))
        .collect();
    if !old.is_empty() {
        let mut ev = Map::new();
        ev.insert("category".into(), json!("old_versions"));
        ev.insert("old_tls_versions".into(), json!(old));
        ev.insert("tls_versions".into(), json!(t.tls_versions));
        ev.insert("tool".into(), json!(t.tool.as_deref().unwrap_or("tlsx")));
        ev.insert("tls".into(), tls_summary(t));
        found.push(Candidate {
            bucket: RiskBucket::Rb3,
            proto: "tls".into(),
            port: t.port,
            fingerprint: "tls:old_versions".into(),
            detail: format!("tls:old_versions|{}", old.iter().cloned().collect::<Vec<_>>().join(",")),
            evidence: ev,
        });
    }
    if let Some(cc) = &t.cipher_classes {
        let class = if !cc.insecure.is_empty() {
            "insecure"
        } else if !cc.weak.is_empty() {
            "weak"
        } else {
            return;
        };
        let mut ev = Map::new();
        ev.insert("category".into(), json!("weak_ciphers"));
        ev.insert("weak_cipher_class".into(), json!(class));
        ev.insert("weak_ciphers".into(), json!(cc.weak));
        ev.insert("insecure_ciphers".into(), json!(cc.insecure));
        ev.insert("tool".into(), json!(t.tool.as_deref().unwrap_or("tlsx")));
        ev.insert("tls".into(), tls_summary(t));
        found.push(Candidate {
            bucket: RiskBucket::Rb3,
            proto: "tls".into(),
            port: t.port,
            fingerprint: "tls:weak_ciphers".into(),
            detail: format!("tls:weak_ciphers|{class}"),
            evidence: ev,
        });
    }
}

fn tls_summary(t: &TlsObservation) -> Value {
    json!({"sni": t.sni, "tls_versions": t.tls_versions, "cipher": t.cipher, "jarm": t.jarm, "ja3": t.ja3})
}

/// Every anchor the certificate offers, most preferred first: the SPKI hash
/// survives a renewal with the same key, the certificate hash does not, and
/// a serial is only unique per issuer.
fn cert_anchors(t: &TlsObservation) -> Vec<String> {
    let Some(c) = t.certificate.as_ref() else { return Vec::new() };
    [("spki", &c.spki_sha256), ("cert", &c.cert_sha256), ("serial", &c.serial)]
        .into_iter()
        .filter_map(|(kind, v)| {
            let v = v.as_deref()?.trim();
            (!v.is_empty()).then(|| format!("{kind}:{}", v.to_ascii_lowercase()))
        })
        .collect()
}

fn rb4_candidates(
    payload: &ScanPayload,
    config: &EngineConfig,
    view: &EndpointView<'_>,
    t: &TlsObservation,
    found: &mut Vec<Candidate>,
) {
    let Some(cert) = &t.certificate else { return };
    let now = payload.observed_at().0;
    let anchors = cert_anchors(t);
    let anchor = anchors.first().cloned();
    let expiry_state = cert.not_after.map(|na| {
        let left = na.0 - now;
        if left < Duration::zero() {
            "expired"
        } else if left <= Duration::days(config.near_expiry_days) {
            "near_expiry"
        } else {
            "ok"
        }
    });
    let mut issues: Vec<(&str, &str)> = Vec::new();
    if let Some(state @ ("expired" | "near_expiry")) = expiry_state {
        issues.push(("expiry", state));
    }
    if cert.is_self_signed == Some(true) {
        issues.push(("self_signed", "self_signed"));
    }
    let has_names = !cert.sans.is_empty() || cert.subject_cn.as_deref().is_some_and(|cn| !cn.trim().is_empty());
    if let Some(domain) = view.ep.domain_context.as_deref().map(canonical_host).filter(|_| has_names) {
        let named = cert.sans.iter().any(|s| cert_name_matches(s, &domain))
            || cert.subject_cn.as_deref().is_some_and(|cn| cert_name_matches(cn, &domain));
        if !named {
            issues.push(("hostname_mismatch", "hostname_mismatch"));
        }
    }
    for (class, issue_type) in issues {
        let mut ev = Map::new();
        ev.insert("issue_type".into(), json!(issue_type));
        ev.insert("cert_anchor".into(), json!(anchor));
        ev.insert("cert_anchors".into(), json!(anchors));
        ev.insert("expiry_state".into(), json!(if class == "expiry" { expiry_state } else { None }));
        ev.insert("not_after".into(), json!(cert.not_after));
        ev.insert("evaluated_at".into(), json!(payload.observed_at()));
        ev.insert("certificate".into(), to_value(cert));
        ev.insert("tool".into(), json!(t.tool.as_deref().unwrap_or("tlsx")));
        ev.insert("tls".into(), tls_summary(t));
        found.push(Candidate {
            bucket: RiskBucket::Rb4,
            proto: "tls".into(),
            port: t.port,
            fingerprint: format!("issue:{class}"),
            detail: format!("issue:{issue_type}|cert:{}", anchor.as_deref().unwrap_or("none")),
            evidence: ev,
        });
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
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
