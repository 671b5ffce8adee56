//! `xray-loader submit`: a collector's ScanSubmission of one bundle directory, sent
//! through the SubmissionRouter (docs/nweb.md §5 schema A, docs/nweb-chain.md).
//!
//! 1. `--job-id` and `--kind` are checked as values; the configuration is loaded.
//! 2. The bundle directory is read (`ipfs::hoarder::read_bundle_dir`), its CID computed as
//!    Kubo would add it, and the bundle verified with `nweb::bundle::verify`: an invalid
//!    bundle is refused (it would be challenged as FORMAT_INVALID or CID_HASH_MISMATCH).
//! 3. The cost kind is the one the manifest makes it (its `profile`, else the scan
//!    options); `--kind` must agree, since the indexer checks the same against the
//!    manifest. The chain's own rule (`SubmissionRouter.kindAllowed`) is asked before
//!    anything is sent.
//! 4. The signer comes from the encrypted keystore (`[slasher] keystore`).
//! 5. A CID this address has already submitted is not sent again (it would only spend
//!    quota); the existing UID is printed. `--dry-run` prints the call and its estimated gas.
//! 6. Stdout: `<uid>\t<cid>\t<kind>\t<status>\ttx=<hash>` (or JSON with `--format json`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy::primitives::{Address, Bytes, B256};
use alloy::sol_types::SolEvent;
use anyhow::{anyhow, bail, Context, Result};
use nweb::bundle::{self, BundleInput, Status};
use nweb::rules::SubmissionKind;
use serde_json::{json, Value};

use crate::chain::abi::{self, ISubmissionRouter, ScanSubmission};
use crate::chain::config::NwebConfig;
use crate::chain::writer::{self, canonical_cid, Writer};
use crate::ipfs::hoarder::read_bundle_dir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tab-separated fields, one line per transaction.
    Text,
    /// One JSON object per line.
    Json,
}

/// `xray-loader submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// nweb configuration (TOML with [chain] incl. slash_router, and [slasher] keystore).
    #[arg(long)]
    pub config: PathBuf,
    /// The bundle directory (manifest.json, scanprint/, raw/), as `collect` writes it.
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Cost kind: masscan-quick, nmap-top1k, nmap-full, diff or enrich (default: the manifest's).
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<SubmissionKind>,
    /// The job this scan answers (0x + 64 hex digits); default zero (no job).
    #[arg(long, value_parser = parse_b256)]
    pub job_id: Option<B256>,
    /// Print the call that would be sent, with its estimated gas, and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn parse_kind(s: &str) -> Result<SubmissionKind, String> {
    s.parse()
}

pub fn parse_b256(s: &str) -> Result<B256, String> {
    s.parse::<B256>()
        .map_err(|_| format!("{s:?} is not 0x and 64 hex digits"))
}

/// A verified bundle and the ScanSubmission that attests it.
pub struct Prepared {
    pub cid: String,
    pub kind: SubmissionKind,
    pub submission: ScanSubmission,
}

/// Reads, hashes and verifies a bundle directory and builds its ScanSubmission. Every
/// claim is taken from the bundle itself, so that the slasher's check of the attested
/// claims against the manifest (`AttestedClaims::mismatch`) finds nothing.
/// The subject is left zero for the caller to fill in once the keystore is open.
pub fn prepare(dir: &Path, kind: Option<SubmissionKind>, job_id: Option<B256>) -> Result<Prepared> {
    let shown = dir.display();
    let files = read_bundle_dir(dir).with_context(|| format!("--bundle {shown}"))?;
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    let cid = nweb::unixfs::directory_cid(&refs).map_err(|e| anyhow!("--bundle {shown}: {e}"))?;
    let cid = canonical_cid(&cid.to_string())?;
    let text = |path: &str| -> Result<Option<&str>> {
        match files.iter().find(|(p, _)| p == path) {
            None => Ok(None),
            Some((_, d)) => std::str::from_utf8(d)
                .map(Some)
                .map_err(|_| anyhow!("--bundle {shown}: {path} is not UTF-8")),
        }
    };
    let manifest_text = text(bundle::MANIFEST_PATH)?;
    let scanprint_path = manifest_text
        .and_then(|t| bundle::parse_manifest(t).ok())
        .map(|m| m.scanprint_path)
        .unwrap_or_else(|| bundle::SCANPRINT_PATH.to_string());
    let sha: BTreeMap<String, String> = files
        .iter()
        .map(|(p, d)| (p.clone(), bundle::sha256_hex(d)))
        .collect();
    let verdict = bundle::verify(&BundleInput {
        manifest: manifest_text,
        scanprint: text(&scanprint_path)?,
        file_sha256: &sha,
        attested_merkle_root: None,
    });
    if verdict.status != Status::Verified {
        bail!(
            "--bundle {shown}: the bundle is invalid ({}: {}); it would be challenged, so it is not submitted",
            verdict.reason.map_or("?", |r| r.as_str()),
            verdict.reason_detail.as_deref().unwrap_or("")
        );
    }
    let m = verdict.manifest.expect("a verified bundle has a manifest");
    let derived = verdict
        .cost_kind
        .as_deref()
        .and_then(|k| k.parse::<SubmissionKind>().ok())
        .ok_or_else(|| anyhow!("--bundle {shown}: manifest.datasetType {:?} has no cost kind", m.dataset_type))?;
    let kind = match kind {
        Some(k) if k != derived => bail!(
            "--kind {}: the bundle's manifest makes it {} (its profile or scan options), and the indexer prices it so",
            k.as_str(),
            derived.as_str()
        ),
        _ => derived,
    };
    let manifest_bytes = manifest_text.expect("verified").as_bytes();
    let submission = ScanSubmission {
        subject: Address::ZERO,
        jobId: job_id.unwrap_or(B256::ZERO),
        namespace: m.namespace.clone(),
        datasetType: m.dataset_type.clone(),
        cid: cid.clone(),
        merkleRoot: m
            .merkle_root
            .parse()
            .map_err(|_| anyhow!("manifest.scanprint.merkleRoot {:?} is not 32 bytes of hex", m.merkle_root))?,
        targetSpecCid: m.target_spec_cid.clone().unwrap_or_default(),
        startedAt: m.started_at,
        finishedAt: m.finished_at,
        tool: m.tool.clone(),
        version: m.tool_version.clone(),
        vantage: m.vantage.clone(),
        manifestSha256: bundle::sha256_hex(manifest_bytes),
        extra: Bytes::new(),
    };
    Ok(Prepared { cid, kind, submission })
}

pub fn abi_kind(k: SubmissionKind) -> ISubmissionRouter::Kind {
    match k {
        SubmissionKind::MasscanQuick => ISubmissionRouter::Kind::MasscanQuick,
        SubmissionKind::NmapTop1k => ISubmissionRouter::Kind::NmapTop1k,
        SubmissionKind::NmapFull => ISubmissionRouter::Kind::NmapFull,
        SubmissionKind::DiffEnrich => ISubmissionRouter::Kind::DiffEnrich,
    }
}

/// The configuration and a writer signing with the keystore's key. Keys come only from
/// the encrypted keystore: there is no flag or variable that takes a raw key.
pub fn open_writer(config: &Path, what: &str) -> Result<(NwebConfig, Writer)> {
    let cfg = NwebConfig::load(config)?;
    let chain = cfg.chain()?;
    let signer = writer::open_keystore(&cfg.slasher)?
        .ok_or_else(|| anyhow!("{what} signs transactions: set slasher.keystore in {}", config.display()))?;
    let w = Writer::new(chain, signer)?;
    Ok((cfg, w))
}

/// One transaction as `--dry-run` shows it, or as sent.
pub fn plan_json(function: &str, w: &Writer, to: Address, gas: Option<u64>, args: Value) -> Value {
    json!({
        "dryRun": true,
        "function": function,
        "from": abi::addr(&w.from),
        "to": abi::addr(&to),
        "estimatedGas": gas,
        "gasLimit": gas.map(writer::padded_gas),
        "args": args,
    })
}

pub fn print(format: Format, value: &Value, text: String) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Text => writeln!(out, "{text}"),
        Format::Json => writeln!(out, "{value}"),
    }
    .context("cannot write to stdout")
}

pub fn print_plan(format: Format, plan: &Value) -> Result<()> {
    let gas = plan["estimatedGas"]
        .as_u64()
        .map_or("unknown until the earlier call is sent".to_string(), |g| g.to_string());
    let text = format!(
        "dry-run\t{}\tfrom={}\tto={}\tgas={gas}\targs={}",
        plan["function"].as_str().unwrap_or(""),
        plan["from"].as_str().unwrap_or(""),
        plan["to"].as_str().unwrap_or(""),
        plan["args"]
    );
    print(format, plan, text)
}

/// What `submit` did with one bundle.
pub enum Submitted {
    /// Sent now: the new attestation's UID and the transaction.
    Sent { uid: B256, tx: B256 },
    /// This address's submission of the CID already exists.
    Already { uid: B256 },
    /// `--dry-run`: the plan, printed by the caller.
    Planned(Value),
}

/// Checks the cost kind with the chain's rule and submits (or plans) one prepared bundle.
pub async fn submit_prepared(w: &Writer, p: &Prepared, dry_run: bool) -> Result<Submitted> {
    let router = w.submission_router().await?;
    let allowed = w
        .view(
            router,
            ISubmissionRouter::kindAllowedCall {
                datasetType: p.submission.datasetType.clone(),
                tool: p.submission.tool.clone(),
                kind: abi_kind(p.kind),
            },
        )
        .await?;
    if !allowed {
        bail!(
            "--kind {}: SubmissionRouter.kindAllowed refuses it for manifest.datasetType {:?} and manifest.tool {:?}",
            p.kind.as_str(),
            p.submission.datasetType,
            p.submission.tool
        );
    }
    // A second submission of the same CID by the same address only spends quota: a cron
    // run that is repeated must not pay twice.
    if let Some((uid, by)) = w.first_submission(&p.cid).await? {
        if by == w.from {
            return Ok(Submitted::Already { uid });
        }
    }
    let call = ISubmissionRouter::submitCall {
        submission: p.submission.clone(),
        kind: abi_kind(p.kind),
    };
    if dry_run {
        let gas = w.estimate(router, &call).await?;
        let mut args = abi::submission_json(&p.submission);
        args["kind"] = json!(p.kind.as_str());
        return Ok(Submitted::Planned(plan_json(
            "SubmissionRouter.submit",
            w,
            router,
            Some(gas),
            args,
        )));
    }
    let receipt = w.send_call(router, call).await?;
    let uid = receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == router)
        .find_map(|l| ISubmissionRouter::SubmissionRecorded::decode_log(&l.inner).ok())
        .map(|e| e.uid)
        .ok_or_else(|| anyhow!("transaction {} has no SubmissionRecorded log", receipt.transaction_hash))?;
    Ok(Submitted::Sent {
        uid,
        tx: receipt.transaction_hash,
    })
}

pub async fn run(args: SubmitArgs) -> Result<ExitCode> {
    // The bundle is judged before the keystore is opened: a bad bundle needs no password.
    let mut p = prepare(&args.bundle, args.kind, args.job_id)?;
    let (_cfg, w) = open_writer(&args.config, "submit")?;
    p.submission.subject = w.from;
    let (uid, status, tx) = match submit_prepared(&w, &p, args.dry_run).await? {
        Submitted::Planned(plan) => {
            print_plan(args.format, &plan)?;
            return Ok(ExitCode::SUCCESS);
        }
        Submitted::Sent { uid, tx } => (uid, "submitted", Some(tx)),
        Submitted::Already { uid } => (uid, "already-submitted", None),
    };
    let value = json!({
        "uid": uid.to_string(),
        "cid": p.cid,
        "kind": p.kind.as_str(),
        "cost": p.kind.cost(),
        "status": status,
        "tx": tx.map(|t| t.to_string()),
        "subject": abi::addr(&w.from),
    });
    let tx_text = tx.map_or("-".to_string(), |t| t.to_string());
    print(
        args.format,
        &value,
        format!("{uid}\t{}\t{}\t{status}\ttx={tx_text}", p.cid, p.kind.as_str()),
    )?;
    Ok(ExitCode::SUCCESS)
}
