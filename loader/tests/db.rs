//! End to end against a real PostgreSQL with the `xray_pg` extension
//! installed (scripts/setup.sh). The server is taken from `DATABASE_URL`
//! (default: the local socket); each test creates and drops its own database.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use xray_tests::{admin_url, connect, db_url};




struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    async fn new() -> TestDb {
        let admin = connect(&admin_url()).await;
        let name = format!("xray_loader_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let url = db_url(&name);
        connect(&url)
            .await
            .batch_execute("CREATE EXTENSION xray_pg")
            .await
            .expect("create extension xray_pg");
        TestDb { name, url }
    }

    async fn finish(self) {
        let admin = connect(&admin_url()).await;
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .await;
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn loader(db: &TestDb, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xray-loader"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("XRAY_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn ingest_twice_then_list_events() {
    let db = TestDb::new().await;
    let file = fixtures().join("loader/payload-1.2.minimal.json");
    let file = file.to_str().unwrap();

    let first = stdout(&loader(&db, &["ingest", file]));
    assert_eq!(
        first,
        format!("{file}\t5ca10000-0000-4000-8000-00000000a001\tapplied\tnew=2 changed=0 fixed=0\n")
    );
    let again = stdout(&loader(&db, &["ingest", file]));
    assert_eq!(
        again,
        format!("{file}\t5ca10000-0000-4000-8000-00000000a001\tduplicate\tnew=2 changed=0 fixed=0\n")
    );

    let json = stdout(&loader(
        &db,
        &[
            "events",
            "--format",
            "json",
            "--tenant",
            "11111111-1111-1111-1111-111111111111",
        ],
    ));
    let events: Vec<Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut kinds: Vec<(String, String, i64)> = events
        .iter()
        .map(|e| {
            (
                e["event_type"].as_str().unwrap().into(),
                e["risk_bucket"].as_str().unwrap().into(),
                e["port"].as_i64().unwrap(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![("NEW".into(), "RB1".into(), 22), ("NEW".into(), "RB6".into(), 22)]
    );
    assert!(events.iter().all(|e| e["created_at"].as_str().unwrap().ends_with('Z')));

    let table = stdout(&loader(&db, &["events"]));
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.starts_with("EVENT_ID  CREATED_AT"), "{table}");
    let none = stdout(&loader(&db, &["events", "--since", "2999-01-01T00:00:00Z"]));
    assert_eq!(none, "", "no events, no output, no cron mail");
    db.finish().await;
}

#[tokio::test]
async fn scan_with_recorded_tools_ingests_its_payload() {
    let db = TestDb::new().await;
    let dir = std::env::temp_dir().join(format!("xray-loader-db-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = fixtures().join("loader/bin");
    let cfg = dir.join("assets.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
tenant_id = "11111111-1111-1111-1111-111111111111"
ports = [2222, 9200, 18443]
lock_dir = "{dir}"
[tools]
naabu = "{bin}/naabu"
httpx = "{bin}/httpx"
tlsx = "{bin}/tlsx"
nuclei = "{bin}/nuclei"
[[assets]]
id = "aaaaaaaa-0000-4000-8000-0000000000a1"
type = "ip"
value = "127.0.0.1"
"#,
            dir = dir.display(),
            bin = bin.display()
        ),
    )
    .unwrap();
    let out = stdout(&loader(&db, &["scan", "--assets", cfg.to_str().unwrap()]));
    let fields: Vec<&str> = out.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 3, "{out}");
    assert_eq!(fields[1], "applied", "{out}");
    assert!(
        fields[2].starts_with("new=") && !fields[2].starts_with("new=0 "),
        "{out}"
    );
    let json = stdout(&loader(&db, &["events", "--format", "json"]));
    let buckets: Vec<String> = json
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["risk_bucket"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        buckets.contains(&"RB1".to_string()) && buckets.contains(&"RB6".to_string()),
        "{buckets:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    db.finish().await;
}

/// `host=… port=…` of the server over TCP, where a password login works
/// (the socket authenticates by peer, which only maps to the OS user).
fn tcp_server() -> String {
    let host = std::env::var("XRAY_TEST_TCP_HOST").unwrap_or_else(|_| "127.0.0.1".to_string());
    let base = admin_url();
    let from_url = if base.contains("://") {
        base.split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|authority| authority.rsplit_once(':'))
            .map(|(_, p)| p.to_string())
            .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
    } else {
        base.split_whitespace().find_map(|kv| kv.strip_prefix("port=").map(str::to_string))
    };
    let port = std::env::var("PGPORT").ok().or(from_url).unwrap_or_else(|| "5432".to_string());
    format!("host={host} port={port}")
}

/// Runs the loader with `DATABASE_URL = url` and the nmap test double logging
/// its arguments to `tool_log`; returns (stdout, stderr).
fn loader_as(url: &str, tool_log: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xray-loader"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("XRAY_FAKE_TOOL_LOG", tool_log)
        .env_remove("XRAY_LOG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?}: {stderr}");
    (stdout, stderr)
}

/// The `-p` list of the nmap run logged on line `i`.
fn nmap_ports(tool_log: &Path, i: usize) -> String {
    let log = std::fs::read_to_string(tool_log).unwrap();
    let line = log.lines().nth(i).unwrap_or_else(|| panic!("no nmap run {i} in {log}"));
    let args: Vec<&str> = line.strip_prefix("nmap\t").unwrap().split(' ').collect();
    let p = args.iter().position(|a| *a == "-p").unwrap_or_else(|| panic!("no -p: {line}"));
    args[p + 1].to_string()
}

#[tokio::test]
async fn scan_probes_and_judges_by_the_database_configuration() {
    const TENANT: &str = "11111111-1111-1111-1111-111111111111";
    let db = TestDb::new().await;
    let su = connect(&db.url).await;
    // What a DBA does: a profile with other ports, a new admin port on a
    // port no profile lists (docker), and 9200 (silent in the recording)
    // counted as admin, so it is RB1 and no RB6 symptom. Only ssh on 2222
    // stays of the shipped admin ports.
    su.batch_execute(
        "UPDATE xray.scan_profiles SET ports = '{18443, 9200, 2222}' WHERE profile = 'verify';
         UPDATE xray.admin_ports SET enabled = false WHERE port <> 2222;
         INSERT INTO xray.admin_ports (port, service_family) VALUES (2375, 'docker'), (9200, 'elasticsearch');",
    )
    .await
    .unwrap();
    // The loader runs as a documented loader role (docs/sql.md): a login in
    // xray_ingest, not a superuser, with its tenant set for its sessions.
    let role = format!("xray_loader_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let password = uuid::Uuid::new_v4().simple().to_string();
    su.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE xray_ingest;
         INSERT INTO xray.tenant_access (role_name, tenant_id) VALUES ('{role}', '{TENANT}');
         ALTER ROLE {role} IN DATABASE {db} SET xray.tenant_id = '{TENANT}';",
        db = db.name
    ))
    .await
    .unwrap();
    let role_url = format!("{} user={role} password={password} dbname={}", tcp_server(), db.name);
    drop(su);

    let dir = std::env::temp_dir().join(format!("xray-loader-engine-config-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = {
        let (dir, role_url, db_url) = (dir.clone(), role_url.clone(), db.url.clone());
        tokio::spawn(async move {
            let su = connect(&db_url).await;
            let tool_log = dir.join("tools.log");
            let nmap = fixtures().join("loader/bin/nmap");
            let config = |extra: &str| {
                format!(
                    r#"
tenant_id = "{TENANT}"
scan_profile = "verify"
toolchain = "nmap"
lock_dir = "{dir}"
{extra}
[tools]
nmap = "{nmap}"
[[assets]]
id = "aaaaaaaa-0000-4000-8000-0000000000c1"
type = "ip"
value = "127.0.0.1"
"#,
                    dir = dir.display(),
                    nmap = nmap.display()
                )
            };
            let cfg = dir.join("assets.toml");
            std::fs::write(&cfg, config("")).unwrap();
            let cfg = cfg.to_str().unwrap();

            // 1. With the database: its profile's ports and its admin ports.
            let (out, log) = loader_as(&role_url, &tool_log, &["--log-level", "info", "scan", "--assets", cfg]);
            assert!(log.contains("engine_config=database"), "{log}");
            assert_eq!(nmap_ports(&tool_log, 0), "2222,2375,9200,18443");
            let fields: Vec<&str> = out.trim_end().split('\t').collect();
            assert_eq!(fields.get(1), Some(&"applied"), "{out}");
            let scan_id = fields[0];
            let payload: Value = su
                .query_one("SELECT payload FROM xray.scan_results WHERE scan_id = $1::text::uuid", &[&scan_id])
                .await
                .unwrap()
                .get(0);
            let ep = &payload["asset_results"][0]["endpoints"][0];
            assert_eq!(ep["coverage"]["tcp_ports"], serde_json::json!([2222, 2375, 9200, 18443]));
            let symptoms: Vec<&Value> = ep["errors"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["details"]["symptom"].is_string())
                .collect();
            assert!(symptoms.is_empty(), "9200 is an admin port in the database: {symptoms:?}");
            let rows = su
                .query(
                    "SELECT risk_bucket || ' ' || port || ' ' || fingerprint FROM xray.exposure_events
                      WHERE scan_id = $1::text::uuid AND risk_bucket IN ('RB1', 'RB6') ORDER BY 1",
                    &[&scan_id],
                )
                .await
                .unwrap();
            let events: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            assert_eq!(events, ["RB1 2222 svc:ssh", "RB1 9200 svc:elasticsearch"]);

            // 2. Explicit ports in the file win over the database.
            std::fs::write(cfg, config("ports = [18443, 2222]")).unwrap();
            let (_, log) = loader_as(&role_url, &tool_log, &["--log-level", "info", "scan", "--assets", cfg]);
            assert!(log.contains("engine_config=database"), "{log}");
            assert_eq!(nmap_ports(&tool_log, 1), "2222,18443");

            // 3. --dry-run reads no database, even with DATABASE_URL set: the
            //    shipped verify list (empty since 0.5.0: a re-check probes what it
            //    re-checks) plus the admin ports, and 9200 is an RB6 symptom again.
            std::fs::write(cfg, config("")).unwrap();
            let (out, log) =
                loader_as(&role_url, &tool_log, &["--log-level", "info", "scan", "--assets", cfg, "--dry-run"]);
            assert!(log.contains("engine_config=default"), "{log}");
            let shipped = xray_engine::EngineConfig::default();
            let mut want: Vec<u16> = shipped.ports_for_profile(Some("verify")).to_vec();
            want.extend(shipped.admin_ports.keys());
            want.sort_unstable();
            want.dedup();
            let want: Vec<String> = want.iter().map(u16::to_string).collect();
            assert_eq!(nmap_ports(&tool_log, 2), want.join(","));
            let dry: Value = serde_json::from_str(&out).unwrap();
            let ep = &dry["asset_results"][0]["endpoints"][0];
            let symptom_ports: Vec<&Value> = ep["errors"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["details"]["symptom"].is_string())
                .map(|e| &e["details"]["port"])
                .collect();
            assert_eq!(symptom_ports, [&serde_json::json!(9200)]);
        })
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    db.finish().await;
    let admin = connect(&admin_url()).await;
    admin.batch_execute(&format!("DROP ROLE IF EXISTS {role}")).await.expect("drop the loader role");
    if let Err(e) = body {
        std::panic::resume_unwind(e.into_panic());
    }
}
