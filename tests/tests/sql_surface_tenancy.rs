//! Tenant isolation with row-level security, tested as separate non-superuser
//! logins over TCP: readers see only their tenant through every table and
//! view, loaders write only their tenant, readers write nothing.

use tokio_postgres::Client;
use xray_tests::*;

const A: &str = "11111111-1111-1111-1111-111111111111";
const B: &str = "22222222-2222-2222-2222-222222222222";

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| format!("not a db error: {e}"))
}

/// Both tenants get the same history: SSH opens and is fixed, TLS/DNS issues
/// open and are fixed, and one exposure is triaged.
async fn two_tenants(db: &TestDb) {
    for tenant in [A, B] {
        for (s, steps) in [("02-", 2), ("13-", 2), ("01-", 1)] {
            let sc = scenario(s);
            for i in 0..steps {
                let mut p = for_tenant(&step_payload(&sc, i), tenant);
                if s == "01-" {
                    // A third asset, so it does not collide with scenario 02's.
                    let asset = "aaaaaaaa-0000-4000-8000-0000000000ab";
                    p["scan"]["requested_asset_ids"] = serde_json::json!([asset]);
                    p["asset_results"][0]["asset"]["asset_id"] = serde_json::json!(asset);
                }
                insert(&db.client, &p).await.unwrap();
            }
        }
        db.client
            .execute(
                "SELECT xray.triage(identity_key, 'suppressed', 'test', 'root')
                   FROM xray.exposures WHERE tenant_id = $1::text::uuid AND status = 'open' LIMIT 1",
                &[&tenant],
            )
            .await
            .unwrap();
        record_a_rekey(&db.client, tenant).await;
    }
}

/// Every relation in schema xray with a tenant_id column.
async fn tenant_relations(superuser: &Client) -> Vec<String> {
    superuser
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
              WHERE c.relnamespace = 'xray'::regnamespace AND c.relkind IN ('r', 'v') AND a.attname = 'tenant_id'
              ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn rows_per_tenant(c: &Client, relation: &str) -> Result<(i64, i64, i64), tokio_postgres::Error> {
    let row = c
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE tenant_id = '{A}'), count(*) FILTER (WHERE tenant_id = '{B}'), count(*)
                   FROM xray.{relation}"
            ),
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

#[tokio::test]
async fn reader_sees_only_its_tenant_through_every_table_and_view() {
    let db = TestDb::new().await;
    two_tenants(&db).await;
    let reader = LoginRole::create(&db.client, "xray_reader").await;
    db.client
        .execute(
            "INSERT INTO xray.tenant_access (role_name, tenant_id) VALUES ($1, $2::text::uuid), ('someone_else', $3::text::uuid)",
            &[&reader.name, &A, &B],
        )
        .await
        .unwrap();
    let relations = tenant_relations(&db.client).await;
    assert!(relations.len() >= 14, "{relations:?}");
    let r = reader.connect(&db).await;
    let is_super: bool = r
        .query_one("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!is_super, "the reader must be an ordinary role for this test to mean anything");

    // No tenant selected: nothing at all, except the reader's own grant.
    let nothing = |rel: &str| if rel == "tenant_access" { (1, 0, 1) } else { (0, 0, 0) };
    for rel in &relations {
        assert_eq!(rows_per_tenant(&r, rel).await.unwrap(), nothing(rel), "{rel} without a tenant");
    }
    // Setting the variable to a tenant it was not granted does not help.
    r.batch_execute(&format!("SET xray.tenant_id = '{B}'")).await.unwrap();
    for rel in &relations {
        assert_eq!(rows_per_tenant(&r, rel).await.unwrap(), nothing(rel), "{rel} with tenant B set by hand");
    }
    let e = r.query_one("SELECT xray.set_tenant($1::text::uuid)", &[&B]).await.unwrap_err();
    assert_eq!(code(&e), "42501");

    // Its own tenant: exactly tenant A's rows, as the superuser counts them.
    r.query_one("SELECT xray.set_tenant($1::text::uuid)", &[&A]).await.unwrap();
    let mut seen_some = 0;
    for rel in &relations {
        let (a, b, all) = rows_per_tenant(&r, rel).await.unwrap();
        let (super_a, super_b, _) = rows_per_tenant(&db.client, rel).await.unwrap();
        assert_eq!((a, b, all), (super_a, 0, super_a), "{rel} as reader of A");
        assert!(super_b > 0 || super_a == 0, "{rel}: tenant B has rows, so the test means something");
        seen_some += usize::from(a > 0);
    }
    assert_eq!(seen_some, relations.len(), "every relation has tenant A rows in this fixture");

    // Grants: only its own; functions see through the same policies.
    let grants: Vec<String> = r
        .query("SELECT tenant_id::text FROM xray.tenant_access", &[])
        .await
        .unwrap()
        .iter()
        .map(|x| x.get(0))
        .collect();
    assert_eq!(grants, [A]);
    let p_b = for_tenant(&step_payload(&scenario("02-"), 0), B);
    let dry: Vec<String> =
        r.query("SELECT event_type FROM xray_diff_scan($1)", &[&p_b]).await.unwrap().iter().map(|x| x.get(0)).collect();
    assert_eq!(dry, ["NEW"], "tenant B's stored scan and state are invisible to the dry run");

    drop(r);
    db.finish().await;
    reader.drop().await;
}

#[tokio::test]
async fn reader_cannot_write() {
    let db = TestDb::new().await;
    two_tenants(&db).await;
    let reader = LoginRole::create(&db.client, "xray_reader").await;
    db.client
        .execute(
            "INSERT INTO xray.tenant_access (role_name, tenant_id) VALUES ($1, $2::text::uuid)",
            &[&reader.name, &A],
        )
        .await
        .unwrap();
    let r = reader.connect(&db).await;
    r.query_one("SELECT xray.set_tenant($1::text::uuid)", &[&A]).await.unwrap();
    let p = for_tenant(&step_payload(&scenario("11-"), 0), A);
    let attempts: Vec<(&str, Vec<&(dyn tokio_postgres::types::ToSql + Sync)>)> = vec![
        ("INSERT INTO xray.scan_results (payload) VALUES ($1)", vec![&p]),
        ("SELECT * FROM xray.ingest_scan($1)", vec![&p]),
        ("UPDATE xray.exposures SET status = 'suppressed'", vec![]),
        ("DELETE FROM xray.exposure_events", vec![]),
        ("INSERT INTO xray.assets SELECT * FROM xray.assets", vec![]),
        ("SELECT xray.triage(identity_key, 'suppressed', 'x', 'y') FROM xray.exposures", vec![]),
        ("UPDATE xray.settings SET near_expiry_days = 1", vec![]),
        ("INSERT INTO xray.admin_ports (port, service_family) VALUES (2022, 'ssh')", vec![]),
        ("INSERT INTO xray.tenant_access (role_name, tenant_id) VALUES (current_user, gen_random_uuid())", vec![]),
        ("INSERT INTO xray.identity_rekeys SELECT * FROM xray.identity_rekeys", vec![]),
    ];
    let before = count(&db.client, "xray.scan_results").await;
    for (sql, params) in attempts {
        let e = r.query(sql, &params).await.unwrap_err();
        assert_eq!(code(&e), "42501", "{sql}: {e:?}");
    }
    assert_eq!(count(&db.client, "xray.scan_results").await, before);
    assert_eq!(count(&db.client, "xray.triage_log").await, 2);
    drop(r);
    db.finish().await;
    reader.drop().await;
}

#[tokio::test]
async fn loader_ingests_only_for_its_tenant() {
    let db = TestDb::new().await;
    let loader = LoginRole::create(&db.client, "xray_ingest").await;
    db.client
        .execute(
            "INSERT INTO xray.tenant_access (role_name, tenant_id) VALUES ($1, $2::text::uuid)",
            &[&loader.name, &A],
        )
        .await
        .unwrap();
    let l = loader.connect(&db).await;
    let s = scenario("02-");
    let (pa, pb) = (for_tenant(&step_payload(&s, 0), A), for_tenant(&step_payload(&s, 0), B));

    let e = insert(&l, &pa).await.unwrap_err();
    assert_eq!(code(&e), "42501");
    assert!(e.as_db_error().unwrap().message().contains("no tenant selected"), "{e:?}");

    l.query_one("SELECT xray.set_tenant($1::text::uuid)", &[&A]).await.unwrap();
    let row = l.query_one("SELECT status, new_count FROM xray.ingest_scan($1)", &[&pa]).await.unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, i32>(1)), ("applied".to_string(), 1));
    // The trigger wrote the derived rows although the loader may not.
    assert_eq!(count(&l, "xray.exposure_events").await, 1);
    assert_eq!(count(&l, "xray.assets").await, 1);

    let totals = || async {
        let mut v = Vec::new();
        for t in ["scan_results", "exposures", "exposure_events", "asset_scans", "assets", "endpoints"] {
            v.push(count(&db.client, &format!("xray.{t}")).await);
        }
        v
    };
    let before = totals().await;
    let e = insert(&l, &pb).await.unwrap_err();
    assert_eq!(code(&e), "42501");
    assert!(e.as_db_error().unwrap().message().contains(B), "{e:?}");
    // Setting the variable by hand does not select a tenant that is not granted.
    l.batch_execute(&format!("SET xray.tenant_id = '{B}'")).await.unwrap();
    let e = insert(&l, &pb).await.unwrap_err();
    assert_eq!(code(&e), "42501", "{e:?}");
    l.query_one("SELECT xray.set_tenant($1::text::uuid)", &[&A]).await.unwrap();
    assert_eq!(totals().await, before, "nothing was written for tenant B");

    // Only the payload column, and no derived table, is writable.
    for sql in [
        "INSERT INTO xray.scan_results (payload, status, scan_id, tenant_id, schema_version, started_at)
         SELECT payload, 'applied', gen_random_uuid(), tenant_id, schema_version, started_at FROM xray.scan_results",
        "INSERT INTO xray.exposures SELECT * FROM xray.exposures",
        "DELETE FROM xray.exposure_events",
        "UPDATE xray.exposures SET status = 'fixed'",
        "DELETE FROM xray.scan_results",
        "INSERT INTO xray.identity_rekeys SELECT * FROM xray.identity_rekeys",
        "DELETE FROM xray.identity_rekeys",
    ] {
        let e = l.execute(sql, &[]).await.unwrap_err();
        assert_eq!(code(&e), "42501", "{sql}");
    }

    // A partial scan as the loader: applied to A2, A1 skipped (it has a newer
    // scan), and the answer says so; asset_scans only moved for A2.
    let s14 = scenario("14-");
    let (newer, older) = (for_tenant(&step_payload(&s14, 0), A), for_tenant(&step_payload(&s14, 1), A));
    insert(&l, &newer).await.unwrap();
    let row = l
        .query_one("SELECT status, stale_asset_ids::text[], new_count FROM xray.ingest_scan($1)", &[&older])
        .await
        .unwrap();
    let a1 = older["scan"]["requested_asset_ids"][0].as_str().unwrap().to_string();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, Vec<String>>(1), row.get::<_, i32>(2)),
        ("partial".to_string(), vec![a1.clone()], 1)
    );
    let newest: String = l
        .query_one("SELECT last_scan_id::text FROM xray.asset_scans WHERE asset_id = $1::text::uuid", &[&a1])
        .await
        .unwrap()
        .get(0);
    assert_eq!(newest, scan_id(&newer));
    drop(l);
    db.finish().await;
    loader.drop().await;
}

#[tokio::test]
async fn admin_triages_and_configures_within_its_tenant() {
    let db = TestDb::new().await;
    two_tenants(&db).await;
    let admin = LoginRole::create(&db.client, "xray_admin").await;
    db.client
        .execute(
            "INSERT INTO xray.tenant_access (role_name, tenant_id) VALUES ($1, $2::text::uuid)",
            &[&admin.name, &A],
        )
        .await
        .unwrap();
    let key_of = |tenant: &'static str| {
        let c = &db.client;
        async move {
            c.query_one(
                "SELECT identity_key FROM xray.exposures WHERE tenant_id = $1::text::uuid AND status = 'fixed' LIMIT 1",
                &[&tenant],
            )
            .await
            .unwrap()
            .get::<_, String>(0)
        }
    };
    let (key_a, key_b) = (key_of(A).await, key_of(B).await);
    let c = admin.connect(&db).await;
    c.query_one("SELECT xray.set_tenant($1::text::uuid)", &[&A]).await.unwrap();
    let entry = c
        .query_one("SELECT tenant_id::text FROM xray.triage($1, 'false_positive', 'lab', 'erin')", &[&key_a])
        .await
        .unwrap();
    assert_eq!(entry.get::<_, String>(0), A);
    let e = c.query_one("SELECT xray.triage($1, 'false_positive', 'lab', 'erin')", &[&key_b]).await.unwrap_err();
    assert_eq!(code(&e), "P0002", "tenant B's exposure does not exist for this session");
    let status_b: String = db
        .client
        .query_one("SELECT status FROM xray.exposures WHERE identity_key = $1", &[&key_b])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status_b, "fixed");
    // Direct status edits are not possible, only audited triage.
    let e = c.execute("UPDATE xray.exposures SET status = 'open'", &[]).await.unwrap_err();
    assert_eq!(code(&e), "42501");
    c.batch_execute("UPDATE xray.settings SET near_expiry_days = 14").await.unwrap();
    let days: i32 = db.client.query_one("SELECT near_expiry_days FROM xray.settings", &[]).await.unwrap().get(0);
    assert_eq!(days, 14);
    drop(c);
    db.finish().await;
    admin.drop().await;
}
