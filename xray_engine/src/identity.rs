//! Exposure identity and material hash (docs/contract.md §I-4 and §I-6, docs/design.md D1).
//!
//! The rules below are the single source for identity and material fields;
//! `IDENTITY_VERSION` and `FINGERPRINT_VERSION` are stored with every exposure
//! so that a future rule change is visible in the data.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub const IDENTITY_VERSION: u32 = 1;
/// Fingerprint rules of every bucket but RB6 (see [`RiskBucket::fingerprint_version`]).
pub const FINGERPRINT_VERSION: u32 = 1;
/// RB6 fingerprint since fingerprint version 2 (docs/design.md D9): one identity per
/// open port; the symptom moved into the material fields.
pub const RB6_FINGERPRINT: &str = "svc:unknown";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskBucket {
    Rb1,
    Rb2,
    Rb3,
    Rb4,
    Rb5,
    Rb6,
    Rb7,
}

impl RiskBucket {
    pub const ALL: [RiskBucket; 7] = [
        RiskBucket::Rb1,
        RiskBucket::Rb2,
        RiskBucket::Rb3,
        RiskBucket::Rb4,
        RiskBucket::Rb5,
        RiskBucket::Rb6,
        RiskBucket::Rb7,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskBucket::Rb1 => "RB1",
            RiskBucket::Rb2 => "RB2",
            RiskBucket::Rb3 => "RB3",
            RiskBucket::Rb4 => "RB4",
            RiskBucket::Rb5 => "RB5",
            RiskBucket::Rb6 => "RB6",
            RiskBucket::Rb7 => "RB7",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RiskBucket::Rb1 => "Exposed Remote Admin",
            RiskBucket::Rb2 => "Exposed Web Panels",
            RiskBucket::Rb3 => "Weak Encryption",
            RiskBucket::Rb4 => "Certificate Issues",
            RiskBucket::Rb5 => "Risky HTTP Security Headers",
            RiskBucket::Rb6 => "Unresponsive / Unknown Edge Service",
            RiskBucket::Rb7 => "DNS Email Spoofing Risk",
        }
    }

    /// Version of this bucket's fingerprint rules, written into the identity
    /// string as `fpv:`. RB6 is at 2: version 1 had `symptom:{symptom}` in the
    /// fingerprint, so a changed symptom opened a second exposure on the same
    /// port; docs/contract.md §D-7 makes the symptom material instead (docs/design.md D9).
    pub fn fingerprint_version(self) -> u32 {
        match self {
            RiskBucket::Rb6 => 2,
            _ => FINGERPRINT_VERSION,
        }
    }

    /// The evidence keys whose change is a material change (docs/contract.md §D-7,
    /// docs/design.md D1). Everything else in the evidence may churn freely.
    pub fn material_fields(self) -> &'static [&'static str] {
        match self {
            RiskBucket::Rb1 => &["port", "service_family"],
            RiskBucket::Rb2 => &["template_id", "canonical_url"],
            RiskBucket::Rb3 => &["category", "old_tls_versions", "weak_cipher_class"],
            RiskBucket::Rb4 => &["issue_type", "cert_anchor", "expiry_state"],
            RiskBucket::Rb5 => &["missing_headers"],
            RiskBucket::Rb6 => &["symptom"],
            RiskBucket::Rb7 => &[
                "record",
                "spf_all_mechanism",
                "dmarc_policy",
                "dkim_present_selectors",
            ],
        }
    }
}

impl serde::Serialize for RiskBucket {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for RiskBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("risk_bucket: unknown risk bucket {0:?} (expected RB1..RB7)")]
pub struct UnknownBucket(pub String);

impl FromStr for RiskBucket {
    type Err = UnknownBucket;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RiskBucket::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownBucket(s.to_string()))
    }
}

/// The components of an identity, in the order of the canonical string.
#[derive(Debug, Clone, Copy)]
pub struct IdentityParts<'a> {
    pub tenant_id: &'a str,
    pub asset_id: &'a str,
    pub observed_host: &'a str,
    pub risk_bucket: &'a str,
    pub proto: &'a str,
    pub port: i64,
    pub fingerprint: &'a str,
}

impl IdentityParts<'_> {
    /// The bucket's fingerprint version; an unknown bucket text gets the
    /// general one, so the SQL helper still hashes whatever it is given.
    fn fingerprint_version(&self) -> u32 {
        self.risk_bucket.parse::<RiskBucket>().map_or(FINGERPRINT_VERSION, RiskBucket::fingerprint_version)
    }

    /// `v{iv}|tenant:..|asset:..|host:..|bucket:..|proto:..|port:..|fpv:{fv}|fp:..`
    pub fn canonical_string(&self) -> String {
        format!(
            "v{IDENTITY_VERSION}|tenant:{}|asset:{}|host:{}|bucket:{}|proto:{}|port:{}|fpv:{}|fp:{}",
            self.tenant_id,
            self.asset_id,
            self.observed_host,
            self.risk_bucket,
            self.proto,
            self.port,
            self.fingerprint_version(),
            self.fingerprint
        )
    }

    /// sha256 hex of [`Self::canonical_string`], hashed as it is formatted.
    pub fn identity_key(&self) -> String {
        let mut h = HashWriter(Sha256::new());
        let _ = fmt::Write::write_fmt(
            &mut h,
            format_args!(
                "v{IDENTITY_VERSION}|tenant:{}|asset:{}|host:{}|bucket:{}|proto:{}|port:{}|fpv:{}|fp:{}",
                self.tenant_id,
                self.asset_id,
                self.observed_host,
                self.risk_bucket,
                self.proto,
                self.port,
                self.fingerprint_version(),
                self.fingerprint
            ),
        );
        hex::encode(h.0.finalize())
    }
}

/// Lowercase hex SHA-256 of `bytes`, the one spelling of a digest across the crates.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Feeds formatted text or serialised JSON straight into a SHA-256, so the
/// hot hashes need no intermediate string.
struct HashWriter(Sha256);

impl fmt::Write for HashWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Projects `evidence` onto the bucket's material fields (absent → null) and
/// hashes the sorted-key JSON. The same function serves the engine and
/// `xray_material_hash()`, so a stored exposure can be re-checked in SQL.
pub fn material_hash(bucket: RiskBucket, evidence: &Value) -> String {
    // The bytes of `material_json`, streamed into the hash without cloning
    // the fields or building the string: `{"field":value,...}` in key order.
    let mut fields: Vec<&str> = bucket.material_fields().to_vec();
    fields.sort_unstable();
    fields.dedup();
    let mut h = HashWriter(Sha256::new());
    h.0.update(b"{");
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            h.0.update(b",");
        }
        // Serialising a str or a Value into a hasher cannot fail.
        let _ = serde_json::to_writer(&mut h, field);
        h.0.update(b":");
        let _ = serde_json::to_writer(&mut h, evidence.get(*field).unwrap_or(&Value::Null));
    }
    h.0.update(b"}");
    hex::encode(h.0.finalize())
}

pub fn material_json(bucket: RiskBucket, evidence: &Value) -> String {
    let mut projected = Map::new();
    for field in bucket.material_fields() {
        let v = evidence.get(*field).cloned().unwrap_or(Value::Null);
        projected.insert((*field).to_string(), v);
    }
    // serde_json's default map is ordered by key, which makes this stable.
    Value::Object(projected).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_string_follows_the_spec_format() {
        let parts = IdentityParts {
            tenant_id: "11111111-1111-1111-1111-111111111111",
            asset_id: "22222222-2222-2222-2222-222222222222",
            observed_host: "203.0.113.10",
            risk_bucket: "RB1",
            proto: "tcp",
            port: 22,
            fingerprint: "svc:ssh",
        };
        let s = parts.canonical_string();
        assert_eq!(
            s,
            "v1|tenant:11111111-1111-1111-1111-111111111111|asset:22222222-2222-2222-2222-222222222222|host:203.0.113.10|bucket:RB1|proto:tcp|port:22|fpv:1|fp:svc:ssh"
        );
        // Independently computed with: printf '%s' "$s" | sha256sum
        assert_eq!(
            parts.identity_key(),
            "21399a6284d097f7abde11738aa0121a8b5761f02bd177ba9b3dc1c315adfc25"
        );
    }

    #[test]
    fn material_hash_ignores_non_material_fields_and_key_order() {
        let a = json!({"missing_headers": ["content-security-policy"], "title": "a", "rtt": 1});
        let b = json!({"rtt": 9, "missing_headers": ["content-security-policy"]});
        assert_eq!(material_hash(RiskBucket::Rb5, &a), material_hash(RiskBucket::Rb5, &b));
        let c = json!({"missing_headers": ["x-frame-options"]});
        assert_ne!(material_hash(RiskBucket::Rb5, &a), material_hash(RiskBucket::Rb5, &c));
    }

    #[test]
    fn streamed_hashes_equal_hashing_the_strings() {
        let parts = IdentityParts {
            tenant_id: "t",
            asset_id: "a",
            observed_host: "héllo.example",
            risk_bucket: "RB5",
            proto: "https",
            port: 8443,
            fingerprint: "url:https://héllo.example:8443/",
        };
        assert_eq!(parts.identity_key(), sha256_hex(parts.canonical_string().as_bytes()));
        let evidences = [
            json!({}),
            json!({"missing_headers": ["a\"b", "ü\n"], "x": 1}),
            json!({"issue_type": "expired", "cert_anchor": null, "expiry_state": {"z": 1, "a": [1.5, true]}}),
            json!({"record": "spf", "spf_all_mechanism": "~all", "dmarc_policy": "none", "dkim_present_selectors": []}),
            json!({"symptom": "http_timeout", "port": 8080, "category": "weak_ciphers", "weak_cipher_class": "weak",
                   "old_tls_versions": ["TLS1.0"], "template_id": "t", "canonical_url": "http://x/", "service_family": "ssh"}),
        ];
        for b in RiskBucket::ALL {
            for e in &evidences {
                assert_eq!(material_hash(b, e), sha256_hex(material_json(b, e).as_bytes()), "{b} {e}");
            }
        }
    }

    #[test]
    fn material_json_is_sorted_and_null_filled() {
        let e = json!({"issue_type": "expired", "cert_anchor": "spki:x"});
        assert_eq!(
            material_json(RiskBucket::Rb4, &e),
            r#"{"cert_anchor":"spki:x","expiry_state":null,"issue_type":"expired"}"#
        );
    }

    #[test]
    fn bucket_parses_case_insensitively_and_rejects_unknown() {
        assert_eq!("rb4".parse::<RiskBucket>().unwrap(), RiskBucket::Rb4);
        assert!("RB8".parse::<RiskBucket>().is_err());
    }
}
