//! The hostile DAG of the loader's tests, built once: the CAR check's unit test here
//! and the slasher's in loader/tests/chain/evidence.rs (which includes this file).

use nweb::unixfs::{self, Block, ImportParams};
use nweb::{car, Cid};

/// A directory whose one node links the same file 10000 times, and its CAR: a valid
/// block under the CAR's block cap, over nweb's links-per-node limit.
pub fn hostile_dag() -> (Cid, Vec<u8>) {
    let leaf = unixfs::import_file(b"x", ImportParams::KUBO);
    let names: Vec<String> = (0..10_000).map(|i| format!("f{i}")).collect();
    // UnixFS Data: Type = Directory.
    let node = unixfs::encode_pb_node(names.iter().map(|n| (&leaf.root, n.as_str(), leaf.size())), &[0x08, 0x01]);
    let root = unixfs::sha256_cid(unixfs::DAG_PB, &node);
    let mut blocks = vec![Block { cid: root, data: node }];
    blocks.extend(leaf.blocks);
    (root, car::write_car(&root, &blocks).unwrap())
}
