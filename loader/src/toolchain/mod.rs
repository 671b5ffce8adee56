//! Scanner toolchains. A toolchain turns the endpoints of a scan (addresses,
//! maybe with the domain each was resolved from) into contract observations,
//! tool errors and the coverage of what it actually checked (docs/design.md D3).
//!
//! Two chains:
//! - [`pd::PdToolchain`]: naabu → httpx + tlsx → nuclei (ProjectDiscovery),
//!   each stage run once over every endpoint of the scan.
//! - [`nmap::NmapToolchain`]: one `nmap -sV --script ssl-cert,ssl-enum-ciphers,
//!   http-headers,http-title,xray-http-status` run per endpoint, read by the
//!   workspace's nmap XML reader (`xray_parsers::nmap`, shared with nweb
//!   scanprint). It fills `ports.tcp`, `findings.nmap`, `tls` and `http` and
//!   declares `coverage.tools = ["nmap"]`.
//!
//! Symptom detection, coverage bookkeeping and payload assembly work on
//! [`EndpointResult`] whatever the chain. [`AnyToolchain`] is the one the
//! configuration picked.

pub mod nmap;
pub mod pd;
pub mod runner;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::time::Instant;

use indicatif::ProgressBar;

use serde_json::{Map, Value};
use xray_engine::contract::{
    Coverage, ErrorEntry, HttpObservation, NmapFinding, NucleiFinding, PortObservation, Timestamp, TlsObservation,
};

/// One address to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointTarget {
    pub ip: IpAddr,
    /// The domain asset this address was resolved from (vhost, SNI).
    pub domain: Option<String>,
    pub ports: Vec<u16>,
}

impl EndpointTarget {
    /// What the payload calls the endpoint: the domain when there is one.
    pub fn host(&self) -> String {
        match &self.domain {
            Some(d) => d.clone(),
            None => self.ip.to_string(),
        }
    }

    /// `ip:port` with IPv6 brackets: what a probe connects to. Never the
    /// name, which a tool would resolve again, to any of its addresses.
    pub fn ip_port(&self, port: u16) -> String {
        std::net::SocketAddr::new(self.ip, port).to_string()
    }

    /// The host part of the endpoint's URLs (IPv6 in brackets).
    pub fn url_host(&self) -> String {
        match (&self.domain, self.ip) {
            (Some(d), _) => d.clone(),
            (None, IpAddr::V6(v6)) => format!("[{v6}]"),
            (None, ip) => ip.to_string(),
        }
    }

    /// `host:port` with IPv6 brackets: how the endpoint's URLs are written.
    pub fn host_port(&self, port: u16) -> String {
        match &self.domain {
            Some(d) => format!("{d}:{port}"),
            None => self.ip_port(port),
        }
    }
}

/// An observation plus contract fields its typed struct does not model
/// (merged into the serialised JSON).
#[derive(Debug, Clone)]
pub struct Observed<T> {
    pub obs: T,
    pub extra: Map<String, Value>,
}

impl<T: serde::Serialize> Observed<T> {
    pub fn new(obs: T) -> Self {
        Observed { obs, extra: Map::new() }
    }

    pub fn to_value(&self) -> Value {
        let mut v = serde_json::to_value(&self.obs).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            for (k, x) in &self.extra {
                m.entry(k.clone()).or_insert_with(|| x.clone());
            }
        }
        v
    }
}

/// Everything a toolchain learned about one endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointResult {
    pub tcp: Vec<PortObservation>,
    pub udp: Vec<PortObservation>,
    pub http: Vec<Observed<HttpObservation>>,
    pub tls: Vec<Observed<TlsObservation>>,
    pub nuclei: Vec<NucleiFinding>,
    /// `extra.service_method` is nmap's `probed` or `table` (a guess from
    /// the port number).
    pub nmap: Vec<Observed<NmapFinding>>,
    pub errors: Vec<ErrorEntry>,
    /// Only what ran to completion; a failed tool adds nothing here.
    pub coverage: Coverage,
}

/// How a scan may spend its time.
#[derive(Clone)]
pub struct RunLimits {
    /// Tool processes run at the same time.
    pub parallel: usize,
    /// No tool is started after this.
    pub deadline: Instant,
    /// Ticked once per endpoint that is done.
    pub progress: Option<ProgressBar>,
}

/// One endpoint's result and when it was scanned.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub result: EndpointResult,
    pub started: Timestamp,
    pub finished: Timestamp,
}

pub fn now() -> Timestamp {
    Timestamp(chrono::Utc::now())
}

pub trait Toolchain: Send + Sync {
    /// For logs and `scan.worker`.
    fn name(&self) -> &'static str;

    /// Versions of the tools this chain uses (`None` when unknown).
    fn tool_versions(&self) -> impl Future<Output = BTreeMap<String, Option<String>>> + Send;

    /// One entry per target, in order; `None` for a target the deadline left
    /// unscanned.
    fn scan(&self, targets: &[EndpointTarget], limits: &RunLimits) -> impl Future<Output = Vec<Option<Scanned>>> + Send;
}

/// The toolchain the configuration picked.
pub enum AnyToolchain<R> {
    Pd(pd::PdToolchain<R>),
    Nmap(nmap::NmapToolchain<R>),
}

impl<R: runner::CommandRunner> Toolchain for AnyToolchain<R> {
    fn name(&self) -> &'static str {
        match self {
            AnyToolchain::Pd(c) => c.name(),
            AnyToolchain::Nmap(c) => c.name(),
        }
    }

    async fn tool_versions(&self) -> BTreeMap<String, Option<String>> {
        match self {
            AnyToolchain::Pd(c) => c.tool_versions().await,
            AnyToolchain::Nmap(c) => c.tool_versions().await,
        }
    }

    async fn scan(&self, targets: &[EndpointTarget], limits: &RunLimits) -> Vec<Option<Scanned>> {
        match self {
            AnyToolchain::Pd(c) => c.scan(targets, limits).await,
            AnyToolchain::Nmap(c) => c.scan(targets, limits).await,
        }
    }
}
