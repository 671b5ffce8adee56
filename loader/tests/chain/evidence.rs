//! The slasher accuses only on evidence (docs/design.md D40):
//! our own limits (a bundle over our size cap, a hostile DAG past a decoder limit, our
//! timeouts) and one gateway's word are never a challenge; unavailability from two live
//! gateways over the period is; an attestation whose claims the bundle contradicts is
//! refused with the field named, in `tail` and in `check`, and challenged at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, B256};

use crate::http::{serve, Handler, Request, Response, Server};
use crate::hostile_dag::hostile_dag;
use crate::support::*;
use crate::{gateway, Cars};

/// A gateway like `crate::gateway`, that answers the CAR request of `slow` CIDs only
/// after `delay` (longer than the loader's timeout: our patience runs out, not theirs).
async fn slow_gateway(cars: Cars, slow: HashSet<String>, delay: Duration) -> Server {
    let inner = Arc::new(gateway(cars, true).await);
    let base = inner.url();
    let client = reqwest::Client::new();
    let h: Handler = Arc::new(move |r: Request| {
        // The inner gateway lives as long as this handler.
        let _ = &inner;
        let (slow, client, base) = (slow.clone(), client.clone(), base.clone());
        Box::pin(async move {
            let cid = r.path().strip_prefix("/ipfs/").unwrap_or("").to_string();
            if slow.contains(&cid) && r.method == "GET" {
                tokio::time::sleep(delay).await;
            }
            let mut req = client.request(r.method.parse().unwrap(), format!("{}{}", base.trim_end_matches('/'), r.target));
            for (k, v) in &r.headers {
                if !k.eq_ignore_ascii_case("host") {
                    req = req.header(k, v);
                }
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            Response::new(status, resp.bytes().await.unwrap().to_vec())
        })
    });
    serve(h).await
}

fn lines(stdout: &str) -> HashMap<String, Vec<String>> {
    stdout
        .lines()
        .map(|l| {
            let f: Vec<String> = l.split('\t').map(str::to_string).collect();
            (f[0].clone(), f[1..].to_vec())
        })
        .collect()
}

async fn open_challenge(p: &alloy::providers::DynProvider, c: &Contracts, cid: &str) -> B256 {
    view(p, c.slash, ISlashRouter::openChallengeOfCall { cid: cid.to_string() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slasher_accuses_only_on_evidence() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let dir = tmp_dir("evidence");

    let big = Bundle::new("198.51.100.21", 21, 700_000); // over the 300 000-byte cap below
    let (hostile, hostile_car) = hostile_dag();
    let slow = Bundle::new("198.51.100.22", 22, 100);
    let gone = Bundle::new("198.51.100.23", 23, 100);
    let liar = Bundle::new("198.51.100.24", 24, 100);
    let one_down = Bundle::new("198.51.100.25", 25, 100);
    let cars: Cars = Arc::new(Mutex::new(HashMap::from([
        (big.cid().to_string(), big.car()),
        (hostile.to_string(), hostile_car),
        (slow.cid().to_string(), slow.car()),
        (liar.cid().to_string(), liar.car()),
    ])));
    let slow_set = HashSet::from([slow.cid().to_string()]);
    let gw1 = slow_gateway(cars.clone(), slow_set.clone(), Duration::from_secs(3)).await;
    let gw2 = slow_gateway(cars.clone(), slow_set, Duration::from_secs(3)).await;
    let gw_dead = gateway(Arc::new(Mutex::new(HashMap::new())), false).await;

    let who = signer(1).address();
    for (i, b) in [&big, &slow, &gone, &one_down].iter().enumerate() {
        submit(&p, &c, 1, &b.cid().to_string(), &b.merkle_root(), i as u8 + 1).await;
    }
    submit(&p, &c, 1, &hostile.to_string(), &format!("0x{}", "00".repeat(32)), 8).await;
    // The liar attests a rarer vantage than its bundle's, for the reputation weight.
    let mut lie = submission(who, &liar.cid().to_string(), &liar.merkle_root(), 9);
    lie.vantage = "AS64511/rare".into();
    send(&p, who, c.submissions, ISubmissionRouter::submitCall { submission: lie, kind: ISubmissionRouter::Kind::NmapTop1k }).await;
    mine(&p, 3).await;

    let password = "pw-evidence-4c1b";
    let mut rng = rand::thread_rng();
    alloy::signers::local::PrivateKeySigner::encrypt_keystore(&dir, &mut rng, signer(2).to_bytes(), password, Some("slasher.json"))
        .unwrap();
    std::fs::write(dir.join("pass"), password).unwrap();
    let slasher = format!(
        "[slasher]\nkeystore = \"{}\"\npassword_file = \"{}\"\nunavailable_gateways = 2\nunavailable_for_secs = 2\nrecheck_secs = 0\n",
        dir.join("slasher.json").display(),
        dir.join("pass").display()
    );
    let ipfs = |gws: &[&Server]| {
        let list: Vec<String> = gws.iter().map(|g| format!("\"{}\"", g.url())).collect();
        format!("gateways = [{}]\ntimeout_secs = 1\nmax_bundle_bytes = 300000\n", list.join(", "))
    };
    let cfg = config(&dir, &node.url, &c, "confirmations = 2\n", &ipfs(&[&gw1, &gw2, &gw_dead]), &slasher);
    let dir_down = dir.join("down");
    std::fs::create_dir_all(&dir_down).unwrap();
    let cfg_down = config(&dir_down, &node.url, &c, "confirmations = 2\n", &ipfs(&[&gw1, &gw_dead]), &slasher);

    // tail: the liar's rows are never loaded, with the field named; our limit is no verdict.
    let run = loader(&db, &["tail", "--once", "--config", cfg.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bundle = |cid: String| {
        let db = &db;
        async move {
            let r = db
                .client
                .query_one("SELECT status, reason, reason_detail FROM nweb.bundles WHERE cid = $1", &[&cid])
                .await
                .unwrap();
            (r.get::<_, String>(0), r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2).unwrap_or_default())
        }
    };
    let (status, reason, d) = bundle(liar.cid().to_string()).await;
    assert_eq!((status.as_str(), reason.as_deref()), ("invalid", Some("CID_HASH_MISMATCH")), "the database's verdict (D43)");
    assert!(
        d.contains("attestation.vantage \"AS64511/rare\" differs from manifest.vantage \"AS64500/test\""),
        "{d}"
    );
    let liar_rows: i64 = db
        .client
        .query_one("SELECT count(*) FROM nweb.scanprint WHERE bundle_cid = $1", &[&liar.cid().to_string()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(liar_rows, 0, "a lying attestation loads nothing");
    // Our limit is no verdict on the submitter: deferred, never CID_UNAVAILABLE (D42).
    for cid in [big.cid().to_string(), hostile.to_string()] {
        let (status, reason, d) = bundle(cid.clone()).await;
        assert!(d.starts_with("LOCAL_LIMIT: ") && d.contains("exceeds our limit"), "{cid}: {d}");
        assert_eq!((status.as_str(), reason), ("deferred", None), "{cid}: {d}");
    }

    // Check 1: only the verified mismatch is challenged.
    let check = |cfg: std::path::PathBuf, cids: Vec<String>| {
        let db = &db;
        async move {
            let mut args = vec!["check".to_string(), "--config".into(), cfg.to_str().unwrap().into()];
            for c in cids {
                args.extend(["--cid".to_string(), c]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = loader(db, &args).await;
            assert_eq!(run.code, 0, "{}", run.stderr);
            lines(&run.stdout)
        }
    };
    // The one-gateway case is checked on its own configuration only.
    let main_cids: Vec<String> = vec![
        big.cid().to_string(),
        hostile.to_string(),
        slow.cid().to_string(),
        gone.cid().to_string(),
        liar.cid().to_string(),
    ];
    let down_cids = vec![one_down.cid().to_string()];
    let first = check(cfg.clone(), main_cids.clone()).await;
    let at = |m: &HashMap<String, Vec<String>>, cid: &str| m.get(cid).cloned().unwrap_or_else(|| panic!("{cid}: {m:?}"));
    for cid in [big.cid().to_string(), hostile.to_string(), slow.cid().to_string()] {
        let l = at(&first, &cid);
        assert_eq!((l[0].as_str(), l[1].as_str()), ("limit", "LOCAL_LIMIT"), "{l:?}");
        assert!(l[3].starts_with("not challenged: our own limit"), "{l:?}");
    }
    let l = at(&first, &gone.cid().to_string());
    assert_eq!((l[0].as_str(), l[1].as_str()), ("unavailable", "CID_UNAVAILABLE"), "{l:?}");
    assert!(l[3].starts_with("not challenged: unavailable for 0 s of the 2 s needed"), "{l:?}");
    let l = at(&first, &liar.cid().to_string());
    assert_eq!((l[0].as_str(), l[1].as_str()), ("invalid", "CID_HASH_MISMATCH"), "{l:?}");
    assert!(l[3].starts_with("challenged 0x"), "a verified mismatch is challenged at once: {l:?}");
    let down = check(cfg_down.clone(), down_cids.clone()).await;
    let l = at(&down, &one_down.cid().to_string());
    assert!(l[3].starts_with("not challenged: unavailable at 1 of the 2 live gateways needed"), "{l:?}");

    // Check 2, after the period: unavailable from two gateways all along is challenged;
    // two timeouts in a row, our limits and one gateway's word still are not.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let second = check(cfg.clone(), main_cids).await;
    let l = at(&second, &gone.cid().to_string());
    assert!(l[3].starts_with("challenged 0x"), "{l:?}");
    let l = at(&second, &slow.cid().to_string());
    assert!(l[3].starts_with("not challenged: our own limit"), "two timeouts in a row: {l:?}");
    let down = check(cfg_down, down_cids).await;
    let l = at(&down, &one_down.cid().to_string());
    assert!(l[3].starts_with("not challenged: unavailable at 1 of"), "{l:?}");

    // The rows say what was ours: not available, no accusation, and the bundle deferred
    // (D42); the chain holds exactly the two challenges with evidence.
    for cid in [big.cid().to_string(), hostile.to_string(), slow.cid().to_string()] {
        let rows = db
            .client
            .query(
                "SELECT outcome, available, reason, reason_detail FROM nweb.availability_checks WHERE cid = $1 ORDER BY check_id",
                &[&cid],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{cid}");
        for r in &rows {
            let detail: String = r.get(3);
            assert_eq!((r.get::<_, &str>(0), r.get::<_, bool>(1), r.get::<_, Option<&str>>(2)), ("local_limit", false, None), "{cid}");
            assert!(detail.starts_with("LOCAL_LIMIT: not checked, over our limit"), "{detail}");
        }
        let (status, reason, _) = bundle(cid.clone()).await;
        assert_eq!((status.as_str(), reason), ("deferred", None), "{cid}");
    }
    let outcome: Vec<String> = db
        .client
        .query(
            "SELECT outcome FROM nweb.availability_checks WHERE cid = ANY($1) ORDER BY cid, check_id",
            &[&vec![gone.cid().to_string(), liar.cid().to_string()]],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut want = vec!["unavailable", "unavailable", "invalid", "invalid"];
    if gone.cid().to_string() > liar.cid().to_string() {
        want.reverse();
    }
    assert_eq!(outcome, want);
    for (cid, challenged) in [
        (big.cid().to_string(), false),
        (hostile.to_string(), false),
        (slow.cid().to_string(), false),
        (one_down.cid().to_string(), false),
        (gone.cid().to_string(), true),
        (liar.cid().to_string(), true),
    ] {
        assert_eq!(open_challenge(&p, &c, &cid).await != B256::ZERO, challenged, "{cid}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
