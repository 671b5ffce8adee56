//! Reorgs made by the dev chain itself (`anvil_reorg`: the last `depth` blocks are
//! replaced by as many new ones, their transactions dropped), at a depth inside the
//! kept window, which the indexer must roll back, and deeper than it, which it must
//! refuse with an error that stops it rather than keep rows of a branch it cannot
//! check.

use alloy::primitives::Address;
use serde_json::json;

use crate::checkpoint;
use crate::support::*;

async fn count(db: &TestDb) -> i64 {
    db.one::<i64>("SELECT count(*) FROM nweb.attestations").await
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anvil_reorgs_inside_the_window_roll_back_and_deeper_ones_stop_the_indexer() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let dir = tmp_dir("anvil-reorg");
    // The smallest window the configuration allows, so "deeper" is cheap to reach.
    let cfg = config(&dir, &node.url, &c, "confirmations = 1\nreorg_window = 16\n", "", "");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let args = ["tail", "--once", "--no-bundles", "--config", cfg_s.as_str()];
    let tail = || loader(&db, &args);
    let cid = |n: i64| Bundle::new("192.0.2.9", n, 10).cid().to_string();

    submit(&p, &c, 1, &cid(1), "0x", 1).await;
    mine(&p, 3).await;
    submit(&p, &c, 1, &cid(2), "0x", 2).await;
    mine(&p, 3).await;
    let run = tail().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&db).await, 2);

    // Inside the window: the 4 newest blocks, holding the second submission, are
    // replaced; the indexer rolls it back and keeps going.
    let before = head(&p).await;
    raw(&p, "anvil_reorg", json!([4, []])).await;
    assert_eq!(head(&p).await, before, "anvil_reorg keeps the height");
    mine(&p, 1).await;
    let run = tail().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(" 1 reverted;"), "{}", run.stdout);
    assert!(run.stderr.contains("reorg"), "the reorg is logged: {}", run.stderr);
    assert_eq!(count(&db).await, 1, "the dropped submission is gone");

    // Deeper than the window: every kept hash is replaced. The indexer stops with an
    // error naming the problem, and nothing it had is changed.
    mine(&p, 20).await;
    submit(&p, &c, 1, &cid(3), "0x", 3).await;
    mine(&p, 2).await;
    let run = tail().await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&db).await, 2);
    let kept = checkpoint(&db).await;
    raw(&p, "anvil_reorg", json!([40, []])).await;
    let run = tail().await;
    assert_ne!(run.code, 0, "a reorg deeper than the window is never accepted: {}", run.stdout);
    // The warning that found the reorg, then the one-line error the run ends with.
    assert!(
        run.stderr
            .trim()
            .lines()
            .last()
            .unwrap()
            .starts_with("xray-loader: reorg deeper than the kept window of 16 blocks"),
        "{}",
        run.stderr
    );
    assert_eq!(count(&db).await, 2, "nothing rolled back on a guess");
    assert_eq!(checkpoint(&db).await, kept);
    // And it stays stopped: a second run refuses the same way.
    let run = tail().await;
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("reorg deeper than the kept window"), "{}", run.stderr);
    db.finish().await;
}
