//! What the end-to-end tests share: a fresh database, the demo services as a
//! child driven over stdin, and `xray-loader scan` run as a process.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use xray_tests::{admin_url, connect, db_url};

pub const DOMAIN: &str = "watchtower.test";
/// One loader run: the demo configuration's tool timeouts are 300 s at most.
pub const SCAN_LIMIT: Duration = Duration::from_secs(420);

/// Removes a directory when dropped (also on panic).
pub struct RmDir(pub PathBuf);

impl Drop for RmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An executable wrapper that runs `real` and then exits 1: the tool's
/// output is real, its exit status says it failed.
pub fn failing_wrapper(dir: &Path, real: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let name = real.file_name().unwrap().to_string_lossy();
    let wrapper = dir.join(format!("{name}-that-fails"));
    std::fs::write(&wrapper, format!("#!/bin/sh\n\"{}\" \"$@\"\nexit 1\n", real.display())).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

/// A fresh database with the extension, dropped when the test ends (also on panic).
pub struct TestDb {
    rt: tokio::runtime::Runtime,
    name: String,
    pub url: String,
    client: tokio_postgres::Client,
}

impl TestDb {
    pub fn new() -> TestDb {
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

    pub fn query(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Vec<tokio_postgres::Row> {
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


/// A program on PATH or in root's sbin directories.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Fails the test, naming what to install, unless every program is found
/// (`(program, what provides it)`).
pub fn preflight(test: &str, needs: &[(&str, &str)]) {
    let missing: Vec<&str> = needs.iter().filter(|(bin, _)| find(bin).is_none()).map(|(_, pkg)| *pkg).collect();
    assert!(
        missing.is_empty(),
        "the {test} end-to-end test needs {}; run scripts/setup.sh",
        missing.join(", ")
    );
}

/// A port that is free on 127.0.0.1 for TCP and UDP right now.
pub fn free_port() -> u16 {
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
pub struct Services {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    pub ready: Value,
}

impl Services {
    /// `extra`: more demo-services arguments (`--extra-ip`, `--toolchain`).
    pub fn start(dir: &Path, tls_port: u16, dns_port: u16, extra: &[&str]) -> Services {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-services"));
        cmd.arg("--dir")
            .arg(dir)
            .args(extra)
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

    pub fn command(&mut self, cmd: &str) {
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
pub fn scan(db: &TestDb, assets: &Path) -> String {
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
pub fn events(db: &TestDb, scan_id: &str) -> BTreeSet<String> {
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

pub fn open_exposures(db: &TestDb) -> BTreeSet<String> {
    db.query(
        "SELECT risk_bucket || ' ' || observed_host || ' ' || port FROM xray.exposures WHERE status = 'open'",
        &[],
    )
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect()
}

pub fn set(items: Vec<String>) -> BTreeSet<String> {
    items.into_iter().collect()
}


/// The last scan of both end-to-end tests, with nginx and the silent listener
/// gone and the port scan working: RB3, RB4, RB5 and RB6 are FIXED on both
/// hosts, and only the domain's DMARC `p=none` stays open.
pub fn assert_all_fixed_but_dmarc(db: &TestDb, last: &BTreeSet<String>, tls: u16) {
    let fixed: BTreeSet<String> = last
        .iter()
        .map(|e| e.split(' ').take(4).collect::<Vec<_>>().join(" "))
        .collect();
    let mut want = Vec::new();
    for h in ["127.0.0.1", DOMAIN] {
        for (bucket, port) in [("RB3", tls), ("RB4", tls), ("RB5", tls), ("RB6", 9200)] {
            want.push(format!("FIXED {bucket} {h} {port}"));
        }
    }
    assert_eq!(fixed, set(want), "last scan: {last:#?}");
    assert_eq!(
        open_exposures(db),
        set(vec![format!("RB7 {DOMAIN} 0")]),
        "only DMARC p=none is left"
    );
}
