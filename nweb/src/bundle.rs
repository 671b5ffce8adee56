//! Verifying an nweb bundle: its `manifest.json` (`nweb.bundle.v1`), the scanprint's
//! Merkle root and the artifact hashes, ending in a verdict with the reason
//! codes. The verdict is data, not an error: an invalid bundle is a fact to record
//! (and to challenge), while an error means the caller got something wrong.
//!
//! Reason codes:
//! - `FORMAT_INVALID`: the manifest or a scanprint line breaks the format, or a file
//!   the manifest requires is not in the bundle;
//! - `CID_HASH_MISMATCH`: the bytes under the CID do not match what was committed to:
//!   the scanprint's Merkle root differs from `manifest.scanprint.merkleRoot` (or the
//!   manifest's root from the attested one), or an artifact's SHA-256 differs from the
//!   manifest's;
//! - `CID_UNAVAILABLE`: the bundle could not be fetched. Only the fetcher knows that,
//!   so [`verify`] never returns it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};
use xray_engine::contract::json_kind;

use super::jcs;
use super::merkle::{self, MerkleBuilder};
use super::rules::SubmissionKind;
use super::NwebError;

pub mod write;

pub const MANIFEST_SCHEMA: &str = "nweb.bundle.v1";
/// Where docs/nweb.md §3 puts the manifest in a bundle.
pub const MANIFEST_PATH: &str = "manifest.json";
/// Where our collectors put the scanprint file and the raw tool output; the
/// manifest names them, so a reader never assumes these paths.
pub const SCANPRINT_PATH: &str = "scanprint/scanprint.v0.jsonl";
pub const NMAP_XML_PATH: &str = "raw/nmap.xml";
pub const MASSCAN_JSON_PATH: &str = "raw/masscan.json";
/// Newest timestamp accepted, 9999-12-31T23:59:59Z: PostgreSQL stores far more, but
/// nothing later is a real scan, and a bound keeps every value convertible.
pub const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reason {
    #[serde(rename = "CID_UNAVAILABLE")]
    CidUnavailable,
    #[serde(rename = "CID_HASH_MISMATCH")]
    CidHashMismatch,
    #[serde(rename = "FORMAT_INVALID")]
    FormatInvalid,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CidUnavailable => "CID_UNAVAILABLE",
            Reason::CidHashMismatch => "CID_HASH_MISMATCH",
            Reason::FormatInvalid => "FORMAT_INVALID",
        }
    }
}

/// One artifact the manifest lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub path: String,
    /// Lowercase hex.
    pub sha256: String,
}

/// The fields of a valid `nweb.bundle.v1` manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub namespace: String,
    pub dataset_type: String,
    pub scanprint_path: String,
    /// `0x` + 64 lowercase hex digits.
    pub merkle_root: String,
    pub artifacts: Vec<Artifact>,
    pub target_spec_cid: Option<String>,
    pub tool: String,
    pub tool_version: String,
    pub vantage: String,
    pub started_at: u64,
    pub finished_at: u64,
    pub notes: Option<String>,
    /// Explicit pricing class; when absent it is derived (see [`SubmissionKind::classify`]).
    pub profile: Option<String>,
}

fn invalid(field: &str, problem: impl Into<String>) -> String {
    format!("manifest.{field}: {}", problem.into())
}

fn req_str(obj: &Map<String, Value>, key: &str, field: &str) -> Result<String, String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(invalid(field, "must not be empty")),
        None | Some(Value::Null) => Err(invalid(field, "required string is missing")),
        Some(other) => Err(invalid(
            field,
            format!("expected a string, got {}", json_kind(other)),
        )),
    }
}

fn opt_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(
            key,
            format!("expected a string, got {}", json_kind(other)),
        )),
    }
}

fn req_time(obj: &Map<String, Value>, key: &str) -> Result<u64, String> {
    let v = obj
        .get(key)
        .ok_or_else(|| invalid(key, "required Unix time is missing"))?;
    v.as_u64()
        .filter(|t| *t <= MAX_UNIX_SECONDS)
        .ok_or_else(|| {
            invalid(
                key,
                format!("expected Unix seconds between 0 and {MAX_UNIX_SECONDS}, got {v}"),
            )
        })
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A relative path inside the bundle, the only kind a UnixFS directory can hold.
fn check_bundle_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
}

/// PostgreSQL text and jsonb cannot hold NUL, so a manifest carrying one could not be
/// stored as it was received.
fn find_nul(v: &Value, path: &mut String) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(|i| find_nul(i, path)),
        Value::Object(m) => m.iter().any(|(k, v)| {
            if k.contains('\0') || find_nul(v, path) {
                if path.is_empty() {
                    path.push_str(k);
                }
                true
            } else {
                false
            }
        }),
        _ => false,
    }
}

/// Whether any string or key in `v` holds a NUL character, which PostgreSQL's jsonb
/// cannot store.
pub fn contains_nul(v: &Value) -> bool {
    find_nul(v, &mut String::new())
}

/// Parses and checks `manifest.json`. The error is the FORMAT_INVALID detail.
pub fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let value = jcs::parse_strict(text).map_err(|e| format!("manifest.json: {e}"))?;
    let Value::Object(obj) = &value else {
        return Err(format!(
            "manifest.json: expected a JSON object, got {}",
            json_kind(&value)
        ));
    };
    let mut at = String::new();
    if find_nul(&value, &mut at) {
        return Err(invalid(&at, "contains a NUL character"));
    }
    match obj.get("schema") {
        Some(Value::String(s)) if s == MANIFEST_SCHEMA => {}
        Some(other) => {
            return Err(invalid(
                "schema",
                format!("expected {MANIFEST_SCHEMA:?}, got {other}"),
            ))
        }
        None => return Err(invalid("schema", "required string is missing")),
    }
    let dataset_type = req_str(obj, "datasetType", "datasetType")?;
    let profile = opt_str(obj, "profile")?;
    if let Some(p) = &profile {
        p.parse::<SubmissionKind>()
            .map_err(|e| invalid("profile", e))?;
    }
    if profile.is_none() && SubmissionKind::classify(&dataset_type, None).is_none() {
        return Err(invalid(
            "datasetType",
            format!(
                "unknown dataset type {dataset_type:?} (expected nmap, masscan, diff or enrich)"
            ),
        ));
    }
    let scanprint = match obj.get("scanprint") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => return Err(invalid("scanprint", "required object is missing")),
        Some(other) => {
            return Err(invalid(
                "scanprint",
                format!("expected an object, got {}", json_kind(other)),
            ))
        }
    };
    let scanprint_path = req_str(scanprint, "path", "scanprint.path")?;
    if !check_bundle_path(&scanprint_path) {
        return Err(invalid(
            "scanprint.path",
            format!("{scanprint_path:?} is not a relative path in the bundle"),
        ));
    }
    let root = req_str(scanprint, "merkleRoot", "scanprint.merkleRoot")?;
    let merkle_root = merkle::root_from_hex(&root)
        .map(|r| merkle::root_to_hex(&r))
        .map_err(|_| {
            invalid(
                "scanprint.merkleRoot",
                format!("{root:?} is not 0x and 64 hex digits"),
            )
        })?;

    let items = match obj.get("artifacts") {
        Some(Value::Array(items)) => items.as_slice(),
        None | Some(Value::Null) => &[],
        Some(other) => {
            return Err(invalid(
                "artifacts",
                format!("expected an array, got {}", json_kind(other)),
            ))
        }
    };
    let mut artifacts: Vec<Artifact> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("artifacts[{i}]");
        let Value::Object(a) = item else {
            return Err(invalid(
                &field,
                format!("expected an object, got {}", json_kind(item)),
            ));
        };
        let path = req_str(a, "path", &format!("{field}.path"))?;
        if !check_bundle_path(&path) {
            return Err(invalid(
                &format!("{field}.path"),
                format!("{path:?} is not a relative path in the bundle"),
            ));
        }
        let sha = req_str(a, "sha256", &format!("{field}.sha256"))?;
        if !is_sha256_hex(&sha) {
            return Err(invalid(
                &format!("{field}.sha256"),
                format!("{sha:?} is not 64 hex digits"),
            ));
        }
        if artifacts.iter().any(|x| x.path == path) {
            return Err(invalid(
                &format!("{field}.path"),
                format!("{path:?} is listed twice"),
            ));
        }
        artifacts.push(Artifact {
            path,
            sha256: sha.to_ascii_lowercase(),
        });
    }
    if dataset_type == "nmap" && !artifacts.iter().any(|a| a.path == "raw/nmap.xml") {
        return Err(invalid(
            "artifacts",
            "an nmap bundle must list raw/nmap.xml",
        ));
    }
    let started_at = req_time(obj, "startedAt")?;
    let finished_at = req_time(obj, "finishedAt")?;
    if finished_at < started_at {
        return Err(invalid(
            "finishedAt",
            format!("{finished_at} is before startedAt {started_at}"),
        ));
    }
    Ok(Manifest {
        namespace: req_str(obj, "namespace", "namespace")?,
        dataset_type,
        scanprint_path,
        merkle_root,
        artifacts,
        target_spec_cid: opt_str(obj, "targetSpecCid")?,
        tool: req_str(obj, "tool", "tool")?,
        tool_version: req_str(obj, "toolVersion", "toolVersion")?,
        vantage: req_str(obj, "vantage", "vantage")?,
        started_at,
        finished_at,
        notes: opt_str(obj, "notes")?,
        profile,
    })
}

/// One scanprint line with the types the `nweb.scanprint` table has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanprintRow {
    /// 1-based line number in the file.
    pub line: usize,
    pub ts: u64,
    /// Canonical text of the address.
    pub ip: String,
    pub port: u16,
    pub proto: String,
    pub state: String,
    pub service: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub banner_sha256: Option<String>,
    pub cert_fpr: Option<String>,
    pub tls_ja3: Option<String>,
    pub latency_ms: Option<i32>,
    pub tool: String,
    pub tool_version: Option<String>,
    pub options: Option<String>,
    pub vantage: String,
}

/// Checks one parsed scanprint line against the scanprint v0 field types. Fields the
/// table does not know are allowed (they are still covered by the Merkle root).
pub fn scanprint_row(line: usize, obj: &Map<String, Value>) -> Result<ScanprintRow, NwebError> {
    let bad = |problem: String| NwebError::line(line, problem);
    let text = |key: &str, required: bool| -> Result<Option<String>, NwebError> {
        match obj.get(key) {
            None | Some(Value::Null) if required => Err(bad(format!("{key:?} is required"))),
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.contains('\0') => {
                Err(bad(format!("{key:?} contains a NUL character")))
            }
            Some(Value::String(s)) if required && s.is_empty() => {
                Err(bad(format!("{key:?} must not be empty")))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!(
                "{key:?}: expected a string, got {}",
                json_kind(other)
            ))),
        }
    };
    let required = |key: &str| text(key, true).map(|v| v.unwrap_or_default());
    let ts_value = obj
        .get("ts")
        .ok_or_else(|| bad("\"ts\" is required".into()))?;
    let ts = ts_value
        .as_u64()
        .filter(|t| *t <= MAX_UNIX_SECONDS)
        .ok_or_else(|| bad(format!("\"ts\": expected Unix seconds, got {ts_value}")))?;
    let port_value = obj
        .get("port")
        .ok_or_else(|| bad("\"port\" is required".into()))?;
    let port = port_value
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| bad(format!("\"port\": {port_value} is outside 0..65535")))?;
    let ip_text = required("ip")?;
    let ip = ip_text
        .parse::<IpAddr>()
        .map_err(|_| bad(format!("\"ip\": {ip_text:?} is not an IP address")))?
        .to_string();
    let latency_ms = match obj.get("latency_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "\"latency_ms\": expected a non-negative integer, got {v}"
                    ))
                })?,
        ),
    };
    Ok(ScanprintRow {
        line,
        ts,
        ip,
        port,
        proto: required("proto")?,
        state: required("state")?,
        service: text("service", false)?,
        product: text("product", false)?,
        version: text("version", false)?,
        banner_sha256: text("banner_sha256", false)?,
        cert_fpr: text("cert_fpr", false)?,
        tls_ja3: text("tls_ja3", false)?,
        latency_ms,
        tool: required("tool")?,
        tool_version: text("tool_version", false)?,
        options: text("options", false)?,
        vantage: required("vantage")?,
    })
}

/// Parses one raw line of a scanprint file: `None` for a blank line (not a leaf).
pub fn parse_scanprint_line(line: usize, text: &str) -> Result<Option<ScanprintRow>, NwebError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value = jcs::parse_strict(text).map_err(|e| match e {
        NwebError::Json(problem) => NwebError::LineJson { line, problem },
        other => other,
    })?;
    let Value::Object(obj) = value else {
        return Err(NwebError::line(line, "not a JSON object"));
    };
    scanprint_row(line, &obj).map(Some)
}

/// What checking a whole scanprint file yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanprintSummary {
    /// `0x` + 64 hex digits.
    pub merkle_root: String,
    pub lines: usize,
    /// Options of the first line that has any, for pricing an nmap scan.
    pub options: Option<String>,
}

/// Checks every line (JSON object, field types) and computes the Merkle root in one pass.
pub fn check_scanprint(jsonl: &str) -> Result<ScanprintSummary, NwebError> {
    let mut builder = MerkleBuilder::new();
    let mut options = None;
    merkle::for_each_line(jsonl, |line, obj, canonical| {
        let row = scanprint_row(line, obj)?;
        if options.is_none() {
            options = row.options;
        }
        builder.push_leaf(canonical.as_bytes());
        Ok(())
    })?;
    Ok(ScanprintSummary {
        merkle_root: merkle::root_to_hex(&builder.root()),
        lines: builder.len() as usize,
        options,
    })
}

/// Everything a verifier has about one bundle.
#[derive(Debug, Clone)]
pub struct BundleInput<'a> {
    /// The text of `manifest.json`; `None` if the bundle has none.
    pub manifest: Option<&'a str>,
    /// The scanprint file; `None` if the bundle has none at the manifest's path.
    pub scanprint: Option<&'a str>,
    /// SHA-256 (hex, any case) of every file the bundle holds, by path.
    pub file_sha256: &'a BTreeMap<String, String>,
    /// The Merkle root the ScanSubmission attested, when known.
    pub attested_merkle_root: Option<&'a str>,
}

/// What a ScanSubmission attestation says about its bundle besides the Merkle root
/// (which stays in [`BundleInput::attested_merkle_root`]). `None` is "not claimed": an
/// empty string on chain commits to nothing, so there is nothing to compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestedClaims {
    /// SHA-256 of the bytes of `manifest.json`, 64 hex digits (`0x` and case allowed).
    pub manifest_sha256: Option<String>,
    pub dataset_type: Option<String>,
    pub tool: Option<String>,
    pub vantage: Option<String>,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
}

impl AttestedClaims {
    /// The claims of a ScanSubmission as the loader stores it (`nweb.attestations.payload`:
    /// `manifestSha256`, `datasetType`, `tool`, `vantage`, `startedAt`, `finishedAt`).
    pub fn from_submission_json(payload: &Value) -> AttestedClaims {
        let text = |k: &str| {
            payload
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        AttestedClaims {
            manifest_sha256: text("manifestSha256"),
            dataset_type: text("datasetType"),
            tool: text("tool"),
            vantage: text("vantage"),
            started_at: payload.get("startedAt").and_then(Value::as_u64),
            finished_at: payload.get("finishedAt").and_then(Value::as_u64),
        }
    }

    /// The first claim the bundle contradicts, as a detail naming the attested field and
    /// the manifest's: the attestation is what a challenge is about, so it leads.
    /// `manifest_text` is the whole `manifest.json`, `m` what [`parse_manifest`] made of it.
    pub fn mismatch(&self, manifest_text: &str, m: &Manifest) -> Option<String> {
        self.mismatch_with(&BundleFacts {
            manifest_sha256: Some(&sha256_hex(manifest_text.as_bytes())),
            dataset_type: &m.dataset_type,
            tool: &m.tool,
            vantage: &m.vantage,
            started_at: m.started_at,
            finished_at: m.finished_at,
        })
    }

    /// [`AttestedClaims::mismatch`] against what was recorded of a bundle checked before
    /// its submission was seen (`nweb.bundles`). Without the manifest's bytes
    /// (`manifest_sha256` None) their hash is not compared.
    pub fn mismatch_with(&self, facts: &BundleFacts<'_>) -> Option<String> {
        if let (Some(claimed), Some(got)) = (&self.manifest_sha256, facts.manifest_sha256) {
            let c = claimed.strip_prefix("0x").unwrap_or(claimed);
            if !c.eq_ignore_ascii_case(got) {
                return Some(format!(
                    "attestation.manifestSha256 {claimed:?} differs from the SHA-256 of {MANIFEST_PATH}, {got}"
                ));
            }
        }
        let texts = [
            ("datasetType", &self.dataset_type, facts.dataset_type),
            ("tool", &self.tool, facts.tool),
            ("vantage", &self.vantage, facts.vantage),
        ];
        for (field, claimed, got) in texts {
            if let Some(c) = claimed {
                if c != got {
                    return Some(format!(
                        "attestation.{field} {c:?} differs from manifest.{field} {got:?}"
                    ));
                }
            }
        }
        let times = [
            ("startedAt", self.started_at, facts.started_at),
            ("finishedAt", self.finished_at, facts.finished_at),
        ];
        for (field, claimed, got) in times {
            if let Some(c) = claimed {
                if c != got {
                    return Some(format!(
                        "attestation.{field} {c} differs from manifest.{field} {got}"
                    ));
                }
            }
        }
        None
    }
}

/// The facts of a bundle that a ScanSubmission makes claims about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleFacts<'a> {
    /// Lowercase hex SHA-256 of `manifest.json`'s bytes, when they are known.
    pub manifest_sha256: Option<&'a str>,
    pub dataset_type: &'a str,
    pub tool: &'a str,
    pub vantage: &'a str,
    pub started_at: u64,
    pub finished_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Verified,
    Invalid,
}

/// The outcome of [`verify`]. Whatever could be read is kept, also for an invalid
/// bundle, so a person can see what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub status: Status,
    pub reason: Option<Reason>,
    pub reason_detail: Option<String>,
    pub manifest: Option<Manifest>,
    pub computed_merkle_root: Option<String>,
    pub scanprint_lines: Option<usize>,
    /// `masscan-quick`, `nmap-top1k`, `nmap-full` or `diff/enrich`.
    pub cost_kind: Option<String>,
    pub cost_units: Option<u32>,
}

impl Verdict {
    fn invalid(reason: Reason, detail: String) -> Self {
        Verdict {
            status: Status::Invalid,
            reason: Some(reason),
            reason_detail: Some(detail),
            manifest: None,
            computed_merkle_root: None,
            scanprint_lines: None,
            cost_kind: None,
            cost_units: None,
        }
    }
}

/// Checks a bundle, format first (nothing else can be trusted before it), then hashes;
/// the attested Merkle root only. [`verify_attested`] checks every claim.
pub fn verify(input: &BundleInput<'_>) -> Verdict {
    verify_attested(input, &AttestedClaims::default())
}

/// [`verify`], and every claim of the attestation against the bundle. A claim the bundle
/// contradicts is a CID_HASH_MISMATCH (the content is not what was committed to) whose
/// detail names the attested field.
pub fn verify_attested(input: &BundleInput<'_>, claims: &AttestedClaims) -> Verdict {
    let Some(manifest_text) = input.manifest else {
        return Verdict::invalid(
            Reason::FormatInvalid,
            format!("{MANIFEST_PATH} is missing from the bundle"),
        );
    };
    let manifest = match parse_manifest(manifest_text) {
        Ok(m) => m,
        Err(detail) => return Verdict::invalid(Reason::FormatInvalid, detail),
    };
    let mut verdict = Verdict::invalid(Reason::FormatInvalid, String::new());
    let fail = |mut v: Verdict, reason: Reason, detail: String| {
        v.reason = Some(reason);
        v.reason_detail = Some(detail);
        v
    };

    let Some(jsonl) = input.scanprint else {
        let detail = format!("{} is missing from the bundle", manifest.scanprint_path);
        verdict.manifest = Some(manifest);
        return fail(verdict, Reason::FormatInvalid, detail);
    };
    let summary = match check_scanprint(jsonl) {
        Ok(s) => s,
        Err(e) => {
            let detail = format!("{} {e}", manifest.scanprint_path);
            verdict.manifest = Some(manifest);
            return fail(verdict, Reason::FormatInvalid, detail);
        }
    };
    let kind = match &manifest.profile {
        Some(p) => p.parse::<SubmissionKind>().ok(),
        None => SubmissionKind::classify(&manifest.dataset_type, summary.options.as_deref()),
    };
    verdict.computed_merkle_root = Some(summary.merkle_root.clone());
    verdict.scanprint_lines = Some(summary.lines);
    verdict.cost_kind = kind.map(|k| k.as_str().to_owned());
    verdict.cost_units = kind.map(SubmissionKind::cost);

    let missing = manifest
        .artifacts
        .iter()
        .find(|a| !input.file_sha256.contains_key(&a.path))
        .map(|a| {
            format!(
                "artifact {} is listed in the manifest but not in the bundle",
                a.path
            )
        });
    let root_mismatch = (summary.merkle_root != manifest.merkle_root).then(|| {
        format!(
            "the Merkle root of {} is {}, the manifest says {}",
            manifest.scanprint_path, summary.merkle_root, manifest.merkle_root
        )
    });
    let attested_mismatch = input
        .attested_merkle_root
        .filter(|a| !a.eq_ignore_ascii_case(&manifest.merkle_root))
        .map(|a| {
            format!(
                "the manifest's merkleRoot {} differs from the attested {a}",
                manifest.merkle_root
            )
        });
    let hash_mismatch = manifest.artifacts.iter().find_map(|a| {
        let got = input.file_sha256.get(&a.path)?;
        (!got.eq_ignore_ascii_case(&a.sha256)).then(|| {
            format!(
                "artifact {}: SHA-256 is {}, the manifest says {}",
                a.path,
                got.to_ascii_lowercase(),
                a.sha256
            )
        })
    });
    let claim_mismatch = claims.mismatch(manifest_text, &manifest);
    verdict.manifest = Some(manifest);
    if let Some(detail) = missing {
        return fail(verdict, Reason::FormatInvalid, detail);
    }
    if let Some(detail) = root_mismatch
        .or(attested_mismatch)
        .or(claim_mismatch)
        .or(hash_mismatch)
    {
        return fail(verdict, Reason::CidHashMismatch, detail);
    }
    verdict.status = Status::Verified;
    verdict.reason = None;
    verdict.reason_detail = None;
    verdict
}

/// Lowercase hex SHA-256, the form the manifest and [`BundleInput::file_sha256`] use.
pub use xray_engine::identity::sha256_hex;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) const NMAP_XML: &[u8] = b"<nmaprun/>";

    pub(crate) fn scanprint() -> String {
        [
            r#"{"ts":1693526400,"ip":"203.0.113.42","port":22,"proto":"tcp","state":"open","service":"ssh","product":"OpenSSH","version":"9.2","banner_sha256":null,"cert_fpr":null,"tool":"nmap","tool_version":"7.95","options":"-sV -p 22,443","vantage":"AS1234/us-west-2"}"#,
            "",
            r#"{"ts":1693526401,"ip":"203.0.113.42","port":443,"proto":"tcp","state":"closed","service":null,"product":null,"version":null,"banner_sha256":null,"cert_fpr":null,"latency_ms":21,"tool":"nmap","tool_version":"7.95","options":"-sV -p 22,443","vantage":"AS1234/us-west-2"}"#,
        ]
        .join("\n")
    }

    pub(crate) fn manifest_value(root: &str) -> Value {
        json!({
            "schema": "nweb.bundle.v1",
            "namespace": "nweb.io",
            "datasetType": "nmap",
            "scanprint": {"path": "scanprint/scanprint.v0.jsonl", "merkleRoot": root},
            "artifacts": [{"path": "raw/nmap.xml", "sha256": sha256_hex(NMAP_XML)}],
            "targetSpecCid": "bafkqaaa",
            "tool": "nmap",
            "toolVersion": "7.95",
            "vantage": "AS1234/us-west-2",
            "startedAt": 1693526400,
            "finishedAt": 1693529999
        })
    }

    fn files() -> BTreeMap<String, String> {
        [("raw/nmap.xml".to_owned(), sha256_hex(NMAP_XML))]
            .into_iter()
            .collect()
    }

    fn good_root() -> String {
        merkle::scanprint_merkle_root(&scanprint()).unwrap()
    }

    fn run(manifest: &Value, sp: Option<&str>, files: &BTreeMap<String, String>) -> Verdict {
        let text = manifest.to_string();
        verify(&BundleInput {
            manifest: Some(&text),
            scanprint: sp,
            file_sha256: files,
            attested_merkle_root: None,
        })
    }

    #[test]
    fn a_good_bundle_verifies() {
        let sp = scanprint();
        let v = run(&manifest_value(&good_root()), Some(&sp), &files());
        assert_eq!(v.status, Status::Verified, "{v:?}");
        assert_eq!(v.reason, None);
        assert_eq!(v.scanprint_lines, Some(2));
        assert_eq!(
            v.computed_merkle_root.as_deref(),
            Some(good_root().as_str())
        );
        assert_eq!(v.cost_kind.as_deref(), Some("nmap-top1k"));
        assert_eq!(v.cost_units, Some(2));
        let m = v.manifest.unwrap();
        assert_eq!((m.started_at, m.finished_at), (1693526400, 1693529999));
        // The attested root, in any case, agrees.
        let upper = good_root().to_uppercase().replacen("0X", "0x", 1);
        let text = manifest_value(&upper).to_string();
        let v = verify(&BundleInput {
            manifest: Some(&text),
            scanprint: Some(&sp),
            file_sha256: &files(),
            attested_merkle_root: Some(&good_root()),
        });
        assert_eq!(v.status, Status::Verified, "{v:?}");
    }

    #[test]
    fn format_problems_are_format_invalid_and_name_the_field() {
        let sp = scanprint();
        let root = good_root();
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|m| m["schema"] = json!("nweb.bundle.v2")),
                "manifest.schema: expected \"nweb.bundle.v1\"",
            ),
            (
                Box::new(|m| {
                    m.as_object_mut().unwrap().remove("tool");
                }),
                "manifest.tool: required string is missing",
            ),
            (
                Box::new(|m| m["vantage"] = json!(5)),
                "manifest.vantage: expected a string, got a number",
            ),
            (
                Box::new(|m| m["scanprint"]["merkleRoot"] = json!("0x12")),
                "manifest.scanprint.merkleRoot",
            ),
            (
                Box::new(|m| m["scanprint"]["path"] = json!("../x")),
                "manifest.scanprint.path",
            ),
            (
                Box::new(|m| m["startedAt"] = json!(-1)),
                "manifest.startedAt",
            ),
            (
                Box::new(|m| m["finishedAt"] = json!(1)),
                "manifest.finishedAt: 1 is before startedAt",
            ),
            (
                Box::new(|m| m["artifacts"] = json!([])),
                "an nmap bundle must list raw/nmap.xml",
            ),
            (
                Box::new(|m| m["artifacts"][0]["sha256"] = json!("zz")),
                "manifest.artifacts[0].sha256",
            ),
            (
                Box::new(|m| m["datasetType"] = json!("zmap")),
                "unknown dataset type \"zmap\"",
            ),
            (
                Box::new(|m| m["profile"] = json!("huge")),
                "manifest.profile: unknown submission kind",
            ),
            (
                Box::new(|m| m["notes"] = json!("a\u{0}b")),
                "manifest.notes: contains a NUL character",
            ),
        ];
        for (mutate, want) in cases {
            let mut m = manifest_value(&root);
            mutate(&mut m);
            let v = run(&m, Some(&sp), &files());
            assert_eq!(v.status, Status::Invalid, "{want}");
            assert_eq!(v.reason, Some(Reason::FormatInvalid), "{want}");
            let detail = v.reason_detail.unwrap();
            assert!(detail.contains(want), "{detail:?} should contain {want:?}");
        }
        for text in [
            "",
            "[1]",
            "{\"schema\":\"nweb.bundle.v1\",\"schema\":\"x\"}",
        ] {
            let v = verify(&BundleInput {
                manifest: Some(text),
                scanprint: Some(&sp),
                file_sha256: &files(),
                attested_merkle_root: None,
            });
            assert_eq!(v.reason, Some(Reason::FormatInvalid), "{text:?}");
        }
        let v = verify(&BundleInput {
            manifest: None,
            scanprint: Some(&sp),
            file_sha256: &files(),
            attested_merkle_root: None,
        });
        assert_eq!(
            v.reason_detail.as_deref(),
            Some("manifest.json is missing from the bundle")
        );
    }

    #[test]
    fn nul_detection_looks_at_values_not_at_escapes() {
        assert!(contains_nul(&json!({"a": ["x", "y\u{0}"]})));
        assert!(contains_nul(&json!({"k\u{0}": 1})));
        // A backslash followed by "u0000" is six ordinary characters.
        assert!(!contains_nul(&json!({"a": "\\u0000"})));
    }

    #[test]
    fn bad_scanprint_lines_are_format_invalid_with_the_line_number() {
        let m = manifest_value(&good_root());
        let cases = [
            (
                "{\"ts\":1}\n[1]\n",
                "scanprint/scanprint.v0.jsonl line 1: \"port\" is required",
            ),
            (
                "\n\n[1]\n",
                "scanprint/scanprint.v0.jsonl line 3: not a JSON object",
            ),
            (
                "{\"ts\":",
                "scanprint/scanprint.v0.jsonl line 1: invalid JSON",
            ),
        ];
        for (sp, want) in cases {
            let v = run(&m, Some(sp), &files());
            assert_eq!(v.reason, Some(Reason::FormatInvalid));
            let d = v.reason_detail.unwrap();
            assert!(d.starts_with(want), "{d:?}");
        }
        let v = run(&m, None, &files());
        assert_eq!(
            v.reason_detail.as_deref(),
            Some("scanprint/scanprint.v0.jsonl is missing from the bundle")
        );
    }

    #[test]
    fn line_field_checks() {
        let base = json!({"ts":1,"ip":"192.0.2.1","port":22,"proto":"tcp","state":"open","tool":"nmap","vantage":"v"});
        let ok = scanprint_row(1, base.as_object().unwrap()).unwrap();
        assert_eq!(
            (ok.port, ok.ip.as_str(), ok.service.as_deref()),
            (22, "192.0.2.1", None)
        );
        let v6 = {
            let mut b = base.clone();
            b["ip"] = json!("2001:DB8::0:1");
            scanprint_row(1, b.as_object().unwrap()).unwrap().ip
        };
        assert_eq!(v6, "2001:db8::1");
        let bad = [
            ("port", json!(65536), "outside 0..65535"),
            ("port", json!(-1), "outside 0..65535"),
            ("port", json!("22"), "outside 0..65535"),
            ("ip", json!("192.0.2.300"), "is not an IP address"),
            ("ts", json!(1.5), "expected Unix seconds"),
            ("ts", json!(253_402_300_800u64), "expected Unix seconds"),
            ("proto", json!(""), "must not be empty"),
            ("vantage", Value::Null, "is required"),
            ("service", json!(3), "expected a string"),
            ("product", json!("a\u{0}"), "NUL"),
            ("latency_ms", json!(-5), "latency_ms"),
            ("latency_ms", json!(3_000_000_000u64), "latency_ms"),
        ];
        for (key, value, want) in bad {
            let mut b = base.clone();
            b[key] = value;
            let err = scanprint_row(7, b.as_object().unwrap()).unwrap_err();
            assert_eq!(err.line_number(), Some(7));
            assert!(err.to_string().contains(want), "{key}: {err}");
        }
        // Extra fields are allowed: the format may grow.
        let mut b = base.clone();
        b["new_field"] = json!({"x": 1});
        assert!(scanprint_row(1, b.as_object().unwrap()).is_ok());
    }

    #[test]
    fn hash_problems_are_cid_hash_mismatch() {
        let sp = scanprint();
        // The manifest commits to another root.
        let other = format!("0x{}", "ab".repeat(32));
        let v = run(&manifest_value(&other), Some(&sp), &files());
        assert_eq!(v.reason, Some(Reason::CidHashMismatch));
        assert!(v
            .reason_detail
            .unwrap()
            .contains(&format!("the manifest says {other}")));
        // One byte of one line changed.
        let tampered = sp.replace("OpenSSH", "OpenSSh");
        let v = run(&manifest_value(&good_root()), Some(&tampered), &files());
        assert_eq!(v.reason, Some(Reason::CidHashMismatch));
        // The artifact's bytes differ.
        let mut f = files();
        f.insert("raw/nmap.xml".into(), sha256_hex(b"<nmaprun>x</nmaprun>"));
        let v = run(&manifest_value(&good_root()), Some(&sp), &f);
        assert_eq!(v.reason, Some(Reason::CidHashMismatch));
        assert!(v
            .reason_detail
            .unwrap()
            .starts_with("artifact raw/nmap.xml: SHA-256 is"));
        // The attested root differs from the manifest's.
        let text = manifest_value(&good_root()).to_string();
        let v = verify(&BundleInput {
            manifest: Some(&text),
            scanprint: Some(&sp),
            file_sha256: &files(),
            attested_merkle_root: Some(&other),
        });
        assert_eq!(v.reason, Some(Reason::CidHashMismatch));
        assert!(v
            .reason_detail
            .unwrap()
            .contains("differs from the attested"));
        // Reformatting a line does not change the root: it is JCS-canonical.
        let reformatted = sp.replacen("{\"ts\":1693526400,", "{ \"ts\" : 1693526400 ,", 1);
        assert_ne!(reformatted, sp);
        assert_eq!(
            run(&manifest_value(&good_root()), Some(&reformatted), &files()).status,
            Status::Verified
        );
    }

    fn claims_of(text: &str) -> AttestedClaims {
        AttestedClaims {
            manifest_sha256: Some(sha256_hex(text.as_bytes())),
            dataset_type: Some("nmap".into()),
            tool: Some("nmap".into()),
            vantage: Some("AS1234/us-west-2".into()),
            started_at: Some(1693526400),
            finished_at: Some(1693529999),
        }
    }

    #[test]
    fn every_attested_claim_is_checked_and_a_mismatch_names_the_field() {
        let sp = scanprint();
        let text = manifest_value(&good_root()).to_string();
        let input = BundleInput {
            manifest: Some(&text),
            scanprint: Some(&sp),
            file_sha256: &files(),
            attested_merkle_root: Some(&good_root()),
        };
        let honest = claims_of(&text);
        assert_eq!(verify_attested(&input, &honest).status, Status::Verified);
        // Upper case and 0x are the same digest.
        let mut c = honest.clone();
        c.manifest_sha256 = Some(format!("0x{}", sha256_hex(text.as_bytes()).to_uppercase()));
        assert_eq!(verify_attested(&input, &c).status, Status::Verified);
        // Nothing claimed, nothing to contradict.
        assert_eq!(verify_attested(&input, &AttestedClaims::default()).status, Status::Verified);

        type Lie = Box<dyn Fn(&mut AttestedClaims)>;
        let lies: Vec<(Lie, &str)> = vec![
            (
                Box::new(|c| c.manifest_sha256 = Some("ab".repeat(32))),
                "attestation.manifestSha256 \"abab",
            ),
            (
                Box::new(|c| c.manifest_sha256 = Some("not hex".into())),
                "attestation.manifestSha256 \"not hex\" differs from the SHA-256 of manifest.json",
            ),
            (
                Box::new(|c| c.dataset_type = Some("masscan".into())),
                "attestation.datasetType \"masscan\" differs from manifest.datasetType \"nmap\"",
            ),
            (
                Box::new(|c| c.tool = Some("zmap".into())),
                "attestation.tool \"zmap\" differs from manifest.tool \"nmap\"",
            ),
            (
                Box::new(|c| c.vantage = Some("AS1/rare-place".into())),
                "attestation.vantage \"AS1/rare-place\" differs from manifest.vantage \"AS1234/us-west-2\"",
            ),
            (
                Box::new(|c| c.started_at = Some(1693526399)),
                "attestation.startedAt 1693526399 differs from manifest.startedAt 1693526400",
            ),
            (
                Box::new(|c| c.finished_at = Some(1693530000)),
                "attestation.finishedAt 1693530000 differs from manifest.finishedAt 1693529999",
            ),
        ];
        // What nweb.bundles recorded of the bundle, for one checked before its submission.
        let m = parse_manifest(&text).unwrap();
        let sha = sha256_hex(text.as_bytes());
        let recorded = |manifest_sha256| BundleFacts {
            manifest_sha256,
            dataset_type: &m.dataset_type,
            tool: &m.tool,
            vantage: &m.vantage,
            started_at: m.started_at,
            finished_at: m.finished_at,
        };
        assert_eq!(honest.mismatch_with(&recorded(Some(&sha))), None);
        for (lie, want) in lies {
            let mut c = honest.clone();
            lie(&mut c);
            let v = verify_attested(&input, &c);
            assert_eq!(v.status, Status::Invalid, "{want}");
            assert_eq!(v.reason, Some(Reason::CidHashMismatch), "{want}");
            let d = v.reason_detail.unwrap();
            assert!(d.starts_with(want), "{d:?} should start with {want:?}");
            assert!(v.manifest.is_some(), "what was read is kept");
            // Recorded first, submitted after: the same claim is caught with the same detail.
            assert_eq!(c.mismatch_with(&recorded(Some(&sha))).as_deref(), Some(d.as_str()));
            // Without the manifest's bytes only their hash goes unchecked.
            let unhashed = c.mismatch_with(&recorded(None));
            assert_eq!(unhashed.is_none(), want.starts_with("attestation.manifestSha256"), "{want}");
        }
        // The manifest's bytes, not its meaning: the same JSON pretty-printed is another file.
        let pretty = serde_json::to_string_pretty(&manifest_value(&good_root())).unwrap();
        let v = verify_attested(
            &BundleInput { manifest: Some(&pretty), ..input.clone() },
            &honest,
        );
        assert_eq!(v.reason, Some(Reason::CidHashMismatch));
    }

    #[test]
    fn claims_come_from_the_stored_submission() {
        let payload = json!({
            "manifestSha256": "", "datasetType": "nmap", "tool": "nmap", "vantage": "AS64500/test",
            "startedAt": 1_770_000_000u64, "finishedAt": 1_770_000_060u64, "merkleRoot": "0x00"
        });
        let c = AttestedClaims::from_submission_json(&payload);
        assert_eq!(c.manifest_sha256, None, "an empty string claims nothing");
        assert_eq!(c.dataset_type.as_deref(), Some("nmap"));
        assert_eq!(c.vantage.as_deref(), Some("AS64500/test"));
        assert_eq!((c.started_at, c.finished_at), (Some(1_770_000_000), Some(1_770_000_060)));
        assert_eq!(AttestedClaims::from_submission_json(&json!({})), AttestedClaims::default());
    }

    #[test]
    fn a_listed_artifact_absent_from_the_bundle_is_format_invalid() {
        let sp = scanprint();
        let v = run(&manifest_value(&good_root()), Some(&sp), &BTreeMap::new());
        assert_eq!(v.reason, Some(Reason::FormatInvalid));
        assert_eq!(
            v.reason_detail.as_deref(),
            Some("artifact raw/nmap.xml is listed in the manifest but not in the bundle")
        );
        // Format problems win over hash problems: nothing can be compared before.
        let other = format!("0x{}", "00".repeat(32));
        let v = run(&manifest_value(&other), Some(&sp), &BTreeMap::new());
        assert_eq!(v.reason, Some(Reason::FormatInvalid));
    }

    #[test]
    fn pricing_follows_profile_or_options() {
        let full = scanprint().replace("-sV -p 22,443", "-sS -p -");
        let root = merkle::scanprint_merkle_root(&full).unwrap();
        let v = run(&manifest_value(&root), Some(&full), &files());
        assert_eq!(
            (v.cost_kind.as_deref(), v.cost_units),
            (Some("nmap-full"), Some(5))
        );
        let mut m = manifest_value(&good_root());
        m["profile"] = json!("nmap-full");
        let v = run(&m, Some(&scanprint()), &files());
        assert_eq!(v.cost_units, Some(5));
        let mut m = manifest_value(&merkle::scanprint_merkle_root("").unwrap());
        m["datasetType"] = json!("masscan");
        m["tool"] = json!("masscan");
        m["artifacts"] = json!([]);
        let v = run(&m, Some(""), &BTreeMap::new());
        assert_eq!(v.status, Status::Verified, "an empty scan is a valid scan");
        assert_eq!(v.cost_kind.as_deref(), Some("masscan-quick"));
    }

    #[test]
    fn raw_lines_parse_like_the_verifier_reads_them() {
        let sp = scanprint();
        let rows: Vec<ScanprintRow> = sp
            .lines()
            .enumerate()
            .filter_map(|(i, l)| parse_scanprint_line(i + 1, l).unwrap())
            .collect();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(rows[1].latency_ms, Some(21));
        assert_eq!(rows[1].state, "closed");
        assert_eq!(parse_scanprint_line(5, "  ").unwrap(), None);
        assert_eq!(
            parse_scanprint_line(5, "{").unwrap_err().sqlstate(),
            "22P02"
        );
    }
}
