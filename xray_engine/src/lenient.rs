//! Reading what real workers send (docs/design.md D10). Go workers write empty slices
//! as `null`, tools print timestamps with offsets, and a port sometimes
//! arrives as a string. None of that may refuse a whole scan, and nothing may
//! vanish silently: a value the engine cannot use reads as "unusable", which
//! the engine treats as "this was not checked", and which
//! [`crate::contract::ScanPayload`] reports as a warning with its field path.
//!
//! The deserializers here only see one value, not its path, so they raise a
//! per-thread flag; when it is up after a parse, the payload's JSON is walked
//! once more ([`type_warnings`]) with the same predicates to word the warnings.
//! That walk costs nothing for the payloads that need none.

use std::cell::Cell;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::contract::{Timestamp, Warning};

thread_local! {
    static UNUSABLE_SEEN: Cell<bool> = const { Cell::new(false) };
}

/// Clears the flag before a parse; returns whether it was up.
pub(crate) fn take_unusable_flag() -> bool {
    UNUSABLE_SEEN.with(|f| f.replace(false))
}

fn flag_unusable() {
    UNUSABLE_SEEN.with(|f| f.set(true));
}

/// `null` reads as the type's default, exactly as an absent field does.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A port number from JSON: a number or a decimal string in 1..=65535.
/// `Err` for anything else (the value is unusable), `Ok(None)` for null.
pub(crate) fn port_of(v: &Value) -> Result<Option<u16>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().and_then(port_in_range).map(Some).ok_or(()),
        Value::String(s) => s.trim().parse::<u64>().ok().and_then(port_in_range).map(Some).ok_or(()),
        _ => Err(()),
    }
}

fn port_in_range(n: u64) -> Option<u16> {
    u16::try_from(n).ok().filter(|p| *p > 0)
}

/// An evidence timestamp: RFC 3339 with any offset, normalised to UTC.
pub(crate) fn evidence_time(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s.trim()).ok().map(|d| Timestamp(d.with_timezone(&Utc)))
}

/// Port value for a required field: 0 marks an unusable value (0 is never a
/// real TCP/UDP port, and the engine treats it as "not observed").
pub(crate) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    Ok(opt_port(d)?.unwrap_or(0))
}

/// Port value for an optional field: unusable reads as absent (and flags).
pub(crate) fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let v = d.deserialize_any(PortVisitor)?;
    Ok(v)
}

/// A list of ports; unusable entries are left out (and flag).
pub(crate) fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    d.deserialize_any(PortListVisitor)
}

struct PortSeed;

impl<'de> de::DeserializeSeed<'de> for PortSeed {
    type Value = Option<u16>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(PortVisitor)
    }
}

struct PortListVisitor;

impl<'de> Visitor<'de> for PortListVisitor {
    type Value = Vec<u16>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of port numbers")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = a.next_element_seed(PortSeed)? {
            out.extend(p);
        }
        Ok(out)
    }
}

/// Optional evidence timestamp; an unparseable one reads as absent (and flags).
pub(crate) fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(evidence_time(&s).or_else(|| {
            flag_unusable();
            None
        })),
        Some(_) => {
            flag_unusable();
            Ok(None)
        }
    }
}

struct PortVisitor;

impl<'de> Visitor<'de> for PortVisitor {
    type Value = Option<u16>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a port number")
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(port_in_range(n).or_else(unusable))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(n).ok().and_then(port_in_range).or_else(unusable))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(unusable())
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(s.trim().parse::<u64>().ok().and_then(port_in_range).or_else(unusable))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(unusable())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        while a.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(unusable())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        while a.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
        Ok(unusable())
    }
}

fn unusable() -> Option<u16> {
    flag_unusable();
    None
}

/// The warnings for values the lenient deserializers could not use, found by
/// walking the payload's JSON with the same predicates.
pub(crate) fn type_warnings(payload: &Value) -> Vec<Warning> {
    let mut out = Vec::new();
    let list = |v: &Value, key: &str| -> Vec<(usize, Value)> {
        v.get(key).and_then(Value::as_array).map(|a| a.iter().cloned().enumerate().collect()).unwrap_or_default()
    };
    let port_at = |out: &mut Vec<Warning>, path: String, v: Option<&Value>| {
        if let Some(v) = v {
            if port_of(v).is_err() {
                out.push(Warning { path, problem: format!("{v} is not a port number 1..65535; observation not used") });
            }
        }
    };
    for (ai, ar) in list(payload, "asset_results") {
        for (ei, ep) in list(&ar, "endpoints") {
            let at = |rest: String| format!("asset_results[{ai}].endpoints[{ei}].{rest}");
            if let Some(ports) = ep.get("ports") {
                for proto in ["tcp", "udp"] {
                    for (pi, p) in list(ports, proto) {
                        port_at(&mut out, at(format!("ports.{proto}[{pi}].port")), p.get("port"));
                    }
                }
            }
            for key in ["http", "tls"] {
                for (xi, x) in list(&ep, key) {
                    port_at(&mut out, at(format!("{key}[{xi}].port")), x.get("port"));
                    if key == "tls" {
                        if let Some(cert) = x.get("certificate") {
                            for field in ["not_before", "not_after"] {
                                time_at(&mut out, at(format!("tls[{xi}].certificate.{field}")), cert.get(field));
                            }
                        }
                    }
                }
            }
            if let Some(findings) = ep.get("findings") {
                for key in ["nuclei", "nmap"] {
                    for (fi, f) in list(findings, key) {
                        port_at(&mut out, at(format!("findings.{key}[{fi}].port")), f.get("port"));
                        time_at(&mut out, at(format!("findings.{key}[{fi}].timestamp")), f.get("timestamp").filter(|_| key == "nuclei"));
                    }
                }
            }
            if let Some(cov) = ep.get("coverage") {
                for key in ["tcp_ports", "tls_ports"] {
                    for (pi, p) in list(cov, key) {
                        port_at(&mut out, at(format!("coverage.{key}[{pi}]")), Some(&p));
                    }
                }
            }
        }
    }
    out
}

fn time_at(out: &mut Vec<Warning>, path: String, v: Option<&Value>) {
    let usable = match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => evidence_time(s).is_some(),
        Some(_) => false,
    };
    if !usable {
        let v = v.map(Value::to_string).unwrap_or_default();
        out.push(Warning { path, problem: format!("{v} is not an RFC 3339 timestamp; value not used") });
    }
}
