//! The typed views answer the common questions without jsonb, and the example
//! queries of docs/sql.md run and give the expected answers.

use serde_json::{json, Value};
use tokio_postgres::Client;
use xray_tests::*;

const TENANT: &str = "11111111-1111-1111-1111-111111111111";

/// The ```sql blocks of docs/sql.md that start with `-- example: <name>`, by name.
fn all_examples() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(fixtures_dir().join("../docs/sql.md")).expect("docs/sql.md");
    doc.split("```sql\n")
        .skip(1)
        .filter_map(|block| {
            let sql = &block[..block.find("```").expect("code block is closed")];
            let name = sql.lines().next()?.strip_prefix("-- example: ")?.trim().to_string();
            Some((name, sql.to_string()))
        })
        .collect()
}

fn example(name: &str) -> String {
    all_examples().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("docs/sql.md has no example {name}")).1
}

/// Moves a payload's scan times so that it finished `days_ago` days ago.
fn recent(mut p: Value, days_ago: i64) -> Value {
    // One "now" for all payloads of a test, so that differences are whole days.
    static NOW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let now = *NOW
        .get_or_init(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64);
    let finished = now - days_ago * 86_400;
    let fmt = |secs: i64| {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    };
    p["scan"]["started_at"] = json!(fmt(finished - 240));
    p["scan"]["finished_at"] = json!(fmt(finished));
    p
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

async fn strings(client: &Client, sql: &str) -> Vec<String> {
    client.query(sql, &[]).await.unwrap().iter().map(|r| r.get::<_, String>(0)).collect()
}

#[tokio::test]
async fn views_are_typed_and_security_invoker() {
    let db = TestDb::new().await;
    let views = strings(
        &db.client,
        "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'xray'::regnamespace AND c.relkind = 'v' ORDER BY 1",
    )
    .await;
    assert_eq!(
        views,
        [
            "assets_seen",
            "endpoints_seen",
            "exposure_timeline",
            "open_exposures",
            "proof_of_fix",
            "scan_bucket_counts",
            "scan_summary"
        ]
    );
    let not_invoker = strings(
        &db.client,
        "SELECT c.relname::text FROM pg_class c
          WHERE c.relnamespace = 'xray'::regnamespace AND c.relkind = 'v'
            AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)",
    )
    .await;
    assert!(not_invoker.is_empty(), "views that would bypass row-level security: {not_invoker:?}");
    // BI tools handle jsonb poorly: the only jsonb column is the raw evidence
    // kept beside its typed proof-of-fix columns for drill-down.
    let json_columns = strings(
        &db.client,
        "SELECT table_name || '.' || column_name FROM information_schema.columns
          WHERE table_schema = 'xray' AND data_type IN ('json', 'jsonb')
            AND table_name IN (SELECT table_name FROM information_schema.views WHERE table_schema = 'xray')",
    )
    .await;
    assert_eq!(json_columns, ["proof_of_fix.last_open_evidence"]);
    db.finish().await;
}

#[tokio::test]
async fn views_answer_open_timeline_summary_inventory_and_proof_of_fix() {
    let db = TestDb::new().await;
    let c = &db.client;
    let s02 = scenario("02-");
    insert(c, &step_payload(&s02, 0)).await.unwrap();

    // Open exposures: severity from xray.risk_buckets, age since the NEW event.
    let open = c
        .query_one(
            "SELECT risk_bucket, severity, severity_rank, asset_value, port, fingerprint,
                    open_since = '2026-02-05T10:04:12Z'::timestamptz, age = now() - open_since, age_days
               FROM xray.open_exposures",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(open.get::<_, String>(0), "RB1");
    assert_eq!(open.get::<_, String>(1), "high");
    assert_eq!(open.get::<_, i32>(2), 4);
    assert_eq!(open.get::<_, String>(3), "203.0.113.10");
    assert_eq!(open.get::<_, i32>(4), 22);
    assert_eq!(open.get::<_, String>(5), "svc:ssh");
    assert!(open.get::<_, bool>(6), "open_since is the scan's time");
    assert!(open.get::<_, bool>(7));
    assert!(open.get::<_, i32>(8) > 200, "the fixture scan is from February 2026");

    // Assets and endpoints seen, before and after the port closes.
    let ports = |sql: &'static str| async move { c.query_one(sql, &[]).await.unwrap().get::<_, Vec<i32>>(0) };
    assert_eq!(ports("SELECT open_tcp_ports FROM xray.endpoints_seen").await, [22, 443]);
    insert(c, &step_payload(&s02, 1)).await.unwrap();
    assert_eq!(ports("SELECT open_tcp_ports FROM xray.endpoints_seen").await, [443]);
    let asset = c
        .query_one(
            "SELECT asset_type, tags, first_seen::text, last_seen::text, last_scan_id::text, endpoint_count, open_exposures,
                    highest_open_severity
               FROM xray.assets_seen",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(asset.get::<_, String>(0), "ip");
    assert_eq!(asset.get::<_, Vec<String>>(1), ["prod"]);
    assert_eq!(asset.get::<_, String>(2), "2026-02-05 10:04:12+00");
    assert_eq!(asset.get::<_, String>(3), "2026-02-06 10:04:00+00");
    assert_eq!(asset.get::<_, String>(4), scan_id(&step_payload(&s02, 1)));
    assert_eq!(asset.get::<_, i64>(5), 1);
    assert_eq!(asset.get::<_, i64>(6), 0, "the SSH exposure is fixed");
    assert_eq!(asset.get::<_, Option<String>>(7), None);
    assert_eq!(c.query("SELECT 1 FROM xray.open_exposures", &[]).await.unwrap().len(), 0);

    // Timeline: events joined with state; FIXED carries the time to fix.
    let rows = c
        .query(
            "SELECT event_type, current_status, bucket_name, scan_profile, time_to_fix::text, host(observed_ip)
               FROM xray.exposure_timeline ORDER BY event_id",
            &[],
        )
        .await
        .unwrap();
    let timeline: Vec<(String, String, String, String, Option<String>, Option<String>)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))).collect();
    let rb1 = || ("Exposed Remote Admin".to_string(), "baseline".to_string());
    assert_eq!(
        timeline,
        [
            ("NEW".into(), "fixed".into(), rb1().0, rb1().1, None, Some("203.0.113.10".into())),
            ("FIXED".into(), "fixed".into(), rb1().0, rb1().1, Some("23:59:48".into()), Some("203.0.113.10".into())),
        ]
    );

    // Per-scan summary and counts by bucket and event type.
    let summary = c
        .query_one(
            "SELECT status, duration::text, duration_seconds, asset_count, endpoint_count, exposure_count,
                    new_count, fixed_count, event_count, error_count
               FROM xray.scan_summary WHERE scan_id = $1::text::uuid",
            &[&scan_id(&step_payload(&s02, 0))],
        )
        .await
        .unwrap();
    assert_eq!(summary.get::<_, String>(0), "applied");
    assert_eq!(summary.get::<_, String>(1), "00:04:12");
    assert_eq!(summary.get::<_, f64>(2), 252.0);
    assert_eq!((3..10).map(|i| summary.get::<_, i32>(i)).collect::<Vec<_>>(), [1, 1, 1, 1, 0, 1, 0]);
    let by_bucket = c
        .query("SELECT risk_bucket, new_count, fixed_count FROM xray.scan_bucket_counts ORDER BY new_count DESC", &[])
        .await
        .unwrap();
    let by_bucket: Vec<(String, i64, i64)> = by_bucket.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(by_bucket, [("RB1".into(), 1, 0), ("RB1".into(), 0, 1)]);

    // Proof of fix, inferred (schema 1.0): the evidence when last open beside
    // what the fixing scan ran and saw on that endpoint.
    let proof = c
        .query_one(
            "SELECT proof_basis, checked_target, check_result, tools_run, tcp_ports_covered, open_tcp_ports_seen,
                    port_state_seen, last_open_detail, (last_open_evidence ->> 'port')::int, endpoint_id, host(endpoint_ip)
               FROM xray.proof_of_fix",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(proof.get::<_, String>(0), "inferred");
    assert_eq!(proof.get::<_, String>(1), "tcp/22");
    assert_eq!(proof.get::<_, String>(2), "tcp/22 port-scanned by naabu, not open");
    assert!(proof.get::<_, Vec<String>>(3).contains(&"naabu".to_string()));
    assert_eq!(proof.get::<_, Option<Vec<i32>>>(4), None, "no coverage block in a 1.0 payload");
    assert_eq!(proof.get::<_, Vec<i32>>(5), [443]);
    assert_eq!(proof.get::<_, String>(6), "not reported");
    assert_eq!(proof.get::<_, String>(7), "svc:ssh|port:22");
    assert_eq!(proof.get::<_, i32>(8), 22);
    assert_eq!(proof.get::<_, String>(9), "ip:203.0.113.10");
    assert_eq!(proof.get::<_, String>(10), "203.0.113.10");
    db.finish().await;
}

#[tokio::test]
async fn proof_of_fix_shows_coverage_tls_and_dns_checks() {
    let db = TestDb::new().await;
    let s13 = scenario("13-");
    insert(&db.client, &step_payload(&s13, 0)).await.unwrap();
    insert(&db.client, &step_payload(&s13, 1)).await.unwrap();
    let rows = db
        .client
        .query(
            "SELECT fingerprint, proof_basis, checked_target, tools_run, 443 = ANY (tcp_ports_covered),
                    tls_versions_seen, dns_assessment_seen, port_state_seen
               FROM xray.proof_of_fix ORDER BY risk_bucket, fingerprint",
            &[],
        )
        .await
        .unwrap();
    type Row = (String, String, String, Vec<String>, Option<bool>, Option<Vec<String>>, Option<String>, Option<String>);
    let got: Vec<Row> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7))).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    for row in &got {
        assert_eq!(row.1, "coverage");
        assert!(row.3.contains(&"tlsx".to_string()) && row.3.contains(&"dns".to_string()), "{row:?}");
        assert_eq!(row.4, Some(true));
    }
    let by_fp = |fp: &str| got.iter().find(|r| r.0 == fp).unwrap_or_else(|| panic!("{fp} in {got:?}"));
    let old_versions = by_fp("tls:old_versions");
    assert_eq!(old_versions.2, "tls/443");
    assert_eq!(old_versions.7.as_deref(), Some("open"));
    let versions = old_versions.5.clone().expect("TLS versions seen by the fixing scan");
    assert!(!versions.iter().any(|v| v == "TLS1.0" || v == "TLS1.1"), "{versions:?}");
    let spf = by_fp("record:spf");
    assert_eq!(spf.2, "dns:spf");
    assert_eq!(spf.6.as_deref(), Some("pass"));
    assert_eq!(spf.7, None, "no port for a DNS check");
    db.finish().await;
}

#[tokio::test]
async fn docs_example_queries_answer_the_questions() {
    let db = TestDb::new().await;
    let c = &db.client;
    // Last week: SSH opens on one asset (then closes), RB3/RB4/RB7 on another.
    let s02 = scenario("02-");
    let s13 = scenario("13-");
    insert(c, &recent(step_payload(&s02, 0), 3)).await.unwrap();
    insert(c, &recent(step_payload(&s02, 1), 1)).await.unwrap();
    insert(c, &recent(step_payload(&s13, 0), 40)).await.unwrap();
    // A second SSH exposure that is still open, on a third asset.
    let mut other = step_payload(&scenario("01-"), 0);
    other["scan"]["scan_id"] = json!("5ca10000-0000-4000-8000-0000000000aa");
    other["scan"]["requested_asset_ids"] = json!(["aaaaaaaa-0000-4000-8000-0000000000aa"]);
    other["asset_results"][0]["asset"]["asset_id"] = json!("aaaaaaaa-0000-4000-8000-0000000000aa");
    other["asset_results"][0]["asset"]["asset_value"] = json!("198.51.100.7");
    other["asset_results"][0]["endpoints"][0]["ip"] = json!("198.51.100.7");
    other["asset_results"][0]["endpoints"][0]["observed_host"] = json!("198.51.100.7");
    other["asset_results"][0]["endpoints"][0]["endpoint_id"] = json!("ip:198.51.100.7");
    insert(c, &recent(other, 20)).await.unwrap();
    c.batch_execute(&format!("SELECT xray.set_tenant('{TENANT}')")).await.unwrap();

    let rows = c.query(&example("open-rb1-per-asset"), &[]).await.unwrap();
    let per_asset: Vec<(String, i64)> = rows.iter().map(|r| (r.get("asset_value"), r.get("open_rb1"))).collect();
    assert_eq!(per_asset, [("198.51.100.7".to_string(), 1)]);

    let rows = c.query(&example("changed-this-week"), &[]).await.unwrap();
    let changes: Vec<(String, String)> = rows.iter().map(|r| (r.get("event_type"), r.get("risk_bucket"))).collect();
    assert_eq!(changes, [("FIXED".to_string(), "RB1".to_string()), ("NEW".to_string(), "RB1".to_string())]);

    let sql = example("mean-time-to-fix-by-bucket");
    let sql =
        format!("SELECT risk_bucket, mean_time_to_fix::text, fixes FROM ({}) q", sql.trim().trim_end_matches(';'));
    let rows = c.query(&sql, &[]).await.unwrap();
    let mttf: Vec<(String, String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(mttf, [("RB1".to_string(), "2 days".to_string(), 1)]);

    // Every other example of the reference runs as written.
    let examples = all_examples();
    assert!(
        examples.len() >= 13,
        "examples found in docs/sql.md: {:?}",
        examples.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    for (name, sql) in examples {
        c.batch_execute(&format!("BEGIN; {sql}; ROLLBACK;"))
            .await
            .unwrap_or_else(|e| panic!("docs/sql.md example {name} fails: {e}\n{sql}"));
    }
    db.finish().await;
}

/// The engine writes IPs in RFC 5952 form (endpoint ids included); the
/// fixing scan spelled the address differently, and proof_of_fix still finds
/// the endpoint it checked in that scan's payload.
#[tokio::test]
async fn proof_of_fix_finds_an_ipv6_endpoint_in_any_spelling() {
    let db = TestDb::new().await;
    let c = &db.client;
    let s17 = scenario("17-");
    for i in 0..3 {
        insert(c, &step_payload(&s17, i)).await.unwrap();
    }
    let row = c
        .query_one(
            "SELECT endpoint_id, host(endpoint_ip), open_tcp_ports_seen, port_state_seen, checked_target
               FROM xray.proof_of_fix",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ip:2001:db8::10");
    assert_eq!(row.get::<_, String>(1), "2001:db8::10");
    assert_eq!(row.get::<_, Vec<i32>>(2), [443], "the endpoint of the fixing payload was found");
    assert_eq!(row.get::<_, String>(3), "not reported");
    assert_eq!(row.get::<_, String>(4), "tcp/22");
    let ids: Vec<String> = c
        .query("SELECT DISTINCT endpoint_id FROM xray.scan_results, xray.payload_endpoints(payload) ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, ["ip:2001:db8::10"], "every spelling gives the engine's endpoint id");
    assert_eq!(
        c.query_one("SELECT xray.canonical_host(' Example.COM. ') || ' ' || xray.canonical_host('[2001:DB8:0::10]')", &[])
            .await
            .unwrap()
            .get::<_, String>(0),
        "example.com 2001:db8::10"
    );
    db.finish().await;
}

/// xray.payload_endpoints gives every endpoint the id and host the engine
/// gives it, for spellings where a SQL copy of the rules went wrong: spaces
/// around the host, a trailing dot, ASCII and non-ASCII capitals (the engine
/// lowercases ASCII only, SQL's lower() follows the collation), no
/// endpoint_id in the payload. proof_of_fix joins on it, so a mismatch would
/// be a silent NULL there.
#[tokio::test]
async fn payload_endpoints_are_the_engines_endpoints() {
    let db = TestDb::new().await;
    let c = &db.client;
    let s02 = scenario("02-");
    let mut steps = [step_payload(&s02, 0), step_payload(&s02, 1)];
    for p in &mut steps {
        let ep = &mut p["asset_results"][0]["endpoints"][0];
        ep.as_object_mut().unwrap().remove("endpoint_id");
        ep["observed_host"] = json!(" SSH.Bücher.EXAMPLE. ");
        ep["domain_context"] = json!(" Bücher.Example.COM. ");
        insert(c, p).await.unwrap();
    }
    let from_sql: Vec<(String, String)> = c
        .query(
            "SELECT DISTINCT e.endpoint_id, e.observed_host FROM xray.scan_results, xray.payload_endpoints(payload) e ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let from_engine: Vec<(String, String)> = c
        .query("SELECT endpoint_id, observed_host FROM xray.endpoints ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(from_sql, from_engine);
    assert_eq!(
        from_sql,
        [("ip:203.0.113.10|domain:bücher.example.com".to_string(), "ssh.bücher.example".to_string())]
    );
    let exposure_host: String = c.query_one("SELECT DISTINCT observed_host FROM xray.exposures", &[]).await.unwrap().get(0);
    assert_eq!(exposure_host, from_sql[0].1);
    let row = c
        .query_one("SELECT endpoint_id, checked_target, open_tcp_ports_seen FROM xray.proof_of_fix", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), from_sql[0].0);
    assert_eq!(row.get::<_, String>(1), "tcp/22");
    assert_eq!(row.get::<_, Option<Vec<i32>>>(2), Some(vec![443]), "the fixing scan's endpoint was found");
    db.finish().await;
}
