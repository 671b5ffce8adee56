//! The importer: files (fixed-size chunks, Kubo's balanced layout) and directories.

use std::collections::{BTreeMap, HashSet};

use cid::Cid;

use super::pb::{encode_pb_node, put_varint_field};
use super::{check_component, join, sha256_cid, Block, Dag, DAG_PB, HAMT_SHARDING_THRESHOLD, RAW, TYPE_DIRECTORY, TYPE_FILE};
use crate::NwebError;

/// Chunking and tree shape. [`ImportParams::KUBO`] is the only setting that gives
/// bundle CIDs; other values exist so the layout code can be checked against Kubo
/// vectors made with tiny chunks, where multi-level trees are cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportParams {
    pub chunk_size: usize,
    pub max_links: usize,
}

impl ImportParams {
    /// `ipfs add --cid-version=1 --raw-leaves` with Kubo's `size-262144` chunker and
    /// `UnixFSFileMaxLinks` 174.
    pub const KUBO: ImportParams = ImportParams {
        chunk_size: 262_144,
        max_links: 174,
    };
}

impl Default for ImportParams {
    fn default() -> Self {
        Self::KUBO
    }
}

/// What a parent needs to know about a child: its CID, the cumulative size of its
/// blocks (dag-pb `Tsize`) and how many file bytes it holds (UnixFS `blocksizes`).
#[derive(Debug, Clone, Copy)]
struct Child {
    cid: Cid,
    tsize: u64,
    filesize: u64,
}

/// Receives each new block; `None` when only the CID is wanted.
type Sink<'a> = Option<&'a mut dyn FnMut(&Cid, &[u8])>;

fn emit(sink: &mut Sink<'_>, cid: &Cid, data: &[u8]) {
    if let Some(f) = sink.as_mut() {
        f(cid, data);
    }
}

fn import_file_into(data: &[u8], params: ImportParams, sink: &mut Sink<'_>) -> Child {
    assert!(
        params.chunk_size > 0 && params.max_links > 1,
        "invalid import parameters"
    );
    let mut leaves = Vec::with_capacity(data.len() / params.chunk_size + 1);
    // The empty file is one empty chunk, never zero chunks.
    let chunks: Box<dyn Iterator<Item = &[u8]>> = if data.is_empty() {
        Box::new(std::iter::once(data))
    } else {
        Box::new(data.chunks(params.chunk_size))
    };
    for chunk in chunks {
        let cid = sha256_cid(RAW, chunk);
        emit(sink, &cid, chunk);
        let n = chunk.len() as u64;
        leaves.push(Child {
            cid,
            tsize: n,
            filesize: n,
        });
    }
    if leaves.len() == 1 {
        return leaves[0];
    }
    // Kubo grows the tree one level each time the root fills up, so the depth is the
    // smallest d with max_links^d >= leaves.
    let mut depth = 1u32;
    let mut capacity = params.max_links;
    while capacity < leaves.len() {
        capacity = capacity.saturating_mul(params.max_links);
        depth += 1;
    }
    balanced(&leaves, depth, params.max_links, sink)
}

/// Kubo's `fillNodeRec`: a node at `depth` takes consecutive runs of
/// max_links^(depth-1) leaves, each run its own subtree, the last one possibly short.
fn balanced(leaves: &[Child], depth: u32, max_links: usize, sink: &mut Sink<'_>) -> Child {
    let children: Vec<Child> = if depth == 1 {
        leaves.to_vec()
    } else {
        let run = max_links.saturating_pow(depth - 1);
        leaves
            .chunks(run)
            .map(|run| balanced(run, depth - 1, max_links, sink))
            .collect()
    };
    let filesize: u64 = children.iter().map(|c| c.filesize).sum();
    let mut unixfs = Vec::with_capacity(8 + 4 * children.len());
    put_varint_field(&mut unixfs, 1, TYPE_FILE);
    put_varint_field(&mut unixfs, 3, filesize);
    for c in &children {
        put_varint_field(&mut unixfs, 4, c.filesize);
    }
    let block = encode_pb_node(children.iter().map(|c| (&c.cid, "", c.tsize)), &unixfs);
    let cid = sha256_cid(DAG_PB, &block);
    emit(sink, &cid, &block);
    Child {
        cid,
        tsize: block.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>(),
        filesize,
    }
}

/// Root CID of one file added on its own (`ipfs add --cid-version=1 --raw-leaves`).
pub fn file_cid(data: &[u8]) -> Cid {
    file_cid_with(data, ImportParams::KUBO)
}

/// [`file_cid`] with other chunking parameters.
pub fn file_cid_with(data: &[u8], params: ImportParams) -> Cid {
    import_file_into(data, params, &mut None).cid
}

/// Collects blocks once each, in creation order.
#[derive(Default)]
struct Collector {
    seen: HashSet<Cid>,
    blocks: Vec<Block>,
}

impl Collector {
    fn push(&mut self, cid: &Cid, data: &[u8]) {
        if self.seen.insert(*cid) {
            self.blocks.push(Block {
                cid: *cid,
                data: data.to_vec(),
            });
        }
    }
}

/// Imports one file and keeps its blocks.
pub fn import_file(data: &[u8], params: ImportParams) -> Dag {
    let mut c = Collector::default();
    let root = import_file_into(
        data,
        params,
        &mut Some(&mut |cid: &Cid, d: &[u8]| c.push(cid, d)),
    )
    .cid;
    Dag {
        root,
        blocks: c.blocks,
    }
}

/// A directory tree built from flat paths.
#[derive(Default)]
struct Tree<'a> {
    entries: BTreeMap<&'a str, Entry<'a>>,
}

enum Entry<'a> {
    File(&'a [u8]),
    Dir(Tree<'a>),
}

impl<'a> Tree<'a> {
    fn from_files(files: &[(&'a str, &'a [u8])]) -> Result<Self, NwebError> {
        let mut root = Tree::default();
        for &(path, data) in files {
            if path.starts_with('/') || path.ends_with('/') {
                return Err(NwebError::field(path, "paths are relative and name a file"));
            }
            let parts: Vec<&str> = path
                .split('/')
                .map(|c| check_component(path, c))
                .collect::<Result<_, _>>()?;
            let (file, dirs) = parts.split_last().expect("split yields at least one part");
            let mut node = &mut root;
            for d in dirs {
                let entry = node
                    .entries
                    .entry(d)
                    .or_insert_with(|| Entry::Dir(Tree::default()));
                node = match entry {
                    Entry::Dir(t) => t,
                    Entry::File(_) => {
                        return Err(NwebError::field(
                            path,
                            format!("{d:?} is both a file and a directory"),
                        ))
                    }
                };
            }
            if node.entries.insert(file, Entry::File(data)).is_some() {
                return Err(NwebError::field(
                    path,
                    "given twice, or is also a directory",
                ));
            }
        }
        Ok(root)
    }
}

fn import_tree(
    tree: &Tree<'_>,
    where_: &str,
    params: ImportParams,
    sink: &mut Sink<'_>,
) -> Result<Child, NwebError> {
    let mut links: Vec<(&str, Child)> = Vec::with_capacity(tree.entries.len());
    // BTreeMap<&str> iterates in byte order, which is how Go sorts link names.
    for (name, entry) in &tree.entries {
        let child = match entry {
            Entry::File(data) => import_file_into(data, params, sink),
            Entry::Dir(sub) => import_tree(sub, &join(where_, name), params, sink)?,
        };
        links.push((name, child));
    }
    let estimate: usize = links
        .iter()
        .map(|(n, c)| n.len() + c.cid.encoded_len())
        .sum();
    if estimate >= HAMT_SHARDING_THRESHOLD {
        return Err(NwebError::field(
            if where_.is_empty() { "/" } else { where_ },
            format!(
                "directory links take about {estimate} bytes; Kubo would shard it (HAMT), which is not supported"
            ),
        ));
    }
    let mut unixfs = Vec::with_capacity(2);
    put_varint_field(&mut unixfs, 1, TYPE_DIRECTORY);
    let block = encode_pb_node(links.iter().map(|(n, c)| (&c.cid, *n, c.tsize)), &unixfs);
    let cid = sha256_cid(DAG_PB, &block);
    emit(sink, &cid, &block);
    Ok(Child {
        cid,
        tsize: block.len() as u64 + links.iter().map(|(_, c)| c.tsize).sum::<u64>(),
        filesize: 0,
    })
}


/// CID of the wrapping directory `ipfs add -w` makes for these files, given by
/// relative paths (`scanprint/scanprint.v0.jsonl`); intermediate directories are
/// implied, as when Kubo adds a tree.
pub fn directory_cid(files: &[(&str, &[u8])]) -> Result<Cid, NwebError> {
    let tree = Tree::from_files(files)?;
    Ok(import_tree(&tree, "", ImportParams::KUBO, &mut None)?.cid)
}

/// [`directory_cid`], keeping every block (for a CAR).
pub fn import_directory(files: &[(&str, &[u8])], params: ImportParams) -> Result<Dag, NwebError> {
    let tree = Tree::from_files(files)?;
    let mut c = Collector::default();
    let root = import_tree(
        &tree,
        "",
        params,
        &mut Some(&mut |cid: &Cid, d: &[u8]| c.push(cid, d)),
    )?
    .cid;
    Ok(Dag {
        root,
        blocks: c.blocks,
    })
}
