//! `xray-loader submit`, `resolve` and `slash` as an operator runs them: the built binary,
//! an encrypted keystore, a real anvil. Challenges are filed directly (as a challenger
//! would), so the flows of docs/nweb-chain.md run end to end without the slasher's probes.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::sol_types::SolEvent;
use serde_json::Value;

use crate::support::*;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn xray(args: &[&str]) -> Out {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_xray-loader"))
        .args(args)
        .env_remove("XRAY_LOG")
        .env_remove("XRAY_KEYSTORE_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A configuration whose [slasher] keystore holds dev key `key`, under `password`.
fn keyed_config(dir: &Path, node: &Node, c: &Contracts, key: usize, password: &str, given: &str) -> PathBuf {
    let d = dir.join(format!("key{key}"));
    std::fs::create_dir_all(&d).unwrap();
    let mut rng = rand::thread_rng();
    alloy::signers::local::PrivateKeySigner::encrypt_keystore(&d, &mut rng, signer(key).to_bytes(), password, Some("k.json"))
        .unwrap();
    std::fs::write(d.join("pass"), given).unwrap();
    let slasher = format!(
        "[slasher]\nkeystore = \"{}\"\npassword_file = \"{}\"\n",
        d.join("k.json").display(),
        d.join("pass").display()
    );
    config(&d, &node.url, c, "", "", &slasher)
}

fn bundle_dir(dir: &Path, name: &str, b: &Bundle) -> String {
    let d = dir.join(name);
    b.write_dir(&d);
    d.display().to_string()
}

async fn file_challenge(p: &DynProvider, c: &Contracts, from: usize, cid: &str) -> (B256, u64) {
    let mut reason = [0u8; 32];
    reason[..15].copy_from_slice(b"CID_UNAVAILABLE");
    let r = send(
        p,
        signer(from).address(),
        c.slash,
        ISlashRouter::challengeCall {
            jobId: B256::ZERO,
            cid: cid.into(),
            reasonCode: reason.into(),
            evidenceCid: "".into(),
        },
    )
    .await;
    let e = r
        .inner
        .logs()
        .iter()
        .find_map(|l| ISlashRouter::ChallengeOpened::decode_log(&l.inner).ok())
        .unwrap();
    (e.challengeId, e.graceEndsAt)
}

async fn first(p: &DynProvider, c: &Contracts, cid: &str) -> (B256, Address) {
    let f = view(p, c.submissions, ISubmissionRouter::firstSubmissionCall { cid: cid.into() }).await;
    (f.uid, f.submitter)
}

fn one_line_error(o: &Out) -> &str {
    assert_ne!(o.code, 0, "should fail: {}", o.stdout);
    assert_eq!(o.stderr.lines().count(), 1, "one line: {}", o.stderr);
    assert!(o.stderr.starts_with("xray-loader: "), "{}", o.stderr);
    o.stderr.trim_end()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_resolve_and_slash_from_the_loader() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let dir = tmp_dir("commands");
    let subject_cfg = keyed_config(&dir, &node, &c, 1, "pw-subject-1", "pw-subject-1\n");
    let keeper_cfg = keyed_config(&dir, &node, &c, 2, "pw-keeper-2", "pw-keeper-2");
    let subject_cfg = subject_cfg.to_str().unwrap();
    let keeper_cfg = keeper_cfg.to_str().unwrap();
    let (subject, challenger) = (signer(1).address(), signer(3).address());
    let (b1, b2, b3) = (Bundle::new("192.0.2.1", 1, 0), Bundle::new("192.0.2.1", 2, 0), Bundle::new("192.0.2.3", 3, 0));
    let (d1, d2, d3) = (bundle_dir(&dir, "b1", &b1), bundle_dir(&dir, "b2", &b2), bundle_dir(&dir, "b3", &b3));

    // submit: the UID printed is the one the chain recorded for the CID.
    let o = xray(&["submit", "--config", subject_cfg, "--bundle", &d1, "--format", "json"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["cid"], b1.cid().to_string());
    assert_eq!(v["kind"], "nmap-top1k");
    assert_eq!(v["status"], "submitted");
    let (uid, by) = first(&p, &c, &b1.cid().to_string()).await;
    assert_eq!(by, subject);
    assert_eq!(v["uid"], uid.to_string());
    // Run again (cron): nothing is sent, the same UID is printed.
    let o = xray(&["submit", "--config", subject_cfg, "--bundle", &d1]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with(&format!("{uid}\t{}\tnmap-top1k\talready-submitted", b1.cid())), "{}", o.stdout);

    // A challenge, answered with a new bundle that resolve submits first.
    let (id1, _) = file_challenge(&p, &c, 3, &b1.cid().to_string()).await;
    let o = xray(&["resolve", "--config", subject_cfg, "--challenge", &id1.to_string(), "--bundle", &d2, "--notes", "repinned"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with(&format!("{id1}\tresolved\tnewCid={}", b2.cid())), "{}", o.stdout);
    let case = view(&p, c.slash, ISlashRouter::casesCall { id: id1 }).await;
    assert!(case.closed && !case.slashed);
    assert_eq!(first(&p, &c, &b2.cid().to_string()).await.1, subject, "the new bundle was submitted");

    // Another challenge: no slash in grace, the deadline named.
    let o = xray(&["submit", "--config", subject_cfg, "--bundle", &d3]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let (id2, grace) = file_challenge(&p, &c, 3, &b3.cid().to_string()).await;
    let o = xray(&["slash", "--config", keeper_cfg, "--challenge", &id2.to_string()]).await;
    let e = one_line_error(&o);
    let deadline = chrono::DateTime::from_timestamp(grace as i64, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(e.contains("InGrace") && e.contains(&deadline) && e.contains(&grace.to_string()), "{e}");
    // Nothing is due yet either.
    let o = xray(&["slash", "--config", keeper_cfg, "--all-due"]).await;
    assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{}", o.stderr);

    let stake0 = view(&p, c.stakes, IStakeRegistry::stakeOfCall { who: subject }).await;
    let bal0 = view(&p, c.gst, IERC20::balanceOfCall { who: challenger }).await;
    increase_time(&p, 72 * 3600 + 60).await;
    let o = xray(&["slash", "--config", keeper_cfg, "--all-due"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the open challenge: {}", o.stdout);
    assert!(lines[0].starts_with(&format!("{id2}\tslashed\tamount=100 GST\tsubject={}", abi_addr(subject))), "{}", lines[0]);
    let stake1 = view(&p, c.stakes, IStakeRegistry::stakeOfCall { who: subject }).await;
    assert_eq!(stake0 - stake1, stake0 / U256::from(10u8), "10 % of the stake");
    let bal1 = view(&p, c.gst, IERC20::balanceOfCall { who: challenger }).await;
    assert_eq!(bal1 - bal0, gst(50) + gst(BOND_GST), "half the slash and the bond back");
    let case = view(&p, c.slash, ISlashRouter::casesCall { id: id2 }).await;
    assert!(case.closed && case.slashed);
    std::fs::remove_dir_all(&dir).ok();
}

fn abi_addr(a: Address) -> String {
    format!("{a:#x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_refuse_before_sending() {
    let node = Node::start().await;
    let p = provider(&node.url);
    let c = deploy_all(&p, Address::ZERO, &[1], 1000).await;
    let dir = tmp_dir("commands-refuse");
    let cfg = keyed_config(&dir, &node, &c, 1, "pw-subject-1", "pw-subject-1");
    let cfg = cfg.to_str().unwrap();
    let who = signer(1).address();
    let b = Bundle::new("192.0.2.9", 9, 0);
    let d = bundle_dir(&dir, "b", &b);
    let nonce0 = p.get_transaction_count(who).await.unwrap();

    // --dry-run shows the call and sends nothing.
    let o = xray(&["submit", "--config", cfg, "--bundle", &d, "--dry-run"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let prefix = format!("dry-run\tSubmissionRouter.submit\tfrom={}\tto={}\tgas=", abi_addr(who), abi_addr(c.submissions));
    assert!(o.stdout.starts_with(&prefix), "{}", o.stdout);
    assert!(o.stdout.contains(&b.cid().to_string()), "{}", o.stdout);
    let o = xray(&["submit", "--config", cfg, "--bundle", &d, "--dry-run", "--format", "json"]).await;
    let v: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert!(v["estimatedGas"].as_u64().unwrap() > 21_000, "{v}");
    assert_eq!(first(&p, &c, &b.cid().to_string()).await.1, Address::ZERO);

    // A cost kind the manifest does not make the bundle.
    let o = xray(&["submit", "--config", cfg, "--bundle", &d, "--kind", "nmap-full"]).await;
    let e = one_line_error(&o);
    assert!(e.contains("--kind nmap-full") && e.contains("nmap-top1k"), "{e}");
    // A kind the chain's kindAllowed refuses: an nmap dataset made by another tool.
    let mut odd = b.clone();
    odd.manifest["tool"] = "masscan".into();
    let od = bundle_dir(&dir, "odd", &odd);
    let o = xray(&["submit", "--config", cfg, "--bundle", &od]).await;
    let e = one_line_error(&o);
    assert!(e.contains("kindAllowed") && e.contains("masscan"), "{e}");

    // A non-canonical --new-cid: a CIDv0, and a CIDv1 in upper case.
    let id = B256::repeat_byte(1).to_string();
    let o = xray(&["resolve", "--config", cfg, "--challenge", &id, "--new-cid", "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"]).await;
    let e = one_line_error(&o);
    assert!(e.contains("--new-cid") && e.contains("CIDv0"), "{e}");
    let upper = b.cid().to_string().to_uppercase();
    let o = xray(&["resolve", "--config", cfg, "--challenge", &id, "--new-cid", &upper]).await;
    let e = one_line_error(&o);
    assert!(e.contains("--new-cid") && e.contains("not canonical") && e.contains(&b.cid().to_string()), "{e}");
    // A revert the contract decides is decoded by name.
    let o = xray(&["resolve", "--config", cfg, "--challenge", &id]).await;
    let e = one_line_error(&o);
    assert!(e.contains(&format!("UnknownChallenge {{ challengeId: {id} }}")), "{e}");

    // A wrong password: one line naming the keystore, never the password.
    let bad = keyed_config(&dir.join("bad"), &node, &c, 1, "pw-right-7a1", "pw-wrong-c3e");
    let o = xray(&["submit", "--config", bad.to_str().unwrap(), "--bundle", &d]).await;
    let e = one_line_error(&o);
    assert!(e.contains("cannot open the keystore") && e.contains("k.json"), "{e}");
    assert!(!e.contains("pw-wrong-c3e") && !e.contains("pw-right-7a1"), "{e}");

    assert_eq!(p.get_transaction_count(who).await.unwrap(), nonce0, "nothing was sent");
    std::fs::remove_dir_all(&dir).ok();
}
