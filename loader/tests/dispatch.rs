//! The dispatcher and `collect --from` end to end, and screenshots in bundles: the real
//! `xray-loader dispatch` on a free loopback port, the real nmap against an HTTP server
//! this test runs on 127.0.0.1, the real headless Chromium (Debian's /usr/bin/chromium),
//! and every bundle checked with the nweb crate alone.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nweb::bundle::{self, BundleInput, Status};
use nweb::target_spec::{document_cid, TargetSpec};
use nweb::{unixfs, Cid};
use serde_json::{json, Value};
use xray_tests::TempDir;

const RUN_LIMIT: Duration = Duration::from_secs(150);

/// A tiny HTTP server on 127.0.0.1: `respond(path)` gives (status, content type, body).
/// Stops when dropped.
struct Http {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

type Handler = dyn Fn(&str) -> (u16, &'static str, Vec<u8>) + Send + Sync;
type Responder = Arc<Handler>;

impl Http {
    fn start(respond: Responder) -> Http {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + RUN_LIMIT;
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((conn, _)) => {
                        let r = respond.clone();
                        std::thread::spawn(move || serve(conn, &*r));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Http { port, stop, thread: Some(thread) }
    }

    /// A web page, what nmap calls http and Chromium can draw.
    fn page() -> Http {
        Http::start(Arc::new(|_| {
            (200, "text/html", b"<html><head><title>dispatch test</title></head><body style=\"background:#c00\"><h1>Hello from loopback</h1></body></html>".to_vec())
        }))
    }
}

fn serve(mut conn: TcpStream, respond: &Handler) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() || first.is_empty() {
        return;
    }
    loop {
        let mut l = String::new();
        match reader.read_line(&mut l) {
            Ok(0) | Err(_) => break,
            Ok(_) if l == "\r\n" || l == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, ctype, body) = respond(&path);
    let head = format!(
        // Python's http.server headers, which nmap's probes name as http at once.
        "HTTP/1.1 {status} OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
}

impl Drop for Http {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `xray-loader dispatch` on a free port; killed when dropped.
struct Dispatcher {
    url: String,
    child: Child,
}

impl Dispatcher {
    fn start(specs: &Path, deny: Option<&Path>) -> Dispatcher {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xray-loader"));
        cmd.args(["dispatch", "--listen", "127.0.0.1:0", "--specs"]).arg(specs);
        if let Some(d) = deny {
            cmd.arg("--deny").arg(d);
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("http://127.0.0.1:"), "dispatch printed {line:?}");
        Dispatcher { url: line.trim().to_string(), child }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xray-loader"));
    for v in ["DATABASE_URL", "XRAY_LOG", "RUST_LOG"] {
        cmd.env_remove(v);
    }
    let mut child = cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
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
    Run { code: status.code(), stdout: out_t.join().unwrap(), stderr: err_t.join().unwrap() }
}

fn get(url: &str) -> Vec<u8> {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut c = TcpStream::connect(host).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(all.starts_with(b"HTTP/1.1 200"), "{url}: {}", String::from_utf8_lossy(&all[..split]));
    all[split + 4..].to_vec()
}

/// The collector's own configuration: 127.0.0.0/29 and nothing else.
fn write_config(dir: &TempDir, tenant: &str) -> PathBuf {
    let p = dir.path("assets.toml");
    std::fs::write(
        &p,
        format!(
            "tenant_id = \"{tenant}\"\nlock_dir = \"{}\"\nvantage = \"test/loopback\"\n[[assets]]\nid = \"aaaaaaaa-0000-4000-8000-0000000000d1\"\ntype = \"cidr\"\nvalue = \"127.0.0.0/29\"\n",
            dir.root().display()
        ),
    )
    .unwrap();
    p
}

fn write_spec(dir: &Path, name: &str, targets: Value, ports: Value) {
    std::fs::create_dir_all(dir).unwrap();
    let spec = json!({"schema": "nweb.targetspec.v1", "targets": targets, "ports": ports,
        "profile": "nmap-top1k", "rate": {"packetsPerSecond": 2000}, "notes": "loopback test"});
    std::fs::write(dir.join(name), serde_json::to_string_pretty(&spec).unwrap()).unwrap();
}

fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Verifies the bundle as an indexer would and checks the CID printed; returns the
/// manifest and the files.
fn verified(out: &Path, cid: &str) -> (Value, BTreeMap<String, Vec<u8>>) {
    let files = read_tree(out);
    let text = String::from_utf8(files["manifest.json"].clone()).unwrap();
    let jsonl = String::from_utf8(files["scanprint/scanprint.v0.jsonl"].clone()).unwrap();
    let sha: BTreeMap<String, String> = files.iter().map(|(p, b)| (p.clone(), bundle::sha256_hex(b))).collect();
    let verdict = bundle::verify(&BundleInput { manifest: Some(&text), scanprint: Some(&jsonl), file_sha256: &sha, attested_merkle_root: None });
    assert_eq!(verdict.status, Status::Verified, "{verdict:?}");
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    assert_eq!(unixfs::directory_cid(&refs).unwrap().to_string(), cid);
    (serde_json::from_str(&text).unwrap(), files)
}

fn screenshot_paths(files: &BTreeMap<String, Vec<u8>>) -> Vec<&String> {
    files.keys().filter(|p| p.starts_with("assets/screenshots/")).collect()
}

#[test]
fn collect_takes_work_from_the_dispatcher_honours_its_deny_list_and_captures_the_web_service() {
    let dir = TempDir::new("dispatch-work");
    let web = Http::page();
    let web_port = web.port;
    let specs = dir.path("specs");
    // 127.0.0.0/30 is 127.0.0.1 and 127.0.0.2; the dispatcher denies .2.
    write_spec(&specs, "a.json", json!(["127.0.0.0/30"]), json!([web.port]));
    let deny = dir.path("deny.json");
    std::fs::write(&deny, r#"{"schema":"nweb.denylist.v1","deny":["127.0.0.2"]}"#).unwrap();
    let d = Dispatcher::start(&specs, Some(&deny));

    // What the dispatcher publishes is what it says it is.
    let work: Value = serde_json::from_slice(&get(&format!("{}/getwork", d.url))).unwrap();
    let spec_cid = work["specs"][0]["cid"].as_str().unwrap().to_string();
    let bytes = get(&format!("{}/specs/{spec_cid}", d.url));
    assert_eq!(document_cid(&bytes).to_string(), spec_cid);
    let spec = TargetSpec::from_fetched(&bytes, &spec_cid.parse::<Cid>().unwrap()).unwrap();
    assert_eq!(spec.ports, [web.port]);
    assert_eq!(work["specs"][0]["spec"], spec.to_value());
    let deny_bytes = get(&format!("{}/deny", d.url));
    assert_eq!(document_cid(&deny_bytes).to_string(), work["denyCid"].as_str().unwrap());
    assert_eq!(work["deny"]["deny"], json!(["127.0.0.2"]));

    let cfg = write_config(&dir, "d15a7c40-0000-4000-8000-000000000001");
    let out = dir.path("bundle");
    let r = run(&["collect", "--assets", cfg.to_str().unwrap(), "--from", &d.url, "--out", out.to_str().unwrap(), "--format", "json"]);
    drop(web);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let printed: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(printed["targetSpecCid"], spec_cid.as_str());
    let (manifest, files) = verified(&out, printed["cid"].as_str().unwrap());

    // The manifest names exactly the spec asked for, and its profile prices the bundle.
    assert_eq!(manifest["targetSpecCid"], spec_cid.as_str());
    assert_eq!(manifest["profile"], "nmap-top1k");
    // The deny-listed address was never handed to nmap.
    let xml = String::from_utf8_lossy(&files["raw/nmap.xml"]);
    assert!(xml.contains("127.0.0.1"), "{xml}");
    assert!(!xml.contains("127.0.0.2"), "a denied address was scanned: {xml}");
    let jsonl = String::from_utf8_lossy(&files["scanprint/scanprint.v0.jsonl"]);
    let open: Value = jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["port"] == web_port && l["state"] == "open")
        .unwrap_or_else(|| panic!("no open line for the web port: {jsonl}"));
    assert_eq!(open["service"], "http", "{open}");
    assert!(open["options"].as_str().unwrap().contains("--max-rate 2000"), "{open}");

    // The web service's screenshot: a PNG where the spec says, listed with its hash.
    let shots = screenshot_paths(&files);
    let want = format!("assets/screenshots/127.0.0.1/{}/http-{web_port}.png", open["ts"]);
    assert_eq!(shots, [&want], "{:?}", files.keys().collect::<Vec<_>>());
    let png = &files[&want];
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "{} bytes", png.len());
    let listed: Vec<&Value> = manifest["artifacts"].as_array().unwrap().iter().filter(|a| a["path"] == want.as_str()).collect();
    assert_eq!(listed, [&json!({"path": want, "sha256": bundle::sha256_hex(png)})]);
    assert_eq!(printed["screenshots"], 1);
}

#[test]
fn no_screenshots_leaves_them_out_and_a_plain_collect_names_no_spec() {
    let dir = TempDir::new("dispatch-noshots");
    let web = Http::page();
    let cfg = write_config(&dir, "d15a7c40-0000-4000-8000-000000000002");
    let out = dir.path("bundle");
    let port = web.port.to_string();
    let r = run(&[
        "collect", "--assets", cfg.to_str().unwrap(), "--target", "127.0.0.1", "--ports", &port,
        "--out", out.to_str().unwrap(), "--no-screenshots",
    ]);
    drop(web);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let (manifest, files) = verified(&out, r.stdout.lines().next().unwrap());
    assert!(screenshot_paths(&files).is_empty(), "{:?}", files.keys().collect::<Vec<_>>());
    assert_eq!(manifest["artifacts"].as_array().unwrap().len(), 1);
    assert!(manifest.get("targetSpecCid").is_none(), "{manifest}");
    // The web port was found open, so it is the flag that left the picture out.
    let jsonl = String::from_utf8_lossy(&files["scanprint/scanprint.v0.jsonl"]);
    assert!(jsonl.contains("\"state\":\"open\""), "{jsonl}");
}

fn assert_refused(r: &Run, out: &Path, want: &[&str]) {
    assert_eq!(r.code, Some(1), "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    for w in want {
        assert!(r.stderr.contains(w), "{w:?} not in {}", r.stderr);
    }
    assert!(!out.exists(), "a refused spec left {}", out.display());
}

#[test]
fn a_collector_refuses_a_spec_wider_than_its_scope_or_bytes_that_miss_their_cid() {
    let dir = TempDir::new("dispatch-refuse");
    let cfg = write_config(&dir, "d15a7c40-0000-4000-8000-000000000003");
    let out = dir.path("bundle");
    let collect = |from: &str, extra: &[&str]| {
        let mut a = vec!["collect", "--assets", cfg.to_str().unwrap(), "--from", from, "--out", out.to_str().unwrap()];
        a.extend_from_slice(extra);
        run(&a)
    };

    // Wider: the spec's /28 holds the collector's /29 and more.
    let specs = dir.path("specs");
    write_spec(&specs, "wide.json", json!(["127.0.0.0/28"]), json!([80]));
    let d = Dispatcher::start(&specs, None);
    let r = collect(&d.url, &[]);
    assert_refused(&r, &out, &["asks for more than this collector may scan", "127.0.0.0/28 is outside the configured scope", "refused"]);
    // A CID the dispatcher does not offer.
    let r = collect(&d.url, &["--spec", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"]);
    assert_refused(&r, &out, &["--spec bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy: the dispatcher", "does not offer it"]);
    drop(d);

    // A dispatcher that names one spec and serves another (in scope, so only the hash
    // can catch it).
    let honest = TargetSpec::from_json(&json!({"schema": "nweb.targetspec.v1", "targets": ["127.0.0.1"], "ports": [80],
        "profile": "nmap-top1k", "rate": {"packetsPerSecond": 10}}).to_string()).unwrap();
    let mut swapped = honest.clone();
    swapped.ports = vec![22, 80, 443];
    let (cid, served) = (honest.cid().to_string(), swapped.canonical_bytes());
    let empty_deny = nweb::target_spec::DenyList::default();
    let (deny_cid, deny_bytes) = (empty_deny.cid().to_string(), empty_deny.canonical_bytes());
    let getwork = json!({"specs": [{"cid": cid, "spec": honest.to_value()}], "denyCid": deny_cid, "deny": empty_deny.to_value()}).to_string();
    let liar = Http::start(Arc::new(move |path: &str| match path {
        "/getwork" => (200, "application/json", getwork.clone().into_bytes()),
        "/deny" => (200, "application/json", deny_bytes.clone()),
        p if p.starts_with("/specs/") => (200, "application/json", served.clone()),
        _ => (404, "text/plain", b"no".to_vec()),
    }));
    let r = collect(&format!("http://127.0.0.1:{}", liar.port), &[]);
    assert_refused(&r, &out, &[&format!("target spec: the bytes served hash to {}, not to the CID {cid}", swapped.cid()), "refused"]);
}

#[test]
fn dispatch_refuses_a_bad_spec_file_at_start_naming_file_and_field() {
    let dir = TempDir::new("dispatch-badspec");
    let specs = dir.path("specs");
    write_spec(&specs, "good.json", json!(["192.0.2.0/24"]), json!([80]));
    write_spec(&specs, "bad.json", json!(["192.0.2.1/24"]), json!([80]));
    let r = run(&["dispatch", "--listen", "127.0.0.1:0", "--specs", specs.to_str().unwrap()]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_eq!(r.stdout, "", "no URL is printed before the files are valid");
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    let bad = specs.join("bad.json");
    assert!(
        r.stderr.contains(&format!("{}: targets[0]: \"192.0.2.1/24\" has host bits set", bad.display())),
        "{}",
        r.stderr
    );
    let deny = dir.path("deny.json");
    std::fs::write(&deny, r#"{"schema":"nweb.denylist.v1","deny":["nope"]}"#).unwrap();
    std::fs::remove_file(&bad).unwrap();
    let r = run(&["dispatch", "--listen", "127.0.0.1:0", "--specs", specs.to_str().unwrap(), "--deny", deny.to_str().unwrap()]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("{}: deny[0]: \"nope\" is not an IP address or CIDR", deny.display())), "{}", r.stderr);
}
