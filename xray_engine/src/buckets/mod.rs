//! One file per risk bucket, each holding the whole rule of its bucket:
//! what raises the exposure from one endpoint's observations (`candidates`,
//! called by [`crate::normalize`]) and what a rescan must show before the
//! exposure is FIXED (`proof_of_fix`, called by [`crate::diff`]). The
//! buckets themselves are defined in docs/contract.md §P-7.
//!
//! | bucket | file |
//! |---|---|
//! | RB1 remote-admin port open | [`rb1_admin_port`] |
//! | RB2 admin panel found by nuclei | [`rb2_panel`] |
//! | RB3 old TLS versions, weak ciphers | [`rb3_weak_tls`] |
//! | RB4 certificate issues | [`rb4_certificate`] |
//! | RB5 missing security headers | [`rb5_headers`] |
//! | RB6 service nobody could identify | [`rb6_unknown_service`] |
//! | RB7 SPF / DMARC / DKIM posture | [`rb7_email`] |

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::contract::TlsObservation;
use crate::identity::RiskBucket;

pub(crate) mod rb1_admin_port;
pub(crate) mod rb2_panel;
pub(crate) mod rb3_weak_tls;
pub(crate) mod rb4_certificate;
pub(crate) mod rb5_headers;
pub(crate) mod rb6_unknown_service;
pub(crate) mod rb7_email;

/// One exposure before identity and material hash are computed.
pub(crate) struct Candidate {
    pub(crate) bucket: RiskBucket,
    pub(crate) proto: String,
    pub(crate) port: u16,
    pub(crate) fingerprint: String,
    pub(crate) detail: String,
    pub(crate) evidence: Map<String, Value>,
}

pub(crate) fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub(crate) fn tls_summary(t: &TlsObservation) -> Value {
    json!({"sni": t.sni, "tls_versions": t.tls_versions, "cipher": t.cipher, "jarm": t.jarm, "ja3": t.ja3})
}

/// The refusal every `proof_of_fix` gives when this endpoint does not show
/// the check ran: the exposure is held, not FIXED.
pub(crate) fn not_covered(ep: &crate::contract::Endpoint, what: &str) -> Result<String, String> {
    Err(format!("{what} not covered on endpoint {}", ep.ip.as_deref().unwrap_or("?")))
}

/// RB2 and RB5 are judged per URL root. Fixed when the port is gone, or when
/// a tool of the family ran, the coverage lists the root (`listed`), the root
/// answered (with headers, if `needs_headers`), and no observation the engine
/// could not read might have been this exposure (`unreadable`).
pub(crate) fn url_root_proof(
    auth: &crate::diff::Authority<'_>,
    ep: &crate::contract::Endpoint,
    prev: &crate::diff::PriorState,
    tools: &[&str],
    listed: impl Fn(&crate::contract::Coverage, &str) -> bool,
    needs_headers: bool,
    unreadable: bool,
) -> Result<String, String> {
    use crate::canon::canonical_url_root;
    let url = prev.fingerprint.split("url:").nth(1).unwrap_or_default();
    let Some(root) = canonical_url_root(url) else {
        return Err(format!("fingerprint {:?} has no URL", prev.fingerprint));
    };
    if let Some(r) = auth.port_gone(ep, prev.port) {
        return Ok(r);
    }
    let answered = ep.http.iter().any(|h| {
        h.status_code.is_some()
            && canonical_url_root(&h.url).as_deref() == Some(root.as_str())
            && (!needs_headers || h.headers.is_some())
    });
    let listed = ep.coverage.as_ref().is_none_or(|c| listed(c, &root));
    match auth.ran(ep, tools) {
        Some(tool) if listed && answered && !unreadable => Ok(format!("{root} probed by {tool}, exposure absent")),
        _ => not_covered(ep, &root),
    }
}

/// RB3 and RB4 are judged on the TLS port. Fixed when the port is gone, or
/// when a TLS tool ran, the coverage lists the port, and the handshakes on it
/// show what the issue is judged by (`seen`).
pub(crate) fn tls_port_proof(
    auth: &crate::diff::Authority<'_>,
    ep: &crate::contract::Endpoint,
    prev: &crate::diff::PriorState,
    seen: impl Fn(&[&TlsObservation]) -> bool,
) -> Result<String, String> {
    let port = prev.port;
    if let Some(r) = auth.port_gone(ep, port) {
        return Ok(r);
    }
    // An unreadable TLS observation could have been this port's.
    if ep.tls.iter().any(|t| t.port == 0) {
        return not_covered(ep, &format!("TLS check of port {port}"));
    }
    let listed = ep.coverage.as_ref().is_none_or(|c| c.tls_ports.contains(&port));
    let on_port: Vec<&TlsObservation> = ep.tls.iter().filter(|t| t.handshake_on(port)).collect();
    let seen = seen(&on_port);
    match auth.ran(ep, crate::diff::TLS_TOOLS) {
        Some(tool) if listed && seen => Ok(format!("tls/{port} handshake completed by {tool}, issue absent")),
        _ => not_covered(ep, &format!("TLS check of port {port}")),
    }
}

