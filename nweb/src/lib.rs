//! nweb: scanprint, canonical JSON and Merkle roots (see docs/design.md D6).
//!
//! - [`scanprint`] turns nmap and masscan output into sorted scanprint v0 lines.
//! - [`jcs`] writes JSON in the RFC 8785 canonical form those lines are hashed in.
//! - [`merkle`] computes the RFC 6962 root of a scanprint file and inclusion proofs.
//! - [`unixfs`] and [`car`] compute bundle CIDs exactly as Kubo does and move bundles
//!   as verified CAR files (docs/design.md D7).
//! - [`bundle`] checks a bundle's manifest, Merkle root and artifact hashes.
//! - [`rules`] holds the MVP economics: quota, costs, grace, slashing, reputation.
//! - [`bridge`] turns verified scanprint rows into an xray scan payload.
//! - [`target_spec`] holds the target specs and deny lists a dispatcher publishes.

pub mod bridge;
pub mod bundle;
pub mod car;
mod error;
pub mod jcs;
mod jcs_check;
pub mod merkle;
pub mod rules;
pub mod scanprint;
pub mod target_spec;
pub mod unixfs;

/// The CID type bundles are addressed by, so users of this crate need no `cid` dependency.
pub use cid::Cid;
pub use error::NwebError;

/// Appends `v` as an unsigned LEB128 varint, the length prefix of CAR sections
/// and the integer encoding of protobuf (dag-pb, UnixFS).
pub(crate) fn put_varint(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(unsigned_varint::encode::u64(v, &mut unsigned_varint::encode::u64_buffer()));
}
