//! NOTIFY xray_events: one notification per applied scan, delivered at commit,
//! carrying ids and counts only; nothing for rollbacks, duplicates or stale scans.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;
use tokio_postgres::Notification;
use xray_tests::*;

async fn next(rx: &mut UnboundedReceiver<Notification>, wait: Duration) -> Option<Value> {
    let n = timeout(wait, rx.recv()).await.ok()??;
    assert_eq!(n.channel(), "xray_events");
    Some(serde_json::from_str(n.payload()).expect("payload is JSON"))
}

#[tokio::test]
async fn applied_scan_notifies_once_at_commit_with_ids_and_counts() {
    let db = TestDb::new().await;
    let (_listener, mut rx) = listen(&db.url, "xray_events").await;
    let s = scenario("02-");
    let (first, second) = (step_payload(&s, 0), step_payload(&s, 1));

    let mut writer = db.session().await;
    let tx = writer.transaction().await.unwrap();
    tx.execute("INSERT INTO xray.scan_results (payload) VALUES ($1)", &[&first]).await.unwrap();
    assert_eq!(next(&mut rx, Duration::from_millis(500)).await, None, "nothing before commit");
    tx.commit().await.unwrap();
    let n = next(&mut rx, Duration::from_secs(5)).await.expect("notification after commit");
    assert_eq!(
        n,
        json!({"scan_id": scan_id(&first), "tenant_id": first["scan"]["tenant_id"], "status": "applied",
               "new": 1, "changed": 0, "fixed": 0, "held_open": 0, "stale_asset_ids": []})
    );

    insert(&db.client, &second).await.unwrap();
    let n = next(&mut rx, Duration::from_secs(5)).await.expect("second scan");
    assert_eq!(
        (n["scan_id"].as_str().unwrap(), &n["new"], &n["fixed"]),
        (scan_id(&second).as_str(), &json!(0), &json!(1))
    );
    assert_eq!(next(&mut rx, Duration::from_millis(300)).await, None, "exactly one per scan");
    db.finish().await;
}

#[tokio::test]
async fn rollback_duplicate_and_stale_send_nothing() {
    let db = TestDb::new().await;
    let (_listener, mut rx) = listen(&db.url, "xray_events").await;
    let s = scenario("02-");
    let (older, newer) = (step_payload(&s, 0), step_payload(&s, 1));

    let mut writer = db.session().await;
    let tx = writer.transaction().await.unwrap();
    tx.execute("INSERT INTO xray.scan_results (payload) VALUES ($1)", &[&newer]).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(next(&mut rx, Duration::from_millis(800)).await, None, "a rolled-back insert sends nothing");
    assert_eq!(count(&db.client, "xray.scan_results").await, 0);

    insert(&db.client, &newer).await.unwrap();
    assert!(next(&mut rx, Duration::from_secs(5)).await.is_some(), "the listener works");
    insert(&db.client, &newer).await.unwrap(); // duplicate
    let stale = db.client.query_one("SELECT status FROM xray.ingest_scan($1)", &[&older]).await.unwrap();
    assert_eq!(stale.get::<_, String>(0), "stale");
    assert_eq!(next(&mut rx, Duration::from_millis(800)).await, None, "duplicates and stale scans are silent");
    db.finish().await;
}

#[tokio::test]
async fn partial_scan_notifies_with_the_skipped_assets() {
    let db = TestDb::new().await;
    let (_listener, mut rx) = listen(&db.url, "xray_events").await;
    let s = scenario("14-");
    let (newer, older) = (step_payload(&s, 0), step_payload(&s, 1));
    insert(&db.client, &newer).await.unwrap();
    next(&mut rx, Duration::from_secs(5)).await.expect("the first scan");
    insert(&db.client, &older).await.unwrap();
    let n = next(&mut rx, Duration::from_secs(5)).await.expect("a partial scan applied something");
    assert_eq!(
        n,
        json!({"scan_id": scan_id(&older), "tenant_id": older["scan"]["tenant_id"], "status": "partial",
               "new": 1, "changed": 0, "fixed": 0, "held_open": 0,
               "stale_asset_ids": [older["scan"]["requested_asset_ids"][0]]})
    );
    db.finish().await;
}
