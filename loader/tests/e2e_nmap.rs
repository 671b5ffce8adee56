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

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_postgres::NoTls;
use xray_tests::{admin_url, db_url};

const DOMAIN: &str = "watchtower.test";
/// One loader run: nmap's own timeout in the demo configuration is 300 s.
const SCAN_LIMIT: Duration = Duration::from_secs(420);



/// A fresh database with the extension, dropped when the test ends (also on panic).
struct TestDb {
    rt: tokio::runtime::Runtime,
    name: String,
    url: String,
    client: tokio_postgres::Client,
}

impl TestDb {
    fn new() -> TestDb {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let name = format!("xray_e2e_{}", uuid::Uuid::new_v4().simple());
        let url = db_url(&name);
        let client = rt.block_on(async {
            let admin = connect(&admin_url()).await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
            let client = connect(&url).await;
            client
                .batch_execute("CREATE EXTENSION xray_pg")
                .await
                .unwrap_or_else(|e| panic!("CREATE EXTENSION xray_pg: {e}; run scripts/setup.sh"));
            client
        });
        TestDb { rt, name, url, client }
    }

    fn query(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Vec<tokio_postgres::Row> {
        self.rt
            .block_on(self.client.query(sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        self.rt.block_on(async {
            let admin = connect(&admin_url()).await;
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        });
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL ({url}): {e}; run scripts/setup.sh"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A program on PATH or in root's sbin directories.
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn preflight() -> PathBuf {
    let missing: Vec<&str> = [
        ("nmap", "nmap"),
        ("nginx", "nginx"),
        ("dnsmasq", "dnsmasq-base"),
        ("openssl", "openssl"),
    ]
    .iter()
    .filter(|(bin, _)| find(bin).is_none())
    .map(|(_, pkg)| *pkg)
    .collect();
    assert!(
        missing.is_empty(),
        "the nmap end-to-end test needs the Debian packages {}; run scripts/setup.sh",
        missing.join(", ")
    );
    find("nmap").unwrap()
}

/// A port that is free on 127.0.0.1 for TCP and UDP right now.
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
}

/// `demo-services` as a child, driven over its stdin and stdout.
struct Services {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    ready: Value,
}

impl Services {
    fn start(dir: &Path, tls_port: u16, dns_port: u16) -> Services {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-services"));
        cmd.arg("--dir")
            .arg(dir)
            .args([
                "--domain",
                DOMAIN,
                "--tls-port",
                &tls_port.to_string(),
                "--dns-port",
                &dns_port.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl only; the services die with this test even if it is killed.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start demo-services");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut s = Services {
            child,
            stdin,
            lines,
            ready: Value::Null,
        };
        let line = match s.lines.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = s.child.kill();
                let mut err = String::new();
                if let Some(mut e) = s.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("demo-services did not start: {}", err.trim());
            }
        };
        let json = line
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("demo-services said {line:?}"));
        s.ready = serde_json::from_str(json).unwrap();
        s
    }

    fn command(&mut self, cmd: &str) {
        eprintln!("[e2e] demo-services: {cmd}");
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("demo-services did not answer {cmd:?}"));
        assert_eq!(line, format!("ok {cmd}"), "demo-services");
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "quit");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `xray-loader scan --assets <assets>` into the database, bounded in
/// time; returns the scan id.
fn scan(db: &TestDb, assets: &Path) -> String {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xray-loader"))
        .args(["scan", "--assets"])
        .arg(assets)
        .env("DATABASE_URL", &db.url)
        .env_remove("XRAY_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xray-loader");
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()));
    let err = pipe(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > SCAN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("xray-loader scan took more than {SCAN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "xray-loader scan failed: {}", err.trim());
    eprintln!("[e2e] scan in {:.0?}: {}", started.elapsed(), out.trim());
    let fields: Vec<&str> = out.trim().split('\t').collect();
    assert_eq!(fields.len(), 3, "{out}");
    assert_eq!(fields[1], "applied", "{out}");
    fields[0].to_string()
}

/// `EVENT BUCKET HOST PORT DETAIL TOOL` per event of one scan.
fn events(db: &TestDb, scan_id: &str) -> BTreeSet<String> {
    db.query(
        "SELECT event_type, risk_bucket, observed_host, port, detail, \
                coalesce(evidence->>'tool', evidence->'last_open'->>'tool', '-') \
           FROM xray.exposure_events WHERE scan_id = $1::text::uuid ORDER BY event_id",
        &[&scan_id],
    )
    .iter()
    .map(|r| {
        format!(
            "{} {} {} {} {} {}",
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2),
            r.get::<_, i32>(3),
            r.get::<_, Option<String>>(4).unwrap_or_default(),
            r.get::<_, String>(5)
        )
    })
    .collect()
}

fn open_exposures(db: &TestDb) -> BTreeSet<String> {
    db.query(
        "SELECT risk_bucket || ' ' || observed_host || ' ' || port FROM xray.exposures WHERE status = 'open'",
        &[],
    )
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect()
}

fn set(items: Vec<String>) -> BTreeSet<String> {
    items.into_iter().collect()
}

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
    let nmap = preflight();
    let dir = std::env::temp_dir().join(format!("xray-e2e-nmap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    struct RmDir(PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = RmDir(dir.clone());
    let db = TestDb::new();
    let (tls, dns) = (free_port(), free_port());
    let mut svc = Services::start(&dir, tls, dns);
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
    let wrapper = dir.join("nmap-that-fails");
    std::fs::write(&wrapper, format!("#!/bin/sh\n\"{}\" \"$@\"\nexit 1\n", nmap.display())).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let failing = dir.join("assets-failing-nmap.toml");
    std::fs::write(&failing, with_nmap(&text, &wrapper)).unwrap();
    let open_before = open_exposures(&db);
    let third = events(&db, &scan(&db, &failing));
    assert!(third.is_empty(), "a failed nmap run proves nothing: {third:#?}");
    assert_eq!(open_exposures(&db), open_before);

    // 4. The same state with a working nmap: now they are fixed.
    let fourth = events(&db, &scan(&db, &assets));
    let fixed: BTreeSet<String> = fourth
        .iter()
        .map(|e| e.split(' ').take(4).collect::<Vec<_>>().join(" "))
        .collect();
    let mut want = Vec::new();
    for h in hosts {
        for (bucket, port) in [("RB3", tls), ("RB4", tls), ("RB5", tls), ("RB6", 9200)] {
            want.push(format!("FIXED {bucket} {h} {port}"));
        }
    }
    assert_eq!(fixed, set(want), "fourth scan: {fourth:#?}");
    assert_eq!(
        open_exposures(&db),
        set(vec![format!("RB7 {DOMAIN} 0")]),
        "only DMARC p=none is left"
    );
    drop(svc);
}
