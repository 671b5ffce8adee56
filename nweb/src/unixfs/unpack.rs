//! The unpacker: reads UnixFS directories and files out of blocks that came from
//! untrusted sources.

use std::collections::{HashMap, HashSet};

use cid::Cid;

use super::pb::{decode_pb_node, decode_unixfs, PbNode, UnixFsData};
use super::{check_component, join, DAG_PB, IDENTITY, MAX_DEPTH, RAW, TYPE_DIRECTORY, TYPE_FILE, TYPE_RAW};
use crate::NwebError;

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
    if data.kind != TYPE_DIRECTORY {
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
                if unixfs_of(&link.cid, &child)?.kind == TYPE_DIRECTORY {
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
                format!("UnixFS type {} is not a file (symlinks and HAMT shards are not supported)", data.kind),
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
