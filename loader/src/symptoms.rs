//! RB6 symptom detection (docs/contract.md §P-7.6, docs/design.md D4). The engine only reports
//! RB6 for a symptom the worker reported; deciding the symptom is ours.

use std::collections::BTreeSet;

use serde_json::json;
use xray_engine::contract::ErrorEntry;
use xray_engine::EngineConfig;

use crate::toolchain::EndpointResult;

/// Ports where a service is expected to speak TLS from the first byte, so a
/// failed handshake is the symptom rather than a plain non-TLS service.
pub const TLS_EXPECTED_PORTS: &[u16] = &[443, 465, 636, 853, 989, 990, 992, 993, 994, 995, 5986, 8443, 9443];

fn identified(res: &EndpointResult, port: u16) -> bool {
    let http = res.http.iter().any(|h| h.obs.answered_on(port));
    let tls = res.tls.iter().any(|t| t.obs.handshake_on(port));
    // The engine's rule: a name from nmap's port table is a guess, not an answer.
    let nmap = res.nmap.iter().any(|n| n.obs.port == port && n.obs.identifies_service());
    http || tls || nmap
}

/// Replaces the tools' per-port symptom candidates (tlsx handshake failures)
/// with at most one symptom per open baseline port that neither HTTP nor TLS
/// (nor an nmap service probe) could classify. Returns the flagged ports.
///
/// The baseline and the admin ports are `engine`'s, which must be the
/// configuration the ingesting database judges by: a symptom on a port it
/// calls admin would turn one RB1 into an RB1 and an RB6.
///
/// Nothing is reported unless the probes actually ran: a port that httpx
/// never reached because httpx timed out is a tool error, not a symptom.
pub fn apply_symptoms(res: &mut EndpointResult, engine: &EngineConfig) -> Vec<u16> {
    let tls_failed: BTreeSet<u16> = res
        .errors
        .iter()
        .filter(|e| e.symptom() == Some("tls_handshake_fail"))
        .filter_map(ErrorEntry::symptom_port)
        .collect();
    // A handshake failure on a port that answered HTTP, or on ssh, is just a
    // non-TLS service; only the decision below may carry a symptom.
    res.errors.retain(|e| e.symptom().is_none());

    let tools: BTreeSet<&str> = res.coverage.tools.iter().map(String::as_str).collect();
    let pd_probes = tools.contains("httpx") && tools.contains("tlsx");
    let probes_ran = pd_probes || tools.contains("nmap");
    if !probes_ran {
        return Vec::new();
    }
    let open: BTreeSet<u16> = res.tcp.iter().filter(|p| p.state == "open").map(|p| p.port).collect();
    // Remote-admin ports (ssh, rdp, vnc, winrm) are already classified by
    // RB1; they rarely speak HTTP or TLS, and flagging them as unknown edge
    // services would double every RB1 with an RB6.
    let baseline = engine.baseline_ports();
    let mut flagged = Vec::new();
    for port in open {
        if !baseline.contains(&port) || engine.admin_ports.contains_key(&port) || identified(res, port) {
            continue;
        }
        let (symptom, tool, message) = if TLS_EXPECTED_PORTS.contains(&port) && tls_failed.contains(&port) {
            (
                "tls_handshake_fail",
                Some("tlsx"),
                format!("tcp/{port} is open but the TLS handshake failed"),
            )
        } else if pd_probes {
            (
                "tcp_open_no_banner",
                None,
                format!("tcp/{port} is open but neither HTTP nor TLS probes got an answer"),
            )
        } else {
            // nmap's own probes came back empty: its word, so its name.
            (
                "tcp_open_no_banner",
                Some("nmap"),
                format!("tcp/{port} is open but no nmap service, HTTP or TLS probe got an answer"),
            )
        };
        res.errors.push(ErrorEntry {
            scope: Some("endpoint".into()),
            tool: tool.map(String::from),
            message: Some(message),
            kind: Some("network_error".into()),
            details: Some(json!({"port": port, "symptom": symptom})),
        });
        flagged.push(port);
    }
    flagged
}

#[cfg(test)]
mod tests {
    use xray_engine::contract::{HttpObservation, NmapFinding, PortObservation, TlsObservation};

    use super::*;
    use crate::toolchain::Observed;

    fn open(port: u16) -> PortObservation {
        PortObservation {
            tool: Some("naabu".into()),
            protocol: Some("tcp".into()),
            port,
            state: "open".into(),
            verified: Some(true),
            reason: None,
            ttl: None,
            rtt_ms: None,
        }
    }

    fn tls_fail(port: u16) -> ErrorEntry {
        ErrorEntry {
            scope: Some("endpoint".into()),
            tool: Some("tlsx".into()),
            message: Some("x".into()),
            kind: Some("network_error".into()),
            details: Some(json!({"port": port, "symptom": "tls_handshake_fail"})),
        }
    }

    fn http(url: &str, port: u16) -> Observed<HttpObservation> {
        Observed::new(HttpObservation {
            tool: Some("httpx".into()),
            url: url.into(),
            final_url: None,
            host: None,
            ip: None,
            port: Some(port),
            status_code: Some(200),
            ..Default::default()
        })
    }

    fn base() -> EndpointResult {
        let mut r = EndpointResult {
            tcp: [22, 80, 443, 8443, 9200, 31337].into_iter().map(open).collect(),
            errors: [22, 80, 8443, 31337].into_iter().map(tls_fail).collect(),
            ..Default::default()
        };
        r.http.push(http("http://192.0.2.1:80", 80));
        r.tls.push(Observed::new(TlsObservation {
            tool: Some("tlsx".into()),
            host: None,
            ip: None,
            port: 443,
            sni: None,
            tls_versions: vec!["TLS1.3".into()],
            cipher: None,
            ja3: None,
            jarm: None,
            certificate: None,
            cipher_classes: None,
            ..Default::default()
        }));
        r.coverage.tools = vec!["httpx".into(), "naabu".into(), "tlsx".into()];
        r
    }

    /// The shipped configuration with another baseline.
    fn engine(baseline: &[u16]) -> EngineConfig {
        let mut e = EngineConfig::default();
        e.profile_ports.insert("baseline".into(), baseline.to_vec());
        e
    }

    fn symptoms(r: &EndpointResult) -> Vec<(u16, &str, Option<&str>)> {
        r.errors
            .iter()
            .filter_map(|e| Some((e.symptom_port()?, e.symptom()?, e.tool.as_deref())))
            .collect()
    }

    #[test]
    fn one_symptom_per_unclassified_open_baseline_port() {
        let mut r = base();
        let flagged = apply_symptoms(&mut r, &EngineConfig::default());
        // 22 is ssh: RB1 already classifies it, so it is no unknown edge service.
        assert_eq!(flagged, vec![8443, 9200]);
        assert_eq!(
            symptoms(&r),
            vec![(8443, "tls_handshake_fail", Some("tlsx")), (9200, "tcp_open_no_banner", None)]
        );
        // 31337 is not a baseline port; 80 and 443 answered.
        assert_eq!(r.errors.len(), 2);
    }

    #[test]
    fn admin_ports_and_baseline_are_the_engine_configurations() {
        // The database calls 9200 an admin port and no longer 22, and its
        // baseline has 31337.
        let mut e = engine(&[22, 80, 443, 8443, 9200, 31337]);
        e.admin_ports = [(9200, "elasticsearch".to_string())].into();
        let mut r = base();
        assert_eq!(apply_symptoms(&mut r, &e), vec![22, 8443, 31337]);
        assert_eq!(
            symptoms(&r),
            vec![
                (22, "tcp_open_no_banner", None),
                (8443, "tls_handshake_fail", Some("tlsx")),
                (31337, "tcp_open_no_banner", None)
            ]
        );
    }

    #[test]
    fn nothing_when_the_probes_did_not_run() {
        let mut r = base();
        r.coverage.tools = vec!["naabu".into(), "tlsx".into()];
        assert!(apply_symptoms(&mut r, &engine(&[22, 8443])).is_empty());
        assert!(r.errors.is_empty(), "tool symptom candidates are dropped too");
    }

    #[test]
    fn nmap_service_detection_classifies_a_port() {
        let mut r = base();
        let ssh = NmapFinding {
            tool: Some("nmap".into()),
            target: None,
            port: 22,
            protocol: Some("tcp".into()),
            state: Some("open".into()),
            service: Some("ssh".into()),
            product: Some("OpenSSH".into()),
            version: None,
            scripts: None,
            service_method: None,
        };
        r.nmap.push(Observed::new(ssh.clone()));
        r.nmap.push(Observed::new(NmapFinding {
            port: 9200,
            service: Some("tcpwrapped".into()),
            ..ssh.clone()
        }));
        // A name from nmap's port table ("what usually runs here") is no answer.
        let mut guess = Observed::new(NmapFinding {
            port: 8000,
            service: Some("http-alt".into()),
            service_method: Some("table".into()),
            ..ssh
        });
        guess.extra.insert("service_method".into(), json!("table"));
        r.nmap.push(guess);
        r.tcp.push(open(8000));
        r.coverage.tools = vec!["nmap".into()];
        apply_symptoms(&mut r, &engine(&[22, 8000, 9200]));
        assert_eq!(
            symptoms(&r),
            vec![
                (8000, "tcp_open_no_banner", Some("nmap")),
                (9200, "tcp_open_no_banner", Some("nmap"))
            ]
        );
    }
}
