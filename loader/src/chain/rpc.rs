//! JSON-RPC reads for the indexer, through alloy's HTTP provider, with what public RPC
//! endpoints need (see docs/nweb-chain.md, "tail"):
//! - every call is retried with exponential backoff on transient failures (timeouts,
//!   connection errors, 429, 5xx, "header not found" from a lagging node), honouring a
//!   server's Retry-After;
//! - an optional minimum interval between requests, for free plans;
//! - `eth_getLogs` refusals because of the block range are told apart from other errors,
//!   with the range the provider suggests when its message carries one (Alchemy,
//!   Infura, QuickNode, Coinbase/Base styles), so the indexer can split the range;
//! - errors never show the endpoint URL, which often carries an API key.

use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::client::RpcClient;
use alloy::rpc::types::{Filter, Log};
use alloy::transports::http::Http;
use alloy::transports::{RpcError, TransportErrorKind};
use anyhow::{anyhow, Result};
use tokio::sync::Mutex;

use super::config::{redact, ChainConfig};

/// What the indexer needs of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub number: u64,
    pub hash: alloy::primitives::B256,
    pub parent_hash: alloy::primitives::B256,
    pub timestamp: u64,
    /// Which addresses and topics the block's logs may contain (a false positive is
    /// possible, a false negative is not).
    pub logs_bloom: alloy::primitives::Bloom,
}

impl Header {
    fn of(b: &alloy::rpc::types::Block) -> Header {
        Header {
            number: b.header.number,
            hash: b.header.hash,
            parent_hash: b.header.parent_hash,
            timestamp: b.header.timestamp,
            logs_bloom: b.header.logs_bloom,
        }
    }

    /// Whether the block may hold a log of `address` with one of `topics` as topic0.
    pub fn may_have_logs(&self, address: &alloy::primitives::Address, topics: &[alloy::primitives::B256]) -> bool {
        use alloy::primitives::BloomInput;
        self.logs_bloom.contains_input(BloomInput::Raw(address.as_slice()))
            && topics.iter().any(|t| self.logs_bloom.contains_input(BloomInput::Raw(t.as_slice())))
    }
}

/// A block tag the chain may not have (`safe`, `finalized`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Safe,
    Finalized,
}

impl Tag {
    pub fn name(self) -> &'static str {
        match self {
            Tag::Safe => "safe",
            Tag::Finalized => "finalized",
        }
    }
}

/// Connects to the configured RPC and checks that it serves the configured chain: a
/// loader pointed at another chain would index, or sign for, the wrong one.
pub async fn checked_chain(cfg: &ChainConfig) -> Result<&ChainConfig> {
    Rpc::new(cfg)?.check_chain_id(cfg.chain_id).await?;
    Ok(cfg)
}

/// Why `eth_getLogs` failed.
#[derive(Debug)]
pub enum LogsError {
    /// The provider refused the block range; `hint` is the number of blocks it suggested.
    RangeTooLarge {
        hint: Option<u64>,
        message: String,
    },
    Other(anyhow::Error),
}

impl std::fmt::Display for LogsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogsError::RangeTooLarge { message, .. } => write!(f, "block range refused: {message}"),
            LogsError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Transient(Option<Duration>),
    Range(Option<u64>),
    Permanent,
}

pub struct Rpc {
    provider: RootProvider,
    url: url::Url,
    shown: String,
    max_retries: u32,
    min_interval: Duration,
    last: Mutex<Option<Instant>>,
}

impl Rpc {
    pub fn new(cfg: &ChainConfig) -> Result<Rpc> {
        let client = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| anyhow!("cannot build the HTTP client: {}", e.without_url()))?;
        let http = Http::with_client(client, cfg.rpc_url.clone());
        let is_local = http.guess_local();
        let provider = RootProvider::new(RpcClient::new(http, is_local));
        Ok(Rpc {
            provider,
            url: cfg.rpc_url.clone(),
            shown: redact(&cfg.rpc_url),
            max_retries: cfg.max_retries,
            min_interval: cfg.min_request_interval,
            last: Mutex::new(None),
        })
    }

    /// The endpoint as it may be shown.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// An error message without the URL (reqwest puts it into its errors).
    fn scrub(&self, msg: String) -> String {
        scrub_url(&msg, &self.url, &self.shown)
    }

    async fn pace(&self) {
        if self.min_interval.is_zero() {
            return;
        }
        let mut last = self.last.lock().await;
        if let Some(t) = *last {
            let next = t + self.min_interval;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        *last = Some(Instant::now());
    }

    /// Runs one call with retries. A range refusal is returned at once (the caller splits).
    async fn call<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T, (Class, String)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RpcError<TransportErrorKind>>>,
    {
        let mut attempt = 0u32;
        loop {
            self.pace().await;
            let err = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let class = classify(&err);
            let msg = self.scrub(clipped_line(&with_sources(&err)));
            match class {
                Class::Transient(hint) if attempt < self.max_retries => {
                    let wait = hint.unwrap_or_else(|| backoff(attempt));
                    tracing::warn!(rpc = %self.shown, call = what, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, error = %msg, "RPC call failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Class::Transient(_) => {
                    return Err((
                        class,
                        format!("{what}: giving up after {} attempts: {msg}", attempt + 1),
                    ))
                }
                _ => return Err((class, format!("{what}: {msg}"))),
            }
        }
    }

    fn plain<T>(r: Result<T, (Class, String)>) -> Result<T> {
        r.map_err(|(_, m)| anyhow!(m))
    }

    pub async fn chain_id(&self) -> Result<u64> {
        Self::plain(
            self.call("eth_chainId", || self.provider.get_chain_id().into_future())
                .await,
        )
    }

    /// One-line error when the endpoint serves another chain than `expected`.
    pub async fn check_chain_id(&self, expected: u64) -> Result<()> {
        let id = self.chain_id().await.map_err(|e| anyhow!("RPC {}: {e:#}", self.shown))?;
        if id != expected {
            return Err(anyhow!(
                "RPC {} serves chain {id}, the configuration says chain.chain_id = {expected}",
                self.shown
            ));
        }
        Ok(())
    }

    /// The number of the block the chain calls `tag`; Err when the RPC refuses the tag
    /// or has no such block (a chain without it, or an old node).
    pub async fn tagged_number(&self, tag: Tag) -> Result<u64> {
        let t = match tag {
            Tag::Safe => BlockNumberOrTag::Safe,
            Tag::Finalized => BlockNumberOrTag::Finalized,
        };
        let what = format!("eth_getBlockByNumber({})", tag.name());
        let block = Self::plain(self.call(&what, || self.provider.get_block_by_number(t).into_future()).await)?;
        block
            .map(|b| b.header.number)
            .ok_or_else(|| anyhow!("{what}: the chain has no {} block", tag.name()))
    }

    pub async fn block_number(&self) -> Result<u64> {
        Self::plain(
            self.call("eth_blockNumber", || self.provider.get_block_number().into_future())
                .await,
        )
    }

    /// `None` when the chain has no such block (yet, or any more after a reorg).
    pub async fn header(&self, number: u64) -> Result<Option<Header>> {
        let what = format!("eth_getBlockByNumber({number})");
        let block = Self::plain(
            self.call(&what, || {
                self.provider
                    .get_block_by_number(BlockNumberOrTag::Number(number))
                    .into_future()
            })
            .await,
        )?;
        Ok(block.as_ref().map(Header::of))
    }

    /// The headers of `first..=last`; `None` for a block the chain does not have.
    pub async fn headers(&self, first: u64, last: u64, per_request: u64) -> Result<Vec<Option<Header>>> {
        let params: Vec<_> = (first..=last).map(|n| (BlockNumberOrTag::Number(n), false)).collect();
        let what = format!("eth_getBlockByNumber({first}..={last})");
        let blocks: Vec<Option<alloy::rpc::types::Block>> =
            self.batched(&what, "eth_getBlockByNumber", &params, per_request).await?;
        Ok(blocks.iter().map(|b| b.as_ref().map(Header::of)).collect())
    }

    /// The logs of each block by its hash (EIP-234): a node that does not have a block
    /// answers with an error, not with an empty list.
    pub async fn logs_of_blocks(
        &self,
        filter: &Filter,
        hashes: &[alloy::primitives::B256],
        per_request: u64,
    ) -> Result<Vec<Vec<Log>>> {
        let params: Vec<_> = hashes.iter().map(|h| (filter.clone().at_block_hash(*h),)).collect();
        self.batched("eth_getLogs(blockHash)", "eth_getLogs", &params, per_request).await
    }

    /// One call per element of `params`, `per_request` of them to a JSON-RPC batch (one
    /// HTTP request, retried as a whole; any failed call fails it). A batch of one is
    /// a plain call, for endpoints that refuse batches (`chain.header_batch = 1`).
    async fn batched<P, R>(&self, what: &str, method: &'static str, params: &[P], per_request: u64) -> Result<Vec<R>>
    where
        P: alloy::rpc::json_rpc::RpcSend + Clone,
        R: alloy::rpc::json_rpc::RpcRecv,
    {
        let mut out = Vec::with_capacity(params.len());
        for chunk in params.chunks(per_request.clamp(1, 1000) as usize) {
            if let [one] = chunk {
                let got = self
                    .call(what, || self.provider.client().request::<P, R>(method, one.clone()).into_future())
                    .await;
                out.push(Self::plain(got)?);
                continue;
            }
            let got = self
                .call(what, || async {
                    let mut batch = alloy::rpc::client::BatchRequest::new(self.provider.client());
                    let waiters = chunk
                        .iter()
                        .map(|p| batch.add_call::<_, R>(method, p))
                        .collect::<Result<Vec<_>, _>>()?;
                    batch.send().await?;
                    let mut got = Vec::with_capacity(waiters.len());
                    for w in waiters {
                        got.push(w.await?);
                    }
                    Ok(got)
                })
                .await;
            out.extend(Self::plain(got)?);
        }
        Ok(out)
    }

    pub async fn logs(&self, filter: &Filter) -> Result<Vec<Log>, LogsError> {
        match self.call("eth_getLogs", || self.provider.get_logs(filter)).await {
            Ok(logs) => Ok(logs),
            Err((Class::Range(hint), message)) => Err(LogsError::RangeTooLarge { hint, message }),
            Err((_, m)) => Err(LogsError::Other(anyhow!(m))),
        }
    }
}

/// The error and its causes ("error sending request: … : Connection refused").
pub fn with_sources(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

/// One line of at most 400 bytes: an RPC error can quote a whole response body.
fn clipped_line(s: &str) -> String {
    let mut out = crate::output::one_line(s);
    if out.len() > 400 {
        let mut cut = 400;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Replaces the URL, with and without its trailing slash, and its path.
pub fn scrub_url(msg: &str, url: &url::Url, shown: &str) -> String {
    let full = url.as_str();
    let mut out = msg.replace(full, shown);
    let trimmed = full.trim_end_matches('/');
    if trimmed.len() > 8 {
        out = out.replace(trimmed, shown);
    }
    let path = url.path();
    if path.len() > 1 {
        out = out.replace(path, "/…");
    }
    if let Some(q) = url.query() {
        if !q.is_empty() {
            out = out.replace(q, "…");
        }
    }
    out
}

/// 250 ms doubling to 10 s, with ±20 % jitter so that many loaders do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = 250u64.saturating_mul(1u64 << attempt.min(10)).min(10_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let jitter = base / 5;
    let delta = if jitter == 0 { 0 } else { nanos % (2 * jitter + 1) };
    Duration::from_millis(base - jitter + delta)
}

const RANGE_WORDS: &[&str] = &[
    "block range",
    "range too large",
    "range is too",
    "range should work",
    "blocks range",
    "query returned more than",
    "response size",
    "response is too big",
    "too many results",
    "logs matched by query exceeds",
    "exceeds max results",
    "limit the query to at most",
    "is limited to a",
    "max range",
    "maximum range",
    "exceed maximum block range",
    "try with this block range",
];

const TRANSIENT_WORDS: &[&str] = &[
    "rate limit",
    "too many requests",
    "timeout",
    "timed out",
    "header not found",
    "unknown block",
    "temporarily",
    "try again",
    "busy",
    "no backend is currently healthy",
    "internal error",
    "connection",
];

fn classify(e: &RpcError<TransportErrorKind>) -> Class {
    match e {
        RpcError::ErrorResp(p) => classify_message(p.code, &p.message),
        RpcError::Transport(kind) => match kind {
            TransportErrorKind::HttpErrorWithRetryAfter { error, retry_after } => {
                if error.status >= 400 {
                    Class::Transient(Some((*retry_after).min(Duration::from_secs(60))))
                } else {
                    Class::Permanent
                }
            }
            TransportErrorKind::HttpError(h) => {
                // Some providers put a JSON-RPC error in a 4xx body.
                let body = h.body.to_ascii_lowercase();
                if let Class::Range(hint) = classify_message(0, &body) {
                    return Class::Range(hint);
                }
                match h.status {
                    408 | 425 | 429 | 500..=599 => Class::Transient(None),
                    _ => Class::Permanent,
                }
            }
            TransportErrorKind::MissingBatchResponse(_) | TransportErrorKind::BackendGone => Class::Transient(None),
            TransportErrorKind::Custom(_) => Class::Transient(None),
            TransportErrorKind::NonRetryable(_) | TransportErrorKind::PubsubUnavailable => Class::Permanent,
            _ => Class::Transient(None),
        },
        // A cut or garbled body (a proxy's error page): worth another try, bounded.
        RpcError::DeserError { text, .. } => match classify_message(0, text) {
            Class::Range(h) => Class::Range(h),
            _ => Class::Transient(None),
        },
        RpcError::NullResp => Class::Transient(None),
        _ => Class::Permanent,
    }
}

fn classify_message(code: i64, message: &str) -> Class {
    let m = message.to_ascii_lowercase();
    if code == 429 || m.contains("rate limit") || m.contains("too many requests") {
        return Class::Transient(None);
    }
    if RANGE_WORDS.iter().any(|w| m.contains(w)) {
        return Class::Range(range_hint(&m));
    }
    if code == -32005 || TRANSIENT_WORDS.iter().any(|w| m.contains(w)) {
        return Class::Transient(None);
    }
    Class::Permanent
}

fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim_start_matches([' ', ':', '=']);
    if let Some(hex) = s.strip_prefix("0x") {
        let end = hex.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(hex.len());
        return u64::from_str_radix(&hex[..end], 16).ok();
    }
    let digits: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '_')
        .filter(|c| c.is_ascii_digit())
        .collect();
    let n: u64 = digits.parse().ok()?;
    // "a 2K block range" (Alchemy)
    let rest = &s[s
        .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '_'))
        .unwrap_or(s.len())..];
    Some(if rest.starts_with('k') { n * 1000 } else { n })
}

/// The number of blocks a provider suggests, from its message (lower case).
fn range_hint(m: &str) -> Option<u64> {
    // Alchemy "this block range should work: [0x1, 0x4]", Infura "try with this block range [0x.., 0x..]".
    if let Some(i) = m.find("[0x") {
        let inside = &m[i + 1..];
        let end = inside.find(']')?;
        let mut parts = inside[..end].split(',').map(str::trim);
        let a = parse_num(parts.next()?)?;
        let b = parse_num(parts.next()?)?;
        return (b >= a).then(|| b - a + 1);
    }
    for key in [
        "limit the query to at most",
        "is limited to a",
        "is limited to",
        "exceed maximum block range",
        "maximum block range is",
        "maximum block range of",
        "max block range",
        "block range limit",
        "range limit of",
        "up to a",
    ] {
        if let Some(i) = m.find(key) {
            if let Some(n) = parse_num(&m[i + key.len()..]) {
                if n > 0 {
                    return Some(n);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_hints_are_read() {
        let alchemy = "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters, this block range should work: [0x2a, 0x35]";
        assert_eq!(classify_message(-32602, alchemy), Class::Range(Some(12)));
        let infura = "query returned more than 10000 results. Try with this block range [0x10, 0x1F].";
        assert_eq!(classify_message(-32005, infura), Class::Range(Some(16)));
        assert_eq!(
            classify_message(-32614, "eth_getLogs is limited to a 10,000 range"),
            Class::Range(Some(10_000))
        );
        assert_eq!(
            classify_message(-32000, "please limit the query to at most 1000 blocks"),
            Class::Range(Some(1000))
        );
        assert_eq!(classify_message(-32000, "block range too large"), Class::Range(None));
        assert_eq!(
            classify_message(-32000, "exceed maximum block range: 50000"),
            Class::Range(Some(50_000))
        );
        assert_eq!(
            classify_message(-32000, "Log response size exceeded."),
            Class::Range(None)
        );
    }

    #[test]
    fn transient_and_permanent_errors_are_told_apart() {
        assert_eq!(
            classify_message(-32005, "daily request count exceeded, request rate limited"),
            Class::Transient(None)
        );
        assert_eq!(classify_message(-32000, "header not found"), Class::Transient(None));
        assert_eq!(classify_message(429, "Too Many Requests"), Class::Transient(None));
        assert_eq!(
            classify_message(-32602, "invalid argument 0: hex string without 0x prefix"),
            Class::Permanent
        );
        assert_eq!(
            classify_message(-32601, "the method eth_foo does not exist"),
            Class::Permanent
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b0 = backoff(0).as_millis();
        assert!((200..=300).contains(&b0), "{b0}");
        let b3 = backoff(3).as_millis();
        assert!((1600..=2400).contains(&b3), "{b3}");
        assert!(backoff(30).as_millis() <= 12_000);
    }

    #[test]
    fn urls_are_scrubbed_from_error_text() {
        let u = url::Url::parse("https://base.example/v2/SECRETKEY?x=1").unwrap();
        let shown = redact(&u);
        let msg = "error sending request for url (https://base.example/v2/SECRETKEY?x=1): connection refused";
        let s = scrub_url(msg, &u, &shown);
        assert!(!s.contains("SECRETKEY"), "{s}");
        assert_eq!(
            s,
            "error sending request for url (https://base.example/…): connection refused"
        );
        assert!(!scrub_url("path /v2/SECRETKEY seen", &u, &shown).contains("SECRETKEY"));
    }
}
