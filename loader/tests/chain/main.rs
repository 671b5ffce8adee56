//! nweb on a local dev chain: `xray-loader tail` (indexer),
//! `check` (slasher) and `pin` (hoarder), end to end.
//!
//! Each test starts its own anvil (Foundry's dev chain, contracts/node_modules, installed by
//! scripts/setup.sh) on 127.0.0.1 at a free port, deploys the contracts compiled with
//! solcjs from raw bytecode, serves bundles from an HTTP "gateway" inside the test, and
//! runs the loader binary against a fresh database (DATABASE_URL, as the other tests).

mod commands;
mod evidence;
// Shared with the unit test of the CAR check.
#[path = "../../src/ipfs/hostile_dag.rs"]
mod hostile_dag;
mod http;
mod indexer_attacks;
mod kubo;
mod reorgs;
mod stakes;
mod submission_kinds;
// Shared with contracts/tests; not every helper is used here.
#[allow(dead_code)]
mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use nweb::{car, unixfs, Cid};

use http::{serve, Handler, Request, Response, Server};
use support::*;

// ---------------------------------------------------------------------------
// Helpers: a trustless gateway, an RPC proxy that refuses ranges and throttles
// ---------------------------------------------------------------------------

type Cars = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A trustless gateway serving `?format=car` from a map CID -> CAR bytes, with the
/// liveness probe and the `only-if-cached` check. `alive = false` fails the probe.
async fn gateway(cars: Cars, alive: bool) -> Server {
    let h: Handler = Arc::new(move |r: Request| {
        let cars = cars.clone();
        Box::pin(async move {
            let path = r.path().to_string();
            let Some(cid) = path.strip_prefix("/ipfs/") else {
                return Response::new(404, "");
            };
            if cid == "bafkqaaa" {
                return if alive {
                    Response::new(200, "")
                } else {
                    Response::new(503, "down")
                };
            }
            let have = cars.lock().unwrap().get(cid).cloned();
            match (r.method.as_str(), r.query("format").as_deref()) {
                ("HEAD", Some("raw")) if r.header("cache-control") == Some("only-if-cached") => {
                    Response::new(if have.is_some() { 200 } else { 412 }, "")
                }
                ("GET", Some("car")) => {
                    if !r.header("accept").unwrap_or("").contains("application/vnd.ipld.car") {
                        return Response::new(406, "ask for a CAR");
                    }
                    match have {
                        Some(b) => Response::new(200, b).with("Content-Type", "application/vnd.ipld.car; version=1"),
                        None => Response::new(404, "not found"),
                    }
                }
                _ => Response::new(400, "unsupported"),
            }
        })
    });
    serve(h).await
}

#[derive(Default, Debug)]
struct ProxyStats {
    served_ranges: Vec<(u64, u64)>,
    refused: u32,
    throttled: u32,
}

/// A JSON-RPC proxy in front of the node: eth_getLogs over more than `max_range` blocks
/// is refused (with Alchemy's hint, or without a hint when far too big), and every
/// `throttle_every`-th request gets a 429.
async fn rpc_proxy(upstream: String, max_range: u64, throttle_every: u32) -> (Server, Arc<Mutex<ProxyStats>>) {
    let stats = Arc::new(Mutex::new(ProxyStats::default()));
    let counter = Arc::new(AtomicU32::new(0));
    let client = reqwest::Client::new();
    let s2 = stats.clone();
    let h: Handler = Arc::new(move |r: Request| {
        let (stats, counter, client, upstream) = (s2.clone(), counter.clone(), client.clone(), upstream.clone());
        Box::pin(async move {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            if throttle_every > 0 && n % throttle_every == 0 {
                stats.lock().unwrap().throttled += 1;
                return Response::new(429, "Too Many Requests");
            }
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            if body["method"] == "eth_getLogs" {
                let num = |v: &Value| {
                    u64::from_str_radix(v.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16).unwrap_or(0)
                };
                let (from, to) = (num(&body["params"][0]["fromBlock"]), num(&body["params"][0]["toBlock"]));
                let span = to.saturating_sub(from) + 1;
                if span > max_range {
                    stats.lock().unwrap().refused += 1;
                    let message = if span > 4 * max_range {
                        "block range too large".to_string()
                    } else {
                        format!(
                            "Log response size exceeded. You can make eth_getLogs requests with up to a {max_range} block range. Based on your parameters, this block range should work: [0x{from:x}, 0x{:x}]",
                            from + max_range - 1
                        )
                    };
                    let err =
                        json!({"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32602, "message": message}});
                    return Response::new(200, serde_json::to_vec(&err).unwrap())
                        .with("Content-Type", "application/json");
                }
                stats.lock().unwrap().served_ranges.push((from, to));
            }
            let resp = client
                .post(&upstream)
                .header("content-type", "application/json")
                .body(r.body.clone())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap().to_vec();
            Response::new(status, bytes).with("Content-Type", "application/json")
        })
    });
    (serve(h).await, stats)
}

/// A row of nweb.attestations as the chain says it must be.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Expected {
    block_number: i64,
    log_index: i32,
    kind: String,
    tx_hash: String,
    block_hash: String,
    block_time: i64,
    uid: String,
    attester: String,
    cid: Option<String>,
}

fn hx(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// Reads the Attestor's payload logs straight from the node (not through the loader's
/// code) up to `to`, decoding them with the test's own `sol!` types.
async fn chain_rows(p: &DynProvider, attestor: Address, from: u64, to: u64) -> Vec<Expected> {
    let filter = Filter::new().address(attestor).from_block(from).to_block(to);
    let logs = p.get_logs(&filter).await.unwrap();
    let mut out = Vec::new();
    let mut times = HashMap::new();
    for l in logs {
        let topic0 = *l.topic0().unwrap();
        let (kind, uid, attester, cid) = if topic0 == IAttestor::ScanSubmitted::SIGNATURE_HASH {
            let e = IAttestor::ScanSubmitted::decode_log_data(&l.inner.data).unwrap();
            ("ScanSubmission", e.uid, e.attester, Some(e.submission.cid))
        } else if topic0 == IAttestor::AvailabilityChecked::SIGNATURE_HASH {
            let e = IAttestor::AvailabilityChecked::decode_log_data(&l.inner.data).unwrap();
            ("AvailabilityCheck", e.uid, e.attester, Some(e.check.cid))
        } else if topic0 == IAttestor::ChallengeFiled::SIGNATURE_HASH {
            let e = IAttestor::ChallengeFiled::decode_log_data(&l.inner.data).unwrap();
            ("Challenge", e.uid, e.attester, Some(e.challenge.cid))
        } else if topic0 == IAttestor::ChallengeResolved::SIGNATURE_HASH {
            let e = IAttestor::ChallengeResolved::decode_log_data(&l.inner.data).unwrap();
            ("Resolution", e.uid, e.attester, None)
        } else {
            continue; // EAS's Attested and RoutersSet
        };
        let bn = l.block_number.unwrap();
        let t = match times.get(&bn) {
            Some(t) => *t,
            None => {
                let b = p.get_block_by_number(bn.into()).await.unwrap().unwrap();
                times.insert(bn, b.header.timestamp);
                b.header.timestamp
            }
        };
        out.push(Expected {
            block_number: bn as i64,
            log_index: l.log_index.unwrap() as i32,
            kind: kind.into(),
            tx_hash: hx(l.transaction_hash.unwrap().as_slice()),
            block_hash: hx(l.block_hash.unwrap().as_slice()),
            block_time: t as i64,
            uid: hx(uid.as_slice()),
            attester: hx(attester.as_slice()),
            cid: cid.map(|c| c.parse::<Cid>().map(|c| c.to_string()).unwrap_or(c)),
        });
    }
    out.sort();
    out
}

async fn db_rows(db: &TestDb) -> Vec<Expected> {
    let rows = db
        .client
        .query(
            "SELECT block_number, log_index, kind, tx_hash, block_hash, extract(epoch FROM block_time)::bigint,
                    uid, attester, payload ->> 'cid'
               FROM nweb.attestations ORDER BY block_number, log_index",
            &[],
        )
        .await
        .unwrap();
    let mut out: Vec<Expected> = rows
        .iter()
        .map(|r| Expected {
            block_number: r.get(0),
            log_index: r.get(1),
            kind: r.get(2),
            tx_hash: r.get(3),
            block_hash: r.get(4),
            block_time: r.get(5),
            uid: r.get(6),
            attester: r.get(7),
            cid: r.get(8),
        })
        .collect();
    out.sort();
    out
}

async fn checkpoint(db: &TestDb) -> (i64, Option<String>) {
    let r = db
        .client
        .query_one("SELECT last_block, last_block_hash FROM nweb.chain_checkpoints", &[])
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

async fn block_hash(p: &DynProvider, n: u64) -> String {
    hx(p.get_block_by_number(n.into())
        .await
        .unwrap()
        .unwrap()
        .header
        .hash
        .as_slice())
}

async fn bundle_row(db: &TestDb, cid: &Cid) -> (String, Option<String>, Option<String>) {
    let r = db
        .client
        .query_one(
            "SELECT status, reason, reason_detail FROM nweb.bundles WHERE cid = $1",
            &[&cid.to_string()],
        )
        .await
        .unwrap_or_else(|e| panic!("no bundle row for {cid}: {e}"));
    (r.get(0), r.get(1), r.get(2))
}

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// tail: the indexer
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_indexes_the_chain_and_verifies_the_bundles() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1, 2], 1000).await;
    let (submitter, challenger) = (signer(1).address(), signer(2).address());
    let dir = tmp_dir("tail");

    let good = Bundle::new("192.0.2.10", 1, 700_000);
    let corrupt = Bundle::new("192.0.2.11", 2, 700_000);
    let mismatch = Bundle::new("192.0.2.12", 3, 100);
    let missing = Bundle::new("192.0.2.13", 4, 100);
    let local = Bundle::new("192.0.2.14", 5, 100);
    let truncated = Bundle::new("192.0.2.15", 6, 700_000);
    let (corrupt_car, corrupt_leaf) = corrupt_one_leaf(&corrupt);
    let cars: Cars = Arc::new(Mutex::new(HashMap::new()));
    {
        let mut m = cars.lock().unwrap();
        m.insert(good.cid().to_string(), good.car());
        m.insert(corrupt.cid().to_string(), corrupt_car);
        m.insert(mismatch.cid().to_string(), mismatch.car());
        let t = truncated.car();
        m.insert(truncated.cid().to_string(), t[..t.len() / 2].to_vec());
    }
    let gw = gateway(cars.clone(), true).await;
    let car_dir = dir.join("cars");
    std::fs::create_dir_all(&car_dir).unwrap();
    std::fs::write(car_dir.join(format!("{}.car", local.cid())), local.car()).unwrap();

    for (i, b) in [&good, &corrupt, &missing, &local, &truncated].iter().enumerate() {
        submit(&p, &c, 1, &b.cid().to_string(), &b.merkle_root(), i as u8).await;
    }
    // Attested with another Merkle root than its manifest's.
    submit(
        &p,
        &c,
        1,
        &mismatch.cid().to_string(),
        &format!("0x{}", "ab".repeat(32)),
        9,
    )
    .await;
    // Someone publishes a probe result; a challenge is filed and answered.
    send(
        &p,
        challenger,
        c.attestor,
        IAttestor::attestAvailabilityCall {
            check: IAttestor::AvailabilityCheck {
                cid: missing.cid().to_string(),
                available: false,
                attempts: 3,
                gatewaysOk: 0,
                fetchDigest: B256::ZERO,
                checkedAt: 1_770_000_000,
            },
        },
    )
    .await;
    let mut reason = [0u8; 32];
    reason[..15].copy_from_slice(b"CID_UNAVAILABLE");
    let r = send(
        &p,
        challenger,
        c.slash,
        ISlashRouter::challengeCall {
            jobId: B256::repeat_byte(2),
            cid: missing.cid().to_string(),
            reasonCode: B256::from(reason),
            evidenceCid: "".into(),
        },
    )
    .await;
    let challenge_id = IAttestor::ChallengeFiled::decode_log_data(
        &r.inner
            .logs()
            .iter()
            .find(|l| l.topic0() == Some(&IAttestor::ChallengeFiled::SIGNATURE_HASH))
            .unwrap()
            .inner
            .data,
    )
    .unwrap()
    .uid;
    send(
        &p,
        submitter,
        c.slash,
        ISlashRouter::resolveCall {
            challengeId: challenge_id,
            notes: "back".into(),
            newCid: "".into(),
        },
    )
    .await;
    mine(&p, 5).await;
    // A block that is mined but not yet confirmed (confirmations = 3) is not indexed.
    submit(
        &p,
        &c,
        1,
        &Bundle::new("192.0.2.99", 99, 10).cid().to_string(),
        "0x",
        99,
    )
    .await;
    let tip = head(&p).await;

    // Through a proxy that refuses more than 3 blocks per eth_getLogs and throttles.
    let (proxy, stats) = rpc_proxy(node.url.clone(), 3, 7).await;
    let cfg = config(
        &dir,
        &proxy.url(),
        &c,
        "confirmations = 3\nmax_block_range = 50\n",
        &format!(
            "gateways = [\"{}\"]\ncar_dir = \"{}\"\nretry_unavailable_secs = 3600\n",
            gw.url(),
            car_dir.display()
        ),
        "",
    );
    let run = loader(
        &db,
        &[
            "--log-level",
            "info",
            "tail",
            "--once",
            "--config",
            cfg.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let safe = tip - 3;
    let expected = chain_rows(&p, c.attestor, c.deployed_at, safe).await;
    assert_eq!(
        run.stdout.trim(),
        format!(
            "chain 31337 block {safe}: {} attestations added, 0 reverted; bundles: 2 verified, 1 invalid, 3 unavailable, 0 deferred, 0 failed",
            expected.len()
        )
    );

    // The rows match the chain, read independently: every log, once.
    assert_eq!(
        expected.len(),
        9,
        "6 submissions, 1 probe, 1 challenge, 1 resolution: {expected:#?}"
    );
    let kinds: Vec<&str> = expected.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "ScanSubmission").count(), 6);
    assert!(kinds.contains(&"AvailabilityCheck") && kinds.contains(&"Challenge") && kinds.contains(&"Resolution"));
    assert_eq!(db_rows(&db).await, expected);
    assert_eq!(checkpoint(&db).await, (safe as i64, Some(block_hash(&p, safe).await)));
    // Payloads by their names in docs/nweb.md §5.
    let (jobs, roots): (Vec<String>, Vec<String>) = db
        .client
        .query("SELECT payload ->> 'jobId', payload ->> 'merkleRoot' FROM nweb.attestations WHERE kind = 'ScanSubmission' ORDER BY block_number", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .unzip();
    assert_eq!(jobs[0], format!("0x{}", "00".repeat(32)));
    assert_eq!(roots[0], good.merkle_root());
    let ch: (String, String, String, String) = {
        let r = db
            .client
            .query_one(
                "SELECT challenge_id, reason_code, challenger, cid FROM nweb.challenges",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    assert_eq!(
        ch,
        (
            hx(challenge_id.as_slice()),
            "CID_UNAVAILABLE".into(),
            hx(challenger.as_slice()),
            missing.cid().to_string()
        )
    );
    // (The dev chain's clock runs ahead of the wall clock once time was increased.)
    assert_eq!(
        db.one::<String>("SELECT state FROM nweb.challenge_states(now() + interval '1 day')")
            .await,
        "resolved"
    );

    // The RPC's refusals were split around and its 429s waited out; no range it served was too big.
    {
        let s = stats.lock().unwrap();
        assert!(s.refused >= 2, "{s:?}");
        assert!(s.throttled >= 1, "{s:?}");
        assert!(s.served_ranges.iter().all(|(a, b)| b - a < 3), "{s:?}");
    }

    // Bundles: verified, or invalid with the reason.
    assert_eq!(bundle_row(&db, &good.cid()).await.0, "verified");
    assert_eq!(
        db.one::<i64>(&format!(
            "SELECT count(*) FROM nweb.scanprint WHERE bundle_cid = '{}'",
            good.cid()
        ))
        .await,
        2
    );
    assert_eq!(
        bundle_row(&db, &local.cid()).await.0,
        "verified",
        "read from the local CAR directory"
    );
    let (status, reason, detail) = bundle_row(&db, &corrupt.cid()).await;
    // The only copy served has a corrupted block: the gateway failed, so the bundle is
    // unavailable (which a good copy may still overturn), naming the block.
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("invalid", Some("CID_UNAVAILABLE"))
    );
    let detail = detail.unwrap();
    assert!(
        detail.contains(&format!("block {corrupt_leaf}")) && detail.contains("do not hash to its CID"),
        "{detail}"
    );
    assert_eq!(
        db.one::<i64>(&format!(
            "SELECT count(*) FROM nweb.scanprint WHERE bundle_cid = '{}'",
            corrupt.cid()
        ))
        .await,
        0
    );
    let (status, reason, detail) = bundle_row(&db, &mismatch.cid()).await;
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("invalid", Some("CID_HASH_MISMATCH")),
        "{detail:?}"
    );
    let (_, reason, detail) = bundle_row(&db, &missing.cid()).await;
    assert_eq!(reason.as_deref(), Some("CID_UNAVAILABLE"));
    assert!(detail.unwrap().contains("HTTP 404"));
    let (_, reason, detail) = bundle_row(&db, &truncated.cid()).await;
    assert_eq!(reason.as_deref(), Some("CID_UNAVAILABLE"));
    assert!(detail.as_deref().unwrap_or("").contains("truncated"), "{detail:?}");

    // The gateway was asked for CARs, trustlessly; verified CARs were kept locally.
    let reqs = gw.requests();
    assert!(reqs.iter().any(|r| r.query("format").as_deref() == Some("car")
        && r.header("accept").unwrap_or("").starts_with("application/vnd.ipld.car")));
    assert!(
        !reqs.iter().any(|r| r.target.contains(&local.cid().to_string())),
        "the local copy came first"
    );
    let kept = std::fs::read(car_dir.join(format!("{}.car", good.cid()))).unwrap();
    assert_eq!(
        car::unpack_car(&kept, Some(&good.cid()), u64::MAX).unwrap().files.len(),
        3
    );

    // Again: nothing new, nothing printed, nothing written twice.
    let rows_before = db.one::<i64>("SELECT count(*) FROM nweb.attestations").await;
    let run = loader(&db, &["tail", "--once", "--config", cfg.to_str().unwrap()]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM nweb.attestations").await,
        rows_before
    );

    // An intact copy turns up: the unavailable verdict is overturned.
    cars.lock().unwrap().insert(corrupt.cid().to_string(), corrupt.car());
    let cfg2 = config(
        &dir,
        &node.url,
        &c,
        "confirmations = 3\n",
        &format!("gateways = [\"{}\"]\nretry_unavailable_secs = 0\n", gw.url()),
        "",
    );
    let run = loader(&db, &["tail", "--once", "--config", cfg2.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(bundle_row(&db, &corrupt.cid()).await.0, "verified");
    assert_eq!(
        bundle_row(&db, &mismatch.cid()).await.1.as_deref(),
        Some("CID_HASH_MISMATCH"),
        "a final verdict stays"
    );
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_the_head_and_writes_every_log_once() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[], 0).await;
    let who = signer(2).address();
    let probe = |i: u32| IAttestor::attestAvailabilityCall {
        check: IAttestor::AvailabilityCheck {
            cid: format!("bafkqf{i}"),
            available: true,
            attempts: 1,
            gatewaysOk: 1,
            fetchDigest: B256::ZERO,
            checkedAt: u64::from(i),
        },
    };
    send(&p, who, c.attestor, probe(0)).await;
    let dir = tmp_dir("follow");
    let cfg = config(
        &dir,
        &node.url,
        &c,
        "confirmations = 1
poll_interval_ms = 100
",
        "",
        "",
    );
    let cfg_s = cfg.to_str().unwrap().to_string();

    // Without --once it keeps following; logs arriving later are picked up.
    let mut child = loader_cmd(&db, &["tail", "--no-bundles", "--config", cfg_s.as_str()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for i in 1..=3u32 {
        send(&p, who, c.attestor, probe(i)).await;
        mine(&p, 1).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while db.one::<i64>("SELECT count(*) FROM nweb.attestations").await < i64::from(i) + 1 {
            assert!(child.try_wait().unwrap().is_none(), "tail stopped");
            assert!(Instant::now() < deadline, "attestation {i} not indexed while following");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The newest block is never indexed before it has its confirmation.
    send(&p, who, c.attestor, probe(4)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.attestations").await, 4);
    let pid = child.id().unwrap();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "following prints nothing on stdout"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "xray-loader: interrupted by SIGTERM; running tools were killed"
    );
    let tip = head(&p).await;
    mine(&p, 1).await;

    // Done again from the start block: the unique key keeps every log once.
    let all = chain_rows(&p, c.attestor, c.deployed_at, tip).await;
    db.client
        .batch_execute("UPDATE nweb.chain_checkpoints SET last_block = start_block - 1, last_block_hash = NULL")
        .await
        .unwrap();
    let run = loader(&db, &["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(": 1 attestations added, 0 reverted;"),
        "only the new one: {}",
        run.stdout
    );
    assert_eq!(db_rows(&db).await, all);

    // --rewind-to rolls back by hand and indexes again from there.
    let from = all[2].block_number;
    let run = loader(
        &db,
        &[
            "tail",
            "--once",
            "--no-bundles",
            "--rewind-to",
            &from.to_string(),
            "--config",
            cfg_s.as_str(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(": 3 attestations added, 0 reverted;"),
        "{}",
        run.stdout
    );
    assert_eq!(db_rows(&db).await, all);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_loader_loses_nothing_and_duplicates_nothing() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[], 0).await;
    let who = signer(2).address();
    // 120 attestations, one per block, with empty blocks in between.
    for i in 0..120u32 {
        send(
            &p,
            who,
            c.attestor,
            IAttestor::attestAvailabilityCall {
                check: IAttestor::AvailabilityCheck {
                    cid: format!("bafkqa{i}"),
                    available: i % 2 == 0,
                    attempts: 1,
                    gatewaysOk: 1,
                    fetchDigest: B256::repeat_byte(i as u8),
                    checkedAt: 1_770_000_000 + u64::from(i),
                },
            },
        )
        .await;
        if i % 3 == 0 {
            mine(&p, 2).await;
        }
    }
    let tip = head(&p).await;
    let expected = chain_rows(&p, c.attestor, c.deployed_at, tip).await;
    assert_eq!(expected.len(), 120);
    let dir = tmp_dir("kill");
    let cfg = config(
        &dir,
        &node.url,
        &c,
        "confirmations = 0\nmax_block_range = 4\nmin_request_interval_ms = 8\n",
        "",
        "",
    );
    let span = (tip - c.deployed_at) as i64;

    // Killed twice mid-backfill (SIGKILL: no cleanup at all), at two different points.
    let mut kills = Vec::new();
    for fraction in [4, 2] {
        let mut child = loader_cmd(
            &db,
            &["tail", "--once", "--no-bundles", "--config", cfg.to_str().unwrap()],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let target = c.deployed_at as i64 + span / fraction;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let cp: Option<i64> = db
                .client
                .query_opt("SELECT last_block FROM nweb.chain_checkpoints", &[])
                .await
                .unwrap()
                .map(|r| r.get(0));
            if cp.is_some_and(|b| b >= target) {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the loader finished before it could be killed"
            );
            assert!(Instant::now() < deadline, "no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.start_kill().unwrap();
        let status = child.wait().await.unwrap();
        assert!(!status.success(), "killed");
        let (cp, hash) = checkpoint(&db).await;
        assert!(cp < tip as i64, "killed before the end ({cp} of {tip})");
        assert_eq!(hash, Some(block_hash(&p, cp as u64).await));
        // Exactly what the chain has up to the checkpoint: the rows and the checkpoint
        // were committed together.
        let upto: Vec<Expected> = expected.iter().filter(|e| e.block_number <= cp).cloned().collect();
        assert_eq!(db_rows(&db).await, upto, "state at the kill (checkpoint {cp})");
        kills.push(cp);
    }
    assert!(kills[0] < kills[1], "{kills:?}");

    // Killed inside a batch's transaction: the test holds a lock the batch needs after
    // it has inserted its attestations, so the loader is stopped exactly between the
    // rows and its checkpoint. Nothing of that batch may survive.
    let blocker = connect(&db.url).await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE nweb.chain_blocks IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut child = loader_cmd(
        &db,
        &["tail", "--once", "--no-bundles", "--config", cfg.to_str().unwrap()],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let backend = blocked_on_chain_blocks(&db, &mut child).await;
    let pending: i64 = db
        .client
        .query_one("SELECT count(*) FROM pg_locks WHERE pid = $1 AND relation = 'nweb.attestations'::regclass AND mode = 'RowExclusiveLock'", &[&backend])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 1, "the blocked transaction has written attestations");
    kill_blocked_loader(&db, &mut child, &blocker, backend).await;
    assert_eq!(checkpoint(&db).await.0, kills[1], "the batch did not commit");
    let upto: Vec<Expected> = expected
        .iter()
        .filter(|e| e.block_number <= kills[1])
        .cloned()
        .collect();
    assert_eq!(db_rows(&db).await, upto, "nothing of the killed transaction is left");

    let run = loader(
        &db,
        &["tail", "--once", "--no-bundles", "--config", cfg.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(db_rows(&db).await, expected, "nothing lost, nothing twice");
    assert_eq!(
        db.one::<i64>("SELECT count(DISTINCT (tx_hash, log_index)) FROM nweb.attestations")
            .await,
        120
    );
    assert_eq!(checkpoint(&db).await.0, tip as i64);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_takes_back_what_it_reverted() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let challenger = signer(2).address();
    let dir = tmp_dir("reorg");
    let cfg = config(&dir, &node.url, &c, "confirmations = 2\nmax_block_range = 5\n", "", "");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let args = ["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()];
    let tail = || loader(&db, &args);
    let cid = |n: i64| Bundle::new("192.0.2.1", n, 10).cid().to_string();

    let kept = [
        submit(&p, &c, 1, &cid(1), "0x", 1).await,
        submit(&p, &c, 1, &cid(2), "0x", 2).await,
    ];
    mine(&p, 2).await;
    let snap = raw(&p, "evm_snapshot", json!([])).await;

    // On the branch that will be reverted: two submissions and a challenge.
    let gone = [
        submit(&p, &c, 1, &cid(3), "0x", 3).await,
        submit(&p, &c, 1, &cid(4), "0x", 4).await,
    ];
    let mut reason = [0u8; 32];
    reason[..14].copy_from_slice(b"FORMAT_INVALID");
    let gone_challenge = send(
        &p,
        challenger,
        c.slash,
        ISlashRouter::challengeCall {
            jobId: B256::ZERO,
            cid: cid(1),
            reasonCode: B256::from(reason),
            evidenceCid: "".into(),
        },
    )
    .await;
    mine(&p, 4).await;
    let run = tail().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.attestations").await, 5);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.challenges").await, 1);
    let old_tip = head(&p).await;

    // The fork: back to the snapshot, then a longer chain with other content.
    assert_eq!(raw(&p, "evm_revert", json!([snap])).await, json!(true));
    let new = submit(&p, &c, 1, &cid(5), "0x", 5).await;
    mine(&p, old_tip - head(&p).await + 3).await;
    let run = loader(
        &db,
        &[
            "--log-level",
            "warn",
            "tail",
            "--once",
            "--no-bundles",
            "--config",
            cfg.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(" 1 attestations added, 3 reverted;"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("reorg"), "the reorg is logged: {}", run.stderr);

    let tx = |r: &alloy::rpc::types::TransactionReceipt| hx(r.transaction_hash.as_slice());
    let hashes: HashSet<String> = db
        .client
        .query("SELECT tx_hash FROM nweb.attestations", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for r in &gone {
        assert!(!hashes.contains(&tx(r)), "reverted submission still there");
    }
    assert!(!hashes.contains(&tx(&gone_challenge)));
    assert!(kept.iter().all(|r| hashes.contains(&tx(r))) && hashes.contains(&tx(&new)));
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM nweb.challenges").await,
        0,
        "the challenge went with its attestation"
    );
    let safe = head(&p).await - 2;
    assert_eq!(
        db_rows(&db).await,
        chain_rows(&p, c.attestor, c.deployed_at, safe).await
    );
    assert_eq!(checkpoint(&db).await, (safe as i64, Some(block_hash(&p, safe).await)));
    // Every hash kept in the window is canonical.
    for r in db
        .client
        .query("SELECT block_number, block_hash FROM nweb.chain_blocks", &[])
        .await
        .unwrap()
    {
        let (n, h): (i64, String) = (r.get(0), r.get(1));
        assert_eq!(h, block_hash(&p, n as u64).await, "block {n}");
    }

    // A chain that got shorter than the checkpoint: the block is gone, so is its row.
    let snap = raw(&p, "evm_snapshot", json!([])).await;
    let short = submit(&p, &c, 1, &cid(6), "0x", 6).await;
    mine(&p, 3).await;
    assert_eq!(tail().await.code, 0);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.attestations").await, 4);
    raw(&p, "evm_revert", json!([snap])).await;
    let run = tail().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(" 1 reverted;"), "{}", run.stdout);
    assert_eq!(
        db.one::<i64>(&format!(
            "SELECT count(*) FROM nweb.attestations WHERE tx_hash = '{}'",
            tx(&short)
        ))
        .await,
        0
    );
    let (cp, h) = checkpoint(&db).await;
    assert!(cp <= head(&p).await as i64);
    assert_eq!(h, Some(block_hash(&p, cp as u64).await));
    // And indexing goes on from there.
    let after = submit(&p, &c, 1, &cid(7), "0x", 7).await;
    mine(&p, 3).await;
    assert_eq!(tail().await.code, 0);
    assert_eq!(
        db.one::<i64>(&format!(
            "SELECT count(*) FROM nweb.attestations WHERE tx_hash = '{}'",
            tx(&after)
        ))
        .await,
        1
    );
    db.finish().await;
}

// ---------------------------------------------------------------------------
// check: the slasher
// ---------------------------------------------------------------------------

fn digest_of(b: &Bundle) -> String {
    let mut cids: Vec<Vec<u8>> = b.dag().blocks.iter().map(|x| x.cid.to_bytes()).collect();
    cids.sort();
    cids.dedup();
    let mut h = Sha256::new();
    for c in cids {
        h.update(c);
    }
    hx(&h.finalize())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slasher_probes_records_and_challenges() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let dir = tmp_dir("slasher");

    let good = Bundle::new("198.51.100.1", 1, 600_000);
    let only_corrupt = Bundle::new("198.51.100.2", 2, 600_000);
    let mismatch = Bundle::new("198.51.100.3", 3, 100);
    let missing = Bundle::new("198.51.100.4", 4, 100);
    let good_cars: Cars = Arc::new(Mutex::new(HashMap::from([
        (good.cid().to_string(), good.car()),
        (mismatch.cid().to_string(), mismatch.car()),
    ])));
    let bad_cars: Cars = Arc::new(Mutex::new(HashMap::from([
        (good.cid().to_string(), corrupt_one_leaf(&good).0),
        (only_corrupt.cid().to_string(), corrupt_one_leaf(&only_corrupt).0),
    ])));
    let gw_good = gateway(good_cars, true).await;
    let gw_bad = gateway(bad_cars, true).await;
    let gw_dead = gateway(Arc::new(Mutex::new(HashMap::new())), false).await;

    for (i, b) in [&good, &only_corrupt, &missing].iter().enumerate() {
        submit(&p, &c, 1, &b.cid().to_string(), &b.merkle_root(), i as u8 + 1).await;
    }
    submit(
        &p,
        &c,
        1,
        &mismatch.cid().to_string(),
        &format!("0x{}", "cd".repeat(32)),
        4,
    )
    .await;
    mine(&p, 3).await;

    // The slasher's key, in an encrypted keystore.
    let password = "pw-Xk9#correct-horse-7f3a";
    let mut rng = rand::thread_rng();
    let (slasher, _) = alloy::signers::local::PrivateKeySigner::encrypt_keystore(
        &dir,
        &mut rng,
        signer(2).to_bytes(),
        password,
        Some("slasher.json"),
    )
    .unwrap();
    assert_eq!(slasher.address(), signer(2).address());
    std::fs::write(dir.join("pass"), format!("{password}\n")).unwrap();
    // The slasher's own copy of a bundle does not make it available to the network.
    let car_dir = dir.join("cars");
    std::fs::create_dir_all(&car_dir).unwrap();
    std::fs::write(car_dir.join(format!("{}.car", missing.cid())), missing.car()).unwrap();
    let gateways = format!(
        "gateways = [\"{}\", \"{}\", \"{}\"]\ncar_dir = \"{}\"\n",
        gw_good.url(),
        gw_bad.url(),
        gw_dead.url(),
        car_dir.display()
    );
    let slasher_section = format!(
        "[slasher]\nkeystore = \"{}\"\npassword_file = \"{}\"\nunavailable_gateways = 2\nunavailable_for_secs = 0\nrecheck_secs = 0\n",
        dir.join("slasher.json").display(),
        dir.join("pass").display()
    );
    let cfg = config(&dir, &node.url, &c, "confirmations = 2\n", &gateways, &slasher_section);
    let run = loader(
        &db,
        &["tail", "--once", "--no-bundles", "--config", cfg.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    // Trace logging: the most talkative the loader gets. The password never shows.
    let run = loader(
        &db,
        &["--log-level", "trace", "check", "--config", cfg.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("keystore opened"),
        "logging is on: {}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert!(
        !run.stderr.contains(password) && !run.stdout.contains(password),
        "the password leaked"
    );
    let lines: HashMap<String, Vec<String>> = run
        .stdout
        .lines()
        .map(|l| {
            let f: Vec<String> = l.split('\t').map(str::to_string).collect();
            (f[0].clone(), f[1..].to_vec())
        })
        .collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    let g = &lines[&good.cid().to_string()];
    assert_eq!(g[..3], ["available", "-", "ok=1/3"], "{g:?}");
    assert_eq!(g.len(), 3, "no challenge for a good bundle: {g:?}");
    for (b, state, reason) in [
        (&only_corrupt, "unavailable", "CID_UNAVAILABLE"),
        (&missing, "unavailable", "CID_UNAVAILABLE"),
        (&mismatch, "invalid", "CID_HASH_MISMATCH"),
    ] {
        let l = &lines[&b.cid().to_string()];
        assert_eq!((l[0].as_str(), l[1].as_str()), (state, reason), "{l:?}");
        assert!(l[3].starts_with("challenged 0x"), "{l:?}");
    }

    // The rows: the AvailabilityCheck fields, and every source's outcome.
    let row = db
        .client
        .query_one(
            "SELECT available, attempts::int, gateways_ok::int, fetch_digest, reason, probes, checker
               FROM nweb.availability_checks WHERE cid = $1",
            &[&good.cid().to_string()],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!((row.get::<_, i32>(1), row.get::<_, i32>(2)), (3, 1));
    assert_eq!(row.get::<_, String>(3), digest_of(&good));
    assert_eq!(row.get::<_, Option<String>>(4), None);
    assert_eq!(
        row.get::<_, Option<String>>(6),
        Some(hx(signer(2).address().as_slice()))
    );
    let probes: Value = row.get(5);
    assert_eq!(probes[0]["liveness"], json!(true));
    assert_eq!(probes[0]["cached"], json!(true));
    assert_eq!(probes[0]["car"], json!(true));
    assert_eq!(
        (probes[1]["liveness"].clone(), probes[1]["car"].clone()),
        (json!(true), json!(false))
    );
    assert!(
        probes[1]["error"].as_str().unwrap().contains("do not hash to its CID"),
        "{probes}"
    );
    assert_eq!(
        (probes[2]["liveness"].clone(), probes[2]["car"].clone()),
        (json!(false), json!(false))
    );
    let row = db
        .client
        .query_one(
            "SELECT available, gateways_ok::int, fetch_digest, reason, reason_detail, attestation_tx, challenge_tx, probes
               FROM nweb.availability_checks WHERE cid = $1",
            &[&only_corrupt.cid().to_string()],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i32>(1), 0);
    assert_eq!(row.get::<_, String>(2), format!("0x{}", "00".repeat(32)));
    assert_eq!(row.get::<_, Option<String>>(3).as_deref(), Some("CID_UNAVAILABLE"));
    assert!(row.get::<_, Option<String>>(5).is_some() && row.get::<_, Option<String>>(6).is_some());
    let probes: Value = row.get(7);
    assert_eq!(probes[1]["cached"], json!(true), "the bad gateway had it cached");
    assert_eq!(probes[0]["cached"], json!(false), "the good one did not (412)");
    let inv = db
        .client
        .query_one(
            "SELECT available, reason, attestation_tx FROM nweb.availability_checks WHERE cid = $1",
            &[&mismatch.cid().to_string()],
        )
        .await
        .unwrap();
    assert!(inv.get::<_, bool>(0), "fetched fine, the content is what is wrong");
    assert_eq!(inv.get::<_, Option<String>>(1).as_deref(), Some("CID_HASH_MISMATCH"));
    assert_eq!(
        inv.get::<_, Option<String>>(2),
        None,
        "no AvailabilityCheck attestation for an available bundle"
    );

    // On chain: open challenges for the three, probes attested for the two unavailable.
    for b in [&only_corrupt, &missing, &mismatch] {
        let id = view(
            &p,
            c.slash,
            ISlashRouter::openChallengeOfCall {
                cid: b.cid().to_string(),
            },
        )
        .await;
        assert_ne!(id, B256::ZERO, "{}", b.cid());
    }
    assert_eq!(
        view(
            &p,
            c.slash,
            ISlashRouter::openChallengeOfCall {
                cid: good.cid().to_string()
            }
        )
        .await,
        B256::ZERO
    );
    mine(&p, 3).await;
    let run = loader(
        &db,
        &["tail", "--once", "--no-bundles", "--config", cfg.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.attestations WHERE kind = 'AvailabilityCheck' AND payload -> 'available' = 'false'").await, 2);
    let challenges: Vec<(String, String, String)> = db
        .client
        .query(
            "SELECT cid, reason_code, challenger FROM nweb.challenges ORDER BY cid",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut want: Vec<(String, String, String)> = [
        (&only_corrupt, "CID_UNAVAILABLE"),
        (&missing, "CID_UNAVAILABLE"),
        (&mismatch, "CID_HASH_MISMATCH"),
    ]
    .iter()
    .map(|(b, r)| (b.cid().to_string(), r.to_string(), hx(signer(2).address().as_slice())))
    .collect();
    want.sort();
    assert_eq!(challenges, want);
    // The challenge names the submission's jobId.
    assert_eq!(
        db.one::<String>(&format!(
            "SELECT job_id FROM nweb.challenges WHERE cid = '{}'",
            missing.cid()
        ))
        .await,
        hx(B256::repeat_byte(3).as_slice())
    );

    // A second round files nothing new: the challenges are open.
    let run = loader(
        &db,
        &[
            "check",
            "--config",
            cfg.to_str().unwrap(),
            "--cid",
            &missing.cid().to_string(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\tnot challenged: challenge 0x"), "{}", run.stdout);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.availability_checks").await, 5);

    // A wrong password: one line, naming the keystore, never the password.
    std::fs::write(dir.join("pass"), "not-the-password\n").unwrap();
    let run = loader(&db, &["check", "--config", cfg.to_str().unwrap()]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("xray-loader: cannot open the keystore "),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-password"));
    assert_eq!(run.stdout, "");
    db.finish().await;
}

// ---------------------------------------------------------------------------
// pin: the hoarder, with a fake Kubo
// ---------------------------------------------------------------------------

#[derive(Default)]
struct KuboState {
    blocks: HashMap<Cid, Vec<u8>>,
    pins: HashSet<Cid>,
    adds: u32,
}

fn complete(s: &KuboState, root: &Cid) -> bool {
    let mut stack = vec![*root];
    while let Some(c) = stack.pop() {
        let Some(d) = s.blocks.get(&c) else { return false };
        stack.extend(unixfs::links_of(&c, d).unwrap());
    }
    true
}

fn kubo_err(msg: &str) -> Response {
    Response::new(
        500,
        serde_json::to_vec(&json!({"Message": msg, "Code": 0, "Type": "error"})).unwrap(),
    )
}

/// The parts of a multipart body: (filename, content type, bytes).
fn multipart(req: &Request) -> Vec<(String, String, Vec<u8>)> {
    let ct = req.header("content-type").unwrap();
    let boundary = format!("--{}", ct.split("boundary=").nth(1).unwrap());
    let body = &req.body;
    let mut out = Vec::new();
    let b = boundary.as_bytes();
    let mut starts: Vec<usize> = body
        .windows(b.len())
        .enumerate()
        .filter(|(_, w)| *w == b)
        .map(|(i, _)| i)
        .collect();
    starts.push(body.len());
    for w in starts.windows(2) {
        let part = &body[w[0] + b.len()..w[1]];
        if part.starts_with(b"--") {
            break;
        }
        let Some(h) = part.windows(4).position(|x| x == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..h]).into_owned();
        let mut data = part[h + 4..].to_vec();
        if data.ends_with(b"\r\n") {
            data.truncate(data.len() - 2);
        }
        let name = head
            .split("filename=\"")
            .nth(1)
            .map(|s| http::percent_decode(&s[..s.find('"').unwrap()]))
            .unwrap_or_default();
        let ctype = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .unwrap_or("")
            .to_string();
        out.push((name, ctype, data));
    }
    out
}

async fn fake_kubo() -> (Server, Arc<Mutex<KuboState>>) {
    let state = Arc::new(Mutex::new(KuboState::default()));
    let st = state.clone();
    let h: Handler = Arc::new(move |r: Request| {
        let st = st.clone();
        Box::pin(async move {
            if r.method != "POST" {
                return Response::new(405, "POST only");
            }
            let arg = r.query("arg").and_then(|a| a.parse::<Cid>().ok());
            let mut s = st.lock().unwrap();
            match r.path() {
                "/api/v0/version" => Response::new(200, r#"{"Version":"0.40.1-fake"}"#),
                "/api/v0/add" => {
                    assert_eq!(r.query("cid-version").as_deref(), Some("1"));
                    assert_eq!(r.query("raw-leaves").as_deref(), Some("true"));
                    assert_eq!(r.query("wrap-with-directory").as_deref(), Some("true"));
                    let files: Vec<(String, Vec<u8>)> = multipart(&r)
                        .into_iter()
                        .filter(|(_, ct, _)| ct != "application/x-directory")
                        .map(|(n, _, d)| (n, d))
                        .collect();
                    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
                    let dag = unixfs::import_directory(&refs, unixfs::ImportParams::KUBO).unwrap();
                    for b in &dag.blocks {
                        s.blocks.insert(b.cid, b.data.clone());
                    }
                    s.pins.insert(dag.root);
                    s.adds += 1;
                    let mut out = String::new();
                    for (n, d) in &files {
                        out.push_str(&format!(
                            "{}\n",
                            json!({"Name": n, "Hash": unixfs::file_cid(d).to_string(), "Size": d.len().to_string()})
                        ));
                    }
                    out.push_str(&format!("{}\n", json!({"Name": "", "Hash": dag.root.to_string()})));
                    Response::new(200, out)
                }
                "/api/v0/pin/ls" => match arg {
                    Some(c) if s.pins.contains(&c) => Response::new(
                        200,
                        serde_json::to_vec(&json!({"Keys": {c.to_string(): {"Type": "recursive"}}})).unwrap(),
                    ),
                    Some(c) => kubo_err(&format!("path '{c}' is not pinned")),
                    None => kubo_err("bad arg"),
                },
                "/api/v0/pin/add" => match arg {
                    Some(c) if complete(&s, &c) => {
                        s.pins.insert(c);
                        Response::new(200, serde_json::to_vec(&json!({"Pins": [c.to_string()]})).unwrap())
                    }
                    _ => kubo_err("context deadline exceeded"),
                },
                "/api/v0/dag/export" => match arg {
                    Some(c) if complete(&s, &c) => {
                        let blocks: Vec<unixfs::Block> = s
                            .blocks
                            .iter()
                            .map(|(c, d)| unixfs::Block {
                                cid: *c,
                                data: d.clone(),
                            })
                            .collect();
                        Response::new(200, car::write_car(&c, &blocks).unwrap())
                    }
                    _ => kubo_err("block was not found locally (offline)"),
                },
                "/api/v0/dag/import" => {
                    let parts = multipart(&r);
                    let parsed = car::read_car(&parts[0].2).unwrap();
                    for b in parsed.blocks {
                        s.blocks.insert(b.cid, b.data);
                    }
                    if r.query("pin-roots").as_deref() == Some("true") {
                        for root in &parsed.roots {
                            s.pins.insert(*root);
                        }
                    }
                    Response::new(
                        200,
                        serde_json::to_vec(
                            &json!({"Root": {"Cid": {"/": parsed.roots[0].to_string()}, "PinErrorMsg": ""}}),
                        )
                        .unwrap(),
                    )
                }
                _ => Response::new(404, "404 page not found"),
            }
        })
    });
    (serve(h).await, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hoarder_keeps_its_owners_bundles_pinned_and_exported() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1, 2], 1000).await;
    let dir = tmp_dir("hoarder");
    let (kubo, kstate) = fake_kubo().await;

    let served = Bundle::new("203.0.113.1", 1, 400_000);
    let added = Bundle::new("203.0.113.2", 2, 100);
    let lost = Bundle::new("203.0.113.3", 3, 100);
    let others = Bundle::new("203.0.113.4", 4, 100);
    let gw = gateway(
        Arc::new(Mutex::new(HashMap::from([
            (served.cid().to_string(), served.car()),
            (others.cid().to_string(), others.car()),
        ]))),
        true,
    )
    .await;
    let car_dir = dir.join("cars");
    let cfg = config(
        &dir,
        &node.url,
        &c,
        "confirmations = 1\n",
        &format!(
            "gateways = [\"{}\"]\nkubo_api = \"{}\"\ncar_dir = \"{}\"\n",
            gw.url(),
            kubo.url(),
            car_dir.display()
        ),
        &format!("[hoarder]\nowner = \"{}\"\n", signer(1).address()),
    );

    // A bundle directory is added: Kubo's root is the nweb crate's CID, and its CAR is kept.
    let bdir = dir.join("bundle");
    added.write_dir(&bdir);
    let run = loader(
        &db,
        &[
            "pin",
            "--config",
            cfg.to_str().unwrap(),
            "--add",
            bdir.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "the owner has no attested bundle yet: {}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!("{}\tadded\t", added.cid())),
        "{}",
        run.stdout
    );
    assert!(kstate.lock().unwrap().pins.contains(&added.cid()));
    let kept = std::fs::read(car_dir.join(format!("{}.car", added.cid()))).unwrap();
    assert!(car::unpack_car(&kept, Some(&added.cid()), u64::MAX).is_ok());

    for (i, b) in [&served, &added, &lost].iter().enumerate() {
        submit(&p, &c, 1, &b.cid().to_string(), &b.merkle_root(), i as u8).await;
    }
    submit(&p, &c, 2, &others.cid().to_string(), &others.merkle_root(), 9).await;
    mine(&p, 2).await;
    assert_eq!(
        loader(
            &db,
            &["tail", "--once", "--no-bundles", "--config", cfg.to_str().unwrap()]
        )
        .await
        .code,
        0
    );

    let run = loader(&db, &["pin", "--config", cfg.to_str().unwrap()]).await;
    assert_eq!(run.code, 1, "one bundle is missing: {}", run.stderr);
    let lines: HashMap<String, String> = run
        .stdout
        .lines()
        .map(|l| {
            let (cid, rest) = l.split_once('\t').unwrap();
            (cid.to_string(), rest.to_string())
        })
        .collect();
    assert_eq!(lines.len(), 3, "only the owner's bundles: {}", run.stdout);
    assert!(
        lines[&served.cid().to_string()].starts_with("kept\tpinned now; CAR "),
        "{lines:?}"
    );
    assert!(lines[&served.cid().to_string()].ends_with(" written"), "{lines:?}");
    assert!(
        lines[&added.cid().to_string()].starts_with("kept\tpinned; CAR "),
        "{lines:?}"
    );
    assert!(
        lines[&lost.cid().to_string()].starts_with("missing\tno source delivered it intact"),
        "{lines:?}"
    );
    {
        let s = kstate.lock().unwrap();
        assert_eq!(s.pins, HashSet::from([served.cid(), added.cid()]));
        assert_eq!(s.adds, 1);
    }
    for b in [&served, &added] {
        let bytes = std::fs::read(car_dir.join(format!("{}.car", b.cid()))).unwrap();
        assert_eq!(
            car::unpack_car(&bytes, Some(&b.cid()), u64::MAX).unwrap().files.len(),
            3
        );
    }
    assert!(
        !car_dir.join(format!("{}.car", others.cid())).exists(),
        "not the owner's"
    );

    // A damaged export is replaced.
    let path = car_dir.join(format!("{}.car", served.cid()));
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let run = loader(&db, &["pin", "--config", cfg.to_str().unwrap()]).await;
    assert!(
        run.stdout.contains(&format!("{}\tkept\tpinned; CAR ", served.cid())),
        "{}",
        run.stdout
    );
    let fixed = std::fs::read(&path).unwrap();
    assert!(car::unpack_car(&fixed, Some(&served.cid()), u64::MAX).is_ok());

    // An export over our size cap is ours to read, not damage: it stays, byte for byte
    // (docs/design.md D42). It used to be deleted as damaged.
    let small = config(
        &dir,
        &node.url,
        &c,
        "confirmations = 1\n",
        &format!(
            "gateways = [\"{}\"]\nkubo_api = \"{}\"\ncar_dir = \"{}\"\nmax_bundle_bytes = 64\n",
            gw.url(),
            kubo.url(),
            car_dir.display()
        ),
        &format!("[hoarder]\nowner = \"{}\"\n", signer(1).address()),
    );
    let run = loader(&db, &["pin", "--config", small.to_str().unwrap()]).await;
    assert!(
        run.stdout.contains(&format!("{}\tkept\tCAR {} kept unverified: LOCAL_LIMIT: ", served.cid(), path.display())),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read(&path).unwrap(), fixed, "the CAR over our limit is kept");
    db.finish().await;
}

// ---------------------------------------------------------------------------
// The 0.3.0 tables, without a chain
// ---------------------------------------------------------------------------

fn h64(n: u64) -> String {
    format!("0x{n:064x}")
}

async fn chain_snapshot(db: &TestDb) -> Vec<String> {
    let mut out = Vec::new();
    for t in [
        "chain_checkpoints",
        "chain_blocks",
        "availability_checks",
        "attestations",
        "challenges",
    ] {
        let r: String = db
            .one(&format!(
                "SELECT count(*) || ':' || coalesce(md5(string_agg((to_jsonb(t) - 'updated_at' - 'inserted_at')::text, '|' ORDER BY (to_jsonb(t) - 'updated_at' - 'inserted_at')::text)), '') FROM nweb.{t} t"
            ))
            .await;
        out.push(format!("{t} {r}"));
    }
    out
}

#[tokio::test]
async fn chain_rollback_and_the_new_tables_keep_their_promises() {
    let db = TestDb::new().await;
    let c = &db.client;
    let (a, b) = (
        "0x00000000000000000000000000000000000000aa",
        "0x00000000000000000000000000000000000000bb",
    );
    for (chain, contract, last) in [(1i64, a, 18i64), (1, b, 13), (2, a, 18)] {
        c.execute(
            "INSERT INTO nweb.chain_checkpoints (chain_id, contract, start_block, last_block, last_block_hash) VALUES ($1, $2, 10, $3, $4)",
            &[&chain, &contract, &last, &h64(chain as u64 * 1000 + last as u64)],
        )
        .await
        .unwrap();
    }
    for chain in [1i64, 2] {
        for n in 10..=18i64 {
            c.execute(
                "INSERT INTO nweb.chain_blocks (chain_id, block_number, block_hash) VALUES ($1, $2, $3)",
                &[&chain, &n, &h64(chain as u64 * 1000 + n as u64)],
            )
            .await
            .unwrap();
        }
    }
    let attest = |chain: i64, block: i64, kind: &'static str, payload: Value| async move {
        c.execute(
            "INSERT INTO nweb.attestations (kind, chain_id, tx_hash, log_index, block_number, block_hash, block_time, uid, attester, payload)
             VALUES ($1, $2, $3, 0, $4, $5, '2026-01-01T00:00:00Z', $3, '0x1111111111111111111111111111111111111111', $6)",
            &[&kind, &chain, &h64(chain as u64 * 100 + block as u64), &block, &h64(chain as u64 * 1000 + block as u64), &payload],
        )
        .await
        .unwrap();
    };
    let cid = Bundle::new("192.0.2.1", 1, 10).cid().to_string();
    attest(1, 12, "ScanSubmission", json!({"cid": cid})).await;
    attest(1, 15, "ScanSubmission", json!({"cid": cid})).await;
    attest(1, 18, "Challenge", json!({"cid": cid, "reasonCode": "CID_UNAVAILABLE"})).await;
    attest(2, 15, "ScanSubmission", json!({"cid": cid})).await;
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.challenges").await, 1);

    // A reorg of chain 1 from block 15 on.
    assert_eq!(db.one::<i64>("SELECT nweb.chain_rollback(1, 15)").await, 2);
    let rows: Vec<(i64, i64)> = c
        .query(
            "SELECT chain_id, block_number FROM nweb.attestations ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [(1, 12), (2, 15)]);
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM nweb.challenges").await,
        0,
        "the challenge went with its attestation"
    );
    let cps: Vec<(i64, String, i64, Option<String>)> = c
        .query(
            "SELECT chain_id, contract, last_block, last_block_hash FROM nweb.chain_checkpoints ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        cps,
        [
            (1, a.to_string(), 14, Some(h64(1014))), // moved back, with block 14's kept hash
            (1, b.to_string(), 13, Some(h64(1013))), // behind the fork: untouched
            (2, a.to_string(), 18, Some(h64(2018))), // another chain: untouched
        ]
    );
    assert_eq!(
        db.one::<i64>("SELECT max(block_number) FROM nweb.chain_blocks WHERE chain_id = 1")
            .await,
        14
    );
    assert_eq!(
        db.one::<i64>("SELECT max(block_number) FROM nweb.chain_blocks WHERE chain_id = 2")
            .await,
        18
    );
    // Back before the start block: the checkpoint rests at start - 1, without a hash.
    db.one::<i64>("SELECT nweb.chain_rollback(1, 3)").await;
    assert_eq!(
        db.one::<String>(&format!("SELECT last_block || ' ' || coalesce(last_block_hash, '-') FROM nweb.chain_checkpoints WHERE chain_id = 1 AND contract = '{a}'")).await,
        "9 -"
    );
    let e = c.query_one("SELECT nweb.chain_rollback(1, -1)", &[]).await.unwrap_err();
    assert_eq!(e.code().unwrap().code(), "22023");

    // A probe row must say why it is unavailable.
    c.execute(
        "INSERT INTO nweb.availability_checks (cid, available, attempts, gateways_ok, fetch_digest, checked_at, reason, probes, outcome)
         VALUES ($1, false, 2, 0, $2, now(), 'CID_UNAVAILABLE', '[]', 'unavailable')",
        &[&cid, &h64(0)],
    )
    .await
    .unwrap();
    let e = c
        .execute(
            "INSERT INTO nweb.availability_checks (cid, available, attempts, gateways_ok, fetch_digest, checked_at, probes, outcome)
             VALUES ($1, false, 2, 0, $2, now(), '[]', 'unavailable')",
            &[&cid, &h64(0)],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code().unwrap().code(), "23514");

    // pg_dump / pg_restore keep every row of the new tables, and the identity goes on.
    let before = chain_snapshot(&db).await;
    let last_id = db
        .one::<i64>("SELECT max(check_id) FROM nweb.availability_checks")
        .await;
    let file = std::env::temp_dir().join(format!("{}.chain.pgdump", db.name));
    let bin = |n: &str| {
        std::path::Path::new(&std::env::var("PG_BINDIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()))
            .join(n)
    };
    let out = std::process::Command::new(bin("pg_dump"))
        .args(["--format=custom", "--file"])
        .arg(&file)
        .args(["--dbname", &db.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = connect(&admin_url()).await;
    let name = format!("{}_r", db.name);
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = db.url.replace(&db.name, &name);
    let out = std::process::Command::new(bin("pg_restore"))
        .args(["--exit-on-error", "--dbname", &url])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = TestDb {
        name: name.clone(),
        url: url.clone(),
        client: connect(&url).await,
    };
    assert_eq!(chain_snapshot(&restored).await, before);
    let id: i64 = restored
        .client
        .query_one(
            "INSERT INTO nweb.availability_checks (cid, available, attempts, gateways_ok, fetch_digest, checked_at, probes, outcome)
             VALUES ($1, true, 1, 1, $2, now(), '[]', 'available') RETURNING check_id",
            &[&cid, &h64(1)],
        )
        .await
        .unwrap()
        .get(0);
    assert!(id > last_id, "the sequence was restored too ({id} after {last_id})");
    restored.finish().await;
    db.finish().await;
}
