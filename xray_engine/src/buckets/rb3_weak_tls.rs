//! RB3: a TLS port that still offers old protocol versions (TLS 1.0/1.1,
//! SSL) or weak / insecure cipher classes.

use std::collections::BTreeSet;

use serde_json::{json, Map};

use super::{tls_port_proof, tls_summary, Candidate};
use crate::canon::tls_version;
use crate::contract::{Endpoint, TlsObservation};
use crate::diff::{Authority, PriorState};
use crate::identity::RiskBucket;

/// Up to two exposures per TLS observation: old versions, weak ciphers.
pub(crate) fn candidates(t: &TlsObservation, found: &mut Vec<Candidate>) {
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

/// Fixed when a TLS tool completed a handshake on the port and every
/// version it reports is one the engine knows: an unknown one might be weak.
pub(crate) fn proof_of_fix(auth: &Authority<'_>, ep: &Endpoint, prev: &PriorState) -> Result<String, String> {
    tls_port_proof(auth, ep, prev, |on_port| {
        !on_port.is_empty() && on_port.iter().all(|t| t.tls_versions.iter().all(|v| tls_version(v).is_some()))
    })
}
