//! `xray-loader tail`: Attestor logs into nweb.attestations and, when configured,
//! StakeRegistry logs into nweb.stake_events and nweb.stakes (docs/design.md D8, D29,
//! D45) and SubmissionRouter logs into nweb.submission_kinds (D44).
//!
//! - Each contract has its own checkpoint and is caught up in turn, so a registry added
//!   to the configuration later is indexed from the start block, not from where the
//!   Attestor already is. Reorgs and rollbacks are per chain and move both back.
//! - Backfill from the configured start block with ranged `eth_getLogs`, then follow the
//!   head, always `confirmations` blocks behind it.
//! - The range adapts: a refused range shrinks to the provider's suggestion or to half,
//!   and a success grows it by 5 % again, up to `max_block_range` (Ponder's scheme).
//! - Each batch is checked for a consistent view before it is written: the hash of its
//!   last block before and after `eth_getLogs`, and the hash of every block with logs
//!   against the logs' `blockHash` (a load-balanced RPC may answer from two nodes).
//! - Reorgs: before every batch the checkpoint's stored hash is compared with the chain.
//!   A block hash commits to all its ancestors, so an unchanged hash proves nothing below
//!   was reorganised. A changed (or vanished) one starts a walk down the stored window
//!   to the newest block that is still canonical, and everything after it is rolled back.
//! - The first block of each batch must have the checkpoint's block as parent, checked
//!   between the two reads of its last block: a reorg that lands between two batches
//!   is found there, not committed on top of the old fork's rows (docs/design.md D41).
//! - The confirmed head is the chain's `finalized` or `safe` block when `chain.head`
//!   asks for it and the RPC has it, else head − confirmations.
//! - A batch that reaches the confirmed head reads the header of each of its last
//!   `reorg_window` blocks, checks they link by parent hash and stores them, so a
//!   shallow reorg right after a backfill finds its fork point in the window.
//! - Every header of the batch is read (JSON-RPC batches of `header_batch`) and must
//!   link to the next. A block whose logsBloom says it may hold logs of the contract,
//!   but of which the range answer has none, is asked for by hash (EIP-234); logs
//!   there mean a lagging backend answered the range: retry, never commit (D46).
//! - A log that does not decode, or that names a CID in a variant spelling, is
//!   recorded in nweb.chain_log_rejects in the batch's transaction, not skipped.
//! - A batch is one transaction with its checkpoint (see store.rs).

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::rpc::types::Filter;
use anyhow::{anyhow, bail, Result};
use tokio_postgres::Client;

use super::abi::{self, addr};
use super::config::ChainConfig;
use super::rpc::{Header, LogsError, Rpc};
use super::store::{self, Batch, CommitError, Reject};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Attestations.
    pub added: u64,
    pub reverted: u64,
    pub stake_events_added: u64,
    pub stake_events_reverted: u64,
    /// SubmissionRecorded logs (nweb.submission_kinds).
    pub submissions_added: u64,
    pub batches: u64,
    /// Every followed contract is indexed up to here.
    pub last_block: i64,
}

impl Progress {
    pub fn changed(&self) -> u64 {
        self.added + self.reverted + self.stake_events_added + self.stake_events_reverted + self.submissions_added
    }

    fn add_reverted(&mut self, r: store::Reverted) {
        self.reverted += r.attestations;
        self.stake_events_reverted += r.stake_events;
    }
}

/// Which contract a checkpoint follows, and so which logs and table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Attestor,
    StakeRegistry,
    SubmissionRouter,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Attestor => "Attestor",
            Kind::StakeRegistry => "StakeRegistry",
            Kind::SubmissionRouter => "SubmissionRouter",
        }
    }

    fn topics(self) -> Vec<B256> {
        match self {
            Kind::Attestor => abi::payload_topics(),
            Kind::StakeRegistry => abi::stake_topics(),
            Kind::SubmissionRouter => abi::submission_topics(),
        }
    }
}

struct Target {
    kind: Kind,
    address: Address,
    /// The address as nweb.chain_checkpoints keys it.
    contract: String,
    /// eth_getLogs range, adapted per contract: a provider may refuse one a range it
    /// allows the other when their logs are denser.
    range: u64,
}

/// A decoded log of either contract.
enum Decoded {
    Attestation(abi::Attestation),
    Stake(abi::StakeEvent),
    Submission(abi::SubmissionRecord),
}

impl Decoded {
    fn block(&self) -> (u64, B256, u64) {
        match self {
            Decoded::Attestation(a) => (a.block_number, a.block_hash, a.log_index),
            Decoded::Stake(e) => (e.block_number, e.block_hash, e.log_index),
            Decoded::Submission(r) => (r.block_number, r.block_hash, r.log_index),
        }
    }
}

pub struct Indexer {
    cfg: ChainConfig,
    rpc: Rpc,
    targets: Vec<Target>,
    /// The database has nweb.stake_events (checked by `open` when a registry is set).
    stakes_table: bool,
    /// What the confirmed head was last taken from, logged when it changes.
    head_source: Option<String>,
}

#[derive(Debug)]
enum BatchError {
    Range(Option<u64>, String),
    /// The node's answers did not fit together (a reorg or a lagging replica): retry.
    Inconsistent(String),
    /// The batch's first block does not follow the checkpoint's: a reorg.
    Reorg(String),
    Other(anyhow::Error),
}

impl Indexer {
    /// Connects and checks that the endpoint serves the configured chain, and that the
    /// database can hold what the configuration asks to index.
    pub async fn open(cfg: &ChainConfig, db: &Client) -> Result<Indexer> {
        let stakes_table = store::has_stake_events(db).await?;
        if cfg.stake_registry.is_some() && !stakes_table {
            bail!(
                "chain.stake_registry is set but the database has no nweb.stake_events: \
                 update the extension to xray_pg 0.4.0 (ALTER EXTENSION xray_pg UPDATE)"
            );
        }
        if cfg.submission_router.is_some() && !store::has_submission_kinds(db).await? {
            bail!(
                "chain.submission_router is set but the database has no nweb.submission_kinds: \
                 update the extension to xray_pg 0.8.0 (ALTER EXTENSION xray_pg UPDATE)"
            );
        }
        let rpc = Rpc::new(cfg)?;
        rpc.check_chain_id(cfg.chain_id).await?;
        let id = cfg.chain_id;
        let mut targets = vec![Target {
            kind: Kind::Attestor,
            address: cfg.attestor,
            contract: addr(&cfg.attestor),
            range: cfg.max_block_range,
        }];
        match cfg.stake_registry {
            Some(r) => targets.push(Target {
                kind: Kind::StakeRegistry,
                address: r,
                contract: addr(&r),
                range: cfg.max_block_range,
            }),
            // Not a warning: stderr output makes cron send mail on every run.
            None => tracing::info!("chain.stake_registry is not set: nweb.stakes is not indexed"),
        }
        if let Some(r) = cfg.submission_router {
            targets.push(Target {
                kind: Kind::SubmissionRouter,
                address: r,
                contract: addr(&r),
                range: cfg.max_block_range,
            });
        }
        tracing::info!(
            rpc = %rpc.shown(),
            chain_id = id,
            attestor = %addr(&cfg.attestor),
            stake_registry = %cfg.stake_registry.as_ref().map_or_else(|| "-".to_string(), addr),
            "connected"
        );
        Ok(Indexer {
            cfg: cfg.clone(),
            targets,
            stakes_table,
            rpc,
            head_source: None,
        })
    }

    /// Rolls back everything from `block` on, by hand (`tail --rewind-to`).
    pub async fn rewind(&self, db: &mut Client, block: u64) -> Result<store::Reverted> {
        for t in &self.targets {
            store::checkpoint(db, self.cfg.chain_id, &t.contract, self.cfg.start_block).await?;
        }
        store::rollback(db, self.cfg.chain_id, block, self.stakes_table).await
    }

    /// Indexes every followed contract up to the confirmed head.
    pub async fn catch_up(&mut self, db: &mut Client) -> Result<Progress> {
        let mut p = Progress::default();
        // A reorg found while following one contract moves every checkpoint of the chain
        // back, also of a contract already caught up in this round: go round again, so
        // that one pass leaves them all at the head. Each round needs a new reorg to
        // repeat; the bound only guards against a chain that keeps reorganising.
        for _round in 0..8 {
            let mut rolled_back = false;
            let mut last: Option<i64> = None;
            for i in 0..self.targets.len() {
                let (l, r) = self.catch_up_target(db, i, &mut p).await?;
                rolled_back |= r;
                last = Some(last.map_or(l, |x| x.min(l)));
            }
            p.last_block = last.unwrap_or_default();
            if !rolled_back {
                break;
            }
        }
        Ok(p)
    }

    /// Indexes one contract up to the confirmed head. Returns its last indexed block and
    /// whether it rolled anything back.
    async fn catch_up_target(&mut self, db: &mut Client, i: usize, p: &mut Progress) -> Result<(i64, bool)> {
        let chain_id = self.cfg.chain_id;
        let contract = self.targets[i].contract.clone();
        let kind = self.targets[i].kind;
        let mut inconsistent = 0u32;
        let mut rolled_back = false;
        let mut last_block;
        loop {
            let cp = store::checkpoint(db, chain_id, &contract, self.cfg.start_block).await?;
            if cp.start_block != self.cfg.start_block {
                tracing::warn!(
                    stored = cp.start_block,
                    configured = self.cfg.start_block,
                    contract = kind.name(),
                    "chain.start_block differs from the stored checkpoint's; the checkpoint wins"
                );
            }
            last_block = cp.last_block;
            if self.check_reorg(db, &cp, p).await? {
                rolled_back = true;
                continue;
            }
            let Some(safe) = self.confirmed_head().await? else {
                break;
            };
            let from = (cp.last_block + 1) as u64;
            if from > safe {
                break;
            }
            let range = self.targets[i].range;
            let to = safe.min(from.saturating_add(range - 1));
            let dense = to == safe;
            match self.fetch(&self.targets[i], from, to, cp.last_block_hash, dense).await {
                Ok(batch) => {
                    match store::commit_batch(
                        db,
                        chain_id,
                        &contract,
                        self.cfg.reorg_window,
                        self.stakes_table,
                        &batch,
                    )
                    .await
                    {
                        Ok(c) => {
                            tracing::debug!(
                                contract = kind.name(),
                                from,
                                to,
                                logs = batch.rows.len() + batch.stakes.len() + batch.submissions.len(),
                                rejected = batch.rejects.len(),
                                attestations = c.attestations,
                                stake_events = c.stake_events,
                                submissions = c.submissions,
                                "batch"
                            );
                            p.added += c.attestations;
                            p.stake_events_added += c.stake_events;
                            p.submissions_added += c.submissions;
                            p.add_reverted(c.reverted);
                            rolled_back |= c.rolled_back;
                            p.batches += 1;
                            inconsistent = 0;
                            // Grow back after a success, 5 % at a time.
                            self.targets[i].range = (range + (range / 20).max(1)).min(self.cfg.max_block_range);
                        }
                        Err(CommitError::Moved { expected, found }) => {
                            tracing::warn!(
                                expected,
                                found,
                                "the checkpoint moved under us (another loader?); starting over"
                            );
                        }
                        Err(CommitError::Db(e)) => return Err(e),
                    }
                }
                Err(BatchError::Range(hint, msg)) => {
                    let span = to - from + 1;
                    if span == 1 {
                        bail!("the RPC refuses eth_getLogs even for the single block {from}: {msg}");
                    }
                    let next = hint.filter(|h| *h < span).unwrap_or(span / 2).max(1);
                    tracing::info!(contract = kind.name(), from, to, next_range = next, "block range refused; splitting");
                    self.targets[i].range = next;
                }
                Err(BatchError::Inconsistent(msg)) => {
                    inconsistent += 1;
                    if inconsistent > self.cfg.max_retries {
                        bail!("the RPC's answers for blocks {from}..{to} stay inconsistent: {msg}");
                    }
                    tracing::warn!(from, to, attempt = inconsistent, "{msg}; retrying the batch");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(inconsistent.min(20)))).await;
                }
                Err(BatchError::Reorg(msg)) => {
                    tracing::warn!(contract = kind.name(), from, to, "{msg}");
                    // The walk compares the stored window with the chain as it is now.
                    if self.check_reorg(db, &cp, p).await? {
                        rolled_back = true;
                        inconsistent = 0;
                        continue;
                    }
                    inconsistent += 1;
                    if inconsistent > self.cfg.max_retries {
                        bail!("the RPC's answers for blocks {from}..{to} stay inconsistent: {msg}");
                    }
                }
                Err(BatchError::Other(e)) => return Err(e),
            }
        }
        Ok((last_block, rolled_back))
    }

    /// The highest block to index: the chain's `safe`/`finalized` block when configured
    /// and the RPC has it, else head − confirmations. None: no block is confirmed yet.
    async fn confirmed_head(&mut self) -> Result<Option<u64>> {
        let (n, source) = match self.cfg.head {
            Some(tag) => match self.rpc.tagged_number(tag).await {
                Ok(n) => (Some(n), tag.name().to_string()),
                Err(e) => {
                    let head = self.rpc.block_number().await?;
                    let why = crate::output::one_line(&format!("{e:#}"));
                    (
                        head.checked_sub(self.cfg.confirmations),
                        format!("latest - {} (the RPC refused {}: {why})", self.cfg.confirmations, tag.name()),
                    )
                }
            },
            None => {
                let head = self.rpc.block_number().await?;
                (head.checked_sub(self.cfg.confirmations), format!("latest - {}", self.cfg.confirmations))
            }
        };
        if self.head_source.as_deref() != Some(source.as_str()) {
            tracing::info!(chain_id = self.cfg.chain_id, head = %source, "confirmed head");
            self.head_source = Some(source);
        }
        Ok(n)
    }

    /// Compares the checkpoint with the chain and rolls back what a reorg replaced.
    /// Returns true when something was rolled back.
    async fn check_reorg(&self, db: &mut Client, cp: &store::Checkpoint, p: &mut Progress) -> Result<bool> {
        if cp.last_block < cp.start_block as i64 {
            return Ok(false);
        }
        let last = cp.last_block as u64;
        let stored = match cp.last_block_hash {
            Some(h) => h,
            // Unknown (a manual rollback to a block whose hash was not kept): trust the
            // chain from here on.
            None => return Ok(false),
        };
        let canonical = self.rpc.header(last).await?;
        if canonical.map(|h| h.hash) == Some(stored) {
            return Ok(false);
        }
        tracing::warn!(
            chain_id = self.cfg.chain_id,
            block = last,
            stored = %stored,
            canonical = %canonical.map_or_else(|| "none".to_string(), |h| h.hash.to_string()),
            "reorg: the checkpoint's block is no longer canonical"
        );
        let window = store::stored_blocks(db, self.cfg.chain_id, cp.last_block).await?;
        let mut ancestor = None;
        for (n, h) in &window {
            if self.rpc.header(*n).await?.map(|c| c.hash) == Some(*h) {
                ancestor = Some(*n);
                break;
            }
        }
        let first_reverted = match ancestor {
            Some(a) => a + 1,
            None if last - cp.start_block < self.cfg.reorg_window => cp.start_block,
            None => bail!(
                "reorg deeper than the kept window of {} blocks: no stored block hash at or below {last} is canonical any more; \
                 raise chain.confirmations, then run `xray-loader tail --rewind-to <block>` from a block before the fork",
                self.cfg.reorg_window
            ),
        };
        let r = store::rollback(db, self.cfg.chain_id, first_reverted, self.stakes_table).await?;
        tracing::warn!(
            chain_id = self.cfg.chain_id,
            first_reverted,
            attestations = r.attestations,
            stake_events = r.stake_events,
            "rolled back"
        );
        p.add_reverted(r);
        Ok(true)
    }

    async fn header(&self, n: u64) -> Result<Header, BatchError> {
        self.rpc
            .header(n)
            .await
            .map_err(BatchError::Other)?
            .ok_or_else(|| BatchError::Inconsistent(format!("block {n} is not there (any more)")))
    }

    /// Reads one batch: `to`'s header, the logs, the headers they name (and, when
    /// `dense`, every header of the last `reorg_window` blocks), then `to`'s header again.
    /// `parent`: the checkpoint's hash, which `from`'s parent must be.
    async fn fetch(
        &self,
        target: &Target,
        from: u64,
        to: u64,
        parent: Option<B256>,
        dense: bool,
    ) -> Result<Batch, BatchError> {
        let before = self.header(to).await?;
        let filter = Filter::new()
            .address(target.address)
            .event_signature(target.kind.topics())
            .from_block(from)
            .to_block(to);
        let logs = match self.rpc.logs(&filter).await {
            Ok(l) => l,
            Err(LogsError::RangeTooLarge { hint, message }) => return Err(BatchError::Range(hint, message)),
            Err(LogsError::Other(e)) => return Err(BatchError::Other(e)),
        };
        let mut decoded = Vec::with_capacity(logs.len());
        let mut rejects = Vec::new();
        let mut block_hashes: BTreeMap<u64, B256> = BTreeMap::new();
        for log in &logs {
            if log.removed {
                return Err(BatchError::Inconsistent("the node returned a removed log".into()));
            }
            if log.address() != target.address {
                return Err(BatchError::Other(anyhow!(
                    "the node returned a log of {} for a filter on {}",
                    addr(&log.address()),
                    target.contract
                )));
            }
            let (Some(tx_hash), Some(log_index), Some(block_number), Some(block_hash)) =
                (log.transaction_hash, log.log_index, log.block_number, log.block_hash)
            else {
                return Err(BatchError::Inconsistent("a log came without its position (pending block?)".into()));
            };
            if block_number < from || block_number > to {
                return Err(BatchError::Inconsistent(format!(
                    "the node returned a log of block {block_number} for the range {from}..{to}"
                )));
            }
            if let Some(h) = block_hashes.insert(block_number, block_hash) {
                if h != block_hash {
                    return Err(BatchError::Inconsistent(format!("two hashes for block {block_number}")));
                }
            }
            let one = match target.kind {
                Kind::Attestor => abi::decode(log).map(Decoded::Attestation),
                Kind::StakeRegistry => abi::decode_stake(log).map(Decoded::Stake),
                Kind::SubmissionRouter => abi::decode_submission(log).map(Decoded::Submission),
            };
            let problem = match &one {
                Ok(Decoded::Attestation(a)) => cid_problem(a),
                Ok(Decoded::Stake(_) | Decoded::Submission(_)) => None,
                Err(abi::DecodeError::Incomplete(what)) => {
                    return Err(BatchError::Inconsistent(format!(
                        "a log came without its {what} (pending block?)"
                    )))
                }
                Err(e) => Some(e.to_string()),
            };
            match (one, problem) {
                (Ok(a), None) => decoded.push(a),
                (_, Some(error)) => {
                    // Recorded with the batch: the checkpoint never passes a log that is
                    // neither indexed nor in nweb.chain_log_rejects.
                    tracing::warn!(tx = %tx_hash, log_index, block = block_number, error = %error, "log rejected");
                    rejects.push(Reject {
                        contract: target.contract.clone(),
                        block_number,
                        block_hash,
                        tx_hash,
                        log_index,
                        topic0: log.topic0().copied(),
                        error,
                    });
                }
                (Err(_), None) => unreachable!("an Err always has a problem"),
            }
        }
        // Which headers to store (and so to read) between the two reads of `to`.
        let mut wanted: BTreeMap<u64, Option<B256>> = block_hashes.iter().map(|(n, h)| (*n, Some(*h))).collect();
        wanted.entry(from).or_insert(None);
        if dense {
            let first = (to + 1).saturating_sub(self.cfg.reorg_window).max(from);
            for n in first..=to {
                wanted.entry(n).or_insert(None);
            }
        }
        let mut read: BTreeMap<u64, Header> = BTreeMap::new();
        read.insert(to, before);
        // Every header of the range, so that the bloom check below covers every block,
        // not only those the batch stores (docs/design.md D46).
        if self.cfg.header_batch > 0 && from < to {
            let all = self
                .rpc
                .headers(from, to - 1, self.cfg.header_batch)
                .await
                .map_err(BatchError::Other)?;
            for (n, h) in (from..to).zip(all) {
                let h = h.ok_or_else(|| BatchError::Inconsistent(format!("block {n} is not there (any more)")))?;
                read.insert(n, h);
            }
        }
        for (n, expected) in &wanted {
            let header = match read.get(n) {
                Some(h) => *h,
                None => self.header(*n).await?,
            };
            if let Some(h) = expected {
                if header.hash != *h {
                    return Err(BatchError::Inconsistent(format!(
                        "block {n}: the logs say hash {h}, the block is {}",
                        header.hash
                    )));
                }
            }
            read.insert(*n, header);
        }
        // Consecutive headers must link; `from` must follow the checkpoint's block.
        for (n, h) in &read {
            if let Some(prev) = n.checked_sub(1).and_then(|p| read.get(&p)) {
                if h.parent_hash != prev.hash {
                    return Err(BatchError::Inconsistent(format!(
                        "block {n}'s parent is {}, but block {} read as {}",
                        h.parent_hash,
                        n - 1,
                        prev.hash
                    )));
                }
            }
        }
        if let Some(p) = parent {
            let first = &read[&from];
            if first.parent_hash != p {
                return Err(BatchError::Reorg(format!(
                    "reorg: block {from}'s parent is {}, not the checkpoint's block {} ({p})",
                    first.parent_hash,
                    from - 1
                )));
            }
        }
        // A lagging backend answers a range it has not seen with []: a block whose bloom
        // names the contract but has no log in the answer is asked for by hash, which a
        // node without the block answers with an error.
        let topics = target.kind.topics();
        let suspects: Vec<(u64, B256)> = read
            .iter()
            .filter(|(n, h)| !block_hashes.contains_key(n) && h.may_have_logs(&target.address, &topics))
            .map(|(n, h)| (*n, h.hash))
            .collect();
        if !suspects.is_empty() {
            let hashes: Vec<B256> = suspects.iter().map(|(_, h)| *h).collect();
            let per_request = self.cfg.header_batch.max(1);
            let answers = match self.rpc.logs_of_blocks(&filter, &hashes, per_request).await {
                Ok(a) => a,
                Err(e) => return Err(BatchError::Inconsistent(format!("blocks by hash: {e:#}"))),
            };
            // An empty answer is a false positive of the bloom.
            if let Some(((n, _), l)) = suspects.iter().zip(&answers).find(|(_, l)| !l.is_empty()) {
                return Err(BatchError::Inconsistent(format!(
                    "block {n} has {} log(s) of {} that the answer for {from}..{to} lacks (a lagging backend?)",
                    l.len(),
                    target.contract
                )));
            }
        }
        let after = self.header(to).await?;
        if after.hash != before.hash {
            return Err(BatchError::Inconsistent(format!(
                "block {to} changed while it was read"
            )));
        }
        read.insert(to, after);
        // Stored: the headers of blocks with logs, `from`, `to` and the dense window.
        let headers: Vec<Header> = read
            .into_iter()
            .filter(|(n, _)| *n == to || wanted.contains_key(n))
            .map(|(_, h)| h)
            .collect();
        let times: BTreeMap<u64, chrono::DateTime<chrono::Utc>> =
            headers.iter().map(|h| (h.number, store::block_time(h))).collect();
        decoded.sort_by_key(|a| {
            let (n, _, i) = a.block();
            (n, i)
        });
        let (mut rows, mut stakes, mut submissions) = (Vec::new(), Vec::new(), Vec::new());
        for d in decoded {
            let t = times[&d.block().0];
            match d {
                Decoded::Attestation(a) => rows.push((a, t)),
                Decoded::Stake(e) => stakes.push((e, t)),
                Decoded::Submission(r) => submissions.push((r, t)),
            }
        }
        Ok(Batch {
            from,
            to,
            to_header: after,
            headers,
            rows,
            stakes,
            submissions,
            rejects,
        })
    }
}

/// Why an attestation's CID is not indexed: a ScanSubmission or Challenge names the CID
/// it is about, and only its canonical spelling is that CID (nweb::rules).
fn cid_problem(a: &abi::Attestation) -> Option<String> {
    if !matches!(a.kind, "ScanSubmission" | "Challenge") {
        return None;
    }
    let text = a.payload.get("cid").and_then(|v| v.as_str()).unwrap_or("");
    nweb::rules::cid_spelling_problem(text).map(|p| format!("payload.cid {text:?}: {p}"))
}
