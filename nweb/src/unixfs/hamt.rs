//! Reading HAMT-sharded UnixFS directories (UnixFS `Data.Type` 5, `HAMTShard`).
//!
//! Our importer never writes one: it refuses a directory big enough that Kubo would
//! shard it, so every bundle we build has a plain directory and a CID Kubo agrees with.
//! But a bundle from another collector is whatever its Kubo made, and Kubo shards a
//! directory once its links reach `Import.UnixFSHAMTDirectorySizeThreshold` (256 KiB by
//! default, lower if the collector set it lower). Reading such a bundle only needs the
//! shard's entries, so a shard is flattened here into the links of one plain directory
//! and read by the same code, with the same name, duplicate and work checks.
//!
//! A link of a shard is named by its bucket in `fanout - 1`-width upper-case hex
//! (`"0A"` for fanout 256), followed by the entry's name; a bare bucket name points to
//! a sub-shard. Which bucket an entry sits in (murmur3-x64-64 of its name) is not
//! checked: placement matters for lookups by name, and here every entry is listed;
//! the CID commits to the bytes either way.

use cid::Cid;

use super::{Node, PbLink, Unpacker};
use crate::NwebError;

/// UnixFS `Data.Type` of a HAMT shard.
pub(super) const TYPE_HAMT_SHARD: u64 = 5;
/// The only hash function UnixFS shards use (multicodec `murmur3-x64-64`).
const MURMUR3_X64_64: u64 = 0x22;

impl Unpacker<'_> {
    /// Every entry of the shard at `cid` and of its sub-shards, as one directory node.
    pub(super) fn hamt_entries(&mut self, cid: &Cid, node: &Node, depth: usize) -> Result<Node, NwebError> {
        let mut links = Vec::new();
        self.shard(cid, node, depth, &mut links)?;
        Ok(Node { links, unixfs: node.unixfs.clone() })
    }

    fn shard(&mut self, cid: &Cid, node: &Node, depth: usize, out: &mut Vec<PbLink>) -> Result<(), NwebError> {
        // Sub-shards pay the same depth and visit budgets as directories.
        self.depth(cid, depth)?;
        let data = &node.unixfs;
        if data.hash_type != Some(MURMUR3_X64_64) {
            return Err(NwebError::block(
                cid,
                format!("HAMT shard hash type {:?} is not murmur3-x64-64 (0x22)", data.hash_type),
            ));
        }
        let fanout = match data.fanout {
            Some(f) if f.is_power_of_two() && (8..=1 << 16).contains(&f) => f,
            other => {
                return Err(NwebError::block(
                    cid,
                    format!("HAMT shard fanout {other:?} is not a power of two from 8 to 65536"),
                ))
            }
        };
        let width = format!("{:X}", fanout - 1).len();
        for link in &node.links {
            let name = link.name.as_deref().unwrap_or("");
            let prefix = name.as_bytes().get(..width);
            if !prefix.is_some_and(|p| p.iter().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))) {
                return Err(NwebError::block(
                    cid,
                    format!("HAMT link {name:?} does not start with a {width}-digit upper-case hex bucket"),
                ));
            }
            // The prefix is ASCII, so `width` is a char boundary.
            let entry = &name[width..];
            if entry.is_empty() {
                self.visit(&link.cid)?;
                let child = self.dag_pb(&link.cid)?;
                if child.unixfs.kind != TYPE_HAMT_SHARD {
                    return Err(NwebError::block(
                        &link.cid,
                        format!("HAMT bucket {name:?} names no entry, so it must be a sub-shard"),
                    ));
                }
                self.shard(&link.cid, &child, depth + 1, out)?;
            } else {
                out.push(PbLink {
                    cid: link.cid,
                    name: Some(entry.to_owned()),
                    tsize: link.tsize,
                });
            }
        }
        Ok(())
    }
}
