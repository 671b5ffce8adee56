//! Scanner toolchains. A toolchain turns one endpoint (an address, maybe with
//! the domain it was resolved from) into contract observations, tool errors
//! and the coverage of what it actually checked (design D3).
//!
//! Two chains are planned:
//! - [`pd::PdToolchain`]: naabu → httpx + tlsx → nuclei (ProjectDiscovery).
//! - nmap: a `NmapToolchain` implementing [`Toolchain`] with `nmap -sV
//!   --script ssl-cert,ssl-enum-ciphers,http-headers` and the nmap-XML parser
//!   in `xray_core::nweb`. It fills `ports.tcp`, `findings.nmap`, `tls` and
//!   `http` from the XML and declares `coverage.tools = ["nmap"]`. Nothing
//!   else in the loader needs to change: symptom detection, coverage
//!   bookkeeping and payload assembly work on [`EndpointResult`].

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
    pub nmap: Vec<NmapFinding>,
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
