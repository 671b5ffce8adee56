//! Screenshots of the web services a scan found, for the bundle's
//! `assets/screenshots/{ip}/{ts}/{scheme}-{port}.png` (on by default, as the architecture
//! says; `--no-screenshots` turns it off).
//!
//! Each capture is one headless Chromium run with a fresh profile, bounded in time (the
//! whole process group is killed: Chromium forks renderers that would outlive a plain
//! kill) and in size. A capture that fails is logged and left out; it never fails the
//! bundle, because the scan is the submission and a picture is a bonus.
//!
//! The URL is the address (`http://192.0.2.1:8080/`), never a domain: the collector
//! checked the address against scope and the deny list, and a Host or SNI name would
//! make the browser resolve and possibly follow it elsewhere. Certificates are not
//! checked, since a scan meets self-signed ones and the picture is evidence, not trust.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nweb::scanprint::ScanprintLine;

/// Where screenshots go in the bundle.
pub(crate) const SCREENSHOT_DIR: &str = "assets/screenshots";
/// Ports taken for web servers when the scanner named no service (masscan, `unknown`).
const COMMON_WEB_PORTS: [u16; 6] = [80, 443, 8000, 8080, 8443, 8888];
/// With a timeout of 15 s this keeps the captures of one bundle under about 16 minutes.
pub(crate) const MAX_CAPTURES: usize = 64;
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

#[derive(Debug, Clone)]
pub(crate) struct ShotSettings {
    pub(crate) chromium: PathBuf,
    pub(crate) timeout: Duration,
    pub(crate) max_bytes: u64,
}

/// One web service to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebService {
    pub(crate) ip: IpAddr,
    pub(crate) port: u16,
    pub(crate) https: bool,
    pub(crate) ts: u64,
}

impl WebService {
    pub(crate) fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.ip {
            IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{}/", self.port),
            IpAddr::V4(v4) => format!("{scheme}://{v4}:{}/", self.port),
        }
    }

    pub(crate) fn bundle_path(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{SCREENSHOT_DIR}/{}/{}/{scheme}-{}.png", self.ip, self.ts, self.port)
    }
}

/// The open HTTP(S) ports among `lines`, on addresses in `allowed` only (the ones that
/// passed scope and both deny lists), in scan order.
pub(crate) fn web_services(lines: &[ScanprintLine], allowed: &BTreeSet<IpAddr>) -> Vec<WebService> {
    let mut out: Vec<WebService> = Vec::new();
    for l in lines.iter().filter(|l| l.state == "open" && l.proto == "tcp") {
        let Ok(ip) = l.ip.parse::<IpAddr>() else { continue };
        if !allowed.contains(&ip) {
            continue;
        }
        let service = l.service.as_deref().unwrap_or("").to_ascii_lowercase();
        let unnamed = matches!(service.as_str(), "" | "unknown" | "tcpwrapped");
        let web = service.contains("http") || (unnamed && COMMON_WEB_PORTS.contains(&l.port));
        if !web {
            continue;
        }
        let https = service.contains("https")
            || service.starts_with("ssl/")
            || l.cert_fpr.is_some()
            || (unnamed && matches!(l.port, 443 | 8443));
        let s = WebService { ip, port: l.port, https, ts: l.ts };
        if !out.iter().any(|o| o.ip == s.ip && o.port == s.port) {
            out.push(s);
        }
    }
    out
}

/// The Chromium binary: `--chromium`, else Debian's, else `chromium` on PATH.
pub(crate) fn find_chromium(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let debian = Path::new("/usr/bin/chromium");
    if crate::toolchain::runner::is_executable(debian) {
        return Some(debian.to_path_buf());
    }
    ["chromium", "chromium-browser"]
        .iter()
        .find_map(|n| crate::toolchain::runner::find_on_path(n))
}

/// Captures each service; returns (bundle path, PNG bytes) of the ones that worked.
pub(crate) async fn capture_all(s: &ShotSettings, services: &[WebService]) -> Vec<(String, Vec<u8>)> {
    if services.len() > MAX_CAPTURES {
        tracing::warn!(
            found = services.len(),
            "more web services than the {MAX_CAPTURES} captures of one bundle; the rest get no screenshot"
        );
    }
    let mut out = Vec::new();
    for svc in services.iter().take(MAX_CAPTURES) {
        match capture(s, &svc.url()).await {
            Ok(png) => {
                tracing::info!(url = %svc.url(), bytes = png.len(), "screenshot taken");
                out.push((svc.bundle_path(), png));
            }
            Err(e) => tracing::warn!(url = %svc.url(), "no screenshot: {e}"),
        }
    }
    out
}

async fn capture(s: &ShotSettings, url: &str) -> Result<Vec<u8>, String> {
    let dir = tempfile::Builder::new()
        .prefix("xray-shot-")
        .tempdir()
        .map_err(|e| format!("cannot create a browser profile directory: {e}"))?;
    let file = dir.path().join("shot.png");
    let mut cmd = tokio::process::Command::new(&s.chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--ignore-certificate-errors",
        "--hide-scrollbars",
        "--window-size=1280,800",
    ])
    .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
    .arg(format!("--screenshot={}", file.display()))
    .arg(url)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    // Its own process group, so a timeout can kill the renderers and helpers as well.
    .process_group(0)
    .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", s.chromium.display()))?;
    let pid = child.id();
    let status = match tokio::time::timeout(s.timeout, child.wait()).await {
        Ok(r) => r.map_err(|e| format!("waiting for chromium: {e}"))?,
        Err(_) => {
            kill_group(pid);
            let _ = child.wait().await;
            return Err(format!("chromium took longer than {} s and was killed", s.timeout.as_secs()));
        }
    };
    // Helpers left behind by a browser that exited go too.
    kill_group(pid);
    if !status.success() {
        return Err(format!("chromium exited with {status}"));
    }
    let len = std::fs::metadata(&file)
        .map_err(|_| "chromium wrote no screenshot".to_string())?
        .len();
    if len > s.max_bytes {
        return Err(format!("{len} bytes is more than the limit of {} per screenshot", s.max_bytes));
    }
    let png = std::fs::read(&file).map_err(|e| format!("reading the screenshot: {e}"))?;
    if !png.starts_with(PNG_MAGIC) {
        return Err("chromium wrote something that is not a PNG".into());
    }
    Ok(png)
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals the process group we created; it
        // touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ip: &str, port: u16, state: &str, service: Option<&str>) -> ScanprintLine {
        ScanprintLine {
            ts: 1_700_000_000,
            ip: ip.into(),
            port,
            proto: "tcp".into(),
            state: state.into(),
            service: service.map(Into::into),
            product: None,
            version: None,
            banner_sha256: None,
            cert_fpr: None,
            tls_ja3: None,
            latency_ms: None,
            tool: "nmap".into(),
            tool_version: None,
            options: None,
            vantage: "v".into(),
        }
    }

    #[test]
    fn only_open_web_ports_on_allowed_addresses_are_captured() {
        let lines = vec![
            line("192.0.2.1", 8081, "open", Some("http")),
            line("192.0.2.1", 8443, "open", Some("ssl/http")),
            line("192.0.2.1", 22, "open", Some("ssh")),
            line("192.0.2.1", 80, "closed", Some("http")),
            line("192.0.2.1", 443, "open", None),
            line("192.0.2.9", 80, "open", Some("http")),
            line("2001:db8::1", 80, "open", Some("http")),
        ];
        let allowed: BTreeSet<IpAddr> = ["192.0.2.1", "2001:db8::1"].iter().map(|s| s.parse().unwrap()).collect();
        let got: Vec<String> = web_services(&lines, &allowed).iter().map(WebService::url).collect();
        assert_eq!(
            got,
            ["http://192.0.2.1:8081/", "https://192.0.2.1:8443/", "https://192.0.2.1:443/", "http://[2001:db8::1]:80/"]
        );
        assert_eq!(
            web_services(&lines, &allowed)[0].bundle_path(),
            "assets/screenshots/192.0.2.1/1700000000/http-8081.png"
        );
    }
}
