//! tlsx `-json` output → [`TlsObservation`]s.
//!
//! The certificate fields are inlined at the top level of a tlsx record
//! (`json:",inline"`), `port` is a string, `tls_version` is `tls10`..`tls13`,
//! `-ve` adds `version_enum` and `-ce` adds `cipher_enum` with weak/insecure
//! classes. Very old tlsx (mid 2022) used dashed keys. With `-probe-status`,
//! a failed handshake prints `{"host","port","probe_status":false,"error"}`.
//! With `-cert` the record carries the PEM, and the certificate fields come
//! from it ([`super::cert`]); without it, from tlsx's own fields.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::{
    bool_field, cert, field, parse_error, port_value, read_json_records, str_field, string_list, utc_timestamp, ToolParse,
};
use xray_engine::canon::tls_version;
use xray_engine::contract::{Certificate, CipherClasses, ErrorEntry, Timestamp, TlsObservation};

pub const TOOL: &str = "tlsx";

/// Bulky fields left out of `raw.tlsx_json` (PEM blocks, handshake dumps).
const DROPPED_RAW_KEYS: &[&str] = &["certificate", "client_hello", "servers_hello", "server_hello"];

/// One completed TLS handshake.
#[derive(Debug, Clone)]
pub struct TlsxRecord {
    pub observation: TlsObservation,
    /// The tlsx record without PEM blocks; keeps `expired`, `mismatched`,
    /// `revoked`, `untrusted`, `ja3s_hash`, `key_exchange`, ...
    pub raw: Value,
    pub timestamp: Option<Timestamp>,
    pub line: usize,
}

impl TlsxRecord {
    /// The observation as contract JSON with `raw.tlsx_json` (docs/contract.md §P-6.3),
    /// which the typed [`TlsObservation`] does not model.
    pub fn to_value(&self) -> Value {
        let mut v = serde_json::to_value(&self.observation).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("raw".into(), json!({ "tlsx_json": self.raw }));
        }
        v
    }

    pub fn expired(&self) -> Option<bool> {
        self.raw.get("expired").and_then(Value::as_bool)
    }

    pub fn mismatched(&self) -> Option<bool> {
        self.raw.get("mismatched").and_then(Value::as_bool)
    }
}

/// Parses tlsx output. A failed probe becomes an endpoint error carrying
/// `details.port` and `details.symptom = "tls_handshake_fail"` (docs/design.md D4);
/// whether that symptom is reported for RB6 is the caller's decision.
pub fn parse_tlsx(text: &str) -> ToolParse<TlsxRecord> {
    let records = read_json_records(text, TOOL);
    let mut out = ToolParse {
        items: Vec::new(),
        errors: records.errors,
        ignored_lines: records.ignored_lines,
    };
    for r in records.items {
        match record(&r.object, r.line) {
            Ok(TlsParsed::Handshake(t)) => out.items.push(*t),
            Ok(TlsParsed::Failed(e)) => out.errors.push(e),
            Err(msg) => out.errors.push(parse_error(TOOL, r.line, msg)),
        }
    }
    out.sort_errors();
    out
}

pub(crate) enum TlsParsed {
    Handshake(Box<TlsxRecord>),
    Failed(ErrorEntry),
}

impl TlsParsed {
    pub(crate) fn handshake(self) -> Option<TlsxRecord> {
        match self {
            TlsParsed::Handshake(t) => Some(*t),
            TlsParsed::Failed(_) => None,
        }
    }
}

pub(crate) fn record(obj: &Map<String, Value>, line: usize) -> Result<TlsParsed, String> {
    let host = str_field(obj, &["host"]);
    let port = port_value(obj.get("port"))?.ok_or("record has no port")?;
    let sni = str_field(obj, &["sni"]);
    if bool_field(obj, &["probe_status", "probe-status"]) == Some(false) {
        let error = str_field(obj, &["error"]).unwrap_or_else(|| "TLS handshake failed".into());
        let target = host.clone().unwrap_or_default();
        return Ok(TlsParsed::Failed(ErrorEntry {
            scope: Some("endpoint".into()),
            tool: Some(TOOL.into()),
            message: Some(format!("{target}:{port}: {error}")),
            kind: Some("network_error".into()),
            details: Some(json!({
                "host": host,
                "port": port,
                "sni": sni,
                "symptom": "tls_handshake_fail",
                "line": line,
            })),
        }));
    }

    let mut versions: BTreeSet<(u8, String)> = BTreeSet::new();
    for v in string_list(field(obj, &["version_enum", "version-enum"]))
        .into_iter()
        .chain(str_field(obj, &["tls_version", "tls-version"]))
    {
        let (rank, label) = tls_version(&v).ok_or_else(|| format!("unknown TLS version {v:?}"))?;
        versions.insert((rank, label.to_string()));
    }

    Ok(TlsParsed::Handshake(Box::new(TlsxRecord {
        observation: TlsObservation {
            tool: Some(TOOL.into()),
            host,
            ip: str_field(obj, &["ip"]),
            port,
            sni,
            tls_versions: versions.into_iter().map(|(_, v)| v).collect(),
            cipher: str_field(obj, &["cipher"]),
            ja3: str_field(obj, &["ja3_hash", "ja3-hash", "ja3"]),
            jarm: str_field(obj, &["jarm_hash", "jarm-hash", "jarm"]),
            certificate: certificate(obj)?,
            cipher_classes: cipher_classes(obj),
            ..Default::default()
        },
        raw: raw_without_pem(obj),
        timestamp: str_field(obj, &["timestamp"]).as_deref().and_then(utc_timestamp),
        line,
    })))
}

fn certificate(obj: &Map<String, Value>) -> Result<Option<Certificate>, String> {
    // `-cert` prints the PEM: the certificate itself decides (see `cert`).
    if let Some(pem) = str_field(obj, &["certificate"]) {
        return cert::from_pem(&pem).map(|f| Some(f.certificate));
    }
    let date = |keys: &[&str]| -> Result<Option<Timestamp>, String> {
        match str_field(obj, keys) {
            None => Ok(None),
            Some(s) => utc_timestamp(&s)
                .map(Some)
                .ok_or_else(|| format!("{} {s:?} is not an RFC 3339 time", keys[0])),
        }
    };
    let not_before = date(&["not_before", "not-before"])?;
    let not_after = date(&["not_after", "not-after"])?;
    let fingerprints = field(obj, &["fingerprint_hash", "fingerprint-hash"]).and_then(Value::as_object);
    let subject_cn = str_field(obj, &["subject_cn", "subject-cn"]);
    let serial = str_field(obj, &["serial"]);
    let sans = string_list(field(obj, &["subject_an", "subject-an"]));
    if not_before.is_none()
        && not_after.is_none()
        && fingerprints.is_none()
        && subject_cn.is_none()
        && serial.is_none()
        && sans.is_empty()
    {
        return Ok(None);
    }
    Ok(Some(Certificate {
        subject_cn,
        issuer_cn: str_field(obj, &["issuer_cn", "issuer-cn"]),
        serial,
        not_before,
        not_after,
        sans,
        // `self_signed` is omitempty: absent next to a certificate means false.
        is_self_signed: Some(bool_field(obj, &["self_signed", "self-signed"]).unwrap_or(false)),
        spki_sha256: None,
        cert_sha256: fingerprints
            .and_then(|f| str_field(f, &["sha256"]))
            .map(|s| s.to_ascii_lowercase()),
    }))
}

fn cipher_classes(obj: &Map<String, Value>) -> Option<CipherClasses> {
    let list = field(obj, &["cipher_enum", "cipher-enum"])?.as_array()?;
    let mut weak = BTreeSet::new();
    let mut insecure = BTreeSet::new();
    for entry in list.iter().filter_map(Value::as_object) {
        let Some(ciphers) = entry.get("ciphers").and_then(Value::as_object) else {
            continue;
        };
        weak.extend(string_list(ciphers.get("weak")));
        insecure.extend(string_list(ciphers.get("insecure")));
    }
    Some(CipherClasses {
        weak: weak.into_iter().collect(),
        insecure: insecure.into_iter().collect(),
    })
}

fn raw_without_pem(obj: &Map<String, Value>) -> Value {
    let mut raw = obj.clone();
    for k in DROPPED_RAW_KEYS {
        raw.remove(*k);
    }
    if let Some(Value::Array(chain)) = raw.get_mut("chain") {
        for c in chain.iter_mut().filter_map(Value::as_object_mut) {
            c.remove("certificate");
        }
    }
    Value::Object(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../fixtures/tool-output/tlsx/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn readme_example_com_pretty() {
        let p = parse_tlsx(&fixture("README_v1.2.0_example.com_jq_pretty.json"));
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.items.len(), 1);
        let t = &p.items[0];
        let o = &t.observation;
        assert_eq!(o.host.as_deref(), Some("example.com"));
        assert_eq!(o.ip.as_deref(), Some("93.184.216.34"));
        assert_eq!(o.port, 443);
        assert_eq!(o.sni.as_deref(), Some("example.com"));
        assert_eq!(o.tls_versions, vec!["TLS1.3"]);
        assert_eq!(o.cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
        let c = o.certificate.as_ref().unwrap();
        assert_eq!(c.subject_cn.as_deref(), Some("www.example.org"));
        assert_eq!(c.issuer_cn.as_deref(), Some("DigiCert TLS RSA SHA256 2020 CA1"));
        assert_eq!(c.not_before.unwrap().to_string(), "2022-03-14T00:00:00Z");
        assert_eq!(c.not_after.unwrap().to_string(), "2023-03-14T23:59:59Z");
        assert_eq!(c.sans.len(), 8);
        assert!(c.sans.contains(&"example.com".to_string()));
        assert_eq!(c.is_self_signed, Some(false));
        assert_eq!(
            c.cert_sha256.as_deref(),
            Some("7f2fe8d6b18e9a47839256cd97938daa70e8515750298ddba2f3f4b8440113fc")
        );
        assert!(o.cipher_classes.is_none(), "no -ce in this run");
        // +05:30 offset converted to UTC.
        assert_eq!(t.timestamp.unwrap().to_string(), "2022-08-22T15:52:59.799053Z");
        assert_eq!(t.raw["tls_connection"], json!("ctls"));
    }

    #[test]
    fn self_signed_object_embedded_in_httpx() {
        let p = parse_tlsx(&fixture(
            "httpx_embedded_tls_object_selfsigned_2024-06-27.RESERIALIZED.json",
        ));
        assert!(p.errors.is_empty());
        let o = &p.items[0].observation;
        assert_eq!(o.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(o.ip, None);
        let c = o.certificate.as_ref().unwrap();
        assert_eq!(c.is_self_signed, Some(true));
        assert_eq!(c.subject_cn.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.sans, vec!["localhost"]);
        assert_eq!(c.not_before.unwrap().to_string(), "2024-05-29T02:32:47Z");
        let v = p.items[0].to_value();
        assert_eq!(v["raw"]["tlsx_json"]["self_signed"], json!(true));
        let back: TlsObservation = serde_json::from_value(v).unwrap();
        assert_eq!(back.port, 443);
    }

    #[test]
    fn version_and_cipher_enumeration() {
        // Synthetic -ve -ce record (tlsx v1.1+ field names).
        let text = r#"{"timestamp":"2026-02-05T11:00:00+01:00","host":"mail.example.com","ip":"192.0.2.25","port":"993","probe_status":true,"tls_version":"tls12","cipher":"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256","expired":true,"mismatched":true,"not_before":"2025-01-01T00:00:00Z","not_after":"2026-01-01T00:00:00Z","subject_cn":"mail.example.com","serial":"0C:D0","fingerprint_hash":{"sha256":"AB12"},"jarm_hash":"07d14d16d21d21d","ja3_hash":"771,4865","version_enum":["tls10","tls11","tls12"],"cipher_enum":[{"version":"tls10","ciphers":{"weak":["TLS_RSA_WITH_AES_128_CBC_SHA"],"insecure":["TLS_RSA_WITH_RC4_128_SHA"]}},{"version":"tls12","ciphers":{"secure":["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],"weak":["TLS_RSA_WITH_AES_128_CBC_SHA"]}}]}"#;
        let p = parse_tlsx(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let t = &p.items[0];
        assert_eq!(t.observation.tls_versions, vec!["TLS1.0", "TLS1.1", "TLS1.2"]);
        let cc = t.observation.cipher_classes.as_ref().unwrap();
        assert_eq!(cc.weak, vec!["TLS_RSA_WITH_AES_128_CBC_SHA"]);
        assert_eq!(cc.insecure, vec!["TLS_RSA_WITH_RC4_128_SHA"]);
        assert_eq!(t.observation.jarm.as_deref(), Some("07d14d16d21d21d"));
        assert_eq!(t.observation.ja3.as_deref(), Some("771,4865"));
        assert_eq!(
            t.observation.certificate.as_ref().unwrap().cert_sha256.as_deref(),
            Some("ab12")
        );
        assert_eq!(t.expired(), Some(true));
        assert_eq!(t.mismatched(), Some(true));
        assert_eq!(t.timestamp.unwrap().to_string(), "2026-02-05T10:00:00Z");
    }

    #[test]
    fn dashed_keys_of_2022() {
        // From tlsx issue #12 (June 2022): dashed key names. Minimal literal.
        let text = r#"{"host":"192.0.2.30","port":"8443","tls-version":"tls11","subject-an":["a.example"],"subject-cn":"a.example","not-after":"2022-09-01T00:00:00Z","fingerprint-hash":{"sha256":"ff00"}}"#;
        let p = parse_tlsx(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let o = &p.items[0].observation;
        assert_eq!(o.tls_versions, vec!["TLS1.1"]);
        let c = o.certificate.as_ref().unwrap();
        assert_eq!(c.sans, vec!["a.example"]);
        assert_eq!(c.cert_sha256.as_deref(), Some("ff00"));
        assert_eq!(c.not_after.unwrap().to_string(), "2022-09-01T00:00:00Z");
    }

    #[test]
    fn failed_probe_is_a_symptom_not_an_observation() {
        let text = r#"{"host":"192.0.2.40","port":"8443","probe_status":false,"error":"could not connect to any address found for host"}"#;
        let p = parse_tlsx(text);
        assert!(p.items.is_empty());
        assert_eq!(p.errors.len(), 1);
        let e = &p.errors[0];
        assert_eq!(e.symptom(), Some("tls_handshake_fail"));
        assert_eq!(e.symptom_port(), Some(8443));
        assert_eq!(e.tool.as_deref(), Some("tlsx"));
        assert_eq!(e.scope.as_deref(), Some("endpoint"));
    }

    #[test]
    fn garbage_lines_become_errors_and_good_lines_still_parse() {
        let good = fixture("httpx_embedded_tls_object_selfsigned_2024-06-27.RESERIALIZED.json");
        let text = format!(
            "{}\n{{\"host\":\"x\",\"port\":\"443\",\"tls_version\":\"tls99\"}}\n{{\"host\":\"x\",\"port\":\"443\",\"not_after\":\"soon\"}}\n{{\"host\":\"x\"}}\n{{\"host\":\"x\",\n{}",
            good.trim(),
            good.trim()
        );
        let p = parse_tlsx(&text);
        assert_eq!(p.items.len(), 2);
        let msgs: Vec<String> = p.errors.iter().filter_map(|e| e.message.clone()).collect();
        assert_eq!(
            msgs,
            vec![
                "line 2: unknown TLS version \"tls99\"".to_string(),
                "line 3: not_after \"soon\" is not an RFC 3339 time".to_string(),
                "line 4: record has no port".to_string(),
                "line 5: invalid JSON: key must be a string".to_string(),
            ]
        );
        assert_eq!(p.items[1].line, 6);
    }

    #[test]
    fn v1_2_2_with_cert_is_judged_from_the_pem() {
        let p = parse_tlsx(&fixture("v1.2.2_demo-services_watchtower.test.jsonl"));
        assert_eq!(p.items.len(), 2, "{:?}", p.errors);
        assert_eq!(p.errors.len(), 4, "2222 and 9200 on both addresses failed the handshake");
        assert!(p.errors.iter().all(|e| e.symptom() == Some("tls_handshake_fail")));
        for t in &p.items {
            assert_eq!(t.observation.sni.as_deref(), Some("watchtower.test"));
            assert_eq!(t.observation.tls_versions, vec!["TLS1.0", "TLS1.2"]);
            let c = t.observation.certificate.as_ref().unwrap();
            // tlsx's subject_an leaves out the IP SAN; the certificate has it.
            assert_eq!(t.raw["subject_an"], json!(["watchtower.test"]));
            assert_eq!(c.sans, vec!["watchtower.test", "127.0.0.1"]);
            assert_eq!(c.is_self_signed, Some(true));
            assert_eq!(c.cert_sha256.as_deref(), t.raw["fingerprint_hash"]["sha256"].as_str());
            assert_eq!(c.serial.as_deref(), t.raw["serial"].as_str());
            assert_eq!(c.spki_sha256.as_deref().map(str::len), Some(64));
            assert!(t.raw.get("certificate").is_none(), "PEM dropped from raw");
        }
    }
}
