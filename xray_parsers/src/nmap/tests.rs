use serde_json::json;

use super::*;

fn ip() -> IpAddr {
    "192.0.2.7".parse().unwrap()
}

/// One host with the given `<port>` elements, as nmap 7.93 writes it.
fn run(ports: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap -oX - -n -Pn -sT -sV 192.0.2.7" start="1795216128" version="7.93" xmloutputversion="1.05">
<host starttime="1795216128" endtime="1795216139"><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="192.0.2.7" addrtype="ipv4"/>
<ports><extraports state="closed" count="2"><extrareasons reason="conn-refused" count="2"/></extraports>
{ports}
</ports>
<times srtt="412" rttvar="5" to="100000"/>
</host>
<runstats><finished time="1795216139" elapsed="11.0" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>"#
    )
}

fn enum_ciphers(suites: &[(&str, &str, &str)]) -> String {
    let mut by_version: BTreeMap<&str, String> = BTreeMap::new();
    for (v, name, grade) in suites {
        by_version.entry(v).or_default().push_str(&format!(
            "<table><elem key=\"kex_info\">rsa 2048</elem><elem key=\"name\">{name}</elem><elem key=\"strength\">{grade}</elem></table>"
        ));
    }
    let tables: String = by_version
        .iter()
        .map(|(v, c)| format!("<table key=\"{v}\"><table key=\"ciphers\">{c}</table><table key=\"compressors\"><elem>NULL</elem></table><elem key=\"cipher preference\">server</elem></table>"))
        .collect();
    format!(r#"<script id="ssl-enum-ciphers" output="...">{tables}<elem key="least strength">F</elem></script>"#)
}

#[test]
fn ports_findings_and_service_method() {
    let xml = run(
        r#"<port protocol="tcp" portid="2222"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="ssh" product="OpenSSH" version="9.2p1" extrainfo="protocol 2.0" method="probed" conf="10"><cpe>cpe:/a:openbsd:openssh:9.2p1</cpe></service></port>
<port protocol="tcp" portid="9200"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="wap-wsp" method="table" conf="3"/></port>
<port protocol="tcp" portid="8443"><state state="closed" reason="conn-refused" reason_ttl="0"/><service name="https-alt" method="table" conf="3"/></port>
<port protocol="udp" portid="53"><state state="open|filtered" reason="no-response" reason_ttl="0"/></port>"#,
    );
    let o = parse_nmap(&xml, ip(), None);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert!(o.completed() && o.host_reported);
    let tcp: Vec<(u16, &str, Option<&str>)> = o
        .tcp
        .iter()
        .map(|p| (p.port, p.state.as_str(), p.reason.as_deref()))
        .collect();
    assert_eq!(
        tcp,
        vec![
            (2222, "open", Some("syn_ack")),
            (8443, "closed", Some("conn_refused")),
            (9200, "open", Some("syn_ack"))
        ]
    );
    assert!(o.tcp.iter().all(|p| p.tool.as_deref() == Some("nmap")));
    assert_eq!(o.udp[0].state, "unknown", "open|filtered is not a contract state");
    assert_eq!(o.findings.len(), 2, "open ports only");
    let ssh = &o.findings[0];
    assert_eq!(ssh.observation.service.as_deref(), Some("ssh"));
    assert_eq!(ssh.observation.product.as_deref(), Some("OpenSSH"));
    assert_eq!(ssh.observation.target.as_deref(), Some("192.0.2.7"));
    assert_eq!(ssh.extra["service_method"], json!("probed"));
    assert_eq!(ssh.extra["service_confidence"], json!(10));
    assert_eq!(ssh.extra["extrainfo"], json!("protocol 2.0"));
    assert_eq!(o.findings[1].extra["service_method"], json!("table"));
    assert!(o.http.is_empty() && o.tls.is_empty() && o.tls_ports.is_empty() && o.http_urls.is_empty());
}

#[test]
fn cipher_grades_become_weak_and_insecure_classes() {
    assert_eq!(cipher_class("TLS_RSA_WITH_AES_128_GCM_SHA256", Some("A")), None);
    assert_eq!(cipher_class("TLS_DHE_RSA_WITH_AES_128_CBC_SHA", Some("B")), None);
    assert_eq!(cipher_class("TLS_RSA_WITH_3DES_EDE_CBC_SHA", Some("C")), Some("weak"));
    assert_eq!(
        cipher_class("TLS_DHE_RSA_WITH_AES_256_CBC_SHA", Some("E")),
        Some("weak")
    );
    assert_eq!(cipher_class("TLS_RSA_WITH_RC4_128_SHA", Some("C")), Some("insecure"));
    assert_eq!(
        cipher_class("TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", Some("E")),
        Some("insecure")
    );
    assert_eq!(
        cipher_class("TLS_DH_anon_WITH_AES_128_CBC_SHA", Some("A")),
        Some("insecure")
    );
    assert_eq!(cipher_class("TLS_RSA_WITH_NULL_SHA256", None), Some("insecure"));
    assert_eq!(cipher_class("TLS_RSA_WITH_DES_CBC_SHA", Some("C")), Some("insecure"));
    assert_eq!(
        cipher_class("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Some("F")),
        Some("insecure")
    );

    let script = enum_ciphers(&[
        ("TLSv1.0", "TLS_RSA_WITH_RC4_128_SHA", "C"),
        ("TLSv1.0", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "C"),
        ("TLSv1.2", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "C"),
        ("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "A"),
        ("SSLv3", "TLS_RSA_WITH_RC4_128_SHA", "F"),
    ]);
    let xml = run(&format!(
        r#"<port protocol="tcp" portid="993"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="imaps" tunnel="ssl" method="probed" conf="10"/>{script}</port>"#
    ));
    let o = parse_nmap(&xml, ip(), None);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let t = &o.tls[0].observation;
    assert_eq!(t.port, 993);
    assert_eq!(t.tls_versions, vec!["SSL3.0", "TLS1.0", "TLS1.2"], "in protocol order");
    let cc = t.cipher_classes.as_ref().unwrap();
    assert_eq!(cc.weak, vec!["TLS_RSA_WITH_3DES_EDE_CBC_SHA"]);
    assert_eq!(cc.insecure, vec!["TLS_RSA_WITH_RC4_128_SHA"]);
    assert_eq!(t.raw.as_ref().unwrap()["nmap"]["least_strength"], json!("F"));
    assert!(t.certificate.is_none());
    assert!(
        o.tls_ports.is_empty(),
        "no ssl-cert output: the certificate was not checked"
    );
}

#[test]
fn http_headers_lines_and_status() {
    let (h, r) = http_headers(
        "\n  Server: nginx\n  Set-Cookie: a=1\n  set-cookie: b=2\n  X-Frame-Options: DENY\n  \n  (Request type: GET)\n",
    );
    assert_eq!(r.as_deref(), Some("GET"));
    assert_eq!(h["server"], json!("nginx"));
    assert_eq!(h["set-cookie"], json!("a=1, b=2"));
    assert_eq!(h["x-frame-options"], json!("DENY"));
    assert_eq!(h.len(), 3);

    // A redirect: the status comes from xray-http-status, not from a guess.
    let xml = run(
        r#"<port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="http" product="nginx" method="probed" conf="10"/><script id="http-headers" output="&#xa;  Server: nginx&#xa;  Location: https://example.com/&#xa;  &#xa;  (Request type: GET)&#xa;"/><script id="xray-http-status" output="HTTP/1.1 301 Moved Permanently (GET)"><elem key="status">301</elem>
<elem key="status_line">HTTP/1.1 301 Moved Permanently</elem>
<elem key="request">GET</elem>
</script><script id="http-title" output="Did not follow redirect to https://example.com/"><elem key="redirect_url">https://example.com/</elem>
</script></port>"#,
    );
    let o = parse_nmap(&xml, ip(), Some("www.example.com"));
    let h = &o.http[0];
    assert_eq!(h.observation.url, "http://www.example.com:80/");
    assert_eq!(h.observation.status_code, Some(301));
    assert_eq!(h.observation.scheme.as_deref(), Some("http"));
    assert_eq!(h.observation.title, None);
    assert_eq!(
        h.observation.headers.as_ref().unwrap()["location"],
        json!("https://example.com/")
    );
    assert_eq!(h.extra["location"], json!("https://example.com/"));
    assert_eq!(h.extra["status_line"], json!("HTTP/1.1 301 Moved Permanently"));
    assert_eq!(o.http_urls, vec!["http://www.example.com/"]);
}

#[test]
fn head_means_200_without_the_status_script() {
    // nmap 5.51, recorded: no structured output, HEAD answered.
    let xml = std::fs::read_to_string(format!(
        "{}/../fixtures/tool-output/nmap/python-libnmap_1_os_banner_scripts_nmap5.51_sV_O_scripts.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let o = parse_nmap(&xml, "127.0.0.1".parse().unwrap(), None);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let by_port: BTreeMap<u16, &HttpObservation> = o
        .http
        .iter()
        .map(|h| (h.observation.port.unwrap(), &h.observation))
        .collect();
    let apache = by_port[&80];
    assert_eq!(apache.status_code, Some(200), "(Request type: HEAD)");
    assert_eq!(
        apache.headers.as_ref().unwrap()["server"],
        json!("Apache/2.2.15 (CentOS) PHP/5.3.3")
    );
    let jenkins = by_port[&8080];
    assert_eq!(jenkins.status_code, None, "GET: the status is unknown");
    assert!(jenkins.headers.as_ref().unwrap().contains_key("x-jenkins"));
}

#[test]
fn another_address_and_garbage_are_not_this_endpoint() {
    let xml = run(r#"<port protocol="tcp" portid="22"><state state="open"/></port>"#);
    let o = parse_nmap(&xml, "192.0.2.8".parse().unwrap(), None);
    assert!(o.tcp.is_empty() && !o.host_reported);
    assert!(o.completed());

    let bad = run(
        r#"<port protocol="tcp" portid="70000"><state state="open"/></port><port protocol="tcp" portid="23"></port>"#,
    );
    let o = parse_nmap(&bad, ip(), None);
    let msgs: Vec<&str> = o.errors.iter().filter_map(|e| e.message.as_deref()).collect();
    assert_eq!(
        msgs,
        vec![
            "line 6: host 192.0.2.7: portid \"70000\" is not a port number",
            "line 6: host 192.0.2.7: port 23/tcp has no state"
        ]
    );
    assert!(o
        .errors
        .iter()
        .all(|e| e.kind.as_deref() == Some("parse_error") && e.tool.as_deref() == Some("nmap")));

    let o = parse_nmap("Starting Nmap 7.93\nfailed to resolve", ip(), None);
    assert_eq!(o.errors.len(), 1);
    assert!(!o.completed());

    // Killed mid-run: what was complete is kept, but nothing says it finished.
    let cut = &xml[..xml.find("<runstats>").unwrap()];
    let o = parse_nmap(cut, ip(), None);
    assert!(!o.completed() && o.host_reported);
    assert_eq!(o.tcp.len(), 1);
}

/// Recorded: nmap 7.93 against `demo-services` (see fixtures/loader/README.md).
#[test]
fn recorded_demo_services_run() {
    let xml = std::fs::read_to_string(format!(
        "{}/../fixtures/loader/nmap7.93_127.0.0.1_demo-services.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let o = parse_nmap(&xml, "127.0.0.1".parse().unwrap(), None);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert!(o.completed() && o.host_reported);
    assert_eq!(o.run.as_ref().unwrap().version.as_deref(), Some("7.93"));
    let t = &o.tls[0].observation;
    assert_eq!(t.tls_versions, vec!["TLS1.0", "TLS1.2"]);
    assert_eq!(t.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(t.sni, None);
    let c = t.certificate.as_ref().unwrap();
    assert_eq!(c.subject_cn.as_deref(), Some("watchtower.test"));
    assert_eq!(c.issuer_cn.as_deref(), Some("watchtower.test"));
    assert_eq!(c.is_self_signed, Some(true));
    assert_eq!(c.sans, vec!["watchtower.test", "127.0.0.1"]);
    assert_eq!(c.not_before.unwrap().to_string(), "2026-11-20T23:17:16Z");
    assert_eq!(c.not_after.unwrap().to_string(), "2027-11-20T23:17:16Z");
    // openssl x509 -serial; -outform DER | sha256sum; -pubkey | openssl pkey -pubin -outform DER | sha256sum
    assert_eq!(
        c.serial.as_deref(),
        Some("7F:70:F1:80:28:AD:8F:C3:C5:4B:D1:60:16:BD:E5:A4:3D:7A:D3:AB")
    );
    assert_eq!(
        c.cert_sha256.as_deref(),
        Some("df2ef947d26417e982caef3a5d7fd466342d1323730afeb50c5575a5578cb7b0")
    );
    assert_eq!(
        c.spki_sha256.as_deref(),
        Some("83dc75865b1495015624abbcb014cc01f12326225a58b84df3bde84d81a3aaa1")
    );
    let cc = t.cipher_classes.as_ref().unwrap();
    assert!(
        cc.weak.is_empty() && cc.insecure.is_empty(),
        "nginx DEFAULT suites all grade A: {cc:?}"
    );
    let h = &o.http[0].observation;
    assert_eq!(
        (h.url.as_str(), h.status_code, h.title.as_deref()),
        ("https://127.0.0.1:18443/", Some(200), Some("Watchtower demo"))
    );
    let headers = h.headers.as_ref().unwrap();
    assert_eq!(headers["server"], json!("nginx/1.22.1"));
    for missing in [
        "content-security-policy",
        "strict-transport-security",
        "x-frame-options",
        "x-content-type-options",
    ] {
        assert!(!headers.contains_key(missing));
    }
    assert_eq!(o.http[0].extra["status_line"], json!("HTTP/1.1 200 OK"));
    assert_eq!(o.tls_ports, vec![18443]);
    assert_eq!(o.http_urls, vec!["https://127.0.0.1:18443/"]);
    let f: Vec<(u16, Option<&str>)> = o
        .findings
        .iter()
        .map(|f| (f.observation.port, f.observation.service.as_deref()))
        .collect();
    assert_eq!(
        f,
        vec![(2222, Some("ssh")), (9200, Some("wap-wsp")), (18443, Some("ssl/http"))]
    );
    let scripts = o.findings[2].observation.scripts.as_ref().unwrap();
    assert!(scripts.contains_key("ssl-cert") && scripts.contains_key("xray-http-status"));
}
