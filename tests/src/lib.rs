//! Shared helpers for the integration tests: every test gets a fresh
//! database with the extension created in it, on the real PostgreSQL named by
//! `DATABASE_URL` (default: the local socket as the current user).

use std::path::PathBuf;

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

fn db_url(name: &str) -> String {
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
