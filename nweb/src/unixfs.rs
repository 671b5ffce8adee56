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
//!   supported: see unixfs/hamt.rs);
//! - sha2-256 everywhere, CIDv1, no mode or mtime metadata.
//!
//! The dag-pb and UnixFS protobufs are written by hand. They are tiny, and dag-pb has a
//! quirk a generic protobuf encoder gets wrong: `Links` (field 2) is written before
//! `Data` (field 1). Go also writes an empty `Name` on file links, which changes bytes.

use cid::multihash::Multihash;
use cid::Cid;
use sha2::{Digest, Sha256};

use super::NwebError;

mod import;
mod pb;
mod unpack;

pub use import::{directory_cid, file_cid, file_cid_with, import_directory, import_file, ImportParams};
pub use pb::{decode_pb_node, encode_pb_node, links_of, PbLink, PbNode};
pub use unpack::{
    read_file, read_file_with, unpack_directory, unpack_directory_with, work_limit, BlockSource,
};

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

/// Bounds on everything untrusted input controls while blocks are read: the CAR
/// reader ([`crate::car::read_car_with`]) and the unpacker ([`unpack_directory_with`],
/// [`read_file_with`]) share one value, so a DAG cannot pass one and overwhelm the other.
/// Every bound is checked before the work it guards, so a hostile DAG fails in time and
/// memory proportional to these numbers, with a [`NwebError::Limit`] naming the bound.
///
/// The defaults sit well above anything Kubo writes with our import parameters
/// ([`ImportParams::KUBO`]) and far below what would hurt a PostgreSQL backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in one block. 2 MiB: Kubo refuses to add blocks over 1 MiB without
    /// `--allow-big-block` and its chunkers stop at 1 MiB, while bitswap peers must
    /// carry blocks up to 2 MiB; a larger block cannot travel over bitswap at all, so
    /// no honest bundle has one. Ours are 262144 bytes.
    pub max_block_bytes: usize,
    /// Links in one dag-pb node. 8192: Kubo file nodes hold at most 174, and a plain
    /// directory is sharded (refused here) once its links take 256 KiB, which at 37
    /// bytes or more per entry (a CIDv1 sha2-256 and a name) is under 7085 entries.
    pub max_links: usize,
    /// Distinct blocks, in one CAR or reached by one unpack. 2^18: a 1 GiB bundle of
    /// Kubo chunks is about 4100 blocks; this leaves room for many small files.
    pub max_blocks: usize,
    /// Bytes of input: the CAR file, or the distinct blocks one unpack reads plus the
    /// memory their decoded links take (a link of a few bytes becomes a `Cid` of about
    /// a hundred), since decoded nodes are kept to decode each block once.
    pub max_input_bytes: u64,
    /// File bytes the unpack returns, counted each time a block is used (a file may
    /// repeat a chunk), identity-hashed leaves included.
    pub max_output_bytes: u64,
    /// Links followed, counted each time (a DAG may reach a block many times): what
    /// bounds the time of a DAG that shares subtrees. 2^20: a 1 GiB Kubo file follows
    /// about 4100.
    pub max_visits: u64,
    /// Files one unpack returns. 2^16.
    pub max_files: usize,
    /// Bytes in one path of the unpacked directory. 4096, Linux's PATH_MAX.
    pub max_path_bytes: usize,
    /// Nesting of directories and file trees, [`MAX_DEPTH`].
    pub max_depth: usize,
}

impl Limits {
    /// The defaults, for a bundle of at most 1 GiB (what the extension accepts).
    pub const DEFAULT: Limits = Limits::with_max_bytes(1 << 30);

    /// The defaults for an unpack of at most `max_bytes` file bytes; the input may be
    /// [`work_limit`]`(max_bytes)`. What `unpack_directory(.., max_bytes)` uses.
    pub const fn with_max_bytes(max_bytes: u64) -> Limits {
        Limits {
            max_block_bytes: 2 << 20,
            max_links: 8192,
            max_blocks: 1 << 18,
            max_input_bytes: work_limit(max_bytes),
            max_output_bytes: max_bytes,
            max_visits: 1 << 20,
            max_files: 1 << 16,
            max_path_bytes: 4096,
            max_depth: MAX_DEPTH,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// UnixFS `Data.Type` values (unixfs.proto).
const TYPE_DIRECTORY: u64 = 1;
const TYPE_FILE: u64 = 2;
const TYPE_RAW: u64 = 0;

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

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests;
