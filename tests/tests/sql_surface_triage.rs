//! Triage: xray.triage() marks an exposure suppressed or false_positive, or
//! undoes that, with a reason and an actor in the append-only xray.triage_log.

use serde_json::json;
use tokio_postgres::Client;
use xray_tests::*;

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| format!("not a db error: {e}"))
}

async fn only_identity(c: &Client) -> String {
    c.query_one("SELECT identity_key FROM xray.exposures", &[]).await.unwrap().get(0)
}

async fn status(c: &Client, key: &str) -> String {
    c.query_one("SELECT status FROM xray.exposures WHERE identity_key = $1", &[&key]).await.unwrap().get(0)
}

#[tokio::test]
async fn suppressed_exposure_is_tracked_silently_and_undo_reopens_it() {
    let db = TestDb::new().await;
    let c = &db.client;
    let s = scenario("11-");
    insert(c, &step_payload(&s, 0)).await.unwrap();
    let key = only_identity(c).await;

    let entry = c
        .query_one(
            "SELECT from_status, to_status, reason, actor, db_user::text = session_user::text
               FROM xray.triage($1, 'suppressed', 'jump host, accepted risk', 'alice')",
            &[&key],
        )
        .await
        .unwrap();
    assert_eq!(entry.get::<_, String>(0), "open");
    assert_eq!(entry.get::<_, String>(1), "suppressed");
    assert_eq!(entry.get::<_, String>(2), "jump host, accepted risk");
    assert_eq!(entry.get::<_, String>(3), "alice");
    assert!(entry.get::<_, bool>(4));
    assert_eq!(status(c, &key).await, "suppressed");
    assert_eq!(c.query("SELECT 1 FROM xray.open_exposures", &[]).await.unwrap().len(), 0);

    // SSH closes: while suppressed this is no FIXED.
    let closing = step_payload(&s, 1);
    insert(c, &closing).await.unwrap();
    assert_eq!(events_of(c, &scan_id(&closing)).await, Vec::<serde_json::Value>::new());
    assert_eq!(status(c, &key).await, "suppressed");

    // Undo: open again (its status before the triage), and the next
    // authoritative scan of the closed port emits FIXED.
    let undo = c
        .query_one(
            "SELECT from_status, to_status, actor FROM xray.triage($1, 'open', 'risk no longer accepted')",
            &[&key],
        )
        .await
        .unwrap();
    assert_eq!(undo.get::<_, String>(0), "suppressed");
    assert_eq!(undo.get::<_, String>(1), "open");
    let user: String = c.query_one("SELECT session_user::text", &[]).await.unwrap().get(0);
    assert_eq!(undo.get::<_, String>(2), user, "actor defaults to the login role");
    let mut next = closing.clone();
    next["scan"]["scan_id"] = json!("5ca10000-0000-4000-8000-0000000000ff");
    next["scan"]["started_at"] = json!("2026-02-06T12:00:00Z");
    next["scan"]["finished_at"] = json!("2026-02-06T12:04:00Z");
    insert(c, &next).await.unwrap();
    let types: Vec<String> =
        events_of(c, &scan_id(&next)).await.iter().map(|e| e["event_type"].as_str().unwrap().to_string()).collect();
    assert_eq!(types, ["FIXED"]);
    assert_eq!(count(c, "xray.triage_log").await, 2);
    db.finish().await;
}

#[tokio::test]
async fn undo_restores_fixed_and_false_positive_stays_silent_on_reappearance() {
    let db = TestDb::new().await;
    let c = &db.client;
    let s = scenario("11-");
    insert(c, &step_payload(&s, 0)).await.unwrap();
    insert(c, &step_payload(&s, 1)).await.unwrap();
    let key = only_identity(c).await;
    assert_eq!(status(c, &key).await, "fixed");

    c.query_one("SELECT xray.triage($1, 'false_positive', 'honeypot', 'bob')", &[&key]).await.unwrap();
    // A second triage while triaged is recorded too.
    c.query_one("SELECT xray.triage($1, 'suppressed', 'honeypot, keep quiet', 'bob')", &[&key]).await.unwrap();
    // It comes back: a fixed identity would be NEW (reopened), a triaged one is silent.
    let back = step_payload(&s, 2);
    insert(c, &back).await.unwrap();
    assert_eq!(events_of(c, &scan_id(&back)).await.len(), 0);
    assert_eq!(status(c, &key).await, "suppressed");
    let tracked: (String, String) = c
        .query_one("SELECT last_scan_id::text, last_seen::text FROM xray.exposures WHERE identity_key = $1", &[&key])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(tracked, (scan_id(&back), "2026-02-07 10:04:00+00".to_string()), "still tracked while triaged");

    let undo: String =
        c.query_one("SELECT to_status FROM xray.triage($1, 'open', 'not a honeypot')", &[&key]).await.unwrap().get(0);
    assert_eq!(undo, "fixed", "undo restores the status the exposure had when it was first triaged");
    let log: Vec<(String, String)> = c
        .query("SELECT from_status, to_status FROM xray.triage_log ORDER BY triage_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        log,
        [pair("fixed", "false_positive"), pair("false_positive", "suppressed"), pair("suppressed", "fixed")]
    );
    db.finish().await;
}

#[tokio::test]
async fn bad_triage_calls_fail_with_sqlstate_and_log_nothing() {
    let db = TestDb::new().await;
    let c = &db.client;
    insert(c, &step_payload(&scenario("01-"), 0)).await.unwrap();
    let key = only_identity(c).await;
    let fail = |key: String, status: Option<&'static str>, reason: Option<&'static str>| async move {
        let e = c.query_one("SELECT xray.triage($1, $2, $3, 'carol')", &[&key, &status, &reason]).await.unwrap_err();
        (code(&e), e.as_db_error().unwrap().message().to_string())
    };
    let (sqlstate, message) = fail(key.clone(), Some("ignored"), Some("x")).await;
    assert_eq!(sqlstate, "22023");
    assert!(message.contains("status"), "{message}");
    assert_eq!(fail(key.clone(), None, Some("x")).await.0, "22023");
    let (sqlstate, message) = fail(key.clone(), Some("suppressed"), None).await;
    assert_eq!(sqlstate, "23502");
    assert!(message.contains("reason"), "{message}");
    assert_eq!(fail(key.clone(), Some("suppressed"), Some("   ")).await.0, "23502");
    let (sqlstate, message) = fail("no-such-identity".into(), Some("suppressed"), Some("x")).await;
    assert_eq!(sqlstate, "P0002");
    assert!(message.contains("no-such-identity"), "{message}");
    assert_eq!(fail(key.clone(), Some("open"), Some("undo what?")).await.0, "55000");
    assert_eq!(count(c, "xray.triage_log").await, 0);
    assert_eq!(status(c, &key).await, "open");
    db.finish().await;
}

#[tokio::test]
async fn triage_log_is_append_only() {
    let db = TestDb::new().await;
    let c = &db.client;
    insert(c, &step_payload(&scenario("01-"), 0)).await.unwrap();
    let key = only_identity(c).await;
    c.query_one("SELECT xray.triage($1, 'suppressed', 'reason', 'dave')", &[&key]).await.unwrap();
    for sql in
        ["UPDATE xray.triage_log SET reason = 'rewritten'", "DELETE FROM xray.triage_log", "TRUNCATE xray.triage_log"]
    {
        let e = c.execute(sql, &[]).await.unwrap_err();
        assert_eq!(code(&e), "23000", "{sql}");
        assert!(e.as_db_error().unwrap().message().contains("xray.triage_log is append-only"), "{sql}");
    }
    let reason: String = c.query_one("SELECT reason FROM xray.triage_log", &[]).await.unwrap().get(0);
    assert_eq!(reason, "reason");
    db.finish().await;
}
