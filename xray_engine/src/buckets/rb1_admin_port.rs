//! RB1: a remote-administration port (SSH, RDP, VNC, databases, …; the list
//! is `EngineConfig::admin_ports`) is open.

use serde_json::{json, Map};

use super::{not_covered, to_value, Candidate};
use crate::config::EngineConfig;
use crate::contract::{Endpoint, PortState};
use crate::diff::{Authority, PriorState};
use crate::identity::RiskBucket;

/// One exposure per open admin port, fingerprinted by its service family.
pub(crate) fn candidates(config: &EngineConfig, ep: &Endpoint, found: &mut Vec<Candidate>) {
    for p in ep.ports.tcp.iter().filter(|p| !p.unusable() && p.port_state() == PortState::Open) {
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
}

/// Fixed when a port scan that covered the port found it not open.
pub(crate) fn proof_of_fix(auth: &Authority<'_>, ep: &Endpoint, prev: &PriorState) -> Result<String, String> {
    let port = prev.port;
    match auth.port_gone(ep, port) {
        Some(_) => Ok(format!("tcp/{port} port-scanned by {}, not open", auth.port_scanned(ep, port).unwrap_or_default())),
        None => not_covered(ep, &format!("port scan of tcp/{port}")),
    }
}
