//! The scan-result contract (worker → database), `schema_version` 1.x.
//!
//! Parsing is strict about what the engine relies on (ids, timestamps, types)
//! and tolerant of everything else: unknown fields are ignored and optional
//! blocks may be absent, as docs/contract.md §P-12 requires.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::lenient::{self, null_as_default};

/// Major version of the contract this engine implements. Minor versions only
/// add optional fields, so every `1.x` is accepted.
pub const SUPPORTED_MAJOR: u64 = 1;

/// Why a payload was refused. Each variant maps to one SQLSTATE so that SQL
/// callers can tell a caller bug from a version problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("{field}: {problem}")]
    Malformed { field: String, problem: String },
    #[error("{field}: required field is missing")]
    Missing { field: String },
    #[error("{field}: {problem}")]
    WrongType { field: String, problem: String },
    #[error("{field}: invalid UUID {value:?}")]
    InvalidUuid { field: String, value: String },
    #[error("{field}: invalid timestamp {value:?} (expected UTC ISO 8601 ending in Z)")]
    InvalidTimestamp { field: String, value: String },
    #[error("{field}: {problem}")]
    InvalidValue { field: String, problem: String },
    #[error("schema_version: unsupported version {version:?} (this engine accepts 1.x)")]
    UnsupportedVersion { version: String },
}

impl ContractError {
    /// The PostgreSQL SQLSTATE for this error class.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ContractError::Malformed { .. } => "22032",  // invalid_json_text
            ContractError::Missing { .. } => "23502",    // not_null_violation
            ContractError::WrongType { .. } => "22023",  // invalid_parameter_value
            ContractError::InvalidUuid { .. } => "22P02", // invalid_text_representation
            ContractError::InvalidTimestamp { .. } => "22007", // invalid_datetime_format
            ContractError::InvalidValue { .. } => "22023",
            ContractError::UnsupportedVersion { .. } => "0A000", // feature_not_supported
        }
    }
}

/// A UTC instant written as ISO 8601 with a literal `Z` (docs/contract.md §P-12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

const TS_MARKER: &str = "xray-invalid-timestamp:";
const UUID_MARKER: &str = "xray-invalid-uuid:";

impl Timestamp {
    pub fn parse(s: &str) -> Option<Timestamp> {
        if !s.ends_with('Z') {
            return None;
        }
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| Timestamp(d.with_timezone(&Utc)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}

/// Deserialises a string and hands it to `f` without copying it when the
/// input allows; refuses non-strings exactly as `String` would.
struct StrWith<F>(F);

impl<'de, T, F: FnOnce(&str) -> Result<T, String>> serde::de::Visitor<'de> for StrWith<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
        (self.0)(s).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrWith(|s: &str| Timestamp::parse(s).ok_or_else(|| format!("{TS_MARKER}{s}"))))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A UUID whose parse error names the offending text, for clear messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(pub Uuid);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrWith(|s: &str| Uuid::parse_str(s).map(Id).map_err(|_| format!("{UUID_MARKER}{s}"))))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ScanPayload {
    pub schema_version: String,
    pub scan: ScanMeta,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tool_versions: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub asset_results: Vec<AssetResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub artifacts: Vec<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub errors: Vec<ErrorEntry>,
    /// Observations the engine could not use, with their field paths. Filled
    /// when the payload is accepted; never part of the payload itself.
    #[serde(skip)]
    pub warnings: Vec<Warning>,
}

/// An observation the engine kept (it stays in the stored payload) but could
/// not use, for `xray.scan_summary` (docs/design.md D10: nothing is dropped silently).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Warning {
    /// Where in the payload, e.g. `asset_results[0].endpoints[1].ports.tcp[2].port`.
    pub path: String,
    pub problem: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ScanMeta {
    pub scan_id: Id,
    pub tenant_id: Id,
    #[serde(default)]
    pub scan_kind: Option<String>,
    #[serde(default)]
    pub scan_profile: Option<String>,
    #[serde(default)]
    pub triggered_by_user_id: Option<Id>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub requested_asset_ids: Vec<Id>,
    pub started_at: Timestamp,
    /// Absent when the scan did not finish; such a scan is never authoritative.
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AssetResult {
    pub asset: Asset,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub endpoints: Vec<Endpoint>,
    /// Schema 1.2: what the port scan of the asset as a whole covered, so an
    /// address of a CIDR that now answers on no port at all (and so has no
    /// endpoint) can be told apart from one that was never probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<AssetCoverage>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AssetCoverage {
    /// Port-scan tools that ran over the asset to completion.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tools: Vec<String>,
    /// Addresses that were port-scanned, endpoints or not.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ips: Vec<String>,
    #[serde(default, deserialize_with = "lenient::ports")]
    pub tcp_ports: Vec<u16>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Asset {
    pub asset_id: Id,
    pub asset_type: String,
    #[serde(default)]
    pub asset_value: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub canonical_host: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Endpoint {
    #[serde(default)]
    pub endpoint_id: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub domain_context: Option<String>,
    #[serde(default)]
    pub observed_host: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ports: Ports,
    #[serde(default, deserialize_with = "null_as_default")]
    pub http: Vec<HttpObservation>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tls: Vec<TlsObservation>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub findings: Findings,
    #[serde(default)]
    pub dns_email: Option<DnsEmail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub errors: Vec<ErrorEntry>,
    /// Schema 1.2 (docs/contract.md §P-13, docs/design.md D3): what the worker actually checked on this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Ports {
    #[serde(default, deserialize_with = "null_as_default")]
    pub tcp: Vec<PortObservation>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub udp: Vec<PortObservation>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PortObservation {
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(deserialize_with = "lenient::port")]
    pub port: u16,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct HttpObservation {
    #[serde(default)]
    pub tool: Option<String>,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_port", skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `None` means headers were not collected, which is not the same as "no headers".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_simhash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub favicon_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technologies: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_time_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_length: Option<i64>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub redirect_chain: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TlsObservation {
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(deserialize_with = "lenient::port")]
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tls_versions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jarm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    /// Schema 1.2: cipher suites the worker classified as weak or insecure
    /// (tlsx `-cipher-enum`, nmap `ssl-enum-ciphers` grades).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_classes: Option<CipherClasses>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CipherClasses {
    #[serde(default, deserialize_with = "null_as_default")]
    pub weak: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub insecure: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Certificate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_cn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_cn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_time", skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_time", skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Timestamp>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sans: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_self_signed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spki_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_sha256: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Findings {
    #[serde(default, deserialize_with = "null_as_default")]
    pub nuclei: Vec<NucleiFinding>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub nmap: Vec<NmapFinding>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NucleiFinding {
    #[serde(default)]
    pub tool: Option<String>,
    pub template_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub matched_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_port", skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, deserialize_with = "lenient::opt_time", skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub extracted_results: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<NucleiMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct NucleiMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NmapFinding {
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(deserialize_with = "lenient::port")]
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scripts: Option<BTreeMap<String, Option<String>>>,
    /// nmap's `method`: `probed` when a probe matched, `table` when the name
    /// is only nmap's guess from the port number (optional, schema 1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_method: Option<String>,
}

impl NmapFinding {
    /// nmap named the service from an answer, not from its port table.
    pub fn identifies_service(&self) -> bool {
        self.service_method.as_deref() != Some("table")
            && self.state.as_deref().is_none_or(|s| s == "open")
            && self.service.as_deref().is_some_and(|s| !matches!(s.trim(), "" | "unknown" | "tcpwrapped"))
    }
}

impl NucleiFinding {
    /// The port the template hit: the finding's own, else its `matched_at`'s.
    pub fn port_hit(&self) -> Option<u16> {
        self.port.or_else(|| crate::canon::url_scheme_port(&self.matched_at).map(|x| x.1))
    }
}

impl Endpoint {
    /// Some tool identified the service on `port` (docs/design.md D10): httpx or
    /// nmap got an HTTP answer, tlsx or nmap completed a TLS handshake, an
    /// nmap service probe matched, or a nuclei template matched there. The
    /// engine's RB6 gate and its RB6 proof of fix both ask this.
    pub fn service_identified(&self, port: u16) -> bool {
        self.http.iter().any(|h| h.answered_on(port))
            || self.tls.iter().any(|t| t.handshake_on(port))
            || self.findings.nmap.iter().any(|n| n.port == port && n.identifies_service())
            || self.findings.nuclei.iter().any(|f| f.port_hit() == Some(port))
    }

    /// The endpoint's address in canonical form (RFC 5952 for IPv6).
    pub fn canonical_ip(&self) -> Option<String> {
        self.ip.as_deref().map(crate::canon::canonical_ip_text)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct DnsEmail {
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub spf: Option<SpfPosture>,
    #[serde(default)]
    pub dmarc: Option<DmarcPosture>,
    #[serde(default)]
    pub dkim: Option<DkimPosture>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub errors: Vec<Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SpfPosture {
    #[serde(default)]
    pub present: Option<bool>,
    #[serde(default)]
    pub raw: Option<String>,
    #[serde(default)]
    pub assessment: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub issues: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct DmarcPosture {
    #[serde(default)]
    pub present: Option<bool>,
    #[serde(default)]
    pub raw: Option<String>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<Value>,
    #[serde(default)]
    pub assessment: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub issues: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct DkimPosture {
    #[serde(default, deserialize_with = "null_as_default")]
    pub checked_selectors: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub present_selectors: Vec<String>,
    #[serde(default)]
    pub assessment: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub issues: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ErrorEntry {
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
}

impl ErrorEntry {
    fn detail_str(&self, key: &str) -> Option<&str> {
        self.details.as_ref()?.get(key)?.as_str()
    }

    /// RB6 symptom reported by the worker (docs/design.md D4).
    pub fn symptom(&self) -> Option<&str> {
        self.detail_str("symptom")
    }

    pub fn symptom_port(&self) -> Option<u16> {
        let v = self.details.as_ref()?.get("port")?;
        v.as_u64().and_then(|p| u16::try_from(p).ok())
    }

    pub fn asset_id(&self) -> Option<&str> {
        self.detail_str("asset_id")
    }

    pub fn endpoint_id(&self) -> Option<&str> {
        self.detail_str("endpoint_id")
    }
}

/// Schema 1.2 coverage block (docs/contract.md §P-13, docs/design.md D3). Every list says what was checked,
/// whether or not anything was found, so absence can be proven.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Coverage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub tools: Vec<String>,
    #[serde(default, deserialize_with = "lenient::ports")]
    pub tcp_ports: Vec<u16>,
    #[serde(default, deserialize_with = "lenient::ports")]
    pub tls_ports: Vec<u16>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub http_urls: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub nuclei_urls: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub dns_checks: Vec<String>,
}

/// What a port observation proves (docs/contract.md §D-6.3, docs/design.md D10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    Open,
    /// `closed` or `filtered`: the port was probed and nothing listens.
    Absent,
    /// `unknown`, or a state the engine does not know: proves nothing.
    Unknown,
}

impl PortObservation {
    pub fn port_state(&self) -> PortState {
        match self.state.trim().to_ascii_lowercase().as_str() {
            "open" => PortState::Open,
            "closed" | "filtered" => PortState::Absent,
            _ => PortState::Unknown,
        }
    }

    /// The port number could not be read (see `lenient::port`).
    pub fn unusable(&self) -> bool {
        self.port == 0
    }
}

impl HttpObservation {
    /// The service answered HTTP on `port` (the URL's port when `port` is absent).
    pub fn answered_on(&self, port: u16) -> bool {
        self.status_code.is_some()
            && self.port.or_else(|| crate::canon::url_scheme_port(&self.url).map(|x| x.1)) == Some(port)
    }
}

impl TlsObservation {
    /// A TLS handshake on `port` completed: versions or a certificate were seen.
    pub fn handshake_on(&self, port: u16) -> bool {
        self.port == port && (!self.tls_versions.is_empty() || self.certificate.is_some())
    }
}

/// The RB6 symptom categories of docs/contract.md §P-7.6.
pub const SYMPTOMS: [&str; 4] = [
    "tcp_open_no_banner",
    "http_timeout",
    "tls_handshake_fail",
    "protocol_mismatch",
];

impl ScanPayload {
    /// Parses and validates a payload given as JSON text.
    pub fn from_json_str(text: &str) -> Result<ScanPayload, ContractError> {
        // Fast path: straight from the text into the typed payload, without a
        // `Value` tree or path tracking. Whatever it refuses goes through the
        // `Value` path below, which decides and words the error exactly as
        // before; whatever it accepts, that path accepts identically.
        lenient::take_unusable_flag();
        if let Ok(payload) = serde_json::from_str::<ScanPayload>(text) {
            return payload.accepted(|| serde_json::from_str(text).ok());
        }
        ScanPayload::from_json_str_slow(text)
    }

    /// Like [`ScanPayload::from_json_str`], from any self-describing serde
    /// deserializer (the extension reads PostgreSQL's binary jsonb with one,
    /// without printing it as text first). A payload it refuses is refused
    /// again by the text path, which words the error; `text` gives the JSON.
    pub fn from_deserializer<'de, D: Deserializer<'de>>(
        d: D,
        text: impl FnOnce() -> String,
    ) -> Result<ScanPayload, ContractError> {
        lenient::take_unusable_flag();
        match ScanPayload::deserialize(d) {
            Ok(payload) => payload.accepted(|| serde_json::from_str(&text()).ok()),
            Err(_) => ScanPayload::from_json_str_slow(&text()),
        }
    }

    /// A payload that deserialised: the checks serde cannot express, and the
    /// warnings. `raw` gives the payload's JSON, needed only to word warnings
    /// about values the deserializers could not use.
    fn accepted(mut self, raw: impl FnOnce() -> Option<Value>) -> Result<ScanPayload, ContractError> {
        check_version(&self.schema_version)?;
        self.validate()?;
        let unusable = lenient::take_unusable_flag();
        let mut warnings = self.semantic_warnings();
        if unusable {
            if let Some(v) = raw() {
                warnings.extend(lenient::type_warnings(&v));
            }
        }
        warnings.sort();
        warnings.dedup();
        self.warnings = warnings;
        Ok(self)
    }

    fn from_json_str_slow(text: &str) -> Result<ScanPayload, ContractError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ContractError::Malformed {
            field: "payload".into(),
            problem: format!("malformed JSON: {e}"),
        })?;
        ScanPayload::from_value(&value)
    }

    /// Parses and validates a payload given as a JSON value.
    pub fn from_value(value: &Value) -> Result<ScanPayload, ContractError> {
        let Some(obj) = value.as_object() else {
            return Err(ContractError::WrongType {
                field: "payload".into(),
                problem: format!("must be a JSON object, got {}", json_kind(value)),
            });
        };
        match obj.get("schema_version") {
            None | Some(Value::Null) => {
                return Err(ContractError::Missing { field: "schema_version".into() })
            }
            Some(Value::String(v)) => check_version(v)?,
            Some(other) => {
                return Err(ContractError::WrongType {
                    field: "schema_version".into(),
                    problem: format!("expected a string like \"1.1\", got {}", json_kind(other)),
                })
            }
        }
        // Path tracking allocates for every field, so it only runs to explain
        // a failure; a payload that deserialises plainly is the same payload.
        lenient::take_unusable_flag();
        let payload: ScanPayload = match ScanPayload::deserialize(value) {
            Ok(p) => p,
            Err(_) => serde_path_to_error::deserialize(value).map_err(classify_serde_error)?,
        };
        payload.accepted(|| Some(value.clone()))
    }

    fn validate(&self) -> Result<(), ContractError> {
        let requested: std::collections::BTreeSet<Id> =
            self.scan.requested_asset_ids.iter().copied().collect();
        for (ai, ar) in self.asset_results.iter().enumerate() {
            let at = ar.asset.asset_type.as_str();
            if !matches!(at, "ip" | "domain" | "cidr") {
                return Err(ContractError::InvalidValue {
                    field: format!("asset_results[{ai}].asset.asset_type"),
                    problem: format!("must be one of ip, domain, cidr; got {at:?}"),
                });
            }
            if !requested.is_empty() && !requested.contains(&ar.asset.asset_id) {
                return Err(ContractError::InvalidValue {
                    field: format!("asset_results[{ai}].asset.asset_id"),
                    problem: format!(
                        "asset {} is not in scan.requested_asset_ids",
                        ar.asset.asset_id
                    ),
                });
            }
            for (ei, ep) in ar.endpoints.iter().enumerate() {
                let at = |rest: String| format!("asset_results[{ai}].endpoints[{ei}].{rest}");
                if let Some(ip) = &ep.ip {
                    if ip.parse::<std::net::IpAddr>().is_err() {
                        return Err(ContractError::InvalidValue {
                            field: at("ip".into()),
                            problem: format!("not an IP address: {ip:?}"),
                        });
                    }
                }
                for (xi, e) in ep.errors.iter().enumerate() {
                    if let Some(s) = e.symptom() {
                        if !SYMPTOMS.contains(&s) {
                            return Err(ContractError::InvalidValue {
                                field: at(format!("errors[{xi}].details.symptom")),
                                problem: format!(
                                    "unknown symptom {s:?} (expected one of {})",
                                    SYMPTOMS.join(", ")
                                ),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Observations that parsed but that the engine cannot use. Each one also
    /// makes the engine hold open what it would otherwise have proven absent.
    fn semantic_warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        for (ai, ar) in self.asset_results.iter().enumerate() {
            for (ei, ep) in ar.endpoints.iter().enumerate() {
                let mut warn = |rest: String, problem: String| {
                    out.push(Warning { path: format!("asset_results[{ai}].endpoints[{ei}].{rest}"), problem })
                };
                for (proto, list) in [("tcp", &ep.ports.tcp), ("udp", &ep.ports.udp)] {
                    for (pi, p) in list.iter().enumerate() {
                        if p.port_state() == PortState::Unknown && p.state != "unknown" {
                            warn(
                                format!("ports.{proto}[{pi}].state"),
                                format!("{:?} is not open, closed, filtered or unknown; read as unknown", p.state),
                            );
                        }
                    }
                }
                for (ti, t) in ep.tls.iter().enumerate() {
                    for (vi, v) in t.tls_versions.iter().enumerate() {
                        if crate::canon::tls_version(v).is_none() {
                            warn(
                                format!("tls[{ti}].tls_versions[{vi}]"),
                                format!("unknown TLS version {v:?}; weak versions on this port are not judged absent"),
                            );
                        }
                    }
                }
                for (fi, f) in ep.findings.nuclei.iter().enumerate() {
                    if crate::canon::canonical_url(&f.matched_at).is_none() {
                        warn(
                            format!("findings.nuclei[{fi}].matched_at"),
                            format!("{:?} is not an http(s) URL or host:port; finding not used", f.matched_at),
                        );
                    }
                }
            }
        }
        out
    }

    /// The instant the scan observed the world: `finished_at`, else `started_at`.
    /// Expiry is judged against this, never the wall clock (docs/design.md D2).
    pub fn observed_at(&self) -> Timestamp {
        self.scan.finished_at.unwrap_or(self.scan.started_at)
    }

    /// The payload without the results of `skip` (assets for which a newer
    /// scan was already applied, docs/design.md D11): their results and their part
    /// of the scope go, so the engine neither changes nor FIXES their state.
    pub fn without_assets(&self, skip: &std::collections::BTreeSet<Id>) -> ScanPayload {
        let mut p = self.clone();
        if skip.is_empty() {
            return p;
        }
        p.asset_results.retain(|a| !skip.contains(&a.asset.asset_id));
        if !p.scan.requested_asset_ids.is_empty() {
            p.scan.requested_asset_ids.retain(|a| !skip.contains(a));
        }
        p
    }

    /// Assets whose previous state this scan may change (docs/contract.md §D-6.1).
    pub fn scope_asset_ids(&self) -> Vec<Id> {
        let mut ids: Vec<Id> = if self.scan.requested_asset_ids.is_empty() {
            self.asset_results.iter().map(|a| a.asset.asset_id).collect()
        } else {
            self.scan.requested_asset_ids.clone()
        };
        ids.sort();
        ids.dedup();
        ids
    }
}

fn check_version(v: &str) -> Result<(), ContractError> {
    let mut parts = v.split('.');
    let major = parts.next().and_then(|m| m.parse::<u64>().ok());
    let minor_ok = parts.next().map(|m| m.parse::<u64>().is_ok()).unwrap_or(false);
    match (major, minor_ok, parts.next()) {
        (Some(SUPPORTED_MAJOR), true, None) => Ok(()),
        (Some(_), true, None) => Err(ContractError::UnsupportedVersion { version: v.into() }),
        _ => Err(ContractError::InvalidValue {
            field: "schema_version".into(),
            problem: format!("must look like MAJOR.MINOR, got {v:?}"),
        }),
    }
}

/// The JSON type of `v` as an error message names it ("got a string"), the one
/// spelling for every validator of untrusted JSON.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn classify_serde_error(err: serde_path_to_error::Error<serde_json::Error>) -> ContractError {
    let path = err.path().to_string();
    let msg = err.inner().to_string();
    // serde_json appends " at line L column C", meaningless for a Value input.
    let msg = match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let join = |field: &str| {
        if path == "." || path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        return ContractError::Missing { field: join(field) };
    }
    if let Some(value) = msg.strip_prefix(TS_MARKER) {
        return ContractError::InvalidTimestamp { field: path, value: value.into() };
    }
    if let Some(value) = msg.strip_prefix(UUID_MARKER) {
        return ContractError::InvalidUuid { field: path, value: value.into() };
    }
    if msg.starts_with("invalid type: null") {
        // A required field given as null reads like a missing one to a user.
        return ContractError::Missing { field: path };
    }
    ContractError::WrongType { field: path, problem: msg }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "schema_version": "1.0",
            "scan": {
                "scan_id": "5ca10000-0000-4000-8000-000000000001",
                "tenant_id": "11111111-1111-1111-1111-111111111111",
                "started_at": "2026-02-05T10:00:00Z"
            }
        })
    }

    #[test]
    fn minimal_payload_parses_and_unknown_fields_are_ignored() {
        let mut v = minimal();
        v["future_field"] = json!({"x": 1});
        v["scan"]["also_new"] = json!(true);
        let p = ScanPayload::from_value(&v).unwrap();
        assert!(p.asset_results.is_empty());
        assert_eq!(p.observed_at().to_string(), "2026-02-05T10:00:00Z");
        assert!(p.scan.finished_at.is_none());
    }

    #[test]
    fn every_minor_of_major_one_is_accepted_and_other_majors_are_not() {
        for v in ["1.0", "1.1", "1.2", "1.9"] {
            let mut p = minimal();
            p["schema_version"] = json!(v);
            assert!(ScanPayload::from_value(&p).is_ok(), "{v}");
        }
        let mut p = minimal();
        p["schema_version"] = json!("2.0");
        let err = ScanPayload::from_value(&p).unwrap_err();
        assert!(matches!(err, ContractError::UnsupportedVersion { .. }));
        assert_eq!(err.sqlstate(), "0A000");
    }

    #[test]
    fn errors_name_the_field_and_classify_the_problem() {
        let cases: Vec<(Value, &str, &str)> = vec![
            ({ let mut p = minimal(); p["scan"].as_object_mut().unwrap().remove("scan_id"); p },
             "scan.scan_id: required field is missing", "23502"),
            ({ let mut p = minimal(); p["scan"]["tenant_id"] = json!("nope"); p },
             "scan.tenant_id: invalid UUID \"nope\"", "22P02"),
            ({ let mut p = minimal(); p["scan"]["started_at"] = json!("2026-02-05T10:00:00+00:00"); p },
             "scan.started_at: invalid timestamp", "22007"),
            ({ let mut p = minimal(); p["asset_results"] = json!("x"); p },
             "asset_results: invalid type: string \"x\", expected a sequence", "22023"),
            (json!(null), "payload: must be a JSON object, got null", "22023"),
        ];
        for (payload, msg, code) in cases {
            let err = ScanPayload::from_value(&payload).unwrap_err();
            assert!(err.to_string().starts_with(msg), "{err} should start with {msg}");
            assert_eq!(err.sqlstate(), code, "{err}");
        }
    }

    #[test]
    fn malformed_json_text_is_reported_as_such() {
        let err = ScanPayload::from_json_str("{\"schema_version\": ").unwrap_err();
        assert_eq!(err.sqlstate(), "22032");
        assert!(err.to_string().starts_with("payload: malformed JSON"));
    }

    #[test]
    fn unknown_symptom_is_refused_with_its_path() {
        let mut p = minimal();
        p["asset_results"] = json!([{
            "asset": {"asset_id": "aaaaaaaa-0000-4000-8000-000000000001", "asset_type": "ip"},
            "endpoints": [{"ip": "203.0.113.10", "errors": [{"details": {"port": 80, "symptom": "slow"}}]}]
        }]);
        let err = ScanPayload::from_value(&p).unwrap_err();
        assert!(err.to_string().starts_with("asset_results[0].endpoints[0].errors[0].details.symptom"), "{err}");
    }
}
