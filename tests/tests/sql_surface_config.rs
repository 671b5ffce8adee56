//! Configuration as tables: seeded with the engine's defaults, read by the
//! ingest trigger and the SQL functions, changed with plain DML.

use serde_json::{json, Value};
use tokio_postgres::Client;
use xray_engine::EngineConfig;
use xray_tests::*;

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| format!("not a db error: {e}"))
}

/// Exposures the configured `xray_normalize` finds in a payload: (bucket, port, fingerprint).
async fn normalized(c: &Client, payload: &Value) -> Vec<(String, i32, String)> {
    let rows = c
        .query("SELECT risk_bucket, port, fingerprint FROM xray_normalize($1) ORDER BY 1, 2, 3", &[payload])
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

fn shipped_config_json() -> Value {
    let d = EngineConfig::default();
    json!({
        "admin_ports": d.admin_ports.iter().map(|(p, f)| (p.to_string(), json!(f))).collect::<serde_json::Map<_, _>>(),
        "panel_template_ids": d.panel_template_ids,
        "panel_tags": d.panel_tags,
        "panel_path_fragments": d.panel_path_fragments,
        "profile_ports": d.profile_ports,
        "near_expiry_days": d.near_expiry_days,
    })
}

#[tokio::test]
async fn tables_are_seeded_with_the_engine_defaults() {
    let db = TestDb::new().await;
    let config: Value = db.client.query_one("SELECT xray.engine_config()", &[]).await.unwrap().get(0);
    assert_eq!(config, shipped_config_json());
    let buckets: i64 = db
        .client
        .query_one("SELECT count(*) FROM xray.risk_buckets WHERE is_default AND default_severity IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(buckets, 7);
    db.finish().await;
}

#[tokio::test]
async fn changing_the_tables_changes_what_scans_produce() {
    let db = TestDb::new().await;
    let c = &db.client;

    // RB4 near expiry: the certificate of scenario 03 expires 15 days after the scan.
    let cert = step_payload(&scenario("03-"), 0);
    assert_eq!(normalized(c, &cert).await, [("RB4".into(), 443, "issue:expiry".into())]);
    c.batch_execute("UPDATE xray.settings SET near_expiry_days = 10").await.unwrap();
    assert_eq!(normalized(c, &cert).await, []);
    insert(c, &cert).await.unwrap();
    assert_eq!(count(c, "xray.exposure_events").await, 0, "the trigger reads the same table");

    // RB1 admin ports: disable a shipped port, add one.
    let ssh = step_payload(&scenario("01-"), 0);
    assert_eq!(normalized(c, &ssh).await, [("RB1".into(), 22, "svc:ssh".into())]);
    c.batch_execute(
        "UPDATE xray.admin_ports SET enabled = false WHERE port = 22;
         INSERT INTO xray.admin_ports (port, service_family) VALUES (443, 'webadmin');",
    )
    .await
    .unwrap();
    assert_eq!(normalized(c, &ssh).await, [("RB1".into(), 443, "svc:webadmin".into())]);

    // RB2 allowlist: without the shipped tag and path rules grafana-detect is
    // no panel, until its template id is allowed.
    let panel = step_payload(&scenario("09-"), 1);
    let rb2 = |rows: Vec<(String, i32, String)>| rows.into_iter().filter(|r| r.0 == "RB2").count();
    assert_eq!(rb2(normalized(c, &panel).await), 1);
    c.batch_execute("UPDATE xray.panel_templates SET enabled = false").await.unwrap();
    assert_eq!(rb2(normalized(c, &panel).await), 0);
    c.batch_execute("INSERT INTO xray.panel_templates (match_kind, pattern) VALUES ('template_id', 'grafana-detect')")
        .await
        .unwrap();
    assert_eq!(rb2(normalized(c, &panel).await), 1);

    // Profile ports: a 1.0 payload has no coverage block, so FIXED for SSH
    // needs port 22 in the profile's allowlist.
    let s02 = scenario("02-");
    c.batch_execute("UPDATE xray.admin_ports SET enabled = true WHERE port = 22").await.unwrap();
    insert(c, &step_payload(&s02, 0)).await.unwrap();
    let fixing = step_payload(&s02, 1);
    let fixed_in_dry_run = || async {
        c.query("SELECT 1 FROM xray_diff_scan($1) WHERE event_type = 'FIXED'", &[&fixing]).await.unwrap().len()
    };
    assert_eq!(fixed_in_dry_run().await, 1);
    c.batch_execute("UPDATE xray.scan_profiles SET ports = array_remove(ports, 22) WHERE profile = 'baseline'")
        .await
        .unwrap();
    assert_eq!(fixed_in_dry_run().await, 0, "absence on a port the profile does not scan proves nothing");
    let row = c.query_one("SELECT * FROM xray.ingest_scan($1)", &[&fixing]).await.unwrap();
    assert_eq!((row.get::<_, i32>("fixed_count"), row.get::<_, i32>("held_open_count")), (0, 1));
    db.finish().await;
}

#[tokio::test]
async fn normalize_is_stable_with_tables_and_immutable_with_explicit_config() {
    let db = TestDb::new().await;
    let c = &db.client;
    let volatility: Vec<(String, String)> = c
        .query(
            "SELECT oid::regprocedure::text, provolatile::text FROM pg_proc
              WHERE proname IN ('xray_normalize', 'xray_diff_scan') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        volatility,
        [
            ("xray_diff_scan(jsonb)".into(), "s".into()),
            ("xray_normalize(jsonb)".into(), "s".into()),
            ("xray_normalize(jsonb,jsonb)".into(), "i".into()),
        ]
    );

    let p = step_payload(&scenario("13-"), 0);
    let same: bool = c
        .query_one(
            "SELECT array_agg(a ORDER BY a.identity_key) = (SELECT array_agg(b ORDER BY b.identity_key)
                                                            FROM xray_normalize($1, xray.engine_config()) b)
               FROM xray_normalize($1) a",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert!(same);
    // A partial configuration overrides only what it names.
    let with = |config: Value| {
        let p = step_payload(&scenario("03-"), 0);
        async move { c.query("SELECT risk_bucket FROM xray_normalize($1, $2)", &[&p, &config]).await.map(|r| r.len()) }
    };
    assert_eq!(with(json!({})).await.unwrap(), 1);
    assert_eq!(with(json!({"near_expiry_days": 10})).await.unwrap(), 0);
    let err = with(json!({"near_expiry": 10})).await.unwrap_err();
    assert_eq!(code(&err), "22023");
    let message = err.as_db_error().unwrap().message();
    assert!(message.contains("config.near_expiry: unknown key"), "{message}");
    let err = with(json!({"admin_ports": {"0": "ssh"}})).await.unwrap_err();
    assert_eq!(code(&err), "22023");
    db.finish().await;
}

#[tokio::test]
async fn shipped_rows_are_protected_and_values_are_checked() {
    let db = TestDb::new().await;
    let c = &db.client;
    let err = |sql: &'static str| async move { code(&c.batch_execute(sql).await.unwrap_err()) };

    assert_eq!(err("DELETE FROM xray.admin_ports WHERE port = 22").await, "55000");
    assert_eq!(err("DELETE FROM xray.scan_profiles WHERE profile = 'baseline'").await, "55000");
    assert_eq!(err("DELETE FROM xray.settings").await, "55000");
    assert_eq!(err("UPDATE xray.admin_ports SET port = 23 WHERE port = 22").await, "55000");
    assert_eq!(err("INSERT INTO xray.admin_ports (port, service_family) VALUES (70000, 'x')").await, "23514");
    assert_eq!(err("INSERT INTO xray.admin_ports (port, service_family) VALUES (2022, 'ssh|x')").await, "23514");
    assert_eq!(err("UPDATE xray.risk_buckets SET default_severity = 'urgent'").await, "23514");
    assert_eq!(
        err("INSERT INTO xray.risk_buckets (risk_bucket, name, default_severity) VALUES ('RB8', 'x', 'low')").await,
        "23514"
    );
    assert_eq!(err("INSERT INTO xray.scan_profiles (profile, ports) VALUES ('p', '{0}')").await, "23514");
    assert_eq!(err("INSERT INTO xray.scan_profiles (profile, ports) VALUES ('p', '{22,NULL}')").await, "23514");
    assert_eq!(err("INSERT INTO xray.settings (singleton, near_expiry_days) VALUES (false, 5)").await, "23514");

    // Rows you add are yours to delete; a duplicate of your own key is refused.
    c.batch_execute("INSERT INTO xray.admin_ports (port, service_family) VALUES (2022, 'ssh')").await.unwrap();
    assert_eq!(err("INSERT INTO xray.admin_ports (port, service_family) VALUES (2022, 'ssh')").await, "23505");
    c.batch_execute("DELETE FROM xray.admin_ports WHERE port = 2022").await.unwrap();

    // Edits keep the row shipped (is_default cannot be flipped), and an INSERT
    // of a shipped key replaces the shipped row: that is how pg_restore puts
    // an edited default back over the seeded one.
    c.batch_execute(
        "UPDATE xray.admin_ports SET service_family = 'openssh', is_default = false WHERE port = 22;
         INSERT INTO xray.admin_ports (port, service_family, enabled) VALUES (3389, 'remote-desktop', false);",
    )
    .await
    .unwrap();
    let rows = c
        .query("SELECT port, service_family, enabled, is_default FROM xray.admin_ports WHERE port IN (22, 3389) ORDER BY 1", &[])
        .await
        .unwrap();
    let rows: Vec<(i32, String, bool, bool)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    assert_eq!(rows, [(22, "openssh".into(), true, true), (3389, "remote-desktop".into(), false, true)]);
    assert_eq!(err("DELETE FROM xray.admin_ports WHERE port = 3389").await, "55000", "still shipped");
    db.finish().await;
}

/// The shipped targeted profiles prove no profile-wide port coverage: a
/// `verify` or `fast_recheck` 1.0/1.1 scan that does not report a port cannot
/// FIX what is on it (docs/design.md D12). An admin who knows what such scans probe
/// lists the ports.
#[tokio::test]
async fn targeted_profiles_have_no_port_coverage() {
    let db = TestDb::new().await;
    let c = &db.client;
    let ports: Value = c.query_one("SELECT xray.engine_config() -> 'profile_ports'", &[]).await.unwrap().get(0);
    assert_eq!((&ports["verify"], &ports["fast_recheck"]), (&json!([]), &json!([])));
    assert!(ports["baseline"].as_array().unwrap().contains(&json!(22)));

    let s02 = scenario("02-");
    insert(c, &step_payload(&s02, 0)).await.unwrap(); // ssh open
    let mut recheck = step_payload(&s02, 1); // ssh no longer reported
    for profile in ["verify", "fast_recheck"] {
        recheck["scan"]["scan_profile"] = json!(profile);
        let fixed = c.query("SELECT 1 FROM xray_diff_scan($1) WHERE event_type = 'FIXED'", &[&recheck]).await.unwrap();
        assert_eq!(fixed.len(), 0, "{profile}: absence it did not probe proves nothing");
    }
    recheck["scan"]["scan_profile"] = json!("verify");
    let row = c.query_one("SELECT * FROM xray.ingest_scan($1)", &[&recheck]).await.unwrap();
    assert_eq!((row.get::<_, i32>("fixed_count"), row.get::<_, i32>("held_open_count")), (0, 1));

    c.batch_execute("UPDATE xray.scan_profiles SET ports = '{22}' WHERE profile = 'fast_recheck'").await.unwrap();
    let mut listed = step_payload(&s02, 1);
    listed["scan"]["scan_id"] = json!("5ca10000-0000-4000-8000-00000000f022");
    listed["scan"]["scan_profile"] = json!("fast_recheck");
    listed["scan"]["started_at"] = json!("2026-02-07T10:00:00Z");
    listed["scan"]["finished_at"] = json!("2026-02-07T10:04:00Z");
    let row = c.query_one("SELECT * FROM xray.ingest_scan($1)", &[&listed]).await.unwrap();
    assert_eq!(row.get::<_, i32>("fixed_count"), 1, "a port the admin lists for the profile counts");
    db.finish().await;
}

/// A scan_profile the configuration does not know proves no port coverage
/// (it used to fall back to baseline); a payload that names no profile is a
/// baseline scan.
#[tokio::test]
async fn an_unknown_profile_proves_no_port_coverage_and_no_profile_is_baseline() {
    let db = TestDb::new().await;
    let c = &db.client;
    let s02 = scenario("02-");
    insert(c, &step_payload(&s02, 0)).await.unwrap();
    let mut recheck = step_payload(&s02, 1);
    recheck["scan"]["scan_profile"] = json!("weekly-custom");
    let fixed = |p: Value| async move {
        c.query("SELECT 1 FROM xray_diff_scan($1) WHERE event_type = 'FIXED'", &[&p]).await.unwrap().len()
    };
    assert_eq!(fixed(recheck.clone()).await, 0, "unknown profile");
    c.batch_execute("INSERT INTO xray.scan_profiles (profile, ports) VALUES ('weekly-custom', '{22}')").await.unwrap();
    assert_eq!(fixed(recheck.clone()).await, 1, "once the profile is configured");
    recheck["scan"]["scan_profile"] = Value::Null;
    assert_eq!(fixed(recheck).await, 1, "no profile named: baseline");
    db.finish().await;
}
