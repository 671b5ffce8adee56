//! The slasher's machinery behind `xray-loader check` (`commands/check.rs`; docs/nweb.md §6.2).
//!
//! For every CID to check: each gateway gets the liveness probe (`bafkqaaa`), the cache
//! check (`only-if-cached`) and a full CAR fetch verified block by block; Kubo is tried
//! as well. The local CAR directory is not: a copy here proves nothing about the network.
//! A CID is available when at least one source served the whole DAG intact; its content
//! is then judged by nweb.ingest_car (manifest, Merkle root against the attested one,
//! artifact hashes, every claim of its attestation: D43). One row goes into
//! nweb.availability_checks per CID.
//!
//! A challenge needs evidence that holds for anyone (docs/design.md D40):
//! - a verified mismatch (hash, Merkle root, a claim, a format fault that is not one of
//!   our limits) is challenged at once;
//! - CID_UNAVAILABLE only when `slasher.unavailable_gateways` distinct live gateways fail
//!   it now, and it has not been delivered since a check at least
//!   `slasher.unavailable_for` ago that a live gateway failed too;
//! - our own limits (size cap, decoder limits, our timeouts) are recorded as such
//!   (outcome `local_limit`, not available, `reason` NULL, `reason_detail` opening with
//!   `LOCAL_LIMIT: `; the bundle deferred, docs/design.md D42) and never challenged.
//!
//! With a keystore, such a CID with no open challenge gets an on-chain
//! AvailabilityCheck(available = false) when it is unavailable, then a Challenge.

use std::collections::BTreeSet;
use std::time::Duration;

use alloy::primitives::B256;
use anyhow::{anyhow, Result};
use chrono::Utc;
use serde_json::Value;
use tokio_postgres::Client;
use nweb::Cid;

use crate::chain::abi::{addr, hex0x, IAttestor};
use crate::chain::writer::{self, Writer};
use crate::chain::record_bundle;
use crate::db::pg_error;
use crate::ipfs::Sources;

/// When unavailability is evidence enough for a challenge.
#[derive(Debug, Clone, Copy)]
pub struct EvidenceRule {
    pub gateways: u32,
    pub over: Duration,
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub cid: String,
    pub available: bool,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub ok: usize,
    pub attempts: usize,
    /// Not checked: we stopped at our own limit.
    pub limit: bool,
}

impl Finding {
    /// nweb.availability_checks.outcome (docs/design.md D42).
    pub fn outcome(&self) -> &'static str {
        match (self.available, &self.reason) {
            _ if self.limit => "local_limit",
            (true, None) => "available",
            (true, Some(_)) => "invalid",
            (false, _) => "unavailable",
        }
    }

    /// The state `check` prints.
    pub fn state(&self) -> &'static str {
        match self.outcome() {
            "local_limit" => "limit",
            o => o,
        }
    }
}

pub(crate) async fn cids_to_check(db: &Client, recheck_secs: u64, limit: u32) -> Result<Vec<String>> {
    let rows = db
        .query(
            "SELECT s.cid
               FROM (SELECT DISTINCT a.cid FROM nweb.attestations AS a
                      WHERE a.kind = 'ScanSubmission' AND a.cid IS NOT NULL) AS s
               LEFT JOIN LATERAL (SELECT max(c.checked_at) AS last FROM nweb.availability_checks AS c
                                   WHERE c.cid = s.cid) AS l ON true
              WHERE l.last IS NULL OR l.last < now() - make_interval(secs => $1::double precision)
              ORDER BY l.last NULLS FIRST, s.cid
              LIMIT $2",
            &[&(recheck_secs as f64), &(limit as i64)],
        )
        .await
        .map_err(|e| anyhow!("reading the CIDs to check: {}", pg_error(&e)))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Gateways in a recorded `probes` array whose answer was evidence of unavailability.
fn evidence_in(probes: &Value) -> Vec<String> {
    probes
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            a["liveness"] == Value::Bool(true) && a["car"] != Value::Bool(true) && a["limit"] != Value::Bool(true)
        })
        .filter_map(|a| a["source"].as_str().map(str::to_owned))
        .collect()
}

/// Whether the CID is unavailable on evidence: `now_at` gateways fail it in this check,
/// and since the oldest earlier check a live gateway failed (with no delivery after it)
/// at least `rule.over` has passed. `Err` says what is still missing.
async fn unavailable_on_evidence(
    db: &Client,
    cid: &str,
    now_at: &[String],
    checked_at: chrono::DateTime<Utc>,
    rule: EvidenceRule,
) -> Result<std::result::Result<(), String>> {
    let distinct: BTreeSet<&String> = now_at.iter().collect();
    if (distinct.len() as u32) < rule.gateways {
        return Ok(Err(format!(
            "unavailable at {} of the {} live gateways needed",
            distinct.len(),
            rule.gateways
        )));
    }
    // Newest first; a delivery or a verdict on the content ends the run, our limits do not count.
    let rows = db
        .query(
            "SELECT checked_at, outcome, reason, probes FROM nweb.availability_checks
              WHERE cid = $1 ORDER BY check_id DESC LIMIT 1000",
            &[&cid],
        )
        .await
        .map_err(|e| anyhow!("reading earlier checks: {}", pg_error(&e)))?;
    let mut since = checked_at;
    for r in &rows {
        match r.get::<_, &str>(1) {
            "local_limit" => continue,
            "unavailable" => {}
            _ => break,
        }
        if !evidence_in(&r.get::<_, Value>(3)).is_empty() {
            since = r.get(0);
        }
    }
    let over = (checked_at - since).to_std().unwrap_or_default();
    if over < rule.over {
        return Ok(Err(format!(
            "unavailable for {} s of the {} s needed",
            over.as_secs(),
            rule.over.as_secs()
        )));
    }
    Ok(Ok(()))
}

async fn job_id(db: &Client, cid: &str) -> Result<B256> {
    let row = db
        .query_opt(
            "SELECT a.payload ->> 'jobId' FROM nweb.attestations AS a
              WHERE a.kind = 'ScanSubmission' AND a.cid = $1 ORDER BY a.block_time, a.attestation_id LIMIT 1",
            &[&cid],
        )
        .await
        .map_err(|e| anyhow!("reading the submission: {}", pg_error(&e)))?;
    Ok(writer::b256_or_zero(
        row.as_ref().and_then(|r| r.get::<_, Option<&str>>(0)),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn record(
    db: &Client,
    f: &Finding,
    digest: &[u8; 32],
    checked_at: chrono::DateTime<Utc>,
    probes: &Value,
    checker: Option<String>,
    attestation_tx: Option<String>,
    challenge_tx: Option<String>,
) -> Result<()> {
    db.execute(
        "INSERT INTO nweb.availability_checks
                (cid, available, attempts, gateways_ok, fetch_digest, checked_at, reason, reason_detail, probes,
                 checker, attestation_tx, challenge_tx, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            &f.cid,
            &f.available,
            &(f.attempts.min(255) as i16),
            &(f.ok.min(255) as i16),
            &hex0x(digest),
            &checked_at,
            &f.reason,
            &f.detail,
            probes,
            &checker,
            &attestation_tx,
            &challenge_tx,
            &f.outcome(),
        ],
    )
    .await
    .map_err(|e| anyhow!("recording the check: {}", pg_error(&e)))?;
    Ok(())
}

pub(crate) enum ChallengeOutcome {
    None,
    Filed(B256),
    Skipped(String),
    Failed(anyhow::Error),
}

pub(crate) async fn check_one(
    db: &Client,
    sources: &Sources,
    writer: Option<&Writer>,
    rule: EvidenceRule,
    cid_text: &str,
) -> Result<(Finding, ChallengeOutcome)> {
    let cid: Cid = cid_text.parse().map_err(|e| anyhow!("not a CID: {e}"))?;
    let fetched = sources.probe(&cid).await;
    let checked_at = Utc::now();
    let verdict = record_bundle(db, cid_text, &fetched).await?;
    let mut f = Finding {
        cid: cid_text.to_string(),
        available: fetched.car.is_some(),
        reason: None,
        detail: None,
        ok: fetched.ok_count(),
        attempts: fetched.attempts.len(),
        limit: false,
    };
    if let Some(limit) = fetched.limit_detail() {
        // Nothing delivered it whole, yet nobody showed it unavailable: no reason.
        f.limit = true;
        f.detail = Some(limit);
    } else if fetched.car.is_none() {
        f.reason = Some("CID_UNAVAILABLE".into());
        f.detail = Some(fetched.failure_detail());
    } else if verdict.status != "verified" && verdict.reason.as_deref() != Some("CID_UNAVAILABLE") {
        f.reason = verdict.reason.clone();
        f.detail = verdict.reason_detail.clone();
    }
    let digest = fetched.car.as_ref().map_or([0u8; 32], |c| c.digest);
    let probes = serde_json::to_value(&fetched.attempts)?;

    let mut outcome = ChallengeOutcome::None;
    let (mut att_tx, mut chal_tx) = (None, None);
    if let (Some(_), true) = (writer, f.limit) {
        outcome = ChallengeOutcome::Skipped("our own limit, not the submitter's fault".into());
    }
    if let (Some(w), Some(reason)) = (writer, f.reason.clone()) {
        let evidence = if reason == "CID_UNAVAILABLE" {
            unavailable_on_evidence(db, cid_text, &fetched.unavailable_at(), checked_at, rule).await?
        } else {
            // A verified mismatch holds for anyone who fetches the CID.
            Ok(())
        };
        outcome = if let Err(missing) = evidence {
            ChallengeOutcome::Skipped(missing)
        } else {
            match file(db, w, &f, &reason, &digest, checked_at).await {
                Ok(Filed::Done { attestation, challenge }) => {
                    att_tx = attestation.map(|t| hex0x(t.as_slice()));
                    chal_tx = Some(hex0x(challenge.as_slice()));
                    ChallengeOutcome::Filed(challenge)
                }
                Ok(Filed::Skip(why)) => ChallengeOutcome::Skipped(why),
                Err(e) => ChallengeOutcome::Failed(e),
            }
        };
    }
    record(
        db,
        &f,
        &digest,
        checked_at,
        &probes,
        writer.map(|w| addr(&w.from)),
        att_tx,
        chal_tx,
    )
    .await?;
    tracing::info!(cid = %f.cid, state = f.state(), reason = ?f.reason, ok = f.ok, attempts = f.attempts, "checked");
    Ok((f, outcome))
}

enum Filed {
    Done { attestation: Option<B256>, challenge: B256 },
    Skip(String),
}

async fn file(
    db: &Client,
    w: &Writer,
    f: &Finding,
    reason: &str,
    digest: &[u8; 32],
    checked_at: chrono::DateTime<Utc>,
) -> Result<Filed> {
    if let Some(open) = w.open_challenge(&f.cid).await? {
        return Ok(Filed::Skip(format!("challenge {open} is open")));
    }
    if !w.submitted(&f.cid).await? {
        return Ok(Filed::Skip(
            "not submitted through this SlashRouter's SubmissionRouter".into(),
        ));
    }
    let attestation = if reason == "CID_UNAVAILABLE" {
        let check = IAttestor::AvailabilityCheck {
            cid: f.cid.clone(),
            available: false,
            attempts: f.attempts.min(255) as u8,
            gatewaysOk: f.ok.min(255) as u8,
            fetchDigest: B256::from(*digest),
            checkedAt: checked_at.timestamp().max(0) as u64,
        };
        Some(w.attest_unavailable(check).await?)
    } else {
        None
    };
    let job = job_id(db, &f.cid).await?;
    let challenge = w.challenge(job, &f.cid, reason, "").await?;
    tracing::warn!(cid = %f.cid, reason, tx = %challenge, "challenge filed");
    Ok(Filed::Done { attestation, challenge })
}
