//! Ingestion rules of docs/design.md D5 against the real database.

use std::time::Duration;

use serde_json::{json, Value};
use xray_tests::*;

#[tokio::test]
async fn resubmitted_scan_id_writes_nothing_new() {
    let db = TestDb::new().await;
    let p = step_payload(&scenario("01-"), 0);
    assert_eq!(insert(&db.client, &p).await.unwrap(), 1);
    let events = count(&db.client, "xray.exposure_events").await;
    let first = db.client.query_one("SELECT * FROM xray.ingest_scan($1)", &[&p]).await.unwrap();
    assert_eq!(first.get::<_, String>("status"), "duplicate");
    assert_eq!(first.get::<_, i32>("new_count"), 1, "same answer as the first time");
    assert_eq!(insert(&db.client, &p).await.unwrap(), 0, "the INSERT is skipped");
    assert_eq!(count(&db.client, "xray.exposure_events").await, events);
    assert_eq!(count(&db.client, "xray.scan_results").await, 1);

    // Same scan_id, different content: refused, not silently ignored.
    let mut other = p.clone();
    other["asset_results"][0]["endpoints"][0]["ports"]["tcp"] = json!([]);
    let err = insert(&db.client, &other).await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "23505");
    assert!(err.as_db_error().unwrap().message().contains("scan.scan_id"));
    db.finish().await;
}

#[tokio::test]
async fn order_of_observations_does_not_change_events() {
    let s = scenario("13-");
    let mut results = Vec::new();
    for reverse in [false, true] {
        let db = TestDb::new().await;
        for i in 0..2 {
            let mut p = step_payload(&s, i);
            if reverse {
                let ep = &mut p["asset_results"][0]["endpoints"][0];
                for key in ["http", "tls"] {
                    ep[key].as_array_mut().unwrap().reverse();
                }
                ep["ports"]["tcp"].as_array_mut().unwrap().reverse();
                // Add a duplicate observation in a different position: dedupe must absorb it.
                let dup = ep["tls"][0].clone();
                ep["tls"].as_array_mut().unwrap().insert(0, dup);
            }
            insert(&db.client, &p).await.unwrap();
        }
        let rows = db
            .client
            .query(
                "SELECT event_type, identity_key, material_hash, evidence - 'endpoint_id' FROM xray.exposure_events ORDER BY event_id",
                &[],
            )
            .await
            .unwrap();
        results.push(
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, Option<String>>(2)))
                .collect::<Vec<_>>(),
        );
        db.finish().await;
    }
    assert!(!results[0].is_empty());
    assert_eq!(results[0], results[1]);
}

#[tokio::test]
async fn older_scan_after_newer_changes_nothing() {
    let db = TestDb::new().await;
    let s = scenario("02-");
    let (older, newer) = (step_payload(&s, 0), step_payload(&s, 1));
    insert(&db.client, &newer).await.unwrap();
    let before = db.client.query("SELECT identity_key, status, last_seen FROM xray.exposures", &[]).await.unwrap();
    let events_before = count(&db.client, "xray.exposure_events").await;

    assert!(db.client.query("SELECT * FROM xray_diff_scan($1)", &[&older]).await.unwrap().is_empty());
    let row = db.client.query_one("SELECT * FROM xray.ingest_scan($1)", &[&older]).await.unwrap();
    assert_eq!(row.get::<_, String>("status"), "stale");
    let asset: uuid::Uuid = older["scan"]["requested_asset_ids"][0].as_str().unwrap().parse().unwrap();
    assert_eq!(row.get::<_, Vec<uuid::Uuid>>("stale_asset_ids"), [asset], "every asset in scope was skipped");
    let after = db.client.query("SELECT identity_key, status, last_seen FROM xray.exposures", &[]).await.unwrap();
    assert_eq!(before.len(), after.len());
    assert_eq!(count(&db.client, "xray.exposure_events").await, events_before, "a stale scan emits no events");
    let status: String = db
        .client
        .query_one("SELECT status FROM xray.scan_results WHERE scan_id = $1::text::uuid", &[&scan_id(&older)])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "stale", "the stale scan is stored");
    db.finish().await;
}

#[tokio::test]
async fn concurrent_scans_of_one_tenant_serialise() {
    let db = TestDb::new().await;
    let s = scenario("11-");
    let first = step_payload(&s, 0); // ssh open
    let mut second = step_payload(&s, 2); // ssh open again, later
    second["scan"]["scan_id"] = json!("5ca10000-0000-4000-8000-00000000c0c0");

    let mut tx_client = db.session().await;
    let tx = tx_client.transaction().await.unwrap();
    tx.execute("INSERT INTO xray.scan_results (payload) VALUES ($1)", &[&first]).await.unwrap();

    let other = db.session().await;
    let second_clone = second.clone();
    let waiter = tokio::spawn(async move { insert(&other, &second_clone).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "the second scan of the tenant must wait for the first");
    tx.commit().await.unwrap();
    waiter.await.unwrap().unwrap();

    // Serialised: the second scan saw the first one's open SSH, so no second NEW.
    assert_eq!(events_of(&db.client, &scan_id(&second)).await, Vec::<Value>::new());
    assert_eq!(events_of(&db.client, &scan_id(&first)).await.len(), 1);
    db.finish().await;
}

#[tokio::test]
async fn dry_run_matches_insert_and_writes_nothing() {
    let db = TestDb::new().await;
    let s = scenario("09-");
    insert(&db.client, &step_payload(&s, 0)).await.unwrap();
    let p = step_payload(&s, 1);
    let dry = db
        .client
        .query("SELECT event_type, identity_key FROM xray_diff_scan($1)", &[&p])
        .await
        .unwrap();
    assert_eq!(count(&db.client, "xray.exposure_events").await, 1, "dry run wrote nothing");
    assert_eq!(count(&db.client, "xray.scan_results").await, 1);
    insert(&db.client, &p).await.unwrap();
    let real = db
        .client
        .query(
            "SELECT event_type, identity_key FROM xray.exposure_events WHERE scan_id = $1::text::uuid ORDER BY event_id",
            &[&scan_id(&p)],
        )
        .await
        .unwrap();
    let pairs = |rows: &[tokio_postgres::Row]| {
        rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect::<Vec<_>>()
    };
    assert_eq!(pairs(&dry), pairs(&real));
    assert_eq!(real.len(), 2);
    // Once applied, the same payload is a duplicate and the dry run is empty.
    assert!(db.client.query("SELECT * FROM xray_diff_scan($1)", &[&p]).await.unwrap().is_empty());
    db.finish().await;
}

#[tokio::test]
async fn fixed_event_carries_last_open_evidence_and_proof() {
    let db = TestDb::new().await;
    let s = scenario("02-");
    insert(&db.client, &step_payload(&s, 0)).await.unwrap();
    insert(&db.client, &step_payload(&s, 1)).await.unwrap();
    let ev: Value = db
        .client
        .query_one("SELECT evidence FROM xray.exposure_events WHERE event_type = 'FIXED'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ev["last_open"]["port"], json!(22));
    assert_eq!(ev["last_open"]["service_family"], json!("ssh"));
    assert_eq!(ev["proof"]["basis"], json!("inferred"));
    let result = ev["proof"]["endpoints"][0]["result"].as_str().unwrap();
    assert!(result.contains("tcp/22"), "{result}");
    db.finish().await;
}

#[tokio::test]
async fn events_are_immutable() {
    let db = TestDb::new().await;
    insert(&db.client, &step_payload(&scenario("01-"), 0)).await.unwrap();
    for sql in [
        "UPDATE xray.exposure_events SET event_type = 'FIXED'",
        "DELETE FROM xray.exposure_events",
        "TRUNCATE xray.exposure_events",
    ] {
        let err = db.client.execute(sql, &[]).await.unwrap_err();
        assert_eq!(err.as_db_error().unwrap().code().code(), "23000", "{sql}");
    }
    assert_eq!(count(&db.client, "xray.exposure_events").await, 1);
    db.finish().await;
}

#[tokio::test]
async fn sql_functions_agree_with_the_stored_state() {
    let db = TestDb::new().await;
    let p = step_payload(&scenario("13-"), 0);
    insert(&db.client, &p).await.unwrap();
    // identity_key and material_hash can be re-derived in SQL from the stored row.
    let mismatches: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM xray.exposures
              WHERE identity_key <> xray_identity_key(tenant_id, asset_id, upper(observed_host), risk_bucket, proto, port, fingerprint)
                 OR material_hash <> xray_material_hash(risk_bucket, evidence)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(mismatches, 0);
    let normalized: i64 =
        db.client.query_one("SELECT count(*) FROM xray_normalize($1)", &[&p]).await.unwrap().get(0);
    assert_eq!(normalized, count(&db.client, "xray.exposures").await);

    let key: String = db
        .client
        .query_one(
            "SELECT xray_identity_key('11111111-1111-1111-1111-111111111111', '22222222-2222-2222-2222-222222222222',
                                      '203.0.113.10', 'RB1', 'tcp', 22, 'svc:ssh')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(key, "21399a6284d097f7abde11738aa0121a8b5761f02bd177ba9b3dc1c315adfc25");
    let err = db
        .client
        .query_one("SELECT xray_identity_key(gen_random_uuid(), gen_random_uuid(), 'h', 'RB9', 'tcp', 1, 'x')", &[])
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "22023");
    db.finish().await;
}

#[tokio::test]
async fn triaged_exposures_emit_no_events_but_are_tracked() {
    let db = TestDb::new().await;
    let s = scenario("11-");
    insert(&db.client, &step_payload(&s, 0)).await.unwrap();
    db.client.execute("UPDATE xray.exposures SET status = 'suppressed'", &[]).await.unwrap();
    // The port closes (would be FIXED), then reappears (would be NEW): both silent.
    insert(&db.client, &step_payload(&s, 1)).await.unwrap();
    insert(&db.client, &step_payload(&s, 2)).await.unwrap();
    assert_eq!(count(&db.client, "xray.exposure_events").await, 1, "only the original NEW");
    let row = db
        .client
        .query_one("SELECT status, last_seen::text, last_scan_id::text FROM xray.exposures", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "suppressed");
    assert_eq!(row.get::<_, String>(2), scan_id(&step_payload(&s, 2)), "still tracked");
    db.finish().await;
}

/// The trigger hands rows to SQL as one array per column (built by hand in
/// xray_pg/src/columns.rs): what lands in the tables must be exactly what the
/// engine computed, including NULLs spread over several bitmap bytes, quotes,
/// backslashes, commas, braces, empty strings and non-ASCII text.
#[tokio::test]
async fn stored_rows_are_exactly_the_engines_output() {
    let db = TestDb::new().await;
    let c = &db.client;
    let mut p = step_payload(&scenario("13-"), 0);
    let tags = ["prod", "", "a \"quoted\", {braced} tag", "back\\slash", "ünïcødé ✓", "NULL"];
    p["asset_results"][0]["asset"]["tags"] = json!(tags);
    let template = p["asset_results"][0]["endpoints"][0].clone();
    let endpoints: Vec<Value> = (0..19)
        .map(|i| {
            let mut e = template.clone();
            e["endpoint_id"] = Value::String(format!("clone-{i}"));
            e["observed_host"] = Value::String(format!("h{i}.example.com"));
            if i % 3 == 1 {
                // No address: the exposures found here have a NULL observed_ip.
                e.as_object_mut().unwrap().remove("ip");
            }
            e["http"][0]["title"] = Value::String(format!("Ex\"am\\ple {{{i}}} — ✓"));
            e
        })
        .collect();
    p["asset_results"][0]["endpoints"] = Value::Array(endpoints);

    let columns = "jsonb_build_array(identity_key, risk_bucket, asset_id, observed_host, observed_ip, proto, port,
                                     fingerprint, detail, material_hash, evidence)";
    let engine: Value = c
        .query_one(&format!("SELECT jsonb_agg({columns} ORDER BY identity_key) FROM xray_normalize($1)"), &[&p])
        .await
        .unwrap()
        .get(0);
    let dry: Value = c
        .query_one(
            "SELECT jsonb_agg(jsonb_build_array(event_type, identity_key, observed_host, port, detail, material_hash,
                                                evidence) ORDER BY identity_key) FROM xray_diff_scan($1)",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    insert(c, &p).await.unwrap();

    let stored: Value = c
        .query_one(&format!("SELECT jsonb_agg({columns} ORDER BY identity_key) FROM xray.exposures"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, engine);
    let events: Value = c
        .query_one(
            "SELECT jsonb_agg(jsonb_build_array(event_type, identity_key, observed_host, port, detail, material_hash,
                                                evidence) ORDER BY identity_key) FROM xray.exposure_events",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, dry);
    let (with_ip, without_ip): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT count(*) FILTER (WHERE observed_ip IS NOT NULL), count(*) FILTER (WHERE observed_ip IS NULL)
                   FROM xray.exposures",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(with_ip > 8 && without_ip > 8, "NULLs and values mixed over several bitmap bytes: {with_ip}/{without_ip}");
    let stored_tags: Vec<String> = c.query_one("SELECT tags FROM xray.assets", &[]).await.unwrap().get(0);
    assert_eq!(stored_tags, tags);
    let endpoints_recorded: i64 = c
        .query_one("SELECT count(DISTINCT endpoint_id) FROM xray.endpoints WHERE http_urls = '{https://example.com/}'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(endpoints_recorded, 19);
    db.finish().await;
}

/// Two assets; the newer scan saw only A1. An older scan of A1 and A2 applies
/// to A2 and skips A1 (docs/design.md D11): A1 would have had a FIXED and a NEW.
#[tokio::test]
async fn older_scan_applies_to_the_assets_it_is_newest_for() {
    let db = TestDb::new().await;
    let c = &db.client;
    let s = scenario("14-");
    let newer = step_payload(&s, 0); // A1: ssh open, 2026-02-06
    let mut older = step_payload(&s, 1); // A1 and A2, 2026-02-05
    // In the older scan A1's ssh is closed and rdp open: applied, that would
    // be FIXED + NEW. A2's ssh is open.
    older["asset_results"][0]["endpoints"][0]["ports"]["tcp"][0]["port"] = json!(3389);
    let (a1, a2) = (older["scan"]["requested_asset_ids"][0].clone(), older["scan"]["requested_asset_ids"][1].clone());
    let uuid = |v: &Value| v.as_str().unwrap().parse::<uuid::Uuid>().unwrap();
    insert(c, &newer).await.unwrap();
    let a1_before = c
        .query_one("SELECT status, last_seen, last_scan_id FROM xray.exposures WHERE asset_id = $1::text::uuid", &[&a1.as_str()])
        .await
        .unwrap();

    // The dry run agrees with what the insert then does.
    let dry: Vec<(String, String, i32)> = c
        .query("SELECT event_type, observed_host, port FROM xray_diff_scan($1)", &[&older])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(dry, [("NEW".to_string(), "203.0.113.20".to_string(), 22)]);

    let row = c.query_one("SELECT * FROM xray.ingest_scan($1)", &[&older]).await.unwrap();
    assert_eq!(row.get::<_, String>("status"), "partial");
    assert_eq!(row.get::<_, Vec<uuid::Uuid>>("stale_asset_ids"), [uuid(&a1)]);
    assert_eq!((row.get::<_, i32>("new_count"), row.get::<_, i32>("fixed_count")), (1, 0));
    assert_eq!(row.get::<_, i32>("warning_count"), 0);
    let events = events_of(c, &scan_id(&older)).await;
    assert_eq!(
        events,
        [json!({"event_type": "NEW", "risk_bucket": "RB1", "observed_host": "203.0.113.20", "port": 22,
                "fingerprint": "svc:ssh", "reopened": false})]
    );

    // A1 is untouched: its exposure, its newest scan, its inventory.
    let a1_after = c
        .query_one("SELECT status, last_seen, last_scan_id FROM xray.exposures WHERE asset_id = $1::text::uuid", &[&a1.as_str()])
        .await
        .unwrap();
    assert_eq!(
        (a1_after.get::<_, String>(0), a1_after.get::<_, std::time::SystemTime>(1), a1_after.get::<_, uuid::Uuid>(2)),
        (a1_before.get::<_, String>(0), a1_before.get::<_, std::time::SystemTime>(1), a1_before.get::<_, uuid::Uuid>(2))
    );
    assert_eq!(count(c, "xray.exposures").await, 2, "no rdp exposure for A1");
    let newest: Vec<(uuid::Uuid, uuid::Uuid)> = c
        .query("SELECT asset_id, last_scan_id FROM xray.asset_scans ORDER BY asset_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let sid = |p: &Value| scan_id(p).parse::<uuid::Uuid>().unwrap();
    assert_eq!(newest, [(uuid(&a1), sid(&newer)), (uuid(&a2), sid(&older))], "asset_scans moves only for A2");
    let inventory: Vec<(uuid::Uuid, uuid::Uuid, Vec<i32>)> = c
        .query(
            "SELECT a.asset_id, a.last_scan_id, e.open_tcp_ports FROM xray.assets a JOIN xray.endpoints e USING (tenant_id, asset_id)
              ORDER BY a.asset_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(inventory, [(uuid(&a1), sid(&newer), vec![22]), (uuid(&a2), sid(&older), vec![22])]);

    // The summary says which assets were skipped.
    let summary = c
        .query_one(
            "SELECT status, stale_asset_ids, stale_asset_count, exposure_count, asset_count, warning_count, warnings
               FROM xray.scan_summary WHERE scan_id = $1::text::uuid",
            &[&scan_id(&older)],
        )
        .await
        .unwrap();
    assert_eq!(summary.get::<_, String>(0), "partial");
    assert_eq!(summary.get::<_, Vec<uuid::Uuid>>(1), [uuid(&a1)]);
    assert_eq!(summary.get::<_, i32>(2), 1);
    assert_eq!(summary.get::<_, i32>(3), 1, "exposures of the applied assets");
    assert_eq!(summary.get::<_, i32>(4), 2, "the payload's assets");
    assert_eq!(summary.get::<_, i32>(5), 0);
    assert_eq!(summary.get::<_, Vec<String>>(6), Vec::<String>::new());

    // Resubmitted: the same answer, nothing written.
    let again = c.query_one("SELECT * FROM xray.ingest_scan($1)", &[&older]).await.unwrap();
    assert_eq!(again.get::<_, String>("status"), "duplicate");
    assert_eq!(again.get::<_, Vec<uuid::Uuid>>("stale_asset_ids"), [uuid(&a1)]);
    assert_eq!(count(c, "xray.exposure_events").await, 2);
    db.finish().await;
}

/// The status constraint knows the three outcomes and keeps stale_asset_ids
/// consistent with them (only the owner writes these columns: restored rows).
#[tokio::test]
async fn scan_status_and_stale_asset_ids_are_consistent() {
    let db = TestDb::new().await;
    let p = step_payload(&scenario("01-"), 0);
    let restore = |status: &str, stale: &str| {
        format!(
            "INSERT INTO xray.scan_results (scan_id, tenant_id, schema_version, started_at, status, stale_asset_ids, payload)
             SELECT (p -> 'scan' ->> 'scan_id')::uuid, (p -> 'scan' ->> 'tenant_id')::uuid, '1.1', now(), '{status}', '{stale}', p
               FROM (SELECT $1::jsonb AS p) x"
        )
    };
    for (status, stale) in [("applied", "{aaaaaaaa-0000-4000-8000-000000000001}"), ("partial", "{}"), ("skipped", "{}")] {
        let err = db.client.execute(&restore(status, stale), &[&p]).await.unwrap_err();
        assert_eq!(err.as_db_error().unwrap().code().code(), "23514", "{status} {stale}");
    }
    db.client.execute(&restore("partial", "{aaaaaaaa-0000-4000-8000-000000000001}"), &[&p]).await.unwrap();
    db.finish().await;
}
