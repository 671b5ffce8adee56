//! The bodies of the fuzz targets, kept out of `fuzz_targets/` so that the
//! replay test (`tests/replay.rs`) runs exactly what libFuzzer runs, on stable
//! and without libFuzzer.
//!
//! Each target asserts more than "no panic": an error must say where it is
//! (a field, a line inside the input, a CID), because these errors are what a
//! person gets to find the bad record, and output we write must pass our own
//! checks, or honest collectors would be challenged.

use serde_json::Value;
use xray_engine::contract::ErrorEntry;
use xray_engine::memory::MemoryStore;
use nweb::scanprint::{self, ScanprintContext};
use nweb::unixfs::{self, BlockSource, Limits};
use nweb::{bundle, car, jcs, merkle, Cid, NwebError};
use xray_engine::{diff_scan, ContractError, EngineConfig, ScanPayload};

/// What a DAG may unpack to. Far above what our inputs carry, so reaching it
/// means a DAG that describes more than it holds, and far below the malloc
/// limit the script sets, so that limit only ever catches a real bug.
const MAX_UNPACKED: u64 = 4 << 20;

/// Limits small enough that fuzzed inputs of a few KB reach every one of them, so the
/// limit paths are exercised, not only the defaults.
const TIGHT: Limits = Limits {
    max_block_bytes: 1 << 16,
    max_links: 256,
    max_blocks: 64,
    max_visits: 1 << 12,
    max_files: 256,
    max_path_bytes: 256,
    max_depth: 16,
    ..Limits::with_max_bytes(1 << 16)
};

/// The default limits for [`MAX_UNPACKED`], with fewer visits: a fuzzed fan-out
/// reaches any visit budget, and a million visits per input under ASan would leave
/// libFuzzer a few runs a second. The default budget is played in nweb's tests.
const LOOSE: Limits = Limits { max_visits: 1 << 16, ..Limits::with_max_bytes(MAX_UNPACKED) };

/// Every target by name, for the replay test.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("scan_payload", scan_payload),
    ("naabu_jsonl", naabu_jsonl),
    ("httpx_jsonl", httpx_jsonl),
    ("tlsx_jsonl", tlsx_jsonl),
    ("nuclei_jsonl", nuclei_jsonl),
    ("nmap_xml", nmap_xml),
    ("scanprint_nmap_xml", scanprint_nmap_xml),
    ("scanprint_masscan", scanprint_masscan),
    ("scanprint_jsonl", scanprint_jsonl),
    ("bundle_manifest", bundle_manifest),
    ("car", car),
    ("unixfs_dag", unixfs_dag),
];

// ---- the scan-result payload and the engine --------------------------------

pub fn scan_payload(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = EngineConfig::default();
    let from_text = ScanPayload::from_json_str(text);
    match &from_text {
        Ok(p) => run_engine(p, &config),
        Err(e) => assert_contract_error_named(e),
    }
    // The extension decodes jsonb through the Value path; it must agree with
    // the text path, or the same payload is accepted by one entry point and
    // refused by the other.
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        let from_value = ScanPayload::from_value(&value);
        if let Err(e) = &from_value {
            assert_contract_error_named(e);
        }
        match (&from_text, &from_value) {
            (Ok(a), Ok(b)) => assert_eq!(
                serde_json::to_value(a).unwrap(),
                serde_json::to_value(b).unwrap(),
                "the text and Value paths decode differently"
            ),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("text path {:?} but Value path {:?}", a.is_ok(), b.is_ok()),
        }
    }
}

fn assert_contract_error_named(e: &ContractError) {
    let field = match e {
        ContractError::Malformed { field, .. }
        | ContractError::Missing { field }
        | ContractError::WrongType { field, .. }
        | ContractError::InvalidUuid { field, .. }
        | ContractError::InvalidTimestamp { field, .. }
        | ContractError::InvalidValue { field, .. } => field.as_str(),
        ContractError::UnsupportedVersion { .. } => "schema_version",
    };
    assert!(!field.trim().is_empty(), "error without a field: {e:?}");
}

/// A first scan, then the same scan again over the state it left, so the
/// CHANGED/FIXED paths run too and not only NEW.
fn run_engine(payload: &ScanPayload, config: &EngineConfig) {
    let first = diff_scan(payload, &[], config);
    let mut store = MemoryStore::default();
    store.apply(&first);
    let prior = store.prior_for(payload);
    let _ = diff_scan(payload, &prior, config);
}

// ---- tool output ----------------------------------------------------------

/// Tool parsers never fail as a whole; each bad record is an error that must
/// point at a line of the input.
fn assert_tool_errors(text: &str, tool: &str, errors: &[ErrorEntry]) {
    let lines = text.matches('\n').count() + 1;
    for e in errors {
        assert_eq!(e.tool.as_deref(), Some(tool), "{e:?}");
        let line = e
            .details
            .as_ref()
            .and_then(|d| d.get("line"))
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("error without details.line: {e:?}")) as usize;
        assert!((1..=lines).contains(&line), "line {line} of {lines}: {e:?}");
        // Other kinds (httpx's network_error for a failed probe) are
        // observations, worded by the tool.
        if e.kind.as_deref() == Some("parse_error") {
            let message = e.message.as_deref().unwrap_or_default();
            assert!(message.starts_with(&format!("line {line}: ")), "{e:?}");
        }
    }
}

pub fn naabu_jsonl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let p = xray_parsers::parse_naabu(text);
    assert_tool_errors(text, "naabu", &p.errors);
    let _ = xray_parsers::naabu::group_by_target(&p.items);
}

pub fn httpx_jsonl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let p = xray_parsers::parse_httpx(text);
    assert_tool_errors(text, "httpx", &p.errors);
    for r in &p.items {
        let _ = r.to_value();
    }
}

pub fn tlsx_jsonl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let p = xray_parsers::parse_tlsx(text);
    assert_tool_errors(text, "tlsx", &p.errors);
    for r in &p.items {
        let _ = (r.to_value(), r.expired(), r.mismatched());
    }
}

pub fn nuclei_jsonl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let p = xray_parsers::parse_nuclei(text);
    assert_tool_errors(text, "nuclei", &p.errors);
}

pub fn nmap_xml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Scan for the first address in the input, so mutated hosts still match
    // and the per-host code runs.
    let ip = text
        .split("addr=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    for domain in [None, Some("example.com")] {
        let obs = xray_parsers::parse_nmap(text, ip, domain);
        assert_tool_errors(text, "nmap", &obs.errors);
    }
}

// ---- nweb: scanprint writers and readers -----------------------------------

fn ctx() -> ScanprintContext {
    ScanprintContext {
        vantage: "AS64500/fuzz".into(),
        options: None,
        tool_version: Some("1.3.2".into()),
    }
}

/// Errors must say where; a line number must lie inside the input.
fn assert_nweb_error_named(text_lines: Option<usize>, e: &NwebError) {
    match e {
        NwebError::Line { line, .. } | NwebError::LineJson { line, .. } => {
            assert!(*line >= 1, "{e:?}");
            if let Some(n) = text_lines {
                assert!(*line <= n, "line {line} of {n}: {e:?}");
            }
        }
        NwebError::Field { field, .. } => assert!(!field.is_empty(), "{e:?}"),
        NwebError::Block { cid, .. } => assert!(cid.parse::<Cid>().is_ok(), "{e:?}"),
        NwebError::Car(m) | NwebError::Json(m) => assert!(!m.is_empty(), "{e:?}"),
        NwebError::Limit { what, at, .. } => {
            assert!(!what.is_empty(), "{e:?}");
            if let Some(cid) = at {
                assert!(cid.parse::<Cid>().is_ok(), "{e:?}");
            }
        }
        _ => {}
    }
}

fn line_count(text: &str) -> usize {
    text.matches('\n').count() + 1
}

/// A converter's lines are what a collector publishes: they must pass the
/// verifier the indexers run, with the same root as the fast path.
fn assert_conversion_publishable(text: &str, conv: &scanprint::Conversion) {
    for e in &conv.errors {
        assert_nweb_error_named(Some(line_count(text)), e);
    }
    let jsonl = scanprint::to_jsonl(&conv.lines);
    let summary = bundle::check_scanprint(&jsonl)
        .unwrap_or_else(|e| panic!("our own scanprint fails the verifier: {e}\n{jsonl}"));
    assert_eq!(summary.lines, conv.lines.len());
    assert_eq!(merkle::scanprint_merkle_root(&jsonl).unwrap(), summary.merkle_root);
}

pub fn scanprint_nmap_xml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match scanprint::from_nmap_xml(text, &ctx()) {
        Ok(conv) => assert_conversion_publishable(text, &conv),
        Err(e) => assert_nweb_error_named(Some(line_count(text)), &e),
    }
}

pub fn scanprint_masscan(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    assert_conversion_publishable(text, &scanprint::from_masscan(text, &ctx()));
}

/// A scanprint file from a bundle: the fast root (which passes lines that look
/// canonical through unparsed) must hash exactly what full canonicalisation
/// gives, or two indexers disagree about a root.
pub fn scanprint_jsonl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let n = Some(line_count(text));
    let leaves = merkle::scanprint_leaves(text);
    let root = merkle::scanprint_merkle_root(text);
    match &leaves {
        Ok(leaves) => {
            let slow: Vec<Vec<u8>> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| jcs::canonicalize_str(l).expect("a leaf line canonicalises").into_bytes())
                .collect();
            assert_eq!(leaves, &slow, "fast and full canonicalisation differ");
            for leaf in leaves {
                let leaf = std::str::from_utf8(leaf).unwrap();
                assert_eq!(jcs::canonicalize_str(leaf).unwrap(), leaf, "JCS is not idempotent");
            }
            let root = root.as_ref().expect("leaves but no root");
            assert_eq!(root, &merkle::root_to_hex(&merkle::merkle_root_leaves(leaves)));
        }
        Err(e) => {
            assert_nweb_error_named(n, e);
            assert!(root.is_err(), "root of a file without leaves");
        }
    }
    match bundle::check_scanprint(text) {
        Ok(summary) => assert_eq!(Some(&summary.merkle_root), root.as_ref().ok()),
        Err(e) => assert_nweb_error_named(n, &e),
    }
    if let Some(first) = text.lines().position(|l| !l.trim().is_empty()) {
        if let (Ok((leaf, proof)), Ok(root)) = (merkle::scanprint_line_proof(text, first + 1), &root) {
            let line = std::str::from_utf8(&leaf).unwrap();
            assert_eq!(merkle::verify_scanprint_line(root, line, &proof), Ok(true));
        }
    }
}

pub fn bundle_manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = bundle::parse_manifest(text) {
        assert!(e.starts_with("manifest."), "error does not name the field: {e}");
    }
}

// ---- nweb: CAR and UnixFS from untrusted gateways ---------------------------

pub fn car(data: &[u8]) {
    let read = match car::read_car(data) {
        Ok(c) => c,
        Err(e) => return assert_nweb_error_named(None, &e),
    };
    for b in &read.blocks {
        car::verify_block(&b.cid, &b.data).expect("read_car returned an unverified block");
    }
    let unpacked = match car::unpack_car(data, None, MAX_UNPACKED) {
        Ok(u) => u,
        Err(e) => return assert_nweb_error_named(None, &e),
    };
    // What we accept we can write again, and it reads back the same.
    let again = car::write_car(&unpacked.root, &read.blocks).expect("re-export");
    assert_eq!(car::unpack_car(&again, None, MAX_UNPACKED).as_ref(), Ok(&unpacked));
    // Within tighter limits: either one of them is named, or the same result.
    match car::unpack_car_with(data, None, &TIGHT) {
        Ok(tight) => assert_eq!(tight, unpacked, "tighter limits changed the result"),
        Err(e) => assert!(e.is_limit(), "only a limit may fail under tighter limits: {e}"),
    }
    if let Ok(tight) = car::read_car_with(data, &TIGHT) {
        assert!(tight.blocks.len() <= TIGHT.max_blocks);
        assert!(tight.blocks.iter().all(|b| b.data.len() <= TIGHT.max_block_bytes));
    }
}

/// Blocks for [`unixfs_dag`]: any CID names the block its last digest byte
/// picks. libFuzzer cannot forge SHA-256, so this is how it gets to build
/// arbitrary DAGs (shared children, deep chains, odd links) that a hostile
/// gateway could serve with honest hashes.
pub struct AnyCid<'a>(pub Vec<&'a [u8]>);

impl BlockSource for AnyCid<'_> {
    fn block(&self, cid: &Cid) -> Option<&[u8]> {
        let pick = *cid.hash().digest().last()? as usize;
        self.0.get(pick % self.0.len()).copied()
    }
}

/// Splits the input into blocks at this separator; mutations keep the framing.
pub const BLOCK_SEPARATOR: &[u8] = b"\n--block--\n";

pub fn unixfs_dag(data: &[u8]) {
    let blocks = split_blocks(data);
    for b in &blocks {
        let _ = unixfs::decode_pb_node(b);
    }
    let root = dag_root();
    let _ = unixfs::links_of(&root, blocks[0]);
    let source = AnyCid(blocks);
    match unixfs::unpack_directory_with(&root, &source, &LOOSE) {
        Ok(files) => {
            let total: usize = files.iter().map(|(p, d)| p.len() + d.len()).sum();
            assert!(total as u64 <= 2 * MAX_UNPACKED, "unpacked {total} bytes");
        }
        Err(e) => assert_nweb_error_named(None, &e),
    }
    match unixfs::read_file_with(&root, &source, &LOOSE) {
        Ok(bytes) => assert!(bytes.len() as u64 <= MAX_UNPACKED),
        Err(e) => assert_nweb_error_named(None, &e),
    }
    // Within tighter limits every bound holds, and a success is the same success.
    let loose = unixfs::unpack_directory_with(&root, &source, &LOOSE);
    match unixfs::unpack_directory_with(&root, &source, &TIGHT) {
        Ok(files) => {
            assert!(files.len() <= TIGHT.max_files);
            assert!(files.iter().all(|(p, _)| p.len() <= TIGHT.max_path_bytes));
            let data: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
            assert!(data <= TIGHT.max_output_bytes);
            assert_eq!(loose.as_ref(), Ok(&files), "tighter limits changed the result");
        }
        Err(e) => {
            assert_nweb_error_named(None, &e);
            if !e.is_limit() {
                assert_eq!(loose.as_ref().err(), Some(&e), "a limit hid a format error or made one up");
            }
        }
    }
}

pub fn split_blocks(data: &[u8]) -> Vec<&[u8]> {
    let mut blocks = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(BLOCK_SEPARATOR.len()).position(|w| w == BLOCK_SEPARATOR) {
        blocks.push(&rest[..at]);
        rest = &rest[at + BLOCK_SEPARATOR.len()..];
    }
    blocks.push(rest);
    blocks
}

/// The root of an [`AnyCid`] DAG: block 0, as a dag-pb CID whose digest ends in 0.
pub fn dag_root() -> Cid {
    let mut root = vec![0x01, 0x70, 0x12, 0x20];
    root.extend([0u8; 32]);
    Cid::try_from(root.as_slice()).unwrap()
}
