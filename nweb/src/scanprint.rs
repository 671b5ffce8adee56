//! scanprint v0: one JSON object per (ip, proto, port, state), built from scanner output.
//!
//! Privacy first: a line never carries a raw banner or certificate, only their hashes
//! (`banner_sha256`, `cert_fpr`); the raw tool output stays in the bundle for whoever
//! needs it. Lines are sorted and written in JCS form so that the same scan always
//! gives the same bytes, hence the same Merkle root (docs/design.md D6).
//!
//! Unknown values are `null`, except `tls_ja3` and `latency_ms`, which docs/nweb.md §4 lets
//! us omit and which no supported scanner reports for every port.

mod masscan;
mod nmap;

use std::net::IpAddr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::jcs;
use super::NwebError;

pub use masscan::{from_masscan, from_masscan_json, from_masscan_list};
pub use nmap::{from_nmap_xml, safe_nmap_options};

/// One scanprint v0 record. Field order here is irrelevant: output is JCS-sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanprintLine {
    /// Unix seconds when the scanner saw this port state.
    pub ts: u64,
    /// Canonical text form of the address (`IpAddr` display), so equal IPs compare equal.
    pub ip: String,
    pub port: u16,
    /// `tcp`, `udp`, `sctp`, ... as the scanner names it.
    pub proto: String,
    /// `open`, `closed`, `filtered`, `open|filtered`, ... as the scanner names it.
    pub state: String,
    pub service: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    /// Lowercase hex SHA-256 of the banner bytes; the banner itself is never copied.
    pub banner_sha256: Option<String>,
    /// `sha256:<hex>` of the DER certificate, or `sha1:<hex>` when only SHA-1 is known.
    pub cert_fpr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ja3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    pub tool: String,
    pub tool_version: Option<String>,
    pub options: Option<String>,
    pub vantage: String,
}

/// What the scanner output cannot tell us, supplied by whoever ran the scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanprintContext {
    /// Where the scan ran from, e.g. `AS1234/us-west-2`.
    pub vantage: String,
    /// Scan options to record. `None` for nmap means "derive a safe summary from
    /// `nmaprun@args`"; masscan output has no options, so there it stays `None`.
    pub options: Option<String>,
    /// Tool version, used when the output does not state it (masscan never does).
    pub tool_version: Option<String>,
}

/// The result of converting one scanner output: the lines that could be read, and one
/// error per record that could not. A garbled record never hides the good ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversion {
    /// Sorted by (ip, proto, port, state); see [`sort_lines`].
    pub lines: Vec<ScanprintLine>,
    pub errors: Vec<NwebError>,
}

/// Refuses a line the bundle verifier would refuse (a time past 9999, a NUL
/// in a name, a latency beyond `int4`): a converter that wrote it would get an
/// honest collector's bundle challenged, so it becomes an error on its record.
pub(crate) fn check_publishable(line: &ScanprintLine) -> Result<(), String> {
    let Ok(serde_json::Value::Object(obj)) = serde_json::to_value(line) else {
        return Err("a scanprint line is not a JSON object".into());
    };
    match super::bundle::scanprint_row(1, &obj) {
        Ok(_) => Ok(()),
        Err(NwebError::Line { problem, .. }) => Err(problem),
        Err(other) => Err(other.to_string()),
    }
}

/// Lowercase hex SHA-256 of a banner, the only form in which banners leave the bundle.
pub fn banner_sha256(banner: &[u8]) -> String {
    hex::encode(Sha256::digest(banner))
}

/// `sha256:<hex>` of a DER certificate, the same value newer nmap prints as `sha256`.
pub fn cert_fpr_from_der(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// `cert_fpr` of the first certificate in a PEM text, or `None` if there is no
/// well-formed `CERTIFICATE` block.
pub fn cert_fpr_from_pem(pem: &str) -> Option<String> {
    xray_parsers::cert::pem_to_der(pem).ok().map(|der| cert_fpr_from_der(&der))
}

/// `cert_fpr` of a base64 DER certificate (PEM body, masscan's `X509` banner).
pub(crate) fn cert_fpr_from_base64(b64: &str) -> Option<String> {
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()?;
    if der.is_empty() {
        return None;
    }
    Some(cert_fpr_from_der(&der))
}

/// Lowercase hex digest from a scanner's rendering ("dc5a cb8b ...", "DC:5A:...").
/// `None` unless exactly `hex_len` hex digits remain.
pub(crate) fn normalize_hex(s: &str, hex_len: usize) -> Option<String> {
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (digits.len() == hex_len && digits.chars().all(|c| c.is_ascii_hexdigit())).then_some(digits)
}

/// Canonical form of an IP address, or an error naming the field.
pub(crate) fn canonical_ip(raw: &str) -> Result<String, String> {
    raw.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("\"ip\": {raw:?} is not an IP address"))
}

/// The order docs/nweb.md §4 fixes: ip (numerically), proto, port, state. Ties (the same
/// port state seen twice) are broken by ts and then by the whole canonical line, so
/// the order, and therefore the Merkle root, never depends on input order.
pub fn sort_lines(lines: &mut [ScanprintLine]) {
    lines.sort_by_cached_key(|l| (sort_key(l), canonical_line(l)));
}

type SortKey = (Option<IpAddr>, String, String, u16, String, u64);

fn sort_key(l: &ScanprintLine) -> SortKey {
    (
        l.ip.parse().ok(),
        l.ip.clone(),
        l.proto.clone(),
        l.port,
        l.state.clone(),
        l.ts,
    )
}

/// JCS form of one line, without the newline.
pub fn canonical_line(line: &ScanprintLine) -> String {
    // A ScanprintLine holds only strings and integers, and every integer has a JCS
    // form, so neither step can fail.
    let value = serde_json::to_value(line).expect("a ScanprintLine always serialises");
    jcs::canonicalize(&value).expect("strings and integers always have a JCS form")
}

/// The scanprint file: every line in JCS form, sorted as [`sort_lines`] does, each
/// followed by `\n`. Sorting here means callers that merge lines cannot change the root
/// by accident.
pub fn to_jsonl(lines: &[ScanprintLine]) -> String {
    let mut keyed: Vec<(SortKey, String)> = lines
        .iter()
        .map(|l| (sort_key(l), canonical_line(l)))
        .collect();
    keyed.sort();
    let mut out = String::with_capacity(keyed.iter().map(|(_, s)| s.len() + 1).sum());
    for (_, s) in keyed {
        out.push_str(&s);
        out.push('\n');
    }
    out
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    /// Reads a fixture relative to the repository's `fixtures/` directory.
    pub fn fixture(rel: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures")
            .join(rel);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle;

    fn line(ip: &str, proto: &str, port: u16, state: &str, ts: u64) -> ScanprintLine {
        ScanprintLine {
            ts,
            ip: ip.to_owned(),
            port,
            proto: proto.to_owned(),
            state: state.to_owned(),
            service: None,
            product: None,
            version: None,
            banner_sha256: None,
            cert_fpr: None,
            tls_ja3: None,
            latency_ms: None,
            tool: "nmap".to_owned(),
            tool_version: Some("7.95".to_owned()),
            options: None,
            vantage: "AS1234/us-west-2".to_owned(),
        }
    }

    #[test]
    fn canonical_line_is_sorted_and_omits_only_ja3_and_latency() {
        let mut l = line("203.0.113.42", "tcp", 443, "open", 1693526400);
        l.service = Some("https".into());
        let s = canonical_line(&l);
        assert_eq!(
            s,
            "{\"banner_sha256\":null,\"cert_fpr\":null,\"ip\":\"203.0.113.42\",\"options\":null,\
             \"port\":443,\"product\":null,\"proto\":\"tcp\",\"service\":\"https\",\"state\":\"open\",\
             \"tool\":\"nmap\",\"tool_version\":\"7.95\",\"ts\":1693526400,\"vantage\":\"AS1234/us-west-2\",\
             \"version\":null}"
        );
        l.tls_ja3 = Some("769,47-53,0-10,23-24,0".into());
        l.latency_ms = Some(21);
        let s = canonical_line(&l);
        assert!(s.contains("\"latency_ms\":21,"), "{s}");
        assert!(s.contains("\"tls_ja3\":\"769,47-53,0-10,23-24,0\","), "{s}");
    }

    #[test]
    fn lines_round_trip_through_json() {
        let mut l = line("2001:db8::1", "udp", 53, "open|filtered", 1);
        l.latency_ms = Some(3);
        let back: ScanprintLine = serde_json::from_str(&canonical_line(&l)).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn to_jsonl_sorts_by_ip_numerically_then_proto_port_state() {
        let lines = vec![
            line("10.0.0.10", "tcp", 22, "open", 5),
            line("10.0.0.9", "udp", 53, "open", 5),
            line("10.0.0.9", "tcp", 443, "open", 5),
            line("10.0.0.9", "tcp", 80, "open", 5),
            line("10.0.0.9", "tcp", 80, "closed", 5),
            line("::1", "tcp", 1, "open", 5),
        ];
        let out = to_jsonl(&lines);
        let order: Vec<(String, String, u64, String)> = out
            .lines()
            .map(|s| {
                let v: serde_json::Value = serde_json::from_str(s).unwrap();
                (
                    v["ip"].as_str().unwrap().to_owned(),
                    v["proto"].as_str().unwrap().to_owned(),
                    v["port"].as_u64().unwrap(),
                    v["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want = [
            ("10.0.0.9", "tcp", 80, "closed"),
            ("10.0.0.9", "tcp", 80, "open"),
            ("10.0.0.9", "tcp", 443, "open"),
            ("10.0.0.9", "udp", 53, "open"),
            ("10.0.0.10", "tcp", 22, "open"),
            ("::1", "tcp", 1, "open"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(a, b, c, d)| (a.to_string(), b.to_string(), *c, d.to_string()))
            .collect();
        assert_eq!(order, want);
        assert!(out.ends_with("}\n"));
    }

    #[test]
    fn to_jsonl_and_root_do_not_depend_on_input_order() {
        let mut lines: Vec<ScanprintLine> = (0..40)
            .map(|i| {
                line(
                    &format!("192.0.2.{}", i % 7),
                    "tcp",
                    1000 + (i * 37 % 11) as u16,
                    "open",
                    i,
                )
            })
            .collect();
        let a = to_jsonl(&lines);
        lines.reverse();
        let b = to_jsonl(&lines);
        lines.sort_by_key(|l| l.ts % 5);
        let c = to_jsonl(&lines);
        assert_eq!(a, b);
        assert_eq!(a, c);
        // And the output is exactly what the Merkle code canonicalises to.
        let leaves = merkle::scanprint_leaves(&a).unwrap();
        let joined: Vec<String> = leaves
            .iter()
            .map(|l| String::from_utf8(l.clone()).unwrap())
            .collect();
        assert_eq!(joined.join("\n") + "\n", a);
        let mut sorted = lines.clone();
        sort_lines(&mut sorted);
        let via_sort: String = sorted.iter().map(|l| canonical_line(l) + "\n").collect();
        assert_eq!(via_sort, a);
    }

    #[test]
    fn fingerprint_helpers() {
        assert_eq!(
            banner_sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            cert_fpr_from_der(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // "YWJj" is base64 of "abc".
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nYW\nJj\n-----END CERTIFICATE-----\n";
        assert_eq!(cert_fpr_from_pem(pem), Some(cert_fpr_from_der(b"abc")));
        assert_eq!(
            cert_fpr_from_pem("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"),
            None
        );
        assert_eq!(cert_fpr_from_pem("no pem here"), None);
        assert_eq!(
            normalize_hex("DC5A cb8b 9EB9 b5de 7117 c536 8c15 0e75 ba88 702e", 40).as_deref(),
            Some("dc5acb8b9eb9b5de7117c5368c150e75ba88702e")
        );
        assert_eq!(normalize_hex("AB:CD", 4).as_deref(), Some("abcd"));
        assert_eq!(normalize_hex("abc", 4), None);
        assert_eq!(normalize_hex("abcg", 4), None);
    }

    #[test]
    fn ip_addresses_are_canonicalised() {
        assert_eq!(canonical_ip("2001:DB8:0:0::1").unwrap(), "2001:db8::1");
        assert_eq!(canonical_ip(" 192.0.2.1 ").unwrap(), "192.0.2.1");
        assert_eq!(
            canonical_ip("192.0.2.300").unwrap_err(),
            "\"ip\": \"192.0.2.300\" is not an IP address"
        );
    }
}
