//! RB5: an HTTP service that answered without the security headers the
//! engine requires (CSP, X-Content-Type-Options, X-Frame-Options, and HSTS
//! over HTTPS). Judged per URL root.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map};

use super::{url_root_proof, Candidate};
use crate::canon::{canonical_url_root, redact_userinfo, url_scheme_port};
use crate::contract::Endpoint;
use crate::diff::{Authority, PriorState, HTTP_TOOLS};
use crate::identity::{material_hash, RiskBucket};
use crate::normalize::Exposure;

/// One exposure per URL root that answered with headers missing.
pub(crate) fn candidates(ep: &Endpoint, found: &mut Vec<Candidate>) {
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
}

/// RB5 is judged per URL root, so a header missing under any path the scan
/// fetched is missing for the root (docs/design.md D10). Without the union the
/// exposure would flap with whichever paths a scan happened to fetch.
pub(crate) fn union_missing_headers(candidates: &mut [Exposure]) {
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

/// Fixed when an HTTP tool fetched the URL root and it answered with headers
/// (a status without headers shows nothing about them).
pub(crate) fn proof_of_fix(auth: &Authority<'_>, ep: &Endpoint, prev: &PriorState) -> Result<String, String> {
    let listed = |c: &crate::contract::Coverage, root: &str| {
        c.http_urls.iter().any(|u| canonical_url_root(u).as_deref() == Some(root))
    };
    url_root_proof(auth, ep, prev, HTTP_TOOLS, listed, true, false)
}
