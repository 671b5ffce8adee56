//! Upgrades: the shipped 0.1.0, 0.3.0, 0.4.0, 0.5.0, 0.6.0, 0.7.0 and 0.8.0 scripts (sql/archive/)
//! with this library, data added, ALTER EXTENSION xray_pg UPDATE, and
//! everything still there and working; and an updated install is, object by
//! object, a fresh one (written separately, in sql/schema/).

use serde_json::Value;
use tokio_postgres::Client;
use xray_tests::*;

/// Digest of the rows of the tables 0.1.0 had, over the columns 0.1.0 had.
async fn v0_1_data(c: &Client) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for (table, new_columns) in [
        ("scan_results", "ARRAY['asset_count', 'endpoint_count', 'stale_asset_ids', 'warnings']"),
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

    // 0.1.0 -> 0.2.0 -> 0.3.0 (the chain indexer's tables) -> 0.4.0 -> 0.5.0 in one statement.
    c.batch_execute("ALTER EXTENSION xray_pg UPDATE").await.unwrap();
    assert_eq!(one::<String>(c, "SELECT extversion FROM pg_extension WHERE extname = 'xray_pg'").await, env!("CARGO_PKG_VERSION"));
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
    // Scenarios 16 and later carry real-world shapes (null blocks, ports as
    // strings, IPv6 spellings) that 0.3.0's SQL inventory never read the way
    // the engine does, so the comparison below uses the ones before.
    let mut applied = 0;
    for file in scenario_files().into_iter().filter(|f| f.file_name().unwrap().to_string_lossy().as_ref() < "16-") {
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
    assert_eq!(one::<String>(c, "SELECT extversion FROM pg_extension WHERE extname = 'xray_pg'").await, env!("CARGO_PKG_VERSION"));
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
/// equal for a fresh install (sql/schema/ and the pgrx declarations) and an
/// updated one (an archived release and the upgrade scripts), nweb included.
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
    let a = describe(&fresh.client).await;
    assert!(a.len() > 300, "the description covers the extension ({} lines)", a.len());
    // Configuration rows are part of the install too.
    let config = "SELECT xray.engine_config()::text
                  || (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM xray.risk_buckets t)
                  || (SELECT string_agg(t::text, ',' ORDER BY t::text) FROM xray.scan_profiles t)";
    for release in ["0.1.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0"] {
        let updated = TestDb::without_extension().await;
        create_release(&updated, release).await;
        updated.client.batch_execute("ALTER EXTENSION xray_pg UPDATE").await.unwrap();
        let b = describe(&updated.client).await;
        let only_fresh: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
        let only_updated: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
        assert!(
            only_fresh.is_empty() && only_updated.is_empty(),
            "fresh and updated-from-{release} installs differ:\nonly fresh: {only_fresh:#?}\nonly updated: {only_updated:#?}"
        );
        assert_eq!(one::<String>(&fresh.client, config).await, one::<String>(&updated.client, config).await, "{release}");
        updated.finish().await;
    }
    fresh.finish().await;
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

// ---------------------------------------------------------------------------
// 0.4.0 -> 0.5.0: RB6 re-keyed to fingerprint version 2 (docs/design.md D9).
// ---------------------------------------------------------------------------

const A1: &str = "aaaaaaaa-0000-4000-8000-0000000006a1";
const A2: &str = "aaaaaaaa-0000-4000-8000-0000000006a2";
const A3: &str = "aaaaaaaa-0000-4000-8000-0000000006a3";

/// A 1.1 baseline scan of the given assets, each one IP endpoint with one open
/// port and an RB6 symptom on it, or with nothing open (`None`).
fn rb6_scan(n: u32, day: u32, assets: &[(&str, &str, Option<(u16, &str)>)]) -> Value {
    let mut p = step_payload(&scenario("15-"), 0);
    p["scan"]["scan_id"] = serde_json::json!(format!("5ca10000-0000-4000-8000-0000000006{n:02}"));
    p["scan"]["started_at"] = serde_json::json!(format!("2026-03-{day:02}T10:00:00Z"));
    p["scan"]["finished_at"] = serde_json::json!(format!("2026-03-{day:02}T10:04:00Z"));
    p["scan"]["requested_asset_ids"] = serde_json::json!(assets.iter().map(|a| a.0).collect::<Vec<_>>());
    let template = p["asset_results"][0].clone();
    p["asset_results"] = Value::Array(
        assets
            .iter()
            .map(|(asset, ip, open)| {
                let mut a = template.clone();
                a["asset"]["asset_id"] = serde_json::json!(asset);
                a["asset"]["asset_value"] = serde_json::json!(ip);
                a["asset"]["canonical_host"] = serde_json::json!(ip);
                let e = &mut a["endpoints"][0];
                e["endpoint_id"] = serde_json::json!(format!("ip:{ip}"));
                e["ip"] = serde_json::json!(ip);
                e["observed_host"] = serde_json::json!(ip);
                match open {
                    Some((port, symptom)) => {
                        e["ports"]["tcp"][0]["port"] = serde_json::json!(port);
                        e["errors"][0]["details"] = serde_json::json!({"port": port, "symptom": symptom});
                    }
                    None => {
                        e["ports"]["tcp"] = serde_json::json!([]);
                        e["errors"] = serde_json::json!([]);
                    }
                }
                a
            })
            .collect(),
    );
    p
}

/// The identity string of xray_engine::identity, spelled in SQL.
fn identity_sql(bucket: &str, fpv: u32, fingerprint: &str) -> String {
    format!(
        "encode(sha256(convert_to(format('v1|tenant:%s|asset:%s|host:%s|bucket:{bucket}|proto:%s|port:%s|fpv:{fpv}|fp:%s',
                tenant_id, asset_id, observed_host, proto, port, {fingerprint}), 'UTF8')), 'hex')"
    )
}

/// This library only has RB6 fingerprint version 2, so the state "made with
/// the 0.4.0 rules" is made by ingesting with it and then writing the RB6 rows
/// of that scan (state and events) with the identity 0.4.0 gave them:
/// fingerprint `symptom:<symptom>`, fingerprint version 1 in the string and
/// the column. Everything else 0.4.0 did the same way (material hash, detail,
/// held-open rules), which the steps below rely on; that the SQL spelling of
/// the identity is the engine's is checked with an RB1 key.
async fn as_0_4_0_rb6(c: &Client) {
    let old_key = identity_sql("RB6", 1, "'symptom:' || (evidence ->> 'symptom')");
    c.batch_execute(&format!(
        "ALTER TABLE xray.exposure_events DISABLE TRIGGER exposure_events_immutable;
         CREATE TEMP TABLE rb6_v1 AS
             SELECT tenant_id, identity_key, 'symptom:' || (evidence ->> 'symptom') AS fingerprint, {old_key} AS old_key
               FROM xray.exposures WHERE risk_bucket = 'RB6' AND fingerprint = 'svc:unknown';
         UPDATE xray.exposure_events e SET identity_key = o.old_key, fingerprint = o.fingerprint
           FROM rb6_v1 o WHERE e.tenant_id = o.tenant_id AND e.identity_key = o.identity_key;
         UPDATE xray.exposures x SET identity_key = o.old_key, fingerprint = o.fingerprint, fingerprint_version = 1
           FROM rb6_v1 o WHERE x.tenant_id = o.tenant_id AND x.identity_key = o.identity_key;
         DROP TABLE rb6_v1;
         ALTER TABLE xray.exposure_events ENABLE TRIGGER exposure_events_immutable;"
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn the_sql_identity_string_is_the_engines() {
    let db = TestDb::new().await;
    let c = &db.client;
    insert(c, &step_payload(&scenario("01-"), 0)).await.unwrap();
    let sql = format!("SELECT {} = identity_key FROM xray.exposures", identity_sql("RB1", 1, "fingerprint"));
    assert!(one::<bool>(c, &sql).await);
    insert(c, &step_payload(&scenario("08-"), 0)).await.unwrap();
    let sql = format!(
        "SELECT {} = identity_key FROM xray.exposures WHERE risk_bucket = 'RB6'",
        identity_sql("RB6", 2, "fingerprint")
    );
    assert!(one::<bool>(c, &sql).await, "RB6 is at fingerprint version 2");
    db.finish().await;
}

#[tokio::test]
async fn update_from_0_4_0_rekeys_rb6_without_events() {
    let db = TestDb::without_extension().await;
    let c = &db.client;
    create_release(&db, "0.4.0").await;
    let (ip1, ip2, ip3) = ("203.0.113.61", "203.0.113.62", "203.0.113.63");

    // State made with the 0.4.0 rules:
    // - A1: one symptom on 8443, open;
    // - A2: 8080 seen with tcp_open_no_banner, then with http_timeout: two
    //   open RB6 rows on one port (the first held open, it was not proven gone);
    // - A3: a symptom on 9443, fixed when the port closed, then suppressed.
    let s1 = rb6_scan(1, 1, &[(A1, ip1, Some((8443, "tls_handshake_fail"))), (A2, ip2, Some((8080, "tcp_open_no_banner"))),
                              (A3, ip3, Some((9443, "protocol_mismatch")))]);
    insert(c, &s1).await.unwrap();
    as_0_4_0_rb6(c).await;
    insert(c, &rb6_scan(2, 2, &[(A2, ip2, Some((8080, "http_timeout")))])).await.unwrap();
    as_0_4_0_rb6(c).await;
    insert(c, &rb6_scan(3, 3, &[(A3, ip3, None)])).await.unwrap();
    let a3_old: String = one(c, &format!("SELECT identity_key FROM xray.exposures WHERE asset_id = '{A3}'")).await;
    c.execute("SELECT xray.triage($1, 'suppressed', 'lab box', 'gina')", &[&a3_old]).await.unwrap();
    // An admin's own ports for verify stay; the shipped fast_recheck list goes.
    c.batch_execute("UPDATE xray.scan_profiles SET ports = '{22,443}' WHERE profile = 'verify'").await.unwrap();

    let rows = |sql: &'static str| async move {
        c.query(sql, &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect::<Vec<(String, String, i32, String)>>()
    };
    let old_state = rows(
        "SELECT asset_id::text, fingerprint, port, status FROM xray.exposures WHERE risk_bucket = 'RB6' ORDER BY 1, 2",
    )
    .await;
    let s = |v: &str| v.to_string();
    assert_eq!(
        old_state,
        [
            (s(A1), s("symptom:tls_handshake_fail"), 8443, s("open")),
            (s(A2), s("symptom:http_timeout"), 8080, s("open")),
            (s(A2), s("symptom:tcp_open_no_banner"), 8080, s("open")),
            (s(A3), s("symptom:protocol_mismatch"), 9443, s("suppressed")),
        ]
    );
    let events_digest = "SELECT count(*)::text || md5(string_agg(to_jsonb(e)::text, '|' ORDER BY event_id)) FROM xray.exposure_events e";
    let events_before: String = one(c, events_digest).await;
    let a2_kept: (String, String) = {
        let r = c
            .query_one(
                "SELECT identity_key, material_hash FROM xray.exposures WHERE fingerprint = 'symptom:http_timeout'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };

    c.batch_execute("ALTER EXTENSION xray_pg UPDATE").await.unwrap();
    assert_eq!(one::<String>(c, "SELECT extversion FROM pg_extension WHERE extname = 'xray_pg'").await, env!("CARGO_PKG_VERSION"));

    // One RB6 row per port, at the version 2 identity the engine computes.
    let new_state = rows(
        "SELECT asset_id::text, fingerprint || ' v' || fingerprint_version || ' ' || (evidence ->> 'symptom'), port, status
           FROM xray.exposures WHERE risk_bucket = 'RB6' ORDER BY 1",
    )
    .await;
    assert_eq!(
        new_state,
        [
            (s(A1), s("svc:unknown v2 tls_handshake_fail"), 8443, s("open")),
            (s(A2), s("svc:unknown v2 http_timeout"), 8080, s("open")),
            (s(A3), s("svc:unknown v2 protocol_mismatch"), 9443, s("suppressed")),
        ],
        "the A2 row seen last is kept; nothing else is recomputed"
    );
    assert_eq!(
        one::<i64>(
            c,
            "SELECT count(*) FROM xray.exposures
              WHERE risk_bucket = 'RB6'
                AND identity_key = xray_identity_key(tenant_id, asset_id, observed_host, 'RB6', proto, port, 'svc:unknown')
                AND material_hash = xray_material_hash('RB6', evidence)"
        )
        .await,
        3
    );
    assert_eq!(one::<String>(c, events_digest).await, events_before, "events are history: unchanged, none added");

    // The re-keys are recorded, the collapsed row with its old state.
    let rekeys = rows(
        "SELECT k.old_state ->> 'fingerprint', k.old_status, (k.old_state ->> 'port')::int,
                k.kept::text || ' ' || (k.identity_key = x.identity_key)::text
           FROM xray.identity_rekeys k JOIN xray.exposures x ON x.tenant_id = k.tenant_id AND x.identity_key = k.identity_key
          ORDER BY 1",
    )
    .await;
    assert_eq!(
        rekeys,
        [
            (s("symptom:http_timeout"), s("open"), 8080, s("true true")),
            (s("symptom:protocol_mismatch"), s("suppressed"), 9443, s("true true")),
            (s("symptom:tcp_open_no_banner"), s("open"), 8080, s("false true")),
            (s("symptom:tls_handshake_fail"), s("open"), 8443, s("true true")),
        ]
    );
    let a2_new: String = one(c, &format!("SELECT identity_key FROM xray.exposures WHERE asset_id = '{A2}'")).await;
    assert_eq!(
        one::<String>(c, &format!("SELECT old_identity_key FROM xray.identity_rekeys WHERE identity_key = '{a2_new}' AND kept")).await,
        a2_kept.0
    );

    // The views follow the re-key: every old event finds the state it belongs to.
    assert_eq!(
        one::<i64>(c, "SELECT count(*) FROM xray.exposure_timeline WHERE risk_bucket = 'RB6' AND current_status IS NULL").await,
        0
    );
    assert_eq!(one::<i64>(c, "SELECT count(*) FROM xray.open_exposures WHERE risk_bucket = 'RB6'").await, 2);
    // Undo of the triage made under the old identity restores `fixed`.
    let a3_new: String = one(c, &format!("SELECT identity_key FROM xray.exposures WHERE asset_id = '{A3}'")).await;
    let undone: String = one(c, &format!("SELECT to_status FROM xray.triage('{a3_new}', 'open', 'undo after the update', 'gina')")).await;
    assert_eq!(undone, "fixed");
    let profiles: Value = one(c, "SELECT xray.engine_config() -> 'profile_ports'").await;
    assert_eq!((&profiles["verify"], &profiles["fast_recheck"]), (&serde_json::json!([22, 443]), &serde_json::json!([])));

    // Rescans under the new library: the same observations emit nothing ...
    let same = rb6_scan(4, 4, &[(A1, ip1, Some((8443, "tls_handshake_fail"))), (A2, ip2, Some((8080, "http_timeout")))]);
    let r = c.query_one("SELECT * FROM xray.ingest_scan($1)", &[&same]).await.unwrap();
    assert_eq!(r.get::<_, String>("status"), "applied");
    assert_eq!(events_of(c, &scan_id(&same)).await, Vec::<Value>::new(), "no FIXED + NEW noise");
    assert_eq!(r.get::<_, i32>("held_open_count"), 0);
    // ... and a changed symptom is exactly one CHANGED of the kept identity.
    let changed = rb6_scan(5, 5, &[(A1, ip1, Some((8443, "tls_handshake_fail"))), (A2, ip2, Some((8080, "tcp_open_no_banner")))]);
    insert(c, &changed).await.unwrap();
    let events = c
        .query(
            "SELECT event_type, identity_key, prev_material_hash FROM xray.exposure_events WHERE scan_id = $1::text::uuid",
            &[&scan_id(&changed)],
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].get::<_, String>(0), events[0].get::<_, String>(1), events[0].get::<_, Option<String>>(2)),
        (s("CHANGED"), a2_new, Some(a2_kept.1))
    );
    assert_eq!(one::<i64>(c, "SELECT count(*) FROM xray.exposures WHERE risk_bucket = 'RB6'").await, 3);
    db.finish().await;
}

/// Installing the new library before running the update: scans ingested in
/// between already write version 2 identities. The update merges them with the
/// old rows of the same port like any other.
#[tokio::test]
async fn update_from_0_4_0_merges_rows_the_new_library_wrote_before_the_update() {
    let db = TestDb::without_extension().await;
    let c = &db.client;
    create_release(&db, "0.4.0").await;
    let ip = "203.0.113.64";
    insert(c, &rb6_scan(11, 1, &[(A1, ip, Some((8443, "tls_handshake_fail")))])).await.unwrap();
    as_0_4_0_rb6(c).await; // written by 0.4.0
    // Same port, a later scan by the new library on the 0.4.0 schema: the old
    // row is held open beside a version 2 row.
    insert(c, &rb6_scan(12, 2, &[(A1, ip, Some((8443, "protocol_mismatch")))])).await.unwrap();
    assert_eq!(
        one::<String>(c, "SELECT string_agg(fingerprint || ' ' || fingerprint_version, ', ' ORDER BY fingerprint) FROM xray.exposures").await,
        "svc:unknown 2, symptom:tls_handshake_fail 1"
    );
    let v2_key: String = one(c, "SELECT identity_key FROM xray.exposures WHERE fingerprint = 'svc:unknown'").await;
    c.batch_execute("ALTER EXTENSION xray_pg UPDATE").await.unwrap();
    assert_eq!(
        one::<String>(c, "SELECT identity_key || ' ' || (evidence ->> 'symptom') FROM xray.exposures").await,
        format!("{v2_key} protocol_mismatch"),
        "the row seen last is kept"
    );
    assert_eq!(
        one::<String>(c, "SELECT old_state ->> 'fingerprint' || ' ' || kept FROM xray.identity_rekeys").await,
        "symptom:tls_handshake_fail false"
    );
    let again = rb6_scan(13, 3, &[(A1, ip, Some((8443, "protocol_mismatch")))]);
    insert(c, &again).await.unwrap();
    assert_eq!(events_of(c, &scan_id(&again)).await, Vec::<Value>::new());
    db.finish().await;
}

/// 0.4.0 only lowercased IPv6 hosts, so two spellings of one address were two
/// identities; 0.5.0 writes RFC 5952. The update moves stored rows to the
/// canonical host and identity and merges the spellings of one exposure.
#[tokio::test]
async fn update_from_0_4_0_rekeys_ipv6_hosts_to_rfc_5952() {
    let db = TestDb::without_extension().await;
    let c = &db.client;
    create_release(&db, "0.4.0").await;
    let mut scan = step_payload(&scenario("17-"), 0);
    scan["asset_results"][0]["endpoints"][0]["ip"] = serde_json::json!("2001:db8::10");
    scan["asset_results"][0]["endpoints"][0]["observed_host"] = serde_json::json!("2001:db8::10");
    insert(c, &scan).await.unwrap();
    // As 0.4.0 stored it from two payloads that spelled the address
    // differently: one row per spelling, the bracketed one seen earlier.
    let old_key = identity_sql("RB1", 1, "fingerprint");
    c.batch_execute(&format!(
        "ALTER TABLE xray.exposure_events DISABLE TRIGGER exposure_events_immutable;
         CREATE TEMP TABLE spelled AS SELECT * FROM xray.exposures;
         UPDATE spelled SET observed_host = '[2001:db8::10]', last_seen = last_seen - interval '1 day';
         UPDATE spelled SET identity_key = {old_key};
         UPDATE xray.exposures SET observed_host = '2001:db8:0:0:0:0:0:10';
         UPDATE xray.exposure_events e SET observed_host = '2001:db8:0:0:0:0:0:10', identity_key = x.k
           FROM (SELECT identity_key, {old_key} AS k FROM xray.exposures) x WHERE e.identity_key = x.identity_key;
         UPDATE xray.exposures SET identity_key = {old_key};
         INSERT INTO xray.exposures SELECT * FROM spelled;
         ALTER TABLE xray.exposure_events ENABLE TRIGGER exposure_events_immutable;"
    ))
    .await
    .unwrap();
    assert_eq!(
        one::<String>(c, "SELECT string_agg(observed_host, ' ' ORDER BY observed_host) FROM xray.exposures").await,
        "2001:db8:0:0:0:0:0:10 [2001:db8::10]"
    );
    let kept_old: String = one(c, "SELECT identity_key FROM xray.exposures WHERE observed_host NOT LIKE '[%'").await;

    c.batch_execute("ALTER EXTENSION xray_pg UPDATE").await.unwrap();
    assert_eq!(
        one::<String>(
            c,
            "SELECT observed_host || ' ' || (identity_key = xray_identity_key(tenant_id, asset_id, observed_host, risk_bucket,
                                                                              proto, port, fingerprint))::text
               FROM xray.exposures"
        )
        .await,
        "2001:db8::10 true"
    );
    assert_eq!(
        one::<String>(
            c,
            "SELECT string_agg(kept::text || ' ' || (old_state ->> 'observed_host') || ' ' || rekeyed_in, '; ' ORDER BY kept)
               FROM xray.identity_rekeys"
        )
        .await,
        "false [2001:db8::10] 0.4.0->0.5.0 IPv6 host in RFC 5952 form, merged; \
         true 2001:db8:0:0:0:0:0:10 0.4.0->0.5.0 IPv6 host in RFC 5952 form"
    );
    assert_eq!(
        one::<String>(c, "SELECT old_identity_key FROM xray.identity_rekeys WHERE kept").await,
        kept_old,
        "the row seen last is kept"
    );
    assert_eq!(one::<String>(c, "SELECT current_status FROM xray.exposure_timeline").await, "open");
    // The next scan, in yet another spelling, sees the same exposure.
    let again = step_payload(&scenario("17-"), 1);
    insert(c, &again).await.unwrap();
    assert_eq!(events_of(c, &scan_id(&again)).await, Vec::<Value>::new());
    db.finish().await;
}
