//! naabu `-json` output → [`PortObservation`]s.
//!
//! Shapes seen over naabu's history (FIELDS.md):
//! - v1.x / 2020: `{"host","port"}`; v2.0.x–v2.1.1: `host`, `ip`, `port` (int).
//! - v2.1.2–v2.1.6: `"port":{"Port":80,"Protocol":0,"TLS":false}`.
//! - v2.1.7+: flat `port`, `protocol`, `tls`; `host` omitted when equal to `ip`;
//!   `cdn-name` with a dash; `port: 0` on host-discovery-only rows.
//! - `-eof` can drop any key, and some wrappers print `port` as a string.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    bool_field, field, is_ip, parse_error, port_value, read_json_records, str_field, utc_timestamp, ToolParse,
};
use xray_engine::contract::{PortObservation, Timestamp};

pub const TOOL: &str = "naabu";

/// One open port reported by naabu.
#[derive(Debug, Clone)]
pub struct NaabuHit {
    /// The name naabu was given, when it differs from the IP.
    pub host: Option<String>,
    pub ip: Option<String>,
    pub observation: PortObservation,
    pub tls: Option<bool>,
    pub cdn_name: Option<String>,
    pub timestamp: Option<Timestamp>,
    pub line: usize,
}

impl NaabuHit {
    /// The address the port belongs to: the IP when known, else the host.
    pub fn target(&self) -> &str {
        self.ip.as_deref().or(self.host.as_deref()).unwrap_or_default()
    }
}

/// Parses naabu output. Host-discovery rows (`port: 0`) and ARP rows are
/// skipped without an error; they carry no port.
pub fn parse_naabu(text: &str) -> ToolParse<NaabuHit> {
    let records = read_json_records(text, TOOL);
    let mut out = ToolParse {
        items: Vec::new(),
        errors: records.errors,
        ignored_lines: records.ignored_lines,
    };
    for r in records.items {
        match hit(&r.object, r.line) {
            Ok(Some(h)) => out.items.push(h),
            Ok(None) => {}
            Err(msg) => out.errors.push(parse_error(TOOL, r.line, msg)),
        }
    }
    out.sort_errors();
    out
}

fn hit(obj: &Map<String, Value>, line: usize) -> Result<Option<NaabuHit>, String> {
    let (port, nested_proto, nested_tls) = match obj.get("port") {
        // v2.1.2–v2.1.6: the Go struct without json tags.
        Some(Value::Object(p)) => {
            let port = port_value(field(p, &["Port", "port"]))?;
            let proto = match field(p, &["Protocol", "protocol"]) {
                Some(Value::Number(n)) => match n.as_u64() {
                    Some(0) => Some("tcp".to_string()),
                    Some(1) => Some("udp".to_string()),
                    Some(2) => Some("arp".to_string()),
                    _ => return Err(format!("unknown protocol number {n}")),
                },
                Some(Value::String(s)) => Some(s.to_ascii_lowercase()),
                _ => None,
            };
            (port, proto, bool_field(p, &["TLS", "tls"]))
        }
        other => (port_value(other)?, None, None),
    };
    let Some(port) = port else {
        return match obj.get("port") {
            Some(_) => Ok(None), // port 0 / "": host discovery only
            None => Err("record has no port".into()),
        };
    };
    if port == 0 {
        return Ok(None);
    }
    let protocol = str_field(obj, &["protocol"])
        .map(|s| s.to_ascii_lowercase())
        .or(nested_proto);
    let protocol = match protocol.as_deref() {
        None | Some("tcp") => "tcp",
        Some("udp") => "udp",
        Some("arp") => return Ok(None),
        Some(other) => return Err(format!("unknown protocol {other:?}")),
    };
    let host = str_field(obj, &["host"]);
    let mut ip = str_field(obj, &["ip"]);
    if ip.is_none() && host.as_deref().is_some_and(is_ip) {
        // Legacy `{"host","port"}` rows and current rows where host == ip.
        ip = host.clone();
    }
    if host.is_none() && ip.is_none() {
        return Err(format!("port {port} has neither host nor ip"));
    }
    let host = host.filter(|h| Some(h) != ip.as_ref());
    Ok(Some(NaabuHit {
        host,
        ip,
        observation: PortObservation {
            tool: Some(TOOL.into()),
            protocol: Some(protocol.into()),
            port,
            state: "open".into(),
            // naabu prints only ports that answered its probe.
            verified: Some(true),
            reason: None,
            ttl: None,
            rtt_ms: None,
        },
        tls: bool_field(obj, &["tls"]).or(nested_tls),
        cdn_name: str_field(obj, &["cdn-name", "cdn_name"]),
        timestamp: str_field(obj, &["timestamp"]).as_deref().and_then(utc_timestamp),
        line,
    }))
}

/// Port observations per target (IP, else host), sorted by protocol and port,
/// one per port.
pub fn group_by_target(hits: &[NaabuHit]) -> BTreeMap<String, Vec<PortObservation>> {
    let mut map: BTreeMap<String, BTreeMap<(String, u16), PortObservation>> = BTreeMap::new();
    for h in hits {
        let key = (
            h.observation.protocol.clone().unwrap_or_else(|| "tcp".into()),
            h.observation.port,
        );
        map.entry(h.target().to_string())
            .or_default()
            .entry(key)
            .or_insert_with(|| h.observation.clone());
    }
    map.into_iter().map(|(k, v)| (k, v.into_values().collect())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../fixtures/tool-output/naabu/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn ports(p: &ToolParse<NaabuHit>) -> Vec<(String, u16)> {
        p.items
            .iter()
            .map(|h| (h.target().to_string(), h.observation.port))
            .collect()
    }

    #[test]
    fn current_shape_issue1572() {
        let p = parse_naabu(&fixture("issue1572_hackerone_2025-10-29.jsonl"));
        assert!(p.errors.is_empty());
        assert_eq!(p.items.len(), 1);
        let h = &p.items[0];
        assert_eq!(h.host.as_deref(), Some("hackerone.com"));
        assert_eq!(h.ip.as_deref(), Some("172.64.151.42"));
        assert_eq!(h.observation.port, 443);
        assert_eq!(h.observation.protocol.as_deref(), Some("tcp"));
        assert_eq!(h.observation.state, "open");
        assert_eq!(h.observation.verified, Some(true));
        assert_eq!(h.tls, Some(false));
        assert_eq!(h.timestamp.unwrap().to_string(), "2025-10-29T07:13:20.340296Z");
    }

    #[test]
    fn legacy_host_port_shape_pr37() {
        let p = parse_naabu(&fixture("legacy_PR37_2020_shape.jsonl"));
        assert!(p.errors.is_empty());
        let expected: Vec<(String, u16)> = [443, 8443, 8080, 80]
            .iter()
            .map(|p| ("hackerone.com".to_string(), *p))
            .collect();
        assert_eq!(ports(&p), expected);
        assert!(p.items.iter().all(|h| h.ip.is_none()));
    }

    #[test]
    fn legacy_ip_port_shape_v2_0() {
        let p = parse_naabu(&fixture("legacy_README_v2.0.x_shape.jsonl"));
        assert!(p.errors.is_empty());
        assert_eq!(
            ports(&p),
            vec![("104.16.99.52".into(), 443), ("104.16.99.52".into(), 80)]
        );
        assert!(p.items.iter().all(|h| h.host.is_none()));
    }

    #[test]
    fn pretty_printed_secator_fixture() {
        let p = parse_naabu(&fixture("secator_fixture_2023-01-20_pretty_sanitized.json"));
        assert!(p.errors.is_empty());
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.items[0].host.as_deref(), Some("example.synology.me"));
        assert_eq!(p.items[0].ip.as_deref(), Some("82.61.107.110"));
        assert_eq!(p.items[0].observation.port, 5357);
        assert_eq!(p.items[0].line, 1);
    }

    #[test]
    fn yahoo_syn_scan_groups_by_ip() {
        let p = parse_naabu(&fixture("yahoo_syn_scan_2025-03-31_excerpt.jsonl"));
        assert!(p.errors.is_empty());
        assert_eq!(p.items.len(), 12);
        let g = group_by_target(&p.items);
        assert_eq!(g.len(), 10);
        let ports: Vec<u16> = g["182.22.16.123"].iter().map(|o| o.port).collect();
        assert_eq!(ports, vec![80, 443]);
        let ports: Vec<u16> = g["182.22.31.124"].iter().map(|o| o.port).collect();
        assert_eq!(ports, vec![2000, 5060]);
        assert_eq!(p.items[11].line, 12);
    }

    #[test]
    fn nested_port_object_v2_1_2() {
        // No recorded sample of the v2.1.2–v2.1.6 shape exists (FIELDS.md);
        // this literal follows the Go struct printed without json tags.
        let text = r#"{"host":"example.com","ip":"192.0.2.10","port":{"Port":8443,"Protocol":0,"TLS":true}}
{"ip":"192.0.2.10","port":{"Port":53,"Protocol":1,"TLS":false}}"#;
        let p = parse_naabu(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.items[0].observation.port, 8443);
        assert_eq!(p.items[0].observation.protocol.as_deref(), Some("tcp"));
        assert_eq!(p.items[0].tls, Some(true));
        assert_eq!(p.items[1].observation.protocol.as_deref(), Some("udp"));
    }

    #[test]
    fn string_port_cdn_name_and_host_discovery_rows() {
        // Synthetic: `port` as a string (wrappers), `cdn-name` dashed, a
        // `port: 0` host-discovery row, an ARP row and host omitted (== ip).
        let text = r#"{"ip":"192.0.2.7","cdn":true,"cdn-name":"cloudflare","port":"8080","protocol":"tcp","tls":false}
{"ip":"192.0.2.8","port":0,"protocol":"tcp","tls":false}
{"ip":"192.0.2.9","port":1,"protocol":"arp","tls":false,"mac_address":"00:00:5e:00:53:01"}
{"host":"192.0.2.7","ip":"192.0.2.7","port":443}"#;
        let p = parse_naabu(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(ports(&p), vec![("192.0.2.7".into(), 8080), ("192.0.2.7".into(), 443)]);
        assert_eq!(p.items[0].cdn_name.as_deref(), Some("cloudflare"));
        assert!(p.items[1].host.is_none(), "host equal to ip is dropped");
    }

    #[test]
    fn garbage_lines_become_errors_and_good_lines_still_parse() {
        let text = "[INF] Running CONNECT scan with non root privileges\n\
                    {\"ip\":\"192.0.2.1\",\"port\":22}\n\
                    {\"ip\":\"192.0.2.1\",\"port\":\n\
                    {\"ip\":\"192.0.2.1\",\"port\":\"ssh\"}\n\
                    {\"ip\":\"192.0.2.1\",\"port\":99999}\n\
                    {\"ip\":\"192.0.2.1\"}\n\
                    {\"port\":80}\n\
                    {\"ip\":\"192.0.2.1\",\"port\":443}\n";
        let p = parse_naabu(text);
        assert_eq!(ports(&p), vec![("192.0.2.1".into(), 22), ("192.0.2.1".into(), 443)]);
        let msgs: Vec<String> = p.errors.iter().filter_map(|e| e.message.clone()).collect();
        assert_eq!(msgs.len(), 5, "{msgs:?}");
        assert!(msgs[0].starts_with("line 3: invalid JSON"), "{msgs:?}");
        assert_eq!(msgs[1], "line 4: port \"ssh\" is not a port number");
        assert_eq!(msgs[2], "line 5: port 99999 is out of range");
        assert_eq!(msgs[3], "line 6: record has no port");
        assert_eq!(msgs[4], "line 7: port 80 has neither host nor ip");
        assert!(p.errors.iter().all(|e| e.kind.as_deref() == Some("parse_error")));
    }

    #[test]
    fn v2_6_1_prints_every_open_port_twice() {
        let p = parse_naabu(&fixture("v2.6.1_demo-services.jsonl"));
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.items.len(), 12);
        let mut seen: Vec<(String, u16)> = p
            .items
            .iter()
            .map(|h| (h.ip.clone().unwrap(), h.observation.port))
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 6, "2222, 9200 and 18443 on two addresses");
    }
}
