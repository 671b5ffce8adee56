//! masscan `-oJ` (every framing it has used), `--ndjson`-style records and `-oL` to
//! scanprint lines.
//!
//! masscan reports a port and each banner on it as separate records, at different
//! times, possibly more than once, and with several scanner threads appending to one
//! file (so records can be cut or interleaved). We read record by record, merge per
//! (ip, proto, port), and report every record we could not read.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::{
    banner_sha256, cert_fpr_from_base64, sort_lines, Conversion, ScanprintContext, ScanprintLine,
};
use crate::NwebError;

/// masscan banner kinds (`masscan_app_to_string`) that are not the service itself:
/// page titles, the `Server:` header, HTML, certificates (the leaf `X509` one becomes
/// `cert_fpr`), and vulnerability or probe findings.
const AUXILIARY_BANNERS: &[&str] = &[
    "title",
    "html",
    "http.server",
    "X509",
    "X509CA",
    "vnc-info",
    "vuln",
    "heartbleed",
    "ticketbleed",
    "safe",
    "scripting",
    "versioning",
];

#[derive(Debug, Default)]
struct PortAcc {
    /// Port state -> earliest time it was reported.
    states: BTreeMap<String, u64>,
    /// (masscan app name, banner bytes) with the time of the record.
    banners: Vec<(String, Vec<u8>, u64)>,
}

#[derive(Debug, Default)]
struct Merger {
    ports: BTreeMap<(IpAddr, String, u16), PortAcc>,
    errors: Vec<NwebError>,
}

impl Merger {
    fn status(&mut self, ip: IpAddr, proto: &str, port: u16, state: &str, ts: u64) {
        let acc = self.ports.entry((ip, proto.to_owned(), port)).or_default();
        let seen = acc.states.entry(state.to_owned()).or_insert(ts);
        *seen = (*seen).min(ts);
    }

    fn banner(&mut self, ip: IpAddr, proto: &str, port: u16, name: &str, bytes: Vec<u8>, ts: u64) {
        let acc = self.ports.entry((ip, proto.to_owned(), port)).or_default();
        acc.banners.push((name.to_owned(), bytes, ts));
    }

    fn finish(self, ctx: &ScanprintContext) -> Conversion {
        let mut lines = Vec::new();
        for ((ip, proto, port), mut acc) in self.ports {
            if let Some(first_banner) = acc.banners.iter().map(|b| b.2).min() {
                // A banner means the port answered, even if its status record was lost.
                acc.states.entry("open".to_owned()).or_insert(first_banner);
            }
            let (service, banner_hash, cert_fpr) = summarise_banners(&acc.banners);
            for (state, ts) in acc.states {
                let open = state == "open";
                lines.push(ScanprintLine {
                    ts,
                    ip: ip.to_string(),
                    port,
                    proto: proto.clone(),
                    state,
                    service: service.clone().filter(|_| open),
                    product: None,
                    version: None,
                    banner_sha256: banner_hash.clone().filter(|_| open),
                    cert_fpr: cert_fpr.clone().filter(|_| open),
                    tls_ja3: None,
                    latency_ms: None,
                    tool: "masscan".to_owned(),
                    tool_version: ctx.tool_version.clone(),
                    options: ctx.options.clone(),
                    vantage: ctx.vantage.clone(),
                });
            }
        }
        sort_lines(&mut lines);
        Conversion {
            lines,
            errors: self.errors,
        }
    }
}

/// Picks `service`, `banner_sha256` and `cert_fpr` from all banners of one port.
///
/// The application banner wins over the `ssl` one (which only describes the TLS
/// handshake); with both, the service is written `ssl/<app>` like nmap does. When a
/// port has several application banners the smallest (name, bytes) is chosen, so the
/// result never depends on the order masscan's threads wrote them in.
fn summarise_banners(
    banners: &[(String, Vec<u8>, u64)],
) -> (Option<String>, Option<String>, Option<String>) {
    let cert_fpr = banners
        .iter()
        .filter(|(name, _, _)| name == "X509")
        .filter_map(|(_, bytes, _)| cert_fpr_from_base64(&String::from_utf8_lossy(bytes)))
        .min();
    let primary: Vec<&(String, Vec<u8>, u64)> = banners
        .iter()
        .filter(|(name, _, _)| !AUXILIARY_BANNERS.contains(&name.as_str()))
        .collect();
    let app = primary
        .iter()
        .filter(|(name, _, _)| name != "ssl")
        .min_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let ssl = primary
        .iter()
        .filter(|(name, _, _)| name == "ssl")
        .min_by(|a, b| a.1.cmp(&b.1));
    match (app, ssl) {
        (Some((name, bytes, _)), _) => {
            let service = if ssl.is_some() {
                format!("ssl/{name}")
            } else {
                name.clone()
            };
            (Some(service), Some(banner_sha256(bytes)), cert_fpr)
        }
        (None, Some((name, bytes, _))) => {
            (Some(name.clone()), Some(banner_sha256(bytes)), cert_fpr)
        }
        (None, None) => (None, None, cert_fpr),
    }
}

/// The bytes masscan captured, from its `-oJ` text. masscan writes every byte that is
/// not printable ASCII as `\u00XX`, so each char of the decoded string is one byte;
/// hashing those bytes gives the same `banner_sha256` as the same banner in `-oL`.
fn json_banner_bytes(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) <= 0xff) {
        s.chars().map(|c| c as u8).collect()
    } else {
        // Not masscan's escaping; hash the text as it is.
        s.as_bytes().to_vec()
    }
}

/// The bytes masscan captured, from its `-oL` text, where non-printable bytes (and
/// `\` itself) are written `\xNN`.
fn list_banner_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The states masscan's `status_string` can print; anything else is a garbled record.
fn check_state(state: &str) -> Result<&str, String> {
    match state {
        "open" | "closed" | "up" | "unknown" => Ok(state),
        _ => Err(format!("{state:?} is not a masscan port state")),
    }
}

fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| format!("\"ip\": {raw:?} is not an IP address"))
}

/// Unix seconds the bundle verifier accepts (up to 9999-12-31), so that what we
/// read is also what we may publish.
fn unix_seconds(ts: u64) -> Result<u64, String> {
    if ts <= crate::bundle::MAX_UNIX_SECONDS {
        Ok(ts)
    } else {
        Err(format!("timestamp {ts} is past the year 9999"))
    }
}

fn parse_ts(v: Option<&Value>) -> Result<u64, String> {
    let ts = match v {
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("\"timestamp\": {s:?} is not unix seconds")),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("\"timestamp\": {n} is not unix seconds")),
        Some(other) => Err(format!("\"timestamp\": {other} is not unix seconds")),
        None => Err("\"timestamp\": missing".to_owned()),
    }?;
    unix_seconds(ts).map_err(|e| format!("\"timestamp\": {e}"))
}

fn parse_port(v: Option<&Value>) -> Result<u16, String> {
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("\"port\": {n} is not a port number")),
        Some(other) => Err(format!("\"port\": {other} is not a port number")),
        None => Err("\"port\": missing".to_owned()),
    }
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    match obj.get(key) {
        // Names end up in jsonb, which cannot hold NUL; banners are only hashed.
        Some(Value::String(s)) if s.contains('\0') => Err(format!("{key:?} contains a NUL character")),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("{key:?}: expected a string, got {other}")),
        None => Err(format!("{key:?}: missing")),
    }
}

/// One entry of a record's `ports` array.
enum Entry<'a> {
    Status(&'a str),
    Banner(&'a str, Vec<u8>),
}

/// One `-oJ` record (`{"ip", "timestamp", "ports": [...]}`) or one ndjson record
/// (`{"ip", "timestamp", "port", "proto", "rec_type", "data"}`).
fn read_json_record(m: &mut Merger, obj: &Map<String, Value>) -> Result<(), String> {
    let ip = parse_ip(str_field(obj, "ip")?)?;
    let ts = parse_ts(obj.get("timestamp"))?;
    if let Some(ports) = obj.get("ports") {
        let ports = ports
            .as_array()
            .ok_or_else(|| format!("\"ports\": expected an array, got {ports}"))?;
        // Validate every entry before merging any, so a bad record adds nothing.
        let mut parsed = Vec::with_capacity(ports.len());
        for (i, entry) in ports.iter().enumerate() {
            let entry = entry
                .as_object()
                .ok_or_else(|| format!("\"ports\"[{i}]: expected an object"))?;
            let port = parse_port(entry.get("port")).map_err(|e| format!("\"ports\"[{i}].{e}"))?;
            let proto = str_field(entry, "proto").map_err(|e| format!("\"ports\"[{i}].{e}"))?;
            if let Some(service) = entry.get("service") {
                let service = service
                    .as_object()
                    .ok_or_else(|| format!("\"ports\"[{i}].\"service\": expected an object"))?;
                let name = str_field(service, "name")
                    .map_err(|e| format!("\"ports\"[{i}].\"service\".{e}"))?;
                let banner = match service.get("banner") {
                    Some(Value::String(s)) => s.as_str(),
                    None | Some(Value::Null) => "",
                    Some(other) => {
                        return Err(format!(
                            "\"ports\"[{i}].\"service\".\"banner\": expected a string, got {other}"
                        ))
                    }
                };
                parsed.push((port, proto, Entry::Banner(name, json_banner_bytes(banner))));
            } else {
                let status = str_field(entry, "status")
                    .and_then(|s| check_state(s).map_err(|e| format!("\"status\": {e}")))
                    .map_err(|e| format!("\"ports\"[{i}].{e}"))?;
                parsed.push((port, proto, Entry::Status(status)));
            }
        }
        for (port, proto, entry) in parsed {
            match entry {
                Entry::Status(status) => m.status(ip, proto, port, status, ts),
                Entry::Banner(name, bytes) => m.banner(ip, proto, port, name, bytes, ts),
            }
        }
        return Ok(());
    }
    if let Some(rec_type) = obj.get("rec_type") {
        let port = parse_port(obj.get("port"))?;
        let proto = str_field(obj, "proto")?;
        let data = obj
            .get("data")
            .and_then(Value::as_object)
            .ok_or_else(|| "\"data\": expected an object".to_owned())?;
        match rec_type.as_str() {
            Some("status") => {
                let status = str_field(data, "status")
                    .and_then(|s| check_state(s).map_err(|e| format!("\"status\": {e}")))
                    .map_err(|e| format!("\"data\".{e}"))?;
                m.status(ip, proto, port, status, ts);
            }
            Some("banner") => {
                let name = str_field(data, "service_name").map_err(|e| format!("\"data\".{e}"))?;
                let banner = str_field(data, "banner").unwrap_or("");
                m.banner(ip, proto, port, name, json_banner_bytes(banner), ts);
            }
            _ => return Err(format!("\"rec_type\": {rec_type} is not status or banner")),
        }
        return Ok(());
    }
    Err("neither a \"ports\" array nor a \"rec_type\"".to_owned())
}

/// Reads masscan `-oJ` output in any of its framings: 1.0.4 (records ending `},`, then
/// `{finished: 1}`), 1.0.5 (`[`, records ending `},`, `]`), 1.3.x (`[`, records
/// separated by `,` lines, `]`) and ndjson. Every record masscan writes is on one line,
/// which is what lets a cut or interleaved record be skipped without losing the next.
pub fn from_masscan_json(text: &str, ctx: &ScanprintContext) -> Conversion {
    let mut m = Merger::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let body = raw
            .trim()
            .trim_start_matches(['[', ','])
            .trim_end_matches([']', ','])
            .trim();
        if body.is_empty() {
            continue;
        }
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.starts_with("{finished:") {
            continue;
        }
        let problem = match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(obj)) => match read_json_record(&mut m, &obj) {
                Ok(()) => continue,
                Err(problem) => problem,
            },
            Ok(_) => "not a masscan record (not a JSON object)".to_owned(),
            Err(e) => format!("unreadable masscan record ({e}), skipped"),
        };
        m.errors.push(NwebError::line(line_no, problem));
    }
    m.finish(ctx)
}

/// Reads masscan `-oL` output: `open tcp <port> <ip> <ts>` and
/// `banner tcp <port> <ip> <ts> <service> <banner>` lines between `#masscan` and `# end`.
pub fn from_masscan_list(text: &str, ctx: &ScanprintContext) -> Conversion {
    let mut m = Merger::default();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if let Err(problem) = read_list_line(&mut m, line) {
            m.errors.push(NwebError::line(line_no, problem));
        }
    }
    m.finish(ctx)
}

fn read_list_line(m: &mut Merger, line: &str) -> Result<(), String> {
    let mut fields = line.splitn(7, ' ');
    let kind = fields.next().unwrap_or_default();
    let (Some(proto), Some(port), Some(ip), Some(ts)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(format!(
            "expected \"<state> <proto> <port> <ip> <timestamp>\" or \"banner ...\", got {line:?}"
        ));
    };
    if proto.contains('\0') {
        return Err("the protocol contains a NUL character".to_owned());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a port number"))?;
    let ip = parse_ip(ip)?;
    let ts: u64 = ts
        .parse()
        .map_err(|_| format!("timestamp {ts:?} is not unix seconds"))
        .and_then(unix_seconds)?;
    if kind == "banner" {
        let name = fields
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| "banner line has no service name".to_owned())?;
        if name.contains('\0') {
            return Err("the service name contains a NUL character".to_owned());
        }
        let banner = fields.next().unwrap_or("");
        m.banner(ip, proto, port, name, list_banner_bytes(banner), ts);
    } else {
        if fields.next().is_some() {
            return Err(format!("unexpected text after the timestamp in {line:?}"));
        }
        m.status(ip, proto, port, check_state(kind)?, ts);
    }
    Ok(())
}

/// Either masscan format, told apart by the first non-blank line: `-oL` starts with
/// `#masscan` or a `<state> <proto> ...` line, anything else is read as JSON.
pub fn from_masscan(text: &str, ctx: &ScanprintContext) -> Conversion {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let proto = first.split(' ').nth(1);
    let is_list =
        first.starts_with('#') || matches!(proto, Some("tcp" | "udp" | "sctp" | "icmp" | "arp"));
    if is_list {
        from_masscan_list(text, ctx)
    } else {
        from_masscan_json(text, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle;
    use crate::scanprint::test_support::fixture;
    use crate::scanprint::to_jsonl;

    fn ctx() -> ScanprintContext {
        ScanprintContext {
            vantage: "AS64500/test".to_owned(),
            options: Some("--rate 1000".to_owned()),
            tool_version: Some("1.3.2".to_owned()),
        }
    }

    fn key(l: &ScanprintLine) -> (&str, u16, &str, u64) {
        (l.ip.as_str(), l.port, l.state.as_str(), l.ts)
    }

    #[test]
    fn masscan_1_0_4_no_brackets_finished_line() {
        let text = fixture("tool-output/masscan/chibd2000_myscan_masscan_1.0.4_oJ_no_brackets_finished_line_2020.json");
        let c = from_masscan_json(&text, &ctx());
        assert_eq!(c.errors, vec![], "{{finished: 1}} is framing, not an error");
        assert_eq!(c.lines.len(), 52);
        assert!(c
            .lines
            .iter()
            .all(|l| l.ip == "183.136.237.217" && l.proto == "tcp" && l.state == "open"));
        let first = &c.lines[0];
        assert_eq!(key(first), ("183.136.237.217", 82, "open", 1591010820));
        assert_eq!(
            key(&c.lines[51]),
            ("183.136.237.217", 30008, "open", 1591010834)
        );
        let p101 = c.lines.iter().find(|l| l.port == 101).unwrap();
        assert_eq!(p101.ts, 1591010777);
        let p28201 = c.lines.iter().find(|l| l.port == 28201).unwrap();
        assert_eq!(p28201.ts, 1591010771);
        let p1883 = c.lines.iter().find(|l| l.port == 1883).unwrap();
        assert_eq!(p1883.ts, 1591010836);
        assert_eq!(first.tool, "masscan");
        assert_eq!(first.tool_version.as_deref(), Some("1.3.2"));
        assert_eq!(first.options.as_deref(), Some("--rate 1000"));
        assert_eq!(first.vantage, "AS64500/test");
        assert_eq!(first.service, None);
        assert_eq!(first.latency_ms, None);
        // Sorted by port within the one IP.
        assert!(c.lines.windows(2).all(|w| w[0].port < w[1].port));
    }

    #[test]
    fn masscan_1_3_array_single_record() {
        let text = fixture("tool-output/masscan/qiuluo-oss_masnmapscan_py3_masscan_oJ_2022.json");
        let c = from_masscan_json(&text, &ctx());
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.lines.len(), 1);
        assert_eq!(key(&c.lines[0]), ("101.37.30.241", 22, "open", 1652173341));
    }

    #[test]
    fn garbled_overlapping_writes_keep_the_good_records() {
        let text = fixture("tool-output/masscan/s7safe_masnmapscan-GO_masscan_oJ_2025_GARBLED_overlapping_writes.json");
        let c = from_masscan_json(&text, &ctx());
        // Line 7 lost its opening brace when two writers overlapped.
        assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
        assert_eq!(c.errors[0].line_number(), Some(7));
        assert!(
            c.errors[0]
                .to_string()
                .starts_with("line 7: unreadable masscan record"),
            "{}",
            c.errors[0]
        );
        assert_eq!(c.lines.len(), 10);
        let keys: Vec<_> = c.lines.iter().map(key).collect();
        assert_eq!(
            keys,
            vec![
                ("13.226.120.48", 443, "open", 1736401236),
                ("172.64.151.42", 80, "open", 1736401216),
                ("172.64.151.42", 443, "open", 1736401187),
                ("172.64.151.42", 2052, "open", 1736401234),
                ("172.64.151.42", 2053, "open", 1736401213),
                ("172.64.151.42", 2083, "open", 1736401215),
                ("172.64.151.42", 2087, "open", 1736401229),
                ("172.64.151.42", 8080, "open", 1736401201),
                ("172.64.151.42", 8443, "open", 1736401229),
                ("185.199.111.153", 80, "open", 1736401225),
            ]
        );
        // The garbled record's port (2082) is not invented.
        assert!(c.lines.iter().all(|l| l.port != 2082));
    }

    #[test]
    fn masscan_list_format() {
        let text = fixture("tool-output/masscan/oL_2018_merge_tool_readme.txt");
        let c = from_masscan_list(&text, &ctx());
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.lines.len(), 9);
        let keys: Vec<(&str, u16)> = c.lines.iter().map(|l| (l.ip.as_str(), l.port)).collect();
        assert_eq!(
            keys,
            vec![
                ("1.2.3.4", 8080),
                ("104.198.14.52", 43),
                ("104.198.14.52", 80),
                ("104.198.14.52", 4443),
                ("104.198.14.52", 8080),
                ("185.199.110.153", 80),
                ("185.199.110.153", 443),
                ("185.199.110.153", 8000),
                ("185.199.110.153", 8800),
            ]
        );
        assert!(c
            .lines
            .iter()
            .all(|l| l.ts == 1529229065 && l.state == "open" && l.proto == "tcp"));
        assert_eq!(from_masscan(&text, &ctx()), c, "auto-detected as -oL");
    }

    #[test]
    fn auto_detection_picks_json_for_json() {
        let text = fixture("tool-output/masscan/qiuluo-oss_masnmapscan_py3_masscan_oJ_2022.json");
        assert_eq!(
            from_masscan(&text, &ctx()),
            from_masscan_json(&text, &ctx())
        );
        let list_without_header = "open tcp 80 192.0.2.1 1700000000\n";
        assert_eq!(from_masscan(list_without_header, &ctx()).lines.len(), 1);
    }

    /// The same two ports, written in each framing masscan has used.
    fn framings() -> Vec<(&'static str, String)> {
        let a = r#"{   "ip": "192.0.2.7",   "timestamp": "1700000001", "ports": [ {"port": 22, "proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 64} ] }"#;
        let b = r#"{   "ip": "192.0.2.7",   "timestamp": "1700000002", "ports": [ {"port": 22, "proto": "tcp", "service": {"name": "ssh", "banner": "SSH-2.0-OpenSSH_8.4p1 Debian-5\u000d\u000a"} } ] }"#;
        let c = r#"{   "ip": "192.0.2.8",   "timestamp": "1700000003", "ports": [ {"port": 80, "proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 50} ] }"#;
        vec![
            ("1.0.4", format!("{a},\n{b},\n{c},\n{{finished: 1}}\n")),
            ("1.0.5", format!("[\n{a},\n{b},\n{c},\n]\n")),
            ("1.3.x", format!("[\n{a}\n,\n{b}\n,\n{c}\n]\n")),
            (
                "ndjson",
                concat!(
                    r#"{"ip":"192.0.2.7","timestamp":"1700000001","port":22,"proto":"tcp","rec_type":"status","data":{"status":"open","reason":"syn-ack","ttl":64}}"#, "\n",
                    r#"{"ip":"192.0.2.7","timestamp":"1700000002","port":22,"proto":"tcp","rec_type":"banner","data":{"service_name":"ssh","banner":"SSH-2.0-OpenSSH_8.4p1 Debian-5\u000d\u000a"}}"#, "\n",
                    r#"{"ip":"192.0.2.8","timestamp":"1700000003","port":80,"proto":"tcp","rec_type":"status","data":{"status":"open","reason":"syn-ack","ttl":50}}"#, "\n",
                )
                .to_owned(),
            ),
            (
                "-oL",
                "#masscan\nopen tcp 22 192.0.2.7 1700000001\nbanner tcp 22 192.0.2.7 1700000002 ssh SSH-2.0-OpenSSH_8.4p1 Debian-5\\x0d\\x0a\nopen tcp 80 192.0.2.8 1700000003\n# end\n".to_owned(),
            ),
        ]
    }

    #[test]
    fn every_framing_gives_the_same_lines_and_root() {
        let want_banner = banner_sha256(b"SSH-2.0-OpenSSH_8.4p1 Debian-5\r\n");
        let mut roots = Vec::new();
        for (name, text) in framings() {
            let c = from_masscan(&text, &ctx());
            assert_eq!(c.errors, vec![], "{name}");
            assert_eq!(c.lines.len(), 2, "{name}");
            let ssh = &c.lines[0];
            assert_eq!(
                key(ssh),
                ("192.0.2.7", 22, "open", 1700000001),
                "{name}: status ts, not banner ts"
            );
            assert_eq!(ssh.service.as_deref(), Some("ssh"), "{name}");
            assert_eq!(
                ssh.banner_sha256.as_deref(),
                Some(want_banner.as_str()),
                "{name}"
            );
            assert_eq!(c.lines[1].service, None, "{name}");
            let jsonl = to_jsonl(&c.lines);
            assert!(!jsonl.contains("OpenSSH"), "{name}: banner text leaked");
            roots.push(merkle::scanprint_merkle_root(&jsonl).unwrap());
        }
        assert!(roots.windows(2).all(|w| w[0] == w[1]), "{roots:?}");
    }

    #[test]
    fn record_order_and_duplicates_do_not_matter() {
        let (_, text) = framings().swap_remove(2);
        let mut lines: Vec<&str> = text.lines().collect();
        let records: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with('{'))
            .collect();
        // Reverse the records and repeat the first one with a later timestamp.
        let dup = records[0].replace("1700000001", "1700000099");
        lines = vec!["["];
        for r in records.iter().rev() {
            lines.push(r);
            lines.push(",");
        }
        lines.push(&dup);
        lines.push("]");
        let shuffled = lines.join("\n");
        assert_eq!(
            from_masscan_json(&shuffled, &ctx()),
            from_masscan_json(&text, &ctx())
        );
    }

    #[test]
    fn ssl_app_and_certificate_banners_merge() {
        // base64 of the bytes "abc" stands in for a DER certificate.
        let text = r#"[
{   "ip": "198.51.100.5",   "timestamp": "1700000010", "ports": [ {"port": 443, "proto": "tcp", "service": {"name": "title", "banner": "Welcome"} } ] }
,
{   "ip": "198.51.100.5",   "timestamp": "1700000011", "ports": [ {"port": 443, "proto": "tcp", "service": {"name": "ssl", "banner": "TLS/1.2 cipher:0xc02f, example.org"} } ] }
,
{   "ip": "198.51.100.5",   "timestamp": "1700000012", "ports": [ {"port": 443, "proto": "tcp", "service": {"name": "X509", "banner": "YWJj"} } ] }
,
{   "ip": "198.51.100.5",   "timestamp": "1700000013", "ports": [ {"port": 443, "proto": "tcp", "service": {"name": "http", "banner": "HTTP/1.1 200 OK\u000d\u000aServer: nginx\u000d\u000a\u000d\u000a"} } ] }
,
{   "ip": "198.51.100.5",   "timestamp": "1700000014", "ports": [ {"port": 443, "proto": "tcp", "service": {"name": "http.server", "banner": "nginx"} } ] }
,
{   "ip": "198.51.100.5",   "timestamp": "1700000015", "ports": [ {"port": 443, "proto": "tcp", "service": {"name": "X509CA", "banner": "ZGVm"} } ] }
,
{   "ip": "198.51.100.5",   "timestamp": "1700000016", "ports": [ {"port": 443, "proto": "tcp", "service": {"name": "heartbleed", "banner": "VULN: [Heartbleed]"} } ] }
]"#;
        let c = from_masscan_json(text, &ctx());
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.lines.len(), 1, "banner-only port becomes one open line");
        let l = &c.lines[0];
        assert_eq!(l.state, "open");
        assert_eq!(
            l.ts, 1700000010,
            "earliest banner time when no status record exists"
        );
        assert_eq!(l.service.as_deref(), Some("ssl/http"));
        assert_eq!(
            l.banner_sha256.as_deref(),
            Some(banner_sha256(b"HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\n").as_str())
        );
        assert_eq!(
            l.cert_fpr.as_deref(),
            Some("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert!(!to_jsonl(&c.lines).contains("nginx"));
    }

    #[test]
    fn ssl_only_banner_is_the_service() {
        let text =
            "open tcp 993 192.0.2.1 1\nbanner tcp 993 192.0.2.1 2 ssl TLS/1.2 cipher:0x1301\n";
        let c = from_masscan_list(text, &ctx());
        assert_eq!(c.lines[0].service.as_deref(), Some("ssl"));
        assert_eq!(
            c.lines[0].banner_sha256.as_deref(),
            Some(banner_sha256(b"TLS/1.2 cipher:0x1301").as_str())
        );
    }

    #[test]
    fn latin1_escapes_decode_to_bytes_in_both_formats() {
        // masscan writes byte 0xe9 as \u00e9 in -oJ and \xe9 in -oL; backslash as \u005c / \x5c.
        assert_eq!(json_banner_bytes("caf\u{e9}\\"), b"caf\xe9\\".to_vec());
        assert_eq!(list_banner_bytes(r"caf\xe9\x5c"), b"caf\xe9\\".to_vec());
        assert_eq!(list_banner_bytes(r"a\xZZ\x4"), b"a\\xZZ\\x4".to_vec());
        assert_eq!(
            json_banner_bytes("\u{20ac}"),
            "\u{20ac}".as_bytes().to_vec()
        );
    }

    #[test]
    fn closed_ports_and_other_protocols_are_kept_apart() {
        let text = "#masscan\nclosed tcp 23 192.0.2.1 5\nopen udp 53 192.0.2.1 6\nopen tcp 23 192.0.2.1 7\nopen tcp 23 192.0.2.1 4\nbanner tcp 23 192.0.2.1 8 telnet login:\n# end\n";
        let c = from_masscan_list(text, &ctx());
        assert_eq!(c.errors, vec![]);
        let got: Vec<(&str, u16, &str, u64, Option<&str>)> = c
            .lines
            .iter()
            .map(|l| {
                (
                    l.proto.as_str(),
                    l.port,
                    l.state.as_str(),
                    l.ts,
                    l.service.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("tcp", 23, "closed", 5, None),
                ("tcp", 23, "open", 4, Some("telnet")),
                ("udp", 53, "open", 6, None),
            ]
        );
    }

    #[test]
    fn bad_records_name_line_and_field() {
        let text = r#"[
{"ip": "192.0.2.1", "timestamp": "1700000000", "ports": [ {"port": 22, "proto": "tcp", "status": "open"} ] }
,
{"ip": "192.0.2.300", "timestamp": "1700000000", "ports": [ {"port": 22, "proto": "tcp", "status": "open"} ] }
,
{"ip": "192.0.2.2", "timestamp": "yesterday", "ports": [ {"port": 22, "proto": "tcp", "status": "open"} ] }
,
{"ip": "192.0.2.3", "timestamp": "1700000000", "ports": [ {"port": 70000, "proto": "tcp", "status": "open"} ] }
,
{"ip": "192.0.2.4", "timestamp": "1700000000", "ports": [ {"port": 22, "proto": "tcp"} ] }
,
{"ip": "192.0.2.4", "timestamp": "1700000000", "ports": [ {"port": 22, "proto": "tcp", "status": "op\u0000en"} ] }
,
"just text"
,
{"ip": "192.0.2.5", "timestamp": 1700000000}
,
{"ip": "192.0.2.6", "timestamp": 1700000000, "ports": [ {"port": 8080, "proto": "tcp", "status": "open"} ] }
]"#;
        let c = from_masscan_json(text, &ctx());
        let msgs: Vec<String> = c.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec![
                "line 4: \"ip\": \"192.0.2.300\" is not an IP address",
                "line 6: \"timestamp\": \"yesterday\" is not unix seconds",
                "line 8: \"ports\"[0].\"port\": 70000 is not a port number",
                "line 10: \"ports\"[0].\"status\": missing",
                "line 12: \"ports\"[0].\"status\" contains a NUL character",
                "line 14: not a masscan record (not a JSON object)",
                "line 16: neither a \"ports\" array nor a \"rec_type\"",
            ]
        );
        let ips: Vec<&str> = c.lines.iter().map(|l| l.ip.as_str()).collect();
        assert_eq!(
            ips,
            vec!["192.0.2.1", "192.0.2.6"],
            "numeric timestamps are accepted too"
        );
    }

    #[test]
    fn bad_list_lines_name_the_line() {
        let text = "#masscan\nopen tcp 80 192.0.2.1 1\nopen tcp eighty 192.0.2.1 1\nopen tcp 80\nbanner tcp 80 192.0.2.1 1\nopen tcp 81 192.0.2.1 1 extra\nopen tcp 82 192.0.2.1 x\nopne tcp 83 192.0.2.1 1\n# end\n";
        let c = from_masscan_list(text, &ctx());
        assert_eq!(c.lines.len(), 1);
        let lines: Vec<Option<usize>> = c.errors.iter().map(NwebError::line_number).collect();
        assert_eq!(
            lines,
            vec![Some(3), Some(4), Some(5), Some(6), Some(7), Some(8)]
        );
        assert_eq!(
            c.errors[5].to_string(),
            "line 8: \"opne\" is not a masscan port state"
        );
        assert_eq!(
            c.errors[0].to_string(),
            "line 3: port \"eighty\" is not a port number"
        );
        assert_eq!(
            c.errors[2].to_string(),
            "line 5: banner line has no service name"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let inputs = [
            "", "\n\n", "]", "[", ",", "{", "}", "{{{{", "[{\"ip\":1}]", "\u{0}\u{1}", "{finished: 1}",
            "{\"ip\":\"1.2.3.4\",\"timestamp\":\"1\",\"ports\":[{\"port\":1,\"proto\":\"tcp\",\"service\":7}]}",
            "{\"ip\":\"1.2.3.4\",\"timestamp\":\"1\",\"rec_type\":\"banner\",\"port\":1,\"proto\":\"tcp\",\"data\":{}}",
            "banner", "open tcp 1 ::1 1 \u{e9}", "banner tcp 1 ::1 1 x \\x",
        ];
        for input in inputs {
            let _ = from_masscan(input, &ctx());
            let _ = from_masscan_json(input, &ctx());
            let _ = from_masscan_list(input, &ctx());
        }
        assert_eq!(from_masscan_json("{\"ip\":\"1.2.3.4\",\"timestamp\":\"1\",\"ports\":[{\"port\":1,\"proto\":\"tcp\",\"service\":7}]}", &ctx()).errors.len(), 1);
    }

    /// Found by the `scanprint_masscan` fuzz target: a timestamp past 9999 or a NUL in a
    /// name was written into a line the bundle verifier then refused.
    #[test]
    fn lines_the_verifier_would_refuse_are_errors() {
        let list = "open tcp 79 192.0.2.1 15292290529229065\nopen tcp 80 192.0.2.1 1529229065\nopen tc\0p 81 192.0.2.1 1\nbanner tcp 82 192.0.2.1 1 ss\0h x\n";
        let json = "{\"ip\":\"192.0.2.1\",\"timestamp\":\"253402300800\",\"ports\":[{\"port\":1,\"proto\":\"tcp\",\"status\":\"open\"}]}\n{\"ip\":\"192.0.2.1\",\"timestamp\":\"1\",\"ports\":[{\"port\":2,\"proto\":\"t\\u0000cp\",\"status\":\"open\"}]}\n";
        for (text, bad_lines) in [(list, vec![1, 3, 4]), (json, vec![1, 2])] {
            let c = from_masscan(text, &ctx());
            let lines: Vec<usize> = c.errors.iter().filter_map(NwebError::line_number).collect();
            assert_eq!(lines, bad_lines, "{:?}", c.errors);
            crate::bundle::check_scanprint(&crate::scanprint::to_jsonl(&c.lines)).unwrap();
        }
    }
}
