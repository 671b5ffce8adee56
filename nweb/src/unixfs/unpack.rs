//! The unpacker: reads UnixFS directories and files out of blocks that came from
//! untrusted sources, within [`Limits`].

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use cid::Cid;

use super::pb::{count_links, decode_pb_node, decode_unixfs, PbLink, UnixFsData};
use super::{check_component, join, Limits, DAG_PB, IDENTITY, RAW, TYPE_DIRECTORY, TYPE_FILE, TYPE_RAW};
use crate::NwebError;

// A child module, so it reads with the unpacker's own budgets; the file sits beside this one.
#[path = "hamt.rs"]
mod hamt;
use hamt::TYPE_HAMT_SHARD;

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
/// how a truncated download is caught. `max_bytes` bounds the file bytes; the rest of
/// [`Limits::with_max_bytes`] bounds the work.
pub fn unpack_directory(
    root: &Cid,
    blocks: &dyn BlockSource,
    max_bytes: u64,
) -> Result<Vec<(String, Vec<u8>)>, NwebError> {
    unpack_directory_with(root, blocks, &Limits::with_max_bytes(max_bytes))
}

/// [`unpack_directory`] within explicit [`Limits`].
pub fn unpack_directory_with(
    root: &Cid,
    blocks: &dyn BlockSource,
    limits: &Limits,
) -> Result<Vec<(String, Vec<u8>)>, NwebError> {
    let mut u = Unpacker::new(blocks, limits);
    u.visit(root)?;
    let node = u.dag_pb(root)?;
    if node.unixfs.kind != TYPE_DIRECTORY && node.unixfs.kind != TYPE_HAMT_SHARD {
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
    read_file_with(root, blocks, &Limits::with_max_bytes(max_bytes))
}

/// [`read_file`] within explicit [`Limits`].
pub fn read_file_with(root: &Cid, blocks: &dyn BlockSource, limits: &Limits) -> Result<Vec<u8>, NwebError> {
    let mut u = Unpacker::new(blocks, limits);
    u.visit(root)?;
    let mut out = Vec::new();
    u.file(root, &mut out, 0)?;
    Ok(out)
}

/// Bytes of input an unpack of at most `max_bytes` may read (the default of
/// [`Limits::max_input_bytes`]). An honest Kubo DAG reads its file bytes plus well
/// under 1% in nodes; the slack is for tiny files, whose nodes outweigh their data.
pub const fn work_limit(max_bytes: u64) -> u64 {
    max_bytes.saturating_mul(2).saturating_add(1 << 20)
}

/// A dag-pb block decoded once, with its UnixFS Data.
struct Node {
    links: Vec<PbLink>,
    unixfs: UnixFsData,
}

/// The remaining budgets of one unpack. Each is charged before the work it pays for.
struct Unpacker<'a> {
    blocks: &'a dyn BlockSource,
    limits: Limits,
    output: u64,
    input: u64,
    visits: u64,
    /// Each dag-pb block decoded once: a hostile DAG reaches one block from many
    /// links, and decoding it again each time was the multiplier.
    decoded: HashMap<Cid, Rc<Node>>,
    /// Raw blocks already paid for in `input`.
    raw_seen: HashSet<Cid>,
    files: Vec<(String, Vec<u8>)>,
}

impl<'a> Unpacker<'a> {
    fn new(blocks: &'a dyn BlockSource, limits: &Limits) -> Self {
        Unpacker {
            blocks,
            limits: *limits,
            output: limits.max_output_bytes,
            input: limits.max_input_bytes,
            visits: limits.max_visits,
            decoded: HashMap::new(),
            raw_seen: HashSet::new(),
            files: Vec::new(),
        }
    }

    fn raw<'b>(&'b self, cid: &'b Cid) -> Result<&'b [u8], NwebError> {
        if cid.hash().code() == IDENTITY {
            // Identity CIDs carry their data and are never sent as blocks.
            return Ok(cid.hash().digest());
        }
        let bytes = self
            .blocks
            .block(cid)
            .ok_or_else(|| NwebError::block(cid, "missing: not among the blocks received"))?;
        if bytes.len() > self.limits.max_block_bytes {
            return Err(NwebError::limit(
                "block size in bytes",
                self.limits.max_block_bytes as u64,
                Some(cid),
            ));
        }
        Ok(bytes)
    }

    /// One more link followed, repeats included.
    fn visit(&mut self, cid: &Cid) -> Result<(), NwebError> {
        self.visits = self.visits.checked_sub(1).ok_or_else(|| {
            NwebError::limit(
                "links followed (the DAG reaches its blocks too often)",
                self.limits.max_visits,
                Some(cid),
            )
        })?;
        Ok(())
    }

    /// Pays for a block the first time it is read.
    fn first_read(&mut self, cid: &Cid, cost: u64) -> Result<(), NwebError> {
        if self.decoded.len() + self.raw_seen.len() >= self.limits.max_blocks {
            return Err(NwebError::limit(
                "distinct blocks",
                self.limits.max_blocks as u64,
                Some(cid),
            ));
        }
        self.input = self.input.checked_sub(cost).ok_or_else(|| {
            NwebError::limit(
                "bytes of blocks read and decoded",
                self.limits.max_input_bytes,
                Some(cid),
            )
        })?;
        Ok(())
    }

    fn dag_pb(&mut self, cid: &Cid) -> Result<Rc<Node>, NwebError> {
        if let Some(node) = self.decoded.get(cid) {
            return Ok(Rc::clone(node));
        }
        // Absence first: for a root that is not there, "missing" is the useful report.
        let bytes = self.raw(cid)?;
        if cid.codec() != DAG_PB {
            return Err(NwebError::block(
                cid,
                format!("expected dag-pb, codec is 0x{:x}", cid.codec()),
            ));
        }
        let bad = |e: String| NwebError::block(cid, format!("bad dag-pb: {e}"));
        let links = count_links(bytes).map_err(bad)?;
        if links > self.limits.max_links {
            return Err(NwebError::limit(
                "links in one node",
                self.limits.max_links as u64,
                Some(cid),
            ));
        }
        let pb = decode_pb_node(bytes).map_err(bad)?;
        let Some(data) = &pb.data else {
            return Err(NwebError::block(cid, "dag-pb node without UnixFS Data"));
        };
        let unixfs =
            decode_unixfs(data).map_err(|e| NwebError::block(cid, format!("bad UnixFS Data: {e}")))?;
        let cost = bytes.len() as u64
            + (links * std::mem::size_of::<PbLink>()) as u64
            + (unixfs.blocksizes.len() * std::mem::size_of::<u64>()) as u64;
        let cid = *cid;
        self.first_read(&cid, cost)?;
        let node = Rc::new(Node {
            links: pb.links,
            unixfs,
        });
        self.decoded.insert(cid, Rc::clone(&node));
        Ok(node)
    }

    fn take(&mut self, cid: &Cid, n: usize) -> Result<(), NwebError> {
        self.output = self.output.checked_sub(n as u64).ok_or_else(|| {
            NwebError::limit(
                "bytes of file data the DAG describes",
                self.limits.max_output_bytes,
                Some(cid),
            )
        })?;
        Ok(())
    }

    fn depth(&self, cid: &Cid, depth: usize) -> Result<(), NwebError> {
        if depth > self.limits.max_depth {
            return Err(NwebError::limit(
                "nesting depth of directories and file trees",
                self.limits.max_depth as u64,
                Some(cid),
            ));
        }
        Ok(())
    }

    fn directory(
        &mut self,
        cid: &Cid,
        node: &Node,
        path: &str,
        depth: usize,
    ) -> Result<(), NwebError> {
        self.depth(cid, depth)?;
        let flat;
        let node = if node.unixfs.kind == TYPE_HAMT_SHARD {
            flat = self.hamt_entries(cid, node, depth)?;
            &flat
        } else {
            node
        };
        let mut names = HashSet::new();
        for link in &node.links {
            self.visit(&link.cid)?;
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
            if path.len() + 1 + name.len() > self.limits.max_path_bytes {
                return Err(NwebError::limit(
                    "bytes in one path",
                    self.limits.max_path_bytes as u64,
                    Some(cid),
                ));
            }
            let child_path = join(path, name);
            let mut bytes = Vec::new();
            if link.cid.codec() == DAG_PB {
                let child = self.dag_pb(&link.cid)?;
                if matches!(child.unixfs.kind, TYPE_DIRECTORY | TYPE_HAMT_SHARD) {
                    self.directory(&link.cid, &child, &child_path, depth + 1)?;
                    continue;
                }
                self.file_node(&link.cid, &child, &mut bytes, depth + 1)?;
            } else {
                self.file(&link.cid, &mut bytes, depth + 1)?;
            }
            if self.files.len() >= self.limits.max_files {
                return Err(NwebError::limit(
                    "files in one directory tree",
                    self.limits.max_files as u64,
                    Some(cid),
                ));
            }
            self.files.push((child_path, bytes));
        }
        Ok(())
    }

    fn file(&mut self, cid: &Cid, out: &mut Vec<u8>, depth: usize) -> Result<(), NwebError> {
        self.depth(cid, depth)?;
        match cid.codec() {
            RAW => {
                let n = self.raw(cid)?.len();
                if cid.hash().code() != IDENTITY && !self.raw_seen.contains(cid) {
                    self.first_read(cid, n as u64)?;
                    self.raw_seen.insert(*cid);
                }
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

    fn file_node(&mut self, cid: &Cid, node: &Node, out: &mut Vec<u8>, depth: usize) -> Result<(), NwebError> {
        let data = &node.unixfs;
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
            self.visit(&link.cid)?;
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
