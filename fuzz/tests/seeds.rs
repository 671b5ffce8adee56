//! Writes the seeds that cannot be copied from `fixtures/` as they are: scan
//! payloads taken out of the scenario files, CARs of the fixture bundle, and
//! block sets for `unixfs_dag`. Run it after a fixture changes:
//! `cargo test --test seeds -- --ignored`.

use std::fs;
use std::path::Path;

use serde_json::Value;
use nweb::unixfs::{import_directory, import_file, read_file, unpack_directory, Dag, ImportParams};
use nweb::{car, Cid};
use xray_fuzz::{dag_root, split_blocks, AnyCid, BLOCK_SEPARATOR};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"))
}

fn seeds(target: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
#[ignore = "writes files; run by hand"]
fn write_seeds() {
    scan_payloads();
    cars();
    unixfs_dags();
}

fn scan_payloads() {
    let out = seeds("scan_payload");
    let mut paths: Vec<_> = fs::read_dir(fixtures().join("scenarios")).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        let scenario: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let payload = serde_json::to_string(&step["payload"]).unwrap();
            if !seen.insert(payload.clone()) {
                continue;
            }
            fs::write(out.join(format!("{stem}.{i}.json")), payload).unwrap();
        }
    }
    let minimal = fs::read(fixtures().join("loader/payload-1.2.minimal.json")).unwrap();
    fs::write(out.join("loader-payload-1.2.minimal.json"), minimal).unwrap();
}

fn cars() {
    let b = fixtures().join("nweb/bundle-nmap-localhost");
    let read = |p: &str| fs::read(b.join(p)).unwrap();
    let (manifest, xml, jsonl) = (read("manifest.json"), read("raw/nmap.xml"), read("scanprint/scanprint.v0.jsonl"));
    let files: [(&str, &[u8]); 3] = [
        ("manifest.json", &manifest),
        ("raw/nmap.xml", &xml),
        ("scanprint/scanprint.v0.jsonl", &jsonl),
    ];
    let dag = import_directory(&files, ImportParams::KUBO).unwrap();
    write_car_seed("bundle-nmap-localhost.car", &dag, true);
    // Tiny chunks give multi-level file trees in a few hundred bytes.
    let small = ImportParams { chunk_size: 16, max_links: 3 };
    let dag = import_directory(&[("a/b.txt", &jsonl[..200]), ("c", b"")], small).unwrap();
    write_car_seed("tiny-chunks.car", &dag, true);
    write_car_seed("single-file.car", &import_file(b"hello world\n", ImportParams::KUBO), false);
}

/// A seed that fails early would only teach the fuzzer the error paths.
fn write_car_seed(name: &str, dag: &Dag, is_directory: bool) {
    let bytes = car::write_car(&dag.root, &dag.blocks).unwrap();
    assert_eq!(car::unpack_car(&bytes, None, u64::MAX).is_ok(), is_directory, "{name}");
    assert_eq!(car::read_car(&bytes).unwrap().blocks.len(), dag.blocks.len(), "{name}");
    fs::write(seeds("car").join(name), bytes).unwrap();
}

// ---- unixfs_dag: block 0 is the root; a link names block k by ending its
// digest in k (see `AnyCid` in src/lib.rs).

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn link_to(codec: u64, block: u8) -> Vec<u8> {
    let mut digest = [0x5a; 32];
    digest[31] = block;
    let mut cid = vec![0x01];
    varint(&mut cid, codec);
    cid.extend([0x12, 0x20]);
    cid.extend(digest);
    Cid::try_from(cid.as_slice()).unwrap().to_bytes()
}

fn pb_node(links: &[(u64, u8, Option<&str>, u64)], unixfs: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(codec, block, name, tsize) in links {
        let mut l = Vec::new();
        bytes_field(&mut l, 1, &link_to(codec, block));
        if let Some(name) = name {
            bytes_field(&mut l, 2, name.as_bytes());
        }
        l.push(0x18);
        varint(&mut l, tsize);
        bytes_field(&mut out, 2, &l);
    }
    bytes_field(&mut out, 1, unixfs);
    out
}

fn unixfs_file(sizes: &[u64]) -> Vec<u8> {
    let mut d = vec![0x08, 0x02, 0x18];
    varint(&mut d, sizes.iter().sum());
    for s in sizes {
        d.push(0x20);
        varint(&mut d, *s);
    }
    d
}

fn unixfs_dags() {
    const RAW: u64 = 0x55;
    const PB: u64 = 0x70;
    let dir = [0x08, 0x01];
    let blocks = [
        // 0: a directory with a raw file, a chunked file and a subdirectory
        pb_node(&[(RAW, 1, Some("a.txt"), 6), (PB, 2, Some("big"), 40), (PB, 3, Some("sub"), 60)], &dir),
        b"hello\n".to_vec(),
        // 2: a file of two chunks, both block 1
        pb_node(&[(RAW, 1, Some(""), 6), (RAW, 1, Some(""), 6)], &unixfs_file(&[6, 6])),
        // 3: a subdirectory holding the chunked file again
        pb_node(&[(PB, 2, Some("again"), 40)], &dir),
    ];
    let bytes = blocks.join(BLOCK_SEPARATOR);
    let files = unpack_directory(&dag_root(), &AnyCid(split_blocks(&bytes)), u64::MAX).unwrap();
    assert_eq!(files.len(), 3, "{files:?}");
    fs::write(seeds("unixfs_dag").join("directory.blocks"), bytes).unwrap();
    // A file root: inline data and one chunk.
    let mut inline = vec![0x08, 0x02, 0x12, 0x03];
    inline.extend(b"abc");
    inline.extend([0x18, 0x09, 0x20, 0x06]);
    let file = [pb_node(&[(RAW, 1, Some(""), 6)], &inline), b"hello\n".to_vec()];
    let bytes = file.join(BLOCK_SEPARATOR);
    assert_eq!(read_file(&dag_root(), &AnyCid(split_blocks(&bytes)), u64::MAX).unwrap(), b"abchello\n");
    fs::write(seeds("unixfs_dag").join("file.blocks"), bytes).unwrap();
    // Hostile (a DAG built to hang a decoder): two names for one file whose tree fans out 100 ways
    // on three levels, 2 million leaf visits from five blocks; and a directory that
    // lists itself, a cycle real hashes cannot make but a forged source can serve.
    let fan = |next: u8| pb_node(&vec![(PB, next, Some(""), 0); 100], &[0x08, 0x02]);
    let hostile = [pb_node(&[(PB, 1, Some("f"), 0), (PB, 1, Some("g"), 0)], &dir), fan(2), fan(3), pb_node(&vec![(RAW, 4, Some(""), 0); 100], &[0x08, 0x02]), Vec::new()];
    let bytes = hostile.join(BLOCK_SEPARATOR);
    let err = unpack_directory(&dag_root(), &AnyCid(split_blocks(&bytes)), u64::MAX).unwrap_err();
    assert!(err.is_limit(), "{err}");
    fs::write(seeds("unixfs_dag").join("hostile-fan-out.blocks"), bytes).unwrap();
    let cycle = pb_node(&[(PB, 0, Some("again"), 0)], &dir);
    let err = unpack_directory(&dag_root(), &AnyCid(split_blocks(&cycle)), u64::MAX).unwrap_err();
    assert!(err.is_limit(), "{err}");
    fs::write(seeds("unixfs_dag").join("hostile-cycle.blocks"), cycle).unwrap();
}
