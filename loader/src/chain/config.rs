//! The configuration of `tail`, `check` and `pin` (TOML, `--config FILE`).
//!
//! Validated up front so that a cron run with a typo fails in a second with one line
//! naming the field. URLs may carry secrets (an RPC API key in the path, a password in
//! the userinfo): they are only ever shown through [`redact`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::Address;
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// Printed by `xray-loader example-nweb-config`.
pub const EXAMPLE: &str = r#"# xray-loader tail / check / pin configuration (nweb: chain and IPFS).
# database_url = "host=/var/run/postgresql dbname=postgres"   # --database-url and DATABASE_URL win

[chain]
rpc_url = "https://mainnet.base.org"     # JSON-RPC over HTTP(S); an API key in it is never logged
chain_id = 8453                           # checked against eth_chainId
attestor = "0x0000000000000000000000000000000000000000"
# stake_registry = "0x..."                # tail: Staked/Unstaked/Slashed -> nweb.stakes; without it stakes stay unindexed
# slash_router = "0x..."                  # check: where Challenges are filed
# submission_router = "0x..."             # tail: SubmissionRecorded -> nweb.submission_kinds (the cost kind paid, checked against the bundle)
start_block = 0                           # at or before the deployment of the Attestor and the StakeRegistry
confirmations = 24                        # stay this many blocks behind the head
# head = "finalized"                      # or "safe": index up to that block (no reorg below it); latest - confirmations when the RPC refuses the tag
max_block_range = 2000                    # eth_getLogs range; shrinks when the RPC refuses, grows back
reorg_window = 256                        # block hashes kept to find the fork point of a reorg
header_batch = 100                        # every header of a batch is read (JSON-RPC batches of this many) to check its logsBloom; 0: only the headers a batch reads anyway (cheaper, the middle of a long range unchecked)
poll_interval_ms = 2000                   # tail (without --once): wait between polls at the head
request_timeout_secs = 30
max_retries = 8                           # per JSON-RPC call, exponential backoff
min_request_interval_ms = 0               # at most one request per interval (free RPC plans)

[ipfs]
gateways = ["https://ipfs.io", "https://dweb.link"]  # trustless gateways: ?format=car, every block verified
# kubo_api = "http://127.0.0.1:5001"      # Kubo RPC: add, pin, dag export/import
# car_dir = "/var/lib/xray-loader/cars"   # local CAR files (<cid>.car): read first, verified CARs kept
timeout_secs = 30                         # per request; also the longest wait for the next bytes
max_bundle_bytes = 268435456              # refuse bigger bundles
max_bundles_per_run = 100                 # tail: bundles fetched per pass
retry_unavailable_secs = 3600             # tail: fetch a CID_UNAVAILABLE bundle again after this
pin_on_index = false                      # tail: pin verified bundles in Kubo

[slasher]
# keystore = "/etc/xray-loader/slasher.json"      # encrypted JSON keystore; without it check only records
# password_file = "/etc/xray-loader/slasher.pass" # else $XRAY_KEYSTORE_PASSWORD
unavailable_gateways = 2                  # CID_UNAVAILABLE only when this many live ipfs.gateways failed it
unavailable_for_secs = 86400              # ... on checks spread over at least this long, never delivered since
recheck_secs = 3600                       # check: skip CIDs probed more recently than this
max_cids_per_run = 100

[hoarder]
# owner = "0x..."                         # pin: whose bundles to keep (default: the keystore's address)
"#;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    database_url: Option<String>,
    chain: Option<RawChain>,
    #[serde(default)]
    ipfs: RawIpfs,
    #[serde(default)]
    slasher: RawSlasher,
    #[serde(default)]
    hoarder: RawHoarder,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    rpc_url: String,
    chain_id: u64,
    attestor: String,
    stake_registry: Option<String>,
    slash_router: Option<String>,
    submission_router: Option<String>,
    #[serde(default)]
    start_block: u64,
    #[serde(default = "d_confirmations")]
    confirmations: u64,
    #[serde(default)]
    head: Option<String>,
    #[serde(default = "d_max_range")]
    max_block_range: u64,
    #[serde(default = "d_window")]
    reorg_window: u64,
    #[serde(default = "d_header_batch")]
    header_batch: u64,
    #[serde(default = "d_poll")]
    poll_interval_ms: u64,
    #[serde(default = "d_timeout")]
    request_timeout_secs: u64,
    #[serde(default = "d_retries")]
    max_retries: u32,
    #[serde(default)]
    min_request_interval_ms: u64,
}

fn d_confirmations() -> u64 {
    24
}
fn d_header_batch() -> u64 {
    100
}
fn d_max_range() -> u64 {
    2000
}
fn d_window() -> u64 {
    256
}
fn d_poll() -> u64 {
    2000
}
fn d_timeout() -> u64 {
    30
}
fn d_retries() -> u32 {
    8
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawIpfs {
    gateways: Vec<String>,
    kubo_api: Option<String>,
    car_dir: Option<PathBuf>,
    timeout_secs: u64,
    max_bundle_bytes: u64,
    max_bundles_per_run: u32,
    retry_unavailable_secs: u64,
    pin_on_index: bool,
}

impl Default for RawIpfs {
    fn default() -> Self {
        RawIpfs {
            gateways: Vec::new(),
            kubo_api: None,
            car_dir: None,
            timeout_secs: 30,
            max_bundle_bytes: 256 << 20,
            max_bundles_per_run: 100,
            retry_unavailable_secs: 3600,
            pin_on_index: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSlasher {
    keystore: Option<PathBuf>,
    password_file: Option<PathBuf>,
    /// Replaced by the evidence rule; kept only to say so.
    challenge_after: Option<toml::Value>,
    unavailable_gateways: u32,
    unavailable_for_secs: u64,
    recheck_secs: u64,
    max_cids_per_run: u32,
}

impl Default for RawSlasher {
    fn default() -> Self {
        RawSlasher {
            keystore: None,
            password_file: None,
            challenge_after: None,
            unavailable_gateways: 2,
            unavailable_for_secs: 86_400,
            recheck_secs: 3600,
            max_cids_per_run: 100,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoarder {
    owner: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChainConfig {
    pub rpc_url: url::Url,
    pub chain_id: u64,
    pub attestor: Address,
    /// Optional: `check` and `pin` do not need it, and a mirror of scan data may not
    /// want stakes; `tail` indexes it when set.
    pub stake_registry: Option<Address>,
    pub slash_router: Option<Address>,
    /// Optional: `tail` indexes the cost kind each submission paid for when set.
    pub submission_router: Option<Address>,
    pub start_block: u64,
    pub confirmations: u64,
    /// Index up to the chain's `safe` or `finalized` block instead of head −
    /// confirmations; None: head − confirmations. Falls back to head − confirmations
    /// when the RPC refuses the tag.
    pub head: Option<super::rpc::Tag>,
    pub max_block_range: u64,
    pub reorg_window: u64,
    /// Headers per JSON-RPC batch when every header of a batch is read for its
    /// logsBloom (docs/design.md D46); 0: only the headers a batch reads anyway.
    pub header_batch: u64,
    pub poll_interval: Duration,
    pub request_timeout: Duration,
    pub max_retries: u32,
    pub min_request_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct IpfsConfig {
    pub gateways: Vec<url::Url>,
    pub kubo_api: Option<url::Url>,
    pub car_dir: Option<PathBuf>,
    pub timeout: Duration,
    pub max_bundle_bytes: u64,
    pub max_bundles_per_run: u32,
    pub retry_unavailable: Duration,
    pub pin_on_index: bool,
}

#[derive(Debug, Clone)]
pub struct SlasherConfig {
    pub keystore: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    /// Distinct live gateways that must have failed the CID (docs/design.md D40).
    pub unavailable_gateways: u32,
    /// How long apart the first and the latest of those checks must be.
    pub unavailable_for: Duration,
    pub recheck: Duration,
    pub max_cids_per_run: u32,
}

#[derive(Debug, Clone)]
pub struct NwebConfig {
    pub database_url: Option<String>,
    pub chain: Option<ChainConfig>,
    pub ipfs: IpfsConfig,
    pub slasher: SlasherConfig,
    pub owner: Option<Address>,
}

/// `scheme://host[:port]`, and `/…` when there was more: API keys live in paths and
/// query strings, passwords in the userinfo.
pub fn redact(u: &url::Url) -> String {
    let mut s = format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""));
    if let Some(p) = u.port() {
        s.push_str(&format!(":{p}"));
    }
    if (u.path() != "/" && !u.path().is_empty()) || u.query().is_some() || !u.username().is_empty() {
        s.push_str("/…");
    }
    s
}

fn parse_url(field: &str, s: &str) -> Result<url::Url> {
    // The URL is not repeated in the message: it may hold a secret.
    let u = url::Url::parse(s.trim()).map_err(|e| anyhow!("{field}: not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        bail!("{field}: expected an http:// or https:// URL, got {}://", u.scheme());
    }
    if u.host_str().is_none() {
        bail!("{field}: the URL has no host");
    }
    Ok(u)
}

pub fn parse_address(field: &str, s: &str) -> Result<Address> {
    let t = s.trim();
    if t.len() != 42 || !t.starts_with("0x") {
        bail!("{field}: {t:?} is not an address (0x and 40 hex digits)");
    }
    t.parse::<Address>()
        .map_err(|_| anyhow!("{field}: {t:?} is not an address (0x and 40 hex digits)"))
}

impl NwebConfig {
    pub fn load(path: &Path) -> Result<NwebConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("config {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<NwebConfig> {
        let raw: Raw = toml::from_str(text).map_err(|e| anyhow!("{}", e.message().trim()))?;
        let chain = raw
            .chain
            .map(|c| -> Result<ChainConfig> {
                if c.chain_id == 0 {
                    bail!("chain.chain_id: must be positive");
                }
                if c.max_block_range == 0 {
                    bail!("chain.max_block_range: must be at least 1");
                }
                if c.reorg_window < 16 {
                    bail!("chain.reorg_window: must be at least 16 blocks");
                }
                if c.header_batch > 1000 {
                    bail!("chain.header_batch: at most 1000 headers per request (0 turns the check of every header off)");
                }
                if c.request_timeout_secs == 0 {
                    bail!("chain.request_timeout_secs: must be positive");
                }
                let attestor = parse_address("chain.attestor", &c.attestor)?;
                let stake_registry = c
                    .stake_registry
                    .as_deref()
                    .map(|s| parse_address("chain.stake_registry", s))
                    .transpose()?;
                // Checkpoints are kept per (chain, contract): one address cannot be both.
                if stake_registry == Some(attestor) {
                    bail!("chain.stake_registry: the same address as chain.attestor");
                }
                let submission_router = c
                    .submission_router
                    .as_deref()
                    .map(|s| parse_address("chain.submission_router", s))
                    .transpose()?;
                if let Some(r) = submission_router {
                    if r == attestor || Some(r) == stake_registry {
                        bail!("chain.submission_router: the same address as chain.attestor or chain.stake_registry");
                    }
                }
                Ok(ChainConfig {
                    rpc_url: parse_url("chain.rpc_url", &c.rpc_url)?,
                    chain_id: c.chain_id,
                    attestor,
                    stake_registry,
                    slash_router: c
                        .slash_router
                        .as_deref()
                        .map(|s| parse_address("chain.slash_router", s))
                        .transpose()?,
                    submission_router,
                    start_block: c.start_block,
                    confirmations: c.confirmations,
                    head: match c.head.as_deref() {
                        None | Some("latest") => None,
                        Some("safe") => Some(super::rpc::Tag::Safe),
                        Some("finalized") => Some(super::rpc::Tag::Finalized),
                        Some(other) => bail!("chain.head: expected \"latest\", \"safe\" or \"finalized\", got {other:?}"),
                    },
                    max_block_range: c.max_block_range,
                    reorg_window: c.reorg_window,
                    header_batch: c.header_batch,
                    poll_interval: Duration::from_millis(c.poll_interval_ms),
                    request_timeout: Duration::from_secs(c.request_timeout_secs),
                    max_retries: c.max_retries,
                    min_request_interval: Duration::from_millis(c.min_request_interval_ms),
                })
            })
            .transpose()?;
        let i = raw.ipfs;
        let gateways = i
            .gateways
            .iter()
            .enumerate()
            .map(|(n, g)| parse_url(&format!("ipfs.gateways[{n}]"), g))
            .collect::<Result<Vec<_>>>()?;
        if i.timeout_secs == 0 {
            bail!("ipfs.timeout_secs: must be positive");
        }
        if i.max_bundle_bytes == 0 {
            bail!("ipfs.max_bundle_bytes: must be positive");
        }
        let ipfs = IpfsConfig {
            gateways,
            kubo_api: i
                .kubo_api
                .as_deref()
                .map(|k| parse_url("ipfs.kubo_api", k))
                .transpose()?,
            car_dir: i.car_dir,
            timeout: Duration::from_secs(i.timeout_secs),
            max_bundle_bytes: i.max_bundle_bytes,
            max_bundles_per_run: i.max_bundles_per_run,
            retry_unavailable: Duration::from_secs(i.retry_unavailable_secs),
            pin_on_index: i.pin_on_index,
        };
        if ipfs.pin_on_index && ipfs.kubo_api.is_none() {
            bail!("ipfs.pin_on_index: needs ipfs.kubo_api");
        }
        let s = raw.slasher;
        if s.challenge_after.is_some() {
            bail!("slasher.challenge_after: no longer used; a CID_UNAVAILABLE challenge needs slasher.unavailable_gateways gateways over slasher.unavailable_for_secs (docs/design.md D40)");
        }
        if s.unavailable_gateways == 0 {
            bail!("slasher.unavailable_gateways: must be at least 1");
        }
        if s.password_file.is_some() && s.keystore.is_none() {
            bail!("slasher.password_file: set without slasher.keystore");
        }
        Ok(NwebConfig {
            database_url: raw.database_url,
            chain,
            ipfs,
            slasher: SlasherConfig {
                keystore: s.keystore,
                password_file: s.password_file,
                unavailable_gateways: s.unavailable_gateways,
                unavailable_for: Duration::from_secs(s.unavailable_for_secs),
                recheck: Duration::from_secs(s.recheck_secs),
                max_cids_per_run: s.max_cids_per_run,
            },
            owner: raw
                .hoarder
                .owner
                .as_deref()
                .map(|o| parse_address("hoarder.owner", o))
                .transpose()?,
        })
    }

    pub fn chain(&self) -> Result<&ChainConfig> {
        self.chain
            .as_ref()
            .ok_or_else(|| anyhow!("the configuration has no [chain] section"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses() {
        let c = NwebConfig::parse(EXAMPLE).unwrap();
        let chain = c.chain.unwrap();
        assert_eq!(chain.chain_id, 8453);
        assert_eq!(chain.confirmations, 24);
        assert_eq!(c.ipfs.gateways.len(), 2);
        assert_eq!(c.slasher.unavailable_gateways, 2);
        assert_eq!(c.slasher.unavailable_for, Duration::from_secs(86_400));
        assert!(c.owner.is_none());
    }

    #[test]
    fn errors_name_the_field_and_never_the_secret() {
        let base = "[chain]\nrpc_url = \"https://rpc.example/v2/SECRETKEY\"\nchain_id = 1\nattestor = \"0x00000000000000000000000000000000000000a7\"\n";
        assert!(NwebConfig::parse(base).is_ok());
        let e = NwebConfig::parse(&base.replace("https://", "ftp://"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "chain.rpc_url: expected an http:// or https:// URL, got ftp://");
        let e = NwebConfig::parse(&base.replace("a7\"", "a\"")).unwrap_err().to_string();
        assert!(e.starts_with("chain.attestor: "), "{e}");
        let c = NwebConfig::parse(&format!("{base}stake_registry = \"0x00000000000000000000000000000000000000A8\"\n"))
            .unwrap()
            .chain
            .unwrap();
        assert_eq!(
            c.stake_registry.map(|a| crate::chain::abi::addr(&a)),
            Some("0x00000000000000000000000000000000000000a8".to_string())
        );
        assert!(NwebConfig::parse(base).unwrap().chain.unwrap().stake_registry.is_none());
        let e = NwebConfig::parse(&format!("{base}stake_registry = \"0xnope\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("chain.stake_registry: \"0xnope\" is not an address"), "{e}");
        let e = NwebConfig::parse(&format!("{base}stake_registry = \"0x00000000000000000000000000000000000000a7\"\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "chain.stake_registry: the same address as chain.attestor");
        let e = NwebConfig::parse(&format!("{base}bogus = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `bogus`"), "{e}");
        let e = NwebConfig::parse(&format!("{base}[slasher]\npassword_file = \"/p\"\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "slasher.password_file: set without slasher.keystore");
        let e = NwebConfig::parse("[ipfs]\ngateways = [\"https://user:pw@gw.example/x\", \"nope\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("ipfs.gateways[1]: not a URL"), "{e}");
    }

    #[test]
    fn redaction_keeps_only_scheme_host_and_port() {
        let r = |s: &str| redact(&url::Url::parse(s).unwrap());
        assert_eq!(
            r("https://base-mainnet.g.alchemy.com/v2/KEY"),
            "https://base-mainnet.g.alchemy.com/…"
        );
        assert_eq!(r("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(r("http://127.0.0.1:8545/"), "http://127.0.0.1:8545");
        assert_eq!(r("https://u:pw@gw.example"), "https://gw.example/…");
        assert_eq!(r("https://rpc.example/?apikey=K"), "https://rpc.example/…");
    }

    #[test]
    fn the_evidence_rule_is_validated_with_one_line() {
        let e = NwebConfig::parse("[slasher]\nchallenge_after = 1\n").unwrap_err().to_string();
        assert!(e.starts_with("slasher.challenge_after: no longer used"), "{e}");
        let e = NwebConfig::parse("[slasher]\nunavailable_gateways = 0\n").unwrap_err().to_string();
        assert_eq!(e, "slasher.unavailable_gateways: must be at least 1");
        let c = NwebConfig::parse("[slasher]\nunavailable_gateways = 3\nunavailable_for_secs = 0\n").unwrap();
        assert_eq!((c.slasher.unavailable_gateways, c.slasher.unavailable_for), (3, Duration::ZERO));
    }
}
