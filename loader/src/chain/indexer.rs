//! `xray-loader tail`: Attestor logs into nweb.attestations (design D8).
//!
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
//! - A batch is one transaction with its checkpoint (see store.rs).

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::primitives::B256;
use alloy::rpc::types::Filter;
use anyhow::{anyhow, bail, Result};
use tokio_postgres::Client;

use super::abi::{self, addr};
use super::config::ChainConfig;
use super::rpc::{Header, LogsError, Rpc};
use super::store::{self, Batch, CommitError};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub added: u64,
    pub reverted: u64,
    pub batches: u64,
    pub last_block: i64,
}

pub struct Indexer {
    cfg: ChainConfig,
    rpc: Rpc,
    contract: String,
    range: u64,
}

#[derive(Debug)]
enum BatchError {
    Range(Option<u64>, String),
    /// The node's answers did not fit together (a reorg or a lagging replica): retry.
    Inconsistent(String),
    Other(anyhow::Error),
}

impl Indexer {
    /// Connects and checks that the endpoint serves the configured chain.
    pub async fn open(cfg: &ChainConfig) -> Result<Indexer> {
        let rpc = Rpc::new(cfg)?;
        let id = rpc
            .chain_id()
            .await
            .map_err(|e| anyhow!("RPC {}: {e:#}", rpc.shown()))?;
        if id != cfg.chain_id {
            bail!(
                "RPC {} serves chain {id}, the configuration says chain.chain_id = {}",
                rpc.shown(),
                cfg.chain_id
            );
        }
        tracing::info!(rpc = %rpc.shown(), chain_id = id, attestor = %addr(&cfg.attestor), "connected");
        Ok(Indexer {
            cfg: cfg.clone(),
            contract: addr(&cfg.attestor),
            range: cfg.max_block_range,
            rpc,
        })
    }

    /// Rolls back everything from `block` on, by hand (`tail --rewind-to`).
    pub async fn rewind(&self, db: &mut Client, block: u64) -> Result<u64> {
        store::checkpoint(db, self.cfg.chain_id, &self.contract, self.cfg.start_block).await?;
        store::rollback(db, self.cfg.chain_id, block).await
    }

    /// Indexes up to the confirmed head.
    pub async fn catch_up(&mut self, db: &mut Client) -> Result<Progress> {
        let mut p = Progress::default();
        let mut inconsistent = 0u32;
        loop {
            let cp = store::checkpoint(db, self.cfg.chain_id, &self.contract, self.cfg.start_block).await?;
            if cp.start_block != self.cfg.start_block {
                tracing::warn!(
                    stored = cp.start_block,
                    configured = self.cfg.start_block,
                    "chain.start_block differs from the stored checkpoint's; the checkpoint wins"
                );
            }
            p.last_block = cp.last_block;
            if self.check_reorg(db, &cp, &mut p).await? {
                continue;
            }
            let head = self.rpc.block_number().await?;
            let Some(safe) = head.checked_sub(self.cfg.confirmations) else {
                break;
            };
            let from = (cp.last_block + 1) as u64;
            if from > safe {
                break;
            }
            let to = safe.min(from.saturating_add(self.range - 1));
            match self.fetch(from, to).await {
                Ok(batch) => {
                    match store::commit_batch(db, self.cfg.chain_id, &self.contract, self.cfg.reorg_window, &batch)
                        .await
                    {
                        Ok((added, reverted)) => {
                            tracing::debug!(from, to, logs = batch.rows.len(), added, "batch");
                            p.added += added;
                            p.reverted += reverted;
                            p.batches += 1;
                            p.last_block = to as i64;
                            inconsistent = 0;
                            // Grow back after a success, 5 % at a time.
                            self.range = (self.range + (self.range / 20).max(1)).min(self.cfg.max_block_range);
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
                    tracing::info!(from, to, next_range = next, "block range refused; splitting");
                    self.range = next;
                }
                Err(BatchError::Inconsistent(msg)) => {
                    inconsistent += 1;
                    if inconsistent > self.cfg.max_retries {
                        bail!("the RPC's answers for blocks {from}..{to} stay inconsistent: {msg}");
                    }
                    tracing::warn!(from, to, attempt = inconsistent, "{msg}; retrying the batch");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(inconsistent.min(20)))).await;
                }
                Err(BatchError::Other(e)) => return Err(e),
            }
        }
        Ok(p)
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
        let n = store::rollback(db, self.cfg.chain_id, first_reverted).await?;
        tracing::warn!(
            chain_id = self.cfg.chain_id,
            first_reverted,
            attestations = n,
            "rolled back"
        );
        p.reverted += n;
        Ok(true)
    }

    async fn header(&self, n: u64) -> Result<Header, BatchError> {
        self.rpc
            .header(n)
            .await
            .map_err(BatchError::Other)?
            .ok_or_else(|| BatchError::Inconsistent(format!("block {n} is not there (any more)")))
    }

    async fn fetch(&self, from: u64, to: u64) -> Result<Batch, BatchError> {
        let before = self.header(to).await?;
        let filter = Filter::new()
            .address(self.cfg.attestor)
            .event_signature(abi::payload_topics())
            .from_block(from)
            .to_block(to);
        let logs = match self.rpc.logs(&filter).await {
            Ok(l) => l,
            Err(LogsError::RangeTooLarge { hint, message }) => return Err(BatchError::Range(hint, message)),
            Err(LogsError::Other(e)) => return Err(BatchError::Other(e)),
        };
        let mut decoded = Vec::with_capacity(logs.len());
        let mut block_hashes: BTreeMap<u64, B256> = BTreeMap::new();
        for log in &logs {
            if log.removed {
                return Err(BatchError::Inconsistent("the node returned a removed log".into()));
            }
            if log.address() != self.cfg.attestor {
                return Err(BatchError::Other(anyhow!(
                    "the node returned a log of {} for a filter on {}",
                    addr(&log.address()),
                    self.contract
                )));
            }
            let a = match abi::decode(log) {
                Ok(a) => a,
                Err(abi::DecodeError::Incomplete(what)) => {
                    return Err(BatchError::Inconsistent(format!(
                        "a log came without its {what} (pending block?)"
                    )))
                }
                Err(e) => {
                    // One undecodable log must not wedge the indexer; it is reported.
                    tracing::warn!(tx = ?log.transaction_hash, log_index = ?log.log_index, error = %e, "log skipped");
                    continue;
                }
            };
            if a.block_number < from || a.block_number > to {
                return Err(BatchError::Inconsistent(format!(
                    "the node returned a log of block {} for the range {from}..{to}",
                    a.block_number
                )));
            }
            if let Some(h) = block_hashes.insert(a.block_number, a.block_hash) {
                if h != a.block_hash {
                    return Err(BatchError::Inconsistent(format!(
                        "two hashes for block {}",
                        a.block_number
                    )));
                }
            }
            decoded.push(a);
        }
        let mut headers = Vec::new();
        for (n, h) in &block_hashes {
            let header = if *n == to { before } else { self.header(*n).await? };
            if header.hash != *h {
                return Err(BatchError::Inconsistent(format!(
                    "block {n}: the logs say hash {h}, the block is {}",
                    header.hash
                )));
            }
            headers.push(header);
        }
        let after = self.header(to).await?;
        if after.hash != before.hash {
            return Err(BatchError::Inconsistent(format!(
                "block {to} changed while it was read"
            )));
        }
        if !block_hashes.contains_key(&to) {
            headers.push(after);
        }
        let times: BTreeMap<u64, chrono::DateTime<chrono::Utc>> =
            headers.iter().map(|h| (h.number, store::block_time(h))).collect();
        decoded.sort_by_key(|a| (a.block_number, a.log_index));
        let rows = decoded
            .into_iter()
            .map(|a| {
                let t = times[&a.block_number];
                (a, t)
            })
            .collect();
        Ok(Batch {
            from,
            to,
            to_header: after,
            headers,
            rows,
        })
    }
}
