//! RB4: certificate issues on a TLS port: expired or near expiry
//! (`EngineConfig::near_expiry_days`), self-signed, or not naming the domain
//! the endpoint was reached by.

use chrono::Duration;
use serde_json::{json, Map};

use super::{tls_port_proof, tls_summary, to_value, Candidate};
use crate::canon::{canonical_host, cert_name_matches};
use crate::config::EngineConfig;
use crate::contract::{Endpoint, ScanPayload, TlsObservation};
use crate::diff::{Authority, PriorState};
use crate::identity::RiskBucket;

/// Every anchor the certificate offers, most preferred first: the SPKI hash
/// survives a renewal with the same key, the certificate hash does not, and
/// a serial is only unique per issuer.
pub(crate) fn cert_anchors(t: &TlsObservation) -> Vec<String> {
    let Some(c) = t.certificate.as_ref() else { return Vec::new() };
    [("spki", &c.spki_sha256), ("cert", &c.cert_sha256), ("serial", &c.serial)]
        .into_iter()
        .filter_map(|(kind, v)| {
            let v = v.as_deref()?.trim();
            (!v.is_empty()).then(|| format!("{kind}:{}", v.to_ascii_lowercase()))
        })
        .collect()
}

/// One exposure per issue class the certificate has.
pub(crate) fn candidates(
    payload: &ScanPayload,
    config: &EngineConfig,
    ep: &Endpoint,
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
    if let Some(domain) = ep.domain_context.as_deref().map(canonical_host).filter(|_| has_names) {
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

/// Fixed when a TLS tool completed a handshake on the port whose certificate
/// shows what the issue is judged by: a validity end for expiry, a
/// self-signed verdict, names for a hostname mismatch.
pub(crate) fn proof_of_fix(auth: &Authority<'_>, ep: &Endpoint, prev: &PriorState) -> Result<String, String> {
    let shows: fn(&TlsObservation) -> bool = match prev.fingerprint.as_str() {
        "issue:expiry" => |t| t.certificate.as_ref().is_some_and(|c| c.not_after.is_some()),
        "issue:self_signed" => |t| t.certificate.as_ref().is_some_and(|c| c.is_self_signed.is_some()),
        "issue:hostname_mismatch" => |t| {
            t.certificate.as_ref().is_some_and(|c| {
                !c.sans.is_empty() || c.subject_cn.as_deref().is_some_and(|cn| !cn.trim().is_empty())
            })
        },
        _ => |_| true,
    };
    tls_port_proof(auth, ep, prev, |on_port| on_port.iter().any(|t| shows(t)))
}
