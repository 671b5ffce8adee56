//! End to end with real services and the real ProjectDiscovery tools (naabu,
//! httpx, tlsx, nuclei at the versions scripts/install-pd-tools.sh pins), on
//! loopback only.
//!
//! `demo-services` runs as for the nmap test, but listening on 127.0.0.1 and
//! 127.0.0.2, with `watchtower.test` resolving to both: the domain has two
//! endpoints, and every probe must reach each address (nothing resolves the
//! name behind the loader's back). nginx also serves an admin login page at
//! `/admin/`, which the project's own template (templates/nuclei) finds.
//!
//! 1. as started: NEW RB1 (2222), RB2 (the admin page), RB3 (TLS 1.0), RB4
//!    (self-signed), RB5 (four headers missing), RB6 (9200), RB7 (spf,
//!    dmarc); both addresses of the domain got HTTP and TLS answers and no
//!    symptom on the TLS port. The same services scanned with the nmap
//!    toolchain into another database give the same identities, except RB2,
//!    which nmap does not look for;
//! 2. after `remediate` (two headers added, admin page and SSH gone, SPF
//!    `-all`): CHANGED RB5, FIXED RB1, RB2 and RB7 spf, nothing else;
//! 3. nginx and the silent listener stopped, but naabu "fails" (a wrapper that
//!    runs the real naabu, so its output shows every port closed, then exits
//!    1): no event at all, no false FIXED;
//! 4. the same with the real naabu: FIXED RB3, RB4, RB5, RB6.
//!
//! Needs the four tools on PATH or in /usr/local/bin, nmap, nginx, dnsmasq
//! and openssl (scripts/setup.sh installs them), PostgreSQL with `xray_pg` at
//! `DATABASE_URL`, and 127.0.0.1:2222, :9200 and 127.0.0.2 free. A missing
//! piece fails the test with the reason; nothing is skipped.

mod e2e_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use e2e_support::{
    assert_all_fixed_but_dmarc, events, failing_wrapper, find, free_port, open_exposures, preflight, scan, set, RmDir, Services, TestDb, DOMAIN,
};
use serde_json::Value;

const SECOND_IP: &str = "127.0.0.2";

/// The configuration with `tools.<tool>` pointing at `path` and `toolchain`.
fn with_tool(assets: &str, toolchain: &str, tool: &str, path: &Path) -> String {
    let mut out = String::new();
    for line in assets.lines() {
        if line.starts_with(&format!("{tool} = \"")) {
            continue;
        }
        if line.starts_with("toolchain = ") {
            out.push_str(&format!("toolchain = \"{toolchain}\"\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[tools]" {
            out.push_str(&format!("{tool} = \"{}\"\n", path.display()));
        }
    }
    out
}

fn identities(db: &TestDb) -> BTreeSet<String> {
    db.query(
        "SELECT risk_bucket || ' ' || observed_host || ' ' || port || ' ' || identity_key FROM xray.exposures",
        &[],
    )
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect()
}

fn payload(db: &TestDb, scan_id: &str) -> Value {
    db.query(
        "SELECT payload FROM xray.scan_results WHERE scan_id = $1::text::uuid",
        &[&scan_id],
    )[0]
    .get::<_, Value>(0)
}

#[test]
fn pd_scans_of_real_services_give_new_changed_and_fixed_and_a_failed_tool_fixes_nothing() {
    preflight(
        "ProjectDiscovery",
        &[
            ("naabu", "naabu (scripts/install-pd-tools.sh)"),
            ("httpx", "httpx (scripts/install-pd-tools.sh)"),
            ("tlsx", "tlsx (scripts/install-pd-tools.sh)"),
            ("nuclei", "nuclei (scripts/install-pd-tools.sh)"),
            ("nmap", "the Debian package nmap"),
            ("nginx", "the Debian package nginx"),
            ("dnsmasq", "the Debian package dnsmasq-base"),
            ("openssl", "the Debian package openssl"),
        ],
    );
    let naabu = find("naabu").unwrap();
    let dir = std::env::temp_dir().join(format!("xray-e2e-pd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _rm = RmDir(dir.clone());
    let db = TestDb::new();
    let (tls, dns) = (free_port(), free_port());
    let mut svc = Services::start(&dir, tls, dns, &["--extra-ip", SECOND_IP, "--toolchain", "projectdiscovery"]);
    let assets = PathBuf::from(svc.ready["assets"].as_str().unwrap());
    let text = std::fs::read_to_string(&assets).unwrap();
    std::fs::write(&assets, with_tool(&text, "projectdiscovery", "naabu", &naabu)).unwrap();
    let hosts = ["127.0.0.1", DOMAIN];

    // 1. Everything weak.
    let scan1 = scan(&db, &assets);
    let first = events(&db, &scan1);
    let mut want = Vec::new();
    for h in hosts {
        want.push(format!("NEW RB1 {h} 2222 svc:ssh|port:2222 naabu"));
        want.push(format!(
            "NEW RB2 {h} {tls} tpl:watchtower-admin-panel|url:https://{h}:{tls}/admin/ nuclei"
        ));
        want.push(format!("NEW RB3 {h} {tls} tls:old_versions|TLS1.0 tlsx"));
        want.push(format!(
            "NEW RB5 {h} {tls} missing:content-security-policy,strict-transport-security,x-content-type-options,x-frame-options|url:https://{h}:{tls}/ httpx"
        ));
        want.push(format!("NEW RB6 {h} 9200 symptom:tcp_open_no_banner|port:9200 -"));
    }
    want.push(format!("NEW RB7 {DOMAIN} 0 record:spf|all:~all dns"));
    want.push(format!("NEW RB7 {DOMAIN} 0 record:dmarc|p:none dns"));
    for h in hosts {
        let rb4: Vec<&String> = first.iter().filter(|e| e.starts_with(&format!("NEW RB4 {h} "))).collect();
        assert_eq!(rb4.len(), 1, "{first:#?}");
        let prefix = format!("NEW RB4 {h} {tls} issue:self_signed|cert:spki:");
        assert!(rb4[0].starts_with(&prefix) && rb4[0].ends_with(" tlsx"), "{}", rb4[0]);
    }
    let rest: BTreeSet<String> = first.iter().filter(|e| !e.starts_with("NEW RB4 ")).cloned().collect();
    assert_eq!(rest, set(want), "first scan");

    // Behaviour 1: the domain's second address got its own HTTP and TLS
    // answers (pinned to the address, the name as SNI and Host), and so no
    // symptom on its TLS port.
    let p = payload(&db, &scan1);
    let domain_eps: Vec<&Value> = p["asset_results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["asset"]["asset_value"] == DOMAIN)
        .flat_map(|a| a["endpoints"].as_array().unwrap())
        .collect();
    let ips: Vec<&str> = domain_eps.iter().filter_map(|e| e["ip"].as_str()).collect();
    assert_eq!(ips, vec!["127.0.0.1", SECOND_IP]);
    for ep in &domain_eps {
        let ip = ep["ip"].as_str().unwrap();
        assert_eq!(ep["tls"][0]["ip"], ip, "{ep:#}");
        assert_eq!(ep["tls"][0]["sni"], DOMAIN);
        assert_eq!(ep["http"][0]["ip"], ip);
        assert_eq!(ep["http"][0]["url"], format!("https://{DOMAIN}:{tls}/"));
        assert_eq!(ep["findings"]["nuclei"][0]["ip"], ip, "a finding stays on the address nuclei hit");
        let symptom_ports: Vec<u64> = ep["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["details"]["symptom"].is_string())
            .filter_map(|e| e["details"]["port"].as_u64())
            .collect();
        assert_eq!(symptom_ports, vec![9200], "{ip}");
        // Behaviour 5: judged from the certificate, so the IP SAN is there.
        assert_eq!(ep["tls"][0]["certificate"]["sans"], serde_json::json!([DOMAIN, "127.0.0.1"]));
        // Behaviour 2: only what was fetched; plain HTTP on the TLS port is a 400 error page.
        assert_eq!(ep["coverage"]["http_urls"], serde_json::json!([format!("https://{DOMAIN}:{tls}/")]));
    }

    // tlsx fetches the OCSP and CRL URLs of every certificate it sees; the
    // demo's names none, so it fetched nothing (and it is the one tlsx saw).
    let served = xray_parsers::cert::from_pem(&std::fs::read_to_string(dir.join("cert.pem")).unwrap()).unwrap();
    assert!(!served.revocation_urls, "the demo certificate names no OCSP responder or CRL");
    assert_eq!(domain_eps[0]["tls"][0]["certificate"]["cert_sha256"], served.certificate.cert_sha256.unwrap());

    // The nmap toolchain on the same services: the same identities, save RB2
    // (nmap runs no nuclei templates).
    let nmap_db = TestDb::new();
    let nmap_assets = dir.join("assets-nmap.toml");
    std::fs::write(&nmap_assets, with_tool(&text, "nmap", "nmap", &find("nmap").unwrap())).unwrap();
    scan(&nmap_db, &nmap_assets);
    let pd_ids: BTreeSet<String> = identities(&db).into_iter().filter(|i| !i.starts_with("RB2 ")).collect();
    assert_eq!(identities(&nmap_db), pd_ids, "nmap and ProjectDiscovery see the same exposures");
    drop(nmap_db);

    // 2. Two headers added, admin page and SSH gone, SPF hardened.
    svc.command("remediate");
    let second = events(&db, &scan(&db, &assets));
    let mut want = Vec::new();
    for h in hosts {
        want.push(format!(
            "CHANGED RB5 {h} {tls} missing:content-security-policy,strict-transport-security|url:https://{h}:{tls}/ httpx"
        ));
        want.push(format!("FIXED RB1 {h} 2222 svc:ssh|port:2222 naabu"));
        want.push(format!(
            "FIXED RB2 {h} {tls} tpl:watchtower-admin-panel|url:https://{h}:{tls}/admin/ nuclei"
        ));
    }
    want.push(format!("FIXED RB7 {DOMAIN} 0 record:spf|all:~all dns"));
    assert_eq!(second, set(want), "second scan");

    // 3. nginx and the silent listener stopped, but naabu reports failure
    //    after printing what it found (no open port).
    svc.command("stop nginx");
    svc.command("stop silent");
    let failing = dir.join("assets-failing-naabu.toml");
    std::fs::write(
        &failing,
        with_tool(&text, "projectdiscovery", "naabu", &failing_wrapper(&dir, &naabu)),
    )
    .unwrap();
    let open_before = open_exposures(&db);
    let third = events(&db, &scan(&db, &failing));
    assert!(third.is_empty(), "a failed naabu run proves nothing: {third:#?}");
    assert_eq!(open_exposures(&db), open_before);

    // 4. The same state with a working naabu: now they are fixed.
    let fourth = events(&db, &scan(&db, &assets));
    assert_all_fixed_but_dmarc(&db, &fourth, tls);
    drop(svc);
}
