//! The cost kind a submission paid for, against the bundle it names (docs/design.md
//! D44). On chain nmap-top1k and nmap-full are the same datasetType, so a submitter can
//! pay 2 units for a full scan worth 5: tail indexes the SubmissionRouter's
//! SubmissionRecorded, and a bundle of another cost kind is a verified mismatch, whether
//! it was checked before the submission was indexed or after.

use alloy::primitives::Address;

use crate::support::*;

/// A bundle whose manifest says which scan it is.
fn bundle(ip: &str, seed: i64, profile: Option<&str>) -> Bundle {
    let mut b = Bundle::new(ip, seed, 2_000);
    if let Some(p) = profile {
        b.manifest["profile"] = serde_json::json!(p);
    }
    b
}

async fn ingest(db: &TestDb, b: &Bundle) -> (String, Option<String>) {
    let r = db
        .client
        .query_one(
            "SELECT status, reason_detail FROM nweb.ingest_car($1, $2)",
            &[&b.car(), &b.cid().to_string()],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

/// (status, reason, reason_detail, cost_kind, paid_cost_kind) of nweb.v_bundles.
async fn verdict(db: &TestDb, b: &Bundle) -> (String, Option<String>, Option<String>, Option<String>, Option<String>) {
    let r = db
        .client
        .query_one(
            "SELECT status, reason, reason_detail, cost_kind, paid_cost_kind FROM nweb.v_bundles WHERE cid = $1",
            &[&b.cid().to_string()],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_scan_paid_as_top1k_is_a_cost_kind_mismatch() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1, 2], 1000).await;
    let dir = tmp_dir("submission-kinds");
    let extra = format!("confirmations = 0\nsubmission_router = \"{}\"\n", c.submissions);
    let cfg = config(&dir, &node.url, &c, &extra, "", "");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let args = ["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()];

    // Both cheats pay nmap-top1k (2 units) for an nmap-full bundle (5 units); the
    // honest submitter pays nmap-top1k for a top-1000 scan.
    let early = bundle("192.0.2.10", 1, Some("nmap-full"));
    let late = bundle("192.0.2.11", 2, Some("nmap-full"));
    let honest = bundle("192.0.2.12", 3, None);
    // Checked before its submission exists: verified, as nothing contradicts it yet.
    assert_eq!(ingest(&db, &early).await, ("verified".to_string(), None));
    submit(&p, &c, 1, &early.cid().to_string(), &early.merkle_root(), 1).await;
    submit(&p, &c, 1, &late.cid().to_string(), &late.merkle_root(), 2).await;
    submit(&p, &c, 2, &honest.cid().to_string(), &honest.merkle_root(), 3).await;

    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(" 3 submission kinds added;"), "{}", run.stdout);
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM nweb.submission_kinds WHERE cost_kind = 'nmap-top1k' AND cost = 2").await,
        3
    );

    // Bundle first: the SubmissionRecorded, indexed after it, invalidates it.
    let (status, reason, detail, kind, paid) = verdict(&db, &early).await;
    assert_eq!(
        (status.as_str(), reason.as_deref(), kind.as_deref(), paid.as_deref()),
        ("invalid", Some("CID_HASH_MISMATCH"), Some("nmap-full"), Some("nmap-top1k"))
    );
    let detail = detail.unwrap();
    assert!(
        detail.starts_with("COST_KIND_MISMATCH: the SubmissionRouter charged the ScanSubmission as nmap-top1k (2 units), the bundle is nmap-full (5 units)"),
        "{detail}"
    );
    assert_eq!(
        db.one::<i64>(&format!("SELECT count(*) FROM nweb.scanprint WHERE bundle_cid = '{}'", early.cid())).await,
        0,
        "nothing of a mismatched bundle stays loaded"
    );

    // Event first: the bundle checked afterwards is refused as it is stored.
    let (status, detail) = ingest(&db, &late).await;
    assert_eq!(status, "invalid");
    assert!(detail.unwrap().starts_with("COST_KIND_MISMATCH: the SubmissionRouter charged"));
    let (status, reason, _, kind, paid) = verdict(&db, &late).await;
    assert_eq!(
        (status.as_str(), reason.as_deref(), kind.as_deref(), paid.as_deref()),
        ("invalid", Some("CID_HASH_MISMATCH"), Some("nmap-full"), Some("nmap-top1k"))
    );

    // The honest one is verified, and what it paid is shown beside what it is.
    assert_eq!(ingest(&db, &honest).await, ("verified".to_string(), None));
    let (status, _, _, kind, paid) = verdict(&db, &honest).await;
    assert_eq!(
        (status.as_str(), kind.as_deref(), paid.as_deref()),
        ("verified", Some("nmap-top1k"), Some("nmap-top1k"))
    );
    let r = db
        .client
        .query_one(
            "SELECT status, paid_cost_kind, paid_units FROM nweb.v_submissions WHERE cid = $1",
            &[&honest.cid().to_string()],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.get::<_, String>(0), r.get::<_, Option<String>>(1), r.get::<_, Option<i32>>(2)),
        ("verified".to_string(), Some("nmap-top1k".to_string()), Some(2))
    );

    // A rollback takes the submission kinds with the submissions.
    db.one::<i64>(&format!("SELECT nweb.chain_rollback(31337, {})", c.deployed_at)).await;
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.submission_kinds").await, 0);
    db.finish().await;
}
