//! The local dev chain (Foundry's anvil from contracts/node_modules, on loopback, a free
//! port), the contracts compiled with solcjs and deployed from raw bytecode, a database
//! per test, bundles built as a collector builds them, and the loader as a process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolValue};
use serde_json::{json, Value};
use tokio_postgres::Client;
use nweb::bundle::sha256_hex;
use nweb::{car, merkle, unixfs, Cid};
pub use xray_tests::{admin_url, connect, db_url};

alloy::sol!("../contracts/src/IAttestor.sol");

alloy::sol! {
    /// The test token's open mint (contracts/test/TestGST.sol); its ERC-20 calls are IERC20's.
    interface TestGST {
        function mint(address to, uint256 amount) external;
    }
    interface StakeAdmin {
        function setRepFactor(address who, uint256 micros) external;
        function repFactorMicros(address who) external view returns (uint256);
    }
    interface Unbonding {
        function withdraw() external returns (uint256);
        function unbonding(address who) external view returns (uint256 amount, uint64 releaseAt);
    }
    interface SlashExtras {
        function resolvedAgainst(bytes32 key) external view returns (uint256);
    }
    interface SlashCases {
        function openChallenges(address who) external view returns (uint256);
    }
}

/// The well-known dev accounts of anvil and Hardhat (public test keys of the "test test …
/// junk" mnemonic, funded on the dev chain only).
pub const KEYS: [&str; 5] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
];

/// The challenge bond the tests deploy the SlashRouter with (the value docs/nweb-chain.md
/// recommends).
pub const BOND_GST: u64 = 10;

/// A canonical CIDv1 (raw, sha2-256 of `label`) for tests that need a CID but no bundle.
pub fn test_cid(label: &str) -> String {
    unixfs::sha256_cid(unixfs::RAW, label.as_bytes()).to_string()
}

pub fn signer(i: usize) -> PrivateKeySigner {
    KEYS[i].parse().unwrap()
}

pub fn gst(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u8))
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn contracts_dir() -> PathBuf {
    repo().join("contracts")
}

pub fn tmp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chain-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn node_modules() -> PathBuf {
    let nm = contracts_dir().join("node_modules");
    assert!(
        nm.join("solc").is_dir(),
        "contracts/node_modules is missing: run scripts/setup.sh (npm ci --prefix contracts)"
    );
    nm
}

/// Compiled once per test binary, with solcjs (no download).
pub fn artifacts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        node_modules();
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("contracts-{}", std::process::id()));
        let status = std::process::Command::new("node")
            .arg(contracts_dir().join("scripts/compile.cjs"))
            .arg("--with-test")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("node");
        assert!(status.success(), "contracts do not compile");
        out
    })
}

pub fn bytecode(name: &str) -> Vec<u8> {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(artifacts().join(format!("{name}.json"))).unwrap()).unwrap();
    hex::decode(v["bytecode"].as_str().unwrap().trim_start_matches("0x")).unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Foundry's anvil from contracts/node_modules: npm installs the binary of this platform
/// as an optional dependency of `@foundry-rs/anvil`, and it runs without the wrapper's
/// postinstall step (which `npm ci --ignore-scripts` skips).
pub fn anvil_bin() -> PathBuf {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let bin = contracts_dir()
        .join("node_modules/@foundry-rs")
        .join(format!("anvil-{os}-{arch}"))
        .join("bin/anvil");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/setup.sh (npm ci --prefix contracts)",
        bin.display()
    );
    bin
}

/// An anvil dev chain on 127.0.0.1 (chain id 31337, Hardhat's dev accounts), killed
/// when dropped.
pub struct Node {
    child: tokio::process::Child,
    pub url: String,
}

impl Node {
    pub async fn start() -> Node {
        let bin = anvil_bin();
        for attempt in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(tmp_dir("anvil").join("node.log")).unwrap();
            let child = tokio::process::Command::new(&bin)
                .args(["--host", "127.0.0.1", "--chain-id", "31337", "--port"])
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .kill_on_drop(true)
                .spawn()
                .expect("start anvil");
            let mut node = Node {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            let http = reqwest::Client::new();
            while Instant::now() < deadline {
                if let Ok(Some(_)) = node.child.try_wait() {
                    break;
                }
                let r = http
                    .post(&node.url)
                    .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}))
                    .send()
                    .await;
                if let Ok(r) = r {
                    if r.status().is_success() {
                        return node;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = node.child.kill().await;
            eprintln!("anvil did not come up on port {port} (attempt {attempt})");
        }
        panic!("cannot start anvil");
    }
}

/// Signing provider with the first four dev accounts.
pub fn provider(url: &str) -> DynProvider {
    let mut wallet = EthereumWallet::from(signer(0));
    for i in 1..KEYS.len() {
        wallet.register_signer(signer(i));
    }
    // Nonces are asked for each time: a refused transaction must not skip one.
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(wallet)
        .connect_http(url.parse().unwrap())
        .erased()
}

pub async fn raw(p: &DynProvider, method: &'static str, params: Value) -> Value {
    p.raw_request::<_, Value>(method.into(), params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

pub async fn mine(p: &DynProvider, blocks: u64) {
    raw(p, "anvil_mine", json!([format!("0x{blocks:x}")])).await;
}

pub async fn head(p: &DynProvider) -> u64 {
    p.get_block_number().await.unwrap()
}

pub async fn send<C: SolCall>(p: &DynProvider, from: Address, to: Address, call: C) -> TransactionReceipt {
    let tx = TransactionRequest::default()
        .with_from(from)
        .with_to(to)
        .with_input(Bytes::from(call.abi_encode()));
    // Padded as the loader's writer pads it: an estimate made on one block can
    // fall short on the next (time-dependent storage writes).
    let gas = p.estimate_gas(tx.clone()).await.unwrap_or_else(|e| panic!("{}: {e}", C::SIGNATURE));
    let r = p
        .send_transaction(tx.with_gas_limit(gas + gas / 4 + 20_000))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", C::SIGNATURE))
        .get_receipt()
        .await
        .unwrap();
    if !r.status() {
        // Gas used equal to the limit means the estimate was short, not a rule refusing.
        let limit = p
            .get_transaction_by_hash(r.transaction_hash)
            .await
            .ok()
            .flatten()
            .map(|t| alloy::consensus::Transaction::gas_limit(&t));
        panic!("{} reverted (gas used {} of limit {limit:?})", C::SIGNATURE, r.gas_used);
    }
    r
}

/// The revert message of a call that must fail.
pub async fn reverts<C: SolCall>(p: &DynProvider, from: Address, to: Address, call: C) -> String {
    let tx = TransactionRequest::default()
        .with_from(from)
        .with_to(to)
        .with_input(Bytes::from(call.abi_encode()));
    match p.send_transaction(tx).await {
        Err(e) => e.to_string(),
        Ok(pending) => {
            let r = pending.get_receipt().await.unwrap();
            assert!(!r.status(), "{} should have reverted", C::SIGNATURE);
            "reverted".into()
        }
    }
}

pub async fn view<C: SolCall>(p: &DynProvider, to: Address, call: C) -> C::Return {
    let tx = TransactionRequest::default()
        .with_to(to)
        .with_input(Bytes::from(call.abi_encode()));
    let out = p.call(tx).await.unwrap_or_else(|e| panic!("{}: {e}", C::SIGNATURE));
    C::abi_decode_returns(&out).unwrap()
}

async fn deploy(p: &DynProvider, name: &str, args: Vec<u8>) -> Address {
    let mut code = bytecode(name);
    code.extend(args);
    let tx = TransactionRequest::default()
        .with_from(signer(0).address())
        .with_deploy_code(Bytes::from(code));
    let r = p.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    assert!(r.status(), "deploying {name}");
    r.contract_address.unwrap()
}

pub struct Contracts {
    pub gst: Address,
    pub attestor: Address,
    pub stakes: Address,
    pub submissions: Address,
    pub slash: Address,
    pub deployed_at: u64,
}

/// Deploys the five contracts, wires the routers, gives every dev account 10 000 GST
/// (the first four also approve the SlashRouter for challenge bonds; the fifth is left
/// for the loader's own approval), and has `stakers` stake `stake`.
pub async fn deploy_all(p: &DynProvider, oracle: Address, stakers: &[usize], stake: u64) -> Contracts {
    let me = signer(0).address();
    let first = head(p).await + 1;
    let gst_token = deploy(p, "TestGST", vec![]).await;
    let attestor = deploy(p, "Attestor", vec![]).await;
    let stakes = deploy(p, "StakeRegistry", (gst_token, oracle).abi_encode_params()).await;
    let submissions = deploy(p, "SubmissionRouter", (attestor, stakes).abi_encode_params()).await;
    let slash = deploy(
        p,
        "SlashRouter",
        (attestor, stakes, submissions, gst(BOND_GST)).abi_encode_params(),
    )
    .await;
    send(
        p,
        me,
        attestor,
        IWiring::setRoutersCall {
            submissionRouter: submissions,
            slashRouter: slash,
        },
    )
    .await;
    send(
        p,
        me,
        stakes,
        IWiring::setRoutersCall {
            submissionRouter: submissions,
            slashRouter: slash,
        },
    )
    .await;
    for i in 0..KEYS.len() {
        let who = signer(i).address();
        send(
            p,
            me,
            gst_token,
            TestGST::mintCall {
                to: who,
                amount: gst(10_000),
            },
        )
        .await;
        if i < 4 {
            send(
                p,
                who,
                gst_token,
                IERC20::approveCall {
                    spender: slash,
                    amount: U256::MAX,
                },
            )
            .await;
        }
    }
    for i in stakers {
        let who = signer(*i).address();
        send(
            p,
            who,
            gst_token,
            IERC20::approveCall {
                spender: stakes,
                amount: U256::MAX,
            },
        )
        .await;
        if stake > 0 {
            send(p, who, stakes, IStakeRegistry::stakeCall { amount: gst(stake) }).await;
        }
    }
    Contracts {
        gst: gst_token,
        attestor,
        stakes,
        submissions,
        slash,
        deployed_at: first,
    }
}

pub fn submission(subject: Address, cid: &str, merkle_root: &str, job: u8) -> IAttestor::ScanSubmission {
    IAttestor::ScanSubmission {
        subject,
        jobId: B256::repeat_byte(job),
        namespace: "nweb.io".into(),
        datasetType: "nmap".into(),
        cid: cid.into(),
        merkleRoot: merkle_root.parse().unwrap_or(B256::ZERO),
        targetSpecCid: "bafkqaaa".into(),
        startedAt: 1_770_000_000,
        finishedAt: 1_770_000_060,
        tool: "nmap".into(),
        version: "7.95".into(),
        vantage: "AS64500/test".into(),
        manifestSha256: "".into(),
        extra: Bytes::new(),
    }
}

/// Submits through the SubmissionRouter (nmap-top1k, 2 units) and returns the receipt.
pub async fn submit(
    p: &DynProvider,
    c: &Contracts,
    from: usize,
    cid: &str,
    merkle_root: &str,
    job: u8,
) -> TransactionReceipt {
    let who = signer(from).address();
    send(
        p,
        who,
        c.submissions,
        ISubmissionRouter::submitCall {
            submission: submission(who, cid, merkle_root, job),
            kind: ISubmissionRouter::Kind::NmapTop1k,
        },
    )
    .await
}

// ---------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------

pub fn line(ip: &str, port: u16, state: &str, ts: i64) -> Value {
    json!({
        "ts": ts, "ip": ip, "port": port, "proto": "tcp", "state": state,
        "service": if state == "open" { json!("ssh") } else { Value::Null },
        "product": null, "version": null, "banner_sha256": null, "cert_fpr": null,
        "tool": "nmap", "tool_version": "7.95", "options": "-sV -p 22,443", "vantage": "AS64500/test",
    })
}

/// A bundle built as a collector builds it; `xml_bytes` makes raw/nmap.xml that big, so
/// that it spans several 256 KiB blocks.
#[derive(Clone)]
pub struct Bundle {
    pub manifest: Value,
    pub scanprint: String,
    pub nmap_xml: Vec<u8>,
}

impl Bundle {
    pub fn new(ip: &str, seed: i64, xml_bytes: usize) -> Bundle {
        let lines = [
            line(ip, 22, "open", 1_770_000_000 + seed),
            line(ip, 443, "closed", 1_770_000_000 + seed),
        ];
        let scanprint: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let mut nmap_xml = format!("<nmaprun start=\"{seed}\">").into_bytes();
        let mut i = 0u64;
        while nmap_xml.len() < xml_bytes {
            nmap_xml.extend_from_slice(format!("<!-- padding {i} {seed} -->\n").as_bytes());
            i += 1;
        }
        nmap_xml.extend_from_slice(b"</nmaprun>");
        let manifest = json!({
            "schema": "nweb.bundle.v1",
            "namespace": "nweb.io",
            "datasetType": "nmap",
            "scanprint": {"path": "scanprint/scanprint.v0.jsonl",
                          "merkleRoot": merkle::scanprint_merkle_root(&scanprint).unwrap()},
            "artifacts": [{"path": "raw/nmap.xml", "sha256": sha256_hex(&nmap_xml)}],
            "targetSpecCid": "bafkqaaa",
            "tool": "nmap",
            "toolVersion": "7.95",
            "vantage": "AS64500/test",
            // The times `submission` attests: the loader checks every claim (D40).
            "startedAt": 1_770_000_000,
            "finishedAt": 1_770_000_060,
        });
        Bundle {
            manifest,
            scanprint,
            nmap_xml,
        }
    }

    pub fn merkle_root(&self) -> String {
        self.manifest["scanprint"]["merkleRoot"].as_str().unwrap().to_string()
    }

    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (
                "manifest.json".into(),
                serde_json::to_vec_pretty(&self.manifest).unwrap(),
            ),
            ("raw/nmap.xml".into(), self.nmap_xml.clone()),
            (
                "scanprint/scanprint.v0.jsonl".into(),
                self.scanprint.clone().into_bytes(),
            ),
        ]
    }

    pub fn dag(&self) -> unixfs::Dag {
        let files = self.files();
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
        unixfs::import_directory(&refs, unixfs::ImportParams::KUBO).unwrap()
    }

    pub fn cid(&self) -> Cid {
        self.dag().root
    }

    pub fn car(&self) -> Vec<u8> {
        let d = self.dag();
        car::write_car(&d.root, &d.blocks).unwrap()
    }

    pub fn write_dir(&self, dir: &Path) {
        for (p, d) in self.files() {
            let f = dir.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, d).unwrap();
        }
    }
}

/// The CAR with one byte flipped inside a 256 KiB leaf of raw/nmap.xml (not the root):
/// every other block is intact. Returns the CAR and the corrupted block's CID.
pub fn corrupt_one_leaf(b: &Bundle) -> (Vec<u8>, Cid) {
    let dag = b.dag();
    let leaf = dag
        .blocks
        .iter()
        .find(|x| x.cid.codec() == unixfs::RAW && x.data.len() == 262_144)
        .expect("raw/nmap.xml spans several blocks")
        .cid;
    let mut bytes = b.car();
    let lb = leaf.to_bytes();
    let at = bytes.windows(lb.len()).rposition(|w| w == lb.as_slice()).unwrap() + lb.len() + 1000;
    bytes[at] ^= 0x20;
    (bytes, leaf)
}

// ---------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------




pub struct TestDb {
    pub name: String,
    pub url: String,
    pub client: Client,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let admin = connect(&admin_url()).await;
        let name = format!("xray_chain_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let url = db_url(&name);
        let client = connect(&url).await;
        client
            .batch_execute("CREATE EXTENSION xray_pg")
            .await
            .expect("create extension xray_pg");
        TestDb { name, url, client }
    }

    pub async fn finish(self) {
        drop(self.client);
        let admin = connect(&admin_url()).await;
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .await;
    }

    pub async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        self.client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }
}

// ---------------------------------------------------------------------------
// The loader
// ---------------------------------------------------------------------------

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn loader_cmd(db: &TestDb, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_xray-loader"));
    c.args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("XRAY_LOG")
        .env_remove("XRAY_KEYSTORE_PASSWORD")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

pub async fn loader(db: &TestDb, args: &[&str]) -> Run {
    let out = loader_cmd(db, args).output().await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A configuration file for tail / check / pin.
pub fn config(dir: &Path, rpc: &str, c: &Contracts, extra_chain: &str, ipfs: &str, rest: &str) -> PathBuf {
    let text = format!(
        "[chain]\nrpc_url = \"{rpc}\"\nchain_id = 31337\nattestor = \"{}\"\nslash_router = \"{}\"\nstart_block = {}\nrequest_timeout_secs = 10\n{extra_chain}\n\n[ipfs]\n{ipfs}\n\n{rest}\n",
        c.attestor, c.slash, c.deployed_at
    );
    let p = dir.join("nweb.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The backend of a loader that is waiting for the lock a test holds on
/// nweb.chain_blocks, i.e. stopped inside its batch transaction, after the
/// rows it writes before the block hashes.
pub async fn blocked_on_chain_blocks(db: &TestDb, child: &mut tokio::process::Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = db
            .client
            .query_opt(
                "SELECT pid FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'
                    AND query LIKE 'INSERT INTO nweb.chain_blocks%'",
                &[],
            )
            .await
            .unwrap();
        if let Some(r) = r {
            return r.get(0);
        }
        assert!(child.try_wait().unwrap().is_none(), "the loader finished without blocking");
        assert!(Instant::now() < deadline, "the loader never reached the block hashes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills the loader found by [`blocked_on_chain_blocks`], releases the
/// test's lock (`blocker` holds it in an open transaction) and waits until the
/// loader's session is gone, so its transaction has been rolled back.
pub async fn kill_blocked_loader(db: &TestDb, child: &mut tokio::process::Child, blocker: &Client, backend: i32) {
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    blocker.batch_execute("COMMIT").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while db
        .client
        .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&backend])
        .await
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the killed loader's session lingers");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn selector(sig: &str) -> String {
    hex::encode(&keccak256(sig.as_bytes())[..4])
}

pub async fn increase_time(p: &DynProvider, secs: u64) {
    raw(p, "evm_increaseTime", json!([secs])).await;
    mine(p, 1).await;
}

/// `"50.5"` GST in wei, and back.
pub fn gst_wei(s: &str) -> U256 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<18}");
    U256::from_str_radix(&format!("{int}{frac}"), 10).unwrap()
}
pub fn format_gst(wei: U256) -> String {
    let s = format!("{:0>19}", wei.to_string());
    let (int, frac) = s.split_at(s.len() - 18);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}
