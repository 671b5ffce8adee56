//! nmap `-oX` output into contract observations (docs/contract.md §P-6) for one endpoint.
//!
//! The XML is read by [`xml`], the one nmap XML reader of the workspace (nweb
//! scanprint uses it too). This module maps a `-sV` run with the scripts
//! `ssl-cert`, `ssl-enum-ciphers`, `http-headers`, `http-title` and the
//! loader's `xray-http-status` onto the canonical shapes, with `tool: "nmap"`:
//!
//! | contract | from |
//! | --- | --- |
//! | `PortObservation` | every `<port>` of the endpoint's address; nmap's `open`, `closed` and `filtered` are kept, any other state (`open\|filtered`, `unfiltered`, ...) is `unknown` |
//! | `NmapFinding` | every open port: `-sV` service (`ssl/http` when tunnelled, as nmap writes it), product, version, script outputs; `extra` has `service_method` (`probed` or `table`) and `service_confidence` |
//! | `TlsObservation` | a port with `ssl-cert` or `ssl-enum-ciphers` output |
//! | `HttpObservation` | a port with `http-headers`, `http-title` or `xray-http-status` output |
//!
//! TLS:
//! - `tls_versions`: the protocol tables of `ssl-enum-ciphers` (`TLSv1.0` → `TLS1.0`).
//! - `cipher_classes` (only when `ssl-enum-ciphers` ran): nmap grades every
//!   offered suite A (best) to F. **insecure**: grade F, or a known-broken
//!   construction in the name whatever the grade (NULL, anon, EXPORT, RC4,
//!   RC2, single DES, MD5). **weak**: grade C, D or E and not insecure. A and
//!   B are acceptable. Each suite is listed once, in the worse class.
//! - `certificate` from the PEM that `ssl-cert` prints, read by
//!   [`super::cert`] exactly as tlsx's is. Without a PEM, from the script's
//!   fields: `subject_cn`, `issuer_cn`, `sans` (DNS names and IP addresses of
//!   the subjectAltName extension), `not_before` / `not_after` (nmap prints
//!   UTC without a zone; written with `Z`), `is_self_signed` = the issuer name
//!   equals the subject name, `cert_sha256` = nmap's `sha256` (7.94+).
//!
//! HTTP: `headers` are the `Name: value` lines of `http-headers` (lower-case
//! names, repeated names joined with ", "); `status_code` comes from
//! `xray-http-status`, which reads the status line of the same request
//! `http-headers` makes (nmap's HTTP cache serves it, nothing is sent twice).
//! Without it, `(Request type: HEAD)` still means 200: nmap's
//! `http.can_use_head` only accepts a HEAD answered with 200 and falls back
//! to GET otherwise. `title` comes from `http-title`. The scheme is https when
//! nmap found the service inside TLS.
//!
//! Coverage: a script that ran and printed nothing leaves no trace in the
//! XML, so only what printed counts: [`NmapObservations::tls_ports`] are the
//! ports where both `ssl-cert` and `ssl-enum-ciphers` printed (so both the
//! protocol list and the certificate are known), [`NmapObservations::http_urls`]
//! the URL roots where `http-headers` printed.

pub mod xml;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use super::parse_error;
use xray_engine::canon::{canonical_url_root, tls_version};
use xray_engine::contract::{
    Certificate, CipherClasses, ErrorEntry, HttpObservation, NmapFinding, PortObservation, Timestamp, TlsObservation,
};

pub use xml::{
    read_nmap_xml, NmapFinished, NmapHost, NmapPort, NmapRunInfo, NmapScript, NmapService, NmapXml, NmapXmlError,
    NmapXmlEvent, NmapXmlReader, ScriptTable, ScriptValue,
};

pub const TOOL: &str = "nmap";
pub const SSL_CERT: &str = "ssl-cert";
pub const SSL_ENUM_CIPHERS: &str = "ssl-enum-ciphers";
pub const HTTP_HEADERS: &str = "http-headers";
pub const HTTP_TITLE: &str = "http-title";
/// The loader's NSE script (`loader/nse/xray-http-status.nse`).
pub const HTTP_STATUS: &str = "xray-http-status";

/// An observation and the fields its contract struct does not model.
#[derive(Debug, Clone)]
pub struct NmapRecord<T> {
    pub observation: T,
    pub extra: Map<String, Value>,
}

/// What one nmap run says about one address.
#[derive(Debug, Clone, Default)]
pub struct NmapObservations {
    pub run: Option<NmapRunInfo>,
    /// `None` when nmap did not write its run statistics (killed, cut off).
    pub finished: Option<NmapFinished>,
    /// A complete `<host>` for the address, up, with a `<ports>` report.
    pub host_reported: bool,
    pub tcp: Vec<PortObservation>,
    pub udp: Vec<PortObservation>,
    pub findings: Vec<NmapRecord<NmapFinding>>,
    pub http: Vec<NmapRecord<HttpObservation>>,
    pub tls: Vec<NmapRecord<TlsObservation>>,
    /// Ports where `ssl-cert` and `ssl-enum-ciphers` both printed a result.
    pub tls_ports: Vec<u16>,
    /// Canonical URL roots where `http-headers` printed a result.
    pub http_urls: Vec<String>,
    /// `parse_error` entries (docs/contract.md §P-8), `tool = "nmap"`.
    pub errors: Vec<ErrorEntry>,
}

impl NmapObservations {
    /// nmap wrote `exit="success"` at the end of its output.
    pub fn completed(&self) -> bool {
        self.finished.as_ref().and_then(|f| f.exit.as_deref()) == Some("success")
    }
}

/// Maps the nmap XML of a scan of `ip` (the vhost / SNI name `domain`, if
/// any) onto contract observations. Hosts other than `ip` are ignored.
pub fn parse_nmap(text: &str, ip: IpAddr, domain: Option<&str>) -> NmapObservations {
    let mut out = NmapObservations::default();
    let mut reader = NmapXmlReader::new(text);
    let mut hosts = Vec::new();
    for ev in reader.by_ref() {
        match ev {
            NmapXmlEvent::Run(r) => out.run = Some(r),
            NmapXmlEvent::Finished(f) => out.finished = Some(f),
            NmapXmlEvent::Error(e) => out.errors.push(parse_error(TOOL, e.line, e.message)),
            NmapXmlEvent::Host(h) => {
                if h.address().and_then(|a| a.trim().parse::<IpAddr>().ok()) == Some(ip) {
                    hosts.push(h);
                }
            }
        }
    }
    if !reader.saw_nmaprun() {
        out.errors.push(parse_error(
            TOOL,
            1,
            "no <nmaprun> element: this is not nmap XML output",
        ));
        return out;
    }
    let host_name = match (domain, ip) {
        (Some(d), _) => d.to_string(),
        (None, IpAddr::V6(v6)) => format!("[{v6}]"),
        (None, IpAddr::V4(v4)) => v4.to_string(),
    };
    let mut seen: BTreeSet<(String, u16)> = BTreeSet::new();
    let mut tls_ports = BTreeSet::new();
    let mut http_urls = BTreeSet::new();
    for h in hosts {
        if h.has_ports && h.status.as_deref().is_none_or(|s| s == "up") {
            out.host_reported = true;
        }
        for p in &h.ports {
            let Some(proto) = p.protocol.clone().filter(|s| !s.is_empty()) else {
                out.errors
                    .push(parse_error(TOOL, p.line, format!("host {ip}: port has no protocol")));
                continue;
            };
            let Some(port) = p.portid.as_deref().and_then(|s| s.trim().parse::<u16>().ok()) else {
                out.errors.push(parse_error(
                    TOOL,
                    p.line,
                    format!(
                        "host {ip}: portid {:?} is not a port number",
                        p.portid.as_deref().unwrap_or("")
                    ),
                ));
                continue;
            };
            let Some(state) = p.state.clone().filter(|s| !s.is_empty()) else {
                out.errors.push(parse_error(
                    TOOL,
                    p.line,
                    format!("host {ip}: port {port}/{proto} has no state"),
                ));
                continue;
            };
            if !seen.insert((proto.clone(), port)) {
                continue;
            }
            let obs = PortObservation {
                tool: Some(TOOL.into()),
                protocol: Some(proto.clone()),
                port,
                state: contract_state(&state).into(),
                verified: None,
                reason: p
                    .reason
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .map(|r| r.replace('-', "_")),
                ttl: None,
                rtt_ms: None,
            };
            if proto == "udp" {
                out.udp.push(obs);
            } else {
                out.tcp.push(obs);
            }
            if state != "open" {
                continue;
            }
            out.findings.push(finding(ip, port, &proto, &state, p));
            if let Some(t) = tls_observation(ip, &host_name, domain, port, p) {
                out.tls.push(t);
            }
            if p.script(SSL_CERT).is_some() && p.script(SSL_ENUM_CIPHERS).is_some() {
                tls_ports.insert(port);
            }
            if let Some(h) = http_observation(ip, &host_name, port, p) {
                if p.script(HTTP_HEADERS).is_some() {
                    http_urls.extend(canonical_url_root(&h.observation.url));
                }
                out.http.push(h);
            }
        }
    }
    out.tcp.sort_by_key(|o| o.port);
    out.udp.sort_by_key(|o| o.port);
    out.tls_ports = tls_ports.into_iter().collect();
    out.http_urls = http_urls.into_iter().collect();
    out
}

fn contract_state(nmap: &str) -> &'static str {
    match nmap {
        "open" => "open",
        "closed" => "closed",
        "filtered" => "filtered",
        _ => "unknown",
    }
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn finding(ip: IpAddr, port: u16, proto: &str, state: &str, p: &NmapPort) -> NmapRecord<NmapFinding> {
    let svc = p.service.clone().unwrap_or_default();
    // nmap's own notation for a service inside TLS, as in its normal output.
    let service = nonempty(&svc.name).map(|name| match nonempty(&svc.tunnel) {
        Some(t) if !name.starts_with(&format!("{t}/")) => format!("{t}/{name}"),
        _ => name,
    });
    let scripts: BTreeMap<String, Option<String>> = p
        .scripts
        .iter()
        .filter_map(|s| Some((s.id.clone()?, s.output.as_deref().map(|o| o.trim().to_string()))))
        .collect();
    let mut extra = Map::new();
    let service_method = nonempty(&svc.method);
    if let Some(m) = &service_method {
        extra.insert("service_method".into(), json!(m));
    }
    if let Some(c) = svc.conf.as_deref().and_then(|c| c.trim().parse::<u8>().ok()) {
        extra.insert("service_confidence".into(), json!(c));
    }
    if let Some(x) = nonempty(&svc.extrainfo) {
        extra.insert("extrainfo".into(), json!(x));
    }
    NmapRecord {
        observation: NmapFinding {
            tool: Some(TOOL.into()),
            target: Some(ip.to_string()),
            port,
            protocol: Some(proto.into()),
            state: Some(state.into()),
            service,
            product: nonempty(&svc.product),
            version: nonempty(&svc.version),
            scripts: (!scripts.is_empty()).then_some(scripts),
            service_method,
        },
        extra,
    }
}

/// Names whose construction is broken whatever nmap's grade.
const BROKEN: &[&str] = &[
    "NULL",
    "anon",
    "EXPORT",
    "EXPORT40",
    "EXPORT1024",
    "RC4",
    "RC2",
    "DES",
    "DES40",
    "MD5",
];

/// `insecure`, `weak` or `None` (acceptable) for one suite and its nmap grade.
pub fn cipher_class(name: &str, grade: Option<&str>) -> Option<&'static str> {
    let broken = name.split(['_', '-']).any(|tok| BROKEN.contains(&tok));
    match grade.map(str::trim) {
        _ if broken => Some("insecure"),
        Some("F") => Some("insecure"),
        Some("C" | "D" | "E") => Some("weak"),
        _ => None,
    }
}

fn tls_observation(
    ip: IpAddr,
    host_name: &str,
    domain: Option<&str>,
    port: u16,
    p: &NmapPort,
) -> Option<NmapRecord<TlsObservation>> {
    let cert_script = p.script(SSL_CERT);
    let enum_script = p.script(SSL_ENUM_CIPHERS);
    if cert_script.is_none() && enum_script.is_none() {
        return None;
    }
    let mut versions: Vec<(u8, String)> = Vec::new();
    let mut cipher_classes = None;
    let mut raw = None;
    if let Some(s) = enum_script {
        let mut weak = BTreeSet::new();
        let mut insecure = BTreeSet::new();
        let mut any = false;
        for (key, table) in s.data.tables() {
            let Some(key) = key else { continue };
            let (rank, label) = match tls_version(key) {
                Some((r, l)) => (r, l.to_string()),
                None => (u8::MAX, key.to_string()),
            };
            versions.push((rank, label));
            any = true;
            for (_, c) in table.table("ciphers").into_iter().flat_map(ScriptTable::tables) {
                let Some(name) = c.elem("name") else { continue };
                match cipher_class(name, c.elem("strength")) {
                    Some("insecure") => {
                        insecure.insert(name.to_string());
                    }
                    Some(_) => {
                        weak.insert(name.to_string());
                    }
                    None => {}
                }
            }
        }
        if s.data.is_empty() {
            // nmap without structured output: the protocol lines of the text.
            for line in s.output.as_deref().unwrap_or("").lines() {
                let t = line.trim().trim_end_matches(':').trim();
                if let Some((r, l)) = tls_version(t) {
                    versions.push((r, l.to_string()));
                }
            }
        } else if any {
            for name in &insecure {
                weak.remove(name);
            }
            cipher_classes = Some(CipherClasses {
                weak: weak.into_iter().collect(),
                insecure: insecure.into_iter().collect(),
            });
        }
        raw = s
            .data
            .elem("least strength")
            .map(|least| json!({"nmap": {"least_strength": least}}));
    }
    versions.sort();
    versions.dedup();
    Some(NmapRecord {
        observation: TlsObservation {
            tool: Some(TOOL.into()),
            host: Some(host_name.trim_matches(['[', ']']).to_string()),
            ip: Some(ip.to_string()),
            port,
            sni: domain.map(str::to_string),
            tls_versions: versions.into_iter().map(|(_, l)| l).collect(),
            cipher: None,
            ja3: None,
            jarm: None,
            certificate: cert_script.and_then(certificate),
            cipher_classes,
            raw,
        },
        extra: Map::new(),
    })
}

/// A line `Label: value` of a script's text output.
fn output_line<'a>(s: &'a NmapScript, label: &str) -> Option<&'a str> {
    s.output
        .as_deref()?
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// nmap prints certificate dates in UTC without a zone (`2026-11-20T22:57:36`).
pub fn nmap_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(Timestamp(d.with_timezone(&Utc)));
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|n| Timestamp(n.and_utc()))
}

fn name_entries(t: &ScriptTable) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = t
        .elems()
        .map(|(k, v)| (k.unwrap_or_default().to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// `commonName=x/organizationName=y` (nmap's text form) → `x`.
fn cn_from_text(s: &str) -> Option<String> {
    let rest = s.split("commonName=").nth(1)?;
    let cn = rest.split('/').next()?.trim();
    (!cn.is_empty()).then(|| cn.to_string())
}

fn certificate(s: &NmapScript) -> Option<Certificate> {
    let d = &s.data;
    let subject = d.table("subject");
    let issuer = d.table("issuer");
    let subject_text = output_line(s, "Subject:");
    let issuer_text = output_line(s, "Issuer:");
    let subject_cn = subject
        .and_then(|t| t.elem("commonName"))
        .map(str::to_string)
        .or_else(|| subject_text.and_then(cn_from_text));
    let issuer_cn = issuer
        .and_then(|t| t.elem("commonName"))
        .map(str::to_string)
        .or_else(|| issuer_text.and_then(cn_from_text));
    let is_self_signed = match (subject, issuer) {
        (Some(s), Some(i)) => Some(name_entries(s) == name_entries(i)),
        _ => match (subject_text, issuer_text) {
            (Some(s), Some(i)) => Some(s == i),
            _ => None,
        },
    };
    let san_text = d
        .table("extensions")
        .into_iter()
        .flat_map(ScriptTable::tables)
        .find(|(_, e)| e.elem("name") == Some("X509v3 Subject Alternative Name"))
        .and_then(|(_, e)| e.elem("value"))
        .or_else(|| output_line(s, "Subject Alternative Name:"));
    let mut sans: Vec<String> = Vec::new();
    for part in san_text.unwrap_or("").split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("DNS:").or_else(|| part.strip_prefix("IP Address:")) {
            let v = v.trim().to_string();
            if !v.is_empty() && !sans.contains(&v) {
                sans.push(v);
            }
        }
    }
    let validity = d.table("validity");
    let not_before = validity
        .and_then(|v| v.elem("notBefore"))
        .or_else(|| output_line(s, "Not valid before:"))
        .and_then(nmap_time);
    let not_after = validity
        .and_then(|v| v.elem("notAfter"))
        .or_else(|| output_line(s, "Not valid after:"))
        .and_then(nmap_time);
    // The certificate itself, when nmap printed it, decides every field
    // (the same reader as tlsx's); the script's own fields are the fallback.
    if let Some(facts) = d.elem("pem").and_then(|p| super::cert::from_pem(p).ok()) {
        return Some(facts.certificate);
    }
    let cert_sha256 = d.elem("sha256").and_then(|h| {
        let h: String = h.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
        (h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
    });
    let cert = Certificate {
        subject_cn,
        issuer_cn,
        serial: None,
        not_before,
        not_after,
        sans,
        is_self_signed,
        spki_sha256: None,
        cert_sha256,
    };
    let empty = cert.subject_cn.is_none() && cert.not_after.is_none() && cert.cert_sha256.is_none();
    (!empty).then_some(cert)
}

/// `http-headers` output: the header map and the request type nmap used.
pub fn http_headers(output: &str) -> (BTreeMap<String, Value>, Option<String>) {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut request = None;
    for line in output.lines() {
        let line = line.trim();
        if let Some(r) = line.strip_prefix("(Request type: ").and_then(|r| r.strip_suffix(')')) {
            request = Some(r.trim().to_string());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || name.contains(' ') {
            continue;
        }
        let value = value.trim();
        headers
            .entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    (
        headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
        request,
    )
}

fn is_tls(p: &NmapPort) -> bool {
    let svc = p.service.clone().unwrap_or_default();
    svc.tunnel.as_deref() == Some("ssl")
        || matches!(svc.name.as_deref(), Some("https" | "https-alt" | "ssl/http"))
        || p.script(SSL_CERT).is_some()
        || p.script(SSL_ENUM_CIPHERS).is_some()
}

fn http_observation(ip: IpAddr, host_name: &str, port: u16, p: &NmapPort) -> Option<NmapRecord<HttpObservation>> {
    let headers_script = p.script(HTTP_HEADERS);
    let title_script = p.script(HTTP_TITLE);
    let status_script = p.script(HTTP_STATUS);
    if headers_script.is_none() && title_script.is_none() && status_script.is_none() {
        return None;
    }
    let scheme = if is_tls(p) { "https" } else { "http" };
    let mut extra = Map::new();
    let (headers, request) = match headers_script.and_then(|s| s.output.as_deref()) {
        Some(out) => {
            let (h, r) = http_headers(out);
            (Some(h), r)
        }
        None => (None, None),
    };
    let mut status_code = status_script.and_then(|s| {
        s.data
            .elem("status")
            .and_then(|v| v.trim().parse::<u16>().ok())
            .or_else(|| s.output.as_deref()?.split_whitespace().nth(1)?.parse().ok())
    });
    if let Some(s) = status_script {
        if let Some(line) = s.data.elem("status_line").filter(|l| !l.is_empty()) {
            extra.insert("status_line".into(), json!(line));
        }
    }
    if status_code.is_none() && request.as_deref() == Some("HEAD") {
        status_code = Some(200);
    }
    if let Some(r) = &request {
        extra.insert("request_type".into(), json!(r));
    }
    let title = title_script.and_then(|s| {
        if !s.data.is_empty() {
            if let Some(url) = s.data.elem("redirect_url") {
                extra.insert("location".into(), json!(url));
            }
            return s.data.elem("title").map(|t| t.trim().to_string());
        }
        let out = s.output.as_deref()?.lines().next()?.trim();
        (!out.is_empty()
            && !out.starts_with("Site doesn't have a title")
            && !out.starts_with("Did not follow redirect"))
        .then(|| out.to_string())
    });
    Some(NmapRecord {
        observation: HttpObservation {
            tool: Some(TOOL.into()),
            url: format!("{scheme}://{host_name}:{port}/"),
            host: Some(host_name.trim_matches(['[', ']']).to_string()),
            ip: Some(ip.to_string()),
            port: Some(port),
            scheme: Some(scheme.into()),
            status_code,
            title: title.filter(|t| !t.is_empty()),
            headers,
            ..Default::default()
        },
        extra,
    })
}

#[cfg(test)]
mod tests;
