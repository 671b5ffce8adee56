//! nweb: scanprint, canonical JSON and Merkle roots (see design D6).
//!
//! - [`scanprint`] turns nmap and masscan output into sorted scanprint v0 lines.
//! - [`jcs`] writes JSON in the RFC 8785 canonical form those lines are hashed in.
//! - [`merkle`] computes the RFC 6962 root of a scanprint file and inclusion proofs.

mod error;
pub mod jcs;
pub mod merkle;
pub mod scanprint;

pub use error::NwebError;
