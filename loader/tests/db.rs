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
ports = [22, 80, 443, 8443, 9200]
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
