//! `xray-loader resolve`: the challenged subject's answer within grace, a Resolution with
//! slash = false (`SlashRouter.resolve`, docs/nweb-chain.md).
//!
//! 1. `--challenge` is checked as a bytes32; `--new-cid` must be spelled canonically
//!    (CIDv1, base32 lower case), the only spelling the contracts take, and is refused
//!    before anything is sent otherwise. `--bundle DIR` is verified as `submit` verifies it.
//! 2. The signer comes from the encrypted keystore (`[slasher] keystore`); only the
//!    subject may resolve, which the contract checks (`NotSubject`).
//! 3. With `--bundle`, the bundle is submitted first unless this address already did:
//!    the contract takes as `newCid` only a submission of the subject of the same kind.
//! 4. `SlashRouter.resolve(challengeId, notes, newCid)` is sent (`--dry-run` prints the
//!    calls instead). Stdout: `<challengeId>\tresolved\tnewCid=<cid|->\ttx=<hash>`.

use std::path::PathBuf;
use std::process::ExitCode;

use alloy::primitives::B256;
use anyhow::{bail, Result};
use nweb::rules::SubmissionKind;
use serde_json::json;

use super::submit::{self, parse_b256, parse_kind, plan_json, print, print_plan, Format, Submitted};
use crate::chain::abi::ISlashRouter;
use crate::chain::writer::canonical_cid;

/// `xray-loader resolve`.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// nweb configuration (TOML with [chain] incl. slash_router, and [slasher] keystore).
    #[arg(long)]
    pub config: PathBuf,
    /// The challenge to answer (its id, the ChallengeFiled attestation UID).
    #[arg(long, value_parser = parse_b256)]
    pub challenge: B256,
    /// A new bundle directory: submitted first when this address has not yet, then named as newCid.
    #[arg(long, value_name = "DIR", conflicts_with = "new_cid")]
    pub bundle: Option<PathBuf>,
    /// The CID of a bundle this address already submitted (or the challenged CID: available again).
    #[arg(long, value_name = "CID")]
    pub new_cid: Option<String>,
    /// Cost kind of --bundle when it is submitted (default: the manifest's).
    #[arg(long, value_parser = parse_kind, requires = "bundle")]
    pub kind: Option<SubmissionKind>,
    /// The Resolution's notes.
    #[arg(long, default_value = "")]
    pub notes: String,
    /// Print the calls that would be sent and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub async fn run(args: ResolveArgs) -> Result<ExitCode> {
    let new_cid = match &args.new_cid {
        Some(text) => {
            let canonical = canonical_cid(text).map_err(|e| anyhow::anyhow!("--new-cid: {e}"))?;
            if canonical != *text {
                bail!("--new-cid {text:?} is not canonical: the contracts take only {canonical:?}");
            }
            Some(canonical)
        }
        None => None,
    };
    let mut prepared = match &args.bundle {
        Some(dir) => Some(submit::prepare(dir, args.kind, None)?),
        None => None,
    };
    let (_cfg, w) = submit::open_writer(&args.config, "resolve")?;
    let mut submitted_now = None;
    let mut planned_submit = false;
    let new_cid = match prepared.as_mut() {
        Some(p) => {
            p.submission.subject = w.from;
            match submit::submit_prepared(&w, p, args.dry_run).await? {
                Submitted::Planned(plan) => {
                    print_plan(args.format, &plan)?;
                    planned_submit = true;
                }
                Submitted::Sent { uid, tx } => submitted_now = Some((uid, tx)),
                Submitted::Already { .. } => {}
            }
            p.cid.clone()
        }
        None => new_cid.unwrap_or_default(),
    };
    let router = w.slash_router();
    let call = ISlashRouter::resolveCall {
        challengeId: args.challenge,
        notes: args.notes.clone(),
        newCid: new_cid.clone(),
    };
    if args.dry_run {
        // Until the new bundle's submission exists the contract would refuse newCid, so
        // there is no estimate to show for the resolution yet.
        let gas = if planned_submit { None } else { Some(w.estimate(router, &call).await?) };
        let plan = plan_json(
            "SlashRouter.resolve",
            &w,
            router,
            gas,
            json!({"challengeId": args.challenge.to_string(), "notes": args.notes, "newCid": new_cid}),
        );
        print_plan(args.format, &plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    let receipt = w.send_call(router, call).await?;
    let shown = if new_cid.is_empty() { "-" } else { new_cid.as_str() };
    let value = json!({
        "challengeId": args.challenge.to_string(),
        "status": "resolved",
        "newCid": new_cid,
        "submission": submitted_now.map(|(uid, tx)| json!({"uid": uid.to_string(), "tx": tx.to_string()})),
        "tx": receipt.transaction_hash.to_string(),
    });
    print(
        args.format,
        &value,
        format!("{}\tresolved\tnewCid={shown}\ttx={}", args.challenge, receipt.transaction_hash),
    )?;
    Ok(ExitCode::SUCCESS)
}
