//! Upgrades: the shipped 0.1.0 and 0.3.0 scripts (sql/archive/) with this
//! library, data added, ALTER EXTENSION xray_pg UPDATE, and everything still
//! there and working; and an updated install is identical to a fresh one.

use serde_json::Value;
use tokio_postgres::Client;
use xray_tests::*;

/// Digest of the rows of the tables 0.1.0 had, over the columns 0.1.0 had.
async fn v0_1_data(c: &Client) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for (table, new_columns) in [
        ("scan_results", "ARRAY['asset_count', 'endpoint_count']"),
        ("exposures", "ARRAY[]::text[]"),
        ("exposure_events", "ARRAY[]::text[]"),
        ("asset_scans", "ARRAY[]::text[]"),
    ] {
        let row = c
            .query_one(
                &format!(
                    "SELECT count(*), md5(string_agg((to_jsonb(t) - {new_columns})::text, '|' ORDER BY (to_jsonb(t) - {new_columns})::text))
                       FROM xray.{table} t"
                ),
                &[],
            )
            .await
            .unwrap();
        out.push((table.to_string(), row.get(0), row.get(1)));
    }
    out
}

async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(c: &Client, sql: &str) -> T {
    c.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")).get(0)
}

async fn create_0_1_0(db: &TestDb) {
    create_release(db, "0.1.0").await;
}

async fn create_release(db: &TestDb, version: &str) {
    let versions: Vec<String> = db
        .client
        .query("SELECT version FROM pg_available_extension_versions WHERE name = 'xray_pg' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        versions.contains(&version.to_string()),
        "xray_pg--{version}.sql is not installed (scripts/setup.sh copies sql/archive/); available: {versions:?}"
    );
    db.client.batch_execute(&format!("CREATE EXTENSION xray_pg VERSION '{version}'")).await.unwrap();
}

#[tokio::test]
async fn update_from_0_1_0_keeps_data_and_adds_the_surface() {
    let db = TestDb::without_extension().await;
    let c = &db.client;
    create_0_1_0(&db).await;
    assert_eq!(one::<Option<String>>(c, "SELECT to_regclass('xray.settings')::text").await, None);

    // 0.1.0 SQL on this library: the 0.1.0 entry points still ingest.
    let (s02, s13) = (scenario("02-"), scenario("13-"));
    insert(c, &step_payload(&s02, 0)).await.unwrap();
    insert(c, &step_payload(&s13, 0)).await.unwrap();
    assert_eq!(count(c, "xray.exposure_events").await, 6);
    assert!(
        one::<i64>(c, "SELECT count(*) FROM xray_normalize((SELECT payload FROM xray.scan_results LIMIT 1))").await > 0
    );
    let before = v0_1_data(c).await;

    // 0.1.0 -> 0.2.0 -> 0.3.0 (the chain indexer's tables) -> 0.4.0 in one statement.
    c.batch_execute("ALTER EXTENSION xray_pg UPDATE").await.unwrap();
    assert_eq!(one::<String>(c, "SELECT extversion FROM pg_extension WHERE extname = 'xray_pg'").await, "0.4.0");
    assert_eq!(
        one::<i64>(c, "SELECT count(*) FROM nweb.chain_checkpoints").await + one::<i64>(c, "SELECT count(*) FROM nweb.chain_blocks").await,
        0
    );
    assert_eq!(v0_1_data(c).await, before, "no 0.1.0 row changed");

    // The surface is there, with the old data in it.
    assert_eq!(one::<i64>(c, "SELECT count(*) FROM xray.assets_seen").await, 2);
    assert_eq!(
        one::<Vec<i32>>(c, "SELECT open_tcp_ports FROM xray.endpoints_seen WHERE ip = '203.0.113.10'").await,
        [22, 443]
    );
    assert_eq!(one::<i64>(c, "SELECT count(*) FROM xray.open_exposures").await, 6);
    assert_eq!(one::<i64>(c, "SELECT sum(asset_count + endpoint_count) FROM xray.scan_summary").await, 4);
    assert_eq!(one::<i32>(c, "SELECT near_expiry_days FROM xray.settings").await, 30);
    assert!(
        one::<bool>(
            c,
            "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'xray.exposures'::regclass"
        )
        .await
    );
    assert_eq!(
        one::<String>(c, "SELECT provolatile::text FROM pg_proc WHERE oid = 'xray_normalize(jsonb)'::regprocedure")
            .await,
        "s"
    );

    // And it keeps working: the next scan diffs against the 0.1.0 state,
    // proof of fix shows the evidence stored by 0.1.0, triage and config work.
    insert(c, &step_payload(&s02, 1)).await.unwrap();
    let proof: Value = one(c, "SELECT jsonb_build_object('target', checked_target, 'port', last_open_evidence -> 'port') FROM xray.proof_of_fix").await;
    assert_eq!(proof, serde_json::json!({"target": "tcp/22", "port": 22}));
    let triaged: String = one(
        c,
        "SELECT to_status FROM xray.triage((SELECT identity_key FROM xray.exposures WHERE fingerprint = 'record:dkim'),
                                           'suppressed', 'upgrade test', 'gina')",
    )
    .await;
    assert_eq!(triaged, "suppressed");
    c.batch_execute("UPDATE xray.settings SET near_expiry_days = 10").await.unwrap();
    let near_expiry = step_payload(&scenario("03-"), 0);
    let found: i64 = c.query_one("SELECT count(*) FROM xray_normalize($1)", &[&near_expiry]).await.unwrap().get(0);
    assert_eq!(found, 0, "the configured xray_normalize reads the new setting");
    db.finish().await;
}

/// The inventory tables, in a comparable form.
async fn inventory(c: &Client) -> Vec<String> {
    c.query(
        "SELECT format('%s %s %s %s %s %s', tenant_id, asset_id, asset_type, asset_value, canonical_host, tags)
           FROM xray.assets
         UNION ALL
         SELECT format('%s %s %s %s %s %s %s %s %s', tenant_id, asset_id, endpoint_id, ip, observed_host,
                       domain_context, open_tcp_ports, tls_ports, http_urls)
           FROM xray.endpoints
         ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test]
async fn update_from_0_3_0_moves_the_inventory_into_the_trigger_and_payloads_to_lz4() {
    let db = TestDb::without_extension().await;
    let c = &db.client;
    create_release(&db, "0.3.0").await;

    // Every scenario step, one tenant per scenario, through the trigger:
    // this library fills the inventory from the decoded payload.
    let mut applied = 0;
    for file in scenario_files() {
        let tenant = uuid::Uuid::new_v4().to_string();
        for step in load_json(&file)["steps"].as_array().unwrap() {
            insert(c, &for_tenant(&step["payload"], &tenant)).await.unwrap();
            applied += 1;
        }
    }
    assert!(applied >= 25, "every scenario step was ingested ({applied})");
    let from_trigger = inventory(c).await;
    assert!(from_trigger.len() > 20, "{from_trigger:#?}");

    // The same inventory as 0.3.0's SQL function builds from the stored
    // payloads, replayed in ingest order.
    c.batch_execute(
        "TRUNCATE xray.assets, xray.endpoints;
         SELECT count(xray.record_inventory(tenant_id, scan_id, coalesce(finished_at, started_at), payload))
           FROM (SELECT * FROM xray.scan_results WHERE status = 'applied' ORDER BY ingested_at, scan_id) s;",
    )
    .await
    .unwrap();
    assert_eq!(inventory(c).await, from_trigger, "the trigger's inventory is the one 0.3.0 recorded");

    let before = v0_1_data(c).await;
    c.batch_execute("ALTER EXTENSION xray_pg UPDATE").await.unwrap();
    assert_eq!(one::<String>(c, "SELECT extversion FROM pg_extension WHERE extname = 'xray_pg'").await, "0.4.0");
    assert_eq!(v0_1_data(c).await, before, "no row changed");
    assert_eq!(inventory(c).await, from_trigger);
    assert_eq!(
        one::<Option<String>>(c, "SELECT to_regprocedure('xray.record_inventory(uuid, uuid, timestamptz, jsonb)')::text")
            .await,
        None
    );
    assert_eq!(
        one::<String>(
            c,
            "SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'xray.scan_results'::regclass AND attname = 'payload'"
        )
        .await,
        "l"
    );

    // A payload large enough to be compressed is stored with lz4.
    let mut big = step_payload(&scenario("06-"), 0);
    big["scan"]["scan_id"] = Value::String("6b160000-0000-4000-8000-000000000001".into());
    let endpoint = big["asset_results"][0]["endpoints"][0].clone();
    big["asset_results"][0]["endpoints"] = Value::Array(
        (0..200)
            .map(|n| {
                let mut e = endpoint.clone();
                e["endpoint_id"] = Value::String(format!("lz4-{n}"));
                e
            })
            .collect(),
    );
    insert(c, &big).await.unwrap();
    assert_eq!(
        one::<String>(
            c,
            "SELECT pg_column_compression(payload) FROM xray.scan_results
              WHERE scan_id = '6b160000-0000-4000-8000-000000000001'"
        )
        .await,
        "lz4"
    );
    db.finish().await;
}

/// Every object of the extension with its definition, grants and policies:
/// equal for a fresh install and an updated one, nweb included.
const DESCRIBE_EXTENSION: &str = r#"
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'xray_pg'),
members AS (
    SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
rels AS (SELECT c.* FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid)
SELECT 'member ' || pg_describe_object(classid, objid, objsubid) FROM members
UNION ALL
SELECT format('column %s.%s %s notnull=%s default=%s identity=%s compression=%s', r.oid::regclass, a.attname,
              format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), a.attidentity,
              a.attcompression)
  FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
UNION ALL
SELECT format('rel %s kind=%s rls=%s force=%s options=%s acl=%s', r.oid::regclass, r.relkind, r.relrowsecurity,
              r.relforcerowsecurity, r.reloptions, r.relacl) FROM rels r
UNION ALL
SELECT format('column acl %s.%s %s', r.oid::regclass, a.attname, a.attacl)
  FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attacl IS NOT NULL
UNION ALL
SELECT format('constraint %s %s %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
  FROM pg_constraint c JOIN rels r ON r.oid = c.conrelid
UNION ALL
SELECT format('index %s', pg_get_indexdef(i.indexrelid)) FROM pg_index i JOIN rels r ON r.oid = i.indrelid
UNION ALL
SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
  FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
UNION ALL
SELECT format('policy %s %s %s %s %s %s', p.polrelid::regclass, p.polname, p.polcmd, p.polroles::regrole[],
              pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
  FROM pg_policy p JOIN rels r ON r.oid = p.polrelid
UNION ALL
SELECT format('view %s %s', r.oid::regclass, pg_get_viewdef(r.oid)) FROM rels r WHERE r.relkind = 'v'
UNION ALL
SELECT format('function %s acl=%s %s', p.oid::regprocedure, p.proacl, pg_get_functiondef(p.oid))
  FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
UNION ALL
SELECT format('config_dump %s %s', c::regclass, cond)
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, cond) WHERE e.extname = 'xray_pg'
UNION ALL
SELECT format('namespace %s acl=%s', n.nspname, n.nspacl) FROM pg_namespace n WHERE n.nspname = 'xray'
UNION ALL
SELECT format('comment %s %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
  FROM pg_description d JOIN members m ON m.classid = d.classoid AND m.objid = d.objoid
ORDER BY 1
"#;

async fn describe(c: &Client) -> Vec<String> {
    c.query(DESCRIBE_EXTENSION, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

#[tokio::test]
async fn updated_install_is_identical_to_a_fresh_one() {
    let fresh = TestDb::new().await;
    let updated = TestDb::without_extension().await;
    create_0_1_0(&updated).await;
    updated.client.batch_execute("ALTER EXTENSION xray_pg UPDATE").await.unwrap();
    let (a, b) = (describe(&fresh.client).await, describe(&updated.client).await);
    assert!(a.len() > 300, "the description covers the extension ({} lines)", a.len());
    let only_fresh: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_updated: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
    assert!(
        only_fresh.is_empty() && only_updated.is_empty(),
        "fresh and updated installs differ:\nonly fresh: {only_fresh:#?}\nonly updated: {only_updated:#?}"
    );
    // Configuration rows are part of the install too.
    let config = "SELECT xray.engine_config()::text || (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM xray.risk_buckets t)";
    assert_eq!(one::<String>(&fresh.client, config).await, one::<String>(&updated.client, config).await);
    fresh.finish().await;
    updated.finish().await;
}

#[tokio::test]
async fn roles_are_shared_nologin_groups() {
    let db = TestDb::new().await;
    // A second database on the same cluster creates the extension although
    // the roles exist (every test database does this, often concurrently).
    let second = TestDb::new().await;
    let roles: Vec<(String, bool, Vec<String>)> = db
        .client
        .query(
            "SELECT r.rolname::text, r.rolcanlogin,
                    ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                           WHERE m.member = r.oid ORDER BY 1)
               FROM pg_roles r WHERE r.rolname IN ('xray_reader', 'xray_ingest', 'xray_admin') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let role = |n: &str, of: &[&str]| (n.to_string(), false, of.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        roles,
        [role("xray_admin", &["xray_ingest"]), role("xray_ingest", &["xray_reader"]), role("xray_reader", &[])]
    );
    second.finish().await;
    db.finish().await;
}
