//! Seeded synthetic workloads for the benchmarks (cargo feature `synth`).
//!
//! [`Fleet`] is a tenant's attack surface: `N` endpoints spread over domain
//! and IP assets, each with open ports, HTTP and TLS observations, nuclei
//! findings, worker symptoms and DNS email posture, drawn so that every risk
//! bucket (RB1–RB7) occurs. [`Fleet::payload`] renders it as a schema 1.2
//! scan-result payload with a per-endpoint coverage block, shaped like the
//! payloads in `fixtures/scenarios/`. [`Fleet::churn`] changes a fraction of
//! the endpoints the way a real week does: some exposures are fixed, some
//! change material (certificate rotated, header set changed), some appear.
//!
//! Everything is a pure function of the seed, so the numbers in
//! `BENCHMARKS.md` can be reproduced byte for byte. No external RNG crate:
//! SplitMix64 is enough for picking shapes.
//!
//! [`scanprint_jsonl`] produces nweb scanprint v0 lines in JCS form for the
//! Merkle benchmark.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Map, Value};

/// SplitMix64: tiny, fast, and good enough to pick payload shapes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// A version-4-shaped UUID in hyphenated text form.
    pub fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(b).into_uuid().hyphenated().to_string()
    }

    pub fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits + 16);
        while s.len() < digits {
            let _ = write!(s, "{:016x}", self.next_u64());
        }
        s.truncate(digits);
        s
    }
}

/// A stable 64-bit mix of a few numbers, for per-item seeds.
fn mix(parts: &[u64]) -> u64 {
    let mut r = Rng::new(0x243f_6a88_85a3_08d3);
    for p in parts {
        r.0 ^= p.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        r.next_u64();
    }
    r.next_u64()
}

/// The headers RB5 asks for, in the order they are dropped.
const SECURITY_HEADERS: [&str; 4] = [
    "content-security-policy",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
];

/// The port list a baseline scan covers (`EngineConfig::default()` baseline).
const SCANNED_PORTS: [u16; 33] = [
    21, 22, 23, 25, 53, 80, 110, 143, 443, 445, 465, 587, 993, 995, 1433, 1521, 2222, 3306, 3389,
    5432, 5900, 5901, 5985, 5986, 6379, 8000, 8008, 8080, 8443, 8888, 9200, 9443, 27017,
];

const PANEL_TEMPLATES: [(&str, &str); 4] = [
    ("grafana-detect", "Grafana Login Panel"),
    ("jenkins-login", "Jenkins Login"),
    ("kibana-detect", "Kibana Panel"),
    ("phpmyadmin-panel", "phpMyAdmin Panel"),
];

const SYMPTOMS: [&str; 4] = ["tcp_open_no_banner", "http_timeout", "tls_handshake_fail", "protocol_mismatch"];

#[derive(Debug, Clone, PartialEq)]
struct Cert {
    /// Changes when the certificate is replaced (rotation).
    serial: u64,
    /// Days from the fleet's base time to `not_after` (negative: expired).
    days_left: i64,
    self_signed: bool,
    /// SANs do not name the host.
    mismatch: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Http {
    port: u16,
    tls: bool,
    /// Indexes into [`SECURITY_HEADERS`] that the site does not send.
    missing: BTreeSet<usize>,
}

impl Http {
    /// Indexes of the headers RB5 requires here (HSTS only over TLS).
    fn required(&self) -> impl Iterator<Item = usize> + '_ {
        (0..SECURITY_HEADERS.len()).filter(move |i| self.tls || *i != 1)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Tls {
    port: u16,
    old_versions: bool,
    /// `None`, `Some(false)` weak, `Some(true)` insecure.
    bad_ciphers: Option<bool>,
    cert: Cert,
}

#[derive(Debug, Clone, PartialEq)]
struct Dns {
    domain: String,
    spf: &'static str,
    dmarc_policy: &'static str,
    dkim_present: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct EndpointSpec {
    ip: String,
    host: String,
    /// The domain the endpoint was reached under (domain assets only).
    domain: Option<String>,
    open: BTreeSet<u16>,
    http: Vec<Http>,
    tls: Vec<Tls>,
    /// Exposed panel on this HTTP port, by template index.
    panel: Option<(u16, usize)>,
    /// A technology-detect nuclei match that is not a panel (noise RB2 must ignore).
    tech_finding: bool,
    /// Open baseline port no probe could classify, with the worker's symptom.
    symptom: Option<(u16, usize)>,
    dns: Option<Dns>,
    /// Seed for the byte-level noise (rtt, ttl, titles) of this endpoint.
    noise: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct AssetSpec {
    asset_id: String,
    /// `Some(domain)` for a domain asset, `None` for an IP asset.
    domain: Option<String>,
    endpoints: Vec<EndpointSpec>,
}

/// One tenant's attack surface. See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    pub seed: u64,
    /// Mix of seed, tenant number and size: distinct fleets get distinct ids.
    key: u64,
    pub tenant_id: String,
    assets: Vec<AssetSpec>,
    base: DateTime<Utc>,
}

/// What [`Fleet::churn`] did, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChurnStats {
    pub endpoints_changed: usize,
    pub fixes: usize,
    pub changes: usize,
    pub additions: usize,
}

fn ip_for(i: usize) -> String {
    // 198.18.0.0/15 is reserved for benchmarks (RFC 2544); spill into 10/8.
    if i < 1 << 17 {
        let n = (198u32 << 24) | (18 << 16) | i as u32;
        std::net::Ipv4Addr::from(n).to_string()
    } else {
        let n = (10u32 << 24) | (i as u32 & 0x00ff_ffff);
        std::net::Ipv4Addr::from(n).to_string()
    }
}

impl Fleet {
    /// `endpoints` endpoints for tenant number `tenant` of the seed.
    pub fn generate(seed: u64, endpoints: usize, tenant: u64) -> Fleet {
        let key = mix(&[seed, tenant, endpoints as u64]);
        let mut rng = Rng::new(key);
        let tenant_id = rng.uuid();
        let base = Utc.with_ymd_and_hms(2026, 3, 2, 6, 0, 0).unwrap();
        let mut assets = Vec::new();
        let mut made = 0usize;
        let mut asset_no = 0usize;
        while made < endpoints {
            let asset_id = rng.uuid();
            let is_domain = rng.chance(0.7);
            let want = if is_domain { rng.range(1, 3) as usize } else { 1 };
            let want = want.min(endpoints - made);
            let domain = is_domain.then(|| format!("svc{asset_no:06}.t{}.example.com", &tenant_id[..8]));
            let mut eps = Vec::with_capacity(want);
            for k in 0..want {
                let host = match (&domain, k) {
                    (Some(d), 0) => d.clone(),
                    (Some(d), 1) => format!("www.{d}"),
                    (Some(d), _) => format!("api{k}.{d}"),
                    (None, _) => ip_for(made),
                };
                let dns = match (&domain, k) {
                    (Some(d), 0) => Some(Dns {
                        domain: d.clone(),
                        spf: if rng.chance(0.35) { "weak" } else { "pass" },
                        dmarc_policy: if rng.chance(0.45) { "none" } else { "reject" },
                        dkim_present: if rng.chance(0.25) { 0 } else { 2 },
                    }),
                    _ => None,
                };
                eps.push(EndpointSpec::generate(&mut rng, ip_for(made), host, domain.is_some(), dns));
                made += 1;
            }
            assets.push(AssetSpec { asset_id, domain, endpoints: eps });
            asset_no += 1;
        }
        Fleet { seed, key, tenant_id, assets, base }
    }

    pub fn endpoint_count(&self) -> usize {
        self.assets.iter().map(|a| a.endpoints.len()).sum()
    }

    pub fn asset_count(&self) -> usize {
        self.assets.len()
    }

    /// A copy in which `fraction` of the endpoints changed: a third lose an
    /// exposure (FIXED), a third change one's material (CHANGED), a third
    /// gain one (NEW). Which endpoint gets what depends only on `churn_seed`.
    pub fn churn(&self, fraction: f64, churn_seed: u64) -> (Fleet, ChurnStats) {
        let mut next = self.clone();
        let total = next.endpoint_count();
        let k = ((total as f64) * fraction).round() as usize;
        let mut order: Vec<usize> = (0..total).collect();
        let mut rng = Rng::new(mix(&[self.key, churn_seed, 0xc4]));
        for i in 0..k.min(total) {
            let j = i + rng.below((total - i) as u64) as usize;
            order.swap(i, j);
        }
        let mut chosen: Vec<usize> = order[..k.min(total)].to_vec();
        chosen.sort_unstable();
        let mut stats = ChurnStats { endpoints_changed: chosen.len(), ..Default::default() };
        let mut flat: Vec<&mut EndpointSpec> =
            next.assets.iter_mut().flat_map(|a| a.endpoints.iter_mut()).collect();
        for (n, idx) in chosen.into_iter().enumerate() {
            let ep = &mut *flat[idx];
            let done = match n % 3 {
                0 => ep.fix_one(&mut rng).then(|| stats.fixes += 1),
                1 => ep.change_one(&mut rng).then(|| stats.changes += 1),
                _ => None,
            };
            if done.is_none() {
                ep.add_one(&mut rng);
                stats.additions += 1;
            }
        }
        (next, stats)
    }

    /// The scan-result payload of scan number `scan_index` (0, 1, ...) of
    /// this fleet: a new scan_id, and timestamps one hour later per index.
    pub fn payload(&self, scan_index: u32) -> Value {
        self.payload_shard(scan_index, 0, 1)
    }

    /// Shard `shard` of `shards` of scan `scan_index`: the same scan split by
    /// asset into payloads of about equal endpoint counts, each with its own
    /// scan_id and `requested_asset_ids`, as a worker sends a scan too big
    /// for one payload.
    pub fn payload_shard(&self, scan_index: u32, shard: usize, shards: usize) -> Value {
        let mut v = self.envelope(scan_index, shard, shards);
        v["asset_results"] = Value::Array(self.shard_assets(shard, shards).map(|a| self.asset_result(a, scan_index)).collect());
        v
    }

    /// `payload_shard(..).to_string()`, byte for byte, built one asset at a
    /// time so that a 100k-endpoint scan never exists as a `Value` tree.
    pub fn payload_text_shard(&self, scan_index: u32, shard: usize, shards: usize) -> String {
        let envelope = self.envelope(scan_index, shard, shards).to_string();
        // "asset_results" sorts first among the top-level keys.
        let rest = envelope.strip_prefix(r#"{"asset_results":[]"#).expect("asset_results is the first key");
        let mut out = String::with_capacity(self.endpoint_count() / shards.max(1) * 3000 + envelope.len());
        out.push_str(r#"{"asset_results":["#);
        for (i, a) in self.shard_assets(shard, shards).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&self.asset_result(a, scan_index).to_string());
        }
        out.push(']');
        out.push_str(rest);
        out
    }

    /// `payload(scan_index).to_string()`, built without the `Value` tree.
    pub fn payload_text(&self, scan_index: u32) -> String {
        self.payload_text_shard(scan_index, 0, 1)
    }

    /// The scan_id of a shard's payload.
    pub fn scan_id(&self, scan_index: u32, shard: usize) -> String {
        Rng::new(mix(&[self.key, u64::from(scan_index), 0x5ca1, shard as u64])).uuid()
    }

    fn started(&self, scan_index: u32) -> DateTime<Utc> {
        self.base + Duration::hours(i64::from(scan_index))
    }

    /// Assets of one shard: contiguous, about equal endpoint counts.
    fn shard_assets(&self, shard: usize, shards: usize) -> impl Iterator<Item = &AssetSpec> + '_ {
        let total = self.endpoint_count().max(1);
        let mut before = 0usize;
        self.assets.iter().filter(move |a| {
            let s = before * shards / total;
            before += a.endpoints.len();
            s == shard
        })
    }

    /// The payload without its asset results (`"asset_results": []`).
    fn envelope(&self, scan_index: u32, shard: usize, shards: usize) -> Value {
        let started = self.started(scan_index);
        let finished = started + Duration::minutes(4) + Duration::seconds(12);
        let requested: Vec<&str> = self.shard_assets(shard, shards).map(|a| a.asset_id.as_str()).collect();
        json!({
            "schema_version": "1.2",
            "scan": {
                "scan_id": self.scan_id(scan_index, shard),
                "tenant_id": self.tenant_id,
                "scan_kind": "scheduled",
                "scan_profile": "baseline",
                "triggered_by_user_id": null,
                "requested_asset_ids": requested,
                "started_at": ts(started),
                "finished_at": ts(finished),
                "worker": {"worker_id": "bench", "worker_version": "0.1.0", "host": null, "ip": null},
            },
            "tool_versions": {"naabu": "2.3.1", "httpx": "1.6.9", "tlsx": "1.1.7", "nuclei": "3.3.5",
                              "dns": "0.1.0", "nmap": null},
            "limits": {"max_targets": 200000, "max_ports_per_host": 1000, "timeout_seconds": 3600},
            "asset_results": [],
            "errors": [],
        })
    }

    fn asset_result(&self, a: &AssetSpec, scan_index: u32) -> Value {
        let started = self.started(scan_index);
        let (asset_type, value) = match &a.domain {
            Some(d) => ("domain", d.clone()),
            None => ("ip", a.endpoints[0].ip.clone()),
        };
        let ips: Vec<&str> = a.endpoints.iter().map(|e| e.ip.as_str()).collect();
        json!({
            "asset": {"asset_id": a.asset_id, "asset_type": asset_type, "asset_value": value,
                      "tags": ["bench"], "canonical_host": value},
            "resolution": {"resolved_at": ts(started + Duration::seconds(5)),
                           "dns": {"a": ips, "aaaa": [], "cname_chain": [], "errors": []}},
            "endpoints": a.endpoints.iter().map(|e| e.render(self.base, started)).collect::<Vec<_>>(),
        })
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl EndpointSpec {
    fn generate(rng: &mut Rng, ip: String, host: String, is_domain: bool, dns: Option<Dns>) -> EndpointSpec {
        let mut ep = EndpointSpec {
            ip,
            domain: is_domain.then(|| host.clone()),
            host,
            open: BTreeSet::new(),
            http: Vec::new(),
            tls: Vec::new(),
            panel: None,
            tech_finding: false,
            symptom: None,
            dns,
            noise: rng.next_u64(),
        };
        let web = |ep: &mut EndpointSpec, rng: &mut Rng, port: u16, tls: bool| {
            ep.open.insert(port);
            let mut missing = BTreeSet::new();
            if rng.chance(0.5) {
                // Most often CSP alone, sometimes more.
                missing.insert(0);
                for h in 1..SECURITY_HEADERS.len() {
                    if rng.chance(0.25) {
                        missing.insert(h);
                    }
                }
            }
            ep.http.push(Http { port, tls, missing });
            if tls {
                ep.tls.push(Tls::generate(rng, port, is_domain));
            }
        };
        // Profile mix: web 40 %, web+admin 15 %, panel 10 %, odd port 10 %, mail 10 %, quiet 15 %.
        match rng.below(100) {
            0..=39 => {
                web(&mut ep, rng, 80, false);
                web(&mut ep, rng, 443, true);
            }
            40..=54 => {
                ep.open.insert(22);
                if !is_domain && rng.chance(0.4) {
                    ep.open.insert(3389);
                }
                web(&mut ep, rng, 443, true);
            }
            55..=64 => {
                web(&mut ep, rng, 443, true);
                web(&mut ep, rng, 8080, false);
                ep.panel = Some((8080, rng.below(PANEL_TEMPLATES.len() as u64) as usize));
                ep.tech_finding = true;
            }
            65..=74 => {
                web(&mut ep, rng, 443, true);
                let port = if rng.chance(0.5) { 8443 } else { 8080 };
                ep.open.insert(port);
                ep.symptom = Some((port, rng.below(SYMPTOMS.len() as u64) as usize));
            }
            75..=84 => {
                ep.open.insert(25);
                ep.open.insert(587);
                web(&mut ep, rng, 443, true);
            }
            _ => {
                ep.open.insert(443);
                ep.http.push(Http { port: 443, tls: true, missing: BTreeSet::new() });
                let mut t = Tls::generate(rng, 443, is_domain);
                t.old_versions = false;
                t.bad_ciphers = None;
                t.cert = Cert { serial: rng.next_u64(), days_left: rng.range(60, 400), self_signed: false, mismatch: false };
                ep.tls.push(t);
                ep.tech_finding = rng.chance(0.3);
            }
        }
        ep
    }

    /// Removes one exposure so that the scan proves it gone. False if there is none.
    fn fix_one(&mut self, rng: &mut Rng) -> bool {
        let start = rng.below(6);
        for step in 0..6 {
            let done = match (start + step) % 6 {
                0 if self.open.remove(&22) || self.open.remove(&3389) => true,
                1 => match self.http.iter_mut().find(|h| !h.missing.is_empty()) {
                    Some(h) => {
                        h.missing.clear();
                        true
                    }
                    None => false,
                },
                2 => match self.tls.iter_mut().find(|t| t.cert.has_issue()) {
                    Some(t) => {
                        t.cert = Cert { serial: rng.next_u64(), days_left: 365, self_signed: false, mismatch: false };
                        true
                    }
                    None => false,
                },
                3 => match self.tls.iter_mut().find(|t| t.old_versions || t.bad_ciphers.is_some()) {
                    Some(t) => {
                        t.old_versions = false;
                        t.bad_ciphers = None;
                        true
                    }
                    None => false,
                },
                4 if self.panel.is_some() => {
                    self.panel = None;
                    true
                }
                5 => match self.symptom.take() {
                    Some((port, _)) => {
                        self.open.remove(&port);
                        true
                    }
                    None => false,
                },
                _ => false,
            };
            if done {
                return true;
            }
        }
        false
    }

    /// Changes the material of one exposure (same identity). False if there is none.
    fn change_one(&mut self, rng: &mut Rng) -> bool {
        let start = rng.below(4);
        for step in 0..4 {
            let done = match (start + step) % 4 {
                0 => {
                    // One more required header goes missing on a site that already lacks one.
                    let pick = self.http.iter_mut().find_map(|h| {
                        let add = h.required().find(|i| !h.missing.contains(i))?;
                        (!h.missing.is_empty()).then_some((h, add))
                    });
                    match pick {
                        Some((h, add)) => {
                            h.missing.insert(add);
                            true
                        }
                        None => false,
                    }
                }
                1 => match self.tls.iter_mut().find(|t| t.cert.has_issue()) {
                    Some(t) => {
                        // Rotated to another certificate with the same problem: the anchor moves.
                        t.cert.serial = rng.next_u64();
                        true
                    }
                    None => false,
                },
                2 => match self.tls.iter_mut().find(|t| t.bad_ciphers == Some(false)) {
                    Some(t) => {
                        // Weak ciphers turn out insecure: the cipher class is material.
                        t.bad_ciphers = Some(true);
                        true
                    }
                    None => false,
                },
                3 => match self.dns.as_mut() {
                    Some(d) if d.spf == "weak" => {
                        // The SPF `all` mechanism changes (~all to ?all).
                        d.spf = "weak?";
                        true
                    }
                    Some(d) if d.dkim_present == 0 => {
                        // One DKIM selector appears: still partial, other selectors.
                        d.dkim_present = 1;
                        true
                    }
                    _ => false,
                },
                _ => false,
            };
            if done {
                return true;
            }
        }
        false
    }

    /// Adds one exposure: an admin port opens, or a header disappears.
    fn add_one(&mut self, rng: &mut Rng) {
        if !self.open.contains(&22) && rng.chance(0.5) {
            self.open.insert(22);
            return;
        }
        if !self.open.contains(&3389) && rng.chance(0.5) {
            self.open.insert(3389);
            return;
        }
        if let Some(h) = self.http.iter_mut().find(|h| h.missing.is_empty()) {
            h.missing.insert(2);
            return;
        }
        let port = [2222u16, 5900, 5985, 5901, 5986].into_iter().find(|p| !self.open.contains(p)).unwrap_or(5900);
        self.open.insert(port);
    }

    fn render(&self, base: DateTime<Utc>, started: DateTime<Utc>) -> Value {
        let mut rng = Rng::new(self.noise);
        let ports: Vec<Value> = self
            .open
            .iter()
            .map(|p| {
                json!({"tool": "naabu", "protocol": "tcp", "port": p, "state": "open", "verified": true,
                       "reason": "syn_ack", "ttl": 54, "rtt_ms": 5 + rng.below(40)})
            })
            .collect();
        let url_of = |h: &Http| -> String {
            match (h.tls, h.port) {
                (true, 443) => format!("https://{}/", self.host),
                (false, 80) => format!("http://{}/", self.host),
                (true, p) => format!("https://{}:{p}/", self.host),
                (false, p) => format!("http://{}:{p}/", self.host),
            }
        };
        let http: Vec<Value> = self
            .http
            .iter()
            .map(|h| {
                let mut headers = Map::new();
                headers.insert("server".into(), json!("nginx"));
                headers.insert("content-type".into(), json!("text/html; charset=utf-8"));
                for (i, name) in SECURITY_HEADERS.iter().enumerate() {
                    if !h.missing.contains(&i) && (h.tls || i != 1) {
                        let v = match i {
                            0 => "default-src 'self'",
                            1 => "max-age=31536000",
                            2 => "nosniff",
                            _ => "DENY",
                        };
                        headers.insert((*name).into(), json!(v));
                    }
                }
                let title = if self.panel.is_some_and(|(p, _)| p == h.port) { "Login" } else { "Welcome" };
                json!({"tool": "httpx", "url": url_of(h), "final_url": url_of(h), "host": self.host, "ip": self.ip,
                       "port": h.port, "scheme": if h.tls {"https"} else {"http"}, "status_code": 200,
                       "title": title, "headers": headers, "technologies": ["nginx"],
                       "response_time_ms": 20 + rng.below(300), "content_length": 1000 + rng.below(50000)})
            })
            .collect();
        let tls: Vec<Value> = self.tls.iter().map(|t| t.render(self, base)).collect();
        let mut nuclei = Vec::new();
        if let Some((port, tpl)) = self.panel {
            let (id, name) = PANEL_TEMPLATES[tpl];
            nuclei.push(json!({
                "tool": "nuclei", "template_id": id, "template_path": format!("http/exposed-panels/{id}.yaml"),
                "severity": "info", "type": "http", "matched_at": format!("http://{}:{port}/login", self.host),
                "host": self.host, "ip": self.ip, "port": port, "timestamp": ts(started + Duration::seconds(130)),
                "matcher_name": null, "extracted_results": [], "metadata": {"name": name, "description": null,
                "tags": ["panel"]}
            }));
        }
        if self.tech_finding {
            nuclei.push(json!({
                "tool": "nuclei", "template_id": "tech-detect", "template_path": "http/technologies/tech-detect.yaml",
                "severity": "info", "type": "http", "matched_at": format!("https://{}/", self.host),
                "host": self.host, "ip": self.ip, "port": 443, "timestamp": ts(started + Duration::seconds(131)),
                "matcher_name": "nginx", "extracted_results": [], "metadata": {"name": "Wappalyzer Technology Detection",
                "description": null, "tags": ["tech"]}
            }));
        }
        let errors: Vec<Value> = self
            .symptom
            .iter()
            .map(|(port, s)| {
                let tool = if *port == 8443 { "tlsx" } else { "httpx" };
                json!({"scope": "endpoint", "tool": tool, "message": format!("no classification for port {port}"),
                       "kind": "network_error", "details": {"port": port, "symptom": SYMPTOMS[*s]}})
            })
            .collect();
        let roots: Vec<String> = self.http.iter().map(url_of).collect();
        let mut tools = vec!["naabu", "httpx", "tlsx", "nuclei"];
        let mut dns_checks: Vec<&str> = Vec::new();
        let dns_email = self.dns.as_ref().map(|d| {
            tools.push("dns");
            dns_checks = vec!["spf", "dmarc", "dkim"];
            let spf_raw = match d.spf {
                "weak" => "v=spf1 include:_spf.example.net ~all",
                "weak?" => "v=spf1 include:_spf.example.net ?all",
                _ => "v=spf1 include:_spf.example.net -all",
            };
            let dmarc_weak = d.dmarc_policy.eq_ignore_ascii_case("none");
            let selectors: Vec<&str> = ["default", "selector1"].into_iter().take(d.dkim_present).collect();
            json!({
                "domain": d.domain,
                "spf": {"present": true, "raw": spf_raw, "assessment": if d.spf == "pass" {"pass"} else {"weak"},
                        "issues": if d.spf == "pass" {vec![]} else {vec!["softfail"]}},
                "dmarc": {"present": true, "raw": format!("v=DMARC1; p={}", d.dmarc_policy), "policy": d.dmarc_policy,
                          "alignment": {"aspf": null, "adkim": null},
                          "assessment": if dmarc_weak {"weak"} else {"pass"},
                          "issues": if dmarc_weak {vec!["policy_none"]} else {vec![]}},
                "dkim": {"checked_selectors": ["default", "selector1"], "present_selectors": selectors,
                         "assessment": match d.dkim_present { 0 => "missing", 1 => "partial", _ => "pass" },
                         "issues": if d.dkim_present == 0 {vec!["no_selector_confirmed"]} else {vec![]}},
                "errors": []
            })
        });
        let endpoint_id = match &self.domain {
            Some(d) => format!("ip:{}|domain:{d}", self.ip),
            None => format!("ip:{}", self.ip),
        };
        let mut ep = json!({
            "endpoint_id": endpoint_id,
            "ip": self.ip,
            "domain_context": self.domain,
            "observed_host": self.host,
            "ports": {"tcp": ports, "udp": []},
            "http": http,
            "tls": tls,
            "findings": {"nuclei": nuclei, "nmap": []},
            "errors": errors,
            "coverage": {
                "tools": tools,
                "tcp_ports": &SCANNED_PORTS[..],
                "tls_ports": self.tls.iter().map(|t| t.port).collect::<Vec<_>>(),
                "http_urls": roots,
                "nuclei_urls": roots,
                "dns_checks": dns_checks,
            },
        });
        if let Some(d) = dns_email {
            ep["dns_email"] = d;
        }
        ep
    }
}

impl Cert {
    fn has_issue(&self) -> bool {
        self.days_left <= 30 || self.self_signed || self.mismatch
    }
}

impl Tls {
    fn generate(rng: &mut Rng, port: u16, is_domain: bool) -> Tls {
        let days_left = match rng.below(100) {
            0..=2 => rng.range(-60, -1),
            3..=7 => rng.range(3, 25),
            _ => rng.range(60, 400),
        };
        Tls {
            port,
            old_versions: rng.chance(0.15),
            bad_ciphers: if rng.chance(0.08) { Some(rng.chance(0.3)) } else { None },
            cert: Cert {
                serial: rng.next_u64(),
                days_left,
                self_signed: rng.chance(0.05),
                mismatch: is_domain && rng.chance(0.06),
            },
        }
    }

    fn render(&self, ep: &EndpointSpec, base: DateTime<Utc>) -> Value {
        let c = &self.cert;
        let mut r = Rng::new(c.serial);
        let spki = r.hex(64);
        let cert_sha = r.hex(64);
        let names: Vec<String> = if c.mismatch {
            vec![format!("legacy-{}", ep.host)]
        } else {
            vec![ep.host.clone(), format!("www.{}", ep.host)]
        };
        let not_after = base + Duration::days(c.days_left);
        let versions: Vec<&str> = if self.old_versions { vec!["tls10", "tls12", "tls13"] } else { vec!["tls12", "tls13"] };
        let mut t = json!({
            "tool": "tlsx", "host": ep.host, "ip": ep.ip, "port": self.port, "sni": ep.host,
            "tls_versions": versions, "cipher": "TLS_AES_128_GCM_SHA256",
            "certificate": {
                "subject_cn": names[0], "issuer_cn": if c.self_signed { names[0].as_str() } else { "R11" },
                "serial": format!("{:X}", c.serial), "not_before": ts(not_after - Duration::days(90)),
                "not_after": ts(not_after), "sans": names, "is_self_signed": c.self_signed,
                "spki_sha256": spki, "cert_sha256": cert_sha,
            },
        });
        if let Some(insecure) = self.bad_ciphers {
            t["cipher_classes"] = if insecure {
                json!({"weak": ["TLS_RSA_WITH_AES_128_CBC_SHA"], "insecure": ["TLS_RSA_WITH_RC4_128_SHA"]})
            } else {
                json!({"weak": ["TLS_RSA_WITH_AES_128_CBC_SHA"], "insecure": []})
            };
        }
        t
    }
}

/// About `target_bytes` of nweb scanprint v0 JSONL (JCS lines, sorted by ip,
/// proto, port, state as docs/nweb.md §4 asks), as a tenant-sized public bundle
/// would hold. A pure function of `seed`.
pub fn scanprint_jsonl(seed: u64, target_bytes: usize) -> String {
    let mut rng = Rng::new(mix(&[seed, 0x5ca9]));
    let mut out = String::with_capacity(target_bytes + 1024);
    let services: [(u16, &str, &str, &str); 8] = [
        (22, "ssh", "OpenSSH", "9.2p1 Debian 2+deb12u3"),
        (25, "smtp", "Postfix smtpd", ""),
        (80, "http", "nginx", "1.22.1"),
        (443, "https", "nginx", "1.22.1"),
        (3306, "mysql", "MySQL", "8.0.36"),
        (3389, "ms-wbt-server", "Microsoft Terminal Services", ""),
        (8080, "http-proxy", "Apache Tomcat", "10.1.18"),
        (8443, "https-alt", "Jetty", "11.0.20"),
    ];
    let mut host = 0usize;
    let ts0: u64 = 1_772_431_200; // 2026-03-02T06:00:00Z
    while out.len() < target_bytes {
        let ip = ip_for(host);
        host += 1;
        let n = 1 + rng.below(4) as usize;
        let mut picks: Vec<usize> = (0..n).map(|_| rng.below(services.len() as u64) as usize).collect();
        picks.sort_unstable();
        picks.dedup();
        for i in picks {
            let (port, service, product, version) = services[i];
            let state = if rng.chance(0.9) { "open" } else { "filtered" };
            let mut m = Map::new();
            m.insert("banner_sha256".into(), json!(rng.hex(64)));
            m.insert("cert_fpr".into(), if matches!(port, 443 | 8443) { json!(format!("sha256:{}", rng.hex(64))) } else { Value::Null });
            m.insert("ip".into(), json!(ip));
            m.insert("options".into(), json!("-sV -Pn -T4"));
            m.insert("port".into(), json!(port));
            m.insert("product".into(), json!(product));
            m.insert("proto".into(), json!("tcp"));
            m.insert("service".into(), json!(service));
            m.insert("state".into(), json!(state));
            m.insert("tool".into(), json!("nmap"));
            m.insert("tool_version".into(), json!("7.93"));
            m.insert("ts".into(), json!(ts0 + rng.below(3600)));
            m.insert("vantage".into(), json!("AS64500/eu-central"));
            m.insert("version".into(), if version.is_empty() { Value::Null } else { json!(version) });
            // serde_json's Map is key-sorted and these values are ASCII strings
            // and integers, so `to_string` is already the JCS form.
            out.push_str(&Value::Object(m).to_string());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use xray_engine::config::EngineConfig;
    use xray_engine::contract::ScanPayload;
    use xray_engine::diff::EventType;
    use xray_engine::identity::RiskBucket;
    use xray_engine::memory::MemoryStore;
    use xray_engine::normalize::normalize;

    #[test]
    fn generation_is_deterministic_and_valid() {
        let a = Fleet::generate(7, 300, 0);
        let b = Fleet::generate(7, 300, 0);
        assert_eq!(a.payload(0), b.payload(0));
        assert_ne!(Fleet::generate(8, 300, 0).payload(0), a.payload(0));
        assert_eq!(a.endpoint_count(), 300);
        let p = ScanPayload::from_value(&a.payload(0)).expect("valid payload");
        let xs = normalize(&p, &EngineConfig::default());
        let buckets: BTreeSet<RiskBucket> = xs.iter().map(|x| x.risk_bucket).collect();
        assert_eq!(buckets.len(), 7, "every bucket occurs: {buckets:?}");
    }

    #[test]
    fn rescan_is_quiet_and_churn_produces_every_event_type() {
        let c = EngineConfig::default();
        let fleet = Fleet::generate(1, 600, 0);
        let mut store = MemoryStore::default();
        let p0 = ScanPayload::from_value(&fleet.payload(0)).unwrap();
        let o0 = xray_engine::diff_scan(&p0, &store.prior_for(&p0), &c);
        assert!(o0.events.iter().all(|e| e.event_type == EventType::New));
        store.apply(&o0);
        let p1 = ScanPayload::from_value(&fleet.payload(1)).unwrap();
        let o1 = xray_engine::diff_scan(&p1, &store.prior_for(&p1), &c);
        assert!(o1.events.is_empty(), "no-change rescan: {:?}", o1.events.first());
        assert!(o1.held_open.is_empty());
        store.apply(&o1);
        let (churned, stats) = fleet.churn(0.1, 1);
        assert_eq!(stats.endpoints_changed, 60);
        let p2 = ScanPayload::from_value(&churned.payload(2)).unwrap();
        let o2 = xray_engine::diff_scan(&p2, &store.prior_for(&p2), &c);
        let count = |t| o2.events.iter().filter(|e| e.event_type == t).count();
        assert!(count(EventType::New) > 0 && count(EventType::Changed) > 0 && count(EventType::Fixed) > 0,
                "new {} changed {} fixed {}", count(EventType::New), count(EventType::Changed), count(EventType::Fixed));
        assert!(o2.held_open.is_empty(), "every fix is proven: {:?}", o2.held_open.first());
    }

    #[test]
    fn text_is_the_value_serialised() {
        let fleet = Fleet::generate(9, 200, 0);
        assert_eq!(fleet.payload_text(3), fleet.payload(3).to_string());
        assert_eq!(fleet.payload_text_shard(1, 2, 3), fleet.payload_shard(1, 2, 3).to_string());
        assert_eq!(fleet.payload(1)["scan"]["scan_id"], json!(fleet.scan_id(1, 0)));
    }

    #[test]
    fn shards_partition_the_assets() {
        let fleet = Fleet::generate(5, 1000, 0);
        let mut seen = Vec::new();
        let mut scan_ids = BTreeSet::new();
        for shard in 0..4 {
            let p = ScanPayload::from_value(&fleet.payload_shard(0, shard, 4)).unwrap();
            let n: usize = p.asset_results.iter().map(|a| a.endpoints.len()).sum();
            assert!((200..=300).contains(&n), "shard {shard} has {n} endpoints");
            seen.extend(p.scope_asset_ids());
            scan_ids.insert(p.scan.scan_id);
        }
        assert_eq!(scan_ids.len(), 4);
        let all = ScanPayload::from_value(&fleet.payload(0)).unwrap().scope_asset_ids();
        seen.sort();
        assert_eq!(seen, all);
    }

    #[test]
    fn scanprint_lines_are_jcs_objects() {
        let text = scanprint_jsonl(3, 20_000);
        assert!(text.len() >= 20_000);
        for line in text.lines().take(50) {
            assert_eq!(nweb::jcs::canonicalize_str(line).unwrap(), line);
        }
        nweb::merkle::scanprint_merkle_root(&text).unwrap();
    }
}
