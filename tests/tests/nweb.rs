//! nweb in the database (docs/nweb.md): Merkle functions, UnixFS CIDs and CARs, bundle
//! verification and loading, attestations, challenges, quota and reputation, and the
//! bridge into xray, all against the real PostgreSQL with a fresh database per test.

use std::path::PathBuf;

use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;
use nweb::bundle::sha256_hex;
use nweb::{merkle, unixfs};
use xray_tests::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A fresh database whose session shows timestamps in UTC, since tests compare them as text.
async fn nweb_db() -> TestDb {
    let db = TestDb::new().await;
    db.client.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    db
}

/// Runs a statement that must fail; returns (SQLSTATE, message).
async fn sql_error(client: &Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> (String, String) {
    let err = client.query(sql, params).await.expect_err(&format!("{sql} should fail"));
    let db = err.as_db_error().unwrap_or_else(|| panic!("not a database error: {err}"));
    (db.code().code().to_string(), db.message().to_string())
}

async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> T {
    client.query_one(sql, params).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

/// A scanprint v0 line.
fn line(ip: &str, port: u16, state: &str, ts: i64) -> Value {
    json!({
        "ts": ts, "ip": ip, "port": port, "proto": "tcp", "state": state,
        "service": if state == "open" { json!("ssh") } else { Value::Null },
        "product": null, "version": null, "banner_sha256": null, "cert_fpr": null,
        "tool": "nmap", "tool_version": "7.95", "options": "-sV -p 22,443", "vantage": "AS64500/test",
    })
}

/// A bundle built the way a collector builds one.
#[derive(Clone)]
struct Bundle {
    manifest: Value,
    scanprint: String,
    nmap_xml: Vec<u8>,
}

impl Bundle {
    fn new(lines: &[Value], started_at: i64) -> Bundle {
        let scanprint: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let nmap_xml = format!("<nmaprun start=\"{started_at}\"/>").into_bytes();
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
            "startedAt": started_at,
            "finishedAt": started_at + 60,
        });
        Bundle { manifest, scanprint, nmap_xml }
    }

    fn manifest_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.manifest).unwrap()
    }

    fn files(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            ("manifest.json".into(), self.manifest_bytes()),
            ("raw/nmap.xml".into(), self.nmap_xml.clone()),
            ("scanprint/scanprint.v0.jsonl".into(), self.scanprint.clone().into_bytes()),
        ]
    }

    fn cid(&self) -> String {
        let files = self.files();
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
        unixfs::directory_cid(&refs).unwrap().to_string()
    }

    /// What an indexer that fetched the bundle knows: the SHA-256 of every file.
    fn artifacts(&self) -> Value {
        Value::Object(self.files().into_iter().map(|(p, d)| (p, json!(sha256_hex(&d)))).collect())
    }
}

/// (status, reason, reason_detail) after `nweb.ingest_bundle`.
async fn ingest(client: &Client, b: &Bundle) -> (String, Option<String>, Option<String>) {
    let row = client
        .query_one(
            "SELECT status, reason, reason_detail FROM nweb.ingest_bundle($1, $2, $3, $4)",
            &[&b.cid(), &b.manifest, &b.scanprint, &b.artifacts()],
        )
        .await
        .unwrap_or_else(|e| panic!("ingest_bundle: {e}"));
    (row.get(0), row.get(1), row.get(2))
}

async fn rows_of(client: &Client, cid: &str) -> i64 {
    one(client, "SELECT count(*) FROM nweb.scanprint WHERE bundle_cid = $1", &[&cid]).await
}

/// Inserts an attestation as the loader does (idempotent on the log position).
#[allow(clippy::too_many_arguments)]
async fn attest(
    client: &Client,
    kind: &str,
    n: u32,
    attester: &str,
    at: &str,
    uid: Option<&str>,
    payload: Value,
) -> u64 {
    let tx = format!("0x{n:064x}");
    let block_hash = format!("0x{:064x}", 1_000_000 + n);
    client
        .execute(
            "INSERT INTO nweb.attestations
                 (kind, chain_id, tx_hash, log_index, block_number, block_hash, block_time, uid, attester, payload)
             VALUES ($1, 8453, $2, 0, $3, $4, $5::text::timestamptz, $6, $7, $8)
             ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING",
            &[&kind, &tx, &i64::from(n), &block_hash, &at, &uid, &attester, &payload],
        )
        .await
        .unwrap_or_else(|e| panic!("attest {kind}: {e}"))
}

fn addr(c: char) -> String {
    format!("0x{}", c.to_string().repeat(40))
}

fn uid(n: u8) -> String {
    format!("0x{}", format!("{n:02x}").repeat(32))
}

fn fixture_bundle_dir() -> PathBuf {
    fixtures_dir().join("nweb/bundle-nmap-localhost")
}

fn fixture_bundle_files() -> (Vec<String>, Vec<Vec<u8>>) {
    let paths = ["manifest.json", "raw/nmap.xml", "scanprint/scanprint.v0.jsonl"];
    let contents = paths.iter().map(|p| std::fs::read(fixture_bundle_dir().join(p)).unwrap()).collect();
    (paths.iter().map(|p| p.to_string()).collect(), contents)
}

/// CID of fixtures/nweb/bundle-nmap-localhost, cross-checked with rust-unixfs 0.6.0.
const FIXTURE_BUNDLE_CID: &str = "bafybeiahuv7unoyy2pirzruchteoy7cydvcsft5ksq3waw2czv2yn6qqui";

// ---------------------------------------------------------------------------
// Merkle (docs/design.md D6)
// ---------------------------------------------------------------------------

/// Certificate Transparency reference leaves and roots for tree sizes 0..=8
/// (transparency-dev/merkle testonly).
const CT_LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];
const CT_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[tokio::test]
async fn merkle_root_of_raw_leaves_matches_the_ct_vectors() {
    let db = nweb_db().await;
    for (size, want) in CT_ROOTS.iter().enumerate() {
        let leaves: Vec<&[u8]> = CT_LEAVES[..size].to_vec();
        let got: String = one(&db.client, "SELECT nweb_merkle_root($1::bytea[])", &[&leaves]).await;
        assert_eq!(got, format!("0x{want}"), "tree size {size}");
    }
    // A NULL leaf is refused, not skipped.
    let (code, msg) =
        sql_error(&db.client, "SELECT nweb_merkle_root(ARRAY['\\x00'::bytea, NULL])", &[]).await;
    assert_eq!((code.as_str(), msg.as_str()), ("22004", "leaves[2] is NULL"));
    db.finish().await;
}

#[tokio::test]
async fn merkle_root_of_jsonl_is_rfc6962_over_jcs_lines() {
    let db = nweb_db().await;
    let jsonl = "{\"port\": 443, \"ip\": \"203.0.113.42\"}\n\n{\"b\":1.50,\"a\":\"\\u00e9\"}\r\n";
    let root: String = one(&db.client, "SELECT nweb_merkle_root($1::text)", &[&jsonl]).await;
    // The same root from the canonical lines as raw leaves, written out by hand.
    let canonical: Vec<&[u8]> =
        vec![br#"{"ip":"203.0.113.42","port":443}"#, "{\"a\":\"é\",\"b\":1.5}".as_bytes()];
    let by_leaves: String = one(&db.client, "SELECT nweb_merkle_root($1::bytea[])", &[&canonical]).await;
    assert_eq!(root, by_leaves);
    // Empty file: the empty tree.
    let empty: String = one(&db.client, "SELECT nweb_merkle_root(''::text)", &[]).await;
    assert_eq!(empty, format!("0x{}", CT_ROOTS[0]));
    // Pure functions are declared so.
    let flags: Vec<(String, String, bool, String)> = db
        .client
        .query(
            "SELECT proname::text, pg_get_function_identity_arguments(oid), proisstrict, provolatile::text || proparallel::text
               FROM pg_proc WHERE proname IN ('nweb_merkle_root', 'nweb_merkle_proof', 'nweb_merkle_verify')
              ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(flags.len(), 4, "{flags:?}");
    for (name, args, strict, vol_par) in &flags {
        assert!(*strict, "{name}({args}) strict");
        assert_eq!(vol_par, "is", "{name}({args}) immutable, parallel safe");
    }
    db.finish().await;
}

#[tokio::test]
async fn merkle_proofs_round_trip_and_tampering_fails() {
    let db = nweb_db().await;
    let lines: Vec<String> =
        (0..7).map(|i| line("192.0.2.1", 20 + i, "open", 1_700_000_000).to_string()).collect();
    // A blank line in the middle: line numbers count it, leaves do not.
    let jsonl = format!("{}\n\n{}\n", lines[..3].join("\n"), lines[3..].join("\n"));
    let root: String = one(&db.client, "SELECT nweb_merkle_root($1::text)", &[&jsonl]).await;
    let file_lines: Vec<&str> = jsonl.lines().collect();
    let mut checked = 0;
    for (i, text) in file_lines.iter().enumerate() {
        let n = i as i32 + 1;
        if text.is_empty() {
            let (code, msg) = sql_error(&db.client, "SELECT nweb_merkle_proof($1, $2)", &[&jsonl, &n]).await;
            assert_eq!(code, "22023");
            assert!(msg.contains("line 4 is blank"), "{msg}");
            continue;
        }
        let proof: Value = one(&db.client, "SELECT nweb_merkle_proof($1, $2)", &[&jsonl, &n]).await;
        assert_eq!(proof["root"], json!(root));
        assert_eq!(proof["tree_size"], 7);
        assert_eq!(proof["line"], n);
        let verify = "SELECT nweb_merkle_verify($1, $2, $3)";
        assert!(one::<bool>(&db.client, verify, &[&root, text, &proof]).await, "line {n}");
        // The same record reformatted still verifies (JCS).
        let v: Value = serde_json::from_str(text).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        assert!(one::<bool>(&db.client, verify, &[&root, &pretty, &proof]).await);
        // A changed value does not.
        let tampered = text.replace("\"open\"", "\"closed\"");
        assert!(!one::<bool>(&db.client, verify, &[&root, &tampered, &proof]).await);
        // Nor a changed path element, nor another root.
        let mut bad_path = proof.clone();
        let first = bad_path["path"][0].as_str().unwrap().to_owned();
        let flipped = format!("{}{}", &first[..65], if first.ends_with('0') { "1" } else { "0" });
        bad_path["path"][0] = json!(flipped);
        assert!(!one::<bool>(&db.client, verify, &[&root, text, &bad_path]).await);
        let other_root = format!("0x{}", CT_ROOTS[8]);
        assert!(!one::<bool>(&db.client, verify, &[&other_root, text, &proof]).await);
        checked += 1;
    }
    assert_eq!(checked, 7);
    let (code, _) = sql_error(
        &db.client,
        "SELECT nweb_merkle_verify('0x12', '{}', '{\"leaf_index\":0,\"tree_size\":1,\"path\":[]}')",
        &[],
    )
    .await;
    assert_eq!(code, "22023");
    let (code, msg) =
        sql_error(&db.client, "SELECT nweb_merkle_verify($1, '{}', '{\"leaf_index\":0}')", &[&root]).await;
    assert_eq!(code, "22023");
    assert!(msg.starts_with("proof:"), "{msg}");
    db.finish().await;
}

#[tokio::test]
async fn a_bad_line_is_an_error_naming_it_with_its_sqlstate() {
    let db = nweb_db().await;
    let (code, msg) =
        sql_error(&db.client, "SELECT nweb_merkle_root($1::text)", &[&"{\"a\":1}\n\n[1,2]\n"]).await;
    assert_eq!((code.as_str(), msg.as_str()), ("22023", "line 3: not a JSON object"));
    let (code, msg) =
        sql_error(&db.client, "SELECT nweb_merkle_root($1::text)", &[&"{\"a\":1}\n{\"a\":\n"]).await;
    assert_eq!(code, "22P02");
    assert!(msg.starts_with("line 2: invalid JSON"), "{msg}");
    let (code, msg) =
        sql_error(&db.client, "SELECT nweb_merkle_root($1::text)", &[&"{\"a\":1,\"a\":2}"]).await;
    assert_eq!(code, "22P02");
    assert!(msg.contains("duplicate"), "{msg}");
    let (code, msg) = sql_error(&db.client, "SELECT nweb_merkle_proof($1, 9)", &[&"{\"a\":1}\n"]).await;
    assert_eq!(code, "22023");
    assert!(msg.contains("there is no line 9"), "{msg}");
    db.finish().await;
}

#[tokio::test]
async fn scanprint_from_nmap_matches_the_fixture_bundle() {
    let db = nweb_db().await;
    let xml = std::fs::read_to_string(fixture_bundle_dir().join("raw/nmap.xml")).unwrap();
    let want = std::fs::read_to_string(fixture_bundle_dir().join("scanprint/scanprint.v0.jsonl")).unwrap();
    let got: String =
        one(&db.client, "SELECT nweb_scanprint_from_nmap($1, 'AS64500/fixture-lab')", &[&xml]).await;
    assert_eq!(got, want);
    let (code, _) = sql_error(&db.client, "SELECT nweb_scanprint_from_nmap('not xml', 'v')", &[]).await;
    assert!(code == "22023" || code == "22P02", "{code}");
    db.finish().await;
}

// ---------------------------------------------------------------------------
// UnixFS and CAR (docs/design.md D7)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unixfs_cids_match_the_spec_vectors() {
    let db = nweb_db().await;
    let file = "SELECT nweb_unixfs_file_cid($1)";
    let cases: [(&[u8], &str); 3] = [
        (b"", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
        (b"hello world\n", "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"),
        (b"hello application/vnd.ipld.car\n", "bafkreifkam6ns4aoolg3wedr4uzrs3kvq66p4pecirz6y2vlrngla62mxm"),
    ];
    for (content, want) in cases {
        assert_eq!(one::<String>(&db.client, file, &[&content]).await, want);
    }
    // gateway-conformance subdir-with-two-single-block-files.car, as `ipfs add -w`.
    let paths = vec!["subdir/hello.txt", "subdir/ascii.txt"];
    let contents: Vec<&[u8]> = vec![b"hello world\n", b"hello application/vnd.ipld.car\n"];
    let dir: String = one(&db.client, "SELECT nweb_unixfs_cid($1, $2)", &[&paths, &contents]).await;
    assert_eq!(dir, "bafybeietjm63oynimmv5yyqay33nui4y4wx6u3peezwetxgiwvfmelutzu");
    let empty: String = one(&db.client, "SELECT nweb_unixfs_cid('{}'::text[], '{}'::bytea[])", &[]).await;
    assert_eq!(empty, "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354");
    let (code, _) =
        sql_error(&db.client, "SELECT nweb_unixfs_cid(ARRAY['a','b'], ARRAY['\\x00'::bytea])", &[]).await;
    assert_eq!(code, "22023");
    let (code, msg) =
        sql_error(&db.client, "SELECT nweb_unixfs_cid(ARRAY['../x'], ARRAY['\\x00'::bytea])", &[]).await;
    assert_eq!(code, "22023");
    assert!(msg.contains("../x"), "{msg}");
    db.finish().await;
}

/// A 1.1 MiB file (five 262144-byte chunks), generated inside PostgreSQL as SHA-256 in
/// counter mode. Its CID was computed independently with rust-unixfs 0.6.0.
#[tokio::test]
async fn a_multi_chunk_file_gets_kubos_cid_in_sql_and_through_a_car() {
    let db = nweb_db().await;
    let generate =
        "SELECT substring(string_agg(sha256(int8send(i)), ''::bytea ORDER BY i) FROM 1 FOR 1148576)
                      FROM generate_series(0::bigint, 35892) AS i";
    let data: Vec<u8> = one(&db.client, generate, &[]).await;
    assert_eq!(data.len(), 1_148_576);
    let cid: String = one(&db.client, "SELECT nweb_unixfs_file_cid($1)", &[&data]).await;
    assert_eq!(cid, "bafybeibenjregpbtmrpgw7xlxx7rmftsc5ona72kysgwq3yjeoouvrh334");

    let paths = vec!["raw/nmap.xml"];
    let contents = vec![data.clone()];
    let car: Vec<u8> = one(&db.client, "SELECT nweb_car_export($1, $2)", &[&paths, &contents]).await;
    let row = db
        .client
        .query_one("SELECT path, size, sha256, content FROM nweb_car_files($1)", &[&car])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "raw/nmap.xml");
    assert_eq!(row.get::<_, i64>(1), 1_148_576);
    assert_eq!(row.get::<_, String>(2), sha256_hex(&data));
    assert_eq!(row.get::<_, Vec<u8>>(3), data);
    db.finish().await;
}

#[tokio::test]
async fn car_import_verifies_every_block_and_names_the_bad_one() {
    let db = nweb_db().await;
    let (paths, contents) = fixture_bundle_files();
    let car: Vec<u8> = one(&db.client, "SELECT nweb_car_export($1, $2)", &[&paths, &contents]).await;
    let root: String = one(&db.client, "SELECT cid FROM nweb_car_bundle($1)", &[&car]).await;
    assert_eq!(root, FIXTURE_BUNDLE_CID);
    let files: Vec<(String, String)> = db
        .client
        .query("SELECT path, sha256 FROM nweb_car_files($1, $2) ORDER BY path", &[&car, &FIXTURE_BUNDLE_CID])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want: Vec<(String, String)> =
        paths.iter().cloned().zip(contents.iter().map(|c| sha256_hex(c))).collect();
    assert_eq!(files, want);

    // Truncated: the last block (depth-first, the scanprint file) is cut short.
    let scanprint_cid = unixfs::file_cid(&contents[2]).to_string();
    let (code, msg) = sql_error(
        &db.client,
        "SELECT * FROM nweb_car_files(substring($1::bytea FROM 1 FOR octet_length($1::bytea) - 10))",
        &[&car],
    )
    .await;
    assert_eq!(code, "22P03");
    assert!(msg.starts_with(&format!("block {scanprint_cid}: truncated CAR")), "{msg}");

    // One flipped bit inside raw/nmap.xml's block.
    let xml_cid = unixfs::file_cid(&contents[1]).to_string();
    let (code, msg) = sql_error(
        &db.client,
        "SELECT * FROM nweb_car_files(set_byte($1::bytea, position('nmaprun'::bytea IN $1::bytea) + 2,
                                               get_byte($1::bytea, position('nmaprun'::bytea IN $1::bytea) + 2) # 1))",
        &[&car],
    )
    .await;
    assert_eq!(code, "22P03");
    assert_eq!(
        msg,
        format!("block {xml_cid}: the block's bytes do not hash to its CID (corrupted or forged)")
    );

    // Asked for another root: it is not in the CAR.
    let other = unixfs::file_cid(b"something else").to_string();
    let (code, msg) = sql_error(&db.client, "SELECT * FROM nweb_car_files($1, $2)", &[&car, &other]).await;
    assert_eq!(code, "22P03");
    assert!(msg.starts_with(&format!("block {other}: missing")), "{msg}");
    let (code, _) = sql_error(&db.client, "SELECT * FROM nweb_car_files($1, 'not-a-cid')", &[&car]).await;
    assert_eq!(code, "22P02");
    db.finish().await;
}

// ---------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_fixture_bundle_ingests_from_a_car_as_verified_typed_rows() {
    let db = nweb_db().await;
    let (paths, contents) = fixture_bundle_files();
    let car: Vec<u8> = one(&db.client, "SELECT nweb_car_export($1, $2)", &[&paths, &contents]).await;
    let row = db
        .client
        .query_one(
            "SELECT cid, status, reason, merkle_root, computed_merkle_root, manifest_sha256, scanprint_lines,
                    bundle_bytes, cost_kind, cost_units, vantage, scan_started_at::text
               FROM nweb.ingest_car($1, $2)",
            &[&car, &FIXTURE_BUNDLE_CID],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), FIXTURE_BUNDLE_CID);
    assert_eq!(row.get::<_, String>(1), "verified");
    assert_eq!(row.get::<_, Option<String>>(2), None);
    assert_eq!(row.get::<_, String>(3), "0x61b24915ef6cb2e976c41c69849f8e9e701ff7c6453adb22824a95ee97d742ea");
    assert_eq!(row.get::<_, String>(3), row.get::<_, String>(4));
    assert_eq!(row.get::<_, String>(5), sha256_hex(&contents[0]));
    assert_eq!(row.get::<_, i32>(6), 3);
    assert_eq!(row.get::<_, i64>(7), contents.iter().map(|c| c.len() as i64).sum::<i64>());
    assert_eq!((row.get::<_, String>(8), row.get::<_, i32>(9)), ("nmap-top1k".to_string(), 2));
    assert_eq!(row.get::<_, String>(10), "AS64500/fixture-lab");
    assert_eq!(row.get::<_, String>(11), "2026-11-20 22:37:14+00");

    type Typed = (String, i32, String, Option<String>, Option<String>, String);
    let typed: Vec<Typed> = db
        .client
        .query(
            "SELECT host(ip), port, state, service, cert_fpr, ts::text FROM nweb.scanprint ORDER BY port",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(typed.len(), 3);
    assert_eq!(
        typed[0],
        ("127.0.0.1".into(), 18022, "open".into(), Some("ssh".into()), None, "2026-11-20 22:37:14+00".into())
    );
    assert_eq!(
        typed[1].4.as_deref(),
        Some("sha256:a58e09e0d79e0acb68e20466f8d2f3a9d997347426c11a06bd0141ae75de739c")
    );
    assert_eq!(typed[2].2, "closed");
    let open: Vec<i32> = db
        .client
        .query("SELECT port FROM nweb.v_open_ports WHERE ip = '127.0.0.1' ORDER BY port", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(open, [18022, 18443]);
    db.finish().await;
}

#[tokio::test]
async fn a_verified_bundle_is_idempotent_and_cannot_change_its_content() {
    let db = nweb_db().await;
    let b = Bundle::new(
        &[
            line("203.0.113.10", 22, "open", 1_770_000_000),
            line("203.0.113.10", 443, "closed", 1_770_000_001),
        ],
        1_770_000_000,
    );
    assert_eq!(ingest(&db.client, &b).await, ("verified".into(), None, None));
    let first: String = one(&db.client, "SELECT checked_at::text FROM nweb.bundles", &[]).await;
    assert_eq!(rows_of(&db.client, &b.cid()).await, 2);
    // Again, in another transaction: same answer, nothing new.
    assert_eq!(ingest(&db.client, &b).await, ("verified".into(), None, None));
    assert_eq!(rows_of(&db.client, &b.cid()).await, 2);
    assert_eq!(one::<String>(&db.client, "SELECT checked_at::text FROM nweb.bundles", &[]).await, first);
    assert_eq!(count(&db.client, "nweb.bundles").await, 1);
    // The same CID with another manifest is a conflict, not a second truth.
    let mut other = b.clone();
    other.manifest["notes"] = json!("edited");
    let (code, msg) = sql_error(
        &db.client,
        "SELECT * FROM nweb.ingest_bundle($1, $2, $3, $4)",
        &[&b.cid(), &other.manifest, &other.scanprint, &other.artifacts()],
    )
    .await;
    assert_eq!(code, "23505");
    assert!(msg.contains("already verified with a different manifest"), "{msg}");
    // A CID that is not one is refused before anything happens.
    let (code, _) = sql_error(
        &db.client,
        "SELECT * FROM nweb.ingest_bundle('not a cid', $1, $2, $3)",
        &[&b.manifest, &b.scanprint, &b.artifacts()],
    )
    .await;
    assert_eq!(code, "22P02");
    db.finish().await;
}

#[tokio::test]
async fn each_invalid_reason_is_recorded_and_loads_nothing() {
    let db = nweb_db().await;
    let good = Bundle::new(&[line("198.51.100.1", 22, "open", 1_770_000_000)], 1_770_000_000);
    type Case = (&'static str, Box<dyn Fn(&mut Bundle)>, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (
            "wrong schema",
            Box::new(|b| b.manifest["schema"] = json!("nweb.bundle.v2")),
            "FORMAT_INVALID",
            "manifest.schema",
        ),
        (
            "missing field",
            Box::new(|b| {
                b.manifest.as_object_mut().unwrap().remove("vantage");
            }),
            "FORMAT_INVALID",
            "manifest.vantage: required string is missing",
        ),
        (
            "bad scanprint line",
            Box::new(|b| {
                b.scanprint.push_str("{\"ts\":1,\"ip\":\"198.51.100.1\",\"port\":70000,\"proto\":\"tcp\",\"state\":\"open\",\"tool\":\"nmap\",\"vantage\":\"v\"}\n");
                b.manifest["scanprint"]["merkleRoot"] = json!(format!("0x{}", "00".repeat(32)));
            }),
            "FORMAT_INVALID",
            "scanprint/scanprint.v0.jsonl line 2: \"port\": 70000 is outside 0..65535",
        ),
        (
            "manifest root differs",
            Box::new(|b| b.scanprint = b.scanprint.replace("\"open\"", "\"closed\"")),
            "CID_HASH_MISMATCH",
            "the Merkle root of scanprint/scanprint.v0.jsonl is",
        ),
        (
            "artifact differs",
            Box::new(|b| b.manifest["artifacts"][0]["sha256"] = json!("ab".repeat(32))),
            "CID_HASH_MISMATCH",
            "artifact raw/nmap.xml: SHA-256 is",
        ),
    ];
    for (name, mutate, reason, detail) in cases {
        // A distinct artifact per case, so each case is its own CID.
        let mut b = good.clone();
        b.nmap_xml = format!("<nmaprun case=\"{name}\"/>").into_bytes();
        b.manifest["artifacts"][0]["sha256"] = json!(sha256_hex(&b.nmap_xml));
        mutate(&mut b);
        let (status, got_reason, got_detail) = ingest(&db.client, &b).await;
        assert_eq!(status, "invalid", "{name}");
        assert_eq!(got_reason.as_deref(), Some(reason), "{name}");
        let got_detail = got_detail.unwrap();
        assert!(got_detail.contains(detail), "{name}: {got_detail:?}");
        assert_eq!(rows_of(&db.client, &b.cid()).await, 0, "{name}: rows loaded");
    }
    // A listed artifact the bundle does not hold.
    let mut b = good.clone();
    b.nmap_xml = b"<nmaprun case=\"absent\"/>".to_vec();
    b.manifest["artifacts"][0]["sha256"] = json!(sha256_hex(&b.nmap_xml));
    let mut files = b.artifacts();
    files.as_object_mut().unwrap().remove("raw/nmap.xml");
    let row = db
        .client
        .query_one(
            "SELECT status, reason, reason_detail FROM nweb.ingest_bundle($1, $2, $3, $4)",
            &[&b.cid(), &b.manifest, &b.scanprint, &files],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("FORMAT_INVALID"));
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("artifact raw/nmap.xml is listed in the manifest but not in the bundle")
    );
    // A final invalid verdict stands when the same CID comes again.
    let (status, reason, _) = ingest(&db.client, &b).await;
    assert_eq!((status.as_str(), reason.as_deref()), ("invalid", Some("FORMAT_INVALID")));
    assert_eq!(count(&db.client, "nweb.scanprint").await, 0);
    let invalid: i64 =
        one(&db.client, "SELECT count(*) FROM nweb.bundles WHERE status = 'invalid'", &[]).await;
    assert_eq!(invalid, 6);
    db.finish().await;
}

#[tokio::test]
async fn unavailable_is_the_one_verdict_a_later_fetch_overturns() {
    let db = nweb_db().await;
    let b = Bundle::new(&[line("198.51.100.2", 3389, "open", 1_770_000_000)], 1_770_000_000);
    let row = db
        .client
        .query_one(
            "SELECT status, reason, reason_detail FROM nweb.mark_unavailable($1, 'gateway timeout x3')",
            &[&b.cid()],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "invalid");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("CID_UNAVAILABLE"));
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("gateway timeout x3"));
    assert_eq!(ingest(&db.client, &b).await, ("verified".into(), None, None));
    assert_eq!(rows_of(&db.client, &b.cid()).await, 1);
    // And a verified bundle is not made unavailable afterwards.
    let status: String = one(&db.client, "SELECT status FROM nweb.mark_unavailable($1)", &[&b.cid()]).await;
    assert_eq!(status, "verified");
    db.finish().await;
}

#[tokio::test]
async fn a_failure_while_loading_rows_leaves_nothing_half_written() {
    let db = nweb_db().await;
    db.client
        .batch_execute(
            "CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'disk full (simulated)' USING ERRCODE = '53100'; END $$;
             CREATE TRIGGER refuse_443 BEFORE INSERT ON nweb.scanprint
                 FOR EACH ROW WHEN (NEW.port = 443) EXECUTE FUNCTION pg_temp.refuse();",
        )
        .await
        .unwrap();
    let b = Bundle::new(
        &[line("203.0.113.20", 22, "open", 1_770_000_000), line("203.0.113.20", 443, "open", 1_770_000_000)],
        1_770_000_000,
    );
    let (code, msg) = sql_error(
        &db.client,
        "SELECT * FROM nweb.ingest_bundle($1, $2, $3, $4)",
        &[&b.cid(), &b.manifest, &b.scanprint, &b.artifacts()],
    )
    .await;
    assert_eq!((code.as_str(), msg.as_str()), ("53100", "disk full (simulated)"));
    assert_eq!(count(&db.client, "nweb.bundles").await, 0);
    assert_eq!(count(&db.client, "nweb.scanprint").await, 0);
    db.finish().await;
}

// ---------------------------------------------------------------------------
// Attestations, challenges, slashing
// ---------------------------------------------------------------------------

#[tokio::test]
async fn submissions_make_bundles_pending_and_must_agree_with_the_manifest() {
    let db = nweb_db().await;
    let s = addr('a');
    let good = Bundle::new(&[line("192.0.2.10", 22, "open", 1_770_000_000)], 1_770_000_000);
    let root = good.manifest["scanprint"]["merkleRoot"].as_str().unwrap().to_owned();
    let payload = json!({"cid": good.cid(), "merkleRoot": root, "datasetType": "nmap"});
    assert_eq!(
        attest(&db.client, "ScanSubmission", 1, &s, "2026-03-01T00:00:00Z", None, payload.clone()).await,
        1
    );
    // The same log again (a re-scan of the block range) is not a second attestation.
    assert_eq!(attest(&db.client, "ScanSubmission", 1, &s, "2026-03-01T00:00:00Z", None, payload).await, 0);
    // Attested, not fetched: pending, priced from the attestation, nothing in the table yet.
    let row = db
        .client
        .query_one(
            "SELECT status, submitter, attested_merkle_root, cost_kind FROM nweb.v_bundles WHERE cid = $1",
            &[&good.cid()],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, String>(2), row.get::<_, String>(3)),
        ("pending".into(), s.clone(), root.clone(), "nmap-top1k".into())
    );
    assert_eq!(count(&db.client, "nweb.bundles").await, 0);
    assert_eq!(ingest(&db.client, &good).await.0, "verified");
    let row = db
        .client
        .query_one(
            "SELECT status, submitter, attested_merkle_root FROM nweb.v_bundles WHERE cid = $1",
            &[&good.cid()],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, String>(2)),
        ("verified".into(), s.clone(), root)
    );
    // Checked before its attestation was seen: the submitter is filled in when it arrives.
    let early = Bundle::new(&[line("192.0.2.13", 22, "open", 1_770_000_000)], 1_770_000_003);
    assert_eq!(ingest(&db.client, &early).await.0, "verified");
    let none: Option<String> =
        one(&db.client, "SELECT submitter FROM nweb.bundles WHERE cid = $1", &[&early.cid()]).await;
    assert_eq!(none, None);
    let early_root = early.manifest["scanprint"]["merkleRoot"].clone();
    attest(
        &db.client,
        "ScanSubmission",
        4,
        &s,
        "2026-03-02T00:00:00Z",
        None,
        json!({"cid": early.cid(), "merkleRoot": early_root}),
    )
    .await;
    let filled: Option<String> =
        one(&db.client, "SELECT submitter FROM nweb.bundles WHERE cid = $1", &[&early.cid()]).await;
    assert_eq!(filled, Some(s.clone()));
    assert_eq!(rows_of(&db.client, &early.cid()).await, 1, "agreeing root: rows stay");

    // Attested one root, the manifest says another (both self-consistent).
    let liar = Bundle::new(&[line("192.0.2.11", 22, "open", 1_770_000_000)], 1_770_000_001);
    let wrong = format!("0x{}", "cd".repeat(32));
    attest(
        &db.client,
        "ScanSubmission",
        2,
        &s,
        "2026-03-01T00:00:00Z",
        None,
        json!({"cid": liar.cid(), "merkleRoot": wrong}),
    )
    .await;
    let (status, reason, detail) = ingest(&db.client, &liar).await;
    assert_eq!((status.as_str(), reason.as_deref()), ("invalid", Some("CID_HASH_MISMATCH")));
    assert!(detail.unwrap().contains("differs from the attested"));

    // Verified first, attestation seen later and disagreeing: rows are withdrawn.
    let late = Bundle::new(&[line("192.0.2.12", 22, "open", 1_770_000_000)], 1_770_000_002);
    assert_eq!(ingest(&db.client, &late).await.0, "verified");
    assert_eq!(rows_of(&db.client, &late.cid()).await, 1);
    attest(
        &db.client,
        "ScanSubmission",
        3,
        &s,
        "2026-03-01T00:00:00Z",
        None,
        json!({"cid": late.cid(), "merkleRoot": wrong}),
    )
    .await;
    let reason: Option<String> =
        one(&db.client, "SELECT reason FROM nweb.bundles WHERE cid = $1", &[&late.cid()]).await;
    assert_eq!(reason.as_deref(), Some("CID_HASH_MISMATCH"));
    assert_eq!(rows_of(&db.client, &late.cid()).await, 0);
    db.finish().await;
}

/// (state, resolved_at, slash_amount, challenger_bounty, burned) of one challenge.
async fn challenge_at(
    client: &Client,
    id: &str,
    as_of: &str,
) -> (String, Option<String>, Option<String>, Option<String>, Option<String>) {
    let row = client
        .query_one(
            "SELECT state, resolved_at::text, slash_amount::text, challenger_bounty::text, burned::text
               FROM nweb.challenge_states($2::text::timestamptz) WHERE challenge_id = $1",
            &[&id, &as_of],
        )
        .await
        .unwrap_or_else(|e| panic!("challenge {id} at {as_of}: {e}"));
    (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4))
}

#[tokio::test]
async fn challenges_have_a_72h_grace_and_then_slash_10_percent_split_evenly() {
    let db = nweb_db().await;
    let (s, c, other) = (addr('a'), addr('c'), addr('e'));
    db.client.execute("INSERT INTO nweb.stakes (address, stake) VALUES ($1, 1234.5)", &[&s]).await.unwrap();
    let b = Bundle::new(&[line("192.0.2.20", 22, "open", 1_770_000_000)], 1_770_000_000);
    attest(&db.client, "ScanSubmission", 1, &s, "2026-01-01T00:00:00Z", None, json!({"cid": b.cid()})).await;
    assert_eq!(ingest(&db.client, &b).await.0, "verified");

    let challenge = |n: u8| json!({"cid": b.cid(), "jobId": format!("0x{}", "11".repeat(32)), "reasonCode": "CID_UNAVAILABLE", "evidenceCid": "bafkqaaa", "graceEndsAt": 0, "n": n});
    let resolve = |n: u8, slash: bool| json!({"challengeId": uid(n), "slash": slash, "slashAmount": "0", "newCid": b.cid()});

    // 1: no resolution.
    attest(&db.client, "Challenge", 10, &c, "2026-01-10T00:00:00Z", Some(&uid(1)), challenge(1)).await;
    assert_eq!(challenge_at(&db.client, &uid(1), "2026-01-10T00:00:00Z").await.0, "in_grace");
    assert_eq!(
        challenge_at(&db.client, &uid(1), "2026-01-13T00:00:00Z").await.0,
        "in_grace",
        "exactly at the end of grace"
    );
    let after = challenge_at(&db.client, &uid(1), "2026-01-13T00:00:00.000001Z").await;
    assert_eq!(after.0, "slashable");
    assert_eq!(
        (after.2.as_deref(), after.3.as_deref(), after.4.as_deref()),
        (Some("123.45"), Some("61.725"), Some("61.725")),
        "10 % of 1234.5, half to the challenger, half burned"
    );
    let grace: String = one(
        &db.client,
        "SELECT grace_ends_at::text FROM nweb.challenges WHERE challenge_id = $1",
        &[&uid(1)],
    )
    .await;
    assert_eq!(grace, "2026-01-13 00:00:00+00");

    // 2: resolved by the submitter at the very last instant of grace.
    attest(&db.client, "Challenge", 20, &c, "2026-01-10T00:00:00Z", Some(&uid(2)), challenge(2)).await;
    attest(&db.client, "Resolution", 21, &s, "2026-01-13T00:00:00Z", None, resolve(2, false)).await;
    let r = challenge_at(&db.client, &uid(2), "2026-02-01T00:00:00Z").await;
    assert_eq!(
        (r.0.as_str(), r.1.as_deref(), r.2.as_deref()),
        ("resolved", Some("2026-01-13 00:00:00+00"), None)
    );
    // Before the resolution was mined it was still in grace.
    assert_eq!(challenge_at(&db.client, &uid(2), "2026-01-12T23:59:59Z").await.0, "in_grace");

    // 3: resolved one second after grace: too late.
    attest(&db.client, "Challenge", 30, &c, "2026-01-10T00:00:00Z", Some(&uid(3)), challenge(3)).await;
    attest(&db.client, "Resolution", 31, &s, "2026-01-13T00:00:01Z", None, resolve(3, false)).await;
    assert_eq!(challenge_at(&db.client, &uid(3), "2026-02-01T00:00:00Z").await.0, "slashable");

    // 4: "resolved" by someone who is not the submitter; 5: a Resolution that slashes.
    attest(&db.client, "Challenge", 40, &c, "2026-01-10T00:00:00Z", Some(&uid(4)), challenge(4)).await;
    attest(&db.client, "Resolution", 41, &other, "2026-01-11T00:00:00Z", None, resolve(4, false)).await;
    assert_eq!(challenge_at(&db.client, &uid(4), "2026-02-01T00:00:00Z").await.0, "slashable");
    attest(&db.client, "Challenge", 50, &c, "2026-01-10T00:00:00Z", Some(&uid(5)), challenge(5)).await;
    attest(&db.client, "Resolution", 51, &s, "2026-01-11T00:00:00Z", None, resolve(5, true)).await;
    assert_eq!(challenge_at(&db.client, &uid(5), "2026-01-12T00:00:00Z").await.0, "in_grace");
    // A slash=true Resolution is what the SlashRouter attests when slash()
    // ran, so once grace is over the slash is executed, not slashable again (0.6.0
    // kept listing it, and a slasher kept trying).
    let executed = challenge_at(&db.client, &uid(5), "2026-02-01T00:00:00Z").await;
    assert_eq!((executed.0.as_str(), executed.2), ("slashed", None), "no amounts for an executed slash");

    // Slashable now: 1, 3, 4 (all filed in January); 5 was slashed.
    let now: Vec<String> = db
        .client
        .query("SELECT challenge_id FROM nweb.v_slashable_challenges ORDER BY challenge_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(now, [uid(1), uid(3), uid(4)]);

    // A malformed Challenge is kept as a chain fact but challenges nothing.
    attest(
        &db.client,
        "Challenge",
        60,
        &c,
        "2026-01-10T00:00:00Z",
        Some(&uid(6)),
        json!({"cid": b.cid(), "reasonCode": "BORED"}),
    )
    .await;
    assert_eq!(count(&db.client, "nweb.challenges").await, 5);

    // A reorg removes challenge 1's log, and the challenge with it.
    db.client
        .execute("DELETE FROM nweb.attestations WHERE chain_id = 8453 AND block_number = 10", &[])
        .await
        .unwrap();
    assert_eq!(count(&db.client, "nweb.challenges").await, 4);
    db.finish().await;
}

#[tokio::test]
async fn a_zero_stake_slashes_nothing() {
    let db = nweb_db().await;
    let (s, c) = (addr('b'), addr('c'));
    db.client.execute("INSERT INTO nweb.stakes (address, stake) VALUES ($1, 0)", &[&s]).await.unwrap();
    let b = Bundle::new(&[line("192.0.2.30", 22, "open", 1_770_000_000)], 1_770_000_000);
    attest(&db.client, "ScanSubmission", 1, &s, "2026-01-01T00:00:00Z", None, json!({"cid": b.cid()})).await;
    attest(
        &db.client,
        "Challenge",
        2,
        &c,
        "2026-01-02T00:00:00Z",
        Some(&uid(9)),
        json!({"cid": b.cid(), "reasonCode": "FORMAT_INVALID"}),
    )
    .await;
    let r = challenge_at(&db.client, &uid(9), "2026-02-01T00:00:00Z").await;
    assert_eq!(
        (r.0.as_str(), r.2.as_deref(), r.3.as_deref(), r.4.as_deref()),
        ("slashable", Some("0"), Some("0"), Some("0"))
    );
    // The arithmetic itself, exact at the last decimal.
    let row = db
        .client
        .query_one("SELECT slashed::text, to_challenger::text, burned::text FROM nweb_slash_split(100.000000000000000001)", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, String>(2)),
        ("10.0000000000000000001".into(), "5.00000000000000000005".into(), "5.00000000000000000005".into())
    );
    let (code, _) = sql_error(&db.client, "SELECT * FROM nweb_slash_split(-1)", &[]).await;
    assert_eq!(code, "22023");
    db.finish().await;
}

// ---------------------------------------------------------------------------
// Quota and reputation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn quota_is_floor_sqrt_stake_times_one_plus_rep_factor_with_a_100_gst_minimum() {
    let db = nweb_db().await;
    let q = "SELECT nweb_quota_units($1::text::numeric, $2::text::numeric)";
    for (stake, rep, want) in [
        ("0", "0", 0i64),
        ("0", "0.999999", 0),
        ("99.999999999999999999", "0.5", 0),
        ("100", "0", 10),
        ("100", "0.5", 15),
        ("144", "0.25", 15),
        ("144", "0.249999", 14),
        ("10000", "0", 100),
    ] {
        assert_eq!(one::<i64>(&db.client, q, &[&stake, &rep]).await, want, "stake {stake} rep {rep}");
    }
    let (code, _) = sql_error(&db.client, q, &[&"-5", &"0"]).await;
    assert_eq!(code, "22023");
    let (code, _) = sql_error(&db.client, q, &[&"NaN", &"0"]).await;
    assert_eq!(code, "22023");
    for (kind, cost) in
        [("masscan-quick", 1), ("nmap-top1k", 2), ("nmap-full", 5), ("diff", 1), ("enrich", 1)]
    {
        assert_eq!(one::<i32>(&db.client, "SELECT nweb_submission_cost($1)", &[&kind]).await, cost, "{kind}");
    }
    let (code, _) = sql_error(&db.client, "SELECT nweb_submission_cost('nmap-everything')", &[]).await;
    assert_eq!(code, "22023");
    let rep: String = one(&db.client, "SELECT nweb_rep_factor(10)::text", &[]).await;
    assert_eq!(rep, "0.5");
    db.finish().await;
}

#[tokio::test]
async fn quota_is_spent_by_submissions_in_a_rolling_day() {
    let db = nweb_db().await;
    let (zero, below, minimum, rich) = (addr('0'), addr('1'), addr('2'), addr('3'));
    db.client
        .execute(
            "INSERT INTO nweb.stakes (address, stake, reputation) VALUES ($1, 0, 50), ($2, 99.999, 0), ($3, 100, 0), ($4, 144, 10)",
            &[&zero, &below, &minimum, &rich],
        )
        .await
        .unwrap();
    // Three nmap-top1k submissions by the minimum staker: 24 h before as_of (outside
    // the window, which is (as_of - 24 h, as_of]), and two inside it.
    for (n, at) in [(1u32, "2026-05-01T12:00:00Z"), (2, "2026-05-01T12:00:01Z"), (3, "2026-05-02T11:00:00Z")]
    {
        let b = Bundle::new(
            &[line("192.0.2.40", 22, "open", 1_770_000_000 + i64::from(n))],
            1_770_000_000 + i64::from(n),
        );
        attest(
            &db.client,
            "ScanSubmission",
            n,
            &minimum,
            at,
            None,
            json!({"cid": b.cid(), "datasetType": "nmap"}),
        )
        .await;
        assert_eq!(ingest(&db.client, &b).await.0, "verified");
    }
    // And an unverified (pending) masscan submission, priced from the attestation.
    let pending = Bundle::new(&[line("192.0.2.41", 22, "open", 1)], 5);
    attest(
        &db.client,
        "ScanSubmission",
        4,
        &minimum,
        "2026-05-02T11:30:00Z",
        None,
        json!({"cid": pending.cid(), "datasetType": "masscan"}),
    )
    .await;

    let as_of = "2026-05-02T12:00:00Z";
    let rows: Vec<(String, i64, i64, i64, bool, String)> = db
        .client
        .query(
            "SELECT address, quota_units, used_units, remaining_units, may_submit, rep_factor::text
               FROM nweb.quota_at($1::text::timestamptz) ORDER BY address",
            &[&as_of],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(
        rows,
        [
            (zero.clone(), 0, 0, 0, false, "0.833333".into()),
            (below.clone(), 0, 0, 0, false, "0".into()),
            (minimum.clone(), 10, 2 + 2 + 1, 5, true, "0".into()),
            (rich.clone(), 18, 0, 18, true, "0.5".into()),
        ]
    );
    let can = "SELECT nweb.can_submit($1, $2, $3::text::timestamptz)";
    assert!(one::<bool>(&db.client, can, &[&minimum, &"nmap-full", &as_of]).await, "5 units left, 5 needed");
    assert!(!one::<bool>(&db.client, can, &[&zero, &"masscan-quick", &as_of]).await, "zero stake");
    assert!(!one::<bool>(&db.client, can, &[&below, &"masscan-quick", &as_of]).await, "below 100 GST");
    assert!(!one::<bool>(&db.client, can, &[&addr('9'), &"masscan-quick", &as_of]).await, "no stake row");
    // One more top-1000 scan leaves 3: no full scan, a masscan is fine.
    let extra = Bundle::new(&[line("192.0.2.42", 22, "open", 9)], 9);
    attest(
        &db.client,
        "ScanSubmission",
        5,
        &minimum,
        "2026-05-02T11:59:59Z",
        None,
        json!({"cid": extra.cid(), "datasetType": "nmap"}),
    )
    .await;
    assert!(!one::<bool>(&db.client, can, &[&minimum, &"nmap-full", &as_of]).await);
    assert!(one::<bool>(&db.client, can, &[&minimum, &"masscan-quick", &as_of]).await);
    // One second later the 12:00:01 submission is exactly 24 h old and out.
    let later: i64 = one(
        &db.client,
        "SELECT used_units FROM nweb.quota_at('2026-05-02T12:00:01Z') WHERE address = $1",
        &[&minimum],
    )
    .await;
    assert_eq!(later, 2 + 1 + 2, "the 12:00:01 submission leaves at exactly 24 h");
    db.finish().await;
}

#[tokio::test]
async fn reputation_accrues_after_grace_weighted_and_decaying() {
    let db = nweb_db().await;
    let (s1, s2, c) = (addr('a'), addr('b'), addr('c'));
    let b1 = Bundle::new(&[line("192.0.2.50", 22, "open", 1_770_000_000)], 1_770_000_000);
    let mut b2 = Bundle::new(&[line("192.0.2.51", 22, "open", 1_770_000_000)], 1_770_000_100);
    // b2 is a masscan from a different vantage.
    b2.manifest["datasetType"] = json!("masscan");
    b2.manifest["vantage"] = json!("AS64501/elsewhere");
    b2.manifest["artifacts"] = json!([]);
    attest(&db.client, "ScanSubmission", 1, &s1, "2026-06-01T00:00:00Z", None, json!({"cid": b1.cid()}))
        .await;
    attest(&db.client, "ScanSubmission", 2, &s2, "2026-06-01T00:00:00Z", None, json!({"cid": b2.cid()}))
        .await;
    assert_eq!(ingest(&db.client, &b1).await.0, "verified");
    assert_eq!(ingest(&db.client, &b2).await.0, "verified");

    let rep = |as_of: &'static str| {
        let client = &db.client;
        async move {
            client
                .query("SELECT address, reputation FROM nweb.reputation_at($1::text::timestamptz) ORDER BY address", &[&as_of])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, f64>(1)))
                .collect::<Vec<_>>()
        }
    };
    // Exactly at the end of grace nothing has survived it yet.
    assert_eq!(rep("2026-06-04T00:00:00Z").await, []);
    // Just after: nmap top-1000 (2 units) and masscan (1 unit). Each names its own
    // vantage, but a vantage is only the submitter's word, so neither counts as rare
    // (docs/design.md D41; 0.6.0 gave each 2 / (1 + 0.5)).
    let just_after = rep("2026-06-04T00:00:01Z").await;
    assert_eq!(just_after.len(), 2);
    assert!((just_after[0].1 - 2.0).abs() < 1e-4, "{just_after:?}");
    assert!((just_after[1].1 - 1.0).abs() < 1e-4, "{just_after:?}");
    // Thirty days later: half.
    let month = rep("2026-07-04T00:00:00Z").await;
    assert!((month[0].1 - 1.0).abs() < 1e-9, "{month:?}");

    // A challenge against b1 that is never resolved takes it out.
    attest(
        &db.client,
        "Challenge",
        3,
        &c,
        "2026-06-10T00:00:00Z",
        Some(&uid(7)),
        json!({"cid": b1.cid(), "reasonCode": "CID_UNAVAILABLE"}),
    )
    .await;
    let challenged = rep("2026-06-11T00:00:00Z").await;
    assert_eq!(challenged.len(), 1);
    assert_eq!(challenged[0].0, s2);
    let days = 7.0;
    assert!((challenged[0].1 - 0.5f64.powf(days / 30.0)).abs() < 1e-9, "{challenged:?}");

    // refresh_reputation stores it, also for addresses without a stake row.
    let n: i32 = one(&db.client, "SELECT nweb.refresh_reputation('2026-06-11T00:00:00Z')", &[]).await;
    assert_eq!(n, 1);
    let stored: f64 = one(&db.client, "SELECT reputation FROM nweb.stakes WHERE address = $1", &[&s2]).await;
    assert!((stored - challenged[0].1).abs() < 1e-12);
    db.finish().await;
}

// ---------------------------------------------------------------------------
// Bridge to xray
// ---------------------------------------------------------------------------

const TENANT: &str = "11111111-1111-1111-1111-111111111111";
const IP_ASSET: &str = "aaaaaaaa-0000-4000-8000-000000000010";
const NET_ASSET: &str = "aaaaaaaa-0000-4000-8000-000000000011";

fn tenant_assets() -> Value {
    json!([
        {"asset_id": IP_ASSET, "asset_type": "ip", "asset_value": "203.0.113.10"},
        {"asset_id": NET_ASSET, "asset_type": "cidr", "asset_value": "198.51.100.0/24"},
    ])
}

async fn bridge(client: &Client, b: &Bundle) -> Option<Value> {
    one(client, "SELECT nweb.bridge_payload($1, $2::text::uuid, $3)", &[&b.cid(), &TENANT, &tenant_assets()])
        .await
}

/// (event_type, observed_host, port, fingerprint) of one scan's events.
async fn events(client: &Client, scan_id: &str) -> Vec<(String, String, i32, String)> {
    events_of(client, scan_id)
        .await
        .into_iter()
        .map(|e| {
            (
                e["event_type"].as_str().unwrap().to_owned(),
                e["observed_host"].as_str().unwrap().to_owned(),
                e["port"].as_i64().unwrap() as i32,
                e["fingerprint"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_bridge_raises_rb1_and_never_a_false_fixed() {
    let db = nweb_db().await;
    let t0 = 1_780_000_000;
    let b1 = Bundle::new(
        &[
            line("203.0.113.10", 22, "open", t0),
            line("203.0.113.10", 443, "open", t0),
            line("198.51.100.7", 3389, "open", t0),
            line("192.0.2.1", 22, "open", t0),
        ],
        t0,
    );
    assert_eq!(ingest(&db.client, &b1).await.0, "verified");
    let p1 = bridge(&db.client, &b1).await.expect("b1 touches the tenant");
    assert_eq!(p1["schema_version"], "1.2");
    assert_eq!(p1["scan"]["scan_kind"], "scheduled");
    assert_eq!(p1["tool_versions"], json!({"nmap": "7.95"}));
    assert_eq!(p1["nweb"]["bundle_cid"], json!(b1.cid()));
    let ep = &p1["asset_results"][0]["endpoints"][0];
    assert_eq!(ep["coverage"]["tools"], json!(["nmap"]));
    assert_eq!(ep["coverage"]["tcp_ports"], json!([22, 443]));
    assert!(!p1.to_string().contains("192.0.2.1"), "not the tenant's address");
    assert_eq!(insert(&db.client, &p1).await.unwrap(), 1);
    let mut got = events(&db.client, &scan_id(&p1)).await;
    got.sort();
    assert_eq!(
        got,
        [
            ("NEW".into(), "198.51.100.7".into(), 3389, "svc:rdp".into()),
            ("NEW".into(), "203.0.113.10".into(), 22, "svc:ssh".into()),
        ]
    );
    // Bridging the same bundle again is the same scan: a duplicate, nothing new.
    let again = bridge(&db.client, &b1).await.unwrap();
    assert_eq!(scan_id(&again), scan_id(&p1));
    assert_eq!(insert(&db.client, &again).await.unwrap(), 0);

    // A later bundle that does not mention 22 (nor 198.51.100.7): no FIXED.
    let b2 = Bundle::new(&[line("203.0.113.10", 443, "open", t0 + 3600)], t0 + 3600);
    assert_eq!(ingest(&db.client, &b2).await.0, "verified");
    let p2 = bridge(&db.client, &b2).await.unwrap();
    assert_eq!(insert(&db.client, &p2).await.unwrap(), 1);
    assert_eq!(events(&db.client, &scan_id(&p2)).await, []);
    // Nor one that saw 22 filtered.
    let b3 = Bundle::new(&[line("203.0.113.10", 22, "filtered", t0 + 7200)], t0 + 7200);
    assert_eq!(ingest(&db.client, &b3).await.0, "verified");
    let p3 = bridge(&db.client, &b3).await.unwrap();
    assert_eq!(insert(&db.client, &p3).await.unwrap(), 1);
    assert_eq!(events(&db.client, &scan_id(&p3)).await, []);
    let open: i64 = one(&db.client, "SELECT count(*) FROM xray.exposures WHERE status = 'open'", &[]).await;
    assert_eq!(open, 2);

    // A bundle that saw 22 closed proves it: FIXED, for that port only.
    let b4 = Bundle::new(&[line("203.0.113.10", 22, "closed", t0 + 10_800)], t0 + 10_800);
    assert_eq!(ingest(&db.client, &b4).await.0, "verified");
    let p4 = bridge(&db.client, &b4).await.unwrap();
    assert_eq!(insert(&db.client, &p4).await.unwrap(), 1);
    assert_eq!(
        events(&db.client, &scan_id(&p4)).await,
        [("FIXED".into(), "203.0.113.10".into(), 22, "svc:ssh".into())]
    );
    let still_open: Vec<i32> = db
        .client
        .query("SELECT port FROM xray.exposures WHERE status = 'open'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(still_open, [3389]);
    db.finish().await;
}

#[tokio::test]
async fn the_bridge_only_takes_verified_bundles_that_touch_the_tenant() {
    let db = nweb_db().await;
    let b = Bundle::new(&[line("192.0.2.99", 22, "open", 1_780_000_000)], 1_780_000_000);
    // Only attested so far: pending.
    attest(
        &db.client,
        "ScanSubmission",
        1,
        &addr('a'),
        "2026-06-01T00:00:00Z",
        None,
        json!({"cid": b.cid()}),
    )
    .await;
    let (code, msg) = sql_error(
        &db.client,
        "SELECT nweb.bridge_payload($1, $2::text::uuid, $3)",
        &[&b.cid(), &TENANT, &tenant_assets()],
    )
    .await;
    assert_eq!(code, "55000");
    assert!(msg.contains("pending, not verified"), "{msg}");
    assert_eq!(ingest(&db.client, &b).await.0, "verified");
    assert_eq!(bridge(&db.client, &b).await, None, "no row inside the tenant's assets");
    let (code, _) =
        sql_error(&db.client, "SELECT nweb.bridge_payload('bafkqaaa', $1::text::uuid, '[]')", &[&TENANT])
            .await;
    assert_eq!(code, "P0002");
    db.finish().await;
}

// ---------------------------------------------------------------------------
// pg_dump
// ---------------------------------------------------------------------------

/// Row count and digest of every nweb table, in a fixed order.
async fn nweb_snapshot(c: &Client) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for t in ["bundles", "scanprint", "attestations", "challenges", "stakes"] {
        let row = c
            .query_one(
                &format!("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM nweb.{t} t"),
                &[],
            )
            .await
            .unwrap();
        out.push((t.to_string(), row.get(0), row.get(1)));
    }
    out
}

/// Restoring replays the attestation inserts (COPY fires triggers): derived challenges are
/// rebuilt rather than dumped, and bundles are only ever updated by the trigger, so the
/// replay cannot collide with restored rows.
#[tokio::test]
async fn nweb_data_survives_pg_dump_and_restore() {
    let db = nweb_db().await;
    let (s, c) = (addr('a'), addr('c'));
    db.client.execute("INSERT INTO nweb.stakes (address, stake) VALUES ($1, 500.25)", &[&s]).await.unwrap();
    let b = Bundle::new(
        &[line("192.0.2.60", 22, "open", 1_770_000_000), line("192.0.2.60", 80, "closed", 1)],
        1_770_000_000,
    );
    let root = b.manifest["scanprint"]["merkleRoot"].clone();
    attest(
        &db.client,
        "ScanSubmission",
        1,
        &s,
        "2026-01-01T00:00:00Z",
        None,
        json!({"cid": b.cid(), "merkleRoot": root}),
    )
    .await;
    assert_eq!(ingest(&db.client, &b).await.0, "verified");
    let bad = Bundle::new(&[line("192.0.2.61", 22, "open", 1)], 7);
    db.client.query("SELECT * FROM nweb.mark_unavailable($1)", &[&bad.cid()]).await.unwrap();
    attest(
        &db.client,
        "Challenge",
        2,
        &c,
        "2026-01-02T00:00:00Z",
        Some(&uid(1)),
        json!({"cid": b.cid(), "reasonCode": "CID_UNAVAILABLE"}),
    )
    .await;
    attest(
        &db.client,
        "Resolution",
        3,
        &s,
        "2026-01-03T00:00:00Z",
        None,
        json!({"challengeId": uid(1), "slash": false}),
    )
    .await;
    let before = nweb_snapshot(&db.client).await;
    assert_eq!(before.iter().map(|(_, n, _)| *n).collect::<Vec<_>>(), [2, 2, 3, 1, 1]);

    let file = std::env::temp_dir().join(format!("{}.nweb.pgdump", db.name));
    let out = std::process::Command::new(pg_bin("pg_dump"))
        .args(["--format=custom", "--file"])
        .arg(&file)
        .args(["--dbname", &db.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    let restored = TestDb::without_extension().await;
    let out = std::process::Command::new(pg_bin("pg_restore"))
        .args(["--exit-on-error", "--dbname", &restored.url])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "pg_restore: {stderr}");

    assert_eq!(nweb_snapshot(&restored.client).await, before);
    let state: String = one(
        &restored.client,
        "SELECT state FROM nweb.challenge_states('2026-02-01T00:00:00Z') WHERE challenge_id = $1",
        &[&uid(1)],
    )
    .await;
    assert_eq!(state, "resolved");
    // And the copy keeps working: the identity sequence continues, a new log applies.
    let n = attest(
        &restored.client,
        "Challenge",
        4,
        &c,
        "2026-01-05T00:00:00Z",
        Some(&uid(2)),
        json!({"cid": b.cid(), "reasonCode": "FORMAT_INVALID"}),
    )
    .await;
    assert_eq!(n, 1);
    assert_eq!(count(&restored.client, "nweb.challenges").await, 2);
    restored.finish().await;
    db.finish().await;
}

/// Our own limit is no accusation (docs/design.md D42): a bundle it stopped is deferred,
/// with no reason, never CID_UNAVAILABLE, and any later verdict replaces it; a check it
/// stopped is `local_limit`, not available. On 0.7.0 both read as the submitter's fault.
#[tokio::test]
async fn our_limit_defers_a_bundle_and_never_blocks_a_verdict() {
    let db = nweb_db().await;
    let b = Bundle::new(&[line("192.0.2.50", 22, "open", 1_770_000_000)], 1_770_000_000);
    let cid = b.cid();
    let state = |sql: &'static str| {
        let db = &db;
        let cid = cid.clone();
        async move {
            let r = db.client.query_one(sql, &[&cid, &"LOCAL_LIMIT: not checked, over our limit: x"]).await.unwrap();
            (r.get::<_, String>(0), r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2))
        }
    };
    let limit = "SELECT status, reason, reason_detail FROM nweb.mark_local_limit($1, $2)";
    let unavailable = "SELECT status, reason, reason_detail FROM nweb.mark_unavailable($1, $2)";
    let deferred = ("deferred".to_string(), None, Some("LOCAL_LIMIT: not checked, over our limit: x".to_string()));
    assert_eq!(state(limit).await, deferred);
    let listed: (String, Option<String>) = {
        let r = db.client.query_one("SELECT status, reason FROM nweb.v_bundles WHERE cid = $1", &[&cid]).await.unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(listed, ("deferred".into(), None));
    // A real unavailability replaces it, and a later limit replaces that in turn (the
    // sources that answered contradict it); a verdict replaces both and stays.
    assert_eq!(state(unavailable).await.1.as_deref(), Some("CID_UNAVAILABLE"));
    assert_eq!(state(limit).await, deferred);
    assert_eq!(ingest(&db.client, &b).await, ("verified".into(), None, None));
    assert_eq!(state(limit).await.0, "verified", "our limit never overturns a verdict");
    let (code, msg) = sql_error(&db.client, "SELECT nweb.mark_local_limit($1, '')", &[&cid]).await;
    assert_eq!(code, "22004");
    assert!(msg.starts_with("detail: "), "{msg}");

    // A check our limit stopped cannot claim the bundle is available, nor accuse it.
    let insert = "INSERT INTO nweb.availability_checks
                      (cid, available, attempts, gateways_ok, fetch_digest, checked_at, reason, reason_detail, probes, outcome)
                  VALUES ($1, $2, 2, 0, '0x' || repeat('0', 64), now(), $3, 'LOCAL_LIMIT: x', '[]', $4)";
    let ok = db.client.execute(insert, &[&cid, &false, &None::<String>, &"local_limit"]).await;
    assert!(ok.is_ok(), "{ok:?}");
    for (available, reason, outcome) in [
        (true, None, "local_limit"),
        (false, Some("CID_UNAVAILABLE"), "local_limit"),
        (false, None, "unavailable"),
        (false, None, "available"),
        (false, None, "busy"),
    ] {
        let (code, _) = sql_error(&db.client, insert, &[&cid, &available, &reason, &outcome]).await;
        assert_eq!(code, "23514", "{available} {reason:?} {outcome}");
    }
    db.finish().await;
}

/// (status, reason, reason_detail) after `nweb.ingest_car` of the bundle's CAR.
async fn ingest_car(client: &Client, b: &Bundle) -> (String, Option<String>, Option<String>) {
    let (paths, contents): (Vec<String>, Vec<Vec<u8>>) = b.files().into_iter().unzip();
    let car: Vec<u8> = one(client, "SELECT nweb_car_export($1, $2)", &[&paths, &contents]).await;
    let row = client
        .query_one("SELECT status, reason, reason_detail FROM nweb.ingest_car($1, $2)", &[&car, &b.cid()])
        .await
        .unwrap_or_else(|e| panic!("ingest_car: {e}"));
    (row.get(0), row.get(1), row.get(2))
}

/// A submitter attests claims its bundle does not hold (docs/design.md D43): the database
/// checks every claim of the first ScanSubmission, as the loader does, not only the root.
/// Each invalid verdict here was `verified` on 0.7.0.
#[tokio::test]
async fn a_bundle_that_is_not_what_its_submission_attests_is_a_verified_mismatch() {
    let db = nweb_db().await;
    let who = addr('c');
    let bundle = |n: i64| Bundle::new(&[line("192.0.2.40", 22, "open", 1_770_000_000 + n)], 1_770_000_000 + n);
    let honest = |b: &Bundle| {
        json!({"cid": b.cid(), "merkleRoot": b.manifest["scanprint"]["merkleRoot"],
               "manifestSha256": format!("0x{}", sha256_hex(&b.manifest_bytes())), "datasetType": "nmap",
               "tool": "nmap", "vantage": "AS64500/test",
               "startedAt": b.manifest["startedAt"], "finishedAt": b.manifest["finishedAt"]})
    };

    // Every claim holds: verified, from a CAR (the manifest's bytes are hashed) and from jsonb.
    let (ok_car, ok_json) = (bundle(1), bundle(2));
    attest(&db.client, "ScanSubmission", 1, &who, "2026-03-01T00:00:00Z", None, honest(&ok_car)).await;
    attest(&db.client, "ScanSubmission", 2, &who, "2026-03-01T00:00:00Z", None, honest(&ok_json)).await;
    assert_eq!(ingest_car(&db.client, &ok_car).await, ("verified".into(), None, None));
    assert_eq!(ingest(&db.client, &ok_json).await, ("verified".into(), None, None));

    // The attested manifestSha256 is not the manifest's: the CAR is checked against it.
    let sha = bundle(3);
    let mut claims = honest(&sha);
    claims["manifestSha256"] = json!(format!("0x{}", "ab".repeat(32)));
    attest(&db.client, "ScanSubmission", 3, &who, "2026-03-01T00:00:00Z", None, claims).await;
    let (status, reason, detail) = ingest_car(&db.client, &sha).await;
    assert_eq!((status.as_str(), reason.as_deref()), ("invalid", Some("CID_HASH_MISMATCH")));
    assert!(detail.as_deref().unwrap().starts_with("attestation.manifestSha256 "), "{detail:?}");
    assert_eq!(rows_of(&db.client, &sha.cid()).await, 0);

    // Attested as masscan's, run with nmap: through a CAR and through jsonb alike.
    for (n, b) in [(4, bundle(4)), (5, bundle(5))] {
        let mut claims = honest(&b);
        claims["tool"] = json!("masscan");
        attest(&db.client, "ScanSubmission", n, &who, "2026-03-01T00:00:00Z", None, claims).await;
        let got = if n == 4 { ingest_car(&db.client, &b).await } else { ingest(&db.client, &b).await };
        assert_eq!(
            got,
            ("invalid".into(), Some("CID_HASH_MISMATCH".into()),
             Some(r#"attestation.tool "masscan" differs from manifest.tool "nmap""#.into()))
        );
    }

    // Attested times that are not the scan's.
    let late = bundle(6);
    let mut claims = honest(&late);
    claims["finishedAt"] = json!(1_770_009_999);
    attest(&db.client, "ScanSubmission", 6, &who, "2026-03-01T00:00:00Z", None, claims).await;
    let (_, reason, detail) = ingest_car(&db.client, &late).await;
    assert_eq!(reason.as_deref(), Some("CID_HASH_MISMATCH"));
    assert!(detail.as_deref().unwrap().starts_with("attestation.finishedAt 1770009999 differs"), "{detail:?}");

    // No submission yet: nothing is claimed, the bundle is checked as before.
    let early = bundle(7);
    assert_eq!(ingest_car(&db.client, &early).await, ("verified".into(), None, None));

    // Loaded before its submission (a hoarder, a gateway, a hand-run ingest): when the
    // submission arrives it is held to the same claims, with the same detail. On 0.8.0
    // the trigger compared the datasetType only, so these stayed verified.
    let status = |cid: String| {
        let db = &db;
        async move {
            let r = db
                .client
                .query_one("SELECT status, reason, reason_detail FROM nweb.bundles WHERE cid = $1", &[&cid])
                .await
                .unwrap();
            (r.get::<_, String>(0), r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2))
        }
    };
    let mut claims = honest(&early);
    claims["vantage"] = json!("AS1/rare-place");
    attest(&db.client, "ScanSubmission", 7, &who, "2026-03-01T00:00:00Z", None, claims).await;
    assert_eq!(
        status(early.cid()).await,
        ("invalid".into(), Some("CID_HASH_MISMATCH".into()),
         Some(r#"attestation.vantage "AS1/rare-place" differs from manifest.vantage "AS64500/test""#.into()))
    );
    assert_eq!(rows_of(&db.client, &early.cid()).await, 0, "its rows go with the verdict");
    // The manifest's bytes were hashed when the CAR was loaded: a lie about them is caught
    // too; a bundle loaded from jsonb has no such hash, and its other claims hold.
    let (by_car, by_json) = (bundle(8), bundle(9));
    assert_eq!(ingest_car(&db.client, &by_car).await.0, "verified");
    assert_eq!(ingest(&db.client, &by_json).await.0, "verified");
    for (n, b) in [(8, &by_car), (9, &by_json)] {
        let mut claims = honest(b);
        claims["manifestSha256"] = json!(format!("0x{}", "cd".repeat(32)));
        attest(&db.client, "ScanSubmission", n, &who, "2026-03-01T00:00:00Z", None, claims).await;
    }
    let (st, _, detail) = status(by_car.cid()).await;
    assert_eq!(st, "invalid");
    assert!(detail.as_deref().unwrap().starts_with("attestation.manifestSha256 "), "{detail:?}");
    assert_eq!(status(by_json.cid()).await, ("verified".into(), None, None));
    // An honest submission after its bundle leaves it verified.
    let fine = bundle(10);
    assert_eq!(ingest_car(&db.client, &fine).await.0, "verified");
    attest(&db.client, "ScanSubmission", 10, &who, "2026-03-01T00:00:00Z", None, honest(&fine)).await;
    assert_eq!(status(fine.cid()).await, ("verified".into(), None, None));
    assert!(rows_of(&db.client, &fine.cid()).await > 0);
    db.finish().await;
}

/// The database under attack (docs/design.md D41): a variant spelling of someone else's CID, a rollback
/// that left the reverted submission's bundle behind, and a bundle that is not what its
/// submission paid for. Each assertion fails on 0.6.0.
#[tokio::test]
async fn hostile_submissions_get_no_bundle_and_reverted_ones_leave_none() {
    let db = nweb_db().await;
    let (honest, hostile) = (addr('a'), addr('b'));
    let b = Bundle::new(&[line("192.0.2.30", 22, "open", 1_770_000_000)], 1_770_000_000);
    let cid = b.cid();

    // A variant spelling (base32 upper, multibase 'B') of the honest CID, attested
    // first: 0.6.0 canonicalised it, so the hostile address became its first submitter.
    let variant = cid.to_uppercase();
    assert_ne!(variant, cid);
    attest(&db.client, "ScanSubmission", 1, &hostile, "2026-03-01T00:00:00Z", None, json!({"cid": variant, "datasetType": "nmap"})).await;
    let stored: Option<String> = one(&db.client, "SELECT cid FROM nweb.attestations WHERE attester = $1", &[&hostile]).await;
    assert_eq!(stored, None, "a variant spelling is not that CID");
    assert_eq!(count(&db.client, "nweb.v_bundles").await, 0, "and nothing is pending for it");
    attest(&db.client, "ScanSubmission", 2, &honest, "2026-03-01T00:01:00Z", None, json!({"cid": cid, "datasetType": "nmap"})).await;
    let first: String = one(&db.client, "SELECT submitter FROM nweb.first_submission($1)", &[&cid]).await;
    assert_eq!(first, honest);
    assert_eq!(ingest(&db.client, &b).await.0, "verified");
    assert!(rows_of(&db.client, &cid).await > 0);

    // The honest submission's block is reverted: its bundle and rows go with it.
    let n: i64 = one(&db.client, "SELECT nweb.chain_rollback(8453, 2)", &[]).await;
    assert_eq!(n, 1);
    assert_eq!(count(&db.client, "nweb.bundles").await, 0, "the bundle only the reverted submission attested");
    assert_eq!(rows_of(&db.client, &cid).await, 0);

    // Attested as masscan (cost 1 on chain), the bundle is an nmap scan (2 units of
    // reputation): a verified mismatch with what was committed.
    attest(&db.client, "ScanSubmission", 3, &honest, "2026-03-02T00:00:00Z", None, json!({"cid": cid, "datasetType": "masscan"})).await;
    let (status, reason, detail) = ingest(&db.client, &b).await;
    assert_eq!((status.as_str(), reason.as_deref()), ("invalid", Some("CID_HASH_MISMATCH")));
    let detail = detail.unwrap();
    assert_eq!(detail, r#"attestation.datasetType "masscan" differs from manifest.datasetType "nmap""#);
    assert_eq!(rows_of(&db.client, &cid).await, 0);

    // A CIDv0 given by hand is the same content: one spelling, the CIDv1.
    let v1: String = one(&db.client, "SELECT nweb_cid_canonical('QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB')", &[]).await;
    assert!(v1.starts_with("bafy"), "{v1}");
    db.finish().await;
}
