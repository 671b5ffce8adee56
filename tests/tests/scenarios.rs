//! The diff-contract scenarios played against PostgreSQL: each step is an
//! INSERT into xray.scan_results; events and state are read back from the tables.

use serde_json::{json, Value};
use xray_tests::*;

#[tokio::test]
async fn diff_contract_scenarios_in_postgres() {
    let files = scenario_files();
    assert!(files.len() >= 10);
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let scenario = load_json(&file);
        let db = TestDb::new().await;
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let ctx = format!("{name} step {}", i + 1);
            let payload = &step["payload"];
            let inserted = insert(&db.client, payload).await.unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(inserted, 1, "{ctx}: scan row stored");

            // What the database says about the scan as a whole, where the
            // fixture states it (the in-memory replay of xray_engine has no
            // per-scan row and ignores it).
            if let Some(want_scan) = step["expect"].get("scan") {
                let got: Value = db
                    .client
                    .query_one(
                        "SELECT jsonb_build_object('status', status, 'stale_asset_ids', to_jsonb(stale_asset_ids),
                                                   'warning_paths', jsonb_path_query_array(warnings, '$[*].path'))
                           FROM xray.scan_results WHERE scan_id = $1::text::uuid",
                        &[&scan_id(payload)],
                    )
                    .await
                    .unwrap()
                    .get(0);
                for (key, want) in want_scan.as_object().unwrap() {
                    assert_eq!(&got[key], want, "{ctx}: scan_results.{key}");
                }
            }

            let got = events_of(&db.client, &scan_id(payload)).await;
            let want: Vec<Value> = step["expect"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    e.as_object_mut().unwrap().entry("reopened").or_insert(json!(false));
                    e
                })
                .collect();
            assert_eq!(sorted(got), sorted(want), "{ctx}: events");

            let rows = db
                .client
                .query(
                    "SELECT risk_bucket, observed_host, port, fingerprint, status, detail FROM xray.exposures",
                    &[],
                )
                .await
                .unwrap();
            let want_state = step["expect"]["state"].as_array().unwrap();
            let state: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let mut v = json!({
                        "risk_bucket": r.get::<_, String>(0),
                        "observed_host": r.get::<_, String>(1),
                        "port": r.get::<_, i32>(2),
                        "fingerprint": r.get::<_, String>(3),
                        "status": r.get::<_, String>(4),
                    });
                    let wanted = want_state.iter().find(|w| {
                        ["risk_bucket", "observed_host", "port", "fingerprint"].iter().all(|k| w[*k] == v[*k])
                    });
                    if wanted.is_some_and(|w| w.get("detail").is_some()) {
                        v["detail"] = json!(r.get::<_, Option<String>>(5));
                    }
                    v
                })
                .collect();
            assert_eq!(sorted(state), sorted(want_state.clone()), "{ctx}: state");
        }
        db.finish().await;
    }
}
