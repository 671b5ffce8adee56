// Hand-built DAGs for the attack tests. The encoder is written here from the dag-pb
// spec rather than borrowed from nweb, so a bug in nweb's encoder cannot hide one in
// its decoder.

use std::cell::RefCell;
use std::collections::HashMap;

use nweb::unixfs::{sha256_cid, BlockSource, DAG_PB};
use nweb::Cid;

pub const DIR: &[u8] = &[0x08, 0x01];
/// A UnixFS file node without `filesize`, so no size check stops the walk early.
pub const FILE: &[u8] = &[0x08, 0x02];

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A dag-pb node: links (Hash, Name) first, then Data, as go-merkledag writes them.
pub fn pb_node<'a>(links: impl IntoIterator<Item = (&'a Cid, &'a str)>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut link = Vec::new();
    for (cid, name) in links {
        link.clear();
        bytes_field(&mut link, 1, &cid.to_bytes());
        bytes_field(&mut link, 2, name.as_bytes());
        bytes_field(&mut out, 2, &link);
    }
    bytes_field(&mut out, 1, data);
    out
}

/// A raw CID whose identity multihash is the data itself: no block, no fetch.
pub fn identity_leaf(data: &[u8]) -> Cid {
    let mut b = vec![0x01, 0x55, 0x00, data.len() as u8];
    b.extend_from_slice(data);
    Cid::try_from(b.as_slice()).unwrap()
}

/// Blocks by CID that counts how often each one is asked for.
#[derive(Default)]
pub struct Counting {
    pub blocks: HashMap<Cid, Vec<u8>>,
    pub asked: RefCell<HashMap<Cid, usize>>,
}

impl Counting {
    pub fn put(&mut self, block: Vec<u8>) -> Cid {
        let cid = sha256_cid(DAG_PB, &block);
        self.blocks.insert(cid, block);
        cid
    }
    pub fn asked(&self, cid: &Cid) -> usize {
        self.asked.borrow().get(cid).copied().unwrap_or(0)
    }
}

impl BlockSource for Counting {
    fn block(&self, cid: &Cid) -> Option<&[u8]> {
        *self.asked.borrow_mut().entry(*cid).or_default() += 1;
        self.blocks.get(cid).map(Vec::as_slice)
    }
}

/// Each level links `fanout` times to the level below, so `levels` levels describe
/// fanout^levels leaves in a few kilobytes: a file of identity-hashed empty leaves,
/// wrapped in a directory as a bundle would be.
pub fn fanout_chain(fanout: usize, levels: usize) -> (Counting, Cid) {
    let mut s = Counting::default();
    let mut child = identity_leaf(b"");
    for _ in 0..levels {
        child = s.put(pb_node(std::iter::repeat_n((&child, ""), fanout), FILE));
    }
    let root = s.put(pb_node([(&child, "f")], DIR));
    (s, root)
}

/// One file node of `bytes` bytes or more, all links to the empty identity leaf.
pub fn huge_block(bytes: usize) -> (Counting, Cid) {
    let leaf = identity_leaf(b"");
    let per_link = pb_node([(&leaf, "")], b"").len() - 2;
    let mut s = Counting::default();
    let big = s.put(pb_node(std::iter::repeat_n((&leaf, ""), bytes / per_link + 1), FILE));
    let root = s.put(pb_node([(&big, "f")], DIR));
    (s, root)
}

/// A directory of `n` one-byte identity files, listed `n` times by the root: n^2
/// files from two small blocks, nothing to fetch for any of them.
pub fn identity_leaves(n: usize) -> (Counting, Cid) {
    let leaf = identity_leaf(b"x");
    let names: Vec<String> = (0..n).map(|i| format!("{i:05}")).collect();
    let mut s = Counting::default();
    let inner = s.put(pb_node(names.iter().map(|n| (&leaf, n.as_str())), DIR));
    let root = s.put(pb_node(names.iter().map(|n| (&inner, n.as_str())), DIR));
    (s, root)
}

/// `depth` directories, each holding the next.
pub fn deep_chain(depth: usize) -> (Counting, Cid) {
    let mut s = Counting::default();
    let mut child = s.put(pb_node([(&identity_leaf(b"x"), "x")], DIR));
    for _ in 0..depth {
        child = s.put(pb_node([(&child, "d")], DIR));
    }
    (s, child)
}

/// A subdirectory of `files` files that `dirs` directory entries of the root share.
pub fn shared_subtree(dirs: usize, files: usize) -> (Counting, Cid, Cid) {
    let leaf = identity_leaf(b"hi\n");
    let fnames: Vec<String> = (0..files).map(|i| format!("f{i}")).collect();
    let dnames: Vec<String> = (0..dirs).map(|i| format!("d{i:04}")).collect();
    let mut s = Counting::default();
    let sub = s.put(pb_node(fnames.iter().map(|n| (&leaf, n.as_str())), DIR));
    let root = s.put(pb_node(dnames.iter().map(|n| (&sub, n.as_str())), DIR));
    (s, root, sub)
}

/// Runs `f` on its own thread and fails the test if it takes longer than `secs`:
/// without bounds these attacks run for hours, and a test must fail, not hang.
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("still running after {secs} s: the work is not bounded"))
}
