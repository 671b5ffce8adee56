//! nweb SQL entry points: thin glue over `::nweb`. The tables, the ingest
//! functions and the rule views are in `sql/schema/nweb_*.sql` and call these.
//!
//! Every function here is pure (no SPI), so all are `immutable` and `parallel_safe`;
//! errors carry the SQLSTATE `NwebError::sqlstate` chooses, and their messages name the
//! line, field or CID at fault. pgrx declares them; their comments are in
//! `sql/schema/rust_functions.sql`.

use std::collections::BTreeMap;

use pgrx::prelude::*;
use pgrx::{AnyNumeric, Array, Inet, JsonB};
use serde_json::{json, Value};
use ::nweb::bridge::{self, BridgeAsset, BridgeBundle, BridgeRow};
use ::nweb::bundle::{self, AttestedClaims, BundleInput};
use ::nweb::merkle::{self, InclusionProof};
use ::nweb::rules::{self, Decimal, SubmissionKind};
use ::nweb::scanprint::{self, ScanprintContext};
use ::nweb::{car, jcs, unixfs, Cid, NwebError};

use crate::errors::raise;

/// Largest bundle unpacked from a CAR: a bytea cannot exceed 1 GB anyway.
const MAX_BUNDLE_BYTES: u64 = 1 << 30;

fn fail(e: NwebError) -> ! {
    raise(e.sqlstate(), e.to_string())
}

fn ok<T>(r: Result<T, NwebError>) -> T {
    r.unwrap_or_else(|e| fail(e))
}

fn cid_arg(field: &str, text: &str) -> Cid {
    text.trim().parse().unwrap_or_else(|e| raise("22P02", format!("{field}: {text:?} is not a CID ({e})")))
}

// --- Merkle (docs/design.md D6) ------------------------------------------------------------

/// RFC 6962 root of a scanprint file: each non-blank line in RFC 8785 form is a leaf.
#[pg_extern(immutable, strict, parallel_safe, name = "nweb_merkle_root")]
fn nweb_merkle_root_jsonl(jsonl: &str) -> String {
    ok(merkle::scanprint_merkle_root(jsonl))
}

/// RFC 6962 root of raw leaves, for checking against published test vectors.
#[pg_extern(immutable, strict, parallel_safe, name = "nweb_merkle_root")]
fn nweb_merkle_root_leaves(leaves: Array<'_, &[u8]>) -> String {
    let mut b = merkle::MerkleBuilder::new();
    for (i, leaf) in leaves.iter().enumerate() {
        let leaf = leaf.unwrap_or_else(|| raise("22004", format!("leaves[{}] is NULL", i + 1)));
        b.push_leaf(leaf);
    }
    merkle::root_to_hex(&b.root())
}

/// Inclusion proof for the scanprint line with 1-based file line number `line`.
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_merkle_proof(jsonl: &str, line: i32) -> JsonB {
    let line_no = usize::try_from(line).unwrap_or(0);
    let (leaf, proof) = ok(merkle::scanprint_line_proof(jsonl, line_no));
    let mut v = serde_json::to_value(&proof).unwrap_or(Value::Null);
    v["line"] = json!(line);
    v["leaf"] = json!(String::from_utf8_lossy(&leaf));
    v["root"] = json!(ok(merkle::scanprint_merkle_root(jsonl)));
    JsonB(v)
}

/// Does `line` (any formatting) sit under `root` as `proof` says?
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_merkle_verify(root: &str, line: &str, proof: JsonB) -> bool {
    let proof: InclusionProof = serde_json::from_value(proof.0)
        .unwrap_or_else(|e| raise("22023", format!("proof: {e} (expected leaf_index, tree_size, path)")));
    ok(merkle::verify_scanprint_line(root, line, &proof))
}

/// scanprint v0 JSONL from nmap `-oX` output. Records that cannot be read are reported
/// as WARNINGs and left out; a file that is not nmap XML at all is an ERROR.
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_scanprint_from_nmap(xml: &str, vantage: &str) -> String {
    let ctx = ScanprintContext { vantage: vantage.to_owned(), ..Default::default() };
    let conversion = ok(scanprint::from_nmap_xml(xml, &ctx));
    for e in &conversion.errors {
        pgrx::warning!("nweb_scanprint_from_nmap: {e}");
    }
    scanprint::to_jsonl(&conversion.lines)
}

// --- UnixFS and CAR (docs/design.md D7) -----------------------------------------------------

fn files_arg<'arr>(
    paths: &'arr Array<'_, &str>,
    contents: &'arr Array<'_, &[u8]>,
) -> Vec<(&'arr str, &'arr [u8])> {
    if paths.len() != contents.len() {
        raise(
            "22023",
            format!("paths has {} elements, contents {}; they must pair up", paths.len(), contents.len()),
        );
    }
    paths
        .iter()
        .zip(contents.iter())
        .enumerate()
        .map(|(i, (p, c))| match (p, c) {
            (Some(p), Some(c)) => (p, c),
            _ => raise("22004", format!("paths[{n}] or contents[{n}] is NULL", n = i + 1)),
        })
        .collect()
}

/// CID of the directory `ipfs add --cid-version=1 --raw-leaves --wrap-with-directory`
/// makes of these files (relative paths; subdirectories are implied).
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_unixfs_cid(paths: Array<'_, &str>, contents: Array<'_, &[u8]>) -> String {
    ok(unixfs::directory_cid(&files_arg(&paths, &contents))).to_string()
}

/// CID of one file added on its own (`ipfs add --cid-version=1 --raw-leaves`).
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_unixfs_file_cid(content: &[u8]) -> String {
    unixfs::file_cid(content).to_string()
}

/// A CARv1 of the wrapped directory of these files, root first, each block once.
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_car_export(paths: Array<'_, &str>, contents: Array<'_, &[u8]>) -> Vec<u8> {
    let dag = ok(unixfs::import_directory(&files_arg(&paths, &contents), unixfs::ImportParams::KUBO));
    ok(car::write_car(&dag.root, &dag.blocks))
}

fn unpack(car_bytes: &[u8], expected_root: Option<&str>) -> car::Unpacked {
    let expected = expected_root.map(|r| cid_arg("expected_root", r));
    ok(car::unpack_car(car_bytes, expected.as_ref(), MAX_BUNDLE_BYTES))
}

/// The files of a bundle CAR, every block verified against its CID and every block
/// under the root required. `expected_root` is the CID asked for; without it the CAR
/// header must name exactly one root.
#[pg_extern(immutable, parallel_safe)]
#[allow(clippy::type_complexity)]
fn nweb_car_files(
    car: Option<&[u8]>,
    expected_root: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (name!(path, String), name!(size, i64), name!(sha256, String), name!(content, Vec<u8>)),
> {
    let Some(car) = car else {
        return TableIterator::empty();
    };
    let unpacked = unpack(car, expected_root);
    TableIterator::new(unpacked.files.into_iter().map(|(path, content)| {
        let sha = bundle::sha256_hex(&content);
        (path, content.len() as i64, sha, content)
    }))
}

/// Text content of a bundle file, or why it cannot be stored as text.
fn as_text(path: &str, bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8 text"))?;
    if text.contains('\0') {
        return Err(format!("{path} contains a NUL byte"));
    }
    Ok(text.to_owned())
}

/// A bundle read from a CAR, split into what `nweb.ingest_car` needs: the root CID,
/// the manifest and scanprint texts, the SHA-256 of every file, and `unreadable` when
/// the manifest or the scanprint cannot even be read as text (a FORMAT_INVALID).
#[pg_extern(immutable, parallel_safe)]
#[allow(clippy::type_complexity)]
fn nweb_car_bundle(
    car: Option<&[u8]>,
    expected_root: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(cid, String),
        name!(manifest, Option<String>),
        name!(manifest_sha256, Option<String>),
        name!(scanprint, Option<String>),
        name!(file_sha256, JsonB),
        name!(bundle_bytes, i64),
        name!(unreadable, Option<String>),
    ),
> {
    let Some(car) = car else {
        return TableIterator::empty();
    };
    let unpacked = unpack(car, expected_root);
    let find = |p: &str| unpacked.files.iter().find(|(path, _)| path == p).map(|(_, b)| b.as_slice());
    let mut unreadable = None;
    let manifest_bytes = find(bundle::MANIFEST_PATH);
    let manifest =
        manifest_bytes.and_then(|b| as_text(bundle::MANIFEST_PATH, b).map_err(|e| unreadable = Some(e)).ok());
    // The manifest says where the scanprint is; the spec's path if it cannot be read.
    let scanprint_path = manifest
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .and_then(|v| v["scanprint"]["path"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "scanprint/scanprint.v0.jsonl".to_owned());
    let scanprint = find(&scanprint_path).and_then(|b| {
        as_text(&scanprint_path, b)
            .map_err(|e| {
                unreadable.get_or_insert(e);
            })
            .ok()
    });
    let files: serde_json::Map<String, Value> =
        unpacked.files.iter().map(|(p, b)| (p.clone(), json!(bundle::sha256_hex(b)))).collect();
    let total: u64 = unpacked.files.iter().map(|(_, b)| b.len() as u64).sum();
    TableIterator::once((
        unpacked.root.to_string(),
        manifest,
        manifest_bytes.map(bundle::sha256_hex),
        scanprint,
        JsonB(Value::Object(files)),
        i64::try_from(total).unwrap_or(i64::MAX),
        unreadable,
    ))
}

/// 0.6.0's nweb_cid_canonical, for the archived SQL that names this symbol: it left a
/// CIDv0 in base58 (`Qm…`), a second spelling of the same content.
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn nweb_cid_canonical(cid: &str) -> Option<String> {
    cid.trim().parse::<Cid>().ok().map(|c| c.to_string())
}

/// The one spelling of a CID (`nweb::rules::canonical_cid`: CIDv1 in lowercase base32,
/// a CIDv0 converted), or NULL if the text is not a CID.
#[pg_extern(immutable, strict, parallel_safe, name = "nweb_cid_canonical")]
fn nweb_cid_canonical_0_7(cid: &str) -> Option<String> {
    rules::canonical_cid(cid).ok()
}

// --- Bundles ------------------------------------------------------------------------

/// The JSON value of `text` when PostgreSQL can store it as jsonb (well-formed, no
/// duplicate keys, no NUL), else NULL.
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_json_or_null(text: &str) -> Option<JsonB> {
    let v = jcs::parse_strict(text).ok()?;
    (!bundle::contains_nul(&v)).then_some(JsonB(v))
}

fn file_map(files: Option<JsonB>) -> BTreeMap<String, String> {
    let Some(JsonB(v)) = files else {
        return BTreeMap::new();
    };
    let Value::Object(m) = v else {
        raise("22023", "artifacts: expected a JSON object {\"path\": \"<sha256 hex>\"}");
    };
    m.into_iter()
        .map(|(path, sha)| match sha {
            Value::String(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                (path, s.to_ascii_lowercase())
            }
            other => {
                raise("22023", format!("artifacts.{path}: expected 64 hex digits of SHA-256, got {other}"))
            }
        })
        .collect()
}

/// 0.7.0's nweb_bundle_verdict, for the archived SQL that names this symbol: it checked
/// the attested Merkle root only.
#[pg_extern(immutable, parallel_safe, sql = false)]
fn nweb_bundle_verdict(
    manifest: Option<&str>,
    scanprint: Option<&str>,
    artifacts: Option<JsonB>,
    attested_merkle_root: default!(Option<&str>, "NULL"),
    unreadable: default!(Option<&str>, "NULL"),
) -> JsonB {
    bundle_verdict(manifest, scanprint, artifacts, attested_merkle_root, unreadable, &AttestedClaims::default())
}

/// The verdict on a bundle as JSON: `status` (verified / invalid), `reason`,
/// `reason_detail`, the manifest's typed fields, the computed Merkle root and the
/// pricing class. `attested` is the payload of the ScanSubmission (every claim of it is
/// checked, `nweb::bundle::verify_attested`). Pure: `nweb.ingest_bundle` and
/// `nweb.ingest_car` record it.
#[pg_extern(immutable, parallel_safe, name = "nweb_bundle_verdict")]
fn nweb_bundle_verdict_0_8(
    manifest: Option<&str>,
    scanprint: Option<&str>,
    artifacts: Option<JsonB>,
    attested_merkle_root: default!(Option<&str>, "NULL"),
    unreadable: default!(Option<&str>, "NULL"),
    attested: default!(Option<JsonB>, "NULL"),
) -> JsonB {
    let claims = attested.map(|j| AttestedClaims::from_submission_json(&j.0)).unwrap_or_default();
    bundle_verdict(manifest, scanprint, artifacts, attested_merkle_root, unreadable, &claims)
}

/// The first claim of a ScanSubmission payload that a bundle recorded before it was seen
/// contradicts (`nweb::bundle::AttestedClaims::mismatch_with`), or NULL. The recheck of
/// `nweb.recheck_bundle` calls it with the columns of `nweb.bundles`, so a bundle loaded
/// first is held to the same claims as one loaded after its submission.
#[pg_extern(immutable, parallel_safe)]
fn nweb_attested_mismatch(
    attested: Option<JsonB>,
    manifest_sha256: Option<&str>,
    dataset_type: Option<&str>,
    tool: Option<&str>,
    vantage: Option<&str>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
) -> Option<String> {
    let claims = AttestedClaims::from_submission_json(&attested?.0);
    // Only a verified bundle has every fact; an unchecked one has nothing to contradict.
    let facts = bundle::BundleFacts {
        manifest_sha256,
        dataset_type: dataset_type?,
        tool: tool?,
        vantage: vantage?,
        started_at: u64::try_from(started_at?).ok()?,
        finished_at: u64::try_from(finished_at?).ok()?,
    };
    claims.mismatch_with(&facts)
}

fn bundle_verdict(
    manifest: Option<&str>,
    scanprint: Option<&str>,
    artifacts: Option<JsonB>,
    attested_merkle_root: Option<&str>,
    unreadable: Option<&str>,
    claims: &AttestedClaims,
) -> JsonB {
    let files = file_map(artifacts);
    let verdict = bundle::verify_attested(
        &BundleInput { manifest, scanprint, file_sha256: &files, attested_merkle_root },
        claims,
    );
    let mut v = serde_json::to_value(&verdict).unwrap_or_else(|e| raise("XX000", format!("verdict: {e}")));
    if let Some(problem) = unreadable {
        v["status"] = json!("invalid");
        v["reason"] = json!("FORMAT_INVALID");
        v["reason_detail"] = json!(problem);
    }
    JsonB(v)
}

/// Unix seconds to timestamptz.
fn pg_time(unix: u64) -> TimestampWithTimeZone {
    const PG_EPOCH_UNIX: i64 = 946_684_800;
    let micros = (unix as i64 - PG_EPOCH_UNIX) * 1_000_000;
    TimestampWithTimeZone::try_from(micros)
        .unwrap_or_else(|_| raise("22008", format!("time {unix} is out of range")))
}

/// Lines of a scanprint file, one typed row each, read lazily so a file of millions of
/// lines is never held as rows. Meant for bundles `nweb_bundle_verdict` passed; any
/// bad line is an ERROR naming its number.
type ScanprintRowTuple = (
    i32,
    TimestampWithTimeZone,
    Inet,
    i32,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i32>,
    String,
    Option<String>,
    Option<String>,
    String,
);

struct LazyLines {
    text: String,
    pos: usize,
    line: usize,
}

impl Iterator for LazyLines {
    type Item = ScanprintRowTuple;

    fn next(&mut self) -> Option<Self::Item> {
        while self.pos < self.text.len() {
            let rest = &self.text[self.pos..];
            let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
            let raw = rest[..end].trim_end_matches('\n').trim_end_matches('\r');
            self.pos += end;
            self.line += 1;
            if let Some(r) = ok(bundle::parse_scanprint_line(self.line, raw)) {
                return Some((
                    i32::try_from(r.line).unwrap_or(i32::MAX),
                    pg_time(r.ts),
                    Inet(r.ip),
                    i32::from(r.port),
                    r.proto,
                    r.state,
                    r.service,
                    r.product,
                    r.version,
                    r.banner_sha256,
                    r.cert_fpr,
                    r.tls_ja3,
                    r.latency_ms,
                    r.tool,
                    r.tool_version,
                    r.options,
                    r.vantage,
                ));
            }
        }
        None
    }
}

#[pg_extern(immutable, strict, parallel_safe)]
#[allow(clippy::type_complexity)]
fn nweb_scanprint_rows(
    jsonl: &str,
) -> TableIterator<
    'static,
    (
        name!(line_no, i32),
        name!(ts, TimestampWithTimeZone),
        name!(ip, Inet),
        name!(port, i32),
        name!(proto, String),
        name!(state, String),
        name!(service, Option<String>),
        name!(product, Option<String>),
        name!(version, Option<String>),
        name!(banner_sha256, Option<String>),
        name!(cert_fpr, Option<String>),
        name!(tls_ja3, Option<String>),
        name!(latency_ms, Option<i32>),
        name!(tool, String),
        name!(tool_version, Option<String>),
        name!(options, Option<String>),
        name!(vantage, String),
    ),
> {
    TableIterator::new(LazyLines { text: jsonl.to_owned(), pos: 0, line: 0 })
}

// --- Rules --------------------------------------------------------------------------

fn decimal_arg(field: &str, n: &AnyNumeric) -> Decimal {
    let text = n.to_string();
    text.parse().unwrap_or_else(|_| raise("22023", format!("{field}: {text} must be a finite number >= 0")))
}

fn numeric(d: &Decimal) -> AnyNumeric {
    AnyNumeric::try_from(d.to_string().as_str())
        .unwrap_or_else(|e| raise("XX000", format!("numeric {d}: {e}")))
}

/// `floor(sqrt(stake) * (1 + rep_factor))`, exact; 0 below the 100 GST minimum stake.
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_quota_units(stake: AnyNumeric, rep_factor: AnyNumeric) -> i64 {
    let units = rules::quota_units(&decimal_arg("stake", &stake), &decimal_arg("rep_factor", &rep_factor));
    i64::try_from(units).unwrap_or(i64::MAX)
}

/// Quota units of one submission of a kind (masscan-quick 1, nmap-top1k 2, nmap-full 5,
/// diff/enrich 1).
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_submission_cost(kind: &str) -> i32 {
    let kind: SubmissionKind = kind.parse().unwrap_or_else(|e: String| raise("22023", e));
    kind.cost() as i32
}

/// The submission kind of a dataset type and (for nmap) its scan options, or NULL for
/// an unknown dataset type.
#[pg_extern(immutable, parallel_safe)]
fn nweb_cost_kind(dataset_type: Option<&str>, options: default!(Option<&str>, "NULL")) -> Option<&'static str> {
    SubmissionKind::classify(dataset_type?, options).map(SubmissionKind::as_str)
}

/// 10 % of the stake, half to the challenger and the rest burned, exact.
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_slash_split(
    stake: AnyNumeric,
) -> TableIterator<
    'static,
    (name!(slashed, AnyNumeric), name!(to_challenger, AnyNumeric), name!(burned, AnyNumeric)),
> {
    let s = rules::slash_split(&decimal_arg("stake", &stake));
    TableIterator::once((numeric(&s.slashed), numeric(&s.to_challenger), numeric(&s.burned)))
}

/// When a challenge filed at `filed_at` leaves its grace period (72 h later).
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_grace_ends_at(filed_at: TimestampWithTimeZone) -> TimestampWithTimeZone {
    let micros: i64 = filed_at.into();
    // Infinite timestamps are the extremes of i64 and stay where they are.
    if micros == i64::MAX || micros == i64::MIN {
        return filed_at;
    }
    TimestampWithTimeZone::try_from(rules::grace_ends_at(micros))
        .unwrap_or_else(|_| raise("22008", "grace end is out of range"))
}

/// `in_grace`, `resolved` or `slashable` (see `rules::challenge_state`): the grace
/// period includes its last instant, and a Resolution after it does not count.
#[pg_extern(immutable, parallel_safe)]
fn nweb_challenge_state(
    grace_ends_at: Option<TimestampWithTimeZone>,
    first_resolution_at: Option<TimestampWithTimeZone>,
    as_of: Option<TimestampWithTimeZone>,
) -> Option<&'static str> {
    let state =
        rules::challenge_state(grace_ends_at?.into(), first_resolution_at.map(Into::into), as_of?.into());
    Some(state.as_str())
}

/// Start of the quota window that ends at `as_of` (a rolling 24 h).
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_quota_window_start(as_of: TimestampWithTimeZone) -> TimestampWithTimeZone {
    let micros: i64 = as_of.into();
    TimestampWithTimeZone::try_from(micros.saturating_sub(rules::QUOTA_WINDOW_SECONDS * 1_000_000))
        .unwrap_or_else(|_| raise("22008", "quota window start is out of range"))
}

/// Reputation points of one submission (see `rules::reputation_points`).
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_reputation_points(cost_units: i32, vantage_share: f64, age_seconds: f64) -> f64 {
    rules::reputation_points(u32::try_from(cost_units).unwrap_or(0), vantage_share, age_seconds)
}

/// `floor6(reputation / (reputation + 10))`.
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_rep_factor(reputation: f64) -> AnyNumeric {
    numeric(&rules::rep_factor(reputation))
}

// --- Bridge -------------------------------------------------------------------------

fn from_json<T: serde::de::DeserializeOwned>(field: &str, v: Value) -> T {
    serde_json::from_value(v).unwrap_or_else(|e| raise("22023", format!("{field}: {e}")))
}

/// The xray scan payload (schema 1.2) for one bundle's rows that touch the tenant's
/// assets, or NULL when none does. See `::nweb::bridge`.
#[pg_extern(immutable, strict, parallel_safe)]
fn nweb_bridge_payload(tenant_id: pgrx::Uuid, bundle: JsonB, assets: JsonB, rows: JsonB) -> Option<JsonB> {
    let tenant = uuid::Uuid::from_bytes(*tenant_id.as_bytes());
    let bundle: BridgeBundle = from_json("bundle", bundle.0);
    let assets: Vec<BridgeAsset> = from_json("assets", assets.0);
    let rows: Vec<BridgeRow> = from_json("rows", rows.0);
    ok(bridge::bridge_payload(&tenant, &bundle, &assets, &rows)).map(JsonB)
}
