//! `xray-loader tail` on the StakeRegistry: Staked, Unstaked, Slashed, Unbonding,
//! UnbondingSlashed and Withdrawn logs into
//! nweb.stake_events, and nweb.stakes derived from them, with the indexer's guarantees
//! (one transaction with the checkpoint, reorgs, replays). Needs xray_pg 0.4.0 with the
//! StakeRegistry section of sql/xray_pg--0.3.0--0.4.0.sql installed.

use super::*;

/// One StakeRegistry log, as the test reads it from the node or from nweb.stake_events.
/// Amounts are GST text without trailing zeros.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct StakeRow {
    block_number: i64,
    log_index: i32,
    tx_hash: String,
    block_hash: String,
    block_time: i64,
    kind: String,
    address: String,
    amount: String,
    total: Option<String>,
    challenger: Option<String>,
    bounty: Option<String>,
    burned: Option<String>,
    release_at: Option<i64>,
}

/// The registry's stake logs straight from the node (not through the loader's code),
/// decoded with the test's own `sol!` types, up to `to`.
async fn chain_stake_rows(p: &DynProvider, registry: Address, from: u64, to: u64) -> Vec<StakeRow> {
    let filter = Filter::new().address(registry).from_block(from).to_block(to);
    let mut out = Vec::new();
    for l in p.get_logs(&filter).await.unwrap() {
        let topic0 = *l.topic0().unwrap();
        let mut release_at = None;
        let (kind, who, amount, total, slash) = if topic0 == IStakeRegistry::Staked::SIGNATURE_HASH {
            let e = IStakeRegistry::Staked::decode_log_data(&l.inner.data).unwrap();
            ("Staked", e.who, e.amount, Some(e.total), None)
        } else if topic0 == IStakeRegistry::Unstaked::SIGNATURE_HASH {
            let e = IStakeRegistry::Unstaked::decode_log_data(&l.inner.data).unwrap();
            ("Unstaked", e.who, e.amount, Some(e.total), None)
        } else if topic0 == IStakeRegistry::Slashed::SIGNATURE_HASH {
            let e = IStakeRegistry::Slashed::decode_log_data(&l.inner.data).unwrap();
            ("Slashed", e.who, e.amount, None, Some((e.challenger, e.bounty, e.burned)))
        } else if topic0 == IStakeRegistry::Unbonding::SIGNATURE_HASH {
            let e = IStakeRegistry::Unbonding::decode_log_data(&l.inner.data).unwrap();
            release_at = Some(e.releaseAt as i64);
            ("Unbonding", e.who, e.amount, Some(e.totalUnbonding), None)
        } else if topic0 == IStakeRegistry::UnbondingSlashed::SIGNATURE_HASH {
            let e = IStakeRegistry::UnbondingSlashed::decode_log_data(&l.inner.data).unwrap();
            ("UnbondingSlashed", e.who, e.amount, None, Some((e.challenger, e.bounty, e.burned)))
        } else if topic0 == IStakeRegistry::Withdrawn::SIGNATURE_HASH {
            let e = IStakeRegistry::Withdrawn::decode_log_data(&l.inner.data).unwrap();
            ("Withdrawn", e.who, e.amount, None, None)
        } else {
            continue; // RepFactorSet
        };
        let bn = l.block_number.unwrap();
        let t = p.get_block_by_number(bn.into()).await.unwrap().unwrap().header.timestamp;
        out.push(StakeRow {
            block_number: bn as i64,
            log_index: l.log_index.unwrap() as i32,
            tx_hash: hx(l.transaction_hash.unwrap().as_slice()),
            block_hash: hx(l.block_hash.unwrap().as_slice()),
            block_time: t as i64,
            kind: kind.into(),
            address: hx(who.as_slice()),
            amount: format_gst(amount),
            total: total.map(format_gst),
            challenger: slash.map(|s| hx(s.0.as_slice())),
            bounty: slash.map(|s| format_gst(s.1)),
            burned: slash.map(|s| format_gst(s.2)),
            release_at,
        });
    }
    out.sort();
    out
}

async fn db_stake_rows(db: &TestDb) -> Vec<StakeRow> {
    let rows = db
        .client
        .query(
            "SELECT block_number, log_index, tx_hash, block_hash, extract(epoch FROM block_time)::bigint, kind, address,
                    trim_scale(amount)::text, trim_scale(total)::text, challenger, trim_scale(bounty)::text,
                    trim_scale(burned)::text, extract(epoch FROM release_at)::bigint
               FROM nweb.stake_events ORDER BY block_number, log_index",
            &[],
        )
        .await
        .unwrap();
    let mut out: Vec<StakeRow> = rows
        .iter()
        .map(|r| StakeRow {
            block_number: r.get(0),
            log_index: r.get(1),
            tx_hash: r.get(2),
            block_hash: r.get(3),
            block_time: r.get(4),
            kind: r.get(5),
            address: r.get(6),
            amount: r.get(7),
            total: r.get(8),
            challenger: r.get(9),
            bounty: r.get(10),
            burned: r.get(11),
            release_at: r.get(12),
        })
        .collect();
    out.sort();
    out
}

/// nweb.stakes.stake of an address as GST text, None without a row.
async fn db_stake(db: &TestDb, who: Address) -> Option<String> {
    db.client
        .query_opt(
            "SELECT trim_scale(stake)::text FROM nweb.stakes WHERE address = $1",
            &[&hx(who.as_slice())],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

async fn chain_stake(p: &DynProvider, c: &Contracts, who: Address) -> String {
    format_gst(view(p, c.stakes, IStakeRegistry::stakeOfCall { who }).await)
}

/// The registry's checkpoint: (last_block, last_block_hash).
async fn registry_checkpoint(db: &TestDb, c: &Contracts) -> (i64, Option<String>) {
    let r = db
        .client
        .query_one(
            "SELECT last_block, last_block_hash FROM nweb.chain_checkpoints WHERE contract = $1",
            &[&hx(c.stakes.as_slice())],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

fn registry_config(dir: &std::path::Path, rpc: &str, c: &Contracts, extra_chain: &str) -> String {
    config(
        dir,
        rpc,
        c,
        &format!("stake_registry = \"{}\"\n{extra_chain}", c.stakes),
        "",
        "",
    )
    .to_str()
    .unwrap()
    .to_string()
}

/// Files a challenge against the first submission of `cid` and returns its id.
async fn challenge(p: &DynProvider, c: &Contracts, from: usize, cid: &str) -> B256 {
    let mut reason = [0u8; 32];
    reason[..15].copy_from_slice(b"CID_UNAVAILABLE");
    let r = send(
        p,
        signer(from).address(),
        c.slash,
        ISlashRouter::challengeCall {
            jobId: B256::repeat_byte(1),
            cid: cid.into(),
            reasonCode: B256::from(reason),
            evidenceCid: "".into(),
        },
    )
    .await;
    let log = r
        .inner
        .logs()
        .iter()
        .find(|l| l.topic0() == Some(&IAttestor::ChallengeFiled::SIGNATURE_HASH))
        .unwrap();
    IAttestor::ChallengeFiled::decode_log_data(&log.inner.data).unwrap().uid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_derives_the_stakes_from_the_stake_registry() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1, 2, 3], 0).await;
    let (submitter, challenger, other) = (signer(1).address(), signer(2).address(), signer(3).address());
    let stake = |amount: U256| IStakeRegistry::stakeCall { amount };
    let unstake = |amount: U256| IStakeRegistry::unstakeCall { amount };

    // Amounts a wei off a round number, so that any rounding shows.
    send(&p, submitter, c.stakes, stake(gst(1000))).await;
    send(&p, submitter, c.stakes, stake(gst_wei("0.500000000000000001"))).await;
    send(&p, challenger, c.stakes, stake(gst(200))).await;
    send(&p, challenger, c.stakes, unstake(gst_wei("49.999999999999999999"))).await;
    send(&p, other, c.stakes, stake(gst(100))).await;
    send(&p, other, c.stakes, unstake(gst(100))).await;
    // A submission whose challenge is not answered within grace: slashed.
    let cid = Bundle::new("192.0.2.1", 1, 10).cid().to_string();
    submit(&p, &c, 1, &cid, "0x", 1).await;
    let id = challenge(&p, &c, 2, &cid).await;
    increase_time(&p, 72 * 3600 + 1).await;
    let slashed = send(&p, other, c.slash, ISlashRouter::slashCall { challengeId: id }).await;
    let slash_block = slashed.block_number.unwrap();
    mine(&p, 2).await;
    assert_eq!(chain_stake(&p, &c, submitter).await, "900.450000000000000001");

    // First the Attestor alone: the registry is optional, and then nothing is indexed.
    let dir_a = tmp_dir("stakes-a");
    let cfg_a = config(&dir_a, &node.url, &c, "confirmations = 1\n", "", "");
    let run = loader(
        &db,
        &["tail", "--once", "--no-bundles", "--config", cfg_a.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(": 3 attestations added, 0 reverted; bundles:"),
        "no stake part without chain.stake_registry: {}",
        run.stdout
    );
    assert_eq!(run.stderr, "", "not setting the registry is not worth a warning");
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.stake_events").await, 0);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.stakes").await, 0);

    // The registry added later is indexed from the start block, although the Attestor's
    // checkpoint is at the head. Killed inside that batch's transaction (the test holds a
    // lock the batch needs after its stake rows and stakes are written): nothing stays.
    let dir_b = tmp_dir("stakes-b");
    let cfg = registry_config(&dir_b, &node.url, &c, "confirmations = 1\n");
    let args = ["tail", "--once", "--no-bundles", "--config", cfg.as_str()];
    let blocker = connect(&db.url).await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE nweb.chain_blocks IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut child = loader_cmd(&db, &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let backend = blocked_on_chain_blocks(&db, &mut child).await;
    let written: Vec<String> = db
        .client
        .query(
            "SELECT relation::regclass::text FROM pg_locks
              WHERE pid = $1 AND mode = 'RowExclusiveLock'
                AND relation IN ('nweb.stake_events'::regclass, 'nweb.stakes'::regclass)
              ORDER BY 1",
            &[&backend],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        written,
        ["nweb.stake_events", "nweb.stakes"],
        "the blocked transaction has written stake events and stakes"
    );
    kill_blocked_loader(&db, &mut child, &blocker, backend).await;
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.stake_events").await, 0);
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.stakes").await, 0);
    assert_eq!(registry_checkpoint(&db, &c).await, (c.deployed_at as i64 - 1, None));

    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let safe = head(&p).await - 1;
    let expected = chain_stake_rows(&p, c.stakes, c.deployed_at, safe).await;
    // Two unstakes, each also an Unbonding.
    assert_eq!(expected.len(), 9);
    assert!(
        run.stdout.contains(&format!(
            ": 0 attestations added, 0 reverted; {} stake events added, 0 reverted; bundles:",
            expected.len()
        )),
        "{}",
        run.stdout
    );
    assert_eq!(db_stake_rows(&db).await, expected, "every stake log once, exactly");
    let slash_row = expected.iter().find(|r| r.kind == "Slashed").unwrap();
    assert_eq!(
        (
            slash_row.amount.as_str(),
            slash_row.bounty.as_deref(),
            slash_row.burned.as_deref(),
            slash_row.total.as_deref(),
        ),
        ("100.05", Some("50.025"), Some("50.025"), None)
    );
    assert_eq!(slash_row.challenger, Some(hx(challenger.as_slice())));
    for (who, want) in [
        (submitter, "900.450000000000000001"),
        (challenger, "150.000000000000000001"),
        (other, "0"),
    ] {
        assert_eq!(chain_stake(&p, &c, who).await, want);
        assert_eq!(db_stake(&db, who).await.as_deref(), Some(want), "{who}");
    }
    assert_eq!(
        registry_checkpoint(&db, &c).await,
        (safe as i64, Some(block_hash(&p, safe).await))
    );
    // The nweb rules now see the chain's stake: the quota equals the registry's.
    let quota: i64 = db
        .client
        .query_one(
            "SELECT quota_units FROM nweb.quota_at() WHERE address = $1",
            &[&hx(submitter.as_slice())],
        )
        .await
        .unwrap()
        .get(0);
    let on_chain = view(&p, c.stakes, IStakeRegistry::quotaUnitsCall { who: submitter }).await;
    assert_eq!(U256::from(quota as u64), on_chain);
    assert_eq!(quota, 30);

    // Again: nothing new, nothing printed, no stake written.
    let stamp: String = db.one("SELECT max(updated_at)::text FROM nweb.stakes").await;
    let run = loader(&db, &args).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    // From the start block again: every log is there already, so nothing is added,
    // printed or written.
    db.client
        .execute(
            "UPDATE nweb.chain_checkpoints SET last_block = start_block - 1, last_block_hash = NULL WHERE contract = $1",
            &[&hx(c.stakes.as_slice())],
        )
        .await
        .unwrap();
    let run = loader(&db, &args).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    assert_eq!(registry_checkpoint(&db, &c).await.0, safe as i64);
    assert_eq!(db_stake_rows(&db).await, expected);
    assert_eq!(
        db.one::<String>("SELECT max(updated_at)::text FROM nweb.stakes").await,
        stamp,
        "a replay writes no stake"
    );

    // Rolled back to before the slash: the stake is what the registry said before it.
    db.client
        .execute(
            "SELECT nweb.chain_rollback(31337, $1)",
            &[&(slash_block as i64)],
        )
        .await
        .unwrap();
    assert_eq!(
        db_stake(&db, submitter).await.as_deref(),
        Some("1000.500000000000000001")
    );
    assert_eq!(
        db_stake(&db, challenger).await.as_deref(),
        Some("150.000000000000000001")
    );
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(" 1 stake events added, 0 reverted;"),
        "{}",
        run.stdout
    );
    assert_eq!(
        db_stake(&db, submitter).await.as_deref(),
        Some("900.450000000000000001")
    );

    // After the slash the registry's own totals take over again, and agree.
    send(&p, submitter, c.stakes, unstake(gst_wei("0.450000000000000001"))).await;
    send(&p, submitter, c.stakes, stake(U256::from(1))).await;
    mine(&p, 1).await;
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(" 3 stake events added, 0 reverted;"),
        "an unstake is also an Unbonding: {}",
        run.stdout
    );
    assert_eq!(chain_stake(&p, &c, submitter).await, "900.000000000000000001");
    assert_eq!(
        db_stake(&db, submitter).await.as_deref(),
        Some("900.000000000000000001")
    );
    let safe = head(&p).await - 1;
    assert_eq!(
        db_stake_rows(&db).await,
        chain_stake_rows(&p, c.stakes, c.deployed_at, safe).await
    );
    db.finish().await;

    // Started after the submitter's Staked but before its slash: the stake cannot be
    // derived, and tail says which setting is wrong instead of storing a guess.
    let late = TestDb::new().await;
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&format!("start_block = {}", c.deployed_at), &format!("start_block = {slash_block}"));
    let dir_c = tmp_dir("stakes-late");
    std::fs::write(dir_c.join("nweb.toml"), text).unwrap();
    let late_cfg = dir_c.join("nweb.toml");
    let run = loader(
        &late,
        &["tail", "--once", "--no-bundles", "--config", late_cfg.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.stderr.trim();
    assert!(
        line.starts_with("xray-loader: ") && !line.contains('\n'),
        "one line: {line}"
    );
    assert!(
        line.contains("its stake cannot be derived") && line.contains("chain.start_block"),
        "{line}"
    );
    assert_eq!(late.one::<i64>("SELECT count(*) FROM nweb.stake_events").await, 0);
    late.finish().await;

    // A 0.3.0 database has nowhere to put stake events: said before anything is read.
    let old = TestDb {
        name: format!("xray_chain_test_{}", uuid::Uuid::new_v4().simple()),
        url: String::new(),
        client: connect(&admin_url()).await,
    };
    old.client
        .batch_execute(&format!("CREATE DATABASE {}", old.name))
        .await
        .unwrap();
    let old = TestDb {
        url: db_url(&old.name),
        client: connect(&db_url(&old.name)).await,
        name: old.name,
    };
    old.client
        .batch_execute("CREATE EXTENSION xray_pg VERSION '0.3.0'")
        .await
        .unwrap();
    let run = loader(&old, &args).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim(),
        "xray-loader: chain.stake_registry is set but the database has no nweb.stake_events: \
         update the extension to xray_pg 0.4.0 (ALTER EXTENSION xray_pg UPDATE)"
    );
    old.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_takes_back_a_stake() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1, 2], 0).await;
    let (staker, late) = (signer(1).address(), signer(2).address());
    let dir = tmp_dir("stakes-reorg");
    let cfg = registry_config(&dir, &node.url, &c, "confirmations = 2\nmax_block_range = 5\n");
    let args = ["tail", "--once", "--no-bundles", "--config", cfg.as_str()];
    let stake = |amount: u64| IStakeRegistry::stakeCall { amount: gst(amount) };

    let kept = send(&p, staker, c.stakes, stake(100)).await;
    mine(&p, 2).await;
    let snap = raw(&p, "evm_snapshot", json!([])).await;

    // On the branch that will be reverted: more stake, a new staker, and an attestation.
    let gone = [
        send(&p, staker, c.stakes, stake(500)).await,
        send(&p, late, c.stakes, stake(300)).await,
    ];
    send(
        &p,
        late,
        c.attestor,
        IAttestor::attestAvailabilityCall {
            check: IAttestor::AvailabilityCheck {
                cid: "bafkqreorg".into(),
                available: true,
                attempts: 1,
                gatewaysOk: 1,
                fetchDigest: B256::ZERO,
                checkedAt: 1,
            },
        },
    )
    .await;
    mine(&p, 4).await;
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(db_stake(&db, staker).await.as_deref(), Some("600"));
    assert_eq!(db_stake(&db, late).await.as_deref(), Some("300"));
    let old_tip = head(&p).await;

    // The fork: the other branch unstakes instead, and is longer.
    assert_eq!(raw(&p, "evm_revert", json!([snap])).await, json!(true));
    let new = send(&p, staker, c.stakes, IStakeRegistry::unstakeCall { amount: gst(40) }).await;
    mine(&p, old_tip - head(&p).await + 3).await;
    let run = loader(
        &db,
        &["--log-level", "warn", "tail", "--once", "--no-bundles", "--config", cfg.as_str()],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(": 0 attestations added, 1 reverted; 2 stake events added, 2 reverted;"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("reorg"), "the reorg is logged: {}", run.stderr);
    assert_eq!(db_stake(&db, staker).await.as_deref(), Some("60"));
    assert_eq!(
        db_stake(&db, late).await.as_deref(),
        Some("0"),
        "a stake that only the reverted branch had is gone"
    );
    let hashes: HashSet<String> = db
        .client
        .query("SELECT tx_hash FROM nweb.stake_events", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let tx = |r: &alloy::rpc::types::TransactionReceipt| hx(r.transaction_hash.as_slice());
    assert!(gone.iter().all(|r| !hashes.contains(&tx(r))), "reverted stake events still there");
    assert!(hashes.contains(&tx(&kept)) && hashes.contains(&tx(&new)));
    let safe = head(&p).await - 2;
    assert_eq!(
        db_stake_rows(&db).await,
        chain_stake_rows(&p, c.stakes, c.deployed_at, safe).await
    );
    assert_eq!(
        registry_checkpoint(&db, &c).await,
        (safe as i64, Some(block_hash(&p, safe).await))
    );

    // A chain that got shorter than the checkpoint: the stake in the vanished block goes.
    let snap = raw(&p, "evm_snapshot", json!([])).await;
    send(&p, late, c.stakes, stake(7)).await;
    mine(&p, 3).await;
    assert_eq!(loader(&db, &args).await.code, 0);
    assert_eq!(db_stake(&db, late).await.as_deref(), Some("7"));
    raw(&p, "evm_revert", json!([snap])).await;
    let run = loader(&db, &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(" 0 stake events added, 1 reverted;"), "{}", run.stdout);
    assert_eq!(db_stake(&db, late).await.as_deref(), Some("0"));
    assert_eq!(db_stake(&db, staker).await.as_deref(), Some("60"));
    let (cp, h) = registry_checkpoint(&db, &c).await;
    assert!(cp <= head(&p).await as i64);
    assert_eq!(h, Some(block_hash(&p, cp as u64).await));
    db.finish().await;
}

async fn stake_and_reputation(db: &TestDb, who: &str) -> String {
    db.one::<String>(&format!(
        "SELECT trim_scale(stake)::text || ' ' || reputation FROM nweb.stakes WHERE address = '{who}'"
    ))
    .await
}

/// Every row of the two tables, as comparable text.
async fn stake_snapshot(db: &TestDb) -> Vec<String> {
    let mut out = Vec::new();
    for t in ["stake_events", "stakes"] {
        let r: String = db
            .one(&format!(
                "SELECT count(*) || ':' || coalesce(md5(string_agg((to_jsonb(t) - 'updated_at' - 'inserted_at')::text, '|' ORDER BY (to_jsonb(t) - 'updated_at' - 'inserted_at')::text)), '') FROM nweb.{t} t"
            ))
            .await;
        out.push(format!("{t} {r}"));
    }
    out
}

/// nweb.stake_events, nweb.refresh_stakes and nweb.chain_rollback in SQL alone: several
/// chains and registries, a slash without a total before it, privileges, pg_dump.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stake_events_derive_roll_back_and_survive_a_dump() {
    let db = TestDb::new().await;
    let c = &db.client;
    let (r1, r2) = (
        "0x00000000000000000000000000000000000000aa",
        "0x00000000000000000000000000000000000000ab",
    );
    let (alice, bob, carol) = (
        "0x00000000000000000000000000000000000000c1",
        "0x00000000000000000000000000000000000000c2",
        "0x00000000000000000000000000000000000000c3",
    );
    // Alice was given a reputation before any stake event: it must stay.
    c.execute(
        "INSERT INTO nweb.stakes (address, stake, reputation) VALUES ($1, 5, 2.5)",
        &[&alice],
    )
    .await
    .unwrap();
    let mut n = 0u64;
    let mut ev = |chain: i64, registry: &'static str, block: i64, kind: &'static str, who: &'static str, amount: &'static str, total: Option<&'static str>| {
        n += 1;
        let (challenger, split) = match kind {
            "Slashed" => (Some(bob), Some(amount)),
            _ => (None, None),
        };
        (chain, h64(n), block, registry, kind, who, amount, total, challenger, split)
    };
    let events = vec![
        ev(1, r1, 10, "Staked", alice, "1000", Some("1000")),
        ev(1, r1, 12, "Slashed", alice, "100", None),
        ev(1, r1, 13, "Unstaked", alice, "100", Some("800")),
        ev(1, r1, 14, "Slashed", alice, "79.999999999999999999", None),
        ev(1, r2, 14, "Staked", alice, "1", Some("1")),
        ev(2, r1, 11, "Staked", alice, "100", Some("100")),
        ev(1, r1, 15, "Staked", carol, "300", Some("300")),
    ];
    for (chain, tx, block, registry, kind, who, amount, total, challenger, split) in &events {
        c.execute(
            "INSERT INTO nweb.stake_events (chain_id, tx_hash, log_index, block_number, block_hash, block_time, registry,
                                            kind, address, amount, total, challenger, bounty, burned)
             VALUES ($1, $2, 0, $3, $2, now(), $4, $5, $6, $7::text::numeric, $8::text::numeric, $9,
                     $10::text::numeric / 2, $10::text::numeric / 2)",
            &[chain, tx, block, registry, kind, who, amount, total, challenger, split],
        )
        .await
        .unwrap();
    }
    // Addresses in any case; NULLs and repeats are ignored.
    assert_eq!(
        db.one::<i32>(&format!(
            "SELECT nweb.refresh_stakes(ARRAY['{}', '{alice}', NULL, '{carol}'])",
            alice.to_uppercase().replace("0X", "0x")
        ))
        .await,
        2
    );
    // Per registry: the last total minus what was slashed after it; summed over them.
    assert_eq!(stake_and_reputation(&db, alice).await, "821.000000000000000001 2.5");
    assert_eq!(stake_and_reputation(&db, carol).await, "300 0");
    assert_eq!(
        db.one::<String>(&format!(
            "SELECT string_agg(chain_id || '/' || right(registry, 2) || '=' || trim_scale(stake) || '@' || last_block, ' ' ORDER BY chain_id, registry)
               FROM nweb.stakes_by_registry(ARRAY['{alice}'])"
        ))
        .await,
        "1/aa=720.000000000000000001@14 1/ab=1@14 2/aa=100@11"
    );
    assert_eq!(
        db.one::<i32>(&format!("SELECT nweb.refresh_stakes(ARRAY['{alice}'])")).await,
        0,
        "nothing changed, nothing written"
    );

    // A reorg of chain 1 from block 14: the slash and r2's stake go, the Unstaked total
    // is the stake again; chain 2 is untouched.
    db.one::<i64>("SELECT nweb.chain_rollback(1, 14)").await;
    assert_eq!(stake_and_reputation(&db, alice).await, "900 2.5");
    assert_eq!(stake_and_reputation(&db, carol).await, "0 0", "the row stays, with nothing staked");
    db.one::<i64>("SELECT nweb.chain_rollback(1, 11)").await;
    assert_eq!(stake_and_reputation(&db, alice).await, "1100 2.5");
    db.one::<i64>("SELECT nweb.chain_rollback(2, 0)").await;
    assert_eq!(stake_and_reputation(&db, alice).await, "1000 2.5");

    // A slash with nothing before it cannot be derived: an error, not a guess. A slash of
    // nothing (a zero stake) can.
    c.batch_execute(&format!(
        "INSERT INTO nweb.stake_events (chain_id, tx_hash, log_index, block_number, block_hash, block_time, registry,
                                        kind, address, amount, challenger, bounty, burned)
         VALUES (3, '{}', 0, 5, '{}', now(), '{r1}', 'Slashed', '{bob}', 0, '{carol}', 0, 0)",
        h64(900),
        h64(900)
    ))
    .await
    .unwrap();
    db.one::<i32>(&format!("SELECT nweb.refresh_stakes(ARRAY['{bob}'])")).await;
    assert_eq!(stake_and_reputation(&db, bob).await, "0 0");
    c.batch_execute(&format!(
        "INSERT INTO nweb.stake_events (chain_id, tx_hash, log_index, block_number, block_hash, block_time, registry,
                                        kind, address, amount, challenger, bounty, burned)
         VALUES (3, '{}', 0, 6, '{}', now(), '{r1}', 'Slashed', '{bob}', 3, '{carol}', 1.5, 1.5)",
        h64(901),
        h64(901)
    ))
    .await
    .unwrap();
    let e = c
        .query_one(&format!("SELECT nweb.refresh_stakes(ARRAY['{bob}'])"), &[])
        .await
        .unwrap_err();
    let e = e.as_db_error().unwrap();
    assert_eq!(e.code().code(), "55000");
    assert!(
        e.message().contains(&format!("{bob} was slashed 3 GST by StakeRegistry {r1} on chain 3")),
        "{}",
        e.message()
    );
    assert!(e.hint().unwrap().contains("chain.start_block"), "{:?}", e.hint());
    // Still an error when a total follows it: whether the indexer stops must not depend
    // on whether that total falls into the same batch.
    c.batch_execute(&format!(
        "INSERT INTO nweb.stake_events (chain_id, tx_hash, log_index, block_number, block_hash, block_time, registry,
                                        kind, address, amount, total)
         VALUES (3, '{}', 0, 8, '{}', now(), '{r1}', 'Staked', '{bob}', 10, 10)",
        h64(904),
        h64(904)
    ))
    .await
    .unwrap();
    let e = c
        .query_one(&format!("SELECT nweb.refresh_stakes(ARRAY['{bob}'])"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.code().unwrap().code(), "55000");
    // A Slashed row without its split, or a Staked one without a total, is refused.
    let e = c
        .batch_execute(&format!(
            "INSERT INTO nweb.stake_events (chain_id, tx_hash, log_index, block_number, block_hash, block_time, registry,
                                            kind, address, amount)
             VALUES (3, '{}', 0, 7, '{}', now(), '{r1}', 'Staked', '{bob}', 3)",
            h64(902),
            h64(902)
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code().unwrap().code(), "23514");
    db.one::<i64>("SELECT nweb.chain_rollback(3, 0)").await;

    // The loader's role writes events and derives stakes; readers read them only.
    c.batch_execute("SET ROLE xray_ingest").await.unwrap();
    c.batch_execute(&format!(
        "INSERT INTO nweb.stake_events (chain_id, tx_hash, log_index, block_number, block_hash, block_time, registry,
                                        kind, address, amount, total)
         VALUES (4, '{}', 0, 1, '{}', now(), '{r1}', 'Staked', '{bob}', 2, 2);
         SELECT nweb.refresh_stakes(ARRAY['{bob}']);",
        h64(903),
        h64(903)
    ))
    .await
    .unwrap();
    c.batch_execute("SET ROLE xray_reader").await.unwrap();
    assert_eq!(db.one::<i64>("SELECT count(*) FROM nweb.stake_events").await, 2);
    let e = c
        .query_one(&format!("SELECT nweb.refresh_stakes(ARRAY['{bob}'])"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.code().unwrap().code(), "42501");
    c.batch_execute("RESET ROLE").await.unwrap();
    assert_eq!(stake_and_reputation(&db, bob).await, "2 0");

    // pg_dump / pg_restore keep the events and the stakes.
    let before = stake_snapshot(&db).await;
    let file = std::env::temp_dir().join(format!("{}.stakes.pgdump", db.name));
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
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
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
    assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));
    let restored = TestDb {
        name: name.clone(),
        url: url.clone(),
        client: connect(&url).await,
    };
    assert_eq!(stake_snapshot(&restored).await, before);
    assert!(before[0].starts_with("stake_events 2:"), "{before:?}");
    restored.finish().await;
    db.finish().await;
}

/// (stake, unbonding, unbonding_release_at, slashed) of nweb.stakes, GST text and unix seconds.
async fn db_stake_parts(db: &TestDb, who: Address) -> (String, String, Option<i64>, String) {
    let r = db
        .client
        .query_one(
            "SELECT trim_scale(stake)::text, trim_scale(unbonding)::text,
                    extract(epoch FROM unbonding_release_at)::bigint, trim_scale(slashed)::text
               FROM nweb.stakes WHERE address = $1",
            &[&hx(who.as_slice())],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

/// The registry's own view of the same: (stakeOf, unbonding amount, releaseAt or None).
async fn chain_stake_parts(p: &DynProvider, c: &Contracts, who: Address) -> (String, String, Option<i64>) {
    let u = view(p, c.stakes, Unbonding::unbondingCall { who }).await;
    (
        chain_stake(p, c, who).await,
        format_gst(u.amount),
        (u.amount > U256::ZERO).then_some(u.releaseAt as i64),
    )
}

/// Unstaked GST stays slashable while it unbonds (D34), and a slash takes it first: the
/// stake view shows active and unbonding GST apart, and a slash's two logs as one total
/// (docs/design.md D45). Compared with the registry's view functions at every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbonding_gst_and_what_a_slash_takes_from_it_are_shown() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let db = TestDb::new().await;
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let who = signer(1).address();
    let dir = tmp_dir("stakes-unbonding");
    let cfg = registry_config(&dir, &node.url, &c, "confirmations = 0\n");
    let args = ["tail", "--once", "--no-bundles", "--config", cfg.as_str()];
    let tail = || async {
        let run = loader(&db, &args).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    };

    let cid = Bundle::new("192.0.2.1", 1, 10).cid().to_string();
    submit(&p, &c, 1, &cid, "0x", 1).await;
    increase_time(&p, 72 * 3600 + 1).await;
    send(&p, who, c.stakes, IStakeRegistry::unstakeCall { amount: gst(50) }).await;
    tail().await;
    let (stake, unbonding, release) = chain_stake_parts(&p, &c, who).await;
    assert_eq!((stake.as_str(), unbonding.as_str()), ("950", "50"));
    assert!(release.is_some());
    assert_eq!(db_stake_parts(&db, who).await, (stake, unbonding, release, "0".to_string()));

    // Challenged on the earlier submission while unbonding, unanswered: 10 % of
    // 950 + 50, the 50 unbonding first, then 50 of the active stake.
    let id = challenge(&p, &c, 2, &cid).await;
    increase_time(&p, 72 * 3600 + 1).await;
    send(&p, signer(3).address(), c.slash, ISlashRouter::slashCall { challengeId: id }).await;
    tail().await;
    let (stake, unbonding, release) = chain_stake_parts(&p, &c, who).await;
    assert_eq!((stake.as_str(), unbonding.as_str(), release), ("900", "0", None));
    assert_eq!(db_stake_parts(&db, who).await, (stake, unbonding, None, "100".to_string()));
    let r = db
        .client
        .query_one(
            "SELECT trim_scale(from_active)::text, trim_scale(from_unbonding)::text, trim_scale(amount)::text,
                    trim_scale(bounty)::text, trim_scale(burned)::text, challenger
               FROM nweb.v_slashes WHERE address = $1",
            &[&hx(who.as_slice())],
        )
        .await
        .unwrap();
    let got: (String, String, String, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
    assert_eq!(
        got,
        (
            "50".into(),
            "50".into(),
            "100".into(),
            "50".into(),
            "50".into(),
            hx(signer(2).address().as_slice())
        )
    );
    // Slashed alone, as before, says only 50: what the view adds is the other half.
    assert_eq!(
        db.one::<String>("SELECT trim_scale(amount)::text FROM nweb.stake_events WHERE kind = 'Slashed'").await,
        "50"
    );

    // Unstaked again, then withdrawn after unbonding: nothing left unbonding.
    send(&p, who, c.stakes, IStakeRegistry::unstakeCall { amount: gst(100) }).await;
    tail().await;
    let (stake, unbonding, release) = chain_stake_parts(&p, &c, who).await;
    assert_eq!((stake.as_str(), unbonding.as_str()), ("800", "100"));
    assert_eq!(db_stake_parts(&db, who).await, (stake, unbonding, release, "100".to_string()));
    increase_time(&p, 7 * 24 * 3600 + 1).await;
    send(&p, who, c.stakes, Unbonding::withdrawCall {}).await;
    tail().await;
    let (stake, unbonding, release) = chain_stake_parts(&p, &c, who).await;
    assert_eq!((stake.as_str(), unbonding.as_str(), release), ("800", "0", None));
    assert_eq!(db_stake_parts(&db, who).await, (stake, unbonding, None, "100".to_string()));
    assert_eq!(
        db.one::<i64>("SELECT count(*) FROM nweb.stake_events WHERE kind IN ('Unbonding', 'UnbondingSlashed', 'Withdrawn')").await,
        4
    );

    // Rolled back to before the slash: the first unbonding is back, nothing slashed.
    let slash_block: i64 = db.one("SELECT block_number FROM nweb.stake_events WHERE kind = 'Slashed'").await;
    db.one::<i64>(&format!("SELECT nweb.chain_rollback(31337, {slash_block})")).await;
    let (_, unbonding, release, slashed) = db_stake_parts(&db, who).await;
    assert_eq!((unbonding.as_str(), release.is_some(), slashed.as_str()), ("50", true, "0"));
    db.finish().await;
}
