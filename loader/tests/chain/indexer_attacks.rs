//! The indexer under attack (docs/design.md D41): a JSON-RPC proxy on loopback in front of anvil
//! that answers one read from the old fork (a reorg between two reads), answers every
//! range of logs with `[]` (a backend behind the head), or serves another chain; and
//! anvil's own shallow reorg right after a backfill. Each test fails on 0.6.0's indexer.

use std::sync::{Arc, Mutex};

use alloy::primitives::{keccak256, Address, LogData, B256};
use alloy::providers::DynProvider;
use alloy::sol_types::SolEvent;
use serde_json::{json, Value};

use crate::checkpoint;
use crate::http::{serve, Handler, Request, Response, Server};
use crate::support::*;

/// What the proxy does instead of passing a request through.
#[derive(Default)]
struct Lies {
    /// eth_getBlockByNumber(n) is answered with this (old fork's) result, this many times.
    stale_block: Option<(u64, Value, u32)>,
    /// eth_getLogs over a block range (not by blockHash) is answered with [].
    empty_logs: bool,
    /// eth_getLogs over a block range lacks the logs of these blocks: a replica that
    /// was at block .0 - 1 answered a range reaching past it, then caught up.
    hole: Option<(u64, u64)>,
    /// JSON-RPC calls seen (each call of a batch counts) and HTTP requests.
    calls: u64,
    requests: u64,
    /// eth_chainId is answered with this.
    chain_id: Option<u64>,
    /// How often a lie was told.
    told: u32,
}

fn num(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16).unwrap_or(0)
}

async fn proxy(upstream: String) -> (Server, Arc<Mutex<Lies>>) {
    let lies = Arc::new(Mutex::new(Lies::default()));
    let client = reqwest::Client::new();
    let l2 = lies.clone();
    let h: Handler = Arc::new(move |r: Request| {
        let (lies, client, upstream) = (l2.clone(), client.clone(), upstream.clone());
        Box::pin(async move {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let answer = |result: Value| {
                Response::new(200, serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": body["id"], "result": result})).unwrap())
                    .with("Content-Type", "application/json")
            };
            let mut hole = None;
            {
                let mut l = lies.lock().unwrap();
                l.requests += 1;
                l.calls += body.as_array().map_or(1, |a| a.len() as u64);
                let method = body["method"].as_str().unwrap_or("");
                if method == "eth_getLogs" && body["params"][0].get("blockHash").is_none() {
                    hole = l.hole;
                }
                if method == "eth_chainId" {
                    if let Some(id) = l.chain_id {
                        l.told += 1;
                        return answer(json!(format!("0x{id:x}")));
                    }
                }
                if method == "eth_getLogs" && l.empty_logs && body["params"][0].get("blockHash").is_none() {
                    l.told += 1;
                    return answer(json!([]));
                }
                if method == "eth_getBlockByNumber" {
                    let asked = body["params"][0].as_str().filter(|s| s.starts_with("0x")).map(|_| num(&body["params"][0]));
                    if let Some((n, old, left)) = l.stale_block.as_mut() {
                        if Some(*n) == asked && *left > 0 {
                            *left -= 1;
                            let old = old.clone();
                            l.told += 1;
                            return answer(old);
                        }
                    }
                }
            }
            let resp = client
                .post(&upstream)
                .header("content-type", "application/json")
                .body(r.body.clone())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let mut bytes = resp.bytes().await.unwrap().to_vec();
            if let Some((a, b)) = hole {
                let mut v: Value = serde_json::from_slice(&bytes).unwrap();
                if let Some(logs) = v["result"].as_array_mut() {
                    let before = logs.len();
                    logs.retain(|l| !(a..=b).contains(&num(&l["blockNumber"])));
                    if logs.len() < before {
                        lies.lock().unwrap().told += 1;
                    }
                }
                bytes = serde_json::to_vec(&v).unwrap();
            }
            Response::new(status, bytes).with("Content-Type", "application/json")
        })
    });
    (serve(h).await, lies)
}

async fn count(db: &TestDb) -> i64 {
    db.one::<i64>("SELECT count(*) FROM nweb.attestations").await
}

fn cid(n: i64) -> String {
    Bundle::new("192.0.2.16", n, 10).cid().to_string()
}

/// Makes the Attestor's address emit `logs` in one transaction: its code is swapped
/// (`anvil_setCode`) for a few opcodes that CODECOPY each log's data, appended to the
/// code, into memory and LOG it with its topics, then put back. What a hostile or buggy
/// Attestor could emit, and the routers never would. Returns the transaction's block.
async fn emit_as_attestor(p: &DynProvider, c: &Contracts, logs: &[LogData]) -> i64 {
    // Per log: PUSH2 len, PUSH2 at, PUSH1 0, CODECOPY (9 bytes); PUSH32 per topic, last
    // first; PUSH2 len, PUSH1 0, LOGn (6 bytes). Then STOP, then the data.
    let ops_len = logs.iter().map(|l| 33 * l.topics().len() + 15).sum::<usize>() + 1;
    let (mut code, mut data) = (Vec::new(), Vec::new());
    for l in logs {
        let len = u16::try_from(l.data.len()).unwrap().to_be_bytes();
        let at = u16::try_from(ops_len + data.len()).unwrap().to_be_bytes();
        code.extend([0x61, len[0], len[1], 0x61, at[0], at[1], 0x60, 0x00, 0x39]);
        for t in l.topics().iter().rev() {
            code.push(0x7f);
            code.extend(t.as_slice());
        }
        code.extend([0x61, len[0], len[1], 0x60, 0x00, 0xa0 + l.topics().len() as u8]);
        data.extend_from_slice(&l.data);
    }
    code.push(0x00);
    assert_eq!(code.len(), ops_len);
    code.extend(data);

    let attestor = format!("{:#x}", c.attestor);
    let real = raw(p, "eth_getCode", json!([attestor, "latest"])).await;
    raw(p, "anvil_setCode", json!([attestor, alloy::hex::encode_prefixed(code)])).await;
    let from = format!("{:#x}", signer(3).address());
    let tx = raw(p, "eth_sendTransaction", json!([{"from": from, "to": attestor, "data": "0x"}])).await;
    let receipt = raw(p, "eth_getTransactionReceipt", json!([tx])).await;
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert_eq!(receipt["logs"].as_array().map(Vec::len), Some(logs.len()), "{receipt}");
    raw(p, "anvil_setCode", json!([attestor, real])).await;
    num(&receipt["blockNumber"]) as i64
}

/// A reorg lands between the read of the checkpoint's block (still answered from the
/// old fork by a lagging replica) and the batch after it (from the new fork). 0.6.0
/// compared only the checkpoint's hash, saw no reorg, and committed the new fork's
/// blocks on top of the old fork's submission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_between_the_two_reads_is_rolled_back_not_committed_on_top() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let (proxy, lies) = proxy(node.url.clone()).await;
    let dir = tmp_dir("attack-reorg-race");
    let cfg = config(&dir, &proxy.url(), &c, "confirmations = 0\n", "", "");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let args = ["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()];

    submit(&p, &c, 1, &cid(1), "0x", 1).await;
    mine(&p, 1).await;
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&db).await, 1);
    let (last, _) = checkpoint(&db).await;
    let old = raw(&p, "eth_getBlockByNumber", json!([format!("0x{last:x}"), false])).await;

    // The submission's block and the checkpoint's are replaced; the chain grows on.
    raw(&p, "anvil_reorg", json!([3, []])).await;
    mine(&p, 2).await;
    // One read of the checkpoint's block still comes from the old fork.
    lies.lock().unwrap().stale_block = Some((last as u64, old, 1));
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(lies.lock().unwrap().told, 1, "the stale read was served");
    assert_eq!(count(&db).await, 0, "the old fork's submission is rolled back: {}", run.stderr);
    let (last, hash) = checkpoint(&db).await;
    let canonical = raw(&p, "eth_getBlockByNumber", json!([format!("0x{last:x}"), false])).await;
    assert_eq!(hash.as_deref(), canonical["hash"].as_str(), "the checkpoint is on the new fork");
    assert!(run.stderr.contains("parent"), "the log names the broken parent link: {}", run.stderr);
    db.finish().await;
}

/// A backend behind the head answers eth_getLogs for blocks it has not seen with []
/// while the headers come from an up-to-date one. 0.6.0 advanced the checkpoint past
/// the submission; now the block's logsBloom gives it away and nothing is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_backend_answering_no_logs_never_moves_the_checkpoint() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let (proxy, lies) = proxy(node.url.clone()).await;
    lies.lock().unwrap().empty_logs = true;
    let dir = tmp_dir("attack-lagging");
    let cfg = config(&dir, &proxy.url(), &c, "confirmations = 0\nmax_retries = 1\n", "", "");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let args = ["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()];

    let r = submit(&p, &c, 1, &cid(2), "0x", 1).await;
    let block = r.block_number.unwrap() as i64;
    mine(&p, 1).await;
    let run = loader(&db, &args).await;
    assert_ne!(run.code, 0, "a lagging backend must not look like a quiet chain");
    let last_line = run.stderr.trim().lines().last().unwrap_or("");
    assert!(last_line.contains("stay inconsistent") && last_line.contains("lagging"), "{}", run.stderr);
    let last = db.one::<Option<i64>>("SELECT max(last_block) FROM nweb.chain_checkpoints").await;
    assert!(last.unwrap_or(-1) < block, "the checkpoint stays before the submission's block {block}: {last:?}");

    // The backend catches up: the same run indexes the submission.
    lies.lock().unwrap().empty_logs = false;
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&db).await, 1);
    db.finish().await;
}

/// A long backfill in one batch; the replica that answers its range was behind the
/// middle of it, so the range answer lacks the logs of a run of blocks that are
/// neither a batch end, nor a block with logs in the answer, nor near the head. With
/// only the headers a batch stores, nothing looked at those blocks and the checkpoint
/// passed the submission; now every header's logsBloom is checked (D46).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_backend_in_the_middle_of_a_long_backfill_never_moves_the_checkpoint_past_the_hole() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let (proxy, lies) = proxy(node.url.clone()).await;
    let dir = tmp_dir("attack-lagging-middle");
    let chain = "confirmations = 0\nmax_retries = 1\nmax_block_range = 1000\nreorg_window = 16\nheader_batch = 50\n";
    let cfg = config(&dir, &proxy.url(), &c, chain, "", "");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let args = ["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()];

    let first = submit(&p, &c, 1, &cid(4), "0x", 1).await.block_number.unwrap();
    mine(&p, 60).await;
    let middle = submit(&p, &c, 1, &cid(5), "0x", 1).await.block_number.unwrap();
    mine(&p, 60).await;
    let last = submit(&p, &c, 1, &cid(6), "0x", 1).await.block_number.unwrap();
    mine(&p, 40).await;
    lies.lock().unwrap().hole = Some((first + 30, first + 90));
    let run = loader(&db, &args).await;
    assert!(lies.lock().unwrap().told > 0, "the hole was served");
    assert_ne!(run.code, 0, "a hole in the range answer must not look like a quiet stretch: {}", run.stderr);
    let last_line = run.stderr.trim().lines().last().unwrap_or("");
    assert!(
        last_line.contains("stay inconsistent") && last_line.contains(&format!("block {middle} has 1 log")),
        "{}",
        run.stderr
    );
    let cp = db.one::<Option<i64>>("SELECT max(last_block) FROM nweb.chain_checkpoints").await;
    assert!(cp.unwrap_or(-1) < middle as i64, "the checkpoint stays before the hole at {middle}: {cp:?}");

    // The replica caught up: the same run indexes all three.
    lies.lock().unwrap().hole = None;
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&db).await, 3);
    let (cp, _) = checkpoint(&db).await;
    assert!(cp > last as i64);
    db.finish().await;
}

/// The Attestor's address emits a ScanSubmitted log whose data does not decode (its
/// code swapped for a few opcodes with `anvil_setCode`, then put back: the routers
/// revert such input, a hostile or buggy contract need not). The log is recorded in
/// nweb.chain_log_rejects in the batch that indexes the valid logs around it and moves
/// the checkpoint past it; a reorg that replaces its block removes it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_log_is_recorded_with_its_batch_and_rolled_back_with_its_block() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let dir = tmp_dir("attack-undecodable");
    let cfg = config(&dir, &node.url, &c, "confirmations = 0\n", "", "");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let args = ["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()];

    submit(&p, &c, 1, &cid(7), "0x", 1).await;
    // ScanSubmitted's topic0 and no data at all.
    let topic0 = IAttestor::ScanSubmitted::SIGNATURE_HASH;
    let bad_block = emit_as_attestor(&p, &c, &[LogData::new_unchecked(vec![topic0], Default::default())]).await;
    submit(&p, &c, 1, &cid(8), "0x", 1).await;
    mine(&p, 1).await;

    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&db).await, 2, "the valid logs of the batch are indexed: {}", run.stderr);
    let (n, block, t0, error) = {
        let r = db
            .client
            .query_one(
                "SELECT count(*) OVER (), block_number, topic0, error FROM nweb.chain_log_rejects",
                &[],
            )
            .await
            .expect("one reject");
        (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, Option<String>>(2), r.get::<_, String>(3))
    };
    assert_eq!((n, block), (1, bad_block));
    assert_eq!(t0.as_deref(), Some(format!("{topic0:#x}").as_str()));
    assert!(!error.is_empty());
    let (last, _) = checkpoint(&db).await;
    assert!(last > bad_block, "the checkpoint passes the recorded log: {last}");

    // A reorg replaces the bad block and everything after it: the reject goes with it.
    let depth = head(&p).await as i64 - bad_block + 1;
    raw(&p, "anvil_reorg", json!([depth, []])).await;
    mine(&p, 1).await;
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.chain_log_rejects").await, 0);
    assert_eq!(count(&db).await, 1, "the submission below the fork stays");
    db.finish().await;
}

/// A hostile or buggy Attestor (one that skips the CanonicalCid check) emits
/// ScanSubmissions that decode, laid out byte for byte as the real contract's logs
/// (Attested, then ScanSubmitted with the same uid), naming an honestly submitted
/// bundle's CID in variant spellings: CIDv0 and base32 upper-case. The chain knows a CID
/// by its exact text, so the slasher would never look these up, yet the database would
/// read them as the bundle's. Both are recorded in nweb.chain_log_rejects with the
/// batch that indexes the valid logs around them, a forged log with the canonical
/// spelling among them included; the honest submission of the same CID is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variant_cid_from_a_hostile_attestor_is_recorded_not_indexed() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let dir = tmp_dir("attack-variant-cid");
    let cfg = config(&dir, &node.url, &c, "confirmations = 0\n", "", "");
    let cfg_s = cfg.to_str().unwrap().to_string();

    let bundle = Bundle::new("192.0.2.16", 9, 10);
    let canonical = bundle.cid().to_string();
    let honest = submit(&p, &c, 1, &canonical, "0x", 1).await;
    let real = |topic0: B256| {
        let l = honest.logs().iter().find(|l| l.topic0() == Some(&topic0)).expect("the contract's log");
        l.inner.data.clone()
    };
    let attested = IAttestor::Attested::decode_log_data(&real(IAttestor::Attested::SIGNATURE_HASH)).unwrap();
    let submitted_data = real(IAttestor::ScanSubmitted::SIGNATURE_HASH);
    let submitted = IAttestor::ScanSubmitted::decode_log_data(&submitted_data).unwrap();
    assert_eq!(submitted.encode_log_data(), submitted_data, "the forged logs are encoded as the contract's");

    let v0 = nweb::Cid::new_v0(*bundle.cid().hash()).unwrap().to_string();
    let upper = canonical.to_uppercase();
    assert!(v0.starts_with("Qm") && upper.starts_with("BAFY"), "{v0} {upper}");
    let control = cid(11);
    let who = signer(3).address();
    let forged: Vec<LogData> = [&v0, &upper, &control]
        .iter()
        .flat_map(|spelling| {
            let uid = keccak256(spelling.as_bytes());
            let a = IAttestor::Attested { recipient: who, attester: who, uid, ..attested.clone() };
            let submission = IAttestor::ScanSubmission {
                subject: who,
                cid: spelling.to_string(),
                ..submitted.submission.clone()
            };
            let s = IAttestor::ScanSubmitted { uid, attester: who, submission };
            [a.encode_log_data(), s.encode_log_data()]
        })
        .collect();
    let bad_block = emit_as_attestor(&p, &c, &forged).await;
    submit(&p, &c, 1, &cid(10), "0x", 2).await;
    mine(&p, 1).await;

    let run = loader(&db, &["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rejects = db
        .client
        .query(
            "SELECT block_number, log_index, topic0, error FROM nweb.chain_log_rejects ORDER BY log_index",
            &[],
        )
        .await
        .unwrap();
    let rejects: Vec<(i64, i32, Option<String>, String)> =
        rejects.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    assert_eq!(rejects.len(), 2, "both variants are recorded: {rejects:?}\n{}", run.stderr);
    let topic0 = format!("{:#x}", IAttestor::ScanSubmitted::SIGNATURE_HASH);
    for ((block, log_index, t0, error), (spelling, index)) in rejects.iter().zip([(&v0, 1), (&upper, 3)]) {
        assert_eq!((*block, *log_index, t0.as_deref()), (bad_block, index, Some(topic0.as_str())));
        assert!(error.starts_with(&format!("payload.cid {spelling:?}: not the canonical spelling")), "{error}");
        assert!(error.contains(&canonical), "the error names the canonical spelling: {error}");
    }
    let indexed = db
        .one::<i64>(&format!(
            "SELECT count(*) FROM nweb.attestations WHERE payload->>'cid' IN ('{v0}', '{upper}')"
        ))
        .await;
    assert_eq!(indexed, 0, "no variant is in nweb.attestations");
    let submitted = db
        .client
        .query("SELECT submitter, cid FROM nweb.v_submissions ORDER BY block_number, log_index", &[])
        .await
        .unwrap();
    let submitted: Vec<(String, Option<String>)> = submitted.iter().map(|r| (r.get(0), r.get(1))).collect();
    let (honest_submitter, hostile) = (format!("{:#x}", signer(1).address()), format!("{who:#x}"));
    assert_eq!(
        submitted,
        [
            (honest_submitter.clone(), Some(canonical.clone())),
            (hostile, Some(control)),
            (honest_submitter, Some(cid(10))),
        ],
        "the honest submission of the CID, the forged canonical one and the one after are indexed"
    );
    let (last, _) = checkpoint(&db).await;
    assert!(last > bad_block, "the checkpoint passes the recorded logs: {last}");
    db.finish().await;
}

/// After a backfill in one batch, a reorg of a few blocks. 0.6.0 kept only the batch's
/// end and the blocks with logs; with the log block pruned the fork point was not in
/// the window and tail stopped with "deeper than the kept window".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shallow_reorg_right_after_a_backfill_is_inside_the_window() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let dir = tmp_dir("attack-backfill-reorg");
    let cfg = config(&dir, &node.url, &c, "confirmations = 1\nreorg_window = 16\n", "", "");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let args = ["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()];

    submit(&p, &c, 1, &cid(3), "0x", 1).await;
    mine(&p, 40).await;
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&db).await, 1);

    raw(&p, "anvil_reorg", json!([3, []])).await;
    mine(&p, 1).await;
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "a 3-block reorg is not deeper than a 16-block window: {}", run.stderr);
    assert_eq!(count(&db).await, 1, "the submission below the fork stays");
    let (last, hash) = checkpoint(&db).await;
    let canonical = raw(&p, "eth_getBlockByNumber", json!([format!("0x{last:x}"), false])).await;
    assert_eq!(hash.as_deref(), canonical["hash"].as_str());
    db.finish().await;
}

/// An RPC that serves another chain is refused before anything is read or written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_chain_id_stops_tail_and_check_with_one_line() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let (proxy, lies) = proxy(node.url.clone()).await;
    lies.lock().unwrap().chain_id = Some(1);
    let dir = tmp_dir("attack-chain-id");
    let cfg = config(&dir, &proxy.url(), &c, "confirmations = 0\n", "", "");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let run = loader(&db, &["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("serves chain 1, the configuration says chain.chain_id = 31337"), "{}", run.stderr);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.chain_checkpoints").await, 0);

    // The slasher too: with a key it would sign for chain 1, so it stops before
    // signing anything, in one line.
    let password = "pw-chain-id-7f3a";
    alloy::signers::local::PrivateKeySigner::encrypt_keystore(
        &dir,
        &mut rand::thread_rng(),
        signer(2).to_bytes(),
        password,
        Some("slasher.json"),
    )
    .unwrap();
    std::fs::write(dir.join("pass"), format!("{password}\n")).unwrap();
    let slasher = format!(
        "[slasher]\nkeystore = \"{}\"\npassword_file = \"{}\"\n",
        dir.join("slasher.json").display(),
        dir.join("pass").display()
    );
    // A gateway that never answers: the chain id is refused before any probe.
    let cfg = config(&dir, &proxy.url(), &c, "confirmations = 0\n", "gateways = [\"http://127.0.0.1:9\"]\n", &slasher);
    let run = loader(&db, &["check", "--config", cfg.to_str().unwrap()]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("serves chain 1, the configuration says chain.chain_id = 31337"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.availability_checks").await, 0);
    db.finish().await;
}
