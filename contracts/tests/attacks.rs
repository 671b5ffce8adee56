//! The contracts played as an attacker plays them (docs/design.md D33–D39): a griefing challenger, a
//! false resolution, a stake locked by re-filing, an unstake that would dodge a slash, a
//! variant CID spelling, a cost kind the bundle is not, and the test token in a
//! deployment.

use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::providers::DynProvider;
use alloy::sol_types::{SolEvent, SolValue};

use crate::support::*;

fn reason(s: &str) -> B256 {
    let mut b = [0u8; 32];
    b[..s.len()].copy_from_slice(s.as_bytes());
    B256::from(b)
}

fn chal(cid: &str) -> ISlashRouter::challengeCall {
    ISlashRouter::challengeCall {
        jobId: B256::repeat_byte(7),
        cid: cid.into(),
        reasonCode: reason("CID_UNAVAILABLE"),
        evidenceCid: "".into(),
    }
}

fn resolve(id: B256, new_cid: &str) -> ISlashRouter::resolveCall {
    ISlashRouter::resolveCall {
        challengeId: id,
        notes: "repinned".into(),
        newCid: new_cid.into(),
    }
}

async fn file(p: &DynProvider, c: &Contracts, from: usize, cid: &str) -> B256 {
    let r = send(p, signer(from).address(), c.slash, chal(cid)).await;
    let log = r
        .inner
        .logs()
        .iter()
        .find(|l| l.topic0() == Some(&IAttestor::ChallengeFiled::SIGNATURE_HASH))
        .unwrap();
    IAttestor::ChallengeFiled::decode_log_data(&log.inner.data).unwrap().uid
}

async fn balance(p: &DynProvider, c: &Contracts, who: Address) -> U256 {
    view(p, c.gst, IERC20::balanceOfCall { who }).await
}

async fn stake_of(p: &DynProvider, c: &Contracts, who: Address) -> U256 {
    view(p, c.stakes, IStakeRegistry::stakeOfCall { who }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_griefing_challenger_pays_a_bond_for_every_resolved_challenge() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let (submitter, griefer) = (signer(1).address(), signer(3).address());
    let cids: Vec<String> = (0..3).map(|i| test_cid(&format!("grief{i}"))).collect();
    for (i, cid) in cids.iter().enumerate() {
        submit(&p, &c, 1, cid, "0x", i as u8).await;
    }
    assert_eq!(view(&p, c.slash, ISlashRouter::challengeBondCall {}).await, gst(BOND_GST));

    // No bond, no challenge.
    send(&p, griefer, c.gst, IERC20::approveCall { spender: c.slash, amount: U256::ZERO }).await;
    let e = reverts(&p, griefer, c.slash, chal(&cids[0])).await;
    assert!(e.contains(&selector("BondNotPaid(address,uint256)")), "{e}");

    send(&p, griefer, c.gst, IERC20::approveCall { spender: c.slash, amount: U256::MAX }).await;
    let (g0, s0) = (balance(&p, &c, griefer).await, balance(&p, &c, submitter).await);
    let mut ids = Vec::new();
    for cid in &cids {
        ids.push(file(&p, &c, 3, cid).await);
    }
    assert_eq!(g0 - balance(&p, &c, griefer).await, gst(3 * BOND_GST), "three bonds taken");
    // The submitter answers late in grace; each resolution forfeits the griefer's bond to it.
    increase_time(&p, 71 * 3600).await;
    for id in &ids {
        send(&p, submitter, c.slash, resolve(*id, "")).await;
    }
    assert_eq!(balance(&p, &c, submitter).await - s0, gst(3 * BOND_GST));
    assert_eq!(balance(&p, &c, griefer).await, g0 - gst(3 * BOND_GST));
    increase_time(&p, 2 * 3600).await;
    for id in &ids {
        let e = reverts(&p, griefer, c.slash, ISlashRouter::slashCall { challengeId: *id }).await;
        assert!(e.contains(&selector("Closed(bytes32)")), "{e}");
    }
    assert_eq!(stake_of(&p, &c, submitter).await, gst(1000), "no free slash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_resolution_is_challenged_in_turn() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let c = deploy_all(&p, Address::ZERO, &[1, 2], 1000).await;
    let (submitter, other, challenger) = (signer(1).address(), signer(2).address(), signer(3).address());
    let (a, b, theirs) = (test_cid("orig"), test_cid("replacement"), test_cid("theirs"));
    submit(&p, &c, 1, &a, "0x", 1).await;
    submit(&p, &c, 2, &theirs, "0x", 2).await;
    let id = file(&p, &c, 3, &a).await;

    // A newCid nobody submitted, or someone else's: refused.
    let e = reverts(&p, submitter, c.slash, resolve(id, &b)).await;
    assert!(e.contains(&selector("NewCidNotSubmitted(string,address)")), "{e}");
    let e = reverts(&p, submitter, c.slash, resolve(id, &theirs)).await;
    assert!(e.contains(&selector("NewCidNotSubmitted(string,address)")), "{e}");
    // Nor one of the subject's own CIDs that is itself under challenge.
    let busy = test_cid("busy");
    submit(&p, &c, 1, &busy, "0x", 4).await;
    file(&p, &c, 2, &busy).await;
    let e = reverts(&p, submitter, c.slash, resolve(id, &busy)).await;
    assert!(e.contains(&selector("NewCidIsChallenged(string)")), "{e}");
    let _ = other;

    // Submitted by the subject (stake, quota and grace as any submission), then accepted.
    submit(&p, &c, 1, &b, "0x", 3).await;
    send(&p, submitter, c.slash, resolve(id, &b)).await;
    // The replacement is the subject's liability: challenged and, unanswered, slashed.
    let id2 = file(&p, &c, 3, &b).await;
    let cases = view(&p, c.slash, ISlashRouter::casesCall { id: id2 }).await;
    assert_eq!(cases.subject, submitter);
    increase_time(&p, 72 * 3600 + 1).await;
    let before = stake_of(&p, &c, submitter).await;
    send(&p, challenger, c.slash, ISlashRouter::slashCall { challengeId: id2 }).await;
    assert_eq!(stake_of(&p, &c, submitter).await, before - before / U256::from(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refiling_after_each_resolution_cannot_lock_a_stake_for_ever() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let (submitter, griefer) = (signer(1).address(), signer(3).address());
    let a = test_cid("locked");
    submit(&p, &c, 1, &a, "0x", 1).await;
    for _ in 0..2 {
        let id = file(&p, &c, 3, &a).await;
        send(&p, submitter, c.slash, resolve(id, "")).await;
    }
    let e = reverts(&p, griefer, c.slash, chal(&a)).await;
    assert!(e.contains(&selector("RechallengeLimit(string,uint256)")), "{e}");
    let key = keccak256((griefer, keccak256(a.as_bytes())).abi_encode_packed());
    assert_eq!(
        view(&p, c.slash, SlashExtras::resolvedAgainstCall { key }).await,
        U256::from(2)
    );
    // Nothing stays open, so once the submission's grace is over the stake can leave.
    increase_time(&p, 72 * 3600 + 1).await;
    send(&p, submitter, c.stakes, IStakeRegistry::unstakeCall { amount: gst(1) }).await;
    // The bound is per challenger: another one may still challenge the CID.
    file(&p, &c, 2, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstaking_then_unpinning_does_not_dodge_the_slash() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let (submitter, challenger) = (signer(1).address(), signer(2).address());
    let a = test_cid("dodge");
    submit(&p, &c, 1, &a, "0x", 1).await;
    increase_time(&p, 72 * 3600 + 1).await;
    // All of it, the moment the last submission's grace ends (then the bundle is unpinned).
    send(&p, submitter, c.stakes, IStakeRegistry::unstakeCall { amount: gst(1000) }).await;
    assert_eq!(stake_of(&p, &c, submitter).await, U256::ZERO);
    let e = reverts(&p, submitter, c.stakes, Unbonding::withdrawCall {}).await;
    assert!(e.contains(&selector("Locked(string)")), "still unbonding: {e}");

    // A challenger notices within the unbonding period.
    increase_time(&p, 24 * 3600).await;
    let id = file(&p, &c, 2, &a).await;
    increase_time(&p, 72 * 3600 + 1).await;
    let c0 = balance(&p, &c, challenger).await;
    send(&p, challenger, c.slash, ISlashRouter::slashCall { challengeId: id }).await;
    assert_eq!(
        balance(&p, &c, challenger).await - c0,
        gst(50) + gst(BOND_GST),
        "half of 10 % of the unbonding GST, and the bond back"
    );
    let u = view(&p, c.stakes, Unbonding::unbondingCall { who: submitter }).await;
    assert_eq!(u.amount, gst(900));
    increase_time(&p, 7 * 24 * 3600).await;
    let s0 = balance(&p, &c, submitter).await;
    send(&p, submitter, c.stakes, Unbonding::withdrawCall {}).await;
    assert_eq!(balance(&p, &c, submitter).await - s0, gst(900));
}

/// RFC 4648 base32, lower-case, unpadded: enough to spell a CID's bytes by hand.
fn base32(bytes: &[u8]) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let (mut out, mut acc, mut bits) = (String::new(), 0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(A[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(A[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variant_cid_spellings_are_refused() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let who = signer(1).address();
    let cid = Bundle::new("192.0.2.7", 7, 10).cid();
    let canonical = cid.to_string();
    assert_eq!(format!("b{}", base32(&cid.to_bytes())), canonical);
    // The last character with a trailing bit set: decodes to the same bytes elsewhere.
    let mut trailing = canonical.clone();
    let last = trailing.pop().unwrap();
    let idx = b"abcdefghijklmnopqrstuvwxyz234567".iter().position(|x| *x as char == last).unwrap();
    trailing.push(b"abcdefghijklmnopqrstuvwxyz234567"[idx | 1] as char);
    assert_ne!(trailing, canonical);
    let v0 = nweb::Cid::new_v0(*cid.hash()).unwrap();
    let variants = [
        canonical.to_uppercase(),
        format!("/ipfs/{canonical}"),
        format!("{canonical}/manifest.json"),
        v0.to_string(),
        format!("b{}", base32(&v0.to_bytes())),
        format!("{canonical}="),
        format!("{canonical}a"),
        trailing,
    ];
    for v in &variants {
        let e = reverts(
            &p,
            who,
            c.submissions,
            ISubmissionRouter::submitCall {
                submission: submission(who, v, "0x", 1),
                kind: ISubmissionRouter::Kind::NmapTop1k,
            },
        )
        .await;
        assert!(e.contains(&selector("NonCanonicalCid(string,string)")), "{v}: {e}");
    }
    submit(&p, &c, 1, &canonical, "0x", 1).await;
    let e = reverts(&p, signer(2).address(), c.slash, chal(&canonical.to_uppercase())).await;
    assert!(e.contains(&selector("NonCanonicalCid(string,string)")), "{e}");
    file(&p, &c, 2, &canonical).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_kind_the_dataset_type_does_not_allow_is_refused() {
    use ISubmissionRouter::Kind;
    let node = Node::start().await;
    let p = provider(&node.url);
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let who = signer(1).address();
    let with = |dataset: &str, tool: &str, n: u8| {
        let mut s = submission(who, &test_cid(&format!("kind{n}")), "0x", n);
        s.datasetType = dataset.into();
        s.tool = tool.into();
        s
    };
    for (n, dataset, tool, kind, err) in [
        (1, "masscan", "masscan", Kind::NmapFull, "KindMismatch(string,string,uint8)"),
        (2, "nmap", "nmap", Kind::MasscanQuick, "KindMismatch(string,string,uint8)"),
        (3, "nmap", "masscan", Kind::NmapTop1k, "KindMismatch(string,string,uint8)"),
        (4, "diff", "nmap", Kind::NmapFull, "KindMismatch(string,string,uint8)"),
        (5, "zmap", "zmap", Kind::MasscanQuick, "UnknownDatasetType(string)"),
    ] {
        let e = reverts(
            &p,
            who,
            c.submissions,
            ISubmissionRouter::submitCall {
                submission: with(dataset, tool, n),
                kind,
            },
        )
        .await;
        assert!(e.contains(&selector(err)), "{dataset}/{tool} as kind {}: {e}", kind as u8);
    }
    for (n, dataset, tool, kind) in [
        (11, "masscan", "masscan", Kind::MasscanQuick),
        (12, "nmap", "nmap", Kind::NmapFull),
        (13, "enrich", "xray-enrich", Kind::DiffEnrich),
    ] {
        send(
            &p,
            who,
            c.submissions,
            ISubmissionRouter::submitCall {
                submission: with(dataset, tool, n),
                kind,
            },
        )
        .await;
    }
}

#[test]
fn the_open_mint_token_is_not_in_the_deployed_build() {
    let out = tmp_dir("deployed-build");
    let status = std::process::Command::new("node")
        .arg(contracts_dir().join("scripts/compile.cjs"))
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"SlashRouter.json".to_string()), "{names:?}");
    for n in &names {
        let text = std::fs::read_to_string(out.join(n)).unwrap();
        assert!(!text.contains("\"mint\""), "{n} has a mint function");
    }
    assert!(!names.iter().any(|n| n.contains("TestGST")), "{names:?}");
    std::fs::remove_dir_all(&out).unwrap();
}
