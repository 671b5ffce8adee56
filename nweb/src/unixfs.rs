//! UnixFS import and export exactly as Kubo's
//! `ipfs add --cid-version=1 --raw-leaves --wrap-with-directory` (docs/design.md D7).
//!
//! A bundle's CID is attested on chain, so ours must be byte-for-byte the one Kubo
//! computes, or honest collectors would be challenged for a hash mismatch. The
//! parameters are pinned here instead of following Kubo's defaults, so a future change
//! of defaults (IPIP-499's `unixfs-v1-2025` profile) cannot silently change our CIDs:
//!
//! - fixed-size chunks of 262144 bytes, each a `raw` (0x55) block;
//! - a file of one chunk is that raw block; the empty file is the empty raw block;
//! - larger files use the balanced layout: at most 174 links per `dag-pb` node, every
//!   subtree full except the last, and no collapsing of single-child nodes;
//! - directories are plain `dag-pb` directories with links sorted by name, and
//!   directories big enough that Kubo would shard them (HAMT) are refused rather than
//!   given a CID Kubo would not produce (reading one, as another collector may send, is
//!   supported: see hamt.rs);
//! - sha2-256 everywhere, CIDv1, no mode or mtime metadata.
//!
//! The dag-pb and UnixFS protobufs are written by hand. They are tiny, and dag-pb has a
//! quirk a generic protobuf encoder gets wrong: `Links` (field 2) is written before
//! `Data` (field 1). Go also writes an empty `Name` on file links, which changes bytes.

use std::collections::{BTreeMap, HashMap, HashSet};

use cid::multihash::Multihash;
use cid::Cid;
use sha2::{Digest, Sha256};

use super::NwebError;
use crate::put_varint;

// A child module, so it reads with the unpacker's own checks; the file sits beside this one.
#[path = "hamt.rs"]
mod hamt;

/// Multicodec of a raw block (file data).
pub const RAW: u64 = 0x55;
/// Multicodec of a dag-pb block (UnixFS file and directory nodes).
pub const DAG_PB: u64 = 0x70;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;
/// Multihash code of the identity "hash" (the data is the digest).
pub const IDENTITY: u64 = 0x00;

/// Kubo switches a directory to a HAMT once the estimated size of its links (name
/// bytes plus CID bytes per entry) reaches 256 KiB.
pub const HAMT_SHARDING_THRESHOLD: usize = 256 * 1024;

/// The deepest directory nesting or file tree [`unpack_directory`] follows. Kubo's
/// balanced layout needs depth 4 for 1.3 TB files; anything deeper is hostile.
pub const MAX_DEPTH: usize = 64;

/// UnixFS `Data.Type` values (unixfs.proto).
const TYPE_DIRECTORY: u64 = 1;
const TYPE_FILE: u64 = 2;
const TYPE_RAW: u64 = 0;

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

/// One content-addressed block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub cid: Cid,
    pub data: Vec<u8>,
}

/// A DAG built by an import: its root and every block once, children before parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    pub root: Cid,
    pub blocks: Vec<Block>,
}

impl Dag {
    /// Total bytes of all blocks, the size `ipfs dag stat` reports.
    pub fn size(&self) -> u64 {
        self.blocks.iter().map(|b| b.data.len() as u64).sum()
    }
}

/// CIDv1 with a sha2-256 multihash of `data`.
pub fn sha256_cid(codec: u64, data: &[u8]) -> Cid {
    let digest = Sha256::digest(data);
    let mh = Multihash::<64>::wrap(SHA2_256, &digest).expect("a 32-byte digest fits in 64");
    Cid::new_v1(codec, mh)
}

/// What a parent needs to know about a child: its CID, the cumulative size of its
/// blocks (dag-pb `Tsize`) and how many file bytes it holds (UnixFS `blocksizes`).
#[derive(Debug, Clone, Copy)]
struct Child {
    cid: Cid,
    tsize: u64,
    filesize: u64,
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// dag-pb `PBNode`: every link (field 2) first, then `Data` (field 1). Each link
/// carries `Hash`, `Name` (always written, empty for file chunks, as go-merkledag
/// does) and `Tsize`.
fn encode_pb_node<'a>(
    links: impl IntoIterator<Item = (&'a Cid, &'a str, u64)>,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut link = Vec::new();
    for (cid, name, tsize) in links {
        link.clear();
        put_bytes_field(&mut link, 1, &cid.to_bytes());
        put_bytes_field(&mut link, 2, name.as_bytes());
        put_varint_field(&mut link, 3, tsize);
        put_bytes_field(&mut out, 2, &link);
    }
    put_bytes_field(&mut out, 1, data);
    out
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

/// Rejects names a UnixFS path cannot hold or that a reader could be tricked by.
fn check_component<'a>(path: &str, c: &'a str) -> Result<&'a str, NwebError> {
    if c.is_empty() || c == "." || c == ".." || c.contains('\0') {
        return Err(NwebError::field(
            path,
            "a path component is empty, \".\", \"..\" or contains NUL",
        ));
    }
    Ok(c)
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

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
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

// ---------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------

/// A decoded dag-pb link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbLink {
    pub cid: Cid,
    pub name: Option<String>,
    pub tsize: Option<u64>,
}

/// A decoded dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PbNode {
    pub links: Vec<PbLink>,
    pub data: Option<Vec<u8>>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("varint runs past the end".into());
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 64 bits".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "length overflows".to_string())?;
        let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(format!("field of {len} bytes runs past the end"));
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Field number and wire type of the next key.
    fn key(&mut self) -> Result<(u64, u64), String> {
        let k = self.varint()?;
        Ok((k >> 3, k & 7))
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.advance(8),
            2 => self.bytes().map(drop),
            5 => self.advance(4),
            w => Err(format!("unsupported protobuf wire type {w}")),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), String> {
        if self.pos + n > self.buf.len() {
            return Err("fixed-width field runs past the end".into());
        }
        self.pos += n;
        Ok(())
    }
}

/// Decodes a dag-pb block strictly: only `Links` and `Data`, as the dag-pb spec allows.
pub fn decode_pb_node(bytes: &[u8]) -> Result<PbNode, String> {
    let mut r = Reader::new(bytes);
    let mut node = PbNode::default();
    while !r.done() {
        match r.key()? {
            (2, 2) => node.links.push(decode_pb_link(r.bytes()?)?),
            (1, 2) if node.data.is_none() => node.data = Some(r.bytes()?.to_vec()),
            (1, 2) => return Err("Data given twice".into()),
            (f, w) => return Err(format!("unexpected field {f} (wire type {w}) in PBNode")),
        }
    }
    Ok(node)
}

fn decode_pb_link(bytes: &[u8]) -> Result<PbLink, String> {
    let mut r = Reader::new(bytes);
    let (mut cid, mut name, mut tsize) = (None, None, None);
    while !r.done() {
        match r.key()? {
            (1, 2) => {
                let raw = r.bytes()?;
                cid = Some(Cid::try_from(raw).map_err(|e| format!("link Hash is not a CID: {e}"))?);
            }
            (2, 2) => {
                let raw = r.bytes()?;
                name = Some(
                    String::from_utf8(raw.to_vec())
                        .map_err(|_| "link Name is not UTF-8".to_string())?,
                );
            }
            (3, 0) => tsize = Some(r.varint()?),
            (f, w) => return Err(format!("unexpected field {f} (wire type {w}) in PBLink")),
        }
    }
    let cid = cid.ok_or("link without Hash")?;
    Ok(PbLink { cid, name, tsize })
}

/// The UnixFS `Data` message, the parts a reader of files and directories needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct UnixFsData {
    kind: u64,
    data: Option<Vec<u8>>,
    filesize: Option<u64>,
    blocksizes: Vec<u64>,
    hash_type: Option<u64>,
    fanout: Option<u64>,
}

fn decode_unixfs(bytes: &[u8]) -> Result<UnixFsData, String> {
    let mut r = Reader::new(bytes);
    let mut out = UnixFsData::default();
    let mut kind = None;
    while !r.done() {
        match r.key()? {
            (1, 0) => kind = Some(r.varint()?),
            (2, 2) => out.data = Some(r.bytes()?.to_vec()),
            (3, 0) => out.filesize = Some(r.varint()?),
            (4, 0) => out.blocksizes.push(r.varint()?),
            (4, 2) => {
                // Packed encoding, which some writers use; equivalent.
                let mut p = Reader::new(r.bytes()?);
                while !p.done() {
                    out.blocksizes.push(p.varint()?);
                }
            }
            (5, 0) => out.hash_type = Some(r.varint()?),
            (6, 0) => out.fanout = Some(r.varint()?),
            (_, w) => r.skip(w)?,
        }
    }
    out.kind = kind.ok_or("UnixFS Data without Type")?;
    Ok(out)
}

/// Where [`unpack_directory`] finds blocks.
pub trait BlockSource {
    fn block(&self, cid: &Cid) -> Option<&[u8]>;
}

impl BlockSource for HashMap<Cid, Vec<u8>> {
    fn block(&self, cid: &Cid) -> Option<&[u8]> {
        self.get(cid).map(Vec::as_slice)
    }
}

/// Reads a whole UnixFS directory into (relative path, bytes), sorted by path.
///
/// Every block reached is required; a missing one is an error naming its CID, which is
/// how a truncated download is caught. `max_bytes` bounds the file bytes, and through
/// [`work_limit`] the work: a DAG may reach one block many times, so every block read
/// costs its size (at least one) each time and every path its length. Counting only file
/// bytes let a few KB of shared directories of empty files expand without end.
pub fn unpack_directory(
    root: &Cid,
    blocks: &dyn BlockSource,
    max_bytes: u64,
) -> Result<Vec<(String, Vec<u8>)>, NwebError> {
    let mut u = Unpacker {
        blocks,
        budget: max_bytes,
        work: work_limit(max_bytes),
        files: Vec::new(),
    };
    let node = u.dag_pb(root)?;
    let data = unixfs_of(root, &node)?;
    if data.kind != TYPE_DIRECTORY && data.kind != hamt::TYPE_HAMT_SHARD {
        return Err(NwebError::block(root, "the root is not a UnixFS directory"));
    }
    u.directory(root, &node, "", 0)?;
    let mut files = u.files;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Reads one UnixFS file (raw block or dag-pb file tree).
pub fn read_file(
    root: &Cid,
    blocks: &dyn BlockSource,
    max_bytes: u64,
) -> Result<Vec<u8>, NwebError> {
    let mut u = Unpacker {
        blocks,
        budget: max_bytes,
        work: work_limit(max_bytes),
        files: Vec::new(),
    };
    let mut out = Vec::new();
    u.file(root, &mut out, 0)?;
    Ok(out)
}

fn unixfs_of(cid: &Cid, node: &PbNode) -> Result<UnixFsData, NwebError> {
    let Some(data) = &node.data else {
        return Err(NwebError::block(cid, "dag-pb node without UnixFS Data"));
    };
    decode_unixfs(data).map_err(|e| NwebError::block(cid, format!("bad UnixFS Data: {e}")))
}

/// Bytes of blocks and paths an unpack of at most `max_bytes` may read. An honest
/// Kubo DAG reads its file bytes plus well under 1% in nodes; the slack is for tiny
/// files, whose nodes outweigh their data.
pub fn work_limit(max_bytes: u64) -> u64 {
    max_bytes.saturating_mul(2).saturating_add(1 << 20)
}

struct Unpacker<'a> {
    blocks: &'a dyn BlockSource,
    budget: u64,
    work: u64,
    files: Vec<(String, Vec<u8>)>,
}

impl Unpacker<'_> {
    fn raw<'b>(&'b self, cid: &'b Cid) -> Result<&'b [u8], NwebError> {
        if cid.hash().code() == IDENTITY {
            // Identity CIDs carry their data and are never sent as blocks.
            return Ok(cid.hash().digest());
        }
        self.blocks
            .block(cid)
            .ok_or_else(|| NwebError::block(cid, "missing: not among the blocks received"))
    }

    fn dag_pb(&mut self, cid: &Cid) -> Result<PbNode, NwebError> {
        // Absence first: for a root that is not there, "missing" is the useful report.
        let bytes = self.raw(cid)?;
        if cid.codec() != DAG_PB {
            return Err(NwebError::block(
                cid,
                format!("expected dag-pb, codec is 0x{:x}", cid.codec()),
            ));
        }
        let node = decode_pb_node(bytes).map_err(|e| NwebError::block(cid, format!("bad dag-pb: {e}")))?;
        let n = bytes.len();
        self.charge(cid, n)?;
        Ok(node)
    }

    fn charge(&mut self, cid: &Cid, n: usize) -> Result<(), NwebError> {
        self.work = self.work.checked_sub(n.max(1) as u64).ok_or_else(|| {
            NwebError::block(cid, "the DAG reaches its blocks so often that reading it exceeds the allowed maximum")
        })?;
        Ok(())
    }

    fn take(&mut self, cid: &Cid, n: usize) -> Result<(), NwebError> {
        self.budget = self.budget.checked_sub(n as u64).ok_or_else(|| {
            NwebError::block(cid, "the DAG describes more data than the allowed maximum")
        })?;
        Ok(())
    }

    fn directory(
        &mut self,
        cid: &Cid,
        node: &PbNode,
        path: &str,
        depth: usize,
    ) -> Result<(), NwebError> {
        if depth > MAX_DEPTH {
            return Err(NwebError::block(cid, "directories nested too deep"));
        }
        let flat;
        let node = if unixfs_of(cid, node)?.kind == hamt::TYPE_HAMT_SHARD {
            flat = self.hamt_entries(cid, node, depth)?;
            &flat
        } else {
            node
        };
        let mut names = HashSet::new();
        for link in &node.links {
            let Some(name) = link.name.as_deref() else {
                return Err(NwebError::block(cid, "directory link without a name"));
            };
            let name = check_component(path, name).map_err(|_| {
                NwebError::block(cid, format!("directory entry name {name:?} is not allowed"))
            })?;
            if !names.insert(name) {
                return Err(NwebError::block(
                    cid,
                    format!("directory lists {name:?} twice"),
                ));
            }
            let child_path = join(path, name);
            self.charge(cid, child_path.len())?;
            let mut bytes = Vec::new();
            if link.cid.codec() == DAG_PB {
                let child = self.dag_pb(&link.cid)?;
                if matches!(unixfs_of(&link.cid, &child)?.kind, TYPE_DIRECTORY | hamt::TYPE_HAMT_SHARD) {
                    self.directory(&link.cid, &child, &child_path, depth + 1)?;
                    continue;
                }
                self.file_node(&link.cid, &child, &mut bytes, depth + 1)?;
            } else {
                self.file(&link.cid, &mut bytes, depth + 1)?;
            }
            self.files.push((child_path, bytes));
        }
        Ok(())
    }

    fn file(&mut self, cid: &Cid, out: &mut Vec<u8>, depth: usize) -> Result<(), NwebError> {
        if depth > MAX_DEPTH {
            return Err(NwebError::block(cid, "file tree nested too deep"));
        }
        match cid.codec() {
            RAW => {
                let n = self.raw(cid)?.len();
                self.charge(cid, n)?;
                self.take(cid, n)?;
                out.extend_from_slice(self.raw(cid)?);
                Ok(())
            }
            DAG_PB => {
                let node = self.dag_pb(cid)?;
                self.file_node(cid, &node, out, depth)
            }
            other => Err(NwebError::block(
                cid,
                format!("codec 0x{other:x} is not part of UnixFS"),
            )),
        }
    }

    fn file_node(&mut self, cid: &Cid, node: &PbNode, out: &mut Vec<u8>, depth: usize) -> Result<(), NwebError> {
        let data = unixfs_of(cid, node)?;
        if data.kind != TYPE_FILE && data.kind != TYPE_RAW {
            return Err(NwebError::block(
                cid,
                format!("UnixFS type {} is not a file (symlinks are not supported)", data.kind),
            ));
        }
        let start = out.len();
        if let Some(inline) = &data.data {
            self.take(cid, inline.len())?;
            out.extend_from_slice(inline);
        }
        for link in &node.links {
            self.file(&link.cid, out, depth + 1)?;
        }
        let got = (out.len() - start) as u64;
        if let Some(size) = data.filesize {
            if size != got {
                return Err(NwebError::block(
                    cid,
                    format!("filesize says {size} bytes, the tree holds {got}"),
                ));
            }
        }
        Ok(())
    }
}

/// Children of a block, in link order: none for raw blocks, the links of a dag-pb node.
pub fn links_of(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, NwebError> {
    match cid.codec() {
        DAG_PB => Ok(decode_pb_node(data)
            .map_err(|e| NwebError::block(cid, format!("bad dag-pb: {e}")))?
            .links
            .into_iter()
            .map(|l| l.cid)
            .collect()),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(s: &str) -> Cid {
        s.parse().unwrap()
    }

    fn blocks_map(dag: &Dag) -> HashMap<Cid, Vec<u8>> {
        dag.blocks.iter().map(|b| (b.cid, b.data.clone())).collect()
    }

    // --- Vectors from the IPFS UnixFS spec, "Appendix: Test Vectors" (ipfs/specs
    // src/unixfs.md), which point at gateway-conformance v0.8.1 fixtures.

    #[test]
    fn spec_vector_empty_raw_block() {
        assert_eq!(
            file_cid(b"").to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        let dag = import_file(b"", ImportParams::KUBO);
        assert_eq!(dag.blocks.len(), 1);
        assert!(dag.blocks[0].data.is_empty());
    }

    #[test]
    fn spec_vector_single_raw_block_files() {
        for (content, want) in [
            (
                &b"hello world\n"[..],
                "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
            ),
            (
                b"hello application/vnd.ipld.car\n",
                "bafkreifkam6ns4aoolg3wedr4uzrs3kvq66p4pecirz6y2vlrngla62mxm",
            ),
            (
                b"Hello, world!\n",
                "bafkreigzafgemjeejks3vqyuo46ww2e22rt7utq5djikdofjtvnjl5zp6u",
            ),
            (
                b"Hello, IPFS!\n",
                "bafkreic3ondyhizrzeoufvoodehinugpj3ecruwokaygl7elezhn2khqfa",
            ),
            (
                b"hello from a percent encoded filename\n",
                "bafkreihfmctcb2kuvoljqeuphqr2fg2r45vz5cxgq5c2yrxnqg5erbitmq",
            ),
        ] {
            assert_eq!(file_cid(content).to_string(), want, "{content:?}");
        }
    }

    /// `subdir-with-two-single-block-files.car`: the spec also gives the block sizes
    /// (110 and 55 bytes), which pins the link encoding and the cumulative Tsize.
    #[test]
    fn spec_vector_nested_directory() {
        let ascii = b"hello application/vnd.ipld.car\n";
        let hello = b"hello world\n";
        let inner = import_directory(
            &[("ascii.txt", ascii), ("hello.txt", hello)],
            ImportParams::KUBO,
        )
        .unwrap();
        assert_eq!(
            inner.root.to_string(),
            "bafybeiggghzz6dlue3m6nb2dttnbrygxh3lrjl5764f2m4gq7dgzdt55o4"
        );
        assert_eq!(inner.blocks.last().unwrap().data.len(), 110);

        let files: [(&str, &[u8]); 2] = [("subdir/hello.txt", hello), ("subdir/ascii.txt", ascii)];
        let outer = import_directory(&files, ImportParams::KUBO).unwrap();
        assert_eq!(
            outer.root.to_string(),
            "bafybeietjm63oynimmv5yyqay33nui4y4wx6u3peezwetxgiwvfmelutzu"
        );
        let root_block = outer.blocks.iter().find(|b| b.cid == outer.root).unwrap();
        assert_eq!(root_block.data.len(), 55);
        assert_eq!(directory_cid(&files).unwrap(), outer.root);
    }

    /// `path_gateway_dag/dag-pb.car`: a file next to a directory.
    #[test]
    fn spec_vector_dir_with_file_and_subdir() {
        let files: [(&str, &[u8]); 2] = [
            ("foo.txt", b"Hello, IPFS!\n"),
            ("foo/bar.txt", b"Hello, world!\n"),
        ];
        let dag = import_directory(&files, ImportParams::KUBO).unwrap();
        assert_eq!(
            dag.root.to_string(),
            "bafybeiegxwlgmoh2cny7qlolykdf7aq7g6dlommarldrbm7c4hbckhfcke"
        );
        let foo = dag
            .blocks
            .iter()
            .find(|b| b.cid == cid("bafybeidryarwh34ygbtyypbu7qjkl4euiwxby6cql6uvosonohkq2kwnkm"));
        assert!(foo.is_some(), "foo/ directory block");
    }

    /// `dir-with-percent-encoded-filename.car`: a non-ASCII name is stored as its UTF-8
    /// bytes. (The spec's `path_gateway_tar` tree is abbreviated, so it is no vector.)
    #[test]
    fn spec_vector_utf8_name() {
        let files: [(&str, &[u8]); 1] = [(
            "Portugal%2C+España=Peninsula Ibérica.txt",
            b"hello from a percent encoded filename\n",
        )];
        assert_eq!(
            directory_cid(&files).unwrap().to_string(),
            "bafybeig675grnxcmshiuzdaz2xalm6ef4thxxds6o6ypakpghm5kghpc34"
        );
    }

    #[test]
    fn spec_vector_empty_directory() {
        assert_eq!(
            directory_cid(&[]).unwrap().to_string(),
            "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
        );
    }

    // --- Kubo 0.40.1 `ipfs add --only-hash --cid-version=1` output with small chunkers,
    // pinned in dariusc93/rust-ipfs unixfs/tests/interop.rs. Small chunks make the
    // balanced layout cheap to exercise, including a second level (400 leaves > 174).

    #[test]
    fn kubo_vectors_balanced_layout_with_small_chunks() {
        let p = |chunk_size| ImportParams {
            chunk_size,
            max_links: 174,
        };
        let cases: [(Vec<u8>, usize, &str); 3] = [
            (
                b"foobar\n".to_vec(),
                2,
                "bafybeiakabo5d5e25jzw2i32mymsnwyuoaqozkjfkqibnvodyxna6nuanm",
            ),
            (
                vec![0u8; 1000],
                7,
                "bafybeia3u4lcsbc6ijwivdukvlougvli4rm73r65chivjsl5l7vemqclhy",
            ),
            (
                vec![b'a'; 400],
                1,
                "bafybeiajemq5ovepy7fc56ifhtn6aoctbkgxcqav44zg2bjkrfwvlbnewu",
            ),
        ];
        for (content, chunk, want) in cases {
            assert_eq!(
                file_cid_with(&content, p(chunk)).to_string(),
                want,
                "len {} chunk {chunk}",
                content.len()
            );
        }
    }

    #[test]
    fn kubo_vector_wrapped_small_directory() {
        let files: [(&str, &[u8]); 2] = [("b.txt", b"bb"), ("a.txt", b"a")];
        assert_eq!(
            directory_cid(&files).unwrap().to_string(),
            "bafybeic7au5c3eydqdymxffpwtuahdr3saj2dxptw34y6uvkyoybxpuhte"
        );
    }

    /// The 400-leaf tree above, checked for shape: a root with 3 children holding 174,
    /// 174 and 52 leaves. Repeated leaves are stored once.
    #[test]
    fn balanced_tree_shape() {
        let dag = import_file(
            &[b'a'; 400],
            ImportParams {
                chunk_size: 1,
                max_links: 174,
            },
        );
        let map = blocks_map(&dag);
        let root = decode_pb_node(&map[&dag.root]).unwrap();
        assert_eq!(root.links.len(), 3);
        let sizes: Vec<usize> = root
            .links
            .iter()
            .map(|l| decode_pb_node(&map[&l.cid]).unwrap().links.len())
            .collect();
        assert_eq!(sizes, [174, 174, 52]);
        // One distinct leaf, two distinct interior nodes (the two full ones are equal), root.
        assert_eq!(dag.blocks.len(), 4);
        assert_eq!(read_file(&dag.root, &map, 400).unwrap(), vec![b'a'; 400]);
    }

    /// A single-leaf remainder still gets its own interior node, as in Kubo.
    #[test]
    fn remainder_of_one_leaf_is_not_collapsed() {
        let dag = import_file(
            &[7u8; 175],
            ImportParams {
                chunk_size: 1,
                max_links: 174,
            },
        );
        let map = blocks_map(&dag);
        let root = decode_pb_node(&map[&dag.root]).unwrap();
        assert_eq!(root.links.len(), 2);
        let last = &root.links[1];
        assert_eq!(last.cid.codec(), DAG_PB);
        assert_eq!(decode_pb_node(&map[&last.cid]).unwrap().links.len(), 1);
    }

    /// Bytes of a deterministic, incompressible file: SHA-256 in counter mode.
    pub(crate) fn generated(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut i = 0u64;
        while out.len() < len {
            out.extend_from_slice(&Sha256::digest(i.to_be_bytes()));
            i += 1;
        }
        out.truncate(len);
        out
    }

    /// A 1.25 MiB file spans five 256 KiB chunks. Its root is rebuilt here from first
    /// principles, byte by byte, as the dag-pb spec and the UnixFS spec describe the
    /// node, without any of the encoder above. (No published Kubo vector exists for a
    /// file of more than one 262144-byte chunk; the small-chunk Kubo vectors above pin
    /// the same code path.)
    #[test]
    fn multi_chunk_file_root_rebuilt_by_hand() {
        let len = 4 * 262_144 + 100_000;
        let data = generated(len);
        let chunks: Vec<&[u8]> = data.chunks(262_144).collect();
        assert_eq!(chunks.len(), 5);

        fn varint(mut v: u64) -> Vec<u8> {
            let mut out = vec![];
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(b);
                    return out;
                }
                out.push(b | 0x80);
            }
        }
        // UnixFS Data: Type=File (08 02), filesize (18 ..), blocksizes (20 .. each).
        let mut unixfs = vec![0x08, 0x02, 0x18];
        unixfs.extend(varint(len as u64));
        for c in &chunks {
            unixfs.push(0x20);
            unixfs.extend(varint(c.len() as u64));
        }
        let mut node = Vec::new();
        for c in &chunks {
            // CIDv1 bytes: version 1, codec raw 0x55, sha2-256 0x12, length 32, digest.
            let mut cid_bytes = vec![0x01, 0x55, 0x12, 0x20];
            cid_bytes.extend_from_slice(&Sha256::digest(c));
            let mut link = vec![0x0a, 36];
            link.extend(&cid_bytes);
            link.extend([0x12, 0x00, 0x18]);
            link.extend(varint(c.len() as u64));
            node.push(0x12);
            node.extend(varint(link.len() as u64));
            node.extend(link);
        }
        node.push(0x0a);
        node.extend(varint(unixfs.len() as u64));
        node.extend(unixfs);
        let mut root_bytes = vec![0x01, 0x70, 0x12, 0x20];
        root_bytes.extend_from_slice(&Sha256::digest(&node));
        let want = Cid::try_from(root_bytes.as_slice()).unwrap();

        let dag = import_file(&data, ImportParams::KUBO);
        assert_eq!(dag.root, want);
        assert_eq!(file_cid(&data), want);
        assert_eq!(dag.blocks.len(), 6);
        assert_eq!(
            read_file(&dag.root, &blocks_map(&dag), len as u64).unwrap(),
            data
        );
    }

    /// Deterministic filler that is cheap in debug builds (xorshift64, little endian).
    fn xorshift(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Kubo-parameter files cross-checked against rust-unixfs 0.6.0 (`FileAdder::default()`,
    /// an independent implementation whose own tests pin Kubo 0.40.1 output), computed
    /// outside this crate. 174 chunks is the last one-level tree; 174 chunks and one
    /// byte, and 175 chunks and five bytes, need a second level.
    #[test]
    fn kubo_parameter_files_match_an_independent_implementation() {
        assert_eq!(
            file_cid(&generated(4 * 262_144 + 100_000)).to_string(),
            "bafybeibenjregpbtmrpgw7xlxx7rmftsc5ona72kysgwq3yjeoouvrh334"
        );
        assert_eq!(
            file_cid(&generated(262_144)).to_string(),
            "bafkreigy5tcgloscldzhi2iadhemu2v7dj2u5wme7vgim2jlmnxindpsfi"
        );
        assert_eq!(
            file_cid(&generated(262_145)).to_string(),
            "bafybeiavfl3mrv5rig3iqfle6aheyo3crcdzseal3jfwykhuwtmc4vtyjy"
        );
        for (len, want) in [
            (
                174 * 262_144,
                "bafybeie6ljkwmvsffq5e3ottyzwzkloha5qwqu3e6wi6scw53esjy423dy",
            ),
            (
                174 * 262_144 + 1,
                "bafybeigspejv3cz7pe6wczxb6ivnmjtxynuc67j4a2d4hy2hyajkhahc7a",
            ),
            (
                175 * 262_144 + 5,
                "bafybeiedlo4yg2nh6tkzv7vysebd46zmu4yl43fav6gurfqyucqe7cyoyy",
            ),
        ] {
            assert_eq!(file_cid(&xorshift(len)).to_string(), want, "len {len}");
        }
        let big = generated(600_000);
        let files: [(&str, &[u8]); 3] = [
            ("manifest.json", b"{}"),
            ("raw/nmap.xml", &big),
            ("scanprint/scanprint.v0.jsonl", b"{\"a\":1}\n"),
        ];
        assert_eq!(
            directory_cid(&files).unwrap().to_string(),
            "bafybeidy6emdavfup6yf7wes7st4gbakekzjkjocwtnybb7gqnoudj3see"
        );
    }

    #[test]
    fn exactly_one_chunk_is_a_raw_block_and_one_more_byte_is_not() {
        let one = generated(262_144);
        assert_eq!(file_cid(&one), sha256_cid(RAW, &one));
        let more = generated(262_145);
        let c = file_cid(&more);
        assert_eq!(c.codec(), DAG_PB);
        let dag = import_file(&more, ImportParams::KUBO);
        let root = decode_pb_node(&blocks_map(&dag)[&c]).unwrap();
        assert_eq!(
            root.links.iter().map(|l| l.tsize).collect::<Vec<_>>(),
            [Some(262_144), Some(1)]
        );
    }

    #[test]
    fn directory_round_trip_through_blocks() {
        let big = generated(600_000);
        let files: Vec<(&str, &[u8])> = vec![
            ("manifest.json", b"{}"),
            ("raw/nmap.xml", &big),
            ("scanprint/scanprint.v0.jsonl", b"{\"a\":1}\n"),
            ("assets/screenshots/192.0.2.1/1/rdp.png", b"\x89PNG"),
        ];
        let dag = import_directory(&files, ImportParams::KUBO).unwrap();
        let out = unpack_directory(&dag.root, &blocks_map(&dag), u64::MAX).unwrap();
        let mut want: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, d)| (p.to_string(), d.to_vec()))
            .collect();
        want.sort();
        assert_eq!(out, want);
        // The order files are given in does not matter.
        let mut reversed = files.clone();
        reversed.reverse();
        assert_eq!(directory_cid(&reversed).unwrap(), dag.root);
        // Content does.
        let mut changed = files.clone();
        changed[0].1 = b"{ }";
        assert_ne!(directory_cid(&changed).unwrap(), dag.root);
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in ["", "/abs", "dir/", "a//b", "./a", "a/../b", "nul\0"] {
            assert!(directory_cid(&[(bad, b"x")]).is_err(), "{bad:?}");
        }
        assert!(directory_cid(&[("a", b"x"), ("a", b"y")]).is_err());
        assert!(directory_cid(&[("a", b"x"), ("a/b", b"y")]).is_err());
        assert!(directory_cid(&[("a/b", b"x"), ("a", b"y")]).is_err());
    }

    #[test]
    fn directories_kubo_would_shard_are_refused() {
        let names: Vec<String> = (0..5000)
            .map(|i| format!("screenshot-{i:06}.png"))
            .collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let err = directory_cid(&files).unwrap_err().to_string();
        assert!(err.contains("HAMT"), "{err}");
        // Well under the threshold is fine.
        assert!(directory_cid(&files[..1000]).is_ok());
    }

    #[test]
    fn unpack_names_the_missing_block() {
        let data = generated(600_000);
        let dag = import_directory(&[("raw/nmap.xml", &data)], ImportParams::KUBO).unwrap();
        let mut map = blocks_map(&dag);
        let victim = sha256_cid(RAW, &data[262_144..524_288]);
        assert!(map.remove(&victim).is_some());
        let err = unpack_directory(&dag.root, &map, u64::MAX).unwrap_err();
        assert_eq!(
            err,
            NwebError::block(victim, "missing: not among the blocks received")
        );
    }

    #[test]
    fn unpack_bounds_the_output() {
        let dag = import_directory(&[("a", &[1u8; 1000][..])], ImportParams::KUBO).unwrap();
        let map = blocks_map(&dag);
        assert!(unpack_directory(&dag.root, &map, 1000).is_ok());
        let err = unpack_directory(&dag.root, &map, 999)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more data than the allowed maximum"), "{err}");
    }

    /// Found by the `unixfs_dag` fuzz target's design: 20 directory blocks, each
    /// listing the next twice, describe 2^20 empty files. Only file bytes were counted,
    /// so this unpacked (given depth 60, it never returned) inside any budget.
    #[test]
    fn shared_subtrees_cannot_multiply_the_work() {
        let empty = sha256_cid(RAW, b"");
        let mut map: HashMap<Cid, Vec<u8>> = [(empty, Vec::new())].into_iter().collect();
        let mut child = empty;
        for _ in 0..20 {
            let block = encode_pb_node([(&child, "a", 0), (&child, "b", 0)], &[0x08, 0x01]);
            child = sha256_cid(DAG_PB, &block);
            map.insert(child, block);
        }
        let err = unpack_directory(&child, &map, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("exceeds the allowed maximum"), "{err}");
    }

    #[test]
    fn unpack_refuses_a_file_root_and_traversal_names() {
        let dag = import_file(b"hi", ImportParams::KUBO);
        let map = blocks_map(&dag);
        assert!(unpack_directory(&dag.root, &map, u64::MAX).is_err());

        // A hand-made directory with an entry named "..".
        let leaf = sha256_cid(RAW, b"x");
        let block = encode_pb_node([(&leaf, "..", 1)], &[0x08, 0x01]);
        let dir = sha256_cid(DAG_PB, &block);
        let map: HashMap<Cid, Vec<u8>> =
            [(dir, block), (leaf, b"x".to_vec())].into_iter().collect();
        let err = unpack_directory(&dir, &map, u64::MAX)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"..\" is not allowed"), "{err}");
    }

    #[test]
    fn pb_decoding_is_strict() {
        assert!(decode_pb_node(&[0x08, 0x01]).is_err(), "unknown field");
        assert!(
            decode_pb_node(&[0x0a, 0x05, 0x00]).is_err(),
            "truncated Data"
        );
        assert!(
            decode_pb_node(&[0x12, 0x02, 0x18, 0x01]).is_err(),
            "link without Hash"
        );
        assert_eq!(decode_pb_node(&[]).unwrap(), PbNode::default());
    }
}
