//! End to end with real services and the nmap toolchain, on loopback only.
//!
//! `demo-services` (the same binary `scripts/demo-scan.sh` runs) starts nginx
//! with a self-signed certificate, TLS 1.0 and no security headers, an
//! SSH-like listener on 2222, a listener on 9200 that never answers and
//! dnsmasq serving `watchtower.test` (SPF `~all`, DMARC `p=none`). The built
//! `xray-loader scan` scans 127.0.0.1 and `watchtower.test` (resolved by that
//! dnsmasq) into a fresh database, four times:
//!
//! 1. as started: NEW RB1 (2222), RB3 (TLS 1.0), RB4 (self-signed), RB5
//!    (four headers missing), RB6 (9200), RB7 (spf, dmarc);
//! 2. after `remediate` (two headers added, SSH stopped, SPF `-all`):
//!    CHANGED RB5, FIXED RB1 and RB7 spf, nothing else;
//! 3. nginx and the silent listener stopped, but nmap "fails" (a wrapper that
//!    runs the real nmap, so its XML shows every port closed, then exits 1):
//!    no event at all, no false FIXED;
//! 4. the same with the real nmap: FIXED RB3, RB4, RB5, RB6.
//!
//! Needs nmap, nginx, dnsmasq and openssl (scripts/setup.sh installs them),
//! PostgreSQL with `xray_pg` at `DATABASE_URL` (default: the local socket), and
//! 127.0.0.1:2222 and :9200 free. A missing piece fails the test with the
//! reason; nothing is skipped. Takes about two minutes (one nmap run ≈ 40 s).

mod e2e_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use e2e_support::{
    assert_all_fixed_but_dmarc, events, failing_wrapper, find, free_port, open_exposures, preflight, scan, set, RmDir, Services, TestDb, DOMAIN,
};



/// The configuration with `tools.nmap` pointing at `nmap`.
fn with_nmap(assets: &str, nmap: &Path) -> String {
    let mut out = String::new();
    for line in assets.lines() {
        if line.starts_with("nmap = \"") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[tools]" {
            out.push_str(&format!("nmap = \"{}\"\n", nmap.display()));
        }
    }
    out
}

#[test]
fn nmap_scans_of_real_services_give_new_changed_and_fixed_and_a_failed_tool_fixes_nothing() {
    preflight(
        "nmap",
        &[
            ("nmap", "the Debian package nmap"),
            ("nginx", "the Debian package nginx"),
            ("dnsmasq", "the Debian package dnsmasq-base"),
            ("openssl", "the Debian package openssl"),
        ],
    );
    let nmap = find("nmap").unwrap();
    let dir = std::env::temp_dir().join(format!("xray-e2e-nmap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _rm = RmDir(dir.clone());
    let db = TestDb::new();
    let (tls, dns) = (free_port(), free_port());
    let mut svc = Services::start(&dir, tls, dns, &[]);
    let assets = PathBuf::from(svc.ready["assets"].as_str().unwrap());
    assert_eq!(svc.ready["ssh_port"], 2222);
    assert_eq!(svc.ready["silent_port"], 9200);
    let text = std::fs::read_to_string(&assets).unwrap();
    std::fs::write(&assets, with_nmap(&text, &nmap)).unwrap();
    let hosts = ["127.0.0.1", DOMAIN];

    // 1. Everything weak.
    let first = events(&db, &scan(&db, &assets));
    let mut want = Vec::new();
    for h in hosts {
        want.push(format!("NEW RB1 {h} 2222 svc:ssh|port:2222 nmap"));
        want.push(format!("NEW RB3 {h} {tls} tls:old_versions|TLS1.0 nmap"));
        want.push(format!(
            "NEW RB5 {h} {tls} missing:content-security-policy,strict-transport-security,x-content-type-options,x-frame-options|url:https://{h}:{tls}/ nmap"
        ));
        want.push(format!("NEW RB6 {h} 9200 symptom:tcp_open_no_banner|port:9200 nmap"));
    }
    want.push(format!("NEW RB7 {DOMAIN} 0 record:spf|all:~all dns"));
    want.push(format!("NEW RB7 {DOMAIN} 0 record:dmarc|p:none dns"));
    // The certificate anchor is the SPKI hash of a key made at start.
    for h in hosts {
        let rb4: Vec<&String> = first
            .iter()
            .filter(|e| e.starts_with(&format!("NEW RB4 {h} ")))
            .collect();
        assert_eq!(rb4.len(), 1, "{first:#?}");
        let prefix = format!("NEW RB4 {h} {tls} issue:self_signed|cert:spki:");
        assert!(rb4[0].starts_with(&prefix) && rb4[0].ends_with(" nmap"), "{}", rb4[0]);
    }
    let rest: BTreeSet<String> = first.iter().filter(|e| !e.starts_with("NEW RB4 ")).cloned().collect();
    assert_eq!(rest, set(want), "first scan");

    // 2. Two headers added, SSH gone, SPF hardened.
    svc.command("remediate");
    let second = events(&db, &scan(&db, &assets));
    let mut want = Vec::new();
    for h in hosts {
        want.push(format!(
            "CHANGED RB5 {h} {tls} missing:content-security-policy,strict-transport-security|url:https://{h}:{tls}/ nmap"
        ));
        want.push(format!("FIXED RB1 {h} 2222 svc:ssh|port:2222 nmap"));
    }
    want.push(format!("FIXED RB7 {DOMAIN} 0 record:spf|all:~all dns"));
    assert_eq!(second, set(want), "second scan");

    // 3. nginx and the silent listener stopped, but nmap reports failure
    //    after printing XML in which every port is closed.
    svc.command("stop nginx");
    svc.command("stop silent");
    let wrapper = failing_wrapper(&dir, &nmap);
    let failing = dir.join("assets-failing-nmap.toml");
    std::fs::write(&failing, with_nmap(&text, &wrapper)).unwrap();
    let open_before = open_exposures(&db);
    let third = events(&db, &scan(&db, &failing));
    assert!(third.is_empty(), "a failed nmap run proves nothing: {third:#?}");
    assert_eq!(open_exposures(&db), open_before);

    // 4. The same state with a working nmap: now they are fixed.
    let fourth = events(&db, &scan(&db, &assets));
    assert_all_fixed_but_dmarc(&db, &fourth, tls);
    drop(svc);
}
