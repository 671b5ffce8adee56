//! Runs the built `xray-loader` binary. No database and no network: scans use
//! the test doubles in `fixtures/loader/bin`, which print recorded tool output.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use xray_engine::ScanPayload;
use xray_tests::TempDir;

const TENANT: &str = "11111111-1111-1111-1111-111111111111";
/// Nothing listens there: connection attempts fail at once.
const NO_DB: &str = "host=/nonexistent-xray-socket-dir dbname=x user=x connect_timeout=2";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn loader() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xray-loader"));
    for v in ["DATABASE_URL", "XRAY_LOG", "RUST_LOG", "XRAY_FAKE_TOOL_LOG"] {
        c.env_remove(v);
    }
    c.stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    loader().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The cron contract: non-zero exit and exactly one `xray-loader:` line.
fn assert_one_line_failure(o: &Output) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(lines[0].starts_with("xray-loader: "), "stderr: {err}");
    assert!(o.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&o.stdout));
    lines[0].to_string()
}

/// A config pointing the tools at the test doubles.
fn scan_config(dir: &TempDir, tools: [&str; 4], extra: &str) -> PathBuf {
    let bin = fixtures().join("loader/bin");
    let [naabu, httpx, tlsx, nuclei] = tools.map(|t| bin.join(t).display().to_string());
    let text = format!(
        r#"
tenant_id = "{TENANT}"
ports = [2222, 9200, 18443]
lock_dir = "{lock}"
{extra}

[timeouts]
naabu = 20
httpx = 20
tlsx = 20
nuclei = 2

[tools]
naabu = "{naabu}"
httpx = "{httpx}"
tlsx = "{tlsx}"
nuclei = "{nuclei}"
nuclei_templates = ["templates/nuclei"]

[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000001"
type = "ip"
value = "127.0.0.1"
tags = ["lab"]

[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000002"
type = "cidr"
value = "192.0.2.0/30"
"#,
        lock = dir.root().display()
    );
    dir.write("assets.toml", &text)
}

const FAKE: [&str; 4] = ["naabu", "httpx", "tlsx", "nuclei"];

fn dry_run(config: &Path, extra_args: &[&str], envs: &[(&str, &Path)]) -> (Output, Value) {
    let mut c = loader();
    c.args(["scan", "--assets"])
        .arg(config)
        .arg("--dry-run")
        .args(extra_args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is the JSON payload");
    (o, v)
}

#[test]
fn help_and_version() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for cmd in ["ingest", "events", "scan", "example-config"] {
        assert!(out.contains(cmd), "{out}");
    }
    assert!(run(&["--version"]).status.success());
}

#[test]
fn usage_errors_are_one_line_with_exit_2() {
    let o = run(&["scan", "--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    let line = assert_one_line_failure(&o);
    assert!(line.contains("--bogus"), "{line}");
    let o = run(&["events", "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    assert_one_line_failure(&o);
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    let line = assert_one_line_failure(&o);
    assert!(line.contains("a subcommand is required"), "{line}");
}

#[test]
fn example_config_is_printed() {
    let o = run(&["example-config"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("tenant_id") && out.contains("[[assets]]"));
}

#[test]
fn config_errors_are_one_line() {
    let dir = TempDir::new("loader-cli-config-errors");
    let cfg = scan_config(&dir, FAKE, "");
    let base = std::fs::read_to_string(&cfg).unwrap();
    let cases: Vec<(String, &str)> = vec![
        ("tenant_id = \n".into(), "line 1: "),
        (base.replace(TENANT, "acme"), "tenant_id: invalid UUID \"acme\""),
        (
            base.replace("192.0.2.0/30", "192.0.2.0/33"),
            "assets[1]: value: \"192.0.2.0/33\" is not a CIDR like 192.0.2.0/24",
        ),
        (
            base.replace("192.0.2.0/30", "10.0.0.0/8"),
            "assets[1] 10.0.0.0/8 expands to 16777214 addresses, more than max_targets = 256",
        ),
        (base.replace("[[assets]]", "[[asset]]"), "unknown field `asset`"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = dir.write(&format!("bad{i}.toml"), text);
        let o = loader()
            .args(["scan", "--dry-run", "--assets"])
            .arg(&p)
            .output()
            .unwrap();
        let line = assert_one_line_failure(&o);
        assert!(line.contains(want), "case {i}: {line}");
        assert!(line.contains(&p.display().to_string()), "names the file: {line}");
    }
    let o = loader()
        .args(["scan", "--dry-run", "--assets", "/nonexistent/assets.toml"])
        .output()
        .unwrap();
    let line = assert_one_line_failure(&o);
    assert!(
        line.starts_with("xray-loader: cannot read config /nonexistent/assets.toml: "),
        "{line}"
    );
}

#[test]
fn targets_outside_the_scope_or_denied_are_refused() {
    let dir = TempDir::new("loader-cli-scope");
    let cfg = scan_config(&dir, FAKE, r#"deny = ["192.0.2.2"]"#);
    let o = loader()
        .args(["scan", "--dry-run", "--target", "198.51.100.7", "--assets"])
        .arg(&cfg)
        .output()
        .unwrap();
    let line = assert_one_line_failure(&o);
    assert!(
        line.contains("target 198.51.100.7 is outside the configured scope"),
        "{line}"
    );
    let o = loader()
        .args(["scan", "--dry-run", "--target", "192.0.2.2", "--assets"])
        .arg(&cfg)
        .output()
        .unwrap();
    let line = assert_one_line_failure(&o);
    assert!(line.ends_with("target 192.0.2.2 is on the deny list"), "{line}");
}

#[test]
fn dry_run_with_recorded_tool_output_prints_a_valid_payload() {
    let dir = TempDir::new("loader-cli-dry-run");
    let cfg = scan_config(&dir, FAKE, r#"deny = ["192.0.2.2"]"#);
    let log = dir.path("tools.log");
    let (o, v) = dry_run(&cfg, &[], &[("XRAY_FAKE_TOOL_LOG", &log)]);
    assert!(o.stderr.is_empty(), "no logs at the default level: {}", stderr(&o));
    let p = ScanPayload::from_value(&v).expect("valid contract payload");
    assert_eq!(p.schema_version, "1.2");
    assert_eq!(p.scan.tenant_id.to_string(), TENANT);
    assert_eq!(v["tool_versions"]["naabu"], "0.0.0-fake");

    let ep = &p.asset_results[0].endpoints[0];
    assert_eq!(ep.ip.as_deref(), Some("127.0.0.1"));
    let open: Vec<u16> = ep.ports.tcp.iter().map(|o| o.port).collect();
    assert_eq!(open, vec![2222, 9200, 18443]);
    assert_eq!(ep.http.len(), 1, "plain HTTP on the TLS port (400) is no site");
    assert_eq!(ep.tls[0].certificate.as_ref().unwrap().is_self_signed, Some(true));
    assert_eq!(ep.findings.nuclei[0].template_id, "watchtower-admin-panel");
    assert!(ep.findings.nuclei[0].raw.as_ref().unwrap()["nuclei_json"]
        .get("response")
        .is_none());
    let cov = ep.coverage.as_ref().expect("coverage block");
    assert_eq!(cov.tools, vec!["httpx", "naabu", "nuclei", "tlsx"]);
    assert_eq!(cov.tcp_ports, vec![2222, 9200, 18443]);
    let symptoms: Vec<(u16, &str)> = ep
        .errors
        .iter()
        .filter_map(|e| Some((e.symptom_port()?, e.symptom()?)))
        .collect();
    assert_eq!(symptoms, vec![(9200, "tcp_open_no_banner")], "ssh is RB1, not RB6");

    // 192.0.2.0/30 has hosts .1 and .2; .2 is denied. The fake naabu only
    // knows 127.0.0.1, so .1 has no open port.
    let cidr = &p.asset_results[1];
    let ips: Vec<&str> = cidr.endpoints.iter().filter_map(|e| e.ip.as_deref()).collect();
    assert_eq!(ips, vec!["192.0.2.1"]);
    assert!(cidr.endpoints[0].ports.tcp.is_empty());
    assert_eq!(cidr.endpoints[0].coverage.as_ref().unwrap().tools, vec!["naabu"]);

    let log = std::fs::read_to_string(&log).unwrap();
    let naabu: Vec<&str> = log.lines().filter(|l| l.starts_with("naabu\t")).collect();
    assert_eq!(naabu.len(), 1, "one naabu run over every address: {log}");
    assert!(naabu[0].ends_with("\t127.0.0.1 192.0.2.1"), "{log}");
    assert!(!log.contains("192.0.2.2"), "denied address never reaches a tool: {log}");
    assert!(naabu[0].contains("-p 2222,9200,18443"), "{log}");
}

#[test]
fn a_hanging_tool_is_killed_and_reported() {
    let dir = TempDir::new("loader-cli-timeout");
    let cfg = scan_config(&dir, ["naabu", "httpx", "tlsx", "fake-slow-tool"], "");
    let started = Instant::now();
    let (_, v) = dry_run(&cfg, &["--target", "127.0.0.1"], &[]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let p = ScanPayload::from_value(&v).unwrap();
    let ep = &p.asset_results[0].endpoints[0];
    let e = ep
        .errors
        .iter()
        .find(|e| e.tool.as_deref() == Some("nuclei"))
        .expect("nuclei error");
    assert_eq!(e.kind.as_deref(), Some("timeout"));
    assert_eq!(e.scope.as_deref(), Some("tool"));
    assert_eq!(e.details.as_ref().unwrap()["timeout_seconds"], 2);
    let cov = ep.coverage.as_ref().unwrap();
    assert!(!cov.tools.contains(&"nuclei".to_string()) && cov.nuclei_urls.is_empty());
}

#[test]
fn a_failing_tool_is_an_error_in_the_payload() {
    let dir = TempDir::new("loader-cli-failing");
    let cfg = scan_config(&dir, ["fake-failing-tool", "httpx", "tlsx", "nuclei"], "");
    let (_, v) = dry_run(&cfg, &["--target", "127.0.0.1"], &[]);
    let p = ScanPayload::from_value(&v).unwrap();
    let ep = &p.asset_results[0].endpoints[0];
    assert!(ep.ports.tcp.is_empty());
    assert_eq!(ep.errors.len(), 1);
    let e = &ep.errors[0];
    assert_eq!(
        (e.tool.as_deref(), e.kind.as_deref()),
        (Some("naabu"), Some("tool_exit"))
    );
    assert_eq!(e.details.as_ref().unwrap()["exit_code"], 3);
    assert!(e.details.as_ref().unwrap()["stderr"]
        .as_str()
        .unwrap()
        .contains("no valid ipv4"));
    assert!(ep.coverage.as_ref().unwrap().tools.is_empty());
    assert!(ep.coverage.as_ref().unwrap().tcp_ports.is_empty());
}

#[test]
fn out_writes_a_file_and_nothing_on_stdout() {
    let dir = TempDir::new("loader-cli-out");
    let cfg = scan_config(&dir, FAKE, "");
    let out = dir.path("payload.json");
    let o = loader()
        .args(["scan", "--target", "127.0.0.1", "--assets"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let text = std::fs::read_to_string(&out).unwrap();
    ScanPayload::from_json_str(&text).unwrap();
}

#[test]
fn a_second_scan_of_the_same_tenant_is_refused() {
    let dir = TempDir::new("loader-cli-lock");
    let cfg = scan_config(&dir, FAKE, "");
    let lock_path = dir.path(&format!("xray-loader-{TENANT}.lock"));
    let held: File = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    held.try_lock().unwrap();
    let o = loader()
        .args(["scan", "--dry-run", "--assets"])
        .arg(&cfg)
        .output()
        .unwrap();
    let line = assert_one_line_failure(&o);
    assert!(
        line.contains(&format!("another scan for tenant {TENANT} is running")),
        "{line}"
    );
    drop(held);
    assert!(loader()
        .args(["scan", "--dry-run", "--target", "127.0.0.1", "--assets"])
        .arg(&cfg)
        .output()
        .unwrap()
        .status
        .success());
}

#[test]
fn ingest_validates_before_touching_the_database() {
    let good = fixtures().join("loader/payload-1.2.minimal.json");
    let bad = fixtures().join("loader/payload.invalid-tenant.json");
    let o = loader()
        .args(["ingest", "--database-url", NO_DB])
        .arg(&bad)
        .output()
        .unwrap();
    let line = assert_one_line_failure(&o);
    assert!(
        line.ends_with("invalid payload: scan.tenant_id: invalid UUID \"tenant-one\""),
        "{line}"
    );

    // Both files are attempted: one invalid, one that cannot reach the database.
    let o = loader()
        .args(["ingest", "--database-url", NO_DB])
        .arg(&bad)
        .arg(&good)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].contains("payload.invalid-tenant.json: invalid payload"),
        "{err}"
    );
    assert!(
        lines[1].contains(
            "payload-1.2.minimal.json: cannot connect to database (host=/nonexistent-xray-socket-dir dbname=x user=x)"
        ),
        "{err}"
    );
    assert!(o.stdout.is_empty());

    let o = loader()
        .args(["ingest", "--database-url", NO_DB, "/nonexistent/p.json"])
        .output()
        .unwrap();
    let line = assert_one_line_failure(&o);
    assert!(
        line.starts_with("xray-loader: /nonexistent/p.json: cannot read: "),
        "{line}"
    );
}

#[test]
fn ingest_reads_stdin_and_database_url_from_the_environment() {
    let good = fixtures().join("loader/payload-1.2.minimal.json");
    let o = loader()
        .args(["ingest", "-"])
        .env(
            "DATABASE_URL",
            "postgres://xray:s3cret@127.0.0.1:1/wt?connect_timeout=2",
        )
        .stdin(File::open(good).unwrap())
        .output()
        .unwrap();
    let line = assert_one_line_failure(&o);
    assert!(
        line.starts_with("xray-loader: -: cannot connect to database (host=127.0.0.1 dbname=wt user=xray)"),
        "{line}"
    );
    assert!(!line.contains("s3cret"), "password leaked: {line}");
}

#[test]
fn events_errors_are_one_line() {
    let line = assert_one_line_failure(&run(&["events", "--since", "yesterday", "--database-url", NO_DB]));
    assert!(line.contains("--since \"yesterday\" is not an RFC 3339 time"), "{line}");
    let line = assert_one_line_failure(&run(&["events", "--tenant", "acme", "--database-url", NO_DB]));
    assert!(line.contains("--tenant \"acme\" is not a UUID"), "{line}");
    let line = assert_one_line_failure(&run(&["events", "--format", "json", "--database-url", NO_DB]));
    assert!(line.contains("cannot connect to database"), "{line}");
}

/// A config for the nmap toolchain with the nmap test double (recorded XML
/// of a run against demo-services).
fn nmap_config(dir: &TempDir, extra: &str) -> PathBuf {
    let nmap = fixtures().join("loader/bin/nmap");
    let text = format!(
        r#"
tenant_id = "{TENANT}"
ports = [2222, 9200, 18443]
lock_dir = "{lock}"
{extra}

[timeouts]
nmap = 60

[tools]
nmap = "{nmap}"

[tools.extra_args]
nmap = ["--version-intensity", "1"]

[[assets]]
id = "aaaaaaaa-0000-4000-8000-000000000001"
type = "ip"
value = "127.0.0.1"
"#,
        lock = dir.root().display(),
        nmap = nmap.display()
    );
    dir.write("assets.toml", &text)
}

#[test]
fn the_nmap_toolchain_builds_a_truthful_payload() {
    let dir = TempDir::new("loader-cli-nmap");
    let cfg = nmap_config(&dir, r#"toolchain = "nmap""#);
    let log = dir.path("tools.log");
    let (o, v) = dry_run(&cfg, &[], &[("XRAY_FAKE_TOOL_LOG", &log)]);
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let p = ScanPayload::from_value(&v).expect("valid contract payload");
    assert_eq!(v["scan"]["worker"]["toolchain"], "nmap");
    assert_eq!(v["tool_versions"]["nmap"], "7.93");
    assert_eq!(v["tool_versions"]["naabu"], Value::Null);

    let ep = &p.asset_results[0].endpoints[0];
    let ports: Vec<(u16, &str, Option<&str>)> = ep
        .ports
        .tcp
        .iter()
        .map(|o| (o.port, o.state.as_str(), o.tool.as_deref()))
        .collect();
    assert_eq!(
        ports,
        vec![
            (2222, "open", Some("nmap")),
            (9200, "open", Some("nmap")),
            (18443, "open", Some("nmap"))
        ]
    );
    assert_eq!(ep.findings.nmap.len(), 3);
    assert_eq!(
        v["asset_results"][0]["endpoints"][0]["findings"]["nmap"][1]["service_method"],
        "table"
    );
    assert_eq!(ep.tls[0].tool.as_deref(), Some("nmap"));
    assert_eq!(ep.tls[0].tls_versions, vec!["TLS1.0", "TLS1.2"]);
    assert_eq!(ep.tls[0].certificate.as_ref().unwrap().is_self_signed, Some(true));
    assert_eq!(ep.http[0].status_code, Some(200));
    assert!(ep.http[0].headers.as_ref().unwrap().contains_key("server"));
    let cov = ep.coverage.as_ref().unwrap();
    assert_eq!(cov.tools, vec!["nmap"]);
    assert_eq!(cov.tcp_ports, vec![2222, 9200, 18443]);
    assert_eq!(cov.tls_ports, vec![18443]);
    assert_eq!(cov.http_urls, vec!["https://127.0.0.1:18443/"]);
    let symptoms: Vec<(u16, &str, Option<&str>)> = ep
        .errors
        .iter()
        .filter_map(|e| Some((e.symptom_port()?, e.symptom()?, e.tool.as_deref())))
        .collect();
    assert_eq!(
        symptoms,
        vec![(9200, "tcp_open_no_banner", Some("nmap"))],
        "2222 is ssh: RB1, not RB6"
    );
    assert_eq!(ep.errors.len(), 1);

    let log = std::fs::read_to_string(&log).unwrap();
    let args = log.lines().next().unwrap().strip_prefix("nmap\t").unwrap();
    assert!(
        args.starts_with(
            "-oX - -n -Pn -sT -sV --noninteractive --script ssl-cert,ssl-enum-ciphers,http-headers,http-title,/"
        ),
        "{args}"
    );
    assert!(
        args.contains(" -p 2222,9200,18443 ") && args.ends_with(" --version-intensity 1 127.0.0.1"),
        "{args}"
    );
    // The status script lived in a private directory that is gone after the run.
    let script = args.split(',').find(|s| s.contains("xray-http-status.nse")).unwrap();
    let script = script.split(' ').next().unwrap();
    assert!(!Path::new(script).exists(), "{script} was not removed");
}

#[test]
fn auto_falls_back_to_nmap_without_the_projectdiscovery_tools() {
    let dir = TempDir::new("loader-cli-auto-nmap");
    let cfg = nmap_config(&dir, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[tools]\n", "[tools]\nnaabu = \"/nonexistent/naabu\"\n");
    std::fs::write(&cfg, text).unwrap();
    let (_, v) = dry_run(&cfg, &[], &[]);
    assert_eq!(v["scan"]["worker"]["toolchain"], "nmap");

    // Neither chain: one line naming both.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &fixtures().join("loader/bin/nmap").display().to_string(),
        "/nonexistent/nmap",
    );
    std::fs::write(&cfg, text).unwrap();
    let o = loader()
        .args(["scan", "--dry-run", "--assets"])
        .arg(&cfg)
        .output()
        .unwrap();
    let line = assert_one_line_failure(&o);
    assert!(
        line.contains("no toolchain available: ProjectDiscovery tools not found: naabu (/nonexistent/naabu is not an executable file)")
            && line.ends_with("; nmap not found: /nonexistent/nmap is not an executable file"),
        "{line}"
    );
}

#[test]
fn a_failing_nmap_is_an_error_and_no_coverage() {
    let dir = TempDir::new("loader-cli-nmap-failing");
    let cfg = nmap_config(&dir, r#"toolchain = "nmap""#);
    let failing = fixtures().join("loader/bin/fake-failing-tool");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &fixtures().join("loader/bin/nmap").display().to_string(),
        &failing.display().to_string(),
    );
    std::fs::write(&cfg, text).unwrap();
    let (_, v) = dry_run(&cfg, &[], &[]);
    let p = ScanPayload::from_value(&v).unwrap();
    let ep = &p.asset_results[0].endpoints[0];
    assert_eq!(ep.errors.len(), 1, "{:?}", ep.errors);
    assert_eq!(
        (ep.errors[0].tool.as_deref(), ep.errors[0].kind.as_deref()),
        (Some("nmap"), Some("tool_exit"))
    );
    assert!(ep.coverage.as_ref().unwrap().tools.is_empty());
    assert!(ep.ports.tcp.is_empty());
}
