//! Shared helpers for the integration tests: every test gets a fresh
//! database with the extension created in it, on the real PostgreSQL named by
//! `DATABASE_URL` (default: the local socket as the current user).

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio_postgres::{Client, NoTls};

pub fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "host=/var/run/postgresql dbname=postgres".to_string())
}

pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL ({url}): {e}; run scripts/setup.sh"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A throw-away database with `xray_pg` installed; dropped by [`TestDb::finish`].
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub client: Client,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let admin = connect(&admin_url()).await;
        let name = format!("xray_test_{}", uuid::Uuid::new_v4().simple());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        let url = db_url(&name);
        let client = connect(&url).await;
        client.batch_execute("CREATE EXTENSION xray_pg").await.expect("create extension xray_pg");
        TestDb { name, url, client }
    }

    /// A second, independent session on the same database.
    pub async fn session(&self) -> Client {
        connect(&self.url).await
    }

    pub async fn finish(self) {
        drop(self.client);
        let admin = connect(&admin_url()).await;
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
    }
}

pub fn db_url(name: &str) -> String {
    let base = admin_url();
    if base.contains("://") {
        // postgres://user@host/db?params → swap the path
        let (head, tail) = base.split_at(base.find("://").unwrap() + 3);
        let (authority, rest) = tail.split_once('/').unwrap_or((tail, ""));
        let params = rest.split_once('?').map(|(_, p)| format!("?{p}")).unwrap_or_default();
        format!("{head}{authority}/{name}{params}")
    } else {
        let kept: Vec<&str> = base.split_whitespace().filter(|kv| !kv.starts_with("dbname=")).collect();
        format!("{} dbname={name}", kept.join(" "))
    }
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

pub fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join("scenarios"))
        .expect("fixtures/scenarios")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

pub fn load_json(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn scenario(prefix: &str) -> Value {
    let file = scenario_files()
        .into_iter()
        .find(|f| f.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no scenario {prefix}"));
    load_json(&file)
}

/// The payload of step `i` of a scenario.
pub fn step_payload(scenario: &Value, i: usize) -> Value {
    scenario["steps"][i]["payload"].clone()
}

/// INSERTs a payload through the trigger.
pub async fn insert(client: &Client, payload: &Value) -> Result<u64, tokio_postgres::Error> {
    client.execute("INSERT INTO xray.scan_results (payload) VALUES ($1)", &[payload]).await
}

/// Events of one scan, as comparable JSON, in event_id order.
pub async fn events_of(client: &Client, scan_id: &str) -> Vec<Value> {
    let rows = client
        .query(
            "SELECT json_build_object('event_type', event_type, 'risk_bucket', risk_bucket,
                    'observed_host', observed_host, 'port', port, 'fingerprint', fingerprint,
                    'reopened', reopened)
               FROM xray.exposure_events WHERE scan_id = $1::text::uuid ORDER BY event_id",
            &[&scan_id],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<_, Value>(0)).collect()
}

pub async fn count(client: &Client, table: &str) -> i64 {
    client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0)
}

pub fn scan_id(payload: &Value) -> String {
    payload["scan"]["scan_id"].as_str().unwrap().to_string()
}

pub fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| x.to_string());
    v
}

// ---------------------------------------------------------------------------
// Helpers for the SQL-surface tests (roles, TCP logins, LISTEN, binaries).
// ---------------------------------------------------------------------------

impl TestDb {
    /// A database without the extension, for tests that create it themselves.
    pub async fn without_extension() -> TestDb {
        let admin = connect(&admin_url()).await;
        let name = format!("xray_test_{}", uuid::Uuid::new_v4().simple());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        let url = db_url(&name);
        let client = connect(&url).await;
        TestDb { name, url, client }
    }
}

/// A LOGIN role made for one test, member of `group` (xray_reader, …).
/// Roles are cluster-wide: call [`LoginRole::drop`] at the end of the test.
pub struct LoginRole {
    pub name: String,
    password: String,
}

impl LoginRole {
    pub async fn create(superuser: &Client, group: &str) -> LoginRole {
        let name = format!("xray_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let password = uuid::Uuid::new_v4().simple().to_string();
        superuser
            .batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {group}"))
            .await
            .expect("create login role");
        LoginRole { name, password }
    }

    /// A separate login over TCP with the role's password, so the session is
    /// the role itself (not a superuser that SET ROLE).
    pub async fn connect(&self, db: &TestDb) -> Client {
        let host = std::env::var("XRAY_TEST_TCP_HOST").unwrap_or_else(|_| "127.0.0.1".to_string());
        let port = std::env::var("PGPORT").unwrap_or_else(|_| admin_port().unwrap_or_else(|| "5432".to_string()));
        connect(&format!(
            "host={host} port={port} user={} password={} dbname={}",
            self.name, self.password, db.name
        ))
        .await
    }

    pub async fn drop(self) {
        let admin = connect(&admin_url()).await;
        admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name)).await.expect("drop login role");
    }
}

fn admin_port() -> Option<String> {
    let base = admin_url();
    if base.contains("://") {
        let authority = base.split("://").nth(1)?.split('/').next()?;
        authority.rsplit_once(':').map(|(_, p)| p.to_string()).filter(|p| p.chars().all(|c| c.is_ascii_digit()))
    } else {
        base.split_whitespace().find_map(|kv| kv.strip_prefix("port=").map(str::to_string))
    }
}

/// A connection that has run `LISTEN channel`; notifications arrive on the receiver.
pub async fn listen(
    url: &str,
    channel: &str,
) -> (Client, tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>) {
    let (client, mut conn) = tokio_postgres::connect(url, NoTls).await.expect("connect listener");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if tx.send(n).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {channel}")).await.expect("LISTEN");
    (client, rx)
}

/// A PostgreSQL client binary (pg_dump, pg_restore, …) of the server's major
/// version: $PG_BINDIR, else /usr/lib/postgresql/15/bin.
pub fn pg_bin(name: &str) -> PathBuf {
    let dir = std::env::var("PG_BINDIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_string());
    PathBuf::from(dir).join(name)
}

/// A payload with its tenant replaced, and a scan_id derived from the tenant
/// so that the same scenario step can be ingested once per tenant.
pub fn for_tenant(payload: &Value, tenant: &str) -> Value {
    let mut p = payload.clone();
    p["scan"]["tenant_id"] = Value::String(tenant.to_string());
    let scan: uuid::Uuid = p["scan"]["scan_id"].as_str().unwrap().parse().unwrap();
    let tenant: uuid::Uuid = tenant.parse().unwrap();
    let derived = uuid::Uuid::from_u128(scan.as_u128() ^ tenant.as_u128());
    p["scan"]["scan_id"] = Value::String(derived.to_string());
    p
}

/// A row of `xray.identity_rekeys` for one exposure of `tenant`, as an
/// extension update that re-keyed it writes (only updates fill that table),
/// for the tests that need every table to hold rows.
pub async fn record_a_rekey(client: &Client, tenant: &str) {
    client
        .execute(
            "INSERT INTO xray.identity_rekeys (tenant_id, old_identity_key, identity_key, risk_bucket, kept, old_status,
                                               old_state, rekeyed_in)
             SELECT x.tenant_id, 'old:' || x.identity_key, x.identity_key, x.risk_bucket, true, x.status, to_jsonb(x),
                    'test fixture'
               FROM xray.exposures x WHERE x.tenant_id = $1::text::uuid ORDER BY x.identity_key LIMIT 1",
            &[&tenant],
        )
        .await
        .expect("record a re-key");
}

/// A scratch directory for one test, removed when dropped (also when the test
/// fails): `<tmp>/xray-<name>-<pid>`, emptied first so that what a killed run of
/// the same name left behind is never read as this run's output.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("xray-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn root(&self) -> &Path {
        &self.0
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
