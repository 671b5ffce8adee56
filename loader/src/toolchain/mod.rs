//! Scanner toolchains. A toolchain turns one endpoint (an address, maybe with
//! the domain it was resolved from) into contract observations, tool errors
//! and the coverage of what it actually checked (design D3).
//!
//! Two chains:
//! - [`pd::PdToolchain`]: naabu → httpx + tlsx → nuclei (ProjectDiscovery).
//! - [`nmap::NmapToolchain`]: one `nmap -sV --script ssl-cert,ssl-enum-ciphers,
//!   http-headers,http-title,xray-http-status` run, read by the workspace's
//!   nmap XML reader (`xray_core::tools::nmap`, shared with nweb scanprint).
//!   It fills `ports.tcp`, `findings.nmap`, `tls` and `http` and declares
//!   `coverage.tools = ["nmap"]`.
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

use serde_json::{Map, Value};
use xray_core::contract::{
    Coverage, ErrorEntry, HttpObservation, NmapFinding, NucleiFinding, PortObservation, TlsObservation,
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
    /// What the tools are pointed at: the domain when there is one.
    pub fn host(&self) -> String {
        match &self.domain {
            Some(d) => d.clone(),
            None => self.ip.to_string(),
        }
    }

    /// `host:port` with IPv6 brackets.
    pub fn host_port(&self, port: u16) -> String {
        match (&self.domain, self.ip) {
            (None, IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
            _ => format!("{}:{port}", self.host()),
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

pub trait Toolchain: Send + Sync {
    /// For logs and `scan.worker`.
    fn name(&self) -> &'static str;

    /// Versions of the tools this chain uses (`None` when unknown).
    fn tool_versions(&self) -> impl Future<Output = BTreeMap<String, Option<String>>> + Send;

    fn scan_endpoint(&self, target: &EndpointTarget) -> impl Future<Output = EndpointResult> + Send;
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

    async fn scan_endpoint(&self, target: &EndpointTarget) -> EndpointResult {
        match self {
            AnyToolchain::Pd(c) => c.scan_endpoint(target).await,
            AnyToolchain::Nmap(c) => c.scan_endpoint(target).await,
        }
    }
}
