//! Every kind of bad payload is refused with a message naming the field, a
//! SQLSTATE, and no rows written anywhere.

use serde_json::{json, Value};
use xray_tests::*;

fn valid() -> Value {
    step_payload(&scenario("01-"), 0)
}

fn with(mut p: Value, path: &[&str], v: Option<Value>) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let mut node = &mut p;
    for k in parents {
        node = if let Ok(i) = k.parse::<usize>() { &mut node[i] } else { &mut node[*k] };
    }
    match v {
        Some(v) => node[*last] = v,
        None => {
            node.as_object_mut().unwrap().remove(*last);
        }
    }
    p
}

#[tokio::test]
async fn bad_payloads_fail_with_field_and_sqlstate_and_write_nothing() {
    let db = TestDb::new().await;
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("not an object", json!([1, 2, 3]), "22023", "payload: must be a JSON object"),
        ("string payload", json!("scan"), "22023", "payload: must be a JSON object"),
        ("unknown major version", with(valid(), &["schema_version"], Some(json!("2.0"))), "0A000", "schema_version"),
        ("garbled version", with(valid(), &["schema_version"], Some(json!("one"))), "22023", "schema_version"),
        ("version as number", with(valid(), &["schema_version"], Some(json!(1.1))), "22023", "schema_version"),
        ("missing schema_version", with(valid(), &["schema_version"], None), "23502", "schema_version"),
        ("missing scan_id", with(valid(), &["scan", "scan_id"], None), "23502", "scan.scan_id"),
        ("missing tenant_id", with(valid(), &["scan", "tenant_id"], None), "23502", "scan.tenant_id"),
        ("null tenant_id", with(valid(), &["scan", "tenant_id"], Some(Value::Null)), "23502", "scan.tenant_id"),
        ("invalid UUID", with(valid(), &["scan", "tenant_id"], Some(json!("not-a-uuid"))), "22P02", "scan.tenant_id"),
        ("scan_id as number", with(valid(), &["scan", "scan_id"], Some(json!(42))), "22023", "scan.scan_id"),
        (
            "timestamp without Z",
            with(valid(), &["scan", "started_at"], Some(json!("2026-02-05T10:00:00+01:00"))),
            "22007",
            "scan.started_at",
        ),
        (
            "local timestamp",
            with(valid(), &["scan", "finished_at"], Some(json!("2026-02-05 10:04:12"))),
            "22007",
            "scan.finished_at",
        ),
        (
            "endpoints not a list",
            with(valid(), &["asset_results", "0", "endpoints"], Some(json!({"a": 1}))),
            "22023",
            "asset_results[0].endpoints",
        ),
        (
            "invalid endpoint ip",
            with(valid(), &["asset_results", "0", "endpoints", "0", "ip"], Some(json!("999.1.1.1"))),
            "22023",
            "asset_results[0].endpoints[0].ip",
        ),
        (
            "unknown asset type",
            with(valid(), &["asset_results", "0", "asset", "asset_type"], Some(json!("url"))),
            "22023",
            "asset_results[0].asset.asset_type",
        ),
        (
            "asset outside requested_asset_ids",
            with(valid(), &["scan", "requested_asset_ids"], Some(json!(["aaaaaaaa-0000-4000-8000-00000000beef"]))),
            "22023",
            "asset_results[0].asset.asset_id",
        ),
    ];
    for (what, payload, sqlstate, field) in cases {
        let err = insert(&db.client, &payload).await.expect_err(what);
        let db_err = err.as_db_error().unwrap_or_else(|| panic!("{what}: not a database error: {err}"));
        assert_eq!(db_err.code().code(), sqlstate, "{what}: {}", db_err.message());
        assert!(db_err.message().contains(field), "{what}: message {:?} should name {field}", db_err.message());

        // The dry run refuses it the same way.
        let err = db.client.query("SELECT * FROM xray_diff_scan($1)", &[&payload]).await.expect_err(what);
        assert_eq!(err.as_db_error().unwrap().code().code(), sqlstate, "{what} (dry run)");
    }
    // Malformed JSON text never reaches the engine: the jsonb input function refuses it.
    let err = db
        .client
        .execute("INSERT INTO xray.scan_results (payload) VALUES ($1::text::jsonb)", &[&"{\"schema_version\": "])
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "22P02");

    for table in ["xray.scan_results", "xray.exposures", "xray.exposure_events", "xray.asset_scans"] {
        assert_eq!(count(&db.client, table).await, 0, "{table} must stay empty");
    }
    // And the valid payload still goes in afterwards.
    assert_eq!(insert(&db.client, &valid()).await.unwrap(), 1);
    db.finish().await;
}

/// An observation the engine cannot use does not refuse the scan (design
/// D10 of docs/design.md): the scan is stored with a warning that names the field, the
/// observation stays in the payload, and it proves nothing (no FIXED).
#[tokio::test]
async fn unusable_observations_are_stored_as_warnings_not_refused() {
    let db = TestDb::new().await;
    let c = &db.client;
    // A port as a decimal string is a port.
    let mut first = valid();
    first["asset_results"][0]["endpoints"][0]["ports"]["tcp"][0]["port"] = json!("22");
    let row = c.query_one("SELECT status, new_count, warning_count FROM xray.ingest_scan($1)", &[&first]).await.unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, i32>(1), row.get::<_, i32>(2)), ("applied".into(), 1, 0));

    // Later: the port is unreadable (out of range) and a state is not one
    // the contract knows. Both are kept and reported; the SSH exposure stays open.
    let mut second = with(valid(), &["asset_results", "0", "endpoints", "0", "ports", "tcp", "0", "port"], Some(json!(70000)));
    second["scan"]["scan_id"] = json!("5ca10000-0000-4000-8000-0000000000f2");
    second["scan"]["started_at"] = json!("2026-02-07T10:00:00Z");
    second["scan"]["finished_at"] = json!("2026-02-07T10:04:00Z");
    let extra = json!({"tool": "naabu", "protocol": "tcp", "port": 8443, "state": "half-open"});
    second["asset_results"][0]["endpoints"][0]["ports"]["tcp"].as_array_mut().unwrap().push(extra);
    let row = c
        .query_one("SELECT status, fixed_count, held_open_count, warning_count FROM xray.ingest_scan($1)", &[&second])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i32>(1), row.get::<_, i32>(2), row.get::<_, i32>(3)),
        ("applied".into(), 0, 1, 2),
        "the unreadable port might be 22: no FIXED"
    );
    let stored: Value = c
        .query_one("SELECT warnings FROM xray.scan_results WHERE scan_id = $1::text::uuid", &[&scan_id(&second)])
        .await
        .unwrap()
        .get(0);
    let paths: Vec<&str> = stored.as_array().unwrap().iter().map(|w| w["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["asset_results[0].endpoints[0].ports.tcp[0].port", "asset_results[0].endpoints[0].ports.tcp[2].state"]
    );
    assert!(stored.as_array().unwrap().iter().all(|w| w["problem"].as_str().is_some_and(|p| !p.is_empty())));
    let shown: Vec<String> = c
        .query_one("SELECT warnings FROM xray.scan_summary WHERE scan_id = $1::text::uuid", &[&scan_id(&second)])
        .await
        .unwrap()
        .get(0);
    assert_eq!(shown.len(), 2);
    assert!(shown[0].starts_with("asset_results[0].endpoints[0].ports.tcp[0].port: "), "{shown:?}");
    assert!(shown[0].contains("70000"), "{shown:?}");
    // The observation itself is kept in the stored payload.
    let kept: Value = c
        .query_one(
            "SELECT payload #> '{asset_results,0,endpoints,0,ports,tcp,0,port}' FROM xray.scan_results WHERE scan_id = $1::text::uuid",
            &[&scan_id(&second)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, json!(70000));
    assert_eq!(count(c, "xray.exposure_events").await, 1);
    db.finish().await;
}
