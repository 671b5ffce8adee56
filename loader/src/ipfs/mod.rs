//! Getting bundles as verified CARs (docs/design.md D7), from three kinds of source, tried in
//! order: the local CAR directory (the embedded default), a Kubo node, and trustless
//! gateways (`?format=car`).
//!
//! No source is trusted. Every CAR goes through the nweb crate's reader, which hashes every
//! block against its CID, and then every block reachable from the requested root must be
//! present: a gateway may cut the stream after its 200, so a truncated CAR is a failure.
//! Only then is the DAG unpacked. A source that sends a corrupted or incomplete CAR has
//! failed, not the bundle: the next source is tried, and when none delivers the bundle is
//! unavailable (CID_UNAVAILABLE, a verdict a later fetch may overturn), never "invalid
//! content" on the word of one bad gateway.

#[cfg(test)]
pub(crate) mod hostile_dag;
pub mod hoarder;
pub mod kubo;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use nweb::car;
use nweb::unixfs;
use nweb::Cid;

use crate::chain::config::{redact, IpfsConfig};
use kubo::Kubo;

/// The CAR media type of the trustless-gateway spec, as clients should ask for it.
pub const CAR_ACCEPT: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=y";
/// The spec's liveness probe: the empty identity CID.
pub const PROBE_CID: &str = "bafkqaaa";

/// A CAR whose blocks all hash to their CIDs and which holds every block under the root.
#[derive(Debug, Clone)]
pub struct VerifiedCar {
    pub root: Cid,
    /// The canonical CARv1 of the DAG: reachable blocks only, each once, depth-first.
    pub bytes: Vec<u8>,
    /// SHA-256 of the binary CIDs of the DAG's blocks, sorted: the same whatever source
    /// served it (the AvailabilityCheck `fetchDigest`).
    pub digest: [u8; 32],
    pub blocks: usize,
    /// Why the DAG, complete and intact, is not a readable bundle directory (a fact about
    /// the content: FORMAT_INVALID). `None` for a directory.
    pub content_error: Option<String>,
}

/// Why a source's CAR was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarError {
    /// The source failed: corrupted, truncated, incomplete or not a CAR. Says nothing
    /// about the bundle.
    Source(String),
    /// We stopped: the CAR passed one of our own bounds (`NwebError::Limit`). Says
    /// nothing about the bundle or the source either (docs/design.md D40).
    Limit(String),
}

impl std::fmt::Display for CarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CarError::Source(e) => f.write_str(e),
            CarError::Limit(e) => write!(f, "{LIMIT_PREFIX}{e}"),
        }
    }
}

/// Opens every detail of a "not checked, over our limit" outcome, in probes and in
/// nweb.availability_checks.reason_detail.
pub const LIMIT_PREFIX: &str = "LOCAL_LIMIT: ";

fn car_err(e: nweb::NwebError) -> CarError {
    if e.is_limit() {
        CarError::Limit(e.to_string())
    } else {
        CarError::Source(e.to_string())
    }
}

/// Checks a CAR as received. `Err` means the source failed or we stopped at one of our
/// limits; it never says anything about the bundle.
pub fn verify_car(bytes: &[u8], root: &Cid, max_bytes: u64) -> Result<VerifiedCar, CarError> {
    let parsed = car::read_car(bytes).map_err(car_err)?;
    let map: HashMap<Cid, Vec<u8>> = parsed.block_map();
    // Every block reachable from the root, and only those.
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    let mut content_error = None;
    while let Some(c) = stack.pop() {
        if c.hash().code() == unixfs::IDENTITY || !seen.insert(c) {
            continue;
        }
        let Some(data) = map.get(&c) else {
            return Err(CarError::Source(format!(
                "block {c}: missing: not among the blocks received (truncated or incomplete CAR)"
            )));
        };
        match unixfs::links_of(&c, data) {
            Ok(children) => stack.extend(children),
            Err(e) if e.is_limit() => return Err(CarError::Limit(e.to_string())),
            // The block is what its CID names, yet not valid dag-pb: the content is bad.
            Err(e) => {
                content_error.get_or_insert(e.to_string());
            }
        }
    }
    let mut cids: Vec<Vec<u8>> = seen.iter().map(|c| c.to_bytes()).collect();
    cids.sort();
    let mut h = Sha256::new();
    for c in &cids {
        h.update(c);
    }
    let digest: [u8; 32] = h.finalize().into();
    let blocks: Vec<unixfs::Block> = parsed.blocks.into_iter().filter(|b| seen.contains(&b.cid)).collect();
    let canonical = if content_error.is_none() {
        car::write_car(root, &blocks).map_err(car_err)?
    } else {
        bytes.to_vec()
    };
    if content_error.is_none() {
        // A limit is our decision not to read that much, never a FORMAT_INVALID.
        match unixfs::unpack_directory(root, &map, max_bytes) {
            Ok(_) => {}
            Err(e) if e.is_limit() => return Err(CarError::Limit(e.to_string())),
            Err(e) => content_error = Some(e.to_string()),
        }
    }
    Ok(VerifiedCar {
        root: *root,
        bytes: canonical,
        digest,
        blocks: seen.len(),
        content_error,
    })
}

/// The outcome of one source for one CID (one element of availability_checks.probes).
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub source: String,
    /// Gateways only: the `bafkqaaa` liveness probe answered 200 with an empty body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness: Option<bool>,
    /// Gateways only: `only-if-cached` answered 200 (true) or 412 (false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    /// A complete CAR whose every block matched its CID.
    pub car: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub bytes: u64,
    pub ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// We stopped at our own bound (size cap, decoder limit, our timeout): says nothing
    /// about the bundle.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub limit: bool,
}

impl Attempt {
    fn fail(&mut self, e: CarError) {
        self.limit = matches!(e, CarError::Limit(_));
        self.error = Some(e.to_string());
    }

    /// A gateway that answered its liveness probe and then did not deliver the CID whole,
    /// within our limits: its word that the CID is unavailable there.
    pub fn unavailable_evidence(&self) -> bool {
        self.liveness == Some(true) && !self.car && !self.limit
    }
}

/// Everything tried for one CID.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub car: Option<VerifiedCar>,
    pub attempts: Vec<Attempt>,
}

impl Fetched {
    pub fn ok_count(&self) -> usize {
        self.attempts.iter().filter(|a| a.car).count()
    }

    /// When nothing delivered and some source stopped at our own limit, what it was.
    pub fn limit_detail(&self) -> Option<String> {
        if self.car.is_some() {
            return None;
        }
        let parts: Vec<String> = self
            .attempts
            .iter()
            .filter(|a| a.limit)
            .map(|a| {
                let e = a.error.as_deref().unwrap_or("over our limit");
                format!("{}: {}", a.source, e.strip_prefix(LIMIT_PREFIX).unwrap_or(e))
            })
            .collect();
        (!parts.is_empty()).then(|| format!("{LIMIT_PREFIX}not checked, over our limit: {}", parts.join("; ")))
    }

    /// Gateways whose answer is evidence that the CID is unavailable there.
    pub fn unavailable_at(&self) -> Vec<String> {
        self.attempts
            .iter()
            .filter(|a| a.unavailable_evidence())
            .map(|a| a.source.clone())
            .collect()
    }

    /// One line for nweb.bundles.reason_detail when nothing delivered.
    pub fn failure_detail(&self) -> String {
        if self.attempts.is_empty() {
            return "no source is configured (ipfs.gateways, ipfs.kubo_api or ipfs.car_dir)".into();
        }
        let parts: Vec<String> = self
            .attempts
            .iter()
            .map(|a| format!("{}: {}", a.source, a.error.as_deref().unwrap_or("no verified CAR")))
            .collect();
        format!("no source delivered it intact: {}", parts.join("; "))
    }
}

#[derive(Debug, Clone)]
enum Source {
    Local(PathBuf),
    Kubo(Kubo),
    Gateway(url::Url),
}

impl Source {
    fn shown(&self) -> String {
        match self {
            Source::Local(p) => format!("local:{}", p.display()),
            Source::Kubo(k) => format!("kubo:{}", k.shown()),
            Source::Gateway(u) => redact(u),
        }
    }
}

/// The configured sources and one HTTP client for all of them.
#[derive(Debug, Clone)]
pub struct Sources {
    list: Vec<Source>,
    http: reqwest::Client,
    pub timeout: Duration,
    pub max_bytes: u64,
    pub car_dir: Option<PathBuf>,
    pub kubo: Option<Kubo>,
}

pub fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .user_agent(concat!("xray-loader/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow!("cannot build the HTTP client: {}", e.without_url()))
}

/// A reqwest error without the URL, which may carry credentials.
pub fn http_err(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(&format!(": {t}"));
        }
        src = inner.source();
    }
    s
}

/// `base` + `ipfs/<cid>`, keeping a path prefix the base may have.
fn gateway_url(base: &url::Url, path: &str, query: &str) -> url::Url {
    let mut u = base.clone();
    let mut p = u.path().trim_end_matches('/').to_string();
    p.push('/');
    p.push_str(path);
    u.set_path(&p);
    u.set_query(Some(query));
    u
}

/// Reads a body with a size cap and an idle timeout (no new bytes for `idle`).
pub(crate) async fn read_capped(mut resp: reqwest::Response, cap: u64, idle: Duration) -> Result<Vec<u8>, CarError> {
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout(idle, resp.chunk()).await {
            Err(_) => {
                return Err(CarError::Limit(format!(
                    "no new bytes for our {} s after {} bytes",
                    idle.as_secs(),
                    buf.len()
                )))
            }
            Ok(Err(e)) => return Err(CarError::Source(format!("after {} bytes: {}", buf.len(), http_err(e)))),
            Ok(Ok(None)) => return Ok(buf),
            Ok(Ok(Some(chunk))) => {
                buf.extend_from_slice(&chunk);
                if buf.len() as u64 > cap {
                    return Err(CarError::Limit(format!("more than our cap of {cap} bytes; refused")));
                }
            }
        }
    }
}

impl Sources {
    pub fn new(cfg: &IpfsConfig) -> Result<Sources> {
        let http = http_client(cfg.timeout)?;
        let mut list = Vec::new();
        if let Some(d) = &cfg.car_dir {
            list.push(Source::Local(d.clone()));
        }
        let kubo = cfg
            .kubo_api
            .as_ref()
            .map(|u| Kubo::new(u.clone(), http.clone(), cfg.timeout));
        if let Some(k) = &kubo {
            list.push(Source::Kubo(k.clone()));
        }
        for g in &cfg.gateways {
            list.push(Source::Gateway(g.clone()));
        }
        Ok(Sources {
            list,
            http,
            timeout: cfg.timeout,
            max_bytes: cfg.max_bundle_bytes,
            car_dir: cfg.car_dir.clone(),
            kubo,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// A CAR is a little bigger than its files.
    fn car_cap(&self) -> u64 {
        self.max_bytes
            .saturating_add(self.max_bytes / 16)
            .saturating_add(1 << 20)
    }

    /// Tries the sources in order and stops at the first verified CAR (the indexer).
    pub async fn fetch(&self, cid: &Cid) -> Fetched {
        self.run(cid, false).await
    }

    /// Tries every network source, gateways with the liveness and cache probes first (the
    /// slasher). The local CAR directory is left out: a copy on this machine says nothing
    /// about whether the network can serve the bundle.
    pub async fn probe(&self, cid: &Cid) -> Fetched {
        self.run(cid, true).await
    }

    /// Whether there is a network source (a gateway or Kubo) to probe.
    pub fn has_network(&self) -> bool {
        self.list.iter().any(|s| !matches!(s, Source::Local(_)))
    }

    async fn run(&self, cid: &Cid, all: bool) -> Fetched {
        let mut out = Fetched::default();
        for s in &self.list {
            if all && matches!(s, Source::Local(_)) {
                continue;
            }
            let started = Instant::now();
            let mut a = Attempt {
                source: s.shown(),
                liveness: None,
                cached: None,
                car: false,
                status: None,
                bytes: 0,
                ms: 0,
                error: None,
                limit: false,
            };
            if all {
                if let Source::Gateway(base) = s {
                    a.liveness = Some(self.liveness(base).await);
                    if a.liveness == Some(false) {
                        a.error = Some("liveness probe failed (GET /ipfs/bafkqaaa?format=raw)".into());
                        a.ms = started.elapsed().as_millis() as u64;
                        out.attempts.push(a);
                        continue;
                    }
                    a.cached = self.cached(base, cid).await;
                }
            }
            let got = match s {
                Source::Local(dir) => self.local(dir, cid).await,
                Source::Kubo(k) => k
                    .dag_export(cid, self.car_cap())
                    .await
                    .map_err(|e| {
                        let e = format!("{e:#}");
                        match e.find(LIMIT_PREFIX) {
                            Some(i) => (None, CarError::Limit(format!("{}{}", &e[..i], &e[i + LIMIT_PREFIX.len()..]))),
                            None => (None, CarError::Source(e)),
                        }
                    }),
                Source::Gateway(base) => self.gateway_car(base, cid).await,
            };
            match got {
                Ok(bytes) => {
                    a.bytes = bytes.len() as u64;
                    match verify_car(&bytes, cid, self.max_bytes) {
                        Ok(v) => {
                            a.car = true;
                            if out.car.is_none() {
                                out.car = Some(v);
                            }
                        }
                        Err(e) => a.fail(e),
                    }
                }
                Err((status, e)) => {
                    a.status = status;
                    a.fail(e);
                }
            }
            if let Source::Gateway(_) = s {
                if a.status.is_none() && a.error.is_none() {
                    a.status = Some(200);
                }
            }
            a.ms = started.elapsed().as_millis() as u64;
            if let Some(e) = &a.error {
                tracing::info!(cid = %cid, source = %a.source, error = %e, "source failed");
            } else {
                tracing::debug!(cid = %cid, source = %a.source, bytes = a.bytes, ms = a.ms, blocks = out.car.as_ref().map_or(0, |c| c.blocks), "verified CAR");
            }
            let done = a.car && !all;
            out.attempts.push(a);
            if done {
                break;
            }
        }
        out
    }

    async fn local(&self, dir: &Path, cid: &Cid) -> Result<Vec<u8>, (Option<u16>, CarError)> {
        let path = dir.join(format!("{cid}.car"));
        match std::fs::metadata(&path) {
            Err(_) => return Err((None, CarError::Source("not in the CAR directory".into()))),
            Ok(m) if m.len() > self.car_cap() => {
                return Err((None, CarError::Limit(format!("{} bytes, more than our cap of {}", m.len(), self.car_cap()))))
            }
            Ok(_) => {}
        }
        std::fs::read(&path).map_err(|e| (None, CarError::Source(format!("cannot read {}: {e}", path.display()))))
    }

    async fn gateway_car(&self, base: &url::Url, cid: &Cid) -> Result<Vec<u8>, (Option<u16>, CarError)> {
        let url = gateway_url(base, &format!("ipfs/{cid}"), "format=car&dag-scope=all");
        // Our timeout is our patience, not the gateway's answer: a limit. A gateway that
        // gives up itself answers with a status (504), which is its word.
        let resp = tokio::time::timeout(
            self.timeout,
            self.http.get(url).header(reqwest::header::ACCEPT, CAR_ACCEPT).send(),
        )
        .await
        .map_err(|_| (None, CarError::Limit(format!("no answer within our {} s", self.timeout.as_secs()))))?
        .map_err(|e| (None, CarError::Source(http_err(e))))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err((Some(status), CarError::Source(format!("HTTP {status}"))));
        }
        read_capped(resp, self.car_cap(), self.timeout)
            .await
            .map_err(|e| (Some(status), e))
    }

    /// `GET /ipfs/bafkqaaa?format=raw` must answer 200 with an empty body.
    async fn liveness(&self, base: &url::Url) -> bool {
        let url = gateway_url(base, &format!("ipfs/{PROBE_CID}"), "format=raw");
        let Ok(Ok(resp)) = tokio::time::timeout(self.timeout, self.http.get(url).send()).await else {
            return false;
        };
        if resp.status().as_u16() != 200 {
            return false;
        }
        matches!(read_capped(resp, 1024, self.timeout).await, Ok(b) if b.is_empty())
    }

    /// `HEAD /ipfs/<cid>?format=raw` with `Cache-Control: only-if-cached`: 200 if the
    /// gateway has the root block, 412 if not, without making it fetch anything.
    async fn cached(&self, base: &url::Url, cid: &Cid) -> Option<bool> {
        let url = gateway_url(base, &format!("ipfs/{cid}"), "format=raw");
        let req = self
            .http
            .head(url)
            .header(reqwest::header::CACHE_CONTROL, "only-if-cached");
        let resp = tokio::time::timeout(self.timeout, req.send()).await.ok()?.ok()?;
        match resp.status().as_u16() {
            200 => Some(true),
            412 => Some(false),
            _ => None,
        }
    }

    /// Keeps a verified CAR in the CAR directory (written whole and fsynced, then renamed).
    pub fn keep(&self, v: &VerifiedCar) -> Result<Option<PathBuf>> {
        let Some(dir) = &self.car_dir else {
            return Ok(None);
        };
        write_car_file(dir, v).map(Some)
    }
}

/// Writes `<dir>/<cid>.car` atomically; an existing file is left alone.
pub fn write_car_file(dir: &Path, v: &VerifiedCar) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.car", v.root));
    if path.exists() {
        return Ok(path);
    }
    crate::fsutil::write_atomically(&path, &v.bytes)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nweb::unixfs::{import_directory, import_file, ImportParams};

    fn bundle() -> (Cid, Vec<u8>, Vec<unixfs::Block>) {
        let big: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
        let files: Vec<(&str, &[u8])> = vec![
            ("manifest.json", b"{}"),
            ("raw/nmap.xml", &big),
            ("scanprint/scanprint.v0.jsonl", b"{\"ip\":\"192.0.2.1\"}\n"),
        ];
        let dag = import_directory(&files, ImportParams::KUBO).unwrap();
        let car = car::write_car(&dag.root, &dag.blocks).unwrap();
        (dag.root, car, dag.blocks)
    }

    #[test]
    fn an_intact_car_is_verified_and_its_digest_does_not_depend_on_order() {
        let (root, bytes, blocks) = bundle();
        let v = verify_car(&bytes, &root, u64::MAX).unwrap();
        assert_eq!(v.root, root);
        assert_eq!(v.blocks, blocks.len());
        assert!(v.content_error.is_none());
        assert_eq!(v.bytes, bytes, "already canonical");
        // The same blocks in another order, with a duplicate and an extra block.
        let mut shuffled = blocks.clone();
        shuffled.reverse();
        let extra = import_file(b"unrelated", ImportParams::KUBO);
        let mut car2 = Vec::new();
        let head = car::write_car(&root, &blocks).unwrap();
        let first = {
            let mut p = 0usize;
            let mut n = 0u64;
            let mut shift = 0;
            loop {
                let b = head[p];
                p += 1;
                n |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    break;
                }
                shift += 7;
            }
            p + n as usize
        };
        car2.extend_from_slice(&head[..first]);
        for b in shuffled.iter().chain(shuffled.first()).chain(extra.blocks.iter()) {
            let c = b.cid.to_bytes();
            let mut len = (c.len() + b.data.len()) as u64;
            while len >= 0x80 {
                car2.push((len as u8) | 0x80);
                len >>= 7;
            }
            car2.push(len as u8);
            car2.extend(c);
            car2.extend(&b.data);
        }
        let v2 = verify_car(&car2, &root, u64::MAX).unwrap();
        assert_eq!(v2.digest, v.digest);
        assert_eq!(v2.bytes, bytes, "re-written canonically, extra block dropped");
    }

    #[test]
    fn corruption_and_truncation_are_source_failures() {
        let (root, bytes, blocks) = bundle();
        let leaf = blocks
            .iter()
            .find(|b| b.cid.codec() == unixfs::RAW && b.data.len() == 262_144)
            .unwrap();
        let lb = leaf.cid.to_bytes();
        let at = bytes.windows(lb.len()).rposition(|w| w == lb).unwrap() + lb.len() + 100;
        let mut bad = bytes.clone();
        bad[at] ^= 0xff;
        let e = verify_car(&bad, &root, u64::MAX).unwrap_err().to_string();
        assert!(
            e.contains(&leaf.cid.to_string()) && e.contains("do not hash to its CID"),
            "{e}"
        );
        // Cut between two sections: every block read verifies, one is missing.
        let e = verify_car(&bytes[..bytes.len() - 20], &root, u64::MAX).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        // Cut exactly between two sections: every block read verifies, but the last one
        // is missing. That is a failed transfer, not a malformed bundle.
        let last = &blocks.iter().find(|b| {
            let cb = b.cid.to_bytes();
            bytes.windows(cb.len()).rposition(|w| w == cb).is_some_and(|i| {
                // the section of this block ends the file
                i + cb.len() + b.data.len() == bytes.len()
            })
        });
        let last = last.expect("some block is last");
        let cut = bytes.len() - last.data.len() - last.cid.to_bytes().len() - 1;
        assert!(car::read_car(&bytes[..cut]).is_ok(), "the cut is on a section boundary");
        let e = verify_car(&bytes[..cut], &root, u64::MAX).unwrap_err().to_string();
        assert!(e.contains(&last.cid.to_string()) && e.contains("missing"), "{e}");
        // Another root than the one asked for.
        let other = import_file(b"x", ImportParams::KUBO).root;
        let e = verify_car(&bytes, &other, u64::MAX).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn a_file_instead_of_a_directory_is_a_content_error() {
        let dag = import_file(b"just a file\n", ImportParams::KUBO);
        let bytes = car::write_car(&dag.root, &dag.blocks).unwrap();
        let v = verify_car(&bytes, &dag.root, u64::MAX).unwrap();
        assert!(v.content_error.is_some());
    }

    #[test]
    fn our_limits_are_limits_not_content_errors() {
        // Over the bundle size cap: every block is intact, we chose not to read that much.
        let (root, bytes, _) = bundle();
        match verify_car(&bytes, &root, 100_000) {
            Err(CarError::Limit(e)) => assert!(e.contains("exceeds our limit"), "{e}"),
            other => panic!("expected our limit, got {other:?}"),
        }
        // Past a decoder limit of nweb (links per node): also ours, not the content's.
        let (root, car) = super::hostile_dag::hostile_dag();
        match verify_car(&car, &root, u64::MAX) {
            Err(CarError::Limit(e)) => assert!(e.contains("links in one node exceeds our limit"), "{e}"),
            other => panic!("expected our limit, got {other:?}"),
        }
        assert!(CarError::Limit("x".into()).to_string().starts_with(LIMIT_PREFIX));
    }

    #[test]
    fn gateway_urls_keep_a_prefix() {
        let u = url::Url::parse("https://gw.example/prefix/").unwrap();
        assert_eq!(
            gateway_url(&u, "ipfs/bafkqaaa", "format=raw").as_str(),
            "https://gw.example/prefix/ipfs/bafkqaaa?format=raw"
        );
        let u = url::Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            gateway_url(&u, "ipfs/x", "format=car&dag-scope=all").as_str(),
            "http://127.0.0.1:8080/ipfs/x?format=car&dag-scope=all"
        );
    }
}
