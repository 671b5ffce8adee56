//! Target specs and deny lists: the JSON documents the dispatcher publishes (`/getwork`)
//! and a manifest's `targetSpecCid` names.
//!
//! Both are content-addressed like bundles: the bytes are the RFC 8785 canonical form of
//! the normalised document plus a newline, and the address is the CIDv1 Kubo gives that
//! file (`ipfs add --cid-version=1 --raw-leaves`). Normalising first (ports and targets
//! sorted, CIDRs written from their network address) means two people who ask for the same
//! work publish the same CID, whatever order they typed it in.
//!
//! ```json
//! {"schema":"nweb.targetspec.v1","targets":["192.0.2.0/28","198.51.100.7"],
//!  "ports":[22,80,443],"profile":"nmap-top1k","rate":{"packetsPerSecond":100},
//!  "notes":"optional"}
//! {"schema":"nweb.denylist.v1","deny":["192.0.2.5","203.0.113.0/24"],"notes":"optional"}
//! ```

use std::fmt;
use std::net::IpAddr;

use serde_json::{json, Map, Value};
use xray_engine::contract::json_kind;

use crate::unixfs::file_cid;
use crate::{jcs, Cid, NwebError};

pub const TARGET_SPEC_SCHEMA: &str = "nweb.targetspec.v1";
pub const DENY_LIST_SCHEMA: &str = "nweb.denylist.v1";
/// A dispatcher hands out work, not a copy of the internet: more entries than this is a
/// mistake, and it bounds what a collector parses from an untrusted server.
pub const MAX_ENTRIES: usize = 4096;
/// The largest document a collector reads (a full spec of [`MAX_ENTRIES`] CIDRs and all
/// 65535 ports is well under this).
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
const MAX_NOTES_CHARS: usize = 4096;
const MAX_PACKETS_PER_SECOND: u64 = 1_000_000;

/// Which scanner a profile runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileTool {
    Nmap,
    Masscan,
}

/// A tool profile: the names are the submission kinds of [`crate::rules::SubmissionKind`],
/// so a bundle made from a spec is priced by what the spec asked for.
#[derive(Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    pub tool: ProfileTool,
    /// The scanner's flags besides ports, targets and rate (which come from the spec).
    pub flags: &'static [&'static str],
    /// The most ports a spec of this profile may list.
    pub max_ports: usize,
}

pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "masscan-quick",
        tool: ProfileTool::Masscan,
        flags: &[],
        max_ports: 65535,
    },
    Profile {
        name: "nmap-top1k",
        tool: ProfileTool::Nmap,
        flags: &["-sV", "-Pn", "-n", "--script", "ssl-cert"],
        max_ports: 1000,
    },
    Profile {
        name: "nmap-full",
        tool: ProfileTool::Nmap,
        flags: &["-sV", "-Pn", "-n", "--script", "ssl-cert"],
        max_ports: 65535,
    },
];

pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// One address or network, as a spec or deny list writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Ip(IpAddr),
    /// A network address (host bits zero) and its prefix length.
    Cidr(IpAddr, u8),
}

impl Target {
    /// Parses `192.0.2.1`, `192.0.2.0/24`, `2001:db8::/32`. A CIDR with host bits set is
    /// refused rather than silently widened or narrowed: the author meant something else.
    pub fn parse(s: &str) -> Result<Target, String> {
        let Some((addr, prefix)) = s.split_once('/') else {
            return s
                .parse::<IpAddr>()
                .map(Target::Ip)
                .map_err(|_| format!("{s:?} is not an IP address or CIDR"));
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR: {addr:?} is not an IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max && !prefix.starts_with('+'))
            .ok_or_else(|| format!("{s:?} is not a CIDR: the prefix must be 0 to {max}"))?;
        let net = mask(ip, prefix);
        if net != ip {
            return Err(format!("{s:?} has host bits set; the network is {net}/{prefix}"));
        }
        Ok(if prefix == max { Target::Ip(ip) } else { Target::Cidr(ip, prefix) })
    }

    fn sort_key(&self) -> (IpAddr, u8) {
        match *self {
            Target::Ip(ip) => (ip, if ip.is_ipv4() { 32 } else { 128 }),
            Target::Cidr(net, prefix) => (net, prefix),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match *self {
            Target::Ip(x) => x == ip,
            Target::Cidr(net, prefix) => ip.is_ipv4() == net.is_ipv4() && mask(ip, prefix) == net,
        }
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            IpAddr::V6((bits & m).into())
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ip(ip) => write!(f, "{ip}"),
            Target::Cidr(net, prefix) => write!(f, "{net}/{prefix}"),
        }
    }
}

/// What a dispatcher asks collectors to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// Sorted, without duplicates.
    pub targets: Vec<Target>,
    /// Sorted, without duplicates, none 0.
    pub ports: Vec<u16>,
    pub profile: &'static Profile,
    /// The most packets per second a collector may send for this spec.
    pub packets_per_second: u32,
    pub notes: Option<String>,
}

/// Addresses no collector taking work from this dispatcher may scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DenyList {
    /// Sorted, without duplicates.
    pub deny: Vec<Target>,
    pub notes: Option<String>,
}

fn bad(field: &str, problem: impl Into<String>) -> NwebError {
    NwebError::Field {
        field: field.into(),
        problem: problem.into(),
    }
}

fn parse_object(text: &str, what: &str) -> Result<Map<String, Value>, NwebError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(bad(what, format!("{} bytes is more than the limit of {MAX_DOCUMENT_BYTES}", text.len())));
    }
    match jcs::parse_strict(text)? {
        Value::Object(m) => Ok(m),
        other => Err(bad(what, format!("expected a JSON object, got {}", json_kind(&other)))),
    }
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), NwebError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        // An unknown key would be hashed into the CID yet ignored by every collector.
        Some(k) => Err(bad(k, format!("unknown field (expected {})", allowed.join(", ")))),
        None => Ok(()),
    }
}

fn check_schema(obj: &Map<String, Value>, expected: &str) -> Result<(), NwebError> {
    match obj.get("schema") {
        Some(Value::String(s)) if s == expected => Ok(()),
        Some(Value::String(s)) => Err(bad("schema", format!("{s:?} is not {expected:?}"))),
        Some(v) => Err(bad("schema", format!("expected a string, got {}", json_kind(v)))),
        None => Err(bad("schema", format!("missing (expected {expected:?})"))),
    }
}

fn parse_targets(obj: &Map<String, Value>, field: &str) -> Result<Vec<Target>, NwebError> {
    let items = match obj.get(field) {
        Some(Value::Array(a)) => a,
        Some(v) => return Err(bad(field, format!("expected an array, got {}", json_kind(v)))),
        None => return Err(bad(field, "missing")),
    };
    if items.len() > MAX_ENTRIES {
        return Err(bad(field, format!("{} entries is more than {MAX_ENTRIES}", items.len())));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let Value::String(s) = item else {
            return Err(bad(&f, format!("expected a string, got {}", json_kind(item))));
        };
        out.push(Target::parse(s).map_err(|e| bad(&f, e))?);
    }
    // By address, then prefix, so a list reads in address order, networks before hosts.
    out.sort_unstable_by_key(|t| t.sort_key());
    out.dedup();
    Ok(out)
}

fn parse_notes(obj: &Map<String, Value>) -> Result<Option<String>, NwebError> {
    match obj.get("notes") {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() > MAX_NOTES_CHARS => {
            Err(bad("notes", format!("longer than {MAX_NOTES_CHARS} characters")))
        }
        Some(Value::String(s)) if s.contains('\0') => Err(bad("notes", "contains NUL")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(bad("notes", format!("expected a string, got {}", json_kind(v)))),
    }
}

fn canonical_bytes(v: &Value) -> Vec<u8> {
    let mut s = jcs::canonicalize(v).expect("integers and strings only");
    s.push('\n');
    s.into_bytes()
}

/// The CID of a document's bytes as Kubo adds them: what `targetSpecCid` holds.
pub fn document_cid(bytes: &[u8]) -> Cid {
    file_cid(bytes)
}

/// Checks bytes fetched from someone else against the CID they were asked for, and that
/// they are the canonical form of a valid document, so the CID means one thing only.
fn check_fetched<T>(
    bytes: &[u8],
    expected: &Cid,
    what: &str,
    parse: impl Fn(&str) -> Result<T, NwebError>,
    canon: impl Fn(&T) -> Vec<u8>,
) -> Result<T, NwebError> {
    let got = document_cid(bytes);
    if got != *expected {
        return Err(bad(what, format!("the bytes served hash to {got}, not to the CID {expected} they were asked for")));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad(what, "not UTF-8"))?;
    let doc = parse(text)?;
    if canon(&doc) != bytes {
        return Err(bad(what, format!("{expected} is not in canonical form (RFC 8785 JSON and a newline)")));
    }
    Ok(doc)
}

impl TargetSpec {
    /// Parses and validates a spec; every error names its field.
    pub fn from_json(text: &str) -> Result<TargetSpec, NwebError> {
        let obj = parse_object(text, "target spec")?;
        check_keys(&obj, &["schema", "targets", "ports", "profile", "rate", "notes"])?;
        check_schema(&obj, TARGET_SPEC_SCHEMA)?;
        let targets = parse_targets(&obj, "targets")?;
        if targets.is_empty() {
            return Err(bad("targets", "must list at least one IP address or CIDR"));
        }
        let profile = match obj.get("profile") {
            Some(Value::String(s)) => profile(s).ok_or_else(|| {
                let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
                bad("profile", format!("unknown profile {s:?} (expected {})", names.join(", ")))
            })?,
            Some(v) => return Err(bad("profile", format!("expected a string, got {}", json_kind(v)))),
            None => return Err(bad("profile", "missing")),
        };
        let items = match obj.get("ports") {
            Some(Value::Array(a)) => a,
            Some(v) => return Err(bad("ports", format!("expected an array, got {}", json_kind(v)))),
            None => return Err(bad("ports", "missing")),
        };
        let mut ports = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let p = item
                .as_u64()
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| bad(&format!("ports[{i}]"), format!("{item} is not a TCP port (1 to 65535)")))?;
            ports.push(p as u16);
        }
        ports.sort_unstable();
        ports.dedup();
        if ports.is_empty() {
            return Err(bad("ports", "must list at least one port"));
        }
        if ports.len() > profile.max_ports {
            return Err(bad(
                "ports",
                format!("{} ports is more than the {} of profile {}", ports.len(), profile.max_ports, profile.name),
            ));
        }
        let rate = match obj.get("rate") {
            Some(Value::Object(r)) => r,
            Some(v) => return Err(bad("rate", format!("expected an object, got {}", json_kind(v)))),
            None => return Err(bad("rate", "missing (e.g. {\"packetsPerSecond\": 100})")),
        };
        if let Some(k) = rate.keys().find(|k| *k != "packetsPerSecond") {
            return Err(bad(&format!("rate.{k}"), "unknown field (expected packetsPerSecond)"));
        }
        let pps = rate
            .get("packetsPerSecond")
            .ok_or_else(|| bad("rate.packetsPerSecond", "missing"))?;
        let packets_per_second = pps
            .as_u64()
            .filter(|n| (1..=MAX_PACKETS_PER_SECOND).contains(n))
            .ok_or_else(|| bad("rate.packetsPerSecond", format!("{pps} is not an integer from 1 to {MAX_PACKETS_PER_SECOND}")))?
            as u32;
        Ok(TargetSpec {
            targets,
            ports,
            profile,
            packets_per_second,
            notes: parse_notes(&obj)?,
        })
    }

    pub fn to_value(&self) -> Value {
        let mut v = json!({
            "schema": TARGET_SPEC_SCHEMA,
            "targets": self.targets.iter().map(Target::to_string).collect::<Vec<_>>(),
            "ports": self.ports,
            "profile": self.profile.name,
            "rate": {"packetsPerSecond": self.packets_per_second},
        });
        if let Some(n) = &self.notes {
            v["notes"] = json!(n);
        }
        v
    }

    /// The published bytes: canonical JSON and a newline.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes(&self.to_value())
    }

    pub fn cid(&self) -> Cid {
        document_cid(&self.canonical_bytes())
    }

    /// A spec fetched from a dispatcher: its bytes must hash to `expected` and be canonical.
    pub fn from_fetched(bytes: &[u8], expected: &Cid) -> Result<TargetSpec, NwebError> {
        check_fetched(bytes, expected, "target spec", TargetSpec::from_json, TargetSpec::canonical_bytes)
    }
}

impl DenyList {
    pub fn from_json(text: &str) -> Result<DenyList, NwebError> {
        let obj = parse_object(text, "deny list")?;
        check_keys(&obj, &["schema", "deny", "notes"])?;
        check_schema(&obj, DENY_LIST_SCHEMA)?;
        Ok(DenyList {
            deny: parse_targets(&obj, "deny")?,
            notes: parse_notes(&obj)?,
        })
    }

    pub fn to_value(&self) -> Value {
        let mut v = json!({
            "schema": DENY_LIST_SCHEMA,
            "deny": self.deny.iter().map(Target::to_string).collect::<Vec<_>>(),
        });
        if let Some(n) = &self.notes {
            v["notes"] = json!(n);
        }
        v
    }

    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes(&self.to_value())
    }

    pub fn cid(&self) -> Cid {
        document_cid(&self.canonical_bytes())
    }

    pub fn from_fetched(bytes: &[u8], expected: &Cid) -> Result<DenyList, NwebError> {
        check_fetched(bytes, expected, "deny list", DenyList::from_json, DenyList::canonical_bytes)
    }

    pub fn denies(&self, ip: IpAddr) -> bool {
        self.deny.iter().any(|t| t.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{
        "schema": "nweb.targetspec.v1",
        "targets": ["198.51.100.7", "192.0.2.0/28", "192.0.2.0/28", "2001:db8::/64", "192.0.2.9/32"],
        "ports": [443, 22, 80, 22],
        "profile": "nmap-top1k",
        "rate": {"packetsPerSecond": 100},
        "notes": "weekly"
    }"#;

    fn err(text: &str) -> String {
        TargetSpec::from_json(text).unwrap_err().to_string()
    }

    fn with(key: &str, value: Value) -> String {
        let mut v: Value = serde_json::from_str(SPEC).unwrap();
        if value.is_null() {
            v.as_object_mut().unwrap().remove(key);
        } else {
            v[key] = value;
        }
        v.to_string()
    }

    #[test]
    fn a_spec_is_normalised_canonical_and_addressed_like_a_file() {
        let s = TargetSpec::from_json(SPEC).unwrap();
        assert_eq!(s.ports, [22, 80, 443]);
        let targets: Vec<String> = s.targets.iter().map(Target::to_string).collect();
        assert_eq!(targets, ["192.0.2.0/28", "192.0.2.9", "198.51.100.7", "2001:db8::/64"]);
        assert_eq!(s.profile.tool, ProfileTool::Nmap);
        let bytes = s.canonical_bytes();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "{\"notes\":\"weekly\",\"ports\":[22,80,443],\"profile\":\"nmap-top1k\",\"rate\":{\"packetsPerSecond\":100},\"schema\":\"nweb.targetspec.v1\",\"targets\":[\"192.0.2.0/28\",\"192.0.2.9\",\"198.51.100.7\",\"2001:db8::/64\"]}\n"
        );
        assert_eq!(s.cid(), file_cid(&bytes));
        assert!(s.cid().to_string().starts_with("bafkrei"), "a raw-leaf CIDv1: {}", s.cid());
        // The same work typed in another order is the same document.
        let other = r#"{"rate":{"packetsPerSecond":100},"profile":"nmap-top1k","ports":[80,443,22],"notes":"weekly",
            "targets":["2001:db8::/64","192.0.2.9","198.51.100.7","192.0.2.0/28"],"schema":"nweb.targetspec.v1"}"#;
        assert_eq!(TargetSpec::from_json(other).unwrap().cid(), s.cid());
        // What it publishes reads back as itself.
        assert_eq!(TargetSpec::from_fetched(&bytes, &s.cid()).unwrap(), s);
    }

    #[test]
    fn fetched_bytes_must_match_their_cid_and_be_canonical() {
        let s = TargetSpec::from_json(SPEC).unwrap();
        let cid = s.cid();
        let mut wider = s.clone();
        wider.targets = vec![Target::parse("0.0.0.0/0").unwrap()];
        let e = TargetSpec::from_fetched(&wider.canonical_bytes(), &cid).unwrap_err().to_string();
        assert!(e.starts_with("target spec: the bytes served hash to"), "{e}");
        // Right CID of non-canonical bytes: refused, so one CID is one document.
        let pretty = SPEC.as_bytes();
        let e = TargetSpec::from_fetched(pretty, &document_cid(pretty)).unwrap_err().to_string();
        assert!(e.contains("not in canonical form"), "{e}");
    }

    #[test]
    fn every_error_names_its_field() {
        let cases: Vec<(String, &str)> = vec![
            ("[]".into(), "target spec: expected a JSON object"),
            ("{\"schema\":1,\"schema\":2}".into(), "invalid JSON"),
            (with("schema", json!("nweb.targetspec.v9")), "schema: \"nweb.targetspec.v9\" is not"),
            (with("targets", json!([])), "targets: must list at least one"),
            (with("targets", json!(["192.0.2.1/24"])), "targets[0]: \"192.0.2.1/24\" has host bits set; the network is 192.0.2.0/24"),
            (with("targets", json!(["10.0.0.0/33"])), "targets[0]: \"10.0.0.0/33\" is not a CIDR: the prefix must be 0 to 32"),
            (with("targets", json!(["example.com"])), "targets[0]: \"example.com\" is not an IP address or CIDR"),
            (with("targets", json!([7])), "targets[0]: expected a string, got a number"),
            (with("ports", json!([22, 0])), "ports[1]: 0 is not a TCP port"),
            (with("ports", json!([70000])), "ports[0]: 70000 is not a TCP port"),
            (with("ports", json!((1..=1001).collect::<Vec<u32>>())), "ports: 1001 ports is more than the 1000 of profile nmap-top1k"),
            (with("profile", json!("zmap")), "profile: unknown profile \"zmap\" (expected masscan-quick, nmap-top1k, nmap-full)"),
            (with("profile", Value::Null), "profile: missing"),
            (with("rate", json!({"packetsPerSecond": 0})), "rate.packetsPerSecond: 0 is not an integer from 1 to"),
            (with("rate", json!({"pps": 5})), "rate.pps: unknown field"),
            (with("extra", json!(true)), "extra: unknown field"),
            (with("notes", json!(3)), "notes: expected a string"),
        ];
        for (text, want) in cases {
            let e = err(&text);
            assert!(e.starts_with(want), "{text}\n  got: {e}\n want: {want}");
        }
        let full = with("profile", json!("nmap-full"));
        let many = serde_json::from_str::<Value>(&full).unwrap();
        let mut many = many;
        many["ports"] = json!((1..=65535).collect::<Vec<u32>>());
        assert_eq!(TargetSpec::from_json(&many.to_string()).unwrap().ports.len(), 65535);
    }

    #[test]
    fn targets_contain_what_they_should() {
        let net = Target::parse("192.0.2.0/30").unwrap();
        assert!(net.contains("192.0.2.3".parse().unwrap()));
        assert!(!net.contains("192.0.2.4".parse().unwrap()));
        assert!(!net.contains("::".parse().unwrap()));
        assert!(Target::parse("0.0.0.0/0").unwrap().contains("203.0.113.1".parse().unwrap()));
        assert_eq!(Target::parse("2001:db8::1/128").unwrap(), Target::Ip("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn a_deny_list_is_canonical_and_checked_against_its_cid() {
        let d = DenyList::from_json(r#"{"schema":"nweb.denylist.v1","deny":["203.0.113.0/24","192.0.2.5"]}"#).unwrap();
        assert!(d.denies("203.0.113.9".parse().unwrap()));
        assert!(d.denies("192.0.2.5".parse().unwrap()));
        assert!(!d.denies("192.0.2.6".parse().unwrap()));
        let bytes = d.canonical_bytes();
        assert_eq!(bytes, b"{\"deny\":[\"192.0.2.5\",\"203.0.113.0/24\"],\"schema\":\"nweb.denylist.v1\"}\n");
        assert_eq!(DenyList::from_fetched(&bytes, &d.cid()).unwrap(), d);
        let e = DenyList::from_fetched(b"{}\n", &d.cid()).unwrap_err().to_string();
        assert!(e.starts_with("deny list: the bytes served hash to"), "{e}");
        let e = DenyList::from_json(r#"{"schema":"nweb.denylist.v1","deny":["x"]}"#).unwrap_err().to_string();
        assert!(e.starts_with("deny[0]: \"x\" is not an IP address or CIDR"), "{e}");
    }
}
