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
            "port as string",
            with(valid(), &["asset_results", "0", "endpoints", "0", "ports", "tcp", "0", "port"], Some(json!("22"))),
            "22023",
            "asset_results[0].endpoints[0].ports.tcp[0].port",
        ),
        (
            "port out of range",
            with(valid(), &["asset_results", "0", "endpoints", "0", "ports", "tcp", "0", "port"], Some(json!(70000))),
            "22023",
            "asset_results[0].endpoints[0].ports.tcp[0].port",
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
