//! `xray-loader slash`: executes `SlashRouter.slash` on challenges whose grace ended
//! without a Resolution (10 % of the subject's stake; half and the bond to the
//! challenger, half burned; docs/nweb-chain.md). Anyone may call it.
//!
//! 1. `--challenge ID` (repeatable) or `--all-due`: every challenge the SlashRouter
//!    opened (its ChallengeOpened logs from `chain.start_block`, in ranges of
//!    `chain.max_block_range`) that is still open and whose graceEndsAt is before the
//!    latest block's time. The chain is read rather than nweb.v_slashable_challenges
//!    because grace is measured by block time, which the database's now() is not.
//! 2. The signer comes from the encrypted keystore (`[slasher] keystore`).
//! 3. Each challenge is slashed (`--dry-run`: the call and its estimated gas). A challenge
//!    still in grace is refused by the contract (`InGrace`), reported with its deadline.
//! 4. Stdout: `<challengeId>\tslashed\tamount=<GST>\tsubject=<addr>\tchallenger=<addr>\ttx=<hash>`
//!    per challenge. Exit 1 when one failed.

use std::path::PathBuf;
use std::process::ExitCode;

use alloy::primitives::B256;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use anyhow::{anyhow, Result};
use serde_json::json;

use super::submit::{self, parse_b256, plan_json, print, print_plan, Format};
use crate::chain::abi::{self, ISlashRouter};
use crate::chain::writer::Writer;
use crate::output::fail;

/// `xray-loader slash`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["challenge", "all_due"])))]
pub struct SlashArgs {
    /// nweb configuration (TOML with [chain] incl. slash_router, and [slasher] keystore).
    #[arg(long)]
    pub config: PathBuf,
    /// Slash this challenge (repeatable).
    #[arg(long, value_parser = parse_b256)]
    pub challenge: Vec<B256>,
    /// Slash every open challenge whose grace has ended, read from the chain.
    #[arg(long)]
    pub all_due: bool,
    /// Print the calls that would be sent and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The open challenges past grace, oldest first.
async fn due(w: &Writer, from_block: u64, range: u64) -> Result<Vec<B256>> {
    let head = w.block_number().await?;
    let now = w.chain_time().await?;
    let router = w.slash_router();
    let mut ids = Vec::new();
    let mut at = from_block;
    while at <= head {
        let to = head.min(at.saturating_add(range.max(1) - 1));
        let filter = Filter::new()
            .address(router)
            .event_signature(ISlashRouter::ChallengeOpened::SIGNATURE_HASH)
            .from_block(at)
            .to_block(to);
        for log in w.logs(&filter).await? {
            let e = ISlashRouter::ChallengeOpened::decode_log(&log.inner)
                .map_err(|e| anyhow!("a ChallengeOpened log does not decode: {e}"))?;
            ids.push(e.challengeId);
        }
        at = to + 1;
    }
    let mut out = Vec::new();
    for id in ids {
        let case = w.view(router, ISlashRouter::casesCall { id }).await?;
        // slash needs block.timestamp > graceEndsAt; the next block is at least `now`.
        if !case.closed && case.graceEndsAt < now {
            out.push(id);
        }
    }
    Ok(out)
}

async fn slash_one(w: &Writer, id: B256, args: &SlashArgs) -> Result<()> {
    let router = w.slash_router();
    let call = ISlashRouter::slashCall { challengeId: id };
    if args.dry_run {
        let gas = w.estimate(router, &call).await?;
        let plan = plan_json("SlashRouter.slash", w, router, Some(gas), json!({"challengeId": id.to_string()}));
        return print_plan(args.format, &plan);
    }
    let case = w.view(router, ISlashRouter::casesCall { id }).await?;
    let receipt = w.send_call(router, call).await?;
    let amount = receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == router)
        .find_map(|l| ISlashRouter::ChallengeClosed::decode_log(&l.inner).ok())
        .map(|e| e.amount)
        .ok_or_else(|| anyhow!("transaction {} has no ChallengeClosed log", receipt.transaction_hash))?;
    let value = json!({
        "challengeId": id.to_string(),
        "status": "slashed",
        "amountWei": amount.to_string(),
        "amountGst": abi::gst_text(amount),
        "subject": abi::addr(&case.subject),
        "challenger": abi::addr(&case.challenger),
        "tx": receipt.transaction_hash.to_string(),
    });
    print(
        args.format,
        &value,
        format!(
            "{id}\tslashed\tamount={} GST\tsubject={}\tchallenger={}\ttx={}",
            abi::gst_text(amount),
            abi::addr(&case.subject),
            abi::addr(&case.challenger),
            receipt.transaction_hash
        ),
    )
}

pub async fn run(args: SlashArgs) -> Result<ExitCode> {
    let (cfg, w) = submit::open_writer(&args.config, "slash")?;
    let chain = cfg.chain()?;
    let ids = if args.all_due {
        due(&w, chain.start_block, chain.max_block_range).await?
    } else {
        args.challenge.clone()
    };
    let mut failed = false;
    for id in ids {
        if let Err(e) = slash_one(&w, id, &args).await {
            fail(format!("challenge {id}: {e:#}"));
            failed = true;
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
