//! The MVP rules as deployed: stake minimum, quota, costs, grace, the 10 %
//! slash and its 50/50 split, EAS schema UIDs.

use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::{SolEvent, SolType, SolValue};
use nweb::rules::{quota_units, Decimal};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_enforce_the_mvp_rules() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let (owner, submitter, challenger, oracle) = (
        signer(0).address(),
        signer(1).address(),
        signer(2).address(),
        signer(3).address(),
    );
    let c = deploy_all(&p, oracle, &[1, 2], 0).await;

    // Schema UIDs are EAS's: keccak256(abi.encodePacked(schema, resolver 0, revocable false)).
    let schema = "address subject,bytes32 jobId,string namespace,string datasetType,string cid,bytes32 merkleRoot,string targetSpecCid,uint64 startedAt,uint64 finishedAt,string tool,string version,string vantage,string manifestSha256,bytes extra";
    let want = keccak256((schema.to_string(), Address::ZERO, false).abi_encode_packed());
    assert_eq!(view(&p, c.attestor, IAttestor::scanSubmissionSchemaCall {}).await, want);

    // No stake, then 99 GST: refused; ScanSubmissions only through the router.
    let e = reverts(
        &p,
        submitter,
        c.submissions,
        ISubmissionRouter::submitCall {
            submission: submission(submitter, &test_cid("a"), "0x", 1),
            kind: ISubmissionRouter::Kind::NmapTop1k,
        },
    )
    .await;
    assert!(e.contains(&selector("StakeTooLow(uint256)")), "{e}");
    send(&p, submitter, c.stakes, IStakeRegistry::stakeCall { amount: gst(99) }).await;
    let e = reverts(
        &p,
        submitter,
        c.submissions,
        ISubmissionRouter::submitCall {
            submission: submission(submitter, &test_cid("a"), "0x", 1),
            kind: ISubmissionRouter::Kind::NmapTop1k,
        },
    )
    .await;
    assert!(e.contains(&selector("StakeTooLow(uint256)")), "{e}");
    let e = reverts(
        &p,
        submitter,
        c.attestor,
        IRoutedAttestor::attestScanSubmissionCall {
            attester: submitter,
            s: submission(submitter, &test_cid("a"), "0x", 1),
        },
    )
    .await;
    assert!(
        e.contains(&selector("NotAuthorized()")),
        "only through the SubmissionRouter: {e}"
    );

    // 100 GST: quota floor(sqrt(100)) = 10 units, nmap-top1k costs 2.
    send(&p, submitter, c.stakes, IStakeRegistry::stakeCall { amount: gst(1) }).await;
    assert_eq!(
        view(&p, c.stakes, IStakeRegistry::quotaUnitsCall { who: submitter }).await,
        U256::from(10)
    );
    let mut first_receipt = None;
    for i in 0..5u8 {
        let r = submit(&p, &c, 1, &test_cid(&format!("q{i}")), "0x", i).await;
        first_receipt.get_or_insert(r);
    }
    assert_eq!(
        view(
            &p,
            c.submissions,
            ISubmissionRouter::remainingUnitsCall { who: submitter }
        )
        .await,
        U256::ZERO
    );
    let e = reverts(
        &p,
        submitter,
        c.submissions,
        ISubmissionRouter::submitCall {
            submission: submission(submitter, &test_cid("q5"), "0x", 9),
            kind: ISubmissionRouter::Kind::NmapTop1k,
        },
    )
    .await;
    assert!(e.contains(&selector("QuotaExceeded(uint256,uint256,uint256)")), "{e}");

    // The first submission's UID is EAS's, over the fields' encoding, bump 0.
    let r = first_receipt.unwrap();
    let log = r
        .inner
        .logs()
        .iter()
        .find(|l| l.topic0() == Some(&IAttestor::ScanSubmitted::SIGNATURE_HASH))
        .unwrap();
    let ev = IAttestor::ScanSubmitted::decode_log_data(&log.inner.data).unwrap();
    let t = p
        .get_block_by_number(r.block_number.unwrap().into())
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp;
    let data = <IAttestor::ScanSubmission as SolType>::abi_encode_params(&ev.submission);
    assert_eq!(
        &<IAttestor::ScanSubmission as SolType>::abi_encode(&ev.submission)[32..],
        &data[..],
        "EAS data is the fields' encoding"
    );
    let uid = keccak256(
        (
            want,
            submitter,
            submitter,
            t,
            0u64,
            false,
            B256::ZERO,
            alloy::primitives::Bytes::from(data),
            0u32,
        )
            .abi_encode_packed(),
    );
    assert_eq!(ev.uid, uid);
    let eas = r
        .inner
        .logs()
        .iter()
        .find(|l| l.topic0() == Some(&IAttestor::Attested::SIGNATURE_HASH))
        .unwrap();
    assert_eq!(
        IAttestor::Attested::decode_log_data(&eas.inner.data).unwrap().uid,
        uid,
        "EAS's event carries the same UID"
    );

    // The window rolls: 24 h later the quota is back.
    increase_time(&p, 24 * 3600).await;
    assert_eq!(
        view(
            &p,
            c.submissions,
            ISubmissionRouter::remainingUnitsCall { who: submitter }
        )
        .await,
        U256::from(10)
    );

    // quotaUnits equals the nweb crate's exact formula for stakes and rep factors.
    for (extra, rep_micros, rep) in [
        ("0", 0u64, "0"),
        ("50.5", 500_000, "0.5"),
        ("2399.75", 999_999, "0.999999"),
        ("7000", 123_456, "0.123456"),
    ] {
        let wei = gst_wei(extra);
        if wei > U256::ZERO {
            send(&p, challenger, c.stakes, IStakeRegistry::stakeCall { amount: wei }).await;
        }
        send(
            &p,
            oracle,
            c.stakes,
            StakeAdmin::setRepFactorCall {
                who: challenger,
                micros: U256::from(rep_micros),
            },
        )
        .await;
        let stake = view(&p, c.stakes, IStakeRegistry::stakeOfCall { who: challenger }).await;
        let on_chain = view(&p, c.stakes, IStakeRegistry::quotaUnitsCall { who: challenger }).await;
        let stake_dec: Decimal = format_gst(stake).parse().unwrap();
        let want = quota_units(&stake_dec, &rep.parse().unwrap());
        assert_eq!(
            on_chain,
            U256::from(want),
            "stake {} GST, repFactor {rep}",
            format_gst(stake)
        );
    }
    let e = reverts(
        &p,
        owner,
        c.stakes,
        StakeAdmin::setRepFactorCall {
            who: challenger,
            micros: U256::from(1),
        },
    )
    .await;
    assert!(e.contains(&selector("NotAuthorized()")), "only the oracle: {e}");

    // Unstaking waits for the grace after the last submission.
    let e = reverts(&p, submitter, c.stakes, IStakeRegistry::unstakeCall { amount: gst(1) }).await;
    assert!(e.contains(&selector("Locked(string)")), "{e}");

    // Challenges: reason codes, first submission, one open challenge per CID.
    let reason = |s: &str| {
        let mut b = [0u8; 32];
        b[..s.len()].copy_from_slice(s.as_bytes());
        B256::from(b)
    };
    let q0 = test_cid("q0");
    let chal = |cid: &str, why: &str| ISlashRouter::challengeCall {
        jobId: B256::repeat_byte(7),
        cid: cid.into(),
        reasonCode: reason(why),
        evidenceCid: "".into(),
    };
    let e = reverts(&p, challenger, c.slash, chal(&q0, "NOT_A_REASON")).await;
    assert!(e.contains(&selector("UnknownReason(bytes32)")), "{e}");
    let e = reverts(&p, challenger, c.slash, chal(&test_cid("never"), "CID_UNAVAILABLE")).await;
    assert!(e.contains(&selector("NotSubmitted(string)")), "{e}");
    let r = send(&p, challenger, c.slash, chal(&q0, "CID_UNAVAILABLE")).await;
    let filed = r
        .inner
        .logs()
        .iter()
        .find(|l| l.topic0() == Some(&IAttestor::ChallengeFiled::SIGNATURE_HASH))
        .unwrap();
    let filed = IAttestor::ChallengeFiled::decode_log_data(&filed.inner.data).unwrap();
    assert_eq!(filed.attester, challenger);
    let t = p
        .get_block_by_number(r.block_number.unwrap().into())
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp;
    assert_eq!(filed.challenge.graceEndsAt, t + 72 * 3600);
    let id1 = filed.uid;
    let e = reverts(&p, challenger, c.slash, chal(&q0, "FORMAT_INVALID")).await;
    assert!(e.contains(&selector("AlreadyChallenged(bytes32)")), "{e}");
    assert_eq!(
        view(&p, c.slash, SlashCases::openChallengesCall { who: submitter }).await,
        U256::from(1)
    );
    let e = reverts(&p, submitter, c.stakes, IStakeRegistry::unstakeCall { amount: gst(1) }).await;
    assert!(e.contains(&selector("Locked(string)")), "{e}");

    // Only the subject resolves, within grace; then the CID may be challenged again.
    let e = reverts(
        &p,
        challenger,
        c.slash,
        ISlashRouter::resolveCall {
            challengeId: id1,
            notes: "".into(),
            newCid: "".into(),
        },
    )
    .await;
    assert!(e.contains(&selector("NotSubject(address)")), "{e}");
    let r = send(
        &p,
        submitter,
        c.slash,
        ISlashRouter::resolveCall {
            challengeId: id1,
            notes: "repinned".into(),
            newCid: "".into(),
        },
    )
    .await;
    let res = r
        .inner
        .logs()
        .iter()
        .find(|l| l.topic0() == Some(&IAttestor::ChallengeResolved::SIGNATURE_HASH))
        .unwrap();
    let res = IAttestor::ChallengeResolved::decode_log_data(&res.inner.data).unwrap();
    assert_eq!(
        (res.attester, res.resolution.challengeId, res.resolution.slash),
        (submitter, id1, false)
    );
    assert_eq!(
        view(&p, c.slash, SlashCases::openChallengesCall { who: submitter }).await,
        U256::ZERO
    );

    // A second challenge runs out of grace: slashed 10 %, half to the challenger, half burned.
    let r = send(&p, challenger, c.slash, chal(&q0, "CID_HASH_MISMATCH")).await;
    let id2 = IAttestor::ChallengeFiled::decode_log_data(
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
    let e = reverts(&p, owner, c.slash, ISlashRouter::slashCall { challengeId: id2 }).await;
    assert!(e.contains(&selector("InGrace(uint64)")), "{e}");
    increase_time(&p, 72 * 3600 + 1).await;
    let e = reverts(
        &p,
        submitter,
        c.slash,
        ISlashRouter::resolveCall {
            challengeId: id2,
            notes: "".into(),
            newCid: "".into(),
        },
    )
    .await;
    assert!(e.contains(&selector("GraceOver(uint64)")), "{e}");
    let stake_before = view(&p, c.stakes, IStakeRegistry::stakeOfCall { who: submitter }).await;
    let bal_before = view(&p, c.gst, IERC20::balanceOfCall { who: challenger }).await;
    let dead: Address = "0x000000000000000000000000000000000000dEaD".parse().unwrap();
    let r = send(&p, owner, c.slash, ISlashRouter::slashCall { challengeId: id2 }).await;
    let slashed = stake_before / U256::from(10);
    assert_eq!(
        view(&p, c.stakes, IStakeRegistry::stakeOfCall { who: submitter }).await,
        stake_before - slashed
    );
    assert_eq!(
        view(&p, c.gst, IERC20::balanceOfCall { who: challenger }).await - bal_before,
        slashed / U256::from(2) + gst(BOND_GST),
        "the bounty and the bond back"
    );
    assert_eq!(
        view(&p, c.gst, IERC20::balanceOfCall { who: dead }).await,
        slashed - slashed / U256::from(2)
    );
    let res = r
        .inner
        .logs()
        .iter()
        .find(|l| l.topic0() == Some(&IAttestor::ChallengeResolved::SIGNATURE_HASH))
        .unwrap();
    let res = IAttestor::ChallengeResolved::decode_log_data(&res.inner.data).unwrap();
    assert!(res.resolution.slash);
    assert_eq!(res.resolution.slashAmount, slashed);
    let e = reverts(&p, owner, c.slash, ISlashRouter::slashCall { challengeId: id2 }).await;
    assert!(e.contains(&selector("Closed(bytes32)")), "slashed once: {e}");
    // Past the grace of the last submission and with nothing open, unstaking works; the
    // GST comes out after the unbonding period.
    send(&p, submitter, c.stakes, IStakeRegistry::unstakeCall { amount: gst(1) }).await;
    let e = reverts(&p, submitter, c.stakes, Unbonding::withdrawCall {}).await;
    assert!(e.contains(&selector("Locked(string)")), "{e}");
    increase_time(&p, 7 * 24 * 3600).await;
    let before = view(&p, c.gst, IERC20::balanceOfCall { who: submitter }).await;
    send(&p, submitter, c.stakes, Unbonding::withdrawCall {}).await;
    assert_eq!(
        view(&p, c.gst, IERC20::balanceOfCall { who: submitter }).await - before,
        gst(1)
    );
}

