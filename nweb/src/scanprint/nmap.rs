//! nmap `-oX` to scanprint lines.

use super::{
    banner_sha256, canonical_ip, cert_fpr_from_pem, normalize_hex, sort_lines, Conversion,
    ScanprintContext, ScanprintLine, check_publishable,
};
use crate::NwebError;
use xray_parsers::nmap::{NmapHost, NmapRunInfo, NmapScript, NmapXmlEvent, NmapXmlReader};

/// Flags that say how a scan was run but nothing about who ran it, where its files are,
/// or what it targeted. Everything else in `nmaprun@args` is dropped: targets, output
/// and input file names, interfaces, spoofed sources, `--script-args` (credentials).
const BARE_FLAGS: &[&str] = &[
    "-sS",
    "-sT",
    "-sU",
    "-sV",
    "-sC",
    "-sN",
    "-sF",
    "-sX",
    "-sA",
    "-sW",
    "-sM",
    "-sY",
    "-sZ",
    "-sO",
    "-sn",
    "-Pn",
    "-PE",
    "-PP",
    "-PM",
    "-n",
    "-R",
    "-O",
    "-A",
    "-F",
    "-r",
    "-6",
    "--open",
    "--version-all",
    "--version-light",
    "--osscan-guess",
    "--osscan-limit",
    "--traceroute",
    "--defeat-rst-ratelimit",
];

/// Flags whose value is a number, port list or duration, kept with their value.
const VALUE_FLAGS: &[&str] = &[
    "-p",
    "--top-ports",
    "--port-ratio",
    "--exclude-ports",
    "--min-rate",
    "--max-rate",
    "--max-retries",
    "--version-intensity",
    "--host-timeout",
    "--scan-delay",
    "--max-scan-delay",
    "--min-parallelism",
    "--max-parallelism",
    "--min-hostgroup",
    "--max-hostgroup",
    "--min-rtt-timeout",
    "--max-rtt-timeout",
    "--initial-rtt-timeout",
];

const TIMING_NAMES: &[&str] = &[
    "paranoid",
    "sneaky",
    "polite",
    "normal",
    "aggressive",
    "insane",
];

fn is_safe_value(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ',' | '-' | '.' | ':'))
}

/// A summary of nmap's command line that is safe to publish: allow-listed scan flags
/// only, written as nmap would take them (`-sV -Pn -T4 -p 22,443`).
pub fn safe_nmap_options(args: &str) -> String {
    let mut kept: Vec<String> = Vec::new();
    let mut tokens = args.split_whitespace().peekable();
    // The program name, whatever path it was called by.
    if tokens.peek().is_some_and(|t| !t.starts_with('-')) {
        tokens.next();
    }
    while let Some(tok) = tokens.next() {
        if BARE_FLAGS.contains(&tok) {
            kept.push(tok.to_owned());
            continue;
        }
        // -T4, or -T followed by a level or name.
        if let Some(level) = tok.strip_prefix("-T") {
            let level = if level.is_empty() {
                match tokens.peek() {
                    Some(next) if next.len() == 1 || TIMING_NAMES.contains(next) => {
                        tokens.next().unwrap_or_default()
                    }
                    _ => continue,
                }
            } else {
                level
            };
            // Names are written as their level so equal settings read the same.
            let digit = TIMING_NAMES
                .iter()
                .position(|n| *n == level)
                .map(|i| i.to_string())
                .or_else(|| {
                    matches!(level, "0" | "1" | "2" | "3" | "4" | "5").then(|| level.to_owned())
                });
            if let Some(d) = digit {
                kept.push(format!("-T{d}"));
            }
            continue;
        }
        // --flag=value, --flag value, -p22,80 and -p 22,80.
        let (flag, inline) = match tok.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ if tok.starts_with("-p") && tok.len() > 2 && !tok.starts_with("--") => {
                ("-p", Some(&tok[2..]))
            }
            _ => (tok, None),
        };
        if !VALUE_FLAGS.contains(&flag) {
            continue;
        }
        let value = match inline {
            Some(v) => Some(v),
            None => tokens.next_if(|next| !next.starts_with('-')),
        };
        if let Some(v) = value.filter(|v| is_safe_value(v)) {
            kept.push(format!("{flag} {v}"));
        }
    }
    kept.join(" ")
}

/// Certificate evidence from an `ssl-cert` script, in decreasing order of preference.
#[derive(Debug, Default)]
struct CertEvidence<'a> {
    sha256: Option<&'a str>,
    pem: Option<&'a str>,
    sha1: Option<&'a str>,
    output: Option<&'a str>,
}

impl<'a> CertEvidence<'a> {
    /// The `sha256`, `sha1` and `pem` elems directly under the script (a `pubkey`
    /// table may hold digests of its own), and the text output.
    fn of(script: &'a NmapScript) -> Self {
        CertEvidence {
            sha256: script.data.elem("sha256"),
            pem: script.data.elem("pem"),
            sha1: script.data.elem("sha1"),
            output: script.output.as_deref(),
        }
    }

    /// `sha256` elem (nmap 7.94+), else SHA-256 of the DER in the PEM (the same value,
    /// for older nmap), else the SHA-1 nmap printed, else the same from the plain
    /// output text of nmap versions without structured script output.
    fn fingerprint(&self) -> Option<String> {
        if let Some(h) = self.sha256.and_then(|s| normalize_hex(s, 64)) {
            return Some(format!("sha256:{h}"));
        }
        if let Some(f) = self.pem.and_then(cert_fpr_from_pem) {
            return Some(f);
        }
        if let Some(h) = self.sha1.and_then(|s| normalize_hex(s, 40)) {
            return Some(format!("sha1:{h}"));
        }
        let out = self.output?;
        if let Some(f) = cert_fpr_from_pem(out) {
            return Some(f);
        }
        let labelled = |label: &str, len: usize| {
            out.lines()
                .find_map(|l| l.trim().strip_prefix(label))
                .and_then(|rest| normalize_hex(rest, len))
        };
        labelled("SHA-256:", 64)
            .map(|h| format!("sha256:{h}"))
            .or_else(|| labelled("SHA-1:", 40).map(|h| format!("sha1:{h}")))
    }
}

/// Reads nmap XML output (`-oX`), including `-sV` service fields and the `banner` and
/// `ssl-cert` scripts, into sorted scanprint lines.
///
/// The XML is read by the workspace's one nmap reader, [`xray_parsers::nmap::xml`].
/// Bad records (a port without a number, a host without an IP) become entries in
/// `errors` and the rest is kept. A file cut short, as when nmap is killed, keeps every
/// host that was complete. Only input with no `<nmaprun>` at all is an `Err`.
pub fn from_nmap_xml(xml: &str, ctx: &ScanprintContext) -> Result<Conversion, NwebError> {
    let mut reader = NmapXmlReader::new(xml);
    let mut run = NmapRunInfo::default();
    let mut out = Conversion::default();
    for event in reader.by_ref() {
        match event {
            NmapXmlEvent::Run(r) => run = r,
            NmapXmlEvent::Host(h) => finish_host(&mut out, ctx, &run, h),
            NmapXmlEvent::Error(e) => out.errors.push(NwebError::line(e.line, e.message)),
            NmapXmlEvent::Finished(_) => {}
        }
    }
    if !reader.saw_nmaprun() {
        return Err(NwebError::WrongFormat {
            expected: "nmap XML",
            problem: "no <nmaprun> element".to_owned(),
        });
    }
    sort_lines(&mut out.lines);
    Ok(out)
}

fn finish_host(out: &mut Conversion, ctx: &ScanprintContext, run: &NmapRunInfo, h: NmapHost) {
    if h.ports.is_empty() {
        return;
    }
    let Some(raw_ip) = h.address() else {
        out.errors.push(NwebError::line(
            h.line,
            "host has no IPv4 or IPv6 address; its ports were skipped",
        ));
        return;
    };
    let ip = match canonical_ip(raw_ip) {
        Ok(ip) => ip,
        Err(problem) => {
            out.errors.push(NwebError::line(h.line, problem));
            return;
        }
    };
    let ts_raw = h.starttime.as_deref().or(run.start.as_deref());
    let Some(ts) = ts_raw.and_then(|s| s.trim().parse::<u64>().ok()) else {
        out.errors.push(NwebError::line(
            h.line,
            format!(
                "host {ip}: no usable time (host starttime {:?}, nmaprun start {:?}); its ports were skipped",
                h.starttime, run.start
            ),
        ));
        return;
    };
    // srtt is in microseconds; round to the nearest millisecond.
    let latency_ms = h
        .srtt_us
        .as_deref()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|us| us.saturating_add(500) / 1000);
    let tool_version = run.version.clone().or_else(|| ctx.tool_version.clone());
    let options = ctx
        .options
        .clone()
        .or_else(|| run.args.as_deref().map(safe_nmap_options));

    for p in h.ports {
        let Some(proto) = p.protocol.clone().filter(|s| !s.is_empty()) else {
            out.errors.push(NwebError::line(
                p.line,
                format!("host {ip}: port has no protocol"),
            ));
            continue;
        };
        let port = match p.portid.as_deref() {
            Some(s) => match s.trim().parse::<u16>() {
                Ok(port) => port,
                Err(_) => {
                    out.errors.push(NwebError::line(
                        p.line,
                        format!("host {ip}: portid {s:?} is not a port number"),
                    ));
                    continue;
                }
            },
            None => {
                out.errors.push(NwebError::line(
                    p.line,
                    format!("host {ip}: port has no portid"),
                ));
                continue;
            }
        };
        let Some(state) = p.state.clone().filter(|s| !s.is_empty()) else {
            out.errors.push(NwebError::line(
                p.line,
                format!("host {ip}: port {port}/{proto} has no state"),
            ));
            continue;
        };
        let svc = p.service.clone().unwrap_or_default();
        // nmap's own notation for a service inside TLS, as in its normal output.
        let service = svc
            .name
            .filter(|s| !s.is_empty())
            .map(|name| match svc.tunnel.as_deref() {
                Some(t) if !t.is_empty() && !name.starts_with(&format!("{t}/")) => {
                    format!("{t}/{name}")
                }
                _ => name,
            });
        let banner = p.script("banner").and_then(|s| s.output.as_deref());
        let cert_fpr = p
            .script("ssl-cert")
            .and_then(|s| CertEvidence::of(s).fingerprint());
        let line = ScanprintLine {
            ts,
            ip: ip.clone(),
            port,
            proto,
            state,
            service,
            product: svc.product.filter(|s| !s.is_empty()),
            version: svc.version.filter(|s| !s.is_empty()),
            banner_sha256: banner.map(|b| banner_sha256(b.as_bytes())),
            cert_fpr,
            tls_ja3: None,
            latency_ms,
            tool: "nmap".to_owned(),
            tool_version: tool_version.clone(),
            options: options.clone(),
            vantage: ctx.vantage.clone(),
        };
        match check_publishable(&line) {
            Ok(()) => out.lines.push(line),
            Err(problem) => out.errors.push(NwebError::line(
                p.line,
                format!("host {ip}: port {port}: {problem}; the port was skipped"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle;
    use crate::scanprint::test_support::fixture;
    use crate::scanprint::to_jsonl;

    fn ctx() -> ScanprintContext {
        ScanprintContext {
            vantage: "AS64500/test".to_owned(),
            options: None,
            tool_version: None,
        }
    }

    fn find(c: &Conversion, port: u16) -> &ScanprintLine {
        c.lines
            .iter()
            .find(|l| l.port == port)
            .unwrap_or_else(|| panic!("no line for port {port}"))
    }

    #[test]
    fn libnmap_5_51_service_fields() {
        let xml = fixture("tool-output/nmap/python-libnmap_1_hosts_banner_nmap5.51_sV.xml");
        let c = from_nmap_xml(&xml, &ctx()).unwrap();
        assert_eq!(c.errors, vec![]);
        let ports: Vec<u16> = c.lines.iter().map(|l| l.port).collect();
        assert_eq!(ports, vec![22, 25, 111, 631, 3306]);
        let ssh = find(&c, 22);
        assert_eq!(ssh.ip, "127.0.0.1");
        assert_eq!(ssh.proto, "tcp");
        assert_eq!(ssh.state, "open");
        assert_eq!(ssh.service.as_deref(), Some("ssh"));
        assert_eq!(ssh.product.as_deref(), Some("OpenSSH"));
        assert_eq!(ssh.version.as_deref(), Some("5.3"));
        assert_eq!(ssh.ts, 1361738385, "host starttime wins over nmaprun start");
        assert_eq!(ssh.tool, "nmap");
        assert_eq!(ssh.tool_version.as_deref(), Some("5.51"));
        assert_eq!(ssh.options.as_deref(), Some("-sV"));
        assert_eq!(ssh.vantage, "AS64500/test");
        assert_eq!(ssh.latency_ms, Some(0), "srtt=7us");
        assert_eq!(ssh.banner_sha256, None);
        assert_eq!(ssh.cert_fpr, None);
        let rpc = find(&c, 111);
        assert_eq!(rpc.service.as_deref(), Some("rpcbind"));
        assert_eq!(rpc.product, None);
        assert_eq!(find(&c, 3306).version.as_deref(), Some("5.1.61"));
        assert_eq!(find(&c, 25).product.as_deref(), Some("Postfix smtpd"));
    }

    #[test]
    fn libnmap_5_51_scripts_and_os_blocks_do_not_leak_ports() {
        let xml = fixture(
            "tool-output/nmap/python-libnmap_1_os_banner_scripts_nmap5.51_sV_O_scripts.xml",
        );
        let c = from_nmap_xml(&xml, &ctx()).unwrap();
        assert_eq!(c.errors, vec![]);
        // <os><portused .../> lists 1/tcp and 31666/udp as closed; they are not ports.
        let ports: Vec<u16> = c.lines.iter().map(|l| l.port).collect();
        assert_eq!(ports, vec![22, 25, 80, 111, 631, 3306, 8009, 8080]);
        let http = find(&c, 80);
        assert_eq!(http.product.as_deref(), Some("Apache httpd"));
        assert_eq!(http.version.as_deref(), Some("2.2.15"));
        assert_eq!(find(&c, 8080).service.as_deref(), Some("tcpwrapped"));
        assert_eq!(find(&c, 8009).service.as_deref(), Some("ajp13"));
        assert_eq!(http.latency_ms, Some(0), "srtt=180us rounds to 0ms");
        assert_eq!(http.ts, 1368156682);
        // Output paths and --script names never reach the options summary.
        assert_eq!(http.options.as_deref(), Some("-sV -O"));
    }

    #[test]
    fn secator_7_80_ssl_tunnel_and_latency() {
        let xml = fixture("tool-output/nmap/secator_fixture_nmap7.80_sV_vulners_2023-02-06.xml");
        let c = from_nmap_xml(&xml, &ctx()).unwrap();
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.lines.len(), 7);
        let ports: Vec<u16> = c.lines.iter().map(|l| l.port).collect();
        assert_eq!(ports, vec![53, 443, 554, 5001, 5357, 8090, 9091]);
        assert!(c
            .lines
            .iter()
            .all(|l| l.ip == "81.64.151.104" && l.ts == 1675688717));
        let dns = find(&c, 53);
        assert_eq!(dns.service.as_deref(), Some("domain"));
        assert_eq!(dns.product.as_deref(), Some("dnsmasq"));
        assert_eq!(dns.version.as_deref(), Some("2.85"));
        let https = find(&c, 443);
        assert_eq!(https.service.as_deref(), Some("ssl/http"));
        assert_eq!(https.product.as_deref(), Some("nginx"));
        assert_eq!(https.version, None);
        assert_eq!(find(&c, 8090).service.as_deref(), Some("http"));
        assert_eq!(find(&c, 554).product.as_deref(), Some("Freebox rtspd"));
        // The raw service fingerprint of 5357 is not copied anywhere.
        assert_eq!(find(&c, 5357).service.as_deref(), Some("wsdapi"));
        assert!(!to_jsonl(&c.lines).contains("SF-Port5357"));
        assert_eq!(https.latency_ms, Some(818), "srtt=818187us");
        assert_eq!(https.tool_version.as_deref(), Some("7.80"));
        assert_eq!(https.options.as_deref(), Some("-sV -Pn"));
    }

    #[test]
    fn recorded_7_93_banner_and_certificate() {
        let xml = fixture("nweb/nmap7.93_localhost_sV_ssl-cert_banner.xml");
        let c = from_nmap_xml(&xml, &ctx()).unwrap();
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.lines.len(), 3);
        let ssh = find(&c, 18022);
        assert_eq!(ssh.service.as_deref(), Some("ssh"));
        assert_eq!(ssh.product.as_deref(), Some("OpenSSH"));
        assert_eq!(ssh.version.as_deref(), Some("9.2p1 Debian 2+deb12u3"));
        assert_eq!(
            ssh.banner_sha256.as_deref(),
            Some(banner_sha256(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3").as_str())
        );
        let tls = find(&c, 18443);
        assert_eq!(tls.service.as_deref(), Some("ssl/http"));
        // SHA-256 of the DER, computed by `openssl x509 -outform DER | sha256sum`.
        assert_eq!(
            tls.cert_fpr.as_deref(),
            Some("sha256:a58e09e0d79e0acb68e20466f8d2f3a9d997347426c11a06bd0141ae75de739c")
        );
        assert_eq!(tls.banner_sha256, None);
        let closed = find(&c, 18999);
        assert_eq!(closed.state, "closed");
        assert_eq!(closed.service, None);
        assert_eq!(ssh.ts, 1795214234);
        assert_eq!(ssh.latency_ms, Some(0));
        assert_eq!(ssh.tool_version.as_deref(), Some("7.93"));
        assert_eq!(
            ssh.options.as_deref(),
            Some("-sV -Pn -T4 -p 18022,18443,18999")
        );
        // Privacy: neither the banner text nor the certificate body is in the output.
        let jsonl = to_jsonl(&c.lines);
        assert!(!jsonl.contains("SSH-2.0"));
        assert!(!jsonl.contains("MIIB"));
        assert!(!jsonl.contains("nweb-fixture"));
        assert_eq!(jsonl.lines().count(), 3);
        assert!(merkle::scanprint_merkle_root(&jsonl).is_ok());
    }

    /// Same shape as the recorded file, edited to what other nmap versions write.
    fn synthetic(cert_script: &str) -> String {
        format!(
            r#"<?xml version="1.0"?>
<nmaprun scanner="nmap" args="/usr/bin/nmap -sS -T 4 --top-ports=100 -iL /home/alice/targets.txt --script-args user=admin,pass=hunter2 -e eth0 -oX out.xml" start="1700000000" version="7.95">
<host starttime="1700000005" endtime="1700000050"><status state="up"/>
<address addr="00:11:22:33:44:55" addrtype="mac"/>
<address addr="2001:DB8:0:0::10" addrtype="ipv6"/>
<ports>
<port protocol="tcp" portid="443"><state state="open"/><service name="https" product="nginx" version="1.24.0"/>{cert_script}</port>
<port protocol="udp" portid="161"><state state="open|filtered"/></port>
</ports>
<times srtt="21345" rttvar="100" to="100000"/>
</host>
</nmaprun>"#
        )
    }

    #[test]
    fn sha256_elem_wins_and_tables_are_not_mistaken_for_fingerprints() {
        let script = r#"<script id="ssl-cert" output="..."><table key="pubkey"><elem key="sha256">00</elem></table>
<elem key="sha1">1faa784040996733656996b3e3a081f19bd17382</elem>
<elem key="sha256">A58E09E0D79E0ACB68E20466F8D2F3A9D997347426C11A06BD0141AE75DE739C</elem>
</script>"#;
        let c = from_nmap_xml(&synthetic(script), &ctx()).unwrap();
        assert_eq!(c.errors, vec![]);
        let l = find(&c, 443);
        assert_eq!(
            l.cert_fpr.as_deref(),
            Some("sha256:a58e09e0d79e0acb68e20466f8d2f3a9d997347426c11a06bd0141ae75de739c")
        );
        assert_eq!(
            l.ip, "2001:db8::10",
            "IPv6 used and canonicalised; the MAC ignored"
        );
        assert_eq!(l.ts, 1700000005);
        assert_eq!(l.latency_ms, Some(21));
        assert_eq!(l.service.as_deref(), Some("https"));
        assert_eq!(l.version.as_deref(), Some("1.24.0"));
        let udp = find(&c, 161);
        assert_eq!(
            (udp.proto.as_str(), udp.state.as_str()),
            ("udp", "open|filtered")
        );
        assert_eq!(udp.cert_fpr, None);
    }

    #[test]
    fn sha1_is_used_only_without_sha256_or_pem() {
        let script = r#"<script id="ssl-cert" output="x"><elem key="sha1">1FAA784040996733656996B3E3A081F19BD17382</elem></script>"#;
        let c = from_nmap_xml(&synthetic(script), &ctx()).unwrap();
        assert_eq!(
            find(&c, 443).cert_fpr.as_deref(),
            Some("sha1:1faa784040996733656996b3e3a081f19bd17382")
        );
    }

    #[test]
    fn old_nmap_plain_output_fingerprint() {
        // nmap 5.x writes only the output attribute, with spaced hex.
        let script = r#"<script id="ssl-cert" output="Subject: commonName=x&#xa;MD5:   c5b8 7ddd ccc7 537f 8861 b476 078d e8fd&#xa;SHA-1: dc5a cb8b 9eb9 b5de 7117 c536 8c15 0e75 ba88 702e"/>"#;
        let c = from_nmap_xml(&synthetic(script), &ctx()).unwrap();
        assert_eq!(
            find(&c, 443).cert_fpr.as_deref(),
            Some("sha1:dc5acb8b9eb9b5de7117c5368c150e75ba88702e")
        );
    }

    #[test]
    fn options_come_from_context_when_given() {
        let c = from_nmap_xml(&synthetic(""), &ctx()).unwrap();
        assert_eq!(
            find(&c, 443).options.as_deref(),
            Some("-sS -T4 --top-ports 100")
        );
        let mut with = ctx();
        with.options = Some("top-1000,T3".into());
        with.tool_version = Some("ignored".into());
        let c = from_nmap_xml(&synthetic(""), &with).unwrap();
        assert_eq!(find(&c, 443).options.as_deref(), Some("top-1000,T3"));
        assert_eq!(
            find(&c, 443).tool_version.as_deref(),
            Some("7.95"),
            "the XML states its version"
        );
    }

    #[test]
    fn safe_options_drop_everything_not_allow_listed() {
        assert_eq!(
            safe_nmap_options(
                "nmap -sV -Pn -oX /tmp/a.xml --script vulscan,vulners --script-args creds=a:b example.synology.me 10.0.0.0/8"
            ),
            "-sV -Pn"
        );
        assert_eq!(
            safe_nmap_options("nmap -p22,80 -T aggressive --min-rate=500 --max-retries 2 -D 1.2.3.4 -S 5.6.7.8 -iL list"),
            "-p 22,80 -T4 --min-rate 500 --max-retries 2"
        );
        assert_eq!(
            safe_nmap_options("nmap -p U:53,T:1-1024 -T9 -sU"),
            "-p U:53,T:1-1024 -sU"
        );
        assert_eq!(safe_nmap_options("nmap --top-ports $(rm)"), "");
        assert_eq!(safe_nmap_options(""), "");
    }

    #[test]
    fn bad_records_are_reported_and_the_rest_kept() {
        let xml = r#"<nmaprun start="1700000000" version="7.95" args="nmap">
<host><address addr="192.0.2.1" addrtype="ipv4"/><ports>
<port protocol="tcp" portid="22"><state state="open"/></port>
<port protocol="tcp" portid="99999"><state state="open"/></port>
<port protocol="tcp" portid="23"></port>
</ports></host>
<host><address addr="aa:bb:cc:dd:ee:ff" addrtype="mac"/><ports>
<port protocol="tcp" portid="80"><state state="open"/></port></ports></host>
</nmaprun>"#
            .replace('@', "\0");
        let c = from_nmap_xml(&xml, &ctx()).unwrap();
        assert_eq!(c.lines.len(), 1);
        assert_eq!(
            (c.lines[0].port, c.lines[0].ts),
            (22, 1700000000),
            "nmaprun start as ts"
        );
        let msgs: Vec<String> = c.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec![
                "line 4: host 192.0.2.1: portid \"99999\" is not a port number",
                "line 5: host 192.0.2.1: port 23/tcp has no state",
                "line 7: host has no IPv4 or IPv6 address; its ports were skipped",
            ]
        );
    }

    #[test]
    fn truncated_file_keeps_complete_hosts() {
        let xml = fixture("tool-output/nmap/python-libnmap_1_hosts_banner_nmap5.51_sV.xml");
        // Two copies of the host, the second cut off mid-way, as when nmap is killed.
        let host_start = xml.find("<host ").unwrap();
        let host_end = xml.find("</host>").unwrap() + "</host>".len();
        let second = xml[host_start..host_end].replace("127.0.0.1", "127.0.0.2");
        // Cut inside a tag (an XML error) and cut between elements (clean EOF).
        let mid_tag = second.find("portid=\"631\"").unwrap();
        let between = second
            .find("<port protocol=\"tcp\" portid=\"631\"")
            .unwrap();
        for cut in [mid_tag, between] {
            let truncated = format!("{}\n{}", &xml[..host_end], &second[..cut]);
            let c = from_nmap_xml(&truncated, &ctx()).unwrap();
            assert_eq!(c.lines.len(), 5);
            assert!(c.lines.iter().all(|l| l.ip == "127.0.0.1"));
            // One error, naming the host that was lost.
            assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
            let host2_line = truncated[..truncated.rfind("<host ").unwrap()]
                .matches('\n')
                .count()
                + 1;
            let msg = c.errors[0].to_string();
            assert!(
                msg.starts_with(&format!("line {host2_line}: "))
                    || msg.contains(&format!("the <host> from line {host2_line} was dropped")),
                "{msg}"
            );
        }
    }

    #[test]
    fn malformed_xml_is_reported_with_a_line_number() {
        let xml = "<nmaprun start=\"1\">\n<host starttime=\"2\"><address addr=\"192.0.2.9\" addrtype=\"ipv4\"/><ports>\
                   <port protocol=\"tcp\" portid=\"1\"><state state=\"open\"/></port></ports></host>\n<host>\n</nmaprn>";
        let c = from_nmap_xml(xml, &ctx()).unwrap();
        assert_eq!(c.lines.len(), 1);
        assert!(
            c.errors.iter().any(|e| e.line_number() == Some(4)),
            "{:?}",
            c.errors
        );
    }

    #[test]
    fn not_nmap_is_an_error() {
        assert!(matches!(
            from_nmap_xml("<html><body/></html>", &ctx()),
            Err(NwebError::WrongFormat { .. })
        ));
        assert!(from_nmap_xml("", &ctx()).is_err());
        assert!(from_nmap_xml("{\"ip\":\"1.2.3.4\"}", &ctx()).is_err());
    }

    #[test]
    fn same_scan_same_root_regardless_of_host_order() {
        let a = r#"<nmaprun start="1" version="7.95">
<host starttime="5"><address addr="192.0.2.10" addrtype="ipv4"/><ports><port protocol="tcp" portid="80"><state state="open"/></port></ports></host>
<host starttime="5"><address addr="192.0.2.9" addrtype="ipv4"/><ports><port protocol="tcp" portid="443"><state state="open"/></port><port protocol="tcp" portid="22"><state state="open"/></port></ports></host>
</nmaprun>"#;
        let b = r#"<nmaprun start="1" version="7.95">
<host starttime="5"><address addr="192.0.2.9" addrtype="ipv4"/><ports><port protocol="tcp" portid="22"><state state="open"/></port><port protocol="tcp" portid="443"><state state="open"/></port></ports></host>
<host starttime="5"><address addr="192.0.2.10" addrtype="ipv4"/><ports><port protocol="tcp" portid="80"><state state="open"/></port></ports></host>
</nmaprun>"#;
        let ca = from_nmap_xml(a, &ctx()).unwrap();
        let cb = from_nmap_xml(b, &ctx()).unwrap();
        assert_eq!(ca.lines, cb.lines);
        let order: Vec<(&str, u16)> = ca.lines.iter().map(|l| (l.ip.as_str(), l.port)).collect();
        assert_eq!(
            order,
            vec![("192.0.2.9", 22), ("192.0.2.9", 443), ("192.0.2.10", 80)]
        );
        assert_eq!(
            merkle::scanprint_merkle_root(&to_jsonl(&ca.lines)).unwrap(),
            merkle::scanprint_merkle_root(&to_jsonl(&cb.lines)).unwrap()
        );
    }

    /// Found by the `scanprint_nmap_xml` fuzz target: a NUL in a service name (or a
    /// time past 9999, an srtt beyond int4) made a line the bundle verifier refused.
    #[test]
    fn ports_the_verifier_would_refuse_are_errors() {
        let xml = r#"<nmaprun start="1700000000" version="7.93">
<host><address addr="192.0.2.1" addrtype="ipv4"/><ports>
<port protocol="tcp" portid="22"><state state="open"/><service name="ss@h"/></port>
<port protocol="tcp" portid="80"><state state="open"/><service name="http"/></port>
</ports></host>
<host starttime="253402300800" endtime="253402300801"><address addr="192.0.2.2" addrtype="ipv4"/><ports>
<port protocol="tcp" portid="22"><state state="open"/></port>
</ports></host>
<host><address addr="192.0.2.3" addrtype="ipv4"/><ports>
<port protocol="tcp" portid="22"><state state="open"/></port>
</ports><times srtt="9999999999999" rttvar="1" to="1"/></host>
</nmaprun>"#
            .replace('@', "\0");
        let c = from_nmap_xml(&xml, &ctx()).unwrap();
        let lines: Vec<usize> = c.errors.iter().filter_map(NwebError::line_number).collect();
        assert_eq!(lines, vec![3, 7, 10], "{:?}", c.errors);
        assert_eq!(c.lines.len(), 1, "{:?}", c.lines);
        crate::bundle::check_scanprint(&to_jsonl(&c.lines)).unwrap();
    }
}
