//! `xray-loader collect` end to end: the real binary runs the real nmap against a TCP
//! listener this test starts on 127.0.0.1 (loopback only, every run bounded in time),
//! and everything it writes is checked with the nweb crate: the Merkle root, the artifact
//! hash, the Kubo CID of the directory and the CAR. The `--ingest` test needs the
//! PostgreSQL of scripts/setup.sh (`DATABASE_URL`, default the local socket) and makes
//! its own database.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use nweb::bundle::{self, BundleInput, Status};
use nweb::{car, merkle, unixfs, Cid};
use xray_tests::{admin_url, connect, db_url, TempDir};

/// The loader kills nmap after this; the test kills the loader a little later.
const NMAP_TIMEOUT_SECS: u64 = 120;
const RUN_LIMIT: Duration = Duration::from_secs(NMAP_TIMEOUT_SECS + 30);
const SSH_BANNER: &[u8] = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";

/// An SSH-looking service on 127.0.0.1: it greets every connection with a banner, so
/// `nmap -sV` identifies it at once. Stops when dropped, or after two minutes anyway.
struct Listener {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn start() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(NMAP_TIMEOUT_SECS);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((conn, _)) => {
                        std::thread::spawn(move || serve(conn));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Listener {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

fn serve(mut conn: TcpStream) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = conn.write_all(SSH_BANNER);
    let mut buf = [0u8; 512];
    let _ = conn.read(&mut buf);
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `openssl s_server` on 127.0.0.1 with a fresh self-signed certificate, so the
/// `ssl-cert` script has something to read. Killed when dropped.
struct TlsServer {
    port: u16,
    /// `sha256:<hex>` of the certificate's DER, computed by OpenSSL and sha256, not by
    /// the code under test.
    cert_fpr: String,
    child: std::process::Child,
}

impl TlsServer {
    fn start(dir: &TempDir) -> TlsServer {
        let (key, cert) = (dir.path("key.pem"), dir.path("cert.pem"));
        let st = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .args(["-days", "30", "-subj", "/CN=collect-test.invalid", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl (Debian package openssl, scripts/setup.sh)");
        assert!(st.success(), "openssl req failed");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        assert!(der.status.success());
        let cert_fpr = format!("sha256:{}", bundle::sha256_hex(&der.stdout));
        let port = closed_port();
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-www",
                "-quiet",
                "-cert",
            ])
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = TlsServer { port, cert_fpr, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_config(dir: &TempDir, tenant: &str, extra: &str) -> PathBuf {
    let p = dir.path("assets.toml");
    std::fs::write(
        &p,
        format!(
            r#"
tenant_id = "{tenant}"
lock_dir = "{lock}"
deny = ["127.0.0.2"]
{extra}
[[assets]]
id = "aaaaaaaa-0000-4000-8000-0000000000c1"
type = "ip"
value = "127.0.0.1"
"#,
            lock = dir.root().display()
        ),
    )
    .unwrap();
    p
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary, killing it if it outlives `RUN_LIMIT`.
fn run(args: &[&str], database_url: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xray-loader"));
    for v in ["DATABASE_URL", "XRAY_LOG", "RUST_LOG"] {
        cmd.env_remove(v);
    }
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("xray-loader {args:?} ran longer than {RUN_LIMIT:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code: status.code(),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Every file under `dir` by its relative `/` path.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Checks a bundle directory and its CAR with the nweb crate alone, and returns the parsed
/// scanprint lines.
fn check_bundle(dir: &Path, car_path: &Path, cid: &str, root: &str, tool: &str) -> Vec<Value> {
    let files = read_tree(dir);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    let raw_path = if tool == "nmap" {
        "raw/nmap.xml"
    } else {
        "raw/masscan.json"
    };
    assert_eq!(names, ["manifest.json", raw_path, "scanprint/scanprint.v0.jsonl"]);

    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let jsonl = String::from_utf8(files["scanprint/scanprint.v0.jsonl"].clone()).unwrap();
    let raw = &files[raw_path];
    assert_eq!(manifest["schema"], "nweb.bundle.v1");
    let namespace = if tool == "nmap" { "nweb.io" } else { "masspull.org" };
    assert_eq!(manifest["namespace"], namespace);
    assert_eq!(manifest["datasetType"], tool);
    assert_eq!(manifest["tool"], tool);
    assert!(!manifest["toolVersion"].as_str().unwrap().is_empty());
    assert!(manifest["startedAt"].as_u64().unwrap() <= manifest["finishedAt"].as_u64().unwrap());
    assert_eq!(manifest["scanprint"]["path"], "scanprint/scanprint.v0.jsonl");

    // The Merkle root: the nweb crate's root of the jsonl, in the manifest and on stdout.
    let computed = merkle::scanprint_merkle_root(&jsonl).unwrap();
    assert_eq!(manifest["scanprint"]["merkleRoot"], computed.as_str());
    assert_eq!(root, computed);

    // The artifact hash is the raw output's.
    assert_eq!(manifest["artifacts"][0]["path"], raw_path);
    assert_eq!(manifest["artifacts"][0]["sha256"], bundle::sha256_hex(raw).as_str());
    if tool == "nmap" {
        assert!(String::from_utf8_lossy(raw).contains("<nmaprun"));
    }

    // A verifier agrees.
    let sha: BTreeMap<String, String> = files.iter().map(|(p, b)| (p.clone(), bundle::sha256_hex(b))).collect();
    let text = String::from_utf8(files["manifest.json"].clone()).unwrap();
    let verdict = bundle::verify(&BundleInput {
        manifest: Some(&text),
        scanprint: Some(&jsonl),
        file_sha256: &sha,
        attested_merkle_root: Some(root),
    });
    assert_eq!(verdict.status, Status::Verified, "{verdict:?}");

    // The CID printed is the Kubo CID of the directory as it is on disk.
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    let recomputed = unixfs::directory_cid(&refs).unwrap();
    assert_eq!(recomputed.to_string(), cid);
    assert!(cid.starts_with("bafy"), "a CIDv1 dag-pb directory: {cid}");

    // The CAR round-trips through the verified import: same root, same files.
    let car_bytes = std::fs::read(car_path).unwrap();
    let unpacked = car::unpack_car(&car_bytes, None, 64 << 20).unwrap();
    assert_eq!(unpacked.root, recomputed);
    let expected: Cid = cid.parse().unwrap();
    let again = car::unpack_car(&car_bytes, Some(&expected), 64 << 20).unwrap();
    let from_car: BTreeMap<String, Vec<u8>> = again.files.into_iter().collect();
    assert_eq!(from_car, files);

    jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn line_for(lines: &[Value], port: u16) -> &Value {
    lines
        .iter()
        .find(|l| l["port"] == port && l["ip"] == "127.0.0.1")
        .unwrap_or_else(|| panic!("no scanprint line for 127.0.0.1:{port} in {lines:?}"))
}

#[test]
fn collect_scans_loopback_with_nmap_and_writes_a_verifiable_bundle() {
    let dir = TempDir::new("collect-nmap");
    let listener = Listener::start();
    let open_port = listener.port;
    let tls = TlsServer::start(&dir);
    let closed = closed_port();
    let cfg = write_config(
        &dir,
        "c011ec70-0000-4000-8000-000000000001",
        &format!(
            "vantage = \"test/loopback\"\nports = [{open_port}, {}, {closed}]",
            tls.port
        ),
    );
    let out = dir.path("bundle");
    let timeout = NMAP_TIMEOUT_SECS.to_string();
    let r = run(
        &[
            "collect",
            "--no-screenshots",
            "--assets",
            cfg.to_str().unwrap(),
            "--target",
            "127.0.0.1",
            "--out",
            out.to_str().unwrap(),
            "--timeout",
            &timeout,
        ],
        None,
    );
    drop(listener);
    let (tls_port, tls_fpr) = (tls.port, tls.cert_fpr.clone());
    drop(tls);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    // Stdout: the CID, then the Merkle root; nothing else.
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{:?}", r.stdout);
    let (cid, root) = (lines[0], lines[1]);
    assert!(root.starts_with("0x") && root.len() == 66, "{root}");

    let car_path = dir.path("bundle.car");
    assert!(out.join("manifest.json").is_file());
    assert!(out.join("scanprint/scanprint.v0.jsonl").is_file());
    assert!(out.join("raw/nmap.xml").is_file());
    assert!(car_path.is_file(), "the CAR defaults to <out>.car");
    let manifest: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["vantage"], "test/loopback");

    let sp = check_bundle(&out, &car_path, cid, root, "nmap");
    let open = line_for(&sp, open_port);
    assert_eq!(open["state"], "open");
    assert_eq!(open["service"], "ssh");
    assert_eq!(open["product"], "OpenSSH");
    assert_eq!(open["tool"], "nmap");
    assert_eq!(open["vantage"], "test/loopback");
    assert!(open["options"].as_str().unwrap().contains("-sV"), "{open}");
    assert_eq!(line_for(&sp, closed)["state"], "closed");
    // ssl-cert ran: the TLS port carries the certificate's fingerprint, never the certificate.
    let tls_line = line_for(&sp, tls_port);
    assert_eq!(tls_line["state"], "open");
    assert_eq!(tls_line["cert_fpr"], tls_fpr.as_str(), "{tls_line}");
    let text = std::fs::read_to_string(out.join("scanprint/scanprint.v0.jsonl")).unwrap();
    assert!(!text.contains("BEGIN CERTIFICATE"));
    // No staging leftovers next to the bundle.
    let stray: Vec<String> = std::fs::read_dir(dir.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // The directory now exists: a second run refuses it before scanning.
    let r = run(
        &[
            "collect",
            "--no-screenshots",
            "--assets",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_ne!(r.code, Some(0));
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("exists and is not empty"), "{}", r.stderr);
}

#[test]
fn collect_with_masscan_bundles_its_json_output() {
    // masscan cannot scan loopback, so a stand-in prints its version and writes a
    // recorded `-oJ` file where the loader asked for it; the bundle is checked as for nmap.
    let dir = TempDir::new("collect-masscan");
    let args_log = dir.path("masscan-args");
    let fake = dir.path("masscan");
    std::fs::write(
        &fake,
        format!(
            r#"#!/bin/sh
if [ "$1" = "--version" ]; then
  echo; echo "Masscan version 1.3.2 ( https://github.com/robertdavidgraham/masscan )"; exit 0
fi
echo "$@" > '{log}'
prev=""; out=""
for a in "$@"; do [ "$prev" = "-oJ" ] && out="$a"; prev="$a"; done
cat > "$out" <<'EOF'
[
{{   "ip": "127.0.0.1",   "timestamp": "1700000000", "ports": [ {{"port": 4443, "proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 64}} ] }}
]
EOF
"#,
            log = args_log.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cfg = write_config(&dir, "c011ec70-0000-4000-8000-000000000004", "ports = [4443, 4444]");
    let out = dir.path("m");
    let r = run(
        &[
            "collect",
            "--no-screenshots",
            "--assets",
            cfg.to_str().unwrap(),
            "--tool",
            "masscan",
            "--tool-path",
            fake.to_str().unwrap(),
            "--vantage",
            "test/loopback",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{:?}", r.stdout);
    let sp = check_bundle(&out, &dir.path("m.car"), lines[0], lines[1], "masscan");
    let l = line_for(&sp, 4443);
    assert_eq!(
        (l["state"].as_str(), l["tool"].as_str()),
        (Some("open"), Some("masscan"))
    );
    assert_eq!(l["tool_version"], "1.3.2");
    let manifest: Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["toolVersion"], "1.3.2");
    let args = std::fs::read_to_string(&args_log).unwrap();
    assert!(args.starts_with("-p 4443-4444 --rate 150 -oJ "), "{args}");
    assert!(args.trim_end().ends_with(" 127.0.0.1"), "{args}");
}

#[test]
fn out_of_scope_and_denied_targets_are_refused_before_any_scan() {
    let dir = TempDir::new("collect-scope");
    // A scanner that only leaves a mark: it must never run.
    let mark = dir.path("scanner-ran");
    let fake = dir.path("fake-nmap");
    std::fs::write(&fake, format!("#!/bin/sh\ntouch '{}'\nexit 1\n", mark.display())).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cfg = write_config(&dir, "c011ec70-0000-4000-8000-000000000002", "ports = [22]");
    let out = dir.path("bundle");
    let cases = [
        (
            "127.0.0.9",
            "xray-loader: target 127.0.0.9 is outside the configured scope",
        ),
        (
            "127.0.0.0/29",
            "xray-loader: target 127.0.0.0/29 is outside the configured scope",
        ),
        ("127.0.0.2", "xray-loader: target 127.0.0.2 is on the deny list"),
        (
            "not a host!",
            "xray-loader: target \"not a host!\" is not an IP, CIDR or domain",
        ),
    ];
    for (target, want) in cases {
        let r = run(
            &[
                "collect",
                "--no-screenshots",
                "--assets",
                cfg.to_str().unwrap(),
                "--target",
                target,
                "--out",
                out.to_str().unwrap(),
                "--vantage",
                "test/loopback",
                "--tool-path",
                fake.to_str().unwrap(),
            ],
            None,
        );
        assert_ne!(r.code, Some(0), "{target}");
        assert_eq!(r.stdout, "", "{target}");
        assert_eq!(r.stderr.lines().count(), 1, "{target}: {}", r.stderr);
        assert!(r.stderr.starts_with(want), "{target}: {}", r.stderr);
        assert!(!out.exists(), "{target}: no bundle");
        assert!(!dir.path("bundle.car").exists(), "{target}: no CAR");
    }
    // Without a vantage nothing runs either.
    let r = run(
        &[
            "collect",
            "--no-screenshots",
            "--assets",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--tool-path",
            fake.to_str().unwrap(),
        ],
        None,
    );
    assert_ne!(r.code, Some(0));
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("no vantage: pass --vantage"), "{}", r.stderr);
    assert!(!mark.exists(), "the scanner was started");
}

// ---------------------------------------------------------------------------------
// --ingest, against a fresh database (as tests/src/lib.rs makes them).
// ---------------------------------------------------------------------------------




#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_ingest_loads_a_verified_bundle() {
    let admin = connect(&admin_url()).await;
    let name = format!("xray_collect_test_{}", uuid::Uuid::new_v4().simple());
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = db_url(&name);
    let client = connect(&url).await;
    client.batch_execute("CREATE EXTENSION xray_pg").await.unwrap();

    let dir = TempDir::new("collect-ingest");
    let listener = Listener::start();
    let port = listener.port;
    let cfg = write_config(&dir, "c011ec70-0000-4000-8000-000000000003", "");
    let out = dir.path("b");
    let car_path = dir.path("elsewhere.car");
    let args: Vec<String> = [
        "collect",
        "--no-screenshots",
        "--assets",
        cfg.to_str().unwrap(),
        "--target",
        "127.0.0.1",
        "--ports",
        &port.to_string(),
        "--vantage",
        "test/loopback",
        "--out",
        out.to_str().unwrap(),
        "--car",
        car_path.to_str().unwrap(),
        "--timeout",
        &NMAP_TIMEOUT_SECS.to_string(),
        "--format",
        "json",
        "--ingest",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let r = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs, Some(&url))
    })
    .await
    .unwrap();
    drop(listener);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    let printed: Value = serde_json::from_str(&r.stdout).unwrap();
    let cid = printed["cid"].as_str().unwrap().to_string();
    let root = printed["merkleRoot"].as_str().unwrap().to_string();
    assert_eq!(printed["ingested"], "verified");
    assert_eq!(printed["lines"], 1);
    assert_eq!(printed["car"], car_path.to_str().unwrap());
    assert!(!dir.path("b.car").exists(), "--car replaces the default path");
    check_bundle(&out, &car_path, &cid, &root, "nmap");

    let row = client
        .query_one(
            "SELECT status, reason, merkle_root, computed_merkle_root, dataset_type, vantage, scanprint_lines
               FROM nweb.bundles WHERE cid = $1",
            &[&cid],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "verified");
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, String>(2), root);
    assert_eq!(row.get::<_, String>(3), root);
    assert_eq!(row.get::<_, String>(4), "nmap");
    assert_eq!(row.get::<_, String>(5), "test/loopback");
    assert_eq!(row.get::<_, i32>(6), 1);
    let sp = client
        .query_one(
            "SELECT host(ip), port, proto, state, service, product, tool
               FROM nweb.scanprint WHERE bundle_cid = $1",
            &[&cid],
        )
        .await
        .unwrap();
    assert_eq!(sp.get::<_, String>(0), "127.0.0.1");
    assert_eq!(sp.get::<_, i32>(1), i32::from(port));
    assert_eq!(sp.get::<_, String>(2), "tcp");
    assert_eq!(sp.get::<_, String>(3), "open");
    assert_eq!(sp.get::<_, Option<String>>(4).as_deref(), Some("ssh"));
    assert_eq!(sp.get::<_, Option<String>>(5).as_deref(), Some("OpenSSH"));
    assert_eq!(sp.get::<_, String>(6), "nmap");

    drop(client);
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}
