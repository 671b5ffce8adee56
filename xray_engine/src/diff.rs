//! Steps 4–7 of docs/contract.md §D-6.2: compare the normalised exposures of a scan
//! with the stored state and decide NEW / CHANGED / FIXED, gating FIXED on
//! proof that the scan really covered the check (docs/contract.md §D-6.3, docs/design.md D3/D4).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{json, Value};

use crate::canon::canonical_host;
use crate::config::EngineConfig;
use crate::contract::{Endpoint, Id, PortState, ScanPayload};
use crate::buckets::{rb1_admin_port, rb2_panel, rb3_weak_tls, rb4_certificate, rb5_headers, rb6_unknown_service, rb7_email};
use crate::identity::RiskBucket;
use crate::normalize::{endpoint_views, normalize, EndpointView, Exposure};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureStatus {
    Open,
    Fixed,
    Suppressed,
    FalsePositive,
}

impl ExposureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExposureStatus::Open => "open",
            ExposureStatus::Fixed => "fixed",
            ExposureStatus::Suppressed => "suppressed",
            ExposureStatus::FalsePositive => "false_positive",
        }
    }

    /// Triaged by a person: tracked, but silent (docs/design.md D5).
    pub fn is_triaged(self) -> bool {
        matches!(self, ExposureStatus::Suppressed | ExposureStatus::FalsePositive)
    }
}

impl FromStr for ExposureStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(ExposureStatus::Open),
            "fixed" => Ok(ExposureStatus::Fixed),
            "suppressed" => Ok(ExposureStatus::Suppressed),
            "false_positive" => Ok(ExposureStatus::FalsePositive),
            other => Err(format!("status: unknown exposure status {other:?}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum EventType {
    #[serde(rename = "NEW")]
    New,
    #[serde(rename = "CHANGED")]
    Changed,
    #[serde(rename = "FIXED")]
    Fixed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::New => "NEW",
            EventType::Changed => "CHANGED",
            EventType::Fixed => "FIXED",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the database knows about an identity before this scan.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorState {
    pub identity_key: String,
    pub asset_id: Id,
    pub observed_host: String,
    pub risk_bucket: RiskBucket,
    pub proto: String,
    pub port: u16,
    pub fingerprint: String,
    pub status: ExposureStatus,
    pub material_hash: String,
    pub reopen_count: i32,
    /// RB4: every anchor the stored certificate had (`spki:..`, `cert:..`,
    /// `serial:..`, evidence `cert_anchors`), so a rescan whose source fills
    /// other fields is compared on a kind both have. Empty for other buckets.
    pub cert_anchors: Vec<String>,
}

impl PriorState {
    /// The state a row written from `u` has for the next scan.
    pub fn from_upsert(u: &StateUpsert) -> PriorState {
        let e = &u.exposure;
        PriorState {
            identity_key: e.identity_key.clone(),
            asset_id: e.asset_id,
            observed_host: e.observed_host.clone(),
            risk_bucket: e.risk_bucket,
            proto: e.proto.clone(),
            port: e.port,
            fingerprint: e.fingerprint.clone(),
            status: u.status,
            material_hash: e.material_hash.clone(),
            reopen_count: u.reopen_count,
            cert_anchors: cert_anchors_of(&e.evidence),
        }
    }
}

/// The `cert_anchors` list of an exposure's evidence.
pub fn cert_anchors_of(evidence: &Value) -> Vec<String> {
    evidence
        .get("cert_anchors")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// RB4: `cur` re-anchored on the stored anchor when both observations show
/// the same certificate on the most preferred anchor kind they share. One
/// source may fill only a serial where another had the SPKI hash; comparing
/// a serial with an SPKI hash would call every such rescan a rotation.
fn aligned_anchor(cur: &Exposure, prev: &PriorState) -> Option<Exposure> {
    if cur.risk_bucket != RiskBucket::Rb4 {
        return None;
    }
    let kind = |a: &str| a.split(':').next().unwrap_or_default().to_string();
    let mine = cert_anchors_of(&cur.evidence);
    let shared = mine.iter().find_map(|a| prev.cert_anchors.iter().find(|p| kind(p) == kind(a)).map(|p| (a, p)))?;
    let stored = prev.cert_anchors.first()?;
    if shared.0 != shared.1 || cur.evidence.get("cert_anchor").and_then(Value::as_str) == Some(stored.as_str()) {
        return None;
    }
    let mut x = cur.clone();
    let mut anchors = prev.cert_anchors.clone();
    anchors.extend(mine.into_iter().filter(|a| !prev.cert_anchors.iter().any(|p| kind(p) == kind(a))));
    anchors.sort_by_key(|a| ["spki", "cert", "serial"].iter().position(|k| *k == kind(a)));
    let issue = x.evidence.get("issue_type").and_then(Value::as_str).unwrap_or_default().to_string();
    x.detail = format!("issue:{issue}|cert:{stored}");
    x.evidence["cert_anchor"] = json!(stored);
    x.evidence["cert_anchors"] = json!(anchors);
    x.evidence["detail"] = json!(x.detail);
    x.material_hash = crate::identity::material_hash(RiskBucket::Rb4, &x.evidence);
    Some(x)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub event_type: EventType,
    pub identity_key: String,
    pub asset_id: Id,
    pub risk_bucket: RiskBucket,
    pub observed_host: String,
    pub observed_ip: Option<String>,
    pub proto: String,
    pub port: u16,
    pub fingerprint: String,
    pub detail: Option<String>,
    pub prev_material_hash: Option<String>,
    pub material_hash: Option<String>,
    /// For NEW/CHANGED the current evidence; for FIXED the proof of fix
    /// (`{"proof": ...}`), to which the database adds the last open evidence.
    pub evidence: Value,
    pub reopened: bool,
}

/// A full exposure row to insert or overwrite.
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpsert {
    pub exposure: Exposure,
    pub status: ExposureStatus,
    /// `None` keeps the stored value (a triaged exposure seen again).
    pub last_change_type: Option<EventType>,
    pub reopen_count: i32,
}

/// Why an absent exposure was kept open.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOpen {
    pub identity_key: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiffOutcome {
    pub events: Vec<Event>,
    pub upserts: Vec<StateUpsert>,
    /// Still open with the same material: only last_seen moves.
    pub touched: Vec<String>,
    pub fixed: Vec<String>,
    pub held_open: Vec<HeldOpen>,
    pub current_count: usize,
}

/// Normalise a payload and diff it against `prior` (which must hold the
/// tenant's exposures for the scan's scope: every non-fixed one, plus fixed
/// ones whose identity reappears).
pub fn diff_scan(payload: &ScanPayload, prior: &[PriorState], config: &EngineConfig) -> DiffOutcome {
    let current = normalize(payload, config);
    diff_normalized(payload, current, prior, config)
}

pub fn diff_normalized(
    payload: &ScanPayload,
    current: Vec<Exposure>,
    prior: &[PriorState],
    config: &EngineConfig,
) -> DiffOutcome {
    let scope: BTreeSet<Id> = payload.scope_asset_ids().into_iter().collect();
    // Hashed, not ordered: a lookup touches one or two cache lines instead of
    // a key string per tree level, which kept the diff from scaling linearly.
    // A later duplicate identity wins, as it did with an ordered map.
    let prior: HashMap<&str, &PriorState> = prior
        .iter()
        .filter(|p| scope.contains(&p.asset_id))
        .map(|p| (p.identity_key.as_str(), p))
        .collect();
    let mut out = DiffOutcome { current_count: current.len(), ..Default::default() };
    // Prior exposures this scan did not see, in identity_key order, decided
    // before `current` is consumed so no key has to be copied.
    let absent: Vec<(&str, &PriorState)> = {
        let current_keys: HashSet<&str> = current.iter().map(|e| e.identity_key.as_str()).collect();
        let mut absent: Vec<(&str, &PriorState)> = prior
            .iter()
            .filter(|(key, prev)| !current_keys.contains(**key) && prev.status != ExposureStatus::Fixed)
            .map(|(key, prev)| (*key, *prev))
            .collect();
        absent.sort_unstable_by(|a, b| a.0.cmp(b.0));
        absent
    };

    // `normalize` returns exposures sorted by identity_key.
    for cur in current {
        let prev = prior.get(cur.identity_key.as_str());
        let cur = match prev {
            Some(prev) if prev.material_hash != cur.material_hash => aligned_anchor(&cur, prev).unwrap_or(cur),
            _ => cur,
        };
        match prev {
            None => {
                out.events.push(event_from(EventType::New, &cur, None, false));
                out.upserts.push(StateUpsert {
                    exposure: cur,
                    status: ExposureStatus::Open,
                    last_change_type: Some(EventType::New),
                    reopen_count: 0,
                });
            }
            Some(prev) if prev.status == ExposureStatus::Fixed => {
                out.events.push(event_from(EventType::New, &cur, Some(prev), true));
                out.upserts.push(StateUpsert {
                    exposure: cur,
                    status: ExposureStatus::Open,
                    last_change_type: Some(EventType::New),
                    reopen_count: prev.reopen_count + 1,
                });
            }
            Some(prev) if prev.status.is_triaged() => {
                out.upserts.push(StateUpsert {
                    exposure: cur,
                    status: prev.status,
                    last_change_type: None,
                    reopen_count: prev.reopen_count,
                });
            }
            Some(prev) if prev.material_hash != cur.material_hash => {
                out.events.push(event_from(EventType::Changed, &cur, Some(prev), false));
                out.upserts.push(StateUpsert {
                    exposure: cur,
                    status: ExposureStatus::Open,
                    last_change_type: Some(EventType::Changed),
                    reopen_count: prev.reopen_count,
                });
            }
            Some(_) => out.touched.push(cur.identity_key),
        }
    }

    let authority = Authority::new(payload, config);
    for (_, prev) in absent {
        match authority.proof_of_absence(prev) {
            Ok(proof) => {
                if prev.status == ExposureStatus::Open {
                    out.events.push(Event {
                        event_type: EventType::Fixed,
                        identity_key: prev.identity_key.clone(),
                        asset_id: prev.asset_id,
                        risk_bucket: prev.risk_bucket,
                        observed_host: prev.observed_host.clone(),
                        observed_ip: None,
                        proto: prev.proto.clone(),
                        port: prev.port,
                        fingerprint: prev.fingerprint.clone(),
                        detail: None,
                        prev_material_hash: Some(prev.material_hash.clone()),
                        material_hash: None,
                        evidence: json!({ "proof": proof }),
                        reopened: false,
                    });
                    out.fixed.push(prev.identity_key.clone());
                }
                // A triaged exposure that went away stays triaged and silent.
            }
            Err(reason) => out.held_open.push(HeldOpen { identity_key: prev.identity_key.clone(), reason }),
        }
    }
    out
}

fn event_from(t: EventType, cur: &Exposure, prev: Option<&PriorState>, reopened: bool) -> Event {
    Event {
        event_type: t,
        identity_key: cur.identity_key.clone(),
        asset_id: cur.asset_id,
        risk_bucket: cur.risk_bucket,
        observed_host: cur.observed_host.clone(),
        observed_ip: cur.observed_ip.clone(),
        proto: cur.proto.clone(),
        port: cur.port,
        fingerprint: cur.fingerprint.clone(),
        detail: Some(cur.detail.clone()),
        prev_material_hash: prev.map(|p| p.material_hash.clone()),
        material_hash: Some(cur.material_hash.clone()),
        evidence: cur.evidence.clone(),
        reopened,
    }
}

/// The tools that can do each kind of check.
pub(crate) const PORT_TOOLS: &[&str] = &["naabu", "nmap", "masscan"];
pub(crate) const TLS_TOOLS: &[&str] = &["tlsx", "nmap"];
pub(crate) const HTTP_TOOLS: &[&str] = &["httpx", "nmap"];
pub(crate) const NUCLEI_TOOLS: &[&str] = &["nuclei"];

/// Decides whether this scan proves an exposure absent (docs/contract.md §D-6.3).
pub(crate) struct Authority<'a> {
    pub(crate) payload: &'a ScanPayload,
    config: &'a EngineConfig,
    scan_failure: Option<String>,
    failed_tools: BTreeSet<String>,
    fatal_assets: BTreeSet<String>,
    views: Vec<EndpointView<'a>>,
    /// Indexes into `views` per asset, in payload order: an absent exposure
    /// looks only at its own asset's endpoints (linear, not views × absent).
    views_by_asset: BTreeMap<Id, Vec<usize>>,
    /// Any endpoint carries a 1.2 coverage block.
    coverage: bool,
}

impl<'a> Authority<'a> {
    fn new(payload: &'a ScanPayload, config: &'a EngineConfig) -> Self {
        let mut scan_failure = None;
        if payload.scan.finished_at.is_none() {
            scan_failure = Some("scan did not finish (no scan.finished_at)".to_string());
        }
        let mut failed_tools = BTreeSet::new();
        let mut fatal_assets = BTreeSet::new();
        for e in &payload.errors {
            match (e.scope.as_deref(), e.tool.as_deref(), e.asset_id()) {
                (Some("asset"), _, Some(asset)) => {
                    fatal_assets.insert(asset.to_ascii_lowercase());
                }
                (_, Some(tool), _) if e.scope.as_deref() != Some("scan") => {
                    failed_tools.insert(tool.to_ascii_lowercase());
                }
                _ => {
                    scan_failure.get_or_insert_with(|| {
                        format!("scan-wide error: {}", e.message.as_deref().unwrap_or("unspecified"))
                    });
                }
            }
        }
        let views = endpoint_views(payload);
        let mut views_by_asset: BTreeMap<Id, Vec<usize>> = BTreeMap::new();
        for (i, v) in views.iter().enumerate() {
            views_by_asset.entry(v.asset_id).or_default().push(i);
        }
        let coverage = views.iter().any(|v| v.ep.coverage.is_some());
        Authority { payload, config, scan_failure, failed_tools, fatal_assets, views, views_by_asset, coverage }
    }

    fn proof_of_absence(&self, prev: &PriorState) -> Result<Value, String> {
        if let Some(f) = &self.scan_failure {
            return Err(f.clone());
        }
        if self.fatal_assets.contains(&prev.asset_id.to_string()) {
            return Err("asset-level error in this scan".into());
        }
        let rb7 = prev.risk_bucket == RiskBucket::Rb7;
        let endpoints: Vec<&EndpointView<'a>> = self
            .views_by_asset
            .get(&prev.asset_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|&i| &self.views[i])
            .filter(|v| {
                if rb7 {
                    // RB7 is about the domain: only endpoints that carry a DNS
                    // verdict for it speak (docs/design.md D10).
                    v.ep.dns_email
                        .as_ref()
                        .and_then(|d| d.domain.as_deref())
                        .is_some_and(|d| canonical_host(d) == prev.observed_host)
                } else {
                    v.observed_host == prev.observed_host
                }
            })
            .collect();
        if endpoints.is_empty() {
            return match self.probed_without_endpoint(prev) {
                Some(proof) => Ok(json!({
                    "basis": "coverage",
                    "bucket": prev.risk_bucket,
                    "scan_finished_at": self.payload.scan.finished_at,
                    "endpoints": [],
                    "address": proof,
                })),
                None => Err(format!("host {} was not scanned", prev.observed_host)),
            };
        }
        if rb7 {
            return rb7_email::domain_verdict(self, &endpoints, prev);
        }
        let mut checks = Vec::new();
        for v in endpoints {
            if let Some(fatal) = v.ep.errors.iter().find(|e| e.tool.is_none() && e.symptom().is_none()) {
                return Err(format!(
                    "endpoint {} had a fatal error: {}",
                    v.endpoint_id,
                    fatal.message.as_deref().unwrap_or("unspecified")
                ));
            }
            let result = self.endpoint_check(v.ep, prev)?;
            checks.push(json!({"endpoint_id": v.endpoint_id, "ip": v.ep.canonical_ip(), "result": result}));
        }
        Ok(json!({
            "basis": if self.uses_coverage() { "coverage" } else { "inferred" },
            "bucket": prev.risk_bucket,
            "scan_finished_at": self.payload.scan.finished_at,
            "endpoints": checks,
        }))
    }

    /// An exposure on an address of the asset that has no endpoint in this
    /// scan: absent only if the asset's 1.2 coverage says the address was
    /// port-scanned, on the exposure's port, by a tool that did not fail.
    /// Then nothing answered there at all, so no service-level exposure on it
    /// survives either.
    fn probed_without_endpoint(&self, prev: &PriorState) -> Option<String> {
        let ar = self.payload.asset_results.iter().find(|a| a.asset.asset_id == prev.asset_id)?;
        let cov = ar.coverage.as_ref()?;
        let host = canonical_host(&prev.observed_host);
        let probed = cov.ips.iter().any(|ip| canonical_host(ip) == host);
        let tool = PORT_TOOLS.iter().find(|t| {
            !self.failed_tools.contains(**t) && cov.tools.iter().any(|c| c.eq_ignore_ascii_case(t))
        })?;
        (probed && cov.tcp_ports.contains(&prev.port))
            .then(|| format!("{host} port-scanned by {tool}: no port open, tcp/{} included", prev.port))
    }

    pub(crate) fn uses_coverage(&self) -> bool {
        self.coverage
    }

    /// Any tool of the family reported an error for this endpoint or scan-wide.
    fn tool_failed(&self, ep: &Endpoint, tools: &[&str]) -> bool {
        tools.iter().any(|t| {
            self.failed_tools.contains(*t)
                || ep.errors.iter().any(|e| {
                    e.symptom().is_none() && e.tool.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(t))
                })
        })
    }

    /// A tool of the family ran on the endpoint without reporting an error:
    /// named in the 1.2 coverage block, else in `tool_versions`.
    pub(crate) fn ran(&self, ep: &Endpoint, tools: &[&str]) -> Option<String> {
        if self.tool_failed(ep, tools) {
            return None;
        }
        let declared: Vec<String> = match &ep.coverage {
            Some(c) => c.tools.iter().map(|t| t.to_ascii_lowercase()).collect(),
            None => self
                .payload
                .tool_versions
                .iter()
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| k.to_ascii_lowercase())
                .collect(),
        };
        tools.iter().find(|t| declared.iter().any(|d| d == *t)).map(|t| t.to_string())
    }

    /// Port P's state was determined on this endpoint.
    pub(crate) fn port_scanned(&self, ep: &Endpoint, port: u16) -> Option<String> {
        // No address, no port scan, whatever tool_versions says: the
        // endpoint exists because of a DNS answer (or its failure).
        ep.ip.as_ref()?;
        // A port observation the engine could not read might have been this
        // port, open: nothing about ports is proven on this endpoint.
        if ep.ports.tcp.iter().any(|p| p.unusable()) {
            return None;
        }
        let tool = match self.ran(ep, PORT_TOOLS) {
            Some(t) => t,
            // Port observations in a 1.0/1.1 payload prove a port scan ran
            // even when tool_versions does not name it.
            None if ep.coverage.is_none() && !ep.ports.tcp.is_empty() && !self.tool_failed(ep, PORT_TOOLS) => {
                "port scan".to_string()
            }
            None => return None,
        };
        let listed = match &ep.coverage {
            Some(c) => c.tcp_ports.contains(&port),
            None => {
                self.config.profile_coverage(self.payload.scan.scan_profile.as_deref()).contains(&port)
                    || ep.ports.tcp.iter().any(|p| p.port == port && p.port_state() != PortState::Unknown)
            }
        };
        listed.then_some(tool)
    }

    /// Port closed now, proven by a port scan: any exposure on it is gone.
    /// A port reported `unknown` proves nothing (docs/design.md D10).
    pub(crate) fn port_gone(&self, ep: &Endpoint, port: u16) -> Option<String> {
        let tool = self.port_scanned(ep, port)?;
        let open_or_unknown = ep.ports.tcp.iter().any(|p| p.port == port && p.port_state() != PortState::Absent);
        (!open_or_unknown).then(|| format!("tcp/{port} not open ({tool})"))
    }

    /// What this endpoint proves about the exposure: the rule of its bucket.
    fn endpoint_check(&self, ep: &Endpoint, prev: &PriorState) -> Result<String, String> {
        match prev.risk_bucket {
            RiskBucket::Rb1 => rb1_admin_port::proof_of_fix(self, ep, prev),
            RiskBucket::Rb2 => rb2_panel::proof_of_fix(self, ep, prev),
            RiskBucket::Rb3 => rb3_weak_tls::proof_of_fix(self, ep, prev),
            RiskBucket::Rb4 => rb4_certificate::proof_of_fix(self, ep, prev),
            RiskBucket::Rb5 => rb5_headers::proof_of_fix(self, ep, prev),
            RiskBucket::Rb6 => rb6_unknown_service::proof_of_fix(self, ep, prev),
            // Decided per domain in `rb7_email::domain_verdict`, never per endpoint.
            RiskBucket::Rb7 => Err("RB7 is judged per domain".into()),
        }
    }
}
