//! RB6: a worker reported a symptom (timeout, reset, TLS failure, …) on an
//! open baseline port that no tool could identify as a known service
//! (docs/contract.md §P-7.6, docs/design.md D4).

use std::collections::BTreeSet;

use serde_json::{json, Map};

use super::{not_covered, Candidate};
use crate::config::EngineConfig;
use crate::contract::{Endpoint, PortState};
use crate::diff::{Authority, PriorState};
use crate::identity::{RiskBucket, RB6_FINGERPRINT};

/// One exposure per port with a symptom, open, in the baseline, unidentified.
pub(crate) fn candidates(config: &EngineConfig, ep: &Endpoint, found: &mut Vec<Candidate>) {
    let open_tcp: BTreeSet<u16> = ep
        .ports
        .tcp
        .iter()
        .filter(|p| !p.unusable() && p.port_state() == PortState::Open)
        .map(|p| p.port)
        .collect();
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
            fingerprint: RB6_FINGERPRINT.into(),
            detail: format!("symptom:{symptom}|port:{port}"),
            evidence: ev,
        });
    }
}

/// Fixed when the port is gone, or when any tool now identifies the service
/// on it (`Endpoint::service_identified`).
pub(crate) fn proof_of_fix(auth: &Authority<'_>, ep: &Endpoint, prev: &PriorState) -> Result<String, String> {
    let port = prev.port;
    if let Some(r) = auth.port_gone(ep, port) {
        return Ok(r);
    }
    if ep.service_identified(port) {
        return Ok(format!("tcp/{port} now answers as a known service"));
    }
    not_covered(ep, &format!("classification of tcp/{port}"))
}
