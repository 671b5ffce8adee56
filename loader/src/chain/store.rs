//! The indexer's SQL: checkpoint, block window, attestations, stake events and rollback
//! (docs/design.md D8), plain statements on the tables of sql/xray_pg--0.2.0--0.3.0.sql and, for
//! the StakeRegistry, of the end of sql/xray_pg--0.3.0--0.4.0.sql.
//!
//! A batch is one transaction: the rows (attestations or stake events, with the stakes
//! derived from them), the hashes of its blocks and the new checkpoint commit together
//! or not at all, so a crash anywhere loses nothing, and the unique key
//! (chain_id, tx_hash, log_index) with ON CONFLICT DO NOTHING means a batch done twice
//! writes nothing twice.

use alloy::primitives::B256;
use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Client;

use super::abi::{addr, gst_text, hex0x, Attestation, StakeEvent, SubmissionRecord};
use super::rpc::Header;
use crate::db::pg_error;

fn pg(context: &str) -> impl Fn(tokio_postgres::Error) -> anyhow::Error + '_ {
    move |e| anyhow!("{context}: {}", pg_error(&e))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub start_block: u64,
    /// `start_block - 1` before the first batch.
    pub last_block: i64,
    pub last_block_hash: Option<B256>,
}

fn parse_hash(s: &str) -> Result<B256> {
    s.parse::<B256>()
        .map_err(|_| anyhow!("stored block hash {s:?} is not 32 bytes of hex"))
}

/// The checkpoint of (chain, contract), created at `start_block - 1` when new.
pub async fn checkpoint(db: &Client, chain_id: u64, contract: &str, start_block: u64) -> Result<Checkpoint> {
    db.execute(
        "INSERT INTO nweb.chain_checkpoints (chain_id, contract, start_block, last_block)
         VALUES ($1, $2, $3::bigint, $3::bigint - 1) ON CONFLICT (chain_id, contract) DO NOTHING",
        &[&(chain_id as i64), &contract, &(start_block as i64)],
    )
    .await
    .map_err(pg("creating the checkpoint"))?;
    let row = db
        .query_one(
            "SELECT start_block, last_block, last_block_hash FROM nweb.chain_checkpoints
              WHERE chain_id = $1 AND contract = $2",
            &[&(chain_id as i64), &contract],
        )
        .await
        .map_err(pg("reading the checkpoint"))?;
    let hash: Option<String> = row.get(2);
    Ok(Checkpoint {
        start_block: row.get::<_, i64>(0) as u64,
        last_block: row.get(1),
        last_block_hash: hash.as_deref().map(parse_hash).transpose()?,
    })
}

/// Stored hashes at or below `upto`, newest first.
pub async fn stored_blocks(db: &Client, chain_id: u64, upto: i64) -> Result<Vec<(u64, B256)>> {
    let rows = db
        .query(
            "SELECT block_number, block_hash FROM nweb.chain_blocks
              WHERE chain_id = $1 AND block_number <= $2 ORDER BY block_number DESC",
            &[&(chain_id as i64), &upto],
        )
        .await
        .map_err(pg("reading the block window"))?;
    rows.iter()
        .map(|r| Ok((r.get::<_, i64>(0) as u64, parse_hash(r.get::<_, &str>(1))?)))
        .collect()
}

/// Whether the database has the StakeRegistry's table (xray_pg 0.4.0).
pub async fn has_stake_events(db: &Client) -> Result<bool> {
    has_table(db, "nweb.stake_events").await
}

/// Whether the database has the SubmissionRouter's table (xray_pg 0.8.0).
pub async fn has_submission_kinds(db: &Client) -> Result<bool> {
    has_table(db, "nweb.submission_kinds").await
}

async fn has_table(db: &Client, name: &str) -> Result<bool> {
    Ok(db
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .map_err(|e| anyhow!("looking for {name}: {}", pg_error(&e)))?
        .get(0))
}

/// What a rollback deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reverted {
    pub attestations: u64,
    pub stake_events: u64,
}

/// `nweb.chain_rollback` in the caller's transaction. nweb.chain_rollback returns only the
/// attestations it deleted, so with `stakes` the stake events are counted first, under
/// the same chain lock (advisory locks are re-entrant in a session).
async fn chain_rollback(
    tx: &tokio_postgres::Transaction<'_>,
    chain_id: i64,
    first_reverted: i64,
    stakes: bool,
) -> Result<Reverted, tokio_postgres::Error> {
    let mut r = Reverted::default();
    if stakes {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('nweb.chain:' || $1::bigint, 0))",
            &[&chain_id],
        )
        .await?;
        let n: i64 = tx
            .query_one(
                "SELECT count(*) FROM nweb.stake_events WHERE chain_id = $1 AND block_number >= $2",
                &[&chain_id, &first_reverted],
            )
            .await?
            .get(0);
        r.stake_events = n as u64;
    }
    let n: i64 = tx
        .query_one("SELECT nweb.chain_rollback($1, $2)", &[&chain_id, &first_reverted])
        .await?
        .get(0);
    r.attestations = n as u64;
    Ok(r)
}

/// Deletes what a reorg reverted (`first_reverted` and later), derives the stakes of the
/// reverted stake events' addresses again, and lowers the checkpoints. `stakes`: the
/// database has nweb.stake_events, so its reverted rows are counted too.
pub async fn rollback(db: &mut Client, chain_id: u64, first_reverted: u64, stakes: bool) -> Result<Reverted> {
    let tx = db.transaction().await.map_err(pg("rollback"))?;
    let r = chain_rollback(&tx, chain_id as i64, first_reverted as i64, stakes)
        .await
        .map_err(pg("nweb.chain_rollback"))?;
    tx.commit().await.map_err(pg("committing the rollback"))?;
    Ok(r)
}

/// What one batch writes.
#[derive(Debug, Clone)]
pub struct Batch {
    pub from: u64,
    pub to: u64,
    pub to_header: Header,
    /// The headers of the blocks with logs, and of `to`.
    pub headers: Vec<Header>,
    /// Attestor logs, in (block, log index) order.
    pub rows: Vec<(Attestation, DateTime<Utc>)>,
    /// StakeRegistry logs, in (block, log index) order.
    pub stakes: Vec<(StakeEvent, DateTime<Utc>)>,
    /// SubmissionRouter logs, in (block, log index) order.
    pub submissions: Vec<(SubmissionRecord, DateTime<Utc>)>,
    /// Logs that are not indexed, and why (nweb.chain_log_rejects).
    pub rejects: Vec<Reject>,
}

/// A log of a followed contract that is recorded instead of indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub contract: String,
    pub block_number: u64,
    pub block_hash: B256,
    pub tx_hash: B256,
    pub log_index: u64,
    pub topic0: Option<B256>,
    pub error: String,
}

/// What one batch wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// New rows (a log already stored is not counted again).
    pub attestations: u64,
    pub stake_events: u64,
    pub submissions: u64,
    /// Whether a block another loader had stored was stale, so that every checkpoint of
    /// the chain was moved back before this batch was written.
    pub rolled_back: bool,
    /// What that rollback deleted.
    pub reverted: Reverted,
}

#[derive(Debug)]
pub enum CommitError {
    /// Someone else moved the checkpoint (another loader on the same contract).
    Moved {
        expected: i64,
        found: i64,
    },
    Db(anyhow::Error),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitError::Moved { expected, found } => {
                write!(
                    f,
                    "the checkpoint moved from {expected} to {found} under us (another loader?)"
                )
            }
            CommitError::Db(e) => write!(f, "{e:#}"),
        }
    }
}

fn ts(secs: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs.min(i64::MAX as u64) as i64, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn block_time(h: &Header) -> DateTime<Utc> {
    ts(h.timestamp)
}

/// Writes one batch in one transaction. `stakes`: the database has nweb.stake_events.
pub async fn commit_batch(
    db: &mut Client,
    chain_id: u64,
    contract: &str,
    window: u64,
    stakes: bool,
    b: &Batch,
) -> Result<Committed, CommitError> {
    let dbe = |c: &'static str| move |e: tokio_postgres::Error| CommitError::Db(anyhow!("{c}: {}", pg_error(&e)));
    let cid = chain_id as i64;
    let tx = db.transaction().await.map_err(dbe("batch"))?;
    // One writer per chain at a time: rollbacks and batches of other contracts wait.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('nweb.chain:' || $1::bigint, 0))",
        &[&cid],
    )
    .await
    .map_err(dbe("chain lock"))?;
    let found: i64 = tx
        .query_one(
            "SELECT last_block FROM nweb.chain_checkpoints WHERE chain_id = $1 AND contract = $2 FOR UPDATE",
            &[&cid, &contract],
        )
        .await
        .map_err(dbe("checkpoint"))?
        .get(0);
    let expected = b.from as i64 - 1;
    if found != expected {
        return Err(CommitError::Moved { expected, found });
    }

    // A block another loader of this chain stored with another hash is stale now: what
    // it indexed from there on is reverted first.
    let nums: Vec<i64> = b.headers.iter().map(|h| h.number as i64).collect();
    let hashes: Vec<String> = b.headers.iter().map(|h| hex0x(h.hash.as_slice())).collect();
    let stale: Option<i64> = tx
        .query_one(
            "SELECT min(c.block_number) FROM nweb.chain_blocks AS c
               JOIN unnest($2::bigint[], $3::text[]) AS n(num, hash) ON c.block_number = n.num
              WHERE c.chain_id = $1 AND c.block_hash <> n.hash",
            &[&cid, &nums, &hashes],
        )
        .await
        .map_err(dbe("block window"))?
        .get(0);
    let mut reverted = Reverted::default();
    if let Some(s) = stale {
        reverted = chain_rollback(&tx, cid, s, stakes)
            .await
            .map_err(dbe("nweb.chain_rollback"))?;
        tracing::warn!(
            chain_id,
            block = s,
            attestations = reverted.attestations,
            stake_events = reverted.stake_events,
            "a block stored by another loader is no longer canonical; rolled back"
        );
    }

    let mut kinds = Vec::new();
    let mut txs = Vec::new();
    let mut idx: Vec<i32> = Vec::new();
    let mut bns: Vec<i64> = Vec::new();
    let mut bhs = Vec::new();
    let mut bts: Vec<DateTime<Utc>> = Vec::new();
    let mut uids = Vec::new();
    let mut atts = Vec::new();
    let mut payloads: Vec<Value> = Vec::new();
    for (a, t) in &b.rows {
        kinds.push(a.kind.to_string());
        txs.push(hex0x(a.tx_hash.as_slice()));
        idx.push(
            i32::try_from(a.log_index).map_err(|_| CommitError::Db(anyhow!("log index {} too big", a.log_index)))?,
        );
        bns.push(a.block_number as i64);
        bhs.push(hex0x(a.block_hash.as_slice()));
        bts.push(*t);
        uids.push(hex0x(a.uid.as_slice()));
        atts.push(addr(&a.attester));
        payloads.push(a.payload.clone());
    }
    let added = tx
        .execute(
            "INSERT INTO nweb.attestations
                    (kind, chain_id, tx_hash, log_index, block_number, block_hash, block_time, uid, attester, payload)
             SELECT x.kind, $1, x.tx_hash, x.log_index, x.block_number, x.block_hash, x.block_time, x.uid, x.attester, x.payload
               FROM unnest($2::text[], $3::text[], $4::int4[], $5::int8[], $6::text[], $7::timestamptz[],
                           $8::text[], $9::text[], $10::jsonb[])
                    WITH ORDINALITY AS x(kind, tx_hash, log_index, block_number, block_hash, block_time, uid, attester, payload, n)
              ORDER BY x.n
             ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING",
            &[&cid, &kinds, &txs, &idx, &bns, &bhs, &bts, &uids, &atts, &payloads],
        )
        .await
        .map_err(dbe("inserting attestations"))?;
    let stake_events = if b.stakes.is_empty() {
        0
    } else {
        insert_stake_events(&tx, cid, contract, &b.stakes).await?
    };

    let submissions = if b.submissions.is_empty() {
        0
    } else {
        insert_submission_kinds(&tx, cid, contract, &b.submissions).await?
    };

    if !b.rejects.is_empty() {
        insert_rejects(&tx, cid, &b.rejects).await?;
    }

    let parents: Vec<String> = b.headers.iter().map(|h| hex0x(h.parent_hash.as_slice())).collect();
    let times: Vec<DateTime<Utc>> = b.headers.iter().map(block_time).collect();
    tx.execute(
        "INSERT INTO nweb.chain_blocks (chain_id, block_number, block_hash, parent_hash, block_time)
         SELECT $1, n.num, n.hash, n.parent, n.t FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[]) AS n(num, hash, parent, t)
         ON CONFLICT (chain_id, block_number) DO UPDATE
            SET block_hash = EXCLUDED.block_hash, parent_hash = EXCLUDED.parent_hash, block_time = EXCLUDED.block_time",
        &[&cid, &nums, &hashes, &parents, &times],
    )
    .await
    .map_err(dbe("storing block hashes"))?;
    tx.execute(
        "UPDATE nweb.chain_checkpoints SET last_block = $3, last_block_hash = $4, updated_at = now()
          WHERE chain_id = $1 AND contract = $2",
        &[&cid, &contract, &(b.to as i64), &hex0x(b.to_header.hash.as_slice())],
    )
    .await
    .map_err(dbe("checkpoint"))?;
    // Keep the window below the lowest checkpoint of the chain.
    tx.execute(
        "DELETE FROM nweb.chain_blocks
          WHERE chain_id = $1
            AND block_number < (SELECT min(c.last_block) FROM nweb.chain_checkpoints AS c WHERE c.chain_id = $1) - $2",
        &[&cid, &(window as i64)],
    )
    .await
    .map_err(dbe("pruning the block window"))?;
    tx.commit().await.map_err(dbe("commit"))?;
    Ok(Committed {
        attestations: added,
        stake_events,
        submissions,
        rolled_back: stale.is_some(),
        reverted,
    })
}

async fn insert_rejects(tx: &tokio_postgres::Transaction<'_>, cid: i64, rejects: &[Reject]) -> Result<(), CommitError> {
    let dbe = |c: &'static str| move |e: tokio_postgres::Error| CommitError::Db(anyhow!("{c}: {}", pg_error(&e)));
    let contracts: Vec<&str> = rejects.iter().map(|r| r.contract.as_str()).collect();
    let bns: Vec<i64> = rejects.iter().map(|r| r.block_number as i64).collect();
    let bhs: Vec<String> = rejects.iter().map(|r| hex0x(r.block_hash.as_slice())).collect();
    let txs: Vec<String> = rejects.iter().map(|r| hex0x(r.tx_hash.as_slice())).collect();
    let idx = rejects
        .iter()
        .map(|r| i32::try_from(r.log_index).map_err(|_| CommitError::Db(anyhow!("log index {} too big", r.log_index))))
        .collect::<Result<Vec<i32>, _>>()?;
    let topics: Vec<Option<String>> = rejects.iter().map(|r| r.topic0.map(|t| hex0x(t.as_slice()))).collect();
    // The error text is the decoder's: one line, and never empty (the table checks).
    let errors: Vec<String> = rejects
        .iter()
        .map(|r| {
            let e = crate::output::one_line(&r.error);
            if e.is_empty() { "undecodable".to_string() } else { e }
        })
        .collect();
    tx.execute(
        "INSERT INTO nweb.chain_log_rejects (chain_id, contract, block_number, block_hash, tx_hash, log_index, topic0, error)
         SELECT $1, x.contract, x.bn, x.bh, x.tx, x.li, x.t0, x.err
           FROM unnest($2::text[], $3::int8[], $4::text[], $5::text[], $6::int4[], $7::text[], $8::text[])
                AS x(contract, bn, bh, tx, li, t0, err)
         ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING",
        &[&cid, &contracts, &bns, &bhs, &txs, &idx, &topics, &errors],
    )
    .await
    .map_err(dbe("recording rejected logs"))?;
    Ok(())
}

/// The SubmissionRouter's logs of a batch. Their trigger checks the bundles they price
/// (nweb.recheck_bundle).
async fn insert_submission_kinds(
    tx: &tokio_postgres::Transaction<'_>,
    cid: i64,
    router: &str,
    records: &[(SubmissionRecord, DateTime<Utc>)],
) -> Result<u64, CommitError> {
    let dbe = |c: &'static str| move |e: tokio_postgres::Error| CommitError::Db(anyhow!("{c}: {}", pg_error(&e)));
    let txs: Vec<String> = records.iter().map(|(r, _)| hex0x(r.tx_hash.as_slice())).collect();
    let idx = records
        .iter()
        .map(|(r, _)| i32::try_from(r.log_index).map_err(|_| CommitError::Db(anyhow!("log index {} too big", r.log_index))))
        .collect::<Result<Vec<i32>, _>>()?;
    let bns: Vec<i64> = records.iter().map(|(r, _)| r.block_number as i64).collect();
    let bhs: Vec<String> = records.iter().map(|(r, _)| hex0x(r.block_hash.as_slice())).collect();
    let bts: Vec<DateTime<Utc>> = records.iter().map(|(_, t)| *t).collect();
    let uids: Vec<String> = records.iter().map(|(r, _)| hex0x(r.uid.as_slice())).collect();
    let subs: Vec<String> = records.iter().map(|(r, _)| addr(&r.submitter)).collect();
    let kinds: Vec<&str> = records.iter().map(|(r, _)| r.cost_kind).collect();
    let costs = records
        .iter()
        .map(|(r, _)| i32::try_from(r.cost).map_err(|_| CommitError::Db(anyhow!("cost {} too big", r.cost))))
        .collect::<Result<Vec<i32>, _>>()?;
    tx.execute(
        "INSERT INTO nweb.submission_kinds
                (chain_id, tx_hash, log_index, block_number, block_hash, block_time, router, uid, submitter, cost_kind, cost)
         SELECT $1, x.tx_hash, x.log_index, x.block_number, x.block_hash, x.block_time, $2, x.uid, x.submitter, x.kind, x.cost
           FROM unnest($3::text[], $4::int4[], $5::int8[], $6::text[], $7::timestamptz[], $8::text[], $9::text[],
                       $10::text[], $11::int4[])
                WITH ORDINALITY AS x(tx_hash, log_index, block_number, block_hash, block_time, uid, submitter, kind, cost, n)
          ORDER BY x.n
         ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING",
        &[&cid, &router, &txs, &idx, &bns, &bhs, &bts, &uids, &subs, &kinds, &costs],
    )
    .await
    .map_err(dbe("inserting submission kinds"))
}

/// The StakeRegistry's logs of a batch, then the stakes of their addresses derived again
/// (nweb.refresh_stakes), in the batch's transaction. Amounts go to the database as
/// exact decimal text: numeric has no binary form in tokio-postgres, and a float would
/// round them.
async fn insert_stake_events(
    tx: &tokio_postgres::Transaction<'_>,
    cid: i64,
    registry: &str,
    events: &[(StakeEvent, DateTime<Utc>)],
) -> Result<u64, CommitError> {
    let dbe = |c: &'static str| move |e: tokio_postgres::Error| CommitError::Db(anyhow!("{c}: {}", pg_error(&e)));
    let n = events.len();
    let (mut txs, mut idx, mut bns, mut bhs, mut bts) = (
        Vec::with_capacity(n),
        Vec::<i32>::with_capacity(n),
        Vec::<i64>::with_capacity(n),
        Vec::with_capacity(n),
        Vec::<DateTime<Utc>>::with_capacity(n),
    );
    let (mut kinds, mut whos, mut amounts, mut totals) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::<Option<String>>::with_capacity(n),
    );
    let (mut challengers, mut bounties, mut burned, mut releases) = (
        Vec::<Option<String>>::with_capacity(n),
        Vec::<Option<String>>::with_capacity(n),
        Vec::<Option<String>>::with_capacity(n),
        Vec::<Option<DateTime<Utc>>>::with_capacity(n),
    );
    for (e, t) in events {
        txs.push(hex0x(e.tx_hash.as_slice()));
        idx.push(
            i32::try_from(e.log_index).map_err(|_| CommitError::Db(anyhow!("log index {} too big", e.log_index)))?,
        );
        bns.push(e.block_number as i64);
        bhs.push(hex0x(e.block_hash.as_slice()));
        bts.push(*t);
        kinds.push(e.kind.to_string());
        whos.push(addr(&e.who));
        amounts.push(gst_text(e.amount));
        totals.push(e.total.map(gst_text));
        challengers.push(e.slash.as_ref().map(|s| addr(&s.challenger)));
        bounties.push(e.slash.as_ref().map(|s| gst_text(s.bounty)));
        burned.push(e.slash.as_ref().map(|s| gst_text(s.burned)));
        releases.push(e.release_at.map(ts));
    }
    let added = tx
        .execute(
            "INSERT INTO nweb.stake_events
                    (chain_id, tx_hash, log_index, block_number, block_hash, block_time, registry, kind, address,
                     amount, total, challenger, bounty, burned, release_at)
             SELECT $1, x.tx_hash, x.log_index, x.block_number, x.block_hash, x.block_time, $2, x.kind, x.address,
                    x.amount::numeric, x.total::numeric, x.challenger, x.bounty::numeric, x.burned::numeric, x.release_at
               FROM unnest($3::text[], $4::int4[], $5::int8[], $6::text[], $7::timestamptz[], $8::text[], $9::text[],
                           $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::timestamptz[])
                    WITH ORDINALITY AS x(tx_hash, log_index, block_number, block_hash, block_time, kind, address,
                                         amount, total, challenger, bounty, burned, release_at, n)
              ORDER BY x.n
             ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING",
            &[
                &cid,
                &registry,
                &txs,
                &idx,
                &bns,
                &bhs,
                &bts,
                &kinds,
                &whos,
                &amounts,
                &totals,
                &challengers,
                &bounties,
                &burned,
                &releases,
            ],
        )
        .await
        .map_err(dbe("inserting stake events"))?;
    // Every address of the batch, not only those with new rows: a replay then repairs
    // a stake changed by hand, and writes nothing when it is right.
    let mut addresses = whos;
    addresses.sort();
    addresses.dedup();
    tx.execute("SELECT nweb.refresh_stakes($1::text[])", &[&addresses])
        .await
        .map_err(dbe("nweb.refresh_stakes"))?;
    Ok(added)
}

/// Bundles the indexer should fetch: attested on this chain and never checked, or found
/// unavailable longer ago than `retry_after`. Never-checked first.
pub async fn pending_bundles(db: &Client, chain_id: u64, retry_after_secs: u64, limit: u32) -> Result<Vec<String>> {
    let rows = db
        .query(
            "SELECT s.cid FROM (SELECT DISTINCT a.cid FROM nweb.attestations AS a
                                 WHERE a.kind = 'ScanSubmission' AND a.cid IS NOT NULL AND a.chain_id = $1) AS s
               LEFT JOIN nweb.bundles AS b ON b.cid = s.cid
              WHERE b.cid IS NULL
                 OR ((b.reason = 'CID_UNAVAILABLE' OR b.status = 'deferred')
                     AND b.checked_at < now() - make_interval(secs => $2::double precision))
              ORDER BY b.checked_at NULLS FIRST, s.cid
              LIMIT $3",
            &[&(chain_id as i64), &(retry_after_secs as f64), &(limit as i64)],
        )
        .await
        .map_err(pg("reading pending bundles"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A bundle's verdict as nweb.bundles has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: String,
    pub reason: Option<String>,
    pub reason_detail: Option<String>,
}

fn verdict(row: &tokio_postgres::Row) -> Verdict {
    Verdict {
        status: row.get(0),
        reason: row.get(1),
        reason_detail: row.get(2),
    }
}

/// `nweb.ingest_car`: the database verifies the CAR again and records the verdict.
pub async fn ingest_car(db: &Client, car: &[u8], cid: &str) -> Result<Verdict> {
    let row = db
        .query_one(
            "SELECT status::text, reason::text, reason_detail::text FROM nweb.ingest_car($1, $2)",
            &[&car, &cid],
        )
        .await
        .map_err(pg("nweb.ingest_car"))?;
    Ok(verdict(&row))
}

/// A complete, intact DAG that is not a bundle directory: recorded as a bundle without a
/// manifest (FORMAT_INVALID), which is what it is.
pub async fn ingest_not_a_directory(db: &Client, cid: &str) -> Result<Verdict> {
    let row = db
        .query_one(
            "SELECT status::text, reason::text, reason_detail::text
               FROM nweb.ingest_bundle($1, NULL::jsonb, NULL::text, '{}'::jsonb)",
            &[&cid],
        )
        .await
        .map_err(pg("nweb.ingest_bundle"))?;
    Ok(verdict(&row))
}

pub async fn mark_unavailable(db: &Client, cid: &str, detail: &str) -> Result<Verdict> {
    let row = db
        .query_one(
            "SELECT status::text, reason::text, reason_detail::text FROM nweb.mark_unavailable($1, $2)",
            &[&cid, &detail],
        )
        .await
        .map_err(pg("nweb.mark_unavailable"))?;
    Ok(verdict(&row))
}

/// Our own limit stopped the check: no verdict (docs/design.md D42).
pub async fn mark_local_limit(db: &Client, cid: &str, detail: &str) -> Result<Verdict> {
    let row = db
        .query_one(
            "SELECT status::text, reason::text, reason_detail::text FROM nweb.mark_local_limit($1, $2)",
            &[&cid, &detail],
        )
        .await
        .map_err(pg("nweb.mark_local_limit"))?;
    Ok(verdict(&row))
}

/// Records a fetch outcome: the verified CAR through nweb.ingest_car, else unavailable.
pub async fn record_fetch(db: &Client, cid: &str, fetched: &crate::ipfs::Fetched) -> Result<Verdict> {
    match &fetched.car {
        Some(v) if v.content_error.is_none() => ingest_car(db, &v.bytes, cid).await,
        Some(_) => ingest_not_a_directory(db, cid).await,
        None => mark_unavailable(db, cid, &fetched.failure_detail()).await,
    }
}
