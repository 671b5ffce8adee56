//! pg_dump / pg_restore round trip with the real binaries: every row of every
//! extension table (data, configuration, audit, grants) and the sequences come
//! back, restored scans are not diffed again, and the copy keeps working.

use std::process::Command;

use serde_json::{json, Value};
use tokio_postgres::Client;
use xray_tests::*;

/// Tables and sequences of schema xray registered with pg_extension_config_dump.
async fn dumped_relations(c: &Client) -> Vec<String> {
    c.query(
        "SELECT r::regclass::text FROM pg_extension e, unnest(e.extconfig) AS r
          WHERE e.extname = 'xray_pg' AND r::regclass::text LIKE 'xray.%' ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Row count and a digest of every row of every registered table.
async fn snapshot(c: &Client) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for rel in dumped_relations(c).await {
        let kind: String = c
            .query_one("SELECT relkind::text FROM pg_class WHERE oid = $1::text::regclass", &[&rel])
            .await
            .unwrap()
            .get(0);
        let sql = if kind == "S" {
            format!("SELECT 1::bigint, last_value::text FROM {rel}")
        } else {
            format!("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {rel} t")
        };
        let row = c.query_one(&sql, &[]).await.unwrap();
        out.push((rel, row.get(0), row.get(1)));
    }
    out
}

fn run(mut cmd: Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{cmd:?} failed: {stderr}");
}

#[tokio::test]
async fn every_tenant_table_is_registered_for_pg_dump() {
    let db = TestDb::new().await;
    let registered = dumped_relations(&db.client).await;
    let tables: Vec<String> = db
        .client
        .query(
            "SELECT c.oid::regclass::text FROM pg_class c
              WHERE c.relnamespace = 'xray'::regnamespace AND c.relkind IN ('r', 'S') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(registered, tables, "every table and sequence of schema xray is dumped");
    db.finish().await;
}

#[tokio::test]
async fn dump_and_restore_keep_every_row_and_keep_working() {
    let db = TestDb::new().await;
    let c = &db.client;
    // 09's first step is older than 02's second on the same asset: a stale row.
    // 14 adds partial rows (stale_asset_ids) and one stale row for two
    // assets, as a second tenant so that it does not touch the others.
    for (s, steps) in [("02-", 2), ("13-", 2), ("09-", 1), ("14-", 4)] {
        let sc = scenario(s);
        for i in 0..steps {
            let mut p = step_payload(&sc, i);
            if s == "14-" {
                p = for_tenant(&p, "33333333-3333-3333-3333-333333333333");
            }
            insert(c, &p).await.unwrap();
        }
    }
    c.batch_execute(
        "UPDATE xray.settings SET near_expiry_days = 21;
         UPDATE xray.admin_ports SET enabled = false WHERE port = 5901;
         UPDATE xray.risk_buckets SET default_severity = 'critical' WHERE risk_bucket = 'RB1';
         INSERT INTO xray.admin_ports (port, service_family) VALUES (2022, 'ssh');
         INSERT INTO xray.panel_templates (match_kind, pattern) VALUES ('template_id', 'jenkins-login');
         INSERT INTO xray.tenant_access (role_name, tenant_id) VALUES ('bi_acme', '11111111-1111-1111-1111-111111111111');
         SELECT xray.triage(identity_key, 'suppressed', 'kept quiet', 'frank')
           FROM xray.exposures WHERE status = 'open' ORDER BY identity_key LIMIT 1;",
    )
    .await
    .unwrap();
    record_a_rekey(c, "11111111-1111-1111-1111-111111111111").await;
    let before = snapshot(c).await;
    let config_before: Value = c.query_one("SELECT xray.engine_config()", &[]).await.unwrap().get(0);
    assert!(before.iter().all(|(rel, n, _)| *n > 0 || rel.ends_with("_seq")), "{before:?}");

    let file = std::env::temp_dir().join(format!("{}.dump", db.name));
    let mut dump = Command::new(pg_bin("pg_dump"));
    dump.args(["--format=custom", "--file"]).arg(&file).args(["--dbname", &db.url]);
    run(dump);
    let restored = TestDb::without_extension().await;
    let mut restore = Command::new(pg_bin("pg_restore"));
    restore.args(["--exit-on-error", "--dbname", &restored.url]).arg(&file);
    run(restore);
    let _ = std::fs::remove_file(&file);

    let r = &restored.client;
    let after = snapshot(r).await;
    assert_eq!(after, before, "every row, and the sequence positions, came back unchanged");
    let config_after: Value = r.query_one("SELECT xray.engine_config()", &[]).await.unwrap().get(0);
    assert_eq!(config_after, config_before);
    assert_eq!(config_after["near_expiry_days"], json!(21));

    // It keeps working: new events get new ids, the diff continues from the
    // restored state (SSH reappears: NEW, reopened), triage continues the log.
    let max_event: i64 = r.query_one("SELECT max(event_id) FROM xray.exposure_events", &[]).await.unwrap().get(0);
    let again = step_payload(&scenario("11-"), 2);
    insert(r, &again).await.unwrap();
    let new_events = r
        .query(
            "SELECT event_id, event_type, reopened FROM xray.exposure_events WHERE scan_id = $1::text::uuid",
            &[&scan_id(&again)],
        )
        .await
        .unwrap();
    assert_eq!(new_events.len(), 1);
    assert!(new_events[0].get::<_, i64>(0) > max_event);
    assert_eq!(new_events[0].get::<_, String>(1), "NEW");
    assert!(new_events[0].get::<_, bool>(2), "the restored FIXED state makes it a reopening");
    let triage_id: i64 = r
        .query_one(
            "SELECT triage_id FROM xray.triage(
                 (SELECT identity_key FROM xray.exposures WHERE status = 'suppressed'), 'open', 'review', 'frank')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(triage_id, 2);
    restored.finish().await;
    db.finish().await;
}
