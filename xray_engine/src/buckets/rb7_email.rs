//! RB7: the domain's email posture: SPF missing or weak, DMARC missing, weak
//! or `p=none`, DKIM missing or partial for the checked selectors. It is
//! about the domain, not an address, so it is raised and judged per domain.

use serde_json::{json, Map, Value};

use super::Candidate;
use crate::canon::canonical_host;
use crate::contract::{DnsEmail, Endpoint};
use crate::diff::{Authority, PriorState};
use crate::identity::RiskBucket;
use crate::normalize::EndpointView;

/// The domain and its exposures, one per weak record, if the endpoint carries
/// a DNS email verdict for a domain.
pub(crate) fn candidates(ep: &Endpoint) -> Option<(String, Vec<Candidate>)> {
    let dns = ep.dns_email.as_ref()?;
    let domain = dns.domain.as_deref().map(canonical_host)?;
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
    Some((domain, rb7))
}

fn dmarc_weak(dns: &DnsEmail) -> Option<Value> {
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

/// RB7: the domain's verdict for the record, from whichever endpoints
/// carry one. Endpoint errors about addresses do not touch it; DNS errors
/// do, and any endpoint still calling the record weak keeps it open.
pub(crate) fn domain_verdict(
    auth: &Authority<'_>,
    endpoints: &[&EndpointView<'_>],
    prev: &PriorState,
) -> Result<Value, String> {
    let record = prev.fingerprint.strip_prefix("record:").unwrap_or_default();
    let record = record.split('|').next().unwrap_or_default();
    let mut passing = Vec::new();
    for v in endpoints {
        let Some(dns) = &v.ep.dns_email else { continue };
        if !dns.errors.is_empty() {
            return Err(format!("DNS errors for {}", prev.observed_host));
        }
        let listed = v.ep.coverage.as_ref().is_none_or(|c| c.dns_checks.iter().any(|d| d == record));
        let assessment = match record {
            "spf" => dns.spf.as_ref().and_then(|s| s.assessment.clone()),
            "dmarc" => dns.dmarc.as_ref().and_then(|s| s.assessment.clone()),
            "dkim" => dns.dkim.as_ref().and_then(|s| s.assessment.clone()),
            _ => None,
        };
        match assessment.as_deref() {
            Some(a @ ("pass" | "ok")) if listed => {
                passing.push(json!({"endpoint_id": v.endpoint_id, "ip": v.ep.canonical_ip(),
                                    "result": format!("{record} checked: {a}")}))
            }
            // Not assessed here (an empty dns_email block, or the check
            // did not run on this endpoint): this endpoint has no verdict.
            None => {}
            Some(_) if !listed => {}
            Some(a) => return Err(format!("{record} still assessed {a} on endpoint {}", v.endpoint_id)),
        }
    }
    if passing.is_empty() {
        return Err(format!("{record} record check not covered for {}", prev.observed_host));
    }
    Ok(json!({
        "basis": if auth.uses_coverage() { "coverage" } else { "inferred" },
        "bucket": prev.risk_bucket,
        "scan_finished_at": auth.payload.scan.finished_at,
        "endpoints": passing,
    }))
}

