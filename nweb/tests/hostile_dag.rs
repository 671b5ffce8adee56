//! A hostile DAG must not hang an indexer (`unixfs::Limits`). Each test plays one attack
//! against the decoders with honest hashes (a gateway can serve any of these) and
//! asserts a bounded outcome: a `NwebError::Limit` naming the bound, or the right
//! answer with bounded work. Before `Limits`, each one ran for minutes or more
//! (measured numbers in the comments), or decoded a shared block once per use.

mod support;

use support::*;
use nweb::car::{self, read_car_with, unpack_car, unpack_car_with};
use nweb::unixfs::{
    read_file_with, unpack_directory, unpack_directory_with, Block, Limits, MAX_DEPTH,
};
use nweb::NwebError;

/// What the extension passes: a bundle of up to 1 GiB.
const BUNDLE: u64 = 1 << 30;

fn limit_of(e: &NwebError) -> (&'static str, u64) {
    match e {
        NwebError::Limit { what, limit, .. } => (what, *limit),
        other => panic!("expected one of our limits, got: {other}"),
    }
}

fn blocks_of(s: &Counting) -> Vec<Block> {
    s.blocks
        .iter()
        .map(|(cid, data)| Block { cid: *cid, data: data.clone() })
        .collect()
}

/// Three levels of 1000 links each to the level below: 10^9 leaves from 3 blocks of
/// 8 KB. The old unpacker re-decoded the 8 KB level-1 node on each of its 10^6 uses
/// and was still running after 60 s; now the visit budget stops it at once.
#[test]
fn fan_out_chain_stops_at_the_visit_limit() {
    let err = within(10, || {
        let (s, root) = fanout_chain(1000, 3);
        unpack_directory(&root, &s, BUNDLE).unwrap_err()
    });
    assert_eq!(limit_of(&err), ("links followed (the DAG reaches its blocks too often)", 1 << 20));
    assert_eq!(err.sqlstate(), "54000");
    // The same through a CAR, as `nweb.ingest_car` and the loader read it.
    let err = within(10, || {
        let (s, root) = fanout_chain(1000, 3);
        let bytes = car::write_car(&root, &blocks_of(&s)).unwrap();
        unpack_car(&bytes, Some(&root), BUNDLE).unwrap_err()
    });
    assert!(err.is_limit(), "{err}");
}

/// Below the visit limit the same shape unpacks, each block decoded once.
#[test]
fn fan_out_within_the_limits_is_read_with_each_block_decoded_once() {
    let (s, root) = fanout_chain(100, 2);
    let files = within(10, move || {
        let files = unpack_directory(&root, &s, BUNDLE).unwrap();
        assert!(s.blocks.keys().all(|c| s.asked(c) == 1), "a block was read more than once");
        files
    });
    assert_eq!(files, vec![("f".to_string(), Vec::new())]);
}

/// One 8 MiB dag-pb block of 840,000 links. The old code decoded it (about 100 MB of
/// links) and returned an empty file; it is refused unread now, in the CAR reader and
/// in the unpacker.
#[test]
fn a_block_over_the_size_cap_is_refused_before_decoding() {
    let (s, root) = huge_block(8 << 20);
    let big = s.blocks.iter().find(|(_, d)| d.len() > 8 << 20).map(|(c, _)| *c).unwrap();
    let err = within(10, move || unpack_directory(&root, &s, BUNDLE).unwrap_err());
    assert_eq!(limit_of(&err), ("block size in bytes", 2 << 20));
    assert_eq!(err, NwebError::Limit { what: "block size in bytes", limit: 2 << 20, at: Some(big.to_string()) });

    let (s, root) = huge_block(8 << 20);
    let mut bytes = car::write_car(&root, &blocks_of(&s)).unwrap();
    let err = car::read_car(&bytes).unwrap_err();
    assert_eq!(limit_of(&err), ("block size in bytes", 2 << 20));
    // Refused before its bytes are hashed: a corrupted big block is still "too big".
    let n = bytes.len();
    bytes[n - 100] ^= 1;
    assert!(car::read_car(&bytes).unwrap_err().is_limit());
}

/// A node under the size cap with more links than any Kubo node has.
#[test]
fn too_many_links_in_one_node_are_refused_before_decoding() {
    let (s, root) = huge_block(100_000); // 10,000 links
    let err = unpack_directory(&root, &s, BUNDLE).unwrap_err();
    assert_eq!(limit_of(&err), ("links in one node", 8192));
}

/// A directory of 5000 one-byte identity files listed 5000 times: 25 million files
/// from 200 KB, none of them fetched. The old code was still running after 60 s
/// building a list of 25 million paths (gigabytes); the file and visit limits stop it.
#[test]
fn identity_leaves_count_and_cannot_multiply_files() {
    let err = within(10, || {
        let (s, root) = identity_leaves(5000);
        unpack_directory(&root, &s, BUNDLE).unwrap_err()
    });
    assert_eq!(limit_of(&err), ("files in one directory tree", 1 << 16));
    // Identity leaves are output like any other: 100 one-byte files need 100 bytes.
    let (s, root) = identity_leaves(10);
    assert_eq!(unpack_directory(&root, &s, 100).unwrap().len(), 100);
    let err = unpack_directory(&root, &s, 99).unwrap_err();
    assert_eq!(limit_of(&err), ("bytes of file data the DAG describes", 99));
}

/// Distinct directories nested past the depth cap.
#[test]
fn a_chain_deeper_than_the_cap_is_refused() {
    let (s, root) = deep_chain(MAX_DEPTH + 10);
    let err = unpack_directory(&root, &s, BUNDLE).unwrap_err();
    assert_eq!(limit_of(&err), ("nesting depth of directories and file trees", MAX_DEPTH as u64));
    let (s, root) = deep_chain(MAX_DEPTH - 1);
    assert_eq!(unpack_directory(&root, &s, BUNDLE).unwrap().len(), 1);
}

/// One subdirectory listed by 1000 directory entries: decoded once, read correctly
/// everywhere. The old unpacker fetched and decoded it 1000 times.
#[test]
fn a_subtree_shared_by_many_directories_is_decoded_once() {
    let (s, root, sub) = shared_subtree(1000, 10);
    let files = unpack_directory(&root, &s, BUNDLE).unwrap();
    assert_eq!(files.len(), 10_000);
    assert_eq!(files[0], ("d0000/f0".to_string(), b"hi\n".to_vec()));
    assert!(files.iter().all(|(_, d)| d == b"hi\n"));
    assert_eq!(s.asked(&sub), 1, "the shared subdirectory was decoded more than once");
}

/// A CAR with more blocks, or more bytes, than the caps fails before it is read through.
#[test]
fn a_car_over_the_block_or_byte_cap_fails_early() {
    let (s, root, _) = shared_subtree(10, 10);
    let mut blocks = blocks_of(&s);
    // Padding blocks the DAG does not need, as a gateway could append.
    for i in 0..20u32 {
        let data = i.to_be_bytes().to_vec();
        blocks.push(Block { cid: nweb::unixfs::sha256_cid(nweb::unixfs::RAW, &data), data });
    }
    let mut bytes = car::write_car(&root, &blocks).unwrap();
    // write_car leaves unreachable blocks out; append them as sections by hand.
    for b in &blocks[2..] {
        let c = b.cid.to_bytes();
        bytes.push((c.len() + b.data.len()) as u8);
        bytes.extend(c);
        bytes.extend(&b.data);
    }
    let few = Limits { max_blocks: 5, ..Limits::DEFAULT };
    assert_eq!(limit_of(&read_car_with(&bytes, &few).unwrap_err()), ("distinct blocks", 5));
    let small = Limits { max_input_bytes: 100, ..Limits::DEFAULT };
    let err = unpack_car_with(&bytes, Some(&root), &small).unwrap_err();
    assert_eq!(err, NwebError::Limit { what: "CAR size in bytes", limit: 100, at: None });
    assert_eq!(unpack_car_with(&bytes, Some(&root), &Limits::DEFAULT).unwrap().files.len(), 100);
}

/// The unpacker's input budget covers distinct blocks read plus their decoded links,
/// so a source that serves many distinct CIDs cannot make it decode without end.
#[test]
fn the_input_budget_bounds_the_blocks_decoded() {
    let (s, root, _) = shared_subtree(10, 10);
    let tight = Limits { max_input_bytes: 200, ..Limits::DEFAULT };
    let err = unpack_directory_with(&root, &s, &tight).unwrap_err();
    assert_eq!(limit_of(&err), ("bytes of blocks read and decoded", 200));
    let err = read_file_with(&root, &s, &Limits { max_depth: 0, ..Limits::DEFAULT }).unwrap_err();
    // The root is a directory, not a file: a format error, not a limit.
    assert!(!err.is_limit(), "{err}");
}
